package sched

import "testing"

// TestYieldCounts checks where Yield yields: once per Every items, at the
// last index of each group.
func TestYieldCounts(t *testing.T) {
	n := 0
	for i := range 3*Every + 10 {
		if yields(i) {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d yields in %d items, want 3", n, 3*Every+10)
	}
	if yields(0) || !yields(Every-1) {
		t.Fatal("yields at the wrong index")
	}
}

func BenchmarkYield(b *testing.B) {
	for i := range b.N {
		Yield(i)
	}
}
