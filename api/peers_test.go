package api

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestPeerURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8765/gun": "ws://127.0.0.1:8765/gun",
		"https://relay.example/gun": "wss://relay.example/gun",
		"http://127.0.0.1:8765":     "ws://127.0.0.1:8765/gun",
		"ws://h:1/":                 "ws://h:1/gun",
		"wss://h/custom":            "wss://h/custom",
		" http://127.0.0.1:9/gun  ": "ws://127.0.0.1:9/gun",
	} {
		got, err := PeerURL(in)
		if err != nil || got != want {
			t.Errorf("PeerURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://x/gun", "127.0.0.1:8765", "http:///gun", "::"} {
		if _, err := PeerURL(bad); err == nil {
			t.Errorf("PeerURL(%q) accepted", bad)
		}
	}
}

func TestBackoff(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PeerRetryMin = 100 * time.Millisecond; c.PeerRetryMax = 2 * time.Second })
	for n := 1; n < 40; n++ {
		d := e.srv.backoff(n)
		ceil := min(100*time.Millisecond<<min(n-1, 30), 2*time.Second)
		if d < ceil/2 || d > ceil {
			t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, d, ceil/2, ceil)
		}
	}
}

// TestPeeringTwoRelays runs relay B with --peers pointing at relay A: a put
// on either side reaches a subscriber on the other, and B redials A (on the
// fake clock's backoff) and re-subscribes after the link drops.
func TestPeeringTwoRelays(t *testing.T) {
	a := newEnv(t)
	b := newEnv(t, func(c *Config) {
		c.Peers = []string{a.http.URL + "/gun"}
		c.PeerRetryMin = 200 * time.Millisecond
		c.PeerRetryMax = time.Second
	})
	b.srv.Start()
	waitFor(t, "link up", func() bool {
		return b.metric("luminary_peers_connected") == 1 && a.metric("luminary_connections") == 1
	})
	st := a.now() - 10000

	// A put on A reaches a subscriber on B (B forwarded the get to A).
	cb := b.dial()
	cb.get("gb", "x")
	waitFor(t, "B's subscription forwarded to A", func() bool { return a.metric("luminary_subscriptions") == 1 })
	ca := a.dial()
	if ack := ca.put("pa", "x", st, "v", `"from A"`); ack["ok"] != true {
		t.Fatalf("ack %v", ack)
	}
	if m := cb.next(); m.node("x")["v"] != "from A" {
		t.Fatalf("subscriber on B got %v", m)
	}

	// A put on B reaches a subscriber on A (B forwards puts to its links).
	ca.get("ga", "y")
	if ack := cb.put("pb", "y", st, "v", `"from B"`); ack["ok"] != true {
		t.Fatalf("ack %v", ack)
	}
	if m := ca.next(); m.node("y")["v"] != "from B" {
		t.Fatalf("subscriber on A got %v", m)
	}
	if a.stored("y") == nil || b.stored("x") == nil {
		t.Fatal("data not replicated to both stores")
	}

	// Drop the link from A's side; B redials after its backoff and asks
	// for "x" again, so A's changes flow to cb once more.
	var link *conn
	for _, c := range a.srv.snapshot() {
		if c.info.PID() == b.srv.pid {
			link = c
		}
	}
	if link == nil {
		t.Fatal("link connection not found on A")
	}
	link.closeWith(websocket.CloseGoingAway, "test", false)
	waitFor(t, "link down", func() bool { return b.metric("luminary_peers_connected") == 0 })
	waitFor(t, "link redialled", func() bool {
		b.clk.Advance(250 * time.Millisecond)
		return b.metric("luminary_peers_connected") == 1
	})
	waitFor(t, "re-subscribed", func() bool { return a.metric("luminary_subscriptions") == 2 })
	ca.put("pa2", "x", st+1, "v", `"again"`)
	for {
		m := cb.next()
		if m.node("x")["v"] == "again" {
			break
		}
	}
	if b.metric("luminary_peer_dials_total", "result", "ok") != 2 {
		t.Fatalf("dials: %v", b.metric("luminary_peer_dials_total", "result", "ok"))
	}
}

// TestPeeringNoEchoLoop connects two relays to each other in both
// directions: a put must not circulate.
func TestPeeringNoEchoLoop(t *testing.T) {
	a := newEnv(t)
	b := newEnv(t)
	for _, p := range []struct{ from, to *testEnv }{{a, b}, {b, a}} {
		ps, err := newPeerSet(p.from.srv, []string{p.to.http.URL})
		if err != nil {
			t.Fatal(err)
		}
		p.from.srv.peers = ps
		p.from.srv.Start()
	}
	waitFor(t, "links up", func() bool {
		return a.metric("luminary_peers_connected") == 1 && b.metric("luminary_peers_connected") == 1
	})
	ca, cb := a.dial(), b.dial()
	cb.get("g", "loop")
	waitFor(t, "subscription forwarded", func() bool { return a.metric("luminary_subscriptions") >= 1 })
	ca.put("p", "loop", a.now()-1000, "v", "1")
	if m := cb.next(); m.node("loop")["v"] != 1.0 {
		t.Fatalf("got %v", m)
	}
	// Each relay accepted the field once; the forwarded copies were
	// dropped by dedup or lost HAM, so nothing is pushed again. A relay
	// counts an accepted field when it answers the put, which may come
	// after the push cb has already read: wait for both counts first.
	accepted := func() (float64, float64) {
		return a.metric("luminary_fields_accepted_total"), b.metric("luminary_fields_accepted_total")
	}
	waitFor(t, "both relays to count the field", func() bool { na, nb := accepted(); return na >= 1 && nb >= 1 })
	cb.get("g2", "other")
	if na, nb := accepted(); na != 1 || nb != 1 {
		t.Fatalf("fields accepted: A %v, B %v", na, nb)
	}
}
