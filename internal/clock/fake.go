package clock

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// Fake is a manually driven Clock for tests. The zero value is not usable;
// create one with [NewFake]. All methods are safe for concurrent use.
//
// Timers, tickers and AfterFunc calls are scheduled on the fake's monotonic
// time, which only [Fake.Advance] (and [Fake.AdvanceNext]) move. [Fake.Set]
// changes only the wall clock reported by [Fake.Now].
//
// When a timer or ticker fires, the fake sends the wall time of the firing
// moment on its channel without blocking (each channel buffers one value;
// further ticks are dropped for a slow receiver, as with time.Ticker). An
// AfterFunc callback runs in its own goroutine, as with time.AfterFunc, so
// Advance may return before the callback has run; tests synchronize with the
// callback through their own channels.
type Fake struct {
	// step serializes Advance and Set so that concurrent calls cannot
	// interleave their firing sequences.
	step sync.Mutex

	mu      sync.Mutex
	wall    time.Time     // what Now reports
	mono    time.Duration // monotonic time since NewFake; drives all waiters
	seq     uint64        // arming order, breaks ties between equal deadlines
	armed   waiterHeap
	blocked []blockWaiter
}

type blockWaiter struct {
	n  int
	ch chan struct{}
}

// waiter is one timer, ticker or AfterFunc registration.
type waiter struct {
	f      *Fake
	when   time.Duration // monotonic deadline
	seq    uint64
	period time.Duration  // > 0 for tickers
	ch     chan time.Time // nil for AfterFunc
	fn     func()         // non-nil for AfterFunc
	index  int            // position in f.armed, -1 when not armed
}

// NewFake returns a fake clock whose wall clock reads start and which has no
// armed timers.
func NewFake(start time.Time) *Fake {
	return &Fake{wall: start}
}

var _ Clock = (*Fake)(nil)

// Now returns the fake wall-clock time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wall
}

// NewTimer returns a Timer that fires once the fake has advanced by d. A
// d <= 0 fires immediately.
func (f *Fake) NewTimer(d time.Duration) Timer {
	w := &waiter{f: f, ch: make(chan time.Time, 1), index: -1}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.arm(w, d)
	return (*fakeTimer)(w)
}

// AfterFunc arranges for f to be called in its own goroutine once the fake
// has advanced by d. A d <= 0 calls it immediately (still in its own
// goroutine). The returned Timer's C method returns nil.
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	w := &waiter{f: f, fn: fn, index: -1}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.arm(w, d)
	return (*fakeTimer)(w)
}

// NewTicker returns a Ticker that fires every d of fake monotonic time. It
// panics if d <= 0.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	w := &waiter{f: f, period: d, ch: make(chan time.Time, 1), index: -1}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.arm(w, d)
	return (*fakeTicker)(w)
}

// Advance moves the wall clock and the monotonic clock forward by d, firing
// every timer, ticker and AfterFunc that becomes due, in deadline order (ties
// in the order they were armed). While a waiter fires, Now reports its
// deadline. A ticker fires once per elapsed period, so Advance(3*period)
// fires it three times; only one tick is buffered, the rest are dropped
// unless a receiver keeps up. A negative d panics.
func (f *Fake) Advance(d time.Duration) {
	if d < 0 {
		panic("clock: negative Advance")
	}
	f.step.Lock()
	defer f.step.Unlock()
	f.mu.Lock()
	target := f.mono + d
	f.mu.Unlock()
	for f.fireNext(target) {
	}
	f.mu.Lock()
	f.moveTo(target)
	f.mu.Unlock()
}

// AdvanceNext advances the clock to the earliest armed deadline and fires
// everything due at that instant. It returns how far the clock moved, and
// false (without moving) if nothing is armed. It is useful when the code
// under test picks its own delays, such as jittered backoff.
func (f *Fake) AdvanceNext() (time.Duration, bool) {
	f.step.Lock()
	defer f.step.Unlock()
	f.mu.Lock()
	if len(f.armed) == 0 {
		f.mu.Unlock()
		return 0, false
	}
	start, target := f.mono, f.armed[0].when
	f.mu.Unlock()
	for f.fireNext(target) {
	}
	f.mu.Lock()
	f.moveTo(target)
	f.mu.Unlock()
	return target - start, true
}

// Set jumps the wall clock to t, forwards or backwards. It does not move the
// monotonic clock, so no timer, ticker or AfterFunc fires and none is
// rescheduled: like the time package, cadence is immune to wall-clock steps.
func (f *Fake) Set(t time.Time) {
	f.step.Lock()
	defer f.step.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wall = t
}

// Armed reports how many timers, tickers and AfterFunc calls are currently
// waiting to fire.
func (f *Fake) Armed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.armed)
}

// BlockUntil blocks until at least n timers, tickers or AfterFunc calls are
// armed. Tests call it before Advance to be sure that the goroutine under
// test has armed its timer. It blocks forever if that never happens; use
// [Fake.BlockUntilContext] to bound the wait.
func (f *Fake) BlockUntil(n int) {
	_ = f.BlockUntilContext(context.Background(), n)
}

// BlockUntilContext is like [Fake.BlockUntil] but gives up when ctx is done,
// returning ctx.Err().
func (f *Fake) BlockUntilContext(ctx context.Context, n int) error {
	f.mu.Lock()
	if len(f.armed) >= n {
		f.mu.Unlock()
		return nil
	}
	bw := blockWaiter{n: n, ch: make(chan struct{})}
	f.blocked = append(f.blocked, bw)
	f.mu.Unlock()
	select {
	case <-bw.ch:
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		for i, b := range f.blocked {
			if b.ch == bw.ch {
				f.blocked = append(f.blocked[:i], f.blocked[i+1:]...)
				break
			}
		}
		f.mu.Unlock()
		return ctx.Err()
	}
}

// fireNext fires the earliest waiter due at or before target and reports
// whether it fired one. The lock is released between firings so that the
// receivers of earlier events can observe the clock and re-arm.
func (f *Fake) fireNext(target time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.armed) == 0 || f.armed[0].when > target {
		return false
	}
	w := f.armed[0]
	f.moveTo(w.when)
	if w.period > 0 {
		f.seq++
		w.seq = f.seq
		w.when += w.period
		heap.Fix(&f.armed, 0)
	} else {
		heap.Pop(&f.armed)
	}
	f.fire(w)
	return true
}

// moveTo moves the monotonic clock to m (never backwards), dragging the wall
// clock along by the same amount. f.mu must be held.
func (f *Fake) moveTo(m time.Duration) {
	if m <= f.mono {
		return
	}
	f.wall = f.wall.Add(m - f.mono)
	f.mono = m
}

// fire delivers one event for w. f.mu must be held.
func (f *Fake) fire(w *waiter) {
	if w.fn != nil {
		go w.fn()
		return
	}
	select {
	case w.ch <- f.wall:
	default: // a value is already pending: drop, like time.Ticker
	}
}

// arm schedules w to fire d from now, firing at once if d <= 0. f.mu must be
// held and w must not be armed.
func (f *Fake) arm(w *waiter, d time.Duration) {
	if d <= 0 && w.period == 0 {
		f.fire(w)
		return
	}
	f.seq++
	w.seq = f.seq
	w.when = f.mono + d
	heap.Push(&f.armed, w)
	f.wake()
}

// disarm removes w from the schedule, drains any pending value, and reports
// whether w was armed or had an undelivered value. f.mu must be held.
func (f *Fake) disarm(w *waiter) bool {
	active := false
	if w.index >= 0 {
		heap.Remove(&f.armed, w.index)
		active = true
	}
	if w.ch != nil {
		select {
		case <-w.ch:
			active = true
		default:
		}
	}
	return active
}

// wake releases BlockUntil callers whose count has been reached. f.mu must be
// held.
func (f *Fake) wake() {
	kept := f.blocked[:0]
	for _, b := range f.blocked {
		if len(f.armed) >= b.n {
			close(b.ch)
		} else {
			kept = append(kept, b)
		}
	}
	for i := len(kept); i < len(f.blocked); i++ {
		f.blocked[i] = blockWaiter{}
	}
	f.blocked = kept
}

type fakeTimer waiter

func (t *fakeTimer) C() <-chan time.Time {
	if t.ch == nil {
		return nil
	}
	return t.ch
}

func (t *fakeTimer) Stop() bool {
	w := (*waiter)(t)
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	return w.f.disarm(w)
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	w := (*waiter)(t)
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	active := w.f.disarm(w)
	w.f.arm(w, d)
	return active
}

type fakeTicker waiter

func (t *fakeTicker) C() <-chan time.Time { return t.ch }

func (t *fakeTicker) Stop() {
	w := (*waiter)(t)
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	w.f.disarm(w)
}

func (t *fakeTicker) Reset(d time.Duration) {
	if d <= 0 {
		panic("clock: non-positive interval for Ticker.Reset")
	}
	w := (*waiter)(t)
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	w.f.disarm(w)
	w.period = d
	w.f.arm(w, d)
}

// waiterHeap orders waiters by deadline, then by arming order.
type waiterHeap []*waiter

func (h waiterHeap) Len() int { return len(h) }

func (h waiterHeap) Less(i, j int) bool {
	if h[i].when != h[j].when {
		return h[i].when < h[j].when
	}
	return h[i].seq < h[j].seq
}

func (h waiterHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *waiterHeap) Push(x any) {
	w := x.(*waiter)
	w.index = len(*h)
	*h = append(*h, w)
}

func (h *waiterHeap) Pop() any {
	old := *h
	n := len(old)
	w := old[n-1]
	old[n-1] = nil
	w.index = -1
	*h = old[:n-1]
	return w
}
