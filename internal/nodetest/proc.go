package nodetest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// maxKeptLines bounds the stdout and stderr lines a Proc remembers; older
// lines are forgotten.
const maxKeptLines = 100_000

// maxDumpLines bounds how much output is written to the test log on failure.
const maxDumpLines = 400

// ErrExited is returned by [Proc.NextLine] when the process exits before the
// line arrives.
var ErrExited = errors.New("nodetest: process exited")

// ErrTimeout is returned by [Proc.NextLine] when the line does not arrive in
// time.
var ErrTimeout = errors.New("nodetest: timed out waiting for line")

// Proc is a running node process started by [Start].
type Proc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu      sync.Mutex
	stdout  []string // kept stdout lines
	base    int      // number of stdout lines forgotten before stdout[0]
	cursor  int      // absolute index of the next line NextLine examines
	stderr  []string
	log     []string // recent interleaved output, for failure dumps
	changed chan struct{}

	exited  chan struct{} // closed after the process exits and output is drained
	waitErr error         // valid once exited is closed

	stopOnce sync.Once
}

// StartOptions adjusts [StartWith].
type StartOptions struct {
	// Env holds extra KEY=VALUE entries added to the environment.
	Env []string
	// Dir is the working directory; empty means the test's own.
	Dir string
}

// Start starts node script with args and returns the running process. script
// is relative to the calling package's directory, or absolute. The process is
// stopped by t.Cleanup, and its output is written to the test log if the test
// has failed by then. Start calls [Require].
func Start(t testing.TB, script string, args ...string) *Proc {
	t.Helper()
	return StartWith(t, StartOptions{}, script, args...)
}

// Node is the same as [Start].
func Node(t testing.TB, script string, args ...string) *Proc {
	t.Helper()
	return StartWith(t, StartOptions{}, script, args...)
}

// StartWith is [Start] with options.
func StartWith(t testing.TB, opts StartOptions, script string, args ...string) *Proc {
	t.Helper()
	Require(t)
	path := scriptPath(t, script)
	cmd := exec.Command("node", append([]string{path}, args...)...)
	cmd.Env = nodeEnv(opts.Env)
	cmd.Dir = opts.Dir
	setProcAttr(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("nodetest: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("nodetest: %v", err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatalf("nodetest: %v", err)
	}
	p := &Proc{
		name:    filepath.Base(path),
		cmd:     cmd,
		stdin:   stdin,
		changed: make(chan struct{}),
		exited:  make(chan struct{}),
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("nodetest: start node %s: %v", p.name, err)
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); p.read(stdout, false) }()
	go func() { defer readers.Done(); p.read(stderr, true) }()
	go func() {
		readers.Wait()
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("nodetest: output of node %s (pid %d, %s):\n%s", p.name, cmd.Process.Pid, p.exitState(), p.dump())
		}
	})
	return p
}

func (p *Proc) read(r io.Reader, isErr bool) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" || err == nil {
			p.add(strings.TrimRight(line, "\r\n"), isErr)
		}
		if err != nil {
			return
		}
	}
}

func (p *Proc) add(line string, isErr bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if isErr {
		p.stderr = append(p.stderr, line)
		if len(p.stderr) > maxKeptLines {
			p.stderr = append([]string(nil), p.stderr[len(p.stderr)-maxKeptLines/2:]...)
		}
		p.log = append(p.log, "[stderr] "+line)
	} else {
		p.stdout = append(p.stdout, line)
		if len(p.stdout) > maxKeptLines {
			drop := len(p.stdout) - maxKeptLines/2
			p.stdout = append([]string(nil), p.stdout[drop:]...)
			p.base += drop
		}
		p.log = append(p.log, "[stdout] "+line)
	}
	if len(p.log) > 2*maxDumpLines {
		p.log = append([]string(nil), p.log[len(p.log)-maxDumpLines:]...)
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

// NextLine waits up to timeout for a stdout line that starts with prefix and
// returns it. It searches the lines after the one the previous successful
// NextLine or WaitLine returned (lines printed before the call count), so
// successive calls see successive matching lines. It returns an error wrapping
// [ErrTimeout] or [ErrExited] if no such line comes. It is safe to call from
// any goroutine.
func (p *Proc) NextLine(prefix string, timeout time.Duration) (string, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		p.mu.Lock()
		if p.cursor < p.base {
			p.cursor = p.base
		}
		for i := p.cursor - p.base; i < len(p.stdout); i++ {
			if strings.HasPrefix(p.stdout[i], prefix) {
				p.cursor = p.base + i + 1
				line := p.stdout[i]
				p.mu.Unlock()
				return line, nil
			}
		}
		p.cursor = p.base + len(p.stdout)
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-p.exited:
			// Output is fully drained once exited is closed; look once more.
			p.mu.Lock()
			more := p.cursor < p.base+len(p.stdout)
			p.mu.Unlock()
			if !more {
				return "", fmt.Errorf("%w before printing %q (%s)", ErrExited, prefix, p.exitState())
			}
		case <-timer.C:
			return "", fmt.Errorf("%w: %q after %v", ErrTimeout, prefix, timeout)
		}
	}
}

// WaitLine is [Proc.NextLine] that fails the test, logging the process's
// output, if the line does not come. Call it from the test's goroutine.
func (p *Proc) WaitLine(t testing.TB, prefix string, timeout time.Duration) string {
	t.Helper()
	line, err := p.NextLine(prefix, timeout)
	if err != nil {
		t.Fatalf("node %s: %v", p.name, err)
	}
	return line
}

// Lines returns a copy of the stdout lines printed so far (the most recent
// ones, if there were very many).
func (p *Proc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.stdout...)
}

// Stderr returns a copy of the stderr lines printed so far.
func (p *Proc) Stderr() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.stderr...)
}

// Output returns the recent stdout and stderr lines, interleaved in arrival
// order and tagged with their stream.
func (p *Proc) Output() string { return p.dump() }

// Pid returns the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Send writes line and a newline to the process's stdin.
func (p *Proc) Send(line string) error {
	_, err := io.WriteString(p.stdin, line+"\n")
	return err
}

// Exited returns a channel that is closed once the process has exited and
// its output has been read.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Wait waits up to timeout for the process to exit by itself and returns its
// exit error (nil for exit status 0). It fails the test on timeout.
func (p *Proc) Wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.exited:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.waitErr
	case <-timer.C:
		t.Fatalf("node %s: still running after %v", p.name, timeout)
		return nil
	}
}

// Stop ends the process: it closes stdin, sends SIGTERM to the process group,
// and sends SIGKILL if the process is still running 3 seconds later. It
// waits for the process to exit. Stop is idempotent and is called by
// t.Cleanup.
func (p *Proc) Stop() {
	p.stopOnce.Do(func() {
		p.stdin.Close()
		select {
		case <-p.exited:
			return
		default:
		}
		termGroup(p.cmd.Process)
		grace := time.NewTimer(stopGrace)
		defer grace.Stop()
		select {
		case <-p.exited:
		case <-grace.C:
			killGroup(p.cmd.Process)
			<-p.exited
		}
	})
}

func (p *Proc) exitState() string {
	select {
	case <-p.exited:
	default:
		return "running"
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.waitErr != nil {
		return "exited: " + p.waitErr.Error()
	}
	return "exited: status 0"
}

func (p *Proc) dump() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	lines := p.log
	var b strings.Builder
	if len(lines) > maxDumpLines {
		fmt.Fprintf(&b, "[... %d earlier lines not shown]\n", len(lines)-maxDumpLines)
		lines = lines[len(lines)-maxDumpLines:]
	}
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}
