package sea

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/keys"
)

// ErrCertificate is returned (wrapped, with the reason) for a certificate
// whose signed content is malformed. A certificate whose signature does not
// verify yields ErrBadSignature from [Certificate.Verify].
var ErrCertificate = errors.New("invalid: sea certificate")

// CertifyOptions are the options of gun.js SEA.certify.
type CertifyOptions struct {
	// Expiry, if not zero, is written as "e" in milliseconds since the
	// epoch. gun.js peers compare it with the state (the writer's clock) of
	// each write; see Certificate.Expired.
	Expiry time.Time
	// ReadBlock and WriteBlock, if not nil, are written as "rb" and "wb":
	// the path of a block list, either a string or an object with a "#"
	// member (gun.js's opt.block.read / opt.block.write).
	ReadBlock, WriteBlock any
}

// Certify is gun.js SEA.certify(certificants, policy, authority, null,
// opt): it signs {"c", "e", "r", "w", "rb", "wb"} (in that order, absent
// members left out) with the authority's key and returns the envelope text.
//
// certificants is "*" (anyone), a public key (string or *keys.Public), a
// *keys.Pair, or a list of them ([]string, []*keys.Public, []any); as in
// gun.js, a list containing "*" becomes "*" and a one-element list becomes
// its element.
//
// policy is a string (a path), a LEX object such as {"*": "inbox", "+":
// "*"}, or an array of them, which becomes the write policy "w"; an object
// with "read" and/or "write" members sets "r" and/or "w" instead (gun.js's
// rules, including its quirk that an object with "read" and a LEX member but
// no "write" is used whole as "w").
func Certify(certificants any, policy any, authority *keys.Private, opt CertifyOptions) (string, error) {
	if authority == nil {
		return "", errors.New("sea: certify: no authority key")
	}
	c, err := normCertificants(certificants)
	if err != nil {
		return "", fmt.Errorf("sea: certify: %w", err)
	}
	policy, err = normalize(policy)
	if err != nil {
		return "", fmt.Errorf("sea: certify: policy: %w", err)
	}
	var r, w any
	if obj, ok := policy.(*jsjson.Object); ok && obj != nil {
		rv, rok := obj.Get("read")
		if truthy(rv, rok) {
			r = rv
		}
		if wv, wok := obj.Get("write"); truthy(wv, wok) {
			w = wv
		} else {
			for _, k := range []string{"+", "#", ".", "=", "*", ">", "<"} {
				if v, ok := obj.Get(k); truthy(v, ok) {
					w = policy
					break
				}
			}
		}
	} else if s, ok := policy.(string); ok && s != "" {
		w = s
	} else if a, ok := policy.([]any); ok {
		w = a
	}
	if r == nil && w == nil {
		return "", errors.New("sea: certify: no policy found")
	}
	m := &jsjson.Object{}
	m.Set("c", c)
	if !opt.Expiry.IsZero() {
		if e := opt.Expiry.UnixMilli(); e != 0 {
			m.Set("e", float64(e))
		}
	}
	if r != nil {
		m.Set("r", r)
	}
	if w != nil {
		m.Set("w", w)
	}
	for _, b := range []struct {
		k string
		v any
	}{{"rb", opt.ReadBlock}, {"wb", opt.WriteBlock}} {
		if b.v == nil {
			continue
		}
		v, err := normalize(b.v)
		if err != nil {
			return "", fmt.Errorf("sea: certify: %s: %w", b.k, err)
		}
		if !isBlockPath(v) {
			return "", fmt.Errorf("sea: certify: %s must be a string or an object with \"#\"", b.k)
		}
		m.Set(b.k, v)
	}
	e, err := signValue(m, authority)
	if err != nil {
		return "", err
	}
	return e.String(), nil
}

func stringsToAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// normCertificants applies gun.js's rules for the "c" member.
func normCertificants(v any) (any, error) {
	one := func(x any) (string, bool) {
		switch y := x.(type) {
		case string:
			return y, y != ""
		case *keys.Public:
			if y != nil {
				return y.String(), true
			}
		case *keys.Pair:
			if y != nil && y.Pub != nil {
				return y.Pub.String(), true
			}
		case *jsjson.Object:
			if p, ok := member(y, "pub"); ok {
				s, ok := p.(string)
				return s, ok && s != ""
			}
		}
		return "", false
	}
	var list []any
	switch x := v.(type) {
	case []string:
		list = stringsToAny(x)
	case []*keys.Public:
		for _, p := range x {
			list = append(list, p)
		}
	case []any:
		list = x
	default:
		s, ok := one(v)
		if !ok {
			return nil, errors.New("no certificant found")
		}
		for i := 0; i < len(s); i++ {
			if s[i] == '*' { // gun.js: a string containing "*" means anyone
				return "*", nil
			}
		}
		return s, nil
	}
	for _, e := range list {
		if s, ok := e.(string); ok && s == "*" {
			return "*", nil
		}
	}
	var out []any
	for _, e := range list {
		if s, ok := one(e); ok {
			out = append(out, s)
		}
	}
	switch len(out) {
	case 0:
		return nil, errors.New("no certificant found")
	case 1:
		if len(list) == 1 {
			return out[0], nil
		}
	}
	return out, nil
}

func isBlockPath(v any) bool {
	switch x := v.(type) {
	case string:
		return x != ""
	case *jsjson.Object:
		h, ok := member(x, "#")
		return truthy(h, ok)
	}
	return false
}

// Certificate is a parsed SEA certificate: an envelope whose m is
// {"c", ["e"], ["r"], ["w"], ["rb"], ["wb"]}. Parsing checks its structure
// only; call [Certificate.Verify] with the authority's key. Path rules (the
// policies) are left to the caller.
type Certificate struct {
	// AnyCertificant is true when c is "*" or a list containing "*".
	AnyCertificant bool
	// Certificants are the public keys in c (one element when c is a single
	// string), or nil when AnyCertificant.
	Certificants []string
	// ExpiryMillis is e, milliseconds since the epoch as a JavaScript number;
	// HasExpiry reports whether e is present.
	ExpiryMillis float64
	HasExpiry    bool
	// ReadPolicy, WritePolicy, ReadBlock and WriteBlock are r, w, rb and wb
	// as decoded (string, []any or *jsjson.Object), nil when absent.
	ReadPolicy, WritePolicy any
	ReadBlock, WriteBlock   any

	env *Envelope
}

// ParseCertificate parses a certificate text (`SEA{"m":…,"s":…}`, with or
// without the prefix). Errors wrap ErrEnvelope or ErrCertificate.
func ParseCertificate(s string) (*Certificate, error) {
	e, err := ParseEnvelope(s)
	if err != nil {
		return nil, err
	}
	return certificateOf(e)
}

// DecodeCertificate is ParseCertificate for a certificate that is already
// decoded, such as the "+" member of a gun.js user-space wrapper.
func DecodeCertificate(v any) (*Certificate, error) {
	e, err := DecodeEnvelope(v)
	if err != nil {
		return nil, err
	}
	return certificateOf(e)
}

func certificateOf(e *Envelope) (*Certificate, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrCertificate}, args...)...)
	}
	m, ok := e.m.(*jsjson.Object)
	if !ok {
		return nil, bad("m is not an object")
	}
	c := &Certificate{env: e}
	for i, k := range m.Keys {
		v := m.Values[i]
		switch k {
		case "c":
			if err := c.setCertificants(v); err != nil {
				return nil, bad("%v", err)
			}
		case "e":
			f, ok := v.(float64)
			if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, bad("e is not a number")
			}
			c.ExpiryMillis, c.HasExpiry = f, true
		case "r", "w":
			if !isPolicy(v) {
				return nil, bad("%s is not a string, object or array", k)
			}
			if k == "r" {
				c.ReadPolicy = v
			} else {
				c.WritePolicy = v
			}
		case "rb", "wb":
			if !isBlockPath(v) {
				return nil, bad("%s is not a block path", k)
			}
			if k == "rb" {
				c.ReadBlock = v
			} else {
				c.WriteBlock = v
			}
		default:
			return nil, bad("unknown member %q", k)
		}
	}
	if !c.AnyCertificant && c.Certificants == nil {
		return nil, bad("no certificants (c)")
	}
	if c.ReadPolicy == nil && c.WritePolicy == nil {
		return nil, bad("no policy (r or w)")
	}
	return c, nil
}

func (c *Certificate) setCertificants(v any) error {
	switch x := v.(type) {
	case string:
		if x == "" {
			return errors.New("c is empty")
		}
		if x == "*" {
			c.AnyCertificant = true
			return nil
		}
		c.Certificants = []string{x}
		return nil
	case []any:
		if len(x) == 0 {
			return errors.New("c is an empty list")
		}
		list := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok || s == "" {
				return errors.New("c holds something other than a public key")
			}
			if s == "*" {
				c.AnyCertificant = true
			}
			list = append(list, s)
		}
		if !c.AnyCertificant {
			c.Certificants = list
		}
		return nil
	}
	return errors.New("c is not a string or a list")
}

func isPolicy(v any) bool {
	switch x := v.(type) {
	case string:
		return x != ""
	case []any, *jsjson.Object:
		return true
	}
	return false
}

// Envelope returns the certificate's signed envelope (its m, the exact
// signed text and the signature).
func (c *Certificate) Envelope() *Envelope { return c.env }

// String returns the certificate text `SEA{"m":…,"s":…}`.
func (c *Certificate) String() string { return c.env.String() }

// Verify checks that authority signed the certificate. It returns nil or an
// error wrapping ErrBadSignature.
func (c *Certificate) Verify(authority *keys.Public) error {
	if err := c.env.Verify(authority); err != nil {
		return fmt.Errorf("sea: verify certificate: %w", err)
	}
	return nil
}

// Allows reports whether writer (a public key text) is a certificant: c is
// "*", equals writer, or is a list containing "*" or writer. (gun.js
// 0.2020.1241 only honours c == writer and "*"; lists are accepted by later
// gun.js code.) A string c that merely contains "*" is not a wildcard here.
func (c *Certificate) Allows(writer string) bool {
	if c.AnyCertificant {
		return true
	}
	if writer == "" {
		return false
	}
	for _, p := range c.Certificants {
		if p == writer {
			return true
		}
	}
	return false
}

// Expired reports whether the certificate has an expiry e and now is past
// it (now in milliseconds > e, the comparison gun.js makes with a write's
// state). A caller checking a write should compare both the write's state
// and its own clock: gun.js only checks the state, which the writer chooses.
func (c *Certificate) Expired(now time.Time) bool {
	return c.HasExpiry && float64(now.UnixMilli()) > c.ExpiryMillis
}
