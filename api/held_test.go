package api

import (
	"context"
	"testing"

	"github.com/krestianstvo/luminary/graph"
)

// TestHeldPush: a put made with a *Held origin is stored at once, but its
// push waits for Release; pushes of other puts are not held behind it.
func TestHeldPush(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	c.get("g1", "held")
	c.get("g2", "free")
	ctx := context.Background()
	held := &Held{}
	if _, err := e.db.Put(ctx, graph.Graph{"held": node("held", "tick", graph.Number(1), e.now())}, held); err != nil {
		t.Fatal(err)
	}
	if n := e.stored("held"); n == nil {
		t.Fatal("a held put is not stored at once")
	}
	if held.Len() != 1 {
		t.Fatalf("%d frames held, want 1 (one subscriber)", held.Len())
	}
	if _, err := e.db.Put(ctx, graph.Graph{"free": node("free", "x", graph.Number(2), e.now())}, nil); err != nil {
		t.Fatal(err)
	}
	if m := c.next(); m.node("free") == nil || m.node("held") != nil {
		t.Fatalf("first push %v, want the free put (the held one waits)", m)
	}
	held.Release()
	if m := c.next(); m.node("held") == nil {
		t.Fatalf("after Release got %v, want the held put", m)
	}
	held.Release() // again: nothing more
	if held.Len() != 0 {
		t.Fatal("frames left after Release")
	}
}

func node(soul, field string, v graph.Value, state float64) *graph.Node {
	n := graph.NewNode(soul)
	n.Fields[field] = graph.Field{Value: v, State: state}
	return n
}
