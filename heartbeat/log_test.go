package heartbeat_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/heartbeat/heartbeattest"
	"github.com/krestianstvo/luminary/internal/clock"
)

var ctx = heartbeattest.Ctx

type logMaker func(t *testing.T) (heartbeat.Log, func() heartbeat.Log)

func logImpls() map[string]logMaker {
	return map[string]logMaker{
		"mem": func(t *testing.T) (heartbeat.Log, func() heartbeat.Log) {
			l := heartbeat.NewMemLog()
			return l, func() heartbeat.Log { return l }
		},
		"bolt": func(t *testing.T) (heartbeat.Log, func() heartbeat.Log) {
			path := filepath.Join(t.TempDir(), "log.db")
			l, err := heartbeat.OpenBolt(path, heartbeat.BoltOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cur := l
			t.Cleanup(func() { cur.Close() })
			return l, func() heartbeat.Log {
				cur.Close()
				n, err := heartbeat.OpenBolt(path, heartbeat.BoltOptions{})
				if err != nil {
					t.Fatal(err)
				}
				cur = n
				return n
			}
		},
	}
}

// genesis starts the first term of a new instance owned by Signer(1) and
// returns its genesis batch (see firstBatch).
func genesis() (heartbeat.Signer, string, *heartbeattest.Stream, heartbeat.Batch) {
	owner := heartbeattest.Signer(1)
	inst := owner.Public()
	s := heartbeattest.NewStream(owner, inst, 1, heartbeat.Head{}, nil, 0, heartbeattest.Epoch)
	return owner, inst, s, firstBatch(s)
}

// firstBatch returns the genesis batch of a stream with one message.
func firstBatch(s *heartbeattest.Stream) heartbeat.Batch {
	s.Message(heartbeattest.Signer(2), heartbeattest.Epoch.UnixMilli(), `{"n":1}`)
	tk := s.Tick(50 * time.Millisecond)
	m := s.Seq.Meta()
	return heartbeat.Batch{Instance: m.Instance, Meta: &m, Entries: s.Entries, Tick: &tk, Reserve: s.Reserve}
}

func TestLogConformance(t *testing.T) {
	for name, mk := range logImpls() {
		t.Run(name, func(t *testing.T) {
			log, reopen := mk(t)
			_, inst, s, b1 := genesis()
			// Unknown instance without meta.
			noMeta := b1
			noMeta.Meta = nil
			if err := heartbeat.BatchErr(log.Append(ctx, []heartbeat.Batch{noMeta}), 0); !errors.Is(err, heartbeat.ErrUnknownInstance) {
				t.Fatalf("append without meta: %v", err)
			}
			if err := log.Append(ctx, []heartbeat.Batch{b1}); err != nil {
				t.Fatal(err)
			}
			// Replaying the same batch conflicts (compare-and-append).
			again := b1
			again.Meta = nil
			if err := heartbeat.BatchErr(log.Append(ctx, []heartbeat.Batch{again}), 0); !errors.Is(err, heartbeat.ErrConflict) {
				t.Fatalf("replayed batch: %v", err)
			}
			// Next batch: two messages + tick.
			n0 := len(s.Entries)
			e3 := s.Message(heartbeattest.Signer(2), heartbeattest.Epoch.UnixMilli(), `{"n":2}`)
			s.Message(heartbeattest.Signer(3), heartbeattest.Epoch.UnixMilli(), `{"n":3}`)
			tk := s.Tick(50 * time.Millisecond)
			b2 := heartbeat.Batch{Instance: inst, Entries: s.Entries[n0:], Tick: &tk, Reserve: s.Reserve}
			// A batch with a gap, and one with a duplicate message id.
			gap := b2
			gap.Entries = b2.Entries[1:]
			if err := heartbeat.BatchErr(log.Append(ctx, []heartbeat.Batch{gap}), 0); !errors.Is(err, heartbeat.ErrOrder) {
				t.Fatalf("gap: %v", err)
			}
			// Two batches in one call: the valid one lands, the invalid one is reported.
			err := log.Append(ctx, []heartbeat.Batch{b2, gap})
			if heartbeat.BatchErr(err, 0) != nil || heartbeat.BatchErr(err, 1) == nil {
				t.Fatalf("mixed append: %v", err)
			}
			// A stale epoch cannot append after a newer epoch entry.
			st, _ := log.State(ctx, inst)
			s2 := heartbeattest.NewStream(heartbeattest.Signer(9), inst, 2, st.Head, st.Meta, st.Reserved, heartbeattest.Epoch.Add(time.Second))
			tk2 := s2.Tick(time.Millisecond)
			if err := log.Append(ctx, []heartbeat.Batch{{Instance: inst, Entries: s2.Entries, Tick: &tk2, Reserve: s2.Reserve}}); err != nil {
				t.Fatal(err)
			}
			s.Message(heartbeattest.Signer(2), heartbeattest.Epoch.UnixMilli(), `{"n":4}`)
			tk3 := s.Tick(time.Millisecond)
			stale := heartbeat.Batch{Instance: inst, Entries: s.Entries[len(s.Entries)-1:], Tick: &tk3}
			if err := heartbeat.BatchErr(log.Append(ctx, []heartbeat.Batch{stale}), 0); !errors.Is(err, heartbeat.ErrStaleEpoch) {
				t.Fatalf("stale epoch: %v", err)
			}
			// Nothing may be stored above the reserved mark.
			st, _ = log.State(ctx, inst)
			s3 := heartbeattest.NewStream(heartbeattest.Signer(9), inst, 3, st.Head, st.Meta, st.Reserved, heartbeattest.Epoch.Add(time.Hour))
			if err := heartbeat.BatchErr(log.Append(ctx, []heartbeat.Batch{{Instance: inst, Entries: s3.Entries}}), 0); !errors.Is(err, heartbeat.ErrOrder) {
				t.Fatalf("above reserved mark: %v", err)
			}

			for i := 0; i < 2; i++ {
				if i == 1 {
					log = reopen()
				}
				st, err := log.State(ctx, inst)
				if err != nil {
					t.Fatal(err)
				}
				if st.Head.Seq != 5 || st.Head.Epoch != 2 || st.Meta == nil || st.LastTick == nil || st.LastTick.Seq != 5 || st.Reserved < st.LastTick.State {
					t.Fatalf("state after reopen=%v: %+v", i == 1, st)
				}
				p, err := log.Read(ctx, inst, 2, 2)
				if err != nil || len(p.Entries) != 2 || p.Entries[0].Seq != 2 || len(p.Ticks) != 2 || p.Ticks[0].Seq != 2 || p.Ticks[1].Seq != 4 {
					t.Fatalf("read: %v %d entries %d ticks", err, len(p.Entries), len(p.Ticks))
				}
				got, ok, err := log.Lookup(ctx, inst, e3.MessageID())
				if err != nil || !ok || got.Seq != e3.Seq {
					t.Fatalf("lookup: %v %v %d", err, ok, got.Seq)
				}
				p, err = log.ReadByTime(ctx, inst, s.Entries[2].State, s.Entries[3].State, 10)
				if err != nil || len(p.Entries) != 2 || p.Entries[0].Seq != 3 {
					t.Fatalf("read by time: %v %d", err, len(p.Entries))
				}
				insts, err := log.Instances(ctx)
				if err != nil || len(insts) != 1 || insts[0] != inst {
					t.Fatalf("instances: %v %v", insts, err)
				}
			}
		})
	}
}

func TestLeases(t *testing.T) {
	clk := clock.NewFake(heartbeattest.Epoch)
	path := filepath.Join(t.TempDir(), "lease.db")
	bl, err := heartbeat.OpenBolt(path, heartbeat.BoltOptions{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	leases := map[string]heartbeat.Lease{"mem": heartbeat.NewMemLease(clk), "bolt": bl.Lease()}
	for name, l := range leases {
		t.Run(name, func(t *testing.T) {
			const ttl = 500 * time.Millisecond
			a, err := l.Acquire(ctx, "I", "A", ttl, 0)
			if err != nil || a.Epoch != 1 {
				t.Fatalf("acquire: %+v %v", a, err)
			}
			if _, err := l.Acquire(ctx, "I", "B", ttl, 0); !errors.Is(err, heartbeat.ErrLeaseHeld) {
				t.Fatalf("B while A holds: %v", err)
			}
			clk.Advance(400 * time.Millisecond)
			if err := l.Renew(ctx, a, ttl); err != nil {
				t.Fatal(err)
			}
			clk.Advance(400 * time.Millisecond)
			if g, ok, _ := l.Current(ctx, "I"); !ok || g != a {
				t.Fatalf("current after renew: %+v %v", g, ok)
			}
			clk.Advance(101 * time.Millisecond)
			if _, ok, _ := l.Current(ctx, "I"); ok {
				t.Fatal("lease did not lapse")
			}
			b, err := l.Acquire(ctx, "I", "B", ttl, 0)
			if err != nil || b.Epoch != 2 {
				t.Fatalf("B after lapse: %+v %v", b, err)
			}
			if err := l.Renew(ctx, a, ttl); !errors.Is(err, heartbeat.ErrLeaseLost) {
				t.Fatalf("A renews after B took over: %v", err)
			}
			// Same holder re-acquires at once, with a new epoch and the caller's minimum.
			b2, err := l.Acquire(ctx, "I", "B", ttl, 7)
			if err != nil || b2.Epoch != 7 {
				t.Fatalf("re-acquire: %+v %v", b2, err)
			}
			if err := l.Release(ctx, b2); err != nil {
				t.Fatal(err)
			}
			if a2, err := l.Acquire(ctx, "I", "A", ttl, 0); err != nil || a2.Epoch != 8 {
				t.Fatalf("after release: %+v %v", a2, err)
			}
		})
	}
	// Epochs survive a restart of the bolt lease; no grant is live after it.
	bl.Close()
	bl, err = heartbeat.OpenBolt(path, heartbeat.BoltOptions{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer bl.Close()
	if _, ok, _ := bl.Lease().Current(ctx, "I"); ok {
		t.Fatal("grant live after restart")
	}
	if g, err := bl.Lease().Acquire(ctx, "I", "C", time.Second, 0); err != nil || g.Epoch != 9 {
		t.Fatalf("after restart: %+v %v", g, err)
	}
}

// A holder's log-wide reserved mark (a batch for AllInstances) bounds the
// states of every instance whose current term it holds: entries above an
// instance's own mark are stored once the holder's mark covers them, in
// the same Append when the wide batch comes first; another holder's mark
// does not count; marks never fall and survive a reopen; a new holder's
// term must start above the previous holder's mark.
func TestLogWideReserve(t *testing.T) {
	for name, mk := range logImpls() {
		t.Run(name, func(t *testing.T) {
			log, reopen := mk(t)
			owner, inst, s, b1 := genesis()
			if err := log.Append(ctx, []heartbeat.Batch{b1}); err != nil {
				t.Fatal(err)
			}
			own := b1.Reserve
			// A tick two seconds on: above the instance's mark, no Reserve.
			s.Message(heartbeattest.Signer(2), heartbeattest.Epoch.UnixMilli(), `{"n":2}`)
			tk := s.Tick(2 * time.Second)
			b2 := heartbeat.Batch{Instance: inst, Entries: s.Entries[len(s.Entries)-1:], Tick: &tk}
			if tk.State <= own {
				t.Fatalf("test setup: tick %v not above the instance mark %v", tk.State, own)
			}
			if err := heartbeat.BatchErr(log.Append(ctx, []heartbeat.Batch{b2}), 0); !errors.Is(err, heartbeat.ErrOrder) {
				t.Fatalf("above both marks: %v", err)
			}
			wide := tk.State + 500
			other := heartbeattest.Signer(7).Public()
			// Malformed log-wide batches are refused.
			for _, bad := range []heartbeat.Batch{
				{Instance: heartbeat.AllInstances, Holder: owner.Public(), Reserve: wide, Tick: &tk},
				{Instance: heartbeat.AllInstances, Holder: owner.Public(), Reserve: -1},
				{Instance: heartbeat.AllInstances, Reserve: wide},
			} {
				if err := heartbeat.BatchErr(log.Append(ctx, []heartbeat.Batch{bad}), 0); err == nil {
					t.Fatalf("malformed wide batch %+v accepted", bad)
				}
			}
			// Another holder's mark covers nothing of this instance.
			if err := heartbeat.BatchErr(log.Append(ctx, []heartbeat.Batch{{Instance: heartbeat.AllInstances, Holder: other, Reserve: wide}, b2}), 1); !errors.Is(err, heartbeat.ErrOrder) {
				t.Fatalf("covered by another holder's mark: %v", err)
			}
			// The holder's mark first, then the batch, in one call.
			if err := log.Append(ctx, []heartbeat.Batch{{Instance: heartbeat.AllInstances, Holder: owner.Public(), Reserve: wide}, b2}); err != nil {
				t.Fatalf("wide mark then batch: %v", err)
			}
			// A lower mark changes nothing.
			if err := log.Append(ctx, []heartbeat.Batch{{Instance: heartbeat.AllInstances, Holder: owner.Public(), Reserve: 1}}); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ {
				if i == 1 {
					log = reopen()
				}
				st, err := log.State(ctx, inst)
				if err != nil {
					t.Fatal(err)
				}
				if st.Holder != owner.Public() || st.Wide != wide || st.Reserved != own || st.Bound() != wide || st.Head.Seq != b2.Entries[0].Seq {
					t.Fatalf("reopen=%v: holder %q wide %v reserved %v bound %v head %d", i == 1, st.Holder, st.Wide, st.Reserved, st.Bound(), st.Head.Seq)
				}
				if m, err := log.HolderMark(ctx, owner.Public()); err != nil || m != wide {
					t.Fatalf("reopen=%v: holder mark %v %v", i == 1, m, err)
				}
			}
			// A new holder must start above the previous holder's mark.
			st, _ := log.State(ctx, inst)
			low := heartbeattest.NewStream(heartbeattest.Signer(9), inst, 2, st.Head, st.Meta, st.Reserved, heartbeattest.Epoch)
			if err := heartbeat.BatchErr(log.Append(ctx, []heartbeat.Batch{{Instance: inst, Entries: low.Entries, Reserve: low.Reserve + 1e6}}), 0); !errors.Is(err, heartbeat.ErrOrder) {
				t.Fatalf("new term below the previous holder's mark: %v", err)
			}
			s2 := heartbeattest.NewStream(heartbeattest.Signer(9), inst, 2, st.Head, st.Meta, st.Bound(), heartbeattest.Epoch)
			tk2 := s2.Tick(time.Millisecond)
			if err := log.Append(ctx, []heartbeat.Batch{{Instance: inst, Entries: s2.Entries, Tick: &tk2, Reserve: s2.Reserve}}); err != nil {
				t.Fatalf("new term above the bound: %v", err)
			}
			if st, _ := log.State(ctx, inst); st.Holder != heartbeattest.Signer(9).Public() || st.Wide != 0 {
				t.Fatalf("after takeover: holder %q wide %v", st.Holder, st.Wide)
			}
		})
	}
}
