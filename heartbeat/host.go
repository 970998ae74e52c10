package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/internal/sched"
	"github.com/krestianstvo/luminary/keys"
)

// HostConfig configures a [Host]. Zero durations and sizes take the
// defaults named in their comments.
type HostConfig struct {
	Signer     Signer     // required: the sequencer identity (lease holder, round signer)
	Log        Log        // required: the durable ordered log
	Lease      Lease      // required: who sequences which instance
	Blobs      Blobs      // snapshot data; nil refuses snapshot votes
	Verifier   Verifier   // default KeyVerifier(nil)
	Authorizer Authorizer // default OwnerTicks
	Sink       Sink       // receives every publication; nil discards
	Clock      clock.Clock
	// Elapsed returns monotonic time since an arbitrary origin. The default
	// measures Clock.Now() against its first reading, which is monotonic
	// with the system clock (time.Time carries a monotonic reading). Tests
	// whose fake wall clock jumps pass a separate monotonic source.
	Elapsed func() time.Duration
	Logger  *slog.Logger

	LeaseTTL     time.Duration // 500 ms: failover bound is about TTL + AcquireEvery + one period
	RenewEvery   time.Duration // LeaseTTL/3
	AcquireEvery time.Duration // 100 ms: how often a standby tries to take over
	ReserveAhead time.Duration // 500 ms: the reserved high-water mark runs this far ahead
	MaxStartWait time.Duration // 500 ms: wait at most this long for the wall clock to reach a term's base
	WindowPast   time.Duration // 120 s: oldest accepted client timestamp, relative to the host clock
	WindowFuture time.Duration // 30 s: newest accepted client timestamp
	DrainTimeout time.Duration // 5 s: bound on finishing queued work at shutdown

	MaxInstances     int // 10,000 hosted instances
	MaxQueue         int // 10,000 queued requests per instance, then ErrQueueFull
	MaxBatch         int // 4,096 entries per instance per round
	MaxPayload       int // 64 KiB per message payload
	SnapshotQuorum   int // 2 matching votes (or all present members when fewer are present)
	MaxSnapshotBytes int // 16 MiB
	MaxVotes         int // 1,024 pending votes per instance
	MaxPresence      int // 10,000 joined clients per instance, then joins fail with ErrTooLarge
}

func (c HostConfig) withDefaults() (HostConfig, error) {
	if c.Signer == nil || c.Log == nil || c.Lease == nil {
		return c, errors.New("heartbeat: host needs Signer, Log and Lease")
	}
	if c.Verifier == nil {
		c.Verifier = KeyVerifier(nil)
	}
	if c.Authorizer == nil {
		c.Authorizer = OwnerTicks
	}
	if c.Clock == nil {
		c.Clock = clock.System()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.LeaseTTL, 500*time.Millisecond)
	def(&c.RenewEvery, c.LeaseTTL/3)
	def(&c.AcquireEvery, 100*time.Millisecond)
	def(&c.ReserveAhead, 500*time.Millisecond)
	def(&c.MaxStartWait, 500*time.Millisecond)
	def(&c.WindowPast, 120*time.Second)
	def(&c.WindowFuture, 30*time.Second)
	def(&c.DrainTimeout, 5*time.Second)
	defInt := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	defInt(&c.MaxInstances, 10000)
	defInt(&c.MaxQueue, 10000)
	defInt(&c.MaxBatch, 4096)
	defInt(&c.MaxPayload, 64<<10)
	defInt(&c.SnapshotQuorum, 2)
	defInt(&c.MaxSnapshotBytes, 16<<20)
	defInt(&c.MaxVotes, 1024)
	defInt(&c.MaxPresence, 10000)
	if c.MaxPayload > MaxPayload {
		c.MaxPayload = MaxPayload
	}
	return c, nil
}

// InstanceConfig names an instance a host serves. Name, Rate and TPS are
// used only when the instance is created; an existing instance keeps its
// stored metadata.
type InstanceConfig struct {
	Instance string  // owner public key text
	Name     string  // display name
	Rate     float64 // time scale, default 1, in [1/64, 64]
	TPS      int     // ticks per second, default 20, in [1, 60]
}

// Sink receives what a host publishes: durable entries with the tick that
// covers them, and idle ticks. Publish is called from the stepping
// goroutine and must not block (queue and return).
type Sink interface {
	Publish(p Publication)
}

// A RoundSink is a [Sink] that takes a round's publications in one call.
// A host whose Sink is a RoundSink hands it each round whole, after every
// instance of the round is settled, so that a round is never written out
// in pieces (the instances of a later piece would reach followers one
// write later than the rest, which they see as jitter). The slice is the
// host's: it is reused for the next round, so the sink copies what it
// keeps (the publications themselves are the sink's).
type RoundSink interface {
	Sink
	PublishRound(ps []Publication)
}

// SinkFunc adapts a function to [Sink].
type SinkFunc func(Publication)

// Publish calls f.
func (f SinkFunc) Publish(p Publication) { f(p) }

// Publication is one instance's output of one round.
type Publication struct {
	Meta    Meta
	Entries []Entry // newly durable entries, in order (may be empty)
	Tick    Tick    // positioned right after the last entry (or the head, when idle)
	Stored  bool    // the tick is a stored checkpoint (it is whenever Entries is non-empty)
}

// Host runs sequencer terms for the instances it serves: it competes for
// each instance's lease, and while it holds it, it admits messages and
// presence changes, orders them, ticks at the instance's rate, signs one
// Merkle round per step over all its instances' ticks, appends durably, and
// only then acknowledges and publishes.
//
// The pure core is [Sequencer]; Host does the I/O. Drive it with [Host.Run]
// in production, or call [Host.Step] from a test's own loop (deterministic
// with a fake clock and [MemLog]).
type Host struct {
	cfg     HostConfig
	holder  string
	elapsed func() time.Duration
	kick    chan struct{}

	mu     sync.Mutex
	insts  map[string]*hosted
	sorted []*hosted // insts in instance order, for list; nil after Add
	closed bool

	stepMu sync.Mutex
	fatal  error
	// Owned by Step: this host's log-wide reserved mark as it found it in
	// the log (left by an earlier process with the same key) and as it made
	// it durable since.
	inherited   float64
	inheritRead bool
	wide        float64
	renewing    bool              // a renewal of wide is being appended in the background
	renewed     chan renewOutcome // its outcome (capacity 1)
	// Step's scratch, reused round after round (5,000 worlds at 20 ticks/s
	// allocated 40 MB/s in these alone).
	workBuf  []stepWork
	recBuf   []TickRecord
	roundBuf []Publication

	stats struct {
		rounds, ticks, entries, stored, stepDowns atomic.Uint64
	}
}

// HostStats are cumulative counters for metrics (package api exports them).
type HostStats struct {
	Rounds    uint64 // steps that signed a round
	Ticks     uint64 // ticks published (checkpoints and idle)
	Entries   uint64 // entries made durable
	Stored    uint64 // checkpoint ticks stored
	StepDowns uint64 // terms ended by a lost lease or a refused append
}

// Stats returns the host's counters.
func (h *Host) Stats() HostStats {
	return HostStats{Rounds: h.stats.rounds.Load(), Ticks: h.stats.ticks.Load(), Entries: h.stats.entries.Load(),
		Stored: h.stats.stored.Load(), StepDowns: h.stats.stepDowns.Load()}
}

type hosted struct {
	ic InstanceConfig

	// Guarded by Host.mu.
	accepting bool
	meta      Meta
	queue     []*pending
	inflight  map[Hash]*pending
	headSeq   uint64
	present   int
	snapSeq   uint64
	tally     *VoteTally

	// Owned by the stepping goroutine.
	active      bool
	grant       Grant
	term        *TermStart
	metaNew     bool
	seq         *Sequencer
	epochEntry  *Entry
	sequenced   bool // this process has run a term of the instance (see Host.bound)
	presence    map[string]bool
	startAt     time.Duration
	nextDue     time.Duration
	nextRenew   time.Duration
	nextAcquire time.Duration
}

type pending struct {
	kind    Kind // KindMessage, KindJoin, KindLeave, KindSnapshot, or 0 for a presence sync
	msg     Message
	id      Hash
	client  string
	info    string
	clients []string
	ref     uint64
	refHash Hash
	voters  []string
	done    []func(Receipt, error)
}

func (p *pending) finish(r Receipt, err error) {
	for _, d := range p.done {
		if d != nil {
			d(r, err)
		}
	}
}

// NewHost returns a host serving no instances yet.
func NewHost(cfg HostConfig) (*Host, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	h := &Host{cfg: cfg, holder: cfg.Signer.Public(), kick: make(chan struct{}, 1), insts: map[string]*hosted{},
		renewed: make(chan renewOutcome, 1)}
	h.elapsed = cfg.Elapsed
	if h.elapsed == nil {
		start := cfg.Clock.Now()
		h.elapsed = func() time.Duration { return cfg.Clock.Now().Sub(start) }
	}
	return h, nil
}

// Holder returns the host's key text.
func (h *Host) Holder() string { return h.holder }

// Add starts serving an instance: the host competes for its lease from the
// next step on.
func (h *Host) Add(ic InstanceConfig) error {
	if _, err := keys.ParsePublic(ic.Instance); err != nil {
		return fmt.Errorf("heartbeat: instance id: %w", err)
	}
	if ic.Rate == 0 {
		ic.Rate = 1
	}
	if ic.TPS == 0 {
		ic.TPS = defaultTPS
	}
	m := Meta{Instance: ic.Instance, Name: ic.Name, Start: 1, Rate: ic.Rate, TPS: ic.TPS}
	if err := m.validate(); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	if _, ok := h.insts[ic.Instance]; ok {
		return nil
	}
	if len(h.insts) >= h.cfg.MaxInstances {
		return fmt.Errorf("heartbeat: %d instances hosted: %w", len(h.insts), ErrTooLarge)
	}
	h.sorted = nil
	h.insts[ic.Instance] = &hosted{ic: ic, inflight: map[Hash]*pending{}, tally: NewVoteTally()}
	h.wake()
	return nil
}

// Status is a snapshot of a host's view of one instance.
type Status struct {
	Active bool   // this host sequences the instance
	Epoch  uint64 // its epoch while active
	Seq    uint64 // last durable seq known to the host
	Meta   Meta
}

// Status reports on an instance the host serves.
func (h *Host) Status(instance string) (Status, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	in := h.insts[instance]
	if in == nil {
		return Status{}, false
	}
	st := Status{Active: in.accepting, Seq: in.headSeq, Meta: in.meta}
	if in.accepting {
		st.Epoch = in.grant.Epoch
	}
	return st, true
}

func (h *Host) wake() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// Submit admits an external message. done is called exactly once: with the
// receipt once the message is durable in the log (at most one round later),
// with the existing receipt and [ErrDuplicate] when it was already
// sequenced, or with the reason it was refused. done may run on the calling
// goroutine (refusals, duplicates) or on the stepping goroutine, and must
// not block.
//
// Checks, cheapest first: field shapes and sizes; the client timestamp
// against the host clock window (-WindowPast, +WindowFuture); whether this
// host sequences the instance; duplicates (in flight, then durable); the
// author's signature; the author's message role.
func (h *Host) Submit(ctx context.Context, m Message, done func(Receipt, error)) {
	if done == nil {
		done = func(Receipt, error) {}
	}
	if err := m.validate(h.cfg.MaxPayload); err != nil {
		done(Receipt{}, err)
		return
	}
	now := h.cfg.Clock.Now()
	ts := time.UnixMilli(m.TS)
	if ts.Before(now.Add(-h.cfg.WindowPast)) || ts.After(now.Add(h.cfg.WindowFuture)) {
		done(Receipt{}, fmt.Errorf("heartbeat: ts %d vs host %d: %w", m.TS, now.UnixMilli(), ErrTimestampWindow))
		return
	}
	id := m.ID()
	if h.attach(m.Instance, id, done) {
		return
	}
	if e, ok, err := h.cfg.Log.Lookup(ctx, m.Instance, id); err != nil {
		done(Receipt{}, err)
		return
	} else if ok {
		done(h.receipt(&e), fmt.Errorf("heartbeat: message %s at seq %d: %w", id, e.Seq, ErrDuplicate))
		return
	}
	if err := m.Verify(h.cfg.Verifier); err != nil {
		done(Receipt{}, err)
		return
	}
	if err := h.cfg.Authorizer.Authorize(ctx, m.Instance, m.Author, RoleMessage, now); err != nil {
		done(Receipt{}, fmt.Errorf("heartbeat: %s may not send to %s: %w: %w", m.Author, m.Instance, ErrNotAuthorised, err))
		return
	}
	h.enqueue(m.Instance, &pending{kind: KindMessage, msg: m, id: id, done: []func(Receipt, error){done}})
}

// SubmitWait is Submit that waits for the outcome.
func (h *Host) SubmitWait(ctx context.Context, m Message) (Receipt, error) {
	type res struct {
		r   Receipt
		err error
	}
	ch := make(chan res, 1)
	h.Submit(ctx, m, func(r Receipt, err error) { ch <- res{r, err} })
	select {
	case x := <-ch:
		return x.r, x.err
	case <-ctx.Done():
		return Receipt{}, ctx.Err()
	}
}

// attach joins a submission to an identical one in flight. It reports true
// when done has been taken care of (attached or refused).
func (h *Host) attach(instance string, id Hash, done func(Receipt, error)) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	in, err := h.acceptingLocked(instance)
	if err != nil {
		defer done(Receipt{}, err)
		return true
	}
	if p := in.inflight[id]; p != nil {
		p.done = append(p.done, done)
		return true
	}
	return false
}

// Config returns the host's configuration with every default filled in.
func (h *Host) Config() HostConfig { return h.cfg }

func (h *Host) acceptingLocked(instance string) (*hosted, error) {
	if h.closed {
		return nil, ErrClosed
	}
	in := h.insts[instance]
	if in == nil || !in.accepting {
		return nil, fmt.Errorf("heartbeat: instance %s: %w", instance, ErrNotSequencer)
	}
	return in, nil
}

func (h *Host) enqueue(instance string, p *pending) {
	h.mu.Lock()
	in, err := h.acceptingLocked(instance)
	if err == nil && p.kind == KindMessage {
		if q := in.inflight[p.id]; q != nil {
			q.done = append(q.done, p.done...)
			h.mu.Unlock()
			return
		}
	}
	if err == nil && len(in.queue) >= h.cfg.MaxQueue {
		err = fmt.Errorf("heartbeat: %d queued for %s: %w", len(in.queue), instance, ErrQueueFull)
	}
	if err != nil {
		h.mu.Unlock()
		p.finish(Receipt{}, err)
		return
	}
	in.queue = append(in.queue, p)
	if p.kind == KindMessage {
		in.inflight[p.id] = p
	}
	h.mu.Unlock()
	h.wake()
}

func (h *Host) receipt(e *Entry) Receipt {
	h.mu.Lock()
	meta := Meta{Rate: 1}
	if m := h.insts[e.Instance]; m != nil {
		meta = m.meta
	}
	h.mu.Unlock()
	return ReceiptOf(e, meta)
}

// Join records that client joined the instance: one KindJoin entry, emitted
// once (a join of a present client completes with [ErrDuplicate] and no
// entry). info is optional client data (≤ 1 KiB). Presence is per key: the
// caller counts connections of one key and joins/leaves on the first/last.
func (h *Host) Join(ctx context.Context, instance, client, info string, done func(Receipt, error)) {
	if err := checkKeyText("client", client); err != nil {
		done(Receipt{}, err)
		return
	}
	if len(info) > 1024 {
		done(Receipt{}, fmt.Errorf("heartbeat: client info: %w", ErrTooLarge))
		return
	}
	h.enqueue(instance, &pending{kind: KindJoin, client: client, info: info, done: []func(Receipt, error){done}})
}

// Leave records that client left: one KindLeave entry if it was present.
func (h *Host) Leave(ctx context.Context, instance, client string, done func(Receipt, error)) {
	if err := checkKeyText("client", client); err != nil {
		done(Receipt{}, err)
		return
	}
	h.enqueue(instance, &pending{kind: KindLeave, client: client, done: []func(Receipt, error){done}})
}

// SyncPresence makes the logged presence equal clients: it emits a leave
// for every logged client not listed and a join for every listed client not
// logged (in sorted order). Relays call it when they start serving an
// instance whose previous sequencer may have logged clients that are gone.
func (h *Host) SyncPresence(ctx context.Context, instance string, clients []string, done func(Receipt, error)) {
	for _, c := range clients {
		if err := checkKeyText("client", c); err != nil {
			done(Receipt{}, err)
			return
		}
	}
	cs := slices.Clone(clients)
	slices.Sort(cs)
	h.enqueue(instance, &pending{kind: 0, clients: slices.Compact(cs), done: []func(Receipt, error){done}})
}

// Step runs one round: lease upkeep, term starts, then for every instance
// it sequences, the queued requests and due ticks; one round signature; one
// durable append; then receipts and publications. It returns how long the
// caller may wait before the next step (0 when work is queued). An error is
// fatal (a failed durable write or signature): the host must be discarded.
func (h *Host) Step(ctx context.Context) (time.Duration, error) {
	h.stepMu.Lock()
	defer h.stepMu.Unlock()
	if h.fatal != nil {
		return 0, h.fatal
	}
	if !h.inheritRead {
		m, err := h.cfg.Log.HolderMark(ctx, h.holder)
		if err != nil {
			return 0, fmt.Errorf("heartbeat: read reserved mark: %w", err)
		}
		h.inherited, h.inheritRead = m, true
	}
	el := h.elapsed()
	insts := h.list()
	// The loops over every instance yield now and then (see internal/sched):
	// with thousands of instances each runs for milliseconds.
	for i, in := range insts {
		h.maintain(ctx, in, el)
		sched.Yield(i)
	}

	if cap(h.workBuf) < len(insts) {
		h.workBuf = make([]stepWork, 0, len(insts)) // never grows below: works point into it
	}
	works := h.workBuf[:0]
	recs := h.recBuf[:0]
	defer func() {
		clear(works) // do not pin requests and entries until the next round
		h.recBuf = recs[:0]
	}()
	for i, in := range insts {
		sched.Yield(i)
		if !in.active || in.seq == nil {
			continue
		}
		works = append(works, stepWork{in: in, rec: -1})
		w := &works[len(works)-1]
		if in.epochEntry != nil {
			w.entries = append(w.entries, *in.epochEntry)
			in.epochEntry = nil
		}
		w.items = h.pop(in)
		w.results = h.stamp(in, w.items, el, &w.entries)
		due := el >= in.nextDue
		if len(w.entries) > 0 || due {
			w.rec = len(recs)
			at := el
			if due {
				// The next tick falls on the host's grid of this period, so
				// that every instance of one rate ticks in the same round,
				// under one signature, whenever it started; a late round
				// does not shift the cadence, and missed slots are skipped.
				period := in.seq.meta.Period()
				if len(w.entries) == 0 {
					// An idle tick is stamped at its slot, not at the moment
					// this round got the CPU: Croquet time advances by
					// exactly one period per tick, and a round that starts
					// late adds no jitter to the cadence followers see. The
					// sequencer keeps states increasing (a slot before the
					// last state issued stamps just after it).
					at = max((el/period)*period, in.nextDue)
				}
				in.nextDue = (el/period + 1) * period
			}
			recs = append(recs, in.seq.Tick(at))
		}
		w.batch = Batch{Instance: in.ic.Instance, Entries: w.entries}
		if in.metaNew {
			m := in.seq.Meta()
			w.batch.Meta = &m
		}
		w.write = !w.batch.empty()
	}
	// One reserved mark for the whole host (see doc.go): when any term's
	// last issued state comes within half of ReserveAhead of it, raise it
	// to the highest last issued state plus ReserveAhead. At 20 ticks/s
	// that is one small write every ReserveAhead/2 for all instances
	// together. While every state issued so far is still covered, the
	// write goes to the log in the background, so that no round waits for
	// its fsync; a state not covered (a term's first, or a renewal slower
	// than ReserveAhead/2) puts the mark in this round's own append.
	if err := h.collectRenewal(false); err != nil {
		return 0, h.fail(err, works2pending(works))
	}
	var wide float64
	covered := true
	for i := range works {
		w := &works[i]
		w.in.seq.Reserved(h.wide)
		if _, need := w.in.seq.Reservation(); need {
			wide = max(wide, w.in.seq.LastState()+float64(h.cfg.ReserveAhead.Microseconds())/1000)
		}
		covered = covered && w.in.seq.Covered()
	}
	if wide > 0 && covered {
		if !h.renewing {
			h.renewing = true
			go func(mark float64) {
				err := h.cfg.Log.Append(context.WithoutCancel(ctx), []Batch{{Instance: AllInstances, Holder: h.holder, Reserve: mark}})
				h.renewed <- renewOutcome{mark, BatchErr(err, 0)}
				select {
				case h.kick <- struct{}{}:
				default:
				}
			}(wide)
		}
		wide = 0
	}

	ticks, err := SignRound(h.cfg.Signer, recs)
	if len(recs) > 0 {
		h.stats.rounds.Add(1)
	}
	if err != nil {
		return 0, h.fail(err, works2pending(works))
	}
	var batches []Batch
	var idx []int
	if wide > 0 {
		batches = append(batches, Batch{Instance: AllInstances, Holder: h.holder, Reserve: wide})
	}
	for i := range works {
		w := &works[i]
		if w.rec >= 0 && len(w.entries) > 0 {
			t := ticks[w.rec]
			w.batch.Tick = &t
		}
		if w.write {
			idx = append(idx, i)
			batches = append(batches, w.batch)
		}
	}
	var appendErr error
	if len(batches) > 0 {
		appendErr = h.cfg.Log.Append(ctx, batches)
		var ae AppendError
		if appendErr != nil && ctx.Err() != nil && errors.Is(appendErr, ctx.Err()) {
			// Cancelled before reaching the log: nothing is durable, but the
			// sequencers have moved on; end those terms (nothing was acked).
			for _, i := range idx {
				h.stepDown(works[i].in, el, appendErr, works[i].items)
			}
			return 0, appendErr
		}
		if appendErr != nil && !errors.As(appendErr, &ae) {
			h.cfg.Logger.Error("heartbeat: durable append failed; host stops", "err", appendErr)
			return 0, h.fail(appendErr, works2pending(works))
		}
	}
	off := 0
	if wide > 0 {
		if err := BatchErr(appendErr, 0); err != nil {
			h.cfg.Logger.Error("heartbeat: log-wide reserved mark refused; host stops", "err", err)
			return 0, h.fail(err, works2pending(works))
		}
		h.wide, off = max(h.wide, wide), 1
	}
	batchErr := map[int]error{}
	rs, _ := h.cfg.Sink.(RoundSink)
	round := h.roundBuf[:0]
	defer func() {
		clear(round) // the sink copied what it keeps
		h.roundBuf = round[:0]
	}()
	for j, i := range idx {
		if err := BatchErr(appendErr, off+j); err != nil {
			batchErr[i] = err
		}
	}
	for i := range works {
		sched.Yield(i)
		w := &works[i]
		in := w.in
		if err := batchErr[i]; err != nil {
			h.cfg.Logger.Warn("heartbeat: append refused; stepping down", "instance", in.ic.Instance, "epoch", in.grant.Epoch, "err", err)
			h.stepDown(in, el, err, w.items)
			continue
		}
		in.seq.Reserved(h.wide)
		if w.batch.Meta != nil {
			in.metaNew = false
		}
		meta := in.seq.Meta()
		h.mu.Lock()
		in.meta = meta
		in.headSeq = in.seq.Head().Seq
		in.present = len(in.presence)
		for _, e := range w.entries {
			if e.Kind == KindSnapshot && e.Ref > in.snapSeq {
				in.snapSeq = e.Ref
			}
		}
		h.pruneVotesLocked(in)
		for _, p := range w.items {
			if p.kind == KindMessage {
				delete(in.inflight, p.id)
			}
		}
		h.mu.Unlock()
		for k, p := range w.items {
			r := w.results[k]
			if r.entry >= 0 {
				p.finish(ReceiptOf(&w.entries[r.entry], meta), nil)
			} else {
				p.finish(Receipt{Instance: in.ic.Instance}, r.err)
			}
		}
		h.stats.entries.Add(uint64(len(w.entries)))
		if w.batch.Tick != nil {
			h.stats.stored.Add(1)
		}
		if w.rec >= 0 && (w.write || in.seq.Covered()) {
			h.stats.ticks.Add(1)
			pub := Publication{Meta: meta, Entries: w.entries, Tick: ticks[w.rec], Stored: w.batch.Tick != nil}
			switch {
			case rs != nil:
				round = append(round, pub)
			case h.cfg.Sink != nil:
				h.cfg.Sink.Publish(pub)
			}
		}
	}
	if len(round) > 0 {
		rs.PublishRound(round)
	}
	// Measured from now, not from the round's start: a long round must
	// not push the next one late by its own duration.
	return h.nextWake(insts, h.elapsed()), nil
}

type itemResult struct {
	entry int // index into entries, -1 when the item made no entry
	err   error
}

// stepWork is what Step does for one instance in one round.
type stepWork struct {
	in      *hosted
	items   []*pending
	results []itemResult
	entries []Entry
	rec     int // index in recs, -1 for none
	batch   Batch
	write   bool
}

func works2pending(ws []stepWork) []*pending {
	var out []*pending
	for i := range ws {
		out = append(out, ws[i].items...)
	}
	return out
}

// fail makes err fatal: every queued and popped request fails with it.
func (h *Host) fail(err error, popped []*pending) error {
	h.fatal = fmt.Errorf("heartbeat: host stopped: %w", err)
	h.mu.Lock()
	var all []*pending
	for _, in := range h.insts {
		all = append(all, in.queue...)
		in.queue = nil
		clear(in.inflight)
		in.accepting = false
	}
	h.mu.Unlock()
	for _, p := range append(popped, all...) {
		p.finish(Receipt{}, h.fatal)
	}
	return h.fatal
}

// list returns the hosted instances in instance order. The slice is shared
// (built once after each Add) and must not be modified.
func (h *Host) list() []*hosted {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sorted != nil {
		return h.sorted
	}
	out := make([]*hosted, 0, len(h.insts))
	for _, in := range h.insts {
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b *hosted) int {
		switch {
		case a.ic.Instance < b.ic.Instance:
			return -1
		case a.ic.Instance > b.ic.Instance:
			return 1
		}
		return 0
	})
	h.sorted = out
	return out
}

func (h *Host) pop(in *hosted) []*pending {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := min(len(in.queue), h.cfg.MaxBatch)
	if n == 0 {
		return nil
	}
	items := slices.Clone(in.queue[:n])
	clear(in.queue[:n])
	in.queue = in.queue[n:]
	if len(in.queue) == 0 {
		in.queue = nil
	}
	return items
}

// stamp turns popped requests into entries.
func (h *Host) stamp(in *hosted, items []*pending, el time.Duration, entries *[]Entry) []itemResult {
	res := make([]itemResult, len(items))
	add := func(e Entry) int {
		*entries = append(*entries, in.seq.Append(e, el))
		return len(*entries) - 1
	}
	for i, p := range items {
		res[i].entry = -1
		switch p.kind {
		case KindMessage:
			m := p.msg
			res[i].entry = add(Entry{Kind: KindMessage, Author: m.Author, TS: m.TS, Nonce: m.Nonce, Payload: m.Payload, Sig: m.Sig})
		case KindJoin:
			if in.presence[p.client] {
				res[i].err = fmt.Errorf("heartbeat: %s already present: %w", p.client, ErrDuplicate)
				continue
			}
			if len(in.presence) >= h.cfg.MaxPresence {
				res[i].err = fmt.Errorf("heartbeat: %d clients present: %w", len(in.presence), ErrTooLarge)
				continue
			}
			in.presence[p.client] = true
			res[i].entry = add(Entry{Kind: KindJoin, Author: p.client, Payload: p.info})
		case KindLeave:
			if !in.presence[p.client] {
				res[i].err = fmt.Errorf("heartbeat: %s not present: %w", p.client, ErrDuplicate)
				continue
			}
			delete(in.presence, p.client)
			res[i].entry = add(Entry{Kind: KindLeave, Author: p.client})
		case KindSnapshot:
			h.mu.Lock()
			old := p.ref <= in.snapSeq
			h.mu.Unlock()
			if old {
				res[i].err = fmt.Errorf("heartbeat: snapshot %d not newer than accepted: %w", p.ref, ErrDuplicate)
				continue
			}
			res[i].entry = add(Entry{Kind: KindSnapshot, Ref: p.ref, RefHash: p.refHash, Payload: string(jsonStrings(p.voters))})
		case 0:
			want := map[string]bool{}
			for _, c := range p.clients {
				want[c] = true
			}
			var gone []string
			for c := range in.presence {
				if !want[c] {
					gone = append(gone, c)
				}
			}
			slices.Sort(gone)
			for _, c := range gone {
				delete(in.presence, c)
				res[i].entry = add(Entry{Kind: KindLeave, Author: c})
			}
			for _, c := range p.clients {
				if !in.presence[c] {
					in.presence[c] = true
					res[i].entry = add(Entry{Kind: KindJoin, Author: c})
				}
			}
		}
	}
	return res
}

// maintain does lease upkeep and term starts for one instance.
func (h *Host) maintain(ctx context.Context, in *hosted, el time.Duration) {
	inst := in.ic.Instance
	if !in.active {
		h.mu.Lock()
		closed := h.closed
		h.mu.Unlock()
		if closed || el < in.nextAcquire {
			return
		}
		in.nextAcquire = el + h.cfg.AcquireEvery
		if err := h.cfg.Authorizer.Authorize(ctx, inst, h.holder, RoleTick, h.cfg.Clock.Now()); err != nil {
			h.cfg.Logger.Warn("heartbeat: not authorised to tick", "instance", inst, "err", err)
			return
		}
		st, err := h.cfg.Log.State(ctx, inst)
		if err != nil {
			h.cfg.Logger.Error("heartbeat: read log state", "instance", inst, "err", err)
			return
		}
		g, err := h.cfg.Lease.Acquire(ctx, inst, h.holder, h.cfg.LeaseTTL, st.Head.Epoch+1)
		if err != nil {
			return
		}
		// Re-read after acquiring: whatever the previous holder appended
		// before losing the lease is now visible (and anything it tries
		// later fails the log's compare-and-append).
		if st, err = h.cfg.Log.State(ctx, inst); err != nil {
			_ = h.cfg.Lease.Release(ctx, g)
			return
		}
		meta := Meta{Instance: inst, Name: in.ic.Name, Rate: in.ic.Rate, TPS: in.ic.TPS, Created: h.cfg.Clock.Now().UnixMilli()}
		if st.Meta != nil {
			meta = *st.Meta
		}
		ts := &TermStart{Meta: meta, Holder: h.holder, Epoch: g.Epoch, Head: st.Head, LastState: st.LastState(),
			Reserved: h.bound(in, st), Wall: h.cfg.Clock.Now(), Elapsed: h.elapsed(), ReserveAhead: h.cfg.ReserveAhead}
		_, ahead := BaseState(*ts)
		in.active, in.grant, in.term, in.metaNew = true, g, ts, st.Meta == nil
		in.startAt = el + min(max(ahead, 0), h.cfg.MaxStartWait)
		in.nextRenew = el + h.cfg.RenewEvery
		in.presence = map[string]bool{}
		for _, c := range st.Presence {
			in.presence[c] = true
		}
		h.mu.Lock()
		in.accepting = true
		in.meta = meta
		in.headSeq = st.Head.Seq
		in.present = len(in.presence)
		if st.Snapshot != nil {
			in.snapSeq = st.Snapshot.Seq
		}
		h.mu.Unlock()
		h.cfg.Logger.Info("heartbeat: acquired instance", "instance", inst, "epoch", g.Epoch, "head", st.Head.Seq, "wait", in.startAt-el)
	}
	if el >= in.nextRenew {
		in.nextRenew = el + h.cfg.RenewEvery
		if err := h.cfg.Lease.Renew(ctx, in.grant, h.cfg.LeaseTTL); err != nil {
			h.cfg.Logger.Warn("heartbeat: lease lost; stepping down", "instance", inst, "epoch", in.grant.Epoch, "err", err)
			h.stepDown(in, el, err, nil)
			return
		}
	}
	if in.seq == nil && el >= in.startAt {
		// Read the log again: the term starts from the head as it is now
		// (with a working lease nothing changed during the wait; with a
		// broken one, the compare-and-append decides who continues).
		st, err := h.cfg.Log.State(ctx, inst)
		if err != nil {
			h.cfg.Logger.Error("heartbeat: read log state", "instance", inst, "err", err)
			h.stepDown(in, el, err, nil)
			return
		}
		if st.Head.Epoch >= in.grant.Epoch {
			h.stepDown(in, el, fmt.Errorf("log already at epoch %d: %w", st.Head.Epoch, ErrStaleEpoch), nil)
			return
		}
		ts := *in.term
		if st.Meta != nil {
			ts.Meta = *st.Meta
			in.metaNew = false
		}
		ts.Head, ts.LastState, ts.Reserved = st.Head, st.LastState(), h.bound(in, st)
		// Wall and elapsed read together, now: the base is the wall clock
		// at this elapsed reading. (The step's el was read before the
		// instances ahead of this one were served; pairing it with a later
		// wall reading would start the term that much in the future.)
		ts.Wall, ts.Elapsed = h.cfg.Clock.Now(), h.elapsed()
		in.term = nil
		seq, e := NewSequencer(ts)
		in.seq, in.epochEntry, in.sequenced = seq, &e, true
		in.nextDue = el
		in.presence = map[string]bool{}
		for _, c := range st.Presence {
			in.presence[c] = true
		}
		h.mu.Lock()
		in.meta = seq.Meta()
		in.headSeq = st.Head.Seq
		in.present = len(in.presence)
		if st.Snapshot != nil {
			in.snapSeq = st.Snapshot.Seq
		}
		h.mu.Unlock()
	}
}

// renewOutcome is the result of a background renewal of the host's mark.
type renewOutcome struct {
	mark float64
	err  error
}

// collectRenewal takes the outcome of a background renewal, if one is in
// flight: waiting for it when wait is set, otherwise only if it is there.
// A failed renewal is fatal, like any failed durable append.
func (h *Host) collectRenewal(wait bool) error {
	if !h.renewing {
		return nil
	}
	var o renewOutcome
	if wait {
		o = <-h.renewed
	} else {
		select {
		case o = <-h.renewed:
		default:
			return nil
		}
	}
	h.renewing = false
	if o.err != nil {
		h.cfg.Logger.Error("heartbeat: renewing the reserved mark failed; host stops", "err", o.err)
		return o.err
	}
	h.wide = max(h.wide, o.mark)
	return nil
}

// bound returns the reserved mark a new term of in must start above. For
// an instance last sequenced by another holder that is the instance's bound
// (its own mark and that holder's log-wide mark). For one last sequenced
// under this host's key it is the instance's mark and the log-wide mark this
// host inherited, plus the mark it has made durable since only if this
// process sequenced the instance itself: the renewals this process made for
// other instances cover nothing of this one, and counting them would start
// every term up to ReserveAhead ahead of the wall clock.
func (h *Host) bound(in *hosted, st LogState) float64 {
	if st.Holder != h.holder {
		return st.Bound()
	}
	b := max(st.Reserved, h.inherited)
	if in.sequenced {
		b = max(b, h.wide)
	}
	return b
}

// stepDown ends the term: everything queued or popped fails with
// ErrNotSequencer (nothing of it was acknowledged), and the host goes back
// to competing for the lease.
func (h *Host) stepDown(in *hosted, el time.Duration, cause error, popped []*pending) {
	h.stats.stepDowns.Add(1)
	in.active, in.seq, in.term, in.epochEntry = false, nil, nil, nil
	in.nextAcquire = el + h.cfg.AcquireEvery
	h.mu.Lock()
	in.accepting = false
	queued := in.queue
	in.queue = nil
	clear(in.inflight)
	h.mu.Unlock()
	err := fmt.Errorf("heartbeat: term ended (%v): %w", cause, ErrNotSequencer)
	for _, p := range append(popped, queued...) {
		p.finish(Receipt{}, err)
	}
}

func (h *Host) nextWake(insts []*hosted, el time.Duration) time.Duration {
	next := time.Hour
	at := func(t time.Duration) {
		if d := t - el; d < next {
			next = max(d, 0)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, in := range insts {
		switch {
		case !in.active:
			if !h.closed {
				at(in.nextAcquire)
			}
		case in.seq == nil:
			at(in.startAt)
			at(in.nextRenew)
		default:
			if len(in.queue) > 0 {
				return 0
			}
			at(in.nextDue)
			at(in.nextRenew)
		}
	}
	return next
}

// Run drives the host until ctx is done: Step, then wait on the injected
// clock until the next step is due or work arrives. When ctx is done it
// shuts down (see [Host.Shutdown]) and returns nil; it returns a fatal Step
// error at once.
func (h *Host) Run(ctx context.Context) error {
	t := h.cfg.Clock.NewTimer(time.Hour)
	defer t.Stop()
	stepCtx := context.WithoutCancel(ctx) // a round in progress completes; cancellation only ends the loop
	for {
		next, err := h.Step(stepCtx)
		if err != nil {
			return err
		}
		due := h.elapsed() + next
		t.Reset(next)
		// A firing between the reading above and Reset is discarded by
		// Reset; if the due time has passed meanwhile, step at once.
		if next > 0 && h.elapsed() >= due {
			continue
		}
		select {
		case <-ctx.Done():
			return h.Shutdown(context.Background())
		case <-t.C():
		case <-h.kick:
		}
	}
}

// Shutdown stops admitting (new requests fail with [ErrClosed]), runs
// rounds until everything already queued is durable and acknowledged (at
// most DrainTimeout), fails what is left with ErrClosed, and releases every
// lease it holds so a standby takes over at once. Call it after Run has
// returned, or let Run call it.
func (h *Host) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, h.cfg.DrainTimeout)
	defer cancel()
	for ctx.Err() == nil && h.queued() {
		if _, err := h.Step(ctx); err != nil {
			return err
		}
	}
	h.stepMu.Lock()
	defer h.stepMu.Unlock()
	_ = h.collectRenewal(true) // no append outlives the host
	var left []*pending
	h.mu.Lock()
	for _, in := range h.insts {
		left = append(left, in.queue...)
		in.queue = nil
		clear(in.inflight)
		in.accepting = false
	}
	h.mu.Unlock()
	for _, p := range left {
		p.finish(Receipt{}, ErrClosed)
	}
	for _, in := range h.list() {
		if in.active {
			_ = h.cfg.Lease.Release(ctx, in.grant)
			in.active, in.seq = false, nil
		}
	}
	return h.fatal
}

// queued reports whether any instance with a running term has queued work.
func (h *Host) queued() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, in := range h.insts {
		if len(in.queue) > 0 && in.accepting {
			return true
		}
	}
	return false
}
