//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/client"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/keys"
)

// Table B rows 1, 2 and 15 with the real binary: `luminary serve --data
// DIR --demo` in a child process, Go clients sending acknowledged
// messages, then SIGKILL (or SIGTERM) and a restart on the same data
// directory. After each restart every acknowledged message is in the log,
// in order, at its acknowledged seq; Croquet time never goes backwards
// (the first tick after the restart is at or above every tick a client saw
// before); finally the exported history verifies.
//
// LUMINARY_KILL_ITERS sets the number of SIGKILL rounds (default 3).

// buildBinary builds ./cmd/luminary once per test run.
var buildOnce struct {
	sync.Once
	path string
	err  error
}

func luminaryBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped in -short mode")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "luminary-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "luminary")
		cmd := exec.Command("go", "build", "-o", buildOnce.path, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

// child is a running `luminary serve`.
type child struct {
	cmd    *exec.Cmd
	addr   string
	stderr *syncBuffer
	exited chan error
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func startServe(t testing.TB, bin, data, addr string) *child {
	t.Helper()
	args := []string{"serve", "--data", data, "--addr", addr, "--demo", "--log-format", "json", "--drain-timeout", "5s"}
	if p := os.Getenv("BENCH_RELAY_PROFILE"); p != "" {
		args = append(args, "--cpu-profile", p)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "LUMINARY_RELAY_KEY_PASSWORD=kill-test-password")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	c := &child{cmd: cmd, stderr: newSyncBuffer(), exited: make(chan error, 1)}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if os.Getenv("BENCH_RELAY_PROFILE") != "" {
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM) // flushes the profile
			select {
			case err := <-c.exited:
				c.exited <- err
			case <-time.After(20 * time.Second):
			}
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-c.exited
		if t.Failed() {
			t.Logf("serve output:\n%s", c.stderr.String())
		}
	})
	line := waitLine(t, c.stderr, `"luminary listening"`)
	var rec struct{ Addr string }
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatal(err)
	}
	c.addr = rec.Addr
	return c
}

func (c *child) signal(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := syscall.Kill(c.cmd.Process.Pid, sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.exited:
		c.exited <- err // for Cleanup
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not exit after %v", sig)
		return nil
	}
}

// demoJoin asks the relay for a message certificate for k in the demo
// world and returns the demo instance.
func demoJoin(t testing.TB, addr string, k *keys.Private) string {
	t.Helper()
	body := `{"pub":"` + k.Public().String() + `"}`
	resp, err := http.Post("http://"+addr+"/api/worlds/demo/join", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var g struct {
		Instance string `json:"instance"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&g); err != nil || resp.StatusCode != 200 {
		t.Fatalf("join: %d %v", resp.StatusCode, err)
	}
	return g.Instance
}

// loadRound follows the demo world with senders clients sending until
// stop is closed, and returns the acknowledged receipts and the highest
// Croquet time seen.
type loadResult struct {
	mu      sync.Mutex
	acked   []heartbeat.Receipt
	maxTime float64
}

func runLoad(t *testing.T, addr string, senders int, stop <-chan struct{}) (*loadResult, *sync.WaitGroup) {
	t.Helper()
	res := &loadResult{}
	var wg sync.WaitGroup
	for i := range senders {
		k, err := keys.Generate(keys.Secp256k1)
		if err != nil {
			t.Fatal(err)
		}
		inst := demoJoin(t, addr, k)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		c, err := client.Dial(ctx, "ws://"+addr+"/gun", client.Config{Key: k, ResendAfter: time.Hour, BackoffMax: time.Hour})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		w, err := c.Join(ctx, inst)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			for ev := range w.Events() {
				res.mu.Lock()
				res.maxTime = max(res.maxTime, ev.Time)
				res.mu.Unlock()
			}
		}()
		go func() {
			defer wg.Done()
			defer c.Close()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				rc, err := w.Send(ctx, fmt.Appendf(nil, `{"sender":%d,"n":%d}`, i, n))
				cancel()
				if err != nil {
					return // the relay went away: stop sending
				}
				res.mu.Lock()
				res.acked = append(res.acked, rc)
				res.maxTime = max(res.maxTime, rc.Time)
				res.mu.Unlock()
			}
		}()
	}
	return res, &wg
}

// checkLog follows the restarted relay's demo world and checks the acked
// receipts against it; it returns the Croquet time of the first tick seen.
func checkLog(t *testing.T, addr string, acked []heartbeat.Receipt, before float64) {
	t.Helper()
	k, _ := keys.Generate(keys.Secp256k1)
	inst := demoJoin(t, addr, k)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dbg := newSyncBuffer()
	c, err := client.Dial(ctx, "ws://"+addr+"/gun", client.Config{Key: k, Logger: slog.New(slog.NewTextHandler(dbg, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defer func() {
		if t.Failed() {
			t.Logf("client log:\n%s", dbg.String())
		}
	}()
	w, err := c.Join(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	// A message sent now lands after the restart: its time must not be
	// below anything seen before the kill (row 2).
	rc, err := w.Send(ctx, []byte(`{"after":"restart"}`))
	if err != nil {
		t.Fatal(err)
	}
	if rc.Time < before {
		t.Fatalf("time went backwards across the restart: %v < %v", rc.Time, before)
	}
	bySeq := map[uint64]heartbeat.Hash{}
	var last float64
	for ev := range w.Events() {
		if ev.Time < last {
			t.Fatalf("stream time went backwards: %v after %v", ev.Time, last)
		}
		last = ev.Time
		if e := ev.Entry; e != nil {
			bySeq[e.Seq] = e.MessageID()
			if e.Seq >= rc.Seq {
				break
			}
		}
	}
	for _, a := range acked {
		if got, ok := bySeq[a.Seq]; !ok || got != a.ID {
			t.Fatalf("acked message %s (seq %d) missing after the restart", a.ID, a.Seq)
		}
	}
}

func TestServeKillRestart(t *testing.T) {
	bin := luminaryBinary(t)
	data := t.TempDir()
	iters := 3
	if s := os.Getenv("LUMINARY_KILL_ITERS"); s != "" {
		iters, _ = strconv.Atoi(s)
	}
	addr := freePort(t)
	var allAcked []heartbeat.Receipt
	var maxTime float64
	for it := range iters {
		srv := startServe(t, bin, data, addr)
		if it > 0 {
			checkLog(t, srv.addr, allAcked, maxTime)
		}
		stop := make(chan struct{})
		res, wg := runLoad(t, srv.addr, 4, stop)
		// Kill at a random moment once some messages are acknowledged.
		deadline := time.Now().Add(20 * time.Second)
		want := 20 + rand.IntN(60)
		for {
			res.mu.Lock()
			n := len(res.acked)
			res.mu.Unlock()
			if n >= want || time.Now().After(deadline) {
				break
			}
			srv.stderr.waitChange(100 * time.Millisecond)
		}
		_ = srv.signal(t, syscall.SIGKILL)
		close(stop)
		wg.Wait()
		res.mu.Lock()
		if len(res.acked) == 0 {
			t.Fatal("no message acknowledged before the kill")
		}
		allAcked = append(allAcked, res.acked...)
		maxTime = max(maxTime, res.maxTime)
		res.mu.Unlock()
		t.Logf("round %d: %d acked, max time %.3f s", it, len(res.acked), maxTime)
	}

	// Row 15: SIGTERM under load, clean exit, and the history verifies.
	srv := startServe(t, bin, data, addr)
	checkLog(t, srv.addr, allAcked, maxTime)
	stop := make(chan struct{})
	res, wg := runLoad(t, srv.addr, 4, stop)
	for {
		res.mu.Lock()
		n := len(res.acked)
		res.mu.Unlock()
		if n >= 30 {
			break
		}
		srv.stderr.waitChange(100 * time.Millisecond)
	}
	if err := srv.signal(t, syscall.SIGTERM); err != nil {
		t.Fatalf("serve exited with %v after SIGTERM:\n%s", err, srv.stderr.String())
	}
	close(stop)
	wg.Wait()
	allAcked = append(allAcked, res.acked...)
	if !strings.Contains(srv.stderr.String(), `"stopped"`) {
		t.Fatalf("no clean stop:\n%s", srv.stderr.String())
	}
	out := filepath.Join(t.TempDir(), "demo.jsonl")
	if code, _, errs := runCLI(t, "", "history", "export", "--world", "demo", "--data", data, "-o", out); code != 0 {
		t.Fatalf("export: %s", errs)
	}
	code, stdout, errs := runCLI(t, "", "history", "verify", out)
	if code != 0 {
		t.Fatalf("verify: %s\n%s", errs, stdout)
	}
	for _, a := range allAcked {
		if !strings.Contains(stdout, a.ID.String()) {
			t.Fatalf("acked message %s not in the exported history", a.ID)
		}
	}
	// The restart after SIGTERM needs no repair: every publication reached
	// the graph before the exit.
	srv = startServe(t, bin, data, addr)
	checkLog(t, srv.addr, allAcked, maxTime)
	if strings.Contains(srv.stderr.String(), "missing from the graph") {
		t.Fatalf("SIGTERM left entries out of the graph:\n%s", srv.stderr.String())
	}
}

// waitLine blocks (at most 30 s) until the buffer holds a line containing
// substr, and returns it.
func waitLine(t testing.TB, s *syncBuffer, substr string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range strings.Split(s.String(), "\n") {
			if strings.Contains(l, substr) {
				return l
			}
		}
		s.waitChange(time.Second)
	}
	t.Fatalf("no line with %q in:\n%s", substr, s.String())
	return ""
}

// waitChange blocks until the buffer is written to or d passes.
func (s *syncBuffer) waitChange(d time.Duration) {
	s.mu.Lock()
	ch := s.changed
	s.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(d):
	}
}
