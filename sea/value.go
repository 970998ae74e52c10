package sea

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/krestianstvo/luminary/internal/jsjson"
)

// MaxEnvelopeSize bounds every SEA text this package parses (envelopes,
// certificates, encrypted data and decrypted plaintext). Callers that read
// from the network should enforce a lower limit of their own first.
const MaxEnvelopeSize = 1 << 20

// maxDepth bounds the nesting of values this package parses or writes.
const maxDepth = 64

var parseLimits = jsjson.Limits{MaxBytes: MaxEnvelopeSize, MaxDepth: maxDepth}

// errAmbiguousJSON reports text that JavaScript's JSON.parse would accept
// (duplicate names, lone surrogates, numbers beyond ±1.8e308, very deep
// nesting) but that cannot be decoded strictly, so this package cannot
// reproduce what gun.js would do with it byte for byte.
var errAmbiguousJSON = errors.New("JSON text that cannot be decoded strictly (duplicate names, lone surrogates, out-of-range numbers or deep nesting)")

// seaParse mirrors gun's S.parse for a string: a leading "SEA{" loses its
// "SEA", then the text is JSON-parsed; text that is not JSON stays a string
// (with "SEA" still removed, as gun does). Decoded objects get JavaScript's
// member order (see jsOrder).
func seaParse(t string) (any, error) {
	if len(t) >= 4 && t[:4] == "SEA{" {
		t = t[3:]
	}
	v, err := jsjson.Parse([]byte(t), parseLimits)
	if err == nil {
		return jsOrder(v, 0), nil
	}
	if json.Valid([]byte(t)) {
		return nil, errAmbiguousJSON
	}
	return t, nil
}

// parseObject decodes s (with an optional "SEA" prefix) as a JSON object.
func parseObject(s string) (*jsjson.Object, error) {
	if len(s) > MaxEnvelopeSize {
		return nil, errors.New("larger than MaxEnvelopeSize")
	}
	if len(s) >= 4 && s[:4] == "SEA{" {
		s = s[3:]
	}
	v, err := jsjson.Parse([]byte(s), parseLimits)
	if err != nil {
		return nil, err
	}
	obj, ok := v.(*jsjson.Object)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	return jsOrder(obj, 0).(*jsjson.Object), nil
}

// isArrayIndex reports whether k is an ECMAScript array index: the canonical
// decimal form of an integer in [0, 2^32-2].
func isArrayIndex(k string) bool {
	if len(k) == 0 || len(k) > 10 || (len(k) > 1 && k[0] == '0') {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < '0' || k[i] > '9' {
			return false
		}
	}
	n, err := strconv.ParseUint(k, 10, 64)
	return err == nil && n <= math.MaxUint32-1
}

// jsOrder returns v with every object's members in the order a JavaScript
// object enumerates them: array-index names ("0", "7", "42") first in
// ascending numeric order, then the other names in insertion order. That is
// the order JSON.stringify writes after JSON.parse (and for any JavaScript
// object), so it is the order of the text gun.js signs and hashes. v is not
// modified: parts that need reordering are copied, and a value that is
// already in order is returned as it is.
func jsOrder(v any, depth int) any {
	switch x := v.(type) {
	case *jsjson.Object:
		if x == nil || depth > maxDepth {
			return v
		}
		var vals []any // copy of x.Values, made on first change
		for i, val := range x.Values {
			if nv := jsOrder(val, depth+1); !sameRef(nv, val) {
				if vals == nil {
					vals = append([]any(nil), x.Values...)
				}
				vals[i] = nv
			}
		}
		reorder := needsJSOrder(x.Keys)
		if vals == nil && !reorder {
			return x
		}
		if vals == nil {
			vals = x.Values
		}
		order := make([]int, 0, len(x.Keys))
		if reorder {
			var other []int
			for i, k := range x.Keys {
				if isArrayIndex(k) {
					order = append(order, i)
				} else {
					other = append(other, i)
				}
			}
			// Insertion sort by numeric value; objects are small.
			for i := 1; i < len(order); i++ {
				for j := i; j > 0 && indexLess(x.Keys[order[j]], x.Keys[order[j-1]]); j-- {
					order[j], order[j-1] = order[j-1], order[j]
				}
			}
			order = append(order, other...)
		} else {
			for i := range x.Keys {
				order = append(order, i)
			}
		}
		out := &jsjson.Object{}
		for _, i := range order {
			out.Set(x.Keys[i], vals[i])
		}
		return out
	case []any:
		if depth > maxDepth {
			return v
		}
		var out []any
		for i, e := range x {
			if ne := jsOrder(e, depth+1); !sameRef(ne, e) {
				if out == nil {
					out = append([]any(nil), x...)
				}
				out[i] = ne
			}
		}
		if out != nil {
			return out
		}
	}
	return v
}

// sameRef reports whether jsOrder returned its input unchanged. Only
// objects and arrays can change, and they change identity when they do.
func sameRef(a, b any) bool {
	switch x := a.(type) {
	case *jsjson.Object:
		y, ok := b.(*jsjson.Object)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		return ok && len(x) == len(y) && (len(x) == 0 || &x[0] == &y[0])
	}
	return true
}

// indexLess compares two array-index names numerically.
func indexLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// needsJSOrder reports whether keys are not already in JavaScript order.
func needsJSOrder(keys []string) bool {
	seenOther := false
	last := ""
	for _, k := range keys {
		if isArrayIndex(k) {
			if seenOther || (last != "" && !indexLess(last, k)) {
				return true
			}
			last = k
		} else {
			seenOther = true
		}
	}
	return false
}

// checkValue verifies that v is something this package can write as
// JSON.stringify would: a decoded jsjson value (nil, bool, finite float64,
// valid UTF-8 string, []any, *jsjson.Object) or int, int64, []string or
// map[string]any. It returns an error instead of letting jsjson panic.
func checkValue(v any, depth int) error {
	if depth > maxDepth {
		return errors.New("value nested too deeply")
	}
	switch x := v.(type) {
	case nil, bool, int, int64:
		return nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return errors.New("non-finite number")
		}
		return nil
	case string:
		if !utf8.ValidString(x) {
			return errors.New("string is not valid UTF-8")
		}
		return nil
	case []string:
		for _, s := range x {
			if !utf8.ValidString(s) {
				return errors.New("string is not valid UTF-8")
			}
		}
		return nil
	case []any:
		for _, e := range x {
			if err := checkValue(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	case *jsjson.Object:
		if x == nil {
			return nil
		}
		if len(x.Keys) != len(x.Values) {
			return errors.New("object with mismatched keys and values")
		}
		var seen map[string]struct{}
		if len(x.Keys) > 1 {
			seen = make(map[string]struct{}, len(x.Keys))
		}
		for i, k := range x.Keys {
			if !utf8.ValidString(k) {
				return errors.New("member name is not valid UTF-8")
			}
			if seen != nil {
				if _, dup := seen[k]; dup {
					return fmt.Errorf("duplicate member name %q", k)
				}
				seen[k] = struct{}{}
			}
			if err := checkValue(x.Values[i], depth+1); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		for k, e := range x {
			if !utf8.ValidString(k) {
				return errors.New("member name is not valid UTF-8")
			}
			if err := checkValue(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unsupported type %T", v)
}

// normalize checks v and returns it as a decoded value: only nil, bool,
// float64, string, []any and *jsjson.Object remain (map[string]any becomes
// an object with its names in UTF-16 order, []string an array, ints
// float64), and objects get JavaScript member order. v is not modified.
func normalize(v any) (any, error) {
	if err := checkValue(v, 0); err != nil {
		return nil, err
	}
	switch v.(type) {
	case nil, bool, float64, string:
		return v, nil
	}
	text := jsjson.Append(nil, v)
	if len(text) > MaxEnvelopeSize {
		return nil, errors.New("value larger than MaxEnvelopeSize")
	}
	d, err := jsjson.Parse(text, parseLimits)
	if err != nil {
		return nil, err
	}
	return jsOrder(d, 0), nil
}

// textOf returns the text SEA hashes for m: m itself when it is a string,
// else JSON.stringify(m).
func textOf(dst []byte, m any) []byte {
	if s, ok := m.(string); ok {
		return append(dst, s...)
	}
	return jsjson.Append(dst, m)
}

// truthy is JavaScript's ToBoolean for decoded values.
func truthy(v any, present bool) bool {
	if !present {
		return false
	}
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0 && !math.IsNaN(x)
	case int:
		return x != 0
	case int64:
		return x != 0
	case string:
		return x != ""
	}
	return true
}

func member(obj *jsjson.Object, k string) (any, bool) {
	if obj == nil {
		return nil, false
	}
	return obj.Get(k)
}
