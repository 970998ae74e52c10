package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/keys"
	"github.com/krestianstvo/luminary/world"
)

// Config configures a [Service]. DB is required; every other field has a
// default.
type Config struct {
	// DB is the relay's graph, shared with the api.Server that serves it:
	// publications are written here and the server pushes them to
	// subscribers. The caller closes it after Shutdown.
	DB *graph.DB
	// DataDir holds heartbeat.db (the ordered log and leases),
	// relay.key (+ relay.key.pass), worlds.json and owners/. Empty keeps
	// everything in memory (tests, --memory): a fresh relay key per start.
	DataDir string
	// Key is the relay key; nil loads or creates DataDir/relay.key.
	Key *keys.Private
	// KeyPassword encrypts DataDir/relay.key; empty uses (and on first
	// start creates) DataDir/relay.key.pass. See relaykey.go.
	KeyPassword []byte
	// KeyLogN is the scrypt work factor of key files the service creates
	// (0: keys.DefaultLogN).
	KeyLogN int
	// Clock is the relay clock (default: the system clock).
	Clock clock.Clock
	// Logger receives service events (default: discard).
	Logger *slog.Logger
	// Registry receives the luminary_* time-service metrics (nil: not
	// registered).
	Registry prometheus.Registerer
	// Mode is the auth mode for souls outside instance namespaces and SEA
	// user space (default auth.Secure).
	Mode auth.Mode
	// Peers, if set, counts connected Gun peers for /api/status.
	Peers func() int

	// Host tunes the sequencer; zero fields take heartbeat's defaults.
	// Signer, Log, Lease, Blobs, Authorizer, Sink, Clock and Logger are
	// set by the service.
	Host heartbeat.HostConfig

	// TickPlayout is the least playout delay of idle ticks: their push
	// leaves the relay this long after their stamp (or once they are
	// published, if that takes longer), so followers receive them on a
	// steady cadence whatever publishing each round costs; it adds as
	// much to their latency. Rounds that carry entries are pushed at once
	// (with the held rounds before them). A delay longer than the time a
	// round takes to publish keeps the cadence steady under load, so when
	// a round is late the delay rises to cover the 99th percentile of the
	// publishing times of recent rounds (a jitter buffer, publish.go), up
	// to MaxTickPlayout (5,000 worlds: see BENCHMARKS.md).
	// Default DefaultTickPlayout; negative disables the delay.
	TickPlayout time.Duration
	// MaxTickPlayout bounds how far the playout delay rises (default
	// DefaultMaxTickPlayout); at or below TickPlayout the delay is fixed.
	// It also bounds the memory held rounds take: the push frames of
	// MaxTickPlayout × (rounds a second) rounds, one frame per
	// following connection each (5,000 worlds at 20 ticks/s, 200 ms:
	// four rounds of 6.5 MB).
	MaxTickPlayout time.Duration

	// MaxPublishQueue bounds publications waiting for the graph writer
	// before idle ticks are dropped (default 4 × MaxWorlds, at least
	// 4096: every world ticks in the same round, so one round alone queues
	// one publication per world).
	MaxPublishQueue int
	// PublishDepth bounds the rounds being built, merged into the graph
	// and encoded for followers at once (default 3; rounds waiting for
	// their playout do not count). With 1, a round is built only once the
	// one before it is in the graph.
	PublishDepth int
	// MaxJoinsInFlight bounds the join bundles (snapshot data plus a page
	// of the log) being served at once (default 4; see snapshot.go).
	MaxJoinsInFlight int
	// PresenceTTL is how long a key joined through the HTTP join route
	// stays present without sending (default 2 min).
	PresenceTTL time.Duration
	// JoinCertTTL is the validity of message certificates issued by the
	// join route (default 1 h).
	JoinCertTTL time.Duration
	// MaxWorlds bounds the worlds the relay hosts (default 1000).
	MaxWorlds int

	// Remote bounds the remote metronomes the relay serves (remote.go).
	Remote RemoteConfig

	// Demo creates (or reopens) a world owned by the relay key, alias
	// "demo", open to anyone who joins through the HTTP join route.
	Demo bool
	// DemoTPS is the demo world's tick rate (default 20).
	DemoTPS int
}

// DefaultTickPlayout is Config.TickPlayout's default: half a tick period
// at the default 20 ticks/s, more than publishing a round of a thousand
// worlds takes on two cores (p99 ≈ 22 ms from stamp to push).
const DefaultTickPlayout = 25 * time.Millisecond

// DefaultMaxTickPlayout is Config.MaxTickPlayout's default: four tick
// periods at 20 ticks/s, above what publishing a round of 5,000 worlds
// takes on two shared cores (p99 ≈ 90 ms, max ≈ 120 ms from stamp to
// push frames built).
const DefaultMaxTickPlayout = 200 * time.Millisecond

// Service is Luminary's time service running inside the relay: the
// heartbeat host (sequencer and metronome) for the worlds the relay hosts,
// the admission of inbound messages through auth, presence, the login
// exchange, and the implementation of the HTTP API (rest.Service).
//
// Use it with an api.Server over the same graph.DB:
//
//	svc, _ := service.New(service.Config{DB: db, DataDir: dir, Registry: reg})
//	srv, _ := api.NewServer(api.Config{DB: db, Guard: svc.Guard(), Handlers: svc.Handlers(), ...})
//	svc.Start()
//	...
//	srv.Shutdown(ctx)   // connections first
//	svc.Shutdown(ctx)   // then drain the sequencer and write the last publications
//	db.Close(); store.Close()
type Service struct {
	cfg      Config
	db       *graph.DB
	clk      clock.Clock
	logger   *slog.Logger
	key      *keys.Private
	relayID  string
	password []byte

	log   heartbeat.Log
	lease heartbeat.Lease
	// rlease is lease as the relay's own host sees it: it stays off worlds
	// a remote metronome holds (remote.go).
	rlease   *relayLease
	remote   *remotes
	acceptor *heartbeat.Acceptor
	blobs    heartbeat.Blobs
	bolt     *heartbeat.BoltLog

	checker *auth.Checker
	// worldGuard checks private worlds' envelopes (see private.go).
	worldGuard *world.Guard
	verifier   heartbeat.Verifier
	host       *heartbeat.Host
	m          *metrics
	pub        *publisher
	pres       *presence
	worlds     *worldStore
	joins      chan struct{} // join bundles being served (MaxJoinsInFlight)

	started   time.Time
	reloading atomic.Bool

	runCancel  context.CancelFunc
	hostCancel context.CancelFunc
	hostDone   chan error
	wg         sync.WaitGroup
	startOnce  sync.Once
	stopOnce   sync.Once
	stopErr    error
}

// New opens the service's stores and keys, loads the hosted worlds and
// creates the demo world when asked. Call Start to run it.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil {
		return nil, errors.New("service: Config.DB is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxJoinsInFlight <= 0 {
		cfg.MaxJoinsInFlight = 4
	}
	if cfg.PresenceTTL <= 0 {
		cfg.PresenceTTL = 2 * time.Minute
	}
	if cfg.JoinCertTTL <= 0 {
		cfg.JoinCertTTL = time.Hour
	}
	if cfg.MaxWorlds <= 0 {
		cfg.MaxWorlds = 1000
	}
	if cfg.MaxPublishQueue <= 0 {
		cfg.MaxPublishQueue = max(4096, 4*cfg.MaxWorlds)
	}
	if cfg.PublishDepth <= 0 {
		cfg.PublishDepth = 3
	}
	if cfg.DemoTPS <= 0 {
		cfg.DemoTPS = 20
	}
	if cfg.TickPlayout == 0 {
		cfg.TickPlayout = DefaultTickPlayout
	}
	if cfg.MaxTickPlayout == 0 {
		cfg.MaxTickPlayout = max(DefaultMaxTickPlayout, cfg.TickPlayout)
	}
	if cfg.Host.WindowPast <= 0 {
		cfg.Host.WindowPast = 120 * time.Second
	}
	if cfg.Host.WindowFuture <= 0 {
		cfg.Host.WindowFuture = 30 * time.Second
	}
	if cfg.Host.MaxSnapshotBytes <= 0 {
		cfg.Host.MaxSnapshotBytes = 16 << 20 // the host's default, needed here to bound wire votes
	}
	cfg.Remote = cfg.Remote.withDefaults()
	s := &Service{cfg: cfg, db: cfg.DB, clk: cfg.Clock, logger: cfg.Logger, started: cfg.Clock.Now(),
		verifier: newCachingVerifier(heartbeat.KeyVerifier(keys.NewCache(4096)), 8192),
		joins:    make(chan struct{}, cfg.MaxJoinsInFlight)}
	s.m = newMetrics(cfg.Registry)
	s.pres = newPresence(s)
	s.pub = newPublisher(s, cfg.MaxPublishQueue, cfg.PublishDepth)

	// Keys.
	s.key = cfg.Key
	s.password = cfg.KeyPassword
	if s.key == nil {
		if cfg.DataDir == "" {
			k, err := keys.Generate(keys.Secp256k1)
			if err != nil {
				return nil, err
			}
			s.key = k
		} else {
			k, created, err := LoadRelayKey(cfg.DataDir, cfg.KeyPassword, cfg.KeyLogN)
			if err != nil {
				return nil, err
			}
			if len(s.password) == 0 {
				p, err := readPassFile(filepath.Join(cfg.DataDir, RelayKeyPassFile))
				if err == nil {
					s.password = p
				}
			}
			if created {
				s.logger.Info("service: created the relay key", "file", filepath.Join(cfg.DataDir, RelayKeyFile), "pub", k.Public().String())
			}
			s.key = k
		}
	}
	s.relayID = s.key.Public().String()

	// The ordered log.
	if cfg.DataDir == "" {
		ml := heartbeat.NewMemLog()
		s.log, s.blobs, s.lease = ml, ml, heartbeat.NewMemLease(cfg.Clock)
		s.worlds = newWorldStore("")
	} else {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("service: data directory: %w", err)
		}
		bl, err := heartbeat.OpenBolt(filepath.Join(cfg.DataDir, "heartbeat.db"), heartbeat.BoltOptions{Clock: cfg.Clock, Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
		s.bolt = bl
		s.log, s.blobs, s.lease = bl, bl, bl.Lease()
		s.worlds = newWorldStore(filepath.Join(cfg.DataDir, WorldsFile))
	}
	fail := func(err error) (*Service, error) {
		if s.bolt != nil {
			_ = s.bolt.Close()
		}
		return nil, err
	}

	s.worldGuard = world.NewGuard(s.lookup)
	checker, err := auth.New(auth.Config{
		Clock:   cfg.Clock,
		Mode:    cfg.Mode,
		RelayID: s.relayID,
		Lookup:  s.lookup,
		HasSoul: s.db.HasSoul,
		Logger:  cfg.Logger,
		Inbox:   s.privateInbox(s.inbox),
	})
	if err != nil {
		return fail(err)
	}
	s.checker = checker

	s.rlease = newRelayLease(s.lease, cfg.Clock)
	s.remote = newRemotes(s)
	acc, err := heartbeat.NewAcceptor(heartbeat.AcceptorConfig{Log: s.log, Lease: s.lease, Verifier: s.verifier,
		Authorizer: heartbeat.AuthorizerFunc(s.authorize), Clock: cfg.Clock, Sink: remoteSink{s},
		MaxAhead: cfg.Remote.MaxAhead, WindowPast: cfg.Host.WindowPast, WindowFuture: cfg.Host.WindowFuture,
		Presence: s.remote.checkPresence, Snapshot: s.remote.checkSnapshot})
	if err != nil {
		return fail(err)
	}
	s.acceptor = acc

	hc := cfg.Host
	hc.Signer = heartbeat.KeySigner(s.key)
	hc.Log, hc.Lease, hc.Blobs = s.log, s.rlease, s.blobs
	hc.Verifier = s.verifier
	hc.Authorizer = heartbeat.AuthorizerFunc(s.authorize)
	hc.Sink = s.pub
	hc.Clock = cfg.Clock
	hc.Logger = cfg.Logger
	host, err := heartbeat.NewHost(hc)
	if err != nil {
		return fail(err)
	}
	s.host = host

	if err := s.worlds.load(); err != nil {
		return fail(err)
	}
	for _, w := range s.worlds.list() {
		if err := s.openWorld(w); err != nil {
			return fail(err)
		}
	}
	if cfg.Demo {
		if err := s.ensureDemo(); err != nil {
			return fail(err)
		}
	}
	return s, nil
}

// openWorld starts serving a world from its record: its owner key (when
// the relay holds it), its published certificates, the host.
func (s *Service) openWorld(w worldRec) error {
	switch {
	case w.Owner == "relay":
		s.worlds.setOwner(w.Instance, s.key)
	case w.Owner != "":
		if len(s.password) == 0 {
			return fmt.Errorf("service: world %s: owner key %s needs the relay key password", w.Instance, w.Owner)
		}
		k, err := keys.ReadFile(filepath.Join(s.cfg.DataDir, ownersDir, w.Owner), s.password)
		if err != nil {
			return fmt.Errorf("service: world %s: owner key: %w", w.Instance, err)
		}
		s.worlds.setOwner(w.Instance, k)
	}
	if err := s.reloadCerts(context.Background(), w.Instance); err != nil {
		return err
	}
	if err := s.repair(context.Background(), w.Instance); err != nil {
		return fmt.Errorf("service: world %s: repairing the graph: %w", w.Instance, err)
	}
	if err := s.host.Add(heartbeat.InstanceConfig{Instance: w.Instance, Name: w.Name, Rate: w.Rate, TPS: w.TPS}); err != nil {
		return fmt.Errorf("service: world %s: %w", w.Instance, err)
	}
	s.m.worldsGauge.Set(float64(len(s.worlds.list())))
	return nil
}

// reloadCerts passes the certificates stored at lum/<I>/certs through the
// checker again, so that auth.Checker.Authorize knows them after a restart
// (the checker learns certificates only from writes it judges). While it
// runs, the lookup hides those fields, or the checker would refuse them as
// exact replays before registering them.
func (s *Service) reloadCerts(ctx context.Context, inst string) error {
	soul := heartbeat.InstanceSoul(inst) + "/certs"
	n, err := s.db.Get(ctx, soul)
	if errors.Is(err, graph.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("service: world %s: certificates: %w", inst, err)
	}
	s.reloading.Store(true)
	defer s.reloading.Store(false)
	_, refused := s.checker.CheckPut(ctx, nil, graph.Graph{soul: n})
	for _, fe := range refused {
		s.logger.Debug("service: stored certificate not reloaded", "instance", inst, "serial", fe.Field, "reason", fe.Err)
	}
	return nil
}

// lookup is the checker's view of the graph (see reloadCerts).
func (s *Service) lookup(ctx context.Context, soul, field string) (graph.Field, bool, error) {
	if s.reloading.Load() && strings.HasSuffix(soul, "/certs") {
		return graph.Field{}, false, nil
	}
	return auth.StoreLookup(s.db)(ctx, soul, field)
}

// authorize is the host's Authorizer: auth's certificate rules, plus the
// tick chain the relay was handed when the world was created.
func (s *Service) authorize(ctx context.Context, inst, key string, role heartbeat.Role, at time.Time) error {
	if key == s.relayID {
		if chain := s.worlds.chain(inst); len(chain) > 0 {
			if err := s.checker.Authorize(ctx, inst, key, auth.Role(role), at, chain...); err == nil {
				return nil
			}
		}
	}
	return s.checker.Authorize(ctx, inst, key, auth.Role(role), at)
}

// inbox is auth's Config.Inbox: it judges a lum/<I>/in/<id> node as one
// heartbeat message. Besides the signature, for worlds this relay
// sequences it applies the timestamp window and refuses messages already
// in the log ("duplicate: already sequenced"), so a re-sent message is
// neither stored nor forwarded again (table A row 15).
func (s *Service) inbox(ctx context.Context, soul string, fields map[string]graph.Field) (string, error) {
	m, err := s.messageIn(ctx, soul, fields)
	if err != nil {
		return "", err
	}
	if err := m.Verify(s.verifier); err != nil {
		return "", errors.New(heartbeat.Reason(err))
	}
	if s.worlds.hosted(m.Instance) {
		now := s.clk.Now()
		ts := time.UnixMilli(m.TS)
		if ts.Before(now.Add(-s.cfg.Host.WindowPast)) || ts.After(now.Add(s.cfg.Host.WindowFuture)) {
			return "", heartbeat.ErrTimestampWindow
		}
		if _, ok, err := s.log.Lookup(ctx, m.Instance, m.ID()); err == nil && ok {
			return "", errSequenced
		}
	}
	return m.Author, nil
}

var errSequenced = errors.New("duplicate: already sequenced")

// messageOf rebuilds the message of an inbox node (signature unchecked).
func (s *Service) messageOf(soul string, fields map[string]graph.Field) (heartbeat.Message, error) {
	vals := make(map[string]any, len(fields))
	for k, f := range fields {
		switch k {
		case "instance", "author", "ts", "nonce", "payload", "sig", "id":
			vals[k] = f.Value.Interface()
		default:
			return heartbeat.Message{}, errors.New("restricted: field " + k + " of a message is written by the relay")
		}
	}
	m, err := heartbeat.MessageFromInbox(soul, vals)
	if err != nil {
		return heartbeat.Message{}, errors.New(heartbeat.Reason(err))
	}
	return m, nil
}

// termStarted reconciles presence when the host starts a term on inst
// (called from the graph writer when a publication shows a new epoch).
func (s *Service) termStarted(inst string) {
	s.remote.termStarted(inst)
	s.host.SyncPresence(context.Background(), inst, s.pres.current(inst), func(_ heartbeat.Receipt, err error) {
		if err != nil && !errors.Is(err, heartbeat.ErrDuplicate) {
			s.logger.Debug("service: presence sync", "instance", inst, "err", err)
		}
	})
}

// Start runs the sequencer, the graph writer and the presence sweeper.
func (s *Service) Start() {
	s.startOnce.Do(func() {
		runCtx, runCancel := context.WithCancel(context.Background())
		hostCtx, hostCancel := context.WithCancel(context.Background())
		s.runCancel, s.hostCancel = runCancel, hostCancel
		s.hostDone = make(chan error, 1)
		go func() { s.hostDone <- s.host.Run(hostCtx) }()
		s.wg.Add(2)
		go func() { defer s.wg.Done(); s.pub.run(runCtx) }()
		go func() {
			defer s.wg.Done()
			t := s.clk.NewTicker(5 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-runCtx.Done():
					return
				case <-t.C():
					s.pres.sweep()
					s.remote.sweep(s.clk.Now())
				}
			}
		}()
	})
}

// Shutdown stops the sequencer after it has made everything queued durable
// and acknowledged (heartbeat.Host.Shutdown, bounded by the host's
// DrainTimeout) and released its leases, writes the last publications to
// the graph, and closes the heartbeat log. Shut the api.Server down first
// (no new messages), and close the graph DB after.
func (s *Service) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		var errs []error
		if s.hostCancel != nil {
			s.hostCancel()
			select {
			case err := <-s.hostDone:
				errs = append(errs, err)
			case <-ctx.Done():
				errs = append(errs, fmt.Errorf("service: sequencer drain: %w", ctx.Err()))
			}
			s.runCancel()
			s.wg.Wait()
		}
		s.pub.drain() // no playout delay for what is left
		if s.bolt != nil {
			errs = append(errs, s.bolt.Close())
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

// RelayKey returns the relay's public key (its identity: tick signatures,
// login binding, certificates it issues).
func (s *Service) RelayKey() *keys.Public { return s.key.Public() }

// PrivateKey returns the relay key itself, for the components that act as
// the relay (rest.Config.Keys). Never log it.
func (s *Service) PrivateKey() *keys.Private { return s.key }

// Checker returns the auth checker the service judges writes with.
func (s *Service) Checker() *auth.Checker { return s.checker }

// Host returns the heartbeat host.
func (s *Service) Host() *heartbeat.Host { return s.host }

// Log returns the ordered log.
func (s *Service) Log() heartbeat.Log { return s.log }

// Ready reports whether the time service can take messages (nil) — the
// heartbeat log is writable.
func (s *Service) Ready() error { return nil }

// Flushed returns a channel closed once every publication queued so far is
// in the graph (tests and shutdown).
func (s *Service) Flushed() <-chan struct{} { return s.pub.idle() }
