package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/krestianstvo/luminary/api"
	"github.com/krestianstvo/luminary/api/rest"
	"github.com/krestianstvo/luminary/api/service"
	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/keys"
	"github.com/krestianstvo/luminary/web"
)

// relayKeyPasswordEnv holds the password of <data>/relay.key. Without it
// the relay keeps a generated password in <data>/relay.key.pass (mode
// 0600); see api/service/relaykey.go.
const relayKeyPasswordEnv = "LUMINARY_RELAY_KEY_PASSWORD"

// ServiceFlags configure the time service (worlds, the metronome, the HTTP
// API) that serve runs inside the relay.
type ServiceFlags struct {
	AuthMode         string        `env:"LUMINARY_AUTH_MODE" placeholder:"secure|open" help:"Writes to souls outside worlds and SEA user space: secure (the default) refuses them, open passes them like a stock gun relay."`
	Secure           *bool         `env:"LUMINARY_SECURE" help:"The same switch as a boolean: --secure is --auth-mode secure, --secure=false is --auth-mode open."`
	OpenHosting      bool          `env:"LUMINARY_OPEN_HOSTING" help:"Let any key host the world it owns (signed POST /api/worlds with the owner key)."`
	Admins           []string      `env:"LUMINARY_ADMINS" sep:"," help:"Public keys that may administer the relay (host worlds, issue certificates)."`
	DemoTPS          int           `default:"20" env:"LUMINARY_DEMO_TPS" help:"Tick rate of the --demo world."`
	MaxWorlds        int           `default:"1000" env:"LUMINARY_MAX_WORLDS" help:"Most worlds this relay hosts."`
	DrainTimeout     time.Duration `default:"5s" env:"LUMINARY_DRAIN_TIMEOUT" help:"How long shutdown waits for queued messages to become durable."`
	TickPlayout      time.Duration `default:"25ms" env:"LUMINARY_TICK_PLAYOUT" help:"Least playout delay of idle ticks: each leaves the relay at least this long after its stamp, so followers get a steady cadence (0 pushes at once; rounds with messages never wait)."`
	TickPlayoutMax   time.Duration `default:"200ms" env:"LUMINARY_TICK_PLAYOUT_MAX" help:"Most the playout delay rises to when rounds take longer to publish (thousands of worlds); at or below --tick-playout the delay is fixed."`
	PublishDepth     int           `default:"3" env:"LUMINARY_PUBLISH_DEPTH" help:"Tick rounds being written to the graph and encoded for followers at once (rounds waiting for their playout do not count)."`
	RemoteMetronomes bool          `default:"true" negatable:"" env:"LUMINARY_REMOTE_METRONOMES" help:"Let a peer holding a world's tick role run its metronome through this relay (every batch is checked; the relay stands by). --no-remote-metronomes keeps every metronome on the relay."`
}

// mode resolves --auth-mode and its boolean alias --secure: secure unless
// either asks for open; given both, they must agree.
func (f ServiceFlags) mode() (auth.Mode, error) {
	mode := auth.Secure
	if f.AuthMode != "" {
		m, err := auth.ParseMode(f.AuthMode)
		if err != nil {
			return 0, usageError{err}
		}
		mode = m
	}
	if f.Secure == nil {
		return mode, nil
	}
	want := auth.Open
	if *f.Secure {
		want = auth.Secure
	}
	if f.AuthMode != "" && mode != want {
		return 0, usageError{fmt.Errorf("serve: --secure=%t and --auth-mode %s disagree", *f.Secure, f.AuthMode)}
	}
	return want, nil
}

// timeService is the composition serve runs: the service and its HTTP API.
type timeService struct {
	svc  *service.Service
	rest *rest.API
}

// openService opens the time service over db. data is the data directory
// ("" with --memory: a fresh relay key and an in-memory log).
func (f ServiceFlags) openService(db *graph.DB, data string, demo bool, logger *slog.Logger, reg *prometheus.Registry) (*timeService, error) {
	mode, err := f.mode()
	if err != nil {
		return nil, err
	}
	var admins []*keys.Public
	for _, a := range f.Admins {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		k, err := keys.ParsePublic(a)
		if err != nil {
			return nil, usageError{fmt.Errorf("serve: --admins: %w", err)}
		}
		admins = append(admins, k)
	}
	cfg := service.Config{
		DB:        db,
		DataDir:   data,
		Clock:     clock.System(),
		Logger:    logger,
		Registry:  reg,
		Mode:      mode,
		Demo:      demo,
		DemoTPS:   f.DemoTPS,
		MaxWorlds: f.MaxWorlds,
		Peers:     connectedPeers(reg),
	}
	cfg.Host.DrainTimeout = f.DrainTimeout
	cfg.Remote.Disabled = !f.RemoteMetronomes
	cfg.TickPlayout = f.TickPlayout
	cfg.MaxTickPlayout = max(f.TickPlayoutMax, f.TickPlayout, time.Nanosecond) // zero would take the default
	cfg.PublishDepth = f.PublishDepth
	if f.TickPlayout <= 0 {
		cfg.TickPlayout = -1 // service.Config: negative disables, zero takes the default
	}
	if p, ok := os.LookupEnv(relayKeyPasswordEnv); ok && p != "" {
		cfg.KeyPassword = []byte(p)
	}
	svc, err := service.New(cfg)
	if err != nil {
		return nil, err
	}
	ra, err := rest.New(rest.Config{Service: svc, Keys: svc.PrivateKey(), Admins: admins, OpenHosting: f.OpenHosting,
		Logger: logger, Info: rest.Info{Name: "luminary", Version: version(), Features: []string{"gun-wire", "heartbeat", "login", "snapshot-join"}}})
	if err != nil {
		_ = svc.Shutdown(context.Background())
		return nil, err
	}
	logger.Info("time service ready", "relay_key", svc.RelayKey().String(), "demo", svc.DemoInstance())
	return &timeService{svc: svc, rest: ra}, nil
}

// handler is the whole HTTP surface: Gun wire, API, web pages.
func (t *timeService) handler(srv *api.Server) http.Handler {
	return service.Handler(srv, t.rest, web.Handler())
}

// shutdown drains the sequencer (after the relay stopped taking messages)
// and writes the last publications; the caller closes the graph after.
func (t *timeService) shutdown(ctx context.Context, logger *slog.Logger) {
	t.rest.Close()
	if err := t.svc.Shutdown(ctx); err != nil {
		logger.Warn("time service shutdown", "err", err)
	}
}

// connectedPeers reads the relay's luminary_connections gauge.
func connectedPeers(reg *prometheus.Registry) func() int {
	return func() int {
		mfs, err := reg.Gather()
		if err != nil {
			return 0
		}
		for _, mf := range mfs {
			if mf.GetName() == "luminary_connections" && len(mf.GetMetric()) > 0 {
				return int(mf.GetMetric()[0].GetGauge().GetValue())
			}
		}
		return 0
	}
}
