package keys

import (
	"container/list"
	"sync"
)

// Cache is a bounded, least-recently-used cache of parsed public keys keyed
// by their text form. Parsing a secp256k1 key costs a square root (about
// 9 µs) and a P-256 key an on-curve check; a verifier that sees the same
// signers again and again should parse through a Cache. It is safe for
// concurrent use. Only successful parses are cached.
type Cache struct {
	mu  sync.Mutex
	max int
	ll  list.List // front = most recently used; values are *Public
	m   map[string]*list.Element
}

// NewCache returns a cache holding at most max keys (max < 1 means 1).
func NewCache(max int) *Cache {
	if max < 1 {
		max = 1
	}
	return &Cache{max: max, m: make(map[string]*list.Element, max)}
}

// Parse returns the parsed key for s, from the cache when possible; see
// [ParsePublic].
func (c *Cache) Parse(s string) (*Public, error) {
	c.mu.Lock()
	if e, ok := c.m[s]; ok {
		c.ll.MoveToFront(e)
		p := e.Value.(*Public)
		c.mu.Unlock()
		return p, nil
	}
	c.mu.Unlock()

	p, err := ParsePublic(s)
	if err != nil {
		return nil, err
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[s]; ok { // another goroutine won the race
		c.ll.MoveToFront(e)
		return e.Value.(*Public), nil
	}
	c.m[p.text] = c.ll.PushFront(p)
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*Public).text)
	}
	return p, nil
}

// Len returns the number of cached keys.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
