package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/krestianstvo/luminary/api"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/clock"
)

// ServeCmd runs the relay.
type ServeCmd struct {
	Addr           string   `default:":8765" env:"LUMINARY_ADDR" help:"Listen address (host:port; port 0 picks a free one)."`
	Data           string   `default:"./luminary-data" env:"LUMINARY_DATA" help:"Data directory; the graph is stored in <data>/graph.db."`
	Memory         bool     `env:"LUMINARY_MEMORY" help:"Keep the graph in memory only (nothing survives a restart)."`
	GraphWAL       bool     `default:"true" negatable:"" env:"LUMINARY_GRAPH_WAL" help:"Put a write-ahead log (<data>/graph.db-wal) in front of the graph file: a put is acked after one log append and fdatasync; the file is updated by periodic checkpoints. --no-graph-wal commits a bbolt transaction (two fdatasyncs) per group instead; a log left by either mode is replayed at start."`
	Peers          []string `env:"LUMINARY_PEERS" sep:"," help:"Gun relays to peer with (comma list of http(s)/ws(s) URLs; an empty path means /gun)."`
	AllowedOrigins []string `env:"LUMINARY_ALLOWED_ORIGINS" sep:"," help:"Browser origins allowed to open /gun (scheme://host[:port], or *). Empty: only same-origin and non-browser clients."`
	LogLevel       string   `default:"info" enum:"debug,info,warn,error" env:"LUMINARY_LOG_LEVEL" help:"Log level (debug, info, warn, error)."`
	LogFormat      string   `default:"text" enum:"text,json" env:"LUMINARY_LOG_FORMAT" help:"Log format (text or json)."`
	Demo           bool     `env:"LUMINARY_DEMO" help:"Serve a demo world at / (alias demo, owned by the relay key, open to anyone who joins, --demo-tps ticks/s)."`

	ServiceFlags `embed:""`

	ReadLimit        int64         `default:"1048576" env:"LUMINARY_READ_LIMIT" help:"Largest WebSocket message in bytes (larger: close 1009)."`
	InboxMemory      int64         `default:"8388608" env:"LUMINARY_INBOX_MEMORY" help:"Bytes of inbound message nodes (lum/<I>/in/<id> of hosted worlds) kept in memory, oldest dropped first (about 10,000 messages of 1 KB: seconds at 2,000 messages/s); they are not written to graph.db, since the heartbeat log holds every sequenced message durably. More costs garbage-collection time."`
	MaxBatch         int           `default:"100" env:"LUMINARY_MAX_BATCH" help:"Most messages in one batch frame."`
	MaxSouls         int           `default:"1000" env:"LUMINARY_MAX_SOULS" help:"Most nodes in one put."`
	MaxFieldsPerNode int           `default:"1000" env:"LUMINARY_MAX_FIELDS_PER_NODE" help:"Most fields in one node of a put."`
	MaxFields        int           `default:"5000" env:"LUMINARY_MAX_FIELDS" help:"Most fields in one put."`
	MaxValueBytes    int           `default:"262144" env:"LUMINARY_MAX_VALUE_BYTES" help:"Largest string value in bytes."`
	MaxSubscriptions int           `default:"1000" env:"LUMINARY_MAX_SUBSCRIPTIONS" help:"Most souls one connection may subscribe to."`
	MaxConns         int           `default:"10000" env:"LUMINARY_MAX_CONNS" help:"Most open WebSocket connections."`
	MaxConnsPerIP    int           `default:"256" env:"LUMINARY_MAX_CONNS_PER_IP" help:"Most open WebSocket connections from one IP."`
	SendBuffer       int           `default:"8388608" env:"LUMINARY_SEND_BUFFER" help:"Bytes queued per connection and not yet written before it is closed as a slow consumer (1013)."`
	SlowTimeout      time.Duration `default:"10s" env:"LUMINARY_SLOW_TIMEOUT" help:"How long a connection with unsent bytes may make no write progress before it is closed as a slow consumer (1013)."`
	MaxStrikes       int           `default:"10" env:"LUMINARY_MAX_STRIKES" help:"Invalid messages before a connection is closed (1008)."`
	MaxFuture        time.Duration `default:"30s" env:"LUMINARY_MAX_FUTURE" help:"How far ahead of our clock a state may be and still be deferred; later states are refused."`
	MaxDeferred      int           `default:"10000" env:"LUMINARY_MAX_DEFERRED" help:"Most fields held back for a future state."`
	KeepAlive        time.Duration `default:"20s" env:"LUMINARY_KEEPALIVE" help:"Interval of gun's [] keep-alive frame."`
	ShutdownTimeout  time.Duration `default:"10s" env:"LUMINARY_SHUTDOWN_TIMEOUT" help:"How long a graceful shutdown may take."`
	HeaderTimeout    time.Duration `default:"5s" env:"LUMINARY_HEADER_TIMEOUT" help:"How long a client may take to send request headers (Slowloris guard)."`

	CPUProfile string `hidden:"" help:"Write a CPU profile to this file until shutdown (for benchmarking)."`
	DebugAddr  string `hidden:"" env:"LUMINARY_DEBUG_ADDR" help:"Serve net/http/pprof on this address (keep it on loopback; for profiling)."`
}

// Run runs the relay until SIGINT or SIGTERM.
func (c *ServeCmd) Run(env *Env) error {
	logger, err := newLogger(env.Stderr, c.LogLevel, c.LogFormat)
	if err != nil {
		return usageError{err}
	}
	ctx, stop := signal.NotifyContext(env.Ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if c.CPUProfile != "" {
		f, err := os.Create(c.CPUProfile)
		if err != nil {
			return fmt.Errorf("serve: cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("serve: cpu profile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	if c.DebugAddr != "" {
		stopDebug, err := serveDebug(c.DebugAddr, logger)
		if err != nil {
			return fmt.Errorf("serve: debug listener: %w", err)
		}
		defer stopDebug()
	}
	var peers []string
	for _, p := range c.Peers {
		if p = strings.TrimSpace(p); p != "" {
			peers = append(peers, p)
		}
	}

	// Storage.
	commitMetrics := newCommitMetrics()
	var store graph.Store
	var ready func() error
	var transient atomic.Pointer[func(string) bool] // the service's TransientSoul, once it exists
	var storeStats func() graph.BoltStats
	dataInfo := "memory"
	if c.Memory {
		store = graph.NewMemoryStore()
	} else {
		if err := os.MkdirAll(c.Data, 0o700); err != nil {
			return fmt.Errorf("serve: data directory: %w", err)
		}
		path := filepath.Join(c.Data, "graph.db")
		// Heartbeat nodes (the tick, 20 writes a second per world) stay in
		// memory: the heartbeat log is the durable record of time. So do
		// the inbound message nodes of hosted worlds, within
		// --inbox-memory: the log is the durable record of messages
		// (service.TransientSoul, known once the service exists; nothing
		// writes an inbox node before).
		bs, err := graph.OpenBolt(path, graph.BoltOptions{Logger: logger, Volatile: heartbeat.IsHeartbeatSoul,
			Transient: func(soul string) bool {
				f := transient.Load()
				return f != nil && (*f)(soul)
			},
			TransientBytes: c.InboxMemory,
			OnCommit:       commitMetrics.observe, WAL: c.GraphWAL})
		if err != nil {
			return fmt.Errorf("serve: open %s: %w", path, err)
		}
		store = bs
		storeStats = bs.Stats
		ready = func() error { return bs.Stats().Failed }
		dataInfo = path
	}
	closeStore := func() {
		if err := store.Close(); err != nil {
			logger.Error("closing store", "err", err)
		}
	}
	db := graph.NewDB(store, graph.DBConfig{
		Clock:       clock.System(),
		MaxFuture:   c.MaxFuture,
		MaxDeferred: c.MaxDeferred,
		Logger:      logger,
	})

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if storeStats != nil {
		reg.MustRegister(commitMetrics.seconds, commitMetrics.merges,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "luminary", Name: "inbox_memory_bytes",
				Help: "Approximate memory of the inbound message nodes kept (bounded by --inbox-memory)."},
				func() float64 { return float64(storeStats().TransientBytes) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "luminary", Name: "inbox_nodes_dropped_total",
				Help: "Inbound message nodes dropped, oldest first, to stay within --inbox-memory (their messages are in the log)."},
				func() float64 { return float64(storeStats().TransientEvicted) }))
	}
	serviceData := c.Data
	if c.Memory {
		serviceData = ""
	}
	ts, err := c.ServiceFlags.openService(db, serviceData, c.Demo, logger, reg)
	if err != nil {
		_ = db.Close()
		closeStore()
		return err
	}
	hostedInbox := ts.svc.TransientSoul
	transient.Store(&hostedInbox)
	srv, err := api.NewServer(api.Config{
		Guard:          ts.svc.Guard(),
		Handlers:       ts.svc.Handlers(),
		DB:             db,
		Logger:         logger,
		Registry:       reg,
		Clock:          clock.System(),
		Peers:          peers,
		AllowedOrigins: c.AllowedOrigins,
		Ready:          ready,
		Limits: api.Limits{
			ReadLimit: c.ReadLimit,
			MaxBatch:  c.MaxBatch,
			Graph: graph.Limits{
				MaxSouls:         c.MaxSouls,
				MaxFieldsPerNode: c.MaxFieldsPerNode,
				MaxFields:        c.MaxFields,
				MaxValueBytes:    c.MaxValueBytes,
			},
			MaxSubscriptions: c.MaxSubscriptions,
			MaxConns:         c.MaxConns,
			MaxConnsPerIP:    c.MaxConnsPerIP,
			SendBuffer:       c.SendBuffer,
			SlowTimeout:      c.SlowTimeout,
			MaxStrikes:       c.MaxStrikes,
			KeepAlive:        c.KeepAlive,
		},
	})
	if err != nil {
		ts.shutdown(context.Background(), logger)
		_ = db.Close()
		closeStore()
		return usageError{err}
	}

	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		shutdownAll(logger, srv, nil, ts, db, closeStore, c.ShutdownTimeout)
		return fmt.Errorf("serve: listen: %w", err)
	}
	hs := &http.Server{
		Handler:           ts.handler(srv),
		ReadHeaderTimeout: c.HeaderTimeout, // Slowloris (reliability table A row 29)
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	hs.RegisterOnShutdown(ts.rest.Close) // ends status streams, which Shutdown would wait for
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	srv.Start()
	ts.svc.Start()
	logger.Info("luminary listening", "addr", ln.Addr().String(), "data", dataInfo,
		"peers", strings.Join(peers, ","), "pid", srv.PID(), "version", version())

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "cause", context.Cause(ctx))
	case err := <-serveErr:
		runErr = fmt.Errorf("serve: %w", err)
	}
	shutdownAll(logger, srv, hs, ts, db, closeStore, c.ShutdownTimeout)
	if runErr == nil {
		logger.Info("stopped")
	}
	return runErr
}

// shutdownAll stops in order: readiness off and WebSockets closed with 1001
// after their in-flight puts are acknowledged (api.Server.Shutdown), the
// HTTP listener (http.Server.Shutdown does not track hijacked WebSockets,
// hence both), the time service (queued messages made durable, last
// publications written), then the DB and the store (which flushes and
// fsyncs).
func shutdownAll(logger *slog.Logger, srv *api.Server, hs *http.Server, ts *timeService, db *graph.DB, closeStore func(), timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	done := make(chan struct{})
	if hs != nil {
		go func() {
			defer close(done)
			if err := hs.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Warn("http shutdown", "err", err)
			}
		}()
	} else {
		close(done)
	}
	if err := srv.Shutdown(ctx); err != nil {
		logger.Warn("relay shutdown incomplete", "err", err)
	}
	<-done
	ts.shutdown(ctx, logger)
	if err := db.Close(); err != nil {
		logger.Error("closing db", "err", err)
	}
	closeStore()
}

// commitMetrics observes the group commits of the bbolt store: how long
// each took (fsyncs included) and how many merges it carried.
type commitMetrics struct {
	seconds, merges prometheus.Histogram
}

func newCommitMetrics() *commitMetrics {
	return &commitMetrics{
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "luminary", Name: "store_commit_seconds",
			Help:    "Duration of one group commit of the graph store (transaction and fsyncs).",
			Buckets: []float64{.0005, .001, .0015, .002, .003, .004, .005, .0075, .01, .015, .025, .05, .1, .25}}),
		merges: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "luminary", Name: "store_commit_merges",
			Help:    "Merge requests (puts) carried by one group commit of the graph store.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}}),
	}
}

func (m *commitMetrics) observe(ci graph.CommitInfo) {
	m.seconds.Observe(ci.Duration.Seconds())
	m.merges.Observe(float64(ci.Merges))
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("serve: --log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("serve: --log-format must be text or json, not %q", format)
}
