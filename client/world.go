package client

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/jsjson"
)

// Event is one element of a world's ordered stream: an entry (a message,
// a presence change, an epoch start or a snapshot marker) or a tick, with
// its Croquet time in seconds. Entries come in seq order, each exactly
// once; ticks come at their position when they arrive in time.
type Event = heartbeat.Item

// World follows one instance through the relay: every entry verified
// (author signatures, the sequencer's signed ticks, the hash chain, Merkle
// paths, monotone time) and delivered in the total order on Events.
type World struct {
	c    *Client
	inst string
	// certs judges who may tick: the owner, or a key holding a tick
	// certificate published at lum/<I>/certs (fed from the graph) and not
	// revoked at lum/<I>/revoked (revoked, its lookup).
	certs   *auth.Checker
	revoked *revocations

	mu        sync.Mutex
	f         *heartbeat.Follower
	tick      *heartbeat.Tick // the latest tick seen (re-offered when certificates change)
	haveTick  chan struct{}
	blocks    map[uint64]bool
	requested map[uint64]time.Time
	backlog   []Event
	time      float64
	waiters   map[heartbeat.Hash]chan sendResult
	recent    map[heartbeat.Hash]heartbeat.Receipt
	recentQ   []heartbeat.Hash
	target    uint64
	targetSet bool
	caught    chan struct{}
	err       error
	done      chan struct{}

	notify chan struct{}
	events chan Event

	// The snapshot the world joined from (JoinOptions.FromSnapshot), if
	// any, and its verified data.
	snap     *heartbeat.SnapshotRef
	snapData []byte
}

// maxRecent bounds the message receipts a world remembers for Send.
const maxRecent = 100_000

type sendResult struct {
	r   heartbeat.Receipt
	err error
}

// JoinOptions adjusts [Client.Join].
type JoinOptions struct {
	// StrictMessageRoles makes the follower check that every sequenced
	// message's author holds the message role (by the certificates
	// published at lum/<I>/certs, at the entry's time). Off by default:
	// the sequencer checked the role when it admitted the message, and
	// short-lived join certificates may be unknown to a late joiner;
	// author signatures are always verified.
	StrictMessageRoles bool
	// SkipAuthorSignatures trusts the sequencer's signed hash chain for
	// message authorship instead of verifying every author's signature
	// (one signature verification per message saved; see
	// heartbeat.FollowerConfig.SkipAuthorSignatures). Off by default.
	SkipAuthorSignatures bool
	// Buffer is the capacity of the Events channel (default 1024).
	Buffer int
	// FromSnapshot joins from the latest snapshot the sequencer accepted
	// (members' matching votes) instead of replaying the log from seq 1:
	// the relay sends the snapshot data and the first page of entries
	// after it (one "lumJoin" exchange), the follower checks the data
	// against the signed marker entry, and the stream starts after the
	// snapshot point. Restore the application state from
	// [World.Snapshot] before applying Events. Without an accepted
	// snapshot this is an ordinary join.
	FromSnapshot bool
}

// Join follows instance: it loads the log from the graph (the whole log:
// lum/<I>/log/<block> souls from block 0) and the latest tick, verifies
// them, and returns once the world has caught up with the tick that was
// current when it joined. Live entries and ticks follow on Events.
func (c *Client) Join(ctx context.Context, instance string, opts ...JoinOptions) (*World, error) {
	var opt JoinOptions
	if len(opts) > 0 {
		opt = opts[0]
	}
	if opt.Buffer <= 0 {
		opt.Buffer = 1024
	}
	revoked := &revocations{soul: revokedSoul(instance), m: map[string]graph.Field{}}
	checker, err := auth.New(auth.Config{Mode: auth.Open, Clock: c.clk, Lookup: revoked.lookup})
	if err != nil {
		return nil, err
	}
	w := &World{c: c, inst: instance, certs: checker, revoked: revoked, haveTick: make(chan struct{}), blocks: map[uint64]bool{},
		requested: map[uint64]time.Time{}, waiters: map[heartbeat.Hash]chan sendResult{},
		recent: map[heartbeat.Hash]heartbeat.Receipt{}, caught: make(chan struct{}), done: make(chan struct{}),
		notify: make(chan struct{}, 1), events: make(chan Event, opt.Buffer)}
	authz := heartbeat.AuthorizerFunc(func(ctx context.Context, inst, key string, role heartbeat.Role, at time.Time) error {
		if key == inst {
			return nil
		}
		if role == heartbeat.RoleMessage && !opt.StrictMessageRoles {
			return nil
		}
		return w.certs.Authorize(ctx, inst, key, auth.Role(role), at)
	})
	fcfg := heartbeat.FollowerConfig{Instance: instance, Authorizer: authz, MaxPending: c.cfg.MaxPending,
		SkipAuthorSignatures: opt.SkipAuthorSignatures}
	first := uint64(0) // first log block to load
	var bundle heartbeat.JoinBundle
	if opt.FromSnapshot {
		if bundle, err = c.joinBundle(ctx, instance); err != nil {
			return nil, err
		}
	}
	f, err := heartbeat.NewFollower(fcfg)
	if err != nil {
		return nil, err
	}
	w.f = f
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if c.worlds[instance] != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("client: already following %s", instance)
	}
	c.worlds[instance] = w
	c.mu.Unlock()
	go w.pump()

	cleanup := func(err error) (*World, error) {
		w.Close()
		return nil, err
	}
	if err := c.subscribe(ctx, revokedSoul(instance), true); err != nil {
		return cleanup(err)
	}
	if err := c.subscribe(ctx, certsSoul(instance), true); err != nil {
		return cleanup(err)
	}
	if opt.FromSnapshot {
		// Now that the published certificates are known, the bundle's
		// ticks can be judged: verify it and follow from the snapshot.
		j, err := heartbeat.NewJoiner(fcfg, bundle)
		if err != nil {
			return cleanup(fmt.Errorf("client: join %s from its snapshot: %w", instance, err))
		}
		w.mu.Lock()
		w.f = j
		if bundle.Snapshot != nil {
			w.snap, w.snapData = bundle.Snapshot, bundle.Data
			first = (bundle.Snapshot.Seq + 1) / heartbeat.BlockSize
		}
		w.mu.Unlock()
	}
	if err := c.subscribe(ctx, heartbeat.HeartbeatSoul(instance), true); err != nil {
		return cleanup(err)
	}
	select {
	case <-w.haveTick:
	case <-w.done:
		return cleanup(w.Err())
	case <-ctx.Done():
		return cleanup(fmt.Errorf("client: join %s: no tick yet: %w", instance, ctx.Err()))
	}
	w.mu.Lock()
	w.target, w.targetSet = w.tick.Seq, true
	last := w.target / heartbeat.BlockSize
	w.mu.Unlock()
	for b := first; b <= last; b++ {
		w.subscribeBlock(b)
	}
	w.mu.Lock()
	w.checkCaught()
	w.mu.Unlock()
	select {
	case <-w.caught:
	case <-w.done:
		return cleanup(w.Err())
	case <-ctx.Done():
		w.mu.Lock()
		at, missing := w.f.Applied().Seq, w.f.Missing(4)
		w.mu.Unlock()
		return cleanup(fmt.Errorf("client: join %s: catching up (applied %d of %d, missing %v): %w", instance, at, w.target, missing, ctx.Err()))
	}
	return w, nil
}

func certsSoul(inst string) string { return heartbeat.InstanceSoul(inst) + "/certs" }

func revokedSoul(inst string) string { return heartbeat.InstanceSoul(inst) + "/revoked" }

// revocations holds the fields of an instance's lum/<I>/revoked (serial →
// revocation) for the checker's lookup, which runs while World.mu is held.
// They are not verified again: the relay judged them, and a forged one
// could only deny a certificate.
type revocations struct {
	soul string
	mu   sync.Mutex
	m    map[string]graph.Field
}

func (r *revocations) add(n *graph.Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for serial, f := range n.Fields {
		if cur, ok := r.m[serial]; !ok || f.State > cur.State {
			r.m[serial] = f
		}
	}
}

func (r *revocations) lookup(_ context.Context, soul, field string) (graph.Field, bool, error) {
	if soul != r.soul {
		return graph.Field{}, false, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f, ok := r.m[field]
	return f, ok, nil
}

// Instance returns the instance id.
func (w *World) Instance() string { return w.inst }

// Snapshot returns the snapshot the world joined from and its data (which
// the follower checked against the signed log), or nil when it replayed
// the log from the beginning.
func (w *World) Snapshot() (*heartbeat.SnapshotRef, []byte) { return w.snap, w.snapData }

// SubmitSnapshot votes, as this client's key, that the application state
// right after entry seq (before anything that follows it in the order)
// serialises to data, and sends the data along. The sequencer accepts a
// (seq, hash) once enough present members voted it (the key needs the
// snapshot role); accepted reports whether this vote completed the quorum,
// with marker the seq of the snapshot entry it appended.
func (w *World) SubmitSnapshot(ctx context.Context, seq uint64, data []byte) (accepted bool, marker uint64, err error) {
	key := w.c.cfg.Key
	if key == nil {
		return false, 0, ErrNoKey
	}
	v := heartbeat.SnapshotVote{Instance: w.inst, Seq: seq, Hash: heartbeat.SHA256(data)}
	if err := v.Sign(heartbeat.KeySigner(key)); err != nil {
		return false, 0, err
	}
	body := v.AppendJSON(nil, data)
	rctx, cancel := context.WithTimeout(ctx, w.c.cfg.RequestTimeout)
	defer cancel()
	err = w.c.roundTrip(rctx, false, func(id string) []byte { return memberFrame(id, heartbeat.SnapshotMember, body) }, func(m *msg) (bool, error) {
		if m.Err != "" {
			return true, &RelayError{m.Err}
		}
		v, ok := m.member(heartbeat.SnapshotMember)
		if !ok {
			return false, nil
		}
		o, ok := v.(*jsjson.Object)
		if !ok {
			return true, errors.New("client: malformed snapshot reply")
		}
		a, _ := o.Get("accepted")
		accepted, _ = a.(bool)
		if s, ok := o.Get("seq"); ok {
			if f, ok := s.(float64); ok && f > 0 {
				marker = uint64(f)
			}
		}
		return true, nil
	})
	return accepted, marker, err
}

// Events returns the ordered stream. It is closed when the world is closed
// or fails (see Err).
func (w *World) Events() <-chan Event { return w.events }

// Stream is Events.
func (w *World) Stream() <-chan Event { return w.events }

// Time returns the Croquet time (seconds) of the last element applied.
func (w *World) Time() float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.time
}

// Applied returns the position after the last applied entry.
func (w *World) Applied() heartbeat.Position {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Applied()
}

// Err returns why the world stopped (nil while it runs).
func (w *World) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Close stops following the world and closes Events.
func (w *World) Close() error {
	w.fail(ErrClosed)
	w.c.mu.Lock()
	if w.c.worlds[w.inst] == w {
		delete(w.c.worlds, w.inst)
	}
	for s := range w.c.subs {
		if inst, ok := instanceOf(s); ok && inst == w.inst {
			delete(w.c.subs, s)
		}
	}
	w.c.mu.Unlock()
	return nil
}

// fail stops the world with err (first error wins).
func (w *World) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failLocked(err)
}

func (w *World) failLocked(err error) {
	if w.err != nil {
		return
	}
	w.err = err
	close(w.done)
	for id, ch := range w.waiters {
		ch <- sendResult{err: err}
		delete(w.waiters, id)
	}
}

// pump moves the backlog to the Events channel.
func (w *World) pump() {
	defer close(w.events)
	for {
		select {
		case <-w.done:
			return
		case <-w.notify:
		}
		for {
			w.mu.Lock()
			batch := w.backlog
			w.backlog = nil
			w.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			for _, e := range batch {
				select {
				case w.events <- e:
				case <-w.done:
					return
				}
			}
		}
	}
}

// subscribeBlock subscribes the connection to log block b (whole), once.
func (w *World) subscribeBlock(b uint64) {
	w.mu.Lock()
	if _, ok := w.blocks[b]; ok {
		w.mu.Unlock()
		return
	}
	w.blocks[b] = true
	w.mu.Unlock()
	_ = w.c.subscribe(context.Background(), heartbeat.BlockSoul(w.inst, b*heartbeat.BlockSize), false)
}

// reconnected runs after the client reconnected (subscriptions were sent
// again): gap fills are asked for again at once.
func (w *World) reconnected() {
	w.mu.Lock()
	clear(w.requested)
	w.mu.Unlock()
	w.afterInput()
}

// receive takes the nodes of a put (a push or a get reply) for this world.
func (w *World) receive(g graph.Graph) {
	w.mu.Lock()
	if w.err != nil {
		w.mu.Unlock()
		return
	}
	base := heartbeat.InstanceSoul(w.inst)
	certsChanged := false
	var ticks []heartbeat.Tick
	for soul, n := range g {
		switch {
		case soul == base+"/certs":
			// Published certificates: the checker verifies the owner's (or
			// an admin's) signature on each field and remembers the
			// certificates for Authorize.
			_, _ = w.certs.CheckPut(context.Background(), nil, graph.Graph{soul: n})
			certsChanged = true
		case soul == base+"/revoked":
			w.revoked.add(n)
		case soul == base+"/hb":
			if f, ok := n.Fields["tick"]; ok {
				if t, err := heartbeat.ParseTick([]byte(unwrap(f.Value))); err == nil {
					ticks = append(ticks, t)
				} else {
					w.c.log.Debug("client: bad tick", "instance", w.inst, "err", err)
				}
			}
		case strings.HasPrefix(soul, base+"/log/"):
			for name, f := range n.Fields {
				if len(name) != 20 {
					continue
				}
				e, err := heartbeat.ParseEntry([]byte(unwrap(f.Value)))
				if err != nil {
					w.c.log.Debug("client: bad entry", "instance", w.inst, "field", name, "err", err)
					continue
				}
				if heartbeat.SeqField(e.Seq) != name || heartbeat.BlockSoul(w.inst, e.Seq) != soul {
					continue
				}
				if err := w.f.AddEntry(e); err != nil && w.f.Err() != nil {
					w.failLocked(err)
					w.mu.Unlock()
					return
				}
			}
		}
	}
	for i := range ticks {
		w.offerTickLocked(ticks[i])
	}
	if certsChanged && w.tick != nil {
		w.offerTickLocked(*w.tick)
	}
	w.mu.Unlock()
	w.afterInput()
}

// offerTickLocked remembers t as the latest tick and offers it.
func (w *World) offerTickLocked(t heartbeat.Tick) {
	if w.tick == nil || t.State >= w.tick.State {
		tt := t
		first := w.tick == nil
		w.tick = &tt
		if first {
			close(w.haveTick)
		}
	}
	if err := w.f.AddTick(t); err != nil {
		if w.f.Err() != nil {
			w.failLocked(err)
			return
		}
		w.c.log.Debug("client: tick not accepted", "instance", w.inst, "seq", t.Seq, "epoch", t.Epoch, "err", err)
	}
}

// afterInput collects what the follower emitted, resolves waiting sends,
// and asks for what is missing.
func (w *World) afterInput() {
	w.mu.Lock()
	if w.err != nil {
		w.mu.Unlock()
		return
	}
	items := w.f.Ready()
	for i := range items {
		it := items[i]
		w.time = it.Time
		if e := it.Entry; e != nil && e.Kind == heartbeat.KindMessage {
			id := e.MessageID()
			r := heartbeat.Receipt{Instance: w.inst, ID: id, Epoch: e.Epoch, Seq: e.Seq, State: e.State, Time: it.Time}
			w.remember(id, r)
			if ch := w.waiters[id]; ch != nil {
				ch <- sendResult{r: r}
				delete(w.waiters, id)
			}
		}
	}
	if len(items) > 0 {
		if len(w.backlog)+len(items) > w.c.cfg.MaxBacklog {
			w.failLocked(ErrSlowConsumer)
			w.mu.Unlock()
			return
		}
		w.backlog = append(w.backlog, items...)
		select {
		case w.notify <- struct{}{}:
		default:
		}
	}
	w.checkCaught()
	applied := w.f.Applied().Seq
	// Blocks: from the applied one to the tick's, and the next one when
	// the head nears its end (so that its entries come as pushes).
	var blocks []uint64
	if w.tick != nil {
		for b := applied / heartbeat.BlockSize; b <= (w.tick.Seq+64)/heartbeat.BlockSize; b++ {
			if _, ok := w.blocks[b]; !ok {
				blocks = append(blocks, b)
			}
		}
	}
	// Retire complete blocks from the set re-subscribed on reconnect.
	var retire []string
	for b, live := range w.blocks {
		if live && applied+1 >= (b+1)*heartbeat.BlockSize {
			w.blocks[b] = false
			retire = append(retire, heartbeat.BlockSoul(w.inst, b*heartbeat.BlockSize))
		}
	}
	// Gap fill.
	now := w.c.clk.Now()
	var fields [][2]string
	budget := w.c.cfg.MaxGapFetch
	for _, r := range w.f.Missing(16) {
		for s := r.From; s <= r.To && budget > 0; s++ {
			b := s / heartbeat.BlockSize
			if _, ok := w.blocks[b]; !ok {
				if !slices.Contains(blocks, b) {
					blocks = append(blocks, b)
				}
				continue
			}
			if at, ok := w.requested[s]; ok && now.Sub(at) < w.c.cfg.RequestTimeout {
				continue
			}
			w.requested[s] = now
			budget--
			fields = append(fields, [2]string{heartbeat.BlockSoul(w.inst, s), heartbeat.SeqField(s)})
		}
	}
	for s := range w.requested {
		if s <= applied {
			delete(w.requested, s)
		}
	}
	w.mu.Unlock()
	for _, soul := range retire {
		w.c.unsubscribe(soul)
	}
	for _, b := range blocks {
		w.subscribeBlock(b)
	}
	for _, f := range fields {
		_ = w.c.send(getFrame(newID(), f[0], f[1]))
	}
}

func (w *World) checkCaught() {
	select {
	case <-w.caught:
		return
	default:
	}
	if w.targetSet && w.f.Applied().Seq >= w.target {
		close(w.caught)
	}
}

func (w *World) remember(id heartbeat.Hash, r heartbeat.Receipt) {
	if _, ok := w.recent[id]; ok {
		return
	}
	w.recent[id] = r
	w.recentQ = append(w.recentQ, id)
	if len(w.recentQ) > maxRecent {
		delete(w.recent, w.recentQ[0])
		w.recentQ = w.recentQ[1:]
	}
}

// unwrap returns the text of a field value: a plain string, or the inner
// string of an auth wrapper {":":…,"~":…}.
func unwrap(v graph.Value) string {
	s, _ := v.AsString()
	if strings.HasPrefix(s, `{":"`) || strings.HasPrefix(s, `{"~"`) {
		if wr, err := auth.ParseWrapper(v); err == nil {
			if inner, ok := wr.Value.AsString(); ok {
				return inner
			}
		}
	}
	return s
}

// Send signs payload as a message from the client's key, puts it at the
// world's inbox and waits for its receipt: the seq and Croquet time the
// sequencer gave it, once it is durable in the log. A message the relay
// already sequenced (a retry) returns its original receipt. Refusals are a
// *RelayError (e.g. "restricted: not authorised to message", "invalid:
// timestamp out of window").
func (w *World) Send(ctx context.Context, payload []byte) (heartbeat.Receipt, error) {
	key := w.c.cfg.Key
	if key == nil {
		return heartbeat.Receipt{}, ErrNoKey
	}
	var nonce [12]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return heartbeat.Receipt{}, err
	}
	m := heartbeat.Message{Instance: w.inst, TS: w.c.clk.Now().UnixMilli(), Nonce: base64.RawURLEncoding.EncodeToString(nonce[:]), Payload: string(payload)}
	if err := m.Sign(heartbeat.KeySigner(key)); err != nil {
		return heartbeat.Receipt{}, err
	}
	return w.SendMessage(ctx, m)
}

// SendMessage sends an already signed message (see Send).
func (w *World) SendMessage(ctx context.Context, m heartbeat.Message) (heartbeat.Receipt, error) {
	if m.Instance != w.inst {
		return heartbeat.Receipt{}, fmt.Errorf("client: message for %s sent to world %s", m.Instance, w.inst)
	}
	id := m.ID()
	ch := make(chan sendResult, 4)
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return heartbeat.Receipt{}, err
	}
	if r, ok := w.recent[id]; ok {
		w.mu.Unlock()
		return r, nil
	}
	if old := w.waiters[id]; old != nil {
		ch = old
	} else {
		w.waiters[id] = ch
	}
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		if w.waiters[id] == ch {
			delete(w.waiters, id)
		}
		w.mu.Unlock()
	}()
	deliver := func(res sendResult) {
		select {
		case ch <- res:
		default:
		}
	}
	backoff := w.c.cfg.BackoffMin
	for {
		state := float64(w.c.clk.Now().UnixMicro()) / 1000
		frameOf := func(putID string) []byte { return putFrame(putID, putsGraph(heartbeat.InboxPuts(&m, state))) }
		r := &request{
			handle: func(msg *msg) bool {
				if v, ok := msg.member("lum"); ok {
					res := parseReceipt(v, msg, id, w.inst)
					deliver(res)
					return true
				}
				if msg.Err != "" && !strings.HasPrefix(msg.Err, "duplicate:") {
					deliver(sendResult{err: &RelayError{msg.Err}})
					return true
				}
				return false // ok or duplicate: wait for the receipt (or the entry in the stream)
			},
			fail:  func(err error) { deliver(sendResult{err: err}) },
			build: frameOf, // re-sent at once after a reconnect
		}
		putID := newID()
		w.c.mu.Lock()
		if w.c.closed {
			w.c.mu.Unlock()
			return heartbeat.Receipt{}, ErrClosed
		}
		w.c.pending[putID] = r
		w.c.mu.Unlock()
		_ = w.c.send(frameOf(putID))
		t := w.c.clk.NewTimer(w.c.cfg.ResendAfter)
		select {
		case res := <-ch:
			t.Stop()
			w.c.dropRequest(r)
			if !transient(res.err) {
				return res.r, res.err
			}
			// The relay is between terms (starting, failing over) or
			// busy: try again after a pause.
			pause := w.c.clk.NewTimer(backoff)
			backoff = min(backoff*2, w.c.cfg.ResendAfter)
			select {
			case <-pause.C():
			case <-ctx.Done():
				pause.Stop()
				return heartbeat.Receipt{}, ctx.Err()
			}
		case <-t.C():
			w.c.dropRequest(r)
		case <-ctx.Done():
			t.Stop()
			w.c.dropRequest(r)
			return heartbeat.Receipt{}, ctx.Err()
		}
	}
}

// transient reports whether a refusal may go away by itself: the relay is
// not (yet) the sequencer, is shutting down, or its queue is full.
func transient(err error) bool {
	var re *RelayError
	if !errors.As(err, &re) {
		return false
	}
	return strings.HasPrefix(re.Reason, "restricted: not the sequencer") ||
		strings.HasPrefix(re.Reason, "blocked:") || strings.HasPrefix(re.Reason, "rate-limited:")
}

// dropRequest forgets a pending request (under whatever id it was last
// sent with).
func (c *Client) dropRequest(r *request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, x := range c.pending {
		if x == r {
			delete(c.pending, id)
		}
	}
}

// parseReceipt reads a receipt frame's "lum" member.
func parseReceipt(v any, m *msg, id heartbeat.Hash, inst string) sendResult {
	o, ok := v.(*jsjson.Object)
	if !ok {
		return sendResult{err: errors.New("client: malformed receipt")}
	}
	if m.Err != "" {
		return sendResult{err: &RelayError{m.Err}}
	}
	num := func(k string) float64 {
		x, _ := o.Get(k)
		f, _ := x.(float64)
		return f
	}
	if s, _ := o.Get("id"); s != id.String() {
		return sendResult{err: errors.New("client: receipt for another message")}
	}
	seq := num("seq")
	if seq < 1 {
		return sendResult{err: errors.New("client: receipt without seq")}
	}
	return sendResult{r: heartbeat.Receipt{Instance: inst, ID: id, Epoch: uint64(num("epoch")), Seq: uint64(seq), State: num("state"), Time: num("time")}}
}

// putsGraph converts heartbeat puts to a graph diff.
func putsGraph(puts []heartbeat.Put) graph.Graph {
	g := graph.Graph{}
	for _, p := range puts {
		n := g[p.Soul]
		if n == nil {
			n = graph.NewNode(p.Soul)
			g[p.Soul] = n
		}
		var v graph.Value
		switch x := p.Value.(type) {
		case string:
			v = graph.String(x)
		case float64:
			v = graph.Number(x)
		case bool:
			v = graph.Bool(x)
		case heartbeat.Link:
			v = graph.Link(x.Soul)
		default:
			v = graph.Null()
		}
		n.Fields[p.Field] = graph.Field{Value: v, State: p.State}
	}
	return g
}
