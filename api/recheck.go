package api

import (
	"context"
	"strings"

	"github.com/krestianstvo/luminary/graph"
)

// AccessWatcher is implemented by a [Guard] whose read decisions depend on
// graph data (a world turning private, a member removed). After every
// commit the server passes the accepted fields to AccessChanged, which
// returns the soul prefixes whose readers may have changed; the server then
// runs CheckGet again for every subscription under those prefixes and drops
// the ones now refused, so a connection that subscribed while it was
// allowed stops receiving pushes. AccessChanged runs on the store's
// notification path: it must be quick and must not read the store.
//
// The re-check runs on its own goroutine, after the commit that changed
// access: pushes of writes committed in the few milliseconds before it
// completes may still reach the old subscribers.
type AccessWatcher interface {
	AccessChanged(accepted graph.Graph) (prefixes []string)
}

// Unfollower is an optional interface of a [Guard]: the relay calls
// Unfollowed after it dropped p's subscription to soul because read access
// was withdrawn (see [AccessWatcher]), so that what the guard keeps per
// subscription is let go (the time service counts the keys of a
// connection that follows a world as present in it).
type Unfollower interface {
	Unfollowed(p *PeerInfo, soul string)
}

// watchAccess is called with every commit's accepted fields.
func (s *Server) watchAccess(accepted graph.Graph) {
	w, ok := s.guard.(AccessWatcher)
	if !ok {
		return
	}
	prefixes := w.AccessChanged(accepted)
	if len(prefixes) == 0 {
		return
	}
	select {
	case s.recheckQ <- prefixes:
	default:
		// The queue is full: re-check everything the queued prefixes do
		// not cover at the next turn rather than blocking the store.
		s.recheckAll.Store(true)
	}
}

// rechecker drains recheckQ until ctx ends.
func (s *Server) rechecker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case prefixes := <-s.recheckQ:
			if s.recheckAll.Swap(false) {
				prefixes = []string{""}
			}
			s.Recheck(ctx, prefixes...)
		}
	}
}

// Recheck runs the guard's CheckGet again for every subscription to a soul
// that starts with one of prefixes (every subscription for ""), and drops
// the refused ones. It returns how many it dropped.
func (s *Server) Recheck(ctx context.Context, prefixes ...string) int {
	type sub struct {
		c    *conn
		soul string
	}
	var subs []sub
	s.subs.mu.RLock()
	for soul, conns := range s.subs.bySoul {
		if !hasAnyPrefix(soul, prefixes) {
			continue
		}
		for c := range conns {
			subs = append(subs, sub{c, soul})
		}
	}
	s.subs.mu.RUnlock()
	dropped := 0
	for _, x := range subs {
		err := s.guard.CheckGet(ctx, x.c.info, x.soul)
		if err == nil {
			continue
		}
		if s.subs.remove(x.c, x.soul) {
			dropped++
			s.m.subsRevoked.Inc()
			s.log.Info("subscription dropped: read access withdrawn", "soul", x.soul, "peer", x.c.info.RemoteAddr, "reason", err.Error())
			if u, ok := s.guard.(Unfollower); ok {
				u.Unfollowed(x.c.info, x.soul)
			}
		}
	}
	return dropped
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// remove drops c's subscription to soul (whole or by field). It reports
// whether there was one.
func (x *subIndex) remove(c *conn, soul string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	sub := c.subs[soul]
	if sub == nil {
		return false
	}
	x.count -= sub.weight()
	c.subN -= sub.weight()
	delete(c.subs, soul)
	if m := x.bySoul[soul]; m != nil {
		delete(m, c)
		if len(m) == 0 {
			delete(x.bySoul, soul)
		}
	}
	x.m.subscriptions.Set(float64(x.count))
	return true
}
