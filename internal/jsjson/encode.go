package jsjson

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Marshal returns the JSON.stringify text of v. See Append.
func Marshal(v any) []byte {
	return Append(nil, v)
}

// Append appends the JSON.stringify text of v to dst and returns the
// extended buffer.
//
// v may be any decoded value (nil, bool, float64, string, []any, *Object),
// or int, int64, uint64 (written as JavaScript writes the nearest float64),
// map[string]any (keys sorted in UTF-16 order), []string, or Raw (copied
// verbatim). A nil *Object is written as null. Any other type is a
// programming error and panics.
func Append(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		if x {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case float64:
		return AppendNumber(dst, x)
	case string:
		return AppendString(dst, x)
	case *Object:
		if x == nil {
			return append(dst, "null"...)
		}
		dst = append(dst, '{')
		for i, k := range x.Keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, k)
			dst = append(dst, ':')
			dst = Append(dst, x.Values[i])
		}
		return append(dst, '}')
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = Append(dst, e)
		}
		return append(dst, ']')
	case Raw:
		return append(dst, x...)
	case int:
		return AppendNumber(dst, float64(x))
	case int64:
		return AppendNumber(dst, float64(x))
	case uint64:
		return AppendNumber(dst, float64(x))
	case []string:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, e)
		}
		return append(dst, ']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, CompareUTF16)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, k)
			dst = append(dst, ':')
			dst = Append(dst, x[k])
		}
		return append(dst, '}')
	}
	panic(fmt.Sprintf("jsjson: unsupported type %T", v))
}

// maxExactInt is 2^53: integers below it print as their plain digits.
const maxExactInt = 1 << 53

// AppendNumber appends f as ECMAScript Number::toString writes it inside
// JSON.stringify: NaN and ±Inf become null, -0 becomes 0, and otherwise the
// shortest digits that round-trip, in plain notation for 1e-6 <= |f| < 1e21
// and as d[.ddd]e±n outside it (1e+21, 1.5e-7).
func AppendNumber(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return append(dst, "null"...)
	case f == 0:
		return append(dst, '0')
	case f == math.Trunc(f) && f > -maxExactInt && f < maxExactInt:
		return strconv.AppendInt(dst, int64(f), 10)
	}
	if b, ok := appendMillis(dst, f); ok {
		return b
	}
	var buf [32]byte
	b := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // [-]d[.ddd]e±dd
	if b[0] == '-' {
		dst = append(dst, '-')
		b = b[1:]
	}
	e := len(b) - 1
	for b[e] != 'e' {
		e--
	}
	exp, _ := strconv.Atoi(string(b[e+1:]))
	var digs [24]byte
	d := append(digs[:0], b[0])
	if e > 1 {
		d = append(d, b[2:e]...)
	}
	k, n := len(d), exp+1 // k digits, decimal point after n digits
	switch {
	case k <= n && n <= 21:
		dst = append(dst, d...)
		for range n - k {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, d[:n]...)
		dst = append(dst, '.')
		dst = append(dst, d[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for range -n {
			dst = append(dst, '0')
		}
		dst = append(dst, d...)
	default:
		dst = append(dst, d[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, d[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst
}

// maxMillis is 2^42: below it a float64's spacing is under 0.001.
const maxMillis = 1 << 42

// appendMillis writes f when it is a whole number of thousandths below
// 2^42 in magnitude — a HAM state with microsecond precision, the number
// the relay writes most — without strconv's shortest-digits search. It
// reports false for any other f.
//
// Why the digits are the shortest that round-trip: k/1000 parses back to f
// (checked), and any decimal with fewer significant digits is a multiple
// of 0.001 other than k/1000, so at least 0.001 away from it; f lies
// within half a spacing (< 0.0005 below 2^42) of k/1000, so such a decimal
// lies more than half a spacing from f and parses to another float64.
func appendMillis(dst []byte, f float64) ([]byte, bool) {
	a := math.Abs(f)
	if a >= maxMillis || a < 0.001 {
		return dst, false
	}
	k := math.Round(a * 1000)
	if k/1000 != a {
		return dst, false
	}
	if f < 0 {
		dst = append(dst, '-')
	}
	ki := int64(k)
	dst = strconv.AppendInt(dst, ki/1000, 10)
	frac := ki % 1000
	if frac == 0 {
		return dst, true // not reached: whole numbers are written before
	}
	d := [4]byte{'.', byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
	n := 4
	for d[n-1] == '0' {
		n--
	}
	return append(dst, d[:n]...), true
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON.stringify string literal.
//
// Go strings may hold bytes that are not UTF-8. A surrogate code point
// encoded as three bytes (WTF-8, as a JavaScript lone surrogate would be
// carried) is written as a lowercase \udxxx escape, as JSON.stringify writes
// a lone surrogate; any other invalid byte is written as U+FFFD. Strings
// returned by Parse are always valid UTF-8.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time up to the first that needs attention.
		for i+8 <= len(s) {
			if m := specialBytes(word(s, i)); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if strSafe[c] {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			dst = append(dst, s[start:i]...)
			var n int
			dst, n = appendInvalid(dst, s[i:])
			i += n
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = appendEscape(dst, c)
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendInvalid writes the invalid UTF-8 at the start of s (a WTF-8
// surrogate as its \udxxx escape, any other byte as U+FFFD) and returns how
// many bytes of s it took.
func appendInvalid(dst []byte, s string) ([]byte, int) {
	if u, ok := wtf8Surrogate(s); ok {
		return append(dst, '\\', 'u', hexDigits[u>>12], hexDigits[u>>8&0xF], hexDigits[u>>4&0xF], hexDigits[u&0xF]), 3
	}
	return append(dst, "\uFFFD"...), 1
}

// appendEscape writes the escape of an ASCII byte that is not strSafe.
func appendEscape(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
}

// specialBytes flags (with its high bit) the first of the eight bytes of
// w, in little-endian order, that is not strSafe: a control character,
// '"', '\\' or a byte of 0x80 and above. Bytes after the first flagged one
// may be flagged whatever they hold (borrows run upwards); none is flagged
// when all eight are strSafe.
func specialBytes(w uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	ctl := w - 0x20*ones           // a byte below 0x20 borrows into its high bit
	quote := (w ^ '"'*ones) - ones // so does a zero byte, here a '"'
	bslash := (w ^ '\\'*ones) - ones
	return (w | ctl | quote | bslash) & highs
}

// word loads s[i:i+8] little-endian (the compiler makes it one load).
func word(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// wtf8Surrogate decodes a surrogate code point (U+D800–U+DFFF) encoded as
// three UTF-8-style bytes at the start of s.
func wtf8Surrogate(s string) (uint16, bool) {
	if len(s) < 3 || s[0] != 0xED || s[1] < 0xA0 || s[1] > 0xBF || s[2] < 0x80 || s[2] > 0xBF {
		return 0, false
	}
	return 0xD000 | uint16(s[1]&0x3F)<<6 | uint16(s[2]&0x3F), true
}

// CompareUTF16 compares a and b as sequences of UTF-16 code units, the way
// JavaScript compares strings with < and sorts them by default. It returns
// -1, 0 or +1. The order differs from Go's byte order only where a
// character above U+FFFF (a surrogate pair) meets one in U+E000–U+FFFF:
// "😀" < "～" in UTF-16. Invalid bytes are treated as AppendString treats
// them (WTF-8 surrogates as themselves, other bytes as U+FFFD).
func CompareUTF16(a, b string) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	if i == n {
		return cmpLen(len(a), len(b))
	}
	// Back up to the start of the differing character. It must be a
	// character start in both strings: after an invalid byte of the common
	// prefix, one may continue a sequence where the other does not.
	for i > 0 && (!utf8.RuneStart(a[i]) || !utf8.RuneStart(b[i])) {
		i--
	}
	byteOrder := 1
	if a[i:] < b[i:] {
		byteOrder = -1
	}
	return cmpUnits(decodeWTF8(a[i:]), decodeWTF8(b[i:]), byteOrder)
}

// CompareUTF16Bytes is CompareUTF16 for byte slices, such as two texts
// produced by Append; it does not allocate.
func CompareUTF16Bytes(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	if i == n {
		return cmpLen(len(a), len(b))
	}
	for i > 0 && (!utf8.RuneStart(a[i]) || !utf8.RuneStart(b[i])) {
		i--
	}
	byteOrder := 1
	if string(a[i:]) < string(b[i:]) {
		byteOrder = -1
	}
	var wa, wb [utf8.UTFMax]byte
	ra := decodeWTF8(string(wa[:copy(wa[:], a[i:])]))
	rb := decodeWTF8(string(wb[:copy(wb[:], b[i:])]))
	return cmpUnits(ra, rb, byteOrder)
}

func cmpLen(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cmpUnits orders two different characters by their UTF-16 code units.
// byteOrder (the order of the remaining bytes) breaks the tie of two
// different invalid sequences that both decode to U+FFFD.
func cmpUnits(ra, rb rune, byteOrder int) int {
	ua, ub := firstUnit(ra), firstUnit(rb)
	if ua == ub { // both above U+FFFF with the same high surrogate; the low surrogate orders like the rune
		ua, ub = ra, rb
	}
	switch {
	case ua < ub:
		return -1
	case ua > ub:
		return 1
	}
	return byteOrder
}

func decodeWTF8(s string) rune {
	r, size := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && size == 1 {
		if u, ok := wtf8Surrogate(s); ok {
			return rune(u)
		}
	}
	return r
}

// firstUnit returns the first UTF-16 code unit of r.
func firstUnit(r rune) rune {
	if r >= 0x10000 {
		return 0xD800 + (r-0x10000)>>10
	}
	return r
}
