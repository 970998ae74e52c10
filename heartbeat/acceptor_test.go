package heartbeat_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/heartbeat/heartbeattest"
	"github.com/krestianstvo/luminary/internal/clock"
)

// remote is a remote metronome (a peer holding the tick role) feeding a
// relay's Acceptor.
type remote struct {
	clk   *clock.Fake
	log   *heartbeat.MemLog
	lease *heartbeat.MemLease
	acc   *heartbeat.Acceptor
	s     *heartbeattest.Stream
	inst  string
	pubs  []heartbeat.Publication
}

func newRemote(t *testing.T) *remote {
	t.Helper()
	owner := heartbeattest.Signer(1)
	r := &remote{clk: clock.NewFake(heartbeattest.Epoch), log: heartbeat.NewMemLog(), inst: owner.Public()}
	r.lease = heartbeat.NewMemLease(r.clk)
	acc, err := heartbeat.NewAcceptor(heartbeat.AcceptorConfig{Log: r.log, Lease: r.lease, Clock: r.clk,
		Sink: heartbeat.SinkFunc(func(p heartbeat.Publication) { r.pubs = append(r.pubs, p) })})
	if err != nil {
		t.Fatal(err)
	}
	r.acc = acc
	g, err := r.lease.Acquire(ctx, r.inst, owner.Public(), time.Minute, 1)
	if err != nil {
		t.Fatal(err)
	}
	r.s = heartbeattest.NewStream(owner, r.inst, g.Epoch, heartbeat.Head{}, nil, 0, r.clk.Now())
	return r
}

// batch returns the entries produced since from, with a new tick covering them.
func (r *remote) batch(from int, meta bool) heartbeat.Batch {
	tk := r.s.Tick(time.Millisecond)
	b := heartbeat.Batch{Instance: r.inst, Entries: r.s.Entries[from:], Tick: &tk, Reserve: r.s.Reserve}
	if meta {
		m := r.s.Seq.Meta()
		b.Meta = &m
	}
	return b
}

func (r *remote) head(t *testing.T) uint64 {
	st, err := r.log.State(ctx, r.inst)
	if err != nil {
		t.Fatal(err)
	}
	return st.Head.Seq
}

func TestAcceptorAcceptsRemoteSequencer(t *testing.T) {
	r := newRemote(t)
	r.s.Message(heartbeattest.Signer(2), r.clk.Now().UnixMilli(), `{"a":1}`)
	if err := r.acc.Accept(ctx, r.batch(0, true)); err != nil {
		t.Fatal(err)
	}
	// An idle tick is published, not stored.
	idle := r.batch(len(r.s.Entries), false)
	if err := r.acc.Accept(ctx, idle); err != nil {
		t.Fatal(err)
	}
	if r.head(t) != 2 || len(r.pubs) != 2 || r.pubs[1].Stored {
		t.Fatalf("head %d, %d publications", r.head(t), len(r.pubs))
	}
	// Re-sending an accepted batch is refused as out of order, and stores nothing.
	if err := r.acc.Accept(ctx, idle); !errors.Is(err, heartbeat.ErrOrder) {
		t.Fatalf("repeat: %v", err)
	}
}

// Table A row 20: a tick signed by a key without the tick role, or by a key
// that does not hold the lease, is refused and nothing is stored.
func TestAcceptorRow20NotAuthorisedToTick(t *testing.T) {
	r := newRemote(t)
	r.s.Message(heartbeattest.Signer(2), r.clk.Now().UnixMilli(), `{}`)
	b := r.batch(0, true)
	rogue := heartbeattest.Resign(heartbeattest.Signer(66), b.Tick.TickRecord)
	b.Tick = &rogue
	err := r.acc.Accept(ctx, b)
	if !errors.Is(err, heartbeat.ErrNotAuthorisedToTick) || heartbeat.Reason(err) != "restricted: not authorised to tick" {
		t.Fatalf("rogue signer: %v", err)
	}
	// Authorised key (allowed by the authorizer) that is not the lease holder.
	allow := heartbeat.AuthorizerFunc(func(_ context.Context, _, _ string, _ heartbeat.Role, _ time.Time) error { return nil })
	acc, _ := heartbeat.NewAcceptor(heartbeat.AcceptorConfig{Log: r.log, Lease: r.lease, Clock: r.clk, Authorizer: allow})
	if err := acc.Accept(ctx, b); !errors.Is(err, heartbeat.ErrNotAuthorisedToTick) {
		t.Fatalf("non-holder: %v", err)
	}
	if r.head(t) != 0 || len(r.pubs) != 0 {
		t.Fatal("something was stored or published")
	}
}

func TestAcceptorStaleEpoch(t *testing.T) {
	r := newRemote(t)
	b := r.batch(0, true)
	// The owner re-acquires (a restart): epoch 2. The old term's batch is fenced.
	if _, err := r.lease.Acquire(ctx, r.inst, r.inst, time.Minute, 0); err != nil {
		t.Fatal(err)
	}
	err := r.acc.Accept(ctx, b)
	if !errors.Is(err, heartbeat.ErrStaleEpoch) || heartbeat.Reason(err) != "restricted: stale epoch" {
		t.Fatalf("stale: %v", err)
	}
	if r.head(t) != 0 {
		t.Fatal("stale batch stored")
	}
}

// Table A row 23: a tick whose time is not after the last, a repeated seq,
// or a seq gap is refused with "invalid: time/seq order"; nothing is stored.
func TestAcceptorRow23TimeSeqOrder(t *testing.T) {
	r := newRemote(t)
	r.s.Message(heartbeattest.Signer(2), r.clk.Now().UnixMilli(), `{"x":0}`)
	if err := r.acc.Accept(ctx, r.batch(0, true)); err != nil {
		t.Fatal(err)
	}
	owner := heartbeattest.Signer(1)
	head := r.head(t)
	st, _ := r.log.State(ctx, r.inst)

	// vtime <= last vtime: an idle tick re-signed with an older state.
	rec := st.LastTick.TickRecord
	rec.N++
	back := heartbeattest.Resign(owner, rec)
	if err := r.acc.Accept(ctx, heartbeat.Batch{Instance: r.inst, Tick: &back}); !errors.Is(err, heartbeat.ErrOrder) || heartbeat.Reason(err) != "invalid: time/seq order" {
		t.Fatalf("same vtime: %v", err)
	}

	// Repeated seq: a new entry claiming the seq of an existing one.
	n := len(r.s.Entries)
	r.s.Message(heartbeattest.Signer(2), r.clk.Now().UnixMilli(), `{"x":1}`)
	b := r.batch(n, false)
	dup := b.Entries[0]
	dup.Seq, dup.Prev = head, r.s.Entries[head-2].Hash()
	rec = b.Tick.TickRecord
	rec.Seq, rec.Head = dup.Seq, dup.Hash()
	tk := heartbeattest.Resign(owner, rec)
	if err := r.acc.Accept(ctx, heartbeat.Batch{Instance: r.inst, Entries: []heartbeat.Entry{dup}, Tick: &tk}); !errors.Is(err, heartbeat.ErrOrder) {
		t.Fatalf("repeated seq: %v", err)
	}

	// Seq gap: skip one entry.
	r.s.Message(heartbeattest.Signer(2), r.clk.Now().UnixMilli(), `{"x":2}`)
	b = r.batch(n, false)
	gap := b
	gap.Entries = b.Entries[1:]
	if err := r.acc.Accept(ctx, gap); !errors.Is(err, heartbeat.ErrOrder) {
		t.Fatalf("gap: %v", err)
	}
	if r.head(t) != head {
		t.Fatalf("head moved to %d", r.head(t))
	}
	// The untouched batch is still fine.
	if err := r.acc.Accept(ctx, b); err != nil {
		t.Fatal(err)
	}
}

func TestAcceptorRefusesFutureStateAndForgedAuthor(t *testing.T) {
	r := newRemote(t)
	// A metronome whose clock is 5 minutes fast (table B row 13).
	fast := heartbeattest.NewStream(heartbeattest.Signer(1), r.inst, 1, heartbeat.Head{}, nil, 0, r.clk.Now().Add(5*time.Minute))
	tk := fast.Tick(time.Millisecond)
	m := fast.Seq.Meta()
	if err := r.acc.Accept(ctx, heartbeat.Batch{Instance: r.inst, Meta: &m, Entries: fast.Entries, Tick: &tk, Reserve: fast.Reserve}); !errors.Is(err, heartbeat.ErrFuture) {
		t.Fatalf("future state: %v", err)
	}
	e := r.s.Message(heartbeattest.Signer(2), r.clk.Now().UnixMilli(), `{}`)
	e.Sig = append([]byte{}, e.Sig...)
	e.Sig[10] ^= 1
	r.s.Entries[len(r.s.Entries)-1] = e
	if err := r.acc.Accept(ctx, r.batch(0, true)); !errors.Is(err, heartbeat.ErrBadSignature) {
		t.Fatalf("forged author: %v", err)
	}
	if r.head(t) != 0 {
		t.Fatal("stored")
	}
}

// A remote sequencer cannot log a snapshot: members' votes never reach it,
// so the entry would be its own choice of the state late joiners load.
func TestAcceptorRefusesRemoteSnapshotEntry(t *testing.T) {
	r := newRemote(t)
	r.s.Elapsed += time.Millisecond
	e := r.s.Seq.Append(heartbeat.Entry{Kind: heartbeat.KindSnapshot, Ref: 1, RefHash: heartbeat.SHA256([]byte("any state")),
		Payload: `["` + heartbeattest.Signer(1).Public() + `"]`}, r.s.Elapsed)
	r.s.Entries = append(r.s.Entries, e)
	err := r.acc.Accept(ctx, r.batch(0, true))
	if !errors.Is(err, heartbeat.ErrNotAuthorised) || heartbeat.Reason(err) != "restricted: not authorised" {
		t.Fatalf("snapshot entry from a remote sequencer: %v (reason %q)", err, heartbeat.Reason(err))
	}
	if r.head(t) != 0 || len(r.pubs) != 0 {
		t.Fatal("stored or published")
	}
}
