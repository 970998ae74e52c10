package heartbeat

import (
	"context"
	"slices"
	"sort"
	"sync"
)

// MemLog is an in-memory [Log] (and [Blobs]) for tests and for relays that
// do not need durability. It is safe for concurrent use.
type MemLog struct {
	mu    sync.RWMutex
	insts map[string]*memInst
	blobs map[Hash][]byte
	marks map[string]float64 // log-wide reserved marks by holder
}

type memInst struct {
	st      instState
	entries []Entry // entries[i].Seq == i+1
	ticks   []Tick  // stored ticks, ascending seq
	ids     map[Hash]uint64
}

// NewMemLog returns an empty MemLog.
func NewMemLog() *MemLog {
	return &MemLog{insts: map[string]*memInst{}, blobs: map[Hash][]byte{}, marks: map[string]float64{}}
}

var _ Log = (*MemLog)(nil)

// Append implements [Log].
func (l *MemLog) Append(ctx context.Context, batches []Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs AppendError
	for i := range batches {
		b := &batches[i]
		if b.empty() {
			continue
		}
		if b.Instance == AllInstances {
			if err := checkWide(b); err != nil {
				if errs == nil {
					errs = make(AppendError, len(batches))
				}
				errs[i] = err
				continue
			}
			l.marks[b.Holder] = max(l.marks[b.Holder], b.Reserve)
			continue
		}
		in := l.insts[b.Instance]
		if in == nil {
			in = &memInst{ids: map[Hash]uint64{}}
		}
		err := in.st.check(b, l.mark, func(id Hash) (bool, error) { _, ok := in.ids[id]; return ok, nil })
		if err != nil {
			if errs == nil {
				errs = make(AppendError, len(batches))
			}
			errs[i] = err
			continue
		}
		l.insts[b.Instance] = in
		in.st.apply(b)
		for _, e := range b.Entries {
			in.entries = append(in.entries, e)
			if e.Kind == KindMessage {
				in.ids[e.MessageID()] = e.Seq
			}
		}
		if b.Tick != nil {
			in.ticks = append(in.ticks, *b.Tick)
		}
	}
	if errs != nil {
		return errs
	}
	return nil
}

// State implements [Log].
func (l *MemLog) State(ctx context.Context, instance string) (LogState, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	in := l.insts[instance]
	if in == nil {
		return LogState{}, ctx.Err()
	}
	ls := in.st.export()
	ls.Wide = l.marks[ls.Holder]
	return ls, ctx.Err()
}

func (l *MemLog) mark(holder string) float64 { return l.marks[holder] }

// HolderMark implements [Log].
func (l *MemLog) HolderMark(ctx context.Context, holder string) (float64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.marks[holder], ctx.Err()
}

// Read implements [Log].
func (l *MemLog) Read(ctx context.Context, instance string, from uint64, max int) (Page, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	in := l.insts[instance]
	if in == nil || max <= 0 {
		return Page{}, ctx.Err()
	}
	if from == 0 {
		from = 1
	}
	if from > uint64(len(in.entries)) {
		return Page{}, ctx.Err()
	}
	end := min(uint64(len(in.entries)), from-1+uint64(max))
	p := Page{Entries: slices.Clone(in.entries[from-1 : end])}
	p.Ticks = coveringTicks(in.ticks, from, end)
	return p, ctx.Err()
}

// coveringTicks returns the stored ticks with seq in [from, last] plus the
// first with seq >= last.
func coveringTicks(ticks []Tick, from, last uint64) []Tick {
	i := sort.Search(len(ticks), func(i int) bool { return ticks[i].Seq >= from })
	var out []Tick
	for ; i < len(ticks); i++ {
		out = append(out, ticks[i])
		if ticks[i].Seq >= last {
			break
		}
	}
	return out
}

// ReadByTime implements [Log].
func (l *MemLog) ReadByTime(ctx context.Context, instance string, from, to float64, max int) (Page, error) {
	l.mu.RLock()
	in := l.insts[instance]
	var first, n int
	if in != nil {
		first = sort.Search(len(in.entries), func(i int) bool { return in.entries[i].State >= from })
		for n = 0; first+n < len(in.entries) && n < max && in.entries[first+n].State <= to; n++ {
		}
	}
	l.mu.RUnlock()
	if n == 0 {
		return Page{}, ctx.Err()
	}
	return l.Read(ctx, instance, uint64(first+1), n)
}

// Lookup implements [Log].
func (l *MemLog) Lookup(ctx context.Context, instance string, id Hash) (Entry, bool, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	in := l.insts[instance]
	if in == nil {
		return Entry{}, false, ctx.Err()
	}
	seq, ok := in.ids[id]
	if !ok {
		return Entry{}, false, ctx.Err()
	}
	return in.entries[seq-1], true, ctx.Err()
}

// Instances implements [Log].
func (l *MemLog) Instances(ctx context.Context) ([]string, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []string
	for k, in := range l.insts {
		if in.st.meta != nil {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out, ctx.Err()
}

// PutBlob implements [Blobs].
func (l *MemLog) PutBlob(ctx context.Context, data []byte) (Hash, error) {
	h := SHA256(data)
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.blobs[h]; !ok {
		l.blobs[h] = slices.Clone(data)
	}
	return h, ctx.Err()
}

// GetBlob implements [Blobs].
func (l *MemLog) GetBlob(ctx context.Context, h Hash) ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	b, ok := l.blobs[h]
	if !ok {
		return nil, ErrNotFound
	}
	return slices.Clone(b), ctx.Err()
}
