package api

import (
	"errors"
	"strings"
	"testing"

	"github.com/krestianstvo/luminary/internal/jsjson"
)

// Frames captured from gun 0.2020.1241 (see shared research gun.md §3.7 and
// api/testdata/README.md).
var capturedFrames = []string{
	`{"#":"IUTJa9bU8","dam":"?","pid":"5Jrov9EDq"}`,
	`{"dam":"?","pid":"ATz0H0tKe","@":"IUTJa9bU8","#":"pu06thNGJ"}`,
	`{"get":{".":"peer1","#":"hb"},"#":"JvLA0Gfhe"}`,
	`{"#":"16nKFNsju","@":"JvLA0Gfhe"}`,
	`[{"put":{"hb":{"_":{"#":"hb",">":{"peer1":1795666825781}},"peer1":{"#":"hb/peer1"}},"hb/peer1":{"_":{">":{"beat":1795666825781,"name":1795666825781},"#":"hb/peer1"},"beat":1,"name":"alice"}},"ok":{"@":9,"/":1},"#":"ns4w86Ijk"}]`,
	`{"#":"rVhowyywo","@":"ns4w86Ijk","ok":true}`,
	`{"put":{"hb":{"_":{"#":"hb",">":{"peer1":1795666826718}},"peer1":{"#":"hb/peer1"}},"hb/peer1":{"_":{"#":"hb/peer1",">":{"beat":1795666826718}},"beat":null}},"ok":{"@":9,"/":1},"#":"AaPciZAsa"}`,
	`{"get":{"#":"hb/peer1",".":"name"},"#":"1wdmPV9If"}`,
	`{"#":"VpogTjD2O","##":1648091369,"@":"1wdmPV9If","FOO":1,"put":{"hb/peer1":{"_":{"#":"hb/peer1",">":{"name":1795666825781}},"name":"alice"}}}`,
	`{"#":"g3","><":"1bO5X3LL8,wpid","get":{"#":"hb/go"}}`,
	`{"#":"Lip7gzdFB","><":"1bO5X3LL8,wpid","ok":{"/":2,"@":2},"put":{"hb/go":{"_":{"#":"hb/go",">":{"beat":1795666894375,"who":1795666894375}},"beat":1,"who":"w"}}}`,
	`{"#":"NNUTpcw2s","@":"u14","err":"Unverified data."}`,
	`[]`,
}

func TestDecodeCapturedFrames(t *testing.T) {
	for _, f := range capturedFrames {
		msgs, err := DecodeFrame([]byte(f), DecodeLimits{})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, m := range msgs {
			if m.Invalid() != "" {
				t.Errorf("%s: invalid: %s", f, m.Invalid())
			}
		}
	}
	msgs, _ := DecodeFrame([]byte(capturedFrames[0]), DecodeLimits{})
	if m := msgs[0]; m.ID != "IUTJa9bU8" || m.Dam != "?" || m.PID != "5Jrov9EDq" {
		t.Errorf("hello decoded as %+v", m)
	}
	msgs, _ = DecodeFrame([]byte(capturedFrames[4]), DecodeLimits{})
	if len(msgs) != 1 || !msgs[0].HasPut || msgs[0].ID != "ns4w86Ijk" || msgs[0].OK == nil {
		t.Errorf("batch put decoded as %+v", msgs)
	}
	msgs, _ = DecodeFrame([]byte(capturedFrames[8]), DecodeLimits{})
	if m := msgs[0]; m.Ack != "1wdmPV9If" || !m.HasPut {
		t.Errorf("reply decoded as %+v", m)
	}
	if v, ok := msgs[0].Member("FOO"); !ok || v != 1.0 {
		t.Errorf("unknown member FOO = %v, %v", v, ok)
	}
	msgs, _ = DecodeFrame([]byte(capturedFrames[9]), DecodeLimits{})
	if m := msgs[0]; m.Seen != "1bO5X3LL8,wpid" || m.Get == nil {
		t.Errorf("forwarded get decoded as %+v", m)
	}
	msgs, _ = DecodeFrame([]byte(capturedFrames[11]), DecodeLimits{})
	if m := msgs[0]; m.Err != "Unverified data." {
		t.Errorf("err decoded as %+v", m)
	}
	msgs, err := DecodeFrame([]byte("[]"), DecodeLimits{})
	if err != nil || len(msgs) != 0 {
		t.Errorf("keep-alive: %v %v", msgs, err)
	}
}

func TestDecodeFrameRefusals(t *testing.T) {
	keys := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"#":"a","x":{`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`"k` + itoa(i) + `":1`)
		}
		b.WriteString(`}}`)
		return b.String()
	}
	batch := func(n int) string {
		return "[" + strings.TrimSuffix(strings.Repeat(`{"#":"x"},`, n), ",") + "]"
	}
	cases := []struct {
		name  string
		frame string
		want  error
	}{
		{"truncated", `{"#":"a","get":{"#":"x"}`, ErrParse},
		{"not json", `hello`, ErrParse},
		{"empty", ``, ErrParse},
		{"deep", strings.Repeat("[", 10000) + strings.Repeat("]", 10000), ErrParse},
		{"invalid utf8", "{\"#\":\"a\",\"x\":\"\xff\"}", ErrParse},
		{"lone surrogate", `{"#":"a","x":"\ud800"}`, ErrParse},
		{"duplicate name", `{"#":"a","#":"b"}`, ErrParse},
		{"NaN", `{"#":"a","x":NaN}`, ErrParse},
		{"overflow number", `{"#":"a","x":1e400}`, ErrParse},
		{"too many keys", keys(20000), ErrTooManyKeys},
		{"too many messages", batch(101), ErrTooManyMessages},
		{"string frame", `"hello"`, ErrNotMessage},
		{"number in batch", `[{"#":"a"},1]`, ErrNotMessage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeFrame([]byte(tc.frame), DecodeLimits{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "invalid: ") {
				t.Errorf("reason %q lacks the invalid: prefix", err)
			}
		})
	}
	if _, err := DecodeFrame([]byte(batch(100)), DecodeLimits{}); err != nil {
		t.Errorf("100 messages: %v", err)
	}
	if _, err := DecodeFrame([]byte(`{"#":"`+strings.Repeat("x", 100)+`"}`), DecodeLimits{MaxBytes: 50}); !errors.Is(err, ErrTooBig) {
		t.Errorf("over MaxBytes: %v", err)
	}
}

func TestDecodeMessageShape(t *testing.T) {
	cases := []struct {
		frame, bad string
	}{
		{`{"#":1,"get":{"#":"x"}}`, `invalid: "#" must be a string`},
		{`{"#":"a","@":true}`, `invalid: "@" must be a string`},
		{`{"#":"a","get":"x"}`, `invalid: "get" must be an object`},
		{`{"#":"a","dam":{}}`, `invalid: "dam" must be a string`},
		{`{"#":"` + strings.Repeat("i", 200) + `"}`, `invalid: "#" too long`},
		{`{"#":"a","put":{},"Put":{}}`, `invalid: ambiguous member names`},
		{`{"#":"a","get":{"#":"x"},"GET":1}`, `invalid: ambiguous member names`},
	}
	for _, tc := range cases {
		msgs, err := DecodeFrame([]byte(tc.frame), DecodeLimits{})
		if err != nil {
			t.Fatalf("%s: %v", tc.frame, err)
		}
		if got := msgs[0].Invalid(); got != tc.bad {
			t.Errorf("%s: Invalid() = %q, want %q", tc.frame, got, tc.bad)
		}
	}
	msgs, _ := DecodeFrame([]byte(`{"get":{"#":"x"}}`), DecodeLimits{})
	if m := msgs[0]; m.ID == "" || !m.idMade {
		t.Errorf("missing # not invented: %+v", m)
	}
}

func TestNewIDShape(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newID()
		if len(id) != 9 || strings.ContainsAny(id, "Y") {
			t.Fatalf("id %q has the wrong shape", id)
		}
		for _, c := range id {
			if !strings.ContainsRune(idAlphabet, c) {
				t.Fatalf("id %q outside gun's alphabet", id)
			}
		}
		if seen[id] {
			t.Fatalf("id %q repeated", id)
		}
		seen[id] = true
	}
}

func TestFrameBuildersAreJSON(t *testing.T) {
	frames := [][]byte{
		appendHello(nil, "a", "", "p\"id"),
		appendHello(nil, "a", "b", "pid"),
		appendOK(nil, "a", "b"),
		appendErr(nil, "a", "b", "invalid: \u2028 <x>"),
		appendDamErr(nil, "a", "invalid: parse"),
		append(appendReplyOpen(nil, "a", "b"), '}'),
		appendGet(nil, "a", "p1,p2", "soul", "f", true),
		appendGet(nil, "a", "", "soul", "", false),
	}
	for _, f := range frames {
		msgs, err := DecodeFrame(f, DecodeLimits{})
		if err != nil || len(msgs) != 1 || msgs[0].Invalid() != "" {
			t.Errorf("%s: %v", f, err)
		}
	}
	v, _ := jsjson.Parse(appendErr(nil, "a", "b", "x\"y"), jsjson.Limits{})
	if e, _ := v.(*jsjson.Object).Get("err"); e != "x\"y" {
		t.Errorf("err round trip = %v", e)
	}
}

// FuzzDecodeFrame checks that the wire decoder never panics, never returns
// more messages than MaxBatch, only returns *FrameError with a wire reason,
// and that everything it accepts re-encodes to JSON it accepts again.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range capturedFrames {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		``, `[`, `{`, `[[]]`, `[{}]`, `{"#":1}`, `{"get":"x"}`, `"\ud800"`, "\xff",
		`{"#":"a","#":"a"}`, `[{"#":"a"},{"#":"a"}]`, `{"put":{"s":{"_":{"#":"s",">":{"a":1}},"a":{"b":1}}}}`,
		strings.Repeat("[", 100),
	} {
		f.Add([]byte(s))
	}
	lim := DecodeLimits{MaxBytes: 1 << 16, MaxBatch: 20, MaxMembers: 50, MaxDepth: 16, MaxIDBytes: 64}
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, err := DecodeFrame(data, lim)
		if err != nil {
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T %v is not a *FrameError", err, err)
			}
			if !strings.HasPrefix(err.Error(), "invalid: ") {
				t.Fatalf("reason %q lacks the invalid: prefix", err)
			}
			return
		}
		if len(msgs) > lim.MaxBatch {
			t.Fatalf("%d messages, MaxBatch %d", len(msgs), lim.MaxBatch)
		}
		for _, m := range msgs {
			if m.ID == "" || m.Raw == nil {
				t.Fatalf("message without id or raw: %+v", m)
			}
			if m.Invalid() == "" && len(m.ID) > lim.MaxIDBytes {
				t.Fatalf("id of %d bytes accepted", len(m.ID))
			}
			again, err := DecodeFrame(jsjson.Marshal(m.Raw), lim)
			if err != nil || len(again) != 1 || !jsjson.Equal(again[0].Raw, m.Raw) {
				t.Fatalf("re-encoded message does not decode the same: %v", err)
			}
		}
	})
}

func BenchmarkDecodeFrame(b *testing.B) {
	for _, bc := range []struct{ name, frame string }{
		{"put", capturedFrames[10]},
		{"batch", capturedFrames[4]},
		{"get", capturedFrames[2]},
	} {
		b.Run(bc.name, func(b *testing.B) {
			data := []byte(bc.frame)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeFrame(data, DecodeLimits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
