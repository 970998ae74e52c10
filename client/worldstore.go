package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/world"
)

// WorldStore returns a [world.Store] that reads and writes a world's
// records through the relay: package world's Create, AddMember,
// RemoveMember and Load against a running relay, whose own data directory
// is locked while it runs.
//
// Reads are gets (a private world's records are served only to a
// logged-in owner, admin or member: dial with Config.Key and
// RequireLogin). A Put is first judged here with the checks the relay
// applies in secure mode (package auth, reading what they need through the
// relay, each soul once per Put) and sent only if every field passes, so a
// refusal that can be seen in advance costs no round trip. The relay
// judges the put again and refuses a change's world records as a whole
// when it refuses one of them (see package world, "Records"), so a change
// (a new member's certificate, access and wrapped key; a rotation) is
// never half written; its refusal (the world changed in between, or it
// runs other rules) is returned as a *RelayError.
//
// States of new writes come from the client clock and are kept above
// every state read through the store, so a change wins over the records
// it was planned from even when this machine's clock is behind the one
// that wrote them.
func (c *Client) WorldStore() (world.Store, error) {
	s := &worldStore{sc: graph.NewStateClock(c.clk), get: c.Get, put: c.Put}
	var err error
	if s.checker, err = auth.New(auth.Config{Clock: c.clk, Lookup: s.lookup}); err != nil {
		return nil, fmt.Errorf("client: world store: %w", err)
	}
	return s, nil
}

type worldStore struct {
	checker *auth.Checker
	sc      *graph.StateClock
	get     func(ctx context.Context, soul string) (*graph.Node, error) // c.Get
	put     func(ctx context.Context, diff graph.Graph) error           // c.Put

	mu    sync.Mutex
	floor float64 // highest state read or issued
}

// Node implements world.Reader.
func (s *worldStore) Node(ctx context.Context, soul string) (map[string]graph.Field, error) {
	n, err := s.get(ctx, soul)
	if err != nil {
		return nil, err // world names the soul
	}
	if n == nil {
		return nil, nil
	}
	s.mu.Lock()
	for _, f := range n.Fields {
		if f.State > s.floor && !math.IsInf(f.State, 0) && !math.IsNaN(f.State) {
			s.floor = f.State
		}
	}
	s.mu.Unlock()
	return n.Fields, nil
}

// lookup reads one field for the checker. Within one Put's check it reads
// each soul once (readsKey): the checks look up one field at a time (each
// field of a put for an exact replay, a writer's certificates for
// revocation, the private flag), several in the same soul, and each read
// is a get through the relay.
func (s *worldStore) lookup(ctx context.Context, soul, field string) (graph.Field, bool, error) {
	rs, _ := ctx.Value(readsKey{}).(*reads)
	if rs != nil {
		rs.mu.Lock()
		fields, ok := rs.nodes[soul]
		rs.mu.Unlock()
		if ok {
			f, ok := fields[field]
			return f, ok, nil
		}
	}
	fields, err := s.Node(ctx, soul)
	if err != nil {
		return graph.Field{}, false, err
	}
	if rs != nil {
		rs.mu.Lock()
		rs.nodes[soul] = fields
		rs.mu.Unlock()
	}
	f, ok := fields[field]
	return f, ok, nil
}

// readsKey carries a Put's *reads in the context of its check.
type readsKey struct{}

// reads are the nodes one Put's check has read, by soul.
type reads struct {
	mu    sync.Mutex
	nodes map[string]map[string]graph.Field
}

// Now implements world.Store: the client clock's next state, above every
// state read or issued by this store.
func (s *worldStore) Now() float64 {
	v := s.sc.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if v <= s.floor {
		// One gun state step above the floor (1/999 ms), or the next
		// float if the floor is too large for the step to show.
		v = s.floor + 1.0/999
		if v <= s.floor {
			v = math.Nextafter(s.floor, math.Inf(1))
		}
	}
	s.floor = v
	return v
}

// ErrWorldRefused is returned (wrapped, with the fields and reasons) when
// a world write is refused before it is sent.
var ErrWorldRefused = errors.New("client: world write refused")

// Put implements world.Store.
func (s *worldStore) Put(ctx context.Context, diff graph.Graph) error {
	checkCtx := context.WithValue(ctx, readsKey{}, &reads{nodes: map[string]map[string]graph.Field{}})
	if _, refused := s.checker.CheckPut(checkCtx, nil, diff); len(refused) > 0 {
		return fmt.Errorf("%w (nothing sent): %w", ErrWorldRefused, world.RefusedError(refused))
	}
	if err := s.put(ctx, diff); err != nil {
		return fmt.Errorf("client: world store: put: %w", err)
	}
	return nil
}
