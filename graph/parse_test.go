package graph

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/krestianstvo/luminary/internal/jsjson"
)

func parsePut(t testing.TB, text string, lim Limits) (Graph, error) {
	t.Helper()
	x, err := jsjson.Parse([]byte(text), jsjson.Limits{MaxMembers: -1})
	if err != nil {
		t.Fatalf("jsjson: %v", err)
	}
	return ParsePut(x, lim)
}

// frameF5 is the put of captured frame F5 (gun.md §3.7).
const frameF5 = `{"hb":{"_":{"#":"hb",">":{"peer1":1795666825781}},"peer1":{"#":"hb/peer1"}},"hb/peer1":{"_":{">":{"beat":1795666825781,"name":1795666825781},"#":"hb/peer1"},"beat":1,"name":"alice"}}`

func TestParsePutFrame(t *testing.T) {
	g, err := parsePut(t, frameF5, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if g.Len() != 3 {
		t.Fatalf("fields %d", g.Len())
	}
	if soul, ok := g["hb"].Fields["peer1"].Value.AsLink(); !ok || soul != "hb/peer1" {
		t.Fatal("link")
	}
	if f := g["hb/peer1"].Fields["name"]; f.State != 1795666825781 || f.Value != String("alice") {
		t.Fatalf("name %v", f)
	}
	want := `{"hb":{"_":{"#":"hb",">":{"peer1":1795666825781}},"peer1":{"#":"hb/peer1"}},"hb/peer1":{"_":{"#":"hb/peer1",">":{"beat":1795666825781,"name":1795666825781}},"beat":1,"name":"alice"}}`
	if got := string(g.AppendJSON(nil)); got != want {
		t.Fatalf("AppendJSON:\n%s\nwant\n%s", got, want)
	}
	// A delete (F7) and a signed user-space value (F10) parse too.
	for _, in := range []string{
		`{"hb/peer1":{"_":{"#":"hb/peer1",">":{"beat":1795666826718}},"beat":null}}`,
		`{"~XPk.AYF":{"_":{"#":"~XPk.AYF",">":{"status":1795666827826}},"status":"{\":\":\"online\",\"~\":\"hMYv==\"}"}}`,
		`{"n":{"_":{"#":"n",">":{"a":0,"b":9007199254740992,"c":1795666934618.0051}},"a":true,"b":false,"c":-1.5e-7}}`,
		`{"n":{"_":{"#":"n",">":{},"x":"ignored meta"}}}`,
		`{"n":{"_":{"#":"n",">":{"a":1,"unused":2}},"a":""}}`,
	} {
		if _, err := parsePut(t, in, Limits{}); err != nil {
			t.Errorf("%s: %v", in, err)
		}
	}
}

func TestParsePutRejects(t *testing.T) {
	many := func(n int) string {
		var b, s strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
				s.WriteByte(',')
			}
			fmt.Fprintf(&b, `"k%d":1`, i)
			fmt.Fprintf(&s, `"k%d":1`, i)
		}
		return `{"n":{"_":{"#":"n",">":{` + s.String() + `}},` + b.String() + `}}`
	}
	cases := []struct {
		in   string
		lim  Limits
		want error
		text string
	}{
		{`[]`, Limits{}, ErrBadNode, ""},
		{`{"n":1}`, Limits{}, ErrBadNode, ""},
		{`{"n":{"a":1}}`, Limits{}, ErrBadNode, ""},
		{`{"n":{"_":1}}`, Limits{}, ErrBadNode, ""},
		{`{"n":{"_":{"#":"n"}}}`, Limits{}, ErrBadNode, ""},
		{`{"n":{"_":{"#":"n",">":[]}}}`, Limits{}, ErrBadNode, ""},
		{`{"":{"_":{"#":"",">":{}}}}`, Limits{}, ErrBadNode, ""},
		{`{"n":{"_":{"#":"m",">":{}}}}`, Limits{}, ErrSoulMismatch, "invalid: soul not same"},
		{`{"n":{"_":{">":{}}}}`, Limits{}, ErrSoulMismatch, "invalid: soul not same"},
		{`{"n":{"_":{"#":1,">":{}}}}`, Limits{}, ErrSoulMismatch, ""},
		{`{"n":{"_":{"#":"n",">":{}},"a":1}}`, Limits{}, ErrNoState, "invalid: no state"},
		{`{"n":{"_":{"#":"n",">":{"a":"1e3"}},"a":1}}`, Limits{}, ErrBadState, "invalid: bad state"},
		{`{"n":{"_":{"#":"n",">":{"a":null}},"a":1}}`, Limits{}, ErrBadState, ""},
		{`{"n":{"_":{"#":"n",">":{"a":-0}},"a":1}}`, Limits{}, ErrBadState, ""},
		{`{"n":{"_":{"#":"n",">":{"a":-1}},"a":1}}`, Limits{}, ErrBadState, ""},
		{`{"n":{"_":{"#":"n",">":{"a":9007199254740994}},"a":1}}`, Limits{}, ErrBadState, ""},
		{`{"n":{"_":{"#":"n",">":{"a":1}},"a":[]}}`, Limits{}, ErrBadValue, "invalid: bad value"},
		{`{"n":{"_":{"#":"n",">":{"a":1}},"a":{}}}`, Limits{}, ErrBadValue, ""},
		{`{"n":{"_":{"#":"n",">":{"a":1}},"a":{"#":""}}}`, Limits{}, ErrBadValue, ""},
		{`{"n":{"_":{"#":"n",">":{"a":1}},"a":{"#":1}}}`, Limits{}, ErrBadValue, ""},
		{`{"n":{"_":{"#":"n",">":{"a":1}},"a":{"#":"x","y":1}}}`, Limits{}, ErrBadValue, ""},
		{`{"n":{"_":{"#":"n",">":{"a":1}},"a":{".":"x"}}}`, Limits{}, ErrBadValue, ""},
		{many(11), Limits{MaxFieldsPerNode: 10}, ErrTooMany, "invalid: too many keys"},
		{many(11), Limits{MaxFields: 10}, ErrTooMany, ""},
		{`{"a":{"_":{"#":"a",">":{}}},"b":{"_":{"#":"b",">":{}}}}`, Limits{MaxSouls: 1}, ErrTooMany, ""},
		{`{"n":{"_":{"#":"n",">":{"a":1}},"a":"12345"}}`, Limits{MaxValueBytes: 4}, ErrTooLarge, ""},
		{`{"n":{"_":{"#":"n",">":{"a":1}},"a":{"#":"12345"}}}`, Limits{MaxSoulBytes: 4}, ErrTooLarge, ""},
		{`{"12345":{"_":{"#":"12345",">":{}}}}`, Limits{MaxSoulBytes: 4}, ErrTooLarge, ""},
		{`{"n":{"_":{"#":"n",">":{"abcde":1}},"abcde":1}}`, Limits{MaxFieldNameBytes: 4}, ErrTooLarge, ""},
	}
	for _, c := range cases {
		g, err := parsePut(t, c.in, c.lim)
		if !errors.Is(err, c.want) || g != nil {
			t.Errorf("%.60s: got %v, %v; want %v", c.in, g, err, c.want)
			continue
		}
		if c.text != "" && !strings.HasPrefix(err.Error(), c.text) {
			t.Errorf("%.60s: error %q does not start with %q", c.in, err, c.text)
		}
	}
	// 1001 keys are refused by the default limits; 100 000 keys (table A
	// row 7) do not even get past jsjson's default limits.
	if _, err := parsePut(t, many(DefaultLimits.MaxFieldsPerNode+1), Limits{}); !errors.Is(err, ErrTooMany) {
		t.Errorf("1001 keys: %v", err)
	}
	if _, err := jsjson.Parse([]byte(many(100000)), jsjson.Limits{}); !errors.Is(err, jsjson.ErrTooLarge) {
		t.Errorf("100000 keys: %v", err)
	}
}

func TestValueOf(t *testing.T) {
	for _, x := range []any{[]any{}, &jsjson.Object{}, math.NaN(), math.Inf(1), 1, "x"[:0] + "", struct{}{}} {
		_, err := ValueOf(x)
		if _, isStr := x.(string); isStr {
			if err != nil {
				t.Errorf("ValueOf(%#v): %v", x, err)
			}
			continue
		}
		if !errors.Is(err, ErrBadValue) {
			t.Errorf("ValueOf(%#v) = %v", x, err)
		}
	}
	for _, v := range hamValues {
		back, err := ValueOf(v.Interface())
		if err != nil || !back.Equal(v) || back.Kind() != v.Kind() {
			t.Errorf("Interface round trip of %v: %v %v", v, back, err)
		}
		if text := string(jsjson.Marshal(v.Interface())); text != v.String() {
			t.Errorf("AppendJSON(%v) = %s, jsjson says %s", v, v.String(), text)
		}
	}
	for _, f := range []func(){func() { Number(math.NaN()) }, func() { Number(math.Inf(-1)) }, func() { Link("") }} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		}()
	}
}

func FuzzParsePut(f *testing.F) {
	f.Add([]byte(frameF5))
	f.Add([]byte(`{"n":{"_":{"#":"n",">":{"a":1795666934618.0051,"b":0}},"a":{"#":"x"},"b":"\u2028😀"}}`))
	f.Add([]byte(`{"n":{"_":{"#":"m",">":{}}}}`))
	f.Add([]byte(`{"n":{"_":{"#":"n",">":{"a":-0}},"a":1}}`))
	f.Add([]byte(`{"\u0000":{"_":{"#":"\u0000",">":{"\u0000":1}},"\u0000":null}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := jsjson.Parse(data, jsjson.Limits{})
		if err != nil {
			return
		}
		g, err := ParsePut(x, Limits{})
		if err != nil {
			return
		}
		out := g.AppendJSON(nil)
		x2, err := jsjson.Parse(out, jsjson.Limits{})
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		g2, err := ParsePut(x2, Limits{})
		if err != nil {
			t.Fatalf("re-ParsePut of %s: %v", out, err)
		}
		if !g.Equal(g2) {
			t.Fatalf("round trip changed the graph: %s", out)
		}
	})
}

func BenchmarkParsePut(b *testing.B) {
	x, err := jsjson.Parse([]byte(frameF5), jsjson.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("graph-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParsePut(x, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("with-jsjson", func(b *testing.B) {
		data := []byte(frameF5)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			x, err := jsjson.Parse(data, jsjson.Limits{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := ParsePut(x, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkGraphAppendJSON(b *testing.B) {
	g, err := parsePut(b, frameF5, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = g.AppendJSON(buf[:0])
	}
}
