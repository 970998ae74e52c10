package service

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/clock"
)

// rateWindow reports the events of the last two seconds per second, and
// forgets older ones however long it sat idle.
func TestRateWindow(t *testing.T) {
	var r rateWindow
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 200 { // 20 a second for 10 s
		r.add(t0.Add(time.Duration(i) * 50 * time.Millisecond))
	}
	now := t0.Add(10 * time.Second)
	if got := r.rate(now); got < 20 || got > 21 {
		t.Fatalf("rate after 20/s = %v, want 20–21", got)
	}
	if got := r.rate(now.Add(3 * time.Second)); got != 0 {
		t.Fatalf("rate 3 s after the last event = %v, want 0", got)
	}
	// A slot reused after a whole turn of the ring starts from zero.
	later := now.Add(time.Hour)
	for i := range 4000 { // 2,000 a second for 2 s
		r.add(later.Add(time.Duration(i) * 500 * time.Microsecond))
	}
	if got := r.rate(later.Add(2 * time.Second)); got < 1900 || got > 2000 {
		t.Fatalf("rate after 2,000/s = %v, want 1,900–2,000", got)
	}
}

// messageIn reuses the message Preverify rebuilt from the same fields, and
// rebuilds it when the fields differ.
func TestMessageInReusesPreverifyParse(t *testing.T) {
	s := &Service{}
	soul := "lum/x/in/y"
	fields := map[string]graph.Field{"author": {Value: graph.String("a"), State: 1}}
	cached := heartbeat.Message{Author: "from preverify"}
	ctx := context.WithValue(context.Background(), inboxParsesKey{}, inboxParses{soul: {fields: maps.Clone(fields), msg: cached}})
	if m, err := s.messageIn(ctx, soul, fields); err != nil || m.Author != "from preverify" {
		t.Fatalf("same fields: %+v, %v; want the cached message", m, err)
	}
	other := map[string]graph.Field{"author": {Value: graph.String("b"), State: 1}}
	if m, err := s.messageIn(ctx, soul, other); err == nil || m.Author == "from preverify" {
		t.Fatalf("other fields: %+v, %v; want a rebuild (which fails: the node is incomplete)", m, err)
	}
}

type fakeHeld struct {
	n        int
	released chan struct{}
	order    *[]int // appended to on Release, when set
	id       int
}

func (h *fakeHeld) Len() int { return h.n }
func (h *fakeHeld) Release() {
	if h.order != nil {
		*h.order = append(*h.order, h.id)
	}
	close(h.released)
}

func heldRound(n int, idle bool, stamp float64) (*round, *fakeHeld) {
	h := &fakeHeld{n: n, released: make(chan struct{})}
	return &round{held: h, idle: idle, stamp: stamp, done: make(chan struct{})}, h
}

// TestPublisherRelease: idle ticks held at publication are pushed at their
// stamp plus the playout delay; the next round being in the graph releases
// them at once (and is handed back, taken off the channel); a next round
// still on its way does not; a stamp already older than the delay, an
// empty hold, a round with entries or a stopping service wait for nothing.
func TestPublisherRelease(t *testing.T) {
	clk := clock.NewFake(time.UnixMilli(1_800_000_000_000))
	reg := prometheus.NewRegistry()
	p := newPublisher(&Service{clk: clk, cfg: Config{TickPlayout: 25 * time.Millisecond}, m: newMetrics(reg)}, 16, 3)
	start := func(r *round, ctx context.Context, rounds <-chan *round) chan *round {
		done := make(chan *round, 1)
		go func() { done <- p.release(ctx, r, rounds) }()
		return done
	}
	bg := context.Background()

	// Published 5 ms after its stamp: held 20 ms more.
	r, h := heldRound(2, true, float64(clk.Now().UnixMilli()-5))
	rounds := make(chan *round, 3)
	done := start(r, bg, rounds)
	clk.BlockUntil(1)
	next, _ := heldRound(2, true, float64(clk.Now().UnixMilli()+50))
	rounds <- next // on its way, not in the graph yet: no reason to hurry
	clk.Advance(19 * time.Millisecond)
	select {
	case <-h.released:
		t.Fatal("released 1 ms before stamp + playout")
	default:
	}
	clk.Advance(time.Millisecond)
	<-h.released
	if got := <-done; got != next {
		t.Fatalf("release returned %p, want the round it took off the channel (%p)", got, next)
	}

	// The next round is in the graph: this one goes at once.
	r, h = heldRound(2, true, float64(clk.Now().UnixMilli()))
	done = start(r, bg, rounds)
	clk.BlockUntil(1)
	next, _ = heldRound(2, true, float64(clk.Now().UnixMilli()+50))
	rounds <- next
	close(next.done)
	<-h.released
	if got := <-done; got != next {
		t.Fatalf("release returned %p, want the next round %p", got, next)
	}

	for _, c := range []struct {
		name  string
		n     int
		idle  bool
		ctx   func() context.Context
		stamp float64
	}{
		{"late", 2, true, context.Background, float64(clk.Now().UnixMilli() - 30)},
		{"empty", 0, true, context.Background, float64(clk.Now().UnixMilli())},
		{"entries", 2, false, context.Background, float64(clk.Now().UnixMilli())},
		{"stopping", 2, true, func() context.Context { ctx, cancel := context.WithCancel(bg); cancel(); return ctx }, float64(clk.Now().UnixMilli())},
	} {
		r, h := heldRound(c.n, c.idle, c.stamp)
		if got := <-start(r, c.ctx(), rounds); got != nil {
			t.Fatalf("%s: returned a next round", c.name)
		}
		select {
		case <-h.released:
		default:
			t.Fatalf("%s: not released at once", c.name)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := -1.0
	for _, mf := range mfs {
		if mf.GetName() == "luminary_tick_playout_late_total" {
			got = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if got != 1 {
		t.Fatalf("tick_playout_late_total = %v, want 1 (the late batch)", got)
	}
}

// TestPublisherPipeline: rounds answered by the graph are pushed in the
// order they were built, whatever order they were answered in would allow
// (here: the second is ready while the first waits for its playout), each
// frees its slot, and idle() reports the pipeline empty only after the
// last is pushed.
func TestPublisherPipeline(t *testing.T) {
	clk := clock.NewFake(time.UnixMilli(1_800_000_000_000))
	p := newPublisher(&Service{clk: clk, cfg: Config{TickPlayout: 25 * time.Millisecond}, m: newMetrics(prometheus.NewRegistry())}, 16, 3)
	rounds := make(chan *round, 3)
	var order []int
	var rs []*round
	now := float64(clk.Now().UnixMilli())
	for i, idle := range []bool{true, true, false} {
		r, h := heldRound(1, idle, now+float64(i))
		h.order, h.id = &order, i
		rs = append(rs, r)
		p.slots <- struct{}{}
		p.mu.Lock()
		p.inflight++
		p.mu.Unlock()
		rounds <- r
	}
	empty := p.idle()
	released := make(chan struct{})
	go func() { defer close(released); p.releaser(context.Background(), rounds) }()
	close(rs[0].done)
	clk.BlockUntil(1) // round 0 waits for its playout
	close(rs[1].done) // round 1 is ready: round 0 goes now
	clk.BlockUntil(1) // round 1 waits for its playout
	select {
	case <-empty:
		t.Fatal("idle before the rounds were pushed")
	default:
	}
	close(rs[2].done) // round 2 (entries) is ready: 1 goes, then 2
	<-empty
	close(rounds)
	<-released
	if len(order) != 3 || order[0] != 0 || order[1] != 1 || order[2] != 2 {
		t.Fatalf("pushed in order %v, want [0 1 2]", order)
	}
	if len(p.slots) != 0 {
		t.Fatalf("%d slots still taken", len(p.slots))
	}
}
