package api

import "sync"

// Held is a put origin (the origin argument of graph.DB.Put) that holds
// the push of what the put changes: the relay builds the frames for its
// subscribers and peers when the merge commits, as for any put, but queues
// them only when Release is called. The time service uses it to give idle
// heartbeat ticks a playout delay: every round leaves the relay at the same
// offset from its stamp, whatever the publishing of that round cost, so
// that followers see a steady cadence.
//
// Frames built after Release are queued at once. The zero value is ready
// to use; a Held serves one put.
type Held struct {
	mu       sync.Mutex
	released bool
	frames   []heldFrame
}

type heldFrame struct {
	c     *conn
	frame outFrame
}

// send queues frame to c, or keeps it until Release.
func (h *Held) send(c *conn, frame outFrame) {
	h.mu.Lock()
	if !h.released {
		h.frames = append(h.frames, heldFrame{c, frame})
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	c.enqueueFrame(frame)
}

// Release queues the held frames, in the order they were built. Calling it
// again does nothing.
func (h *Held) Release() {
	h.mu.Lock()
	frames := h.frames
	h.frames, h.released = nil, true
	h.mu.Unlock()
	for _, f := range frames {
		f.c.enqueueFrame(f.frame)
	}
}

// Len reports how many frames are held.
func (h *Held) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.frames)
}
