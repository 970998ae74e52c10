package api

import (
	"math/bits"
	"sync"
)

// outFrame is one frame on its way to a connection. When home is set the
// frame's bytes belong to that connection alone (a push built for its
// part of a broadcast) and go back to the frame pool once written; a frame
// without a home may be shared (one encoding queued to many connections)
// and is left to the collector.
type outFrame struct {
	b    []byte
	home *[]byte
}

// Push frames are recycled: a relay hosting thousands of worlds builds one
// frame per follower connection per round (hundreds of kilobytes each at
// 20 rounds a second), and a busy world one per message per subscriber;
// allocated afresh they were a third of everything such a relay allocated,
// and each collection they brought on delays the rounds released during
// it. Buffers are kept by power-of-two capacity, from minFrameClass to
// maxFrameClass; larger frames are allocated as before. A sync.Pool keeps
// them per processor and lets the collector take them back when idle.
const (
	minFrameClass = 9  // 512 B
	maxFrameClass = 22 // 4 MiB
)

var framePools [maxFrameClass - minFrameClass + 1]sync.Pool

// frameClass returns the pool of a buffer of capacity >= size, and false
// when size is beyond the largest class.
func frameClass(size int) (int, bool) {
	c := max(bits.Len(uint(max(size, 1)-1)), minFrameClass)
	if c > maxFrameClass {
		return 0, false
	}
	return c - minFrameClass, true
}

// newFrame returns an empty buffer with room for size bytes and its home,
// nil when it comes from no pool.
func newFrame(size int) ([]byte, *[]byte) {
	c, ok := frameClass(size)
	if !ok {
		return make([]byte, 0, size), nil
	}
	if h, _ := framePools[c].Get().(*[]byte); h != nil {
		return (*h)[:0], h
	}
	h := new([]byte)
	*h = make([]byte, 0, 1<<(c+minFrameClass))
	return *h, h
}

// recycle gives a written frame's buffer back to its pool and reports
// whether it did. The frame must not be used afterwards.
func (f outFrame) recycle() bool {
	if f.home == nil {
		return false
	}
	// The frame's bytes are the home's array unless an append outgrew
	// it; either way the array now kept is this frame's alone.
	c, ok := frameClass(cap(f.b))
	if !ok || cap(f.b) != 1<<(c+minFrameClass) {
		return false
	}
	*f.home = f.b[:0]
	framePools[c].Put(f.home)
	return true
}
