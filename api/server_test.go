package api

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/krestianstvo/luminary/graph"
)

func TestHandshake(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	if c.hello.str("#") == "" {
		t.Fatalf("hello without id: %v", c.hello)
	}
	// A "?" without "@" is answered with our pid; one with "@" is not.
	c.send(`{"#":"h1","dam":"?","pid":"clientPID"}`)
	r := c.reply("h1", nil)
	if r.str("dam") != "?" || r.str("pid") != e.srv.pid {
		t.Fatalf("handshake answer %v", r)
	}
	c.send(`{"#":"h2","dam":"?","pid":"clientPID","@":"` + c.hello.str("#") + `"}`)
	c.send(`{"#":"h3","dam":"hi"}`)
	// Neither produced a reply: the next message answers the get.
	g := c.get("g1", "nothing")
	if _, ok := g["put"]; ok {
		t.Fatalf("unknown soul answered with data: %v", g)
	}
}

func TestPutAckGet(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	st := e.now() - 10000
	ack := c.put("p1", "hb/peer1", st, "beat", "1", "name", `"alice"`, "link", `{"#":"x"}`)
	if ack["ok"] != true || ack.str("#") == "" {
		t.Fatalf("ack %v", ack)
	}
	n := e.stored("hb/peer1")
	if n == nil || len(n.Fields) != 3 {
		t.Fatalf("stored %v", n)
	}
	g := c.get("g1", "hb/peer1")
	node := g.node("hb/peer1")
	if node["name"] != "alice" || node["beat"] != 1.0 {
		t.Fatalf("get reply %v", g)
	}
	meta := node["_"].(map[string]any)
	if meta["#"] != "hb/peer1" || meta[">"].(map[string]any)["name"] != st {
		t.Fatalf("reply meta %v", meta)
	}
	if l, _ := node["link"].(map[string]any); l["#"] != "x" {
		t.Fatalf("link %v", node["link"])
	}
	// Field get: only that field.
	c.send(`{"#":"g2","get":{"#":"hb/peer1",".":"name"}}`)
	r := c.reply("g2", nil)
	if node := r.node("hb/peer1"); len(node) != 2 || node["name"] != "alice" {
		t.Fatalf("field reply %v", r)
	}
	c.send(`{"#":"g3","get":{"#":"hb/peer1",".":"nope"}}`)
	if r := c.reply("g3", nil); r["put"] != nil {
		t.Fatalf("unknown field answered with data: %v", r)
	}
	// Delete with null.
	c.put("p2", "hb/peer1", st+1, "beat", "null")
	if f := e.stored("hb/peer1").Fields["beat"]; !f.Value.IsNull() || f.State != st+1 {
		t.Fatalf("delete stored %v", f)
	}
}

func TestBatchFrameAndDedup(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	st := e.now() - 10000
	c.send("[" + putFrame("b1", "s1", st, "a", "1") + "," + putFrame("b2", "s2", st, "a", "2") + "]")
	got := map[string]bool{}
	for range 2 {
		m := c.next()
		if m["ok"] != true {
			t.Fatalf("batch ack %v", m)
		}
		got[m.str("@")] = true
	}
	if !got["b1"] || !got["b2"] {
		t.Fatalf("acks %v", got)
	}
	// The same id again (e.g. via a second path) is dropped silently: the
	// next reply is the get's.
	c.send(putFrame("b1", "s1", st+5, "a", "9"))
	if r := c.get("g", "s1"); r.node("s1")["a"] != 1.0 {
		t.Fatalf("duplicate put applied: %v", r)
	}
	if e.metric("luminary_dedup_hits_total") != 1 {
		t.Fatal("dedup hit not counted")
	}
}

func TestSubscriptionPush(t *testing.T) {
	e := newEnv(t)
	writer, whole, field, other := e.dial(), e.dial(), e.dial(), e.dial()
	st := e.now() - 10000
	whole.get("w", "room")
	field.send(`{"#":"f","get":{"#":"room",".":"topic"}}`)
	field.reply("f", nil)
	other.get("o", "elsewhere")

	// The writer is subscribed too: it must get its ack and no push.
	writer.get("x", "room")
	writer.send(putFrame("p1", "room", st, "topic", `"go"`, "size", "3"))
	ack := writer.reply("p1", nil) // fails on any push before the ack
	if ack["ok"] != true {
		t.Fatalf("ack %v", ack)
	}
	push := whole.next()
	if push.str("@") != "" || push.node("room")["topic"] != "go" || push.node("room")["size"] != 3.0 {
		t.Fatalf("whole-node subscriber got %v", push)
	}
	if push.str("#") != "p1" {
		t.Errorf("push id %q, want the put's id for peer dedup", push.str("#"))
	}
	if !strings.Contains(push.str("><"), e.srv.pid) {
		t.Errorf("push >< = %q", push.str("><"))
	}
	fp := field.next()
	if n := fp.node("room"); n["topic"] != "go" || n["size"] != nil {
		t.Fatalf("field subscriber got %v", fp)
	}
	// A put that changes nothing is not pushed; the other soul's
	// subscriber sees nothing (its next message is its own get reply).
	writer.put("p2", "room", st, "topic", `"go"`)
	writer.put("p3", "room", st+1, "size", "4")
	if m := whole.next(); m.node("room")["size"] != 4.0 {
		t.Fatalf("second push %v", m)
	}
	if r := other.get("o2", "elsewhere"); r.str("@") != "o2" {
		t.Fatal("unexpected")
	}
	// field subscriber did not get the size change: its next message is
	// the reply to a fresh get.
	field.send(`{"#":"f2","get":{"#":"room",".":"topic"}}`)
	field.reply("f2", nil)
}

func TestPushSkipsSeenPeers(t *testing.T) {
	e := newEnv(t)
	a, b := e.dial(), e.dial()
	a.send(`{"#":"ha","dam":"?","pid":"pidA","@":"` + a.hello.str("#") + `"}`)
	b.send(`{"#":"hb","dam":"?","pid":"pidB","@":"` + b.hello.str("#") + `"}`)
	a.get("ga", "s")
	b.get("gb", "s")
	w := e.dial()
	// The writer says pidA already has this message.
	w.send(`{"#":"p","><":"pidA,zzz","put":{"s":{"_":{"#":"s",">":{"v":` + jsNum(e.now()) + `}},"v":1}}}`)
	w.reply("p", nil)
	if m := b.next(); m.node("s")["v"] != 1.0 {
		t.Fatalf("b got %v", m)
	}
	a.get("ga2", "other") // fails if a push arrives first
}

func jsNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func TestKeepAlive(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	c.send("[]") // accepted and ignored
	e.clk.Advance(20 * time.Second)
	for {
		if f := c.frame(); string(f) == "[]" {
			break
		}
	}
	if r := c.get("g", "x"); r.str("@") != "g" {
		t.Fatal("unexpected")
	}
}

func TestUnknownMessageType(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	c.send(`{"#":"u1","hello":"world"}`)
	if r := c.reply("u1", nil); r.str("err") != "invalid: unknown message type" {
		t.Fatalf("reply %v", r)
	}
	// An ack or an unsolicited reply is fine and unanswered.
	c.send(`{"#":"u2","@":"whatever","ok":true}`)
	c.get("g", "x")
}

func TestChunkedReplyAndLEX(t *testing.T) {
	e := newEnv(t, withLimits(func(l *Limits) { l.MaxReplyFields = 2 }))
	c := e.dial()
	c.put("p", "big", e.now(), "a", "1", "b", "2", "c", "3", "d", "4", "e", "5")
	c.send(`{"#":"g","get":{"#":"big"}}`)
	fields := map[string]bool{}
	var next string
	for i := range 3 {
		m := c.reply("g", nil)
		if i > 0 && m.str("#") != next {
			t.Fatalf("chunk %d id %q, previous %% said %q", i, m.str("#"), next)
		}
		next = m.str("%")
		for k := range m.node("big") {
			if k != "_" {
				fields[k] = true
			}
		}
		if (i < 2) != (next != "") {
			t.Fatalf("chunk %d: %% = %q", i, next)
		}
	}
	if len(fields) != 5 {
		t.Fatalf("chunks carried %v", fields)
	}
	c.send(`{"#":"l","get":{"#":"big",".":{"*":"b"}}}`)
	if n := c.reply("l", nil).node("big"); len(n) != 2 || n["b"] != 2.0 {
		t.Fatalf("LEX prefix reply %v", n)
	}
	c.send(`{"#":"l2","get":{"#":"big",".":{">":"b","<":"c"}}}`)
	if n := c.reply("l2", nil).node("big"); len(n) != 3 {
		t.Fatalf("LEX range reply %v", n)
	}
}

func TestSubscriptionCap(t *testing.T) {
	e := newEnv(t, withLimits(func(l *Limits) { l.MaxSubscriptions = 3; l.MaxStrikes = 2 }))
	c := e.dial()
	for i, s := range []string{"a", "b", "c", "a", "b"} {
		c.get("g"+itoa(i), s) // repeats do not count
	}
	c.send(`{"#":"x4","get":{"#":"d"}}`)
	if r := c.reply("x4", nil); r.str("err") != "blocked: too many subscriptions" {
		t.Fatalf("reply %v", r)
	}
	c.send(`{"#":"x5","get":{"#":"e"}}`)
	c.reply("x5", nil)
	if code := c.expectClose(); code != websocket.ClosePolicyViolation {
		t.Fatalf("close code %d, want 1008", code)
	}
}

// recordGuard refuses writes to souls starting with "ro/" and reads of
// "secret".
type recordGuard struct{ puts atomic.Int32 }

func (g *recordGuard) CheckPut(ctx context.Context, p *PeerInfo, diff graph.Graph) (graph.Graph, []graph.FieldError) {
	g.puts.Add(1)
	if MessageFrom(ctx) == nil {
		panic("no message in guard context")
	}
	allowed := graph.Graph{}
	var refused []graph.FieldError
	for soul, n := range diff {
		if strings.HasPrefix(soul, "ro/") {
			for f := range n.Fields {
				refused = append(refused, graph.FieldError{Soul: soul, Field: f, Err: errors.New("restricted: read-only")})
			}
			continue
		}
		allowed[soul] = n
	}
	return allowed, refused
}

func (g *recordGuard) CheckGet(_ context.Context, _ *PeerInfo, soul string) error {
	if soul == "secret" {
		return errors.New("auth-required: log in first")
	}
	return nil
}

func TestGuardAndHandlers(t *testing.T) {
	guard := &recordGuard{}
	var seenPeer atomic.Pointer[PeerInfo]
	e := newEnv(t, func(c *Config) {
		c.Guard = guard
		c.Handlers = map[string]Handler{
			"lum": func(ctx context.Context, p *PeerInfo, m *Message) ([]byte, error) {
				seenPeer.Store(p)
				v, _ := m.Member("lum")
				if v == "fail" {
					return nil, errors.New("invalid: lum says no")
				}
				p.Values.Store("who", v)
				return appendOK(nil, newID(), m.ID), nil
			},
		}
	})
	c := e.dial()
	if r := c.put("p1", "ro/x", e.now(), "a", "1"); r.str("err") != "restricted: read-only: soul \"ro/x\" field \"a\"" && !strings.HasPrefix(r.str("err"), "restricted: read-only") {
		t.Fatalf("refused put ack %v", r)
	}
	if e.stored("ro/x") != nil {
		t.Fatal("refused put stored")
	}
	c.send(`{"#":"p2","put":{"ro/y":{"_":{"#":"ro/y",">":{"a":1}},"a":1},"rw":{"_":{"#":"rw",">":{"a":1}},"a":1}}}`)
	if r := c.reply("p2", nil); !strings.HasPrefix(r.str("err"), "restricted: read-only") {
		t.Fatalf("mixed put ack %v", r)
	}
	if e.stored("rw") == nil || e.stored("ro/y") != nil {
		t.Fatal("mixed put: allowed part must be stored, refused part not")
	}
	c.send(`{"#":"g1","get":{"#":"secret"}}`)
	if r := c.reply("g1", nil); r.str("err") != "auth-required: log in first" {
		t.Fatalf("refused get %v", r)
	}
	c.send(`{"#":"h1","lum":"alice"}`)
	if r := c.reply("h1", nil); r["ok"] != true {
		t.Fatalf("handler reply %v", r)
	}
	p := seenPeer.Load()
	if v, _ := p.Values.Load("who"); v != "alice" || p.Outbound || p.ID == 0 || p.RemoteAddr == "" {
		t.Fatalf("peer info %+v", p)
	}
	c.send(`{"#":"h2","lum":"fail"}`)
	if r := c.reply("h2", nil); r.str("err") != "invalid: lum says no" {
		t.Fatalf("handler error reply %v", r)
	}
	if _, err := NewServer(Config{DB: e.db, Handlers: map[string]Handler{"put": nil}}); err == nil {
		t.Fatal("reserved handler name accepted")
	}
}

func TestOriginPolicy(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AllowedOrigins = []string{"https://ok.example"} })
	try := func(origin string) int {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		ws, resp, err := websocket.DefaultDialer.Dial(e.url, h)
		if err == nil {
			ws.Close()
			return 101
		}
		return resp.StatusCode
	}
	if got := try(""); got != 101 {
		t.Errorf("no Origin: %d", got)
	}
	if got := try("https://ok.example"); got != 101 {
		t.Errorf("allowed origin: %d", got)
	}
	if got := try("https://evil.example"); got != http.StatusForbidden {
		t.Errorf("foreign origin: %d, want 403 (table A row 28)", got)
	}
	if got := try(strings.Replace(e.http.URL, "127.0.0.1", "127.0.0.1", 1)); got != 101 {
		t.Errorf("same origin: %d", got)
	}
}

func TestConnectionCaps(t *testing.T) {
	e := newEnv(t, withLimits(func(l *Limits) { l.MaxConnsPerIP = 2 }))
	e.dial()
	e.dial()
	_, resp, err := websocket.DefaultDialer.Dial(e.url, nil)
	if err == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third connection from one IP: %v %v", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "blocked: too many connections per ip") {
		t.Fatalf("refusal body %q", body)
	}
	e2 := newEnv(t, withLimits(func(l *Limits) { l.MaxConns = 1 }))
	e2.dial()
	_, resp, err = websocket.DefaultDialer.Dial(e2.url, nil)
	if err == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("connection over MaxConns: %v %v", err, resp)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	e := newEnv(t)
	get := func(path string) (int, string) {
		resp, err := http.Get(e.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("/readyz %d", code)
	}
	c := e.dial()
	c.put("p", "s", e.now(), "a", "1")
	code, body := get("/metrics")
	if code != 200 || !strings.Contains(body, "luminary_puts_accepted_total 1") || !strings.Contains(body, "luminary_connections 1") {
		t.Fatalf("/metrics %d:\n%s", code, body)
	}
	if code, _ := get("/gun"); code != http.StatusBadRequest {
		t.Fatalf("plain GET /gun %d", code)
	}
}

func TestShutdownAcksThenCloses1001(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	c.put("p", "s", e.now(), "a", "1")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- e.srv.Shutdown(ctx)
	}()
	if code := c.expectClose(); code != websocket.CloseGoingAway {
		t.Fatalf("close code %d, want 1001", code)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(e.http.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while draining: %d", resp.StatusCode)
	}
	_, resp, err = websocket.DefaultDialer.Dial(e.url, nil)
	if err == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("upgrade while draining: %v", err)
	}
}

// TestSlowConsumerByteBudget: a subscriber that stops reading is closed
// once its unsent bytes pass Limits.SendBuffer, while the writer and a
// reading subscriber go on.
func TestSlowConsumerByteBudget(t *testing.T) {
	// Room for two 200 KB frames: the reading subscriber's last frame
	// stays counted until the relay's writer returns from writing it,
	// which on a loaded machine can be after the subscriber has read it
	// and the next put has been pushed.
	e := newEnv(t, withLimits(func(l *Limits) { l.SendBuffer = 512 << 10 }))
	slow, fast, w := e.dial(), e.dial(), e.dial()
	slow.get("s", "flood")
	fast.get("f", "flood")
	big := `"` + strings.Repeat("x", 200<<10) + `"`
	st := e.now() - 10000
	// The slow client never reads; its socket buffers fill, then its send
	// buffer, and it is dropped.
	for i := 0; e.metric("luminary_slow_consumer_disconnects_total", "reason", "bytes") == 0; i++ {
		if i > 500 {
			t.Fatal("slow consumer never dropped")
		}
		w.put("p"+itoa(i), "flood", st+float64(i), "v", big)
		if m := fast.next(); m.node("flood") == nil {
			t.Fatalf("fast subscriber got %v", m)
		}
	}
	waitFor(t, "slow connection removed", func() bool { return e.metric("luminary_connections") == 2 })
	if n := e.metric("luminary_slow_consumer_disconnects_total", "reason", "stalled"); n != 0 {
		t.Fatalf("%v stalled closes, want 0", n)
	}
}

// connOf returns the relay's side of the connection whose subscription is
// the only one on soul.
func (e *testEnv) connOf(soul string) *conn {
	e.t.Helper()
	var found *conn
	for _, c := range e.srv.snapshot() {
		e.srv.subs.mu.Lock()
		_, ok := c.subs[soul]
		e.srv.subs.mu.Unlock()
		if ok {
			found = c
		}
	}
	if found == nil {
		e.t.Fatalf("no connection subscribed to %s", soul)
	}
	return found
}

// smallSocketBuffers shrinks the kernel buffers between the relay's side of
// sc and the client c, so that a client that does not read blocks the
// relay's writer after a few tens of KB instead of several MB.
func smallSocketBuffers(t *testing.T, sc *conn, c *client) {
	t.Helper()
	if tc, ok := sc.ws.UnderlyingConn().(*net.TCPConn); ok {
		if err := tc.SetWriteBuffer(16 << 10); err != nil {
			t.Fatal(err)
		}
	}
	if tc, ok := c.ws.UnderlyingConn().(*net.TCPConn); ok {
		if err := tc.SetReadBuffer(16 << 10); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSlowConsumerTimeBudget: a subscriber that stops reading, with far
// less unsent than the byte budget, is closed once the writer has made no
// progress for Limits.SlowTimeout on the relay's clock.
func TestSlowConsumerTimeBudget(t *testing.T) {
	const slowTimeout = 10 * time.Second
	e := newEnv(t, withLimits(func(l *Limits) {
		l.SendBuffer = 1 << 30
		l.SlowTimeout = slowTimeout
		noIdleTimeout(l)
	}))
	slow, w := e.dial(), e.dial()
	slow.get("s", "stall")
	sc := e.connOf("stall")
	smallSocketBuffers(t, sc, slow)
	big := `"` + strings.Repeat("x", 200<<10) + `"`
	st := e.now() - 10000
	// Fill the socket buffers until the relay's writer blocks: then frames
	// pile up behind the one it cannot finish writing.
	for i := 0; sc.q.size() < 4; i++ {
		if i > 1000 {
			t.Fatal("the writer never fell behind")
		}
		w.put("p"+itoa(i), "stall", st+float64(i), "v", big)
	}
	if sc.q.pending() < 4*200<<10 {
		t.Fatalf("unsent %d bytes", sc.q.pending())
	}
	// Less than the time budget: nothing happens.
	e.clk.Advance(slowTimeout / 2)
	if n := e.metric("luminary_slow_consumer_disconnects_total", "reason", "stalled"); n != 0 {
		t.Fatalf("closed after half the slow timeout (%v)", n)
	}
	// Past it (the sweep runs every SlowTimeout/4 of the fake clock).
	waitFor(t, "stalled consumer closed", func() bool {
		if e.metric("luminary_slow_consumer_disconnects_total", "reason", "stalled") == 1 {
			return true
		}
		e.clk.Advance(slowTimeout / 4)
		return false
	})
	waitFor(t, "slow connection removed", func() bool { return e.metric("luminary_connections") == 1 })
	if n := e.metric("luminary_slow_consumer_disconnects_total", "reason", "bytes"); n != 0 {
		t.Fatalf("%v byte-budget closes, want 0", n)
	}
	// The writer's connection is unaffected.
	if m := w.put("after", "other", st, "a", "1"); m["ok"] != true {
		t.Fatalf("ack after the close: %v", m)
	}
}

// TestSubscriberBehindNotClosed: a subscriber that does not read during a
// burst of many more messages than the old 256-frame queue held, while the
// relay's clock moves on by less than SlowTimeout, is not closed and then
// receives every push.
func TestSubscriberBehindNotClosed(t *testing.T) {
	const slowTimeout = 10 * time.Second
	e := newEnv(t, withLimits(func(l *Limits) {
		l.SendBuffer = 8 << 20
		l.SlowTimeout = slowTimeout
		noIdleTimeout(l)
	}))
	sub, w := e.dial(), e.dial()
	sub.get("s", "burst")
	sc := e.connOf("burst")
	smallSocketBuffers(t, sc, sub)
	st := e.now() - 10000
	// About 3.3 MB of pushes, far more than the socket buffers take: the
	// relay's writer blocks and the rest waits in the send buffer.
	const n = 3000
	val := `"` + strings.Repeat("v", 1000) + `"`
	// One writer frame carries 100 puts (MaxBatch); acks come back batched.
	for i := 0; i < n; i += 100 {
		frames := make([]string, 0, 100)
		for j := i; j < i+100; j++ {
			frames = append(frames, putFrame("b"+itoa(j), "burst", st+float64(j), "f"+itoa(j), val))
		}
		w.send("[" + strings.Join(frames, ",") + "]")
	}
	for range n {
		if m := w.next(); m["ok"] != true {
			t.Fatalf("ack %v", m)
		}
	}
	queued, unsent := sc.q.size(), sc.q.pending()
	if unsent < 1<<20 || queued <= 256 {
		// The old rule closed a connection with 256 frames queued.
		t.Fatalf("only %d frames (%d bytes) unsent: the subscriber is not behind", queued, unsent)
	}
	// Everything is merged and its pushes queued or in the socket buffers;
	// the subscriber has read nothing yet. The clock moves on, less than
	// the slow timeout.
	e.clk.Advance(slowTimeout * 3 / 4)
	got := make(map[string]bool, n)
	frames := 0
	for len(got) < n {
		m := sub.next()
		frames++
		for f := range m.node("burst") {
			if f != "_" {
				got[f] = true
			}
		}
	}
	for _, r := range []string{"bytes", "stalled", "write"} {
		if v := e.metric("luminary_slow_consumer_disconnects_total", "reason", r); v != 0 {
			t.Fatalf("%v slow-consumer closes (%s)", v, r)
		}
	}
	if e.metric("luminary_connections") != 2 {
		t.Fatal("a connection was closed")
	}
	if g := e.metric("luminary_send_buffered_bytes"); g < 0 {
		t.Fatalf("send_buffered_bytes %v", g)
	}
	t.Logf("%d pushes in %d messages; %d frames (%d bytes) were unsent while the clock moved; frames out %v",
		n, frames, queued, unsent, e.metric("luminary_frames_out_total"))
}

func TestReplyPutMergedNotAcked(t *testing.T) {
	e := newEnv(t)
	c, sub := e.dial(), e.dial()
	sub.get("g", "rep")
	st := strconv.FormatFloat(e.now()-1000, 'f', -1, 64)
	c.send(`{"#":"r1","@":"someget","put":{"rep":{"_":{"#":"rep",">":{"a":` + st + `}},"a":"x"}}}`)
	if m := sub.next(); m.node("rep")["a"] != "x" {
		t.Fatalf("subscriber got %v", m)
	}
	// No ack for the reply: the next message c sees answers its get.
	if r := c.get("g2", "rep"); r.node("rep")["a"] != "x" {
		t.Fatalf("get after reply %v", r)
	}
}

func TestInflightBackpressure(t *testing.T) {
	e := newEnv(t, withLimits(func(l *Limits) { l.MaxInflightPuts = 1; l.MaxInflightBytes = 1 }))
	c := e.dial()
	st := e.now() - 1000
	var frames []string
	for i := range 50 {
		frames = append(frames, putFrame("w"+itoa(i), "bp", st+float64(i), "f"+itoa(i), itoa(i)))
	}
	c.send("[" + strings.Join(frames, ",") + "]")
	for range 50 {
		if m := c.next(); m["ok"] != true {
			t.Fatalf("ack %v", m)
		}
	}
	if n := e.stored("bp"); n == nil || len(n.Fields) != 50 {
		t.Fatalf("stored %v", n)
	}
}

func TestPeerIsSelf(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	store := graph.NewMemoryStore()
	db := graph.NewDB(store, graph.DBConfig{})
	defer db.Close()
	reg := prometheus.NewRegistry()
	srv, err := NewServer(Config{DB: db, Registry: reg, Peers: []string{"http://" + ln.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	srv.Start()
	// The link greets itself, notices its own pid and stops for good.
	waitFor(t, "self link given up", func() bool {
		return srv.peers.links[0].self.Load() && srv.peers.links[0].current() == nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}
