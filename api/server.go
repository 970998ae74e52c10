package api

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/clock"
)

// Config configures a Server. DB is required; every other field has a
// default.
type Config struct {
	// DB is the graph the relay serves. The Server subscribes to it and
	// pushes every merge (including those made by other code, such as a
	// heartbeat writer) to subscribed connections. The caller closes it
	// after Shutdown.
	DB *graph.DB
	// Logger receives connection events (default: discard).
	Logger *slog.Logger
	// Ready, if set, is asked by /readyz whether the store can take
	// writes (e.g. a BoltStore whose fsync failed cannot).
	Ready func() error
	// Registry receives the luminary_* metrics and is served at /metrics
	// (default: a new registry with the Go and process collectors).
	Registry *prometheus.Registry
	// Clock drives keep-alives, pings, dedup windows and reconnect
	// backoff (default: the system clock).
	Clock clock.Clock
	// Limits bounds what peers can send; zero fields take defaults.
	Limits Limits
	// AllowedOrigins lists the browser origins (scheme://host[:port]) that
	// may open a WebSocket; "*" allows every origin. When empty, only
	// requests without an Origin header (non-browser clients such as
	// gun.js in node, or other relays) and same-origin requests (Origin
	// host equal to the Host header) are allowed. Others get HTTP 403.
	AllowedOrigins []string
	// Peers lists gun relays to dial and keep connected (http, https, ws or
	// wss URLs; an empty path means /gun).
	Peers []string
	// PeerRetryMin and PeerRetryMax bound the reconnect backoff (defaults
	// 500 ms and 30 s).
	PeerRetryMin, PeerRetryMax time.Duration
	// Guard checks puts and gets (default OpenGuard).
	Guard Guard
	// Handlers handle messages carrying extra top-level members, keyed by
	// member name (e.g. "auth", "lum"). A message with such a member goes
	// only to its handler (the first member in the message's order that
	// has one), never to get/put handling. Names "#", "@", "get", "put",
	// "dam", "ok", "err", "><", "##" and "pid" are reserved.
	Handlers map[string]Handler
	// PID is this relay's gun peer id (default: random).
	PID string
}

// Server is the relay. It implements http.Handler.
type Server struct {
	connSerial atomic.Uint64 // numbers connections in the order they are made

	cfg      Config
	lim      Limits
	dlim     DecodeLimits
	db       *graph.DB
	log      *slog.Logger
	clock    clock.Clock
	m        *metrics
	reg      *prometheus.Registry
	guard    Guard
	handlers map[string]Handler
	pid      string
	router   chi.Router
	upgrader websocket.Upgrader
	dedup    *dedup
	subs     *subIndex
	peers    *peerSet

	soulLimit int
	writePool *sync.Pool
	openGuard bool // Guard is OpenGuard: skip per-put context values

	// verify bounds the preverification of puts (relay.go).
	verify verifyPool

	// Subscriptions re-checked after access changes (recheck.go).
	recheckQ   chan []string
	recheckAll atomic.Bool

	baseCtx    context.Context
	baseCancel context.CancelFunc
	peerCtx    context.Context
	peerCancel context.CancelFunc
	unsubDB    func()

	connID   atomic.Uint64
	draining atomic.Bool
	started  atomic.Bool

	mu      sync.Mutex
	conns   map[*conn]struct{}
	perIP   map[string]int
	inbound int // reserved inbound slots
	closed  bool

	bgWG     sync.WaitGroup
	stopOnce sync.Once
}

var errDraining = errors.New("api: server is shutting down")

var reservedMembers = []string{"#", "@", "get", "put", "dam", "ok", "err", "><", "##", "pid"}

// NewServer validates cfg and returns a Server. It subscribes to the DB and
// starts the keep-alive ticker; call Start to dial peers.
func NewServer(cfg Config) (*Server, error) {
	if cfg.DB == nil {
		return nil, errors.New("api: Config.DB is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Guard == nil {
		cfg.Guard = OpenGuard{}
	}
	if cfg.PID == "" {
		cfg.PID = newID()
	}
	if cfg.PeerRetryMin <= 0 {
		cfg.PeerRetryMin = 500 * time.Millisecond
	}
	if cfg.PeerRetryMax <= 0 {
		cfg.PeerRetryMax = 30 * time.Second
	}
	if cfg.PeerRetryMax < cfg.PeerRetryMin {
		cfg.PeerRetryMax = cfg.PeerRetryMin
	}
	for name := range cfg.Handlers {
		for _, r := range reservedMembers {
			if name == r {
				return nil, errors.New("api: handler name " + name + " is reserved")
			}
		}
	}
	for _, o := range cfg.AllowedOrigins {
		if o == "*" {
			continue
		}
		if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" {
			return nil, errors.New("api: allowed origin " + o + " must be scheme://host[:port] or *")
		}
	}
	lim := cfg.Limits.withDefaults()
	if err := lim.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		lim:       lim,
		db:        cfg.DB,
		log:       cfg.Logger,
		clock:     cfg.Clock,
		reg:       cfg.Registry,
		guard:     cfg.Guard,
		handlers:  cfg.Handlers,
		pid:       cfg.PID,
		conns:     make(map[*conn]struct{}),
		perIP:     make(map[string]int),
		writePool: &sync.Pool{},
	}
	_, s.openGuard = cfg.Guard.(OpenGuard)
	s.m = newMetrics(cfg.Registry)
	s.dlim = lim.decodeLimits()
	g := resolveGraphLimits(lim.Graph)
	s.dlim.MaxMembers = max(g.MaxSouls, g.MaxFieldsPerNode+1, maxMessageMembers) + 1
	s.soulLimit = g.MaxSoulBytes
	s.dedup = newDedup(cfg.Clock, lim.DedupWindow, lim.DedupEntries)
	s.dedup.onEarly = s.m.dedupEarly.Inc
	s.subs = newSubIndex(s.m)
	s.baseCtx, s.baseCancel = context.WithCancel(context.Background())
	s.peerCtx, s.peerCancel = context.WithCancel(s.baseCtx)
	peers, err := newPeerSet(s, cfg.Peers)
	if err != nil {
		return nil, err
	}
	s.peers = peers
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout:  lim.HandshakeTimeout,
		ReadBufferSize:    4096,
		WriteBufferSize:   writeBufferSize,
		WriteBufferPool:   s.writePool,
		CheckOrigin:       s.checkOrigin,
		EnableCompression: false,
		Error:             s.upgradeError,
	}
	s.router = s.routes()
	registerSendGauges(cfg.Registry, s.snapshot)
	s.recheckQ = make(chan []string, 64)
	s.unsubDB = cfg.DB.Subscribe(func(accepted graph.Graph, origin any) {
		s.broadcast(accepted, origin)
		s.watchAccess(accepted)
	})
	s.bgWG.Add(3)
	go s.keepAlive()
	go s.sweepSlow()
	go func() {
		defer s.bgWG.Done()
		s.rechecker(s.baseCtx)
	}()
	return s, nil
}

// resolveGraphLimits fills zero graph limits from graph.DefaultLimits, the
// way graph.ParsePut does.
func resolveGraphLimits(l graph.Limits) graph.Limits {
	d := graph.DefaultLimits
	pick := func(v, def int) int {
		switch {
		case v == 0:
			return def
		case v < 0:
			return 1 << 30
		}
		return v
	}
	l.MaxSouls = pick(l.MaxSouls, d.MaxSouls)
	l.MaxFieldsPerNode = pick(l.MaxFieldsPerNode, d.MaxFieldsPerNode)
	l.MaxFields = pick(l.MaxFields, d.MaxFields)
	l.MaxValueBytes = pick(l.MaxValueBytes, d.MaxValueBytes)
	l.MaxSoulBytes = pick(l.MaxSoulBytes, d.MaxSoulBytes)
	l.MaxFieldNameBytes = pick(l.MaxFieldNameBytes, d.MaxFieldNameBytes)
	return l
}

// Start dials the configured peers; links are kept up until Shutdown.
func (s *Server) Start() {
	if s.started.Swap(true) {
		return
	}
	s.peers.start(s.peerCtx)
}

// PID returns the relay's gun peer id.
func (s *Server) PID() string { return s.pid }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.Get("/gun", s.serveWS)
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	return r
}

// checkOrigin implements the AllowedOrigins policy (table A row 28).
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, o := range s.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

func (s *Server) upgradeError(w http.ResponseWriter, r *http.Request, status int, reason error) {
	label := "bad_request"
	if status == http.StatusForbidden {
		label = "origin"
	}
	s.m.connsRefused.WithLabelValues(label).Inc()
	http.Error(w, "invalid: websocket upgrade: "+reason.Error(), status)
}

// serveWS upgrades /gun to a WebSocket after the connection caps.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "invalid: /gun is a WebSocket endpoint", http.StatusBadRequest)
		return
	}
	ip := remoteIP(r.RemoteAddr)
	if reason, status := s.admit(ip); reason != "" {
		s.m.connsRefused.WithLabelValues(reasonLabel(reason)).Inc()
		w.Header().Set("Retry-After", "10")
		http.Error(w, reason, status)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.release(ip)
		return // the upgrader has answered
	}
	info := &PeerInfo{ID: s.nextConnID(), RemoteAddr: r.RemoteAddr}
	c := s.newConn(ws, info, ip, nil)
	if !s.register(c) {
		s.release(ip)
		_ = ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(time.Second))
		_ = ws.Close()
		return
	}
	c.log.Debug("connection opened")
	c.run()
}

func reasonLabel(reason string) string {
	if strings.Contains(reason, "per ip") {
		return "per_ip"
	}
	if strings.Contains(reason, "shutting down") {
		return "draining"
	}
	return "total"
}

// admit reserves a connection slot for ip, or returns why not.
func (s *Server) admit(ip string) (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed || s.draining.Load():
		return "blocked: server shutting down", http.StatusServiceUnavailable
	case s.inbound >= s.lim.MaxConns:
		return "blocked: too many connections", http.StatusServiceUnavailable
	case s.perIP[ip] >= s.lim.MaxConnsPerIP:
		return "blocked: too many connections per ip", http.StatusTooManyRequests
	}
	s.perIP[ip]++
	s.inbound++
	return "", 0
}

// release returns ip's slot.
func (s *Server) release(ip string) {
	if ip == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inbound--
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

func remoteIP(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

func (s *Server) nextConnID() uint64 { return s.connID.Add(1) }

// register adds c to the live set; false when shutting down.
func (s *Server) register(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.m.conns.Inc()
	return true
}

// unregister removes a finished connection and its subscriptions.
func (s *Server) unregister(c *conn) {
	s.subs.removeConn(c)
	s.mu.Lock()
	if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
		s.m.conns.Dec()
	}
	s.mu.Unlock()
	s.release(c.ip)
}

// keepAlive sends gun's "[]" to every connection every Limits.KeepAlive.
func (s *Server) keepAlive() {
	defer s.bgWG.Done()
	t := s.clock.NewTicker(s.lim.KeepAlive)
	defer t.Stop()
	for {
		select {
		case <-t.C():
			for _, c := range s.snapshot() {
				c.enqueue(keepAlive)
			}
		case <-s.baseCtx.Done():
			return
		}
	}
}

// sweepSlow closes, every SlowTimeout/4, the connections that have had
// unsent bytes and made no write progress for Limits.SlowTimeout (a writer
// blocked on a peer that stopped reading).
func (s *Server) sweepSlow() {
	defer s.bgWG.Done()
	t := s.clock.NewTicker(max(s.lim.SlowTimeout/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-t.C():
			now := s.clock.Now()
			for _, c := range s.snapshot() {
				c.checkStalled(now)
			}
		case <-s.baseCtx.Done():
			return
		}
	}
}

func (s *Server) snapshot() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// Draining reports whether Shutdown has begun.
func (s *Server) Draining() bool { return s.draining.Load() }

// Shutdown stops the relay gracefully: /readyz turns 503, new WebSocket
// upgrades are refused, every connection stops reading, its in-flight puts
// are merged and acknowledged, and it is closed with 1001 (going away).
// Outbound links stop redialling. If ctx ends first, the remaining sockets
// are closed at once. Shutdown does not close the DB (the caller does, after
// Shutdown returns, which flushes it). Hijacked WebSockets are not tracked by
// http.Server.Shutdown, which is why the relay tracks them here; call both.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	var err error
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.peerCancel() // links stop redialling
		conns := s.snapshot()
		for _, c := range conns {
			c.drain()
		}
		for _, c := range conns {
			select {
			case <-c.done:
			case <-ctx.Done():
				err = ctx.Err()
			}
			if err != nil {
				break
			}
		}
		if err != nil {
			for _, c := range s.snapshot() {
				_ = c.ws.UnderlyingConn().Close()
			}
		}
		s.peers.wait()
		s.baseCancel()
		s.unsubDB()
		s.bgWG.Wait()
	})
	return err
}
