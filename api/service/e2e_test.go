package service_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/client"
	"github.com/krestianstvo/luminary/heartbeat"
)

// TestEndToEndThreeClients: a relay with bolt stores in a temp dir, three
// Go clients following one world and sending concurrently. Every client
// ends with the identical ordered stream (entries and their Croquet times),
// and every acknowledged message appears in it exactly once.
func TestEndToEndThreeClients(t *testing.T) {
	r := startRelay(t, relayOpts{})
	inst := r.openWorld(t, "e2e", 20)

	const clients, perClient = 3, 25
	var worlds []*collector
	var keysSent []string
	var senders []*client.World
	for i := range clients {
		k := newKey(t)
		keysSent = append(keysSent, k.Public().String())
		c := dial(t, r.URL, k)
		if !c.LoggedIn() {
			t.Fatalf("client %d did not log in", i)
		}
		w := join(t, c, inst)
		worlds = append(worlds, collect(w))
		senders = append(senders, w)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := newAcks()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i, w := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- a.send(ctx, w, perClient, func(j int) []byte { return fmt.Appendf(nil, `{"from":%d,"n":%d}`, i, j) })
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	acked := a.all()
	if len(acked) != clients*perClient {
		t.Fatalf("%d distinct receipts, want %d", len(acked), clients*perClient)
	}
	for i, w := range worlds {
		w.waitFor(t, 30*time.Second, fmt.Sprintf("client %d to see every acked message", i), func(es []heartbeat.Entry) bool {
			n := 0
			for _, id := range messageIDs(es) {
				if _, ok := acked[id]; ok {
					n++
				}
			}
			return n >= len(acked)
		})
	}
	ref, refTimes := worlds[0].snapshot()
	for i, w := range worlds[1:] {
		es, times := w.snapshot()
		n := min(len(es), len(ref))
		for k := range n {
			if es[k].Hash() != ref[k].Hash() || times[k] != refTimes[k] {
				t.Fatalf("client %d differs from client 0 at position %d: seq %d vs %d", i+1, k, es[k].Seq, ref[k].Seq)
			}
		}
	}
	seen := map[heartbeat.Hash]int{}
	var last float64
	for k, e := range ref {
		if refTimes[k] < last {
			t.Fatalf("time went backwards at seq %d", e.Seq)
		}
		last = refTimes[k]
		if k > 0 && e.Seq != ref[k-1].Seq+1 {
			t.Fatalf("seq gap: %d after %d", e.Seq, ref[k-1].Seq)
		}
		if e.Kind == heartbeat.KindMessage {
			id := e.MessageID()
			seen[id]++
			if rc, ok := acked[id]; ok && (rc.Seq != e.Seq || rc.Time != refTimes[k]) {
				t.Fatalf("receipt of %s says seq %d time %v, stream has seq %d time %v", id, rc.Seq, rc.Time, e.Seq, refTimes[k])
			}
		}
	}
	for id := range acked {
		if seen[id] != 1 {
			t.Fatalf("acked message %s appears %d times", id, seen[id])
		}
	}
	// Presence: every logged-in follower joined once.
	var joined []string
	for _, e := range ref {
		if e.Kind == heartbeat.KindJoin {
			joined = append(joined, e.Author)
		}
	}
	for _, k := range keysSent {
		if !slices.Contains(joined, k) {
			t.Errorf("no join entry for %s", k)
		}
	}
}
