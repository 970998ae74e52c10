package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/krestianstvo/luminary/internal/clock"
)

// AcceptorConfig configures an [Acceptor].
type AcceptorConfig struct {
	Log        Log        // required
	Lease      Lease      // required: the relay's lease table (remote holders acquire through the relay)
	Verifier   Verifier   // default KeyVerifier(nil)
	Authorizer Authorizer // default OwnerTicks
	Cache      *RoundCache
	Clock      clock.Clock
	Sink       Sink // receives accepted publications; nil discards
	// MaxAhead bounds how far a state may lie ahead of the relay clock
	// (default 2 s); beyond it a batch is refused with ErrFuture, so a
	// metronome with a fast clock cannot push states that gun.js peers would
	// hold back (HAM defers future states) or that block later ticks.
	MaxAhead     time.Duration
	WindowPast   time.Duration // 120 s: message timestamp vs its sequenced state
	WindowFuture time.Duration // 30 s
	MaxEntries   int           // 4,096 entries per batch
	// Presence, if set, judges each join and leave entry in a batch
	// (kind KindJoin or KindLeave, client = the entry's author) before it
	// is accepted: a relay allows only the presence it handed the holder.
	// A non-nil error refuses the batch with ErrNotAuthorised.
	Presence func(instance, holder string, epoch uint64, kind Kind, client string) error
	// Snapshot judges each snapshot entry (the relay accepts only the
	// marker it decided from the members' votes and handed the holder:
	// [Host.AppendSnapshot]). Nil refuses every snapshot entry.
	Snapshot func(instance, holder string, epoch uint64, e *Entry) error
}

// Acceptor is the relay side of a remote sequencer: a peer that holds the
// tick role and the relay's lease sends its batches (entries plus the signed
// tick that covers them, or an idle tick) and the relay accepts them into
// its log and publishes them only if:
//
//   - the tick's Merkle path and round signature verify ([ErrBadSignature]);
//   - its signer holds the tick role and is the current lease holder, and
//     the tick's epoch is the current grant's ([ErrNotAuthorisedToTick],
//     [ErrStaleEpoch]) — two metronomes can never both be accepted;
//   - entries continue the log exactly and times strictly increase, also
//     against the last accepted idle tick, and stay at or below the reserved
//     mark ([ErrOrder]); no state lies beyond the relay clock + MaxAhead
//     ([ErrFuture]);
//   - every message entry carries a valid author signature, by a key holding
//     the message role, with a timestamp inside the window of its state
//     ([ErrTimestampWindow]); no message is sequenced twice ([ErrDuplicate]);
//   - every snapshot entry passes the Snapshot hook (the relay counts the
//     members' votes and accepts only the marker it decided) and every join
//     and leave the Presence hook (only the presence it handed the holder)
//     ([ErrNotAuthorised]).
//
// A refused batch leaves nothing stored. The relay's own [Host] does not go
// through the Acceptor (it validates by construction and the log's
// compare-and-append fences it).
type Acceptor struct {
	cfg  AcceptorConfig
	mu   sync.Mutex
	last map[string]float64 // last accepted tick state per instance (idle ticks included)
}

// NewAcceptor returns an Acceptor.
func NewAcceptor(cfg AcceptorConfig) (*Acceptor, error) {
	if cfg.Log == nil || cfg.Lease == nil {
		return nil, errors.New("heartbeat: acceptor needs Log and Lease")
	}
	if cfg.Verifier == nil {
		cfg.Verifier = KeyVerifier(nil)
	}
	if cfg.Authorizer == nil {
		cfg.Authorizer = OwnerTicks
	}
	if cfg.Cache == nil {
		cfg.Cache = NewRoundCache(4096)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System()
	}
	if cfg.MaxAhead <= 0 {
		cfg.MaxAhead = 2 * time.Second
	}
	if cfg.WindowPast <= 0 {
		cfg.WindowPast = 120 * time.Second
	}
	if cfg.WindowFuture <= 0 {
		cfg.WindowFuture = 30 * time.Second
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 4096
	}
	return &Acceptor{cfg: cfg, last: map[string]float64{}}, nil
}

// Accept checks b and, if it passes, appends it durably (when it carries
// entries, metadata or a reservation) and publishes it. b.Tick is required.
func (a *Acceptor) Accept(ctx context.Context, b Batch) error {
	t := b.Tick
	if t == nil {
		return fmt.Errorf("%w: sequencer batch without a tick", ErrMalformed)
	}
	if len(b.Entries) > a.cfg.MaxEntries {
		return fmt.Errorf("heartbeat: batch of %d entries: %w", len(b.Entries), ErrTooLarge)
	}
	if t.Instance != b.Instance {
		return fmt.Errorf("%w: tick for another instance", ErrMalformed)
	}
	if err := t.validate(); err != nil {
		return err
	}
	if err := VerifyTick(t, a.cfg.Verifier, a.cfg.Cache); err != nil {
		return err
	}
	now := a.cfg.Clock.Now()
	signer := t.Proof.Signer
	if err := a.cfg.Authorizer.Authorize(ctx, b.Instance, signer, RoleTick, now); err != nil {
		return fmt.Errorf("heartbeat: %s ticking %s: %w: %w", signer, b.Instance, ErrNotAuthorisedToTick, err)
	}
	g, ok, err := a.cfg.Lease.Current(ctx, b.Instance)
	if err != nil {
		return err
	}
	switch {
	case !ok || g.Holder != signer:
		return fmt.Errorf("heartbeat: %s does not hold the lease of %s: %w", signer, b.Instance, ErrNotAuthorisedToTick)
	case t.Epoch < g.Epoch:
		return fmt.Errorf("heartbeat: tick epoch %d, current %d: %w", t.Epoch, g.Epoch, ErrStaleEpoch)
	case t.Epoch > g.Epoch:
		return fmt.Errorf("heartbeat: tick epoch %d was never granted (current %d): %w", t.Epoch, g.Epoch, ErrNotAuthorisedToTick)
	}
	limit := now.Add(a.cfg.MaxAhead).UnixMicro()
	if micros(t.State) > limit {
		return fmt.Errorf("heartbeat: tick state %v is %v ahead: %w", t.State, time.Duration(micros(t.State)-now.UnixMicro())*time.Microsecond, ErrFuture)
	}
	for i := range b.Entries {
		e := &b.Entries[i]
		if err := a.checkEntry(ctx, e, signer, g.Epoch); err != nil {
			return err
		}
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	ls, err := a.cfg.Log.State(ctx, b.Instance)
	if err != nil {
		return err
	}
	if last, ok := a.last[b.Instance]; ok && t.State <= last {
		return fmt.Errorf("heartbeat: tick state %v <= last accepted %v: %w", t.State, last, ErrOrder)
	}
	st := &instState{meta: ls.Meta, head: ls.Head, lastTick: ls.LastTick, reserved: ls.Reserved}
	seen := func(id Hash) (bool, error) {
		_, ok, err := a.cfg.Log.Lookup(ctx, b.Instance, id)
		return ok, err
	}
	st.holder = ls.Holder
	wide := func(holder string) float64 {
		m, _ := a.cfg.Log.HolderMark(ctx, holder)
		return m
	}
	stored := b
	if len(b.Entries) == 0 {
		stored.Tick = nil // idle ticks are published, not stored
		probe := b
		if err := st.check(&probe, wide, seen); err != nil {
			return orderErr(err)
		}
	} else if err := st.check(&b, wide, seen); err != nil {
		return orderErr(err)
	}
	if !stored.empty() {
		if err := a.cfg.Log.Append(ctx, []Batch{stored}); err != nil {
			return orderErr(BatchErr(err, 0))
		}
	}
	a.last[b.Instance] = t.State
	if a.cfg.Sink != nil {
		meta := ls.Meta
		if meta == nil {
			meta = b.Meta
		}
		a.cfg.Sink.Publish(Publication{Meta: *meta, Entries: b.Entries, Tick: *t, Stored: len(b.Entries) > 0})
	}
	return nil
}

// orderErr reports a compare-and-append conflict as what it is from a
// remote sequencer's point of view: a repeated or out-of-order seq.
func orderErr(err error) error {
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("%w (%w)", ErrOrder, err)
	}
	return err
}

func (a *Acceptor) checkEntry(ctx context.Context, e *Entry, signer string, epoch uint64) error {
	if e.Epoch != epoch {
		return fmt.Errorf("heartbeat: entry %d epoch %d, grant %d: %w", e.Seq, e.Epoch, epoch, ErrStaleEpoch)
	}
	switch e.Kind {
	case KindEpoch:
		if e.Author != signer {
			return fmt.Errorf("heartbeat: epoch entry %d names %s, signer is %s: %w", e.Seq, e.Author, signer, ErrNotAuthorisedToTick)
		}
	case KindJoin, KindLeave:
		if a.cfg.Presence != nil {
			if err := a.cfg.Presence(e.Instance, signer, epoch, e.Kind, e.Author); err != nil {
				return fmt.Errorf("heartbeat: entry %d: %s of %s: %w: %w", e.Seq, e.Kind, e.Author, ErrNotAuthorised, err)
			}
		}
	case KindSnapshot:
		// A snapshot is chosen by the members' votes, which the relay
		// counts; a remote sequencer only logs the marker the relay
		// decided. Anything else would let a tick-role key point late
		// joiners at any state it likes.
		if a.cfg.Snapshot == nil {
			return fmt.Errorf("heartbeat: entry %d: no snapshot was decided for a remote sequencer: %w", e.Seq, ErrNotAuthorised)
		}
		if err := a.cfg.Snapshot(e.Instance, signer, epoch, e); err != nil {
			return fmt.Errorf("heartbeat: entry %d: snapshot %d: %w: %w", e.Seq, e.Ref, ErrNotAuthorised, err)
		}
	case KindMessage:
		m := e.Message()
		if err := m.Verify(a.cfg.Verifier); err != nil {
			return err
		}
		at := time.UnixMicro(micros(e.State))
		if err := a.cfg.Authorizer.Authorize(ctx, e.Instance, e.Author, RoleMessage, at); err != nil {
			return fmt.Errorf("heartbeat: entry %d by %s: %w: %w", e.Seq, e.Author, ErrNotAuthorised, err)
		}
		ts := time.UnixMilli(e.TS)
		if ts.Before(at.Add(-a.cfg.WindowPast)) || ts.After(at.Add(a.cfg.WindowFuture)) {
			return fmt.Errorf("heartbeat: entry %d ts %d vs state %v: %w", e.Seq, e.TS, e.State, ErrTimestampWindow)
		}
	}
	return nil
}
