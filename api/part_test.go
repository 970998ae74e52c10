package api

import (
	"bytes"
	"testing"

	"github.com/krestianstvo/luminary/graph"
)

// appendPart writes exactly Graph.AppendJSON's text, whether a node comes
// from the cache, is encoded into it, or is a recipient's own subset.
func TestAppendPartMatchesAppendJSON(t *testing.T) {
	accepted := graph.Graph{}
	for i, soul := range []string{"lum/a/log/0", "lum/a/hb", "x\u2028y", "lum/a/in/z"} {
		accepted.Set(soul, "f", graph.Field{Value: graph.String(`v"` + soul), State: float64(i + 1)})
		accepted.Set(soul, "g", graph.Field{Value: graph.Number(float64(i)), State: float64(i + 1)})
	}
	subset := graph.Graph{"lum/a/hb": &graph.Node{Soul: "lum/a/hb", Fields: map[string]graph.Field{"f": accepted["lum/a/hb"].Fields["f"]}}}
	parts := []graph.Graph{
		{"lum/a/log/0": accepted["lum/a/log/0"], "x\u2028y": accepted["x\u2028y"]},
		{"lum/a/log/0": accepted["lum/a/log/0"], "lum/a/hb": subset["lum/a/hb"]},
		accepted,
	}
	cache := map[string][]byte{}
	for round := range 2 {
		for i, p := range parts {
			for _, c := range []map[string][]byte{cache, nil} {
				if got, want := appendPart([]byte("["), p, accepted, c), p.AppendJSON([]byte("[")); !bytes.Equal(got, want) {
					t.Fatalf("round %d part %d cache=%v:\n got %s\nwant %s", round, i, c != nil, got, want)
				}
			}
		}
	}
	if len(cache) != len(accepted) {
		t.Fatalf("%d souls cached, want the %d whole nodes", len(cache), len(accepted))
	}
}
