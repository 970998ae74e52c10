package heartbeat_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/heartbeat/heartbeattest"
)

var lossy = heartbeattest.NetConfig{MinDelay: time.Millisecond, MaxDelay: 40 * time.Millisecond, Loss: 0.1, Dup: 0.05}

// quiesce heals the network and runs until every sender is done and every
// peer has applied the log head, or fails after a bound.
func quiesce(t *testing.T, w *heartbeattest.World, peers ...*heartbeattest.Peer) {
	t.Helper()
	w.Net.SetConfig(heartbeattest.NetConfig{MinDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond})
	if len(peers) == 0 {
		peers = w.Peers
	}
	for i := 0; i < 100; i++ {
		if err := w.Run(100 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		done := true
		for _, s := range w.Senders {
			done = done && s.Done()
		}
		st, err := w.Log.State(heartbeattest.Ctx, w.Instance)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range peers {
			done = done && p.F.Applied().Seq == st.Head.Seq
		}
		if done {
			return
		}
	}
	for _, p := range peers {
		t.Logf("peer %s at %d, missing %v, errs %v", p.Name, p.F.Applied().Seq, p.F.Missing(3), p.Errs)
	}
	t.Fatalf("world did not quiesce")
}

func TestMultiPeerConcurrentSendersConverge(t *testing.T) {
	for seed := uint64(1); seed <= seeds(3); seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			w := heartbeattest.NewWorld(seed, lossy)
			if _, err := w.AddHost("relay", heartbeattest.Signer(seed*1000+2), nil); err != nil {
				t.Fatal(err)
			}
			for i := range 4 {
				if _, err := w.AddPeer(fmt.Sprint("peer", i), seed*1000+10+uint64(i)); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 4 {
				w.AddSender(fmt.Sprint("sender", i), seed*1000+20+uint64(i), 60, 20*time.Millisecond)
			}
			if err := w.Run(5 * time.Second); err != nil {
				t.Fatal(err)
			}
			quiesce(t, w)
			if err := w.Check(); err != nil {
				t.Fatal(err)
			}
			acked := 0
			for _, s := range w.Senders {
				acked += len(s.Acked)
				if len(s.Refused) > 0 {
					t.Fatalf("sender %s: %d refused: %v", s.Name, len(s.Refused), s.Refused)
				}
			}
			if acked != 240 {
				t.Fatalf("acked %d of 240", acked)
			}
			ref := w.Peers[0]
			for _, p := range w.Peers[1:] {
				if p.App.Hash != ref.App.Hash || len(p.Entries) != len(ref.Entries) {
					t.Fatalf("peer %s state %x (%d entries) vs %x (%d)", p.Name, p.App.Hash[:4], len(p.Entries), ref.App.Hash[:4], len(ref.Entries))
				}
			}
			t.Logf("entries %d, ticks seen %d..%d, net sent %d dropped %d dup %d", len(ref.Entries), minTicks(w), maxTicks(w), w.Net.Sent, w.Net.Dropped, w.Net.Duplicated)
			_ = heartbeat.KindMessage
		})
	}
}

// seeds returns n, or 1 in -short mode (the race run in CI).
func seeds(n uint64) uint64 {
	if testing.Short() {
		return 1
	}
	return n
}

func minTicks(w *heartbeattest.World) int {
	n := -1
	for _, p := range w.Peers {
		if n < 0 || len(p.Ticks) < n {
			n = len(p.Ticks)
		}
	}
	return n
}

func maxTicks(w *heartbeattest.World) int {
	n := 0
	for _, p := range w.Peers {
		n = max(n, len(p.Ticks))
	}
	return n
}
