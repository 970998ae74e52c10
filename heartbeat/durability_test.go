package heartbeat_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/heartbeat/heartbeattest"
	"github.com/krestianstvo/luminary/internal/clock"
)

// The durability tests re-execute the test binary as a child that runs a
// host on a bbolt log and prints what it acknowledged or published; the
// parent kills it (SIGKILL or SIGTERM), reopens the log and checks.

const childEnv = "LUMINARY_HEARTBEAT_CHILD"

// relayKey ticks every instance in the children (it holds the tick role
// through childAuth).
var relayKey = heartbeattest.Key(999)

func childInstances(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = heartbeattest.Key(uint64(500 + i)).Public().String()
	}
	return out
}

var childAuth = heartbeat.AuthorizerFunc(func(_ context.Context, inst, key string, role heartbeat.Role, _ time.Time) error {
	if role == heartbeat.RoleTick && key != inst && key != relayKey.Public().String() {
		return errors.New("not a ticker")
	}
	return nil
})

// TestChildProcess is the child's body; it does nothing in a normal run.
func TestChildProcess(t *testing.T) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		t.Skip("helper process for the durability tests")
	}
	if err := runChild(mode, os.Getenv("LUMINARY_HEARTBEAT_DB")); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	os.Exit(0)
}

func runChild(mode, path string) error {
	bl, err := heartbeat.OpenBolt(path, heartbeat.BoltOptions{})
	if err != nil {
		return err
	}
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
		outMu.Unlock()
	}
	n := 1
	if mode == "tick" {
		n = 20
	}
	insts := childInstances(n)
	index := map[string]int{}
	for i, in := range insts {
		index[in] = i
	}
	cfg := heartbeat.HostConfig{Signer: heartbeat.KeySigner(relayKey), Log: bl, Lease: bl.Lease(), Blobs: bl, Authorizer: childAuth}
	if mode == "tick" {
		cfg.Sink = heartbeat.SinkFunc(func(p heartbeat.Publication) {
			say("tick %d %s %d", index[p.Meta.Instance], strconv.FormatFloat(p.Tick.State, 'g', -1, 64), p.Tick.Seq)
		})
	} else {
		cfg.ReserveAhead, cfg.MaxStartWait = 100*time.Millisecond, 100*time.Millisecond
	}
	h, err := heartbeat.NewHost(cfg)
	if err != nil {
		return err
	}
	for _, in := range insts {
		if err := h.Add(heartbeat.InstanceConfig{Instance: in}); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	runErr := make(chan error, 1)
	stopped := make(chan struct{})
	go func() {
		err := h.Run(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child: run:", err)
		}
		close(stopped)
		runErr <- err
	}()
	var wg sync.WaitGroup
	if mode != "tick" {
		pid := os.Getpid()
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				author := heartbeattest.Signer(uint64(700 + g))
				for i := 0; ; i++ {
					m := heartbeat.Message{Instance: insts[0], TS: time.Now().UnixMilli(), Nonce: fmt.Sprintf("%d-%d-%d", pid, g, i), Payload: `{"g":1}`}
					if err := m.Sign(author); err != nil {
						return
					}
					r, err := h.SubmitWait(context.Background(), m)
					switch {
					case err == nil:
						say("ack %d %s", r.Seq, r.ID)
					case errors.Is(err, heartbeat.ErrClosed):
						return
					}
					select {
					case <-stopped:
						return
					default:
					}
				}
			}()
		}
	}
	err = <-runErr
	wg.Wait()
	if cerr := bl.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		say("closed")
	}
	return err
}

type child struct {
	cmd   *exec.Cmd
	lines chan string
}

func startChild(t *testing.T, mode, db string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "LUMINARY_HEARTBEAT_DB="+db)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 1<<16)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, out)
		close(c.lines)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			_ = cmd.Process.Signal(syscall.SIGQUIT) // goroutine dump on stderr
		} else {
			_ = cmd.Process.Kill()
		}
		_ = cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("child stderr: %s", stderr.String())
		}
	})
	return c
}

// next returns the next line, failing after a generous bound.
func (c *child) next(t *testing.T) (string, bool) {
	t.Helper()
	select {
	case l, ok := <-c.lines:
		return l, ok
	case <-time.After(60 * time.Second):
		t.Fatal("child produced nothing for 60 s")
		return "", false
	}
}

// rest returns every remaining line after the child exited.
func (c *child) rest(t *testing.T) []string {
	var out []string
	for {
		l, ok := c.next(t)
		if !ok {
			return out
		}
		out = append(out, l)
	}
}

type ack struct {
	seq uint64
	id  string
}

func parseAck(l string) (ack, bool) {
	f := strings.Fields(l)
	if len(f) != 3 || f[0] != "ack" {
		return ack{}, false
	}
	seq, err := strconv.ParseUint(f[1], 10, 64)
	return ack{seq, f[2]}, err == nil
}

// checkLog reopens the log and checks that every acked message is there at
// its seq, and that the whole history verifies (contiguous seqs, hash chain,
// signatures, increasing time, every entry covered by a signed tick).
func checkLog(t *testing.T, db string, acks []ack) *heartbeat.Report {
	t.Helper()
	bl, err := heartbeat.OpenBolt(db, heartbeat.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer bl.Close()
	inst := childInstances(1)[0]
	for _, a := range acks {
		pg, err := bl.Read(ctx, inst, a.seq, 1)
		if err != nil || len(pg.Entries) != 1 || pg.Entries[0].MessageID().String() != a.id {
			t.Fatalf("acked seq %d (%s) missing after restart: %v", a.seq, a.id, err)
		}
	}
	var buf bytes.Buffer
	if err := heartbeat.Export(ctx, bl, inst, &buf, heartbeat.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	rep, err := heartbeat.VerifyHistory(&buf, heartbeat.VerifyOptions{Authorizer: childAuth})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func killIterations() int {
	if v, err := strconv.Atoi(os.Getenv("LUMINARY_KILL_ITERS")); err == nil && v > 0 {
		return v
	}
	if testing.Short() {
		return 3
	}
	return 15
}

// Table B row 1: kill -9 during message appends. Every acknowledged message
// is present after restart, no torn record is visible, seqs are contiguous.
// LUMINARY_KILL_ITERS=200 runs the full 200 iterations.
func TestKill9DuringAppends(t *testing.T) {
	db := filepath.Join(t.TempDir(), "kill.db")
	rnd := rand.New(rand.NewPCG(42, 1))
	var acks []ack
	for iter := range killIterations() {
		c := startChild(t, "append", db)
		want := 1 + rnd.IntN(80)
		for got := 0; got < want; {
			l, ok := c.next(t)
			if !ok {
				t.Fatalf("iteration %d: child exited early", iter)
			}
			if a, ok := parseAck(l); ok {
				acks = append(acks, a)
				got++
			}
		}
		if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for _, l := range c.rest(t) { // acks printed before the kill landed
			if a, ok := parseAck(l); ok {
				acks = append(acks, a)
			}
		}
		_ = c.cmd.Wait()
		rep := checkLog(t, db, acks)
		if iter == 0 || iter == killIterations()-1 {
			t.Logf("iteration %d: %d acks so far, log %d entries in %d epochs", iter, len(acks), rep.Entries, len(rep.Epochs))
		}
	}
}

// Table B row 15: SIGTERM under load. The host stops admitting, drains and
// acknowledges what was queued, fsyncs, releases its leases and exits 0;
// every acknowledged message is in the log and the log reopens cleanly.
func TestSIGTERMUnderLoad(t *testing.T) {
	db := filepath.Join(t.TempDir(), "term.db")
	c := startChild(t, "term", db)
	var acks []ack
	for len(acks) < 200 {
		l, ok := c.next(t)
		if !ok {
			t.Fatal("child exited early")
		}
		if a, ok := parseAck(l); ok {
			acks = append(acks, a)
		}
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	closed := false
	for _, l := range c.rest(t) {
		if a, ok := parseAck(l); ok {
			acks = append(acks, a)
		}
		closed = closed || l == "closed"
	}
	if err := c.cmd.Wait(); err != nil || !closed {
		t.Fatalf("child did not shut down cleanly: %v (closed line %v)", err, closed)
	}
	rep := checkLog(t, db, acks)
	if rep.Messages < len(acks) {
		t.Fatalf("%d messages in the log, %d acked", rep.Messages, len(acks))
	}
}

// Table B row 2: kill -9 while 20 instances tick at 50 ms. After restart
// Croquet time never goes backwards: each instance resumes above every
// state published before the kill and above the reserved high-water mark,
// even when the restarted host's wall clock is a minute behind; no
// (state, seq) is reused.
func TestKill9WhileTicking(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tick.db")
	c := startChild(t, "tick", db)
	last := map[int]float64{}
	lastSeq := map[int]uint64{}
	count := 0
	parse := func(l string) {
		f := strings.Fields(l)
		if len(f) != 4 || f[0] != "tick" {
			return
		}
		i, _ := strconv.Atoi(f[1])
		s, _ := strconv.ParseFloat(f[2], 64)
		seq, _ := strconv.ParseUint(f[3], 10, 64)
		if s <= last[i] {
			t.Fatalf("instance %d: tick state %v after %v before the kill", i, s, last[i])
		}
		last[i], lastSeq[i] = s, seq
		count++
	}
	for count < 20*12 { // about 12 rounds of 20 instances
		l, ok := c.next(t)
		if !ok {
			t.Fatal("child exited early")
		}
		parse(l)
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for _, l := range c.rest(t) {
		parse(l)
	}
	_ = c.cmd.Wait()

	bl, err := heartbeat.OpenBolt(db, heartbeat.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer bl.Close()
	insts := childInstances(20)
	reserved := map[int]float64{}
	for i, in := range insts {
		st, err := bl.State(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if st.Bound() < last[i] {
			t.Fatalf("instance %d: published %v above the durable reserved mark %v", i, last[i], st.Bound())
		}
		reserved[i] = st.Bound()
	}
	// Restart with a wall clock one minute behind real time.
	fake := clock.NewFake(time.Now().Add(-time.Minute))
	start := fake.Now()
	first := map[int]heartbeat.Tick{}
	h, err := heartbeat.NewHost(heartbeat.HostConfig{Signer: heartbeat.KeySigner(relayKey), Log: bl, Lease: bl.Lease(), Authorizer: childAuth, Clock: fake,
		Elapsed: func() time.Duration { return fake.Now().Sub(start) },
		Sink: heartbeat.SinkFunc(func(p heartbeat.Publication) {
			for i, in := range insts {
				if in == p.Meta.Instance {
					if _, ok := first[i]; !ok {
						first[i] = p.Tick
					}
				}
			}
		})})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range insts {
		if err := h.Add(heartbeat.InstanceConfig{Instance: in}); err != nil {
			t.Fatal(err)
		}
	}
	for step := 0; step < 200 && len(first) < len(insts); step++ {
		if _, err := h.Step(ctx); err != nil {
			t.Fatal(err)
		}
		fake.Advance(5 * time.Millisecond)
	}
	for i := range insts {
		tk, ok := first[i]
		switch {
		case !ok:
			t.Fatalf("instance %d never resumed", i)
		case tk.State <= last[i] || tk.State <= reserved[i]:
			t.Fatalf("instance %d: resumed at %v, published %v, reserved %v", i, tk.State, last[i], reserved[i])
		case tk.Seq <= lastSeq[i]:
			t.Fatalf("instance %d: resumed at seq %d, had %d", i, tk.Seq, lastSeq[i])
		}
	}
	t.Logf("%d ticks seen before the kill; instance 0 resumed %.1f ms above its last published state", count, first[0].State-last[0])
}
