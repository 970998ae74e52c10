// Package nodetest runs real node.js scripts from Go tests, so that Luminary
// can be checked against unmodified gun.js peers.
//
// Start with [Require] at the top of a test, then [StartGunRelay] for a stock
// gun.js relay, [Start] for a long-running script that the test talks to
// through its stdout lines ([Proc.WaitLine]) and stdin ([Proc.Send]), or
// [Run] for a one-shot script.
//
// Node packages come from the repository root's node_modules (package.json and
// package-lock.json live at the root; run npm ci there). Scripts resolve bare
// imports such as 'gun' by walking up from the script's own directory, so
// scripts must live inside the repository. The helper module
// internal/nodetest/js/peer.mjs exports gunClient(url), a gun.js client with
// localStorage, RAD, AXE, multicast and stats off; import it by relative path.
//
// # Skipping and CI
//
// [Require] skips the test when node or node_modules/gun is missing, unless
// the CI environment variable is non-empty: then it fails the test, so CI never
// skips interop tests silently.
//
// # Hygiene
//
// Every process is started in its own process group and stopped (SIGTERM,
// then SIGKILL after a grace period) by t.Cleanup; on Linux it is also killed
// if the test binary dies. The environment of every node process has
// MULTICAST=false, and the relay listens on 127.0.0.1 only. When a test
// fails, the output of each of its processes is written to the test log.
package nodetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// GunVersion is the gun.js version the repository pins in package.json.
const GunVersion = "0.2020.1241"

// stopGrace is how long [Proc.Stop] waits after SIGTERM before SIGKILL; a
// variable so that tests can shorten it.
var stopGrace = 3 * time.Second

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// findRoot walks up from dir to the directory holding go.mod.
func findRoot(dir string) (string, error) {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("nodetest: no go.mod found above the working directory")
		}
		dir = parent
	}
}

// Root returns the repository root: the nearest directory at or above the
// test's working directory that holds go.mod.
func Root(t testing.TB) string {
	t.Helper()
	rootOnce.Do(func() {
		wd, err := os.Getwd()
		if err != nil {
			rootErr = fmt.Errorf("nodetest: %w", err)
			return
		}
		rootDir, rootErr = findRoot(wd)
	})
	if rootErr != nil {
		t.Fatal(rootErr)
	}
	return rootDir
}

// check reports why node tests cannot run under root, or nil if they can.
func check(root string) error {
	if _, err := exec.LookPath("node"); err != nil {
		return errors.New("nodetest: node not found in PATH")
	}
	raw, err := os.ReadFile(filepath.Join(root, "node_modules", "gun", "package.json"))
	if err != nil {
		return fmt.Errorf("nodetest: %s/node_modules/gun missing (run npm ci at the repository root)", root)
	}
	var pkg struct{ Version string }
	if err := json.Unmarshal(raw, &pkg); err != nil || pkg.Version != GunVersion {
		return fmt.Errorf("nodetest: node_modules/gun is %q, want %s (run npm ci)", pkg.Version, GunVersion)
	}
	return nil
}

// require applies the skip-or-fail policy to a check result.
func require(t testing.TB, err error, ci string) {
	t.Helper()
	if err == nil {
		return
	}
	if ci != "" {
		t.Fatalf("%v (CI=%q, so this fails instead of skipping)", err, ci)
		return
	}
	t.Skip(err)
}

// Require skips the test if node or the pinned gun.js package is missing. If
// the CI environment variable is non-empty it fails the test instead. The
// helpers in this package call Require themselves; call it first anyway so
// that a skip happens before any other set-up.
func Require(t testing.TB) {
	t.Helper()
	require(t, check(Root(t)), os.Getenv("CI"))
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Prefer
// letting the process under test bind port 0 and report its port, which
// cannot race; use FreePort when that is impossible.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("nodetest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// scriptPath resolves script against the test's working directory (the
// calling package's directory).
func scriptPath(t testing.TB, script string) string {
	t.Helper()
	if filepath.IsAbs(script) {
		return script
	}
	abs, err := filepath.Abs(script)
	if err != nil {
		t.Fatalf("nodetest: %v", err)
	}
	return abs
}

// nodeEnv returns the environment for node processes: the test's own, with
// gun's side channels forced off, plus extra.
func nodeEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "MULTICAST", "AWS_S3_BUCKET", "fakes3":
			continue // would make gun use UDP multicast or S3
		}
		env = append(env, kv)
	}
	env = append(env, "MULTICAST=false")
	return append(env, extra...)
}

// Run runs node script with args to completion and returns its stdout. It
// returns an error if the script exits non-zero or runs longer than timeout;
// the error includes the script's stderr. script is relative to the calling
// package's directory, or absolute.
func Run(t testing.TB, timeout time.Duration, script string, args ...string) (string, error) {
	t.Helper()
	Require(t)
	path := scriptPath(t, script)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{path}, args...)...)
	cmd.Env = nodeEnv(nil)
	setProcAttr(cmd)
	cmd.Cancel = func() error { return killGroup(cmd.Process) }
	cmd.WaitDelay = stopGrace
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("timed out after %v: %w", timeout, err)
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("nodetest: node %s: %w\nstderr:\n%s", filepath.Base(path), err, stderr.String())
	}
	return stdout.String(), nil
}

// FindLine returns the first line of out that starts with prefix, and whether
// there was one. Use it on [Run]'s stdout: gun.js prints a welcome banner on
// stdout when it loads, so scripts should mark the lines meant for the test
// with a prefix.
func FindLine(out, prefix string) (string, bool) {
	for line := range strings.Lines(out) {
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, prefix) {
			return line, true
		}
	}
	return "", false
}
