package main

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// outMsg is one Gun message (a JSON object) waiting to be written, with a
// caller-chosen key passed to the sent hook.
type outMsg struct {
	msg []byte
	key uint64
}

// batchSender writes one peer's outgoing messages from its own goroutine so
// that a pacer never blocks on a slow relay: messages wait in a bounded
// queue, and each write packs up to maxBatch queued messages into one
// frame (a JSON array, as gun.js peers batch; a single message goes
// unwrapped). When the queue is full, offer refuses the message and counts
// it as Dropped: it was never sent.
type batchSender struct {
	p        *peer
	q        chan outMsg
	maxBatch int
	sent     func(key uint64, nano int64) // called just before the frame is written

	Written atomic.Uint64 // messages written
	Frames  atomic.Uint64
	Dropped atomic.Uint64
	err     atomic.Value // first write error (string)
	discard atomic.Bool  // drop what is queued instead of writing it
	done    chan struct{}
	once    sync.Once
}

func newBatchSender(p *peer, queue, maxBatch int, sent func(key uint64, nano int64)) *batchSender {
	s := &batchSender{p: p, q: make(chan outMsg, max(queue, 1)), maxBatch: max(maxBatch, 1), sent: sent, done: make(chan struct{})}
	go s.loop()
	return s
}

// offer queues m without blocking; false when the queue is full or the
// sender failed.
func (s *batchSender) offer(m outMsg) bool {
	if s.err.Load() != nil {
		s.Dropped.Add(1)
		return false
	}
	select {
	case s.q <- m:
		return true
	default:
		s.Dropped.Add(1)
		return false
	}
}

// close stops the sender after the queued messages are written (or a write
// fails); it returns the first write error ("" if none).
func (s *batchSender) close() string {
	s.once.Do(func() { close(s.q) })
	<-s.done
	if e, ok := s.err.Load().(string); ok {
		return e
	}
	return ""
}

// abandon stops the sender without writing what is still queued (counted
// as Dropped): messages due in a measured window that the relay did not
// take in time are not sent after it.
func (s *batchSender) abandon() string {
	s.discard.Store(true)
	return s.close()
}

// queued returns the messages waiting.
func (s *batchSender) queued() int { return len(s.q) }

func (s *batchSender) loop() {
	defer close(s.done)
	batch := make([]outMsg, 0, s.maxBatch)
	var buf []byte
	for m := range s.q {
		batch = append(batch[:0], m)
	more:
		for len(batch) < s.maxBatch {
			select {
			case x, ok := <-s.q:
				if !ok {
					break more
				}
				batch = append(batch, x)
			default:
				break more
			}
		}
		if s.err.Load() != nil || s.discard.Load() {
			s.Dropped.Add(uint64(len(batch))) // drain without writing
			continue
		}
		buf = appendBatch(buf[:0], batch)
		now := time.Now().UnixNano()
		if s.sent != nil {
			for _, b := range batch {
				s.sent(b.key, now)
			}
		}
		s.p.wmu.Lock()
		_ = s.p.c.SetWriteDeadline(time.Now().Add(writeTimeout))
		err := s.p.c.WriteMessage(websocket.TextMessage, buf)
		s.p.wmu.Unlock()
		if err != nil {
			s.err.Store("write: " + err.Error())
			s.Dropped.Add(uint64(len(batch)))
			continue
		}
		s.Written.Add(uint64(len(batch)))
		s.Frames.Add(1)
	}
}

// appendBatch appends one frame holding msgs: the message itself when there
// is one, else a JSON array of them.
func appendBatch(b []byte, msgs []outMsg) []byte {
	if len(msgs) == 1 {
		return append(b, msgs[0].msg...)
	}
	b = append(b, '[')
	for i, m := range msgs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, m.msg...)
	}
	return append(b, ']')
}
