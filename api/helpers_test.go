package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/clock"
)

// testEnv is an in-process relay on httptest with a memory store and a
// fake clock.
type testEnv struct {
	t     testing.TB
	clk   *clock.Fake
	store graph.Store
	db    *graph.DB
	srv   *Server
	http  *httptest.Server
	reg   *prometheus.Registry
	url   string // ws://.../gun
}

type envOption func(*Config)

func withLimits(f func(*Limits)) envOption { return func(c *Config) { f(&c.Limits) } }

func newEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	return newEnvStore(t, graph.NewMemoryStore(), opts...)
}

// newEnvStore is newEnv serving store.
func newEnvStore(t testing.TB, store graph.Store, opts ...envOption) *testEnv {
	t.Helper()
	clk := clock.NewFake(time.UnixMilli(1_795_666_825_781))
	reg := prometheus.NewRegistry()
	cfg := Config{Clock: clk, Registry: reg, PID: "relay" + newID()}
	cfg.Limits.CloseGrace = 2 * time.Second
	for _, o := range opts {
		o(&cfg)
	}
	db := graph.NewDB(store, graph.DBConfig{Clock: clk, MaxFuture: 30 * time.Second})
	cfg.DB = db
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	e := &testEnv{t: t, clk: clk, store: store, db: db, srv: srv, http: hs, reg: reg,
		url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/gun"}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.Close()
		db.Close()
		store.Close()
	})
	return e
}

// now returns the fake clock in gun state units.
func (e *testEnv) now() float64 { return float64(e.clk.Now().UnixMilli()) }

// stored returns the stored node, or nil.
func (e *testEnv) stored(soul string) *graph.Node {
	n, err := e.store.Get(context.Background(), soul)
	if errors.Is(err, graph.ErrNotFound) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// client is a raw wire client (gorilla) for tests.
type client struct {
	t       testing.TB
	ws      *websocket.Conn
	hello   msg
	pending []msg
}

// msg is a decoded message from the relay.
type msg map[string]any

func (m msg) str(k string) string { s, _ := m[k].(string); return s }

func (e *testEnv) dial() *client {
	e.t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(e.url, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	c := &client{t: e.t, ws: ws}
	e.t.Cleanup(func() { ws.Close() })
	c.hello = c.next()
	if c.hello.str("dam") != "?" || c.hello.str("pid") != e.srv.pid {
		e.t.Fatalf("first message %v is not the relay's hello", c.hello)
	}
	return c
}

func (c *client) send(frame string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatal(err)
	}
}

// frame reads the next frame (keep-alives included) with a deadline.
func (c *client) frame() []byte {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return data
}

// next returns the next message, splitting batch frames and skipping
// keep-alives.
func (c *client) next() msg {
	c.t.Helper()
	for {
		if len(c.pending) > 0 {
			m := c.pending[0]
			c.pending = c.pending[1:]
			return m
		}
		data := c.frame()
		if string(data) == "[]" {
			continue
		}
		if data[0] == '[' {
			var arr []msg
			if err := json.Unmarshal(data, &arr); err != nil {
				c.t.Fatalf("bad frame %s: %v", data, err)
			}
			c.pending = append(c.pending, arr...)
			continue
		}
		var m msg
		if err := json.Unmarshal(data, &m); err != nil {
			c.t.Fatalf("bad frame %s: %v", data, err)
		}
		return m
	}
}

// reply returns the next message answering id; any other message before it
// fails the test unless allow accepts it.
func (c *client) reply(id string, allow func(msg) bool) msg {
	c.t.Helper()
	for {
		m := c.next()
		if m.str("@") == id {
			return m
		}
		if allow == nil || !allow(m) {
			c.t.Fatalf("while waiting for the reply to %s got %v", id, m)
		}
	}
}

// expectClose reads until the connection closes and returns the close code.
func (c *client) expectClose() int {
	c.t.Helper()
	for {
		_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _, err := c.ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		c.t.Fatalf("connection ended without a close frame: %v", err)
	}
}

// putFrame builds a put of fields (name=JSON value) on soul at state.
func putFrame(id, soul string, state float64, fields ...string) string {
	var st, vals []string
	for i := 0; i+1 < len(fields); i += 2 {
		st = append(st, strconv.Quote(fields[i])+":"+strconv.FormatFloat(state, 'f', -1, 64))
		vals = append(vals, strconv.Quote(fields[i])+":"+fields[i+1])
	}
	node := `{"_":{"#":` + strconv.Quote(soul) + `,">":{` + strings.Join(st, ",") + `}}`
	if len(vals) > 0 {
		node += "," + strings.Join(vals, ",")
	}
	node += "}"
	return `{"#":"` + id + `","put":{` + strconv.Quote(soul) + `:` + node + `}}`
}

// put sends a put and returns its ack.
func (c *client) put(id, soul string, state float64, fields ...string) msg {
	c.t.Helper()
	c.send(putFrame(id, soul, state, fields...))
	return c.reply(id, nil)
}

// get sends a get and returns its reply.
func (c *client) get(id, soul string) msg {
	c.t.Helper()
	c.send(`{"#":"` + id + `","get":{"#":` + strconv.Quote(soul) + `}}`)
	return c.reply(id, nil)
}

// node returns put[soul] of a message.
func (m msg) node(soul string) map[string]any {
	p, _ := m["put"].(map[string]any)
	n, _ := p[soul].(map[string]any)
	return n
}

// counter reads a counter or gauge value from the registry.
func (e *testEnv) metric(name string, labels ...string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}

// waitFor polls cond until it holds or 10 s pass; it blocks on a timer
// channel between polls (no fixed sleeps decide the outcome).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
