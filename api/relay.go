package api

import (
	"context"
	"errors"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/jsjson"
)

// This file holds the Gun wire semantics: what the relay does with each
// message, in the order a connection sent them.

// handleFrame decodes one text frame and handles its messages in order.
func (c *conn) handleFrame(data []byte) {
	msgs, err := DecodeFrame(data, c.s.dlim)
	if err != nil {
		c.refuseFrame(err.Error())
		return
	}
	if len(msgs) > 0 {
		// Each put of the frame is charged its share of the frame against
		// the connection's in-flight bytes.
		c.frameWeight = int64(max(len(data)/len(msgs), 256))
	}
	for _, m := range msgs {
		if c.closing.Load() {
			return
		}
		c.handleMessage(m)
	}
}

// handleMessage dispatches one message. Cheap checks come first: shape,
// dedup, then the kind of message.
func (c *conn) handleMessage(m *Message) {
	if m.bad != "" {
		c.s.m.inOther.Inc()
		c.replyErr(m, m.bad)
		c.strike(m.bad)
		return
	}
	if !m.idMade && c.s.dedup.seen(m.ID) {
		c.s.m.dedupHits.Inc()
		return
	}
	if m.Dam != "" {
		c.s.m.inDam.Inc()
		c.handleDam(m)
		return
	}
	if len(c.s.handlers) > 0 {
		for _, k := range m.Raw.Keys {
			if h, ok := c.s.handlers[k]; ok {
				c.s.m.msgsIn.WithLabelValues(k).Inc()
				c.inflight.Wait()
				c.runHandler(h, m)
				return
			}
		}
	}
	switch {
	case m.HasPut:
		c.s.m.inPut.Inc()
		c.handlePut(m)
	case m.Get != nil:
		c.s.m.inGet.Inc()
		c.inflight.Wait() // a get sees every earlier put of this connection
		c.handleGet(m)
	case m.Ack != "":
		// An ack or an empty reply: nothing to do. Acks from peer relays
		// are not routed further; every put is acknowledged here.
		c.s.m.inAck.Inc()
	default:
		c.s.m.inOther.Inc()
		c.replyErr(m, "invalid: unknown message type")
		c.strike("unknown message type")
	}
}

// runHandler calls an extension handler and sends its answer.
func (c *conn) runHandler(h Handler, m *Message) {
	reply, err := h(c.ctx, c.info, m)
	if err != nil {
		c.replyErr(m, err.Error())
		return
	}
	if reply != nil {
		c.enqueue(reply)
	}
}

// handleDam handles mesh-control messages. Only the "?" handshake needs an
// answer; "!" (an error the peer reports) is logged; the rest ("hi", "mob",
// "opt") are ignored.
func (c *conn) handleDam(m *Message) {
	switch m.Dam {
	case "?":
		if m.PID != "" {
			if m.PID == c.s.pid && c.link != nil {
				c.log.Warn("peer is this relay itself; not dialling it again")
				c.link.self.Store(true)
				c.closeWith(websocket.CloseNormalClosure, "connected to self", false)
				return
			}
			pid := m.PID
			c.info.pid.Store(&pid)
			if c.link != nil {
				c.s.peers.linkUp(c)
			}
		}
		if m.Ack == "" {
			c.enqueue(appendHello(nil, newID(), m.ID, c.s.pid))
		}
	case "!":
		c.log.Debug("peer reported an error", "err", m.Err)
	}
}

// sendHello greets a new connection as a gun relay does, so that the peer
// learns our pid.
func (c *conn) sendHello() {
	// The id is not remembered by dedup: if this relay dialled itself,
	// the link must hear its own greeting to notice.
	c.enqueue(appendHello(nil, newID(), "", c.s.pid))
}

// replyErr sends {"#":new,"@":m.ID,"err":reason}.
func (c *conn) replyErr(m *Message, reason string) {
	c.s.m.outErr.Inc()
	c.enqueue(appendErr(nil, newID(), m.ID, reason))
}

// ---- put ----

// putOrigin is the origin the relay passes to graph.DB.Put, and which the
// DB hands back to subscribers with the accepted fields: the connection the
// put came from (never echoed to), its message id (reused for the first
// push so that peers can deduplicate it), and its "><" list.
type putOrigin struct {
	from   *conn
	id     string
	seen   string
	usedID atomic.Bool
}

// putJob is one put between its decoding and its ack.
type putJob struct {
	c       *conn
	m       *Message
	diff    graph.Graph
	refused []graph.FieldError
	start   time.Time
	reply   bool  // a reply to a get ("@" set): merged, not acknowledged
	weight  int64 // in-flight bytes charged to c (0: none acquired yet)

	// ctx is the context for the Guard's CheckPut. A preverified put's
	// worker sets pctx (the Guard's results) and then closes ready.
	ctx    context.Context
	pctx   context.Context
	ready  chan struct{}
	handed bool // acked or handed to the store, which releases weight
}

func (c *conn) handlePut(m *Message) {
	start := time.Now()
	reply := m.Ack != ""
	diff, err := graph.ParsePut(m.Put, c.s.lim.Graph)
	if err != nil {
		c.s.m.putsRefused.WithLabelValues(reasonPrefix(err.Error())).Inc()
		if !reply {
			c.replyErr(m, err.Error())
		}
		c.strike(err.Error())
		return
	}
	j := &putJob{c: c, m: m, diff: diff, start: start, reply: reply, ctx: c.ctx}
	if pv, ok := c.s.guard.(Preverifier); ok && c.s.lim.VerifyWorkers > 0 {
		c.preverify(pv, j)
		return
	}
	c.judge(j)
}

// judge runs the Guard on a put and hands what it allows to the store; it
// runs for each put of a connection in the order they came.
func (c *conn) judge(j *putJob) {
	ctx := j.ctx
	if !c.s.openGuard {
		ctx = context.WithValue(ctx, msgKey{}, j.m)
	}
	allowed, refused := c.s.guard.CheckPut(ctx, c.info, j.diff)
	j.refused = refused
	if allowed.Len() == 0 {
		j.handed = true
		c.ackPut(j, graph.PutResult{}, nil)
		if j.weight > 0 {
			c.release(j.weight)
		}
		return
	}
	j.diff = allowed
	if j.weight == 0 {
		// Wait for room within this connection's in-flight bounds; only
		// this connection's reader waits.
		w := c.frameWeight
		if !c.acquire(w) {
			return
		}
		j.weight = w
	}
	// The origin is a small separate value: the DB keeps it with deferred
	// fields, and it must not keep the whole message alive.
	origin := &putOrigin{from: c, id: j.m.ID, seen: j.m.Seen}
	j.handed = true
	// PutAsync queues the merge in the store (which commits concurrent
	// merges together, in queue order, so one connection's puts are merged
	// in the order it sent them) and calls done after the commit, from
	// the store's writer. It waits only while the store's queue is full.
	// The merge runs under the server's context, not the connection's: a
	// put that was received is merged even if its sender disconnects.
	c.s.db.PutAsync(c.s.baseCtx, allowed, origin, j.done)
}

// judgeTurn judges a preverified put. A panic in the Guard closes the
// connection, as it would on the reader, instead of the process.
func (c *conn) judgeTurn(j *putJob) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("put handling panicked", "panic", r, "stack", string(debug.Stack()))
			if !j.handed {
				c.release(j.weight)
			}
			c.closeWith(websocket.CloseInternalServerErr, "internal error", false)
		}
	}()
	c.judge(j)
}

// verifyPool is the server's preverification workers: Limits.VerifyWorkers
// goroutines, started with the first preverified put, that run the Guard's
// Preverify for the puts of every connection. Long-lived workers keep
// their grown stacks (a goroutine per put spent ~5% of the relay's CPU
// growing stacks for the signature check). They end with the server.
type verifyPool struct {
	once sync.Once
	jobs chan verifyJob
}

// verifyJob carries what Preverify reads, taken on the reader before the
// job is queued: the put's own fields belong to its connection's turn
// taker, which may judge it without waiting for the worker once the
// server is shutting down.
type verifyJob struct {
	pv   Preverifier
	j    *putJob
	ctx  context.Context
	diff graph.Graph
}

// verifyQueue is the length of the workers' queue: enough to keep them
// busy; a reader that finds it full waits (its peer is then pushed back
// by TCP, as with every other bound).
const verifyQueue = 256

func (s *Server) verifyJobs() chan verifyJob {
	p := &s.verify
	p.once.Do(func() {
		p.jobs = make(chan verifyJob, verifyQueue)
		for range s.lim.VerifyWorkers {
			go s.verifyWorker(p.jobs)
		}
	})
	return p.jobs
}

func (s *Server) verifyWorker(jobs <-chan verifyJob) {
	for {
		select {
		case vj := <-jobs:
			vj.run()
		case <-s.baseCtx.Done():
			return
		}
	}
}

// run preverifies one put. A panic in the Guard is logged; CheckPut then
// judges the put without the results.
func (vj verifyJob) run() {
	j := vj.j
	defer func() {
		if r := recover(); r != nil {
			j.c.log.Error("preverify panicked", "panic", r, "stack", string(debug.Stack()))
		}
		close(j.ready)
	}()
	j.pctx = vj.pv.Preverify(vj.ctx, j.c.info, vj.diff)
}

// putTurns is a connection's queue of puts handed to preverification, in
// the order they came; one goroutine per connection takes each in turn,
// waits until it is verified, and judges and merges it. Its length is
// bounded by the connection's in-flight bound, which each put holds from
// here until its ack.
type putTurns struct {
	q chan *putJob
}

// preverify takes the put's in-flight share, hands it to the verification
// workers, and queues it for its turn. The reader goes on to the next
// frame meanwhile, so one connection's puts are verified on every worker;
// every get, handler and close still waits for them (they hold
// c.inflight).
func (c *conn) preverify(pv Preverifier, j *putJob) {
	w := c.frameWeight
	if !c.acquire(w) {
		return
	}
	j.weight = w
	j.ready = make(chan struct{})
	select {
	case c.s.verifyJobs() <- verifyJob{pv: pv, j: j, ctx: j.ctx, diff: j.diff}:
	case <-c.ctx.Done():
		c.release(w)
		return
	}
	if c.turns == nil {
		c.turns = &putTurns{q: make(chan *putJob, c.s.lim.MaxInflightPuts)}
		go c.takeTurns(c.turns)
	}
	c.turns.q <- j // never blocks: acquire bounds the puts queued
}

// takeTurns judges and merges a connection's preverified puts in order. It
// ends when the connection is finished (c.done); by then nothing is queued,
// since every queued put holds c.inflight, which finish waits for. After a
// forced shutdown it still judges what is queued (the store then refuses
// the merges at once), so that the connection can finish.
func (c *conn) takeTurns(t *putTurns) {
	for {
		select {
		case j := <-t.q:
			select {
			case <-j.ready:
				if j.pctx != nil {
					j.ctx = j.pctx
				}
			case <-c.s.baseCtx.Done():
				// The workers have stopped: judge without the results.
			}
			c.judgeTurn(j)
		case <-c.done:
			return
		}
	}
}

// done completes a put: it is called once, after the durable merge (or the
// failure), and must not block.
func (j *putJob) done(res graph.PutResult, err error) {
	j.c.s.m.mergeLatency.Observe(time.Since(j.start).Seconds())
	j.c.ackPut(j, res, err)
	j.c.release(j.weight)
}

// ackPut answers a put: ok when nothing was refused, else err with the
// first refusal's reason. Replies to gets are merged but never answered.
func (c *conn) ackPut(j *putJob, res graph.PutResult, err error) {
	s := c.s
	if res.Accepted != nil {
		s.m.fieldsAccepted.Add(float64(res.Accepted.Len()))
	}
	if res.Deferred > 0 {
		s.m.fieldsDeferred.Add(float64(res.Deferred))
	}
	reason := ""
	switch {
	case err != nil:
		reason = storeErrReason(err)
		c.log.Warn("put failed", "id", j.m.ID, "err", err)
	case len(j.refused) > 0 || len(res.Refused) > 0:
		reason = fieldErrReason(append(j.refused, res.Refused...))
	}
	if reason != "" {
		s.m.putsRefused.WithLabelValues(reasonPrefix(reason)).Inc()
	} else {
		s.m.putsAccepted.Inc()
	}
	if j.reply {
		return
	}
	var frame []byte
	if reason == "" {
		s.m.outAck.Inc()
		frame = appendAck(make([]byte, 0, 40+len(j.m.ID)), j.m.ID)
	} else {
		s.m.outErr.Inc()
		frame = appendErr(nil, newID(), j.m.ID, reason)
	}
	c.enqueueAck(frame)
	s.m.ackLatency.Observe(time.Since(j.start).Seconds())
}

// fieldErrReason renders the refusal of a put: the first field's reason,
// and how many fields were refused when there were several.
func fieldErrReason(refused []graph.FieldError) string {
	r := refused[0].Error()
	if len(refused) > 1 {
		r += " (and " + itoa(len(refused)-1) + " more fields)"
	}
	return r
}

// storeErrReason maps a DB error to a wire reason.
func storeErrReason(err error) string {
	msg := err.Error()
	if reasonPrefix(msg) != "other" {
		return msg
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, graph.ErrClosed) {
		return "error: relay shutting down"
	}
	return "error: store: " + msg
}

// reasonPrefix returns the machine-readable prefix of a reason ("invalid",
// "restricted", ...) for metrics, or "other".
func reasonPrefix(reason string) string {
	p, _, ok := strings.Cut(reason, ":")
	if !ok {
		return "other"
	}
	switch p {
	case "invalid", "restricted", "auth-required", "rate-limited", "duplicate", "blocked", "error":
		return p
	}
	return "other"
}

func itoa(n int) string { return string(jsjson.AppendNumber(nil, float64(n))) }

// ---- get ----

// getRequest is a parsed "get" member.
type getRequest struct {
	soul     string
	field    string
	hasField bool
	lex      *jsjson.Object // a LEX condition on the field (".": {...})
}

func parseGet(g *jsjson.Object) (getRequest, string) {
	var r getRequest
	sv, _ := g.Get("#")
	soul, ok := sv.(string)
	if !ok || soul == "" {
		return r, `invalid: get needs a soul ("#" string)`
	}
	r.soul = soul
	if fv, ok := g.Get("."); ok {
		switch f := fv.(type) {
		case string:
			r.field, r.hasField = f, true
		case *jsjson.Object:
			r.lex = f
		default:
			return r, `invalid: get "." must be a string or a LEX object`
		}
	}
	return r, ""
}

func (c *conn) handleGet(m *Message) {
	req, bad := parseGet(m.Get)
	if bad == "" && len(req.soul) > c.s.soulLimit {
		bad = "invalid: soul too long"
	}
	if bad != "" {
		c.replyErr(m, bad)
		c.strike(bad)
		return
	}
	if err := c.s.guard.CheckGet(c.ctx, c.info, req.soul); err != nil {
		c.replyErr(m, err.Error())
		return
	}
	// Subscribe first, then read: a put merged in between is either in
	// the reply or pushed afterwards, never lost.
	field, hasField := req.field, req.hasField
	if req.lex != nil {
		hasField = false // a LEX get subscribes the whole node
	}
	limit := c.s.lim.MaxSubscriptions
	if c.link != nil {
		limit = c.s.lim.MaxPeerSubscriptions
	}
	_, err := c.s.subs.add(c, req.soul, field, hasField, limit)
	if err != nil {
		c.replyErr(m, err.Error())
		c.strike(err.Error())
		return
	}
	c.reply(m, req)
	c.s.peers.forwardGet(c, m, req.soul, field, hasField)
}

// reply answers a get from the graph: the node (or the one field, or the
// fields matching a LEX), in chunks of MaxReplyFields chained with "%", or
// an empty reply {"#","@"} when nothing is known.
func (c *conn) reply(m *Message, req getRequest) {
	s := c.s
	var node *graph.Node
	if req.hasField {
		f, err := s.db.GetField(c.ctx, req.soul, req.field)
		if err == nil {
			node = &graph.Node{Soul: req.soul, Fields: map[string]graph.Field{req.field: f}}
		} else if !errors.Is(err, graph.ErrNotFound) {
			c.log.Warn("get failed", "soul", req.soul, "err", err)
		}
	} else {
		n, err := s.db.Get(c.ctx, req.soul)
		if err == nil {
			node = n
		} else if !errors.Is(err, graph.ErrNotFound) {
			c.log.Warn("get failed", "soul", req.soul, "err", err)
		}
		if node != nil && req.lex != nil {
			node = filterLEX(node, req.lex)
		}
	}
	s.m.outReply.Inc()
	if node == nil || len(node.Fields) == 0 {
		c.enqueue(append(appendReplyOpen(nil, newID(), m.ID), '}'))
		return
	}
	if len(node.Fields) <= s.lim.MaxReplyFields {
		b := appendReplyOpen(nil, newID(), m.ID)
		b = append(b, `,"put":{`...)
		b = jsjson.AppendString(b, req.soul)
		b = append(b, ':')
		b = node.AppendJSON(b)
		c.enqueue(append(b, "}}"...))
		return
	}
	// Chunk a large node: fields in UTF-16 order, each chunk naming the
	// id of the next in "%".
	names := node.SortedFields()
	id := newID()
	for len(names) > 0 {
		n := min(len(names), s.lim.MaxReplyFields)
		part := &graph.Node{Soul: req.soul, Fields: make(map[string]graph.Field, n)}
		for _, k := range names[:n] {
			part.Fields[k] = node.Fields[k]
		}
		names = names[n:]
		b := appendReplyOpen(nil, id, m.ID)
		if len(names) > 0 {
			id = newID()
			b = append(b, `,"%":`...)
			b = jsjson.AppendString(b, id)
		}
		b = append(b, `,"put":{`...)
		b = jsjson.AppendString(b, req.soul)
		b = append(b, ':')
		b = part.AppendJSON(b)
		if !c.enqueue(append(b, "}}"...)) {
			return
		}
	}
}

// filterLEX keeps the fields of n that match a gun LEX condition:
// {"=": exact}, {"*": prefix}, {">": from, "<": to} (inclusive, compared as
// JavaScript compares strings). Unknown conditions keep every field.
func filterLEX(n *graph.Node, lex *jsjson.Object) *graph.Node {
	str := func(k string) (string, bool) {
		v, ok := lex.Get(k)
		s, isStr := v.(string)
		return s, ok && isStr
	}
	eq, hasEq := str("=")
	pre, hasPre := str("*")
	from, hasFrom := str(">")
	to, hasTo := str("<")
	out := &graph.Node{Soul: n.Soul, Fields: make(map[string]graph.Field)}
	for k, f := range n.Fields {
		switch {
		case hasEq && k != eq:
		case hasPre && !strings.HasPrefix(k, pre):
		case hasFrom && jsjson.CompareUTF16(k, from) < 0:
		case hasTo && jsjson.CompareUTF16(k, to) > 0:
		default:
			out.Fields[k] = f
		}
	}
	return out
}

// ---- broadcast ----

// broadcast pushes the fields a merge accepted to every other connection
// subscribed to them and to the outbound peer links. It is the DB's
// subscriber, so it runs right after each merge (on the merging goroutine)
// and must not block: frames are serialized once and queued without
// waiting; a connection whose queue is full is dropped. With a *Held
// origin the frames wait in it for its Release.
func (s *Server) broadcast(accepted graph.Graph, origin any) {
	if len(accepted) == 0 {
		return
	}
	o, _ := origin.(*putOrigin)
	var from *conn
	id := ""
	var seen []string
	if o != nil {
		from = o.from
		if !o.usedID.Swap(true) {
			id = o.id
		}
		if o.seen != "" {
			seen = strings.Split(o.seen, ",")
		}
	}
	if id == "" {
		id = newID()
		s.dedup.remember(id)
	}
	skip := func(c *conn) bool {
		if c == from {
			return true
		}
		if len(seen) > 0 {
			if pid := c.info.PID(); pid != "" && slices.Contains(seen, pid) {
				return true
			}
			if c.info.URL != "" && slices.Contains(seen, c.info.URL) {
				return true
			}
		}
		return false
	}

	rcpts := s.subs.recipients(accepted, skip)
	links := s.peers.targets(skip)
	if len(rcpts) == 0 && len(links) == 0 {
		return
	}
	seenList := s.peers.seenList()
	var frames []outFrame
	if len(rcpts) > 1 {
		frames = make([]outFrame, len(rcpts))
		if !encodeParts(accepted, id, seenList, rcpts, frames) {
			frames = nil
		}
	}
	enc := newPushEncoder(accepted, id, seenList)
	defer enc.release()
	var full []byte
	fullFrame := func() []byte {
		if full == nil {
			full = enc.frame(accepted)
		}
		return full
	}
	held, _ := origin.(*Held)
	send := func(c *conn, frame outFrame) {
		s.m.outPush.Inc()
		if held != nil {
			held.send(c, frame)
			return
		}
		c.enqueueFrame(frame)
	}
	for i, r := range rcpts {
		switch {
		case frames != nil:
			send(r.c, frames[i])
		case r.part == nil:
			send(r.c, outFrame{b: fullFrame()}) // shared: not recycled
		default:
			send(r.c, enc.ownFrame(r.part))
		}
	}
	for _, l := range links {
		send(l, outFrame{b: fullFrame()})
	}
}
