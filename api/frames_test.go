package api

import (
	"bytes"
	"fmt"
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
