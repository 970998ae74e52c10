package api

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/krestianstvo/luminary/graph"
)

// aclGuard lets everyone read "w/..." until a put to "acl" sets field
// "closed"; it reports that change as an access change for "w/".
type aclGuard struct{ closed atomic.Bool }

func (g *aclGuard) CheckPut(_ context.Context, _ *PeerInfo, diff graph.Graph) (graph.Graph, []graph.FieldError) {
	if n := diff["acl"]; n != nil {
		if _, ok := n.Fields["closed"]; ok {
			g.closed.Store(true)
		}
	}
	return diff, nil
}

func (g *aclGuard) CheckGet(_ context.Context, _ *PeerInfo, soul string) error {
	if strings.HasPrefix(soul, "w/") && g.closed.Load() {
		return errors.New("auth-required: closed")
	}
	return nil
}

func (g *aclGuard) AccessChanged(accepted graph.Graph) []string {
	if n := accepted["acl"]; n != nil {
		if _, ok := n.Fields["closed"]; ok {
			return []string{"w/"}
		}
	}
	return nil
}

// A connection that subscribed while it was allowed stops receiving a soul
// once the guard reports an access change and no longer lets it read;
// its other subscriptions keep working.
func TestAccessChangeDropsSubscriptions(t *testing.T) {
	g := &aclGuard{}
	e := newEnv(t, func(c *Config) { c.Guard = g })
	reader, writer := e.dial(), e.dial()
	reader.get("g1", "w/data")
	reader.get("g2", "open")
	if r := writer.put("p1", "w/data", e.now(), "a", "1"); r["ok"] == nil {
		t.Fatalf("put: %v", r)
	}
	if m := reader.next(); m.node("w/data") == nil {
		t.Fatalf("first push %v, want w/data", m)
	}
	if r := writer.put("p2", "acl", e.now(), "closed", "true"); r["ok"] == nil {
		t.Fatalf("acl put: %v", r)
	}
	waitFor(t, "the subscription to be dropped", func() bool {
		return e.metric("luminary_subscriptions_revoked_total") == 1
	})
	// Now a write to w/data, then one to open: the reader gets only the
	// second (pushes to one connection keep commit order).
	writer.put("p3", "w/data", e.now(), "b", "2")
	writer.put("p4", "open", e.now(), "b", "1")
	m := reader.next()
	if m.node("w/data") != nil || m.node("open") == nil {
		t.Fatalf("after the access change the reader got %v", m)
	}
	// A new get is judged by the guard as usual.
	reader.send(`{"#":"g3","get":{"#":"w/data"}}`)
	if r := reader.reply("g3", nil); !strings.HasPrefix(r.str("err"), "auth-required") {
		t.Fatalf("get after the change: %v", r)
	}
}
