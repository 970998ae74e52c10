package service

import (
	"crypto/sha256"
	"sync"

	"github.com/krestianstvo/luminary/heartbeat"
)

// cachingVerifier remembers recent successful verifications, so that a
// message checked by the inbox judge (auth, before the put is merged) is
// not verified again by heartbeat.Host.Submit a moment later. The key is
// SHA-256 over (public key, message, signature); only successes are kept,
// at most max of them (oldest forgotten first).
type cachingVerifier struct {
	inner heartbeat.Verifier

	mu   sync.Mutex
	max  int
	seen map[[32]byte]struct{}
	ring [][32]byte
	next int
}

func newCachingVerifier(inner heartbeat.Verifier, max int) *cachingVerifier {
	return &cachingVerifier{inner: inner, max: max, seen: make(map[[32]byte]struct{}, max), ring: make([][32]byte, 0, max)}
}

// Verify implements heartbeat.Verifier.
func (v *cachingVerifier) Verify(pub string, msg, sig []byte) bool {
	h := sha256.New()
	var n [4]byte
	for _, part := range [][]byte{[]byte(pub), msg, sig} {
		n[0], n[1], n[2], n[3] = byte(len(part)>>24), byte(len(part)>>16), byte(len(part)>>8), byte(len(part))
		h.Write(n[:])
		h.Write(part)
	}
	var k [32]byte
	h.Sum(k[:0])
	v.mu.Lock()
	_, ok := v.seen[k]
	v.mu.Unlock()
	if ok {
		return true
	}
	if !v.inner.Verify(pub, msg, sig) {
		return false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.seen[k]; ok {
		return true
	}
	if len(v.ring) < v.max {
		v.ring = append(v.ring, k)
	} else {
		delete(v.seen, v.ring[v.next])
		v.ring[v.next] = k
		v.next = (v.next + 1) % v.max
	}
	v.seen[k] = struct{}{}
	return true
}
