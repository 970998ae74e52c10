package service_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/heartbeat"
)

// proxy is a TCP proxy on loopback whose connections the test can cut, to
// make a client lose its connection without stopping the relay.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

// cut closes every proxied connection.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestClientReconnects: a client whose connection drops reconnects with
// backoff, logs in again, re-sends its subscriptions and fetches what it
// missed; its stream continues without gaps or repeats, and its sends
// work again.
func TestClientReconnects(t *testing.T) {
	r := startRelay(t, relayOpts{dir: "-"})
	inst := r.openWorld(t, "reconnect", 20)
	px := startProxy(t, strings.TrimPrefix(r.HTTP, "http://"))
	k := newKey(t)
	c := dial(t, "ws://"+px.ln.Addr().String()+"/gun", k)
	w := join(t, c, inst)
	col := collect(w)
	other := join(t, dial(t, r.URL, newKey(t)), inst)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var sent []heartbeat.Receipt
	send := func(w interface {
		Send(context.Context, []byte) (heartbeat.Receipt, error)
	}, n int, tag string) {
		for i := range n {
			rc, err := w.Send(ctx, fmt.Appendf(nil, `{"%s":%d}`, tag, i))
			if err != nil {
				t.Fatal(err)
			}
			sent = append(sent, rc)
		}
	}
	send(w, 5, "before")
	px.cut()
	send(other, 10, "while-away") // the first client misses these pushes
	send(w, 5, "after")           // blocks until the client is back
	if c.Connects() < 2 {
		t.Fatalf("client connected %d times", c.Connects())
	}
	last := sent[len(sent)-1]
	col.waitFor(t, 20*time.Second, "every message", func(es []heartbeat.Entry) bool {
		return len(es) > 0 && es[len(es)-1].Seq >= last.Seq
	})
	es, _ := col.snapshot()
	seen := map[heartbeat.Hash]int{}
	for i, e := range es {
		if i > 0 && e.Seq != es[i-1].Seq+1 {
			t.Fatalf("gap or repeat: seq %d after %d", e.Seq, es[i-1].Seq)
		}
		if e.Kind == heartbeat.KindMessage {
			seen[e.MessageID()]++
		}
	}
	for _, rc := range sent {
		if seen[rc.ID] != 1 {
			t.Fatalf("message %s seen %d times", rc.ID, seen[rc.ID])
		}
	}
}

// TestPresenceJoinLeave: a logged-in client that follows a world is
// logged as present (one join entry); when its last connection closes,
// one leave entry follows. Every follower sees both in its stream.
func TestPresenceJoinLeave(t *testing.T) {
	r := startRelay(t, relayOpts{dir: "-"})
	inst := r.openWorld(t, "presence", 20)
	watcher := collect(join(t, dial(t, r.URL, newKey(t)), inst))
	k := newKey(t)
	c := dial(t, r.URL, k)
	join(t, c, inst)
	pub := k.Public().String()
	count := func(es []heartbeat.Entry, kind heartbeat.Kind) int {
		n := 0
		for _, e := range es {
			if e.Kind == kind && e.Author == pub {
				n++
			}
		}
		return n
	}
	watcher.waitFor(t, 10*time.Second, "the join", func(es []heartbeat.Entry) bool { return count(es, heartbeat.KindJoin) == 1 })
	c.Close()
	watcher.waitFor(t, 10*time.Second, "the leave", func(es []heartbeat.Entry) bool { return count(es, heartbeat.KindLeave) == 1 })
	ctx := context.Background()
	present, err := r.svc.Presence(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range present {
		if p == pub {
			t.Fatalf("%s still present after leaving: %v", pub, present)
		}
	}
	if es, _ := watcher.snapshot(); count(es, heartbeat.KindJoin) != 1 {
		t.Fatal("joined more than once")
	}
}
