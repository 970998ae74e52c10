package api

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Outbound peering: the relay dials every URL of Config.Peers (other
// Luminary relays or stock gun.js relays), keeps the link up with
// exponential backoff and jitter, and
//
//   - answers the remote's "dam":"?" greeting and greets it, so both sides
//     know each other's pid for "><";
//   - on every (re)connect sends a get for every soul a local connection is
//     subscribed to, so the remote pushes changes back (AXE relays push only
//     to peers that asked);
//   - forwards each new local get to the link once per soul (same "#" as
//     the original, with "><"), so remote data flows in;
//   - forwards every accepted put to the link (relay-to-relay flooding;
//     loops end because a put is forwarded only when HAM accepted it, ids
//     are deduplicated, and "><" names the peers already reached).
//
// Messages arriving on a link are handled exactly like those of an inbound
// connection.

// PeerURL maps a gun peer URL to the WebSocket URL to dial: http becomes
// ws, https becomes wss, and an empty path becomes /gun.
func PeerURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("api: peer url %q: %w", raw, err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return "", fmt.Errorf("api: peer url %q: scheme must be http, https, ws or wss", raw)
	}
	if u.Host == "" {
		return "", fmt.Errorf("api: peer url %q: no host", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/gun"
	}
	return u.String(), nil
}

// peerSet owns the outbound links.
type peerSet struct {
	s     *Server
	links []*peerLink
	wg    sync.WaitGroup
	seen  atomic.Pointer[string] // the "><" value for messages we send
}

// peerLink is one configured outbound peer.
type peerLink struct {
	url  string // as configured
	dial string // ws(s) URL

	self atomic.Bool // the URL turned out to be this relay: stop dialling

	mu    sync.Mutex
	c     *conn               // current connection, nil while down
	asked map[string]struct{} // souls (and soul\x00field) asked on c
}

func newPeerSet(s *Server, urls []string) (*peerSet, error) {
	p := &peerSet{s: s}
	for _, raw := range urls {
		if strings.TrimSpace(raw) == "" {
			continue
		}
		d, err := PeerURL(raw)
		if err != nil {
			return nil, err
		}
		p.links = append(p.links, &peerLink{url: raw, dial: d})
	}
	p.updateSeen()
	return p, nil
}

// start dials every link in the background until ctx ends.
func (p *peerSet) start(ctx context.Context) {
	for _, l := range p.links {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.runLink(ctx, l)
		}()
	}
}

// wait returns when every link goroutine has stopped.
func (p *peerSet) wait() { p.wg.Wait() }

// runLink keeps one link connected until ctx ends.
func (p *peerSet) runLink(ctx context.Context, l *peerLink) {
	s := p.s
	failures := 0
	for ctx.Err() == nil {
		c, err := p.dial(ctx, l)
		if err != nil {
			s.m.peerDials.WithLabelValues("error").Inc()
			if ctx.Err() != nil {
				return
			}
			failures++
			wait := s.backoff(failures)
			s.log.Info("peer dial failed", "peer", l.url, "err", err, "retry_in", wait, "failures", failures)
			if !s.sleep(ctx, wait) {
				return
			}
			continue
		}
		s.m.peerDials.WithLabelValues("ok").Inc()
		failures = 0
		s.log.Info("peer connected", "peer", l.url, "conn", c.info.ID)
		c.run() // returns when the link closes
		p.linkDown(l, c)
		if ctx.Err() != nil || l.self.Load() {
			return
		}
		s.log.Info("peer disconnected", "peer", l.url, "err", c.readErr)
		failures++
		if !s.sleep(ctx, s.backoff(failures)) {
			return
		}
	}
}

// dial connects one link and registers its connection.
func (p *peerSet) dial(ctx context.Context, l *peerLink) (*conn, error) {
	s := p.s
	d := websocket.Dialer{
		HandshakeTimeout:  s.lim.HandshakeTimeout,
		ReadBufferSize:    4096,
		WriteBufferSize:   writeBufferSize,
		WriteBufferPool:   s.writePool,
		EnableCompression: false,
	}
	ws, resp, err := d.DialContext(ctx, l.dial, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	info := &PeerInfo{ID: s.nextConnID(), RemoteAddr: ws.RemoteAddr().String(), Outbound: true, URL: l.url}
	c := s.newConn(ws, info, "", l)
	if !s.register(c) {
		_ = ws.Close()
		return nil, errDraining
	}
	l.mu.Lock()
	l.c, l.asked = c, make(map[string]struct{})
	l.mu.Unlock()
	p.updateSeen()
	go p.resubscribe(ctx, l, c)
	return c, nil
}

// resubscribe asks the remote for every soul local connections are
// subscribed to, waiting for queue room rather than overflowing it.
func (p *peerSet) resubscribe(ctx context.Context, l *peerLink, c *conn) {
	seen := p.seenList()
	for _, w := range p.s.subs.souls() {
		if w.whole {
			if l.markAsked(c, w.soul, "", false) {
				if !c.enqueueWait(ctx, appendGet(nil, p.s.newTrackedID(), seen, w.soul, "", false)) {
					return
				}
			}
			continue
		}
		for _, f := range w.fields {
			if l.markAsked(c, w.soul, f, true) {
				if !c.enqueueWait(ctx, appendGet(nil, p.s.newTrackedID(), seen, w.soul, f, true)) {
					return
				}
			}
		}
	}
}

// markAsked records that soul (or one field) was asked on c and reports
// whether it had not been asked before.
func (l *peerLink) markAsked(c *conn, soul, field string, hasField bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.c != c {
		return false
	}
	if _, ok := l.asked[soul]; ok {
		return false
	}
	key := soul
	if hasField {
		key = soul + "\x00" + field
		if _, ok := l.asked[key]; ok {
			return false
		}
	}
	l.asked[key] = struct{}{}
	return true
}

// linkUp is called when a link's remote pid becomes known.
func (p *peerSet) linkUp(*conn) { p.updateSeen() }

func (p *peerSet) linkDown(l *peerLink, c *conn) {
	l.mu.Lock()
	if l.c == c {
		l.c, l.asked = nil, nil
	}
	l.mu.Unlock()
	p.updateSeen()
}

// current returns the link's connection if it is up.
func (l *peerLink) current() *conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.c
}

// forwardGet sends a get that arrived on from to every other link that has
// not been asked for it yet, keeping the original message id so that relay
// loops end in dedup.
func (p *peerSet) forwardGet(from *conn, m *Message, soul, field string, hasField bool) {
	if len(p.links) == 0 {
		return
	}
	var seen []string
	if m.Seen != "" {
		seen = strings.Split(m.Seen, ",")
	}
	var frame []byte
	for _, l := range p.links {
		c := l.current()
		if c == nil || c == from || inSeen(seen, c) {
			continue
		}
		if !l.markAsked(c, soul, field, hasField) {
			continue
		}
		if frame == nil {
			frame = appendGet(nil, m.ID, p.seenList(), soul, field, hasField)
		}
		p.s.m.msgsOut.WithLabelValues(typeGet).Inc()
		c.enqueue(frame)
	}
}

func inSeen(seen []string, c *conn) bool {
	if len(seen) == 0 {
		return false
	}
	if pid := c.info.PID(); pid != "" && slices.Contains(seen, pid) {
		return true
	}
	return c.info.URL != "" && slices.Contains(seen, c.info.URL)
}

// targets returns the connected links a put is forwarded to.
func (p *peerSet) targets(skip func(*conn) bool) []*conn {
	if len(p.links) == 0 {
		return nil
	}
	var out []*conn
	for _, l := range p.links {
		if c := l.current(); c != nil && !skip(c) {
			out = append(out, c)
		}
	}
	return out
}

// seenList is the "><" value of messages this relay sends: its own pid and
// the pids of its connected links (at most 7 names, as gun).
func (p *peerSet) seenList() string { return *p.seen.Load() }

func (p *peerSet) updateSeen() {
	names := []string{p.s.pid}
	for _, l := range p.links {
		if c := l.current(); c != nil {
			if pid := c.info.PID(); pid != "" && len(names) < 7 {
				names = append(names, pid)
			}
		}
	}
	v := strings.Join(names, ",")
	p.seen.Store(&v)
	n := 0
	for _, l := range p.links {
		if l.current() != nil {
			n++
		}
	}
	p.s.m.peersUp.Set(float64(n))
}

// backoff returns the wait before reconnect attempt n (n >= 1): exponential
// from PeerRetryMin, capped at PeerRetryMax, with "equal jitter" (half
// fixed, half random) so that relays restarted together do not redial in
// lockstep.
func (s *Server) backoff(n int) time.Duration {
	d := s.cfg.PeerRetryMin
	for i := 1; i < n && d < s.cfg.PeerRetryMax; i++ {
		d *= 2
	}
	d = min(d, s.cfg.PeerRetryMax)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// sleep waits d on the injected clock; false if ctx ended first.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	t := s.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	}
}

// newTrackedID returns a fresh message id that dedup remembers, so that the
// message is dropped if a relay loop brings it back.
func (s *Server) newTrackedID() string {
	id := newID()
	s.dedup.remember(id)
	return id
}
