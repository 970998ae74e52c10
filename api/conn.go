package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// conn is one WebSocket connection: an inbound client or relay, or an
// outbound peer link. It has exactly one reader goroutine (readLoop), which
// handles the connection's messages in order, and one writer goroutine
// (writeLoop), which drains a bounded queue. Nothing else writes to the
// socket except WebSocket control frames (close), which gorilla allows from
// any goroutine.
type conn struct {
	s      *Server
	serial uint64 // order of acceptance: broadcasts queue to connections in this order
	ws     *websocket.Conn
	info   *PeerInfo
	log    *slog.Logger
	ip     string // remote IP for per-IP accounting; "" for outbound links
	link   *peerLink
	ctx    context.Context
	cancel context.CancelFunc

	q          outQueue          // frames for the writer
	closeReq   chan closeRequest // at most one close request
	writerDone chan struct{}
	done       chan struct{} // closed when the connection is fully finished
	closing    atomic.Bool   // no more frames are accepted
	closeOnce  sync.Once
	hard       atomic.Bool // the socket failed: skip the polite close
	draining   atomic.Bool // server shutdown: stop handling frames, flush, close 1001
	handleMu   sync.Mutex  // held by the reader while it handles a frame

	// Reader-goroutine state.
	rbuf     bytes.Buffer
	strikes  int
	readErr  error
	inflight sync.WaitGroup // puts handed to the DB and not yet acked
	// Bounds on inflight: count and bytes, acquired by the reader only and
	// released when a put completes, which then signals released.
	inflightN     atomic.Int64
	inflightBytes atomic.Int64
	released      chan struct{}
	frameWeight   int64 // weight of each put of the frame being handled

	// turns holds puts being preverified, in order (relay.go).
	turns *putTurns

	// Stall tracking, used only by the server's sweep (checkStalled): the
	// write progress it last saw and since when it has seen none.
	stallSeen uint64
	stallFrom time.Time

	// subs is this connection's subscriptions, guarded by s.subs.mu.
	subs map[string]*subscription
	subN int // subscriptions held (whole souls plus single fields)
}

type closeRequest struct {
	code   int
	reason string
	flush  bool // write queued frames before the close frame
}

func (s *Server) newConn(ws *websocket.Conn, info *PeerInfo, ip string, link *peerLink) *conn {
	ctx, cancel := context.WithCancel(s.baseCtx)
	c := &conn{
		s:          s,
		serial:     s.connSerial.Add(1),
		ws:         ws,
		info:       info,
		ip:         ip,
		link:       link,
		ctx:        ctx,
		cancel:     cancel,
		q:          newOutQueue(),
		closeReq:   make(chan closeRequest, 1),
		writerDone: make(chan struct{}),
		done:       make(chan struct{}),
		released:   make(chan struct{}, 1),
	}
	info.conn = c
	c.log = s.log.With("conn", info.ID, "remote", info.RemoteAddr)
	if info.Outbound {
		c.log = c.log.With("peer", info.URL)
	}
	ws.SetReadLimit(s.lim.ReadLimit)
	_ = ws.SetReadDeadline(time.Now().Add(s.lim.PongWait))
	ws.SetPongHandler(func(string) error {
		c.extendRead()
		return nil
	})
	return c
}

// run starts the writer and runs the reader until the connection ends. The
// caller's goroutine becomes the reader.
func (c *conn) run() {
	go c.writeLoop()
	c.sendHello()
	c.readLoop()
}

// enqueue queues one frame without blocking. If the connection's unsent
// bytes would exceed Limits.SendBuffer the connection is closed as a slow
// consumer instead (1013): the broadcaster never waits for one connection.
func (c *conn) enqueue(frame []byte) bool { return c.enqueueFrame(outFrame{b: frame}) }

// enqueueFrame is enqueue for a frame that may be this connection's own
// (see outFrame).
func (c *conn) enqueueFrame(f outFrame) bool {
	if c.closing.Load() {
		return false
	}
	if c.q.push(f, int64(c.s.lim.SendBuffer)) {
		return true
	}
	c.slowClose(slowBytes, "slow consumer: send buffer full",
		"unsent_bytes", c.q.pending(), "limit", c.s.lim.SendBuffer)
	return false
}

// enqueueAck queues a put's ack. Acks are counted against the same byte
// budget as everything else (an ack is about 40 bytes, and there are at
// most MaxInflightPuts of them queued); when the writer is behind they go
// out many to a frame.
func (c *conn) enqueueAck(frame []byte) bool { return c.enqueue(frame) }

// Reasons for closing a slow consumer (metric label values).
const (
	slowBytes   = "bytes"   // unsent bytes over Limits.SendBuffer
	slowStalled = "stalled" // no write progress for Limits.SlowTimeout
	slowWrite   = "write"   // one frame write timed out (Limits.WriteWait)
)

// slowClose closes the connection as a slow consumer (1013, try again
// later) and counts it under reason. Only the first close counts.
func (c *conn) slowClose(reason, text string, attrs ...any) {
	if !c.closeWith(websocket.CloseTryAgainLater, text, false) {
		return
	}
	c.s.m.slowConsumer(reason).Inc()
	c.log.Warn("closing slow consumer", append([]any{"reason", reason}, attrs...)...)
	// The writer is probably stuck in a write to this peer: fail that
	// write now instead of after WriteWait, and do not wait politely for
	// the peer's close frame.
	c.hard.Store(true)
	_ = c.ws.UnderlyingConn().SetWriteDeadline(time.Now())
}

// checkStalled closes the connection if it has had unsent data and made
// no write progress for Limits.SlowTimeout. Only the server's sweep calls
// it, every SlowTimeout/4: a stall is timed from the first sweep that saw
// unsent bytes and no write since the sweep before, so it is closed
// between SlowTimeout and SlowTimeout*5/4 after its last write.
func (c *conn) checkStalled(now time.Time) {
	if c.closing.Load() {
		return
	}
	unsent, progress := c.q.state()
	switch {
	case unsent == 0:
		c.stallFrom = time.Time{}
	case progress != c.stallSeen || c.stallFrom.IsZero():
		c.stallSeen, c.stallFrom = progress, now
	case now.Sub(c.stallFrom) >= c.s.lim.SlowTimeout:
		c.slowClose(slowStalled, "slow consumer: no write progress",
			"unsent_bytes", unsent, "stalled_for", now.Sub(c.stallFrom).String())
	}
}

// enqueueWait queues one frame, waiting while the connection holds more
// than half its send buffer; used where the relay itself produces a burst
// (re-subscribing a peer link) and can wait.
func (c *conn) enqueueWait(ctx context.Context, frame []byte) bool {
	for {
		if c.closing.Load() {
			return false
		}
		if c.q.push(outFrame{b: frame}, int64(c.s.lim.SendBuffer/2)) {
			return true
		}
		select {
		case <-c.q.drained:
		case <-ctx.Done():
			return false
		case <-c.ctx.Done():
			return false
		}
	}
}

// frameOverhead is what one queued frame costs beyond its bytes (slice
// header, allocation rounding), so that a flood of tiny frames is bounded
// by the byte budget too.
const frameOverhead = 32

// outQueue is a connection's queue of outgoing frames, bounded in bytes.
// It holds no memory beyond what is queued (a channel would allocate its
// whole capacity for every connection). Bytes count as unsent from push
// until the writer has written them (sent), so frames the writer holds
// while it is blocked on the socket still count.
type outQueue struct {
	mu       sync.Mutex
	items    []outFrame
	unsent   int64         // bytes queued or being written (with frameOverhead each)
	progress uint64        // frames written so far
	ready    chan struct{} // signalled when items becomes non-empty
	drained  chan struct{} // signalled when the writer has written something
}

func newOutQueue() outQueue {
	return outQueue{ready: make(chan struct{}, 1), drained: make(chan struct{}, 1)}
}

// push appends f unless the unsent bytes would exceed limit. A queue with
// nothing unsent always takes one frame, however large (a get reply can
// be bigger than the budget).
func (q *outQueue) push(f outFrame, limit int64) bool {
	cost := int64(len(f.b)) + frameOverhead
	q.mu.Lock()
	if q.unsent > 0 && q.unsent+cost > limit {
		q.mu.Unlock()
		return false
	}
	q.unsent += cost
	q.items = append(q.items, f)
	n := len(q.items)
	q.mu.Unlock()
	if n == 1 {
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	return true
}

// take moves up to max queued frames to dst. Their bytes stay unsent until
// the writer calls sent.
func (q *outQueue) take(dst []outFrame, max int) []outFrame {
	q.mu.Lock()
	n := min(len(q.items), max)
	dst = append(dst, q.items[:n]...)
	clear(q.items[:n])
	if n == len(q.items) {
		if cap(q.items) > 1024 {
			q.items = nil // shrink after a burst
		} else {
			q.items = q.items[:0]
		}
	} else {
		q.items = q.items[n:]
	}
	q.mu.Unlock()
	return dst
}

// sent records that frames were written: they no longer count as unsent,
// and the write is progress.
func (q *outQueue) sent(frames []outFrame) {
	var cost int64
	for _, f := range frames {
		cost += int64(len(f.b)) + frameOverhead
	}
	q.mu.Lock()
	q.unsent -= cost
	q.progress += uint64(len(frames))
	q.mu.Unlock()
	select {
	case q.drained <- struct{}{}:
	default:
	}
}

// size returns the number of queued frames (not counting those the writer
// holds).
func (q *outQueue) size() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// pending returns the unsent bytes.
func (q *outQueue) pending() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.unsent
}

// state returns the unsent bytes and the number of frames written so far.
func (q *outQueue) state() (unsent int64, progress uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.unsent, q.progress
}

// closeWith starts closing the connection: no more frames are queued, the
// writer writes (flush: the queued frames and then) a close frame with code
// and reason, and the reader is woken after CloseGrace if the peer does not
// answer. code 0 sends no close frame. Safe to call from any goroutine, any
// number of times; only the first call counts, and only it returns true.
func (c *conn) closeWith(code int, reason string, flush bool) bool {
	first := false
	c.closeOnce.Do(func() {
		first = true
		c.closing.Store(true)
		c.closeReq <- closeRequest{code: code, reason: reason, flush: flush}
	})
	return first
}

// writeLoop is the only goroutine that writes data frames.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	ping := c.s.clock.NewTicker(c.s.lim.PingPeriod)
	defer ping.Stop()
	batch := make([]outFrame, 0, maxCoalesce)
	for {
		select {
		case <-c.q.ready:
			if !c.writeQueued(batch) {
				c.abort()
				return
			}
		case <-ping.C():
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.s.lim.WriteWait)); err != nil {
				c.abort()
				return
			}
		case req := <-c.closeReq:
			if req.flush {
				c.writeQueued(batch)
			}
			if req.code != 0 {
				msg := websocket.FormatCloseMessage(req.code, truncateReason(req.reason))
				_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.s.lim.WriteWait))
			}
			// Wake the reader if the peer never answers the close.
			_ = c.ws.SetReadDeadline(time.Now().Add(c.s.lim.CloseGrace))
			return
		case <-c.ctx.Done():
			return
		}
	}
}

// writeQueued writes everything queued, coalescing consecutive message
// objects into JSON-array frames (gun accepts an array of messages per
// frame, and batches its own output the same way). It reports false if the
// socket failed.
func (c *conn) writeQueued(batch []outFrame) bool {
	yielded := false
	for {
		if !yielded && c.q.size() < 2 {
			// Let goroutines that are about to queue (the other puts of
			// the same group commit) run first: one write then carries
			// several acks, for the price of one scheduler pass.
			yielded = true
			runtime.Gosched()
		}
		batch = c.q.take(batch[:0], maxCoalesce)
		if len(batch) == 0 {
			return true
		}
		start, size := 0, 0
		for i, f := range batch {
			if !isObject(f.b) || size+len(f.b) > maxCoalesceBytes {
				// Keep-alives and pre-built arrays go alone; big batches
				// are split.
				if i > start && !c.writeFrames(batch[start:i]) {
					return false
				}
				start, size = i, 0
				if !isObject(f.b) {
					if !c.writeFrames(batch[i : i+1]) {
						return false
					}
					start = i + 1
					continue
				}
			}
			size += len(f.b)
		}
		if start < len(batch) && !c.writeFrames(batch[start:]) {
			return false
		}
		clear(batch)
	}
}

// abort ends a connection whose socket failed: the reader is woken at once.
func (c *conn) abort() {
	c.closing.Store(true)
	c.hard.Store(true)
	_ = c.ws.UnderlyingConn().SetReadDeadline(time.Now())
}

const (
	maxCoalesce      = 64
	maxCoalesceBytes = 64 << 10
	// writeBufferSize lets one coalesced batch go out as one frame in one
	// write. Buffers come from a pool and are held only while writing.
	writeBufferSize = maxCoalesceBytes + 4<<10
)

func isObject(f []byte) bool { return len(f) > 0 && f[0] == '{' }

// writeFrames writes frames as one WebSocket text message: a lone frame as
// is, several as a JSON array. It reports false if the socket failed.
func (c *conn) writeFrames(batch []outFrame) bool {
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.s.lim.WriteWait))
	w, err := c.ws.NextWriter(websocket.TextMessage)
	if err != nil {
		return false
	}
	if len(batch) == 1 {
		_, err = w.Write(batch[0].b)
	} else {
		_, err = w.Write([]byte{'['})
		for i, f := range batch {
			if err != nil {
				break
			}
			if i > 0 {
				_, err = w.Write([]byte{','})
			}
			if err == nil {
				_, err = w.Write(f.b)
			}
		}
		if err == nil {
			_, err = w.Write([]byte{']'})
		}
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	c.s.m.framesOut.Inc()
	if err != nil {
		if isNetTimeout(err) && !c.closing.Load() {
			// The peer took no bytes for WriteWait: the time budget's
			// backstop when SlowTimeout is longer than WriteWait.
			c.hard.Store(true)
			if c.closeWith(0, "", false) {
				c.s.m.slowConsumer(slowWrite).Inc()
				c.log.Warn("closing slow consumer", "reason", slowWrite, "unsent_bytes", c.q.pending())
			}
		}
		return false
	}
	c.q.sent(batch)
	for _, f := range batch {
		f.recycle() // written: the socket has the bytes
	}
	return true
}

// truncateReason keeps a close reason within the 123 bytes a close frame
// allows.
func truncateReason(s string) string {
	if len(s) > 120 {
		return s[:120]
	}
	return s
}

// readLoop reads frames until the connection fails or closes, and handles
// them in order.
func (c *conn) readLoop() {
	defer c.finish()
	for {
		typ, r, err := c.ws.NextReader()
		if err != nil {
			c.readErr = err
			return
		}
		c.rbuf.Reset()
		if _, err := c.rbuf.ReadFrom(r); err != nil {
			c.readErr = err
			return
		}
		c.extendRead()
		// handleMu marks the frame in progress, so that drain knows when
		// no further put can start.
		c.handleMu.Lock()
		if c.closing.Load() || c.draining.Load() {
			c.handleMu.Unlock()
			continue // waiting for the peer's close frame
		}
		c.s.m.framesIn.Inc()
		if typ != websocket.TextMessage {
			c.refuseFrame("invalid: binary not accepted")
		} else {
			c.handleFrame(c.rbuf.Bytes())
		}
		c.handleMu.Unlock()
	}
}

// extendRead pushes the read deadline PongWait ahead, unless the
// connection is closing (then the close grace deadline stands).
func (c *conn) extendRead() {
	if !c.closing.Load() && !c.draining.Load() {
		_ = c.ws.SetReadDeadline(time.Now().Add(c.s.lim.PongWait))
	}
}

// acquire waits until one more put of weight w fits in this connection's
// in-flight bounds (always true when nothing is in flight). Only the reader
// calls it. It returns false if the connection ended.
func (c *conn) acquire(w int64) bool {
	lim := &c.s.lim
	for {
		n, b := c.inflightN.Load(), c.inflightBytes.Load()
		if n == 0 || (n < int64(lim.MaxInflightPuts) && b+w <= int64(lim.MaxInflightBytes)) {
			c.inflightN.Add(1)
			c.inflightBytes.Add(w)
			c.inflight.Add(1)
			return true
		}
		select {
		case <-c.released:
		case <-c.ctx.Done():
			return false
		}
	}
}

// release returns what acquire took; a put's completion calls it.
func (c *conn) release(w int64) {
	c.inflightBytes.Add(-w)
	c.inflightN.Add(-1)
	c.inflight.Done()
	select {
	case c.released <- struct{}{}:
	default:
	}
}

// strike counts one invalid frame or message and closes the connection with
// 1008 (policy violation) when MaxStrikes is reached.
func (c *conn) strike(reason string) {
	c.strikes++
	if c.link != nil {
		// An outbound link is a relay the operator chose: log, keep it.
		if c.strikes == 1 || c.strikes%100 == 0 {
			c.log.Warn("peer sent invalid messages", "count", c.strikes, "last", reason)
		}
		return
	}
	if c.strikes >= c.s.lim.MaxStrikes {
		c.s.m.strikeCloses.Inc()
		c.log.Info("closing after too many invalid messages", "strikes", c.strikes, "last", reason)
		c.closeWith(websocket.ClosePolicyViolation, "too many invalid messages: "+reason, true)
	}
}

// refuseFrame answers a frame that could not be decoded at all.
func (c *conn) refuseFrame(reason string) {
	c.s.m.outErr.Inc()
	c.enqueue(appendDamErr(nil, newID(), reason))
	c.strike(reason)
}

// finish tears the connection down once the reader has stopped.
func (c *conn) finish() {
	err := c.readErr
	var ce *websocket.CloseError
	peerClosed := errors.As(err, &ce)
	// gorilla has already sent a close frame for an oversized frame (1009)
	// or a protocol error (1002); the peer may still be sending the rest of
	// what it started.
	gorillaClosed := errors.Is(err, websocket.ErrReadLimit) || isProtocolError(err)
	// Let the puts already handed to the DB finish, so their acks are
	// queued before a graceful close (bounded by the store's latency).
	c.inflight.Wait()
	switch {
	case peerClosed || gorillaClosed || c.closing.Load():
		// gorilla answered the peer's close, or sent its own; or we
		// started the close.
		c.closeWith(0, "", false)
	case isNetTimeout(err):
		c.closeWith(websocket.CloseGoingAway, "timeout", false)
	default: // EOF or a socket error
		c.hard.Store(true)
		c.closeWith(0, "", false)
	}
	<-c.writerDone
	nc := c.ws.UnderlyingConn()
	if gorillaClosed && !c.hard.Load() {
		// Read what the peer still sends (e.g. the rest of an oversized
		// frame) until it closes or CloseGrace passes, so our close frame
		// reaches it instead of a TCP reset.
		_ = nc.SetReadDeadline(time.Now().Add(c.s.lim.CloseGrace))
		_, _ = io.Copy(io.Discard, io.LimitReader(nc, 2*c.s.lim.ReadLimit+1<<16))
	}
	_ = nc.Close()
	c.cancel()
	c.s.unregister(c)
	close(c.done)
	c.log.Debug("connection closed", "err", err)
}

// isProtocolError reports an error gorilla returns after it has sent a 1002
// close frame itself.
func isProtocolError(err error) bool {
	if err == nil {
		return false
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) || isNetTimeout(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return false
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "websocket: ") && !strings.Contains(msg, "close sent") && !strings.Contains(msg, "read limit")
}

func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// drain closes the connection gracefully for a server shutdown: no new
// frame is handled, the puts already started are merged and acknowledged,
// the queued frames are written, and then the close frame 1001 (going
// away). The reader keeps reading until the peer answers the close (or
// CloseGrace passes), so the peer sees a clean close.
func (c *conn) drain() {
	c.draining.Store(true)
	go func() {
		// After this, the reader will not start another frame.
		c.handleMu.Lock()
		c.handleMu.Unlock() //nolint:staticcheck // an intentional barrier
		c.inflight.Wait()
		c.closeWith(websocket.CloseGoingAway, "server shutting down", true)
	}()
}
