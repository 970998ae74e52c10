package client

import (
	"context"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/keys"
)

// TestWorldCheckerHonoursRevocations wires a world's certificate checker
// as Join does: a tick certificate published at lum/<I>/certs lets its
// subject tick until its serial appears at lum/<I>/revoked.
func TestWorldCheckerHonoursRevocations(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	owner, _ := keys.Generate(keys.Secp256k1)
	ticker, _ := keys.Generate(keys.P256)
	inst := owner.Public().String()
	revoked := &revocations{soul: revokedSoul(inst), m: map[string]graph.Field{}}
	checker, err := auth.New(auth.Config{Mode: auth.Open, Clock: clock.NewFake(now), Lookup: revoked.lookup})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := auth.IssueCert(owner, auth.Cert{Instance: inst, Subject: ticker.Public().String(),
		Roles: []auth.Role{auth.RoleTick}, Expiry: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := cert.MarshalJSON()
	state := float64(now.UnixMilli())
	put := func(soul, field string, v graph.Value) *graph.Node {
		wv, err := auth.SignField(owner, soul, field, v, state)
		if err != nil {
			t.Fatal(err)
		}
		return &graph.Node{Soul: soul, Fields: map[string]graph.Field{field: {Value: wv, State: state}}}
	}
	certs := put(certsSoul(inst), cert.Serial, graph.String(string(js)))
	if _, refused := checker.CheckPut(ctx, nil, graph.Graph{certs.Soul: certs}); len(refused) > 0 {
		t.Fatal(refused[0].Err)
	}
	if err := checker.Authorize(ctx, inst, ticker.Public().String(), auth.RoleTick, now); err != nil {
		t.Fatalf("certified ticker refused: %v", err)
	}
	revoked.add(put(revokedSoul(inst), cert.Serial, graph.Bool(true)))
	if err := checker.Authorize(ctx, inst, ticker.Public().String(), auth.RoleTick, now); err == nil {
		t.Fatal("a revoked certificate still lets its subject tick")
	}
	// Other instances' souls are never answered.
	if _, ok, _ := revoked.lookup(ctx, heartbeat.InstanceSoul(inst)+"/certs", cert.Serial); ok {
		t.Fatal("lookup answered for another soul")
	}
}
