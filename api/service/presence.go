package service

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/heartbeat"
)

// Presence. A key is present in a world while at least one of its
// connections follows the world (logged in with the key and subscribed to
// lum/<I>/hb), or while a lease taken through the HTTP join route (web
// pages do not log in on the wire) has not expired; messages from the key
// renew such a lease. The sequencer logs one join entry when a key becomes
// present and one leave entry when it stops being present. When a term
// starts (first start, restart, takeover) the relay reconciles the logged
// presence with the keys present now (heartbeat.Host.SyncPresence), so
// entries of clients that were connected before a crash are closed.
type presence struct {
	s *Service

	mu     sync.Mutex
	byInst map[string]map[string]*presRec
}

type presRec struct {
	conns int
	lease time.Time
}

func (r *presRec) present(now time.Time) bool { return r.conns > 0 || now.Before(r.lease) }

func newPresence(s *Service) *presence {
	return &presence{s: s, byInst: map[string]map[string]*presRec{}}
}

func (p *presence) rec(inst, key string) *presRec {
	m := p.byInst[inst]
	if m == nil {
		m = map[string]*presRec{}
		p.byInst[inst] = m
	}
	r := m[key]
	if r == nil {
		r = &presRec{}
		m[key] = r
	}
	return r
}

// change applies f to the record of (inst, key) and emits a join or leave
// when presence changed.
func (p *presence) change(inst, key string, f func(r *presRec)) {
	now := p.s.clk.Now()
	p.mu.Lock()
	r := p.rec(inst, key)
	before := r.present(now)
	f(r)
	after := r.present(now)
	if !after {
		delete(p.byInst[inst], key)
	}
	p.mu.Unlock()
	switch {
	case !before && after:
		p.s.host.Join(context.Background(), inst, key, "", p.logResult("join", inst, key))
	case before && !after:
		p.s.host.Leave(context.Background(), inst, key, p.logResult("leave", inst, key))
	}
	if before != after {
		p.s.remote.presenceChanged(inst, key, after)
	}
}

func (p *presence) logResult(what, inst, key string) func(heartbeat.Receipt, error) {
	return func(_ heartbeat.Receipt, err error) {
		if err != nil && !errors.Is(err, heartbeat.ErrDuplicate) {
			// Not the sequencer right now: the next term's SyncPresence
			// repairs the log.
			p.s.logger.Debug("service: presence "+what+" not logged", "instance", inst, "key", key, "err", err)
		}
	}
}

// connect counts one more connection of key following inst.
func (p *presence) connect(inst, key string) {
	p.change(inst, key, func(r *presRec) { r.conns++ })
}

// disconnect counts one connection fewer.
func (p *presence) disconnect(inst, key string) {
	p.change(inst, key, func(r *presRec) {
		if r.conns > 0 {
			r.conns--
		}
	})
}

// lease keeps key present until now+ttl (at least).
func (p *presence) lease(inst, key string, ttl time.Duration) {
	until := p.s.clk.Now().Add(ttl)
	p.change(inst, key, func(r *presRec) {
		if until.After(r.lease) {
			r.lease = until
		}
	})
}

// renew extends an existing lease (a message from a leased key).
func (p *presence) renew(inst, key string, ttl time.Duration) {
	p.mu.Lock()
	m := p.byInst[inst]
	r := m[key]
	ok := r != nil && !r.lease.IsZero()
	p.mu.Unlock()
	if ok {
		p.lease(inst, key, ttl)
	}
}

// sweep ends expired leases.
func (p *presence) sweep() {
	now := p.s.clk.Now()
	var gone [][2]string
	p.mu.Lock()
	for inst, m := range p.byInst {
		for key, r := range m {
			if !r.present(now) {
				gone = append(gone, [2]string{inst, key})
				delete(m, key)
			}
		}
	}
	p.mu.Unlock()
	for _, g := range gone {
		p.s.host.Leave(context.Background(), g[0], g[1], p.logResult("leave", g[0], g[1]))
		p.s.remote.presenceChanged(g[0], g[1], false)
	}
}

// current returns the keys present in inst, sorted.
func (p *presence) current(inst string) []string {
	now := p.s.clk.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for key, r := range p.byInst[inst] {
		if r.present(now) {
			out = append(out, key)
		}
	}
	slices.Sort(out)
	return out
}

// connState is what the service keeps per WebSocket connection: the keys
// it proved (auth.Peer) and the worlds it follows.
type connState struct {
	peer *auth.Peer

	mu     sync.Mutex
	closed bool
	insts  map[string]bool    // worlds whose lum/<I>/hb the connection subscribed to
	joined map[[2]string]bool // (instance, key) pairs counted in presence
}

// follow records that the connection follows inst and counts its keys.
func (c *connState) follow(p *presence, inst string) {
	c.mu.Lock()
	if c.closed || c.insts[inst] {
		c.mu.Unlock()
		return
	}
	if c.insts == nil {
		c.insts = map[string]bool{}
	}
	c.insts[inst] = true
	c.mu.Unlock()
	c.sync(p)
}

// unfollow records that the connection no longer follows inst and
// uncounts its keys there.
func (c *connState) unfollow(p *presence, inst string) {
	var gone [][2]string
	c.mu.Lock()
	delete(c.insts, inst)
	for pair := range c.joined {
		if pair[0] == inst {
			gone = append(gone, pair)
			delete(c.joined, pair)
		}
	}
	c.mu.Unlock()
	for _, pair := range gone {
		p.disconnect(pair[0], pair[1])
	}
}

// sync counts every (followed instance, logged-in key) pair not counted yet.
func (c *connState) sync(p *presence) {
	keys := c.peer.Keys()
	var add [][2]string
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.joined == nil {
		c.joined = map[[2]string]bool{}
	}
	for inst := range c.insts {
		for _, k := range keys {
			pair := [2]string{inst, k.String()}
			if !c.joined[pair] {
				c.joined[pair] = true
				add = append(add, pair)
			}
		}
	}
	c.mu.Unlock()
	for _, pair := range add {
		p.connect(pair[0], pair[1])
	}
}

// close uncounts the connection.
func (c *connState) close(p *presence) {
	c.mu.Lock()
	c.closed = true
	pairs := c.joined
	c.joined = nil
	c.mu.Unlock()
	for pair := range pairs {
		p.disconnect(pair[0], pair[1])
	}
}
