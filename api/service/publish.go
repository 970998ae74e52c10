package service

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/krestianstvo/luminary/api"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/internal/sched"
)

// publisher is the host's Sink: it queues publications without blocking
// the stepping goroutine and writes them to the graph, in order, from its
// own goroutine. Everything queued at one moment goes to the graph as one
// diff (a round); for a field written twice in that diff the higher state
// wins, as HAM would decide anyway, so a backlog of idle ticks collapses
// into the latest one.
//
// Rounds are pipelined: building a round's diff (the publishing
// goroutine), merging it (the graph's writer) and encoding its push frames
// (the graph's answerer) run on different goroutines, so a round can be
// built while the one before it is merged and encoded. At most
// PublishDepth rounds are being built, merged or encoded at once; beyond
// that the queue waits and collapses. Every round's push frames are held
// (api.Held) and released by one goroutine in the order the rounds were
// built, so followers receive rounds in order whatever the pipelining.
//
// Publications that carry entries are never dropped (their entries must
// reach the graph, where followers fetch gaps). Idle ticks are dropped when
// the queue holds MaxPublishQueue publications already; the next tick
// supersedes them.
//
// A round of idle ticks only is pushed with a playout delay: the graph
// holds it at once, but its push frames leave at the round's stamp plus the
// delay (at once if publishing took longer). Publishing a round costs
// milliseconds that vary from round to round (building the diff, the
// merge, encoding a frame per follower); released at a fixed offset from
// their stamps, ticks reach followers on a steady cadence. The delay adapts
// like a jitter buffer (playout): at least Config.TickPlayout, raised when
// a round is late to cover the 99th percentile of recent publishing times,
// at most Config.MaxTickPlayout.
// A round that carries entries is pushed as soon as it is in the graph,
// and the held rounds before it with it (in order).
type publisher struct {
	s     *Service
	max   int
	wake  chan struct{}
	slots chan struct{} // one per round being built, merged or encoded (PublishDepth)

	mu       sync.Mutex
	queue    []heartbeat.Publication
	spare    []heartbeat.Publication // the previous batch's array, reused
	inflight int                     // rounds taken off the queue and not yet released
	flushed  chan struct{}           // closed and replaced whenever nothing is queued or on its way

	playout *playout // owned by the releaser goroutine (one at a time)

	// Owned by the publishing goroutine.
	meta   map[string]bool   // instances whose MetaPuts were written by this process
	epochs map[string]uint64 // last epoch seen per instance
	puts   []heartbeat.Put   // scratch for one publication's writes
}

// round is one diff on its way through the graph: built by the publishing
// goroutine, answered by the graph's writer, then finished (counted,
// pushed) by the releaser in the order the rounds were built.
type round struct {
	held   heldPush  // the round's push frames (*api.Held)
	idle   bool      // idle ticks only: pushed with the playout delay
	stamp  float64   // the latest tick stamp in the round (HAM state, ms)
	due    time.Time // when a held round leaves (set once it is in the graph)
	states []float64 // every publication's tick stamp, for the latency metric
	terms  []string  // instances whose epoch changed in this round
	done   chan struct{}
	res    graph.PutResult
	err    error
}

// heldPush is what the releaser needs of an *api.Held.
type heldPush interface {
	Len() int
	Release()
}

func newPublisher(s *Service, maxQueue, depth int) *publisher {
	return &publisher{s: s, max: maxQueue, wake: make(chan struct{}, 1), slots: make(chan struct{}, max(depth, 1)),
		flushed: make(chan struct{}), meta: map[string]bool{}, epochs: map[string]uint64{},
		playout: newPlayout(s.cfg.TickPlayout, s.cfg.MaxTickPlayout)}
}

// playout is the delay from an idle round's stamp to its push: a jitter
// buffer. It never falls below its least (Config.TickPlayout). When a
// round takes longer to publish than the delay (thousands of worlds, a
// busy machine), the delay rises at once to the 99th percentile of the
// publishing times of the last playoutWindow idle rounds plus
// playoutMargin, at most its most (Config.MaxTickPlayout), so that rounds
// keep leaving at one offset from their stamps rather than each whenever
// it is ready; once they are faster it comes down by playoutDecay a
// round, which shortens a gap by no more than that. A rise lengthens one
// gap, so it happens only when a round is late anyway (a late round is
// itself a longer gap), never to add margin to rounds still on time. The
// percentile rather than the longest time: a few slow rounds (a burst of
// new worlds, a collection) go late instead of holding every round longer
// for the next 10 s, which costs more (rounds held longer hold their
// frames longer, and followers see every tick later).
type playout struct {
	least, most time.Duration
	cur         time.Duration
	took        []time.Duration // ring: publishing times of the last idle rounds
	next, n     int
	sorted      []time.Duration // scratch
}

const (
	playoutWindow = 200 // idle rounds remembered: 10 s at 20 ticks/s
	playoutMargin = 10 * time.Millisecond
	playoutDecay  = time.Millisecond
)

func newPlayout(least, most time.Duration) *playout {
	return &playout{least: least, most: max(most, least), cur: least,
		took: make([]time.Duration, playoutWindow), sorted: make([]time.Duration, 0, playoutWindow)}
}

// observe records that an idle round took d from its stamp to being in
// the graph with its push frames built, and returns the delay that round
// and the next are held for.
func (b *playout) observe(d time.Duration) time.Duration {
	if b.most <= b.least {
		return b.least
	}
	b.took[b.next] = d
	b.next = (b.next + 1) % len(b.took)
	b.n = min(b.n+1, len(b.took))
	b.sorted = append(b.sorted[:0], b.took[:b.n]...)
	slices.Sort(b.sorted)
	p99 := b.sorted[b.n-1-b.n/100] // the longest of 1 to 99 rounds, the 99th percentile of 100 or more
	target := min(max(b.least, p99+playoutMargin), b.most)
	switch {
	case d > b.cur && target > b.cur: // late: rise
		b.cur = target
	case target < b.cur:
		b.cur = max(target, b.cur-playoutDecay)
	}
	return b.cur
}

// Publish implements heartbeat.Sink.
func (p *publisher) Publish(pub heartbeat.Publication) {
	p.PublishRound([]heartbeat.Publication{pub})
}

// PublishRound implements heartbeat.RoundSink: a round is queued whole,
// so the writer never takes part of it.
func (p *publisher) PublishRound(ps []heartbeat.Publication) {
	p.s.m.observeRound(ps, p.s.clk.Now())
	dropped := 0
	p.mu.Lock()
	for i := range ps {
		if len(ps[i].Entries) == 0 && len(p.queue) >= p.max {
			dropped++
			continue
		}
		p.queue = append(p.queue, ps[i])
	}
	p.mu.Unlock()
	if dropped > 0 {
		p.s.m.ticksDropped.Add(float64(dropped))
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run writes queued publications until ctx ends, pushes the rounds on
// their way (at once once ctx is done), then returns. Call drain
// afterwards to write what is left.
func (p *publisher) run(ctx context.Context) {
	rounds := make(chan *round, cap(p.slots))
	released := make(chan struct{})
	go func() { defer close(released); p.releaser(ctx, rounds) }()
	defer func() { close(rounds); <-released }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		}
		p.submit(rounds)
	}
}

// drain writes everything queued now and returns once it is in the graph
// and pushed, without the playout delay (shutdown).
func (p *publisher) drain() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rounds := make(chan *round, cap(p.slots))
	released := make(chan struct{})
	go func() { defer close(released); p.releaser(ctx, rounds) }()
	p.submit(rounds)
	close(rounds)
	<-released
}

// idle returns a channel closed once everything queued so far is in the
// graph and pushed (at once when nothing is queued or on its way).
func (p *publisher) idle() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) == 0 && p.inflight == 0 {
		c := make(chan struct{})
		close(c)
		return c
	}
	return p.flushed
}

// settledLocked closes flushed when nothing is queued or on its way.
func (p *publisher) settledLocked() {
	if len(p.queue) == 0 && p.inflight == 0 {
		close(p.flushed)
		p.flushed = make(chan struct{})
	}
}

// submit builds a round from everything queued now and hands it to the
// graph, waiting while PublishDepth rounds are being built, merged or
// encoded.
func (p *publisher) submit(rounds chan<- *round) {
	p.mu.Lock()
	batch := p.queue
	p.queue, p.spare = p.spare[:0], nil
	if len(batch) > 0 {
		p.inflight++
	} else {
		p.settledLocked()
	}
	p.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	r, diff := p.build(batch)
	clear(batch) // do not pin the round's proofs and entries
	p.mu.Lock()
	if cap(batch) <= 2*p.max {
		p.spare = batch[:0]
	}
	p.mu.Unlock()

	p.slots <- struct{}{}
	rounds <- r // never blocks: it has room for every slot
	// Not the run's ctx: a publication taken off the queue must reach the
	// graph even when the service is stopping (its entries are
	// acknowledged already). The graph notifies subscribers after the
	// commit: a follower's get that subscribes a block and reads it must
	// see every entry either in the read or in a push (notifying before
	// the commit lost entries to that race). Derived: the log holds every
	// published entry durably and repair writes back whatever a crash
	// took from the graph, so this commit need not wait for an fsync of
	// its own (with the graph's write-ahead log, the next synced commit
	// carries it).
	p.s.db.PutAsync(graph.Derived(context.Background()), diff, r.held, func(res graph.PutResult, err error) {
		r.res, r.err = res, err
		close(r.done)
	})
	if _, ok := p.s.db.Store().(graph.AsyncMerger); !ok {
		<-r.done // PutAsync would merge concurrently: keep rounds in order
	}
}

// build turns a batch of publications into a round and its graph diff.
func (p *publisher) build(batch []heartbeat.Publication) (*round, graph.Graph) {
	diff := graph.Graph{}
	r := &round{held: &api.Held{}, idle: true, states: make([]float64, len(batch)), done: make(chan struct{})}
	for i := range batch {
		sched.Yield(i)
		pub := &batch[i]
		r.idle = r.idle && len(pub.Entries) == 0
		r.stamp = max(r.stamp, pub.Tick.State)
		r.states[i] = pub.Tick.State
		inst := pub.Meta.Instance
		if !p.meta[inst] {
			p.meta[inst] = true
			addPuts(diff, heartbeat.MetaPuts(pub.Meta))
		}
		if e := pub.Tick.Epoch; e != p.epochs[inst] {
			p.epochs[inst] = e
			r.terms = append(r.terms, inst)
		}
		p.puts = heartbeat.AppendPublicationPuts(p.puts[:0], *pub)
		addPuts(diff, p.puts)
	}
	clear(p.puts[:cap(p.puts)]) // do not pin tick texts and entries
	return r, diff
}

// releaser finishes the rounds in the order they were built: it waits for
// each to be in the graph, counts it and frees its slot, then pushes it —
// a round with entries at once (after every round before it), a round of
// idle ticks at its stamp plus the playout delay. Rounds waiting for their
// playout are held in build order; their number is bounded by the delay
// over the tick period. Once ctx is done nothing waits. It returns once
// rounds is closed and every round is pushed.
func (p *publisher) releaser(ctx context.Context, rounds <-chan *round) {
	var (
		building []*round // taken off rounds, not yet in the graph (build order)
		held     []*round // in the graph, waiting for their playout (build order)
		timer    clock.Timer
		timerFor *round
	)
	stopTimer := func() {
		if timer != nil {
			timer.Stop()
			timer, timerFor = nil, nil
		}
	}
	defer stopTimer()
	stopping := ctx.Done()
	push := func(n int) { // pushes the first n held rounds
		for _, r := range held[:n] {
			r.held.Release()
		}
		clear(held[:n])
		held = held[n:]
		p.mu.Lock()
		p.inflight -= n
		p.settledLocked()
		p.mu.Unlock()
	}
	for {
		// Push every held round whose time has come (all of them once
		// ctx is done).
		now := p.s.clk.Now()
		n := 0
		for n < len(held) && (ctx.Err() != nil || !held[n].due.After(now)) {
			n++
		}
		if n > 0 {
			push(n)
		}
		if rounds == nil && len(building) == 0 && len(held) == 0 {
			return
		}
		var timerC <-chan time.Time
		if len(held) > 0 {
			if timerFor != held[0] {
				stopTimer()
				timer, timerFor = p.s.clk.NewTimer(held[0].due.Sub(now)), held[0]
			}
			timerC = timer.C()
		}
		var doneC <-chan struct{}
		if len(building) > 0 {
			doneC = building[0].done
		}
		select {
		case r, ok := <-rounds:
			if !ok {
				rounds = nil
				continue
			}
			building = append(building, r)
		case <-doneC:
			r := building[0]
			building = building[1:]
			p.finish(r)
			<-p.slots
			held = append(held, r)
			if !p.waits(ctx, r) {
				push(len(held)) // this round goes now, after the ones before it
			}
		case <-timerC:
			timer, timerFor = nil, nil
		case <-stopping:
			stopping = nil // from now on nothing waits (ctx.Err above)
		}
	}
}

// waits reports whether r, just in the graph, is pushed after a playout
// delay, and sets its due time: idle ticks only, something to push, a
// delay configured, the service not stopping, and the delay not already
// over (counted as late).
func (p *publisher) waits(ctx context.Context, r *round) bool {
	if !r.idle || r.held.Len() == 0 || p.s.cfg.TickPlayout <= 0 || ctx.Err() != nil {
		return false
	}
	now := p.s.clk.Now()
	stamp := time.UnixMicro(int64(r.stamp * 1000))
	delay := p.playout.observe(now.Sub(stamp))
	p.s.m.playout.Set(delay.Seconds())
	r.due = stamp.Add(delay)
	if !r.due.After(now) {
		p.s.m.playoutLate.Inc()
		return false
	}
	return true
}

// finish records what the graph made of r and starts the terms it opens.
func (p *publisher) finish(r *round) {
	if r.err != nil {
		p.s.logger.Error("service: writing publications to the graph failed", "err", r.err, "publications", len(r.states))
		p.s.m.publishErrors.Inc()
	} else if len(r.res.Refused) > 0 {
		// Only a state too far in the future or a full deferral queue can
		// refuse our own writes: followers miss those fields.
		f := r.res.Refused[0]
		p.s.logger.Error("service: the graph refused published fields", "fields", len(r.res.Refused),
			"soul", f.Soul, "field", f.Field, "err", f.Err)
		p.s.m.publishErrors.Inc()
	} else {
		p.s.m.observePublished(r.states, p.s.clk.Now())
	}
	for _, inst := range r.terms {
		p.s.termStarted(inst)
	}
}

// repair writes to the graph the entries the log holds beyond the graph's
// lum/<I>/log head: a crash between the durable append and the graph write
// (kill -9) leaves acknowledged entries that followers could not fetch.
// It runs at start-up, before the host, for every hosted world.
func (s *Service) repair(ctx context.Context, inst string) error {
	st, err := s.log.State(ctx, inst)
	if err != nil || st.Meta == nil {
		return err
	}
	var from uint64 = 1
	if f, err := s.db.GetField(ctx, heartbeat.LogSoul(inst), "head"); err == nil {
		if n, ok := f.Value.AsNumber(); ok && n >= 0 {
			from = uint64(n) + 1
		}
	}
	if from > st.Head.Seq {
		return nil
	}
	n := 0
	diff := toGraph(heartbeat.MetaPuts(*st.Meta))
	for from <= st.Head.Seq {
		page, err := s.log.Read(ctx, inst, from, heartbeat.BlockSize)
		if err != nil {
			return err
		}
		if len(page.Entries) == 0 || len(page.Ticks) == 0 {
			break
		}
		pub := heartbeat.Publication{Meta: *st.Meta, Entries: page.Entries, Tick: page.Ticks[len(page.Ticks)-1], Stored: true}
		// The seq and time a publication adds to inbox nodes decorate
		// transient nodes (TransientSoul), gone after a restart: not
		// repaired.
		addPuts(diff, slices.DeleteFunc(heartbeat.PublicationPuts(pub), func(p heartbeat.Put) bool {
			_, inbox := inboxInstance(p.Soul)
			return inbox
		}))
		n += len(page.Entries)
		from = page.Entries[len(page.Entries)-1].Seq + 1
		if diff.Len() > 4096 {
			if _, err := s.db.Put(ctx, diff, nil); err != nil {
				return err
			}
			diff = graph.Graph{}
		}
	}
	if _, err := s.db.Put(ctx, diff, nil); err != nil {
		return err
	}
	s.logger.Info("service: wrote log entries missing from the graph", "instance", inst, "entries", n)
	return nil
}

// addPuts adds heartbeat puts to a graph diff; when a field is set twice,
// the higher state wins.
func addPuts(g graph.Graph, puts []heartbeat.Put) {
	for _, x := range puts {
		n := g[x.Soul]
		if n == nil {
			n = graph.NewNode(x.Soul)
			g[x.Soul] = n
		}
		if cur, ok := n.Fields[x.Field]; ok && cur.State >= x.State {
			continue
		}
		n.Fields[x.Field] = graph.Field{Value: valueOf(x.Value), State: x.State}
	}
}

// toGraph converts heartbeat puts to a graph diff.
func toGraph(puts []heartbeat.Put) graph.Graph {
	g := graph.Graph{}
	addPuts(g, puts)
	return g
}

func valueOf(v any) graph.Value {
	switch x := v.(type) {
	case string:
		return graph.String(x)
	case float64:
		return graph.Number(x)
	case bool:
		return graph.Bool(x)
	case heartbeat.Link:
		return graph.Link(x.Soul)
	}
	return graph.Null()
}
