package graph

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/krestianstvo/luminary/internal/clock"
)

// ErrStoreFailed is returned (wrapped around the cause) by every Merge of a
// BoltStore after a commit or fsync failed: the store stops accepting
// writes rather than retrying, because after a failed fsync the state of
// the file is unknown. Restart the process to recover from the file.
var ErrStoreFailed = errors.New("graph: store failed")

// BoltOptions configures a BoltStore. Zero fields take the defaults given.
type BoltOptions struct {
	// QueueLen bounds the merges waiting for the writer (default 4096).
	// When it is full, Merge blocks until there is room or its context
	// ends.
	QueueLen int
	// MaxBatch bounds how many queued merges one commit takes (default
	// 1024).
	MaxBatch int
	// OpenTimeout bounds the wait for the file lock held by another
	// process (default 5 s).
	OpenTimeout time.Duration
	// InitialMmapSize is passed to bbolt (default 0: bbolt's own). A size
	// larger than the file avoids remapping, which waits for readers.
	InitialMmapSize int
	// Logger receives the fatal commit error (default: discard).
	Logger *slog.Logger
	// OnCommit, if set, is called by the writer after every commit
	// attempt, for metrics (batch sizes, commit latency). It must not
	// block.
	OnCommit func(CommitInfo)
	// Volatile, if set, names souls whose fields are kept in memory only:
	// liveness data such as heartbeat ticks, rewritten many times a second
	// and worthless after a restart. The writer merges them under HAM in
	// the same order as everything else, Get, GetField and Scan serve them,
	// but they are never written to the file, cost no fsync, and are gone
	// after a restart. A batch of volatile writes alone commits nothing.
	Volatile func(soul string) bool
	// Transient, if set, names souls kept in memory only like Volatile
	// ones, but dropped oldest first (by their first write) once together
	// they hold more than TransientBytes: data another durable record
	// already keeps, written once per item and read soon after, such as
	// the inbound message nodes of the worlds a relay sequences (the
	// heartbeat log holds every sequenced message). A dropped soul reads
	// as never written.
	Transient func(soul string) bool
	// TransientBytes bounds the approximate memory of Transient souls
	// (default 8 MiB). They live on the Go heap, where every byte kept is
	// marked by each garbage collection: keep the bound to what readers
	// need (seconds of traffic), not to what memory allows.
	TransientBytes int64

	// WAL, if set, puts a write-ahead log in front of the bbolt file (in
	// the directory <path>-wal): a group commit appends one record to the
	// log and fdatasyncs it, and the merges are answered then — durable,
	// with one sequential write instead of a B-tree transaction. Accepted
	// fields stay in memory (and are served from there) until a checkpoint
	// writes them to the file in one larger synced bbolt transaction and
	// deletes the log segments it covers. OpenBolt replays any log left by
	// a crash, whether WAL is set or not. Segments are 16 MiB files,
	// zero-filled ahead of use (so that an append changes no metadata);
	// the log takes two of them (the current one and the next) plus those
	// not yet checkpointed.
	WAL bool
	// CheckpointInterval is how often a checkpoint runs while the log has
	// records (default 250 ms).
	CheckpointInterval time.Duration
	// CheckpointRecords starts a checkpoint after this many log records
	// (group commits) since the last one (default 4096).
	CheckpointRecords int
	// MaxOverlayBytes bounds the memory of accepted fields not yet in the
	// file, approximately (default 64 MiB). A checkpoint starts when half
	// of it is reached; if one is still running, the writer waits for it
	// (merges queue up, then block: backpressure).
	MaxOverlayBytes int
	// Clock times checkpoints (default: the system clock).
	Clock clock.Clock
}

// forceWAL turns BoltOptions.WAL on for every store; tests set it (from
// GRAPH_WAL=1) to run the whole suite with the log.
var forceWAL bool

// CommitInfo describes one group commit of a BoltStore.
type CommitInfo struct {
	Merges   int           // merge requests in the batch
	Fields   int           // fields judged
	Accepted int           // fields written
	Duration time.Duration // time spent in the transaction, fsync included
	Err      error         // non-nil if the commit failed (the store is then failed)
}

// BoltStats are cumulative counters of a BoltStore.
type BoltStats struct {
	Commits    uint64 // successful commits
	Merges     uint64 // merge requests committed
	Fields     uint64 // fields judged
	Accepted   uint64 // fields written
	QueueDepth int    // merges waiting for the writer now
	MaxBatch   int    // largest batch so far, in merges
	Failed     error  // the sticky failure, or nil

	// With BoltOptions.WAL: Commits counts log records; these count the
	// checkpoints into the file.
	Checkpoints    uint64        // checkpoints committed
	Stalls         uint64        // times the writer waited for a checkpoint (overlay full)
	LastCheckpoint time.Duration // duration of the latest checkpoint
	OverlayBytes   int           // approximate memory of fields not yet in the file
	Syncs          uint64        // fdatasyncs of the log (a batch of Derived merges has none)

	// With BoltOptions.Transient: souls dropped to stay within
	// TransientBytes, and the approximate memory of those kept.
	TransientEvicted uint64
	TransientBytes   int64
}

// BoltStore is a durable Store in a bbolt file.
//
// One writer goroutine applies merges: callers queue their diff, the
// writer takes everything queued (up to MaxBatch), runs HAM for each merge
// in queue order inside one read-write transaction, commits (bbolt fsyncs
// on commit) and only then answers every caller in the batch. So a Merge
// returns only after its data is on disk, and concurrent writers share
// fsyncs (group commit). Reads run concurrently in read transactions.
//
// With BoltOptions.WAL the writer does not run a bbolt transaction per
// batch: it runs HAM against the batch, then the fields accepted but not
// yet in the file (the overlay, in memory), then the file; appends one
// record with the accepted fields to a write-ahead log and fdatasyncs it
// (not when every merge of the batch is [Derived]: the next synced record,
// segment change or checkpoint carries such a record); adds them to the
// overlay; and answers. A checkpointer goroutine writes
// the overlay to the file in one synced transaction every
// CheckpointInterval (or CheckpointRecords records, or when the overlay
// reaches half of MaxOverlayBytes) and deletes the log it covers. Reads
// consult the overlay before the file. OpenBolt replays the log into the
// file (HAM makes replay idempotent); a torn last record is dropped, any
// other bad record fails the open with ErrWALCorrupt.
//
// On disk, bucket "graph" holds one record per field. The key is the soul,
// with each 0x00 byte written as 0x00 0xFF, then the separator 0x00 0x01,
// then the field name; so the keys of one soul are contiguous and souls
// sort in byte order. The value is the state (8 bytes, big-endian IEEE-754
// bits), one kind byte (0 null, 1 string, 2 bool, 3 number, 4 link) and
// the payload: nothing for null, 0 or 1 for a bool, 8 bytes of IEEE-754
// bits for a number, the raw bytes of a string or of a link's soul. Bucket
// "meta" holds "format" = "1".
type BoltStore struct {
	db  *bolt.DB
	opt BoltOptions
	log *slog.Logger

	mu      sync.RWMutex // guards closed against concurrent queue sends
	closed  bool
	queue   chan *mergeReq
	answers chan []*mergeReq // committed batches, for the answerer
	quit    chan struct{}
	exited  chan struct{} // closed when the writer and the answerer are done

	failed atomic.Pointer[error] // sticky commit failure

	vol *MemoryStore // fields of BoltOptions.Volatile souls

	commits, merges, fields, accepted atomic.Uint64
	maxBatch                          atomic.Int64
	checkpoints, stalls               atomic.Uint64
	lastCheckpoint                    atomic.Int64 // duration, ns

	// Writer-goroutine state.
	arena []byte // keys and values of the current transaction
	key   []byte // scratch key

	// Write-ahead log mode (nil/zero without BoltOptions.WAL).
	wal        *walWriter
	ov         *overlay
	ckptJobs   chan ckptJob  // writer -> checkpointer
	ckptDone   chan error    // checkpointer -> writer, one per job
	ckptExited chan struct{} // closed when the checkpointer is done
	force      chan chan error
	inflight   bool        // a checkpoint job is running (writer state)
	records    int         // log records since the last checkpoint (writer state)
	crashed    atomic.Bool // tests: Close as if the process died (no checkpoint)
	ckptHook   func()      // tests: runs at the start of each checkpoint
}

// ckptJob asks the checkpointer to write a frozen overlay to bbolt, then
// delete the log segments through seq.
type ckptJob struct {
	frozen map[string]map[string]Field
	seq    uint64
}

var (
	_ Store         = (*BoltStore)(nil)
	_ MergeNotifier = (*BoltStore)(nil)
	_ AsyncMerger   = (*BoltStore)(nil)
)

type mergeReq struct {
	ctx       context.Context
	diff      Graph
	committed func(Graph)
	accepted  Graph
	err       error
	done      chan struct{}      // closed when answered (synchronous merges)
	cb        func(Graph, error) // called when answered (MergeAsync)
	derived   bool               // ctx is Derived: no fsync of its own (log mode)
}

// finish answers the caller of r.
func (r *mergeReq) finish() {
	if r.cb != nil {
		r.cb(r.accepted, r.err)
		return
	}
	close(r.done)
}

var (
	graphBucket = []byte("graph")
	metaBucket  = []byte("meta")
	formatKey   = []byte("format")
	formatV1    = []byte("1")
)

// Value encoding kinds on disk.
const (
	diskNull byte = iota
	diskString
	diskBool
	diskNumber
	diskLink
)

// OpenBolt opens (creating if needed) the bbolt file at path and starts
// its writer. Data committed before a crash is recovered on open.
func OpenBolt(path string, opt BoltOptions) (*BoltStore, error) {
	if opt.QueueLen <= 0 {
		opt.QueueLen = 4096
	}
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = 1024
	}
	if opt.OpenTimeout <= 0 {
		opt.OpenTimeout = 5 * time.Second
	}
	if opt.CheckpointInterval <= 0 {
		opt.CheckpointInterval = 250 * time.Millisecond
	}
	if opt.CheckpointRecords <= 0 {
		opt.CheckpointRecords = 4096
	}
	if opt.MaxOverlayBytes <= 0 {
		opt.MaxOverlayBytes = 64 << 20
	}
	if opt.Clock == nil {
		opt.Clock = clock.System()
	}
	if opt.TransientBytes <= 0 {
		opt.TransientBytes = 8 << 20
	}
	vol := NewMemoryStore()
	if transient := opt.Transient; transient != nil {
		var err error
		vol, err = NewBoundedMemoryStore(MemoryOptions{Evictable: transient, MaxBytes: opt.TransientBytes})
		if err != nil {
			return nil, err
		}
		// Below, Volatile names every soul kept in memory.
		if volatile := opt.Volatile; volatile != nil {
			opt.Volatile = func(soul string) bool { return volatile(soul) || transient(soul) }
		} else {
			opt.Volatile = transient
		}
	}
	if forceWAL {
		opt.WAL = true
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         opt.OpenTimeout,
		NoFreelistSync:  true, // the freelist is rebuilt on open; fewer pages per commit
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: opt.InitialMmapSize,
	})
	if err != nil {
		return nil, fmt.Errorf("graph: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		switch f := meta.Get(formatKey); {
		case f == nil:
			if err := meta.Put(formatKey, formatV1); err != nil {
				return err
			}
		case !bytes.Equal(f, formatV1):
			return fmt.Errorf("unknown format %q", f)
		}
		_, err = tx.CreateBucketIfNotExists(graphBucket)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("graph: open %s: %w", path, err)
	}
	s := &BoltStore{
		db:      db,
		opt:     opt,
		log:     log,
		queue:   make(chan *mergeReq, opt.QueueLen),
		answers: make(chan []*mergeReq, 1),
		quit:    make(chan struct{}),
		exited:  make(chan struct{}),
		vol:     vol,
	}
	last, err := s.recoverWAL()
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("graph: open %s: %w", path, err)
	}
	if opt.WAL {
		s.wal, err = startWAL(walDir(path), last+1, func(msg string, err error) { log.Warn(msg, "err", err) })
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("graph: open %s: wal: %w", path, err)
		}
		s.ov = newOverlay()
		s.ckptJobs = make(chan ckptJob)
		s.ckptDone = make(chan error, 1)
		s.ckptExited = make(chan struct{})
		s.force = make(chan chan error)
		go s.checkpointer()
	}
	go s.run()
	go s.answer()
	return s, nil
}

// Path returns the file path of the store.
func (s *BoltStore) Path() string { return s.db.Path() }

// Merge implements Store.
func (s *BoltStore) Merge(ctx context.Context, diff Graph) (Graph, error) {
	return s.MergeNotify(ctx, diff, nil)
}

// MergeNotify implements MergeNotifier.
func (s *BoltStore) MergeNotify(ctx context.Context, diff Graph, committed func(Graph)) (Graph, error) {
	if len(diff) == 0 {
		return nil, nil
	}
	r := &mergeReq{ctx: ctx, diff: diff, committed: committed, done: make(chan struct{})}
	if err := s.enqueue(r); err != nil {
		return nil, err
	}
	select {
	case <-r.done:
		return r.accepted, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// MergeAsync implements AsyncMerger.
func (s *BoltStore) MergeAsync(ctx context.Context, diff Graph, committed func(Graph), done func(Graph, error)) {
	if len(diff) == 0 {
		done(nil, nil)
		return
	}
	r := &mergeReq{ctx: ctx, diff: diff, committed: committed, cb: done}
	if err := s.enqueue(r); err != nil {
		done(nil, err)
	}
}

// enqueue hands r to the writer, waiting while the queue is full.
func (s *BoltStore) enqueue(r *mergeReq) error {
	if err := checkKeys(r.diff); err != nil {
		return err
	}
	r.derived = isDerived(r.ctx)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if f := s.failed.Load(); f != nil {
		return *f
	}
	select {
	case s.queue <- r:
		return nil
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
}

// checkKeys refuses diffs whose records bbolt could not store, before they
// reach the writer (where a failed Put would fail the whole batch).
func checkKeys(diff Graph) error {
	for soul, n := range diff {
		for name, f := range n.Fields {
			if 2*len(soul)+2+len(name) > bolt.MaxKeySize {
				return fmt.Errorf("%w: key of soul %s field %s", ErrTooLarge, quote(soul), quote(name))
			}
			if f.Value.size() > bolt.MaxValueSize-16 {
				return fmt.Errorf("%w: value of soul %s field %s", ErrTooLarge, quote(soul), quote(name))
			}
		}
	}
	return nil
}

// run is the writer goroutine. It commits a batch as soon as the previous
// commit's fsync has returned, taking whatever was queued meanwhile (no
// lingering), and hands each committed batch to the answerer, so that
// notifying subscribers and acknowledging callers overlaps the next
// commit instead of delaying it.
func (s *BoltStore) run() {
	defer close(s.answers)
	if s.wal != nil {
		defer s.finishWAL()
	}
	var tick <-chan time.Time
	if s.wal != nil {
		t := s.opt.Clock.NewTicker(s.opt.CheckpointInterval)
		defer t.Stop()
		tick = t.C()
	}
	batch := make([]*mergeReq, 0, s.opt.MaxBatch)
	for {
		var r *mergeReq
		select {
		case r = <-s.queue:
		case <-tick:
			s.maybeCheckpoint(true)
			continue
		case reply := <-s.force:
			reply <- s.checkpointSync()
			continue
		case err := <-s.ckptDone:
			s.checkpointed(err)
			continue
		case <-s.quit:
			// Closed: no new requests can arrive; finish what is queued.
			select {
			case r = <-s.queue:
			default:
				return
			}
		}
		batch = append(batch[:0], r)
		size := s.walSize(r)
	drain:
		for len(batch) < s.opt.MaxBatch && size < walBatchBytes {
			select {
			case r := <-s.queue:
				batch = append(batch, r)
				size += s.walSize(r)
			default:
				break drain
			}
		}
		s.commitBatch(batch)
		if s.wal != nil {
			s.maybeCheckpoint(false)
		}
		clear(batch)
	}
}

// answer is the answerer goroutine: for each committed batch, in commit
// order, it calls the subscribers' committed callbacks (in request order)
// and then answers every caller. The answers channel holds one batch, so
// the writer runs at most two batches ahead.
func (s *BoltStore) answer() {
	defer close(s.exited)
	for batch := range s.answers {
		for _, r := range batch {
			if r.err == nil && r.committed != nil && len(r.accepted) > 0 {
				r.committed(r.accepted)
			}
		}
		for _, r := range batch {
			r.finish()
		}
	}
}

// commitBatch commits the live requests of batch, to the write-ahead log
// or to the file, and hands the whole batch to the answerer (batch is
// reused by the caller; the answerer gets a copy).
func (s *BoltStore) commitBatch(batch []*mergeReq) {
	answered := append(make([]*mergeReq, 0, len(batch)), batch...)
	if live := s.liveRequests(batch); len(live) > 0 {
		if s.wal != nil {
			s.commitWAL(live)
		} else {
			s.commit(live)
		}
	}
	s.answers <- answered
}

// commit applies live requests in one transaction.
func (s *BoltStore) commit(live []*mergeReq) {
	info := CommitInfo{Merges: len(live)}
	start := time.Now()
	durable := make([]Graph, len(live))
	volatile := make([]Graph, len(live))
	anyDurable := false
	for i, r := range live {
		durable[i], volatile[i] = s.split(r.diff)
		anyDurable = anyDurable || len(durable[i]) > 0
	}
	var err error
	if anyDurable {
		err = s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(graphBucket)
			s.arena = s.arena[:0]
			for i, r := range live {
				if len(durable[i]) == 0 {
					continue
				}
				acc, nf, na, err := s.apply(b, durable[i])
				if err != nil {
					return err
				}
				r.accepted = acc
				info.Fields += nf
				info.Accepted += na
			}
			return nil
		})
	}
	if err == nil {
		// Volatile fields land after the file commit, in request order,
		// so that a failed commit fails the whole batch.
		err = s.mergeVolatile(live, volatile, &info)
	}
	info.Duration = time.Since(start)
	if cap(s.arena) > 16<<20 {
		s.arena = nil // do not pin a huge buffer after a huge batch
	}
	// A batch of volatile fields alone commits nothing. The answerer
	// notifies in commit order first, then releases the callers.
	s.finishCommit(live, info, err, "commit", anyDurable)
}

// finishCommit records the outcome of a group commit: on err the store
// fails for good and every live request gets the failure; otherwise the
// counters move (commits only when committed is set). OnCommit hears of
// it before the callers are answered, so a caller that returns from Merge
// sees the commit counted.
func (s *BoltStore) finishCommit(live []*mergeReq, info CommitInfo, err error, what string, committed bool) {
	if err != nil {
		failure := s.setFailed(what, err)
		info.Err = failure
		if s.opt.OnCommit != nil {
			s.opt.OnCommit(info)
		}
		for _, r := range live {
			r.accepted, r.err = nil, failure
		}
		return
	}
	if committed {
		s.commits.Add(1)
	}
	s.merges.Add(uint64(len(live)))
	s.fields.Add(uint64(info.Fields))
	s.accepted.Add(uint64(info.Accepted))
	if int64(len(live)) > s.maxBatch.Load() {
		s.maxBatch.Store(int64(len(live)))
	}
	if s.opt.OnCommit != nil {
		s.opt.OnCommit(info)
	}
}

// split separates the fields of volatile souls (BoltOptions.Volatile)
// from those that go to the file. Without volatile souls in diff it
// returns diff itself.
func (s *BoltStore) split(diff Graph) (durable, volatile Graph) {
	if s.opt.Volatile == nil {
		return diff, nil
	}
	n := 0
	for soul := range diff {
		if s.opt.Volatile(soul) {
			n++
		}
	}
	switch n {
	case 0:
		return diff, nil
	case len(diff):
		return nil, diff
	}
	durable, volatile = make(Graph, len(diff)-n), make(Graph, n)
	for soul, node := range diff {
		if s.opt.Volatile(soul) {
			volatile[soul] = node
		} else {
			durable[soul] = node
		}
	}
	return durable, volatile
}

// volatileSoul reports whether soul is kept in memory only.
func (s *BoltStore) volatileSoul(soul string) bool {
	return s.opt.Volatile != nil && s.opt.Volatile(soul)
}

// apply runs HAM for every field of diff against the bucket (which already
// reflects earlier merges of the same transaction) and writes the winners.
func (s *BoltStore) apply(b *bolt.Bucket, diff Graph) (accepted Graph, judged, won int, err error) {
	var names []string
	for soul, node := range diff {
		names = names[:0]
		for name, f := range node.Fields {
			judged++
			s.key = appendKey(s.key[:0], soul, name)
			cur := b.Get(s.key)
			if cur != nil {
				c, err := decodeField(cur, f.State)
				if err != nil {
					return nil, 0, 0, err
				}
				if HAM(math.Inf(1), f.State, c.State, f.Value, c.Value, true) != Accept {
					continue
				}
			}
			// bbolt keeps references to keys and values until the
			// transaction ends, so they live in the arena.
			at := len(s.arena)
			s.arena = append(s.arena, s.key...)
			k := s.arena[at:len(s.arena):len(s.arena)]
			at = len(s.arena)
			s.arena = appendField(s.arena, f)
			v := s.arena[at:len(s.arena):len(s.arena)]
			if err := b.Put(k, v); err != nil {
				return nil, 0, 0, err
			}
			names = append(names, name)
		}
		if len(names) == 0 {
			continue
		}
		won += len(names)
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
	return accepted, judged, won, nil
}

// Get implements Store.
func (s *BoltStore) Get(ctx context.Context, soul string) (*Node, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.volatileSoul(soul) {
		return s.vol.Get(ctx, soul)
	}
	var n *Node
	if s.ov != nil {
		// The overlay first: what leaves it is in the file before.
		n = s.ov.node(soul)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		prefix := appendSoulKey(nil, soul)
		c := tx.Bucket(graphBucket).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			f, err := decodeField(v, math.NaN())
			if err != nil {
				return err
			}
			if n == nil {
				n = NewNode(soul)
			}
			name := string(k[len(prefix):])
			if _, ok := n.Fields[name]; ok && s.ov != nil {
				continue // the overlay's field is newer
			}
			n.Fields[name] = f
		}
		return nil
	})
	if err != nil {
		return nil, s.readErr(err)
	}
	if n == nil {
		return nil, ErrNotFound
	}
	return n, nil
}

// GetField implements Store.
func (s *BoltStore) GetField(ctx context.Context, soul, field string) (Field, error) {
	if err := ctx.Err(); err != nil {
		return Field{}, err
	}
	if s.volatileSoul(soul) {
		return s.vol.GetField(ctx, soul, field)
	}
	if s.ov != nil {
		if f, ok := s.ov.field(soul, field); ok {
			return f, nil
		}
	}
	var f Field
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(graphBucket).Get(appendKey(nil, soul, field))
		if v == nil {
			return nil
		}
		found = true
		var err error
		f, err = decodeField(v, math.NaN())
		return err
	})
	if err != nil {
		return Field{}, s.readErr(err)
	}
	if !found {
		return Field{}, ErrNotFound
	}
	return f, nil
}

// HasSoul implements SoulChecker: one cursor seek to the soul's first
// key, after the overlay.
func (s *BoltStore) HasSoul(ctx context.Context, soul string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if s.volatileSoul(soul) {
		return s.vol.HasSoul(ctx, soul)
	}
	if s.ov != nil && s.ov.hasSoul(soul) {
		return true, nil
	}
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		prefix := appendSoulKey(nil, soul)
		k, _ := tx.Bucket(graphBucket).Cursor().Seek(prefix)
		found = k != nil && bytes.HasPrefix(k, prefix)
		return nil
	})
	if err != nil {
		return false, s.readErr(err)
	}
	return found, nil
}

// scanPage is how many nodes Scan reads per read transaction; fn runs
// outside transactions so that a slow fn does not hold one open.
const scanPage = 256

// Scan implements Store. Volatile souls (BoltOptions.Volatile) come after
// the souls read from the file.
func (s *BoltStore) Scan(ctx context.Context, prefix string, fn func(*Node) error) error {
	if s.ov == nil {
		if err := s.scanFile(ctx, prefix, fn); err != nil {
			return err
		}
	} else if err := s.scanMerged(ctx, prefix, fn); err != nil {
		return err
	}
	if s.opt.Volatile == nil {
		return nil
	}
	return s.vol.Scan(ctx, prefix, fn)
}

// scanMerged scans the file and the overlay (taken first: what leaves it
// is in the file before), merging by soul; the overlay's fields win.
func (s *BoltStore) scanMerged(ctx context.Context, prefix string, fn func(*Node) error) error {
	ovn := s.ov.scan(prefix)
	i := 0
	err := s.scanFile(ctx, prefix, func(n *Node) error {
		for ; i < len(ovn) && ovn[i].Soul < n.Soul; i++ {
			if err := fn(ovn[i]); err != nil {
				return err
			}
		}
		if i < len(ovn) && ovn[i].Soul == n.Soul {
			for name, f := range ovn[i].Fields {
				n.Fields[name] = f
			}
			i++
		}
		return fn(n)
	})
	if err != nil {
		return err
	}
	for ; i < len(ovn); i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(ovn[i]); err != nil {
			return err
		}
	}
	return nil
}

// scanFile scans the souls stored in the file.
func (s *BoltStore) scanFile(ctx context.Context, prefix string, fn func(*Node) error) error {
	seekTo := escapeSoul(nil, prefix)
	escPrefix := seekTo
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var page []*Node
		var next []byte
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(graphBucket).Cursor()
			var cur *Node
			var curKey []byte // escaped soul + separator of cur
			for k, v := c.Seek(seekTo); k != nil && bytes.HasPrefix(k, escPrefix); k, v = c.Next() {
				if cur == nil || !bytes.HasPrefix(k, curKey) {
					soul, sk, ok := splitKey(k)
					if !ok {
						return fmt.Errorf("graph: corrupt key %q", k)
					}
					if len(page) == scanPage {
						next = append([]byte(nil), sk...)
						return nil
					}
					cur = NewNode(soul)
					curKey = append(curKey[:0], sk...)
					page = append(page, cur)
				}
				f, err := decodeField(v, math.NaN())
				if err != nil {
					return err
				}
				cur.Fields[string(k[len(curKey):])] = f
			}
			return nil
		})
		if err != nil {
			return s.readErr(err)
		}
		for _, n := range page {
			if err := fn(n); err != nil {
				return err
			}
		}
		if next == nil {
			return nil
		}
		seekTo = next
	}
}

func (s *BoltStore) readErr(err error) error {
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// Stats returns cumulative counters.
func (s *BoltStore) Stats() BoltStats {
	st := BoltStats{
		Commits:    s.commits.Load(),
		Merges:     s.merges.Load(),
		Fields:     s.fields.Load(),
		Accepted:   s.accepted.Load(),
		QueueDepth: len(s.queue),
		MaxBatch:   int(s.maxBatch.Load()),

		Checkpoints:    s.checkpoints.Load(),
		Stalls:         s.stalls.Load(),
		LastCheckpoint: time.Duration(s.lastCheckpoint.Load()),
	}
	if s.ov != nil {
		_, st.OverlayBytes = s.ov.bytes()
	}
	if s.wal != nil {
		st.Syncs = s.wal.syncs.Load()
	}
	if s.opt.Transient != nil {
		st.TransientEvicted, st.TransientBytes = s.vol.Evicted()
	}
	if f := s.failed.Load(); f != nil {
		st.Failed = *f
	}
	return st
}

// Close stops accepting merges, lets the writer commit everything already
// queued, and closes the file. It is safe to call more than once.
func (s *BoltStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.quit)
	<-s.exited
	_ = s.vol.Close()
	return s.db.Close()
}

// appendSoulKey appends the escaped soul and the 0x00 0x01 separator.
func appendSoulKey(dst []byte, soul string) []byte {
	return append(escapeSoul(dst, soul), 0x00, 0x01)
}

// escapeSoul appends soul with every 0x00 byte written as 0x00 0xFF.
func escapeSoul(dst []byte, soul string) []byte {
	for {
		i := strings.IndexByte(soul, 0)
		if i < 0 {
			return append(dst, soul...)
		}
		dst = append(dst, soul[:i]...)
		dst = append(dst, 0x00, 0xFF)
		soul = soul[i+1:]
	}
}

// appendKey appends the record key of soul/field.
func appendKey(dst []byte, soul, field string) []byte {
	return append(appendSoulKey(dst, soul), field...)
}

// splitKey decodes the soul of a record key and returns it with the key's
// soul part (escaped soul + separator).
func splitKey(k []byte) (soul string, soulKey []byte, ok bool) {
	i := bytes.IndexByte(k, 0)
	if i >= 0 && i+1 < len(k) && k[i+1] == 0x01 { // no NUL in the soul
		return string(k[:i]), k[:i+2], true
	}
	return unescapeKey(k)
}

func unescapeKey(k []byte) (string, []byte, bool) {
	var b []byte
	for i := 0; i < len(k); i++ {
		if k[i] != 0 {
			b = append(b, k[i])
			continue
		}
		if i+1 >= len(k) {
			return "", nil, false
		}
		switch k[i+1] {
		case 0xFF:
			b = append(b, 0)
			i++
		case 0x01:
			return string(b), k[:i+2], true
		default:
			return "", nil, false
		}
	}
	return "", nil, false
}

// appendField appends the on-disk encoding of f.
func appendField(dst []byte, f Field) []byte {
	dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(f.State))
	v := f.Value
	switch v.kind {
	case KindString:
		dst = append(dst, diskString)
		return append(dst, v.s...)
	case KindBool:
		dst = append(dst, diskBool)
		if v.n != 0 {
			return append(dst, 1)
		}
		return append(dst, 0)
	case KindNumber:
		dst = append(dst, diskNumber)
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(v.n))
	case KindLink:
		dst = append(dst, diskLink)
		return append(dst, v.s...)
	}
	return append(dst, diskNull)
}

var errCorrupt = errors.New("graph: corrupt record")

// decodeField decodes a record. The value is decoded (copying strings out
// of the mmap) only when the state equals want or want is NaN; otherwise
// only the state is returned, which is all HAM needs then.
func decodeField(b []byte, want float64) (Field, error) {
	if len(b) < 9 {
		return Field{}, errCorrupt
	}
	f := Field{State: math.Float64frombits(binary.BigEndian.Uint64(b))}
	if !math.IsNaN(want) && f.State != want {
		return f, nil
	}
	p := b[9:]
	switch b[8] {
	case diskNull:
	case diskString:
		f.Value = String(string(p))
	case diskBool:
		if len(p) != 1 {
			return Field{}, errCorrupt
		}
		f.Value = Bool(p[0] != 0)
	case diskNumber:
		if len(p) != 8 {
			return Field{}, errCorrupt
		}
		n := math.Float64frombits(binary.BigEndian.Uint64(p))
		if math.IsNaN(n) || math.IsInf(n, 0) {
			return Field{}, errCorrupt
		}
		f.Value = Number(n)
	case diskLink:
		if len(p) == 0 {
			return Field{}, errCorrupt
		}
		f.Value = Link(string(p))
	default:
		return Field{}, errCorrupt
	}
	return f, nil
}

// mergeVolatile merges each request's volatile fields into memory, in
// request order, adding them to its accepted graph and to info.
func (s *BoltStore) mergeVolatile(live []*mergeReq, volatile []Graph, info *CommitInfo) error {
	for i, r := range live {
		if len(volatile[i]) == 0 {
			continue
		}
		acc, err := s.vol.Merge(context.Background(), volatile[i])
		if err != nil {
			return err
		}
		for _, n := range volatile[i] {
			info.Fields += len(n.Fields)
		}
		for soul, n := range acc {
			if r.accepted == nil {
				r.accepted = make(Graph, len(acc))
			}
			r.accepted[soul] = n
			info.Accepted += len(n.Fields)
		}
	}
	return nil
}

// liveRequests answers the requests of batch that cannot be merged (the
// store failed, or the caller's context ended) and returns the others.
func (s *BoltStore) liveRequests(batch []*mergeReq) []*mergeReq {
	if f := s.failed.Load(); f != nil {
		for _, r := range batch {
			r.err = *f
		}
		return nil
	}
	live := make([]*mergeReq, 0, len(batch))
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		live = append(live, r)
	}
	return live
}
