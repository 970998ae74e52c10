package heartbeat_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/krestianstvo/luminary/heartbeat"
)

// A tally decides a point once: with a quorum of distinct voters for one
// hash and the data held; repeats, other hashes and later votes decide
// nothing; pruning at an accepted point forgets it; the bound on pending
// votes holds.
func TestVoteTally(t *testing.T) {
	h1, h2 := heartbeat.SHA256([]byte("one")), heartbeat.SHA256([]byte("two"))
	vote := func(seq uint64, h heartbeat.Hash, author string) heartbeat.SnapshotVote {
		return heartbeat.SnapshotVote{Seq: seq, Hash: h, Author: author}
	}
	tl := heartbeat.NewVoteTally()
	for _, c := range []struct {
		v        heartbeat.SnapshotVote
		haveData bool
		want     []string
	}{
		{vote(5, h1, "a"), true, nil},
		{vote(5, h1, "a"), true, nil}, // a repeat does not count twice
		{vote(5, h2, "b"), true, nil}, // another hash
		{vote(5, h1, "c"), false, nil},
		{vote(5, h1, "d"), true, []string{"a", "c", "d"}},
		{vote(5, h1, "e"), true, nil}, // decided already
	} {
		got, err := tl.Add(c.v, 2, c.haveData, 100)
		if err != nil || !slices.Equal(got, c.want) {
			t.Fatalf("Add(%s %d by %s, data %v) = %v, %v; want %v", c.v.Hash, c.v.Seq, c.v.Author, c.haveData, got, err, c.want)
		}
	}
	tl.Prune(5)
	if got, _ := tl.Add(vote(5, h1, "f"), 1, true, 100); !slices.Equal(got, []string{"f"}) {
		t.Fatalf("after pruning, a quorum of one decides again: %v", got)
	}
	small := heartbeat.NewVoteTally()
	for i, a := range []string{"a", "b"} {
		if _, err := small.Add(vote(uint64(i+1), h1, a), 3, true, 2); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := small.Add(vote(9, h1, "c"), 3, true, 2); !errors.Is(err, heartbeat.ErrQueueFull) {
		t.Fatalf("a third pending vote with room for two: %v", err)
	}
}
