package auth

import (
	"encoding/base64"
	"slices"
	"sync"
)

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// registry remembers certificates published at lum/<I>/certs (after the
// Checker accepted the write), so that [Checker.Authorize] can find a chain
// for a writer without being handed one. It holds at most max certificates;
// when full, the oldest is forgotten. Certificates are re-validated on every
// use, so a stale entry can only fail, never grant.
type registry struct {
	mu     sync.Mutex
	max    int
	n      int
	order  []regKey                    // insertion order, for eviction
	byInst map[string]map[string]*Cert // instance → serial → certificate
}

type regKey struct{ instance, serial string }

func newRegistry(max int) *registry {
	return &registry{max: max, byInst: make(map[string]map[string]*Cert)}
}

// add stores or replaces a certificate.
func (r *registry) add(c *Cert) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.byInst[c.Instance]
	if m == nil {
		m = make(map[string]*Cert)
		r.byInst[c.Instance] = m
	}
	if _, ok := m[c.Serial]; !ok {
		r.order = append(r.order, regKey{c.Instance, c.Serial})
		r.n++
	}
	m[c.Serial] = c
	for r.n > r.max && len(r.order) > 0 {
		old := r.order[0]
		r.order = r.order[1:]
		delete(r.byInst[old.instance], old.serial)
		if len(r.byInst[old.instance]) == 0 {
			delete(r.byInst, old.instance)
		}
		r.n--
	}
}

// subjects returns the keys named by instance's certificates that grant
// role (not AnySubject), unvalidated.
func (r *registry) subjects(instance string, role Role) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.byInst[instance] {
		if c.Subject != AnySubject && c.Has(role) && !slices.Contains(out, c.Subject) {
			out = append(out, c.Subject)
		}
	}
	return out
}

// chains returns candidate chains, owner-issued first, whose last
// certificate names subject, at most depth long. They are not validated.
func (r *registry) chains(instance, subject string, depth int) [][]*Cert {
	r.mu.Lock()
	defer r.mu.Unlock()
	bySubject := make(map[string][]*Cert)
	for _, c := range r.byInst[instance] {
		bySubject[c.Subject] = append(bySubject[c.Subject], c)
	}
	var out [][]*Cert
	var walk func(subj string, tail []*Cert)
	walk = func(subj string, tail []*Cert) {
		if len(tail) >= depth || len(out) >= 16 {
			return
		}
		cands := bySubject[subj]
		if len(tail) == 0 {
			cands = append(cands[:len(cands):len(cands)], bySubject[AnySubject]...)
		}
		for _, c := range cands {
			chain := append([]*Cert{c}, tail...)
			if c.Issuer == instance {
				out = append(out, chain)
				continue
			}
			if c.Issuer != subj { // no self-loops
				walk(c.Issuer, chain)
			}
		}
	}
	walk(subject, nil)
	return out
}
