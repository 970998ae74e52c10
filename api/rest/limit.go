package rest

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limit is a token bucket: Rate requests per second with bursts of Burst.
// A zero Limit takes the route's default; a negative Rate disables it.
type Limit struct {
	Rate  rate.Limit
	Burst int
}

// clientLimiter keeps one token bucket per client address, at most max of
// them. Client addresses come from the connection (RemoteAddr), never from
// X-Forwarded-For or similar headers, which any client can forge (table A
// row 32); a relay behind a proxy should apply limits at the proxy.
type clientLimiter struct {
	lim Limit
	max int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

func newClientLimiter(l Limit, max int) *clientLimiter {
	return &clientLimiter{lim: l, max: max, buckets: make(map[string]*rate.Limiter)}
}

// allow takes a token for r's client at now.
func (c *clientLimiter) allow(r *http.Request, now time.Time) bool {
	if c.lim.Rate < 0 {
		return true
	}
	ip := clientIP(r)
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.buckets[ip]
	if b == nil {
		if len(c.buckets) >= c.max {
			// Forget clients whose buckets are full again: they are idle,
			// and a new bucket would be full too.
			for k, v := range c.buckets {
				if v.TokensAt(now) >= float64(c.lim.Burst) {
					delete(c.buckets, k)
				}
			}
			if len(c.buckets) >= c.max {
				return false
			}
		}
		b = rate.NewLimiter(c.lim.Rate, c.lim.Burst)
		c.buckets[ip] = b
	}
	return b.AllowN(now, 1)
}

// clientIP is the host part of r.RemoteAddr.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// semaphore bounds concurrent work without waiting: try fails when full.
type semaphore chan struct{}

func (s semaphore) try() bool {
	select {
	case s <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s semaphore) release() { <-s }
