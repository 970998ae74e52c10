package graph

import (
	"container/heap"
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/krestianstvo/luminary/internal/clock"
)

// Refusal reasons of DB.Put, reported per field in PutResult.Refused.
var (
	ErrFutureState = errors.New("invalid: state in future")
	ErrDeferFull   = errors.New("rate-limited: defer queue full")
)

// DBConfig configures a DB. Zero fields take the defaults given.
type DBConfig struct {
	// Clock is the time source (default clock.System()).
	Clock clock.Clock
	// MaxFuture is how far ahead of the local clock a state may be and
	// still be deferred (default 30 s). Later states are refused with
	// ErrFutureState: no timer and no memory is spent on them.
	MaxFuture time.Duration
	// MaxDeferred bounds the fields held back for the future (default
	// 10000); beyond it fields are refused with ErrDeferFull.
	MaxDeferred int
	// Logger receives failures of deferred merges (default: discard).
	Logger *slog.Logger
}

// PutResult tells what DB.Put did with each field of a diff.
type PutResult struct {
	// Accepted holds the fields that won HAM and are now stored (durably,
	// with a durable store).
	Accepted Graph
	// Deferred counts fields with states slightly in the future; they are
	// merged when the clock reaches their state (and then reported to
	// subscribers), or dropped if the DB is closed first.
	Deferred int
	// Refused lists fields refused before HAM (future beyond MaxFuture,
	// defer queue full, invalid state, field named "_"). Fields that lost
	// HAM are in none of the three.
	Refused []FieldError
}

// FieldError is a refusal of one field.
type FieldError struct {
	Soul  string
	Field string
	Err   error // ErrFutureState, ErrDeferFull, ErrBadState or ErrBadNode
}

func (e FieldError) Error() string {
	return e.Err.Error() + ": soul " + quote(e.Soul) + " field " + quote(e.Field)
}

func (e FieldError) Unwrap() error { return e.Err }

// DB is the graph as the relay and the heartbeat service use it: a Store
// plus Gun's handling of future states and change notification.
//
// Put applies HAM's future rule with the local StateClock: fields with a
// state beyond now+MaxFuture are refused, fields slightly ahead are held
// in a bounded queue and merged when due (one timer for the whole queue),
// and the rest go to the store at once. Subscribers hear about every
// accepted field, deferred ones included.
type DB struct {
	store Store
	cfg   DBConfig
	clk   clock.Clock
	sc    *StateClock
	log   *slog.Logger

	isClosed atomic.Bool // fast-path check for Put

	mu       sync.Mutex
	closed   bool
	deferred deferHeap
	seq      uint64      // tie-breaker and put id for deferred entries
	timer    clock.Timer // armed for deferred[0], or nil
	timerDue float64     // the due state timer is armed for
	landing  sync.WaitGroup
	ctx      context.Context // for deferred merges; canceled by Close
	cancel   context.CancelFunc

	subMu sync.Mutex
	subs  atomic.Pointer[[]*subscriber]
}

type subscriber struct {
	fn func(Graph, any)
}

// NewDB returns a DB over store. The DB does not own the store: close the
// DB first, then the store.
func NewDB(store Store, cfg DBConfig) *DB {
	if cfg.Clock == nil {
		cfg.Clock = clock.System()
	}
	if cfg.MaxFuture <= 0 {
		cfg.MaxFuture = 30 * time.Second
	}
	if cfg.MaxDeferred <= 0 {
		cfg.MaxDeferred = 10000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &DB{
		store:  store,
		cfg:    cfg,
		clk:    cfg.Clock,
		sc:     NewStateClock(cfg.Clock),
		log:    cfg.Logger,
		ctx:    ctx,
		cancel: cancel,
	}
}

// Now issues a new HAM state for a local write (see StateClock).
func (db *DB) Now() float64 { return db.sc.Now() }

// Store returns the underlying store.
func (db *DB) Store() Store { return db.store }

// Get returns a copy of the node named soul, or ErrNotFound.
func (db *DB) Get(ctx context.Context, soul string) (*Node, error) {
	return db.store.Get(ctx, soul)
}

// GetField returns one field, or ErrNotFound.
func (db *DB) GetField(ctx context.Context, soul, field string) (Field, error) {
	return db.store.GetField(ctx, soul, field)
}

// HasSoul reports whether the store holds any field of soul: through
// SoulChecker when the store has it, else by reading the node.
func (db *DB) HasSoul(ctx context.Context, soul string) (bool, error) {
	if sc, ok := db.store.(SoulChecker); ok {
		return sc.HasSoul(ctx, soul)
	}
	n, err := db.store.Get(ctx, soul)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil && len(n.Fields) > 0, err
}

// Scan calls fn for every node whose soul starts with prefix (see
// Store.Scan).
func (db *DB) Scan(ctx context.Context, prefix string, fn func(*Node) error) error {
	return db.store.Scan(ctx, prefix, fn)
}

// Deferred returns how many fields are waiting for their state to come due.
func (db *DB) Deferred() int {
	db.mu.Lock()
	defer db.mu.Unlock()
	return len(db.deferred)
}

// Put merges diff: fields from the future are deferred or refused (see
// DB), the rest are merged into the store with HAM. It returns once the
// accepted fields are durable. origin is passed to subscribers unchanged
// (the relay uses it to skip echoing a put to the peer it came from).
// Put does not modify diff; PutResult.Accepted may share nodes with it.
// The error is non-nil only if the store failed, the DB is closed or ctx
// ended; then the fields meant for the store may or may not be stored.
func (db *DB) Put(ctx context.Context, diff Graph, origin any) (PutResult, error) {
	res, now, err := db.prepare(diff, origin)
	if err != nil || len(now) == 0 {
		return res, err
	}
	res.Accepted, err = db.merge(ctx, now, origin)
	return res, err
}

// PutAsync is Put without waiting for the commit, so that one goroutine
// (a connection's reader) can keep many puts in flight and a
// group-committing store can batch them. It blocks only while the store's
// queue is full (backpressure) or until ctx ends. done is called exactly
// once with what Put would return: from the store's writer after the
// commit (after subscribers were notified), or synchronously when there
// is nothing to store or an error occurs early. done must not block (hand
// the ack to the connection's send queue).
func (db *DB) PutAsync(ctx context.Context, diff Graph, origin any, done func(PutResult, error)) {
	res, now, err := db.prepare(diff, origin)
	if err != nil || len(now) == 0 {
		done(res, err)
		return
	}
	am, ok := db.store.(AsyncMerger)
	if !ok {
		go func() {
			acc, err := db.merge(ctx, now, origin)
			res.Accepted = acc
			done(res, err)
		}()
		return
	}
	am.MergeAsync(ctx, now, func(acc Graph) { db.notify(acc, origin) }, func(acc Graph, err error) {
		res.Accepted = acc
		done(res, err)
	})
}

// prepare applies the future rule to diff and returns the part to merge
// now; refusals and deferrals are recorded in res.
func (db *DB) prepare(diff Graph, origin any) (res PutResult, now Graph, err error) {
	if db.isClosed.Load() {
		return res, nil, ErrClosed
	}
	if len(diff) == 0 {
		return res, nil, nil
	}
	machine := db.sc.machine()
	now = diff
	if maxState(diff) > machine {
		now, err = db.split(diff, machine, origin, &res)
	} else if !validStates(diff) {
		now = db.refuseBad(diff, &res)
	}
	return res, now, err
}

// maxState returns the largest state in g (NaN counts as larger).
func maxState(g Graph) float64 {
	m := math.Inf(-1)
	for _, n := range g {
		for _, f := range n.Fields {
			if !(f.State <= m) {
				m = f.State
			}
		}
	}
	return m
}

// validStates reports whether every field of g has a valid state and a
// name other than "_" (graphs from ParsePut always do; graphs built by
// code might not).
func validStates(g Graph) bool {
	for _, n := range g {
		for name, f := range n.Fields {
			if !ValidState(f.State) || name == "_" {
				return false
			}
		}
	}
	return true
}

// fieldErr returns the refusal for a field with an invalid state or name.
func fieldErr(name string, f Field) error {
	switch {
	case !ValidState(f.State):
		return ErrBadState
	case name == "_":
		return ErrBadNode
	}
	return nil
}

// refuseBad returns diff without the fields refused by fieldErr, recording
// them.
func (db *DB) refuseBad(diff Graph, res *PutResult) Graph {
	now := make(Graph, len(diff))
	for soul, n := range diff {
		for name, f := range n.Fields {
			if err := fieldErr(name, f); err != nil {
				res.Refused = append(res.Refused, FieldError{Soul: soul, Field: name, Err: err})
				continue
			}
			now.Set(soul, name, f)
		}
	}
	return now
}

// split sorts the fields of diff into the ones to merge now (returned),
// deferred ones (queued) and refused ones (recorded in res).
func (db *DB) split(diff Graph, machine float64, origin any, res *PutResult) (Graph, error) {
	limit := machine + float64(db.cfg.MaxFuture)/float64(time.Millisecond)
	now := make(Graph, len(diff))
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil, ErrClosed
	}
	db.seq++
	put := db.seq
	for soul, n := range diff {
		for name, f := range n.Fields {
			switch err := fieldErr(name, f); {
			case err != nil:
				res.Refused = append(res.Refused, FieldError{Soul: soul, Field: name, Err: err})
			case f.State <= machine:
				now.Set(soul, name, f)
			case f.State > limit:
				res.Refused = append(res.Refused, FieldError{Soul: soul, Field: name, Err: ErrFutureState})
			case len(db.deferred) >= db.cfg.MaxDeferred:
				res.Refused = append(res.Refused, FieldError{Soul: soul, Field: name, Err: ErrDeferFull})
			default:
				db.seq++
				heap.Push(&db.deferred, &deferred{due: f.State, seq: db.seq, put: put, soul: soul, field: name, f: f, origin: origin})
				res.Deferred++
			}
		}
	}
	if res.Deferred > 0 {
		db.armLocked(machine)
	}
	return now, nil
}

// armLocked arms the timer for the earliest deferred field, if it is not
// already armed for it. db.mu must be held.
func (db *DB) armLocked(machine float64) {
	if len(db.deferred) == 0 {
		if db.timer != nil {
			db.timer.Stop()
			db.timer = nil
		}
		return
	}
	due := db.deferred[0].due
	if db.timer != nil && db.timerDue == due {
		return
	}
	if db.timer != nil {
		db.timer.Stop()
	}
	wait := time.Duration(math.Ceil((due - machine) * float64(time.Millisecond)))
	db.timerDue = due
	db.timer = db.clk.AfterFunc(max(wait, 0), db.land)
}

// land merges the deferred fields that have come due.
func (db *DB) land() {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return
	}
	if db.timer != nil { // possibly a newer timer than the one firing now
		db.timer.Stop()
		db.timer = nil
	}
	machine := db.sc.machine()
	type group struct {
		g      Graph
		origin any
	}
	var groups []*group
	byPut := map[uint64]*group{}
	for len(db.deferred) > 0 && db.deferred[0].due <= machine {
		d := heap.Pop(&db.deferred).(*deferred)
		gr := byPut[d.put]
		if gr == nil {
			gr = &group{g: Graph{}, origin: d.origin}
			byPut[d.put] = gr
			groups = append(groups, gr)
		}
		gr.g.Set(d.soul, d.field, d.f)
	}
	db.armLocked(machine)
	db.landing.Add(1)
	db.mu.Unlock()
	defer db.landing.Done()
	for _, gr := range groups {
		if _, err := db.merge(db.ctx, gr.g, gr.origin); err != nil && db.ctx.Err() == nil {
			db.log.Error("graph: merging deferred fields failed", "err", err, "fields", gr.g.Len())
		}
	}
}

// merge merges g into the store and notifies subscribers in commit order.
func (db *DB) merge(ctx context.Context, g Graph, origin any) (Graph, error) {
	if mn, ok := db.store.(MergeNotifier); ok {
		return mn.MergeNotify(ctx, g, func(acc Graph) { db.notify(acc, origin) })
	}
	acc, err := db.store.Merge(ctx, g)
	if err == nil && len(acc) > 0 {
		db.notify(acc, origin)
	}
	return acc, err
}

func (db *DB) notify(acc Graph, origin any) {
	subs := db.subs.Load()
	if subs == nil {
		return
	}
	for _, s := range *subs {
		s.fn(acc, origin)
	}
}

// Subscribe registers fn to be called after every successful merge with
// the accepted fields (deferred ones included, when they land) and the
// origin given to Put. Calls come in commit order, from the store's
// writer (or under the MemoryStore's lock): fn must be quick, must not
// block and must not call the DB or its store (hand the graph to a
// channel or a bounded queue). The graph
// passed to fn is shared: fn must not modify it. cancel removes fn; after
// cancel returns fn is no longer called.
func (db *DB) Subscribe(fn func(accepted Graph, origin any)) (cancel func()) {
	s := &subscriber{fn: fn}
	db.subMu.Lock()
	defer db.subMu.Unlock()
	var list []*subscriber
	if cur := db.subs.Load(); cur != nil {
		list = append(list, *cur...)
	}
	list = append(list, s)
	db.subs.Store(&list)
	var once sync.Once
	return func() {
		once.Do(func() {
			db.subMu.Lock()
			defer db.subMu.Unlock()
			cur := *db.subs.Load()
			next := make([]*subscriber, 0, len(cur))
			for _, x := range cur {
				if x != s {
					next = append(next, x)
				}
			}
			db.subs.Store(&next)
		})
	}
}

// Close stops the deferral timer and drops the deferred fields (they were
// never acknowledged), and waits for deferred merges in progress. It does
// not close the store.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	db.isClosed.Store(true)
	if db.timer != nil {
		db.timer.Stop()
		db.timer = nil
	}
	db.deferred = nil
	db.cancel()
	db.mu.Unlock()
	db.landing.Wait()
	return nil
}

// deferred is one field waiting for its state to come due.
type deferred struct {
	due    float64
	seq    uint64
	put    uint64 // groups the fields of one Put
	soul   string
	field  string
	f      Field
	origin any
}

type deferHeap []*deferred

func (h deferHeap) Len() int { return len(h) }
func (h deferHeap) Less(i, j int) bool {
	if h[i].due != h[j].due {
		return h[i].due < h[j].due
	}
	return h[i].seq < h[j].seq
}
func (h deferHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *deferHeap) Push(x any)   { *h = append(*h, x.(*deferred)) }
func (h *deferHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return x
}
