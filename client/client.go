package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/keys"
)

// Config configures a [Client]. Every zero field takes the default named in
// its comment.
type Config struct {
	// Key is the client's identity: it logs in with it (when the relay
	// offers login) and signs the messages it sends. Nil makes a read-only
	// client that can follow public worlds but not send.
	Key *keys.Private
	// RelayKey, if set, is the relay public key text the client expects:
	// a login challenge from any other key fails Dial.
	RelayKey string
	// RequireLogin makes Dial fail when the relay does not offer login.
	RequireLogin bool
	// Clock is the client clock (message timestamps, HAM states of its
	// writes, backoff timers). Default: the system clock.
	Clock clock.Clock
	// Logger receives connection events (default: discard).
	Logger *slog.Logger
	// Header is sent with the WebSocket handshake (e.g. Origin).
	Header http.Header
	// Dialer dials the WebSocket (default: websocket.DefaultDialer with
	// compression off).
	Dialer *websocket.Dialer
	// HTTPClient is used for the relay's HTTP API (Host); default
	// http.DefaultClient.
	HTTPClient *http.Client

	// ReadLimit is the largest frame accepted (default 64 MiB: a get reply
	// of a full log block can be large).
	ReadLimit int64
	// RequestTimeout bounds one get, put or login round trip (default 10 s).
	RequestTimeout time.Duration
	// LoginTimeout is how long Dial waits for an answer to a login
	// challenge before deciding the relay does not offer login (default
	// 3 s; stock gun.js relays do not answer).
	LoginTimeout time.Duration
	// ResendAfter is how long Send waits for a receipt before putting the
	// message again (idempotent: the relay answers a re-sent message with
	// its original seq). Default 5 s.
	ResendAfter time.Duration
	// IdleTimeout closes and redials a connection that received nothing
	// for this long (default 65 s; Luminary and gun relays send a
	// keep-alive every 20 s).
	IdleTimeout time.Duration
	// WriteTimeout bounds one frame write (default 10 s).
	WriteTimeout time.Duration
	// BackoffMin and BackoffMax bound the reconnect backoff (defaults
	// 100 ms and 5 s; each wait is jittered to 50-100 %).
	BackoffMin, BackoffMax time.Duration
	// MaxBacklog bounds the events a world holds for a slow reader of its
	// stream; beyond it the world fails with ErrSlowConsumer (default
	// 1,000,000).
	MaxBacklog int
	// MaxPending bounds the entries a world's follower holds ahead of the
	// applied position (default 1<<20). A join replays the log from its
	// start (or snapshot), so this bounds the log a join can verify.
	MaxPending int
	// MaxGapFetch bounds the entries requested per gap-fill round (default
	// 1024).
	MaxGapFetch int
}

func (c Config) withDefaults() Config {
	if c.Clock == nil {
		c.Clock = clock.System()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Dialer == nil {
		d := *websocket.DefaultDialer
		d.EnableCompression = false
		c.Dialer = &d
	}
	if c.HTTPClient == nil {
		c.HTTPClient = http.DefaultClient
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.ReadLimit <= 0 {
		c.ReadLimit = 64 << 20
	}
	def(&c.RequestTimeout, 10*time.Second)
	def(&c.LoginTimeout, 3*time.Second)
	def(&c.ResendAfter, 5*time.Second)
	def(&c.IdleTimeout, 65*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
	def(&c.BackoffMin, 100*time.Millisecond)
	def(&c.BackoffMax, 5*time.Second)
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	if c.MaxBacklog <= 0 {
		c.MaxBacklog = 1_000_000
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 1 << 20
	}
	if c.MaxGapFetch <= 0 {
		c.MaxGapFetch = 1024
	}
	return c
}

// Errors callers branch on.
var (
	// ErrClosed: the client or world was closed.
	ErrClosed = errors.New("client: closed")
	// ErrNoKey: the operation needs Config.Key.
	ErrNoKey = errors.New("client: no key configured")
	// ErrNoLogin: the relay does not offer login and Config.RequireLogin is set.
	ErrNoLogin = errors.New("client: relay does not offer login")
	// ErrRelayKey: the relay's login challenge names another key than
	// Config.RelayKey.
	ErrRelayKey = errors.New("client: relay key mismatch")
	// ErrSlowConsumer: a world's stream was not read and its backlog
	// exceeded Config.MaxBacklog.
	ErrSlowConsumer = errors.New("client: stream backlog full")
)

// RelayError is a refusal sent by the relay; Reason carries the
// machine-readable prefix ("invalid:", "restricted:", "auth-required:",
// "rate-limited:", "duplicate:", "blocked:").
type RelayError struct{ Reason string }

func (e *RelayError) Error() string { return "client: relay refused: " + e.Reason }

// Prefix returns the reason's prefix up to and including the colon.
func (e *RelayError) Prefix() string {
	if p, _, ok := strings.Cut(e.Reason, ":"); ok {
		return p + ":"
	}
	return ""
}

// Client is one logical connection to a Luminary (or plain Gun) relay,
// speaking Gun's wire protocol over a WebSocket. It reconnects with backoff
// when the connection drops, logs in again and re-sends its subscriptions
// and unanswered requests. It is safe for concurrent use.
type Client struct {
	url string
	cfg Config
	pid string
	log *slog.Logger
	clk clock.Clock
	jl  jsjson.Limits
	gl  graph.Limits

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	lostCh chan uint64

	wmu sync.Mutex // serialises frame writes

	mu      sync.Mutex
	ws      *websocket.Conn
	gen     uint64
	up      chan struct{} // closed while connected
	pending map[string]*request
	subs    map[string]bool
	worlds  map[string]*World
	// sequencers: the worlds whose metronome runs here (RunMetronome).
	sequencers map[string]*sequencerIn
	seen       *dedup
	relayKey   string
	loggedIn   bool
	closed     bool
	connects   int
}

// request is a message waiting for replies ("@" = its id).
type request struct {
	build  func(id string) []byte // nil: never re-sent
	handle func(m *msg) bool      // true when the request is complete
	fail   func(err error)
}

// Dial connects to the relay at url (ws://host:port/gun, or http(s)://…,
// which is mapped to ws(s)), answers the Gun handshake and logs in with
// cfg.Key when the relay offers login. It returns once the first connection
// is up; later drops are repaired in the background.
func Dial(ctx context.Context, url string, cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	url = wsURL(url)
	c := &Client{url: url, cfg: cfg, pid: newID(), log: cfg.Logger, clk: cfg.Clock,
		jl:      jsjson.Limits{MaxBytes: int(cfg.ReadLimit), MaxDepth: 16, MaxMembers: 1 << 20, MaxElements: 10000},
		gl:      graph.Limits{MaxSouls: -1, MaxFieldsPerNode: -1, MaxFields: -1, MaxValueBytes: -1},
		lostCh:  make(chan uint64, 1),
		up:      make(chan struct{}),
		pending: map[string]*request{}, subs: map[string]bool{}, worlds: map[string]*World{}, seen: newDedup(20000),
		sequencers: map[string]*sequencerIn{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	ws, err := c.dial(ctx)
	if err != nil {
		c.cancel()
		return nil, err
	}
	c.attach(ws)
	if err := c.setup(ctx); err != nil {
		c.Close()
		return nil, err
	}
	c.wg.Add(1)
	go c.supervise()
	return c, nil
}

// wsURL maps http(s) URLs to ws(s) and adds /gun to a bare host.
func wsURL(u string) string {
	switch {
	case strings.HasPrefix(u, "http://"):
		u = "ws://" + strings.TrimPrefix(u, "http://")
	case strings.HasPrefix(u, "https://"):
		u = "wss://" + strings.TrimPrefix(u, "https://")
	}
	if _, rest, ok := strings.Cut(u, "://"); ok && !strings.Contains(rest, "/") {
		u += "/gun"
	}
	return u
}

func (c *Client) dial(ctx context.Context) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	ws, resp, err := c.cfg.Dialer.DialContext(dctx, c.url, c.cfg.Header)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("client: dial %s: %w (HTTP %d)", c.url, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("client: dial %s: %w", c.url, err)
	}
	ws.SetReadLimit(c.cfg.ReadLimit)
	return ws, nil
}

// attach makes ws the current connection and starts its reader.
func (c *Client) attach(ws *websocket.Conn) {
	c.mu.Lock()
	c.ws = ws
	c.gen++
	gen := c.gen
	c.connects++
	c.mu.Unlock()
	ws.SetPingHandler(func(data string) error {
		_ = ws.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout))
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(c.cfg.WriteTimeout))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	c.wg.Add(1)
	go c.read(ws, gen)
}

// setup runs on every new connection: login, then subscriptions and
// unanswered requests again (with new ids: relays remember ids), then the
// worlds catch up.
func (c *Client) setup(ctx context.Context) error {
	if c.cfg.Key != nil {
		if err := c.login(ctx); err != nil {
			return err
		}
	} else if c.cfg.RequireLogin {
		return ErrNoKey
	}
	c.mu.Lock()
	souls := make([]string, 0, len(c.subs))
	for s := range c.subs {
		souls = append(souls, s)
	}
	var resend []*request
	for id, r := range c.pending {
		if r.build != nil {
			delete(c.pending, id)
			resend = append(resend, r)
		}
	}
	up := c.up
	worlds := make([]*World, 0, len(c.worlds))
	for _, w := range c.worlds {
		worlds = append(worlds, w)
	}
	c.mu.Unlock()
	select {
	case <-up:
	default:
		close(up)
	}
	for _, s := range souls {
		_ = c.send(getFrame(newID(), s, ""))
	}
	for _, r := range resend {
		id := newID()
		c.mu.Lock()
		c.pending[id] = r
		c.mu.Unlock()
		_ = c.send(r.build(id))
	}
	for _, w := range worlds {
		w.reconnected()
	}
	return nil
}

// login runs auth's challenge–response exchange (auth.AuthMember).
func (c *Client) login(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, c.cfg.LoginTimeout)
	defer cancel()
	var ch auth.Challenge
	err := c.roundTrip(lctx, false, func(id string) []byte { return auth.AppendChallengeRequest(nil, id) }, func(m *msg) (bool, error) {
		if v, ok := m.member(auth.AuthMember); ok {
			var err error
			ch, err = auth.ParseChallenge(v)
			return true, err
		}
		if m.Err != "" {
			return true, &RelayError{m.Err}
		}
		return false, nil
	})
	if err != nil {
		var re *RelayError
		if errors.As(err, &re) || errors.Is(err, context.DeadlineExceeded) {
			if c.cfg.RequireLogin {
				return fmt.Errorf("%w: %v", ErrNoLogin, err)
			}
			c.log.Debug("client: relay offers no login", "err", err)
			return nil
		}
		return err
	}
	if c.cfg.RelayKey != "" && ch.Relay != c.cfg.RelayKey {
		return fmt.Errorf("%w: got %s, want %s", ErrRelayKey, ch.Relay, c.cfg.RelayKey)
	}
	resp, err := auth.Respond(c.cfg.Key, ch, c.clk.Now())
	if err != nil {
		return err
	}
	rctx, cancel2 := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel2()
	err = c.roundTrip(rctx, false, func(id string) []byte { return resp.AppendJSON(nil, id) }, func(m *msg) (bool, error) {
		if m.Err != "" {
			return true, &RelayError{m.Err}
		}
		return m.OK, nil
	})
	if err != nil {
		return fmt.Errorf("client: login: %w", err)
	}
	c.mu.Lock()
	c.relayKey, c.loggedIn = ch.Relay, true
	c.mu.Unlock()
	return nil
}

// RelayKey returns the relay's public key text as its login challenge named
// it ("" when the relay offers no login).
func (c *Client) RelayKey() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.relayKey
}

// LoggedIn reports whether the client has proved its key to the relay.
func (c *Client) LoggedIn() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loggedIn
}

// Connects returns how many connections the client has made (1 + the
// reconnects).
func (c *Client) Connects() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connects
}

// supervise redials after a connection is lost.
func (c *Client) supervise() {
	defer c.wg.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.lostCh:
		}
		backoff := c.cfg.BackoffMin
		for {
			wait := backoff/2 + time.Duration(rand.Int64N(int64(backoff/2)+1))
			t := c.clk.NewTimer(wait)
			select {
			case <-c.ctx.Done():
				t.Stop()
				return
			case <-t.C():
			}
			backoff = min(backoff*2, c.cfg.BackoffMax)
			ws, err := c.dial(c.ctx)
			if err != nil {
				c.log.Debug("client: redial failed", "err", err)
				continue
			}
			c.attach(ws)
			if err := c.setup(c.ctx); err != nil {
				c.log.Warn("client: reconnect setup failed", "err", err)
				_ = ws.Close()
				// The reader reports the loss; wait for it.
				break
			}
			c.log.Debug("client: reconnected", "url", c.url)
			break
		}
	}
}

// read reads frames from ws until it fails.
func (c *Client) read(ws *websocket.Conn, gen uint64) {
	defer c.wg.Done()
	for {
		_ = ws.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout))
		kind, data, err := ws.ReadMessage()
		if err != nil {
			c.lost(ws, gen, err)
			return
		}
		if kind != websocket.TextMessage {
			continue
		}
		msgs, err := decodeFrame(data, c.jl, c.gl)
		if err != nil {
			c.log.Debug("client: bad frame", "err", err)
			continue
		}
		for _, m := range msgs {
			c.handle(ws, m)
		}
	}
}

// lost marks a connection gone and asks the supervisor to redial.
func (c *Client) lost(ws *websocket.Conn, gen uint64, err error) {
	_ = ws.Close()
	c.mu.Lock()
	current := c.gen == gen && c.ws == ws
	if current {
		c.ws = nil
		select {
		case <-c.up:
			c.up = make(chan struct{})
		default:
		}
	}
	closed := c.closed
	c.mu.Unlock()
	if !current || closed {
		return
	}
	c.log.Debug("client: connection lost", "err", err)
	select {
	case c.lostCh <- gen:
	default:
	}
}

// handle dispatches one message.
func (c *Client) handle(ws *websocket.Conn, m *msg) {
	if m.ID != "" && !c.seen.add(m.ID) {
		return
	}
	if m.Dam != "" {
		if m.Dam == "?" && m.Ack == "" {
			_ = c.sendOn(ws, helloFrame(newID(), m.ID, c.pid))
		}
		return
	}
	if m.Put != nil {
		c.deliver(m.Put)
	}
	if m.Ack == "" {
		if v, ok := m.member(heartbeat.SeqMember); ok {
			c.seqRequest(v)
		}
		return
	}
	c.mu.Lock()
	r := c.pending[m.Ack]
	c.mu.Unlock()
	if r != nil && r.handle(m) {
		c.mu.Lock()
		if c.pending[m.Ack] == r {
			delete(c.pending, m.Ack)
		}
		c.mu.Unlock()
	}
}

// deliver hands the nodes of a put to the worlds they belong to.
func (c *Client) deliver(g graph.Graph) {
	byWorld := map[*World]graph.Graph{}
	c.mu.Lock()
	for soul, n := range g {
		inst, ok := instanceOf(soul)
		if !ok {
			continue
		}
		if w := c.worlds[inst]; w != nil {
			if byWorld[w] == nil {
				byWorld[w] = graph.Graph{}
			}
			byWorld[w][soul] = n
		}
	}
	c.mu.Unlock()
	for w, part := range byWorld {
		w.receive(part)
	}
}

// instanceOf returns <I> of a soul lum/<I>[/…].
func instanceOf(soul string) (string, bool) {
	rest, ok := strings.CutPrefix(soul, "lum/")
	if !ok {
		return "", false
	}
	inst, _, _ := strings.Cut(rest, "/")
	return inst, inst != ""
}

// send writes a frame on the current connection.
func (c *Client) send(frame []byte) error {
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	if ws == nil {
		return errNotConnected
	}
	return c.sendOn(ws, frame)
}

var errNotConnected = errors.New("client: not connected")

func (c *Client) sendOn(ws *websocket.Conn, frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = ws.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
	err := ws.WriteMessage(websocket.TextMessage, frame)
	if err != nil {
		_ = ws.Close() // the reader notices and reconnects
	}
	return err
}

// roundTrip sends a request and waits until handle reports it complete.
// With resend, the request is sent again (with a new id) on every
// reconnect until it completes.
func (c *Client) roundTrip(ctx context.Context, resend bool, build func(id string) []byte, handle func(m *msg) (bool, error)) error {
	done := make(chan error, 1)
	r := &request{
		handle: func(m *msg) bool {
			ok, err := handle(m)
			if ok || err != nil {
				select {
				case done <- err:
				default:
				}
				return true
			}
			return false
		},
		fail: func(err error) {
			select {
			case done <- err:
			default:
			}
		},
	}
	if resend {
		r.build = build
	}
	id := newID()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.pending[id] = r
	ws := c.ws
	c.mu.Unlock()
	if ws != nil {
		_ = c.sendOn(ws, build(id))
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		c.mu.Lock()
		for k, v := range c.pending {
			if v == r {
				delete(c.pending, k)
			}
		}
		c.mu.Unlock()
		return ctx.Err()
	}
}

// Get reads one node from the relay (and subscribes the connection to it,
// as every Gun get does). It returns nil when the relay knows nothing.
func (c *Client) Get(ctx context.Context, soul string) (*graph.Node, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	node := graph.NewNode(soul)
	err := c.roundTrip(ctx, true, func(id string) []byte { return getFrame(id, soul, "") }, func(m *msg) (bool, error) {
		if m.Err != "" {
			return true, &RelayError{m.Err}
		}
		if n := m.Put[soul]; n != nil {
			for k, f := range n.Fields {
				if cur, ok := node.Fields[k]; !ok || f.State >= cur.State {
					node.Fields[k] = f
				}
			}
		}
		return !m.more, nil
	})
	if err != nil {
		return nil, err
	}
	if len(node.Fields) == 0 {
		return nil, nil
	}
	return node, nil
}

// Put writes a graph diff and waits for the relay's acknowledgement. A
// refusal is a *RelayError.
func (c *Client) Put(ctx context.Context, diff graph.Graph) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	return c.roundTrip(ctx, true, func(id string) []byte { return putFrame(id, diff) }, func(m *msg) (bool, error) {
		if _, ok := m.member("lum"); ok {
			return false, nil // a sequencing receipt, not the put's ack
		}
		if m.Err != "" {
			return true, &RelayError{m.Err}
		}
		return m.OK, nil
	})
}

// subscribe adds soul to the souls re-subscribed on every reconnect and
// sends a get for it; with wait it returns after the (first) reply.
func (c *Client) subscribe(ctx context.Context, soul string, wait bool) error {
	c.mu.Lock()
	c.subs[soul] = true
	c.mu.Unlock()
	if !wait {
		return c.send(getFrame(newID(), soul, ""))
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	return c.roundTrip(ctx, true, func(id string) []byte { return getFrame(id, soul, "") }, func(m *msg) (bool, error) {
		if m.Err != "" {
			return true, &RelayError{m.Err}
		}
		return !m.more, nil
	})
}

// unsubscribe stops re-subscribing soul on reconnect (Gun has no
// unsubscribe message: the current connection keeps receiving it).
func (c *Client) unsubscribe(soul string) {
	c.mu.Lock()
	delete(c.subs, soul)
	c.mu.Unlock()
}

// Close ends the client: every world stream closes, waiting calls fail
// with ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	ws := c.ws
	c.ws = nil
	pending := c.pending
	c.pending = map[string]*request{}
	worlds := c.worlds
	c.worlds = map[string]*World{}
	c.mu.Unlock()
	c.cancel()
	if ws != nil {
		c.wmu.Lock()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.wmu.Unlock()
		_ = ws.Close()
	}
	for _, r := range pending {
		r.fail(ErrClosed)
	}
	for _, w := range worlds {
		w.fail(ErrClosed)
	}
	c.wg.Wait()
	return nil
}

// dedup remembers recent message ids (bounded, oldest forgotten first).
type dedup struct {
	mu   sync.Mutex
	max  int
	set  map[string]struct{}
	ring []string
	next int
}

func newDedup(max int) *dedup {
	return &dedup{max: max, set: make(map[string]struct{}, max), ring: make([]string, max)}
}

// add reports whether id is new (and remembers it).
func (d *dedup) add(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.set[id]; ok {
		return false
	}
	if old := d.ring[d.next]; old != "" {
		delete(d.set, old)
	}
	d.ring[d.next] = id
	d.next = (d.next + 1) % d.max
	d.set[id] = struct{}{}
	return true
}
