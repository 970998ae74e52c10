package clock_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/internal/clock"
)

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// recv returns the pending value on c, failing if there is none. Fake
// channels are filled synchronously by Advance, so no waiting is needed.
func recv(t *testing.T, c <-chan time.Time) time.Time {
	t.Helper()
	select {
	case v := <-c:
		return v
	default:
		t.Fatal("expected a pending value, got none")
		return time.Time{}
	}
}

func empty(t *testing.T, c <-chan time.Time) {
	t.Helper()
	select {
	case v := <-c:
		t.Fatalf("expected no pending value, got %v", v)
	default:
	}
}

// wait blocks on c with a generous real-time bound, for events that happen in
// other goroutines.
func wait[T any](t *testing.T, c <-chan T) T {
	t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case v := <-c:
		return v
	case <-timer.C:
		t.Fatal("timed out waiting")
		var zero T
		return zero
	}
}

func TestFakeNowAdvanceSet(t *testing.T) {
	f := clock.NewFake(epoch)
	if got := f.Now(); !got.Equal(epoch) {
		t.Fatalf("Now = %v, want %v", got, epoch)
	}
	f.Advance(1500 * time.Millisecond)
	if got, want := f.Now(), epoch.Add(1500*time.Millisecond); !got.Equal(want) {
		t.Fatalf("Now = %v, want %v", got, want)
	}
	back := epoch.Add(-time.Hour)
	f.Set(back)
	if got := f.Now(); !got.Equal(back) {
		t.Fatalf("after Set, Now = %v, want %v", got, back)
	}
	f.Advance(time.Second)
	if got, want := f.Now(), back.Add(time.Second); !got.Equal(want) {
		t.Fatalf("Now = %v, want %v", got, want)
	}
}

func TestFakeAdvanceNegativePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Advance(-1) did not panic")
		}
	}()
	clock.NewFake(epoch).Advance(-1)
}

func TestFakeTimerFiresAtDeadline(t *testing.T) {
	f := clock.NewFake(epoch)
	tm := f.NewTimer(100 * time.Millisecond)
	if f.Armed() != 1 {
		t.Fatalf("Armed = %d, want 1", f.Armed())
	}
	f.Advance(99 * time.Millisecond)
	empty(t, tm.C())
	f.Advance(time.Millisecond)
	if got, want := recv(t, tm.C()), epoch.Add(100*time.Millisecond); !got.Equal(want) {
		t.Fatalf("fired with %v, want %v", got, want)
	}
	if f.Armed() != 0 {
		t.Fatalf("Armed = %d after firing, want 0", f.Armed())
	}
	f.Advance(time.Hour)
	empty(t, tm.C())
	if tm.Stop() {
		t.Fatal("Stop of an expired, received timer returned true")
	}
}

func TestFakeTimerValueIsFiringMoment(t *testing.T) {
	// Advance past several deadlines at once: each timer sees the wall time
	// of its own deadline, showing that the clock moves in steps.
	f := clock.NewFake(epoch)
	ds := []time.Duration{300, 100, 200, 100}
	var timers []clock.Timer
	for _, d := range ds {
		timers = append(timers, f.NewTimer(d*time.Millisecond))
	}
	f.Advance(time.Second)
	for i, tm := range timers {
		if got, want := recv(t, tm.C()), epoch.Add(ds[i]*time.Millisecond); !got.Equal(want) {
			t.Errorf("timer %d fired with %v, want %v", i, got, want)
		}
	}
	if got, want := f.Now(), epoch.Add(time.Second); !got.Equal(want) {
		t.Fatalf("Now = %v, want %v", got, want)
	}
}

func TestFakeTimerNonPositiveFiresImmediately(t *testing.T) {
	f := clock.NewFake(epoch)
	for _, d := range []time.Duration{0, -time.Second} {
		tm := f.NewTimer(d)
		if got := recv(t, tm.C()); !got.Equal(epoch) {
			t.Fatalf("NewTimer(%v) fired with %v, want %v", d, got, epoch)
		}
	}
	if f.Armed() != 0 {
		t.Fatalf("Armed = %d, want 0", f.Armed())
	}
}

func TestFakeTimerStop(t *testing.T) {
	f := clock.NewFake(epoch)
	tm := f.NewTimer(time.Second)
	if !tm.Stop() {
		t.Fatal("Stop of an armed timer returned false")
	}
	if tm.Stop() {
		t.Fatal("second Stop returned true")
	}
	f.Advance(2 * time.Second)
	empty(t, tm.C())

	// Stop after firing but before receiving: the pending value is
	// discarded and Stop reports true, as with Go 1.23+ timers.
	tm = f.NewTimer(time.Second)
	f.Advance(time.Second)
	if !tm.Stop() {
		t.Fatal("Stop with an unreceived value returned false")
	}
	empty(t, tm.C())
}

func TestFakeTimerReset(t *testing.T) {
	f := clock.NewFake(epoch)
	tm := f.NewTimer(time.Second)
	f.Advance(900 * time.Millisecond)
	if !tm.Reset(time.Second) {
		t.Fatal("Reset of an armed timer returned false")
	}
	f.Advance(900 * time.Millisecond)
	empty(t, tm.C())
	f.Advance(100 * time.Millisecond)
	if got, want := recv(t, tm.C()), epoch.Add(1900*time.Millisecond); !got.Equal(want) {
		t.Fatalf("fired with %v, want %v", got, want)
	}
	if tm.Reset(time.Second) {
		t.Fatal("Reset of an expired, received timer returned true")
	}
	if f.Armed() != 1 {
		t.Fatalf("Armed = %d, want 1", f.Armed())
	}
	// A stale value from before Reset is not delivered.
	f.Advance(time.Second)
	tm.Reset(time.Second)
	empty(t, tm.C())
	f.Advance(time.Second)
	recv(t, tm.C())
}

func TestFakeTickerCadence(t *testing.T) {
	f := clock.NewFake(epoch)
	tk := f.NewTicker(50 * time.Millisecond)
	defer tk.Stop()
	for i := 1; i <= 5; i++ {
		f.Advance(50 * time.Millisecond)
		if got, want := recv(t, tk.C()), epoch.Add(time.Duration(i)*50*time.Millisecond); !got.Equal(want) {
			t.Fatalf("tick %d = %v, want %v", i, got, want)
		}
	}
	f.Advance(49 * time.Millisecond)
	empty(t, tk.C())
	if f.Armed() != 1 {
		t.Fatalf("Armed = %d, want 1", f.Armed())
	}
}

func TestFakeTickerDropsForSlowReceiver(t *testing.T) {
	f := clock.NewFake(epoch)
	tk := f.NewTicker(time.Second)
	defer tk.Stop()
	f.Advance(10 * time.Second)
	// Only the first tick is buffered; the other nine were dropped.
	if got, want := recv(t, tk.C()), epoch.Add(time.Second); !got.Equal(want) {
		t.Fatalf("buffered tick = %v, want %v", got, want)
	}
	empty(t, tk.C())
	// The cadence is preserved: the next tick is at 11s, not 10s+1s later.
	f.Advance(999 * time.Millisecond)
	empty(t, tk.C())
	f.Advance(time.Millisecond)
	if got, want := recv(t, tk.C()), epoch.Add(11*time.Second); !got.Equal(want) {
		t.Fatalf("tick = %v, want %v", got, want)
	}
}

func TestFakeTickerReceiverKeepsUp(t *testing.T) {
	// A receiver that keeps up sees every tick, each stamped with its own
	// period boundary.
	f := clock.NewFake(epoch)
	tk := f.NewTicker(time.Second)
	defer tk.Stop()
	got := make(chan time.Time)
	go func() {
		for i := 0; i < 3; i++ {
			got <- <-tk.C()
		}
	}()
	for i := 1; i <= 3; i++ {
		f.Advance(time.Second)
		if v, want := wait(t, got), epoch.Add(time.Duration(i)*time.Second); !v.Equal(want) {
			t.Fatalf("tick %d = %v, want %v", i, v, want)
		}
	}
}

func TestFakeSetNeverFiresTickers(t *testing.T) {
	f := clock.NewFake(epoch)
	tk := f.NewTicker(time.Second)
	defer tk.Stop()
	tm := f.NewTimer(time.Second)
	fired := make(chan struct{}, 1)
	f.AfterFunc(time.Second, func() { fired <- struct{}{} })

	f.Set(epoch.Add(time.Hour)) // forward jump
	empty(t, tk.C())
	empty(t, tm.C())
	f.Set(epoch.Add(-time.Hour)) // backward jump
	empty(t, tk.C())
	empty(t, tm.C())
	if f.Armed() != 3 {
		t.Fatalf("Armed = %d, want 3", f.Armed())
	}
	select {
	case <-fired:
		t.Fatal("AfterFunc ran on Set")
	default:
	}

	// One monotonic second later everything fires, stamped with the
	// (now earlier) wall clock.
	f.Advance(time.Second)
	want := epoch.Add(-time.Hour + time.Second)
	if got := recv(t, tk.C()); !got.Equal(want) {
		t.Fatalf("tick = %v, want %v", got, want)
	}
	if got := recv(t, tm.C()); !got.Equal(want) {
		t.Fatalf("timer = %v, want %v", got, want)
	}
	wait(t, fired)
}

func TestFakeTickerStopReset(t *testing.T) {
	f := clock.NewFake(epoch)
	tk := f.NewTicker(time.Second)
	f.Advance(time.Second)
	tk.Stop()
	empty(t, tk.C()) // Stop drains the pending tick
	if f.Armed() != 0 {
		t.Fatalf("Armed = %d after Stop, want 0", f.Armed())
	}
	f.Advance(5 * time.Second)
	empty(t, tk.C())

	tk.Reset(2 * time.Second)
	f.Advance(time.Second)
	empty(t, tk.C())
	f.Advance(time.Second)
	if got, want := recv(t, tk.C()), epoch.Add(8*time.Second); !got.Equal(want) {
		t.Fatalf("tick = %v, want %v", got, want)
	}
	f.Advance(2 * time.Second)
	recv(t, tk.C())
	tk.Stop()
}

func TestFakeTickerPanicsOnNonPositive(t *testing.T) {
	f := clock.NewFake(epoch)
	for _, d := range []time.Duration{0, -1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewTicker(%v) did not panic", d)
				}
			}()
			f.NewTicker(d)
		}()
	}
	tk := f.NewTicker(time.Second)
	defer func() {
		if recover() == nil {
			t.Error("Reset(0) did not panic")
		}
	}()
	tk.Reset(0)
}

func TestFakeAfterFunc(t *testing.T) {
	f := clock.NewFake(epoch)
	ran := make(chan time.Time, 1)
	tm := f.AfterFunc(time.Second, func() { ran <- f.Now() })
	if tm.C() != nil {
		t.Fatal("AfterFunc timer has a non-nil channel")
	}
	f.Advance(999 * time.Millisecond)
	select {
	case <-ran:
		t.Fatal("AfterFunc ran early")
	default:
	}
	f.Advance(time.Millisecond)
	if got, want := wait(t, ran), epoch.Add(time.Second); got.Before(want) {
		t.Fatalf("callback saw Now = %v, want >= %v", got, want)
	}
	if tm.Stop() {
		t.Fatal("Stop after the call returned true")
	}
}

func TestFakeAfterFuncRunsInOwnGoroutine(t *testing.T) {
	// A callback that blocks must not block Advance, and a callback may
	// use the clock (here: re-arm itself) without deadlocking.
	f := clock.NewFake(epoch)
	release := make(chan struct{})
	rearmed := make(chan struct{})
	f.AfterFunc(time.Second, func() {
		<-release
		f.AfterFunc(time.Second, func() { close(rearmed) })
	})
	f.Advance(time.Second) // returns although the callback is blocked
	close(release)
	f.BlockUntil(1) // the callback re-armed
	f.Advance(time.Second)
	wait(t, rearmed)
}

func TestFakeAfterFuncStopReset(t *testing.T) {
	f := clock.NewFake(epoch)
	var calls atomic.Int32
	done := make(chan struct{}, 4)
	tm := f.AfterFunc(time.Second, func() { calls.Add(1); done <- struct{}{} })
	if !tm.Stop() {
		t.Fatal("Stop of pending AfterFunc returned false")
	}
	f.Advance(time.Hour)
	if tm.Reset(time.Second) {
		t.Fatal("Reset of stopped AfterFunc returned true")
	}
	f.Advance(time.Second)
	wait(t, done)
	if tm.Reset(time.Second) {
		t.Fatal("Reset after the call returned true")
	}
	f.Advance(time.Second)
	wait(t, done)
	if n := calls.Load(); n != 2 {
		t.Fatalf("callback ran %d times, want 2", n)
	}
}

func TestFakeAfterFuncZeroDelay(t *testing.T) {
	f := clock.NewFake(epoch)
	done := make(chan struct{})
	f.AfterFunc(0, func() { close(done) })
	wait(t, done)
}

func TestFakeBlockUntil(t *testing.T) {
	f := clock.NewFake(epoch)
	start := make(chan struct{})
	got := make(chan time.Time, 1)
	go func() {
		<-start
		tm := f.NewTimer(time.Minute)
		got <- <-tm.C()
	}()
	armed := make(chan struct{})
	go func() { f.BlockUntil(1); close(armed) }()
	select {
	case <-armed:
		t.Fatal("BlockUntil returned before anything was armed")
	default:
	}
	close(start)
	wait(t, armed)
	f.Advance(time.Minute)
	if v := wait(t, got); !v.Equal(epoch.Add(time.Minute)) {
		t.Fatalf("got %v", v)
	}
	// Already satisfied: returns at once.
	f.BlockUntil(0)
}

func TestFakeBlockUntilContext(t *testing.T) {
	f := clock.NewFake(epoch)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- f.BlockUntilContext(ctx, 2) }()
	f.NewTimer(time.Second) // one is not enough
	cancel()
	if err := wait(t, errc); err != context.Canceled {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go func() { errc <- f.BlockUntilContext(ctx2, 2) }()
	f.NewTicker(time.Second)
	if err := wait(t, errc); err != nil {
		t.Fatalf("err = %v, want nil", err)
	}
}

func TestFakeArmedCounts(t *testing.T) {
	f := clock.NewFake(epoch)
	tm := f.NewTimer(time.Second)
	tk := f.NewTicker(time.Second)
	af := f.AfterFunc(2*time.Second, func() {})
	if n := f.Armed(); n != 3 {
		t.Fatalf("Armed = %d, want 3", n)
	}
	f.Advance(time.Second) // timer done, ticker re-armed
	if n := f.Armed(); n != 2 {
		t.Fatalf("Armed = %d, want 2", n)
	}
	af.Stop()
	tk.Stop()
	tm.Stop()
	if n := f.Armed(); n != 0 {
		t.Fatalf("Armed = %d, want 0", n)
	}
}

func TestFakeAdvanceNext(t *testing.T) {
	f := clock.NewFake(epoch)
	if _, ok := f.AdvanceNext(); ok {
		t.Fatal("AdvanceNext with nothing armed reported true")
	}
	a := f.NewTimer(3 * time.Second)
	b := f.NewTimer(7 * time.Second)
	if d, ok := f.AdvanceNext(); !ok || d != 3*time.Second {
		t.Fatalf("AdvanceNext = %v, %v; want 3s, true", d, ok)
	}
	recv(t, a.C())
	empty(t, b.C())
	if d, ok := f.AdvanceNext(); !ok || d != 4*time.Second {
		t.Fatalf("AdvanceNext = %v, %v; want 4s, true", d, ok)
	}
	recv(t, b.C())
	if got, want := f.Now(), epoch.Add(7*time.Second); !got.Equal(want) {
		t.Fatalf("Now = %v, want %v", got, want)
	}
}

func TestFakeConcurrentUse(t *testing.T) {
	// Exercised under -race: arming, stopping, resetting and advancing from
	// many goroutines at once.
	f := clock.NewFake(epoch)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			tk := f.NewTicker(time.Duration(i+1) * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tk.C():
				default:
				}
				tm := f.NewTimer(time.Duration(i) * time.Millisecond)
				tm.Reset(time.Millisecond)
				tm.Stop()
				f.AfterFunc(time.Millisecond, func() {}).Stop()
				_ = f.Now()
				_ = f.Armed()
			}
		}(i)
	}
	for i := 0; i < 200; i++ {
		f.Advance(time.Millisecond)
		if i%50 == 0 {
			f.Set(f.Now().Add(-time.Second))
		}
	}
	close(stop)
	wg.Wait()
}

func TestSystemClock(t *testing.T) {
	c := clock.System()
	before := time.Now()
	if now := c.Now(); now.Before(before) {
		t.Fatalf("System Now %v before %v", now, before)
	}
	tm := c.NewTimer(time.Millisecond)
	wait(t, tm.C())
	if tm.Stop() {
		t.Fatal("Stop after fire returned true")
	}
	tk := c.NewTicker(time.Millisecond)
	wait(t, tk.C())
	tk.Reset(2 * time.Millisecond)
	wait(t, tk.C())
	tk.Stop()
	done := make(chan struct{})
	af := c.AfterFunc(time.Millisecond, func() { close(done) })
	wait(t, done)
	if af.C() != nil {
		t.Fatal("System AfterFunc timer has a channel")
	}
	long := c.NewTimer(time.Hour)
	if !long.Stop() {
		t.Fatal("Stop of a pending system timer returned false")
	}
	if long.Reset(time.Hour) {
		t.Fatal("Reset of a stopped system timer returned true")
	}
	long.Stop()
}
