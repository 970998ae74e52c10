package jsjson

import (
	"errors"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

var tenth, fifth = 0.1, 0.2 // variables: constant arithmetic would be exact

func TestNumberFormat(t *testing.T) {
	// Expected strings are what node 20 prints for String(x) / JSON.stringify(x).
	cases := []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{math.Copysign(0, -1), "0"},
		{1, "1"},
		{-1, "-1"},
		{1e21, "1e+21"},
		{-1e21, "-1e+21"},
		{1e20, "100000000000000000000"},
		{999999999999999900000, "999999999999999900000"},
		{1e-7, "1e-7"},
		{1.5e-7, "1.5e-7"},
		{1e-6, "0.000001"},
		{1.5e-6, "0.0000015"},
		{0.1, "0.1"},
		{tenth + fifth, "0.30000000000000004"},
		{1795666934618.0051, "1795666934618.0051"},
		{1795666825781, "1795666825781"},
		{1795666934618.001, "1795666934618.001"},
		{5e-324, "5e-324"},
		{-5e-324, "-5e-324"},
		{1.7976931348623157e+308, "1.7976931348623157e+308"},
		{123456789012345680000, "123456789012345680000"},
		{9007199254740992, "9007199254740992"},
		{9007199254740993, "9007199254740992"},
		{18014398509481984, "18014398509481984"},
		{1.5, "1.5"},
		{-1.25e-10, "-1.25e-10"},
		{123e25, "1.23e+27"},
		{math.NaN(), "null"},
		{math.Inf(1), "null"},
		{math.Inf(-1), "null"},
		{4294967296.5, "4294967296.5"},
		{100, "100"},
	}
	for _, c := range cases {
		if got := string(AppendNumber(nil, c.in)); got != c.want {
			t.Errorf("AppendNumber(%v) = %s, want %s", c.in, got, c.want)
		}
	}
	ints := []struct {
		in   any
		want string
	}{
		{int(42), "42"},
		{int64(-7), "-7"},
		{int64(math.MaxInt64), "9223372036854776000"},
		{uint64(math.MaxUint64), "18446744073709552000"},
	}
	for _, c := range ints {
		if got := string(Marshal(c.in)); got != c.want {
			t.Errorf("Marshal(%T %v) = %s, want %s", c.in, c.in, got, c.want)
		}
	}
}

func TestStringEscaping(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", `""`},
		{"abc", `"abc"`},
		{`"`, `"\""`},
		{`\`, `"\\"`},
		{"/", `"/"`},
		{"\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"\x00", `"\u0000"`},
		{"\x01\x1f", `"\u0001\u001f"`},
		{"\x0b", `"\u000b"`},
		{"\x1a", `"\u001a"`},
		{"\x7f", "\"\x7f\""},
		{"<b>&amp;", `"<b>&amp;"`},
		{"\u2028\u2029", "\"\u2028\u2029\""},
		{"é😀～", "\"é😀～\""},
		{"\ufeff", "\"\ufeff\""},
		{"\xed\xa0\x80", `"\ud800"`},     // WTF-8 lone high surrogate
		{"a\xed\xbf\xbfb", `"a\udfffb"`}, // WTF-8 lone low surrogate
		{"\xff", "\"\ufffd\""},           // invalid byte
		{"x\xc3", "\"x\ufffd\""},         // truncated sequence
	}
	for _, c := range cases {
		if got := string(AppendString(nil, c.in)); got != c.want {
			t.Errorf("AppendString(%q) = %s, want %s", c.in, got, c.want)
		}
	}
	// Every C0 control other than the short escapes is a lowercase \u00xx.
	for c := 0; c < 0x20; c++ {
		got := string(AppendString(nil, string(rune(c))))
		if strings.ContainsAny(got[1:len(got)-1], "ABCDEF") {
			t.Errorf("control %#x escaped with uppercase hex: %s", c, got)
		}
		if len(got) != 4 && len(got) != 8 {
			t.Errorf("control %#x escaped as %s", c, got)
		}
	}
}

func TestMarshalShapes(t *testing.T) {
	obj := &Object{}
	obj.Set("z", 1.0)
	obj.Set("a", []any{nil, true, false, "s"})
	obj.Set("z", 2.0) // replaced in place
	cases := []struct {
		in   any
		want string
	}{
		{obj, `{"z":2,"a":[null,true,false,"s"]}`},
		{(*Object)(nil), `null`},
		{&Object{}, `{}`},
		{[]any{}, `[]`},
		{[]string{"a", "b"}, `["a","b"]`},
		{Raw(`{"x":1}`), `{"x":1}`},
		{map[string]any{"b": 1.0, "a": "x", "～": nil, "😀": nil}, `{"a":"x","b":1,"😀":null,"～":null}`},
		{[]any{Raw(`1`), map[string]any{}}, `[1,{}]`},
	}
	for _, c := range cases {
		if got := string(Marshal(c.in)); got != c.want {
			t.Errorf("Marshal(%#v) = %s, want %s", c.in, got, c.want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Marshal(struct{}) did not panic")
		}
	}()
	Marshal(struct{}{})
}

func TestCompareUTF16(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"a", "a", 0},
		{"a", "b", -1},
		{"b", "a", 1},
		{"a", "ab", -1},
		{"ab", "a", 1},
		{"B", "a", -1},
		{"é", "z", 1},
		{"😀", "～", -1}, // D83D < FF5E, though U+1F600 > U+FF5E
		{"～", "😀", 1},
		{"\uffff", "\U00010000", 1},
		{"\ue000", "\U0010ffff", 1},
		{"\ud7ff", "\U00010000", -1},
		{"😀", "😁", -1},
		{"x😀", "x～", -1},
		{`"<b"`, `"=a"`, -1},
		{"\xed\xa0\x80", "\ue000", -1}, // WTF-8 surrogate D800 < E000
	}
	for _, c := range cases {
		if got := CompareUTF16(c.a, c.b); got != c.want {
			t.Errorf("CompareUTF16(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := CompareUTF16Bytes([]byte(c.a), []byte(c.b)); got != c.want {
			t.Errorf("CompareUTF16Bytes(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestParseValues(t *testing.T) {
	v, err := Parse([]byte(` {"a":[1,-0,2.5e3,"x\u00e9\ud83d\ude00\n"],"b":{"#":"s"},"c":null,"d":true,"e":false} `), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	obj := v.(*Object)
	if got := strings.Join(obj.Keys, ","); got != "a,b,c,d,e" {
		t.Fatalf("keys %s", got)
	}
	a, _ := obj.Get("a")
	arr := a.([]any)
	if arr[0] != 1.0 || !math.Signbit(arr[1].(float64)) || arr[2] != 2500.0 || arr[3] != "xé😀\n" {
		t.Fatalf("array %#v", arr)
	}
	if got := string(Marshal(v)); got != `{"a":[1,0,2500,"xé😀\n"],"b":{"#":"s"},"c":null,"d":true,"e":false}` {
		t.Fatalf("re-marshal %s", got)
	}
	for _, in := range []string{`"\/"`, `1e-400`, `-1e-400`, `[]`, `{}`, `0`, `-0.0e+0`, `"\u0000"`, `1E5`} {
		if _, err := Parse([]byte(in), Limits{}); err != nil {
			t.Errorf("Parse(%s): %v", in, err)
		}
	}
}

func TestParseRejects(t *testing.T) {
	deep := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	cases := []struct {
		in   string
		lim  Limits
		want error
	}{
		{``, Limits{}, ErrSyntax},
		{`   `, Limits{}, ErrSyntax},
		{`{"a":1`, Limits{}, ErrSyntax},
		{`{"a":1}x`, Limits{}, ErrSyntax},
		{`{"a":1} {}`, Limits{}, ErrSyntax},
		{`[1,]`, Limits{}, ErrSyntax},
		{`{"a":1,}`, Limits{}, ErrSyntax},
		{`{a:1}`, Limits{}, ErrSyntax},
		{`'a'`, Limits{}, ErrSyntax},
		{`01`, Limits{}, ErrSyntax},
		{`-01`, Limits{}, ErrSyntax},
		{`1.`, Limits{}, ErrSyntax},
		{`.5`, Limits{}, ErrSyntax},
		{`1e`, Limits{}, ErrSyntax},
		{`+1`, Limits{}, ErrSyntax},
		{`-`, Limits{}, ErrSyntax},
		{`NaN`, Limits{}, ErrSyntax},
		{`Infinity`, Limits{}, ErrSyntax},
		{`tru`, Limits{}, ErrSyntax},
		{`nul`, Limits{}, ErrSyntax},
		{"\"a\tb\"", Limits{}, ErrSyntax},
		{"\"a\nb\"", Limits{}, ErrSyntax},
		{"\"\x00\"", Limits{}, ErrSyntax},
		{`"\x41"`, Limits{}, ErrSyntax},
		{`"\u12"`, Limits{}, ErrSyntax},
		{`"\u12G4"`, Limits{}, ErrSyntax},
		{`"abc`, Limits{}, ErrSyntax},
		{`"abc\`, Limits{}, ErrSyntax},
		{"\xef\xbb\xbf{}", Limits{}, ErrSyntax}, // BOM is not whitespace
		{`1e400`, Limits{}, ErrNumber},
		{`-1e400`, Limits{}, ErrNumber},
		{`[1.8e308]`, Limits{}, ErrNumber},
		{`"\ud800"`, Limits{}, ErrUTF8},
		{`"\udc00"`, Limits{}, ErrUTF8},
		{`"\ud800x"`, Limits{}, ErrUTF8},
		{`"\ud800\u0041"`, Limits{}, ErrUTF8},
		{`"\ud800\ud800"`, Limits{}, ErrUTF8},
		{"\"\xff\"", Limits{}, ErrUTF8},
		{"\"\xed\xa0\x80\"", Limits{}, ErrUTF8}, // raw (WTF-8) surrogate
		{"\"\xc0\xaf\"", Limits{}, ErrUTF8},     // overlong
		{"\"a\\n\xff\"", Limits{}, ErrUTF8},     // after an escape
		{"{\"\xff\":1}", Limits{}, ErrUTF8},
		{"\xff", Limits{}, ErrSyntax}, // outside strings it is just a bad character
		{`{"a":1,"a":2}`, Limits{}, ErrDuplicateKey},
		{`{"sig":1,"Sig":2}`, Limits{RejectCaseVariants: true}, ErrDuplicateKey},
		{`{"a":1,"b":{"x":1,"x":1}}`, Limits{}, ErrDuplicateKey},
		{`{"\u0061":1,"a":2}`, Limits{}, ErrDuplicateKey},
		{deep, Limits{}, ErrDepth},
		{`[[[1]]]`, Limits{MaxDepth: 2}, ErrDepth},
		{`{"a":{"b":{}}}`, Limits{MaxDepth: 2}, ErrDepth},
		{`[1,2,3]`, Limits{MaxElements: 2}, ErrTooLarge},
		{`{"a":1,"b":2,"c":3}`, Limits{MaxMembers: 2}, ErrTooLarge},
		{`"abcdef"`, Limits{MaxBytes: 5}, ErrTooLarge},
	}
	for _, c := range cases {
		v, err := Parse([]byte(c.in), c.lim)
		if !errors.Is(err, c.want) {
			in := c.in
			if len(in) > 40 {
				in = in[:40] + "..."
			}
			t.Errorf("Parse(%q) = %v, %v; want %v", in, v, err, c.want)
			continue
		}
		var e *Error
		if !errors.As(err, &e) || !strings.HasPrefix(err.Error(), "jsjson: ") {
			t.Errorf("Parse(%q): error %v is not a *jsjson.Error", c.in, err)
		}
	}
	// Case variants are data by default.
	if _, err := Parse([]byte(`{"sig":1,"Sig":2}`), Limits{}); err != nil {
		t.Errorf("case variants refused by default: %v", err)
	}
}

func TestParseLargeObjects(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := range 100 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"k`)
		b.WriteString(strings.Repeat("x", i))
		b.WriteString(`":1`)
	}
	base := b.String()
	v, err := Parse([]byte(base+"}"), Limits{RejectCaseVariants: true})
	if err != nil {
		t.Fatal(err)
	}
	o := v.(*Object)
	if o.Len() != 100 {
		t.Fatalf("len %d", o.Len())
	}
	if _, ok := o.Get("k" + strings.Repeat("x", 50)); !ok {
		t.Fatal("indexed Get missed")
	}
	o.Set("new", 2.0)
	o.Set("k", 3.0)
	if x, _ := o.Get("new"); x != 2.0 {
		t.Fatal("indexed Set/Get")
	}
	if x, _ := o.Get("k"); x != 3.0 || o.Len() != 101 {
		t.Fatal("indexed Set replace")
	}
	for _, tail := range []string{`,"k":2}`, `,"kxxxxx":2}`} {
		if _, err := Parse([]byte(base+tail), Limits{}); !errors.Is(err, ErrDuplicateKey) {
			t.Errorf("large object duplicate %s: %v", tail, err)
		}
	}
	if _, err := Parse([]byte(base+`,"KXXX":2}`), Limits{RejectCaseVariants: true}); !errors.Is(err, ErrDuplicateKey) {
		t.Errorf("large object case variant: %v", err)
	}
	if _, err := Parse([]byte(base+`,"KXXX":2}`), Limits{}); err != nil {
		t.Errorf("large object case variant by default: %v", err)
	}
	// Kelvin sign folds to k.
	if _, err := Parse([]byte(base+`,"\u212a":2}`), Limits{RejectCaseVariants: true}); !errors.Is(err, ErrDuplicateKey) {
		t.Errorf("kelvin sign: %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, in := range []string{
		`{"#":"ns4w86Ijk","put":{"hb":{"_":{"#":"hb",">":{"peer1":1795666825781}},"peer1":{"#":"hb/peer1"}}},"ok":{"@":9,"/":1}}`,
		`[{"a":[1,2,[3,{"b":null}]]},"\u2028",1e+21,1e-7,0.30000000000000004]`,
		`"\u0007\b\u007f"`,
	} {
		v, err := Parse([]byte(in), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		out := Marshal(v)
		v2, err := Parse(out, Limits{})
		if err != nil || !Equal(v, v2) || string(Marshal(v2)) != string(out) {
			t.Errorf("round trip %s -> %s (%v)", in, out, err)
		}
	}
}

func TestErrorOffset(t *testing.T) {
	_, err := Parse([]byte(`{"a": tru}`), Limits{})
	var e *Error
	if !errors.As(err, &e) || e.Offset != 6 {
		t.Fatalf("offset: %v", err)
	}
}

func TestParseDeepAllocs(t *testing.T) {
	deep := []byte(strings.Repeat("[", 10000))
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := Parse(deep, Limits{}); !errors.Is(err, ErrDepth) {
			t.Fatal(err)
		}
	})
	if allocs > 100 {
		t.Errorf("depth refusal allocated %v times", allocs)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"#":"ns4w86Ijk","put":{"hb":{"_":{"#":"hb",">":{"peer1":1795666825781}},"peer1":{"#":"hb/peer1"}}},"ok":{"@":9,"/":1}}`,
		`[1,-0,1e21,1e-7,5e-324,"\ud83d\ude00","\u2028",{"a":{"b":[]}}]`,
		`"\ud800"`, `{"a":1,"a":2}`, `1e400`, `01`, "\"\xff\"", `[[[[[[`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Parse(data, Limits{})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		out := Marshal(v)
		v2, err := Parse(out, Limits{})
		if err != nil {
			t.Fatalf("re-parse of %q: %v", out, err)
		}
		if !Equal(v, v2) {
			t.Fatalf("round trip changed value: %q -> %q", data, out)
		}
		if out2 := Marshal(v2); string(out2) != string(out) {
			t.Fatalf("marshal not stable: %q vs %q", out, out2)
		}
	})
}

var putFrame = []byte(`[{"put":{"hb":{"_":{"#":"hb",">":{"peer1":1795666825781}},"peer1":{"#":"hb/peer1"}},"hb/peer1":{"_":{">":{"beat":1795666825781,"name":1795666825781.001},"#":"hb/peer1"},"beat":1,"name":"alice"}},"ok":{"@":9,"/":1},"#":"ns4w86Ijk"}]`)

func BenchmarkParsePutFrame(b *testing.B) {
	b.SetBytes(int64(len(putFrame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(putFrame, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendPutFrame(b *testing.B) {
	v, err := Parse(putFrame, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 512)
	b.SetBytes(int64(len(putFrame)))
	b.ReportAllocs()
	for b.Loop() {
		buf = Append(buf[:0], v)
	}
}

func BenchmarkAppendNumber(b *testing.B) {
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendNumber(buf[:0], 1795666934618.0051)
	}
}

func TestNodeNumberVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/numbers.txt")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(string(data)) {
		hexBits, want, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		bits, err := strconv.ParseUint(hexBits, 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		f := math.Float64frombits(bits)
		if got := string(AppendNumber(nil, f)); got != want {
			t.Errorf("AppendNumber(%v) = %s, node says %s", f, got, want)
		}
		n++
		if want == "null" { // ±Inf
			continue
		}
		// Parsing node's text gives back the same float64 (or 0 for -0).
		v, err := Parse([]byte(want), Limits{})
		if f2, ok := v.(float64); err != nil || !ok || f2 != f {
			t.Errorf("Parse(%s) = %v, %v; want %v", want, v, err, f)
		}
	}
	if n < 3000 {
		t.Fatalf("only %d vectors", n)
	}
}

func TestNodeStringVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/strings.json")
	if err != nil {
		t.Fatal(err)
	}
	v, err := Parse(data, Limits{MaxElements: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range v.([]any) {
		row := e.([]any)
		a, b, want, text := row[0].(string), row[1].(string), int(row[2].(float64)), row[3].(string)
		if got := CompareUTF16(a, b); got != want {
			t.Errorf("CompareUTF16(%q, %q) = %d, node says %d", a, b, got, want)
		}
		if got := string(AppendString(nil, a)); got != text {
			t.Errorf("AppendString(%q) = %s, node says %s", a, got, text)
		}
	}
}

// FuzzCompareUTF16 checks CompareUTF16 against a reference built on
// unicode/utf16 (for valid UTF-8), and the two entry points against each
// other.
func FuzzCompareUTF16(f *testing.F) {
	f.Add("😀", "～")
	f.Add("a", "ab")
	f.Add("\ue000x", "\U00010000")
	f.Fuzz(func(t *testing.T, a, b string) {
		got := CompareUTF16(a, b)
		if gb := CompareUTF16Bytes([]byte(a), []byte(b)); gb != got {
			t.Fatalf("string %d vs bytes %d", got, gb)
		}
		if rev := CompareUTF16(b, a); rev != -got {
			t.Fatalf("not antisymmetric: %d, %d", got, rev)
		}
		if !utf8.ValidString(a) || !utf8.ValidString(b) {
			return
		}
		if want := slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b))); got != want {
			t.Fatalf("CompareUTF16(%q, %q) = %d, want %d", a, b, got, want)
		}
	})
}
