package service_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/client"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/keys"
	"github.com/krestianstvo/luminary/world"
)

// TestWorldStoreThroughRelay manages a private world through a running
// relay with client.WorldStore: what the owner writes is in the relay's
// graph and verifies there; a write the relay would refuse is refused
// before anything is sent, and nothing of it is stored; a change is
// planned above the states it read even when the writer's clock is behind.
func TestWorldStoreThroughRelay(t *testing.T) {
	r := startRelay(t, relayOpts{dir: "-"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	owner, alice, mallory := newKey(t), newKey(t), newKey(t)
	inst := owner.Public().String()

	s := createWorld(ctx, t, r.URL, owner)
	if _, err := world.AddMember(ctx, s, inst, owner, alice.Public(), world.AddOptions{Roles: []auth.Role{auth.RoleMessage}}); err != nil {
		t.Fatal(err)
	}
	onRelay, err := world.Load(ctx, world.DBStore{DB: r.db}, inst)
	if err != nil {
		t.Fatal(err)
	}
	if !onRelay.Private || onRelay.Epoch != 1 || len(onRelay.Rejected) > 0 || !onRelay.HasKey(1, alice.Public().String()) {
		t.Fatalf("on the relay: private %v epoch %d rejected %v, alice has the key: %v",
			onRelay.Private, onRelay.Epoch, onRelay.Rejected, onRelay.HasKey(1, alice.Public().String()))
	}

	// Mallory, logged in but no admin, signs the world's private flag off:
	// refused here with the relay's reason, and nothing is sent.
	mc := dial(t, r.URL, mallory)
	ms, err := mc.WorldStore()
	if err != nil {
		t.Fatal(err)
	}
	root := heartbeat.InstanceSoul(inst)
	state := ms.Now()
	wv, err := auth.SignField(mallory, root, "private", graph.Bool(false), state)
	if err != nil {
		t.Fatal(err)
	}
	forged := graph.Graph{root: {Soul: root, Fields: map[string]graph.Field{"private": {Value: wv, State: state}}}}
	err = ms.Put(ctx, forged)
	if !errors.Is(err, client.ErrWorldRefused) {
		t.Fatalf("forged flag: %v, want ErrWorldRefused", err)
	}
	f, err := r.db.GetField(ctx, root, "private")
	if err != nil || f.State >= state {
		t.Fatalf("the relay holds the forged flag: %+v %v", f, err)
	}
	// The relay refuses the same put when it is sent anyway.
	var re *client.RelayError
	if err := mc.Put(ctx, forged); !errors.As(err, &re) {
		t.Fatalf("forged flag sent: %v, want a relay refusal", err)
	}

	// A change is planned above the states it read: the owner, on a
	// machine whose clock is a minute behind, removes alice. Without the
	// floor its access flag (state a minute in the past) would lose to the
	// one that granted it, and alice would keep reading the world.
	lc, err := client.Dial(ctx, r.URL, client.Config{Key: owner, Clock: behind{clock.System(), time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	ls, err := lc.WorldStore()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := world.RemoveMember(ctx, ls, inst, owner, alice.Public().String()); err != nil {
		t.Fatal(err)
	}
	ac := dial(t, r.URL, alice)
	var refused *client.RelayError
	if _, err := ac.Get(ctx, root); !errors.As(err, &refused) || !strings.HasPrefix(refused.Reason, "auth-required:") {
		t.Fatalf("alice reads the world after her removal by a late clock: %v", err)
	}
	onRelay, err = world.Load(ctx, world.DBStore{DB: r.db}, inst)
	if err != nil {
		t.Fatal(err)
	}
	if onRelay.Epoch != 2 || onRelay.HasKey(2, alice.Public().String()) || slices.Contains(onRelay.Active(), alice.Public().String()) || len(onRelay.Rejected) > 0 {
		t.Fatalf("after removal: epoch %d, alice has the key %v, rejected %v", onRelay.Epoch, onRelay.HasKey(2, alice.Public().String()), onRelay.Rejected)
	}
}

// behind is a clock running late by off.
type behind struct {
	clock.Clock
	off time.Duration
}

func (b behind) Now() time.Time { return b.Clock.Now().Add(-b.off) }

// createWorld creates owner's private world through the relay at url and
// returns the owner's world store there.
func createWorld(ctx context.Context, t *testing.T, url string, owner *keys.Private) world.Store {
	t.Helper()
	s, err := dial(t, url, owner).WorldStore()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := world.Create(ctx, s, owner); err != nil {
		t.Fatal(err)
	}
	return s
}

// capture is a world.Store that reads through another and keeps the diff
// of its one Put instead of sending it.
type capture struct {
	world.Store
	diff graph.Graph
}

func (c *capture) Put(_ context.Context, diff graph.Graph) error {
	c.diff = diff
	return nil
}

// TestWorldChangeStandsOrFallsWhole sends a change (adding a member) with
// one record field the relay refuses (its certificate re-signed by a key
// that is no admin): the relay refuses every record field of the put, the
// answer names the first refusal, and nothing of the change is stored — no
// member listed or rostered without its certificate. The same change sent
// intact is stored whole.
func TestWorldChangeStandsOrFallsWhole(t *testing.T) {
	r := startRelay(t, relayOpts{dir: "-"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	owner, carol, mallory := newKey(t), newKey(t), newKey(t)
	inst, ck := owner.Public().String(), carol.Public().String()

	oc := dial(t, r.URL, owner)
	s := createWorld(ctx, t, r.URL, owner)
	planned := &capture{Store: s}
	if _, err := world.AddMember(ctx, planned, inst, owner, carol.Public(), world.AddOptions{Roles: []auth.Role{auth.RoleMessage}}); err != nil {
		t.Fatal(err)
	}
	certs := world.CertsSoul(inst)
	if planned.diff[certs] == nil || planned.diff[world.MembersSoul(inst)] == nil || planned.diff[world.RosterSoul(inst)] == nil {
		t.Fatalf("the change does not write certs, members and roster: %v", planned.diff.Souls())
	}
	tampered := graph.Graph{}
	for soul, n := range planned.diff {
		fields := map[string]graph.Field{}
		for name, f := range n.Fields {
			if soul == certs {
				inner, err := auth.ParseWrapper(f.Value)
				if err != nil {
					t.Fatal(err)
				}
				if f.Value, err = auth.SignField(mallory, soul, name, inner.Value, f.State); err != nil {
					t.Fatal(err)
				}
			}
			fields[name] = f
		}
		tampered[soul] = &graph.Node{Soul: soul, Fields: fields}
	}

	var re *client.RelayError
	err := oc.Put(ctx, tampered)
	if !errors.As(err, &re) || strings.Contains(re.Reason, "rest of its change") {
		t.Fatalf("tampered change: %v, want the certificate's own refusal first", err)
	}
	for soul := range planned.diff {
		n, err := r.db.Get(ctx, soul)
		if err != nil && !errors.Is(err, graph.ErrNotFound) {
			t.Fatal(err)
		}
		if n == nil {
			continue
		}
		for name := range planned.diff[soul].Fields {
			if f, ok := n.Fields[name]; ok && f.State >= planned.diff[soul].Fields[name].State {
				t.Errorf("the relay stored %s.%s of a refused change", soul, name)
			}
		}
	}
	if w, err := world.Load(ctx, world.DBStore{DB: r.db}, inst); err != nil || slices.Contains(w.Active(), ck) {
		t.Fatalf("carol is a member after a refused change: %v", err)
	}

	if err := oc.Put(ctx, planned.diff); err != nil {
		t.Fatalf("the intact change: %v", err)
	}
	w, err := world.Load(ctx, world.DBStore{DB: r.db}, inst)
	if err != nil || !slices.Contains(w.Active(), ck) || !w.HasKey(1, ck) || len(w.Rejected) > 0 {
		t.Fatalf("after the intact change: %v, rejected %v", err, w.Rejected)
	}
}
