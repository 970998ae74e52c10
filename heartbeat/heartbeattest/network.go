package heartbeattest

import (
	"container/heap"
	"math/rand/v2"
	"time"

	"github.com/krestianstvo/luminary/internal/clock"
)

// NetConfig sets the faults of a [Network].
type NetConfig struct {
	MinDelay, MaxDelay time.Duration // uniform one-way delay (reordering follows from it)
	Loss               float64       // probability a message is dropped
	Dup                float64       // probability a message is delivered twice
}

// Network is an in-memory network on a fake clock. Send schedules delivery
// after a random delay; Deliver hands every due message to its node's
// handler, in due order, on the caller's goroutine.
type Network struct {
	clk   *clock.Fake
	rnd   *rand.Rand
	cfg   NetConfig
	q     envHeap
	seq   uint64
	nodes map[string]func(from string, msg any)
	down  map[string]bool

	Sent, Dropped, Duplicated, Delivered int
}

type envelope struct {
	at       time.Time
	seq      uint64
	from, to string
	msg      any
}

// NewNetwork returns a network drawing faults from rnd.
func NewNetwork(clk *clock.Fake, rnd *rand.Rand, cfg NetConfig) *Network {
	return &Network{clk: clk, rnd: rnd, cfg: cfg, nodes: map[string]func(string, any){}, down: map[string]bool{}}
}

// Register attaches a node's message handler.
func (n *Network) Register(name string, h func(from string, msg any)) { n.nodes[name] = h }

// SetDown cuts a node off (true) or reconnects it; messages to or from a
// down node are dropped, including those already in flight.
func (n *Network) SetDown(name string, down bool) { n.down[name] = down }

// SetConfig changes the faults from now on.
func (n *Network) SetConfig(cfg NetConfig) { n.cfg = cfg }

// Send sends msg from one node to another.
func (n *Network) Send(from, to string, msg any) {
	n.Sent++
	if n.down[from] || n.down[to] || n.rnd.Float64() < n.cfg.Loss {
		n.Dropped++
		return
	}
	copies := 1
	if n.rnd.Float64() < n.cfg.Dup {
		copies, n.Duplicated = 2, n.Duplicated+1
	}
	for range copies {
		d := n.cfg.MinDelay
		if span := n.cfg.MaxDelay - n.cfg.MinDelay; span > 0 {
			d += time.Duration(n.rnd.Int64N(int64(span) + 1))
		}
		n.seq++
		heap.Push(&n.q, &envelope{at: n.clk.Now().Add(d), seq: n.seq, from: from, to: to, msg: msg})
	}
}

// Deliver delivers every message due by now. Handlers may send more.
func (n *Network) Deliver() {
	now := n.clk.Now()
	for len(n.q) > 0 && !n.q[0].at.After(now) {
		e := heap.Pop(&n.q).(*envelope)
		if n.down[e.from] || n.down[e.to] {
			n.Dropped++
			continue
		}
		if h := n.nodes[e.to]; h != nil {
			n.Delivered++
			h(e.from, e.msg)
		}
	}
}

// InFlight returns the number of undelivered messages.
func (n *Network) InFlight() int { return len(n.q) }

type envHeap []*envelope

func (h envHeap) Len() int { return len(h) }
func (h envHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h envHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *envHeap) Push(x any)   { *h = append(*h, x.(*envelope)) }
func (h *envHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
