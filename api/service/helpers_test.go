package service_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/krestianstvo/luminary/api"
	"github.com/krestianstvo/luminary/api/rest"
	"github.com/krestianstvo/luminary/api/service"
	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/client"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/keys"
)

// relay is a Luminary relay assembled in-process: graph store, api.Server,
// the time service and the HTTP API, served by httptest.
type relay struct {
	t     testing.TB
	dir   string
	svc   *service.Service
	srv   *api.Server
	db    *graph.DB
	store graph.Store
	rest  *rest.API
	hs    *httptest.Server
	reg   *prometheus.Registry
	URL   string // ws://…/gun
	HTTP  string // http://…

	stopOnce  sync.Once
	transient atomic.Pointer[func(string) bool] // svc.TransientSoul
}

type relayOpts struct {
	dir    string // "" → a new temp dir; "-" → memory only
	demo   bool
	key    *keys.Private
	mutate func(*service.Config)
	limits api.Limits

	inboxMemory int64 // graph.BoltOptions.TransientBytes (0: its default)
}

func startRelay(t testing.TB, o relayOpts) *relay {
	t.Helper()
	r := &relay{t: t, dir: o.dir}
	if r.dir == "" {
		r.dir = t.TempDir()
	}
	var store graph.Store
	if r.dir == "-" {
		store = graph.NewMemoryStore()
		r.dir = ""
	} else {
		// As serve opens it: heartbeat nodes volatile, hosted worlds'
		// inbox nodes transient.
		bs, err := graph.OpenBolt(filepath.Join(r.dir, "graph.db"), graph.BoltOptions{
			Volatile: heartbeat.IsHeartbeatSoul,
			Transient: func(soul string) bool {
				f := r.transient.Load()
				return f != nil && (*f)(soul)
			},
			TransientBytes: o.inboxMemory,
		})
		if err != nil {
			t.Fatal(err)
		}
		store = bs
	}
	r.store = store
	r.db = graph.NewDB(store, graph.DBConfig{})
	reg := prometheus.NewRegistry()
	r.reg = reg
	cfg := service.Config{DB: r.db, DataDir: r.dir, Key: o.key, KeyLogN: keys.MinLogN, Registry: reg, Demo: o.demo}
	if o.mutate != nil {
		o.mutate(&cfg)
	}
	svc, err := service.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.svc = svc
	hostedInbox := svc.TransientSoul
	r.transient.Store(&hostedInbox)
	srv, err := api.NewServer(api.Config{DB: r.db, Guard: svc.Guard(), Handlers: svc.Handlers(), Registry: reg, Limits: o.limits})
	if err != nil {
		t.Fatal(err)
	}
	r.srv = srv
	ra, err := rest.New(rest.Config{Service: svc, Keys: svc.PrivateKey(), OpenHosting: true})
	if err != nil {
		t.Fatal(err)
	}
	r.rest = ra
	svc.Start()
	srv.Start()
	r.hs = httptest.NewServer(service.Handler(srv, ra, nil))
	r.HTTP = r.hs.URL
	r.URL = "ws" + strings.TrimPrefix(r.hs.URL, "http") + "/gun"
	t.Cleanup(r.stop)
	return r
}

// stop shuts the relay down in the production order.
func (r *relay) stop() {
	r.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.rest.Close()
		r.hs.CloseClientConnections()
		if err := r.srv.Shutdown(ctx); err != nil {
			r.t.Logf("relay shutdown: %v", err)
		}
		r.hs.Close()
		if err := r.svc.Shutdown(ctx); err != nil {
			r.t.Logf("service shutdown: %v", err)
		}
		_ = r.db.Close()
		_ = r.store.Close()
	})
}

// world creates a world owned by the relay key-less owner the relay keeps,
// open to messages from any key (an AnySubject message certificate).
func (r *relay) openWorld(t testing.TB, alias string, tps int) string {
	t.Helper()
	ctx := context.Background()
	wi, err := r.svc.CreateWorld(ctx, rest.WorldSpec{Alias: alias, Name: alias, TPS: tps, Open: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.IssueCert(ctx, wi.Instance, auth.Cert{Instance: wi.Instance, Subject: auth.AnySubject,
		Roles: []auth.Role{auth.RoleMessage}, Expiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return wi.Instance
}

// tickKey returns a new key holding inst's tick role for an hour, and the
// certificate chain the relay issued and published for it.
func (r *relay) tickKey(t testing.TB, inst string) (*keys.Private, []*auth.Cert) {
	t.Helper()
	k := newKey(t)
	chain, err := r.svc.IssueCert(context.Background(), inst, auth.Cert{Instance: inst, Subject: k.Public().String(),
		Roles: []auth.Role{auth.RoleTick}, Expiry: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return k, chain
}

func newKey(t testing.TB) *keys.Private {
	t.Helper()
	k, err := keys.Generate(keys.Secp256k1)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func dial(t testing.TB, url string, k *keys.Private) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Config{Key: k, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func join(t testing.TB, c *client.Client, inst string) *client.World {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w, err := c.Join(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// collector drains a world's events into a list.
type collector struct {
	mu      sync.Mutex
	entries []heartbeat.Entry
	times   []float64
	ticks   int
	changed chan struct{}
	done    chan struct{}
}

func collect(w *client.World) *collector {
	c := &collector{changed: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for ev := range w.Events() {
			c.mu.Lock()
			if ev.Entry != nil {
				c.entries = append(c.entries, *ev.Entry)
				c.times = append(c.times, ev.Time)
			} else {
				c.ticks++
			}
			c.mu.Unlock()
			select {
			case c.changed <- struct{}{}:
			default:
			}
		}
	}()
	return c
}

// waitFor blocks until cond holds (checked whenever events arrive) or the
// deadline passes.
func (c *collector) waitFor(t testing.TB, d time.Duration, what string, cond func(entries []heartbeat.Entry) bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok := cond(c.entries)
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.changed:
		case <-deadline.C:
			c.mu.Lock()
			n := len(c.entries)
			c.mu.Unlock()
			t.Fatalf("timed out waiting for %s (%d entries seen)", what, n)
		}
	}
}

func (c *collector) snapshot() ([]heartbeat.Entry, []float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]heartbeat.Entry(nil), c.entries...), append([]float64(nil), c.times...)
}

// messageIDs returns the ids of the message entries in order.
func messageIDs(es []heartbeat.Entry) []heartbeat.Hash {
	var out []heartbeat.Hash
	for i := range es {
		if es[i].Kind == heartbeat.KindMessage {
			out = append(out, es[i].MessageID())
		}
	}
	return out
}

// acks collects the receipts of messages sent concurrently.
type acks struct {
	mu sync.Mutex
	m  map[heartbeat.Hash]heartbeat.Receipt
}

func newAcks() *acks { return &acks{m: map[heartbeat.Hash]heartbeat.Receipt{}} }

// send sends n messages from w at once (payload(i) each), records their
// receipts and returns the first error.
func (a *acks) send(ctx context.Context, w *client.World, n int, payload func(i int) []byte) error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc, err := w.Send(ctx, payload(i))
			if err != nil {
				errs <- err
				return
			}
			a.mu.Lock()
			a.m[rc.ID] = rc
			a.mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// all returns a copy of the receipts.
func (a *acks) all() map[heartbeat.Hash]heartbeat.Receipt {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[heartbeat.Hash]heartbeat.Receipt, len(a.m))
	for k, v := range a.m {
		out[k] = v
	}
	return out
}
