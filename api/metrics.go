package api

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics holds the relay's Prometheus collectors (namespace "luminary").
type metrics struct {
	conns          prometheus.Gauge
	subsRevoked    prometheus.Counter
	connsRefused   *prometheus.CounterVec // by reason
	msgsIn         *prometheus.CounterVec // by type
	msgsOut        *prometheus.CounterVec // by type
	framesIn       prometheus.Counter
	framesOut      prometheus.Counter
	putsAccepted   prometheus.Counter     // put messages fully accepted
	putsRefused    *prometheus.CounterVec // by reason prefix
	fieldsAccepted prometheus.Counter
	fieldsDeferred prometheus.Counter
	ackLatency     prometheus.Histogram
	mergeLatency   prometheus.Histogram
	dedupHits      prometheus.Counter
	dedupEarly     prometheus.Counter
	slowConsumers  *prometheus.CounterVec // by reason: bytes, stalled, write
	strikeCloses   prometheus.Counter
	subscriptions  prometheus.Gauge
	peersUp        prometheus.Gauge
	peerDials      *prometheus.CounterVec // by result

	// Pre-resolved children of the vectors above, for the hot path.
	inGet, inPut, inAck, inDam, inOther prometheus.Counter
	outAck, outErr, outReply, outPush   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns = "luminary"
	lat := []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
	m := &metrics{
		conns: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "connections",
			Help: "Open WebSocket connections (inbound and outbound peer links)."}),
		connsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "connections_refused_total",
			Help: "WebSocket upgrades refused, by reason."}, []string{"reason"}),
		msgsIn: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "messages_in_total",
			Help: "Wire messages received, by type."}, []string{"type"}),
		msgsOut: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "messages_out_total",
			Help: "Wire messages queued for sending, by type."}, []string{"type"}),
		framesIn: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "frames_in_total",
			Help: "WebSocket frames received."}),
		framesOut: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "frames_out_total",
			Help: "WebSocket frames written (several messages may share one frame)."}),
		putsAccepted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "puts_accepted_total",
			Help: "Put messages acknowledged with ok."}),
		putsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "puts_refused_total",
			Help: "Put messages answered with err, by reason prefix."}, []string{"reason"}),
		fieldsAccepted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "fields_accepted_total",
			Help: "Fields merged into the graph from wire puts."}),
		fieldsDeferred: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "fields_deferred_total",
			Help: "Fields held back because their state is slightly in the future."}),
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "put_ack_seconds",
			Help: "Time from decoding a put to queueing its ack.", Buckets: lat}),
		mergeLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "store_merge_seconds",
			Help: "Time spent in graph.DB.Put (merge and durable write).", Buckets: lat}),
		dedupHits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "dedup_hits_total",
			Help: "Messages dropped because their id was seen within the dedup window."}),
		dedupEarly: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "dedup_early_rotations_total",
			Help: "Dedup generations rotated early because the entry cap was reached."}),
		slowConsumers: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "slow_consumer_disconnects_total",
			Help: "Connections closed as slow consumers, by reason: bytes (unsent bytes over the send buffer), " +
				"stalled (no write progress for the slow timeout), write (one frame write timed out)."}, []string{"reason"}),
		strikeCloses: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "strike_disconnects_total",
			Help: "Connections closed after too many invalid messages."}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "subscriptions",
			Help: "Soul subscriptions held by all connections."}),
		subsRevoked: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "subscriptions_revoked_total",
			Help: "Subscriptions dropped because the guard no longer lets the connection read the soul."}),
		peersUp: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "peers_connected",
			Help: "Outbound peer links currently connected."}),
		peerDials: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "peer_dials_total",
			Help: "Outbound peer dial attempts, by result."}, []string{"result"}),
	}
	m.inGet = m.msgsIn.WithLabelValues(typeGet)
	m.inPut = m.msgsIn.WithLabelValues(typePut)
	m.inAck = m.msgsIn.WithLabelValues(typeAck)
	m.inDam = m.msgsIn.WithLabelValues(typeDam)
	m.inOther = m.msgsIn.WithLabelValues(typeOther)
	m.outAck = m.msgsOut.WithLabelValues(typeAck)
	m.outErr = m.msgsOut.WithLabelValues(typeErr)
	m.outReply = m.msgsOut.WithLabelValues(typeReply)
	m.outPush = m.msgsOut.WithLabelValues(typePush)
	for _, r := range []string{slowBytes, slowStalled, slowWrite} {
		m.slowConsumers.WithLabelValues(r) // export zeros
	}
	if reg != nil {
		reg.MustRegister(m.subsRevoked, m.conns, m.connsRefused, m.msgsIn, m.msgsOut, m.framesIn, m.framesOut,
			m.putsAccepted, m.putsRefused, m.fieldsAccepted, m.fieldsDeferred, m.ackLatency,
			m.mergeLatency, m.dedupHits, m.dedupEarly, m.slowConsumers, m.strikeCloses,
			m.subscriptions, m.peersUp, m.peerDials)
	}
	return m
}

// slowConsumer returns the counter of slow-consumer closes for reason.
func (m *metrics) slowConsumer(reason string) prometheus.Counter {
	return m.slowConsumers.WithLabelValues(reason)
}

// registerSendGauges exports the unsent bytes of all connections, summed
// and the largest, computed when scraped (nothing on the hot path).
func registerSendGauges(reg prometheus.Registerer, conns func() []*conn) {
	const ns = "luminary"
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "send_buffered_bytes",
			Help: "Bytes queued for sending and not yet written, over all connections."},
			func() float64 {
				var sum int64
				for _, c := range conns() {
					sum += c.q.pending()
				}
				return float64(sum)
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "send_buffered_bytes_max",
			Help: "Bytes queued for sending and not yet written by the connection with the most."},
			func() float64 {
				var top int64
				for _, c := range conns() {
					top = max(top, c.q.pending())
				}
				return float64(top)
			}),
	)
}

// Message type labels.
const (
	typeGet   = "get"
	typePut   = "put"
	typeAck   = "ack"
	typeDam   = "dam"
	typeOther = "other"
	typeReply = "reply"
	typePush  = "push"
	typeErr   = "err"
)
