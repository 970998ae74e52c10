package graph

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func openBolt(t testing.TB, path string) *BoltStore {
	t.Helper()
	s, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// stores runs f against every Store implementation.
func stores(t *testing.T, f func(t *testing.T, s Store)) {
	t.Run("memory", func(t *testing.T) {
		s := NewMemoryStore()
		defer s.Close()
		f(t, s)
	})
	t.Run("bolt", func(t *testing.T) {
		s := openBolt(t, filepath.Join(t.TempDir(), "g.db"))
		defer s.Close()
		f(t, s)
	})
	t.Run("bolt-wal", func(t *testing.T) {
		s, err := OpenBolt(filepath.Join(t.TempDir(), "g.db"), BoltOptions{WAL: true, CheckpointRecords: 7})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		f(t, s)
	})
}

func put1(soul, field string, v Value, state float64) Graph {
	g := Graph{}
	g.Set(soul, field, Field{Value: v, State: state})
	return g
}

func TestStoreBasics(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		if _, err := s.Get(ctx, "x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get unknown: %v", err)
		}
		if _, err := s.GetField(ctx, "x", "a"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetField unknown: %v", err)
		}
		g := Graph{}
		g.Set("hb", "peer1", Field{Link("hb/peer1"), 10})
		g.Set("hb/peer1", "beat", Field{Number(1), 10})
		g.Set("hb/peer1", "name", Field{String("alice"), 10})
		g.Set("hb/peer1", "on", Field{Bool(true), 10})
		g.Set("hb/peer1", "gone", Field{Null(), 10})
		acc, err := s.Merge(ctx, g)
		if err != nil || !acc.Equal(g) {
			t.Fatalf("Merge = %v, %v", acc, err)
		}
		// Same again: all lose (no-op).
		if acc, err := s.Merge(ctx, g); err != nil || len(acc) != 0 {
			t.Fatalf("re-Merge = %v, %v", acc, err)
		}
		// Partial acceptance: newer beat, older name.
		d := Graph{}
		d.Set("hb/peer1", "beat", Field{Number(2), 11})
		d.Set("hb/peer1", "name", Field{String("zed"), 9})
		acc, err = s.Merge(ctx, d)
		if err != nil || acc.Len() != 1 || acc["hb/peer1"].Fields["beat"].State != 11 {
			t.Fatalf("partial Merge = %s, %v", acc.AppendJSON(nil), err)
		}
		n, err := s.Get(ctx, "hb/peer1")
		if err != nil || len(n.Fields) != 4 || n.Fields["beat"].Value != Number(2) || n.Fields["name"].Value != String("alice") {
			t.Fatalf("Get = %v, %v", n, err)
		}
		n.Fields["beat"] = Field{} // a copy: must not affect the store
		f, err := s.GetField(ctx, "hb/peer1", "beat")
		if err != nil || f.State != 11 {
			t.Fatalf("GetField = %v, %v", f, err)
		}
		if _, err := s.GetField(ctx, "hb/peer1", "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetField missing field: %v", err)
		}
		// Souls with NUL bytes and prefix relations stay apart.
		for _, soul := range []string{"a", "a\x00", "a\x00b", "ab", "a\x01", "b"} {
			if _, err := s.Merge(ctx, put1(soul, "f\x00", String(soul), 1)); err != nil {
				t.Fatal(err)
			}
		}
		var souls []string
		if err := s.Scan(ctx, "a", func(n *Node) error {
			if len(n.Fields) != 1 || n.Fields["f\x00"].Value != String(n.Soul) {
				t.Errorf("scan node %q = %v", n.Soul, n.Fields)
			}
			souls = append(souls, n.Soul)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%q", souls); got != `["a" "a\x00" "a\x00b" "a\x01" "ab"]` {
			t.Fatalf("Scan order %s", got)
		}
		n, err = s.Get(ctx, "a\x00")
		if err != nil || len(n.Fields) != 1 {
			t.Fatalf("Get NUL soul: %v %v", n, err)
		}
		stop := errors.New("stop")
		if err := s.Scan(ctx, "", func(*Node) error { return stop }); err != stop {
			t.Fatalf("Scan error = %v", err)
		}
		if acc, err := s.Merge(ctx, Graph{}); err != nil || len(acc) != 0 {
			t.Fatalf("empty Merge = %v %v", acc, err)
		}
	})
}

// TestHasSoul: HasSoul agrees with Get for souls that exist, that do not,
// that are prefixes of stored souls, or hold a NUL byte; through DB, also
// for a store without SoulChecker.
func TestHasSoul(t *testing.T) {
	check := func(t *testing.T, has func(context.Context, string) (bool, error)) {
		ctx := context.Background()
		for soul, want := range map[string]bool{"a/b": true, "a": false, "a/": false, "a/bc": false, "x\x00y": true, "x": false, "": false} {
			got, err := has(ctx, soul)
			if err != nil || got != want {
				t.Errorf("HasSoul(%q) = %v, %v; want %v", soul, got, err, want)
			}
		}
	}
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		for _, g := range []Graph{put1("a/b", "f", Number(1), 1), put1("x\x00y", "", Null(), 2)} {
			if _, err := s.Merge(ctx, g); err != nil {
				t.Fatal(err)
			}
		}
		check(t, s.(SoulChecker).HasSoul)
		check(t, NewDB(getOnly{s}, DBConfig{}).HasSoul)
		if bs, ok := s.(*BoltStore); ok {
			if err := bs.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			check(t, bs.HasSoul) // from the file, the overlay emptied
		}
	})
}

// getOnly hides every method of a Store but Store's own.
type getOnly struct{ Store }

func TestStoreScanPages(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		g := Graph{}
		for i := range 3*scanPage + 7 {
			g.Set(fmt.Sprintf("p/%05d", i), "a", Field{Number(float64(i)), 1})
			g.Set(fmt.Sprintf("p/%05d", i), "b", Field{Number(float64(i)), 1})
		}
		g.Set("q", "a", Field{Null(), 1})
		if _, err := s.Merge(ctx, g); err != nil {
			t.Fatal(err)
		}
		i := 0
		if err := s.Scan(ctx, "p/", func(n *Node) error {
			if n.Soul != fmt.Sprintf("p/%05d", i) || len(n.Fields) != 2 {
				t.Fatalf("node %d = %s %v", i, n.Soul, n.Fields)
			}
			i++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if i != 3*scanPage+7 {
			t.Fatalf("scanned %d", i)
		}
	})
}

// TestStoresAgree merges random updates into both stores, in batches, and
// compares the graphs and the accepted sets.
func TestStoresAgree(t *testing.T) {
	ctx := context.Background()
	mem := NewMemoryStore()
	bs := openBolt(t, filepath.Join(t.TempDir(), "g.db"))
	defer bs.Close()
	r := rand.New(rand.NewSource(7))
	for range 300 {
		g := Graph{}
		for _, u := range randomUpdates(r, 1+r.Intn(5)) {
			g.Set(u.soul, u.field, u.f)
		}
		a1, err1 := mem.Merge(ctx, g)
		a2, err2 := bs.Merge(ctx, g)
		if err1 != nil || err2 != nil || !a1.Equal(a2) {
			t.Fatalf("accepted differ: %s vs %s (%v %v)", a1.AppendJSON(nil), a2.AppendJSON(nil), err1, err2)
		}
	}
	if a, b := snapshot(t, mem), snapshot(t, bs); !a.Equal(b) {
		t.Fatalf("graphs differ:\n%s\n%s", a.AppendJSON(nil), b.AppendJSON(nil))
	}
}

func TestBoltReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "g.db")
	s := openBolt(t, path)
	r := rand.New(rand.NewSource(3))
	for range 100 {
		g := Graph{}
		for _, u := range randomUpdates(r, 4) {
			g.Set(u.soul, u.field, u.f)
		}
		if _, err := s.Merge(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshot(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Merge(ctx, put1("a", "b", Null(), 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Merge after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	s = openBolt(t, path)
	defer s.Close()
	if after := snapshot(t, s); !after.Equal(before) || len(after) == 0 {
		t.Fatalf("reopen changed the graph:\n%s\n%s", before.AppendJSON(nil), after.AppendJSON(nil))
	}
}

func TestBoltConcurrentMerges(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "g.db")
	s := openBolt(t, path)
	const writers, each = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				g := Graph{}
				g.Set(fmt.Sprintf("w%d", w), fmt.Sprintf("f%d", i), Field{Number(float64(i)), 1})
				g.Set("shared", fmt.Sprintf("w%d", w), Field{Number(float64(i)), float64(1 + i)})
				acc, err := s.Merge(ctx, g)
				if err != nil || acc.Len() != 2 {
					errs <- fmt.Errorf("writer %d merge %d: %v %v", w, i, acc, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Merges != writers*each || st.Accepted != 2*writers*each {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("%d merges in %d commits (max batch %d)", st.Merges, st.Commits, st.MaxBatch)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openBolt(t, path)
	defer s.Close()
	g := snapshot(t, s)
	for w := range writers {
		if n := g[fmt.Sprintf("w%d", w)]; n == nil || len(n.Fields) != each {
			t.Fatalf("writer %d: %v", w, n)
		}
		if f := g["shared"].Fields[fmt.Sprintf("w%d", w)]; f.State != each {
			t.Fatalf("shared w%d = %v", w, f)
		}
	}
}

// TestBoltFailureIsSticky breaks the file under a running store: the
// failed commit must fail its merge and every later one.
func TestBoltFailureIsSticky(t *testing.T) {
	ctx := context.Background()
	var infos []CommitInfo
	var mu sync.Mutex
	// No timed checkpoint (GRAPH_WAL=1): it would rotate s.wal.f under us.
	s, err := OpenBolt(filepath.Join(t.TempDir(), "g.db"), BoltOptions{CheckpointInterval: time.Hour, OnCommit: func(ci CommitInfo) {
		mu.Lock()
		infos = append(infos, ci)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Merge(ctx, put1("a", "b", Null(), 1)); err != nil {
		t.Fatal(err)
	}
	if s.wal != nil {
		s.wal.f.Close() // simulate an I/O failure: every log write now fails
	} else {
		s.db.Close() // simulate an I/O failure: every transaction now fails
	}
	for i := range 3 {
		if _, err := s.Merge(ctx, put1("a", "b", Null(), float64(2+i))); !errors.Is(err, ErrStoreFailed) {
			t.Fatalf("merge %d after failure: %v", i, err)
		}
	}
	if st := s.Stats(); st.Failed == nil || st.Commits != 1 {
		t.Fatalf("stats %+v", st)
	}
	mu.Lock()
	if len(infos) != 2 || infos[0].Err != nil || infos[1].Err == nil {
		t.Fatalf("commit infos %+v", infos)
	}
	mu.Unlock()
	s.Close()
}

func TestBoltMergeContext(t *testing.T) {
	s := openBolt(t, filepath.Join(t.TempDir(), "g.db"))
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Merge(ctx, put1("a", "b", Null(), 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled ctx: %v", err)
	}
	big := Graph{}
	big.Set(strings.Repeat("s", 20000), "f", Field{Null(), 1})
	if _, err := s.Merge(context.Background(), big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge key: %v", err)
	}
}

// TestBoltCrashChild is the child process of TestBoltCrash; it does nothing
// unless GRAPH_CRASH_CHILD is set.
func TestBoltCrashChild(t *testing.T) {
	path := os.Getenv("GRAPH_CRASH_CHILD")
	if path == "" {
		t.Skip("child of TestBoltCrash only")
	}
	// With the log (GRAPH_WAL=1), checkpoint often and use small segments,
	// so that kills land during checkpoints and segment changes too.
	walSegmentBytes = 16 << 10
	s, err := OpenBolt(path, BoltOptions{CheckpointRecords: 16, CheckpointInterval: 20 * time.Millisecond})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				soul, field := fmt.Sprintf("%s/w%d", os.Getenv("GRAPH_CRASH_ROUND"), w), fmt.Sprintf("f%d", i)
				if _, err := s.Merge(context.Background(), put1(soul, field, Number(float64(i)), float64(i+1))); err != nil {
					fmt.Println("error", err)
					os.Exit(1)
				}
				mu.Lock() // one line per write(2), whole lines only
				fmt.Fprintf(out, "ack %s %s %d\n", soul, field, i+1)
				out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestBoltCrash kills a writing child process with SIGKILL at a random
// point and checks that every merge it acknowledged survived, without and
// with the write-ahead log.
func TestBoltCrash(t *testing.T) {
	for _, wal := range []string{"0", "1"} {
		t.Run("wal="+wal, func(t *testing.T) { testBoltCrash(t, wal) })
	}
}

func testBoltCrash(t *testing.T, wal string) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewSource(seed))
	iterations := 3
	if raceEnabled {
		iterations = 1 // the child is a race binary too: slow
	}
	for iter := range iterations {
		path := filepath.Join(t.TempDir(), "crash.db")
		acked := map[string]float64{}
		for round := range 2 { // the second round writes on top of recovered data
			cmd := exec.Command(exe, "-test.run=^TestBoltCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), "GRAPH_CRASH_CHILD="+path, fmt.Sprintf("GRAPH_CRASH_ROUND=r%d", round), "GRAPH_WAL="+wal)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			killAt := 200 + r.Intn(2000)
			sc := bufio.NewScanner(stdout)
			n := 0
			for sc.Scan() {
				line := sc.Text()
				if strings.HasPrefix(line, "error") {
					t.Fatalf("child: %s", line)
				}
				parts := strings.Fields(line)
				if len(parts) != 4 || parts[0] != "ack" {
					continue
				}
				state, _ := strconv.ParseFloat(parts[3], 64)
				acked[parts[1]+"\x00"+parts[2]] = state
				if n++; n == killAt {
					cmd.Process.Kill() // SIGKILL; lines already written are still read
				}
			}
			cmd.Wait()
			if n < killAt {
				t.Fatalf("child stopped after %d acks", n)
			}
			s := openBolt(t, path)
			g := snapshot(t, s)
			for k, state := range acked {
				soul, field, _ := strings.Cut(k, "\x00")
				if f, ok := g[soul].Fields[field]; !ok || f.State < state {
					t.Fatalf("iteration %d round %d: acked %s/%s@%v lost (have %v)", iter, round, soul, field, state, f)
				}
			}
			t.Logf("iteration %d round %d: %d acked, %d fields recovered", iter, round, len(acked), g.Len())
			s.Close()
		}
	}
}

// benchMerges measures durable merges of a 2-field heartbeat-like put from
// `writers` goroutines.
func benchMerges(b *testing.B, s Store, writers int) {
	ctx := context.Background()
	var next sync.Mutex
	i := 0
	take := func() (int, bool) {
		next.Lock()
		defer next.Unlock()
		if i >= b.N {
			return 0, false
		}
		i++
		return i, true
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			soul := fmt.Sprintf("bench/w%d", w)
			for {
				n, ok := take()
				if !ok {
					return
				}
				g := Graph{}
				g.Set(soul, "beat", Field{Number(float64(n)), float64(n)})
				g.Set(soul, "tick", Field{String("t"), float64(n)})
				if _, err := s.Merge(ctx, g); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "acks/s")
}

func BenchmarkMemoryStoreMerge(b *testing.B) {
	s := NewMemoryStore()
	benchMerges(b, s, 1)
}

// BenchmarkBoltStoreMerge reports durable (fsynced) acknowledged merges
// per second; each merge returns only after its commit.
func BenchmarkBoltStoreMerge(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := openBolt(b, filepath.Join(b.TempDir(), "g.db"))
			defer s.Close()
			benchMerges(b, s, writers)
			st := s.Stats()
			b.ReportMetric(float64(st.Merges)/float64(max(st.Commits, 1)), "merges/commit")
		})
	}
}

// TestBoltCloseDrains queues many asynchronous merges and closes at once:
// every merge is answered with success and present after reopening.
func TestBoltCloseDrains(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	s, err := OpenBolt(path, BoltOptions{QueueLen: 64, MaxBatch: 8})
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	var answered sync.WaitGroup
	answered.Add(n)
	var failed sync.Map
	for i := range n {
		s.MergeAsync(context.Background(), put1("d", fmt.Sprint(i), Number(float64(i)), 1), nil, func(acc Graph, err error) {
			if err != nil || acc.Len() != 1 {
				failed.Store(i, err)
			}
			answered.Done()
		})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	answered.Wait()
	failed.Range(func(k, v any) bool { t.Errorf("merge %v: %v", k, v); return true })
	s = openBolt(t, path)
	defer s.Close()
	if node, err := s.Get(context.Background(), "d"); err != nil || len(node.Fields) != n {
		t.Fatalf("after reopen: %v", err)
	}
	if st := s.Stats(); st.QueueDepth != 0 {
		t.Fatalf("stats %+v", st)
	}
}
