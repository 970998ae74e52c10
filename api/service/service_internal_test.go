package service

import (
	"context"
	"fmt"
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

// releaserRun drives a publisher's releaser as submit would.
type releaserRun struct {
	p      *publisher
	rounds chan *round
	exited chan struct{}
}

func startReleaser(p *publisher, ctx context.Context) *releaserRun {
	r := &releaserRun{p: p, rounds: make(chan *round, 16), exited: make(chan struct{})}
	go func() { defer close(r.exited); p.releaser(ctx, r.rounds) }()
	return r
}

// submit hands r over as built (it is in the graph once r.done closes).
func (rr *releaserRun) submit(r *round) {
	rr.p.slots <- struct{}{}
	rr.p.mu.Lock()
	rr.p.inflight++
	rr.p.mu.Unlock()
	rr.rounds <- r
}

func released(h *fakeHeld) bool {
	select {
	case <-h.released:
		return true
	default:
		return false
	}
}

// TestPublisherRelease: a round of idle ticks is pushed at its stamp plus
// the playout delay, not before, whatever follows it into the graph; a
// round with entries goes at once, after the held rounds before it; a
// stamp already older than the delay (counted late) or an empty hold
// waits for nothing; once the service stops nothing waits.
func TestPublisherRelease(t *testing.T) {
	clk := clock.NewFake(time.UnixMilli(1_800_000_000_000))
	reg := prometheus.NewRegistry()
	p := newPublisher(&Service{clk: clk, cfg: Config{TickPlayout: 25 * time.Millisecond}, m: newMetrics(reg)}, 16, 3)
	ctx, cancel := context.WithCancel(context.Background())
	rr := startReleaser(p, ctx)
	now := func() float64 { return float64(clk.Now().UnixMilli()) }

	// Published 5 ms after its stamp: held 20 ms more, even though the
	// next round is in the graph meanwhile (it waits for its own time).
	r0, h0 := heldRound(2, true, now()-5)
	r1, h1 := heldRound(2, true, now()+10)
	rr.submit(r0)
	rr.submit(r1)
	close(r0.done)
	clk.BlockUntil(1)
	close(r1.done)
	clk.Advance(19 * time.Millisecond)
	if released(h0) {
		t.Fatal("released 1 ms before stamp + playout")
	}
	clk.Advance(time.Millisecond)
	<-h0.released
	if released(h1) {
		t.Fatal("the next round left with the first, before its own time")
	}
	clk.BlockUntil(1)
	clk.Advance(15 * time.Millisecond) // r1: stamp +10, +25
	<-h1.released

	// A round with entries goes at once, after the held round before it.
	var order []int
	r2, h2 := heldRound(2, true, now())
	r3, h3 := heldRound(2, false, now()+1)
	h2.order, h2.id, h3.order, h3.id = &order, 2, &order, 3
	rr.submit(r2)
	rr.submit(r3)
	close(r2.done)
	clk.BlockUntil(1)
	close(r3.done)
	<-h3.released
	if len(order) != 2 || order[0] != 2 || order[1] != 3 {
		t.Fatalf("pushed %v, want [2 3]", order)
	}

	for _, c := range []struct {
		name  string
		n     int
		stamp float64
	}{
		{"late", 2, now() - 30},
		{"empty", 0, now()},
	} {
		r, h := heldRound(c.n, true, c.stamp)
		rr.submit(r)
		close(r.done)
		<-h.released // with no clock movement
	}

	// Stopping: a held round goes at once, and so does one still being
	// merged when it lands.
	r4, h4 := heldRound(2, true, now())
	r5, h5 := heldRound(2, true, now()+1)
	rr.submit(r4)
	rr.submit(r5)
	close(r4.done)
	clk.BlockUntil(1)
	cancel()
	<-h4.released
	close(r5.done)
	<-h5.released
	<-p.idle()
	close(rr.rounds)
	<-rr.exited
	if len(p.slots) != 0 {
		t.Fatalf("%d slots still taken", len(p.slots))
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

// handedPresence allows a remote term to log exactly what it was handed:
// joins of keys handed as joining or present in a full set, leaves of keys
// handed as leaving or absent from a full set; an accepted entry uses up
// its event; only the last few full sets count.
func TestHandedPresence(t *testing.T) {
	const maxEvents = 100
	hp := newHandedPresence(maxEvents)
	join, leave := heartbeat.KindJoin, heartbeat.KindLeave
	if hp.allows(join, "a") || hp.allows(leave, "a") {
		t.Fatal("allowed before anything was handed")
	}
	hp.set([]string{"a", "b"})
	for _, c := range []struct {
		kind heartbeat.Kind
		key  string
		want bool
	}{{join, "a", true}, {join, "b", true}, {join, "c", false}, {leave, "c", true}, {leave, "a", false}} {
		if got := hp.allows(c.kind, c.key); got != c.want {
			t.Errorf("after the set {a b}: %v %s allowed = %v, want %v", c.kind, c.key, got, c.want)
		}
	}
	hp.event("c", true)  // c joined
	hp.event("a", false) // a left
	if !hp.allows(join, "c") || !hp.allows(leave, "a") {
		t.Fatal("handed events not allowed")
	}
	hp.used(join, "c")
	if !hp.allows(leave, "c") || hp.allows(join, "d") {
		t.Fatal("c may still leave (absent from the set); d was never handed")
	}
	hp.used(leave, "a")
	if hp.allows(leave, "a") {
		t.Fatal("a's leave allowed after its event was used and with a in the set")
	}
	for i := range maxHandedSets {
		hp.set([]string{fmt.Sprint("x", i)})
	}
	if hp.allows(join, "a") || !hp.allows(leave, "a") || !hp.allows(join, "x0") {
		t.Fatal("the oldest set still counts, or the newer ones do not")
	}
	hp.joins = map[string]bool{}
	for i := range maxEvents {
		hp.joins[fmt.Sprint("k", i)] = true
	}
	if hp.event("one-more", true) || !hp.event("k0", true) {
		t.Fatal("the event bound: a new key must be refused, a recorded one kept")
	}
}

// TestPlayoutAdapts: the playout delay of idle rounds rises, when a round
// is late, at once to the 99th percentile of recent publishing times plus a
// margin (at most its bound), comes down a millisecond a round once rounds are faster (never
// below its least), lets fewer than 1 % slow rounds go late without a
// rise, and stays fixed when the bound is not above the least.
func TestPlayoutAdapts(t *testing.T) {
	ms := time.Millisecond
	fixed := newPlayout(25*ms, 10*ms)
	if d := fixed.observe(150 * ms); d != 25*ms {
		t.Fatalf("fixed playout moved to %v", d)
	}
	b := newPlayout(25*ms, 200*ms)
	if d := b.observe(5 * ms); d != 25*ms {
		t.Fatalf("fast round: %v, want the least, 25ms", d)
	}
	// On time, if with less than the margin to spare: no rise.
	if d := b.observe(20 * ms); d != 25*ms {
		t.Fatalf("round on time: %v, want 25ms", d)
	}
	if d := b.observe(80 * ms); d != 80*ms+playoutMargin {
		t.Fatalf("slow round: %v, want 80ms + margin", d)
	}
	if d := b.observe(500 * ms); d != 200*ms {
		t.Fatalf("very slow round: %v, want the bound, 200ms", d)
	}
	// Under 100 rounds seen, the percentile is the longest: no decay.
	for n := 5; n < 100; n++ {
		if d := b.observe(5 * ms); d != 200*ms {
			t.Fatalf("round %d: %v, want 200ms", n, d)
		}
	}
	// From 100 rounds on, one round in a hundred may be slower: the
	// target is 80 + margin, and the delay comes down a step a round.
	if d := b.observe(5 * ms); d != 200*ms-playoutDecay {
		t.Fatalf("round 100: %v, want %v", d, 200*ms-playoutDecay)
	}
	for range 2 * playoutWindow {
		b.observe(5 * ms)
	}
	if d := b.observe(5 * ms); d != 25*ms {
		t.Fatalf("long after: %v, want the least, 25ms", d)
	}
	// A full window of fast rounds: 1 % of it slow goes late without a
	// rise; one more slow round raises the delay.
	for i := range playoutWindow / 100 {
		if d := b.observe(150 * ms); d != 25*ms {
			t.Fatalf("slow round %d of a full window: %v, want 25ms", i, d)
		}
	}
	if d := b.observe(150 * ms); d != 150*ms+playoutMargin {
		t.Fatalf("slow round beyond 1 %%: %v, want 160ms", d)
	}
}

// TestPublisherPlayoutRises: with room to adapt, a round that took longer
// to publish than the least delay is held at its stamp plus its publishing
// time plus the margin (not counted late), and the rounds after it leave
// at about the same offset from their stamps.
func TestPublisherPlayoutRises(t *testing.T) {
	clk := clock.NewFake(time.UnixMilli(1_800_000_000_000))
	reg := prometheus.NewRegistry()
	p := newPublisher(&Service{clk: clk, cfg: Config{TickPlayout: 25 * time.Millisecond, MaxTickPlayout: 200 * time.Millisecond},
		m: newMetrics(reg)}, 16, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rr := startReleaser(p, ctx)
	now := func() float64 { return float64(clk.Now().UnixMilli()) }

	r0, h0 := heldRound(2, true, now()-60) // published 60 ms after its stamp
	rr.submit(r0)
	close(r0.done)
	clk.BlockUntil(1)
	clk.Advance(playoutMargin - time.Millisecond)
	if released(h0) {
		t.Fatal("released before stamp + publishing time + margin")
	}
	clk.Advance(time.Millisecond)
	<-h0.released
	// The next round is fast, but leaves at the same offset, 70 ms after
	// its stamp: the slow round is still in the window.
	r1, h1 := heldRound(2, true, now()-5)
	rr.submit(r1)
	close(r1.done)
	clk.BlockUntil(1)
	clk.Advance(64 * time.Millisecond)
	if released(h1) {
		t.Fatal("the next round left before its raised offset")
	}
	clk.Advance(time.Millisecond)
	<-h1.released
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "luminary_tick_playout_late_total":
			if v := mf.GetMetric()[0].GetCounter().GetValue(); v != 0 {
				t.Fatalf("late = %v, want 0", v)
			}
		case "luminary_tick_playout_seconds":
			if v := mf.GetMetric()[0].GetGauge().GetValue(); v != 0.07 {
				t.Fatalf("playout gauge = %v, want 0.07", v)
			}
		}
	}
}
