package graph

import (
	"errors"
	"fmt"
	"math"

	"github.com/krestianstvo/luminary/internal/jsjson"
)

// Errors of ParsePut. Their text starts with the machine-readable prefix
// that the relay sends on the wire; ParsePut wraps them with the soul and
// field concerned.
var (
	ErrBadNode      = errors.New("invalid: bad node")
	ErrSoulMismatch = errors.New("invalid: soul not same")
	ErrNoState      = errors.New("invalid: no state")
	ErrBadState     = errors.New("invalid: bad state")
	ErrBadValue     = errors.New("invalid: bad value")
	ErrTooMany      = errors.New("invalid: too many keys")
	ErrTooLarge     = errors.New("invalid: too large")
)

// MaxState is the largest state ParsePut accepts: 2^53 ms, beyond which
// float64 milliseconds stop being exact integers (about year 287396).
const MaxState = 1 << 53

// Limits bounds what ParsePut accepts. A zero field takes its value from
// DefaultLimits; a negative field means "no limit".
type Limits struct {
	MaxSouls          int // nodes per put
	MaxFieldsPerNode  int // fields per node
	MaxFields         int // fields per put, all nodes together
	MaxValueBytes     int // bytes of one string value
	MaxSoulBytes      int // bytes of a soul (also of a link's soul)
	MaxFieldNameBytes int // bytes of a field name
}

// DefaultLimits are the limits used for zero fields of a Limits value.
var DefaultLimits = Limits{
	MaxSouls:          1000,
	MaxFieldsPerNode:  1000,
	MaxFields:         5000,
	MaxValueBytes:     256 << 10,
	MaxSoulBytes:      1024,
	MaxFieldNameBytes: 1024,
}

func (l Limits) resolved() Limits {
	pick := func(v, def int) int {
		switch {
		case v == 0:
			return def
		case v < 0:
			return math.MaxInt
		}
		return v
	}
	l.MaxSouls = pick(l.MaxSouls, DefaultLimits.MaxSouls)
	l.MaxFieldsPerNode = pick(l.MaxFieldsPerNode, DefaultLimits.MaxFieldsPerNode)
	l.MaxFields = pick(l.MaxFields, DefaultLimits.MaxFields)
	l.MaxValueBytes = pick(l.MaxValueBytes, DefaultLimits.MaxValueBytes)
	l.MaxSoulBytes = pick(l.MaxSoulBytes, DefaultLimits.MaxSoulBytes)
	l.MaxFieldNameBytes = pick(l.MaxFieldNameBytes, DefaultLimits.MaxFieldNameBytes)
	return l
}

// ParsePut converts the jsjson value of a message's "put" member into a
// Graph, validating it as gun does and more strictly (reliability table A
// rows 7-10). The whole put is refused on the first problem; nothing of it
// should then be stored. Checks, per node:
//
//   - the node is an object with a "_" object whose "#" equals the soul
//     (else ErrSoulMismatch) and whose ">" is an object (else ErrBadNode);
//     souls are non-empty;
//   - every field other than "_" has a state in "_[">"]" (else ErrNoState)
//     that is a number (a string such as "1e3" is ErrBadState), finite,
//     not negative, not -0 and at most MaxState (else ErrBadState);
//   - every value is null, a string, a boolean, a finite number or a link
//     {"#": soul} (else ErrBadValue);
//   - counts and sizes are within lim (ErrTooMany, ErrTooLarge).
//
// States in "_[">"]" for fields the node does not carry are ignored, as are
// members of "_" other than "#" and ">". ParsePut does not judge states
// against the clock; DB.Put does.
func ParsePut(v any, lim Limits) (Graph, error) {
	lim = lim.resolved()
	put, ok := v.(*jsjson.Object)
	if !ok {
		return nil, fmt.Errorf("%w: put is not an object", ErrBadNode)
	}
	if put.Len() > lim.MaxSouls {
		return nil, fmt.Errorf("%w: %d nodes", ErrTooMany, put.Len())
	}
	g := make(Graph, put.Len())
	total := 0
	for i, soul := range put.Keys {
		if soul == "" {
			return nil, fmt.Errorf("%w: empty soul", ErrBadNode)
		}
		if len(soul) > lim.MaxSoulBytes {
			return nil, fmt.Errorf("%w: soul of %d bytes", ErrTooLarge, len(soul))
		}
		node, err := parseNode(soul, put.Values[i], lim)
		if err != nil {
			return nil, err
		}
		total += len(node.Fields)
		if total > lim.MaxFields {
			return nil, fmt.Errorf("%w: more than %d fields", ErrTooMany, lim.MaxFields)
		}
		g[soul] = node
	}
	return g, nil
}

func parseNode(soul string, v any, lim Limits) (*Node, error) {
	obj, ok := v.(*jsjson.Object)
	if !ok {
		return nil, fmt.Errorf("%w: node %s is not an object", ErrBadNode, quote(soul))
	}
	metaV, ok := obj.Get("_")
	if !ok {
		return nil, fmt.Errorf("%w: node %s has no \"_\"", ErrBadNode, quote(soul))
	}
	meta, ok := metaV.(*jsjson.Object)
	if !ok {
		return nil, fmt.Errorf("%w: node %s: \"_\" is not an object", ErrBadNode, quote(soul))
	}
	if id, _ := meta.Get("#"); id != soul {
		return nil, fmt.Errorf("%w: node %s", ErrSoulMismatch, quote(soul))
	}
	statesV, ok := meta.Get(">")
	if !ok {
		return nil, fmt.Errorf("%w: node %s has no states", ErrBadNode, quote(soul))
	}
	states, ok := statesV.(*jsjson.Object)
	if !ok {
		return nil, fmt.Errorf("%w: node %s: \">\" is not an object", ErrBadNode, quote(soul))
	}
	if obj.Len()-1 > lim.MaxFieldsPerNode {
		return nil, fmt.Errorf("%w: node %s has %d fields", ErrTooMany, quote(soul), obj.Len()-1)
	}
	node := &Node{Soul: soul, Fields: make(map[string]Field, obj.Len()-1)}
	for i, name := range obj.Keys {
		if name == "_" {
			continue
		}
		if len(name) > lim.MaxFieldNameBytes {
			return nil, fmt.Errorf("%w: node %s: field name of %d bytes", ErrTooLarge, quote(soul), len(name))
		}
		sv, ok := states.Get(name)
		if !ok {
			return nil, fmt.Errorf("%w: node %s field %s", ErrNoState, quote(soul), quote(name))
		}
		state, ok := sv.(float64)
		if !ok || !ValidState(state) {
			return nil, fmt.Errorf("%w: node %s field %s", ErrBadState, quote(soul), quote(name))
		}
		val, err := ValueOf(obj.Values[i])
		if err != nil {
			return nil, fmt.Errorf("%w: node %s field %s", ErrBadValue, quote(soul), quote(name))
		}
		switch val.kind {
		case KindString:
			if len(val.s) > lim.MaxValueBytes {
				return nil, fmt.Errorf("%w: node %s field %s: value of %d bytes", ErrTooLarge, quote(soul), quote(name), len(val.s))
			}
		case KindLink:
			if len(val.s) > lim.MaxSoulBytes {
				return nil, fmt.Errorf("%w: node %s field %s: link of %d bytes", ErrTooLarge, quote(soul), quote(name), len(val.s))
			}
		}
		node.Fields[name] = Field{Value: val, State: state}
	}
	return node, nil
}

// ValidState reports whether s is a state ParsePut accepts: a finite
// number in [0, MaxState], and not -0 (gun never produces -0, and refusing
// it keeps one JSON text per state).
func ValidState(s float64) bool {
	return s >= 0 && s <= MaxState && !math.Signbit(s)
}

// quote quotes s for an error message, shortened to keep errors small.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && s[cut]&0xC0 == 0x80 {
			cut--
		}
		return string(jsjson.AppendString(nil, s[:cut])) + "..."
	}
	return string(jsjson.AppendString(nil, s))
}
