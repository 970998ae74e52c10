package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/api/rest"
	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/client"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/keys"
)

// Reliability table A rows 15, 20, 23, 24 and 26, through the relay (the
// Gun wire, the checker, the service's guard and the sequencer).

func relayRefusal(t *testing.T, err error, prefix string) {
	t.Helper()
	var re *client.RelayError
	if !errors.As(err, &re) || !strings.HasPrefix(re.Reason, prefix) {
		t.Fatalf("got %v, want a relay refusal starting %q", err, prefix)
	}
}

func signedField(t *testing.T, k *keys.Private, soul, field string, v graph.Value, chain ...*auth.Cert) graph.Graph {
	t.Helper()
	st := float64(time.Now().UnixMicro()) / 1000
	wv, err := auth.SignField(k, soul, field, v, st, chain...)
	if err != nil {
		t.Fatal(err)
	}
	return graph.Graph{soul: {Soul: soul, Fields: map[string]graph.Field{field: {Value: wv, State: st}}}}
}

func currentTick(t *testing.T, c *client.Client, inst string) (heartbeat.Tick, graph.Field) {
	t.Helper()
	n, err := c.Get(context.Background(), heartbeat.HeartbeatSoul(inst))
	if err != nil || n == nil {
		t.Fatalf("get hb: %v %v", n, err)
	}
	f := n.Fields["tick"]
	s, _ := f.Value.AsString()
	tk, err := heartbeat.ParseTick([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return tk, f
}

// TestTableA20TickWithoutRole: a tick written by a key without the tick
// role is refused "restricted: not authorised to tick"; nothing is stored.
func TestTableA20TickWithoutRole(t *testing.T) {
	r := startRelay(t, relayOpts{dir: "-"})
	inst := r.openWorld(t, "a20", 20)
	stranger := newKey(t)
	c := dial(t, r.URL, stranger)
	w := join(t, c, inst)
	before, _ := currentTick(t, c, inst)
	tk := before
	tk.State += 10
	err := c.Put(context.Background(), signedField(t, stranger, heartbeat.HeartbeatSoul(inst), "tick", graph.String(string(tk.AppendJSON(nil)))))
	relayRefusal(t, err, "restricted: not authorised to tick")
	// Nothing stored: the tick field holds a relay tick (plain JSON text).
	_, f := currentTick(t, c, inst)
	if s, _ := f.Value.AsString(); strings.HasPrefix(s, `{":"`) {
		t.Fatalf("the stranger's tick was stored: %s", s)
	}
	if w.Err() != nil {
		t.Fatal(w.Err())
	}
}

// TestTableA23TickOutOfOrder: a tick-role holder (not the sequencer)
// writing a tick that does not continue the order is refused "invalid:
// time/seq order"; any other sequencer write is "restricted: not the
// sequencer".
func TestTableA23TickOutOfOrder(t *testing.T) {
	r := startRelay(t, relayOpts{dir: "-"})
	inst := r.openWorld(t, "a23", 20)
	ticker, chain := r.tickKey(t, inst)
	c := dial(t, r.URL, ticker)
	w := join(t, c, inst)
	old, _ := currentTick(t, c, inst)
	hb := heartbeat.HeartbeatSoul(inst)
	// Wait until the tick has moved on, so that old is in the past.
	timeout := time.After(10 * time.Second)
wait:
	for {
		select {
		case ev := <-w.Events():
			if ev.Tick != nil && ev.Tick.State > old.State {
				break wait
			}
		case <-timeout:
			t.Fatal("the tick does not move")
		}
	}
	err := c.Put(context.Background(), signedField(t, ticker, hb, "tick", graph.String(string(old.AppendJSON(nil))), chain...))
	relayRefusal(t, err, "invalid: time/seq order")
	gap := old
	gap.Seq += 5
	gap.State += 1e6
	err = c.Put(context.Background(), signedField(t, ticker, hb, "tick", graph.String(string(gap.AppendJSON(nil))), chain...))
	relayRefusal(t, err, "invalid: time/seq order")
	err = c.Put(context.Background(), signedField(t, ticker, heartbeat.BlockSoul(inst, 1), heartbeat.SeqField(1), graph.String("x"), chain...))
	relayRefusal(t, err, "restricted: not the sequencer")
	cur, _ := currentTick(t, c, inst)
	if cur.Proof.Signer != r.svc.RelayKey().String() {
		t.Fatalf("tick now signed by %s", cur.Proof.Signer)
	}
}

// TestTableA24TimestampWindow: a message whose client timestamp lies
// outside the window (-120 s / +30 s) is refused "invalid: timestamp out
// of window"; a message inside it is sequenced.
func TestTableA24TimestampWindow(t *testing.T) {
	r := startRelay(t, relayOpts{dir: "-"})
	inst := r.openWorld(t, "a24", 20)
	c := dial(t, r.URL, newKey(t))
	w := join(t, c, inst)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	k := newKey(t)
	for _, skew := range []time.Duration{-150 * time.Second, 45 * time.Second} {
		m := heartbeat.Message{Instance: inst, TS: time.Now().Add(skew).UnixMilli(), Nonce: skew.String(), Payload: `{"skewed":true}`}
		if err := m.Sign(heartbeat.KeySigner(k)); err != nil {
			t.Fatal(err)
		}
		_, err := w.SendMessage(ctx, m)
		relayRefusal(t, err, "invalid: timestamp out of window")
		if _, ok, _ := r.svc.Log().Lookup(ctx, inst, m.ID()); ok {
			t.Fatal("out-of-window message sequenced")
		}
	}
	if _, err := w.Send(ctx, []byte(`{"in":"window"}`)); err != nil {
		t.Fatal(err)
	}
}

// TestTableA15ReplayAfterRestart: re-sending an accepted message, also
// after the relay restarted, is answered with its original seq (a
// "duplicate:" receipt); the log holds it once.
func TestTableA15ReplayAfterRestart(t *testing.T) {
	dir := t.TempDir()
	r := startRelay(t, relayOpts{dir: dir})
	inst := r.openWorld(t, "a15", 20)
	k := newKey(t)
	c := dial(t, r.URL, k)
	w := join(t, c, inst)
	m := heartbeat.Message{Instance: inst, TS: time.Now().UnixMilli(), Nonce: "once", Payload: `{"n":1}`}
	if err := m.Sign(heartbeat.KeySigner(k)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, err := w.SendMessage(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	r.stop()

	r2 := startRelay(t, relayOpts{dir: dir})
	c2 := dial(t, r2.URL, k)
	w2, err := c2.Join(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	// The world remembers the message from the stream; a fresh client
	// that never saw it asks the relay.
	c3 := dial(t, r2.URL, newKey(t))
	w3 := join(t, c3, inst)
	_ = w2
	again, err := w3.SendMessage(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if again.Seq != first.Seq || again.Time != first.Time {
		t.Fatalf("replay receipt %+v, original %+v", again, first)
	}
	// Put the very same inbox node through the wire: refused as a
	// duplicate, nothing stored twice.
	diff := graph.Graph{}
	for _, p := range heartbeat.InboxPuts(&m, float64(time.Now().UnixMicro())/1000) {
		n := diff[p.Soul]
		if n == nil {
			n = graph.NewNode(p.Soul)
			diff[p.Soul] = n
		}
		v, _ := graph.ValueOf(p.Value)
		n.Fields[p.Field] = graph.Field{Value: v, State: p.State}
	}
	relayRefusal(t, c3.Put(ctx, diff), "duplicate:")
	n := 0
	page, err := r2.svc.History(ctx, inst, rest.HistoryQuery{From: 1, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Entries {
		if e.Kind == heartbeat.KindMessage && e.MessageID() == m.ID() {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("message in the log %d times", n)
	}
}

// TestTableA26PrivateWorldBeforeAuth: a write to (and a read of) a private
// world by a connection that has not logged in as a member is refused
// "auth-required: private instance"; nothing is stored.
func TestTableA26PrivateWorldBeforeAuth(t *testing.T) {
	r := startRelay(t, relayOpts{dir: "-"})
	ctx := context.Background()
	wi, err := r.svc.CreateWorld(ctx, rest.WorldSpec{Alias: "secret", Name: "secret", Private: true})
	if err != nil {
		t.Fatal(err)
	}
	inst := wi.Instance
	author := newKey(t)
	c, err := client.Dial(ctx, r.URL, client.Config{}) // no key: never logs in
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := heartbeat.Message{Instance: inst, TS: time.Now().UnixMilli(), Nonce: "x", Payload: `{"hello":1}`}
	if err := m.Sign(heartbeat.KeySigner(author)); err != nil {
		t.Fatal(err)
	}
	diff := graph.Graph{}
	for _, p := range heartbeat.InboxPuts(&m, float64(time.Now().UnixMicro())/1000) {
		n := diff[p.Soul]
		if n == nil {
			n = graph.NewNode(p.Soul)
			diff[p.Soul] = n
		}
		v, _ := graph.ValueOf(p.Value)
		n.Fields[p.Field] = graph.Field{Value: v, State: p.State}
	}
	relayRefusal(t, c.Put(ctx, diff), "auth-required: private instance")
	_, err = c.Get(ctx, heartbeat.HeartbeatSoul(inst))
	relayRefusal(t, err, "auth-required: private instance")
	if _, err := r.db.Get(ctx, heartbeat.InboxSoul(inst, m.ID())); err == nil {
		t.Fatal("the refused message was stored")
	}
	if _, ok, _ := r.svc.Log().Lookup(ctx, inst, m.ID()); ok {
		t.Fatal("the refused message was sequenced")
	}
}
