package service_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/client"
	"github.com/krestianstvo/luminary/heartbeat"
)

// TestRestartResumesTime: the relay-run metronome restarts (relay closed,
// reopened on the same data dir): every acknowledged message is still in
// the log, in order, and Croquet time resumes at or above the last value a
// client saw.
func TestRestartResumesTime(t *testing.T) {
	dir := t.TempDir()
	r := startRelay(t, relayOpts{dir: dir})
	inst := r.openWorld(t, "restart", 20)
	k := newKey(t)
	c := dial(t, r.URL, k)
	w := join(t, c, inst)
	col := collect(w)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var acked []heartbeat.Receipt
	for i := range 10 {
		rc, err := w.Send(ctx, fmt.Appendf(nil, `{"n":%d}`, i))
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, rc)
	}
	col.waitFor(t, 10*time.Second, "acked messages", func(es []heartbeat.Entry) bool { return len(messageIDs(es)) >= len(acked) })
	// Let a few idle ticks go by, then note the time the client saw last.
	deadline := time.After(10 * time.Second)
	for n := 0; n < 3; {
		select {
		case <-col.changed:
		case <-deadline:
			t.Fatal("no idle ticks")
		}
		col.mu.Lock()
		n = col.ticks
		col.mu.Unlock()
	}
	lastSeen := w.Time()
	c.Close()
	r.stop()

	r2 := startRelay(t, relayOpts{dir: dir})
	c2 := dial(t, r2.URL, k)
	w2 := join(t, c2, inst)
	col2 := collect(w2)
	rc, err := w2.Send(ctx, []byte(`{"after":"restart"}`))
	if err != nil {
		t.Fatal(err)
	}
	if rc.Time < lastSeen {
		t.Fatalf("time went backwards across the restart: %v after %v", rc.Time, lastSeen)
	}
	col2.waitFor(t, 10*time.Second, "the new message", func(es []heartbeat.Entry) bool {
		ids := messageIDs(es)
		return len(ids) > 0 && ids[len(ids)-1] == rc.ID
	})
	es, times := col2.snapshot()
	i := 0
	var epochs []uint64
	for k, e := range es {
		if k > 0 && times[k] < times[k-1] {
			t.Fatalf("time went backwards at seq %d", e.Seq)
		}
		if e.Kind == heartbeat.KindEpoch {
			epochs = append(epochs, e.Epoch)
		}
		if i < len(acked) && e.Kind == heartbeat.KindMessage && e.MessageID() == acked[i].ID {
			if e.Seq != acked[i].Seq {
				t.Fatalf("acked message %d at seq %d, receipt said %d", i, e.Seq, acked[i].Seq)
			}
			i++
		}
	}
	if i != len(acked) {
		t.Fatalf("found %d of %d acked messages after the restart", i, len(acked))
	}
	if len(epochs) < 2 || epochs[len(epochs)-1] <= epochs[0] {
		t.Fatalf("epochs %v: the restart should start a new term", epochs)
	}
}

// stateHash is the test application's state: SHA-256 over the payloads of
// the applied messages, in order.
func stateHash(es []heartbeat.Entry) [32]byte {
	h := sha256.New()
	for i := range es {
		if es[i].Kind == heartbeat.KindMessage {
			fmt.Fprintf(h, "%d:%s\n", len(es[i].Payload), es[i].Payload)
		}
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// TestJoinMidStream: a client that joins after messages were sequenced
// replays the log and reaches the same state hash as the clients that were
// there from the start, and stays in step afterwards.
func TestJoinMidStream(t *testing.T) {
	r := startRelay(t, relayOpts{})
	inst := r.openWorld(t, "late", 20)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var early []*collector
	var senders []*client.World
	for range 2 {
		c := dial(t, r.URL, newKey(t))
		w := join(t, c, inst)
		early = append(early, collect(w))
		senders = append(senders, w)
	}
	var last heartbeat.Receipt
	for i := range 40 {
		rc, err := senders[i%2].Send(ctx, fmt.Appendf(nil, `{"i":%d}`, i))
		if err != nil {
			t.Fatal(err)
		}
		last = rc
	}
	late := dial(t, r.URL, newKey(t))
	lw := join(t, late, inst)
	lc := collect(lw)
	for i := 40; i < 50; i++ {
		rc, err := senders[i%2].Send(ctx, fmt.Appendf(nil, `{"i":%d}`, i))
		if err != nil {
			t.Fatal(err)
		}
		last = rc
	}
	upTo := func(es []heartbeat.Entry) []heartbeat.Entry {
		for k := range es {
			if es[k].Seq == last.Seq {
				return es[:k+1]
			}
		}
		return nil
	}
	var hashes [][32]byte
	for _, col := range append(early, lc) {
		col.waitFor(t, 20*time.Second, "the last message", func(es []heartbeat.Entry) bool { return upTo(es) != nil })
		es, _ := col.snapshot()
		hashes = append(hashes, stateHash(upTo(es)))
	}
	for i := 1; i < len(hashes); i++ {
		if hashes[i] != hashes[0] {
			t.Fatalf("client %d state %x, client 0 %x", i, hashes[i][:6], hashes[0][:6])
		}
	}
	if es, _ := lc.snapshot(); len(messageIDs(upTo(es))) != 50 {
		t.Fatalf("late joiner applied %d messages, want 50", len(messageIDs(upTo(es))))
	}
}

// TestClientHostsWorld: a client key hosts its own world on the relay
// (tick certificate for the relay key, signed POST /api/worlds); another
// client follows it and sees the owner's messages, with ticks signed by
// the relay key and checked against the published certificate.
func TestClientHostsWorld(t *testing.T) {
	r := startRelay(t, relayOpts{dir: "-"})
	owner := newKey(t)
	oc := dial(t, r.URL, owner)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ow, err := oc.Host(ctx, client.HostSpec{Name: "mine", TPS: 30})
	if err != nil {
		t.Fatal(err)
	}
	if ow.Instance() != owner.Public().String() {
		t.Fatalf("instance %s", ow.Instance())
	}
	rc, err := ow.Send(ctx, []byte(`{"owner":"hello"}`))
	if err != nil {
		t.Fatal(err)
	}
	fc := dial(t, r.URL, newKey(t))
	fw := join(t, fc, ow.Instance())
	// The receipt means the message is durable in the log; the relay
	// writes it to the graph just after, so a joiner may start one
	// publication behind and receive it live.
	collect(fw).waitFor(t, 20*time.Second, "the owner's message", func(es []heartbeat.Entry) bool {
		return len(es) > 0 && es[len(es)-1].Seq >= rc.Seq
	})
	// A key without the message role is refused.
	_, err = fw.Send(ctx, []byte(`{"stranger":true}`))
	relayRefusal(t, err, "restricted:")
	info, err := r.svc.World(ctx, ow.Instance())
	if err != nil {
		t.Fatal(err)
	}
	if info.TPS != 30 || !info.Metronome.Local {
		t.Fatalf("world info %+v", info)
	}
}
