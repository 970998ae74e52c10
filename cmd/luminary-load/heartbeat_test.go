package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/keys"
	"github.com/krestianstvo/luminary/sea"
)

func TestTickTally(t *testing.T) {
	const ms = int64(time.Millisecond)
	var tl tickTally
	type obs struct {
		epoch, n uint64
		at       int64
		in       bool
		gap      int64
		hasGap   bool
	}
	steps := []obs{
		{1, 10, 0, false, 0, false},      // before the window
		{1, 11, 50 * ms, true, 0, false}, // first in the window: no gap, expected 1
		{1, 12, 100 * ms, true, 50 * ms, true},
		{1, 12, 101 * ms, true, 0, false},       // repeat: dup
		{1, 11, 102 * ms, true, 0, false},       // older: dup
		{1, 15, 250 * ms, true, 150 * ms, true}, // 13 and 14 lost
		{2, 1, 300 * ms, true, 0, false},        // new epoch restarts the counter
		{2, 2, 350 * ms, true, 50 * ms, true},
		{2, 3, 400 * ms, false, 0, false}, // after the window
	}
	for i, s := range steps {
		gap, ok := tl.observe(s.epoch, s.n, s.at, s.in)
		if gap != s.gap || ok != s.hasGap {
			t.Fatalf("step %d: gap %d/%v, want %d/%v", i, gap, ok, s.gap, s.hasGap)
		}
	}
	// Received: 11, 12, 15, e2/1, e2/2 = 5. Expected: 1 + 1 + 3 + 1 + 1 = 7.
	if tl.Received != 5 || tl.Expected != 7 || tl.lost() != 2 || tl.Dups != 2 || tl.Epochs != 1 {
		t.Fatalf("tally %+v lost %d", tl, tl.lost())
	}
	var tot tickTotals
	tot.add(&tl)
	tot.add(&tickTally{})
	if tot.Followed != 2 || tot.Silent != 1 || tot.LostByGap != 2 || tot.MaxLost != 2 || tot.Received != 5 {
		t.Fatalf("totals %+v", tot)
	}
}

func TestScanGunTicksMatchesStrict(t *testing.T) {
	run := "Ab3dE"
	var frames [][]byte
	// Single puts, a batch, and a foreign run's tick.
	for i := range 5 {
		frames = append(frames, appendPut(nil, newID(), hbSoul("gun", run, nil, i), "tick",
			1764206400000.5+float64(i), makeGunTick(run, i, uint64(100+i))))
	}
	batch := []outMsg{
		{msg: appendPut(nil, newID(), hbSoul("gun", run, nil, 7), "tick", 1764206400123, makeGunTick(run, 7, 1))},
		{msg: appendPut(nil, newID(), hbSoul("gun", "other", nil, 8), "tick", 1764206400124, makeGunTick("other", 8, 2))},
		{msg: appendPut(nil, newID(), hbSoul("gun", run, nil, 4000), "tick", 1764206400125, makeGunTick(run, 4000, 123456))},
	}
	frames = append(frames, appendBatch(nil, batch), []byte(`[]`), []byte(`{"#":"x","@":"y","ok":true}`))
	for k, f := range frames {
		fast := scanGunTicks(nil, f, run)
		strict, err := parseTicksStrict(f, run, nil)
		if err != nil {
			t.Fatalf("frame %d: %v", k, err)
		}
		sortTicks(fast)
		sortTicks(strict)
		if !slices.Equal(fast, strict) {
			t.Fatalf("frame %d: fast %v strict %v", k, fast, strict)
		}
	}
	got := scanGunTicks(nil, appendBatch(nil, batch), run)
	if len(got) != 2 || got[1].inst != 4000 || got[1].n != 123456 {
		t.Fatalf("batch: %v", got)
	}
}

func sortTicks(ts []tickSeen) {
	slices.SortFunc(ts, func(a, b tickSeen) int {
		if a.inst != b.inst {
			return a.inst - b.inst
		}
		return int(a.n) - int(b.n)
	})
}

// lumTick returns the JSON text of a heartbeat tick for instance inst.
func lumTick(t *testing.T, inst string, epoch, n uint64, state float64) string {
	t.Helper()
	tk := heartbeat.Tick{
		TickRecord: heartbeat.TickRecord{Instance: inst, Epoch: epoch, N: n, Seq: 7, State: state, Start: 1764206000000, Rate: 1},
		Proof:      heartbeat.Proof{Signer: inst, Index: 0, Count: 2, Path: []heartbeat.Hash{{1, 2, 3}}, Sig: make([]byte, 64)},
	}
	return string(tk.AppendJSON(nil))
}

func TestScanLuminaryTicksMatchesStrict(t *testing.T) {
	var insts []string
	index := map[string]int{}
	for i := range 3 {
		k, err := keys.Generate(keys.Secp256k1)
		if err != nil {
			t.Fatal(err)
		}
		insts = append(insts, k.Public().String())
		index[insts[i]] = i
	}
	unknown := "k1:AgrrqmC22mUYv6AdutKhssRnsBaYr-nGBFNNeKuMaZ6g"
	var frames [][]byte
	for i, inst := range insts {
		frames = append(frames, appendNodePut(nil, newID(), "lum/"+inst+"/hb", 1764206400000.25, []fieldKV{
			{name: "tick", str: lumTick(t, inst, 3, uint64(40+i), 1764206400000.25+float64(i))},
			{name: "epoch", num: 3, isN: true}, {name: "seq", num: 7, isN: true}, {name: "head", str: "abc"},
		}))
	}
	// A batch with a tick of an instance we do not follow and a log entry
	// (which also starts with "instance" but has no "n").
	entry := `{"instance":"` + insts[0] + `","epoch":3,"seq":8,"state":1764206400001,"prev":"x"}`
	batch := []outMsg{
		{msg: appendPut(nil, newID(), "lum/"+unknown+"/hb", "tick", 1, lumTick(t, unknown, 1, 5, 1764206400002))},
		{msg: appendPut(nil, newID(), "lum/"+insts[0]+"/log/0", "00000000000000000008", 1764206400001, entry)},
		{msg: appendPut(nil, newID(), "lum/"+insts[2]+"/hb", "tick", 1764206400003, lumTick(t, insts[2], 4, 1, 1764206400003.5))},
	}
	frames = append(frames, appendBatch(nil, batch))
	for k, f := range frames {
		fast := scanLuminaryTicks(nil, f, index)
		strict, err := parseTicksStrict(f, "", index)
		if err != nil {
			t.Fatalf("frame %d: %v", k, err)
		}
		sortTicks(fast)
		sortTicks(strict)
		if !slices.Equal(fast, strict) {
			t.Fatalf("frame %d: fast %v strict %v", k, fast, strict)
		}
		if len(fast) != 1 {
			t.Fatalf("frame %d: %d ticks, want 1", k, len(fast))
		}
	}
	got := scanLuminaryTicks(nil, frames[len(frames)-1], index)
	if got[0] != (tickSeen{inst: 2, epoch: 4, n: 1, state: 1764206400003.5}) {
		t.Fatalf("batch tick %+v", got[0])
	}
}

func TestAssignFollowers(t *testing.T) {
	for _, c := range []struct{ n, f, per int }{{1, 1, 500}, {250, 1, 500}, {1000, 2, 300}, {5000, 1, 500}, {3, 3, 10}} {
		conns := assignFollowers(c.n, c.f, c.per)
		count := make([]int, c.n)
		for _, insts := range conns {
			if len(insts) > c.per {
				t.Fatalf("%+v: a connection follows %d souls", c, len(insts))
			}
			seen := map[int]bool{}
			for _, i := range insts {
				if seen[i] {
					t.Fatalf("%+v: instance %d twice on one connection", c, i)
				}
				seen[i] = true
				count[i]++
			}
		}
		for i, k := range count {
			if k != c.f {
				t.Fatalf("%+v: instance %d followed %d times", c, i, k)
			}
		}
	}
}

func TestAppendBatch(t *testing.T) {
	one := []outMsg{{msg: []byte(`{"#":"a"}`)}}
	if got := string(appendBatch(nil, one)); got != `{"#":"a"}` {
		t.Fatalf("one: %s", got)
	}
	three := []outMsg{{msg: []byte(`{"#":"a"}`)}, {msg: []byte(`{"#":"b"}`)}, {msg: []byte(`{"#":"c"}`)}}
	ms, err := decodeFrame(appendBatch(nil, three))
	if err != nil || len(ms) != 3 || ms[2].ID != "c" {
		t.Fatalf("batch: %v %v", ms, err)
	}
}

// TestInboxFrameRoundTrip: the frame the messages mode puts is what the
// relay's admission reads back as a verified heartbeat message.
func TestInboxFrameRoundTrip(t *testing.T) {
	for _, curve := range []keys.Curve{keys.Secp256k1, keys.P256} {
		owner, _ := keys.Generate(keys.Secp256k1)
		author, err := keys.Generate(curve)
		if err != nil {
			t.Fatal(err)
		}
		ids := []string{newID(), newID()}
		frames, err := presign(owner.Public().String(), []*keys.Private{author}, "run01", 2, 100, ids)
		if err != nil {
			t.Fatal(err)
		}
		for s, f := range frames {
			ms, err := decodeFrame(f)
			if err != nil || len(ms) != 1 || ms[0].ID != ids[s] {
				t.Fatalf("frame %d: %v %v", s, ms, err)
			}
			var g map[string]map[string]any
			if err := json.Unmarshal(ms[0].Put, &g); err != nil || len(g) != 1 {
				t.Fatalf("put: %v", err)
			}
			for soul, node := range g {
				meta := node["_"].(map[string]any)
				if meta["#"] != soul || len(meta[">"].(map[string]any)) != 7 {
					t.Fatalf("meta %v", meta)
				}
				delete(node, "_")
				m, err := heartbeat.InboxMessage(soul, node, heartbeat.KeyVerifier(keys.NewCache(8)))
				if err != nil {
					t.Fatalf("%v: %v", curve, err)
				}
				if m.Author != author.Public().String() || !strings.HasPrefix(m.Payload, valueMarker+"run01."+strconv.Itoa(s)+".") || len(m.Payload) != 100 {
					t.Fatalf("message %+v", m)
				}
				if got := scanDeliveries(nil, []byte(`{"put":`+strconv.Quote(m.Payload)+`}`), "run01"); len(got) != 1 || got[0].seq != uint64(s) {
					t.Fatalf("payload not found by the scanner: %v", got)
				}
			}
		}
	}
}

func TestSEAWrapper(t *testing.T) {
	k, err := keys.Generate(keys.P256)
	if err != nil {
		t.Fatal(err)
	}
	soul := "~" + k.Public().String() + "/lloadx/1"
	check := func(wrapper string, state float64) error {
		o, err := jsjson.Parse([]byte(wrapper), jsjson.Limits{})
		if err != nil {
			return err
		}
		w := o.(*jsjson.Object)
		if w.Len() != 2 || w.Keys[0] != ":" || w.Keys[1] != "~" {
			t.Fatalf("wrapper members %v", w.Keys)
		}
		inner, _ := w.Get(":")
		sig, _ := w.Get("~")
		m := &jsjson.Object{Keys: seaPutKeys, Values: []any{soul, "f", inner, state}}
		return sea.VerifyValue(m, sig.(string), k.Public())
	}
	good, err := seaWrapper(k, soul, "f", "hello", 1764206400000.5)
	if err != nil {
		t.Fatal(err)
	}
	if err := check(good, 1764206400000.5); err != nil {
		t.Fatalf("good wrapper: %v", err)
	}
	if err := check(good, 1764206400001); err == nil {
		t.Fatal("signature must cover the state")
	}
	forged, _ := seaWrapper(k, soul, "f", "hello!", 1764206400000.5)
	tampered := swapSig(good, forged)
	if !strings.HasPrefix(tampered, `{":":"hello","~":"`) || tampered == good {
		t.Fatalf("tampered %s", tampered)
	}
	if err := check(tampered, 1764206400000.5); err == nil {
		t.Fatal("tampered wrapper verified")
	}
	pool, err := buildSEAPool([]*keys.Private{k}, "run01", 20, 80, 5)
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for j, f := range pool.frames {
		ms, err := decodeFrame(f)
		if err != nil || ms[0].ID != pool.ids[j] {
			t.Fatalf("pool frame %d: %v", j, err)
		}
		var g map[string]map[string]json.RawMessage
		_ = json.Unmarshal(ms[0].Put, &g)
		for s, node := range g {
			soul = s
			var w string
			_ = json.Unmarshal(node["f"], &w)
			var meta struct {
				State map[string]float64 `json:">"`
			}
			_ = json.Unmarshal(node["_"], &meta)
			if check(w, meta.State["f"]) != nil {
				bad++
			}
		}
	}
	if bad != 4 { // j = 0, 5, 10, 15
		t.Fatalf("%d puts fail verification, want 4", bad)
	}
	for range 20 {
		if _, _, ok := pool.take(); !ok {
			t.Fatal("pool ran out early")
		}
	}
	if _, _, ok := pool.take(); ok {
		t.Fatal("pool did not run out")
	}
}

// TestRegisterHAM: the gun.js register emulation applies a put only when
// its state is above the current one (ties: the larger value).
func TestRegisterHAM(t *testing.T) {
	shared := &msgShared{stateOf: make([]atomic.Uint64, 5)}
	states := []float64{100, 101, 99, 101, 102}
	for s, st := range states {
		shared.stateOf[s].Store(math.Float64bits(st))
	}
	c := &msgClient{run: "r", shared: shared, regSeq: -1}
	want := []bool{true, true, false, true, true} // seq 3 ties seq 1 at 101: "LLv1.r.3" > "LLv1.r.1"
	for s, w := range want {
		if got := c.applyLocked(uint64(s)); got != w {
			t.Fatalf("seq %d: applied %v, want %v", s, got, w)
		}
	}
	c2 := &msgClient{run: "r", shared: shared, regSeq: -1}
	c2.applyLocked(3)
	if c2.applyLocked(1) {
		t.Fatal("equal state with a smaller value must lose")
	}
}

func TestReadWorldsAndHelpers(t *testing.T) {
	ws, err := readWorlds(strings.NewReader("# worlds\nk1:a\n\n  k1:b extra\n"))
	if err != nil || !slices.Equal(ws, []string{"k1:a", "k1:b"}) {
		t.Fatalf("readWorlds: %v %v", ws, err)
	}
	for in, want := range map[string]string{
		"http://127.0.0.1:8765/gun": "http://127.0.0.1:8765",
		"ws://h:1/gun":              "http://h:1",
		"wss://h/x/gun":             "https://h",
	} {
		if got, err := httpBase(in); err != nil || got != want {
			t.Errorf("httpBase(%q) = %q, %v", in, got, err)
		}
	}
	soul := "lum/k1:x/hb"
	frame := appendNodePut(nil, "id1", soul, 5, []fieldKV{{name: "seq", num: 42, isN: true}, {name: "tick", str: `{"seq":1}`}})
	if s, ok := headSeqOf(frame, soul); !ok || s != 42 {
		t.Fatalf("headSeqOf = %d %v", s, ok)
	}
	if _, ok := headSeqOf(frame, "lum/other/hb"); ok {
		t.Fatal("seq of another soul")
	}
}

func TestMeasureVerifyRuns(t *testing.T) {
	for _, c := range []keys.Curve{keys.P256, keys.Secp256k1} {
		vr, err := measureVerify(context.Background(), c, 2, 40*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if vr.VerifiedFailed != 0 || vr.RawCPUUsPerOp <= 0 || (c == keys.P256) != (vr.SEAPerSec1 > 0) {
			t.Fatalf("%v: %+v", c, vr)
		}
	}
}

// The runs below use the fake relay of load_test.go (it pushes every put
// to the connections that sent a get for its soul). They check the
// bookkeeping end to end, never timing: drains end as soon as everything
// arrived, so the generous bounds only matter on a stuck machine.

func TestTicksGunAgainstFakeRelay(t *testing.T) {
	url := startFake(t, &fakeRelay{})
	res, err := runTicks(context.Background(), ticksConfig{URL: url, Label: "fake", Kind: "gun", Instances: 7, TPS: 20,
		Followers: 2, SoulsPerConn: 4, Writers: 2, MaxBatch: 3, Queue: 1000, Hello: true, GapGoalMs: 1e9,
		Warmup: 100 * time.Millisecond, Duration: 400 * time.Millisecond, Drain: 20 * time.Second,
		GetTimeout: 20 * time.Second, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.FollowerConns != 4 || res.Subscribed != 14 || res.GetReplies != 14 {
		t.Fatalf("followers %d subscribed %d replies %d", res.FollowerConns, res.Subscribed, res.GetReplies)
	}
	// Ticks 3..10 of each instance are in the window (n = 0.1 s·20+1 … 0.5 s·20).
	// The last ones are due a few ms before the window ends; on a slow
	// machine some may still be queued then and are dropped, not sent late.
	if res.Offered != 7*8 || res.Written+res.DroppedAtSender != res.Offered || res.Written == 0 {
		t.Fatalf("offered %d written %d dropped %d", res.Offered, res.Written, res.DroppedAtSender)
	}
	if res.Totals.Received != 2*res.Written || res.Lost != 0 || res.Totals.Silent != 0 {
		t.Fatalf("received %d of %d, lost %d, totals %+v", res.Totals.Received, 2*res.Written, res.Lost, res.Totals)
	}
	pairs := uint64(res.Totals.Followed)
	if res.Gap.Count != res.Totals.Received-pairs || res.Lag.Count != res.Totals.Received || !res.Pass || res.BadFrames != 0 {
		t.Fatalf("gaps %d lags %d pass %v bad %d", res.Gap.Count, res.Lag.Count, res.Pass, res.BadFrames)
	}
}

func TestMessagesGunAgainstFakeRelay(t *testing.T) {
	url := startFake(t, &fakeRelay{})
	var trace bytes.Buffer
	res, err := runMessages(context.Background(), messagesConfig{URL: url, Label: "fake", Kind: "gun", Clients: 4,
		Rates: []int{40, 80}, Size: 80, Queue: 100, MaxBatch: 1, P99GoalMs: 1e9, Hello: true,
		Step: 250 * time.Millisecond, Drain: 20 * time.Second, GetTimeout: 20 * time.Second, DialTimeout: 5 * time.Second,
		Trace: &trace})
	if err != nil {
		t.Fatal(err)
	}
	// The trace has one line per delivery the first three clients applied:
	// as many as their latency histograms counted.
	lines := strings.Split(strings.TrimSpace(trace.String()), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "# client seq") {
		t.Fatalf("trace: %q", trace.String())
	}
	traced := map[int]int{}
	for _, l := range lines[1:] {
		var client int
		var seq uint64
		var sent, at int64
		if n, err := fmt.Sscan(l, &client, &seq, &sent, &at); n != 4 || err != nil || client >= traceClients || at < sent || sent <= 0 {
			t.Fatalf("trace line %q: %v", l, err)
		}
		traced[client]++
	}
	if len(traced) != traceClients {
		t.Fatalf("trace follows clients %v, want %d of them", traced, traceClients)
	}
	if total := len(lines) - 1; uint64(total) > res.Steps[0].Received+res.Steps[1].Received {
		t.Fatalf("trace has %d lines, more than the %d deliveries applied", total, res.Steps[0].Received+res.Steps[1].Received)
	}
	if len(res.Steps) != 2 || res.GetReplies != 4 {
		t.Fatalf("steps %d replies %d", len(res.Steps), res.GetReplies)
	}
	for _, s := range res.Steps {
		// Every put reaches the 3 other clients; whether each applies it
		// depends on HAM (states from 4 independent clocks), so only the
		// wire count is exact.
		if s.Sent != uint64(s.Rate)/4 || s.Expected != 3*s.Sent || s.WireReceived != s.Expected || s.Received > s.Expected || s.Received == 0 {
			t.Fatalf("step %+v", s)
		}
		if s.Acked != s.Sent || s.AckErrors != 0 || s.NotSent != 0 {
			t.Fatalf("acks: %+v", s)
		}
	}
	if res.BadFrames != 0 || res.Late != 0 {
		t.Fatalf("bad %d late %d", res.BadFrames, res.Late)
	}
}

func TestSignedPutsAgainstFakeRelay(t *testing.T) {
	f := &fakeRelay{}
	url := startFake(t, f)
	res, err := runPuts(context.Background(), putsConfig{URL: url, Label: "fake", Writers: 2, Window: 4,
		ValueSize: 100, FieldsPerSoul: 1, Duration: 10 * time.Second, Timeout: 5 * time.Second,
		DialTimeout: 5 * time.Second, Hello: true, Signed: "sea", Users: 2, Presign: 30})
	if err != nil {
		t.Fatal(err)
	}
	// The pool runs out long before the 10 s window ends.
	if !res.PoolExhausted || res.Sent != 30 || res.AckedInWindow != 30 || f.puts.Load() != 30 {
		t.Fatalf("exhausted %v sent %d acked %d relay saw %d", res.PoolExhausted, res.Sent, res.AckedInWindow, f.puts.Load())
	}
}

func TestReportNewModes(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, v any) string {
		p := dir + "/" + name
		if err := writeJSON(p, v); err != nil {
			t.Fatal(err)
		}
		return p
	}
	files := []string{
		write("t1.json", &ticksResult{Mode: "ticks", Label: "gun.js", Kind: "gun", Instances: 250, LostPct: 6, Gap: latencySummary{P99Ms: 227}}),
		write("t2.json", &ticksResult{Mode: "ticks", Label: "luminary", Kind: "luminary", Instances: 250, Pass: true}),
		write("m1.json", &messagesResult{Mode: "messages", Label: "gun.js", Kind: "gun", Steps: []messagesStep{{Rate: 100, DeliveredPct: 97.5}}}),
		write("m2.json", &messagesResult{Mode: "messages", Label: "luminary", Kind: "luminary", Steps: []messagesStep{{Rate: 100, DeliveredPct: 100}}}),
		write("v.json", &verifyResult{Mode: "verify", Rate: &verifyRate{Curve: "p256", Threads: 2, RawPerSec1: 16000}}),
		write("p.json", &putsResult{Mode: "puts", Label: "luminary-sea", Params: putsConfig{Writers: 4, Window: 64, Signed: "sea"},
			AckedPerSec: 9000, Verify: &verifyRate{Threads: 2, RawPerSecAll: 30000}, AckedVsRaw: 0.3, PoolExhausted: true}),
	}
	var out strings.Builder
	if err := runReport(files, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"== ticks:", "== messages:", "verify p256: raw 16000/s", "30.0% of raw P-256 verify", "WARNING the pre-signed pool ran out",
		"gun.js lost %", "luminary applied"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestScanReplyIDs(t *testing.T) {
	frame := []byte(`[{"#":"a1","@":"get000001","put":{"s":{"tick":"{\"@\":\"fake\"}"}}},{"@":"get000002","ok":{"@":2}}]`)
	got := scanReplyIDs(nil, frame)
	if !slices.Equal(got, []string{"get000001", "get000002"}) {
		t.Fatalf("ids %v", got)
	}
	ms, _ := decodeFrame(frame)
	if len(ms) != 2 || ms[0].At != got[0] || ms[1].At != got[1] {
		t.Fatalf("decoder disagrees: %+v", ms)
	}
}

func TestLossAccounting(t *testing.T) {
	if l, d := gunLoss(100, 2, 190); l != 10 || d != 200 {
		t.Fatalf("gunLoss = %d/%d", l, d)
	}
	if l, d := gunLoss(100, 1, 100); l != 0 || d != 100 {
		t.Fatalf("gunLoss = %d/%d", l, d)
	}
	// On cadence: 2 instances × 200 ticks, one edge tick short each: no loss.
	if l, d := relayLoss(tickTotals{Followed: 2, Received: 398, Expected: 398}, 200); l != 0 || d != 400 {
		t.Fatalf("on cadence: %d/%d", l, d)
	}
	// Gaps in the counters.
	if l, d := relayLoss(tickTotals{Followed: 2, Received: 390, Expected: 400, LostByGap: 10}, 200); l != 10 || d != 400 {
		t.Fatalf("gaps: %d/%d", l, d)
	}
	// A follower closed halfway: no gaps seen, but the cadence is short.
	if l, d := relayLoss(tickTotals{Followed: 2, Received: 300, Expected: 300}, 200); l != 98 || d != 400 {
		t.Fatalf("closed: %d/%d", l, d)
	}
	// A silent instance lost everything.
	if l, d := relayLoss(tickTotals{Followed: 2, Silent: 1, Received: 200, Expected: 200}, 200); l != 200 || d != 400 {
		t.Fatalf("silent: %d/%d", l, d)
	}
}

// FuzzTickFrames: the scanners and parsers of the ticks and messages modes
// read frames a relay sent; none may panic, and every tick they report
// names an instance the caller follows.
func FuzzTickFrames(f *testing.F) {
	f.Add([]byte(`{"#":"a","put":{"lum/tR-1/hb":{"_":{"#":"lum/tR-1/hb",">":{"tick":1}},"tick":"LT.R.1.7"}}}`))
	f.Add([]byte(`[{"#":"a","@":"g1","put":{"lum/k1:x/hb":{"tick":"{\"instance\":\"k1:x\",\"epoch\":1,\"n\":2,\"seq\":3,\"head\":\"h\",\"state\":1764206400000.5}","seq":3}}}]`))
	f.Add([]byte(`{"put":{\"instance\":\"k1:x\",\"epoch\":99999999999999999999,\"n\":,\"state\":1e999}`))
	f.Add([]byte(`{"@":"`))
	f.Add([]byte(`LT.R.99999999999999999999.1"`))
	index := map[string]int{"k1:x": 0}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, tk := range scanLuminaryTicks(nil, b, index) {
			if tk.inst != 0 {
				t.Fatalf("tick of an unknown instance: %+v", tk)
			}
		}
		_ = scanGunTicks(nil, b, "R")
		_, _ = parseTicksStrict(b, "R", nil)
		_, _ = parseTicksStrict(b, "", index)
		for _, id := range scanReplyIDs(nil, b) {
			if strings.Contains(id, `"`) {
				t.Fatalf("id %q", id)
			}
		}
		_, _ = headSeqOf(b, "lum/k1:x/hb")
	})
}

// TestRoundArrivals checks the round figures of the ticks command: a
// round is its stamp to the millisecond, its spread runs from its first
// arrival at a connection to its last, and the round gap is between
// consecutive rounds' first arrivals.
func TestRoundArrivals(t *testing.T) {
	ms := int64(time.Millisecond)
	a := &tickFollower{rounds: []roundSeen{{1000.192, 100 * ms}, {1050.192, 152 * ms}}}
	b := &tickFollower{rounds: []roundSeen{{1000.193, 103 * ms}, {1050.193, 150 * ms}, {1100.2, 201 * ms}}}
	gap, spread := roundArrivals([]*tickFollower{a, b})
	if gap.Count != 2 || gap.MinMs != 50 || gap.MaxMs != 51 {
		t.Errorf("round gap %+v, want 2 gaps of 50 and 51 ms", gap)
	}
	if spread.Count != 2 || spread.MinMs != 2 || spread.MaxMs != 3 {
		t.Errorf("round spread %+v, want 2 rounds spread 3 and 2 ms", spread)
	}
}
