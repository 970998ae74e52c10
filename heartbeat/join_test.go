package heartbeat_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/heartbeat/heartbeattest"
)

func TestJoinMidStreamViaSnapshot(t *testing.T) {
	for seed := uint64(1); seed <= seeds(2); seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			w := heartbeattest.NewWorld(seed, lossy)
			if _, err := w.AddHost("relay", heartbeattest.Signer(seed*1000+2), nil); err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				p, err := w.AddPeer(fmt.Sprint("peer", i), seed*1000+10+uint64(i))
				if err != nil {
					t.Fatal(err)
				}
				p.VoteEvery = 25
			}
			for i := range 3 {
				w.AddSender(fmt.Sprint("sender", i), seed*1000+20+uint64(i), 80, 25*time.Millisecond)
			}
			if err := w.Run(2 * time.Second); err != nil {
				t.Fatal(err)
			}
			st, err := w.Log.State(heartbeattest.Ctx, w.Instance)
			if err != nil {
				t.Fatal(err)
			}
			if st.Snapshot == nil {
				t.Fatalf("no snapshot accepted by seq %d (presence %v)", st.Head.Seq, st.Presence)
			}
			if len(st.Presence) != 3 {
				t.Fatalf("presence %v, want the 3 peers once each", st.Presence)
			}
			late, b, err := w.JoinPeer("late", seed*1000+30)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("joined at snapshot seq %d (marker %d), head %d, page %d entries", b.Snapshot.Seq, b.Snapshot.Marker, st.Head.Seq, len(b.Page.Entries))
			if err := w.Run(2 * time.Second); err != nil {
				t.Fatal(err)
			}
			quiesce(t, w)
			if err := w.Check(); err != nil {
				t.Fatal(err)
			}
			if late.Entries[0].Seq != b.Snapshot.Seq+1 {
				t.Fatalf("late joiner's first entry %d, want %d", late.Entries[0].Seq, b.Snapshot.Seq+1)
			}
			for _, p := range w.Peers {
				if p.App.Hash != late.App.Hash || p.App.Count != late.App.Count {
					t.Fatalf("peer %s state %x/%d, late joiner %x/%d", p.Name, p.App.Hash[:4], p.App.Count, late.App.Hash[:4], late.App.Count)
				}
			}
		})
	}
}

func TestJoinWithoutSnapshotReplaysWholeLog(t *testing.T) {
	w := heartbeattest.NewWorld(5, lossy)
	if _, err := w.AddHost("relay", heartbeattest.Signer(5002), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddPeer("peer0", 5010); err != nil {
		t.Fatal(err)
	}
	w.AddSender("sender0", 5020, 30, 20*time.Millisecond)
	if err := w.Run(time.Second); err != nil {
		t.Fatal(err)
	}
	late, b, err := w.JoinPeer("late", 5030)
	if err != nil {
		t.Fatal(err)
	}
	if b.Snapshot != nil || late.Entries[0].Seq != 1 {
		t.Fatalf("expected a replay from seq 1, got snapshot %v first %d", b.Snapshot, late.Entries[0].Seq)
	}
	quiesce(t, w)
	if err := w.Check(); err != nil {
		t.Fatal(err)
	}
	if late.App.Hash != w.Peers[0].App.Hash {
		t.Fatal("late joiner diverged")
	}
}
