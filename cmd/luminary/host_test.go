package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/krestianstvo/luminary/api/rest"
	"github.com/krestianstvo/luminary/api/rest/resttest"
	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/keys"
)

// TestWorldHost hosts a key's world on a relay through the HTTP API: the
// relay gets the owner's tick certificate, and hosting is refused to a key
// the relay does not trust.
func TestWorldHost(t *testing.T) {
	t.Setenv(passwordEnv, "hunter2 hunter2")
	dir := t.TempDir()
	ownerFile, owner := certKeyFile(t, dir, "owner.key")
	relay, _ := keys.Generate(keys.Secp256k1)
	svc, err := resttest.New(relay, clock.System())
	if err != nil {
		t.Fatal(err)
	}
	serve := func(open bool) *httptest.Server {
		api, err := rest.New(rest.Config{Service: svc, Keys: relay, OpenHosting: open})
		if err != nil {
			t.Fatal(err)
		}
		r := chi.NewRouter()
		api.Mount(r)
		srv := httptest.NewServer(r)
		t.Cleanup(func() { srv.Close(); api.Close() })
		return srv
	}

	closed := serve(false)
	code, _, errs := runCLI(t, "", "world", "host", "--key", ownerFile, "--relay", closed.URL, "--alias", "mine")
	if code != 1 || !strings.Contains(errs, "forbidden") {
		t.Fatalf("host on a relay without open hosting: exit %d, %s", code, errs)
	}

	open := serve(true)
	code, out, errs := runCLI(t, "", "world", "host", "--key", ownerFile, "--relay", open.URL, "--alias", "mine", "--name", "Mine", "--tps", "30")
	if code != 0 {
		t.Fatalf("host: exit %d, %s", code, errs)
	}
	var info rest.WorldInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("answer %q: %v", out, err)
	}
	inst := owner.Public().String()
	if info.Instance != inst || info.Alias != "mine" || info.TPS != 30 {
		t.Fatalf("world info = %+v", info)
	}
	if err := svc.Authorize(context.Background(), inst, relay.Public().String(), auth.RoleTick); err != nil {
		t.Fatalf("the relay holds no tick role in the hosted world: %v", err)
	}
	code, _, errs = runCLI(t, "", "world", "host", "--key", ownerFile, "--relay", open.URL, "--private", "--open")
	if code != 2 {
		t.Fatalf("--private --open: exit %d, %s", code, errs)
	}
}
