package api

import (
	"strconv"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/internal/clock"
)

func TestDedupWindow(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_800_000_000, 0))
	d := newDedup(clk, 9*time.Second, 1<<16)
	if d.seen("a") {
		t.Fatal("first sight reported as seen")
	}
	if !d.seen("a") {
		t.Fatal("second sight not reported")
	}
	// Remembered for at least the window, whatever the rotation phase.
	clk.Advance(8 * time.Second)
	if !d.seen("a") {
		t.Fatal("forgotten before the window")
	}
	d.seen("b")
	clk.Advance(9 * time.Second) // a: 17 s old; b: 9 s old
	if !d.seen("b") {
		t.Fatal("b forgotten at exactly the window")
	}
	clk.Advance(19 * time.Second)
	if d.seen("a") || d.seen("b") {
		t.Fatal("ids remembered beyond twice the window")
	}
}

func TestDedupBounded(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_800_000_000, 0))
	early := 0
	d := newDedup(clk, time.Hour, 1024)
	d.onEarly = func() { early++ }
	for i := range 100_000 {
		d.seen("id" + strconv.Itoa(i))
	}
	total := 0
	for i := range d.shards {
		total += len(d.shards[i].cur) + len(d.shards[i].prev)
	}
	if total > 1024+2*dedupShards {
		t.Fatalf("%d entries held, cap 1024", total)
	}
	if early == 0 {
		t.Fatal("no early rotation counted")
	}
	// The most recent ids are still remembered.
	if !d.seen("id99999") {
		t.Fatal("latest id forgotten")
	}
}

func TestDedupClockStepBack(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_800_000_000, 0))
	d := newDedup(clk, 9*time.Second, 1<<16)
	d.seen("a")
	clk.Set(clk.Now().Add(-time.Hour))
	d.seen("b") // rotates; must not panic or grow
	if !d.seen("b") {
		t.Fatal("b not remembered after a clock step")
	}
}
