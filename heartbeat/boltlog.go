package heartbeat

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/internal/jsjson"
)

// BoltLog is the embedded durable [Log], [Blobs] and (through
// [BoltLog.Lease]) [Lease], in one bbolt file.
//
// Writes go through one writer goroutine that group-commits: it takes every
// append request waiting at that moment (up to MaxGroup batches), validates
// and writes them in one bbolt transaction, and commits once — one fsync
// pair acknowledges the whole group, and a request is answered only after
// its commit. A failed commit is never retried: the log turns broken
// ([ErrLogBroken]) and the process should restart and recover (bbolt's
// copy-on-write pages and checksummed meta pages make the last commit
// either fully there or fully absent after kill -9 or power loss).
//
// File layout (bucket paths):
//
//	inst/<instance>/meta          Meta JSON
//	inst/<instance>/state         head seq/hash/state/epoch, reserved mark, latest snapshot
//	inst/<instance>/e/<seq BE8>   entry JSON (the wire form, so history stays verifiable)
//	inst/<instance>/t/<seq BE8>   stored checkpoint tick JSON, keyed by its position
//	inst/<instance>/m/<msgid>     seq BE8: the duplicate index (survives restarts)
//	inst/<instance>/p/<client>    seq BE8 of its join: current presence
//	blob/<sha256>                 snapshot data
//	lease/<instance>              {"epoch","holder"}: epochs survive restarts
//	mark/<holder>                 the holder's log-wide reserved mark (JSON number)
type BoltLog struct {
	db     *bbolt.DB
	opt    BoltOptions
	reqs   chan *boltReq
	quit   chan struct{}
	wg     sync.WaitGroup
	lease  *leaseTable
	mu     sync.RWMutex
	states map[string]*instState // cache of committed state
	marks  map[string]float64    // committed log-wide reserved marks by holder
	broken error
	closed bool
}

// BoltOptions configures [OpenBolt].
type BoltOptions struct {
	Clock       clock.Clock   // lease expiry timers; default the system clock
	Logger      *slog.Logger  // default discards
	MaxQueue    int           // 4,096 waiting append requests
	MaxGroup    int           // 8,192 batches per transaction
	LockTimeout time.Duration // 1 s waiting for the file lock
}

type boltReq struct {
	batches []Batch
	err     error
	done    chan struct{}
}

var (
	bktInst  = []byte("inst")
	bktBlob  = []byte("blob")
	bktLease = []byte("lease")
	bktMark  = []byte("mark")
	keyMeta  = []byte("meta")
	keyState = []byte("state")
	bktE     = []byte("e")
	bktT     = []byte("t")
	bktM     = []byte("m")
	bktP     = []byte("p")
)

// OpenBolt opens (creating if needed) the log file at path.
func OpenBolt(path string, opt BoltOptions) (*BoltLog, error) {
	if opt.Clock == nil {
		opt.Clock = clock.System()
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.MaxQueue <= 0 {
		opt.MaxQueue = 4096
	}
	if opt.MaxGroup <= 0 {
		opt.MaxGroup = 8192
	}
	if opt.LockTimeout <= 0 {
		opt.LockTimeout = time.Second
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: opt.LockTimeout, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("heartbeat: open %s: %w", path, err)
	}
	marks := map[string]float64{}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bktInst, bktBlob, bktLease, bktMark} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bktMark).ForEach(func(k, v []byte) error {
			n, err := strconv.ParseFloat(string(v), 64)
			if err != nil || !(n >= 0 && n < maxSafeInt) {
				return fmt.Errorf("corrupt reserved mark of %q: %q", k, v)
			}
			marks[string(k)] = n
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("heartbeat: init %s: %w", path, err)
	}
	l := &BoltLog{db: db, opt: opt, reqs: make(chan *boltReq, opt.MaxQueue), quit: make(chan struct{}), states: map[string]*instState{}, marks: marks}
	l.lease = &leaseTable{clk: opt.Clock, recs: map[string]*leaseRec{}, load: l.loadLease, persist: l.persistLease}
	l.wg.Add(1)
	go l.writer()
	return l, nil
}

var _ Log = (*BoltLog)(nil)

// Lease returns the lease table stored in this file. Epochs persist; after
// a restart no grant is live (the next Acquire, by anyone, succeeds with a
// higher epoch).
func (l *BoltLog) Lease() Lease { return l.lease }

// Close stops the writer after the requests already queued are committed,
// and closes the file.
func (l *BoltLog) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.quit)
	l.wg.Wait()
	return l.db.Close()
}

// Append implements [Log]. The call waits for the commit even if ctx ends
// meanwhile, so that its outcome is never ambiguous.
func (l *BoltLog) Append(ctx context.Context, batches []Batch) error {
	l.mu.RLock()
	broken, closed := l.broken, l.closed
	l.mu.RUnlock()
	if broken != nil {
		return broken
	}
	if closed {
		return ErrClosed
	}
	r := &boltReq{batches: batches, done: make(chan struct{})}
	select {
	case l.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-l.quit:
		return ErrClosed
	}
	<-r.done
	return r.err
}

func (l *BoltLog) writer() {
	defer l.wg.Done()
	for {
		var first *boltReq
		select {
		case first = <-l.reqs:
		case <-l.quit:
			// Commit what is already queued, then stop.
			for {
				select {
				case r := <-l.reqs:
					l.commit([]*boltReq{r})
				default:
					return
				}
			}
		}
		group := []*boltReq{first}
		n := len(first.batches)
	more:
		for n < l.opt.MaxGroup {
			select {
			case r := <-l.reqs:
				group = append(group, r)
				n += len(r.batches)
			default:
				break more
			}
		}
		l.commit(group)
	}
}

func (l *BoltLog) commit(group []*boltReq) {
	defer func() {
		for _, r := range group {
			close(r.done)
		}
	}()
	l.mu.RLock()
	broken := l.broken
	l.mu.RUnlock()
	if broken != nil {
		for _, r := range group {
			r.err = broken
		}
		return
	}
	work := map[string]*instState{}
	errs := make([]AppendError, len(group))
	// Marks raised by this group, read through to the committed ones.
	raised := map[string]float64{}
	mark := func(holder string) float64 {
		if v, ok := raised[holder]; ok {
			return v
		}
		l.mu.RLock()
		defer l.mu.RUnlock()
		return l.marks[holder]
	}
	err := l.db.Update(func(tx *bbolt.Tx) error {
		root := tx.Bucket(bktInst)
		for gi, r := range group {
			for bi := range r.batches {
				b := &r.batches[bi]
				if b.empty() {
					continue
				}
				var err error
				if b.Instance == AllInstances {
					if err = checkWide(b); err == nil && b.Reserve > mark(b.Holder) {
						raised[b.Holder] = b.Reserve
						if err := tx.Bucket(bktMark).Put([]byte(b.Holder), strconv.AppendFloat(nil, b.Reserve, 'g', -1, 64)); err != nil {
							return err
						}
					} else if err != nil {
						err = validationErr{err}
					}
				} else {
					err = l.appendOne(root, work, b, mark)
				}
				if err != nil {
					var v validationErr
					if !errors.As(err, &v) {
						return err
					}
					if errs[gi] == nil {
						errs[gi] = make(AppendError, len(r.batches))
					}
					errs[gi][bi] = v.error
				}
			}
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrLogBroken, err)
		l.opt.Logger.Error("heartbeat: log commit failed; log is broken", "err", err)
		l.mu.Lock()
		l.broken = err
		l.mu.Unlock()
		for _, r := range group {
			r.err = err
		}
		return
	}
	l.mu.Lock()
	maps.Copy(l.states, work)
	maps.Copy(l.marks, raised)
	l.mu.Unlock()
	for gi, r := range group {
		if errs[gi] != nil {
			r.err = errs[gi]
		}
	}
}

// validationErr marks a batch refused by validation (as opposed to an I/O
// error, which aborts the transaction).
type validationErr struct{ error }

func (v validationErr) Unwrap() error { return v.error }

func (l *BoltLog) appendOne(root *bbolt.Bucket, work map[string]*instState, b *Batch, wide func(string) float64) error {
	st := work[b.Instance]
	if st == nil {
		cached, err := l.cachedState(root, b.Instance)
		if err != nil {
			return err
		}
		st = cloneState(cached)
	}
	ib := root.Bucket([]byte(b.Instance))
	seen := func(id Hash) (bool, error) {
		if ib == nil {
			return false, nil
		}
		return ib.Bucket(bktM).Get(id[:]) != nil, nil
	}
	if err := st.check(b, wide, seen); err != nil {
		return validationErr{err}
	}
	if ib == nil {
		var err error
		if ib, err = root.CreateBucket([]byte(b.Instance)); err != nil {
			return err
		}
		for _, n := range [][]byte{bktE, bktT, bktM, bktP} {
			if _, err := ib.CreateBucket(n); err != nil {
				return err
			}
		}
	}
	if b.Meta != nil {
		if err := ib.Put(keyMeta, jsjson.Append(nil, b.Meta.object())); err != nil {
			return err
		}
	}
	eb, tb, mb, pb := ib.Bucket(bktE), ib.Bucket(bktT), ib.Bucket(bktM), ib.Bucket(bktP)
	eb.FillPercent, tb.FillPercent = 1, 1
	var buf []byte
	for i := range b.Entries {
		e := &b.Entries[i]
		buf = e.AppendJSON(buf[:0])
		if err := eb.Put(u64(e.Seq), bytes.Clone(buf)); err != nil {
			return err
		}
		switch e.Kind {
		case KindMessage:
			id := e.MessageID()
			if err := mb.Put(id[:], u64(e.Seq)); err != nil {
				return err
			}
		case KindJoin:
			if err := pb.Put([]byte(e.Author), u64(e.Seq)); err != nil {
				return err
			}
		case KindLeave:
			if err := pb.Delete([]byte(e.Author)); err != nil {
				return err
			}
		}
	}
	if b.Tick != nil {
		if err := tb.Put(u64(b.Tick.Seq), b.Tick.AppendJSON(nil)); err != nil {
			return err
		}
	}
	st.apply(b)
	work[b.Instance] = st
	return ib.Put(keyState, encodeState(st))
}

func cloneState(s *instState) *instState {
	c := *s
	c.presence = maps.Clone(s.presence)
	return &c
}

// cachedState returns the committed state of an instance, loading it from
// the file on first use. The returned value must not be modified.
func (l *BoltLog) cachedState(root *bbolt.Bucket, instance string) (*instState, error) {
	l.mu.RLock()
	st := l.states[instance]
	l.mu.RUnlock()
	if st != nil {
		return st, nil
	}
	st, err := loadState(root, instance)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	if cur := l.states[instance]; cur != nil {
		st = cur
	} else {
		l.states[instance] = st
	}
	l.mu.Unlock()
	return st, nil
}

func encodeState(s *instState) []byte {
	o := &jsjson.Object{}
	o.Set("seq", float64(s.head.Seq))
	o.Set("hash", s.head.Hash.String())
	o.Set("state", s.head.State)
	o.Set("epoch", float64(s.head.Epoch))
	o.Set("reserved", s.reserved)
	if s.holder != "" {
		o.Set("holder", s.holder)
	}
	if s.snapshot != nil {
		o.Set("snap_seq", float64(s.snapshot.Seq))
		o.Set("snap_hash", s.snapshot.Hash.String())
		o.Set("snap_marker", float64(s.snapshot.Marker))
	}
	return jsjson.Append(nil, o)
}

func loadState(root *bbolt.Bucket, instance string) (*instState, error) {
	st := &instState{}
	ib := root.Bucket([]byte(instance))
	if ib == nil {
		return st, nil
	}
	bad := func(what string, err error) error {
		return fmt.Errorf("heartbeat: instance %s: corrupt %s: %w", instance, what, err)
	}
	if v := ib.Get(keyMeta); v != nil {
		m, err := ParseMeta(v)
		if err != nil {
			return nil, bad("meta", err)
		}
		st.meta = &m
	}
	if v := ib.Get(keyState); v != nil {
		o, err := parseObject(v)
		if err != nil {
			return nil, bad("state", err)
		}
		r := reader{o: o}
		st.head.Seq = r.uint("seq", true)
		st.head.Hash, _ = r.hash("hash", true)
		st.head.State = r.num("state", true)
		st.head.Epoch = r.uint("epoch", true)
		st.reserved = r.num("reserved", true)
		st.holder = r.str("holder", false)
		if seq := r.uint("snap_seq", false); seq != 0 {
			st.snapshot = &SnapshotRef{Seq: seq}
			st.snapshot.Hash, _ = r.hash("snap_hash", true)
			st.snapshot.Marker = r.uint("snap_marker", true)
		}
		if err := r.done(); err != nil {
			return nil, bad("state", err)
		}
	}
	if k, v := ib.Bucket(bktT).Cursor().Last(); k != nil {
		t, err := ParseTick(v)
		if err != nil {
			return nil, bad("tick", err)
		}
		st.lastTick = &t
	}
	pb := ib.Bucket(bktP)
	st.presence = map[string]uint64{}
	err := pb.ForEach(func(k, v []byte) error {
		if len(v) != 8 {
			return bad("presence", ErrMalformed)
		}
		st.presence[string(k)] = binary.BigEndian.Uint64(v)
		return nil
	})
	return st, err
}

// State implements [Log].
func (l *BoltLog) State(ctx context.Context, instance string) (LogState, error) {
	var out LogState
	err := l.db.View(func(tx *bbolt.Tx) error {
		st, err := l.cachedState(tx.Bucket(bktInst), instance)
		if err != nil {
			return err
		}
		out = st.export()
		return nil
	})
	l.mu.RLock()
	out.Wide = l.marks[out.Holder]
	l.mu.RUnlock()
	if err != nil {
		return LogState{}, err
	}
	return out, ctx.Err()
}

// Read implements [Log].
func (l *BoltLog) Read(ctx context.Context, instance string, from uint64, max int) (Page, error) {
	var p Page
	err := l.db.View(func(tx *bbolt.Tx) error {
		ib := tx.Bucket(bktInst).Bucket([]byte(instance))
		if ib == nil || max <= 0 {
			return nil
		}
		var err error
		p, err = readPage(ib, from, max)
		return err
	})
	if err != nil {
		return Page{}, fmt.Errorf("heartbeat: read %s: %w", instance, err)
	}
	return p, ctx.Err()
}

func readPage(ib *bbolt.Bucket, from uint64, max int) (Page, error) {
	var p Page
	if from == 0 {
		from = 1
	}
	c := ib.Bucket(bktE).Cursor()
	for k, v := c.Seek(u64(from)); k != nil && len(p.Entries) < max; k, v = c.Next() {
		e, err := ParseEntry(v)
		if err != nil {
			return Page{}, fmt.Errorf("corrupt entry %d: %w", binary.BigEndian.Uint64(k), err)
		}
		p.Entries = append(p.Entries, e)
	}
	if len(p.Entries) == 0 {
		return p, nil
	}
	last := p.Entries[len(p.Entries)-1].Seq
	tc := ib.Bucket(bktT).Cursor()
	for k, v := tc.Seek(u64(from)); k != nil; k, v = tc.Next() {
		t, err := ParseTick(v)
		if err != nil {
			return Page{}, fmt.Errorf("corrupt tick at %d: %w", binary.BigEndian.Uint64(k), err)
		}
		p.Ticks = append(p.Ticks, t)
		if t.Seq >= last {
			break
		}
	}
	return p, nil
}

// ReadByTime implements [Log]: a binary search over seqs (states strictly
// increase along the log), then Read.
func (l *BoltLog) ReadByTime(ctx context.Context, instance string, from, to float64, max int) (Page, error) {
	var p Page
	err := l.db.View(func(tx *bbolt.Tx) error {
		ib := tx.Bucket(bktInst).Bucket([]byte(instance))
		if ib == nil || max <= 0 {
			return nil
		}
		eb := ib.Bucket(bktE)
		k, _ := eb.Cursor().Last()
		if k == nil {
			return nil
		}
		n := binary.BigEndian.Uint64(k)
		var perr error
		state := func(seq uint64) float64 {
			e, err := ParseEntry(eb.Get(u64(seq)))
			if err != nil {
				perr = err
				return 0
			}
			return e.State
		}
		lo, hi := uint64(1), n+1 // first seq with state >= from
		for lo < hi {
			mid := lo + (hi-lo)/2
			if state(mid) >= from {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		if perr != nil {
			return perr
		}
		page, err := readPage(ib, lo, max)
		if err != nil {
			return err
		}
		cut := len(page.Entries)
		for i, e := range page.Entries {
			if e.State > to {
				cut = i
				break
			}
		}
		if cut == 0 {
			return nil
		}
		if cut < len(page.Entries) {
			page, err = readPage(ib, lo, cut)
			if err != nil {
				return err
			}
		}
		p = page
		return nil
	})
	if err != nil {
		return Page{}, fmt.Errorf("heartbeat: read %s: %w", instance, err)
	}
	return p, ctx.Err()
}

// Lookup implements [Log].
func (l *BoltLog) Lookup(ctx context.Context, instance string, id Hash) (Entry, bool, error) {
	var e Entry
	var found bool
	err := l.db.View(func(tx *bbolt.Tx) error {
		ib := tx.Bucket(bktInst).Bucket([]byte(instance))
		if ib == nil {
			return nil
		}
		v := ib.Bucket(bktM).Get(id[:])
		if v == nil {
			return nil
		}
		raw := ib.Bucket(bktE).Get(v)
		if raw == nil {
			return fmt.Errorf("heartbeat: index names missing entry %d", binary.BigEndian.Uint64(v))
		}
		var err error
		e, err = ParseEntry(raw)
		found = err == nil
		return err
	})
	if err != nil {
		return Entry{}, false, err
	}
	return e, found, ctx.Err()
}

// Instances implements [Log].
func (l *BoltLog) Instances(ctx context.Context) ([]string, error) {
	var out []string
	err := l.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bktInst).ForEachBucket(func(k []byte) error {
			if tx.Bucket(bktInst).Bucket(k).Get(keyMeta) != nil {
				out = append(out, string(k))
			}
			return nil
		})
	})
	slices.Sort(out)
	return out, errors.Join(err, ctx.Err())
}

// HolderMark implements [Log].
func (l *BoltLog) HolderMark(ctx context.Context, holder string) (float64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.marks[holder], ctx.Err()
}

// PutBlob implements [Blobs].
func (l *BoltLog) PutBlob(ctx context.Context, data []byte) (Hash, error) {
	h := SHA256(data)
	err := l.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bktBlob)
		if b.Get(h[:]) != nil {
			return nil
		}
		return b.Put(h[:], bytes.Clone(data))
	})
	if err != nil {
		return Hash{}, fmt.Errorf("heartbeat: store blob: %w", err)
	}
	return h, ctx.Err()
}

// GetBlob implements [Blobs].
func (l *BoltLog) GetBlob(ctx context.Context, h Hash) ([]byte, error) {
	var out []byte
	err := l.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bktBlob).Get(h[:]); v != nil {
			out = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, ErrNotFound
	}
	if SHA256(out) != h {
		return nil, fmt.Errorf("heartbeat: blob %s corrupt: %w", h, ErrSnapshotMismatch)
	}
	return out, ctx.Err()
}

func (l *BoltLog) loadLease(instance string) (uint64, string, error) {
	var ep uint64
	var holder string
	err := l.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bktLease).Get([]byte(instance))
		if v == nil {
			return nil
		}
		o, err := parseObject(v)
		if err != nil {
			return err
		}
		r := reader{o: o}
		ep = r.uint("epoch", true)
		holder = r.str("holder", true)
		return r.done()
	})
	return ep, holder, err
}

func (l *BoltLog) persistLease(instance string, epoch uint64, holder string) error {
	o := &jsjson.Object{}
	o.Set("epoch", float64(epoch))
	o.Set("holder", holder)
	return l.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bktLease).Put([]byte(instance), jsjson.Append(nil, o))
	})
}
