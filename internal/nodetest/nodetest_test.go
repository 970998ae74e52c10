package nodetest_test

import (
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/internal/nodetest"
)

const wait = 20 * time.Second

func TestRoot(t *testing.T) {
	root := nodetest.Root(t)
	for _, f := range []string{"go.mod", "package.json"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("root %s: %v", root, err)
		}
	}
}

func TestFindLine(t *testing.T) {
	out := "banner\r\nVALUE 1\nVALUE 2\n"
	if got, ok := nodetest.FindLine(out, "VALUE"); !ok || got != "VALUE 1" {
		t.Fatalf("FindLine = %q, %v", got, ok)
	}
	if _, ok := nodetest.FindLine(out, "NONE"); ok {
		t.Fatal("FindLine found a missing prefix")
	}
}

func TestWebSocketURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:1/gun":  "ws://127.0.0.1:1/gun",
		"https://example.org/gun": "wss://example.org/gun",
		"ws://x/gun":              "ws://x/gun",
	} {
		if got := nodetest.WebSocketURL(in); got != want {
			t.Errorf("WebSocketURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFreePort(t *testing.T) {
	if p := nodetest.FreePort(t); p <= 0 || p > 65535 {
		t.Fatalf("FreePort = %d", p)
	}
}

func TestStartWaitLineSend(t *testing.T) {
	p := nodetest.Start(t, "testdata/echo.mjs")
	p.WaitLine(t, "READY", wait)
	for _, s := range []string{"a", "b b", "c"} {
		if err := p.Send(s); err != nil {
			t.Fatal(err)
		}
	}
	// Successive waits see successive matching lines.
	for _, want := range []string{"ECHO a", "ECHO b b", "ECHO c"} {
		if got := p.WaitLine(t, "ECHO", wait); got != want {
			t.Fatalf("WaitLine = %q, want %q", got, want)
		}
	}
	if err := p.Send("exit 0"); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(t, wait); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if got, want := p.Lines(), []string{"READY", "ECHO a", "ECHO b b", "ECHO c"}; !slices.Equal(got, want) {
		t.Fatalf("Lines = %q, want %q", got, want)
	}
	if got := p.Stderr(); !slices.Equal(got, []string{"stderr hello"}) {
		t.Fatalf("Stderr = %q", got)
	}
	if out := p.Output(); !strings.Contains(out, "[stderr] stderr hello") || !strings.Contains(out, "[stdout] ECHO c") {
		t.Fatalf("Output = %q", out)
	}
}

func TestNextLineSeesEarlierOutput(t *testing.T) {
	p := nodetest.Start(t, "testdata/echo.mjs")
	if err := p.Send("x"); err != nil {
		t.Fatal(err)
	}
	if err := p.Send("exit 0"); err != nil {
		t.Fatal(err)
	}
	p.Wait(t, wait)
	// Both lines were printed before these calls.
	p.WaitLine(t, "READY", wait)
	p.WaitLine(t, "ECHO x", wait)
}

func TestNextLineExitAndTimeout(t *testing.T) {
	p := nodetest.Start(t, "testdata/echo.mjs")
	p.WaitLine(t, "READY", wait)
	if _, err := p.NextLine("NEVER", 50*time.Millisecond); !errors.Is(err, nodetest.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if err := p.Send("exit 3"); err != nil {
		t.Fatal(err)
	}
	// Exit is reported promptly, long before the timeout.
	start := time.Now()
	if _, err := p.NextLine("NEVER", time.Minute); !errors.Is(err, nodetest.ErrExited) {
		t.Fatalf("err = %v, want ErrExited", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("exit noticed after %v", d)
	}
	var ee *exec.ExitError
	if err := p.Wait(t, wait); !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("Wait = %v, want exit status 3", err)
	}
}

func TestStopClosesStdin(t *testing.T) {
	p := nodetest.Start(t, "testdata/echo.mjs")
	p.WaitLine(t, "READY", wait)
	p.Stop()
	<-p.Exited()
}

func TestRun(t *testing.T) {
	out, err := nodetest.Run(t, wait, "testdata/oneshot.mjs", "ok")
	if err != nil || out != "one\ntwo\n" {
		t.Fatalf("Run ok = %q, %v", out, err)
	}
	_, err = nodetest.Run(t, wait, "testdata/oneshot.mjs", "fail")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 || !strings.Contains(err.Error(), "something broke") {
		t.Fatalf("Run fail = %v, want exit 7 with stderr", err)
	}
	_, err = nodetest.Run(t, 300*time.Millisecond, "testdata/oneshot.mjs", "hang")
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("Run hang = %v, want timeout", err)
	}
}

func TestGunRelayPutGet(t *testing.T) {
	url, relay := nodetest.StartGunRelay(t, nodetest.GunRelayOptions{})
	if !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.HasSuffix(url, "/gun") {
		t.Fatalf("relay url %q", url)
	}

	// The relay serves gun.js like a stock relay.
	resp, err := http.Get(strings.TrimSuffix(url, "/gun") + "/gun.js")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Gun") {
		t.Fatalf("GET /gun.js: %s", resp.Status)
	}

	// Writer and reader are separate gun.js peers in separate processes.
	w := nodetest.Start(t, "testdata/put.mjs", url, "nodetest/s1", "greeting", "hello")
	w.WaitLine(t, "SENT hello", wait)
	out, err := nodetest.Run(t, wait, "testdata/get.mjs", url, "nodetest/s1", "greeting", "hello")
	if line, _ := nodetest.FindLine(out, "VALUE "); err != nil || line != `VALUE "hello"` {
		t.Fatalf("get = %q, %v", out, err)
	}

	// An update reaches a new reader too.
	if err := w.Send("put world"); err != nil {
		t.Fatal(err)
	}
	w.WaitLine(t, "SENT world", wait)
	out, err = nodetest.Run(t, wait, "testdata/get.mjs", url, "nodetest/s1", "greeting", "world")
	if line, _ := nodetest.FindLine(out, "VALUE "); err != nil || line != `VALUE "world"` {
		t.Fatalf("get = %q, %v", out, err)
	}
	if slices.ContainsFunc(relay.Stderr(), func(s string) bool { return strings.Contains(s, "Multicast") }) {
		t.Fatal("relay started multicast")
	}
	// gunClient must not leave a radata/ directory in the working directory.
	if _, err := os.Stat("radata"); err == nil {
		t.Fatal("a gun.js client created ./radata")
	}
}

func TestGunRelayRadiskAcks(t *testing.T) {
	// With storage on, the relay acknowledges puts.
	url, _ := nodetest.StartGunRelay(t, nodetest.GunRelayOptions{Radisk: true})
	w := nodetest.Start(t, "testdata/put.mjs", url, "nodetest/s2", "n", "1")
	if line := w.WaitLine(t, "ACK 1", wait); !strings.HasPrefix(line, "ACK 1 ") {
		t.Fatalf("ack line %q", line)
	}
}
