package graph

import "github.com/krestianstvo/luminary/internal/jsjson"

// Decision is the outcome of HAM for one incoming field.
type Decision uint8

const (
	// Defer: the incoming state is ahead of the local machine state; hold
	// the field back and decide again when the clock has caught up.
	Defer Decision = iota
	// Historical: the incoming state is older than the current one; drop.
	Historical
	// Lose: equal states and the incoming value's JSON text is the same as
	// or sorts before the current one; drop (a no-op for the same value).
	Lose
	// Accept: the incoming field replaces the current one (or fills an
	// empty field).
	Accept
)

var decisionNames = [...]string{"defer", "historical", "lose", "accept"}

func (d Decision) String() string {
	if int(d) < len(decisionNames) {
		return decisionNames[d]
	}
	return "decision(?)"
}

// HAM is Gun's conflict rule for one field (gun 0.2020.1241, src/root.js):
//
//   - inState > machine: Defer (from the future);
//   - no current field: Accept;
//   - inState < curState: Historical;
//   - inState > curState: Accept, even for the same value (the state is
//     bumped);
//   - equal states: compare L(x) = JSON.stringify(x) as JavaScript does
//     (UTF-16 code units): Accept when L(inVal) > L(curVal), else Lose.
//
// Pass machine = math.Inf(1) to skip the future check.
func HAM(machine, inState, curState float64, inVal, curVal Value, curExists bool) Decision {
	switch {
	case inState > machine:
		return Defer
	case !curExists:
		return Accept
	case inState < curState:
		return Historical
	case inState > curState:
		return Accept
	}
	if inVal.Equal(curVal) {
		return Lose
	}
	if compareL(inVal, curVal) > 0 {
		return Accept
	}
	return Lose
}

// compareL compares the JSON texts of a and b in UTF-16 order.
func compareL(a, b Value) int {
	var ba, bb [64]byte
	return jsjson.CompareUTF16Bytes(a.AppendJSON(ba[:0]), b.AppendJSON(bb[:0]))
}
