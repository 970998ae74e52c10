package heartbeat

import (
	"time"
)

// Sequencer is the pure core of one instance's sequencer term: it assigns
// epoch, seq, HAM state and previous hash to entries and creates tick
// records. It performs no I/O and reads no clock; callers pass the wall
// clock once (at term start) and monotonic elapsed time on every call. The
// [Host] drives it; a remote metronome or the JetStream step can drive it the
// same way.
//
// Time: a term starts at base state
//
//	B = max(wall now, last known issued state + one tick period, reserved mark + 1 µs)
//
// and then issues B + (elapsed − elapsed at start), on a microsecond grid,
// strictly increasing (at least 1 µs apart). Wall-clock steps after the
// start change nothing, and no term ever issues a state at or below one
// issued by an earlier term, because every issued state is at or below the
// durable reserved mark (see [Sequencer.Reservation]).
type Sequencer struct {
	meta        Meta
	holder      string
	epoch       uint64
	head        Head
	baseUs      int64
	baseElapsed time.Duration
	lastUs      int64
	reservedUs  int64
	ahead       time.Duration
	n           uint64
}

// TermStart is what a sequencer term starts from.
type TermStart struct {
	Meta         Meta          // the instance; Meta.Start == 0 for a new instance (set to the base)
	Holder       string        // public key text of the sequencer (lease holder)
	Epoch        uint64        // the lease epoch; must exceed Head.Epoch
	Head         Head          // log head (zero for a new instance)
	LastState    float64       // highest state known issued (head, last stored tick)
	Reserved     float64       // durable reserved mark (upper bound of anything issued)
	Wall         time.Time     // wall clock now
	Elapsed      time.Duration // monotonic elapsed now
	ReserveAhead time.Duration // how far ahead to reserve (default 500 ms)
}

// BaseState returns the base state B of a term starting from ts (see
// [Sequencer]), and how far it lies ahead of ts.Wall.
func BaseState(ts TermStart) (float64, time.Duration) {
	b, wall := baseMicros(ts)
	return stateOf(b), time.Duration(b-wall) * time.Microsecond
}

func baseMicros(ts TermStart) (base, wall int64) {
	wall = ts.Wall.UnixMicro()
	base = wall
	if ts.LastState > 0 {
		if v := micros(ts.LastState) + periodOf(ts.Meta.TPS).Microseconds(); v > base {
			base = v
		}
	}
	if ts.Reserved > 0 {
		if v := micros(ts.Reserved) + 1; v > base {
			base = v
		}
	}
	return base, wall
}

// NewSequencer starts a term and returns it with its first entry, the
// KindEpoch entry (state B) that records the holder and the previous epoch.
// For a new instance (ts.Meta.Start == 0) the returned sequencer's Meta has
// Start = B, so the genesis entry is at Croquet time 0.
func NewSequencer(ts TermStart) (*Sequencer, Entry) {
	b, _ := baseMicros(ts)
	ahead := ts.ReserveAhead
	if ahead <= 0 {
		ahead = 500 * time.Millisecond
	}
	s := &Sequencer{
		meta: ts.Meta, holder: ts.Holder, epoch: ts.Epoch, head: ts.Head,
		baseUs: b, baseElapsed: ts.Elapsed, lastUs: b - 1, ahead: ahead,
	}
	if ts.Reserved > 0 {
		s.reservedUs = micros(ts.Reserved)
	}
	if s.meta.Start == 0 {
		s.meta.Start = stateOf(b)
	}
	e := s.Append(Entry{Kind: KindEpoch, Author: ts.Holder, Ref: ts.Head.Epoch}, ts.Elapsed)
	return s, e
}

// Meta returns the instance metadata (with Start set).
func (s *Sequencer) Meta() Meta { return s.meta }

// Epoch returns the term's epoch.
func (s *Sequencer) Epoch() uint64 { return s.epoch }

// Holder returns the term's holder key.
func (s *Sequencer) Holder() string { return s.holder }

// Head returns the last entry assigned (not necessarily durable yet).
func (s *Sequencer) Head() Head { return s.head }

// LastState returns the last state issued.
func (s *Sequencer) LastState() float64 { return stateOf(s.lastUs) }

func (s *Sequencer) stamp(elapsed time.Duration) int64 {
	us := s.baseUs + (elapsed - s.baseElapsed).Microseconds()
	if us <= s.lastUs {
		us = s.lastUs + 1
	}
	s.lastUs = us
	return us
}

// Append assigns instance, epoch, seq, state and prev to e (whose kind and
// payload fields the caller sets) and makes it the head.
func (s *Sequencer) Append(e Entry, elapsed time.Duration) Entry {
	e.Instance = s.meta.Instance
	e.Epoch = s.epoch
	e.Seq = s.head.Seq + 1
	e.Prev = s.head.Hash
	e.State = stateOf(s.stamp(elapsed))
	s.head = Head{Seq: e.Seq, Hash: e.Hash(), State: e.State, Epoch: e.Epoch}
	return e
}

// Tick returns the next tick record, positioned after the current head.
func (s *Sequencer) Tick(elapsed time.Duration) TickRecord {
	s.n++
	return TickRecord{
		Instance: s.meta.Instance, Epoch: s.epoch, N: s.n, Seq: s.head.Seq, Head: s.head.Hash,
		State: stateOf(s.stamp(elapsed)), Start: s.meta.Start, Rate: s.meta.Rate,
	}
}

// Reservation reports whether the reserved mark must be raised before the
// states issued so far may be published, and to what. It asks for a new
// mark (last issued + ReserveAhead) once the last issued state comes within
// half of ReserveAhead of the durable mark. Call [Sequencer.Reserved] once
// the new mark is durable.
func (s *Sequencer) Reservation() (float64, bool) {
	if s.lastUs+s.ahead.Microseconds()/2 <= s.reservedUs {
		return 0, false
	}
	return stateOf(s.lastUs + s.ahead.Microseconds()), true
}

// Reserved records that mark is durable.
func (s *Sequencer) Reserved(mark float64) {
	if u := micros(mark); u > s.reservedUs {
		s.reservedUs = u
	}
}

// Covered reports whether every state issued so far is at or below the
// durable reserved mark, so a tick may be published without a disk write.
func (s *Sequencer) Covered() bool { return s.lastUs <= s.reservedUs }
