package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serveInProcess runs `luminary serve` in this process on a free port with
// its data in a temp dir and returns its base URL; it stops with the test.
func serveInProcess(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := newSyncBuffer()
	done := make(chan int, 1)
	all := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--log-format", "json"}, args...)
	go func() { done <- run(ctx, all, io.Discard, stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})
	line := stderr.waitFor(t, `"luminary listening"`)
	stderr.waitFor(t, `"time service ready"`)
	var rec struct{ Addr string }
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatal(err)
	}
	return "http://" + rec.Addr
}

// TestWorldHost hosts a key's world on a running relay: refused where the
// relay does not let owners host, accepted with --open-hosting, after which
// the relay runs the metronome and a private world's info is refused to
// unsigned readers.
func TestWorldHost(t *testing.T) {
	t.Setenv(passwordEnv, "hunter2 hunter2")
	dir := t.TempDir()
	ownerFile, owner := certKeyFile(t, dir, "owner.key")

	closed := serveInProcess(t)
	code, _, errs := runCLI(t, "", "world", "host", "--key", ownerFile, "--relay", closed, "--alias", "mine")
	if code != 1 || !strings.Contains(errs, "forbidden") {
		t.Fatalf("host on a relay without open hosting: exit %d, %s", code, errs)
	}

	open := serveInProcess(t, "--open-hosting")
	code, out, errs := runCLI(t, "", "world", "host", "--key", ownerFile, "--relay", open, "--alias", "mine", "--tps", "30", "--private")
	if code != 0 {
		t.Fatalf("host: exit %d, %s", code, errs)
	}
	var got struct{ Instance string }
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Instance != owner.Public().String() {
		t.Fatalf("answer %q: %v", out, err)
	}
	res, err := http.Get(open + "/api/worlds/mine")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned read of a private world: %s", res.Status)
	}
	var status struct {
		Worlds []struct {
			ID  string
			TPS int
			Seq uint64
		}
	}
	res, err = http.Get(open + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(&status); err != nil {
		t.Fatal(err)
	}
	for _, w := range status.Worlds {
		if w.ID == "mine" {
			t.Fatalf("a private world is listed to anonymous status readers: %+v", w)
		}
	}

	code, _, errs = runCLI(t, "", "world", "host", "--key", ownerFile, "--relay", open, "--private", "--open")
	if code != 2 {
		t.Fatalf("--private --open: exit %d, %s", code, errs)
	}

	// An open world of another owner: the relay certifies joiners (its
	// certificate carries the admin role as well as tick).
	openFile, _ := certKeyFile(t, dir, "open-owner.key")
	if code, _, errs := runCLI(t, "", "world", "host", "--key", openFile, "--relay", open, "--alias", "lobby", "--open"); code != 0 {
		t.Fatalf("host --open: exit %d, %s", code, errs)
	}
	_, joiner := certKeyFile(t, dir, "joiner.key")
	res, err = http.Post(open+"/api/worlds/lobby/join", "application/json", strings.NewReader(`{"pub":"`+joiner.Public().String()+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), joiner.Public().String()) {
		t.Fatalf("join an open hosted world: %s %s", res.Status, body)
	}
}
