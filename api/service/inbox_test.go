package service_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/api/rest"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
)

// TestInboxNodesAreTransient: the inbound message nodes of a hosted world
// are kept in memory within the bound (oldest dropped first) and never
// written to graph.db, while every message stays in the heartbeat log: an
// inbox node carries the seq and time the publication added, an old one is
// gone, none survives a restart, and the history still has every message.
func TestInboxNodesAreTransient(t *testing.T) {
	dir := t.TempDir()
	// A few inbox nodes of this size fit in 8 KiB.
	r := startRelay(t, relayOpts{dir: dir, inboxMemory: 8 << 10})
	inst := r.openWorld(t, "transient", 20)
	k := newKey(t)
	c := dial(t, r.URL, k)
	w := join(t, c, inst)
	col := collect(w)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 60
	var ids []heartbeat.Hash
	for i := range n {
		m := heartbeat.Message{Instance: inst, TS: time.Now().UnixMilli(), Nonce: fmt.Sprint(i), Payload: fmt.Sprintf(`{"n":%d,"pad":"%0200d"}`, i, 0)}
		if err := m.Sign(heartbeat.KeySigner(k)); err != nil {
			t.Fatal(err)
		}
		if _, err := w.SendMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID())
	}
	col.waitFor(t, 20*time.Second, "every message", func(es []heartbeat.Entry) bool { return len(messageIDs(es)) == n })

	last, err := r.db.Get(ctx, heartbeat.InboxSoul(inst, ids[n-1]))
	if err != nil {
		t.Fatalf("the newest inbox node: %v", err)
	}
	if f, ok := last.Fields["seq"]; !ok || f.Value.IsNull() {
		t.Fatalf("the newest inbox node has no seq: %v", last.Fields)
	}
	if _, err := r.db.Get(ctx, heartbeat.InboxSoul(inst, ids[0])); !errors.Is(err, graph.ErrNotFound) {
		t.Fatalf("the oldest inbox node was kept beyond the bound: %v", err)
	}
	st := r.store.(*graph.BoltStore).Stats()
	if st.TransientEvicted == 0 || st.TransientBytes > 8<<10 {
		t.Fatalf("transient bound: evicted %d, %d bytes", st.TransientEvicted, st.TransientBytes)
	}
	c.Close()
	r.stop()

	r2 := startRelay(t, relayOpts{dir: dir, inboxMemory: 8 << 10})
	for i, id := range ids {
		if _, err := r2.db.Get(ctx, heartbeat.InboxSoul(inst, id)); !errors.Is(err, graph.ErrNotFound) {
			t.Fatalf("inbox node %d survived a restart: %v", i, err)
		}
	}
	page, err := r2.svc.History(ctx, inst, rest.HistoryQuery{From: 1, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	logged := map[heartbeat.Hash]bool{}
	for _, e := range page.Entries {
		if e.Kind == heartbeat.KindMessage {
			logged[e.MessageID()] = true
		}
	}
	for i, id := range ids {
		if !logged[id] {
			t.Fatalf("message %d missing from the history after the restart", i)
		}
	}
}
