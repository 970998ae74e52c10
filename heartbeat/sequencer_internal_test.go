package heartbeat

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestMicrosRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for range 100000 {
		us := int64(1.7e15) + r.Int64N(1e14)
		if got := micros(stateOf(us)); got != us {
			t.Fatalf("micros(stateOf(%d)) = %d", us, got)
		}
		s := float64(us)/1000 + r.Float64()/1000
		u := micros(s)
		if float64(u)/1000 < s || float64(u-1)/1000 >= s {
			t.Fatalf("micros(%v) = %d is not the ceiling", s, u)
		}
	}
}

func TestSequencerBaseAndMonotonic(t *testing.T) {
	wall := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	w := stateOf(wall.UnixMicro())
	meta := Meta{Instance: "I", Rate: 1, TPS: 20}
	for _, c := range []struct {
		name           string
		last, reserved float64
		want           float64
	}{
		{"fresh", 0, 0, w},
		{"wall ahead", w - 10000, w - 5000, w},
		{"last issued ahead of wall", w + 1000, 0, w + 1050},
		{"reserved ahead of wall", w, w + 400, w + 400.001},
	} {
		b, _ := BaseState(TermStart{Meta: meta, LastState: c.last, Reserved: c.reserved, Wall: wall})
		if b != c.want {
			t.Errorf("%s: base %v, want %v", c.name, b, c.want)
		}
	}
	s, e := NewSequencer(TermStart{Meta: meta, Holder: "H", Epoch: 3, Head: Head{Seq: 9, Epoch: 2}, Wall: wall, Elapsed: time.Second})
	if e.Seq != 10 || e.Kind != KindEpoch || e.Ref != 2 || e.State != w || s.Meta().Start != w {
		t.Fatalf("epoch entry %+v", e)
	}
	// Elapsed that does not move still gives strictly increasing states.
	prev := e.State
	for range 5 {
		x := s.Append(Entry{Kind: KindJoin, Author: "c"}, time.Second)
		if !(x.State > prev) {
			t.Fatalf("state %v after %v", x.State, prev)
		}
		prev = x.State
	}
	tk := s.Tick(time.Second + 50*time.Millisecond)
	if tk.Seq != 15 || tk.State != w+50 {
		t.Fatalf("tick %+v", tk)
	}
	// The first reservation covers what was issued plus ReserveAhead.
	mark, need := s.Reservation()
	if !need || mark != w+50+500 || s.Covered() {
		t.Fatalf("reservation %v %v", mark, need)
	}
	s.Reserved(mark)
	if _, need := s.Reservation(); need || !s.Covered() {
		t.Fatal("reservation still needed")
	}
	s.Tick(time.Second + 320*time.Millisecond) // within half of ReserveAhead of the mark
	if _, need := s.Reservation(); !need {
		t.Fatal("no reservation near the mark")
	}
}
