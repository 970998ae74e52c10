package api

import (
	"bytes"
	"testing"

	"github.com/krestianstvo/luminary/graph"
)

// A push frame's body is exactly Graph.AppendJSON's text, whether a node
// is encoded for this frame, reused from an earlier frame of the same
// broadcast, or is a recipient's own subset of an accepted node.
func TestPushEncoderMatchesAppendJSON(t *testing.T) {
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
	for round := range 2 {
		enc := newPushEncoder(accepted, "id1", "pidA,pidB")
		for i, p := range parts {
			want := appendPushOpen(nil, "id1", "pidA,pidB")
			want = append(want, `,"put":`...)
			want = append(p.AppendJSON(want), '}')
			got := enc.frame(p)
			if !bytes.Equal(got, want) {
				t.Fatalf("round %d part %d:\n got %s\nwant %s", round, i, got, want)
			}
			if len(got) != cap(got) {
				t.Fatalf("round %d part %d: frame of %d bytes allocated with capacity %d", round, i, len(got), cap(got))
			}
		}
		if len(enc.spans) != len(accepted) {
			t.Fatalf("%d souls encoded once, want the %d whole nodes", len(enc.spans), len(accepted))
		}
		enc.release()
	}
}
