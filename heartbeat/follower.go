package heartbeat

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Position is a point in an instance's log: right after entry Seq.
type Position struct {
	Seq   uint64
	Hash  Hash    // hash of entry Seq; zero when unknown (a joiner starting at a snapshot)
	Epoch uint64  // epoch of entry Seq; 0 when unknown
	State float64 // state of entry Seq; 0 when unknown
}

// FollowerConfig configures a [Follower].
type FollowerConfig struct {
	Instance   string
	Verifier   Verifier    // default KeyVerifier(nil)
	Authorizer Authorizer  // tick and message roles; default OwnerTicks
	Cache      *RoundCache // verified round signatures; default NewRoundCache(1024)
	// SkipAuthorSignatures trusts the sequencer's signature over the chain
	// for message authorship instead of verifying every author signature
	// (one verification per message). Off by default.
	SkipAuthorSignatures bool
	MaxPending           int      // 65,536: entries held ahead of the applied position
	MaxTicks             int      // 1,024: distinct tick positions held ahead
	Recent               int      // 4,096: applied hashes kept to detect forks
	After                Position // start after this position (zero: from the beginning)

	expect *SnapshotRef // set by NewJoiner
}

// Item is one element of the ordered stream a follower emits: an entry or a
// tick, with its Croquet time in seconds.
type Item struct {
	Entry *Entry
	Tick  *Tick
	Time  float64
}

// Range is an inclusive range of seqs.
type Range struct{ From, To uint64 }

// Follower turns entries and ticks received in any order — duplicated,
// delayed, reordered, with gaps — into the instance's total order, each
// element exactly once. It is a pure state machine: feed it with AddEntry
// and AddTick, take output with Ready, and ask for gap fills with Missing.
//
// An entry is applied only once a verified tick covers it: the tick's round
// signature and Merkle path check, its signer holds the tick role (and is
// the holder named by its epoch's KindEpoch entry), and the hash chain from
// the tick's head down to the applied position links every entry in
// between. Unsigned garbage in the pending set is discarded and fetched
// again. Signed contradictions — two heads for one seq, a chain that does
// not reach the applied hash, time that does not increase, an epoch change
// without an epoch entry — are a misbehaving sequencer: the follower stops
// with [ErrFork] or [ErrOrder] and refuses further input ([Follower.Err]).
//
// Ticks are emitted at their position (after entry Seq) when they arrive in
// time; a tick whose position has already been passed is dropped, so the
// tick stream of two followers may differ (idle ticks are never stored) while
// their entry stream, with times, is identical.
type Follower struct {
	cfg     FollowerConfig
	applied Position
	known   bool // applied.Hash is known
	start   float64
	rate    float64
	base    bool
	last    float64 // state of the last emitted item
	holders map[uint64]string
	pending map[uint64]Entry
	ticks   map[uint64]Tick // best (latest) pending tick per position
	recent  map[uint64]recentRec
	order   []uint64 // seqs in recent, oldest first
	out     []Item
	err     error
}

type recentRec struct {
	hash  Hash
	epoch uint64
}

// NewFollower returns a follower positioned at cfg.After.
func NewFollower(cfg FollowerConfig) (*Follower, error) {
	if err := checkKeyText("instance", cfg.Instance); err != nil {
		return nil, err
	}
	if cfg.Verifier == nil {
		cfg.Verifier = KeyVerifier(nil)
	}
	if cfg.Authorizer == nil {
		cfg.Authorizer = OwnerTicks
	}
	if cfg.Cache == nil {
		cfg.Cache = NewRoundCache(1024)
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 65536
	}
	if cfg.MaxTicks <= 0 {
		cfg.MaxTicks = 1024
	}
	if cfg.Recent <= 0 {
		cfg.Recent = 4096
	}
	f := &Follower{cfg: cfg, applied: cfg.After, holders: map[uint64]string{}, pending: map[uint64]Entry{},
		ticks: map[uint64]Tick{}, recent: map[uint64]recentRec{}, last: cfg.After.State}
	f.known = cfg.After.Seq == 0 || !cfg.After.Hash.IsZero()
	if f.known && cfg.After.Seq > 0 {
		f.remember(cfg.After.Seq, cfg.After.Hash, cfg.After.Epoch)
	}
	return f, nil
}

// Applied returns the position after the last applied entry.
func (f *Follower) Applied() Position { return f.applied }

// Err returns the error that stopped the follower, if any.
func (f *Follower) Err() error { return f.err }

// Ready returns the items emitted since the last call, in order.
func (f *Follower) Ready() []Item {
	out := f.out
	f.out = nil
	return out
}

// Missing returns up to max ranges of seqs that are needed (a verified tick
// lies beyond them) but not held.
func (f *Follower) Missing(max int) []Range {
	if f.err != nil || len(f.ticks) == 0 || max <= 0 {
		return nil
	}
	var hi uint64
	for s := range f.ticks {
		hi = maxU(hi, s)
	}
	var out []Range
	for s := f.applied.Seq + 1; s <= hi && len(out) < max; s++ {
		if _, ok := f.pending[s]; ok {
			continue
		}
		r := Range{From: s, To: s}
		for r.To+1 <= hi {
			if _, ok := f.pending[r.To+1]; ok {
				break
			}
			r.To++
		}
		out = append(out, r)
		s = r.To
	}
	return out
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

func (f *Follower) stop(err error) error {
	if f.err == nil {
		f.err = err
	}
	return f.err
}

// AddEntry offers an entry. Entries at or below the applied position and
// entries too far ahead are ignored; the first copy of a pending seq is
// kept (a bad copy is dropped when a signed tick contradicts it).
func (f *Follower) AddEntry(e Entry) error {
	if f.err != nil {
		return f.err
	}
	if e.Instance != f.cfg.Instance {
		return fmt.Errorf("%w: entry for instance %s", ErrMalformed, e.Instance)
	}
	if err := e.validate(); err != nil {
		return err
	}
	if e.Seq <= f.applied.Seq || e.Seq > f.applied.Seq+uint64(f.cfg.MaxPending) {
		return nil
	}
	if _, ok := f.pending[e.Seq]; ok {
		return nil
	}
	f.pending[e.Seq] = e
	return f.advance()
}

// AddTick offers a tick. It returns [ErrBadSignature] or
// [ErrNotAuthorisedToTick] for a tick that must not be believed (the
// follower carries on), and a sticky error for signed contradictions.
func (f *Follower) AddTick(t Tick) error {
	if f.err != nil {
		return f.err
	}
	if t.Instance != f.cfg.Instance {
		return fmt.Errorf("%w: tick for instance %s", ErrMalformed, t.Instance)
	}
	if err := t.validate(); err != nil {
		return err
	}
	if f.applied.Epoch != 0 && t.Epoch < f.applied.Epoch {
		return nil // from an earlier term, already superseded
	}
	if err := VerifyTick(&t, f.cfg.Verifier, f.cfg.Cache); err != nil {
		return err
	}
	if err := f.authorizeTick(&t); err != nil {
		return err
	}
	if f.base && (t.Start != f.start || t.Rate != f.rate) {
		return f.stop(fmt.Errorf("heartbeat: tick %d/%d changes the time base: %w", t.Epoch, t.N, ErrOrder))
	}
	if t.Seq <= f.applied.Seq {
		if r, ok := f.recent[t.Seq]; ok {
			if r.hash != t.Head || r.epoch != t.Epoch {
				return f.stop(fmt.Errorf("heartbeat: tick %d/%d head at seq %d differs from the applied entry: %w", t.Epoch, t.N, t.Seq, ErrFork))
			}
		} else if t.Seq == f.applied.Seq && !f.known {
			// A joiner learns the hash of its starting point from a signed tick.
			f.applied.Hash, f.applied.Epoch, f.known = t.Head, t.Epoch, true
			f.remember(t.Seq, t.Head, t.Epoch)
		}
		if t.Seq == f.applied.Seq && t.State > f.last {
			f.setBase(&t)
			f.emitTick(t)
		}
		return nil
	}
	if t.Seq > f.applied.Seq+uint64(f.cfg.MaxPending) {
		return nil
	}
	if old, ok := f.ticks[t.Seq]; ok {
		if old.Head != t.Head || old.Epoch != t.Epoch {
			return f.stop(fmt.Errorf("heartbeat: two signed heads for seq %d: %w", t.Seq, ErrFork))
		}
		if t.State > old.State {
			f.ticks[t.Seq] = t
		}
		return nil
	}
	if len(f.ticks) >= f.cfg.MaxTicks {
		var hi uint64
		for s := range f.ticks {
			hi = maxU(hi, s)
		}
		if t.Seq < hi {
			return nil
		}
		delete(f.ticks, hi)
	}
	f.ticks[t.Seq] = t
	return f.advance()
}

func (f *Follower) authorizeTick(t *Tick) error {
	if h, ok := f.holders[t.Epoch]; ok {
		if h != t.Proof.Signer {
			return fmt.Errorf("heartbeat: tick %d/%d signed by %s, epoch holder is %s: %w", t.Epoch, t.N, t.Proof.Signer, h, ErrNotAuthorisedToTick)
		}
		return nil
	}
	at := time.UnixMicro(micros(t.State))
	if err := f.cfg.Authorizer.Authorize(context.Background(), t.Instance, t.Proof.Signer, RoleTick, at); err != nil {
		return fmt.Errorf("heartbeat: tick %d/%d by %s: %w: %w", t.Epoch, t.N, t.Proof.Signer, ErrNotAuthorisedToTick, err)
	}
	return nil
}

func (f *Follower) setBase(t *Tick) {
	if !f.base {
		f.start, f.rate, f.base = t.Start, t.Rate, true
	}
}

func (f *Follower) emitTick(t Tick) {
	f.last = t.State
	f.out = append(f.out, Item{Tick: &t, Time: VTime(t.State, f.start, f.rate)})
}

func (f *Follower) remember(seq uint64, h Hash, epoch uint64) {
	f.recent[seq] = recentRec{hash: h, epoch: epoch}
	f.order = append(f.order, seq)
	for len(f.order) > f.cfg.Recent {
		delete(f.recent, f.order[0])
		f.order = f.order[1:]
	}
}

// advance applies every run of pending entries that a pending tick covers.
func (f *Follower) advance() error {
	for {
		target, ok := f.coverable()
		if !ok {
			return nil
		}
		t := f.ticks[target]
		// Walk the chain down from the signed head.
		h := t.Head
		for k := target; k > f.applied.Seq; k-- {
			e := f.pending[k]
			if e.Hash() != h {
				delete(f.pending, k) // unsigned garbage (or a copy from a fork): fetch again
				return nil
			}
			h = e.Prev
		}
		if f.known && h != f.applied.Hash {
			return f.stop(fmt.Errorf("heartbeat: signed chain at seq %d does not extend the applied seq %d: %w", target, f.applied.Seq, ErrFork))
		}
		if err := f.checkRun(target, &t); err != nil {
			return f.stop(err)
		}
		f.setBase(&t)
		f.apply(target)
	}
}

// coverable returns the smallest pending tick position whose entries are all
// held.
func (f *Follower) coverable() (uint64, bool) {
	var seqs []uint64
	for s := range f.ticks {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	for _, s := range seqs {
		for k := f.applied.Seq + 1; k <= s; k++ {
			if _, ok := f.pending[k]; !ok {
				return 0, false
			}
		}
		return s, true
	}
	return 0, false
}

// checkRun checks the signed run applied+1..target: epochs, states, holders,
// author signatures, the expected snapshot marker.
func (f *Follower) checkRun(target uint64, t *Tick) error {
	epoch, state := f.applied.Epoch, f.last
	holders := map[uint64]string{}
	for k := f.applied.Seq + 1; k <= target; k++ {
		e := f.pending[k]
		if e.State <= state {
			return fmt.Errorf("heartbeat: entry %d state %v not after %v: %w", k, e.State, state, ErrOrder)
		}
		state = e.State
		if tk, ok := f.ticks[k]; ok && k < target {
			if tk.Head != e.Hash() || tk.Epoch != e.Epoch {
				return fmt.Errorf("heartbeat: tick %d/%d head at seq %d differs from the signed chain: %w", tk.Epoch, tk.N, k, ErrFork)
			}
			if tk.State <= e.State {
				return fmt.Errorf("heartbeat: tick at %d not after its entry: %w", k, ErrOrder)
			}
			state = tk.State
		}
		switch {
		case e.Kind == KindEpoch:
			if epoch != 0 && e.Epoch <= epoch {
				return fmt.Errorf("heartbeat: epoch entry %d does not raise epoch %d: %w", k, epoch, ErrOrder)
			}
			holders[e.Epoch] = e.Author
		case epoch != 0 && e.Epoch != epoch:
			return fmt.Errorf("heartbeat: entry %d changes epoch without an epoch entry: %w", k, ErrOrder)
		}
		epoch = e.Epoch
		if e.Kind == KindMessage {
			if !f.cfg.SkipAuthorSignatures {
				m := e.Message()
				if err := m.Verify(f.cfg.Verifier); err != nil {
					return fmt.Errorf("heartbeat: sequenced entry %d: %w", k, err)
				}
			}
			at := time.UnixMicro(micros(e.State))
			if err := f.cfg.Authorizer.Authorize(context.Background(), e.Instance, e.Author, RoleMessage, at); err != nil {
				return fmt.Errorf("heartbeat: sequenced entry %d by %s: %w: %w", k, e.Author, ErrNotAuthorised, err)
			}
		}
		if x := f.cfg.expect; x != nil && k == x.Marker {
			if e.Kind != KindSnapshot || e.Ref != x.Seq || e.RefHash != x.Hash {
				return fmt.Errorf("heartbeat: entry %d is not the marker of snapshot %d: %w", k, x.Seq, ErrSnapshotMismatch)
			}
		}
	}
	if t.Epoch != epoch {
		return fmt.Errorf("heartbeat: tick epoch %d at an entry of epoch %d: %w", t.Epoch, epoch, ErrFork)
	}
	if t.State <= state {
		return fmt.Errorf("heartbeat: tick %d/%d state not after entry %d: %w", t.Epoch, t.N, target, ErrOrder)
	}
	for k := f.applied.Seq + 1; k <= target; k++ {
		if tk, ok := f.ticks[k]; ok {
			want := holders[tk.Epoch]
			if want == "" {
				want = f.holders[tk.Epoch]
			}
			if want != "" && want != tk.Proof.Signer {
				return fmt.Errorf("heartbeat: tick %d/%d not signed by its epoch holder: %w", tk.Epoch, tk.N, ErrNotAuthorisedToTick)
			}
		}
	}
	return nil
}

// apply emits the checked run applied+1..target with the ticks positioned
// inside it.
func (f *Follower) apply(target uint64) {
	for k := f.applied.Seq + 1; k <= target; k++ {
		e := f.pending[k]
		delete(f.pending, k)
		h := e.Hash()
		f.remember(k, h, e.Epoch)
		if e.Kind == KindEpoch {
			f.holders[e.Epoch] = e.Author
			for ep := range f.holders {
				if ep+16 < e.Epoch {
					delete(f.holders, ep)
				}
			}
		}
		f.applied = Position{Seq: k, Hash: h, Epoch: e.Epoch, State: e.State}
		f.known = true
		f.last = e.State
		f.out = append(f.out, Item{Entry: &e, Time: VTime(e.State, f.start, f.rate)})
		if t, ok := f.ticks[k]; ok {
			delete(f.ticks, k)
			f.emitTick(t)
		}
	}
}
