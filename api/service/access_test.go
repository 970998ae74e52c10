package service_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/client"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/world"
)

// counter sums a counter of the relay's metrics.
func counter(r *relay, name string) float64 {
	mfs, _ := r.reg.Gather()
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// present reports whether key is in the world's sequenced presence.
func present(t *testing.T, r *relay, inst, key string) bool {
	t.Helper()
	keys, err := r.svc.Presence(context.Background(), inst)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Contains(keys, key)
}

// A member who follows a private world stops receiving it when the owner
// removes them: the relay re-checks the subscriptions of the world when
// its member list changes and drops those the member may no longer read;
// a new read is refused, and the member, still connected, leaves the
// world's presence.
func TestRemovedMemberLosesSubscriptions(t *testing.T) {
	r := startRelay(t, relayOpts{dir: "-"})
	ctx := context.Background()
	p := newPrivateWorld(t, r)
	owner, member, inst, st := p.owner, p.member, p.inst, p.st
	c := dial(t, r.URL, member)
	join(t, c, inst)
	if _, err := c.Get(ctx, heartbeat.HeartbeatSoul(inst)); err != nil {
		t.Fatalf("member read before removal: %v", err)
	}
	for start := time.After(10 * time.Second); !present(t, r, inst, member.Public().String()); {
		select {
		case <-start:
			t.Fatal("the member never became present")
		case <-time.After(5 * time.Millisecond):
		}
	}
	before := counter(r, "luminary_subscriptions_revoked_total")
	if _, err := world.RemoveMember(ctx, st, inst, owner, member.Public().String()); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for counter(r, "luminary_subscriptions_revoked_total") == before {
		select {
		case <-deadline:
			t.Fatal("the removed member's subscriptions were not dropped")
		case <-tick.C:
		}
	}
	_, err := c.Get(ctx, heartbeat.HeartbeatSoul(inst))
	if err == nil || !strings.Contains(err.Error(), "auth-required") {
		t.Fatalf("read after removal: %v", err)
	}
	// The member, still connected, is no longer counted as present: a
	// leave is sequenced.
	for present(t, r, inst, member.Public().String()) {
		select {
		case <-deadline:
			t.Fatal("the removed member is still present in the world")
		case <-tick.C:
		}
	}
	// Nor does a join bundle (snapshot join) go to a non-member.
	_, err = dial(t, r.URL, newKey(t)).Join(ctx, inst, client.JoinOptions{FromSnapshot: true})
	if err == nil || !strings.Contains(err.Error(), "auth-required") {
		t.Fatalf("join bundle for a non-member: %v", err)
	}
}
