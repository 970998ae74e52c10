package heartbeat_test

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/heartbeat/heartbeattest"
	"github.com/krestianstvo/luminary/internal/clock"
)

// rig is one host on a fake clock, stepped by hand.
type rig struct {
	t     *testing.T
	fake  *clock.Fake
	clk   *heartbeattest.SkewClock
	start time.Time
	log   heartbeat.Log
	blobs heartbeat.Blobs
	lease heartbeat.Lease
	host  *heartbeat.Host
	inst  string
	mu    sync.Mutex
	pubs  []heartbeat.Publication
}

func newRig(t *testing.T, log heartbeat.Log, mod func(*heartbeat.HostConfig)) *rig {
	t.Helper()
	fake := clock.NewFake(heartbeattest.Epoch)
	r := &rig{t: t, fake: fake, clk: heartbeattest.NewSkewClock(fake, 0), start: fake.Now(), log: log, inst: heartbeattest.Key(1).Public().String()}
	if log == nil {
		ml := heartbeat.NewMemLog()
		r.log, r.blobs = ml, ml
	}
	r.lease = heartbeat.NewMemLease(fake)
	cfg := heartbeat.HostConfig{Signer: heartbeattest.Signer(1), Log: r.log, Lease: r.lease, Blobs: r.blobs, Clock: r.clk,
		Elapsed: func() time.Duration { return fake.Now().Sub(r.start) },
		Sink: heartbeat.SinkFunc(func(p heartbeat.Publication) {
			r.mu.Lock()
			r.pubs = append(r.pubs, p)
			r.mu.Unlock()
		})}
	if mod != nil {
		mod(&cfg)
	}
	h, err := heartbeat.NewHost(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Add(heartbeat.InstanceConfig{Instance: r.inst, Name: "rig"}); err != nil {
		t.Fatal(err)
	}
	r.host = h
	r.run(time.Millisecond)
	return r
}

func (r *rig) run(d time.Duration) {
	r.t.Helper()
	for end := r.fake.Now().Add(d); r.fake.Now().Before(end); {
		if _, err := r.host.Step(ctx); err != nil {
			r.t.Fatal(err)
		}
		r.fake.Advance(time.Millisecond)
	}
	if _, err := r.host.Step(ctx); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) msg(author uint64, ts time.Time, nonce string) heartbeat.Message {
	m := heartbeat.Message{Instance: r.inst, TS: ts.UnixMilli(), Nonce: nonce, Payload: `{"n":"` + nonce + `"}`}
	if err := m.Sign(heartbeattest.Signer(author)); err != nil {
		r.t.Fatal(err)
	}
	return m
}

type outcome struct {
	r   heartbeat.Receipt
	err error
	n   int
}

func (r *rig) submit(m heartbeat.Message) *outcome {
	o := &outcome{}
	r.host.Submit(ctx, m, func(rc heartbeat.Receipt, err error) { o.r, o.err = rc, err; o.n++ })
	return o
}

func (r *rig) ticks() []heartbeat.Tick {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []heartbeat.Tick
	for _, p := range r.pubs {
		out = append(out, p.Tick)
	}
	return out
}

// Table A row 24 and table B row 13: client timestamps are checked against
// the host clock window (-120 s / +30 s); clients skewed by ±5 min are refused
// with the reason, those inside are accepted, and a client's clock never
// decides the state (no future-state poisoning).
func TestSubmitTimestampWindow(t *testing.T) {
	r := newRig(t, nil, nil)
	now := r.clk.Now()
	cases := []struct {
		skew time.Duration
		ok   bool
	}{{0, true}, {-119 * time.Second, true}, {29 * time.Second, true}, {-121 * time.Second, false}, {31 * time.Second, false}, {-5 * time.Minute, false}, {5 * time.Minute, false}}
	var outs []*outcome
	for i, c := range cases {
		outs = append(outs, r.submit(r.msg(2, now.Add(c.skew), string(rune('a'+i)))))
	}
	r.run(5 * time.Millisecond)
	for i, c := range cases {
		o := outs[i]
		if o.n != 1 {
			t.Fatalf("skew %v: done called %d times", c.skew, o.n)
		}
		if c.ok != (o.err == nil) {
			t.Fatalf("skew %v: %v", c.skew, o.err)
		}
		if !c.ok && heartbeat.Reason(o.err) != "invalid: timestamp out of window" {
			t.Fatalf("skew %v: reason %q", c.skew, heartbeat.Reason(o.err))
		}
		if c.ok {
			if st := o.r.State; st < float64(now.UnixMilli()) || st > float64(now.Add(10*time.Millisecond).UnixMilli()) {
				t.Fatalf("skew %v: state %v follows the client, not the host", c.skew, st)
			}
		}
	}
}

// Table A row 15: the exact replay of an accepted message is acknowledged as
// a duplicate with the original seq, is not stored twice and not re-published
// — in flight, once durable, and after a restart (bbolt msgid index).
func TestSubmitDuplicatesIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dup.db")
	bl, err := heartbeat.OpenBolt(path, heartbeat.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, bl, nil)
	m := r.msg(2, r.clk.Now(), "once")
	a, b := r.submit(m), r.submit(m) // the second is in flight with the first
	r.run(2 * time.Millisecond)
	if a.err != nil || b.err != nil || a.r.Seq != b.r.Seq || a.r.Seq == 0 {
		t.Fatalf("in flight: %+v %v / %+v %v", a.r, a.err, b.r, b.err)
	}
	c := r.submit(m)
	if !errors.Is(c.err, heartbeat.ErrDuplicate) || c.r.Seq != a.r.Seq || heartbeat.Reason(c.err) != "duplicate: already sequenced" {
		t.Fatalf("durable duplicate: %+v %v", c.r, c.err)
	}
	// A second valid signature over the same bytes is the same message.
	m2 := m
	m2.Sig = nil
	if err := m2.Sign(heartbeattest.Signer(2)); err != nil {
		t.Fatal(err)
	}
	if d := r.submit(m2); !errors.Is(d.err, heartbeat.ErrDuplicate) {
		t.Fatalf("re-signed duplicate: %v", d.err)
	}
	if err := r.host.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	bl.Close()
	bl, err = heartbeat.OpenBolt(path, heartbeat.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer bl.Close()
	r2 := newRig(t, bl, nil)
	r2.run(time.Millisecond)
	if e := r2.submit(m); !errors.Is(e.err, heartbeat.ErrDuplicate) || e.r.Seq != a.r.Seq {
		t.Fatalf("after restart: %+v %v", e.r, e.err)
	}
	st, _ := bl.State(ctx, r.inst)
	pg, _ := bl.Read(ctx, r.inst, 1, 100)
	n := 0
	for _, e := range pg.Entries {
		if e.Kind == heartbeat.KindMessage {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d copies stored (head %d)", n, st.Head.Seq)
	}
}

func TestSubmitRefusals(t *testing.T) {
	r := newRig(t, nil, func(c *heartbeat.HostConfig) {
		c.MaxQueue = 2
		c.MaxPayload = 64
		c.Authorizer = heartbeat.AuthorizerFunc(func(_ context.Context, inst, key string, role heartbeat.Role, _ time.Time) error {
			if role == heartbeat.RoleMessage && key == heartbeattest.Signer(13).Public() {
				return errors.New("no message certificate")
			}
			return heartbeat.OwnerTicks.Authorize(ctx, inst, key, role, time.Time{})
		})
	})
	now := r.clk.Now()
	bad := r.msg(2, now, "sig")
	bad.Sig[3] ^= 1
	big := r.msg(2, now, "big")
	big.Payload = string(make([]byte, 65))
	if err := big.Sign(heartbeattest.Signer(2)); err != nil {
		t.Fatal(err)
	}
	other := r.msg(2, now, "other")
	other.Instance = heartbeattest.Key(77).Public().String()
	if err := other.Sign(heartbeattest.Signer(2)); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		m    heartbeat.Message
		want error
	}{
		"bad signature":    {bad, heartbeat.ErrBadSignature},
		"too large":        {big, heartbeat.ErrTooLarge},
		"other instance":   {other, heartbeat.ErrNotSequencer},
		"no message role":  {r.msg(13, now, "x"), heartbeat.ErrNotAuthorised},
		"malformed author": {heartbeat.Message{Instance: r.inst, Author: "~bad", TS: now.UnixMilli(), Sig: make([]byte, 64)}, heartbeat.ErrMalformed},
	} {
		if o := r.submit(c.m); !errors.Is(o.err, c.want) {
			t.Errorf("%s: %v, want %v", name, o.err, c.want)
		}
	}
	r.submit(r.msg(2, now, "q1"))
	r.submit(r.msg(2, now, "q2"))
	if o := r.submit(r.msg(2, now, "q3")); !errors.Is(o.err, heartbeat.ErrQueueFull) || heartbeat.Reason(o.err) != "rate-limited: sequencer queue full" {
		t.Fatalf("queue full: %v", o.err)
	}
}

func TestPresenceEmittedOnce(t *testing.T) {
	r := newRig(t, nil, nil)
	a, b := heartbeattest.Signer(20).Public(), heartbeattest.Signer(21).Public()
	var errs []error
	done := func(_ heartbeat.Receipt, err error) { errs = append(errs, err) }
	r.host.Join(ctx, r.inst, a, `{"name":"a"}`, done)
	r.host.Join(ctx, r.inst, a, "", done) // same key again: no second entry
	r.host.Join(ctx, r.inst, b, "", done)
	r.run(2 * time.Millisecond)
	r.host.Leave(ctx, r.inst, a, done)
	r.host.Leave(ctx, r.inst, a, done)
	r.run(2 * time.Millisecond)
	r.host.SyncPresence(ctx, r.inst, []string{a}, done) // b gone, a back
	r.run(2 * time.Millisecond)
	st, _ := r.log.State(ctx, r.inst)
	if len(st.Presence) != 1 || st.Presence[0] != a {
		t.Fatalf("presence %v", st.Presence)
	}
	pg, _ := r.log.Read(ctx, r.inst, 1, 100)
	var kinds []heartbeat.Kind
	for _, e := range pg.Entries[1:] {
		kinds = append(kinds, e.Kind)
	}
	want := []heartbeat.Kind{heartbeat.KindJoin, heartbeat.KindJoin, heartbeat.KindLeave, heartbeat.KindLeave, heartbeat.KindJoin}
	if len(kinds) != len(want) {
		t.Fatalf("entries %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("entries %v, want %v", kinds, want)
		}
	}
	dups := 0
	for _, err := range errs {
		if errors.Is(err, heartbeat.ErrDuplicate) {
			dups++
		}
	}
	if dups != 2 {
		t.Fatalf("%d duplicate presence changes reported, want 2: %v", dups, errs)
	}
}

func TestSnapshotVotesNeedQuorum(t *testing.T) {
	r := newRig(t, nil, nil)
	voters := []heartbeat.Signer{heartbeattest.Signer(30), heartbeattest.Signer(31), heartbeattest.Signer(32)}
	for _, v := range voters {
		r.host.Join(ctx, r.inst, v.Public(), "", nil)
	}
	r.run(2 * time.Millisecond)
	good, evil := []byte("state at 3"), []byte("forged state")
	vote := func(s heartbeat.Signer, seq uint64, data []byte) error {
		v := heartbeat.SnapshotVote{Instance: r.inst, Seq: seq, Hash: heartbeat.SHA256(data)}
		if err := v.Sign(s); err != nil {
			t.Fatal(err)
		}
		var got error
		r.host.Vote(ctx, v, data, func(_ heartbeat.Receipt, err error) { got = err })
		r.run(2 * time.Millisecond)
		return got
	}
	if err := vote(voters[0], 3, good); err != nil {
		t.Fatal(err)
	}
	if err := vote(voters[1], 3, evil); err != nil {
		t.Fatal(err)
	}
	if st, _ := r.log.State(ctx, r.inst); st.Snapshot != nil {
		t.Fatal("accepted with two different hashes")
	}
	if err := vote(voters[2], 3, good); err != nil {
		t.Fatal(err)
	}
	st, _ := r.log.State(ctx, r.inst)
	if st.Snapshot == nil || st.Snapshot.Seq != 3 || st.Snapshot.Hash != heartbeat.SHA256(good) {
		t.Fatalf("snapshot %+v", st.Snapshot)
	}
	// Data that does not hash to the vote, a vote beyond the head, and a stale vote are refused.
	v := heartbeat.SnapshotVote{Instance: r.inst, Seq: 4, Hash: heartbeat.SHA256(good)}
	_ = v.Sign(voters[0])
	var got error
	r.host.Vote(ctx, v, evil, func(_ heartbeat.Receipt, err error) { got = err })
	if !errors.Is(got, heartbeat.ErrSnapshotMismatch) {
		t.Fatalf("mismatched data: %v", got)
	}
	if err := vote(voters[0], 1000, good); !errors.Is(err, heartbeat.ErrOrder) {
		t.Fatalf("future seq: %v", err)
	}
	if err := vote(voters[0], 2, good); !errors.Is(err, heartbeat.ErrDuplicate) {
		t.Fatalf("stale seq: %v", err)
	}
}

// Table B row 12: the wall clock jumps ±1 h mid-run. Tick cadence and
// Croquet time are unaffected (monotonic): every cadence tick advances the
// state by exactly one period and time strictly increases.
func TestWallClockJumps(t *testing.T) {
	r := newRig(t, nil, nil)
	r.run(500 * time.Millisecond)
	r.clk.SetOffset(time.Hour)
	r.run(500 * time.Millisecond)
	r.clk.SetOffset(-time.Hour)
	r.run(500 * time.Millisecond)
	ticks := r.ticks()
	if len(ticks) < 29 {
		t.Fatalf("%d ticks in 1.5 s", len(ticks))
	}
	for i := 1; i < len(ticks); i++ {
		d := ticks[i].State - ticks[i-1].State
		if math.Abs(d-50) > 0.001 {
			t.Fatalf("tick %d: state advanced %v ms, want 50", i, d)
		}
		if !(ticks[i].Time() > ticks[i-1].Time()) {
			t.Fatalf("time not increasing at tick %d", i)
		}
	}
	// A message admitted after the jump is checked against the new wall time
	// (documented): a client still on the old time is outside the window.
	if o := r.submit(r.msg(2, r.fake.Now(), "old-clock")); !errors.Is(o.err, heartbeat.ErrTimestampWindow) {
		t.Fatalf("client on the pre-jump clock: %v", o.err)
	}
}

// The Run loop on a fake clock: ticks at the cadence, acks, graceful
// shutdown that releases the lease.
func TestRunLoop(t *testing.T) {
	fake := clock.NewFake(heartbeattest.Epoch)
	log := heartbeat.NewMemLog()
	lease := heartbeat.NewMemLease(fake)
	ticks := make(chan heartbeat.Tick, 100)
	h, err := heartbeat.NewHost(heartbeat.HostConfig{Signer: heartbeattest.Signer(1), Log: log, Lease: lease, Clock: fake,
		Sink: heartbeat.SinkFunc(func(p heartbeat.Publication) { ticks <- p.Tick })})
	if err != nil {
		t.Fatal(err)
	}
	inst := heartbeattest.Key(1).Public().String()
	if err := h.Add(heartbeat.InstanceConfig{Instance: inst}); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.Run(runCtx) }()
	var last heartbeat.Tick
	for i := 0; i < 10; i++ {
		fake.BlockUntil(2) // the loop's timer and the lease's
		fake.Advance(50 * time.Millisecond)
		select {
		case last = <-ticks:
		case <-time.After(10 * time.Second):
			t.Fatal("no tick")
		}
	}
	m := heartbeat.Message{Instance: inst, TS: fake.Now().UnixMilli(), Payload: "{}"}
	if err := m.Sign(heartbeattest.Signer(2)); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	h.Submit(ctx, m, func(_ heartbeat.Receipt, err error) { got <- err })
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no ack")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := lease.Current(ctx, inst); ok {
		t.Fatal("lease not released at shutdown")
	}
	if last.N == 0 {
		t.Fatal("no ticks")
	}
	var after error
	h.Submit(ctx, m, func(_ heartbeat.Receipt, err error) { after = err })
	if !errors.Is(after, heartbeat.ErrClosed) {
		t.Fatalf("submit after shutdown: %v", after)
	}
}

// wideLog records what a host appends: how many log-wide reservations,
// how many per-instance ones, and the highest durable log-wide mark.
type wideLog struct {
	heartbeat.Log
	mu              sync.Mutex
	appends, wides  int
	perInstance     int
	durable         float64
	publishedAbove  int
	publishedStates int
}

func (l *wideLog) Append(ctx context.Context, bs []heartbeat.Batch) error {
	err := l.Log.Append(ctx, bs)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.appends++
	for i, b := range bs {
		switch {
		case b.Instance == heartbeat.AllInstances:
			l.wides++
			if heartbeat.BatchErr(err, i) == nil {
				l.durable = max(l.durable, b.Reserve)
			}
		case b.Reserve > 0:
			l.perInstance++
		}
	}
	return err
}

// A host with many instances renews ONE reserved mark for all of them,
// about every ReserveAhead/2, instead of one per instance; every tick it
// publishes is at or below a mark that was durable before publication;
// every instance keeps its tick rate.
func TestHostWideReservation(t *testing.T) {
	const n = 100
	fake := clock.NewFake(heartbeattest.Epoch)
	wl := &wideLog{Log: heartbeat.NewMemLog()}
	ticks := map[string]int{}
	m := newManyWorlds(t, fake, wl, func(p heartbeat.Publication) {
		wl.mu.Lock()
		defer wl.mu.Unlock()
		wl.publishedStates++
		if p.Tick.State > wl.durable {
			wl.publishedAbove++
		}
		ticks[p.Meta.Instance]++
	})
	h, step := m.h, m.step
	m.add(100, n, 3*time.Millisecond) // worlds start at different moments
	step(time.Second)                 // terms start (each waits for the wall clock to reach its base)
	wl.mu.Lock()
	w0, a0 := wl.wides, wl.appends
	clear(ticks)
	wl.mu.Unlock()
	r0 := h.Stats().Rounds
	const run = 5 * time.Second
	step(run)
	// Worlds added at different moments tick on one grid: one signed
	// round per period for all of them.
	if rounds := h.Stats().Rounds - r0; rounds > uint64(run/(50*time.Millisecond))+1 {
		t.Errorf("%d signed rounds in %v for %d worlds at 20 ticks/s; want one per period", rounds, run, n)
	}
	wl.mu.Lock()
	defer wl.mu.Unlock()
	renewals, appends := wl.wides-w0, wl.appends-a0
	t.Logf("%d instances, %v: %d log-wide renewals in %d appends, %d ticks published", n, run, renewals, appends, wl.publishedStates)
	if wl.perInstance != 0 {
		t.Errorf("%d per-instance reservations; want none", wl.perInstance)
	}
	// Renewed when the last state comes within ReserveAhead/2 of the mark:
	// between one per ReserveAhead and one per ReserveAhead/2.
	if lo, hi := int(run/(500*time.Millisecond)), int(run/(250*time.Millisecond))+2; renewals < lo || renewals > hi {
		t.Errorf("%d log-wide renewals in %v; want %d to %d", renewals, run, lo, hi)
	}
	if appends > renewals+2 {
		t.Errorf("%d durable appends for idle instances; want one per renewal", appends)
	}
	if wl.publishedAbove != 0 {
		t.Errorf("%d ticks published above the durable mark", wl.publishedAbove)
	}
	for inst, c := range ticks {
		if c < int(run/(50*time.Millisecond))-1 {
			t.Errorf("instance %s: %d ticks in %v", inst, c, run)
		}
	}
	if len(ticks) != n {
		t.Errorf("%d instances ticked; want %d", len(ticks), n)
	}
	// A world added now starts at the wall clock, not above the host's
	// mark (which runs up to ReserveAhead ahead for the others).
	late := heartbeattest.Key(99).Public().String()
	if err := h.Add(heartbeat.InstanceConfig{Instance: late, Name: "late"}); err != nil {
		t.Fatal(err)
	}
	var first float64
	wl.mu.Unlock()
	for end := fake.Now().Add(200 * time.Millisecond); fake.Now().Before(end) && first == 0; fake.Advance(time.Millisecond) {
		if _, err := h.Step(ctx); err != nil {
			t.Fatal(err)
		}
		st, err := wl.State(ctx, late)
		if err != nil {
			t.Fatal(err)
		}
		if st.Head.Seq > 0 {
			first = st.Head.State
		}
	}
	wl.mu.Lock()
	wall := float64(fake.Now().UnixMicro()) / 1000
	if first == 0 || first > wall+5 || first < wall-5 {
		t.Errorf("late world's first state %v, wall clock %v (mark %v)", first, wall, wl.durable)
	}
}

// slowStateLog makes every State read take a millisecond of (fake) time,
// as reads do under load.
type slowStateLog struct {
	heartbeat.Log
	fake *clock.Fake
}

func (l slowStateLog) State(ctx context.Context, inst string) (heartbeat.LogState, error) {
	l.fake.Advance(time.Millisecond)
	return l.Log.State(ctx, inst)
}

// Terms that start late in a long step still start at the wall clock: no
// tick is ever published with a state ahead of the clock at publication
// (a state from the future is deferred by every Gun peer, ours included).
func TestTermStartsAtWallClock(t *testing.T) {
	const n = 50
	fake := clock.NewFake(heartbeattest.Epoch)
	ahead, ticks := 0, 0
	m := newManyWorlds(t, fake, slowStateLog{heartbeat.NewMemLog(), fake}, func(p heartbeat.Publication) {
		ticks++
		if p.Tick.State > float64(fake.Now().UnixMicro())/1000+1 { // 1 ms: the strictly-increasing µs steps may pass a frozen fake clock
			ahead++
		}
	})
	m.add(200, n, 0)
	m.step(2 * time.Second)
	if ticks < n*20 || ahead != 0 {
		t.Fatalf("%d of %d ticks published ahead of the wall clock", ahead, ticks)
	}
}

// holdFirstRenewal holds the first background renewal (an append that
// carries only a log-wide mark, made off the stepping goroutine) until
// release is closed. A round whose states the old mark no longer covers
// renews in its own append, which may carry only the mark too (when the
// background goroutine has not run within ReserveAhead/2 of fake time,
// as on a loaded machine); holding that one would block Step for good.
// The background renewal is told apart by its context: the host detaches
// it from the round's (context.WithoutCancel), and the test steps with a
// cancellable one.
type holdFirstRenewal struct {
	heartbeat.Log
	held    atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (l *holdFirstRenewal) Append(ctx context.Context, bs []heartbeat.Batch) error {
	background := ctx.Done() == nil
	if background && len(bs) == 1 && bs[0].Instance == heartbeat.AllInstances && l.held.CompareAndSwap(false, true) {
		close(l.entered)
		<-l.release
	}
	return l.Log.Append(ctx, bs)
}

// The host renews its mark in the background: rounds go on while the
// renewal's append is slow, every tick is still published at its time, and
// when the old mark would run out the round puts a new mark in its own
// append instead of publishing anything uncovered.
func TestRenewalInBackground(t *testing.T) {
	fake := clock.NewFake(heartbeattest.Epoch)
	hl := &holdFirstRenewal{Log: heartbeat.NewMemLog(), entered: make(chan struct{}), release: make(chan struct{})}
	var ticks int
	m := newManyWorlds(t, fake, hl, func(heartbeat.Publication) { ticks++ })
	const n = 10
	m.add(300, n, 0)
	h, step := m.h, m.step
	// Run until the first background renewal is under way (and held).
	for held := false; !held; {
		step(time.Millisecond)
		select {
		case <-hl.entered:
			held = true
		default:
		}
	}
	ticks = 0
	step(time.Second) // far past the old mark: the rounds renew on their own
	if want := n * 20; ticks < want-n {
		t.Fatalf("%d ticks published in 1 s of %d worlds while a renewal was held; want about %d", ticks, n, want)
	}
	close(hl.release)
	if err := h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// manyWorlds is a host on a fake clock that may tick any instance (no role
// checks), publishing to sink.
type manyWorlds struct {
	t    *testing.T
	fake *clock.Fake
	h    *heartbeat.Host
	ctx  context.Context // cancellable: see holdFirstRenewal
}

func newManyWorlds(t *testing.T, fake *clock.Fake, log heartbeat.Log, sink func(heartbeat.Publication)) *manyWorlds {
	t.Helper()
	return newManyWorldsSink(t, fake, log, heartbeat.SinkFunc(sink))
}

func newManyWorldsSink(t *testing.T, fake *clock.Fake, log heartbeat.Log, sink heartbeat.Sink) *manyWorlds {
	t.Helper()
	start := fake.Now()
	h, err := heartbeat.NewHost(heartbeat.HostConfig{Signer: heartbeattest.Signer(1), Log: log, Lease: heartbeat.NewMemLease(fake), Clock: fake,
		Elapsed: func() time.Duration { return fake.Now().Sub(start) },
		Authorizer: heartbeat.AuthorizerFunc(func(context.Context, string, string, heartbeat.Role, time.Time) error {
			return nil
		}),
		Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	stepCtx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &manyWorlds{t: t, fake: fake, h: h, ctx: stepCtx}
}

// add adds n worlds with the keys from base on, stepping gap after each.
func (m *manyWorlds) add(base, n int, gap time.Duration) {
	m.t.Helper()
	for i := range n {
		if err := m.h.Add(heartbeat.InstanceConfig{Instance: heartbeattest.Key(uint64(base + i)).Public().String(), Name: "w"}); err != nil {
			m.t.Fatal(err)
		}
		m.step(gap)
	}
}

// step runs the host for d of fake time, a millisecond at a time.
func (m *manyWorlds) step(d time.Duration) {
	m.t.Helper()
	for end := m.fake.Now().Add(d); m.fake.Now().Before(end); m.fake.Advance(time.Millisecond) {
		if _, err := m.h.Step(m.ctx); err != nil {
			m.t.Fatal(err)
		}
	}
}

// roundSink records the size of every round handed to it whole.
type roundSink struct {
	rounds []int
	single int // publications handed one at a time (must stay 0)
}

func (r *roundSink) Publish(heartbeat.Publication) { r.single++ }
func (r *roundSink) PublishRound(ps []heartbeat.Publication) {
	r.rounds = append(r.rounds, len(ps))
}

// A RoundSink gets each round in one call: once every world has started,
// every call carries a publication of every world.
func TestRoundSinkGetsWholeRounds(t *testing.T) {
	fake := clock.NewFake(heartbeattest.Epoch)
	rs := &roundSink{}
	m := newManyWorldsSink(t, fake, heartbeat.NewMemLog(), rs)
	const n = 40
	m.add(400, n, 7*time.Millisecond) // started apart: the grid still rounds them together
	rs.rounds = nil
	m.step(time.Second)
	if rs.single != 0 {
		t.Fatalf("%d publications handed one at a time to a RoundSink", rs.single)
	}
	if len(rs.rounds) < 19 || len(rs.rounds) > 21 {
		t.Fatalf("%d rounds in 1 s at 20 ticks/s", len(rs.rounds))
	}
	for i, k := range rs.rounds {
		if k != n {
			t.Fatalf("round %d carried %d publications, want all %d worlds", i, k, n)
		}
	}
}

// An idle tick is stamped on its slot of the host's grid, not when its
// round got to run: rounds that run late by varying amounts still give
// states exactly a whole number of periods apart (followers see a steady
// cadence, Croquet time advances by the period). A tick that carries
// entries is stamped after them, and states keep increasing.
func TestIdleTicksStampedOnTheirSlot(t *testing.T) {
	r := newRig(t, nil, nil)
	r.run(200 * time.Millisecond)
	from := len(r.ticks())
	for i, late := range []time.Duration{57, 43, 71, 29, 50, 64, 88, 12} {
		if i == 3 {
			r.submit(r.msg(2, r.fake.Now(), "mid"))
		}
		r.fake.Advance(late * time.Millisecond)
		if _, err := r.host.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	r.mu.Lock()
	pubs := append([]heartbeat.Publication(nil), r.pubs[from-1:]...)
	r.mu.Unlock()
	period := 50 * time.Millisecond
	withEntries := 0
	for i := 1; i < len(pubs); i++ {
		prev, cur := pubs[i-1].Tick.State, pubs[i].Tick.State
		if !(cur > prev) {
			t.Fatalf("tick %d state %v after %v", i, cur, prev)
		}
		if n := len(pubs[i].Entries); n > 0 {
			withEntries++
			if last := pubs[i].Entries[n-1].State; !(cur > last) {
				t.Fatalf("tick %d at %v, not after its entries (%v)", i, cur, last)
			}
			continue
		}
		if len(pubs[i-1].Entries) > 0 {
			continue // after a tick stamped at its round's moment
		}
		gapUs := int64(math.Round((cur - prev) * 1000))
		if gapUs%period.Microseconds() != 0 {
			t.Errorf("idle ticks %d and %d are %d µs apart: not on the grid", i-1, i, gapUs)
		}
	}
	if withEntries != 1 || len(pubs) < 8 {
		t.Fatalf("%d publications, %d with entries; want the message in one", len(pubs), withEntries)
	}
}
