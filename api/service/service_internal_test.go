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
}

func (h *fakeHeld) Len() int { return h.n }
func (h *fakeHeld) Release() { close(h.released) }

// TestPublisherRelease: idle ticks held at publication are pushed at their
// stamp plus the playout delay; a publication queued meanwhile releases
// them at once (and its wake-up is handed back to run); a stamp already
// older than the delay, an empty hold or a stopping service wait for
// nothing.
func TestPublisherRelease(t *testing.T) {
	clk := clock.NewFake(time.UnixMilli(1_800_000_000_000))
	reg := prometheus.NewRegistry()
	p := newPublisher(&Service{clk: clk, cfg: Config{TickPlayout: 25 * time.Millisecond}, m: newMetrics(reg)}, 16)
	stamp := float64(clk.Now().UnixMilli() - 5) // published 5 ms after its stamp
	start := func(h *fakeHeld, ctx context.Context, stamp float64) chan struct{} {
		done := make(chan struct{})
		go func() { defer close(done); p.release(ctx, h, stamp) }()
		return done
	}
	bg := context.Background()

	h := &fakeHeld{n: 2, released: make(chan struct{})}
	done := start(h, bg, stamp)
	clk.BlockUntil(1)
	clk.Advance(19 * time.Millisecond)
	select {
	case <-h.released:
		t.Fatal("released 1 ms before stamp + playout")
	default:
	}
	clk.Advance(time.Millisecond)
	<-h.released
	<-done

	h = &fakeHeld{n: 2, released: make(chan struct{})}
	done = start(h, bg, float64(clk.Now().UnixMilli()))
	clk.BlockUntil(1)
	p.wake <- struct{}{} // a publication was queued
	<-h.released
	<-done
	select {
	case <-p.wake:
	default:
		t.Fatal("the wake-up was not handed back to run")
	}

	for _, c := range []struct {
		name  string
		n     int
		ctx   func() context.Context
		stamp float64
	}{
		{"late", 2, context.Background, float64(clk.Now().UnixMilli() - 30)},
		{"empty", 0, context.Background, float64(clk.Now().UnixMilli())},
		{"stopping", 2, func() context.Context { ctx, cancel := context.WithCancel(bg); cancel(); return ctx }, float64(clk.Now().UnixMilli())},
	} {
		h := &fakeHeld{n: c.n, released: make(chan struct{})}
		<-start(h, c.ctx(), c.stamp)
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
