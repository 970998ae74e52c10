package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// fanoutConfig configures the fanout mode.
type fanoutConfig struct {
	URL         string        `json:"url"`
	Label       string        `json:"label"`
	Subscribers int           `json:"subscribers"`
	Rates       []int         `json:"rates"`
	ValueSize   int           `json:"value_size"`
	Hello       bool          `json:"hello"`
	Strict      bool          `json:"strict"`
	StopOnFail  bool          `json:"stop_on_fail"`
	P99GoalMs   float64       `json:"p99_goal_ms"`
	RelayPID    int           `json:"relay_pid,omitempty"`
	Step        time.Duration `json:"-"`
	Drain       time.Duration `json:"-"`
	GetTimeout  time.Duration `json:"-"`
	DialTimeout time.Duration `json:"-"`
	Tick        time.Duration `json:"-"`
	MaxSend     time.Duration `json:"-"` // bound on one step's sending; 0 means 2×Step
	StepS       float64       `json:"step_s"`
	DrainS      float64       `json:"drain_s"`
	TickMs      float64       `json:"tick_ms"`
}

func (c *fanoutConfig) validate() error {
	switch {
	case c.Subscribers < 1 || c.Subscribers > 100000:
		return errors.New("luminary-load: --subs must be 1..100000")
	case len(c.Rates) == 0:
		return errors.New("luminary-load: --rates must list at least one rate")
	case c.ValueSize < 64 || c.ValueSize > 1<<24:
		return errors.New("luminary-load: --size must be 64..16777216 in fanout mode")
	case c.Step <= 0 || c.Drain < 0 || c.GetTimeout <= 0 || c.DialTimeout <= 0 || c.Tick <= 0:
		return errors.New("luminary-load: durations must be positive")
	}
	var total float64
	for _, r := range c.Rates {
		if r < 1 || r > 1000000 {
			return errors.New("luminary-load: each rate must be 1..1000000 puts/s")
		}
		total += float64(r) * c.Step.Seconds()
	}
	if total > 50_000_000 {
		return errors.New("luminary-load: rates × step exceed 50M puts; shorten --step")
	}
	c.StepS, c.DrainS, c.TickMs = c.Step.Seconds(), c.Drain.Seconds(), float64(c.Tick)/1e6
	return nil
}

// fanoutStep is the outcome of one rate step. Expected = Sent × subscribers
// connected at the step's start; Received counts distinct (subscriber, seq)
// deliveries that arrived before the step's drain ended; Latency is receive
// time minus the send time carried in the value.
type fanoutStep struct {
	Rate            int            `json:"rate"`
	Sent            uint64         `json:"sent"`
	SentPerSec      float64        `json:"sent_per_s"`
	Expected        uint64         `json:"expected"`
	Received        uint64         `json:"received"`
	DeliveredPct    float64        `json:"delivered_pct"`
	Duplicates      uint64         `json:"duplicates"`
	Frames          uint64         `json:"frames"` // frames that carried this step's deliveries
	Latency         latencySummary `json:"latency"`
	Acked           uint64         `json:"acked"`
	AckErrors       uint64         `json:"ack_errors"`
	AckLatency      latencySummary `json:"ack_latency"`
	DrainS          float64        `json:"drain_s"`
	Load1           float64        `json:"load1"`
	ToolCPUSeconds  float64        `json:"tool_cpu_s"`
	RelayCPUSeconds float64        `json:"relay_cpu_s"`
	Pass            bool           `json:"pass"`
}

type fanoutResult struct {
	Tool            string         `json:"tool"`
	Mode            string         `json:"mode"`
	Label           string         `json:"label"`
	Started         string         `json:"started"`
	Params          fanoutConfig   `json:"params"`
	Soul            string         `json:"soul"`
	Load1Start      float64        `json:"load1_start"`
	Load1End        float64        `json:"load1_end"`
	InitAcked       bool           `json:"init_acked"`
	InitErr         string         `json:"init_err,omitempty"`
	Subscribed      int            `json:"subscribed"`
	GetReplies      int            `json:"get_replies"`
	GetLatency      latencySummary `json:"get_latency"`
	Steps           []fanoutStep   `json:"steps"`
	HighestRateHeld int            `json:"highest_rate_held"`
	Late            uint64         `json:"late"`
	BadFrames       uint64         `json:"bad_frames"`
	ConnErrors      []string       `json:"conn_errors,omitempty"`
}

// ackGrace bounds how long the fanout writer waits for acks after the last
// step and how long an unacked put is remembered.
const ackGrace = 3 * time.Second

// seqPlan maps sequence numbers to rate steps.
type seqPlan struct {
	base  []uint64 // first seq of each step
	total uint64
}

func newSeqPlan(rates []int, step time.Duration) seqPlan {
	var sp seqPlan
	for _, r := range rates {
		sp.base = append(sp.base, sp.total)
		sp.total += uint64(math.Round(float64(r) * step.Seconds()))
	}
	return sp
}

func (sp seqPlan) stepOf(seq uint64) int {
	for i := len(sp.base) - 1; i >= 0; i-- {
		if seq >= sp.base[i] {
			return i
		}
	}
	return 0
}

// subscriber is one WebSocket that follows the soul.
type subscriber struct {
	p      *peer
	soul   string
	run    string
	getID  string
	strict bool
	plan   seqPlan
	stepRx []atomic.Uint64 // shared per-step delivery counters

	replied   atomic.Bool
	replyOnce sync.Once
	gotReply  chan struct{}
	getSent   time.Time
	getRTT    time.Duration

	mu     sync.Mutex
	seen   []uint64 // bitset over seqs
	hists  []*histogram
	counts []uint64
	dups   []uint64
	frames []uint64
	closed []bool
	late   uint64
	bad    atomic.Uint64
	dbuf   []delivery
}

func newSubscriber(p *peer, soul, run string, strict bool, plan seqPlan, stepRx []atomic.Uint64) *subscriber {
	n := len(plan.base)
	s := &subscriber{p: p, soul: soul, run: run, getID: newID(), strict: strict, plan: plan, stepRx: stepRx,
		gotReply: make(chan struct{}), seen: make([]uint64, (plan.total+63)/64),
		hists: make([]*histogram, n), counts: make([]uint64, n), dups: make([]uint64, n), frames: make([]uint64, n), closed: make([]bool, n)}
	for i := range s.hists {
		s.hists[i] = newHistogram()
	}
	return s
}

func (s *subscriber) onFrame(raw []byte) []message {
	now := time.Now()
	var ms []message
	if s.strict || !s.replied.Load() || bytes.Contains(raw, []byte(`"dam"`)) {
		ms = decodeAll(raw, &s.bad)
		for _, m := range ms {
			if m.At == s.getID && m.At != "" {
				s.replyOnce.Do(func() {
					s.getRTT = now.Sub(s.getSent)
					s.replied.Store(true)
					close(s.gotReply)
				})
			}
		}
	}
	ds := s.dbuf[:0]
	if s.strict {
		got, err := parseDeliveriesStrict(raw, s.soul, s.run)
		if err != nil {
			s.bad.Add(1)
		}
		ds = append(ds, got...)
	} else {
		ds = scanDeliveries(ds, raw, s.run)
	}
	s.dbuf = ds
	if len(ds) == 0 {
		return ms
	}
	nowNano := now.UnixNano()
	s.mu.Lock()
	counted := false
	for _, d := range ds {
		if d.seq >= s.plan.total {
			s.bad.Add(1)
			continue
		}
		k := s.plan.stepOf(d.seq)
		w, bit := d.seq/64, uint64(1)<<(d.seq%64)
		if s.seen[w]&bit != 0 {
			s.dups[k]++
			continue
		}
		s.seen[w] |= bit
		if s.closed[k] {
			s.late++
			continue
		}
		if !counted {
			s.frames[k]++
			counted = true
		}
		s.counts[k]++
		s.hists[k].record(time.Duration(nowNano - d.sentNano))
		s.stepRx[k].Add(1)
	}
	s.mu.Unlock()
	return ms
}

// closeStep stops counting step k and returns its tallies.
func (s *subscriber) closeStep(k int) (count, dups, frames uint64, h *histogram) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed[k] = true
	return s.counts[k], s.dups[k], s.frames[k], s.hists[k]
}

// fanWriter is the single writer of the fanout mode.
type fanWriter struct {
	p      *peer
	plan   seqPlan
	states *stateClock

	mu       sync.Mutex
	pending  map[string]fanPending
	ackHists []*histogram
	acked    []uint64
	ackErrs  []uint64
	initID   string
	initAck  chan struct{}
	initErr  string
	bad      atomic.Uint64
}

type fanPending struct {
	step int
	sent time.Time
}

func (w *fanWriter) onFrame(raw []byte) []message {
	ms := decodeAll(raw, &w.bad)
	now := time.Now()
	for i := range ms {
		m := &ms[i]
		kind := ackKind(m)
		if kind == 0 {
			continue
		}
		w.mu.Lock()
		if m.At == w.initID && w.initAck != nil {
			if kind < 0 {
				w.initErr = ackErr(m)
			}
			close(w.initAck)
			w.initAck = nil
		}
		pp, ok := w.pending[m.At]
		if ok {
			delete(w.pending, m.At)
			if kind < 0 {
				w.ackErrs[pp.step]++
			} else {
				w.acked[pp.step]++
				w.ackHists[pp.step].record(now.Sub(pp.sent))
			}
		}
		w.mu.Unlock()
	}
	return ms
}

func runFanout(ctx context.Context, cfg fanoutConfig) (*fanoutResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	res := &fanoutResult{Tool: "luminary-load", Mode: "fanout", Label: cfg.Label, Params: cfg,
		Started: time.Now().UTC().Format(time.RFC3339), Load1Start: load1()}
	run := newID()[:6]
	soul := "lload/" + run + "/fan"
	res.Soul = soul
	plan := newSeqPlan(cfg.Rates, cfg.Step)
	nsteps := len(cfg.Rates)
	stepRx := make([]atomic.Uint64, nsteps)
	dopts := dialOptions{url: cfg.URL, timeout: cfg.DialTimeout, hello: cfg.Hello, readLimit: 64 << 20}

	wp, err := dialPeer(ctx, dopts)
	if err != nil {
		return nil, err
	}
	w := &fanWriter{p: wp, plan: plan, states: newStateClock(), pending: map[string]fanPending{},
		ackHists: make([]*histogram, nsteps), acked: make([]uint64, nsteps), ackErrs: make([]uint64, nsteps),
		initID: newID(), initAck: make(chan struct{})}
	for i := range w.ackHists {
		w.ackHists[i] = newHistogram()
	}
	initAck := w.initAck
	var readers sync.WaitGroup
	var cemu sync.Mutex
	connErr := func(s string) {
		cemu.Lock()
		res.ConnErrors = append(res.ConnErrors, s)
		cemu.Unlock()
	}
	readers.Go(func() {
		if err := wp.run(w.onFrame); err != nil {
			connErr("writer read: " + err.Error())
		}
	})
	var subs []*subscriber
	defer func() {
		wp.close()
		for _, s := range subs {
			s.p.close()
		}
		readers.Wait()
	}()

	// Make the soul exist, then subscribe.
	if err := wp.sendBuilt(func(b []byte) []byte {
		return appendPut(b, w.initID, soul, "init", w.states.next(), "start")
	}); err != nil {
		return nil, fmt.Errorf("luminary-load: initial put: %w", err)
	}
	select {
	case <-initAck:
		w.mu.Lock()
		res.InitErr = w.initErr
		w.mu.Unlock()
		res.InitAcked = res.InitErr == ""
	case <-time.After(cfg.GetTimeout):
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	var smu sync.Mutex
	var dwg sync.WaitGroup
	sem := make(chan struct{}, 16)
	var dialErr error
	for range cfg.Subscribers {
		dwg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			p, err := dialPeer(ctx, dopts)
			if err != nil {
				smu.Lock()
				dialErr = err
				smu.Unlock()
				return
			}
			s := newSubscriber(p, soul, run, cfg.Strict, plan, stepRx)
			smu.Lock()
			subs = append(subs, s)
			smu.Unlock()
			readers.Go(func() {
				if err := p.run(s.onFrame); err != nil {
					connErr("subscriber read: " + err.Error())
				}
			})
			s.getSent = time.Now()
			if err := p.sendBuilt(func(b []byte) []byte { return appendGet(b, s.getID, soul) }); err != nil {
				connErr("subscriber get: " + err.Error())
			}
		})
	}
	dwg.Wait()
	if dialErr != nil && len(subs) == 0 {
		return nil, dialErr
	}
	if dialErr != nil {
		connErr("subscriber dial: " + dialErr.Error())
	}
	res.Subscribed = len(subs)
	getHist := newHistogram()
	deadline := time.NewTimer(cfg.GetTimeout)
	for _, s := range subs {
		select {
		case <-s.gotReply:
			res.GetReplies++
			getHist.record(s.getRTT)
		case <-deadline.C:
			deadline.Reset(0)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	deadline.Stop()
	res.GetLatency = getHist.summary()

	for k, rate := range cfg.Rates {
		st, err := runStep(ctx, cfg, w, subs, stepRx, k, rate, run, soul)
		if err != nil {
			connErr(err.Error())
		}
		res.Steps = append(res.Steps, st)
		if st.Pass && rate > res.HighestRateHeld {
			res.HighestRateHeld = rate
		}
		if ctx.Err() != nil || err != nil || (cfg.StopOnFail && !st.Pass) {
			break
		}
	}
	// Acks (gun.js acks after its disk flush, ~250 ms) may trail the last
	// step; wait a bounded time for them, then fill in every step's acks.
	ackWait := time.NewTimer(ackGrace)
	ackPoll := time.NewTicker(10 * time.Millisecond)
ackLoop:
	for {
		w.mu.Lock()
		left := len(w.pending)
		w.mu.Unlock()
		if left == 0 {
			break
		}
		select {
		case <-ackPoll.C:
		case <-ackWait.C:
			break ackLoop
		case <-ctx.Done():
			break ackLoop
		}
	}
	ackWait.Stop()
	ackPoll.Stop()
	w.mu.Lock()
	for k := range res.Steps {
		res.Steps[k].Acked, res.Steps[k].AckErrors = w.acked[k], w.ackErrs[k]
		res.Steps[k].AckLatency = w.ackHists[k].summary()
	}
	w.mu.Unlock()
	for _, s := range subs {
		s.mu.Lock()
		res.Late += s.late
		s.mu.Unlock()
		res.BadFrames += s.bad.Load()
	}
	res.BadFrames += w.bad.Load()
	res.Load1End = load1()
	return res, ctx.Err()
}

// runStep sends rate puts/s for cfg.Step, waits for the deliveries, and
// tallies the step.
func runStep(ctx context.Context, cfg fanoutConfig, w *fanWriter, subs []*subscriber,
	stepRx []atomic.Uint64, k, rate int, run, soul string) (fanoutStep, error) {
	st := fanoutStep{Rate: rate}
	cpu := startCPU(cfg.RelayPID)
	n := w.plan.total
	if k+1 < len(w.plan.base) {
		n = w.plan.base[k+1]
	}
	base := w.plan.base[k]
	n -= base

	tick := time.NewTicker(cfg.Tick)
	defer tick.Stop()
	start := time.Now()
	maxSend := cfg.MaxSend
	if maxSend <= 0 {
		maxSend = 2 * cfg.Step
	}
	sendDeadline := start.Add(maxSend)
	var sent uint64
	var sendErr error
	var last time.Time
send:
	for sent < n {
		select {
		case <-ctx.Done():
			break send
		case now := <-tick.C:
			if now.After(sendDeadline) {
				break send
			}
			due := min(n, uint64(now.Sub(start).Seconds()*float64(rate))+1)
			for sent < due {
				seq := base + sent
				id := newID()
				t := time.Now()
				field := "f" + strconv.FormatUint(seq, 10)
				value := makeValue(run, seq, t.UnixNano(), cfg.ValueSize)
				state := w.states.next()
				w.mu.Lock()
				w.pending[id] = fanPending{step: k, sent: t}
				w.mu.Unlock()
				if err := w.p.sendBuilt(func(b []byte) []byte { return appendPut(b, id, soul, field, state, value) }); err != nil {
					sendErr = fmt.Errorf("writer send: %w", err)
					break send
				}
				sent++
				last = time.Now()
			}
		}
	}
	st.Sent = sent
	if sent > 0 {
		st.SentPerSec = round1(float64(sent) / max(last.Sub(start).Seconds(), 1e-3))
	}
	st.Expected = sent * uint64(len(subs))

	drainStart := time.Now()
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	drainEnd := time.NewTimer(cfg.Drain)
	defer drainEnd.Stop()
drain:
	for stepRx[k].Load() < st.Expected {
		select {
		case <-poll.C:
		case <-drainEnd.C:
			break drain
		case <-ctx.Done():
			break drain
		}
	}
	st.DrainS = round3(time.Since(drainStart).Seconds())

	lat := newHistogram()
	for _, s := range subs {
		c, d, fr, h := s.closeStep(k)
		st.Received += c
		st.Duplicates += d
		st.Frames += fr
		lat.merge(h)
	}
	st.Latency = lat.summary()
	w.mu.Lock()
	for id, pp := range w.pending {
		if time.Since(pp.sent) > ackGrace {
			delete(w.pending, id) // never acked: forget, keep the map small
		}
	}
	w.mu.Unlock()
	st.ToolCPUSeconds, st.RelayCPUSeconds = cpu.stop()
	st.Load1 = load1()
	if st.Expected > 0 {
		st.DeliveredPct = float64(st.Received) * 100 / float64(st.Expected)
		st.DeliveredPct = float64(int64(st.DeliveredPct*100)) / 100
	}
	st.Pass = st.Expected > 0 && st.Received == st.Expected && sent == n &&
		float64(lat.quantile(0.99)) < cfg.P99GoalMs*float64(time.Millisecond)
	return st, sendErr
}
