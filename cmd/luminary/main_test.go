package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers,
// which signals every write.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{})} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	close(s.changed)
	s.changed = make(chan struct{})
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor blocks until the buffer holds a line containing substr.
func (s *syncBuffer) waitFor(t *testing.T, substr string) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		s.mu.Lock()
		for _, l := range strings.Split(s.b.String(), "\n") {
			if strings.Contains(l, substr) {
				s.mu.Unlock()
				return l
			}
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no line with %q in:\n%s", substr, s.String())
		}
	}
}

func TestRunUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "luminary ") {
		t.Fatalf("--version: %d %q %q", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"serve", "--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "LUMINARY_ADDR") {
		t.Fatalf("serve --help: %d %q", code, out.String())
	}
	errb.Reset()
	if code := run(context.Background(), []string{"serve", "--no-such-flag"}, &out, &errb); code != 2 {
		t.Fatalf("bad flag: exit %d, want 2 (%s)", code, errb.String())
	}
	if code := run(context.Background(), []string{"serve", "--log-format", "xml"}, &out, &errb); code != 2 {
		t.Fatalf("bad enum: exit %d, want 2", code)
	}
	if code := run(context.Background(), []string{"serve", "--memory", "--peers", "ftp://x"}, &out, &errb); code != 2 {
		t.Fatalf("bad peer url: exit %d, want 2 (%s)", code, errb.String())
	}
	if code := run(context.Background(), []string{"bogus"}, &out, &errb); code != 2 {
		t.Fatalf("unknown command: exit %d, want 2", code)
	}
}

// TestServeLifecycle starts serve in-process from env vars, talks to it,
// and stops it by cancelling its context (as SIGTERM does): the WebSocket
// is closed with 1001 and run returns 0.
func TestServeLifecycle(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("LUMINARY_ADDR", "127.0.0.1:0")
	t.Setenv("LUMINARY_DATA", dir)
	t.Setenv("LUMINARY_LOG_FORMAT", "json")
	t.Setenv("LUMINARY_HEADER_TIMEOUT", "300ms")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := newSyncBuffer()
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "--demo"}, io.Discard, stderr) }()
	line := stderr.waitFor(t, `"luminary listening"`)
	var rec struct{ Addr, Data string }
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rec.Data, dir) {
		t.Fatalf("data %q not under LUMINARY_DATA %q", rec.Data, dir)
	}
	stderr.waitFor(t, `"time service ready"`)
	base := "http://" + rec.Addr
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
		if p == "/metrics" && (!strings.Contains(string(body), "go_goroutines") || !strings.Contains(string(body), "luminary_connections") ||
			!strings.Contains(string(body), "luminary_inbox_memory_bytes") || !strings.Contains(string(body), "luminary_inbox_nodes_dropped_total")) {
			t.Fatalf("/metrics lacks collectors:\n%s", body)
		}
	}

	// Slowloris (table A row 29): headers trickling in are cut off at
	// the header timeout.
	nc, err := net.Dial("tcp", rec.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := io.ReadAll(bufio.NewReader(nc)) // returns when the server closes
	if err != nil {
		t.Fatalf("slow headers: connection not closed by the server: %v", err)
	}
	if strings.Contains(string(resp), "200 OK") {
		t.Fatalf("incomplete request answered: %q", resp)
	}

	ws, _, err := websocket.DefaultDialer.Dial("ws://"+rec.Addr+"/gun", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	cancel() // as SIGTERM
	for {
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := ws.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
				t.Fatalf("websocket ended with %v, want close 1001", err)
			}
			break
		}
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d:\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	stderr.waitFor(t, `"stopped"`)
}
