package api

import (
	"crypto/rand"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// Reliability table A, rows 1-11 (shared/research/reliability.md): each bad
// input gets the behaviour the table names, nothing of it is stored (checked
// by reading the store), and the connection survives where the table says
// so (checked with a get round trip afterwards).

// alive checks that c still works.
func (c *client) alive() {
	c.t.Helper()
	id := newID()
	if r := c.get(id, "alive-check"); r.str("@") != id {
		c.t.Fatalf("connection not alive: %v", r)
	}
}

// damErr reads the next message and checks it is a mesh error with reason
// prefix.
func (c *client) damErr(prefix string) {
	c.t.Helper()
	m := c.next()
	if m.str("dam") != "!" || !strings.HasPrefix(m.str("err"), prefix) {
		c.t.Fatalf("got %v, want a dam error %q", m, prefix)
	}
}

func TestTableA1ReadLimit(t *testing.T) {
	const limit = 64 << 10
	e := newEnv(t, withLimits(func(l *Limits) { l.ReadLimit = limit }))
	st := e.now() - 1000
	frame := func(size int) string {
		f := putFrame("r1", "big", st, "v", `""`)
		pad := size - len(f)
		return putFrame("r1"+strconv.Itoa(size), "big", st, "v", `"`+strings.Repeat("x", pad-len(strconv.Itoa(size)))+`"`)
	}
	c := e.dial()
	at := frame(limit)
	if len(at) != limit {
		t.Fatalf("frame of %d bytes, want %d", len(at), limit)
	}
	c.send(at)
	if r := c.next(); r["ok"] != true {
		t.Fatalf("frame at the limit: %v", r)
	}
	over := frame(limit + 1)
	if len(over) != limit+1 {
		t.Fatalf("frame of %d bytes", len(over))
	}
	c2 := e.dial()
	c2.send(strings.Replace(over, `"big"`, `"big2"`, 2))
	if code := c2.expectClose(); code != websocket.CloseMessageTooBig {
		t.Fatalf("close %d, want 1009", code)
	}
	if e.stored("big2") != nil {
		t.Fatal("oversized put stored")
	}
}

func TestTableA2NoCompression(t *testing.T) {
	e := newEnv(t)
	d := websocket.Dialer{EnableCompression: true}
	ws, resp, err := d.Dial(e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Fatalf("server negotiated %q", ext)
	}
	// Write a text frame with RSV1 set (a "compressed" frame) by hand:
	// FIN|RSV1|text, masked, as a client must.
	payload := []byte(putFrame("z1", "rsv", e.now()-1000, "a", "1"))
	hdr := []byte{0x80 | 0x40 | 0x1, 0x80 | 126, byte(len(payload) >> 8), byte(len(payload))}
	var key [4]byte
	_, _ = rand.Read(key[:])
	masked := make([]byte, len(payload))
	for i := range payload {
		masked[i] = payload[i] ^ key[i%4]
	}
	raw := append(append(hdr, key[:]...), masked...)
	if _, err := ws.UnderlyingConn().Write(raw); err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, ws: ws}
	if code := c.expectClose(); code != websocket.CloseProtocolError {
		t.Fatalf("close %d, want 1002", code)
	}
	if e.stored("rsv") != nil {
		t.Fatal("RSV1 frame stored")
	}
}

func TestTableA3Binary(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, []byte(putFrame("b", "bin", e.now()-1000, "a", "1"))); err != nil {
		t.Fatal(err)
	}
	c.damErr("invalid: binary not accepted")
	c.alive()
	if e.stored("bin") != nil {
		t.Fatal("binary frame stored")
	}
}

func TestTableA4ParseStrikes(t *testing.T) {
	e := newEnv(t, withLimits(func(l *Limits) { l.MaxStrikes = 4 }))
	c := e.dial()
	bad := []string{
		`{"#":"t1","put":{"s":`, // truncated
		`not json at all`,
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000), // depth cap
	}
	for _, f := range bad {
		c.send(f)
		c.damErr("invalid: parse")
	}
	c.alive() // three strikes: still open
	c.send(`{{{`)
	c.damErr("invalid: parse")
	if code := c.expectClose(); code != websocket.ClosePolicyViolation {
		t.Fatalf("close %d after MaxStrikes, want 1008", code)
	}
	if e.metric("luminary_strike_disconnects_total") != 1 {
		t.Fatal("strike close not counted")
	}
}

func TestTableA5BadUTF8(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	st := e.now() - 1000
	c.send(putFrame("u1", "utf", st, "a", "\"\xff\xfe\""))
	c.damErr("invalid: parse")
	c.send(putFrame("u2", "utf", st, "a", `"\ud800"`))
	c.damErr("invalid: parse")
	c.send(putFrame("u3", "utf", st, "a", `"\udc00x"`))
	c.damErr("invalid: parse")
	c.send(putFrame("u4", "ut\xc3", st, "a", `1`))
	c.damErr("invalid: parse")
	c.alive()
	if e.stored("utf") != nil {
		t.Fatal("invalid UTF-8 stored (or replaced by U+FFFD)")
	}
}

func TestTableA6Duplicates(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	st := strconv.FormatFloat(e.now()-1000, 'f', -1, 64)
	c.send(`{"#":"d1","put":{"dup":{"_":{"#":"dup",">":{"a":` + st + `}},"a":1,"a":2}}}`)
	c.damErr("invalid: parse")
	c.send(`{"#":"d2","#":"d3","get":{"#":"dup"}}`)
	c.damErr("invalid: parse")
	c.send(`{"#":"d4","put":{"dup":{"_":{"#":"dup",">":{"a":` + st + `}},"a":1}},"Put":{}}`)
	if r := c.reply("d4", nil); r.str("err") != "invalid: ambiguous member names" {
		t.Fatalf("case variants: %v", r)
	}
	c.alive()
	if e.stored("dup") != nil {
		t.Fatal("ambiguous put stored")
	}
}

func TestTableA7TooMany(t *testing.T) {
	e := newEnv(t, withLimits(func(l *Limits) { l.ReadLimit = 4 << 20 }))
	c := e.dial()
	st := e.now() - 1000
	// One put with 100 000 keys: refused while parsing.
	fields := make([]string, 0, 200000)
	for i := range 100000 {
		fields = append(fields, "k"+strconv.Itoa(i), "1")
	}
	c.send(putFrame("m1", "many", st, fields...))
	c.damErr("invalid: too many keys")
	// 6 nodes of 900 fields: each node is fine, the put (5 400 fields)
	// is over MaxFields.
	var nodes []string
	for n := range 6 {
		soul := "many" + strconv.Itoa(n)
		f := putFrame("", soul, st, fields[:1800]...)
		nodes = append(nodes, f[strings.Index(f, `"put":{`)+7:len(f)-2])
	}
	c.send(`{"#":"m2","put":{` + strings.Join(nodes, ",") + `}}`)
	if r := c.reply("m2", nil); !strings.HasPrefix(r.str("err"), "invalid: too many keys") {
		t.Fatalf("put over MaxFields: %v", r)
	}
	// A batch of 10 000 messages.
	msgs := make([]string, 10000)
	for i := range msgs {
		msgs[i] = putFrame("n"+strconv.Itoa(i), "manymsg", st, "a", strconv.Itoa(i))
	}
	c.send("[" + strings.Join(msgs, ",") + "]")
	c.damErr("invalid: too many messages")
	c.alive()
	for _, s := range []string{"many", "many0", "many5", "manymsg"} {
		if e.stored(s) != nil {
			t.Fatalf("%s stored", s)
		}
	}
}

func TestTableA8To11BadPuts(t *testing.T) {
	// Structurally invalid puts count as strikes; allow them all here.
	e := newEnv(t, withLimits(func(l *Limits) { l.MaxStrikes = 100 }))
	c := e.dial()
	now := e.now()
	st := strconv.FormatFloat(now-1000, 'f', -1, 64)
	node := func(soul, meta, fields string) string {
		return `{"#":"` + newID() + `","put":{"` + soul + `":{"_":` + meta + fields + `}}}`
	}
	cases := []struct {
		name, frame, want string
		frameLevel        bool
	}{
		// Row 8: bad states.
		{"state NaN", node("s8", `{"#":"s8",">":{"a":NaN}}`, `,"a":1`), "invalid: parse", true},
		{"state string", node("s8", `{"#":"s8",">":{"a":"1e3"}}`, `,"a":1`), "invalid: bad state", false},
		{"state 1e400", node("s8", `{"#":"s8",">":{"a":1e400}}`, `,"a":1`), "invalid: parse", true},
		{"state -0", node("s8", `{"#":"s8",">":{"a":-0}}`, `,"a":1`), "invalid: bad state", false},
		{"state over 2^53", node("s8", `{"#":"s8",">":{"a":9007199254740994}}`, `,"a":1`), "invalid: bad state", false},
		{"state negative", node("s8", `{"#":"s8",">":{"a":-5}}`, `,"a":1`), "invalid: bad state", false},
		{"state null", node("s8", `{"#":"s8",">":{"a":null}}`, `,"a":1`), "invalid: bad state", false},
		// Row 9: soul mismatch, missing state.
		{"soul not same", node("s9", `{"#":"other",">":{"a":`+st+`}}`, `,"a":1`), "invalid: soul not same", false},
		{"no state", node("s9", `{"#":"s9",">":{"a":`+st+`}}`, `,"a":1,"b":2`), "invalid: no state", false},
		{"no meta", `{"#":"x9","put":{"s9":{"a":1}}}`, "invalid: bad node", false},
		// Row 10: bad values.
		{"object value", node("s10", `{"#":"s10",">":{"a":`+st+`}}`, `,"a":{"b":1}`), "invalid: bad value", false},
		{"array value", node("s10", `{"#":"s10",">":{"a":`+st+`}}`, `,"a":[1]`), "invalid: bad value", false},
		{"link with extra key", node("s10", `{"#":"s10",">":{"a":`+st+`}}`, `,"a":{"#":"x","y":1}`), "invalid: bad value", false},
		{"empty link", node("s10", `{"#":"s10",">":{"a":`+st+`}}`, `,"a":{"#":""}`), "invalid: bad value", false},
		// Row 11: far future (now + 1 day).
		{"state in future", node("s11", `{"#":"s11",">":{"a":`+strconv.FormatFloat(now+86400000, 'f', -1, 64)+`}}`, `,"a":1`), "invalid: state in future", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			c.send(tc.frame)
			if tc.frameLevel {
				c.damErr(tc.want)
			} else {
				m := c.next()
				if !strings.HasPrefix(m.str("err"), tc.want) || m.str("@") == "" {
					t.Fatalf("got %v, want err %q", m, tc.want)
				}
			}
			c.alive()
		})
	}
	c.t = t
	for _, s := range []string{"s8", "s9", "s10", "s11"} {
		if e.stored(s) != nil {
			t.Fatalf("%s stored", s)
		}
	}
	if n := e.db.Deferred(); n != 0 {
		t.Fatalf("%d fields deferred: a far-future state must not create a timer or queue entry", n)
	}
}
