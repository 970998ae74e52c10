package graph

import (
	"context"
	"errors"
	"fmt"
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

// TestBoundedMemoryStoreEvictsOldestFirst: evictable souls are dropped in
// the order of their first write once they exceed the bound (a rewrite
// does not make a soul younger), other souls are never dropped, and the
// accounting follows overwrites and growth.
func TestBoundedMemoryStoreEvictsOldestFirst(t *testing.T) {
	evictable := func(soul string) bool { return strings.HasPrefix(soul, "in/") }
	if _, err := NewBoundedMemoryStore(MemoryOptions{Evictable: evictable}); err == nil {
		t.Fatal("a zero bound was accepted")
	}
	// Each "in/N" node below costs its soul, its field and their overheads.
	payload := strings.Repeat("x", 100)
	per := int64(len("in/0") + soulOverhead + len("v") + len(payload) + fieldOverhead)
	m, err := NewBoundedMemoryStore(MemoryOptions{Evictable: evictable, MaxBytes: 3 * per})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	put := func(soul, field, v string, state float64) {
		t.Helper()
		if _, err := m.Merge(ctx, Graph{soul: {Soul: soul, Fields: map[string]Field{field: {Value: String(v), State: state}}}}); err != nil {
			t.Fatal(err)
		}
	}
	has := func(soul string) bool {
		ok, err := m.HasSoul(ctx, soul)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	put("keep", "v", strings.Repeat("k", 1000), 1) // not evictable, larger than the bound
	for i := range 3 {
		put(fmt.Sprintf("in/%d", i), "v", payload, 1)
	}
	if n, b := m.Evicted(); n != 0 || b != 3*per {
		t.Fatalf("three nodes at the bound: evicted %d, %d bytes (want 0, %d)", n, b, 3*per)
	}
	// Overwriting in/0 with an equal-sized value keeps its age and size.
	put("in/0", "v", strings.Repeat("y", 100), 2)
	put("in/3", "v", payload, 1)
	if has("in/0") || !has("in/1") || !has("in/3") || !has("keep") {
		t.Fatal("the fourth node did not evict exactly the oldest")
	}
	// A new field on in/1 grows it past the bound: in/1 itself is oldest.
	put("in/1", "seq", "1", 3)
	if has("in/1") || !has("in/2") {
		t.Fatal("growth did not evict the oldest")
	}
	if n, b := m.Evicted(); n != 2 || b != 2*per {
		t.Fatalf("evicted %d, %d bytes (want 2, %d)", n, b, 2*per)
	}
	// A dropped soul reads as never written; writing it again starts it
	// afresh, at the young end.
	if _, err := m.Get(ctx, "in/0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of an evicted soul: %v", err)
	}
	put("in/0", "v", payload, 1)
	put("in/4", "v", payload, 1)
	if has("in/2") || !has("in/3") || !has("in/0") || !has("in/4") {
		t.Fatal("a rewritten soul was not the youngest")
	}
	// The queue of souls is compacted as it is spent; many writes keep
	// memory at the bound.
	for i := range 5000 {
		put(fmt.Sprintf("in/%04d", i), "v", payload, 1)
	}
	if _, b := m.Evicted(); b > 3*per+3 {
		t.Fatalf("bytes %d above the bound %d", b, 3*per)
	}
	if len(m.fifo)-m.head > 4 || len(m.fifo) > 2100 {
		t.Fatalf("queue of souls not compacted: %d entries, head %d", len(m.fifo), m.head)
	}
}

// TestBoltTransientSouls: BoltOptions.Transient souls are served like
// volatile ones, never reach the file, and are dropped oldest first at
// TransientBytes; the counters report it.
func TestBoltTransientSouls(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	opt := BoltOptions{
		Volatile:       func(soul string) bool { return strings.HasSuffix(soul, "/hb") },
		Transient:      func(soul string) bool { return strings.Contains(soul, "/in/") },
		TransientBytes: 4 << 10,
		WAL:            true,
	}
	s, err := OpenBolt(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	diff := Graph{
		"w/hb":   {Soul: "w/hb", Fields: map[string]Field{"tick": {Value: Number(1), State: 100}}},
		"w/in/a": {Soul: "w/in/a", Fields: map[string]Field{"payload": {Value: String("hello"), State: 100}}},
		"w/log":  {Soul: "w/log", Fields: map[string]Field{"head": {Value: Number(1), State: 100}}},
	}
	if acc, err := s.Merge(ctx, diff); err != nil || len(acc) != 3 {
		t.Fatalf("merge: %v %v", acc, err)
	}
	syncs := s.Stats().Syncs
	for i := range 100 {
		soul := fmt.Sprintf("w/in/%03d", i)
		in := Graph{soul: {Soul: soul, Fields: map[string]Field{"payload": {Value: String(strings.Repeat("p", 200)), State: 100}}}}
		if acc, err := s.Merge(ctx, in); err != nil || len(acc) != 1 {
			t.Fatalf("inbox %d: %v %v", i, acc, err)
		}
	}
	st := s.Stats()
	if st.Syncs != syncs {
		t.Fatalf("transient merges were synced: %d syncs, want %d", st.Syncs, syncs)
	}
	if st.TransientEvicted == 0 || st.TransientBytes > 4<<10 {
		t.Fatalf("bound not kept: evicted %d, %d bytes", st.TransientEvicted, st.TransientBytes)
	}
	if _, err := s.Get(ctx, "w/in/a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the oldest transient soul was kept: %v", err)
	}
	if _, err := s.GetField(ctx, "w/in/099", "payload"); err != nil {
		t.Fatalf("the newest transient soul: %v", err)
	}
	if _, err := s.GetField(ctx, "w/hb", "tick"); err != nil {
		t.Fatalf("a volatile soul was evicted with the transient ones: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenBolt(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ok, err := s.HasSoul(ctx, "w/in/099"); err != nil || ok {
		t.Fatalf("a transient soul survived a reopen: %v %v", ok, err)
	}
	if f, err := s.GetField(ctx, "w/log", "head"); err != nil || f.State != 100 {
		t.Fatalf("durable field lost: %+v %v", f, err)
	}
}
