// Package jsjson parses JSON strictly and writes it exactly as JavaScript's
// JSON.stringify does.
//
// It is the one serializer that graph, sea, auth and heartbeat use for
// anything that is hashed, signed or compared, so that a Go peer produces the
// very bytes a gun.js peer produces. Start with [Parse] to decode untrusted
// bytes and [Append] (or [Marshal]) to encode; [CompareUTF16] (and
// [CompareUTF16Bytes]) order strings the way JavaScript's `<` does.
//
// # Decoded values
//
// A decoded value is one of:
//
//	nil       JSON null
//	bool      true / false
//	float64   any number (always finite; -0 is kept as negative zero)
//	string    valid UTF-8, never containing a lone surrogate
//	[]any     an array
//	*Object   an object, members in the order they were parsed
//
// # Strictness
//
// [Parse] refuses, with a sentinel error wrapped in an [*Error] that carries
// the byte offset: invalid UTF-8 anywhere ([ErrUTF8]), escaped lone
// surrogates such as "\ud800" ([ErrUTF8]), duplicate member names
// ([ErrDuplicateKey]; case variants such as "Sig" and "sig" only with
// [Limits.RejectCaseVariants]), numbers that overflow to ±Inf ([ErrNumber]),
// leading zeros, raw control characters in strings and trailing garbage
// ([ErrSyntax]), nesting deeper than [Limits.MaxDepth] ([ErrDepth], detected
// while descending, before anything large is allocated), and inputs, objects
// or arrays over their size caps ([ErrTooLarge]).
//
// # Encoding
//
// [Append] follows ECMAScript JSON.stringify: no HTML escaping, U+2028 and
// U+2029 written raw, the short escapes \b \f \n \r \t \" \\, other C0
// controls as lowercase \u00xx, DEL and all other non-ASCII written raw, and
// numbers as ECMAScript Number::toString (shortest round trip, exponent form
// below 1e-6 and from 1e21 on, -0 written as 0, NaN and ±Inf as null).
// Object members keep the order of [Object.Keys]; a map[string]any is written
// with keys sorted in UTF-16 order (JavaScript's default sort), so use
// *Object whenever the order matters.
package jsjson

import (
	"errors"
	"fmt"
)

// Sentinel errors returned (wrapped in *Error) by Parse.
var (
	ErrSyntax       = errors.New("jsjson: syntax error")
	ErrDepth        = errors.New("jsjson: nesting too deep")
	ErrTooLarge     = errors.New("jsjson: too large")
	ErrDuplicateKey = errors.New("jsjson: duplicate member name")
	ErrUTF8         = errors.New("jsjson: invalid UTF-8 or lone surrogate")
	ErrNumber       = errors.New("jsjson: number out of range")
)

// Error is the error type returned by Parse. It wraps one of the sentinel
// errors, so callers branch with errors.Is.
type Error struct {
	Err    error  // one of the Err* sentinels
	Offset int    // byte offset in the input where the problem was found
	Detail string // optional human-readable detail
}

func (e *Error) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("%v at offset %d: %s", e.Err, e.Offset, e.Detail)
	}
	return fmt.Sprintf("%v at offset %d", e.Err, e.Offset)
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }

// Limits bounds what Parse accepts. A zero field takes its value from
// DefaultLimits; a negative field means "no limit" (use only for trusted
// input).
type Limits struct {
	MaxBytes    int // total input size in bytes
	MaxDepth    int // nesting of arrays and objects; a top-level array or object has depth 1
	MaxMembers  int // members per object
	MaxElements int // elements per array

	// RejectCaseVariants refuses objects holding two member names that are
	// equal under Unicode simple case folding (strings.EqualFold), e.g.
	// "Sig" and "sig". It is off by default because Gun data may
	// legitimately hold fields that differ only in case; turn it on for
	// envelopes whose field names carry security meaning.
	RejectCaseVariants bool
}

// DefaultLimits are the limits used for zero fields of a Limits value.
var DefaultLimits = Limits{
	MaxBytes:    4 << 20,
	MaxDepth:    64,
	MaxMembers:  10000,
	MaxElements: 10000,
}

func (l Limits) resolved() Limits {
	pick := func(v, def int) int {
		switch {
		case v == 0:
			return def
		case v < 0:
			return int(^uint(0) >> 1)
		}
		return v
	}
	l.MaxBytes = pick(l.MaxBytes, DefaultLimits.MaxBytes)
	l.MaxDepth = pick(l.MaxDepth, DefaultLimits.MaxDepth)
	l.MaxMembers = pick(l.MaxMembers, DefaultLimits.MaxMembers)
	l.MaxElements = pick(l.MaxElements, DefaultLimits.MaxElements)
	return l
}

// Raw is pre-serialized JSON that Append copies verbatim. The caller is
// responsible for it being valid JSON text in JSON.stringify form.
type Raw []byte

// Object is a JSON object whose members keep their order. Keys and Values
// have the same length; Values[i] belongs to Keys[i]. Objects returned by
// Parse never hold duplicate keys. Build one with a literal or Set; do not
// append to Keys/Values directly on an Object obtained from Parse (use Set),
// since large parsed objects carry a lookup index.
type Object struct {
	Keys   []string
	Values []any

	index map[string]int // optional, built by Parse for large objects; kept current by Set
}

// indexThreshold is the member count from which Parse builds a lookup index.
const indexThreshold = 16

// Len returns the number of members.
func (o *Object) Len() int {
	if o == nil {
		return 0
	}
	return len(o.Keys)
}

// Get returns the value of member k and whether it exists.
func (o *Object) Get(k string) (any, bool) {
	if o == nil {
		return nil, false
	}
	if o.index != nil {
		if i, ok := o.index[k]; ok {
			return o.Values[i], true
		}
		return nil, false
	}
	for i, key := range o.Keys {
		if key == k {
			return o.Values[i], true
		}
	}
	return nil, false
}

// Set replaces the value of member k in place, or appends the member.
func (o *Object) Set(k string, v any) {
	if o.index != nil {
		if i, ok := o.index[k]; ok {
			o.Values[i] = v
			return
		}
		o.index[k] = len(o.Keys)
	} else {
		for i, key := range o.Keys {
			if key == k {
				o.Values[i] = v
				return
			}
		}
	}
	o.Keys = append(o.Keys, k)
	o.Values = append(o.Values, v)
}

// Equal reports whether two decoded values are equal: same kinds, numbers
// equal by == (so -0 equals 0), strings equal, arrays element-wise equal, and
// objects with the same members in the same order.
func Equal(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case *Object:
		y, ok := b.(*Object)
		if !ok || x.Len() != y.Len() {
			return false
		}
		for i := range x.Keys {
			if x.Keys[i] != y.Keys[i] || !Equal(x.Values[i], y.Values[i]) {
				return false
			}
		}
		return true
	}
	return false
}
