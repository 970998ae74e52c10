package jsjson

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Parse decodes exactly one JSON value from data (surrounding whitespace is
// allowed, anything else after the value is an error). It validates while it
// descends, so oversized or too deeply nested input is refused before it is
// materialized. See the package documentation for what is rejected.
func Parse(data []byte, lim Limits) (any, error) {
	lim = lim.resolved()
	if len(data) > lim.MaxBytes {
		return nil, &Error{Err: ErrTooLarge, Offset: lim.MaxBytes, Detail: "input exceeds MaxBytes"}
	}
	p := parserPool.Get().(*parser)
	defer p.release()
	p.data, p.lim = data, lim
	p.skipSpace()
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, p.fail(ErrSyntax, "trailing data after value")
	}
	return v, nil
}

var parserPool = sync.Pool{New: func() any { return new(parser) }}

// maxPooledStack bounds the scratch capacity a pooled parser keeps.
const maxPooledStack = 4096

func (p *parser) release() {
	clear(p.keys[:cap(p.keys)])
	clear(p.vals[:cap(p.vals)])
	if cap(p.keys) > maxPooledStack || cap(p.vals) > maxPooledStack || cap(p.scratch) > 64*maxPooledStack {
		return // let oversized buffers go
	}
	*p = parser{keys: p.keys[:0], vals: p.vals[:0], scratch: p.scratch[:0]}
	parserPool.Put(p)
}

// newObject copies keys and values into a new Object, with a single
// allocation for the small objects that make up most Gun frames.
func newObject(keys []string, vals []any) *Object {
	switch len(keys) {
	case 1:
		a := new(struct {
			o Object
			k [1]string
			v [1]any
		})
		copy(a.k[:], keys)
		copy(a.v[:], vals)
		a.o.Keys, a.o.Values = a.k[:], a.v[:]
		return &a.o
	case 2:
		a := new(struct {
			o Object
			k [2]string
			v [2]any
		})
		copy(a.k[:], keys)
		copy(a.v[:], vals)
		a.o.Keys, a.o.Values = a.k[:], a.v[:]
		return &a.o
	case 3:
		a := new(struct {
			o Object
			k [3]string
			v [3]any
		})
		copy(a.k[:], keys)
		copy(a.v[:], vals)
		a.o.Keys, a.o.Values = a.k[:], a.v[:]
		return &a.o
	case 4:
		a := new(struct {
			o Object
			k [4]string
			v [4]any
		})
		copy(a.k[:], keys)
		copy(a.v[:], vals)
		a.o.Keys, a.o.Values = a.k[:], a.v[:]
		return &a.o
	}
	return &Object{Keys: slices.Clone(keys), Values: slices.Clone(vals)}
}

type parser struct {
	data    []byte
	pos     int
	depth   int
	lim     Limits
	scratch []byte   // reused buffer for strings with escapes
	keys    []string // stack of member names of the objects being parsed
	vals    []any    // stack of values of the arrays and objects being parsed
}

func (p *parser) fail(err error, detail string) error {
	return &Error{Err: err, Offset: p.pos, Detail: detail}
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value() (any, error) {
	if p.pos >= len(p.data) {
		return nil, p.fail(ErrSyntax, "unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	default:
		return nil, p.fail(ErrSyntax, "unexpected character "+strconv.QuoteRune(rune(c)))
	}
}

func (p *parser) literal(lit string) error {
	if len(p.data)-p.pos < len(lit) || string(p.data[p.pos:p.pos+len(lit)]) != lit {
		return p.fail(ErrSyntax, "invalid literal")
	}
	p.pos += len(lit)
	return nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > p.lim.MaxDepth {
		return p.fail(ErrDepth, "")
	}
	return nil
}

func (p *parser) array() (any, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	p.pos++ // '['
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		p.depth--
		return []any{}, nil
	}
	// Elements collect on the shared value stack and are copied into an
	// exactly sized slice at the end: one allocation per array.
	base := len(p.vals)
	for {
		if len(p.vals)-base >= p.lim.MaxElements {
			return nil, p.fail(ErrTooLarge, "too many array elements")
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		p.vals = append(p.vals, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.fail(ErrSyntax, "unexpected end of input in array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
			p.skipSpace()
		case ']':
			p.pos++
			p.depth--
			arr := slices.Clone(p.vals[base:])
			clear(p.vals[base:])
			p.vals = p.vals[:base]
			return arr, nil
		default:
			return nil, p.fail(ErrSyntax, "expected ',' or ']'")
		}
	}
}

func (p *parser) object() (any, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	p.pos++ // '{'
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		p.depth--
		return &Object{}, nil
	}
	// Members collect on the shared key and value stacks (see array).
	kbase, vbase := len(p.keys), len(p.vals)
	var index map[string]int       // exact names, once the object is large
	var folded map[string]struct{} // case-folded names, for RejectCaseVariants on large objects
	for {
		n := len(p.keys) - kbase
		if n >= p.lim.MaxMembers {
			return nil, p.fail(ErrTooLarge, "too many object members")
		}
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.fail(ErrSyntax, "expected member name")
		}
		keyAt := p.pos
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		if err := p.checkKey(p.keys[kbase:], index, k, keyAt, &folded); err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.fail(ErrSyntax, "expected ':'")
		}
		p.pos++
		p.skipSpace()
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		p.keys = append(p.keys, k)
		p.vals = append(p.vals, v)
		if index != nil {
			index[k] = n
		} else if n+1 == indexThreshold {
			index = make(map[string]int, 2*indexThreshold)
			for i, key := range p.keys[kbase:] {
				index[key] = i
			}
		}
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.fail(ErrSyntax, "unexpected end of input in object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
			p.skipSpace()
		case '}':
			p.pos++
			p.depth--
			obj := newObject(p.keys[kbase:], p.vals[vbase:])
			obj.index = index
			clear(p.keys[kbase:])
			clear(p.vals[vbase:])
			p.keys, p.vals = p.keys[:kbase], p.vals[:vbase]
			return obj, nil
		default:
			return nil, p.fail(ErrSyntax, "expected ',' or '}'")
		}
	}
}

// checkKey refuses k if obj already holds it (or, with RejectCaseVariants, a
// case variant of it).
func (p *parser) checkKey(keys []string, index map[string]int, k string, at int, folded *map[string]struct{}) error {
	dup := func() error {
		return &Error{Err: ErrDuplicateKey, Offset: at, Detail: strconv.Quote(k)}
	}
	if index != nil {
		if _, ok := index[k]; ok {
			return dup()
		}
	} else {
		for _, key := range keys {
			if key == k {
				return dup()
			}
		}
	}
	if !p.lim.RejectCaseVariants {
		return nil
	}
	if len(keys) < indexThreshold {
		for _, key := range keys {
			if strings.EqualFold(key, k) {
				return &Error{Err: ErrDuplicateKey, Offset: at, Detail: "case variant " + strconv.Quote(k) + " of " + strconv.Quote(key)}
			}
		}
		return nil
	}
	if *folded == nil {
		*folded = make(map[string]struct{}, 2*indexThreshold)
		for _, key := range keys {
			(*folded)[foldKey(key)] = struct{}{}
		}
	}
	f := foldKey(k)
	if _, ok := (*folded)[f]; ok {
		return &Error{Err: ErrDuplicateKey, Offset: at, Detail: "case variant " + strconv.Quote(k)}
	}
	(*folded)[f] = struct{}{}
	return nil
}

// foldKey maps every rune of s to the smallest rune of its simple case
// folding orbit, so two strings are strings.EqualFold exactly when their
// foldKeys are equal.
func foldKey(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}

// strSafe[c] is true for bytes that need no attention inside a string.
var strSafe = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str decodes a string starting at the opening quote.
func (p *parser) str() (string, error) {
	p.pos++ // '"'
	start := p.pos
	i := start
	data := p.data
	for i < len(data) {
		c := data[i]
		if strSafe[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			p.pos = i + 1
			return string(data[start:i]), nil
		case c == '\\':
			p.pos = i
			return p.strSlow(start)
		case c < 0x20:
			p.pos = i
			return "", p.fail(ErrSyntax, "control character in string")
		default: // c >= 0x80
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				p.pos = i
				return "", p.fail(ErrUTF8, "")
			}
			i += size
		}
	}
	p.pos = i
	return "", p.fail(ErrSyntax, "unterminated string")
}

// strSlow continues decoding a string that holds escapes; p.pos is at the
// first backslash and start is the first byte of the string's contents.
func (p *parser) strSlow(start int) (string, error) {
	buf := append(p.scratch[:0], p.data[start:p.pos]...)
	data := p.data
	for p.pos < len(data) {
		c := data[p.pos]
		switch {
		case strSafe[c]:
			buf = append(buf, c)
			p.pos++
		case c == '"':
			p.pos++
			p.scratch = buf
			return string(buf), nil
		case c < 0x20:
			return "", p.fail(ErrSyntax, "control character in string")
		case c >= 0x80:
			r, size := utf8.DecodeRune(data[p.pos:])
			if r == utf8.RuneError && size == 1 {
				return "", p.fail(ErrUTF8, "")
			}
			buf = append(buf, data[p.pos:p.pos+size]...)
			p.pos += size
		default: // backslash
			if p.pos+1 >= len(data) {
				return "", p.fail(ErrSyntax, "unterminated escape")
			}
			e := data[p.pos+1]
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := p.hex4(p.pos + 2)
				if !ok {
					return "", p.fail(ErrSyntax, "invalid \\u escape")
				}
				switch {
				case r >= 0xDC00 && r <= 0xDFFF:
					return "", p.fail(ErrUTF8, "lone low surrogate")
				case r >= 0xD800 && r <= 0xDBFF:
					lo, ok := rune(0), false
					if p.pos+7 < len(data) && data[p.pos+6] == '\\' && data[p.pos+7] == 'u' {
						lo, ok = p.hex4(p.pos + 8)
					}
					if !ok || lo < 0xDC00 || lo > 0xDFFF {
						return "", p.fail(ErrUTF8, "lone high surrogate")
					}
					r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
					p.pos += 6
				}
				buf = utf8.AppendRune(buf, r)
				p.pos += 4
			default:
				return "", p.fail(ErrSyntax, "invalid escape")
			}
			p.pos += 2
		}
	}
	return "", p.fail(ErrSyntax, "unterminated string")
}

// hex4 decodes four hex digits at i.
func (p *parser) hex4(i int) (rune, bool) {
	if i+4 > len(p.data) {
		return 0, false
	}
	var r rune
	for _, c := range p.data[i : i+4] {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}

// number decodes -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *parser) number() (any, error) {
	data := p.data
	start := p.pos
	i := start
	if data[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i >= len(data):
		p.pos = i
		return nil, p.fail(ErrSyntax, "invalid number")
	case data[i] == '0':
		i++
		if i < len(data) && data[i] >= '0' && data[i] <= '9' {
			p.pos = i
			return nil, p.fail(ErrSyntax, "leading zero in number")
		}
	case data[i] >= '1' && data[i] <= '9':
		digits()
	default:
		p.pos = i
		return nil, p.fail(ErrSyntax, "invalid number")
	}
	if i < len(data) && data[i] == '.' {
		i++
		if digits() == 0 {
			p.pos = i
			return nil, p.fail(ErrSyntax, "invalid number fraction")
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if digits() == 0 {
			p.pos = i
			return nil, p.fail(ErrSyntax, "invalid number exponent")
		}
	}
	f, err := strconv.ParseFloat(string(data[start:i]), 64)
	if err != nil || math.IsInf(f, 0) {
		p.pos = start
		return nil, p.fail(ErrNumber, "")
	}
	p.pos = i
	return f, nil
}
