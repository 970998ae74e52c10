package rest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/time/rate"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/keys"
)

// Config configures the API. Service and Keys are required; every other
// zero field takes the default named in its comment.
type Config struct {
	// Service is the running relay the handlers call.
	Service Service
	// Keys is the relay's identity; its public key is published in the
	// info document.
	Keys *keys.Private
	// Admins may administer the relay: host worlds, and everything a
	// world's admin may do in every world.
	Admins []*keys.Public
	// OpenHosting lets any key host the world it owns (a signed POST
	// /api/worlds whose instance is the signer's key). Default false: only
	// Admins host worlds.
	OpenHosting bool

	// Logger receives one debug record per refusal and one error record
	// per internal fault; never bodies, passwords or keys (default:
	// discard).
	Logger *slog.Logger
	// Clock judges request dates, drives rate limits and the status
	// stream (default: the system clock).
	Clock clock.Clock
	// Info fills the info document at /.well-known/luminary.
	Info Info

	// MaxBodyBytes caps request bodies (default 1 MiB); larger ones are
	// refused with 413 too_large before they are read.
	MaxBodyBytes int64
	// MaxVerifyBytes caps the history uploaded to POST /api/verify/history
	// (default 16 MiB).
	MaxVerifyBytes int64
	// AuthWindow is how far a signed request's date may be from the relay
	// clock, either way (default 60 s). Nonces are remembered this long.
	AuthWindow time.Duration
	// MaxNonces bounds the remembered (key, nonce) pairs (default
	// 100,000); when full, signed requests are refused with 429 until
	// some expire.
	MaxNonces int
	// MaxHistoryLimit caps the entries of one history read (default 1000;
	// a read without a limit gets 100).
	MaxHistoryLimit int
	// MaxCertValidity caps the lifetime of certificates the relay signs
	// (default 366 days).
	MaxCertValidity time.Duration

	// KeyLogN is the scrypt work factor of key files made by POST
	// /api/keys (default keys.DefaultLogN).
	KeyLogN int
	// MinPasswordBytes is the shortest password POST /api/keys accepts
	// (default 8).
	MinPasswordBytes int
	// MaxKeyJobs bounds concurrent key generations (scrypt takes 32 MiB
	// and about 0.1 s each at the default work factor; default 2).
	MaxKeyJobs int
	// MaxVerifyJobs bounds concurrent history verifications (default 2).
	MaxVerifyJobs int
	// KeyLimit, JoinLimit and VerifyLimit are per-client rate limits of
	// POST /api/keys (default 0.2/s, burst 3), POST
	// /api/worlds/{world}/join (default 2/s, burst 10) and POST
	// /api/verify/* (default 5/s, burst 20).
	KeyLimit, JoinLimit, VerifyLimit Limit
	// MaxClients bounds the per-client buckets of each limit (default
	// 10,000).
	MaxClients int

	// StatusEvery is the interval of /api/status/stream events (default
	// 1 s); MaxStreams bounds concurrent streams (default 32).
	StatusEvery time.Duration
	MaxStreams  int
}

// Info describes the relay in the info document.
type Info struct {
	Name        string           // relay name shown to users
	Description string           // one line
	Version     string           // software version
	Features    []string         // features beyond the HTTP API's own (e.g. "gun-wire", "private-worlds")
	Limits      map[string]int64 // other limits clients should know (e.g. "ws_read_limit")
}

// Defaults.
const (
	DefaultMaxBodyBytes    = 1 << 20
	DefaultMaxVerifyBytes  = 16 << 20
	DefaultAuthWindow      = 60 * time.Second
	DefaultMaxNonces       = 100_000
	DefaultMaxHistoryLimit = 1000
	DefaultHistoryLimit    = 100
	DefaultMaxCertValidity = 366 * 24 * time.Hour
	DefaultMinPassword     = 8
	MaxPasswordBytes       = 1024
)

func (c Config) withDefaults() (Config, error) {
	if c.Service == nil || c.Keys == nil {
		return c, errors.New("rest: Config.Service and Config.Keys are required")
	}
	for _, a := range c.Admins {
		if a == nil {
			return c, errors.New("rest: nil key in Config.Admins")
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.System()
	}
	def64 := func(p *int64, d int64) {
		if *p <= 0 {
			*p = d
		}
	}
	def := func(p *int, d int) {
		if *p <= 0 {
			*p = d
		}
	}
	defDur := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	defLim := func(p *Limit, r rate.Limit, b int) {
		if p.Rate == 0 {
			p.Rate = r
		}
		if p.Burst <= 0 {
			p.Burst = b
		}
	}
	def64(&c.MaxBodyBytes, DefaultMaxBodyBytes)
	def64(&c.MaxVerifyBytes, DefaultMaxVerifyBytes)
	defDur(&c.AuthWindow, DefaultAuthWindow)
	def(&c.MaxNonces, DefaultMaxNonces)
	def(&c.MaxHistoryLimit, DefaultMaxHistoryLimit)
	defDur(&c.MaxCertValidity, DefaultMaxCertValidity)
	if c.KeyLogN == 0 {
		c.KeyLogN = keys.DefaultLogN
	}
	if c.KeyLogN < keys.MinLogN || c.KeyLogN > keys.MaxLogN {
		return c, errors.New("rest: Config.KeyLogN out of range")
	}
	def(&c.MinPasswordBytes, DefaultMinPassword)
	def(&c.MaxKeyJobs, 2)
	def(&c.MaxVerifyJobs, 2)
	defLim(&c.KeyLimit, 0.2, 3)
	defLim(&c.JoinLimit, 2, 10)
	defLim(&c.VerifyLimit, 5, 20)
	def(&c.MaxClients, 10_000)
	defDur(&c.StatusEvery, time.Second)
	def(&c.MaxStreams, 32)
	return c, nil
}

// API is the HTTP API. Create it with [New], add its routes to a router
// with [API.Mount], and call [API.Close] when the server shuts down (it
// ends the status streams, which http.Server.Shutdown would wait for).
type API struct {
	cfg    Config
	svc    Service
	relay  string
	admins []string
	verify verifier

	keyLim, joinLim, verifyLim *clientLimiter
	keyJobs, verifyJobs        semaphore
	streams                    semaphore

	done      chan struct{}
	closeOnce sync.Once
}

// New returns the API for cfg. It fails only on a nonsensical Config.
func New(cfg Config) (*API, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	a := &API{
		cfg:        cfg,
		svc:        cfg.Service,
		relay:      cfg.Keys.Public().String(),
		verify:     verifier{window: cfg.AuthWindow, keys: keys.NewCache(4096), nonces: newNonceCache(cfg.MaxNonces)},
		keyLim:     newClientLimiter(cfg.KeyLimit, cfg.MaxClients),
		joinLim:    newClientLimiter(cfg.JoinLimit, cfg.MaxClients),
		verifyLim:  newClientLimiter(cfg.VerifyLimit, cfg.MaxClients),
		keyJobs:    make(semaphore, cfg.MaxKeyJobs),
		verifyJobs: make(semaphore, cfg.MaxVerifyJobs),
		streams:    make(semaphore, cfg.MaxStreams),
		done:       make(chan struct{}),
	}
	for _, k := range cfg.Admins {
		a.admins = append(a.admins, k.String())
	}
	return a, nil
}

// Close ends open status streams; later streams are refused with 503.
// Call it once, from the server's shutdown (http.Server.RegisterOnShutdown).
func (a *API) Close() { a.closeOnce.Do(func() { close(a.done) }) }

// Mount adds the routes to r: /api/… (a sub-router with JSON 404 and 405
// answers), /.well-known/luminary and /openapi.yaml.
func (a *API) Mount(r chi.Router) {
	r.With(a.headers(false)).Get("/.well-known/luminary", a.handle(route{}, a.wellKnown))
	r.With(a.headers(false)).Get("/openapi.yaml", a.serveSpec)
	r.Mount("/api", a.Router())
}

// Router returns the /api sub-router (paths relative to /api), for
// servers that mount it themselves.
func (a *API) Router() chi.Router {
	r := chi.NewRouter()
	r.Use(a.headers(true), a.recoverer)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, fail(CodeNotFound, "no such route"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, fail(CodeMethodNotAllowed, "method not allowed on this route"))
	})
	json := []string{"application/json"}
	verifyLim := route{media: json, limiter: a.verifyLim}
	r.Get("/status", a.handle(route{}, a.status))
	r.Get("/status/stream", a.handle(route{}, a.statusStream))
	r.Get("/worlds", a.handle(route{}, a.listWorlds))
	r.Post("/worlds", a.handle(route{media: json, signed: true}, a.createWorld))
	r.Get("/worlds/{world}", a.handle(route{}, a.worldInfo))
	r.Get("/worlds/{world}/presence", a.handle(route{}, a.presence))
	r.Get("/worlds/{world}/history", a.handle(route{}, a.history))
	r.Get("/worlds/{world}/export", a.handle(route{}, a.export))
	r.Post("/worlds/{world}/certs", a.handle(route{media: json, signed: true}, a.issueCert))
	r.Post("/worlds/{world}/join", a.handle(route{media: json, limiter: a.joinLim}, a.join))
	r.Post("/verify/message", a.handle(verifyLim, a.verifyMessage))
	r.Post("/verify/history", a.handle(route{
		media:   []string{"application/x-ndjson", "application/jsonl", "text/plain"},
		limiter: a.verifyLim, maxBody: a.cfg.MaxVerifyBytes,
	}, a.verifyHistory))
	r.Post("/keys", a.handle(route{media: json, limiter: a.keyLim}, a.newKey))
	return r
}

// headers sets the headers every response carries: nosniff always; for
// /api also Cache-Control: no-store (answers hold live or secret data).
func (a *API) headers(api bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("X-Content-Type-Options", "nosniff")
			if api {
				h.Set("Cache-Control", "no-store")
			}
			next.ServeHTTP(w, r)
		})
	}
}

// recoverer answers a panicking handler with 500 internal and logs it.
func (a *API) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.cfg.Logger.Error("rest: handler panic", "method", r.Method, "route", routePattern(r), "panic", v)
				a.writeError(w, r, fail(CodeInternal, "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// route says how a handler's request is admitted.
type route struct {
	media   []string       // accepted Content-Types of a body (nil: no body expected)
	signed  bool           // a valid signature is required (else: verified only when present)
	limiter *clientLimiter // per-client rate limit (nil: none)
	maxBody int64          // body cap (0: Config.MaxBodyBytes)
}

// call is one admitted request.
type call struct {
	r      *http.Request
	ctx    context.Context
	body   []byte
	signer *keys.Public // nil: not signed
	now    time.Time
}

// handle admits a request (cheapest checks first: rate, declared size,
// read with cap, media type, signature) and runs fn. fn writes its answer
// or returns an error, which is answered as JSON.
func (a *API) handle(rt route, fn func(w http.ResponseWriter, c *call) error) http.HandlerFunc {
	maxBody := rt.maxBody
	if maxBody <= 0 {
		maxBody = a.cfg.MaxBodyBytes
	}
	return func(w http.ResponseWriter, r *http.Request) {
		c := &call{r: r, ctx: r.Context(), now: a.cfg.Clock.Now()}
		if err := a.admit(w, r, rt, maxBody, c); err != nil {
			a.writeError(w, r, err)
			return
		}
		if err := fn(w, c); err != nil {
			a.writeError(w, r, err)
		}
	}
}

func (a *API) admit(w http.ResponseWriter, r *http.Request, rt route, maxBody int64, c *call) error {
	if rt.limiter != nil && !rt.limiter.allow(r, c.now) {
		w.Header().Set("Retry-After", "1")
		return fail(CodeRateLimited, "too many requests from this address; slow down")
	}
	if r.ContentLength > maxBody {
		return fail(CodeTooLarge, "body larger than the limit")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fail(CodeTooLarge, "body larger than the limit")
		}
		return fail(CodeInvalid, "body could not be read")
	}
	c.body = body
	if rt.media != nil {
		if mt := mediaType(r); !slices.Contains(rt.media, mt) {
			return fail(CodeUnsupportedMedia, "Content-Type must be "+strings.Join(rt.media, " or "))
		}
	} else if len(body) > 0 {
		return fail(CodeInvalid, "this route takes no body")
	}
	if rt.signed || signed(r) {
		if !signed(r) {
			return fail(CodeUnauthenticated, "this call must be signed (headers "+HeaderKey+", "+HeaderDate+", "+HeaderNonce+", "+HeaderSignature+")")
		}
		pub, e := a.verify.verify(r, body, c.now)
		if e != nil {
			return e
		}
		c.signer = pub
	}
	return nil
}

// writeJSON answers v as JSON with status.
func (a *API) writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		a.cfg.Logger.Error("rest: encode answer", "err", err)
		a.writeError(w, nil, fail(CodeInternal, "internal error"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// errorBody is the JSON of every refusal.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// writeError answers err as {"error":{"code","message"}}.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := CodeOf(err)
	method, pattern := "", ""
	if r != nil {
		method, pattern = r.Method, routePattern(r)
	}
	if code == CodeInternal {
		a.cfg.Logger.Error("rest: internal error", "method", method, "route", pattern, "err", err)
	} else {
		a.cfg.Logger.Debug("rest: refused", "method", method, "route", pattern, "code", code)
	}
	b, _ := json.Marshal(errorBody{errorDetail{code, msg}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Del("Content-Disposition")
	w.WriteHeader(code.Status())
	_, _ = w.Write(append(b, '\n'))
}

// routePattern is the chi route of r (no parameters, so no user data in
// logs).
func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		if p := rc.RoutePattern(); p != "" {
			return p
		}
	}
	return "(unrouted)"
}

// isRelayAdmin reports whether key is one of Config.Admins.
func (a *API) isRelayAdmin(key *keys.Public) bool {
	return key != nil && slices.Contains(a.admins, key.String())
}

// requireWorldAdmin lets through a relay admin, the world's owner, or a
// holder of the admin role in the world.
func (a *API) requireWorldAdmin(c *call, w WorldInfo) error {
	if c.signer == nil {
		return fail(CodeUnauthenticated, "this call must be signed")
	}
	k := c.signer.String()
	if a.isRelayAdmin(c.signer) || k == w.Instance {
		return nil
	}
	err := a.svc.Authorize(c.ctx, w.Instance, k, auth.RoleAdmin)
	if err == nil {
		return nil
	}
	if code, _ := CodeOf(err); code == CodeInternal {
		return err
	}
	return fail(CodeForbidden, "the signer is not an admin of this world")
}

// canRead lets anyone read a public world, and members (or admins) a
// private one.
func (a *API) canRead(c *call, w WorldInfo) error {
	if !w.Private {
		return nil
	}
	if c.signer == nil {
		return fail(CodeUnauthenticated, "private world: sign the request with a member's key")
	}
	k := c.signer.String()
	if a.isRelayAdmin(c.signer) || k == w.Instance {
		return nil
	}
	ok, err := a.svc.Member(c.ctx, w.Instance, k)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	if a.svc.Authorize(c.ctx, w.Instance, k, auth.RoleAdmin) == nil {
		return nil
	}
	return fail(CodeNotMember, "the signer is not a member of this private world")
}
