package heartbeat_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/heartbeat/heartbeattest"
)

// failoverWorld has two relays sharing a log and lease (the scale-out
// shape), three peers and three senders.
func failoverWorld(t *testing.T, seed uint64) (*heartbeattest.World, *heartbeattest.HostNode, *heartbeattest.HostNode) {
	t.Helper()
	w := heartbeattest.NewWorld(seed, lossy)
	a, err := w.AddHost("relayA", heartbeattest.Signer(seed*1000+2), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Run(10 * time.Millisecond); err != nil { // A takes the lease first
		t.Fatal(err)
	}
	b, err := w.AddHost("relayB", heartbeattest.Signer(seed*1000+3), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := w.AddPeer(fmt.Sprint("peer", i), seed*1000+10+uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		w.AddSender(fmt.Sprint("sender", i), seed*1000+20+uint64(i), 80, 25*time.Millisecond)
	}
	return w, a, b
}

func lastPub(h *heartbeattest.HostNode) heartbeattest.Pub { return h.Published[len(h.Published)-1] }

func TestFailoverCrash(t *testing.T) {
	for seed := uint64(1); seed <= seeds(3); seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			w, a, b := failoverWorld(t, seed)
			if err := w.Run(1500 * time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if len(b.Published) != 0 || len(a.Published) == 0 {
				t.Fatalf("before the crash: A published %d, B %d", len(a.Published), len(b.Published))
			}
			a.Crash()
			last := lastPub(a)
			if err := w.Run(1500 * time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if len(b.Published) == 0 {
				t.Fatal("B never took over")
			}
			first := b.Published[0]
			gap := first.At - last.At
			t.Logf("A's last tick epoch %d at %v, B's first epoch %d at %v: gap %v, state gap %.3f ms",
				last.Tick.Epoch, last.At, first.Tick.Epoch, first.At, gap, first.Tick.State-last.Tick.State)
			if gap > time.Second {
				t.Fatalf("takeover took %v > 1 s", gap)
			}
			if first.Tick.Epoch <= last.Tick.Epoch {
				t.Fatalf("B's epoch %d not above A's %d", first.Tick.Epoch, last.Tick.Epoch)
			}
			if first.Tick.State <= last.Tick.State {
				t.Fatalf("time went backwards across failover: %v after %v", first.Tick.State, last.Tick.State)
			}
			quiesce(t, w)
			if err := w.Check(); err != nil {
				t.Fatal(err)
			}
			// The log records the takeover: an epoch entry by B.
			pg, err := w.Log.Read(heartbeattest.Ctx, w.Instance, 1, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			epochs := 0
			for _, e := range pg.Entries {
				if e.Kind == heartbeat.KindEpoch {
					epochs++
				}
			}
			if epochs != 2 {
				t.Fatalf("%d epoch entries, want 2", epochs)
			}
		})
	}
}

// TestFailoverZombie pauses the sequencer past its lease, lets the standby
// take over, then brings the old one back: it must step down, and nothing it
// does is accepted by the log or by any follower.
func TestFailoverZombie(t *testing.T) {
	w, a, b := failoverWorld(t, 7)
	if err := w.Run(1200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	a.Pause()
	if err := w.Run(1200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if len(b.Published) == 0 {
		t.Fatal("B never took over")
	}
	before := len(a.Published)
	// A wakes up still believing it holds epoch 1 until its next renewal.
	a.Resume()
	// Feed it a message directly so that it tries to append in its stale term.
	m := heartbeat.Message{Instance: w.Instance, TS: w.Clock.Now().UnixMilli(), Nonce: "zombie", Payload: "{}"}
	if err := m.Sign(heartbeattest.Signer(99)); err != nil {
		t.Fatal(err)
	}
	var zerr error
	a.Host.Submit(heartbeattest.Ctx, m, func(_ heartbeat.Receipt, err error) { zerr = err })
	if _, err := a.Host.Step(heartbeattest.Ctx); err != nil {
		t.Fatal(err)
	}
	if zerr == nil || !errors.Is(zerr, heartbeat.ErrNotSequencer) {
		t.Fatalf("zombie submit: %v, want ErrNotSequencer", zerr)
	}
	if st, _ := a.Host.Status(w.Instance); st.Active {
		t.Fatal("zombie still active")
	}
	if err := w.Run(1 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, p := range a.Published[before:] {
		if p.Entries > 0 {
			t.Fatalf("zombie published %d entries after resuming", p.Entries)
		}
	}
	quiesce(t, w)
	if err := w.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestSplitBrainLogFences gives each relay its own lease table (a broken
// lease: both believe they hold the instance). The log's compare-and-append
// and the epoch rules alone must keep one linear history: followers see no
// fork, time never goes backwards, every ack is in the log once.
func TestSplitBrainLogFences(t *testing.T) {
	w := heartbeattest.NewWorld(11, lossy)
	for i, name := range []string{"relayA", "relayB"} {
		lease := heartbeat.NewMemLease(w.Clock)
		if _, err := w.AddHost(name, heartbeattest.Signer(uint64(5000+i)), func(c *heartbeat.HostConfig) { c.Lease = lease }); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if _, err := w.AddPeer(fmt.Sprint("peer", i), uint64(6000+i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		w.AddSender(fmt.Sprint("sender", i), uint64(7000+i), 40, 30*time.Millisecond)
	}
	if err := w.Run(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	quiesce(t, w)
	if err := w.Check(); err != nil {
		t.Fatal(err)
	}
	st, _ := w.Log.State(heartbeattest.Ctx, w.Instance)
	t.Logf("head %d at epoch %d; A published %d, B %d", st.Head.Seq, st.Head.Epoch, len(w.Hosts[0].Published), len(w.Hosts[1].Published))
	if st.Head.Epoch < 2 {
		t.Fatalf("expected the two relays to fight (epoch %d)", st.Head.Epoch)
	}
}
