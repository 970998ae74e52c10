package graph

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/krestianstvo/luminary/internal/jsjson"
)

// val parses one JSON value text into a Value.
func val(t testing.TB, text string) Value {
	t.Helper()
	x, err := jsjson.Parse([]byte(text), jsjson.Limits{})
	if err != nil {
		t.Fatalf("parse %s: %v", text, err)
	}
	v, err := ValueOf(x)
	if err != nil {
		t.Fatalf("value %s: %v", text, err)
	}
	return v
}

// TestHAMVectors runs every vector of gun.md §2.3 (gun 0.2020.1241, run
// through root.on('in')). "-" means no current field.
func TestHAMVectors(t *testing.T) {
	const machine = 2000 // the local clock; only the last vector is ahead of it
	cases := []struct {
		name     string
		curState float64 // NaN: no current field
		cur      string
		inState  float64
		in       string
		want     Decision
	}{
		{"empty field", math.NaN(), "", 1000, `"a"`, Accept},
		{"older", 1000, `"a"`, 999, `"z"`, Historical},
		{"newer, same value", 1000, `"a"`, 1001, `"a"`, Accept},
		{"newer, smaller value", 1000, `"z"`, 1001, `"a"`, Accept},
		{`equal, "b" vs "a"`, 1000, `"a"`, 1000, `"b"`, Accept},
		{`equal, "a" vs "b"`, 1000, `"b"`, 1000, `"a"`, Lose},
		{"equal, same", 1000, `"a"`, 1000, `"a"`, Lose},
		{`equal, 2 vs "1"`, 1000, `"1"`, 1000, `2`, Accept},
		{`equal, "1" vs 2`, 1000, `2`, 1000, `"1"`, Lose},
		{`equal, null vs "a"`, 1000, `"a"`, 1000, `null`, Accept},
		{`equal, "a" vs null`, 1000, `null`, 1000, `"a"`, Lose},
		{"equal, true vs null", 1000, `null`, 1000, `true`, Accept},
		{"equal, false vs true", 1000, `true`, 1000, `false`, Lose},
		{"equal, null vs false", 1000, `false`, 1000, `null`, Accept},
		{`equal, "" vs null`, 1000, `null`, 1000, `""`, Lose},
		{`equal, link vs "zzz"`, 1000, `"zzz"`, 1000, `{"#":"x"}`, Accept},
		{"equal, link b vs link a", 1000, `{"#":"a"}`, 1000, `{"#":"b"}`, Accept},
		{"equal, 10 vs 9", 1000, `9`, 1000, `10`, Lose},
		{"equal, 9 vs 10", 1000, `10`, 1000, `9`, Accept},
		{"equal, -1 vs 1", 1000, `1`, 1000, `-1`, Lose},
		{`equal, 1.5 vs "1.5"`, 1000, `"1.5"`, 1000, `1.5`, Accept},
		{`equal, "B" vs "a"`, 1000, `"a"`, 1000, `"B"`, Lose},
		{`equal, "é" vs "z"`, 1000, `"z"`, 1000, `"é"`, Accept},
		{`equal, "😀" vs "～"`, 1000, `"～"`, 1000, `"😀"`, Lose},
		{`equal, "<b" vs "=a"`, 1000, `"=a"`, 1000, `"<b"`, Lose},
		{"future (now+1500 ms)", math.NaN(), "", machine + 1500, `"later"`, Defer},
		// Beyond the table: the future check comes before everything else.
		{"future beats current", 1000, `"a"`, machine + 1, `"b"`, Defer},
		{"equal, -0 vs 0", 1000, `0`, 1000, `-0`, Lose},
		// Raw bytes say "\n" (0x0A) > "\t" (0x09); the JSON texts say \n < \t.
		{"equal, newline vs tab", 1000, `"\t"`, 1000, `"\n"`, Lose},
	}
	for _, c := range cases {
		exists := !math.IsNaN(c.curState)
		var cur Value
		if exists {
			cur = val(t, c.cur)
		}
		got := HAM(machine, c.inState, c.curState, val(t, c.in), cur, exists)
		if got != c.want {
			t.Errorf("%s: HAM = %v, want %v", c.name, got, c.want)
		}
	}
}

// hamValues is a pool of values whose JSON texts order in interesting ways.
var hamValues = []Value{
	Null(), Bool(true), Bool(false), Number(0), Number(-1), Number(9), Number(10),
	Number(1.5), Number(1e21), String(""), String("a"), String("B"), String("1.5"),
	String("😀"), String("～"), String("é"), String("<b"), String("=a"), String("\n"),
	Link("a"), Link("b"), Link("😀"),
}

type update struct {
	soul, field string
	f           Field
}

func randomUpdates(r *rand.Rand, n int) []update {
	ups := make([]update, n)
	for i := range ups {
		ups[i] = update{
			soul:  fmt.Sprintf("s%d", r.Intn(3)),
			field: fmt.Sprintf("f%d", r.Intn(3)),
			f:     Field{Value: hamValues[r.Intn(len(hamValues))], State: float64(1 + r.Intn(3))},
		}
	}
	return ups
}

// mergeAll merges the updates one by one into a fresh MemoryStore, and
// returns the resulting graph.
func mergeAll(t *testing.T, ups []update) Graph {
	t.Helper()
	s := NewMemoryStore()
	ctx := context.Background()
	for _, u := range ups {
		g := Graph{}
		g.Set(u.soul, u.field, u.f)
		if _, err := s.Merge(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	return snapshot(t, s)
}

func snapshot(t testing.TB, s Store) Graph {
	t.Helper()
	g := Graph{}
	if err := s.Scan(context.Background(), "", func(n *Node) error {
		g[n.Soul] = n
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return g
}

// TestHAMConvergence checks that merging the same updates in any order, or
// twice, gives the same graph (HAM is commutative, associative and
// idempotent), and that the result is the per-field maximum.
func TestHAMConvergence(t *testing.T) {
	for seed := int64(1); seed <= 200; seed++ {
		r := rand.New(rand.NewSource(seed))
		ups := randomUpdates(r, 1+r.Intn(30))
		want := mergeAll(t, ups)
		for range 5 {
			perm := make([]update, len(ups))
			for i, j := range r.Perm(len(ups)) {
				perm[i] = ups[j]
			}
			if got := mergeAll(t, perm); !got.Equal(want) {
				t.Fatalf("seed %d: order changed the result:\n%s\nvs\n%s", seed, got.AppendJSON(nil), want.AppendJSON(nil))
			}
			if got := mergeAll(t, append(perm, ups...)); !got.Equal(want) {
				t.Fatalf("seed %d: merging twice changed the result", seed)
			}
		}
		// The winner of each field is the maximum by (state, L(value)).
		best := map[[2]string]Field{}
		for _, u := range ups {
			k := [2]string{u.soul, u.field}
			b, ok := best[k]
			if !ok || u.f.State > b.State || (u.f.State == b.State && compareL(u.f.Value, b.Value) > 0) {
				best[k] = u.f
			}
		}
		for k, f := range best {
			got := want[k[0]].Fields[k[1]]
			if got.State != f.State || !got.Value.Equal(f.Value) {
				t.Fatalf("seed %d: %v = %v, want %v", seed, k, got, f)
			}
		}
	}
}

func BenchmarkHAM(b *testing.B) {
	b.Run("newer", func(b *testing.B) {
		in, cur := String("a"), String("b")
		for b.Loop() {
			if HAM(2000, 1001, 1000, in, cur, true) != Accept {
				b.Fatal("decision")
			}
		}
	})
	b.Run("equal-same", func(b *testing.B) {
		in, cur := String("alice"), String("alice")
		for b.Loop() {
			if HAM(2000, 1000, 1000, in, cur, true) != Lose {
				b.Fatal("decision")
			}
		}
	})
	b.Run("equal-compare", func(b *testing.B) {
		in, cur := String("😀 heartbeat"), String("～ heartbeat")
		b.ReportAllocs()
		for b.Loop() {
			if HAM(2000, 1000, 1000, in, cur, true) != Lose {
				b.Fatal("decision")
			}
		}
	})
}
