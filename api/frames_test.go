package api

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/krestianstvo/luminary/graph"
)

func TestFrameClass(t *testing.T) {
	for _, tc := range []struct {
		size, class int
		ok          bool
	}{
		{0, 0, true}, {1, 0, true}, {512, 0, true}, {513, 1, true}, {1024, 1, true},
		{600 << 10, 11, true}, {4 << 20, maxFrameClass - minFrameClass, true}, {4<<20 + 1, 0, false},
	} {
		c, ok := frameClass(tc.size)
		if c != tc.class || ok != tc.ok {
			t.Errorf("frameClass(%d) = %d, %v; want %d, %v", tc.size, c, ok, tc.class, tc.ok)
		}
	}
}

func TestNewFrameAndRecycle(t *testing.T) {
	for _, size := range []int{0, 100, 513, 70 << 10, 4 << 20} {
		b, home := newFrame(size)
		if len(b) != 0 || cap(b) < size || home == nil {
			t.Fatalf("newFrame(%d): len %d cap %d home %v", size, len(b), cap(b), home != nil)
		}
		b = append(b, bytes.Repeat([]byte{'x'}, size)...)
		if !(outFrame{b: b, home: home}).recycle() {
			t.Fatalf("a frame of %d bytes in its own buffer was not recycled", size)
		}
	}
	// Beyond the largest class: allocated, never pooled.
	b, home := newFrame(4<<20 + 1)
	if home != nil || cap(b) < 4<<20+1 {
		t.Fatalf("an oversized frame got home %v, cap %d", home != nil, cap(b))
	}
	if (outFrame{b: b}).recycle() {
		t.Fatal("a frame without a home was recycled")
	}
}

// TestOwnFrames checks the frames built for one connection's part: the
// same bytes as an allocated frame, each in a pooled buffer of its own
// (the writer of that connection alone recycles it). Frames shared by
// several connections are built by frame and queued without a home
// (broadcast), so nothing recycles them.
func TestOwnFrames(t *testing.T) {
	accepted := graph.Graph{}
	for i := range parallelPushMin {
		accepted.Set(fmt.Sprintf("s/%03d", i), "f", graph.Field{Value: graph.String("v"), State: 1})
	}
	enc := newPushEncoder(accepted, "id1", "")
	defer enc.release()
	own := enc.ownFrame(accepted)
	if own.home == nil {
		t.Fatal("a recipient's frame has no home")
	}
	if want := enc.frame(accepted); !bytes.Equal(own.b, want) {
		t.Fatal("the pooled frame differs from the allocated one")
	}
	parts := []recipient{{part: accepted}, {part: accepted}}
	frames := make([]outFrame, len(parts))
	if encodeParts(accepted, "id1", "", parts, frames) {
		for i, f := range frames {
			if f.home == nil || (i > 0 && &f.b[0] == &frames[0].b[0]) {
				t.Fatalf("recipient %d: frame not its own", i)
			}
		}
	}
}

// TestPooledPushFramesIntact runs puts whose souls different connections
// follow, so that every push is a frame built for one connection from the
// pool and recycled by that connection's writer, while the next puts'
// frames reuse the buffers: each follower must receive every put of its
// own soul, intact and in order. (A buffer recycled before its frame was
// written, or shared by two connections, shows as a corrupt or foreign
// frame; with -race, as a data race.)
func TestPooledPushFramesIntact(t *testing.T) {
	e := newEnv(t)
	const followers, rounds = 4, 150
	subs := make([]*client, followers)
	for k := range subs {
		subs[k] = e.dial()
		subs[k].get(fmt.Sprintf("g%d", k), fmt.Sprintf("p/%d", k))
	}
	w := e.dial()
	base := e.now() - 1000
	padding := strings.Repeat("x", 700) // frames of more than one size class
	for i := range rounds {
		var souls []string
		for k := range followers {
			val := fmt.Sprintf(`"r%d-%d-%s"`, i, k, padding[:i%2*700])
			n := strings.TrimPrefix(putFrame("", fmt.Sprintf("p/%d", k), base+float64(i), "v", val), `{"#":"","put":{`)
			souls = append(souls, strings.TrimSuffix(n, "}}"))
		}
		id := fmt.Sprintf("w%d", i)
		w.send(`{"#":"` + id + `","put":{` + strings.Join(souls, ",") + `}}`)
		w.reply(id, nil)
	}
	for k, c := range subs {
		soul := fmt.Sprintf("p/%d", k)
		for i := range rounds {
			m := c.next()
			p, _ := m["put"].(map[string]any)
			if len(p) != 1 {
				t.Fatalf("follower %d, put %d: pushed %v, want only %s", k, i, m, soul)
			}
			want := fmt.Sprintf("r%d-%d-%s", i, k, padding[:i%2*700])
			if got, _ := m.node(soul)["v"].(string); got != want {
				t.Fatalf("follower %d, put %d: v = %.40q…, want %.40q…", k, i, got, want)
			}
		}
	}
}
