package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/krestianstvo/luminary/internal/clock"
)

// TestMain runs the whole package with the write-ahead log when GRAPH_WAL=1
// (every BoltStore then has BoltOptions.WAL set).
func TestMain(m *testing.M) {
	forceWAL = os.Getenv("GRAPH_WAL") == "1"
	walSegmentBytes = 1 << 20 // smaller segments: faster tests, more rotations
	os.Exit(m.Run())
}

// openWAL opens a store with the log and no automatic checkpoint (a fake
// clock that never advances, huge record and memory thresholds) unless
// opt says otherwise.
func openWAL(t testing.TB, path string, opt BoltOptions) *BoltStore {
	t.Helper()
	opt.WAL = true
	if opt.Clock == nil {
		opt.Clock = clock.NewFake(time.Unix(1e9, 0))
	}
	if opt.CheckpointRecords == 0 {
		opt.CheckpointRecords = 1 << 30
	}
	if opt.MaxOverlayBytes == 0 {
		opt.MaxOverlayBytes = 1 << 40
	}
	s, err := OpenBolt(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// crash closes s as if the process had died after its last ack: the queue
// drains into the log, but nothing more reaches the bbolt file.
func crash(t testing.TB, s *BoltStore) {
	t.Helper()
	s.crashed.Store(true)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// fileGraph reads the bbolt file at path directly (no log replay).
func fileGraph(t testing.TB, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	if err := db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(graphBucket).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func segments(t testing.TB, path string) []uint64 {
	t.Helper()
	seqs, err := listSegments(walDir(path))
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

// mergeRandom merges n random single-field updates into s and into a
// MemoryStore and returns the MemoryStore's graph (what s must hold).
func mergeRandom(t *testing.T, s Store, r *rand.Rand, n int) Graph {
	t.Helper()
	ref := NewMemoryStore()
	ctx := context.Background()
	for range n {
		g := Graph{}
		for _, u := range randomUpdates(r, 1+r.Intn(3)) {
			g.Set(u.soul, u.field, u.f)
		}
		want, err := ref.Merge(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Merge(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(want) {
			t.Fatalf("accepted %s, want %s", got.AppendJSON(nil), want.AppendJSON(nil))
		}
	}
	return snapshot(t, ref)
}

// TestWALRecoveryAfterCrash: acked merges live only in the log (no
// checkpoint ran, the file is empty); a reopen replays them, with or
// without the log option, and removes the log.
func TestWALRecoveryAfterCrash(t *testing.T) {
	for _, reopenWAL := range []bool{false, true} {
		t.Run(fmt.Sprintf("reopen-wal=%v", reopenWAL), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "g.db")
			s := openWAL(t, path, BoltOptions{})
			want := mergeRandom(t, s, rand.New(rand.NewSource(1)), 200)
			if got := snapshot(t, s); !got.Equal(want) {
				t.Fatalf("overlay scan:\n%s\nwant\n%s", got.AppendJSON(nil), want.AppendJSON(nil))
			}
			crash(t, s)
			if n := fileGraph(t, path); n != 0 {
				t.Fatalf("file holds %d records before recovery", n)
			}
			if len(segments(t, path)) == 0 {
				t.Fatal("no log segments after the crash")
			}
			s2, err := OpenBolt(path, BoltOptions{WAL: reopenWAL})
			if err != nil {
				t.Fatal(err)
			}
			if got := snapshot(t, s2); !got.Equal(want) {
				t.Fatalf("recovered:\n%s\nwant\n%s", got.AppendJSON(nil), want.AppendJSON(nil))
			}
			if s2.wal == nil && len(segments(t, path)) != 0 {
				t.Fatalf("log left after recovery: %v", segments(t, path))
			}
			if err := s2.Close(); err != nil {
				t.Fatal(err)
			}
			if segs := segments(t, path); len(segs) != 0 {
				t.Fatalf("log left after a clean close: %v", segs)
			}
			if n := fileGraph(t, path); n == 0 {
				t.Fatal("file empty after recovery and close")
			}
		})
	}
}

// TestWALRecoverTwice: a crash after a checkpoint and more merges, then a
// crash during the recovered store's life: every acked field survives,
// replaying records older than the file changes nothing.
func TestWALRecoverTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	r := rand.New(rand.NewSource(2))
	ref := NewMemoryStore()
	ctx := context.Background()
	for round := range 3 {
		s := openWAL(t, path, BoltOptions{})
		for i := range 100 {
			g := Graph{}
			for _, u := range randomUpdates(r, 2) {
				g.Set(u.soul, u.field, u.f)
			}
			if _, err := ref.Merge(ctx, g); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Merge(ctx, g); err != nil {
				t.Fatal(err)
			}
			if i == 50 {
				if err := s.Checkpoint(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got, want := snapshot(t, s), snapshot(t, ref); !got.Equal(want) {
			t.Fatalf("round %d:\n%s\nwant\n%s", round, got.AppendJSON(nil), want.AppendJSON(nil))
		}
		crash(t, s)
	}
	s := openBolt(t, path)
	defer s.Close()
	if got, want := snapshot(t, s), snapshot(t, ref); !got.Equal(want) {
		t.Fatalf("final:\n%s\nwant\n%s", got.AppendJSON(nil), want.AppendJSON(nil))
	}
}

// writeSeq merges n fields "f<i>" of soul "t", one merge (one log record)
// each, and crashes the store.
func writeSeq(t *testing.T, path string, n int) {
	t.Helper()
	s := openWAL(t, path, BoltOptions{})
	for i := range n {
		if _, err := s.Merge(context.Background(), put1("t", fmt.Sprintf("f%d", i), Number(float64(i)), 1)); err != nil {
			t.Fatal(err)
		}
	}
	crash(t, s)
}

func lastSegment(t *testing.T, path string) string {
	t.Helper()
	segs := segments(t, path)
	if len(segs) == 0 {
		t.Fatal("no segment")
	}
	return filepath.Join(walDir(path), segmentName(segs[len(segs)-1]))
}

// TestWALTornTail: a record cut short, or followed by zeros, at the end of
// the last segment is a write torn by a crash and is dropped (it was never
// acked); a bad record before the tail, or in an earlier segment, fails
// the open with ErrWALCorrupt.
func TestWALTornTail(t *testing.T) {
	const n = 20
	fieldsAfterOpen := func(t *testing.T, path string) (int, error) {
		s, err := OpenBolt(path, BoltOptions{})
		if err != nil {
			return 0, err
		}
		defer s.Close()
		node, err := s.Get(context.Background(), "t")
		if err != nil {
			t.Fatal(err)
		}
		for i := range len(node.Fields) {
			if _, ok := node.Fields[fmt.Sprintf("f%d", i)]; !ok {
				t.Fatalf("field f%d missing among %d", i, len(node.Fields))
			}
		}
		return len(node.Fields), nil
	}
	// edit changes the last segment; f gets its bytes and the offsets of
	// the last record and of the end of the records.
	edit := func(f func(b []byte, last, end int) []byte) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			seg := lastSegment(t, path)
			data, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			last, end := recordBounds(t, data)
			if err := os.WriteFile(seg, f(data, last, end), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	zero := func(b []byte) {
		for i := range b {
			b[i] = 0
		}
	}
	nextSegment := func(t *testing.T, path string, content []byte) {
		segs := segments(t, path)
		next := filepath.Join(walDir(path), segmentName(segs[len(segs)-1]+1))
		if err := os.WriteFile(next, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		damage func(t *testing.T, path string)
		want   int   // fields recovered
		err    error // or this error
	}{
		{"intact", func(*testing.T, string) {}, n, nil},
		{"torn-end", edit(func(b []byte, _, end int) []byte { zero(b[end-12 : end]); return b }), n - 1, nil},
		{"truncated", edit(func(b []byte, _, end int) []byte { return b[:end-3] }), n - 1, nil},
		{"truncated-after", edit(func(b []byte, _, end int) []byte { return b[:end] }), n, nil},
		{"torn-checksum", edit(func(b []byte, last, end int) []byte { zero(b[last+5 : end]); return b }), n - 1, nil},
		{"torn-header", edit(func(b []byte, last, _ int) []byte { zero(b[last : last+walHeader]); return b }), n - 1, nil},
		{"garbage-after", edit(func(b []byte, _, end int) []byte { copy(b[end:], []byte{0xff, 0xff, 0xff}); return b }), n, nil},
		{"flip-last", edit(func(b []byte, _, end int) []byte { b[end-1] ^= 1; return b }), n - 1, nil},
		{"flip-middle", edit(func(b []byte, _, _ int) []byte { b[len(walMagic)+walHeader+2] ^= 1; return b }), 0, ErrWALCorrupt},
		{"bad-magic", edit(func(b []byte, _, _ int) []byte { b[0] = 'X'; return b }), 0, ErrWALCorrupt},
		{"earlier-segment", func(t *testing.T, path string) {
			// A torn record in a segment that is not the last is corruption.
			edit(func(b []byte, _, end int) []byte { zero(b[end-12 : end]); return b })(t, path)
			nextSegment(t, path, []byte(walMagic))
		}, 0, ErrWALCorrupt},
		{"empty-next-segment", func(t *testing.T, path string) { nextSegment(t, path, append([]byte(walMagic), make([]byte, 100)...)) }, n, nil},
		{"torn-creation", func(t *testing.T, path string) { nextSegment(t, path, []byte(walMagic[:3])) }, n, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "g.db")
			writeSeq(t, path, n)
			c.damage(t, path)
			got, err := fieldsAfterOpen(t, path)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("open: %v, want %v", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("recovered %d fields (%v), want %d", got, err, c.want)
			}
		})
	}
}

// recordBounds returns the offsets of the last record of a segment and of
// the end of its records.
func recordBounds(t *testing.T, data []byte) (last, end int) {
	t.Helper()
	last, end = -1, len(walMagic)
	for {
		_, e, ok := walRecordAt(data, end)
		if !ok {
			break
		}
		last, end = end, e
	}
	if last < 0 {
		t.Fatal("no record in the segment")
	}
	return last, end
}

// TestWALOverlayReads: Get, GetField, Scan and later merges' HAM see
// fields that are only in the overlay, fields only in the file, and both
// (the overlay's newer field wins), before and after a checkpoint.
func TestWALOverlayReads(t *testing.T) {
	ctx := context.Background()
	s := openWAL(t, filepath.Join(t.TempDir(), "g.db"), BoltOptions{})
	defer s.Close()
	must := func(acc Graph, err error) Graph {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return acc
	}
	must(s.Merge(ctx, Graph{
		"a": {Soul: "a", Fields: map[string]Field{"x": {Number(1), 10}, "y": {Number(1), 10}}},
		"c": {Soul: "c", Fields: map[string]Field{"x": {Number(1), 10}}},
	}))
	if err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Checkpoints != 1 || st.OverlayBytes != 0 {
		t.Fatalf("after checkpoint: %+v", st)
	}
	// Now a newer a.x, a new a.z, new souls b and d: in the overlay only.
	must(s.Merge(ctx, Graph{
		"a": {Soul: "a", Fields: map[string]Field{"x": {Number(2), 20}, "z": {Number(2), 20}}},
		"b": {Soul: "b", Fields: map[string]Field{"x": {Number(2), 20}}},
		"d": {Soul: "d", Fields: map[string]Field{"x": {Number(2), 20}}},
	}))
	if s.Stats().OverlayBytes == 0 {
		t.Fatal("overlay empty")
	}
	want := Graph{
		"a": {Soul: "a", Fields: map[string]Field{"x": {Number(2), 20}, "y": {Number(1), 10}, "z": {Number(2), 20}}},
		"b": {Soul: "b", Fields: map[string]Field{"x": {Number(2), 20}}},
		"c": {Soul: "c", Fields: map[string]Field{"x": {Number(1), 10}}},
		"d": {Soul: "d", Fields: map[string]Field{"x": {Number(2), 20}}},
	}
	check := func(stage string) {
		t.Helper()
		var order []string
		got := Graph{}
		if err := s.Scan(ctx, "", func(n *Node) error {
			order = append(order, n.Soul)
			got[n.Soul] = n
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !got.Equal(want) || strings.Join(order, ",") != "a,b,c,d" {
			t.Fatalf("%s: scan %v %s", stage, order, got.AppendJSON(nil))
		}
		for soul, n := range want {
			g, err := s.Get(ctx, soul)
			if err != nil || !(Graph{soul: g}).Equal(Graph{soul: n}) {
				t.Fatalf("%s: Get %s = %v %v", stage, soul, g, err)
			}
			for name, f := range n.Fields {
				if g, err := s.GetField(ctx, soul, name); err != nil || g != f {
					t.Fatalf("%s: GetField %s.%s = %v %v", stage, soul, name, g, err)
				}
			}
		}
		if _, err := s.GetField(ctx, "a", "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: missing field: %v", stage, err)
		}
		if _, err := s.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: missing soul: %v", stage, err)
		}
		var pref []string
		if err := s.Scan(ctx, "b", func(n *Node) error { pref = append(pref, n.Soul); return nil }); err != nil || strings.Join(pref, ",") != "b" {
			t.Fatalf("%s: prefix scan %v %v", stage, pref, err)
		}
		// HAM against the overlay: an older state loses, a newer wins.
		if acc := must(s.Merge(ctx, put1("a", "x", Number(9), 15))); len(acc) != 0 {
			t.Fatalf("%s: older state accepted: %s", stage, acc.AppendJSON(nil))
		}
		if acc := must(s.Merge(ctx, put1("a", "y", Number(9), 5))); len(acc) != 0 {
			t.Fatalf("%s: older state (file) accepted: %s", stage, acc.AppendJSON(nil))
		}
	}
	check("overlay")
	if err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.OverlayBytes != 0 {
		t.Fatalf("overlay after checkpoint: %+v", st)
	}
	check("file")
}

// TestWALCheckpointTruncates: a checkpoint moves the overlay into the file
// and deletes the segments it covered; the interval and the record count
// both trigger one.
func TestWALCheckpointTruncates(t *testing.T) {
	ctx := context.Background()
	t.Run("explicit", func(t *testing.T) {
		defer setSegmentBytes(512)()
		path := filepath.Join(t.TempDir(), "g.db")
		s := openWAL(t, path, BoltOptions{})
		defer s.Close()
		want := mergeRandom(t, s, rand.New(rand.NewSource(4)), 50)
		before := segments(t, path)
		if err := s.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		after := segments(t, path)
		if len(before) < 2 || len(after) != 1 || after[0] != before[len(before)-1] {
			t.Fatalf("segments %v -> %v", before, after)
		}
		if fi, err := os.Stat(filepath.Join(walDir(path), segmentName(after[0]))); err != nil || fi.Size() != 512 {
			t.Fatalf("current segment: %v %v", fi, err)
		}
		n := 0
		s.db.View(func(tx *bolt.Tx) error { n = tx.Bucket(graphBucket).Stats().KeyN; return nil })
		if n != want.Len() {
			t.Fatalf("file holds %d fields, want %d", n, want.Len())
		}
		if got := snapshot(t, s); !got.Equal(want) {
			t.Fatalf("after checkpoint:\n%s\nwant\n%s", got.AppendJSON(nil), want.AppendJSON(nil))
		}
		// Nothing new: a second checkpoint changes nothing.
		if err := s.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		if again := segments(t, path); len(again) != 1 || again[0] != after[0] {
			t.Fatalf("idle checkpoint: %v", again)
		}
	})
	t.Run("interval", func(t *testing.T) {
		clk := clock.NewFake(time.Unix(1e9, 0))
		s := openWAL(t, filepath.Join(t.TempDir(), "g.db"), BoltOptions{Clock: clk, CheckpointInterval: time.Second})
		defer s.Close()
		if _, err := s.Merge(ctx, put1("a", "b", Number(1), 1)); err != nil {
			t.Fatal(err)
		}
		clk.BlockUntil(1)
		clk.Advance(time.Second)
		waitFor(t, func() bool { return s.Stats().Checkpoints == 1 })
	})
	t.Run("records", func(t *testing.T) {
		s := openWAL(t, filepath.Join(t.TempDir(), "g.db"), BoltOptions{CheckpointRecords: 5})
		defer s.Close()
		for i := range 5 {
			if _, err := s.Merge(ctx, put1("a", fmt.Sprint(i), Number(1), 1)); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, func() bool { return s.Stats().Checkpoints == 1 })
	})
}

// setSegmentBytes makes new log segments size bytes long until the
// returned function runs.
func setSegmentBytes(size int64) func() {
	old := walSegmentBytes
	walSegmentBytes = size
	return func() { walSegmentBytes = old }
}

// waitFor blocks until cond holds, polling, or fails after 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatal("condition not met in 10 s")
		}
	}
}

// TestWALBackpressure: when the overlay reaches half of MaxOverlayBytes
// while a checkpoint is still running, the writer waits for it: later
// merges are not answered until the checkpoint ends.
func TestWALBackpressure(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "g.db")
	s, err := OpenBolt(path, BoltOptions{WAL: true, MaxOverlayBytes: 2, Clock: clock.NewFake(time.Unix(1e9, 0)), CheckpointRecords: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{}, 10)
	release := make(chan struct{})
	s.ckptHook = func() {
		started <- struct{}{}
		<-release
	}
	// Merge 1 fills the overlay: a checkpoint starts and hangs.
	if _, err := s.Merge(ctx, put1("a", "1", Number(1), 1)); err != nil {
		t.Fatal(err)
	}
	<-started
	// Merge 2 is answered (logged), then the writer waits for the hung
	// checkpoint before its own.
	if _, err := s.Merge(ctx, put1("a", "2", Number(1), 1)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	s.MergeAsync(ctx, put1("a", "3", Number(1), 1), nil, func(_ Graph, err error) { done <- err })
	select {
	case err := <-done:
		t.Fatalf("merge 3 answered while the overlay is full: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if v, err := s.GetField(ctx, "a", "2"); err != nil || v.Value != Number(1) {
		t.Fatalf("read while stalled: %v %v", v, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Stalls == 0 {
		t.Fatalf("no stall counted: %+v", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openBolt(t, path)
	defer s.Close()
	if n, err := s.Get(ctx, "a"); err != nil || len(n.Fields) != 3 {
		t.Fatalf("after reopen: %v %v", n, err)
	}
}

// TestWALConcurrentCheckpoints: many writers and readers while checkpoints
// run continuously (tiny thresholds); every acked field is readable right
// after its ack, and the final graph matches.
func TestWALConcurrentCheckpoints(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "g.db")
	s, err := OpenBolt(path, BoltOptions{WAL: true, CheckpointRecords: 3, MaxOverlayBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	const writers, per = 8, 150
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range per {
				soul := fmt.Sprintf("w%d/%d", w, i%10)
				f := Field{Value: Number(float64(i)), State: float64(i + 1)}
				g := Graph{}
				g.Set(soul, "v", f)
				if _, err := s.Merge(ctx, g); err != nil {
					errs <- err
					return
				}
				got, err := s.GetField(ctx, soul, "v")
				if err != nil || got.State < f.State {
					errs <- fmt.Errorf("read after ack %s: %v %v", soul, got, err)
					return
				}
				n, err := s.Get(ctx, soul)
				if err != nil || n.Fields["v"].State < f.State {
					errs <- fmt.Errorf("get after ack %s: %v %v", soul, n, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if s.Stats().Checkpoints == 0 {
		t.Fatal("no checkpoint ran")
	}
	check := func(s *BoltStore) {
		g := snapshot(t, s)
		if g.Len() != writers*10 {
			t.Fatalf("%d fields", g.Len())
		}
		for soul, n := range g {
			var w, k int
			fmt.Sscanf(soul, "w%d/%d", &w, &k)
			want := float64(per - 10 + k + 1)
			if n.Fields["v"].State != want {
				t.Fatalf("%s: state %v want %v", soul, n.Fields["v"].State, want)
			}
		}
	}
	check(s)
	crash(t, s)
	s = openBolt(t, path)
	defer s.Close()
	check(s)
}

// TestWALFailureIsSticky: a failed log write fails the merge and every
// later one; nothing more is checkpointed and the log stays for recovery.
func TestWALFailureIsSticky(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "g.db")
	s := openWAL(t, path, BoltOptions{})
	if _, err := s.Merge(ctx, put1("a", "b", Null(), 1)); err != nil {
		t.Fatal(err)
	}
	s.wal.f.Close() // every write now fails
	for i := range 3 {
		if _, err := s.Merge(ctx, put1("a", "b", Null(), float64(2+i))); !errors.Is(err, ErrStoreFailed) {
			t.Fatalf("merge %d after failure: %v", i, err)
		}
	}
	if err := s.Checkpoint(ctx); !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("checkpoint after failure: %v", err)
	}
	// Reads still serve what was acked.
	if f, err := s.GetField(ctx, "a", "b"); err != nil || f.State != 1 {
		t.Fatalf("read after failure: %v %v", f, err)
	}
	s.Close()
	if n := fileGraph(t, path); n != 0 {
		t.Fatalf("failed store checkpointed %d fields on close", n)
	}
	s = openBolt(t, path)
	defer s.Close()
	if f, err := s.GetField(ctx, "a", "b"); err != nil || f.State != 1 {
		t.Fatalf("after recovery: %v %v", f, err)
	}
}

// TestWALVolatileNotLogged: volatile souls never reach the log.
func TestWALVolatileNotLogged(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "g.db")
	s := openWAL(t, path, BoltOptions{Volatile: func(soul string) bool { return strings.HasSuffix(soul, "/hb") }})
	if _, err := s.Merge(ctx, put1("w/hb", "tick", Number(1), 1)); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Commits != 0 || st.OverlayBytes != 0 {
		t.Fatalf("volatile merge logged: %+v", st)
	}
	if _, err := s.Merge(ctx, Graph{
		"w/hb":   {Soul: "w/hb", Fields: map[string]Field{"tick": {Number(2), 2}}},
		"w/meta": {Soul: "w/meta", Fields: map[string]Field{"n": {Number(2), 2}}},
	}); err != nil {
		t.Fatal(err)
	}
	crash(t, s)
	data, err := os.ReadFile(lastSegment(t, path))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("w/hb")) || !bytes.Contains(data, []byte("w/meta")) {
		t.Fatalf("log content %q", data)
	}
}

// TestWALDerivedSkipsSync: a batch of Derived merges is written to the
// log and visible at once, without an fdatasync of its own; the next synced
// commit carries it, a rotation syncs it before leaving its segment, and a
// crash after a synced commit recovers it.
func TestWALDerivedSkipsSync(t *testing.T) {
	ctx := context.Background()
	derived := Derived(ctx)
	if !isDerived(derived) || isDerived(ctx) {
		t.Fatal("isDerived does not report Derived")
	}
	path := filepath.Join(t.TempDir(), "g.db")
	s := openWAL(t, path, BoltOptions{})
	if _, err := s.Merge(derived, put1("pub", "a", Number(1), 1)); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Commits != 1 || st.Syncs != 0 {
		t.Fatalf("derived merge: %d commits, %d syncs; want 1, 0", st.Commits, st.Syncs)
	}
	if f, err := s.GetField(ctx, "pub", "a"); err != nil || f.State != 1 {
		t.Fatalf("derived field not visible: %+v %v", f, err)
	}
	if _, err := s.Merge(ctx, put1("acked", "b", Number(2), 2)); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Syncs != 1 {
		t.Fatalf("synced merge after a derived one: %d syncs, want 1", st.Syncs)
	}
	// Fill the segment with derived records until the log rotates: the
	// rotation syncs the segment it leaves (recovery stops at the first
	// torn record, so no later segment may be synced before it).
	first := segments(t, path)
	big := String(strings.Repeat("x", 64<<10))
	for i := 0; len(segments(t, path)) == len(first); i++ {
		if i > 4*int(walSegmentBytes)/(64<<10) {
			t.Fatal("the log never rotated")
		}
		if _, err := s.Merge(derived, put1("pub", "big"+strconv.Itoa(i), big, float64(10+i))); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Syncs != 2 {
		t.Fatalf("after a rotation: %d syncs, want 2 (the synced merge, the segment left)", st.Syncs)
	}
	if _, err := s.Merge(derived, put1("pub", "c", Number(3), 3)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Merge(ctx, put1("acked", "d", Number(4), 4)); err != nil {
		t.Fatal(err)
	}
	crash(t, s)
	s2, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for _, k := range [][2]string{{"pub", "a"}, {"acked", "b"}, {"pub", "big0"}, {"pub", "c"}, {"acked", "d"}} {
		if _, err := s2.GetField(ctx, k[0], k[1]); err != nil {
			t.Fatalf("%s.%s after the crash: %v", k[0], k[1], err)
		}
	}
}

// FuzzWALParse feeds arbitrary bytes to the log parser: it must not panic,
// must accept a prefix of valid records in tail mode whenever it accepts
// the whole in strict mode, and what it accepts must re-encode to records
// that parse the same.
func FuzzWALParse(f *testing.F) {
	rec := func(g map[string]map[string]Field) []byte { return appendWALRecord(nil, g) }
	r1 := rec(map[string]map[string]Field{"a": {"x": {Number(1), 1}, "y": {String("héllo"), 2}}, "b\x00c": {"": {Link("a"), 3}}})
	r2 := rec(map[string]map[string]Field{"s": {"t": {Null(), 4}, "u": {Bool(true), 5}}})
	seg := append(append([]byte(walMagic), r1...), r2...)
	f.Add(seg, true)
	f.Add(seg, false)
	f.Add(seg[:len(seg)-3], true)
	f.Add(append(append([]byte{}, seg...), 0, 0, 0, 0, 0, 0, 0, 0), true)
	f.Add([]byte(walMagic), false)
	f.Add([]byte(walMagic[:4]), true)
	f.Add([]byte{}, true)
	f.Add(append([]byte(walMagic), 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0), true)
	f.Add(append(append([]byte{}, seg...), make([]byte, 64)...), false)
	torn := append([]byte{}, seg...)
	clear(torn[len(walMagic)+len(r1) : len(walMagic)+len(r1)+walHeader]) // last header lost
	f.Add(torn, true)
	f.Add(append(append(append([]byte{}, seg...), r1[:len(r1)/2]...), make([]byte, 32)...), true)
	f.Fuzz(func(t *testing.T, data []byte, tail bool) {
		recs, valid, err := parseWAL(data, tail)
		if err != nil {
			if !errors.Is(err, ErrWALCorrupt) {
				t.Fatalf("error not ErrWALCorrupt: %v", err)
			}
			return
		}
		if valid > len(data) || (!tail && len(data) > 0 && !allZero(data[valid:])) {
			t.Fatalf("valid %d of %d (tail %v)", valid, len(data), tail)
		}
		if !tail {
			if trecs, tvalid, err := parseWAL(data, true); err != nil || tvalid != valid || len(trecs) != len(recs) {
				t.Fatalf("tail mode disagrees: %d %d %v", tvalid, len(trecs), err)
			}
		}
		// Re-encode and parse again.
		out := []byte(walMagic)
		for _, rec := range recs {
			g := map[string]map[string]Field{}
			for _, e := range rec {
				if g[e.soul] == nil {
					g[e.soul] = map[string]Field{}
				}
				g[e.soul][e.name] = e.field
			}
			out = appendWALRecord(out, g)
		}
		again, v2, err := parseWAL(out, false)
		if err != nil || v2 != len(out) || len(again) != len(recs) {
			t.Fatalf("re-encoded log: %d records, %v", len(again), err)
		}
		for i := range recs {
			if !sameEntries(recs[i], again[i]) {
				t.Fatalf("record %d changed: %v -> %v", i, recs[i], again[i])
			}
		}
	})
}

// sameEntries compares two records as sets of soul/name -> field (a
// record may repeat a key only if it came from outside our encoder; the
// last one counts, as in replay).
func sameEntries(a, b walRecord) bool {
	m := func(r walRecord) map[[2]string]Field {
		out := map[[2]string]Field{}
		for _, e := range r {
			out[[2]string{e.soul, e.name}] = e.field
		}
		return out
	}
	ma, mb := m(a), m(b)
	if len(ma) != len(mb) {
		return false
	}
	for k, v := range ma {
		if w, ok := mb[k]; !ok || !sameField(v, w) {
			return false
		}
	}
	return true
}

func sameField(a, b Field) bool {
	return bytes.Equal(appendField(nil, a), appendField(nil, b))
}

// BenchmarkBoltPuts measures acked merges/s and ack latency for the
// relay's put pattern (a new soul per put, one 200-byte field) with many
// merges in flight, without and with the write-ahead log.
func BenchmarkBoltPuts(b *testing.B) {
	for _, wal := range []bool{false, true} {
		for _, inflight := range []int{64, 512} {
			b.Run(fmt.Sprintf("wal=%v/inflight=%d", wal, inflight), func(b *testing.B) {
				var commitNs, commits atomic.Int64
				s, err := OpenBolt(filepath.Join(b.TempDir(), "g.db"), BoltOptions{WAL: wal, OnCommit: func(ci CommitInfo) {
					commitNs.Add(int64(ci.Duration))
					commits.Add(1)
				}})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				ctx := context.Background()
				val := String(strings.Repeat("v", 200))
				lat := make([]time.Duration, b.N)
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for range inflight {
					wg.Go(func() {
						for {
							n := next.Add(1) - 1
							if n >= int64(b.N) {
								return
							}
							t0 := time.Now()
							if _, err := s.Merge(ctx, put1(fmt.Sprintf("bench/%x/%d", n*2654435761, n), "v", val, float64(n+1))); err != nil {
								b.Error(err)
								return
							}
							lat[n] = time.Since(t0)
						}
					})
				}
				wg.Wait()
				el := time.Since(start)
				b.StopTimer()
				slices.Sort(lat)
				b.ReportMetric(float64(b.N)/el.Seconds(), "acks/s")
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(commitNs.Load())/float64(max(commits.Load(), 1))/1e6, "commit-ms")
				st := s.Stats()
				b.ReportMetric(float64(st.Merges)/float64(max(st.Commits, 1)), "merges/commit")
			})
		}
	}
}

// TestWALScanInterleaved: Scan merges pages of the file with the overlay
// when souls of both interleave across many pages, with prefixes.
func TestWALScanInterleaved(t *testing.T) {
	ctx := context.Background()
	s := openWAL(t, filepath.Join(t.TempDir(), "g.db"), BoltOptions{})
	defer s.Close()
	ref := NewMemoryStore()
	both := func(g Graph) {
		t.Helper()
		if _, err := ref.Merge(ctx, g); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Merge(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 700 { // even souls to the file
		both(put1(fmt.Sprintf("p%d/%04d", i%3, 2*i), "a", Number(float64(i)), 1))
	}
	if err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 700 { // odd souls, and newer fields of even ones, in the overlay
		both(put1(fmt.Sprintf("p%d/%04d", i%3, 2*i+1), "a", Number(float64(i)), 1))
		if i%5 == 0 {
			both(put1(fmt.Sprintf("p%d/%04d", i%3, 2*i), "a", Number(-1), 2))
			both(put1(fmt.Sprintf("p%d/%04d", i%3, 2*i), "b", Bool(true), 2))
		}
	}
	for _, prefix := range []string{"", "p1", "p2/00", "q"} {
		var got, want []*Node
		if err := s.Scan(ctx, prefix, func(n *Node) error { got = append(got, n); return nil }); err != nil {
			t.Fatal(err)
		}
		if err := ref.Scan(ctx, prefix, func(n *Node) error { want = append(want, n); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("prefix %q: %d nodes, want %d", prefix, len(got), len(want))
		}
		for i := range got {
			if !(Graph{"x": got[i]}).Equal(Graph{"x": want[i]}) || got[i].Soul != want[i].Soul {
				t.Fatalf("prefix %q node %d: %v, want %v", prefix, i, got[i], want[i])
			}
		}
	}
	// fn's error stops the scan.
	stop := errors.New("stop")
	n := 0
	if err := s.Scan(ctx, "", func(*Node) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("stop: %v after %d", err, n)
	}
}
