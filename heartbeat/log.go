package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Log is the ordered, durable log of every instance: the source of truth for
// order. [MemLog] and [BoltLog] implement it; a later step implements it on
// NATS JetStream (one stream per instance, subject per instance, the
// "expected last sequence" header doing what the compare-and-append below
// does). Implementations must be safe for concurrent use.
type Log interface {
	// Append makes each batch durable atomically, before returning. A batch
	// must continue its instance's head exactly (compare-and-append: next
	// seq, previous hash, epoch not older than the head's), so two
	// sequencers can never both extend one log. Batches that fail
	// validation are skipped and reported in an [AppendError] (one slot per
	// batch; the others are durable); any other error means nothing from
	// this call is durable and the log may be broken ([ErrLogBroken]).
	Append(ctx context.Context, batches []Batch) error
	// State returns an instance's recovery state. An unknown instance
	// returns a zero LogState (Meta == nil) and no error.
	State(ctx context.Context, instance string) (LogState, error)
	// Read returns up to max entries with seq >= from, in order, and the
	// stored ticks needed to verify them: every stored tick positioned
	// within the returned entries plus the first one at or after the last
	// returned entry (which covers it).
	Read(ctx context.Context, instance string, from uint64, max int) (Page, error)
	// ReadByTime is Read for the entries whose states lie in [from, to].
	ReadByTime(ctx context.Context, instance string, from, to float64, max int) (Page, error)
	// Lookup finds a message entry by message id.
	Lookup(ctx context.Context, instance string, id Hash) (Entry, bool, error)
	// Instances lists the instances that have metadata, sorted.
	Instances(ctx context.Context) ([]string, error)
	// HolderMark returns holder's log-wide reserved mark (0 if none).
	HolderMark(ctx context.Context, holder string) (float64, error)
}

// Batch is one atomic append to one instance.
type Batch struct {
	Instance string
	// Meta creates the instance; required in the first batch, refused later.
	Meta *Meta
	// Entries continue the head: seq head+1, head+2, ...; prev chained;
	// states strictly increasing; an epoch increase only through a
	// KindEpoch entry, whose state must also exceed the reserved mark.
	Entries []Entry
	// Tick, when set, is stored as a checkpoint. It must be positioned at
	// the new head (seq and hash), in the head's epoch, with a state above
	// the head's and the last stored tick's.
	Tick *Tick
	// Reserve raises the reserved high-water mark (never lowers it).
	Reserve float64
	// Holder names the sequencer whose log-wide mark a batch for
	// [AllInstances] raises; unused otherwise.
	Holder string
}

// AllInstances is the Instance of a batch that raises a sequencer's
// log-wide reserved mark: such a batch carries only Holder and Reserve, and
// the mark bounds the states of every instance whose current term Holder
// holds (see [LogState.Wide]). A host that sequences many instances renews
// this one mark a few times a second instead of one mark per instance; put
// it first in an Append so that the batches after it may use it.
const AllInstances = "*"

func (b *Batch) empty() bool {
	return b.Meta == nil && len(b.Entries) == 0 && b.Tick == nil && b.Reserve == 0
}

// Page is a slice of the log.
type Page struct {
	Entries []Entry
	Ticks   []Tick
}

// LogState is what a sequencer needs to resume an instance.
type LogState struct {
	Meta     *Meta        // nil: unknown instance
	Head     Head         // last entry
	LastTick *Tick        // last stored (checkpoint) tick
	Reserved float64      // the instance's reserved high-water mark (Batch.Reserve)
	Holder   string       // sequencer of the current term (author of the last epoch entry)
	Wide     float64      // Holder's log-wide reserved mark (batches for AllInstances)
	Presence []string     // joined clients, sorted
	Snapshot *SnapshotRef // latest accepted snapshot
}

// Bound returns the reserved mark that bounds every state ever issued for
// the instance: the larger of its own mark and its current holder's
// log-wide one. A new term starts above it.
func (s *LogState) Bound() float64 { return max(s.Reserved, s.Wide) }

// LastState returns the highest state known to have been issued and stored.
func (s *LogState) LastState() float64 {
	v := s.Head.State
	if s.LastTick != nil && s.LastTick.State > v {
		v = s.LastTick.State
	}
	return v
}

// SnapshotRef names an accepted snapshot: the state after applying entry
// Seq (and before anything that follows it), whose data hashes to Hash,
// accepted by the KindSnapshot entry at seq Marker.
type SnapshotRef struct {
	Seq    uint64
	Hash   Hash
	Marker uint64
}

// AppendError reports which batches of an Append were refused: slot i holds
// the error for batch i, nil when it was appended.
type AppendError []error

func (e AppendError) Error() string {
	var parts []string
	for i, err := range e {
		if err != nil {
			parts = append(parts, fmt.Sprintf("batch %d: %v", i, err))
		}
	}
	return "heartbeat: append: " + strings.Join(parts, "; ")
}

// BatchErr returns the error for batch i of an Append that returned err:
// nil if it was appended.
func BatchErr(err error, i int) error {
	var ae AppendError
	if errors.As(err, &ae) {
		if i < len(ae) {
			return ae[i]
		}
		return nil
	}
	return err
}

// instState is the mutable recovery state of one instance, shared by the
// log implementations.
type instState struct {
	meta     *Meta
	head     Head
	lastTick *Tick
	reserved float64
	holder   string            // author of the last epoch entry
	presence map[string]uint64 // client -> seq of its join
	snapshot *SnapshotRef
}

func (s *instState) export() LogState {
	ls := LogState{Head: s.head, Reserved: s.reserved, Holder: s.holder}
	if s.meta != nil {
		m := *s.meta
		ls.Meta = &m
	}
	if s.lastTick != nil {
		t := *s.lastTick
		ls.LastTick = &t
	}
	if s.snapshot != nil {
		r := *s.snapshot
		ls.Snapshot = &r
	}
	for c := range s.presence {
		ls.Presence = append(ls.Presence, c)
	}
	slices.Sort(ls.Presence)
	return ls
}

// checkWide validates a batch for [AllInstances].
func checkWide(b *Batch) error {
	if b.Meta != nil || len(b.Entries) > 0 || b.Tick != nil {
		return fmt.Errorf("%w: a log-wide batch carries only a reserved mark", ErrMalformed)
	}
	if err := checkKeyText("holder", b.Holder); err != nil {
		return err
	}
	if b.Reserve < 0 || b.Reserve >= maxSafeInt {
		return fmt.Errorf("%w: reserve out of range", ErrMalformed)
	}
	return nil
}

// check validates b against s without changing s. wide returns a holder's
// log-wide reserved mark; seen reports whether a message id is already in
// the log.
func (s *instState) check(b *Batch, wide func(holder string) float64, seen func(Hash) (bool, error)) error {
	if err := checkKeyText("instance", b.Instance); err != nil {
		return err
	}
	if s.meta == nil {
		if b.Meta == nil {
			return fmt.Errorf("%w: %s", ErrUnknownInstance, b.Instance)
		}
		if err := b.Meta.validate(); err != nil {
			return err
		}
		if b.Meta.Instance != b.Instance {
			return fmt.Errorf("%w: meta names another instance", ErrMalformed)
		}
	} else if b.Meta != nil {
		return fmt.Errorf("%w: instance already created", ErrConflict)
	}
	if b.Reserve < 0 || b.Reserve >= maxSafeInt {
		return fmt.Errorf("%w: reserve out of range", ErrMalformed)
	}
	// The timestamp-oracle rule: nothing may be stored (or, by the
	// sequencer, published) above the reserved mark, so a later term that
	// starts above the mark can never issue a state at or below one already
	// seen.
	// The holder's log-wide mark bounds its states too. An epoch entry
	// must exceed everything the previous holder may have issued: the
	// instance's mark and, when the holder changes, the previous holder's
	// log-wide mark. (A holder starting a new term of its own instance —
	// a restart — may have raised its mark since for other instances; the
	// host starts such a term above the mark it inherited, see Host.)
	holder := s.holder
	mark := max(s.reserved, b.Reserve, wide(holder))
	head := s.head
	ids := map[Hash]struct{}{}
	for i := range b.Entries {
		e := &b.Entries[i]
		if e.Instance != b.Instance {
			return fmt.Errorf("%w: entry for another instance", ErrMalformed)
		}
		if err := e.validate(); err != nil {
			return err
		}
		if e.Epoch < head.Epoch {
			return fmt.Errorf("heartbeat: entry %d epoch %d < %d: %w", e.Seq, e.Epoch, head.Epoch, ErrStaleEpoch)
		}
		switch {
		case e.Seq <= head.Seq:
			return fmt.Errorf("heartbeat: entry %d, head %d: %w", e.Seq, head.Seq, ErrConflict)
		case e.Seq != head.Seq+1:
			return fmt.Errorf("heartbeat: entry %d after head %d (gap): %w", e.Seq, head.Seq, ErrOrder)
		case e.Prev != head.Hash:
			return fmt.Errorf("heartbeat: entry %d prev does not match head: %w", e.Seq, ErrConflict)
		case e.State <= head.State:
			return fmt.Errorf("heartbeat: entry %d state %v <= %v: %w", e.Seq, e.State, head.State, ErrOrder)
		}
		if e.Kind == KindEpoch {
			if e.Epoch <= head.Epoch {
				return fmt.Errorf("heartbeat: epoch entry %d does not raise epoch %d: %w", e.Seq, head.Epoch, ErrStaleEpoch)
			}
			prev := s.reserved
			if e.Author != holder {
				prev = max(prev, wide(holder))
			}
			if e.State <= prev {
				return fmt.Errorf("heartbeat: epoch entry %d state %v at or below reserved %v: %w", e.Seq, e.State, prev, ErrOrder)
			}
			holder = e.Author
			mark = max(s.reserved, b.Reserve, wide(holder))
		} else if e.Epoch != head.Epoch {
			return fmt.Errorf("heartbeat: entry %d changes epoch without an epoch entry: %w", e.Seq, ErrOrder)
		}
		if e.Kind == KindMessage {
			id := e.MessageID()
			if _, dup := ids[id]; dup {
				return fmt.Errorf("heartbeat: message %s twice in one batch: %w", id, ErrDuplicate)
			}
			ids[id] = struct{}{}
			found, err := seen(id)
			if err != nil {
				return err
			}
			if found {
				return fmt.Errorf("heartbeat: message %s: %w", id, ErrDuplicate)
			}
		}
		if e.State > mark {
			return fmt.Errorf("heartbeat: entry %d state %v above the reserved mark %v: %w", e.Seq, e.State, mark, ErrOrder)
		}
		head = Head{Seq: e.Seq, Hash: e.Hash(), State: e.State, Epoch: e.Epoch}
	}
	if t := b.Tick; t != nil {
		if t.Instance != b.Instance {
			return fmt.Errorf("%w: tick for another instance", ErrMalformed)
		}
		if err := t.validate(); err != nil {
			return err
		}
		switch {
		case t.Epoch < head.Epoch:
			return fmt.Errorf("heartbeat: tick epoch %d < %d: %w", t.Epoch, head.Epoch, ErrStaleEpoch)
		case t.Epoch != head.Epoch || t.Seq != head.Seq || t.Head != head.Hash:
			return fmt.Errorf("heartbeat: tick %d/%d not at head %d: %w", t.Epoch, t.N, head.Seq, ErrOrder)
		case t.State <= head.State:
			return fmt.Errorf("heartbeat: tick state %v <= head %v: %w", t.State, head.State, ErrOrder)
		case s.lastTick != nil && t.State <= s.lastTick.State:
			return fmt.Errorf("heartbeat: tick state %v <= last tick %v: %w", t.State, s.lastTick.State, ErrOrder)
		case t.State > mark:
			return fmt.Errorf("heartbeat: tick state %v above the reserved mark %v: %w", t.State, mark, ErrOrder)
		}
		meta := s.meta
		if meta == nil {
			meta = b.Meta
		}
		if t.Start != meta.Start || t.Rate != meta.Rate {
			return fmt.Errorf("heartbeat: tick time base differs from the instance's: %w", ErrOrder)
		}
	}
	return nil
}

// apply applies a checked batch to s.
func (s *instState) apply(b *Batch) {
	if b.Meta != nil && s.meta == nil {
		m := *b.Meta
		s.meta = &m
	}
	for i := range b.Entries {
		e := &b.Entries[i]
		s.head = Head{Seq: e.Seq, Hash: e.Hash(), State: e.State, Epoch: e.Epoch}
		switch e.Kind {
		case KindJoin:
			if s.presence == nil {
				s.presence = map[string]uint64{}
			}
			s.presence[e.Author] = e.Seq
		case KindLeave:
			delete(s.presence, e.Author)
		case KindSnapshot:
			s.snapshot = &SnapshotRef{Seq: e.Ref, Hash: e.RefHash, Marker: e.Seq}
		case KindEpoch:
			s.holder = e.Author
		}
	}
	if b.Tick != nil {
		t := *b.Tick
		s.lastTick = &t
	}
	if b.Reserve > s.reserved {
		s.reserved = b.Reserve
	}
}

// Blobs stores snapshot data by content address (SHA-256).
type Blobs interface {
	// PutBlob stores data durably and returns its hash.
	PutBlob(ctx context.Context, data []byte) (Hash, error)
	// GetBlob returns the data whose hash is h, or [ErrNotFound].
	GetBlob(ctx context.Context, h Hash) ([]byte, error)
}

// ErrNotFound: no blob (or entry) with that key.
var ErrNotFound = errors.New("heartbeat: not found")
