package api

import (
	"bytes"
	"fmt"
	"runtime"
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

// A large broadcast to many recipients, each following its own part of
// it, is encoded on several goroutines (encodeParts); every frame must be
// the one a single encoder builds, whatever goroutine built it, and parts
// that share nodes must not disturb one another.
func TestEncodePartsMatchesOneEncoder(t *testing.T) {
	accepted := graph.Graph{}
	for i := range 3 * parallelPushMin {
		soul := fmt.Sprintf("lum/w%d/hb", i)
		accepted.Set(soul, "tick", graph.Field{Value: graph.String(`{"n":` + soul + `"}`), State: float64(i + 1)})
	}
	souls := accepted.Souls()
	rcpts := make([]recipient, 7)
	for i := range rcpts {
		part := graph.Graph{}
		for j, soul := range souls {
			if j%len(rcpts) == i || j%50 == 0 { // every 50th node goes to everyone
				part[soul] = accepted[soul]
			}
		}
		rcpts[i].part = part
	}
	frames := make([]outFrame, len(rcpts))
	if !encodeParts(accepted, "id1", "", rcpts, frames) {
		if runtime.GOMAXPROCS(0) > 1 {
			t.Fatal("a broadcast of this size was not encoded in parallel")
		}
	}
	enc := newPushEncoder(accepted, "id1", "")
	defer enc.release()
	for i, r := range rcpts {
		if frames[i].b == nil && runtime.GOMAXPROCS(0) == 1 {
			continue
		}
		if want := enc.frame(r.part); !bytes.Equal(frames[i].b, want) {
			t.Fatalf("recipient %d: frame differs from a single encoder's", i)
		}
	}
	// A recipient of the whole broadcast (part nil) keeps the serial path.
	rcpts[3].part = nil
	if encodeParts(accepted, "id1", "", rcpts, make([]outFrame, len(rcpts))) {
		t.Fatal("encoded in parallel with a whole-frame recipient")
	}
}
