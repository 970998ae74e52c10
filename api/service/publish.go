package service

import (
	"context"
	"sync"
	"time"

	"github.com/krestianstvo/luminary/api"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
)

// publisher is the host's Sink: it queues publications without blocking
// the stepping goroutine and writes them to the graph, in order, from its
// own goroutine. Everything queued at one moment goes to the graph as one
// diff (one durable commit); for a field written twice in that diff the
// higher state wins, as HAM would decide anyway, so a backlog of idle ticks
// collapses into the latest one.
//
// Publications that carry entries are never dropped (their entries must
// reach the graph, where followers fetch gaps). Idle ticks are dropped when
// the queue holds MaxPublishQueue publications already; the next tick
// supersedes them.
//
// A batch of idle ticks only is pushed with a playout delay
// (Config.TickPlayout): the graph holds it at once, but its push frames
// (api.Held) leave at the round's stamp plus the delay, or as soon as the
// next publication is queued, whichever comes first. Publishing a round
// costs a few milliseconds that vary from round to round (building the
// diff, the merge, encoding a frame per follower); released at a fixed
// offset from their stamps, ticks reach followers on a steady cadence.
// Rounds that carry entries are pushed at once, after the held ticks
// before them.
type publisher struct {
	s    *Service
	max  int
	wake chan struct{}

	mu      sync.Mutex
	queue   []heartbeat.Publication
	spare   []heartbeat.Publication // the previous batch's array, reused
	flushed chan struct{}           // closed and replaced whenever the queue is emptied into the graph

	// Owned by the publishing goroutine.
	meta   map[string]bool   // instances whose MetaPuts were written by this process
	epochs map[string]uint64 // last epoch seen per instance
}

func newPublisher(s *Service, max int) *publisher {
	return &publisher{s: s, max: max, wake: make(chan struct{}, 1), flushed: make(chan struct{}),
		meta: map[string]bool{}, epochs: map[string]uint64{}}
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

// run writes queued publications until ctx ends, then returns (call flush
// afterwards to write what is left).
func (p *publisher) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		}
		p.flush(ctx)
	}
}

// flush writes everything queued now. Once ctx is done, idle ticks are
// pushed without their playout delay.
func (p *publisher) flush(ctx context.Context) {
	p.mu.Lock()
	batch := p.queue
	p.queue, p.spare = p.spare[:0], nil
	done := p.flushed
	p.mu.Unlock()
	if len(batch) > 0 {
		p.write(ctx, batch)
	}
	clear(batch) // do not pin the round's proofs and entries
	p.mu.Lock()
	if cap(batch) <= 2*p.max {
		p.spare = batch[:0]
	}
	if len(p.queue) == 0 && done == p.flushed {
		close(p.flushed)
		p.flushed = make(chan struct{})
	}
	p.mu.Unlock()
}

// idle returns a channel closed once the queue has been emptied into the
// graph (at once when it is empty).
func (p *publisher) idle() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) == 0 {
		c := make(chan struct{})
		close(c)
		return c
	}
	return p.flushed
}

func (p *publisher) write(ctx context.Context, batch []heartbeat.Publication) {
	diff := graph.Graph{}
	var terms []string
	idle, stamp := true, 0.0
	for i := range batch {
		pub := &batch[i]
		idle = idle && len(pub.Entries) == 0
		stamp = max(stamp, pub.Tick.State)
		inst := pub.Meta.Instance
		if !p.meta[inst] {
			p.meta[inst] = true
			addPuts(diff, heartbeat.MetaPuts(pub.Meta))
		}
		if e := pub.Tick.Epoch; e != p.epochs[inst] {
			p.epochs[inst] = e
			terms = append(terms, inst)
		}
		addPuts(diff, heartbeat.PublicationPuts(*pub))
	}
	// Not ctx: a publication taken off the queue must reach the graph even
	// when the service is stopping (its entries are acknowledged already).
	// Put, which notifies subscribers after the commit: a follower's get
	// that subscribes a block and reads it must see every entry either in
	// the read or in a push (notifying before the commit lost entries to
	// that race). Derived: the log holds every published entry durably and
	// repair writes back whatever a crash took from the graph, so this
	// commit need not wait for an fsync of its own (with the graph's
	// write-ahead log, the next synced commit carries it).
	var origin any
	var held *api.Held
	if idle && p.s.cfg.TickPlayout > 0 && ctx.Err() == nil {
		held = &api.Held{}
		origin = held
	}
	if res, err := p.s.db.Put(graph.Derived(context.Background()), diff, origin); err != nil {
		p.s.logger.Error("service: writing publications to the graph failed", "err", err, "publications", len(batch))
		p.s.m.publishErrors.Inc()
	} else if len(res.Refused) > 0 {
		// Only a state too far in the future or a full deferral queue can
		// refuse our own writes: followers miss those fields.
		f := res.Refused[0]
		p.s.logger.Error("service: the graph refused published fields", "fields", len(res.Refused),
			"soul", f.Soul, "field", f.Field, "err", f.Err)
		p.s.m.publishErrors.Inc()
	} else {
		now := float64(p.s.clk.Now().UnixMicro()) / 1000
		for i := range batch {
			p.s.m.publishLatency.Observe(max(now-batch[i].Tick.State, 0) / 1000)
		}
	}
	for _, inst := range terms {
		p.s.termStarted(inst)
	}
	if held != nil {
		p.release(ctx, held, stamp)
	}
}

// heldPush is what release needs of an *api.Held.
type heldPush interface {
	Len() int
	Release()
}

// release pushes held at stamp (a HAM state, ms) plus the playout delay,
// or earlier when another publication is queued or ctx ends.
func (p *publisher) release(ctx context.Context, held heldPush, stamp float64) {
	defer held.Release()
	if held.Len() == 0 {
		return
	}
	at := time.UnixMicro(int64(stamp * 1000)).Add(p.s.cfg.TickPlayout)
	wait := at.Sub(p.s.clk.Now())
	if wait <= 0 {
		p.s.m.playoutLate.Inc()
		return
	}
	t := p.s.clk.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C():
	case <-ctx.Done():
	case <-p.wake:
		// Hand the wake-up back to run: a publication is waiting.
		select {
		case p.wake <- struct{}{}:
		default:
		}
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
		addPuts(diff, heartbeat.PublicationPuts(pub))
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
