package graph

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/internal/clock"
)

type note struct {
	g      Graph
	origin any
}

func newTestDB(t *testing.T, cfg DBConfig) (*DB, *clock.Fake, chan note) {
	t.Helper()
	fc := clock.NewFake(epoch)
	cfg.Clock = fc
	db := NewDB(NewMemoryStore(), cfg)
	t.Cleanup(func() { db.Close(); db.Store().Close() })
	notes := make(chan note, 100)
	db.Subscribe(func(g Graph, origin any) { notes <- note{g, origin} })
	return db, fc, notes
}

func waitNote(t *testing.T, notes chan note) note {
	t.Helper()
	select {
	case n := <-notes:
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("no notification")
		return note{}
	}
}

func noNote(t *testing.T, notes chan note) {
	t.Helper()
	select {
	case n := <-notes:
		t.Fatalf("unexpected notification %s", n.g.AppendJSON(nil))
	default:
	}
}

func nowMs() float64 { return float64(epoch.UnixMilli()) }

func TestDBPutNow(t *testing.T) {
	db, _, notes := newTestDB(t, DBConfig{})
	ctx := context.Background()
	res, err := db.Put(ctx, put1("hb", "beat", Number(1), nowMs()), "peerA")
	if err != nil || res.Accepted.Len() != 1 || res.Deferred != 0 || len(res.Refused) != 0 {
		t.Fatalf("Put = %+v, %v", res, err)
	}
	n := waitNote(t, notes)
	if n.origin != "peerA" || n.g.Len() != 1 {
		t.Fatalf("note %+v", n)
	}
	// Losing HAM is neither accepted nor refused, and not notified.
	res, err = db.Put(ctx, put1("hb", "beat", Number(0), nowMs()-1), "peerB")
	if err != nil || len(res.Accepted) != 0 || len(res.Refused) != 0 {
		t.Fatalf("old Put = %+v, %v", res, err)
	}
	noNote(t, notes)
	f, err := db.GetField(ctx, "hb", "beat")
	if err != nil || f.Value != Number(1) {
		t.Fatalf("GetField = %v %v", f, err)
	}
	// Invalid states built by code are refused, not stored.
	g := put1("hb", "x", Null(), -1)
	g.Set("hb", "y", Field{Null(), nowMs() + 1e9})
	res, err = db.Put(ctx, g, nil)
	if err != nil || len(res.Refused) != 2 || len(res.Accepted) != 0 {
		t.Fatalf("bad states = %+v, %v", res, err)
	}
}

// TestDBDeferral is gun.md §2.3's last vector: a state 1.5 s ahead is not
// visible at once and lands when the clock gets there.
func TestDBDeferral(t *testing.T) {
	db, fc, notes := newTestDB(t, DBConfig{})
	ctx := context.Background()
	g := put1("hb", "later", String("later"), nowMs()+1500)
	g.Set("hb", "now", Field{String("now"), nowMs()})
	res, err := db.Put(ctx, g, "peerA")
	if err != nil || res.Deferred != 1 || res.Accepted.Len() != 1 {
		t.Fatalf("Put = %+v, %v", res, err)
	}
	if n := waitNote(t, notes); n.g.Len() != 1 || n.g["hb"].Fields["now"].Value != String("now") {
		t.Fatalf("first note %s", n.g.AppendJSON(nil))
	}
	if _, err := db.GetField(ctx, "hb", "later"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deferred field visible at once: %v", err)
	}
	if db.Deferred() != 1 || fc.Armed() != 1 {
		t.Fatalf("deferred %d, timers %d", db.Deferred(), fc.Armed())
	}
	fc.Advance(1499 * time.Millisecond)
	noNote(t, notes)
	fc.Advance(time.Millisecond)
	n := waitNote(t, notes)
	if n.origin != "peerA" || n.g["hb"].Fields["later"].State != nowMs()+1500 {
		t.Fatalf("landing note %+v", n)
	}
	if f, err := db.GetField(ctx, "hb", "later"); err != nil || f.Value != String("later") {
		t.Fatalf("after landing: %v %v", f, err)
	}
	if db.Deferred() != 0 || fc.Armed() != 0 {
		t.Fatalf("deferred %d, timers %d", db.Deferred(), fc.Armed())
	}
}

func TestDBDeferralOrderAndGroups(t *testing.T) {
	db, fc, notes := newTestDB(t, DBConfig{})
	ctx := context.Background()
	// Three puts, due at +300, +100 (two fields) and +200 ms.
	for _, p := range []struct {
		origin string
		ahead  float64
		fields []string
	}{{"c", 300, []string{"c"}}, {"a", 100, []string{"a1", "a2"}}, {"b", 200, []string{"b"}}} {
		g := Graph{}
		for _, f := range p.fields {
			g.Set("n", f, Field{String(f), nowMs() + p.ahead})
		}
		if res, err := db.Put(ctx, g, p.origin); err != nil || res.Deferred != len(p.fields) {
			t.Fatalf("Put %s = %+v %v", p.origin, res, err)
		}
	}
	if fc.Armed() != 1 {
		t.Fatalf("%d timers armed, want one for the whole queue", fc.Armed())
	}
	for _, want := range []struct {
		origin string
		fields int
	}{{"a", 2}, {"b", 1}, {"c", 1}} {
		fc.Advance(100 * time.Millisecond)
		n := waitNote(t, notes)
		if n.origin != want.origin || n.g.Len() != want.fields {
			t.Fatalf("got %v %s, want %s", n.origin, n.g.AppendJSON(nil), want.origin)
		}
	}
}

func TestDBFutureWindow(t *testing.T) {
	db, fc, notes := newTestDB(t, DBConfig{MaxFuture: 30 * time.Second})
	ctx := context.Background()
	for _, ahead := range []float64{30001, 24 * 3600 * 1000} {
		res, err := db.Put(ctx, put1("n", "f", Null(), nowMs()+ahead), nil)
		if err != nil || len(res.Refused) != 1 || !errors.Is(res.Refused[0].Err, ErrFutureState) || res.Deferred != 0 {
			t.Fatalf("+%v ms: %+v %v", ahead, res, err)
		}
		if got := res.Refused[0].Error(); got != `invalid: state in future: soul "n" field "f"` {
			t.Fatalf("error text %q", got)
		}
	}
	if db.Deferred() != 0 || fc.Armed() != 0 {
		t.Fatalf("refused future states left state behind: %d deferred, %d timers", db.Deferred(), fc.Armed())
	}
	// Exactly at the edge of the window is deferred.
	if res, _ := db.Put(ctx, put1("n", "f", Null(), nowMs()+30000), nil); res.Deferred != 1 {
		t.Fatalf("edge of window: %+v", res)
	}
	noNote(t, notes)
}

func TestDBDeferQueueBound(t *testing.T) {
	db, _, _ := newTestDB(t, DBConfig{MaxDeferred: 3})
	g := Graph{}
	for i := range 5 {
		g.Set("n", fmt.Sprintf("f%d", i), Field{Null(), nowMs() + 100})
	}
	res, err := db.Put(context.Background(), g, nil)
	if err != nil || res.Deferred != 3 || len(res.Refused) != 2 {
		t.Fatalf("Put = %+v, %v", res, err)
	}
	for _, r := range res.Refused {
		if !errors.Is(r.Err, ErrDeferFull) || r.Error()[:len("rate-limited: ")] != "rate-limited: " {
			t.Fatalf("refusal %v", r)
		}
	}
}

// TestDBDeferralClockBack: when the wall clock is set back while a field
// waits, the field is re-checked when its timer fires and waits on.
func TestDBDeferralClockBack(t *testing.T) {
	db, fc, notes := newTestDB(t, DBConfig{})
	ctx := context.Background()
	if res, _ := db.Put(ctx, put1("n", "f", Null(), nowMs()+1000), nil); res.Deferred != 1 {
		t.Fatalf("%+v", res)
	}
	fc.Set(epoch.Add(-10 * time.Second))
	fc.Advance(time.Second) // timer fires; the wall clock says epoch-9s
	if err := fc.BlockUntilContext(ctxTimeout(t), 1); err != nil {
		t.Fatal("not re-armed:", err)
	}
	noNote(t, notes)
	if db.Deferred() != 1 {
		t.Fatalf("deferred %d", db.Deferred())
	}
	fc.Advance(10 * time.Second)
	waitNote(t, notes)
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDBCloseDropsDeferred(t *testing.T) {
	fc := clock.NewFake(epoch)
	store := NewMemoryStore()
	db := NewDB(store, DBConfig{Clock: fc})
	if res, _ := db.Put(context.Background(), put1("n", "f", Null(), nowMs()+1000), nil); res.Deferred != 1 {
		t.Fatalf("%+v", res)
	}
	db.Close()
	if fc.Armed() != 0 {
		t.Fatal("timer left armed")
	}
	fc.Advance(2 * time.Second)
	if _, err := store.GetField(context.Background(), "n", "f"); !errors.Is(err, ErrNotFound) {
		t.Fatal("deferred field landed after Close")
	}
	if _, err := db.Put(context.Background(), put1("n", "g", Null(), nowMs()), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
	done := make(chan error, 1)
	db.PutAsync(context.Background(), put1("n", "g", Null(), nowMs()), nil, func(_ PutResult, err error) { done <- err })
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("PutAsync after Close: %v", err)
	}
	db.Close()
}

func TestDBSubscribeCancel(t *testing.T) {
	db, _, notes := newTestDB(t, DBConfig{})
	var mu sync.Mutex
	calls := 0
	cancel := db.Subscribe(func(Graph, any) { mu.Lock(); calls++; mu.Unlock() })
	db.Put(context.Background(), put1("n", "a", Null(), 1), nil)
	cancel()
	cancel()
	db.Put(context.Background(), put1("n", "b", Null(), 1), nil)
	waitNote(t, notes)
	waitNote(t, notes)
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Fatalf("calls %d", calls)
	}
}

// TestDBNotifyOrder puts increasing states of one field from many
// goroutines (in windows, through PutAsync) into a BoltStore: the
// subscriber must see the accepted states of the field strictly
// increasing (commit order), and every put must be answered and durable.
func TestDBNotifyOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	store := openBolt(t, path)
	db := NewDB(store, DBConfig{Clock: clock.NewFake(epoch)})
	var mu sync.Mutex
	last := map[string]float64{}
	var bad []string
	db.Subscribe(func(g Graph, _ any) {
		mu.Lock()
		defer mu.Unlock()
		for soul, n := range g {
			for name, f := range n.Fields {
				k := soul + "/" + name
				if f.State <= last[k] {
					bad = append(bad, fmt.Sprintf("%s: %v after %v", k, f.State, last[k]))
				}
				last[k] = f.State
			}
		}
	})
	const writers, each, window = 8, 200, 32
	var wg sync.WaitGroup
	var acked sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			sem := make(chan struct{}, window)
			for i := range each {
				sem <- struct{}{}
				acked.Add(1)
				g := put1("shared", "f", Number(float64(w)), float64(1+i*writers+w))
				g.Set(fmt.Sprintf("own%d", w), fmt.Sprintf("f%d", i), Field{Bool(true), 1})
				db.PutAsync(context.Background(), g, w, func(res PutResult, err error) {
					if err != nil {
						errs <- err
					}
					<-sem
					acked.Done()
				})
			}
		})
	}
	wg.Wait()
	acked.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	mu.Lock()
	if len(bad) > 0 {
		t.Fatalf("notifications out of commit order: %v", bad[:min(len(bad), 5)])
	}
	mu.Unlock()
	st := store.Stats()
	t.Logf("%d merges in %d commits (max batch %d)", st.Merges, st.Commits, st.MaxBatch)
	db.Close()
	store.Close()
	store = openBolt(t, path)
	defer store.Close()
	g := snapshot(t, store)
	if f := g["shared"].Fields["f"]; f.State != writers*each {
		t.Fatalf("shared field %v", f)
	}
	for w := range writers {
		if n := g[fmt.Sprintf("own%d", w)]; n == nil || len(n.Fields) != each {
			t.Fatalf("writer %d lost puts", w)
		}
	}
}

// BenchmarkDBPutAsync measures durable puts through a DB over a BoltStore
// from 8 writers, each keeping a window of puts in flight (like 8 gun
// peers pushing through the relay).
func BenchmarkDBPutAsync(b *testing.B) {
	for _, window := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("writers=8/window=%d", window), func(b *testing.B) {
			store := openBolt(b, filepath.Join(b.TempDir(), "g.db"))
			defer store.Close()
			db := NewDB(store, DBConfig{})
			defer db.Close()
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
			for w := range 8 {
				wg.Go(func() {
					sem := make(chan struct{}, window)
					soul := fmt.Sprintf("bench/w%d", w)
					for {
						n, ok := take()
						if !ok {
							break
						}
						sem <- struct{}{}
						g := Graph{}
						state := db.Now()
						g.Set(soul, "beat", Field{Number(float64(n)), state})
						g.Set(soul, "tick", Field{String("t"), state})
						db.PutAsync(context.Background(), g, w, func(_ PutResult, err error) {
							if err != nil {
								b.Error(err)
							}
							<-sem
						})
					}
					for range window {
						sem <- struct{}{}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "acks/s")
			st := store.Stats()
			b.ReportMetric(float64(st.Merges)/float64(max(st.Commits, 1)), "merges/commit")
		})
	}
}

func TestDBRefusesMetaField(t *testing.T) {
	db, _, _ := newTestDB(t, DBConfig{})
	g := put1("n", "_", String("x"), 1)
	g.Set("n", "ok", Field{Null(), 1})
	res, err := db.Put(context.Background(), g, nil)
	if err != nil || len(res.Refused) != 1 || !errors.Is(res.Refused[0].Err, ErrBadNode) || res.Accepted.Len() != 1 {
		t.Fatalf("Put = %+v, %v", res, err)
	}
	if got := string(g.AppendJSON(nil)); got != `{"n":{"_":{"#":"n",">":{"ok":1}},"ok":null}}` {
		t.Fatalf("AppendJSON = %s", got)
	}
}
