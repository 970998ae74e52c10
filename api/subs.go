package api

import (
	"cmp"
	"errors"
	"slices"
	"sync"

	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/sched"
)

// errTooManySubs is the reason sent when a get would exceed
// Limits.MaxSubscriptions.
var errTooManySubs = errors.New("blocked: too many subscriptions")

// subscription is what one connection asked for on one soul: the whole
// node, or some fields.
type subscription struct {
	whole  bool
	fields map[string]struct{}
}

// subIndex maps souls to the connections subscribed to them. Gun has no
// unsubscribe message: a subscription lasts as long as its connection.
type subIndex struct {
	mu     sync.RWMutex
	bySoul map[string]map[*conn]*subscription
	count  int // subscriptions held by all connections
	m      *metrics
}

func newSubIndex(m *metrics) *subIndex {
	return &subIndex{bySoul: make(map[string]map[*conn]*subscription), m: m}
}

// add records that c subscribes to soul (one field if hasField). It
// reports whether the soul is new for c. Each soul subscribed whole and
// each field subscribed alone counts towards max.
func (x *subIndex) add(c *conn, soul, field string, hasField bool, max int) (bool, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if c.subs == nil {
		c.subs = make(map[string]*subscription)
	}
	sub := c.subs[soul]
	if sub != nil && (sub.whole || (hasField && hasKey(sub.fields, field))) {
		return false, nil
	}
	if c.subN >= max && !(sub != nil && !hasField) {
		return false, errTooManySubs
	}
	isNew := sub == nil
	if isNew {
		sub = &subscription{}
		c.subs[soul] = sub
		m := x.bySoul[soul]
		if m == nil {
			m = make(map[*conn]*subscription)
			x.bySoul[soul] = m
		}
		m[c] = sub
	}
	before := sub.weight()
	if hasField {
		if sub.fields == nil {
			sub.fields = make(map[string]struct{})
		}
		sub.fields[field] = struct{}{}
	} else {
		sub.whole, sub.fields = true, nil
	}
	x.count += sub.weight() - before
	c.subN += sub.weight() - before
	x.m.subscriptions.Set(float64(x.count))
	return isNew, nil
}

func hasKey(m map[string]struct{}, k string) bool { _, ok := m[k]; return ok }

// weight is how many subscriptions sub counts for.
func (s *subscription) weight() int {
	if s.whole {
		return 1
	}
	return len(s.fields)
}

// removeConn drops every subscription of c.
func (x *subIndex) removeConn(c *conn) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for soul, sub := range c.subs {
		x.count -= sub.weight()
		if m := x.bySoul[soul]; m != nil {
			delete(m, c)
			if len(m) == 0 {
				delete(x.bySoul, soul)
			}
		}
	}
	c.subs, c.subN = nil, 0
	x.m.subscriptions.Set(float64(x.count))
}

// souls returns every soul some connection subscribes to (whole or by
// field), with the fields when no connection wants the whole node.
func (x *subIndex) souls() []soulWant {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]soulWant, 0, len(x.bySoul))
	for soul, m := range x.bySoul {
		w := soulWant{soul: soul}
		for c, sub := range m {
			if c.link != nil {
				continue // a peer link's own interest is not ours to forward
			}
			if sub.whole {
				w.whole, w.fields = true, nil
				break
			}
			for f := range sub.fields {
				w.fields = append(w.fields, f)
			}
		}
		if w.whole || len(w.fields) > 0 {
			out = append(out, w)
		}
	}
	return out
}

type soulWant struct {
	soul   string
	whole  bool
	fields []string
}

// recipient is one connection a broadcast goes to: part is nil when it gets
// every accepted field, else the fields it asked for.
type recipient struct {
	c    *conn
	part graph.Graph
}

// recipients returns the connections subscribed to any accepted field,
// except those skip rejects, in the order the connections were made. The
// lock is held only while the list is made; nothing is written to sockets
// under it.
//
// The order is the same for every broadcast (not the order of a map
// iteration): a relay pushes a round of ticks to its follower connections
// one after another, and a connection served first in one round and last
// in the next sees a gap longer than the cadence by the time the round
// takes to go out (milliseconds for thousands of worlds).
func (x *subIndex) recipients(accepted graph.Graph, skip func(*conn) bool) []recipient {
	out := x.unordered(accepted, skip)
	slices.SortFunc(out, func(a, b recipient) int { return cmp.Compare(a.c.serial, b.c.serial) })
	return out
}

// unordered is recipients in no particular order.
func (x *subIndex) unordered(accepted graph.Graph, skip func(*conn) bool) []recipient {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if len(accepted) == 1 {
		// Fast path: one soul (nearly every put).
		for soul, node := range accepted {
			m := x.bySoul[soul]
			if len(m) == 0 {
				return nil
			}
			out := make([]recipient, 0, len(m))
			for c, sub := range m {
				if skip(c) {
					continue
				}
				if sub.whole {
					out = append(out, recipient{c: c})
					continue
				}
				if part := pick(node, sub.fields); part != nil {
					if len(part.Fields) == len(node.Fields) {
						out = append(out, recipient{c: c})
					} else {
						out = append(out, recipient{c: c, part: graph.Graph{soul: part}})
					}
				}
			}
			return out
		}
	}
	parts := make(map[*conn]graph.Graph)
	i := 0
	for soul, node := range accepted {
		sched.Yield(i) // a round of thousands of worlds (see internal/sched); readers only wait
		i++
		for c, sub := range x.bySoul[soul] {
			if skip(c) {
				continue
			}
			n := node
			if !sub.whole {
				if n = pick(node, sub.fields); n == nil {
					continue
				}
			}
			g := parts[c]
			if g == nil {
				g = make(graph.Graph)
				parts[c] = g
			}
			g[soul] = n
		}
	}
	out := make([]recipient, 0, len(parts))
	for c, g := range parts {
		full := len(g) == len(accepted)
		for soul, n := range g {
			if full && len(n.Fields) != len(accepted[soul].Fields) {
				full = false
			}
		}
		if full {
			out = append(out, recipient{c: c})
		} else {
			out = append(out, recipient{c: c, part: g})
		}
	}
	return out
}

// pick returns the fields of n named in want, or nil if none.
func pick(n *graph.Node, want map[string]struct{}) *graph.Node {
	var out *graph.Node
	for f := range want {
		if v, ok := n.Fields[f]; ok {
			if out == nil {
				out = &graph.Node{Soul: n.Soul, Fields: make(map[string]graph.Field, len(want))}
			}
			out.Fields[f] = v
		}
	}
	return out
}
