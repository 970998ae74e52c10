package api_test

// Interop tests: real gun.js (npm gun 0.2020.1241, each peer in its own node
// process) against the luminary binary, built once per test run. They need
// node and the repository's node_modules; nodetest.Require skips them
// locally when those are missing and fails them when CI is set.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/internal/nodetest"
)

const lineTimeout = 30 * time.Second

var (
	binDir   string
	binOnce  sync.Once
	binPath  string
	binError error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// luminaryBin builds ./cmd/luminary once per test run.
func luminaryBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "luminary-interop-")
		if err != nil {
			binError = err
			return
		}
		binDir = dir
		binPath = filepath.Join(dir, "luminary")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/krestianstvo/luminary/cmd/luminary")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binError = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}

// relayProc is a running luminary binary.
type relayProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	url    string // http://addr/gun, as gun.js peers are configured
	exited chan struct{}

	mu      sync.Mutex
	lines   []string
	cursor  int
	changed chan struct{}
}

// startRelay runs `luminary serve --addr 127.0.0.1:0 <args>` and waits for
// its "luminary listening" log line.
func startRelay(t *testing.T, args ...string) *relayProc {
	t.Helper()
	nodetest.Require(t)
	bin := luminaryBin(t)
	all := append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json"}, args...)
	cmd := exec.Command(bin, all...)
	// These tests exchange ordinary gun.js data (souls outside worlds and user
	// space), which the relay's default secure mode refuses: run it open,
	// like a stock relay. Secure mode has its own tests (auth_interop_test.go).
	cmd.Env = append(os.Environ(), "LUMINARY_LOG_LEVEL=info", "LUMINARY_AUTH_MODE=open")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	r := &relayProc{t: t, cmd: cmd, exited: make(chan struct{}), changed: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			r.mu.Lock()
			r.lines = append(r.lines, sc.Text())
			close(r.changed)
			r.changed = make(chan struct{})
			r.mu.Unlock()
		}
		_ = cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-r.exited:
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-r.exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-r.exited
			}
		}
		if t.Failed() {
			r.mu.Lock()
			t.Logf("luminary %v log:\n%s", all, strings.Join(r.lines, "\n"))
			r.mu.Unlock()
		}
	})
	line := r.waitLog(`"luminary listening"`)
	var rec struct{ Addr string }
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Addr == "" {
		t.Fatalf("bad listening line %q", line)
	}
	r.addr = rec.Addr
	r.url = "http://" + rec.Addr + "/gun"
	return r
}

// waitLog returns the next log line (after the previous match) containing
// substr.
func (r *relayProc) waitLog(substr string) string {
	r.t.Helper()
	deadline := time.After(lineTimeout)
	for {
		r.mu.Lock()
		for ; r.cursor < len(r.lines); r.cursor++ {
			if strings.Contains(r.lines[r.cursor], substr) {
				l := r.lines[r.cursor]
				r.cursor++
				r.mu.Unlock()
				return l
			}
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-r.exited:
			r.t.Fatalf("luminary exited before logging %q", substr)
		case <-deadline:
			r.t.Fatalf("luminary did not log %q within %v", substr, lineTimeout)
		}
	}
}

// stop sends SIGTERM and requires a clean exit.
func (r *relayProc) stop() {
	r.t.Helper()
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(lineTimeout):
		r.t.Fatal("luminary did not stop after SIGTERM")
	}
	if code := r.cmd.ProcessState.ExitCode(); code != 0 {
		r.t.Fatalf("luminary exited with %d after SIGTERM", code)
	}
}

// kill9 kills the relay with SIGKILL.
func (r *relayProc) kill9() {
	r.t.Helper()
	_ = r.cmd.Process.Kill()
	<-r.exited
}

// gunPeer is one gun.js client process (testdata/node/client.mjs).
type gunPeer struct {
	t *testing.T
	p *nodetest.Proc
}

func startPeer(t *testing.T, url string) *gunPeer {
	t.Helper()
	p := nodetest.Start(t, "testdata/node/client.mjs", url)
	p.WaitLine(t, "READY", lineTimeout)
	p.WaitLine(t, "HI", lineTimeout)
	return &gunPeer{t: t, p: p}
}

func (g *gunPeer) cmd(op, id string, path []string, data any) {
	g.t.Helper()
	b, err := json.Marshal(map[string]any{"op": op, "id": id, "path": path, "data": data})
	if err != nil {
		g.t.Fatal(err)
	}
	if err := g.p.Send(string(b)); err != nil {
		g.t.Fatal(err)
	}
}

// put writes data at path and waits for an ok ack.
func (g *gunPeer) put(id string, path []string, data any) {
	g.t.Helper()
	g.cmd("put", id, path, data)
	line := g.p.WaitLine(g.t, "ACK "+id+" ", lineTimeout)
	var ack struct {
		OK  any
		Err any
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "ACK "+id+" ")), &ack); err != nil {
		g.t.Fatal(err)
	}
	if ack.Err != nil || ack.OK == nil {
		g.t.Fatalf("put %s: ack %s", id, line)
	}
}

// on subscribes to path; updates are read with until.
func (g *gunPeer) on(id string, path ...string) { g.cmd("on", id, path, nil) }

// until waits for an "ON id" update for which ok returns true.
func (g *gunPeer) until(id string, ok func(map[string]any) bool) map[string]any {
	g.t.Helper()
	for {
		line := g.p.WaitLine(g.t, "ON "+id+" ", lineTimeout)
		var d map[string]any
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "ON "+id+" ")), &d); err != nil {
			g.t.Fatal(err)
		}
		if ok(d) {
			return d
		}
	}
}

// once reads path once.
func (g *gunPeer) once(id string, path ...string) any {
	g.t.Helper()
	g.cmd("once", id, path, nil)
	line := g.p.WaitLine(g.t, "ONCE "+id+" ", lineTimeout)
	var v any
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "ONCE "+id+" ")), &v); err != nil {
		g.t.Fatal(err)
	}
	return v
}

// TestInteropTwoClients (a): two gun.js clients exchange data through the
// relay: put, get, live .on() updates, nested objects via links, deletes
// with null.
func TestInteropTwoClients(t *testing.T) {
	relay := startRelay(t, "--memory")
	a := startPeer(t, relay.url)
	b := startPeer(t, relay.url)

	// put + get.
	a.put("p1", []string{"room"}, map[string]any{"topic": "go", "size": 3})
	if v, ok := b.once("o1", "room").(map[string]any); !ok || v["topic"] != "go" || v["size"] != 3.0 {
		t.Fatalf("b read %v", v)
	}
	// Live updates: b watches, a changes.
	b.on("w", "room")
	b.until("w", func(d map[string]any) bool { return d["topic"] == "go" })
	a.put("p2", []string{"room"}, map[string]any{"topic": "rust"})
	b.until("w", func(d map[string]any) bool { return d["topic"] == "rust" && d["size"] == 3.0 })

	// Nested objects travel as two nodes joined by a link.
	a.put("p3", []string{"room"}, map[string]any{"owner": map[string]any{"name": "alice", "age": 30}})
	d := b.until("w", func(d map[string]any) bool { _, ok := d["owner"].(map[string]any); return ok })
	link, _ := d["owner"].(map[string]any)["#"].(string)
	if link == "" {
		t.Fatalf("owner is not a link: %v", d)
	}
	if v, ok := b.once("o2", "room", "owner").(map[string]any); !ok || v["name"] != "alice" || v["age"] != 30.0 {
		t.Fatalf("b read nested %v", v)
	}

	// Delete with null, seen live by the other client.
	a.put("p4", []string{"room"}, map[string]any{"topic": nil})
	b.until("w", func(d map[string]any) bool { v, ok := d["topic"]; return ok && v == nil })

	// And the other way round: b writes, a (subscribed now) sees it.
	a.on("wa", "room")
	a.until("wa", func(d map[string]any) bool { return d["size"] == 3.0 })
	b.put("p5", []string{"room"}, map[string]any{"size": 4})
	a.until("wa", func(d map[string]any) bool { return d["size"] == 4.0 })
}

// TestInteropStockRelayPeering (b): our relay peered (--peers) with a stock
// gun.js relay (multicast off): a put on either side reaches a subscriber on
// the other.
func TestInteropStockRelayPeering(t *testing.T) {
	// The nodetest default (AXE and RAD off: gun floods every message, and
	// only our relay acknowledges puts), and gun's node defaults (AXE and
	// RAD on: puts go only to peers that asked, and the stock relay
	// acknowledges from its own storage).
	for _, o := range []nodetest.GunRelayOptions{{}, {AXE: true, Radisk: true}} {
		t.Run(fmt.Sprintf("axe=%v,radisk=%v", o.AXE, o.Radisk), func(t *testing.T) { testStockRelayPeering(t, o) })
	}
}

func testStockRelayPeering(t *testing.T, o nodetest.GunRelayOptions) {
	stockURL, _ := nodetest.StartGunRelay(t, o)
	relay := startRelay(t, "--memory", "--peers", stockURL)
	relay.waitLog(`"peer connected"`)
	ours := startPeer(t, relay.url)
	theirs := startPeer(t, stockURL)

	// Our side -> stock side.
	ours.put("p1", []string{"x"}, map[string]any{"v": "ours-1"})
	theirs.on("wx", "x")
	theirs.until("wx", func(d map[string]any) bool { return d["v"] == "ours-1" })
	ours.put("p2", []string{"x"}, map[string]any{"v": "ours-2"})
	theirs.until("wx", func(d map[string]any) bool { return d["v"] == "ours-2" })

	// Stock side -> our side.
	theirs.put("p3", []string{"y"}, map[string]any{"v": "theirs-1"})
	ours.on("wy", "y")
	ours.until("wy", func(d map[string]any) bool { return d["v"] == "theirs-1" })
	theirs.put("p4", []string{"y"}, map[string]any{"v": "theirs-2"})
	ours.until("wy", func(d map[string]any) bool { return d["v"] == "theirs-2" })
}

// TestInteropDurability (c): data survives a restart of the relay, and a
// kill -9 right after an acknowledged put loses nothing acknowledged.
func TestInteropDurability(t *testing.T) {
	data := t.TempDir()

	// Graceful restart.
	relay := startRelay(t, "--data", data)
	w := startPeer(t, relay.url)
	w.put("p1", []string{"dur"}, map[string]any{"k": "v1", "n": 1})
	w.p.Stop()
	relay.stop()
	relay = startRelay(t, "--data", data)
	r := startPeer(t, relay.url)
	if v, ok := r.once("o1", "dur").(map[string]any); !ok || v["k"] != "v1" || v["n"] != 1.0 {
		t.Fatalf("after restart read %v", v)
	}
	r.p.Stop()

	// kill -9 right after acks: every acknowledged field is there.
	w = startPeer(t, relay.url)
	want := map[string]any{}
	for i := range 20 {
		k := fmt.Sprintf("f%02d", i)
		want[k] = fmt.Sprintf("value-%d", i)
		w.put("q"+k, []string{"crash"}, map[string]any{k: want[k]})
	}
	relay.kill9()
	relay = startRelay(t, "--data", data)
	r = startPeer(t, relay.url)
	got, ok := r.once("o2", "crash").(map[string]any)
	if !ok {
		t.Fatalf("after kill -9 read %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("after kill -9 field %s = %v, want %v (acknowledged before the kill)", k, got[k], v)
		}
	}
	if v, ok := r.once("o3", "dur").(map[string]any); !ok || v["k"] != "v1" {
		t.Fatalf("earlier data after kill -9: %v", v)
	}
}
