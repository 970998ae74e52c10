// Package sched holds the relay's one scheduling aid: cooperative yields in
// loops that run over every world of a round.
//
// A relay hosting thousands of worlds spends several milliseconds at a time
// in single loops (stepping every world, hashing a round's Merkle tree,
// building and merging its diff). Go preempts a running goroutine only
// after about 10 ms, so while two such loops hold both processors, a
// goroutine whose timer fired (the one that releases held rounds to their
// followers on time) or whose socket became writable waits for one of them
// to end. Yielding every [Every] items bounds that wait to well under a
// millisecond, at a cost of a few dozen yields a round. BENCHMARKS.md
// ("Tenth session") has the measurements.
package sched

import "runtime"

// Every is how many items a long loop handles between yields.
const Every = 256

// Yield yields the processor when i, a loop index, is the last of a group
// of Every items: call it once per item of a loop that may run long.
func Yield(i int) {
	if yields(i) {
		runtime.Gosched()
	}
}

func yields(i int) bool { return i%Every == Every-1 }
