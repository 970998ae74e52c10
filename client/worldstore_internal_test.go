package client

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/keys"
	"github.com/krestianstvo/luminary/world"
)

// TestWorldStoreReadsEachSoulOnce: a Put's check looks up one field at a
// time (every field of the put, for an exact replay; the private flag),
// and reads each soul through the relay once for the whole check; the
// next Put reads afresh.
func TestWorldStoreReadsEachSoulOnce(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.UnixMilli(1_795_666_825_781))
	owner, _ := keys.Generate(keys.Secp256k1)
	inst := owner.Public().String()
	roster := world.RosterSoul(inst)

	var mu sync.Mutex
	gets := map[string]int{}
	sent := 0
	s := &worldStore{
		sc: graph.NewStateClock(clk),
		get: func(_ context.Context, soul string) (*graph.Node, error) {
			mu.Lock()
			defer mu.Unlock()
			gets[soul]++
			return nil, nil
		},
		put: func(context.Context, graph.Graph) error { sent++; return nil },
	}
	var err error
	if s.checker, err = auth.New(auth.Config{Clock: clk, Lookup: s.lookup}); err != nil {
		t.Fatal(err)
	}
	change := func() graph.Graph {
		n := &graph.Node{Soul: roster, Fields: map[string]graph.Field{}}
		for i := range 5 {
			state := s.Now()
			v, err := auth.SignField(owner, roster, fmt.Sprintf("m%d", i), graph.Bool(true), state)
			if err != nil {
				t.Fatal(err)
			}
			n.Fields[fmt.Sprintf("m%d", i)] = graph.Field{Value: v, State: state}
		}
		return graph.Graph{roster: n}
	}
	for round := 1; round <= 2; round++ {
		if err := s.Put(ctx, change()); err != nil {
			t.Fatal(err)
		}
		if gets[roster] != round || sent != round {
			t.Fatalf("after %d puts of 5 fields: %d gets of the roster (want %d), %d sent", round, gets[roster], round, sent)
		}
		for soul, n := range gets {
			if n > round {
				t.Fatalf("after %d puts: %s read %d times", round, soul, n)
			}
		}
	}
}
