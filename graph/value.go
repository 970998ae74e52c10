package graph

import (
	"fmt"
	"math"

	"github.com/krestianstvo/luminary/internal/jsjson"
)

// Kind is the type of a Value.
type Kind uint8

// The kinds of Gun values. The zero Value is KindNull.
const (
	KindNull Kind = iota
	KindString
	KindBool
	KindNumber
	KindLink
)

var kindNames = [...]string{"null", "string", "bool", "number", "link"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Value is one Gun field value: null, a string, a boolean, a finite number
// or a link {"#": soul} to another node. The zero Value is null. Values are
// immutable and cheap to copy.
type Value struct {
	kind Kind
	s    string  // string, or link soul
	n    float64 // number; 1 or 0 for bool
}

// Null returns the null value (a tombstone when it replaces data).
func Null() Value { return Value{} }

// String returns a string value.
func String(s string) Value { return Value{kind: KindString, s: s} }

// Bool returns a boolean value.
func Bool(b bool) Value {
	v := Value{kind: KindBool}
	if b {
		v.n = 1
	}
	return v
}

// Number returns a number value. It panics if f is NaN or ±Inf, which Gun
// never stores.
func Number(f float64) Value {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		panic("graph: Number of non-finite float")
	}
	return Value{kind: KindNumber, n: f}
}

// Link returns a link to the node named soul. It panics if soul is empty.
func Link(soul string) Value {
	if soul == "" {
		panic("graph: Link to empty soul")
	}
	return Value{kind: KindLink, s: soul}
}

// Kind returns the kind of v.
func (v Value) Kind() Kind { return v.kind }

// IsNull reports whether v is null.
func (v Value) IsNull() bool { return v.kind == KindNull }

// AsString returns the string held by v and whether v is a string.
func (v Value) AsString() (string, bool) { return v.s, v.kind == KindString }

// AsBool returns the boolean held by v and whether v is a boolean.
func (v Value) AsBool() (bool, bool) { return v.n != 0, v.kind == KindBool }

// AsNumber returns the number held by v and whether v is a number.
func (v Value) AsNumber() (float64, bool) { return v.n, v.kind == KindNumber }

// AsLink returns the soul v links to and whether v is a link.
func (v Value) AsLink() (string, bool) { return v.s, v.kind == KindLink }

// AppendJSON appends the JSON.stringify text of v: the L() that HAM
// compares, and the form in which v travels on the wire.
func (v Value) AppendJSON(dst []byte) []byte {
	switch v.kind {
	case KindString:
		return jsjson.AppendString(dst, v.s)
	case KindBool:
		if v.n != 0 {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case KindNumber:
		return jsjson.AppendNumber(dst, v.n)
	case KindLink:
		dst = append(dst, `{"#":`...)
		dst = jsjson.AppendString(dst, v.s)
		return append(dst, '}')
	}
	return append(dst, "null"...)
}

// String returns the JSON text of v, for logs and debugging.
func (v Value) String() string { return string(v.AppendJSON(nil)) }

// Equal reports whether v and o have the same JSON text: same kind and
// same content (numbers compare with ==, so -0 equals 0).
func (v Value) Equal(o Value) bool {
	if v.kind != o.kind {
		return false
	}
	switch v.kind {
	case KindString, KindLink:
		return v.s == o.s
	case KindBool, KindNumber:
		return v.n == o.n
	}
	return true
}

// Interface returns v as a jsjson value: nil, string, bool, float64, or a
// *jsjson.Object {"#": soul} for a link.
func (v Value) Interface() any {
	switch v.kind {
	case KindString:
		return v.s
	case KindBool:
		return v.n != 0
	case KindNumber:
		return v.n
	case KindLink:
		return &jsjson.Object{Keys: []string{"#"}, Values: []any{v.s}}
	}
	return nil
}

// ValueOf converts a jsjson value into a Value. A link is an object with
// exactly one member "#" holding a non-empty string; arrays, other objects,
// non-finite numbers and other Go types are refused with ErrBadValue.
func ValueOf(x any) (Value, error) {
	switch t := x.(type) {
	case nil:
		return Value{}, nil
	case string:
		return String(t), nil
	case bool:
		return Bool(t), nil
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return Value{}, ErrBadValue
		}
		return Value{kind: KindNumber, n: t}, nil
	case *jsjson.Object:
		if t.Len() == 1 && t.Keys[0] == "#" {
			if s, ok := t.Values[0].(string); ok && s != "" {
				return Value{kind: KindLink, s: s}, nil
			}
		}
	}
	return Value{}, ErrBadValue
}

// size is the byte size of v's payload, for limits.
func (v Value) size() int {
	switch v.kind {
	case KindString, KindLink:
		return len(v.s)
	case KindNumber:
		return 8
	}
	return 1
}
