package graph

import (
	"testing"
	"time"

	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/internal/jsjson"
)

var epoch = time.UnixMilli(1795666934618).UTC()

func TestStateClockBurst(t *testing.T) {
	fc := clock.NewFake(epoch)
	sc := NewStateClock(fc)
	// gun.md §2.1 (run): 618, 618.001, 618.002, 618.003, 618.004, 618.0051.
	want := []string{"1795666934618", "1795666934618.001", "1795666934618.002", "1795666934618.003", "1795666934618.004", "1795666934618.0051"}
	for i, w := range want {
		if got := string(jsjson.AppendNumber(nil, sc.Now())); got != w {
			t.Errorf("state %d = %s, want %s", i, got, w)
		}
	}
	fc.Advance(time.Millisecond)
	if got := sc.Now(); got != 1795666934619 {
		t.Errorf("next ms = %v", got)
	}
	fc.Advance(time.Second + 500*time.Microsecond) // sub-millisecond part is ignored, like Date.now()
	if got := sc.Now(); got != 1795666935619 {
		t.Errorf("after 1.0005 s = %v", got)
	}
}

func TestStateClockNeverGoesBack(t *testing.T) {
	fc := clock.NewFake(epoch)
	sc := NewStateClock(fc)
	last := sc.Now()
	fc.Set(epoch.Add(-time.Hour)) // NTP step back
	for range 5000 {              // more than 999 per millisecond too
		s := sc.Now()
		if s <= last {
			t.Fatalf("state went from %v to %v", last, s)
		}
		last = s
	}
	if last > float64(epoch.UnixMilli())+10 {
		t.Errorf("states ran far ahead: %v", last)
	}
	if m := sc.machine(); m < last {
		t.Errorf("machine %v below last issued state %v", m, last)
	}
	fc.Set(epoch.Add(time.Minute)) // the wall clock passes the last state again
	if got := sc.Now(); got != float64(epoch.Add(time.Minute).UnixMilli()) {
		t.Errorf("after catching up = %v", got)
	}
}

func TestStateOf(t *testing.T) {
	if got := stateOf(epoch.Add(1500 * time.Microsecond)); got != 1795666934619.5 {
		t.Errorf("stateOf = %v", got)
	}
	if got := stateOf(epoch); got != 1795666934618 {
		t.Errorf("stateOf = %v", got)
	}
}
