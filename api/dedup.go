package api

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/krestianstvo/luminary/internal/clock"
)

// dedup remembers message ids so that a message heard twice (from two
// peers, or echoed back through a relay loop) is handled once, as gun's
// dup.js does.
//
// Memory is bounded: ids are stored as 64-bit keyed hashes (maphash with a
// per-process random seed, so strangers cannot aim collisions) in two
// generations per shard. The current generation fills until window has
// passed, then becomes the previous one and the old previous one is dropped,
// so an id is remembered for at least window and at most 2*window. If a
// generation reaches its share of the entry cap first, it rotates early: the
// window shrinks under a flood instead of memory growing (counted in
// luminary_dedup_early_rotations_total).
type dedup struct {
	clock  clock.Clock
	window time.Duration
	seed   maphash.Seed
	shards [dedupShards]dedupShard
	perGen int // entry cap per generation per shard

	onEarly func() // called on an early rotation (metrics)
}

const dedupShards = 16

type dedupShard struct {
	mu    sync.Mutex
	start time.Time // when cur began
	cur   map[uint64]struct{}
	prev  map[uint64]struct{}
}

// newDedup returns a dedup with the given window and total entry cap.
func newDedup(c clock.Clock, window time.Duration, maxEntries int) *dedup {
	d := &dedup{clock: c, window: window, seed: maphash.MakeSeed()}
	d.perGen = max(maxEntries/(2*dedupShards), 16)
	now := c.Now()
	for i := range d.shards {
		s := &d.shards[i]
		s.start = now
		s.cur = make(map[uint64]struct{})
		s.prev = make(map[uint64]struct{})
	}
	return d
}

// seen reports whether id was remembered already, and remembers it.
func (d *dedup) seen(id string) bool {
	h := maphash.String(d.seed, id)
	s := &d.shards[h%dedupShards]
	now := d.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if el := now.Sub(s.start); el >= d.window || el < 0 {
		// A wall clock stepped backwards also rotates (el < 0); that
		// can only shorten memory to one window, never grow it.
		if el >= 2*d.window || el < 0 {
			clear(s.prev)
		} else {
			s.prev, s.cur = s.cur, s.prev
		}
		clear(s.cur)
		s.start = now
	}
	if _, ok := s.cur[h]; ok {
		return true
	}
	if _, ok := s.prev[h]; ok {
		return true
	}
	if len(s.cur) >= d.perGen {
		s.prev, s.cur = s.cur, s.prev
		clear(s.cur)
		s.start = now
		if d.onEarly != nil {
			d.onEarly()
		}
	}
	s.cur[h] = struct{}{}
	return false
}

// remember records id without asking whether it was known.
func (d *dedup) remember(id string) { d.seen(id) }
