package graph

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestBoltVolatileSouls: souls named by BoltOptions.Volatile are merged
// under HAM and served like the rest, but never reach the file: a batch of
// them alone commits nothing, and they are gone after a reopen while the
// durable fields of the same diff stay.
func TestBoltVolatileSouls(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	volatile := func(soul string) bool { return strings.HasSuffix(soul, "/hb") }
	open := func() *BoltStore {
		s, err := OpenBolt(path, BoltOptions{Volatile: volatile})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ctx := context.Background()
	s := open()
	diff := Graph{
		"w/hb":   {Soul: "w/hb", Fields: map[string]Field{"tick": {Value: Number(1), State: 100}}},
		"w/meta": {Soul: "w/meta", Fields: map[string]Field{"name": {Value: String("x"), State: 100}}},
	}
	acc, err := s.Merge(ctx, diff)
	if err != nil || len(acc) != 2 {
		t.Fatalf("merge: %v %v", acc, err)
	}
	commits := s.Stats().Commits
	// Ticks alone: accepted, served, no file commit.
	for i := 2; i <= 5; i++ {
		tick := Graph{"w/hb": {Soul: "w/hb", Fields: map[string]Field{"tick": {Value: Number(float64(i)), State: float64(100 + i)}}}}
		if acc, err := s.Merge(ctx, tick); err != nil || len(acc) != 1 {
			t.Fatalf("tick %d: %v %v", i, acc, err)
		}
	}
	// HAM still judges volatile fields: an older state loses.
	old := Graph{"w/hb": {Soul: "w/hb", Fields: map[string]Field{"tick": {Value: Number(99), State: 50}}}}
	if acc, err := s.Merge(ctx, old); err != nil || len(acc) != 0 {
		t.Fatalf("older tick accepted: %v %v", acc, err)
	}
	if got := s.Stats().Commits; got != commits {
		t.Fatalf("volatile merges committed to the file: %d commits, want %d", got, commits)
	}
	f, err := s.GetField(ctx, "w/hb", "tick")
	if err != nil || f.State != 105 {
		t.Fatalf("GetField = %+v, %v", f, err)
	}
	if n, err := s.Get(ctx, "w/hb"); err != nil || len(n.Fields) != 1 {
		t.Fatalf("Get = %v, %v", n, err)
	}
	seen := map[string]bool{}
	if err := s.Scan(ctx, "w/", func(n *Node) error { seen[n.Soul] = true; return nil }); err != nil || !seen["w/hb"] || !seen["w/meta"] {
		t.Fatalf("Scan saw %v, %v", seen, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close()
	if _, err := s.Get(ctx, "w/hb"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("volatile soul survived a reopen: %v", err)
	}
	if f, err := s.GetField(ctx, "w/meta", "name"); err != nil || f.State != 100 {
		t.Fatalf("durable field lost: %+v %v", f, err)
	}
}
