package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestHistogramBuckets(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		v := r.Uint64() >> r.IntN(64)
		i := bucketOf(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d out of range", v, i)
		}
		lo, hi := bucketBounds(i)
		if v < lo || (hi != 0 && v >= hi) {
			t.Fatalf("v=%d in bucket %d with bounds [%d,%d)", v, i, lo, hi)
		}
		if lo >= histSub && (hi-lo)*64 > lo {
			t.Fatalf("bucket %d [%d,%d) wider than 1/64 of its lower bound", i, lo, hi)
		}
	}
	for i := range histBuckets - 1 {
		_, hi := bucketBounds(i)
		lo2, _ := bucketBounds(i + 1)
		if hi != lo2 {
			t.Fatalf("gap between bucket %d and %d: %d != %d", i, i+1, hi, lo2)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	h := newHistogram()
	if h.quantile(0.5) != 0 || h.summary().Count != 0 {
		t.Fatal("empty histogram must report zeros")
	}
	// 1..10000 µs, shuffled: exact quantile q is q*10000 µs.
	vals := make([]int, 10000)
	for i := range vals {
		vals[i] = i + 1
	}
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(vals), func(i, j int) { vals[i], vals[j] = vals[j], vals[i] })
	a, b := newHistogram(), newHistogram()
	for i, v := range vals {
		if i%2 == 0 {
			a.record(time.Duration(v) * time.Microsecond)
		} else {
			b.record(time.Duration(v) * time.Microsecond)
		}
	}
	h.merge(a)
	h.merge(b)
	h.merge(nil)
	if h.count() != 10000 {
		t.Fatalf("count %d", h.count())
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5000 * time.Microsecond}, {0.9, 9000 * time.Microsecond}, {0.99, 9900 * time.Microsecond}} {
		got := h.quantile(c.q)
		if d := got - c.want; d < -c.want/50 || d > c.want/50 {
			t.Errorf("q%.2f = %v, want %v ±2%%", c.q, got, c.want)
		}
	}
	if h.quantile(0) != time.Microsecond || h.quantile(1) != 10000*time.Microsecond {
		t.Errorf("min/max: %v %v", h.quantile(0), h.quantile(1))
	}
	s := h.summary()
	if s.MinMs != 0.001 || s.MaxMs != 10 || s.Mean < 4.99 || s.Mean > 5.01 {
		t.Errorf("summary %+v", s)
	}
	// One sample: every quantile is that sample, exactly (clamped to min/max).
	one := newHistogram()
	one.record(123456789)
	if one.quantile(0.5) != 123456789 || one.quantile(0.99) != 123456789 {
		t.Errorf("single sample quantiles %v %v", one.quantile(0.5), one.quantile(0.99))
	}
	neg := newHistogram()
	neg.record(-5)
	if neg.quantile(0.5) != 0 {
		t.Error("negative durations must count as 0")
	}
}

func TestDecodeFrame(t *testing.T) {
	single := `{"#":"a1","@":"p1","ok":true,"##":-891372677,"FOO":1}`
	batch := ` [{"#":"a2","@":"p2","ok":{"":1}},{"#":"a3","@":"p3","err":"Unverified data."},{"dam":"?","#":"h1","pid":"relay"}] `
	ms, err := decodeFrame([]byte(single))
	if err != nil || len(ms) != 1 || ms[0].At != "p1" || string(ms[0].OK) != "true" {
		t.Fatalf("single: %v %+v", err, ms)
	}
	ms, err = decodeFrame([]byte(batch))
	if err != nil || len(ms) != 3 {
		t.Fatalf("batch: %v %+v", err, ms)
	}
	if string(ms[0].OK) != `{"":1}` || ms[0].At != "p2" {
		t.Errorf("batch[0] %+v", ms[0])
	}
	if errText(ms[1].Err) != "Unverified data." {
		t.Errorf("err text %q", errText(ms[1].Err))
	}
	if ms[2].Dam != "?" || ms[2].Pid != "relay" {
		t.Errorf("dam %+v", ms[2])
	}
	ms, err = decodeFrame([]byte("[]"))
	if err != nil || len(ms) != 0 || !isKeepAlive([]byte(" [] ")) {
		t.Fatalf("keep-alive: %v %v", err, ms)
	}
	for _, bad := range []string{"", "  ", "42", `"x"`, "{", "[{]", `{"#":1}`} {
		if _, err := decodeFrame([]byte(bad)); err == nil {
			t.Errorf("decodeFrame(%q) accepted", bad)
		}
	}
}

func TestAckKind(t *testing.T) {
	for frame, want := range map[string]int{
		`{"#":"a","@":"p","ok":true}`:           1,
		`{"#":"a","@":"p","ok":{"":1}}`:         1,
		`{"#":"a","@":"p","ok":1}`:              1,
		`{"#":"a","@":"p","err":"blocked: no"}`: -1,
		`{"#":"a","@":"p","ok":false}`:          -1,
		`{"#":"a","@":"p"}`:                     0, // get-style "not found"
		`{"#":"a","ok":true}`:                   0,
		`{"#":"a","@":"p","dam":"?","pid":"x"}`: 0,
	} {
		ms, err := decodeFrame([]byte(frame))
		if err != nil {
			t.Fatal(err)
		}
		if got := ackKind(&ms[0]); got != want {
			t.Errorf("ackKind(%s) = %d, want %d", frame, got, want)
		}
	}
	ms, _ := decodeFrame([]byte(`{"@":"p","err":"restricted: x"}`))
	if ackErr(&ms[0]) != "restricted: x" {
		t.Errorf("ackErr %q", ackErr(&ms[0]))
	}
}

func TestAppendPutShape(t *testing.T) {
	b := appendPut(nil, "abcDEF123", `lload/x/"q"`, "f7", 1795666934618.001, "v\n")
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	want := `{"#":"abcDEF123","put":{"lload/x/\"q\"":{"_":{"#":"lload/x/\"q\"",">":{"f7":1795666934618.001}},"f7":"v\u000a"}}}`
	if string(b) != want {
		t.Errorf("put frame\n got %s\nwant %s", b, want)
	}
	if g := string(appendGet(nil, "g1", "s")); g != `{"#":"g1","get":{"#":"s"}}` {
		t.Errorf("get frame %s", g)
	}
	h := appendHello(nil, "me", "h1")
	var hm message
	if err := json.Unmarshal(h, &hm); err != nil || hm.Dam != "?" || hm.At != "h1" || hm.Pid != "me" || len(hm.ID) != 9 {
		t.Errorf("hello %s %v", h, err)
	}
}

func TestNewIDShape(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newID()
		if len(id) != 9 || strings.ContainsAny(id, "Y") || strings.Trim(id, idAlphabet) != "" {
			t.Fatalf("bad id %q", id)
		}
		seen[id] = true
	}
	if len(seen) != 1000 {
		t.Error("ids repeat")
	}
}

func TestStateClock(t *testing.T) {
	at := time.UnixMilli(1795666934618)
	sc := newStateClock()
	sc.now = func() time.Time { return at }
	got := []string{}
	for range 4 {
		got = append(got, string(appendState(nil, sc.next())))
	}
	want := []string{"1795666934618", "1795666934618.001", "1795666934618.002", "1795666934618.003"}
	if !slices.Equal(got, want) {
		t.Errorf("states %v, want %v", got, want)
	}
	at = at.Add(time.Millisecond)
	if s := sc.next(); s != 1795666934619 {
		t.Errorf("next ms: %v", s)
	}
}

func TestValueAndScan(t *testing.T) {
	v := makeValue("RUN1", 42, 1700000000123456789, 200)
	if len(v) != 200 || !strings.HasPrefix(v, "LLv1.RUN1.42.1700000000123456789.") {
		t.Fatalf("value %q (%d)", v, len(v))
	}
	soul := "lload/RUN1/fan"
	put := func(id string, fields ...uint64) string {
		var b strings.Builder
		fmt.Fprintf(&b, `{"#":%q,"ok":{"@":2,"/":1},"put":{%q:{"_":{"#":%q,">":{`, id, soul, soul)
		for i, f := range fields {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"f%d":%d.5`, f, 1795666934618+f)
		}
		b.WriteString("}}")
		for _, f := range fields {
			fmt.Fprintf(&b, `,"f%d":%q`, f, makeValue("RUN1", f, int64(1000+f), 80))
		}
		b.WriteString("}}}")
		return b.String()
	}
	frames := []string{
		put("m1", 1),
		"[" + put("m2", 2, 3) + "," + put("m3", 4) + "]",
		`{"#":"x","put":{"other":{"_":{"#":"other",">":{"f9":1}},"f9":"LLv1.OTHER.9.1.x"}}}`,
		`{"#":"y","@":"p","ok":true}`,
		"[]",
	}
	var fast []delivery
	var strict []delivery
	for _, f := range frames {
		fast = scanDeliveries(fast, []byte(f), "RUN1")
		got, err := parseDeliveriesStrict([]byte(f), soul, "RUN1")
		if err != nil {
			t.Fatalf("strict %s: %v", f, err)
		}
		strict = append(strict, got...)
	}
	key := func(a, b delivery) int { return int(a.seq) - int(b.seq) }
	slices.SortFunc(fast, key)
	slices.SortFunc(strict, key)
	want := []delivery{{1, 1001}, {2, 1002}, {3, 1003}, {4, 1004}}
	if !slices.Equal(fast, want) || !slices.Equal(strict, want) {
		t.Errorf("fast %v strict %v want %v", fast, strict, want)
	}
	// A field name that disagrees with the value's seq is caught by strict.
	bad := strings.Replace(put("m9", 5), `"f5":"`, `"f6":"`, 1)
	if _, err := parseDeliveriesStrict([]byte(bad), soul, "RUN1"); err == nil {
		t.Error("strict accepted a mismatched field")
	}
}

func TestWSURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8765/gun": "ws://127.0.0.1:8765/gun",
		"https://h/gun":             "wss://h/gun",
		"ws://127.0.0.1:1":          "ws://127.0.0.1:1/gun",
	} {
		if got, err := wsURL(in); err != nil || got != want {
			t.Errorf("wsURL(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := wsURL("ftp://x"); err == nil {
		t.Error("ftp accepted")
	}
}

// fakeRelay is a test double of a Gun relay: it greets with dam "?", acks
// every put (alternating single-object and batch frames), answers gets,
// subscribes the getter to the soul and pushes later puts to subscribers.
type fakeRelay struct {
	rejectEvery int // if > 0, every n-th put gets an err ack
	dupEvery    int // if > 0, every n-th put is acked twice

	mu     sync.Mutex
	subs   map[string][]*fakeConn
	hellos atomic.Int64
	puts   atomic.Int64
}

type fakeConn struct {
	mu sync.Mutex
	c  *websocket.Conn
}

func (fc *fakeConn) write(b []byte) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	_ = fc.c.WriteMessage(websocket.TextMessage, b)
}

func (f *fakeRelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/gun" {
		http.NotFound(w, r)
		return
	}
	up := websocket.Upgrader{}
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	fc := &fakeConn{c: c}
	fc.write([]byte(`{"#":"hello0001","dam":"?","pid":"fakerelay"}`))
	fc.write([]byte(`[]`))
	var n int
	for {
		_, raw, err := c.ReadMessage()
		if err != nil {
			return
		}
		ms, err := decodeFrame(raw)
		if err != nil {
			fc.write([]byte(`{"dam":"!","err":"DAM JSON parse error."}`))
			continue
		}
		for _, m := range ms {
			switch {
			case m.Dam == "?" && m.At == "hello0001":
				f.hellos.Add(1)
			case len(m.Get) > 0:
				var g struct {
					Soul string `json:"#"`
				}
				_ = json.Unmarshal(m.Get, &g)
				f.mu.Lock()
				f.subs[g.Soul] = append(f.subs[g.Soul], fc)
				f.mu.Unlock()
				fc.write(fmt.Appendf(nil, `{"#":%q,"@":%q}`, newID(), m.ID))
			case len(m.Put) > 0:
				n++
				f.puts.Add(1)
				var graph map[string]json.RawMessage
				_ = json.Unmarshal(m.Put, &graph)
				if f.rejectEvery > 0 && n%f.rejectEvery == 0 {
					fc.write(fmt.Appendf(nil, `{"#":%q,"@":%q,"err":"invalid: test"}`, newID(), m.ID))
					continue
				}
				if f.dupEvery > 0 && n%f.dupEvery == 0 {
					fc.write(fmt.Appendf(nil, `{"#":%q,"@":%q,"ok":true}`, newID(), m.ID))
				}
				if n%2 == 0 {
					fc.write(fmt.Appendf(nil, `{"#":%q,"@":%q,"ok":true}`, newID(), m.ID))
				} else {
					fc.write(fmt.Appendf(nil, `[{"#":%q,"@":%q,"ok":{"":1}}]`, newID(), m.ID))
				}
				for soul := range graph {
					f.mu.Lock()
					subs := slices.Clone(f.subs[soul])
					f.mu.Unlock()
					push := fmt.Appendf(nil, `[{"#":%q,"ok":{"@":2,"/":1},"put":%s}]`, newID(), m.Put)
					for _, s := range subs {
						s.write(push)
					}
				}
			}
		}
	}
}

func startFake(t *testing.T, f *fakeRelay) string {
	t.Helper()
	f.subs = map[string][]*fakeConn{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv.URL + "/gun"
}

func TestPutsAgainstFakeRelay(t *testing.T) {
	f := &fakeRelay{rejectEvery: 10, dupEvery: 7}
	url := startFake(t, f)
	res, err := runPuts(context.Background(), putsConfig{URL: url, Label: "fake", Writers: 3, Window: 8,
		ValueSize: 200, FieldsPerSoul: 2, Duration: 500 * time.Millisecond, Timeout: 5 * time.Second,
		DialTimeout: 5 * time.Second, Hello: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Connected != 3 || res.Sent == 0 || res.AckedInWindow == 0 || res.AckLatency.Count == 0 {
		t.Fatalf("nothing measured: %+v", res)
	}
	if res.Errors == 0 || len(res.ErrorSamples) == 0 || res.ErrorSamples[0] != "invalid: test" {
		t.Errorf("err acks not counted: errors=%d samples=%v", res.Errors, res.ErrorSamples)
	}
	if res.DuplicateAcks == 0 || res.LateAcks != 0 || res.ForeignAcks != 0 {
		t.Errorf("second acks %d, late %d, foreign %d", res.DuplicateAcks, res.LateAcks, res.ForeignAcks)
	}
	if res.Timeouts != 0 || res.Unresolved != 0 || res.BadFrames != 0 || len(res.ConnErrors) != 0 {
		t.Errorf("unexpected losses: %+v", res)
	}
	if res.AckLatency.Count+res.Errors != res.Sent {
		t.Errorf("every measured put must resolve: acked %d + errors %d != sent %d",
			res.AckLatency.Count, res.Errors, res.Sent)
	}
	if f.hellos.Load() != 3 {
		t.Errorf("hello answers %d, want 3", f.hellos.Load())
	}
	var buf bytes.Buffer
	printPutsTable(&buf, []*putsResult{res})
	if !strings.Contains(buf.String(), "fake") {
		t.Errorf("table: %s", buf.String())
	}
}

func TestFanoutAgainstFakeRelay(t *testing.T) {
	for _, strict := range []bool{false, true} {
		t.Run(fmt.Sprint("strict=", strict), func(t *testing.T) {
			url := startFake(t, &fakeRelay{})
			res, err := runFanout(context.Background(), fanoutConfig{URL: url, Label: "fake", Subscribers: 4,
				Rates: []int{100, 300}, ValueSize: 200, Strict: strict, P99GoalMs: 10000,
				Step: 200 * time.Millisecond, MaxSend: time.Minute, Drain: 10 * time.Second, GetTimeout: 5 * time.Second,
				DialTimeout: 5 * time.Second, Tick: time.Millisecond, Hello: true})
			if err != nil {
				t.Fatal(err)
			}
			if !res.InitAcked || res.Subscribed != 4 || res.GetReplies != 4 || len(res.Steps) != 2 {
				t.Fatalf("setup: %+v", res)
			}
			for _, s := range res.Steps {
				if s.Sent != uint64(s.Rate)/5 || s.Expected != 4*s.Sent || s.Received != s.Expected ||
					s.DeliveredPct != 100 || s.Duplicates != 0 || !s.Pass || s.Acked != s.Sent || s.Frames == 0 || s.Frames > s.Received {
					t.Errorf("step %+v", s)
				}
			}
			if res.HighestRateHeld != 300 || res.BadFrames != 0 || res.Late != 0 {
				t.Errorf("result %+v", res)
			}
			var buf bytes.Buffer
			printFanoutTable(&buf, []*fanoutResult{res, res})
			printFanoutSideBySide(&buf, []*fanoutResult{res, res})
			if !strings.Contains(buf.String(), "highest rate held") {
				t.Errorf("table: %s", buf.String())
			}
		})
	}
}

// FuzzFrames feeds arbitrary relay bytes to every parser the tool runs on
// frames; none may panic.
func FuzzFrames(f *testing.F) {
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"#":"a","@":"p","ok":true}`))
	f.Add([]byte(`[{"#":"a","put":{"s":{"_":{"#":"s",">":{"f1":1}},"f1":"LLv1.R.1.5.xx"}}}]`))
	f.Add([]byte(`{"put":"LLv1.R.18446744073709551615.99999999999999999999.`))
	f.Add([]byte(`{"dam":"?","pid":"x","#":"h"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if ms, err := decodeFrame(b); err == nil {
			for i := range ms {
				_ = ackKind(&ms[i])
			}
		}
		for _, d := range scanDeliveries(nil, b, "R") {
			_ = d
		}
		_, _ = parseDeliveriesStrict(b, "s", "R")
	})
}

// TestCorkConn: corked writes are buffered (net.Pipe would block a real
// write with no reader), then written in order, in one write, before the
// next uncorked write; flush writes them too, and nothing when empty.
func TestCorkConn(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	cc := &corkConn{Conn: a}
	cc.setCorked(true)
	for _, s := range []string{"one", "two"} {
		if n, err := cc.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("corked write: %d, %v", n, err)
		}
	}
	cc.setCorked(false)
	read := make(chan string)
	go func() {
		var got []byte
		buf := make([]byte, 64)
		for len(got) < len("onetwothreefour") {
			n, err := b.Read(buf)
			if err != nil {
				break
			}
			got = append(got, buf[:n]...)
		}
		read <- string(got)
	}()
	if _, err := cc.Write([]byte("three")); err != nil {
		t.Fatal(err)
	}
	cc.setCorked(true)
	if _, err := cc.Write([]byte("four")); err != nil {
		t.Fatal(err)
	}
	if err := cc.flush(); err != nil {
		t.Fatal(err)
	}
	if err := cc.flush(); err != nil { // empty: no write (it would block)
		t.Fatal(err)
	}
	if got := <-read; got != "onetwothreefour" {
		t.Fatalf("read %q", got)
	}
}
