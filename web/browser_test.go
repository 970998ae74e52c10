package web_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/internal/nodetest"
	"github.com/krestianstvo/luminary/keys"
)

// chromiumPath is Debian's chromium; tests never download a browser.
const chromiumPath = "/usr/bin/chromium"

// requireBrowser applies the nodetest policy to the browser prerequisites:
// skip when missing, unless CI is set, then fail.
func requireBrowser(t *testing.T) {
	t.Helper()
	nodetest.Require(t)
	var missing []string
	if _, err := os.Stat(chromiumPath); err != nil {
		missing = append(missing, chromiumPath+" (apt-get install -y chromium)")
	}
	if _, err := os.Stat(filepath.Join(nodetest.Root(t), "node_modules", "playwright-core")); err != nil {
		missing = append(missing, "node_modules/playwright-core (npm ci)")
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("browser test prerequisites missing: %s", strings.Join(missing, ", "))
	}
	t.Skipf("browser test prerequisites missing: %s", strings.Join(missing, ", "))
}

var listenRE = regexp.MustCompile(`127\.0\.0\.1:(\d+)`)

// startLuminary builds cmd/luminary and runs `serve --demo` on a free
// loopback port; it returns the base URL.
func startLuminary(t *testing.T) string {
	t.Helper()
	root := nodetest.Root(t)
	bin := filepath.Join(t.TempDir(), "luminary")
	build := exec.Command("go", "build", "-o", bin, "./cmd/luminary")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/luminary: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", "--demo", "--memory", "--addr", "127.0.0.1:0", "--log-level", "info")
	cmd.Env = append(os.Environ(), "MULTICAST=false")
	cmd.WaitDelay = 5 * time.Second
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	addr := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			log.WriteString(line + "\n")
			if m := listenRE.FindStringSubmatch(line); m != nil && m[1] != "0" && !sent {
				addr <- "http://127.0.0.1:" + m[1]
				sent = true
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		<-done
		if t.Failed() {
			t.Logf("luminary serve output:\n%s", log.String())
		}
	})
	select {
	case a := <-addr:
		return a
	case <-done:
		t.Fatalf("luminary serve exited before listening")
	case <-time.After(30 * time.Second):
		t.Fatalf("luminary serve did not report its address in 30 s")
	}
	return ""
}

// backendGaps reports what the served page needs from the relay and does
// not find: the page itself at / and the join API.
func backendGaps(t *testing.T, base string) []string {
	t.Helper()
	var gaps []string
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `src="app.js"`) {
		gaps = append(gaps, "GET / does not serve web.Handler's index.html (mount web.Handler() in api)")
	}
	k, err := keys.Generate(keys.Secp256k1)
	if err != nil {
		t.Fatal(err)
	}
	res, err = c.Post(base+"/api/worlds/demo/join", "application/json",
		strings.NewReader(`{"pub":"`+k.Public().String()+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode == http.StatusNotFound || res.StatusCode == http.StatusMethodNotAllowed {
		gaps = append(gaps, "POST /api/worlds/demo/join is missing (join API + --demo world)")
	}
	return gaps
}

// TestBrowser runs web/test/browser.test.mjs in headless Chromium: two pages
// of the demo world agree on the state hash after a drag, a late third page
// catches up, and screenshots land in web/test/artifacts. Until the relay
// serves the page and the join API, only the local-mode harness runs, and
// the test fails in CI (skips otherwise) naming what is missing.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	requireBrowser(t)
	base := startLuminary(t)
	gaps := backendGaps(t, base)
	env := []string{"LUMINARY_URL=" + base}
	if os.Getenv("LUMINARY_SAME_HASH_MS") == "" && os.Getenv("CI") != "" {
		// The product target is agreement within 1 s (the script's default,
		// met on an idle machine: 0.1–0.7 s). CI runs every package's tests
		// at once on two cores, where Chromium alone can stall for longer, so
		// there the test allows 3 s and prints the measured time, which is the
		// figure to read.
		env = append(env, "LUMINARY_SAME_HASH_MS=3000")
	}
	if len(gaps) > 0 {
		env = []string{"LUMINARY_BROWSER_MODE=local"}
	}
	p := nodetest.StartWith(t, nodetest.StartOptions{Env: env}, filepath.Join("test", "browser.test.mjs"))
	if err := p.Wait(t, 4*time.Minute); err != nil {
		t.Fatalf("browser test: %v\n%s", err, p.Output())
	}
	t.Logf("browser test output:\n%s", p.Output())
	if len(gaps) > 0 {
		msg := "relay mode not run; the local-mode harness passed. Missing: " + strings.Join(gaps, "; ")
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}
