package service

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/krestianstvo/luminary/api"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/internal/jsjson"
)

// Remote metronomes on the wire.
//
// A peer holding the tick role of a world this relay hosts may run the
// world's metronome and sequencer itself (client.World.RunMetronome): a
// heartbeat.Host in the peer whose log and lease are this relay's, reached
// through one top-level member, lumSeq, from a connection logged in as the
// peer's key ("holder"):
//
//	{"#":id,"lumSeq":{"op":"acquire","instance":I,"holder":K,"ttl":ms,"min":e}}
//	→ {"@":id,"ok":true,"lumSeq":{"instance":I,"holder":K,"epoch":e}}
//	{"#":id,"lumSeq":{"op":"renew"|"release","instance":I,"holder":K,"epoch":e[,"ttl":ms]}}
//	{"#":id,"lumSeq":{"op":"current","instance":I,"holder":K}}   → {"holder":…,"epoch":…} or {}
//	{"#":id,"lumSeq":{"op":"state","instance":I,"holder":K}}     → heartbeat.LogState
//	{"#":id,"lumSeq":{"op":"lookup","instance":I,"holder":K,"id":M}} → {"entry":…} or {}
//	{"#":id,"lumSeq":{"op":"mark","holder":K}}                   → {"mark":n}
//	{"#":id,"lumSeq":{"op":"append","holder":K,"batches":[…]}}   → {"errs":[null|reason,…]}
//	{"#":id,"lumSeq":{"op":"tick","holder":K,"batch":…}}         (an idle tick: no answer unless refused)
//	{"#":id,"lumSeq":{"op":"refuse","instance":I,"holder":K,"id":M,"err":reason}}
//
// and the relay hands the holder every message admitted for the world while
// it holds the lease, {"#":id,"lumSeq":{"op":"msg","message":"<message JSON>"}},
// the keys present in the world when its term starts,
// {"#":id,"lumSeq":{"op":"presence","instance":I,"keys":[K,…]}}, and each
// change after that, {"#":id,"lumSeq":{"op":"presence","instance":I,"join"|"leave":K}},
// and each snapshot marker the relay decided from the members' votes,
// {"#":id,"lumSeq":{"op":"snapshot","instance":I,"seq":S,"hash":H,"voters":[K,…]}}.
//
// Nothing a remote sends is trusted: its batches pass heartbeat.Acceptor
// (round signature and Merkle path, the tick role, the current grant and
// epoch, the log's order, every message's author signature, role and
// timestamp window; states at most RemoteConfig.MaxAhead past the relay
// clock), and the log's compare-and-append fences any other sequencer. A
// reservation (Batch.Reserve) may reach at most MaxAhead past the relay
// clock.
//
// A holder's idle ticks are limited to twice the world's rate (each costs
// the relay a signature verification: BenchmarkAcceptorIdleTick); rounds
// that carry entries are bounded by the messages handed to it.
//
// A holder that keeps renewing but whose ticks stop being accepted (for
// RemoteConfig.StallPeriods tick periods, at least MinStall; MaxAhead more
// before its first tick) is not renewed: its lease is released and a
// standby takes over, as if it had stopped.
//
// The relay's own host stands by: while a remote holds a world's lease,
// and for RemoteConfig.Grace after it stops renewing it, the relay does not
// take the lease; after that it takes over ("anytime availability"). A remote
// that asks for the lease while the relay's host holds it gets it: the
// relay releases its own grant (its host steps down at its next renewal,
// and whatever it appended before the remote's epoch entry stays in the
// log, in order). Messages admitted while a remote holds the lease are
// forwarded to it; the author's receipt is sent when the remote's batch
// carrying the message is accepted. Messages the remote refuses as "not the
// sequencer", or that it still holds when it loses the lease, are handed to
// whoever sequences next (a message is never sequenced twice: the log's
// message index makes a resubmission a duplicate with the original seq).
// The holder logs presence (joins and leaves) from what the relay sends,
// and only that: a batch logging a join or leave the relay did not hand it
// (handedPresence) is refused. During a remote's term the relay takes the
// members' snapshot votes itself (the checks and quorum of
// heartbeat.Host.Vote, counted per term), keeps the data, and hands the
// marker a vote decides to the holder, which logs it
// (heartbeat.Host.AppendSnapshot); a batch carrying any other snapshot
// entry is refused. The deciding vote is answered once the batch with its
// marker is accepted, or refused as "not the sequencer" if the term ends
// first (members vote again).
const SeqMember = heartbeat.SeqMember

// RemoteConfig bounds the remote metronomes a relay serves. Zero fields
// take the defaults named.
type RemoteConfig struct {
	// Disabled refuses every lumSeq request ("restricted: remote
	// metronomes are disabled on this relay"): the relay runs every
	// world's metronome itself.
	Disabled bool
	// Grace is how long after a remote's lease would lapse (or after it
	// is released or its connection drops) the relay's own host still
	// stays off the world, so that a standby peer (which polls every
	// 100 ms) takes over first (default 300 ms).
	Grace time.Duration
	// MinTTL and MaxTTL bound the lease term a remote may ask for
	// (defaults 100 ms and 10 s).
	MinTTL, MaxTTL time.Duration
	// MaxAhead bounds how far past the relay clock a remote's states and
	// reservations may lie (default 2 s).
	MaxAhead time.Duration
	// MaxPending bounds the messages waiting for a remote sequencer, per
	// world (default 10,000); beyond it they are refused "rate-limited:".
	MaxPending int
	// PendingTTL is how long a forwarded message may wait for the
	// sequencer before its author is told (default 30 s).
	PendingTTL time.Duration
	// StallPeriods: a holder none of whose ticks has been accepted for this
	// many tick periods (and at least MinStall) is not renewed (defaults
	// 20 and 1 s).
	StallPeriods int
	MinStall     time.Duration
	// MaxHandedPresence bounds the presence changes a relay records per
	// remote term (the joins and leaves its batches may log; default
	// 4 × heartbeat.MaxWirePresence keys each way); an entry for a change
	// beyond it is refused.
	MaxHandedPresence int
}

func (c RemoteConfig) withDefaults() RemoteConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Grace, 300*time.Millisecond)
	def(&c.MinTTL, 100*time.Millisecond)
	def(&c.MaxTTL, 10*time.Second)
	def(&c.MaxAhead, 2*time.Second)
	def(&c.PendingTTL, 30*time.Second)
	def(&c.MinStall, time.Second)
	if c.MaxPending <= 0 {
		c.MaxPending = 10000
	}
	if c.StallPeriods <= 0 {
		c.StallPeriods = 20
	}
	if c.MaxHandedPresence <= 0 {
		c.MaxHandedPresence = 4 * heartbeat.MaxWirePresence
	}
	return c
}

// remoteMaxRedispatch bounds how often one message is handed on.
const remoteMaxRedispatch = 8

var errIdleRate = errors.New("rate-limited: idle ticks faster than twice the world's rate")
var errRemoteDisabled = errors.New("restricted: remote metronomes are disabled on this relay")
var errPendingFull = errors.New("rate-limited: too many messages waiting for the sequencer")
var errPendingTimeout = errors.New("rate-limited: the sequencer did not take the message in time")

// relayLease is the lease the relay's own host competes with: the relay's
// lease table, except that the relay does not acquire an instance a remote
// metronome holds or has just held (its claim).
type relayLease struct {
	heartbeat.Lease
	clk    clock.Clock
	mu     sync.Mutex
	claims map[string]time.Time // instance → the relay may acquire after
}

func newRelayLease(l heartbeat.Lease, clk clock.Clock) *relayLease {
	return &relayLease{Lease: l, clk: clk, claims: map[string]time.Time{}}
}

// Acquire implements heartbeat.Lease.
func (l *relayLease) Acquire(ctx context.Context, inst, holder string, ttl time.Duration, min uint64) (heartbeat.Grant, error) {
	if l.claimed(inst) {
		return heartbeat.Grant{}, fmt.Errorf("service: %s is claimed by a remote metronome: %w", inst, heartbeat.ErrLeaseHeld)
	}
	return l.Lease.Acquire(ctx, inst, holder, ttl, min)
}

// claimed reports whether a remote's claim keeps the relay off inst (and
// forgets a claim that has run out).
func (l *relayLease) claimed(inst string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	until, ok := l.claims[inst]
	if ok && !l.clk.Now().Before(until) {
		delete(l.claims, inst)
		return false
	}
	return ok
}

// claim keeps the relay off inst until until (0: lift the claim).
func (l *relayLease) claim(inst string, until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until.IsZero() {
		delete(l.claims, inst)
		return
	}
	l.claims[inst] = until
}

// remotes tracks the remote metronomes of the relay's worlds and the
// messages forwarded to them.
type remotes struct {
	s  *Service
	mu sync.Mutex
	// holders: instance → the connection whose key holds the lease.
	holders map[string]*remoteHolder
	pending map[heartbeat.Hash]*pendingMsg
	count   map[string]int // pending per instance
}

type remoteHolder struct {
	key   string
	peer  *api.PeerInfo
	epoch uint64
	// since is when the grant was made or the holder last ticked: the
	// relay renews only a holder that ticks (see stalled). ticked: it has
	// had a tick accepted since the grant.
	since  time.Time
	ticked bool
	// idle bounds its idle ticks to twice the world's rate (each costs the
	// relay a signature verification).
	idle *rate.Limiter
	// handed is the presence handed to it during its term: the only joins
	// and leaves its batches may log.
	handed *handedPresence
	// votes counts the members' snapshot votes during its term; snaps are
	// the markers decided from them and handed to it, by snapshot point,
	// each with the deciding vote's answer (sent once its batch carrying
	// the marker is accepted).
	votes *heartbeat.VoteTally
	snaps map[uint64]*snapDecision
}

type snapDecision struct {
	hash    heartbeat.Hash
	payload string // the entry's Payload: the voters, JSON
	done    func(heartbeat.Receipt, error)
}

// endTerm answers the votes waiting for h's markers: its term is over
// before it logged them (the members vote again with the next sequencer).
func (h *remoteHolder) endTerm() {
	for seq, d := range h.snaps {
		delete(h.snaps, seq)
		d.done(heartbeat.Receipt{}, fmt.Errorf("service: snapshot %d: %w", seq, heartbeat.ErrNotSequencer))
	}
}

// handedPresence is what a relay has told one remote term about a world's
// presence. The holder's host logs a join for a key handed as joining or
// present in a full set it was handed, and a leave for a key handed as
// leaving or absent from a full set (heartbeat.Host.SyncPresence), so
// those are the only joins and leaves its batches may carry. The
// allowances only grow during a term (a batch may arrive after later
// changes were handed: a key handed as absent and then as joining may
// still be logged as leaving, in that order), except that an accepted
// join or leave uses up the event that allowed it.
type handedPresence struct {
	joins, leaves map[string]bool
	sets          []map[string]bool // the last maxHandedSets full sets, oldest first
	max           int               // keys recorded each way (RemoteConfig.MaxHandedPresence)
}

const (
	maxHandedSets = 4
)

func newHandedPresence(maxEvents int) *handedPresence {
	return &handedPresence{joins: map[string]bool{}, leaves: map[string]bool{}, max: maxEvents}
}

// event records a join (present) or leave handed to the holder; it
// reports false when the bound on recorded events is reached (the entry
// that event leads to will be refused).
func (hp *handedPresence) event(key string, present bool) bool {
	m := hp.leaves
	if present {
		m = hp.joins
	}
	if !m[key] && len(m) >= hp.max {
		return false
	}
	m[key] = true
	return true
}

// set records a full set handed to the holder.
func (hp *handedPresence) set(keys []string) {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	if len(hp.sets) == maxHandedSets {
		hp.sets = append(hp.sets[:0], hp.sets[1:]...)
	}
	hp.sets = append(hp.sets, m)
}

// allows reports whether the holder may log kind (join or leave) of key.
func (hp *handedPresence) allows(kind heartbeat.Kind, key string) bool {
	join := kind == heartbeat.KindJoin
	if (join && hp.joins[key]) || (!join && hp.leaves[key]) {
		return true
	}
	for _, set := range hp.sets {
		if set[key] == join {
			return true
		}
	}
	return false
}

// used forgets the event that allowed an accepted join or leave.
func (hp *handedPresence) used(kind heartbeat.Kind, key string) {
	if kind == heartbeat.KindJoin {
		delete(hp.joins, key)
	} else {
		delete(hp.leaves, key)
	}
}

var (
	errNotHanded  = errors.New("the relay did not hand this holder that presence change")
	errNotDecided = errors.New("the relay decided no such snapshot for this holder")
)

// termLocked returns inst's remote holder if it is still key at epoch
// (nil otherwise). r.mu is held.
func (r *remotes) termLocked(inst, key string, epoch uint64) *remoteHolder {
	if h := r.holders[inst]; h != nil && h.key == key && h.epoch == epoch {
		return h
	}
	return nil
}

// checkSnapshot is the Acceptor's Snapshot hook: inst's current remote
// term may log only a marker the relay decided from the members' votes
// and handed it, exactly.
func (r *remotes) checkSnapshot(inst, holder string, epoch uint64, e *heartbeat.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.termLocked(inst, holder, epoch)
	if h == nil {
		return errNotDecided
	}
	if d := h.snaps[e.Ref]; d == nil || d.hash != e.RefHash || d.payload != e.Payload {
		return errNotDecided
	}
	return nil
}

// vote takes a member's snapshot vote for a world a remote peer sequences
// (reporting false, and doing nothing, when none does: the relay's host
// takes it). The relay checks the vote and keeps the data as its own host
// would, counts it, and when the vote decides the point hands the marker
// to the holder to log; done answers as heartbeat.Host.Vote's would (the
// deciding vote once the holder's batch with the marker is accepted).
func (r *remotes) vote(ctx context.Context, v heartbeat.SnapshotVote, data []byte, done func(heartbeat.Receipt, error)) bool {
	inst := v.Instance
	if r.holder(inst) == nil {
		return false
	}
	s := r.s
	haveData, err := s.host.CheckVote(ctx, v, data)
	if err != nil {
		done(heartbeat.Receipt{}, err)
		return true
	}
	st, err := s.log.State(ctx, inst)
	if err != nil {
		done(heartbeat.Receipt{}, err)
		return true
	}
	var accepted uint64
	if st.Snapshot != nil {
		accepted = st.Snapshot.Seq
	}
	if err := heartbeat.CheckVotePoint(v.Seq, st.Head.Seq, accepted); err != nil {
		done(heartbeat.Receipt{}, err)
		return true
	}
	hc := s.host.Config()
	quorum := heartbeat.VoteQuorum(hc.SnapshotQuorum, len(s.pres.current(inst)))
	r.mu.Lock()
	h := r.holders[inst]
	if h == nil {
		r.mu.Unlock()
		return false // the term ended meanwhile: the relay's host decides
	}
	h.votes.Prune(accepted)
	voters, err := h.votes.Add(v, quorum, haveData, hc.MaxVotes)
	if err != nil || voters == nil {
		r.mu.Unlock()
		done(heartbeat.Receipt{}, err)
		return true
	}
	h.snaps[v.Seq] = &snapDecision{hash: v.Hash, payload: string(jsjson.Append(nil, voters)), done: done}
	peer := h.peer
	r.mu.Unlock()
	body := &jsjson.Object{}
	body.Set("op", "snapshot")
	body.Set("instance", inst)
	body.Set("seq", float64(v.Seq))
	body.Set("hash", v.Hash.String())
	body.Set("voters", voters)
	peer.Send(seqFrame(body))
	return true
}

// checkPresence is the Acceptor's Presence hook: inst's current remote
// term (holder at epoch) may log only the presence handed to it.
func (r *remotes) checkPresence(inst, holder string, epoch uint64, kind heartbeat.Kind, client string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if h := r.termLocked(inst, holder, epoch); h == nil || !h.handed.allows(kind, client) {
		return errNotHanded
	}
	return nil
}

type pendingMsg struct {
	msg   heartbeat.Message
	since time.Time
	hops  int
	done  []func(heartbeat.Receipt, error)
}

func newRemotes(s *Service) *remotes {
	return &remotes{s: s, holders: map[string]*remoteHolder{}, pending: map[heartbeat.Hash]*pendingMsg{}, count: map[string]int{}}
}

// holder returns the remote holding inst's lease, if any.
func (r *remotes) holder(inst string) *remoteHolder {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.holders[inst]
}

// holds reports whether key holds any lease through this relay.
func (r *remotes) holds(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range r.holders {
		if h.key == key {
			return true
		}
	}
	return false
}

// dispatch hands msg to whoever sequences its world: a remote holder
// (forwarded; done runs when its batch is accepted) or the relay's host.
// A message the host refuses as "not the sequencer" while a remote holds
// the lease is forwarded instead.
func (r *remotes) dispatch(ctx context.Context, msg heartbeat.Message, done func(heartbeat.Receipt, error)) {
	r.route(ctx, &pendingMsg{msg: msg, since: r.s.clk.Now(), done: []func(heartbeat.Receipt, error){done}})
}

func (r *remotes) route(ctx context.Context, p *pendingMsg) {
	if h := r.holder(p.msg.Instance); h != nil {
		r.forward(h, p)
		return
	}
	r.s.host.Submit(ctx, p.msg, func(rc heartbeat.Receipt, err error) {
		if errors.Is(err, heartbeat.ErrNotSequencer) {
			if h := r.holder(p.msg.Instance); h != nil {
				r.forward(h, p)
				return
			}
			if r.s.rlease.claimed(p.msg.Instance) {
				// Between two remote terms: wait for the next sequencer.
				r.forward(nil, p)
				return
			}
		}
		p.finish(rc, err)
	})
}

// forward records p as waiting for h's batch and sends its message to h;
// with h nil it only records it (parked until the next term starts).
func (r *remotes) forward(h *remoteHolder, p *pendingMsg) {
	id := p.msg.ID()
	r.mu.Lock()
	if q := r.pending[id]; q != nil {
		q.done = append(q.done, p.done...)
		r.mu.Unlock()
		return
	}
	if r.count[p.msg.Instance] >= r.s.cfg.Remote.MaxPending {
		r.mu.Unlock()
		p.finish(heartbeat.Receipt{}, errPendingFull)
		return
	}
	r.pending[id] = p
	r.count[p.msg.Instance]++
	r.mu.Unlock()
	if h != nil {
		h.peer.Send(msgFrame(p.msg))
	}
}

func msgFrame(msg heartbeat.Message) []byte {
	body := &jsjson.Object{}
	body.Set("op", "msg")
	body.Set("message", string(msg.AppendJSON(nil)))
	return seqFrame(body)
}

// seqFrame is a request of the relay's to a holder: {"#":id,"lumSeq":body}.
func seqFrame(body *jsjson.Object) []byte {
	o := &jsjson.Object{}
	o.Set("#", newID())
	o.Set(SeqMember, body)
	return jsjson.Append(nil, o)
}

// presenceBody is the start of a presence request for inst.
func presenceBody(inst string) *jsjson.Object {
	body := &jsjson.Object{}
	body.Set("op", "presence")
	body.Set("instance", inst)
	return body
}

// take removes the pending message id and returns it (nil if none).
func (r *remotes) take(id heartbeat.Hash) *pendingMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pending[id]
	if p != nil {
		r.unpendLocked(id, p)
	}
	return p
}

// unpendLocked removes the pending message p (id). r.mu is held.
func (r *remotes) unpendLocked(id heartbeat.Hash, p *pendingMsg) {
	delete(r.pending, id)
	if r.count[p.msg.Instance]--; r.count[p.msg.Instance] <= 0 {
		delete(r.count, p.msg.Instance)
	}
}

// redispatch hands a pending message on (after a refusal as "not the
// sequencer" or a change of holder), at most remoteMaxRedispatch times.
func (r *remotes) redispatch(p *pendingMsg) {
	p.hops++
	if p.hops > remoteMaxRedispatch {
		p.finish(heartbeat.Receipt{}, fmt.Errorf("service: message handed on %d times: %w", p.hops, heartbeat.ErrNotSequencer))
		return
	}
	r.route(context.Background(), p)
}

func (p *pendingMsg) finish(rc heartbeat.Receipt, err error) {
	for _, d := range p.done {
		d(rc, err)
	}
}

// redispatchInstance hands on every message pending for inst (its holder
// changed).
func (r *remotes) redispatchInstance(inst string) {
	r.mu.Lock()
	var ps []*pendingMsg
	for id, p := range r.pending {
		if p.msg.Instance == inst {
			ps = append(ps, p)
			delete(r.pending, id)
		}
	}
	delete(r.count, inst)
	r.mu.Unlock()
	for _, p := range ps {
		r.redispatch(p)
	}
}

// accepted completes the pending messages sequenced by an accepted remote
// publication.
func (r *remotes) accepted(pub heartbeat.Publication) {
	for i := range pub.Entries {
		e := &pub.Entries[i]
		if e.Kind == heartbeat.KindJoin || e.Kind == heartbeat.KindLeave {
			r.mu.Lock()
			if h := r.holders[e.Instance]; h != nil && h.epoch == e.Epoch {
				h.handed.used(e.Kind, e.Author)
			}
			r.mu.Unlock()
			continue
		}
		if e.Kind == heartbeat.KindSnapshot {
			var d *snapDecision
			r.mu.Lock()
			if h := r.holders[e.Instance]; h != nil && h.epoch == e.Epoch {
				d = h.snaps[e.Ref]
				delete(h.snaps, e.Ref)
				h.votes.Prune(e.Ref)
			}
			r.mu.Unlock()
			if d != nil {
				d.done(heartbeat.ReceiptOf(e, pub.Meta), nil)
			}
			continue
		}
		if e.Kind != heartbeat.KindMessage {
			continue
		}
		if p := r.take(e.MessageID()); p != nil {
			p.finish(heartbeat.ReceiptOf(e, pub.Meta), nil)
		}
	}
}

// sweep tells the authors of messages that waited too long.
func (r *remotes) sweep(now time.Time) {
	r.mu.Lock()
	var old []*pendingMsg
	for id, p := range r.pending {
		if now.Sub(p.since) > r.s.cfg.Remote.PendingTTL {
			old = append(old, p)
			r.unpendLocked(id, p)
		}
	}
	r.mu.Unlock()
	for _, p := range old {
		p.finish(heartbeat.Receipt{}, errPendingTimeout)
	}
}

// setHolder records that key, on peer, holds inst at epoch, and arranges
// for the lease to be released when the connection closes.
func (r *remotes) setHolder(inst, key string, peer *api.PeerInfo, epoch uint64) {
	r.mu.Lock()
	prev := r.holders[inst]
	h := &remoteHolder{key: key, peer: peer, epoch: epoch, since: r.s.clk.Now()}
	var ended *remoteHolder
	if prev != nil && prev.peer == peer && prev.epoch == epoch {
		h.since, h.ticked, h.idle, h.handed, h.votes, h.snaps = prev.since, prev.ticked, prev.idle, prev.handed, prev.votes, prev.snaps
	} else {
		tps := r.s.tps(inst)
		h.idle = rate.NewLimiter(rate.Limit(2*tps), 2*tps)
		h.handed = newHandedPresence(r.s.cfg.Remote.MaxHandedPresence)
		h.votes, h.snaps = heartbeat.NewVoteTally(), map[uint64]*snapDecision{}
		ended = prev
	}
	r.holders[inst] = h
	r.mu.Unlock()
	if ended != nil {
		ended.endTerm()
	}
	if prev == nil || prev.peer != peer {
		context.AfterFunc(peer.Context(), func() { r.dropConn(peer) })
	}
	if prev == nil || prev.peer != peer || prev.epoch != epoch {
		// Messages forwarded to an earlier term are handed to this one.
		r.redispatchInstance(inst)
	}
}

// forget ends g's remote term at this relay once its lease has been
// released: a standby peer gets the first chance (the relay stays off for
// Grace, as after a crash), and the messages forwarded to it are handed on.
func (r *remotes) forget(g heartbeat.Grant) {
	if r.clearHolder(g.Instance, g.Holder, g.Epoch) {
		r.s.rlease.claim(g.Instance, r.s.clk.Now().Add(r.s.cfg.Remote.Grace))
		r.redispatchInstance(g.Instance)
	}
}

// clearHolder forgets inst's remote holder if it is still (key, epoch).
func (r *remotes) clearHolder(inst, key string, epoch uint64) bool {
	r.mu.Lock()
	h := r.holders[inst]
	if h == nil || h.key != key || (epoch != 0 && h.epoch != epoch) {
		r.mu.Unlock()
		return false
	}
	delete(r.holders, inst)
	r.mu.Unlock()
	h.endTerm()
	return true
}

// dropConn releases every lease held through a closed connection and
// hands its pending messages on.
func (r *remotes) dropConn(peer *api.PeerInfo) {
	r.mu.Lock()
	var gone []heartbeat.Grant
	for inst, h := range r.holders {
		if h.peer == peer {
			gone = append(gone, heartbeat.Grant{Instance: inst, Holder: h.key, Epoch: h.epoch})
		}
	}
	r.mu.Unlock()
	for _, g := range gone {
		_ = r.s.lease.Release(context.Background(), g)
		r.s.logger.Info("service: remote metronome disconnected", "instance", g.Instance, "holder", g.Holder, "epoch", g.Epoch)
		r.forget(g)
	}
}

// termStarted is told that a new term of inst was published: when its
// holder is no longer the remote this relay forwarded to, the messages
// waiting there are handed to the new sequencer.
func (r *remotes) termStarted(inst string) {
	if h := r.holder(inst); h != nil {
		g, ok, err := r.s.lease.Current(context.Background(), inst)
		if err != nil || (ok && g.Holder == h.key && g.Epoch == h.epoch) {
			// The remote's own term: it logs presence from now on.
			r.syncPresence(h, inst)
			return
		}
		r.clearHolder(inst, h.key, h.epoch)
	}
	r.redispatchInstance(inst)
}

// presenceChanged tells inst's remote holder, if any, that key joined or
// left (the relay's own host is told by the presence tracker itself).
func (r *remotes) presenceChanged(inst, key string, present bool) {
	r.mu.Lock()
	h := r.holders[inst]
	recorded := h != nil && h.handed.event(key, present)
	r.mu.Unlock()
	if h == nil {
		return
	}
	if !recorded {
		r.s.logger.Warn("service: too many presence changes handed to a remote term; its log of this one will be refused",
			"instance", inst, "holder", h.key, "client", key)
	}
	body := presenceBody(inst)
	if present {
		body.Set("join", key)
	} else {
		body.Set("leave", key)
	}
	h.peer.Send(seqFrame(body))
}

// syncPresence sends h the keys present in inst; its host logs the joins
// and leaves that make the log agree (heartbeat.Host.SyncPresence).
func (r *remotes) syncPresence(h *remoteHolder, inst string) {
	cur := r.s.pres.current(inst)
	if len(cur) > heartbeat.MaxWirePresence {
		cur = cur[:heartbeat.MaxWirePresence]
	}
	r.mu.Lock()
	if now := r.termLocked(inst, h.key, h.epoch); now != nil {
		now.handed.set(cur)
	}
	r.mu.Unlock()
	body := presenceBody(inst)
	body.Set("keys", cur)
	h.peer.Send(seqFrame(body))
}

// ticked records that inst's remote holder had a tick accepted.
func (r *remotes) ticked(inst, signer string) {
	now := r.s.clk.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if h := r.holders[inst]; h != nil && h.key == signer {
		h.since, h.ticked = now, true
	}
}

// stalled reports whether inst's remote holder key (at epoch) has had no
// tick accepted for bound (plus MaxAhead before its first: a new term may
// wait that long for the wall clock to pass the previous holder's
// reservation): the relay then stops renewing its lease, so that a
// metronome that renews but does not tick is replaced like one that
// stopped.
func (r *remotes) stalled(inst, key string, epoch uint64, bound time.Duration) bool {
	now := r.s.clk.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.termLocked(inst, key, epoch)
	if h == nil {
		return false
	}
	if !h.ticked {
		bound += r.s.cfg.Remote.MaxAhead
	}
	return now.Sub(h.since) > bound
}

// stallBound is how long a remote holder of inst may go without a tick.
func (s *Service) stallBound(inst string) time.Duration {
	rc := s.cfg.Remote
	return max(rc.MinStall, time.Duration(rc.StallPeriods)*time.Second/time.Duration(s.tps(inst)))
}

// tps is a hosted world's tick rate (20 if unknown).
func (s *Service) tps(inst string) int {
	if w, ok := s.worlds.get(inst); ok && w.TPS > 0 {
		return w.TPS
	}
	return 20
}

// allowIdle decides, before any signature is verified, whether key may
// send inst another idle tick now: only the remote holding inst's lease,
// at most twice the world's rate (in bursts of one second's worth).
func (r *remotes) allowIdle(inst, key string) error {
	r.mu.Lock()
	h := r.holders[inst]
	r.mu.Unlock()
	switch {
	case h == nil || h.key != key:
		return heartbeat.ErrNotAuthorisedToTick
	case !h.idle.Allow():
		return errIdleRate
	}
	return nil
}

// remoteSink publishes what the acceptor accepted and completes the
// receipts of the messages it sequenced.
type remoteSink struct{ s *Service }

func (k remoteSink) Publish(pub heartbeat.Publication) {
	k.s.pub.Publish(pub)
	k.s.remote.ticked(pub.Meta.Instance, pub.Tick.Proof.Signer)
	if len(pub.Entries) > 0 {
		k.s.remote.accepted(pub)
	}
}

// handleSeq serves the lumSeq member (see the top of this file).
func (s *Service) handleSeq(ctx context.Context, p *api.PeerInfo, msg *api.Message) ([]byte, error) {
	body, _ := msg.Member(SeqMember)
	o, ok := body.(*jsjson.Object)
	if !ok {
		return nil, errors.New("invalid: lumSeq needs an object")
	}
	op, _ := getString(o, "op")
	holder, _ := getString(o, "holder")
	if s.cfg.Remote.Disabled {
		return nil, errRemoteDisabled
	}
	if p == nil || p.Outbound {
		return nil, errors.New("invalid: lumSeq is for clients")
	}
	if holder == "" || !s.conn(p).peer.LoggedIn(holder) {
		return nil, errors.New("auth-required: log in as the holder first")
	}
	inst, _ := getString(o, "instance")
	switch op {
	case "mark", "append", "tick":
	default:
		if !s.worlds.hosted(inst) {
			return nil, errors.New("invalid: unknown instance")
		}
	}
	now := s.clk.Now()
	switch op {
	case "acquire":
		if err := s.authorizeRemote(ctx, inst, holder, now); err != nil {
			return nil, err
		}
		ttl := s.remoteTTL(o)
		min, _ := getUint(o, "min")
		// The relay's own host stays off while the remote holds the lease.
		s.rlease.claim(inst, now.Add(ttl+s.cfg.Remote.Grace))
		if cur, ok, err := s.lease.Current(ctx, inst); err == nil && ok && cur.Holder == s.relayID {
			_ = s.lease.Release(ctx, cur)
			s.logger.Info("service: handing a world's metronome to a remote", "instance", inst, "holder", holder)
		}
		g, err := s.lease.Acquire(ctx, inst, holder, ttl, min)
		if err != nil {
			return nil, seqErr(err)
		}
		s.remote.setHolder(inst, holder, p, g.Epoch)
		s.logger.Info("service: remote metronome acquired", "instance", inst, "holder", holder, "epoch", g.Epoch)
		return okFrame(msg.ID, SeqMember, grantJSON(g)), nil
	case "renew":
		epoch, _ := getUint(o, "epoch")
		ttl := s.remoteTTL(o)
		g := heartbeat.Grant{Instance: inst, Holder: holder, Epoch: epoch}
		if bound := s.stallBound(inst); s.remote.stalled(inst, holder, epoch, bound) {
			// Renewing but not ticking: let the world go to a standby.
			s.logger.Warn("service: remote metronome stopped ticking; not renewed", "instance", inst, "holder", holder, "epoch", epoch, "bound", bound)
			_ = s.lease.Release(ctx, g)
			s.remote.forget(g)
			return nil, errors.New(SeqLeaseLost)
		}
		if err := s.lease.Renew(ctx, g, ttl); err != nil {
			s.remote.clearHolder(inst, holder, epoch)
			return nil, seqErr(err)
		}
		s.rlease.claim(inst, now.Add(ttl+s.cfg.Remote.Grace))
		s.remote.setHolder(inst, holder, p, epoch)
		return replyFrame(msg.ID, "", "", nil), nil
	case "release":
		epoch, _ := getUint(o, "epoch")
		g := heartbeat.Grant{Instance: inst, Holder: holder, Epoch: epoch}
		if err := s.lease.Release(ctx, g); err != nil {
			return nil, seqErr(err)
		}
		s.remote.forget(g)
		return replyFrame(msg.ID, "", "", nil), nil
	case "current":
		g, ok, err := s.lease.Current(ctx, inst)
		if err != nil {
			return nil, seqErr(err)
		}
		if !ok {
			return okFrame(msg.ID, SeqMember, []byte("{}")), nil
		}
		return okFrame(msg.ID, SeqMember, grantJSON(g)), nil
	case "state":
		if err := s.authorizeRemote(ctx, inst, holder, now); err != nil {
			return nil, err
		}
		st, err := s.log.State(ctx, inst)
		if err != nil {
			return nil, seqErr(err)
		}
		return okFrame(msg.ID, SeqMember, st.AppendJSON(nil)), nil
	case "lookup":
		text, _ := getString(o, "id")
		id, err := heartbeat.ParseHash(text)
		if err != nil {
			return nil, errors.New("invalid: lookup needs a message id")
		}
		e, ok, err := s.log.Lookup(ctx, inst, id)
		if err != nil {
			return nil, seqErr(err)
		}
		if !ok {
			return okFrame(msg.ID, SeqMember, []byte("{}")), nil
		}
		b := append([]byte(`{"entry":`), e.AppendJSON(nil)...)
		return okFrame(msg.ID, SeqMember, append(b, '}')), nil
	case "mark":
		m, err := s.log.HolderMark(ctx, holder)
		if err != nil {
			return nil, seqErr(err)
		}
		b := append([]byte(`{"mark":`), jsjson.AppendNumber(nil, m)...)
		return okFrame(msg.ID, SeqMember, append(b, '}')), nil
	case "append":
		list, ok := o.Get("batches")
		items, isList := list.([]any)
		if !ok || !isList || len(items) == 0 || len(items) > 2*s.cfg.MaxWorlds+1 {
			return nil, errors.New("invalid: append needs a list of batches")
		}
		errs := make([]any, len(items))
		for i, v := range items {
			b, err := heartbeat.BatchFromValue(v)
			if err == nil {
				err = s.appendRemote(ctx, holder, b)
			}
			if err != nil {
				errs[i] = seqReason(err)
				s.logger.Debug("service: remote batch refused", "holder", holder, "instance", b.Instance, "err", err)
			}
		}
		res := &jsjson.Object{}
		res.Set("errs", errs)
		return okFrame(msg.ID, SeqMember, jsjson.Append(nil, res)), nil
	case "tick":
		v, _ := o.Get("batch")
		b, err := heartbeat.BatchFromValue(v)
		if err != nil {
			return nil, seqErr(err)
		}
		if b.Tick == nil || len(b.Entries) > 0 || b.Meta != nil || b.Reserve != 0 {
			return nil, errors.New("invalid: tick carries one idle tick")
		}
		if !s.worlds.hosted(b.Instance) {
			return nil, errors.New("invalid: unknown instance")
		}
		// The rate is judged before appendRemote spends a verification.
		if err := s.remote.allowIdle(b.Instance, holder); err != nil {
			return nil, err
		}
		if err := s.appendRemote(ctx, holder, b); err != nil {
			return nil, seqErr(err)
		}
		return nil, nil
	case "refuse":
		text, _ := getString(o, "id")
		id, err := heartbeat.ParseHash(text)
		if err != nil {
			return nil, errors.New("invalid: refuse needs a message id")
		}
		reason, _ := getString(o, "err")
		if h := s.remote.holder(inst); h == nil || h.key != holder {
			return nil, heartbeat.ErrNotSequencer
		}
		pm := s.remote.take(id)
		if pm == nil {
			return nil, nil
		}
		switch reason {
		case heartbeat.ErrNotSequencer.Error(), heartbeat.ErrQueueFull.Error(), heartbeat.ErrClosed.Error():
			s.remote.redispatch(pm)
		case heartbeat.ErrDuplicate.Error():
			// Sequenced before: answer with the original entry.
			if e, ok, err := s.log.Lookup(ctx, inst, id); err == nil && ok {
				meta := heartbeat.Meta{Rate: 1}
				if st, err := s.log.State(ctx, inst); err == nil && st.Meta != nil {
					meta = *st.Meta
				}
				pm.finish(heartbeat.ReceiptOf(&e, meta), fmt.Errorf("service: %w", heartbeat.ErrDuplicate))
			} else {
				s.remote.redispatch(pm)
			}
		default:
			pm.finish(heartbeat.Receipt{}, errors.New(heartbeat.Reason(errors.New(reason))))
		}
		return nil, nil
	}
	return nil, errors.New("invalid: unknown lumSeq op")
}

// authorizeRemote refuses a holder without inst's tick role (the reason is
// logged, the wire gets "restricted: not authorised to tick").
func (s *Service) authorizeRemote(ctx context.Context, inst, holder string, now time.Time) error {
	if err := s.authorize(ctx, inst, holder, heartbeat.RoleTick, now); err != nil {
		s.logger.Debug("service: remote metronome refused", "instance", inst, "holder", holder, "err", err)
		return heartbeat.ErrNotAuthorisedToTick
	}
	return nil
}

// appendRemote judges and appends one of a remote sequencer's batches.
func (s *Service) appendRemote(ctx context.Context, holder string, b heartbeat.Batch) error {
	limit := float64(s.clk.Now().Add(s.cfg.Remote.MaxAhead).UnixMicro()) / 1000
	if b.Instance == heartbeat.AllInstances {
		if b.Holder != holder || !s.remote.holds(holder) {
			return fmt.Errorf("service: a log-wide mark for %s: %w", b.Holder, heartbeat.ErrNotAuthorisedToTick)
		}
		if b.Reserve > limit {
			return fmt.Errorf("service: mark %v beyond the relay clock: %w", b.Reserve, heartbeat.ErrFuture)
		}
		return heartbeat.BatchErr(s.log.Append(ctx, []heartbeat.Batch{b}), 0)
	}
	if !s.worlds.hosted(b.Instance) {
		return fmt.Errorf("service: %s: %w", b.Instance, heartbeat.ErrUnknownInstance)
	}
	if b.Tick != nil {
		if b.Tick.Proof.Signer != holder {
			return fmt.Errorf("service: batch signed by %s, not %s: %w", b.Tick.Proof.Signer, holder, heartbeat.ErrNotAuthorisedToTick)
		}
		// Only the lease holder's batches are worth verifying.
		if h := s.remote.holder(b.Instance); h == nil || h.key != holder {
			return fmt.Errorf("service: %s does not hold %s: %w", holder, b.Instance, heartbeat.ErrNotAuthorisedToTick)
		}
		return s.acceptor.Accept(ctx, b)
	}
	// A batch without a tick carries only metadata or a reservation.
	if len(b.Entries) > 0 {
		return fmt.Errorf("%w: entries without the tick that covers them", heartbeat.ErrMalformed)
	}
	g, ok, err := s.lease.Current(ctx, b.Instance)
	if err != nil {
		return err
	}
	if !ok || g.Holder != holder {
		return fmt.Errorf("service: %s does not hold %s: %w", holder, b.Instance, heartbeat.ErrNotAuthorisedToTick)
	}
	if b.Reserve > limit {
		return fmt.Errorf("service: reservation %v beyond the relay clock: %w", b.Reserve, heartbeat.ErrFuture)
	}
	if b.Meta != nil {
		st, err := s.log.State(ctx, b.Instance)
		if err != nil {
			return err
		}
		if st.Meta != nil {
			return fmt.Errorf("%w: the instance has metadata", heartbeat.ErrMalformed)
		}
	}
	return heartbeat.BatchErr(s.log.Append(ctx, []heartbeat.Batch{b}), 0)
}

func (s *Service) remoteTTL(o *jsjson.Object) time.Duration {
	ms, ok := getUint(o, "ttl")
	if !ok || ms == 0 {
		return 500 * time.Millisecond
	}
	return min(max(time.Duration(ms)*time.Millisecond, s.cfg.Remote.MinTTL), s.cfg.Remote.MaxTTL)
}

func grantJSON(g heartbeat.Grant) []byte {
	o := &jsjson.Object{}
	o.Set("instance", g.Instance)
	o.Set("holder", g.Holder)
	o.Set("epoch", float64(g.Epoch))
	return jsjson.Append(nil, o)
}

// seqReason is the wire text of a remote sequencer's failure: heartbeat's
// reasons, plus the lease's and the log's own.
func seqReason(err error) string {
	switch {
	case errors.Is(err, heartbeat.ErrLeaseHeld):
		return SeqLeaseHeld
	case errors.Is(err, heartbeat.ErrLeaseLost):
		return SeqLeaseLost
	case errors.Is(err, heartbeat.ErrConflict):
		return SeqConflict
	case errors.Is(err, heartbeat.ErrUnknownInstance):
		return "invalid: unknown instance"
	}
	return heartbeat.Reason(err)
}

// Wire texts of the lease's and the log's refusals of a remote sequencer.
const (
	SeqLeaseHeld = "restricted: lease held by another holder"
	SeqLeaseLost = "restricted: lease lost"
	SeqConflict  = "invalid: time/seq order (append conflicts with the log head)"
)

func seqErr(err error) error { return errors.New(seqReason(err)) }

func getString(o *jsjson.Object, k string) (string, bool) {
	v, ok := o.Get(k)
	s, isStr := v.(string)
	return s, ok && isStr
}

func getUint(o *jsjson.Object, k string) (uint64, bool) {
	v, ok := o.Get(k)
	f, isNum := v.(float64)
	if !ok || !isNum || f < 0 || f != math.Trunc(f) || f > 1<<53 {
		return 0, false
	}
	return uint64(f), true
}
