package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/krestianstvo/luminary/api/rest"
	"github.com/krestianstvo/luminary/api/rest/resttest"
	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/keys"
)

func certKeyFile(t *testing.T, dir, name string) (string, *keys.Private) {
	t.Helper()
	k, err := keys.Generate(keys.Secp256k1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := keys.WriteFile(path, k, []byte("hunter2 hunter2"), keys.FileOptions{LogN: keys.MinLogN}); err != nil {
		t.Fatal(err)
	}
	return path, k
}

func TestCertIssueLocal(t *testing.T) {
	t.Setenv(passwordEnv, "hunter2 hunter2")
	dir := t.TempDir()
	ownerFile, owner := certKeyFile(t, dir, "owner.key")
	subjectFile, subject := certKeyFile(t, dir, "member.key")

	code, out, errs := runCLI(t, "", "cert", "issue", "--key", ownerFile, "--subject="+subjectFile, "--role", "message,snapshot", "--valid-for", "1h", "--serial", "s1")
	if code != 0 {
		t.Fatalf("cert issue: %d %s", code, errs)
	}
	c, err := auth.ParseCert([]byte(strings.TrimSpace(out)))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VerifySignature(); err != nil {
		t.Fatal(err)
	}
	if c.Instance != owner.Public().String() || c.Issuer != c.Instance || c.Subject != subject.Public().String() ||
		!c.Has(auth.RoleMessage) || !c.Has(auth.RoleSnapshot) || c.Serial != "s1" || c.Expiry.Sub(c.NotBefore) != time.Hour {
		t.Fatalf("certificate: %+v", c)
	}
	// Usage errors exit 2.
	for _, args := range [][]string{
		{"cert", "issue", "--key", ownerFile, "--subject", "*", "--role", "root"},
		{"cert", "issue", "--key", ownerFile, "--subject", "nobody", "--role", "message"},
		{"cert", "issue", "--key", ownerFile, "--subject", "*", "--role", "message", "--relay", "ftp://x"},
		{"cert", "issue", "--key", ownerFile, "--subject", "*", "--role", "message", "--valid-for", "-1h"},
		{"cert", "issue", "--key", ownerFile, "--subject", "*"},
	} {
		if code, _, errs := runCLI(t, "", args...); code != 2 {
			t.Errorf("%v: exit %d (%s)", args, code, errs)
		}
	}
	// Admin to everyone is refused by auth (exit 1).
	if code, _, _ := runCLI(t, "", "cert", "issue", "--key", ownerFile, "--subject", "*", "--role", "admin"); code != 1 {
		t.Errorf("admin for *: exit %d", code)
	}
}

// TestCertIssueRelay publishes through the real HTTP API on an in-memory
// relay.
func TestCertIssueRelay(t *testing.T) {
	t.Setenv(passwordEnv, "hunter2 hunter2")
	dir := t.TempDir()
	ownerFile, owner := certKeyFile(t, dir, "owner.key")
	strangerFile, _ := certKeyFile(t, dir, "stranger.key")
	relay, _ := keys.Generate(keys.Secp256k1)
	clk := clock.System()
	svc, err := resttest.New(relay, clk)
	if err != nil {
		t.Fatal(err)
	}
	inst := owner.Public().String()
	tick, _ := auth.IssueCert(owner, auth.Cert{Instance: inst, Subject: relay.Public().String(), Roles: []auth.Role{auth.RoleTick}, Expiry: time.Now().Add(time.Hour)})
	if _, err := svc.CreateWorld(context.Background(), rest.WorldSpec{Instance: inst, Alias: "mine", Rate: 1, TPS: 20, Chain: []*auth.Cert{tick}}); err != nil {
		t.Fatal(err)
	}
	api, err := rest.New(rest.Config{Service: svc, Keys: relay})
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	api.Mount(r)
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer api.Close()

	member, _ := keys.Generate(keys.P256)
	code, out, errs := runCLI(t, "", "cert", "issue", "--key", ownerFile, "--subject="+member.Public().String(), "--role", "message", "--relay", srv.URL+"/", "--world", "mine")
	if code != 0 {
		t.Fatalf("publish: %d %s", code, errs)
	}
	var doc struct{ Chain []json.RawMessage }
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Chain) != 1 {
		t.Fatalf("answer: %v %s", err, out)
	}
	if ok, _ := svc.Member(context.Background(), inst, member.Public().String()); !ok {
		t.Fatal("the relay did not take the certificate")
	}
	// A stranger's certificate for the world is refused by the relay.
	code, _, errs = runCLI(t, "", "cert", "issue", "--key", strangerFile, "--instance="+inst, "--subject", "*", "--role", "message", "--relay", srv.URL)
	if code != 1 || !strings.Contains(errs, "forbidden") {
		t.Fatalf("stranger: %d %s", code, errs)
	}
	// An unknown world is reported as such.
	code, _, errs = runCLI(t, "", "cert", "issue", "--key", ownerFile, "--subject", "*", "--role", "message", "--relay", srv.URL, "--world", "nope")
	if code != 1 || !strings.Contains(errs, "not_found") {
		t.Fatalf("unknown world: %d %s", code, errs)
	}
	_ = os.Remove(strangerFile)
}
