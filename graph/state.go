package graph

import (
	"math"
	"sync"
	"time"

	"github.com/krestianstvo/luminary/internal/clock"
)

// stateSteps is gun's D: states taken within one millisecond are spaced by
// 1/999 ms.
const stateSteps = 999

// StateClock issues HAM states the way Gun.state() does: the wall clock in
// milliseconds since the Unix epoch as a float64, with the second, third, ...
// state taken within the same millisecond at +1/999, +2/999, ... ms, so
// states stay unique (while fewer than 999 are taken per millisecond the
// values are exactly gun's).
//
// Unlike gun, a StateClock never goes backwards. If the wall clock is set
// back (an NTP step), it keeps issuing states from the last one in the same
// 1/999 ms steps until the wall clock passes the last state again; so
// states stay strictly increasing, at the price of running slightly fast
// for a while. It is safe for concurrent use.
type StateClock struct {
	c    clock.Clock
	mu   sync.Mutex
	last float64 // last state issued
	base float64 // wall millisecond the current run of steps started from
	n    int     // steps taken since base
}

// NewStateClock returns a StateClock reading c.
func NewStateClock(c clock.Clock) *StateClock {
	return &StateClock{c: c, last: math.Inf(-1)}
}

// Now returns a new state, strictly greater than every state this clock
// returned before.
func (s *StateClock) Now() float64 {
	t := float64(s.c.Now().UnixMilli())
	s.mu.Lock()
	defer s.mu.Unlock()
	if t > s.last {
		s.base, s.n, s.last = t, 0, t
		return t
	}
	s.n++
	v := s.base + float64(s.n)/stateSteps
	if v <= s.last { // only if the steps fall below float64 resolution
		v = math.Nextafter(s.last, math.Inf(1))
	}
	s.last = v
	return v
}

// machine returns the local machine state HAM compares incoming states
// with, without issuing a state: the wall clock in (fractional)
// milliseconds, or the last issued state if that is later (so that our own
// states are never "from the future" after the wall clock was set back).
func (s *StateClock) machine() float64 {
	t := stateOf(s.c.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(t, s.last)
}

// stateOf converts t to fractional milliseconds since the Unix epoch,
// exact for whole milliseconds.
func stateOf(t time.Time) float64 {
	return float64(t.UnixMilli()) + float64(t.Nanosecond()%int(time.Millisecond))/float64(time.Millisecond)
}
