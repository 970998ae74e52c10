package service

import (
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/krestianstvo/luminary/heartbeat"
)

// metrics holds the time service's Prometheus collectors and the per-world
// numbers behind /api/status.
//
// Tick lateness is measured as (relay wall clock when the host hands the
// tick to the graph writer) − (the tick's HAM state): the time from stamping
// a tick to publishing it, which includes signing the round and, for
// checkpoint ticks, the durable append. Cadence jitter is the deviation of
// the interval between consecutive idle ticks from the period (what a
// subscriber sees as uneven ticking).
type metrics struct {
	ticks          *prometheus.CounterVec // kind = idle | checkpoint
	idleTicks      prometheus.Counter     // ticks{kind="idle"}, bound once (20 a second per world)
	checkTicks     prometheus.Counter     // ticks{kind="checkpoint"}
	lateness       *roundHistogram        // observed by observeRound
	deviation      *roundHistogram        // observed by observeRound
	entries        *prometheus.CounterVec // kind = msg | join | leave | epoch | snapshot
	refused        *prometheus.CounterVec // reason prefix
	receiptLatency prometheus.Histogram
	publishLatency *roundHistogram // observed by the releaser (observePublished)
	publishErrors  prometheus.Counter
	ticksDropped   prometheus.Counter
	playoutLate    prometheus.Counter
	playout        prometheus.Gauge
	worldsGauge    prometheus.Gauge

	mu     sync.Mutex
	worlds map[string]*worldStats
}

// worldStats is one world's recent activity (bounded, and free of
// pointers but for lastTick: a relay holds one per world, and the
// collector scans every pointer of it at every cycle).
type worldStats struct {
	tickAt   rateWindow
	msgAt    rateWindow
	dev      ring[float64] // ms
	lastIdle float64       // state of the last idle tick
	lastTick heartbeat.Tick
	hasTick  bool
}

type ring[T any] struct {
	buf  []T
	next int
	full bool
}

func newRing[T any](n int) ring[T] { return ring[T]{buf: make([]T, n)} }

// rateWindow counts events in rateSlots slots of rateSlot each, enough for
// the rate over the last statusWindow however many events there are.
type rateWindow struct {
	slot [rateSlots]int64  // slot number (Unix time / rateSlot) each count belongs to
	n    [rateSlots]uint32 // events in that slot
}

const (
	statusWindow = 2 * time.Second
	rateSlot     = 100 * time.Millisecond
	rateSlots    = int(statusWindow/rateSlot) + 2
)

func (r *rateWindow) add(t time.Time) {
	s := t.UnixNano() / int64(rateSlot)
	i := int(s % int64(rateSlots))
	if r.slot[i] != s {
		r.slot[i], r.n[i] = s, 0
	}
	r.n[i]++
}

// rate returns the events per second in the statusWindow before now (the
// current, partial slot included, so the window spans between
// statusWindow and statusWindow+rateSlot).
func (r *rateWindow) rate(now time.Time) float64 {
	cur := now.UnixNano() / int64(rateSlot)
	n := 0
	for i := range r.slot {
		if age := cur - r.slot[i]; age >= 0 && age <= int64(statusWindow/rateSlot) {
			n += int(r.n[i])
		}
	}
	return float64(n) / statusWindow.Seconds()
}

func (r *ring[T]) add(v T) {
	r.buf[r.next] = v
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

func (r *ring[T]) all() []T {
	if r.full {
		return append(slices.Clone(r.buf[r.next:]), r.buf[:r.next]...)
	}
	return slices.Clone(r.buf[:r.next])
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns = "luminary"
	m := &metrics{
		ticks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "ticks_total",
			Help: "Ticks published by this relay's metronome, by kind (idle, or checkpoint covering new entries)."}, []string{"kind"}),
		lateness: newRoundHistogram(prometheus.BuildFQName(ns, "", "tick_lateness_seconds"),
			"Relay wall clock at publication minus the tick's HAM state (stamp to publish: signing and, for checkpoints, the durable append).",
			[]float64{.0001, .00025, .0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1}),
		deviation: newRoundHistogram(prometheus.BuildFQName(ns, "", "tick_interval_deviation_seconds"),
			"Absolute deviation of the interval between consecutive idle ticks from the tick period.",
			[]float64{.00001, .0001, .0005, .001, .002, .005, .01, .02, .05, .1}),
		entries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "entries_total",
			Help: "Log entries sequenced and published, by kind."}, []string{"kind"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "messages_refused_total",
			Help: "Inbound world messages refused by the sequencer, by reason prefix."}, []string{"reason"}),
		receiptLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "message_receipt_seconds",
			Help:    "Time from admitting an inbound message to its durable receipt.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5}}),
		publishLatency: newRoundHistogram(prometheus.BuildFQName(ns, "", "publish_seconds"),
			"Relay wall clock when a publication's graph write has returned minus its tick's HAM state (stamp to in the graph with its push frames built; the log holds the durable copy).",
			[]float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "publish_errors_total",
			Help: "Failed writes of publications to the graph."}),
		ticksDropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "ticks_dropped_total",
			Help: "Idle ticks not written to the graph because the publication queue was full."}),
		playoutLate: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "tick_playout_late_total",
			Help: "Rounds of idle ticks whose publication took longer than the tick playout delay, so they were pushed as soon as published (off the steady cadence; the delay then rises, up to --tick-playout-max)."}),
		playout: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "tick_playout_seconds",
			Help: "Current playout delay of idle ticks (at least --tick-playout; raised to cover the recent publishing time of rounds, at most --tick-playout-max)."}),
		worldsGauge: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "worlds",
			Help: "Worlds hosted by this relay."}),
		worlds: map[string]*worldStats{},
	}
	m.idleTicks, m.checkTicks = m.ticks.WithLabelValues("idle"), m.ticks.WithLabelValues("checkpoint")
	if reg != nil {
		reg.MustRegister(m.ticks, roundHistograms{m}, m.entries, m.refused, m.receiptLatency,
			m.publishErrors, m.ticksDropped, m.playoutLate, m.playout, m.worldsGauge)
	}
	return m
}

func (m *metrics) stats(inst string) *worldStats {
	w := m.worlds[inst]
	if w == nil {
		w = &worldStats{dev: newRing[float64](256)}
		m.worlds[inst] = w
	}
	return w
}

// observeRound records a round's publications. It runs on the host's
// stepping goroutine, so it must stay cheap for a round of thousands of
// worlds: one lock, counters added once, and the two tick histograms
// updated in place (roundHistogram) rather than through an atomic
// Observe per tick.
func (m *metrics) observeRound(ps []heartbeat.Publication, now time.Time) {
	nowMs := float64(now.UnixMicro()) / 1000
	idle := 0
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lateness.mu.Lock()
	defer m.lateness.mu.Unlock()
	m.deviation.mu.Lock()
	defer m.deviation.mu.Unlock()
	for i := range ps {
		p := &ps[i]
		if len(p.Entries) == 0 {
			idle++
		}
		m.lateness.observe(max(nowMs-p.Tick.State, 0) / 1000)
		msgs := 0
		for i := range p.Entries {
			k := p.Entries[i].Kind
			m.entries.WithLabelValues(k.String()).Inc()
			if k == heartbeat.KindMessage {
				msgs++
			}
		}
		w := m.stats(p.Meta.Instance)
		w.tickAt.add(now)
		for range msgs {
			w.msgAt.add(now)
		}
		if len(p.Entries) == 0 {
			if w.lastIdle > 0 {
				period := float64(time.Second/time.Duration(max(p.Meta.TPS, 1))) / 1e6
				d := math.Abs((p.Tick.State - w.lastIdle) - period)
				if d < 10*period { // a gap (failover, checkpoint in between) is not jitter
					w.dev.add(d)
					m.deviation.observe(d / 1000)
				}
			}
			w.lastIdle = p.Tick.State
		} else {
			w.lastIdle = 0
		}
		w.lastTick, w.hasTick = p.Tick, true
	}
	if idle > 0 {
		m.idleTicks.Add(float64(idle))
	}
	if n := len(ps) - idle; n > 0 {
		m.checkTicks.Add(float64(n))
	}
}

// roundHistogram is a Prometheus histogram updated under its own lock
// without atomics: observeRound adds a value per tick, 100,000 a second at
// 5,000 worlds, where prometheus.Histogram's Observe cost more than the
// rest of the bookkeeping, so a round takes the lock once. Each histogram
// has its lock, not metrics.mu: the publisher's releaser observes
// publishing times, and must not wait for the host's round bookkeeping
// (which holds metrics.mu for thousands of worlds) while a held round is
// due. Lock order: metrics.mu, then a histogram's. Exposed through
// roundHistograms.
type roundHistogram struct {
	mu     sync.Mutex
	desc   *prometheus.Desc
	bounds []float64 // upper bounds, ascending
	counts []uint64  // per bucket (not cumulative); the last is +Inf
	count  uint64
	sum    float64
}

func newRoundHistogram(name, help string, bounds []float64) *roundHistogram {
	return &roundHistogram{desc: prometheus.NewDesc(name, help, nil, nil), bounds: bounds,
		counts: make([]uint64, len(bounds)+1)}
}

// observe adds v; the caller holds h.mu.
func (h *roundHistogram) observe(v float64) {
	i, _ := slices.BinarySearch(h.bounds, v) // first bound >= v: Prometheus buckets are le
	h.counts[i]++
	h.count++
	h.sum += v
}

// metric returns the histogram as a constant metric.
func (h *roundHistogram) metric() prometheus.Metric {
	h.mu.Lock()
	defer h.mu.Unlock()
	buckets := make(map[float64]uint64, len(h.bounds))
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i]
		buckets[b] = cum
	}
	return prometheus.MustNewConstHistogram(h.desc, h.count, h.sum, buckets)
}

// roundHistograms collects the metrics' roundHistograms.
type roundHistograms struct{ m *metrics }

func (c roundHistograms) list() []*roundHistogram {
	return []*roundHistogram{c.m.lateness, c.m.deviation, c.m.publishLatency}
}

func (c roundHistograms) Describe(ch chan<- *prometheus.Desc) {
	for _, h := range c.list() {
		ch <- h.desc
	}
}

func (c roundHistograms) Collect(ch chan<- prometheus.Metric) {
	for _, h := range c.list() {
		ch <- h.metric()
	}
}

// observePublished records the publishing latency of a round's ticks
// (stamps in HAM milliseconds), once it is in the graph.
func (m *metrics) observePublished(states []float64, now time.Time) {
	nowMs := float64(now.UnixMicro()) / 1000
	h := m.publishLatency
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, st := range states {
		h.observe(max(nowMs-st, 0) / 1000)
	}
}

// worldNumbers is what /api/status shows for one world.
type worldNumbers struct {
	tickRate, msgsPerS float64
	p50, p99           float64
	last               heartbeat.Tick
	hasTick            bool
}

// numbers summarises the last window (2 s) of a world's activity.
func (m *metrics) numbers(inst string, now time.Time) worldNumbers {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.worlds[inst]
	if w == nil {
		return worldNumbers{}
	}
	out := worldNumbers{tickRate: w.tickAt.rate(now), msgsPerS: w.msgAt.rate(now), last: w.lastTick, hasTick: w.hasTick}
	if d := w.dev.all(); len(d) > 0 {
		slices.Sort(d)
		out.p50 = d[len(d)/2]
		out.p99 = d[min(len(d)-1, len(d)*99/100)]
	}
	return out
}
