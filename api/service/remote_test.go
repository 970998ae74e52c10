package service_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/api/service"
	"github.com/krestianstvo/luminary/client"
	"github.com/krestianstvo/luminary/heartbeat"
)

// metronome runs a client's RunMetronome until stop is called.
type metronome struct {
	cancel context.CancelFunc
	done   chan error
}

func runMetronome(w *client.World) *metronome {
	ctx, cancel := context.WithCancel(context.Background())
	m := &metronome{cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- w.RunMetronome(ctx, client.MetronomeOptions{}) }()
	return m
}

func (m *metronome) stop(t *testing.T) {
	t.Helper()
	m.cancel()
	select {
	case err := <-m.done:
		if err != nil {
			t.Fatalf("RunMetronome: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunMetronome did not return")
	}
}

// epochBy returns the epoch of the first epoch entry authored by key, or 0.
func epochBy(es []heartbeat.Entry, key string) uint64 {
	for i := range es {
		if es[i].Kind == heartbeat.KindEpoch && es[i].Author == key {
			return es[i].Epoch
		}
	}
	return 0
}

// hasEntry reports whether es holds an entry of kind by author in epoch.
func hasEntry(es []heartbeat.Entry, kind heartbeat.Kind, author string, epoch uint64) bool {
	for i := range es {
		if es[i].Kind == kind && es[i].Author == author && es[i].Epoch == epoch {
			return true
		}
	}
	return false
}

// epochsBy returns the epochs of the epoch entries authored by key.
func epochsBy(es []heartbeat.Entry, key string) map[uint64]bool {
	out := map[uint64]bool{}
	for i := range es {
		if es[i].Kind == heartbeat.KindEpoch && es[i].Author == key {
			out[es[i].Epoch] = true
		}
	}
	return out
}

// TestRemoteMetronomeFailover: two peers holding the world's tick role
// run its metronome through the relay. The first takes the world from
// the relay's own host; messages from a third client are sequenced by it
// and acknowledged with its epoch; when it disappears (its connection
// drops) the standby peer takes over under a new epoch and logs A's
// leave and the join of a key that starts following, and when that one
// stops, the relay's host takes the world back. The follower's stream is
// one chain: contiguous seqs, increasing epochs, time never going back,
// every acknowledged message exactly once, with its receipt's seq and time.
func TestRemoteMetronomeFailover(t *testing.T) {
	r := startRelay(t, relayOpts{})
	inst := r.openWorld(t, "remote", 20)
	ctx := context.Background()
	ka, _ := r.tickKey(t, inst)
	kb, _ := r.tickKey(t, inst)
	// A web page's join grant lists them as sequencers (it trusts no other tick signers).
	grant, err := r.svc.Join(ctx, inst, newKey(t).Public().String())
	if err != nil {
		t.Fatal(err)
	}
	seqs := []string{r.svc.RelayKey().String(), ka.Public().String(), kb.Public().String()}
	slices.Sort(seqs)
	if !slices.Equal(grant.Sequencers, seqs) {
		t.Fatalf("join grant sequencers %v, want %v", grant.Sequencers, seqs)
	}
	ca, cb := dial(t, r.URL, ka), dial(t, r.URL, kb)
	wa, wb := join(t, ca, inst), join(t, cb, inst)
	sender := dial(t, r.URL, newKey(t))
	ws := join(t, sender, inst)
	follower := collect(join(t, dial(t, r.URL, newKey(t)), inst))

	a := newAcks()
	send := func(n int, tag string) {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := a.send(sctx, ws, n, func(i int) []byte { return fmt.Appendf(nil, `{"tag":%q,"n":%d}`, tag, i) }); err != nil {
			t.Errorf("send (%s): %v", tag, err)
		}
	}

	// A takes the world from the relay's host.
	ma := runMetronome(wa)
	follower.waitFor(t, 20*time.Second, "A's term", func(es []heartbeat.Entry) bool { return epochBy(es, ka.Public().String()) > 0 })
	es, _ := follower.snapshot()
	epochA := epochBy(es, ka.Public().String())
	send(20, "A")
	es, _ = follower.snapshot()
	for _, e := range es {
		if e.Kind == heartbeat.KindEpoch {
			t.Logf("epoch entry: seq %d epoch %d by %s", e.Seq, e.Epoch, e.Author)
		}
	}
	for _, rc := range a.all() {
		if !epochsBy(es, ka.Public().String())[rc.Epoch] {
			t.Fatalf("a message sent during A's term has a receipt of epoch %d, not one of A's", rc.Epoch)
		}
	}

	// B stands by; A's connection drops while messages are in flight.
	mb := runMetronome(wb)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); send(30, "failover") }()
	dropped := time.Now()
	ca.Close()
	ma.stop(t)
	follower.waitFor(t, 20*time.Second, "B's term", func(es []heartbeat.Entry) bool { return epochBy(es, kb.Public().String()) > 0 })
	t.Logf("B's epoch entry reached the follower %v after A's connection dropped", time.Since(dropped).Round(time.Millisecond))
	wg.Wait()
	// A's connection is gone: B, sequencing now, logs that A left. (On a
	// loaded machine B may have stepped down and started again meanwhile:
	// any of B's terms will do.)
	inB := func(kind heartbeat.Kind, author string) func([]heartbeat.Entry) bool {
		return func(es []heartbeat.Entry) bool {
			for e := range epochsBy(es, kb.Public().String()) {
				if hasEntry(es, kind, author, e) {
					return true
				}
			}
			return false
		}
	}
	follower.waitFor(t, 20*time.Second, "A's leave in B's term", inB(heartbeat.KindLeave, ka.Public().String()))
	// A key that starts following during B's term: B logs its join.
	ke := newKey(t)
	join(t, dial(t, r.URL, ke), inst)
	follower.waitFor(t, 20*time.Second, "a join in B's term", inB(heartbeat.KindJoin, ke.Public().String()))
	send(20, "B")

	// B stops: the relay's host takes the world back.
	mb.stop(t)
	relayKey := r.svc.RelayKey().String()
	follower.waitFor(t, 20*time.Second, "the relay's new term", func(es []heartbeat.Entry) bool {
		eb := epochBy(es, kb.Public().String())
		for i := range es {
			if es[i].Kind == heartbeat.KindEpoch && es[i].Author == relayKey && es[i].Epoch > eb {
				return true
			}
		}
		return false
	})
	send(10, "relay")

	acked := a.all()
	want := len(acked)
	if t.Failed() {
		t.FailNow()
	}
	if want != 80 {
		t.Fatalf("%d distinct receipts, want 80", want)
	}
	follower.waitFor(t, 20*time.Second, "every acked message", func(es []heartbeat.Entry) bool {
		n := 0
		for _, id := range messageIDs(es) {
			if _, ok := acked[id]; ok {
				n++
			}
		}
		return n >= want
	})
	es, times := follower.snapshot()
	seen := map[heartbeat.Hash]int{}
	var lastEpoch uint64
	var lastTime float64
	for k, e := range es {
		if k > 0 && e.Seq != es[k-1].Seq+1 {
			t.Fatalf("seq gap: %d after %d", e.Seq, es[k-1].Seq)
		}
		if e.Epoch < lastEpoch {
			t.Fatalf("epoch went back at seq %d: %d after %d", e.Seq, e.Epoch, lastEpoch)
		}
		if times[k] < lastTime {
			t.Fatalf("time went back at seq %d: %v after %v", e.Seq, times[k], lastTime)
		}
		lastEpoch, lastTime = e.Epoch, times[k]
		if e.Kind == heartbeat.KindMessage {
			id := e.MessageID()
			seen[id]++
			if rc, ok := acked[id]; ok && (rc.Seq != e.Seq || rc.Epoch != e.Epoch || rc.Time != times[k]) {
				t.Fatalf("receipt of %s: seq %d epoch %d time %v; stream: seq %d epoch %d time %v",
					id, rc.Seq, rc.Epoch, rc.Time, e.Seq, e.Epoch, times[k])
			}
		}
	}
	for id := range acked {
		if seen[id] != 1 {
			t.Fatalf("acked message %s appears %d times", id, seen[id])
		}
	}
	if eb := epochBy(es, kb.Public().String()); eb <= epochA {
		t.Fatalf("B's epoch %d is not above A's %d", eb, epochA)
	}
}

// TestRemoteMetronomeRefusals: a logged-in key without the world's tick
// role is refused by the lumSeq route, and RunMetronome says so instead of
// competing for the lease.
func TestRemoteMetronomeRefusals(t *testing.T) {
	r := startRelay(t, relayOpts{})
	inst := r.openWorld(t, "remote-refusals", 20)
	w := join(t, dial(t, r.URL, newKey(t)), inst)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := w.RunMetronome(ctx, client.MetronomeOptions{})
	if !errors.Is(err, heartbeat.ErrNotAuthorisedToTick) {
		t.Fatalf("RunMetronome without the tick role: %v, want a restricted: refusal", err)
	}
	if ctx.Err() != nil {
		t.Fatal("RunMetronome waited for the context instead of returning the refusal")
	}
}

// TestRemoteMetronomesDisabled: a relay run with remote metronomes off
// (serve --no-remote-metronomes) refuses even the owner's tick-role peer.
func TestRemoteMetronomesDisabled(t *testing.T) {
	r := startRelay(t, relayOpts{mutate: func(c *service.Config) { c.Remote.Disabled = true }})
	inst := r.openWorld(t, "remote-off", 20)
	k, _ := r.tickKey(t, inst)
	w := join(t, dial(t, r.URL, k), inst)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := w.RunMetronome(ctx, client.MetronomeOptions{})
	var re *client.RelayError
	if !errors.As(err, &re) || re.Reason != "restricted: remote metronomes are disabled on this relay" {
		t.Fatalf("RunMetronome on a relay without remote metronomes: %v", err)
	}
}
