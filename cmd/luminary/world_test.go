package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/keys"
	"github.com/krestianstvo/luminary/world"
)

func writeKey(t *testing.T, dir, name string, c keys.Curve) (string, *keys.Private) {
	t.Helper()
	k, err := keys.Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".key")
	if err := keys.WriteFile(path, k, []byte("pw"), keys.FileOptions{LogN: keys.MinLogN}); err != nil {
		t.Fatal(err)
	}
	return path, k
}

func TestWorldCLI(t *testing.T) {
	t.Setenv(passwordEnv, "pw")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	ownerKey, owner := writeKey(t, dir, "owner", keys.Secp256k1)
	aliceKey, alice := writeKey(t, dir, "alice", keys.Secp256k1)
	_, bob := writeKey(t, dir, "bob", keys.P256)
	inst := owner.Public().String()

	code, out, errs := runCLI(t, "", "world", "create", "--key", ownerKey, "--data", data)
	if code != 0 || strings.TrimSpace(out) != inst {
		t.Fatalf("create: %d %q %s", code, out, errs)
	}
	if code, _, errs := runCLI(t, "", "world", "create", "--key", ownerKey, "--data", data); code != 1 || !strings.Contains(errs, "already") {
		t.Fatalf("second create: %d %s", code, errs)
	}
	code, out, errs = runCLI(t, "", "world", "add-member", "--key", ownerKey, "--data", data, "--member="+alice.Public().String(), "--roles", "message,snapshot,admin")
	if code != 0 || !strings.Contains(out, "added "+alice.Public().String()) {
		t.Fatalf("add alice: %d %q %s", code, out, errs)
	}
	// alice is an admin: she adds bob to the owner's world.
	code, out, errs = runCLI(t, "", "world", "add-member", "--key", aliceKey, "--instance="+inst, "--data", data, "--member="+bob.Public().String())
	if code != 0 {
		t.Fatalf("add bob: %d %q %s", code, out, errs)
	}
	code, out, errs = runCLI(t, "", "world", "members", "--instance="+inst, "--data", data)
	if code != 0 || !strings.Contains(out, "epoch    1") || !strings.Contains(out, bob.Public().String()) || errs != "" {
		t.Fatalf("members: %d %q %s", code, out, errs)
	}
	code, out, errs = runCLI(t, "", "world", "remove-member", "--key", ownerKey, "--data", data, "--member="+bob.Public().String())
	if code != 0 || !strings.Contains(out, "epoch 2") {
		t.Fatalf("remove bob: %d %q %s", code, out, errs)
	}
	code, out, _ = runCLI(t, "", "world", "members", "--instance="+inst, "--data", data)
	if code != 0 || !strings.Contains(out, "epoch    2") || !strings.Contains(out, "removed ") {
		t.Fatalf("members after removal: %d %q", code, out)
	}

	// The records are on disk and verify.
	bs, err := graph.OpenBolt(filepath.Join(data, "graph.db"), graph.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	db := graph.NewDB(bs, graph.DBConfig{Clock: clock.System()})
	w, err := world.Load(context.Background(), world.DBStore{DB: db}, inst)
	if err != nil {
		t.Fatal(err)
	}
	if w.Epoch != 2 || len(w.Rejected) > 0 || w.HasKey(2, bob.Public().String()) || !w.HasKey(2, alice.Public().String()) {
		t.Fatalf("on disk: epoch %d rejected %v", w.Epoch, w.Rejected)
	}
	// While the database is open (a running relay), the commands refuse.
	code, _, errs = runCLI(t, "", "world", "members", "--instance="+inst, "--data", data, "--lock-timeout", "100ms")
	if code != 1 || !strings.Contains(errs, "relay running") {
		t.Fatalf("locked: %d %s", code, errs)
	}
	db.Close()
	bs.Close()

	// Usage errors and refusals.
	if code, _, _ := runCLI(t, "", "world", "add-member", "--key", ownerKey, "--data", data, "--member", "nope"); code != 2 {
		t.Fatalf("bad member key: %d", code)
	}
	if code, _, _ := runCLI(t, "", "world", "add-member", "--key", ownerKey, "--data", data, "--member="+bob.Public().String(), "--roles", "god"); code != 2 {
		t.Fatalf("bad role: %d", code)
	}
	if code, _, errs := runCLI(t, "", "world", "remove-member", "--key", ownerKey, "--data", data, "--member="+bob.Public().String()); code != 1 || !strings.Contains(errs, "not a member") {
		t.Fatalf("remove twice: %d %s", code, errs)
	}
	if code, _, _ := runCLI(t, "", "world", "members", "--instance="+inst, "--data", filepath.Join(dir, "nowhere")); code != 1 {
		t.Fatalf("missing data dir: %d", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "nowhere")); err == nil {
		t.Fatal("members created a data directory")
	}
}

// TestWorldCLIThroughRelay runs the private-world commands against a
// running relay (--relay): the owner creates the world and makes an admin,
// the admin adds a member, the owner removes it (a key rotation), and the
// listing is served only to a logged-in member. The relay's checks apply:
// a key that is neither owner nor admin is refused before anything is sent.
func TestWorldCLIThroughRelay(t *testing.T) {
	t.Setenv(passwordEnv, "pw")
	dir := t.TempDir()
	relay := serveInProcess(t)
	ownerKey, owner := writeKey(t, dir, "owner", keys.Secp256k1)
	aliceKey, alice := writeKey(t, dir, "alice", keys.P256)
	bobKey, bob := writeKey(t, dir, "bob", keys.Secp256k1)
	inst := owner.Public().String()

	code, out, errs := runCLI(t, "", "world", "create", "--key", ownerKey, "--relay", relay)
	if code != 0 || strings.TrimSpace(out) != inst {
		t.Fatalf("create: %d %q %s", code, out, errs)
	}
	if code, _, errs := runCLI(t, "", "world", "create", "--key", ownerKey, "--relay", relay); code != 1 || !strings.Contains(errs, "already") {
		t.Fatalf("second create: %d %s", code, errs)
	}
	code, out, errs = runCLI(t, "", "world", "add-member", "--key", ownerKey, "--relay", relay, "--member="+alice.Public().String(), "--roles", "message,admin")
	if code != 0 || !strings.Contains(out, "added "+alice.Public().String()) {
		t.Fatalf("add alice: %d %q %s", code, out, errs)
	}
	// bob is not a member: he may neither read the private world's
	// records nor add himself.
	code, _, errs = runCLI(t, "", "world", "add-member", "--key", bobKey, "--instance="+inst, "--relay", relay, "--member="+bob.Public().String())
	if code != 1 || !strings.Contains(errs, "auth-required") {
		t.Fatalf("bob adds himself: %d %s", code, errs)
	}
	if code, _, errs := runCLI(t, "", "world", "members", "--instance="+inst, "--relay", relay); code != 1 || !strings.Contains(errs, "auth-required") {
		t.Fatalf("anonymous listing of a private world: %d %s", code, errs)
	}
	// alice is an admin: she adds bob.
	code, out, errs = runCLI(t, "", "world", "add-member", "--key", aliceKey, "--instance="+inst, "--relay", relay, "--member="+bob.Public().String())
	if code != 0 || !strings.Contains(out, "added "+bob.Public().String()) {
		t.Fatalf("alice adds bob: %d %q %s", code, out, errs)
	}
	code, out, errs = runCLI(t, "", "world", "members", "--instance="+inst, "--relay", relay, "--key", bobKey)
	if code != 0 || !strings.Contains(out, "epoch    1") || !strings.Contains(out, bob.Public().String()) || errs != "" {
		t.Fatalf("members as bob: %d %q %s", code, out, errs)
	}
	code, out, errs = runCLI(t, "", "world", "remove-member", "--key", ownerKey, "--relay", relay, "--member="+bob.Public().String())
	if code != 0 || !strings.Contains(out, "epoch 2") {
		t.Fatalf("remove bob: %d %q %s", code, out, errs)
	}
	code, out, errs = runCLI(t, "", "world", "members", "--instance="+inst, "--relay", relay, "--key", aliceKey)
	if code != 0 || !strings.Contains(out, "epoch    2") || !strings.Contains(out, "removed ") || errs != "" {
		t.Fatalf("members after removal: %d %q %s", code, out, errs)
	}
	// A removed member can no longer read the world.
	if code, _, errs := runCLI(t, "", "world", "members", "--instance="+inst, "--relay", relay, "--key", bobKey); code != 1 || !strings.Contains(errs, "auth-required") {
		t.Fatalf("members as removed bob: %d %s", code, errs)
	}
	if code, _, _ := runCLI(t, "", "world", "members", "--instance="+inst, "--relay", "ftp://nowhere"); code != 2 {
		t.Fatalf("bad --relay: %d", code)
	}
}
