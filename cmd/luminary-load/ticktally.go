package main

// tickTally follows one instance's ticks as one follower receives them. It
// is pure bookkeeping (times are passed in), so it is tested without
// sleeping. Definitions:
//
//   - A tick is new when its counter n is above the last one seen in the
//     same epoch; a repeat or an older n counts in Dups and is otherwise
//     ignored. An epoch change restarts the counter (Epochs counts them).
//   - A tick is "in the window" as decided by the caller (gun.js: its n was
//     written during the measured window; Luminary: it arrived during it).
//   - Received counts new ticks in the window. Expected counts the ticks
//     the counters say were issued from the first in-window tick to the
//     last: for two consecutive in-window ticks n1 < n2, n2 − n1; the first
//     in-window tick of an epoch counts 1. Lost = Expected − Received
//     (the ticks skipped between consecutive arrivals).
//   - A gap is the arrival time between two consecutive new ticks that are
//     both in the window, in the same epoch.
type tickTally struct {
	started bool
	epoch   uint64
	lastN   uint64
	lastAt  int64 // unix ns of the last new tick
	lastIn  bool  // whether the last new tick was in the window

	Received uint64
	Expected uint64
	Dups     uint64
	Epochs   uint64
}

// observe records tick (epoch, n) arriving at `at` (unix ns). It returns
// the gap to the previous new tick when both are in the window.
func (t *tickTally) observe(epoch, n uint64, at int64, inWindow bool) (gap int64, ok bool) {
	switch {
	case !t.started:
		t.started = true
	case epoch != t.epoch:
		t.Epochs++
	case n <= t.lastN:
		t.Dups++
		return 0, false
	default:
		if inWindow {
			t.Received++
			if t.lastIn {
				t.Expected += n - t.lastN
				gap, ok = at-t.lastAt, true
			} else {
				t.Expected++
			}
		}
		t.lastN, t.lastAt, t.lastIn = n, at, inWindow
		return gap, ok
	}
	// First tick seen, or first of a new epoch.
	t.epoch, t.lastN, t.lastAt, t.lastIn = epoch, n, at, inWindow
	if inWindow {
		t.Received++
		t.Expected++
	}
	return 0, false
}

// lost returns Expected − Received.
func (t *tickTally) lost() uint64 {
	if t.Expected < t.Received {
		return 0
	}
	return t.Expected - t.Received
}

// tickTotals sums tallies.
type tickTotals struct {
	Followed  int    `json:"followed"` // (follower, instance) pairs
	Silent    int    `json:"silent"`   // pairs that received no tick in the window
	Received  uint64 `json:"received"` // new ticks in the window, all pairs
	Expected  uint64 `json:"expected"` // by the counters (see tickTally)
	LostByGap uint64 `json:"lost_by_gap"`
	MaxLost   uint64 `json:"max_lost_one_instance"`
	Dups      uint64 `json:"dups"`
	Epochs    uint64 `json:"epoch_changes"`
}

func (s *tickTotals) add(t *tickTally) {
	s.Followed++
	if t.Received == 0 {
		s.Silent++
	}
	s.Received += t.Received
	s.Expected += t.Expected
	l := t.lost()
	s.LostByGap += l
	s.MaxLost = max(s.MaxLost, l)
	s.Dups += t.Dups
	s.Epochs += t.Epochs
}
