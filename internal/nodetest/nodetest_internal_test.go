package nodetest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// policyTB records what require does instead of stopping the test.
type policyTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (p *policyTB) Helper() {}
func (p *policyTB) Skip(args ...any) {
	p.skipped = true
	p.msg = fmt.Sprint(args...)
}
func (p *policyTB) Fatalf(format string, args ...any) {
	p.failed = true
	p.msg = fmt.Sprintf(format, args...)
}

func TestRequirePolicy(t *testing.T) {
	missing := errors.New("nodetest: node not found in PATH")
	tests := []struct {
		name       string
		err        error
		ci         string
		skip, fail bool
	}{
		{"available, local", nil, "", false, false},
		{"available, CI", nil, "true", false, false},
		{"missing, local skips", missing, "", true, false},
		{"missing, CI fails", missing, "true", false, true},
		{"missing, CI=1 fails", missing, "1", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &policyTB{TB: t}
			require(p, tt.err, tt.ci)
			if p.skipped != tt.skip || p.failed != tt.fail {
				t.Fatalf("skipped=%v failed=%v, want skipped=%v failed=%v (msg %q)",
					p.skipped, p.failed, tt.skip, tt.fail, p.msg)
			}
		})
	}
}

func TestCheckMissingGun(t *testing.T) {
	dir := t.TempDir()
	if err := check(dir); err == nil {
		t.Fatal("check passed for a root without node_modules")
	}
	gun := filepath.Join(dir, "node_modules", "gun")
	if err := os.MkdirAll(gun, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(gun, "package.json"), []byte(`{"version":"0.2019.1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := check(dir); err == nil {
		t.Fatal("check passed for the wrong gun version")
	}
}

func TestFindRoot(t *testing.T) {
	dir := t.TempDir()
	deep := filepath.Join(dir, "a", "b", "c")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := findRoot(deep)
	if err != nil || got != dir {
		t.Fatalf("findRoot = %q, %v; want %q", got, err, dir)
	}
}

func TestStopEscalatesToKill(t *testing.T) {
	Require(t)
	old := stopGrace
	stopGrace = 200 * time.Millisecond
	defer func() { stopGrace = old }()
	p := Start(t, "testdata/stubborn.mjs")
	p.WaitLine(t, "READY", 10*time.Second)
	p.Stop()
	select {
	case <-p.Exited():
	default:
		t.Fatal("Stop returned before the process exited")
	}
	if got := p.exitState(); got != "exited: signal: killed" {
		t.Fatalf("exit state %q, want killed", got)
	}
	p.Stop() // idempotent
}
