package heartbeat_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/heartbeat/heartbeattest"
)

// longStream returns a stream of n messages from 3 authors with a tick
// after every few.
func longStream(n int) *heartbeattest.Stream {
	owner := heartbeattest.Signer(1)
	s := heartbeattest.NewStream(owner, owner.Public(), 1, heartbeat.Head{}, nil, 0, heartbeattest.Epoch)
	authors := []heartbeat.Signer{heartbeattest.Signer(2), heartbeattest.Signer(3), heartbeattest.Signer(4)}
	s.Tick(10 * time.Millisecond)
	for i := range n {
		s.Message(authors[i%3], heartbeattest.Epoch.UnixMilli(), `{"i":1}`)
		if i%4 == 3 {
			s.Tick(20 * time.Millisecond)
			s.Tick(20 * time.Millisecond) // an idle tick
		}
	}
	s.Tick(time.Millisecond)
	return s
}

func follow(t *testing.T, f *heartbeat.Follower, entries []heartbeat.Entry, ticks []heartbeat.Tick, order []int) []heartbeat.Item {
	t.Helper()
	var out []heartbeat.Item
	for _, i := range order {
		var err error
		if i < len(entries) {
			err = f.AddEntry(entries[i])
		} else {
			err = f.AddTick(ticks[i-len(entries)])
		}
		if err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
		out = append(out, f.Ready()...)
	}
	return out
}

func entriesOf(items []heartbeat.Item) []heartbeat.Item {
	var out []heartbeat.Item
	for _, it := range items {
		if it.Entry != nil {
			out = append(out, it)
		}
	}
	return out
}

func TestFollowerAnyOrderSameStream(t *testing.T) {
	s := longStream(40)
	inst := s.Seq.Meta().Instance
	n := len(s.Entries) + len(s.Ticks)
	inOrder := make([]int, 0, n)
	// Reference: entries and ticks in their total order.
	ti := 0
	for i, e := range s.Entries {
		inOrder = append(inOrder, i)
		for ti < len(s.Ticks) && s.Ticks[ti].Seq == e.Seq {
			inOrder = append(inOrder, len(s.Entries)+ti)
			ti++
		}
	}
	f, _ := heartbeat.NewFollower(heartbeat.FollowerConfig{Instance: inst})
	ref := follow(t, f, s.Entries, s.Ticks, inOrder)
	if len(entriesOf(ref)) != len(s.Entries) || len(ref) != n {
		t.Fatalf("in order: %d items (%d entries), want %d (%d)", len(ref), len(entriesOf(ref)), n, len(s.Entries))
	}
	for i := 1; i < len(ref); i++ {
		if !(ref[i].Time > ref[i-1].Time) {
			t.Fatalf("time not increasing at %d", i)
		}
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	cache := heartbeat.NewRoundCache(1024)
	for trial := range 100 {
		order := rnd.Perm(n)
		for range rnd.IntN(20) { // duplicates
			order = append(order, rnd.IntN(n))
		}
		rnd.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		f, _ := heartbeat.NewFollower(heartbeat.FollowerConfig{Instance: inst, Cache: cache, SkipAuthorSignatures: true})
		got := entriesOf(follow(t, f, s.Entries, s.Ticks, order))
		want := entriesOf(ref)
		if len(got) != len(want) {
			t.Fatalf("trial %d: %d entries, want %d (missing %v)", trial, len(got), len(want), f.Missing(3))
		}
		for i := range got {
			if got[i].Entry.Hash() != want[i].Entry.Hash() || got[i].Time != want[i].Time {
				t.Fatalf("trial %d: item %d differs", trial, i)
			}
		}
	}
}

func TestFollowerMissingAndGarbage(t *testing.T) {
	s := longStream(8)
	inst := s.Seq.Meta().Instance
	f, _ := heartbeat.NewFollower(heartbeat.FollowerConfig{Instance: inst})
	last := s.Ticks[len(s.Ticks)-1]
	if err := f.AddTick(last); err != nil {
		t.Fatal(err)
	}
	miss := f.Missing(10)
	if len(miss) != 1 || miss[0].From != 1 || miss[0].To != last.Seq {
		t.Fatalf("missing %v, want 1..%d", miss, last.Seq)
	}
	// A tampered copy of entry 3 (unsigned garbage) is dropped, then asked for again.
	bad := s.Entries[2]
	bad.Payload = `{"evil":1}`
	if err := f.AddEntry(bad); err != nil {
		t.Fatal(err)
	}
	for i, e := range s.Entries {
		if i != 2 {
			if err := f.AddEntry(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	if miss := f.Missing(10); len(miss) != 1 || miss[0].From != 3 || miss[0].To != 3 {
		t.Fatalf("after garbage: missing %v, want [3,3]", miss)
	}
	if err := f.AddEntry(s.Entries[2]); err != nil {
		t.Fatal(err)
	}
	if got := len(entriesOf(f.Ready())); got != len(s.Entries) {
		t.Fatalf("applied %d of %d", got, len(s.Entries))
	}
}

func TestFollowerDetectsFork(t *testing.T) {
	owner := heartbeattest.Signer(1)
	a := heartbeattest.NewStream(owner, owner.Public(), 1, heartbeat.Head{}, nil, 0, heartbeattest.Epoch)
	b := heartbeattest.NewStream(owner, owner.Public(), 1, heartbeat.Head{}, nil, 0, heartbeattest.Epoch)
	a.Message(heartbeattest.Signer(2), heartbeattest.Epoch.UnixMilli(), `"a"`)
	b.Message(heartbeattest.Signer(2), heartbeattest.Epoch.UnixMilli(), `"b"`)
	ta, tb := a.Tick(time.Millisecond), b.Tick(time.Millisecond)
	f, _ := heartbeat.NewFollower(heartbeat.FollowerConfig{Instance: owner.Public()})
	for _, e := range a.Entries {
		if err := f.AddEntry(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.AddTick(ta); err != nil {
		t.Fatal(err)
	}
	if err := f.AddTick(tb); !errors.Is(err, heartbeat.ErrFork) {
		t.Fatalf("second head for seq 2: %v, want ErrFork", err)
	}
	if err := f.AddTick(ta); !errors.Is(err, heartbeat.ErrFork) {
		t.Fatal("follower did not stay stopped")
	}
	// Two signed heads for one pending seq are a fork too.
	f2, _ := heartbeat.NewFollower(heartbeat.FollowerConfig{Instance: owner.Public()})
	_ = f2.AddTick(ta)
	if err := f2.AddTick(tb); !errors.Is(err, heartbeat.ErrFork) {
		t.Fatalf("two pending heads: %v", err)
	}
}

// Table A row 20 at a follower: a tick by a key without the tick role, or
// not by its epoch's holder, is refused and changes nothing.
func TestFollowerRefusesUnauthorisedTick(t *testing.T) {
	s := longStream(2)
	inst := s.Seq.Meta().Instance
	f, _ := heartbeat.NewFollower(heartbeat.FollowerConfig{Instance: inst})
	for _, e := range s.Entries {
		_ = f.AddEntry(e)
	}
	rogue := heartbeattest.Resign(heartbeattest.Signer(66), s.Ticks[len(s.Ticks)-1].TickRecord)
	if err := f.AddTick(rogue); !errors.Is(err, heartbeat.ErrNotAuthorisedToTick) {
		t.Fatalf("rogue tick: %v", err)
	}
	if f.Applied().Seq != 0 || len(f.Ready()) != 0 {
		t.Fatal("rogue tick applied entries")
	}
	// A key that may tick (per the authorizer) but is not the epoch's holder.
	allowAll := heartbeat.AuthorizerFunc(func(_ context.Context, _, _ string, _ heartbeat.Role, _ time.Time) error { return nil })
	f2, _ := heartbeat.NewFollower(heartbeat.FollowerConfig{Instance: inst, Authorizer: allowAll})
	for _, e := range s.Entries {
		_ = f2.AddEntry(e)
	}
	if err := f2.AddTick(s.Ticks[0]); err != nil {
		t.Fatal(err)
	}
	other := heartbeattest.Resign(heartbeattest.Signer(66), s.Ticks[len(s.Ticks)-1].TickRecord)
	if err := f2.AddTick(other); !errors.Is(err, heartbeat.ErrNotAuthorisedToTick) {
		t.Fatalf("non-holder tick: %v", err)
	}
}

// A signed tick positioned after an entry but earlier in time is a
// sequencer defect (table A row 23 at a follower).
func TestFollowerRefusesTimeOrderViolation(t *testing.T) {
	owner := heartbeattest.Signer(1)
	s := heartbeattest.NewStream(owner, owner.Public(), 1, heartbeat.Head{}, nil, 0, heartbeattest.Epoch)
	e := s.Message(heartbeattest.Signer(2), heartbeattest.Epoch.UnixMilli(), `1`)
	tk := s.Tick(time.Millisecond)
	rec := tk.TickRecord
	rec.State = e.State - 0.001
	bad := heartbeattest.Resign(owner, rec)
	f, _ := heartbeat.NewFollower(heartbeat.FollowerConfig{Instance: owner.Public()})
	for _, x := range s.Entries {
		_ = f.AddEntry(x)
	}
	if err := f.AddTick(bad); !errors.Is(err, heartbeat.ErrOrder) {
		t.Fatalf("tick before its entry: %v", err)
	}
}
