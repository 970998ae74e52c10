// Package clock injects time into Luminary so that code which waits, ticks or
// stamps can be tested deterministically.
//
// Use [System] in production and [NewFake] in tests. Code that needs time takes
// a [Clock] (usually through its Config) instead of calling the time package
// directly; a test then drives the fake with [Fake.Advance] and waits for a
// goroutine to arm its timer with [Fake.BlockUntil], so no test ever sleeps.
//
// # Two kinds of time
//
// A Clock answers two different questions, and the fake keeps them apart:
//
//   - Cadence: timers, tickers and AfterFunc run on a monotonic clock. The
//     heartbeat metronome ticks every 50 ms of elapsed time whatever the wall
//     clock says, exactly like the time package, whose timers ignore wall
//     clock jumps.
//   - Stamps: [Clock.Now] is the wall clock. Gun HAM states and Croquet time
//     are wall-clock milliseconds, so they can jump, even backwards, when the
//     host's clock is corrected.
//
// [Fake.Advance] moves both forward together and fires whatever becomes due,
// in deadline order. [Fake.Set] moves only the wall clock (forwards or
// backwards) and never fires anything, which lets tests model NTP steps and
// skewed peers without disturbing the cadence.
//
// The fake's [Fake.Now] carries no monotonic reading, so t.Sub of two fake
// times is plain wall-clock arithmetic and goes negative after a backwards
// [Fake.Set]; with the system clock, time.Time.Sub uses the monotonic reading
// instead. Code that must measure elapsed time robustly should measure it with
// timers or tickers, not by subtracting Now values.
package clock

import "time"

// Clock is the source of time. Implementations must be safe for concurrent
// use.
type Clock interface {
	// Now returns the current wall-clock time.
	Now() time.Time
	// NewTimer returns a Timer that sends the current time on its channel
	// after at least d has elapsed. A d <= 0 fires immediately.
	NewTimer(d time.Duration) Timer
	// NewTicker returns a Ticker that sends the time on its channel every d.
	// It panics if d <= 0, like time.NewTicker.
	NewTicker(d time.Duration) Ticker
	// AfterFunc calls f in its own goroutine after d has elapsed. The
	// returned Timer's C method returns nil; use Stop to cancel the call.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a single-shot event, like *time.Timer.
type Timer interface {
	// C returns the channel on which the fire time is delivered. It is nil
	// for timers made by AfterFunc.
	C() <-chan time.Time
	// Stop prevents the timer from firing. It reports whether the call
	// stopped the timer (false if it had already expired or been stopped).
	// After Stop returns, no stale value is received from C.
	Stop() bool
	// Reset re-arms the timer to fire after d. It reports whether the timer
	// had been active. After Reset returns, no stale value from before the
	// Reset is received from C.
	Reset(d time.Duration) bool
}

// Ticker delivers ticks at intervals, like *time.Ticker. Its channel holds at
// most one pending tick; ticks are dropped for slow receivers.
type Ticker interface {
	// C returns the channel on which ticks are delivered.
	C() <-chan time.Time
	// Stop turns off the ticker. No further ticks are delivered, and no
	// stale tick is received after Stop returns. Stop does not close C.
	Stop()
	// Reset stops the ticker and restarts it with period d, the next tick
	// arriving after d. It panics if d <= 0.
	Reset(d time.Duration)
}

// System returns the real clock, backed by the time package. Its timers and
// tickers run on the operating system's monotonic clock.
func System() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

func (systemClock) NewTicker(d time.Duration) Ticker { return systemTicker{time.NewTicker(d)} }

func (systemClock) AfterFunc(d time.Duration, f func()) Timer {
	return systemTimer{time.AfterFunc(d, f)}
}

type systemTimer struct{ t *time.Timer }

func (s systemTimer) C() <-chan time.Time        { return s.t.C }
func (s systemTimer) Stop() bool                 { return s.t.Stop() }
func (s systemTimer) Reset(d time.Duration) bool { return s.t.Reset(d) }

type systemTicker struct{ t *time.Ticker }

func (s systemTicker) C() <-chan time.Time   { return s.t.C }
func (s systemTicker) Stop()                 { s.t.Stop() }
func (s systemTicker) Reset(d time.Duration) { s.t.Reset(d) }
