package graph

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/krestianstvo/luminary/internal/sched"
)

// ErrNotFound is returned by Get and GetField for an unknown soul or field.
var ErrNotFound = errors.New("graph: not found")

// ErrClosed is returned by the operations of a closed store or DB.
var ErrClosed = errors.New("graph: closed")

// Store keeps a graph durably. Implementations are safe for concurrent use.
type Store interface {
	// Get returns a copy of the node named soul, or ErrNotFound.
	Get(ctx context.Context, soul string) (*Node, error)
	// GetField returns one field, or ErrNotFound if the soul or the field
	// is unknown.
	GetField(ctx context.Context, soul, field string) (Field, error)
	// Merge applies diff field by field with HAM against the stored graph,
	// atomically, without a future check (the caller, normally DB, did
	// it), and returns only the accepted fields. A durable store returns
	// only after the accepted data is durable. Merge does not modify diff;
	// the returned graph may share *Node values with diff (when all fields
	// of a node were accepted), so treat both as read-only afterwards.
	// If ctx ends before the merge is committed, Merge returns ctx.Err()
	// and the merge may or may not have been applied.
	Merge(ctx context.Context, diff Graph) (accepted Graph, err error)
	// Scan calls fn with a copy of every node whose soul starts with
	// prefix, in ascending byte order of souls, until fn returns an error,
	// which Scan then returns.
	Scan(ctx context.Context, prefix string, fn func(*Node) error) error
	// Close releases the store. Merges already queued complete first.
	Close() error
}

// derivedKey marks a context made by Derived.
type derivedKey struct{}

// Derived returns a context that marks the merges made with it as derived
// data: data the caller keeps durably elsewhere and writes again after a
// crash (the time service's publications, which it rebuilds from its
// ordered log at start-up). A store with a write-ahead log acknowledges
// such a merge once it is written and visible, without an fsync of its
// own; the next synced commit, a segment change or a checkpoint makes it
// durable, in order. Other stores treat it as any merge.
func Derived(ctx context.Context) context.Context {
	return context.WithValue(ctx, derivedKey{}, true)
}

// isDerived reports whether ctx was made by Derived.
func isDerived(ctx context.Context) bool {
	v, _ := ctx.Value(derivedKey{}).(bool)
	return v
}

// SoulChecker is implemented by stores that can tell, more cheaply than
// by reading the node, whether they hold any field of a soul.
type SoulChecker interface {
	// HasSoul reports whether the store holds at least one field of soul.
	HasSoul(ctx context.Context, soul string) (bool, error)
}

// MergeNotifier is implemented by stores that can report commits in their
// order. DB uses it so that subscribers see merges in commit order even
// when many Puts commit in one batch.
type MergeNotifier interface {
	// MergeNotify is Merge that also calls committed with the accepted
	// fields (if any) once they are durable, in commit order across all
	// callers, before MergeNotify returns. committed must not block.
	MergeNotify(ctx context.Context, diff Graph, committed func(accepted Graph)) (Graph, error)
}

// AsyncMerger is implemented by stores that can merge without blocking the
// caller until the commit, so that one goroutine can keep many merges in
// flight (and a group-committing store can batch them).
type AsyncMerger interface {
	// MergeAsync is MergeNotify without waiting: it blocks only while the
	// store's queue is full (or until ctx ends), then returns; done is
	// called exactly once with the result of Merge, after committed, from
	// the store's writer (or synchronously, for errors found before
	// queueing). committed may be nil. Neither callback may block.
	MergeAsync(ctx context.Context, diff Graph, committed func(accepted Graph), done func(accepted Graph, err error))
}

// MemoryStore is a Store in memory, for tests and for relays that keep no
// history. The zero value is not usable; call NewMemoryStore or
// NewBoundedMemoryStore.
type MemoryStore struct {
	mu     sync.RWMutex
	nodes  map[string]*Node
	closed bool

	// Eviction (NewBoundedMemoryStore): evictable souls in the order of
	// their first write, the approximate bytes each holds, their total.
	opt     MemoryOptions
	fifo    []string
	head    int // fifo[head:] are live
	sizes   map[string]int
	bytes   int64
	evicted uint64
}

// MemoryOptions bound a MemoryStore's evictable souls.
type MemoryOptions struct {
	// Evictable names the souls that may be dropped, oldest first (by
	// their first write), once together they hold more than MaxBytes.
	// Other souls are kept until Close.
	Evictable func(soul string) bool
	// MaxBytes bounds the approximate memory of evictable souls: soul and
	// field names, values, and a fixed overhead per field. It must be
	// positive.
	MaxBytes int64
}

// fieldOverhead and soulOverhead approximate the memory of a field beyond
// its name and value (its share of the node's map: slot, Field, string
// headers) and of a soul beyond its name (the Node, its map's header, the
// store's own entries for it). Measured against the Go heap on nodes of
// nine fields with short values, the estimate is within 5%.
const (
	fieldOverhead = 104
	soulOverhead  = 256
)

var (
	_ Store         = (*MemoryStore)(nil)
	_ MergeNotifier = (*MemoryStore)(nil)
	_ AsyncMerger   = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{nodes: make(map[string]*Node)}
}

// NewBoundedMemoryStore returns an empty MemoryStore that drops its
// evictable souls, oldest first, to keep them within opt.MaxBytes. A
// dropped soul is gone as if never written: Get answers ErrNotFound and a
// later write starts it afresh (so HAM judges that write against nothing).
func NewBoundedMemoryStore(opt MemoryOptions) (*MemoryStore, error) {
	if opt.Evictable == nil || opt.MaxBytes <= 0 {
		return nil, errors.New("graph: a bounded memory store needs Evictable and a positive MaxBytes")
	}
	return &MemoryStore{nodes: make(map[string]*Node), opt: opt, sizes: make(map[string]int)}, nil
}

// Evicted returns how many souls the store has dropped to stay within its
// bound, and the approximate bytes its evictable souls hold now.
func (m *MemoryStore) Evicted() (souls uint64, bytes int64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.evicted, m.bytes
}

// Get implements Store.
func (m *MemoryStore) Get(_ context.Context, soul string) (*Node, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	n, ok := m.nodes[soul]
	if !ok {
		return nil, ErrNotFound
	}
	return n.Clone(), nil
}

// HasSoul implements SoulChecker.
func (m *MemoryStore) HasSoul(_ context.Context, soul string) (bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return false, ErrClosed
	}
	n, ok := m.nodes[soul]
	return ok && len(n.Fields) > 0, nil
}

// GetField implements Store.
func (m *MemoryStore) GetField(_ context.Context, soul, field string) (Field, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return Field{}, ErrClosed
	}
	if n, ok := m.nodes[soul]; ok {
		if f, ok := n.Fields[field]; ok {
			return f, nil
		}
	}
	return Field{}, ErrNotFound
}

// Merge implements Store.
func (m *MemoryStore) Merge(ctx context.Context, diff Graph) (Graph, error) {
	return m.MergeNotify(ctx, diff, nil)
}

// MergeNotify implements MergeNotifier.
func (m *MemoryStore) MergeNotify(ctx context.Context, diff Graph, committed func(Graph)) (Graph, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	accepted := mergeInto(diff, func(soul, field string) (Field, bool) {
		if n, ok := m.nodes[soul]; ok {
			f, ok := n.Fields[field]
			return f, ok
		}
		return Field{}, false
	}, func(soul, field string, f Field) {
		n, ok := m.nodes[soul]
		if !ok {
			n = NewNode(soul)
			m.nodes[soul] = n
		}
		if m.sizes != nil && m.opt.Evictable(soul) {
			m.account(soul, n, field, f)
		}
		n.Fields[field] = f
	})
	m.evict()
	if committed != nil && len(accepted) > 0 {
		committed(accepted)
	}
	return accepted, nil
}

// account records the size change of writing f as field of soul's node n
// (before the write).
func (m *MemoryStore) account(soul string, n *Node, field string, f Field) {
	cur, known := m.sizes[soul]
	if !known {
		m.fifo = append(m.fifo, soul)
		cur = len(soul) + soulOverhead
	}
	delta := f.Value.size()
	if old, ok := n.Fields[field]; ok {
		delta -= old.Value.size()
	} else {
		delta += len(field) + fieldOverhead
	}
	m.sizes[soul] = cur + delta
	m.bytes += int64(delta)
	if !known {
		m.bytes += int64(len(soul) + soulOverhead)
	}
}

// evict drops the oldest evictable souls while they hold more than the
// bound, and compacts the queue of them when most of it is spent.
func (m *MemoryStore) evict() {
	if m.sizes == nil {
		return
	}
	for m.bytes > m.opt.MaxBytes && m.head < len(m.fifo) {
		soul := m.fifo[m.head]
		m.fifo[m.head] = ""
		m.head++
		m.bytes -= int64(m.sizes[soul])
		delete(m.sizes, soul)
		delete(m.nodes, soul)
		m.evicted++
	}
	if m.head > 1024 && m.head*2 > len(m.fifo) {
		m.fifo = append(m.fifo[:0], m.fifo[m.head:]...)
		m.head = 0
	}
}

// MergeAsync implements AsyncMerger; a MemoryStore completes the merge
// before returning.
func (m *MemoryStore) MergeAsync(ctx context.Context, diff Graph, committed func(Graph), done func(Graph, error)) {
	done(m.MergeNotify(ctx, diff, committed))
}

// mergeInto runs HAM (without a future check) for every field of diff
// against cur, calls put for every accepted field, and returns the accepted
// fields. A node of diff whose fields were all accepted is shared, not
// copied.
func mergeInto(diff Graph, cur func(soul, field string) (Field, bool), put func(soul, field string, f Field)) Graph {
	var accepted Graph
	var names []string
	i := 0
	for soul, node := range diff {
		// A diff of thousands of nodes (a heartbeat round) yields now and
		// then (see internal/sched). The caller's lock is held meanwhile:
		// only readers of this store wait, not the goroutines a yield is for.
		sched.Yield(i)
		i++
		names = names[:0]
		for name, f := range node.Fields {
			c, ok := cur(soul, name)
			if HAM(math.Inf(1), f.State, c.State, f.Value, c.Value, ok) == Accept {
				put(soul, name, f)
				names = append(names, name)
			}
		}
		if len(names) == 0 {
			continue
		}
		part := node
		if len(names) < len(node.Fields) {
			part = &Node{Soul: soul, Fields: make(map[string]Field, len(names))}
			for _, name := range names {
				part.Fields[name] = node.Fields[name]
			}
		}
		if accepted == nil {
			accepted = make(Graph, len(diff))
		}
		accepted[soul] = part
	}
	return accepted
}

// Scan implements Store.
func (m *MemoryStore) Scan(ctx context.Context, prefix string, fn func(*Node) error) error {
	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return ErrClosed
	}
	var nodes []*Node
	for soul, n := range m.nodes {
		if strings.HasPrefix(soul, prefix) {
			nodes = append(nodes, n.Clone())
		}
	}
	m.mu.RUnlock()
	slices.SortFunc(nodes, func(a, b *Node) int { return strings.Compare(a.Soul, b.Soul) })
	for _, n := range nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(n); err != nil {
			return err
		}
	}
	return nil
}

// Close implements Store. The data is dropped.
func (m *MemoryStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.nodes, m.fifo, m.sizes = nil, nil, nil
	return nil
}
