package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/keys"
)

func TestHistoryCLI(t *testing.T) {
	dir := t.TempDir()
	bl, err := heartbeat.OpenBolt(filepath.Join(dir, "heartbeat.db"), heartbeat.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owner, _ := keys.Generate(keys.Secp256k1)
	author, _ := keys.Generate(keys.P256)
	inst := owner.Public().String()
	h, err := heartbeat.NewHost(heartbeat.HostConfig{Signer: heartbeat.KeySigner(owner), Log: bl, Lease: bl.Lease()})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Add(heartbeat.InstanceConfig{Instance: inst, Name: "cli"}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := h.Step(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		m := heartbeat.Message{Instance: inst, TS: time.Now().UnixMilli(), Nonce: string(rune('a' + i)), Payload: `{"n":1}`}
		if err := m.Sign(heartbeat.KeySigner(author)); err != nil {
			t.Fatal(err)
		}
		h.Submit(ctx, m, nil)
		if _, err := h.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	bl.Close()

	out := filepath.Join(dir, "history.jsonl")
	if code, _, errs := runCLI(t, "", "history", "export", inst, "--data", dir, "-o", out); code != 0 {
		t.Fatalf("export: %d %s", code, errs)
	}
	code, stdout, errs := runCLI(t, "", "history", "verify", out)
	if code != 0 || !strings.Contains(stdout, "verified") || !strings.Contains(stdout, author.Public().String()) {
		t.Fatalf("verify: %d\n%s\n%s", code, stdout, errs)
	}
	// The provenance names each payload's SHA-256.
	ph := sha256.Sum256([]byte(`{"n":1}`))
	if !strings.Contains(stdout, base64.RawURLEncoding.EncodeToString(ph[:])) {
		t.Fatalf("verify output lacks the payload hash:\n%s", stdout)
	}
	// Export by alias (worlds.json), to standard output.
	if err := os.WriteFile(filepath.Join(dir, "worlds.json"), []byte(`[{"instance":"`+inst+`","alias":"cli"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, viaAlias, errs := runCLI(t, "", "history", "export", "--world", "cli", "--data", dir)
	if data, _ := os.ReadFile(out); code != 0 || viaAlias != string(data) {
		t.Fatalf("export --world cli: %d %s", code, errs)
	}
	// Replay prints the ordered stream with times.
	code, replay, errs := runCLI(t, "", "replay", out)
	if code != 0 || strings.Count(replay, " msg ") != 3 || !strings.Contains(replay, `{"n":1}`) || !strings.Contains(replay, "verified") {
		t.Fatalf("replay: %d\n%s\n%s", code, replay, errs)
	}
	data, _ := os.ReadFile(out)
	bad := strings.Replace(string(data), `{\"n\":1}`, `{\"n\":2}`, 1)
	code, _, errs = runCLI(t, bad, "history", "verify", "-")
	if code != 1 || !strings.Contains(errs, "DEFECT at line 4 (seq 2)") {
		t.Fatalf("tampered: %d %s", code, errs)
	}
	code, replay, errs = runCLI(t, bad, "replay", "-")
	if code != 1 || replay != "" || !strings.Contains(errs, "DEFECT at line 4 (seq 2)") {
		t.Fatalf("replay of a tampered history: %d %q %s", code, replay, errs)
	}
}

// TestHistoryExportThroughRelay exports a hosted private world's history
// from a running relay (--relay): signed by the owner it verifies; an
// anonymous export is refused and leaves no file behind.
func TestHistoryExportThroughRelay(t *testing.T) {
	t.Setenv(passwordEnv, "hunter2 hunter2")
	dir := t.TempDir()
	ownerFile, owner := certKeyFile(t, dir, "owner.key")
	relay := serveInProcess(t, "--open-hosting")
	if code, _, errs := runCLI(t, "", "world", "host", "--key", ownerFile, "--relay", relay, "--alias", "mine", "--private"); code != 0 {
		t.Fatalf("host: %d %s", code, errs)
	}
	out := filepath.Join(dir, "mine.history")
	if code, _, errs := runCLI(t, "", "history", "export", "--world", "mine", "--relay", relay, "--key", ownerFile, "-o", out); code != 0 {
		t.Fatalf("export: %d %s", code, errs)
	}
	code, stdout, errs := runCLI(t, "", "history", "verify", out)
	if code != 0 || !strings.Contains(stdout, "verified") || !strings.Contains(stdout, "epoch") {
		t.Fatalf("verify: %d\n%s\n%s", code, stdout, errs)
	}
	// By instance id, to standard output: the same history (or a longer
	// one: the relay keeps ticking).
	code, byID, errs := runCLI(t, "", "history", "export", owner.Public().String(), "--relay", relay, "--key", ownerFile)
	if data, _ := os.ReadFile(out); code != 0 || !strings.HasPrefix(byID, firstLine(string(data))) {
		t.Fatalf("export by id: %d %s", code, errs)
	}
	anon := filepath.Join(dir, "anon.history")
	if code, _, errs := runCLI(t, "", "history", "export", "--world", "mine", "--relay", relay, "-o", anon); code != 1 || !strings.Contains(errs, "401") {
		t.Fatalf("anonymous export of a private world: %d %s", code, errs)
	}
	if _, err := os.Stat(anon); err == nil {
		t.Fatal("a refused export left a file")
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i+1]
	}
	return s
}
