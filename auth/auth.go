package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/keys"
	"github.com/krestianstvo/luminary/sea"
)

// Mode selects what happens to souls that are neither SEA user space nor an
// instance namespace (nor the alias lists or content-addressed souls, which
// are judged by gun's own rules in both modes).
type Mode uint8

const (
	// Secure refuses every write outside user space, the alias lists,
	// content-addressed souls and instance namespaces, with gun's reason
	// "Soul missing public key at '<field>'.". It is the zero value and the
	// default.
	Secure Mode = iota
	// Open passes other souls through unchanged, as a stock gun.js relay
	// does. Anyone can then overwrite or delete them.
	Open
)

// String returns "secure" or "open".
func (m Mode) String() string {
	switch m {
	case Secure:
		return "secure"
	case Open:
		return "open"
	}
	return fmt.Sprintf("auth.Mode(%d)", uint8(m))
}

// ParseMode maps "secure" and "open" to a Mode.
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(s) {
	case "secure":
		return Secure, nil
	case "open":
		return Open, nil
	}
	return 0, fmt.Errorf("auth: unknown mode %q (want secure or open)", s)
}

// LookupFunc reads the current value of one field of the relay's graph. It
// returns ok false when the field does not exist. The Checker uses it to find
// revocations, members, the private flag, block lists and exact replays.
// The graph must hold only writes that passed the Checker (see the package
// documentation), so stored values are trusted without a second signature
// check. It must be safe for concurrent use.
type LookupFunc func(ctx context.Context, soul, field string) (f graph.Field, ok bool, err error)

// Config configures a Checker. The zero value is usable: secure mode, the
// system clock, no graph lookups (so no replay detection, revocation or
// private instances) and no login (RelayID empty).
type Config struct {
	// Clock is the relay clock that judges certificate expiry and login
	// freshness. Nil means the system clock.
	Clock clock.Clock

	// Mode is Secure (the zero value) or Open.
	Mode Mode

	// RelayID is the relay's public key text. Logins are bound to it; if it
	// is empty every login is refused.
	RelayID string

	// Lookup reads the current graph; nil disables what needs it.
	Lookup LookupFunc

	// HasSoul, if set, reports whether the graph holds any field of a soul
	// (graph.DB.HasSoul). The replay check of a node of several fields
	// then asks it once, and reads no field of a soul the graph does not
	// hold (an inbox message: seven fields, one seek instead of seven).
	HasSoul func(ctx context.Context, soul string) (bool, error)

	// Logger receives a debug record per refusal; nil discards.
	Logger *slog.Logger

	// OnRefuse, if set, is called once per refused field, read or login with
	// the reason's prefix ("invalid:", …) and the full wire reason. Use the
	// prefix as a metrics label; the reason may hold field names. It must be
	// safe for concurrent use and must not block.
	OnRefuse func(prefix, reason string)

	// MaxChainDepth bounds instance certificate chains (certificates in the
	// "+" array). Default 3.
	MaxChainDepth int

	// CertCacheSize bounds the cache of verified certificate signatures
	// (SEA and ours). Default 4096.
	CertCacheSize int

	// KeyCacheSize bounds the cache of parsed public keys. Default 4096.
	KeyCacheSize int

	// RegistrySize bounds the certificates remembered from lum/<I>/certs
	// for [Checker.Authorize] without an explicit chain. Default 10000.
	RegistrySize int

	// MaxWrapperBytes bounds the signed wrapper string of one field.
	// Default 64 KiB.
	MaxWrapperBytes int

	// LoginWindow is how old a challenge, and how far from the relay clock a
	// response's time, may be. Default 2 minutes.
	LoginWindow time.Duration

	// MaxLoginStrikes is the number of failed logins after which Login
	// also returns ErrTooManyStrikes. Default 3.
	MaxLoginStrikes int

	// MaxPeerKeys bounds the keys one connection may log in with. Default 8.
	MaxPeerKeys int

	// Inbox, if set, judges the message nodes lum/<I>/in/<id> as wholes, in
	// the self-authenticating format of package heartbeat (fields instance,
	// author, ts, nonce, payload, sig, id; the id is the hash of the signed
	// bytes). It is called once per such node in a put with all of that
	// node's fields, and returns the author whose signature it verified, or
	// an error: one whose text starts with a wire prefix
	// (heartbeat.Reason gives one) is sent as is, any other is sent after
	// "invalid: ". It must refuse fields that are not part of the message.
	// The Checker then requires the author to hold the message role (see
	// [Checker.Authorize]) and applies the verdict to every field of the
	// node. When Inbox is nil, fields under lum/<I>/in/ are judged like any
	// other instance field (signed wrappers, message role).
	Inbox InboxFunc
}

// InboxFunc verifies an inbound message node; see [Config.Inbox].
type InboxFunc func(ctx context.Context, soul string, fields map[string]graph.Field) (author string, err error)

// Defaults for zero Config fields.
const (
	DefaultMaxChainDepth   = 3
	DefaultCertCacheSize   = 4096
	DefaultKeyCacheSize    = 4096
	DefaultRegistrySize    = 10000
	DefaultMaxWrapperBytes = 64 << 10
	DefaultLoginWindow     = 2 * time.Minute
	DefaultMaxLoginStrikes = 3
	DefaultMaxPeerKeys     = 8
)

func (c *Config) resolve() error {
	def := func(p *int, d int, name string) error {
		switch {
		case *p == 0:
			*p = d
		case *p < 0:
			return fmt.Errorf("auth: config: %s must not be negative", name)
		}
		return nil
	}
	for _, e := range []error{
		def(&c.MaxChainDepth, DefaultMaxChainDepth, "MaxChainDepth"),
		def(&c.CertCacheSize, DefaultCertCacheSize, "CertCacheSize"),
		def(&c.KeyCacheSize, DefaultKeyCacheSize, "KeyCacheSize"),
		def(&c.RegistrySize, DefaultRegistrySize, "RegistrySize"),
		def(&c.MaxWrapperBytes, DefaultMaxWrapperBytes, "MaxWrapperBytes"),
		def(&c.MaxLoginStrikes, DefaultMaxLoginStrikes, "MaxLoginStrikes"),
		def(&c.MaxPeerKeys, DefaultMaxPeerKeys, "MaxPeerKeys"),
	} {
		if e != nil {
			return e
		}
	}
	if c.LoginWindow == 0 {
		c.LoginWindow = DefaultLoginWindow
	} else if c.LoginWindow < 0 {
		return errors.New("auth: config: LoginWindow must not be negative")
	}
	if c.Mode != Secure && c.Mode != Open {
		return fmt.Errorf("auth: config: unknown mode %d", c.Mode)
	}
	if c.RelayID != "" {
		if _, err := keys.ParsePublic(c.RelayID); err != nil {
			return fmt.Errorf("auth: config: RelayID: %w", err)
		}
	}
	if c.Clock == nil {
		c.Clock = clock.System()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// Checker decides, field by field, which writes may reach HAM, which reads a
// connection may make, and who a connection is. Create one with [New]; it is
// safe for concurrent use.
type Checker struct {
	cfg      Config
	keys     *keys.Cache
	certs    *lru[[32]byte, *sea.Certificate] // verified SEA certificates
	ourCerts *lru[[32]byte, bool]             // verified signatures of our Certs
	reg      *registry

	stats struct {
		allowed, invalid, restricted, authRequired, duplicate atomic.Uint64
		logins                                                atomic.Uint64
	}
}

// New returns a Checker for cfg. It fails only on a nonsensical Config.
func New(cfg Config) (*Checker, error) {
	if err := cfg.resolve(); err != nil {
		return nil, err
	}
	return &Checker{
		cfg:      cfg,
		keys:     keys.NewCache(cfg.KeyCacheSize),
		certs:    newLRU[[32]byte, *sea.Certificate](cfg.CertCacheSize),
		ourCerts: newLRU[[32]byte, bool](cfg.CertCacheSize),
		reg:      newRegistry(cfg.RegistrySize),
	}, nil
}

// Mode returns the configured mode.
func (c *Checker) Mode() Mode { return c.cfg.Mode }

// Stats counts decisions since New.
type Stats struct {
	Allowed      uint64 // fields allowed
	Invalid      uint64 // refusals with "invalid:"
	Restricted   uint64 // refusals with "restricted:"
	AuthRequired uint64 // refusals with "auth-required:" (fields, reads, logins)
	Duplicate    uint64 // fields refused as exact replays
	Logins       uint64 // successful logins
}

// Stats returns the counters.
func (c *Checker) Stats() Stats {
	return Stats{
		Allowed:      c.stats.allowed.Load(),
		Invalid:      c.stats.invalid.Load(),
		Restricted:   c.stats.restricted.Load(),
		AuthRequired: c.stats.authRequired.Load(),
		Duplicate:    c.stats.duplicate.Load(),
		Logins:       c.stats.logins.Load(),
	}
}

// count records a refusal in the counters and the OnRefuse hook.
func (c *Checker) count(r *Refusal) {
	switch r.Prefix {
	case PrefixInvalid:
		c.stats.invalid.Add(1)
	case PrefixRestricted:
		c.stats.restricted.Add(1)
	case PrefixAuthRequired:
		c.stats.authRequired.Add(1)
	case PrefixDuplicate:
		c.stats.duplicate.Add(1)
	}
	if c.cfg.OnRefuse != nil {
		c.cfg.OnRefuse(r.Prefix, r.Error())
	}
}

// fieldCheck is one field under judgement.
type fieldCheck struct {
	soul  string
	field string
	f     graph.Field
	now   time.Time
	peer  *Peer
	// revoked holds serials revoked earlier in the same message, per
	// instance, so that a revocation applies to the writes after it.
	revoked map[string]map[string]bool
	// node is the field's node in the diff; verdict caches a judgement of
	// the whole node (Config.Inbox), shared by its fields.
	node    *graph.Node
	verdict *nodeVerdict
	// pre is the field's verdict from Preverify, if any: its replay lookup
	// and, unless it was a replay, its user-space signature.
	pre *preField
}

type nodeVerdict struct {
	done bool
	r    *Refusal
	// soulKnown: HasSoul was asked; soulNew: it said the graph holds no
	// field of the node's soul (so none of its fields can be a replay).
	soulKnown, soulNew bool
}

// CheckPut judges every field of diff, the way gun does: each field stands
// alone, so one refused field does not stop the others. allowed holds the
// fields that may be merged and forwarded (nodes whose fields were all
// allowed are shared with diff, not copied, and when every field is allowed
// allowed is diff itself; diff is never modified); refused
// holds one error per refused field; its Err is a *Refusal whose Error
// method gives the wire text ("restricted: Certificate verification fail."). Fields are judged in a
// fixed order: revocation souls first, then souls and fields in UTF-8 order.
//
// peer is the connection the diff came from; it only matters for private
// instances, and may be nil for writes the relay makes itself.
func (c *Checker) CheckPut(ctx context.Context, peer *Peer, diff graph.Graph) (allowed graph.Graph, refused []graph.FieldError) {
	if n, ok := c.passThrough(diff); ok {
		c.stats.allowed.Add(uint64(n))
		return diff, nil
	}
	now := c.cfg.Clock.Now()
	pv := preverifiedFrom(ctx)
	souls := make([]string, 0, len(diff))
	for s := range diff {
		souls = append(souls, s)
	}
	slices.SortFunc(souls, func(a, b string) int {
		ra, rb := isRevokedSoul(a), isRevokedSoul(b)
		if ra != rb {
			if ra {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	// allowed is built only once something is left out; until then whole
	// souls are listed in kept, and when every soul is kept whole, diff
	// itself is returned (the common case: one soul, all fields allowed).
	var kept []string
	keep := func(soul string, n *graph.Node) {
		if allowed == nil {
			kept = append(kept, soul)
			return
		}
		allowed[soul] = n
	}
	leaveOut := func() {
		if allowed == nil {
			allowed = make(graph.Graph, len(diff))
			for _, s := range kept {
				allowed[s] = diff[s]
			}
		}
	}
	var revoked map[string]map[string]bool
	var fields []string
	for _, soul := range souls {
		node := diff[soul]
		if node == nil {
			leaveOut()
			continue
		}
		fields = fields[:0]
		for f := range node.Fields {
			fields = append(fields, f)
		}
		slices.Sort(fields)
		var out *graph.Node
		partial := false
		verdict := &nodeVerdict{}
		for _, name := range fields {
			fc := fieldCheck{soul: soul, field: name, f: node.Fields[name], now: now, peer: peer, revoked: revoked, node: node, verdict: verdict}
			fc.pre = pv.find(soul, name, fc.f)
			r := c.checkField(ctx, &fc)
			revoked = fc.revoked
			if r != nil {
				c.count(r)
				c.cfg.Logger.Debug("auth: refused", "soul", soul, "field", name, "reason", r.Error())
				refused = append(refused, graph.FieldError{Soul: soul, Field: name, Err: r})
				partial = true
				continue
			}
			c.stats.allowed.Add(1)
			if out == nil {
				out = &graph.Node{Soul: soul, Fields: make(map[string]graph.Field, len(node.Fields))}
			}
			out.Fields[name] = node.Fields[name]
		}
		switch {
		case out == nil:
			leaveOut()
		case !partial:
			keep(soul, node)
		default:
			leaveOut()
			allowed[soul] = out
		}
	}
	if allowed == nil {
		return diff, refused
	}
	return allowed, refused
}

// passThrough reports whether open mode lets diff through untouched:
// every soul is a plain one (not user space, an instance, an alias list
// or content-addressed) without a forget limit, so no field of it has
// anything to verify. n is its number of fields. This is the stock
// relay's path, taken without a per-field judgement.
func (c *Checker) passThrough(diff graph.Graph) (n int, ok bool) {
	if c.cfg.Mode != Open {
		return 0, false
	}
	for soul, node := range diff {
		if node == nil || forgetLimit(soul) > 0 {
			return 0, false
		}
		if kind, _ := classify(soul); kind != kindOther {
			return 0, false
		}
		n += len(node.Fields)
	}
	return n, true
}

// checkField judges one field; nil means allowed.
func (c *Checker) checkField(ctx context.Context, fc *fieldCheck) *Refusal {
	kind, owner := classify(fc.soul)
	// A plain soul carries no signature, so a replay check would save
	// nothing (and cost a store read per field): HAM makes an exact replay
	// a no-op and the peer gets the ok a stock relay gives (gun.js peers
	// re-put what they hold on every reconnect).
	if kind != kindOther && (fc.pre != nil && fc.pre.dup || fc.pre == nil && c.isDuplicate(ctx, fc)) {
		return &Refusal{PrefixDuplicate, txtDuplicate}
	}
	if limit := forgetLimit(fc.soul); limit > 0 {
		if fc.f.State < float64(fc.now.UnixMilli())-limit {
			return invalid(txtForget)
		}
	}
	switch kind {
	case kindInstance:
		return c.checkInstance(ctx, fc)
	case kindAliasList:
		return checkAliasList(fc)
	case kindAliasPubs:
		return checkAliasPubs(fc)
	case kindUser:
		return c.checkUser(ctx, fc, owner)
	case kindHash:
		return checkHash(fc)
	}
	if c.cfg.Mode == Open {
		return nil
	}
	return restricted("Soul missing public key at '" + fc.field + "'.")
}

// isDuplicate reports an exact replay: the graph already holds this field
// with the same state and the same value. HAM would make it a no-op; saying
// so before any signature is checked keeps replays cheap.
func (c *Checker) isDuplicate(ctx context.Context, fc *fieldCheck) bool {
	if c.cfg.Lookup == nil {
		return false
	}
	if v := fc.verdict; v != nil && c.cfg.HasSoul != nil && fc.node != nil && len(fc.node.Fields) > 1 {
		if !v.soulKnown {
			v.soulKnown = true
			has, err := c.cfg.HasSoul(ctx, fc.soul)
			v.soulNew = err == nil && !has
		}
		if v.soulNew {
			return false
		}
	}
	cur, ok, err := c.cfg.Lookup(ctx, fc.soul, fc.field)
	return err == nil && ok && cur.State == fc.f.State && cur.Value.Equal(fc.f.Value)
}

// lookup wraps Config.Lookup; without one, nothing is found.
func (c *Checker) lookup(ctx context.Context, soul, field string) (graph.Field, bool, error) {
	if c.cfg.Lookup == nil {
		return graph.Field{}, false, nil
	}
	return c.cfg.Lookup(ctx, soul, field)
}

// CheckGet reports whether peer may read soul. Only private instances are
// restricted: their souls are served only to a connection logged in as the
// owner or a listed member; anything else gets an "auth-required:" refusal.
// Everything else is public, as in gun.
func (c *Checker) CheckGet(ctx context.Context, peer *Peer, soul string) error {
	if !strings.HasPrefix(soul, InstancePrefix) {
		return nil
	}
	is, ok := parseInstanceSoul(soul)
	if !ok {
		return nil // no such instance can exist; nothing to hide
	}
	private, err := c.isPrivate(ctx, is.id)
	if err != nil {
		r := restricted(txtInternal)
		c.count(r)
		return r
	}
	if !private {
		return nil
	}
	member, err := c.isMember(ctx, is.id, peer)
	if err == nil && member {
		return nil
	}
	r := authRequired(txtPrivate)
	if err != nil {
		r = restricted(txtInternal)
	}
	c.count(r)
	return r
}

// FieldGetter is the part of graph.Store (and graph.DB) that StoreLookup needs.
type FieldGetter interface {
	GetField(ctx context.Context, soul, field string) (graph.Field, error)
}

// StoreLookup adapts a graph store to a LookupFunc: graph.ErrNotFound
// becomes ok == false.
func StoreLookup(s FieldGetter) LookupFunc {
	return func(ctx context.Context, soul, field string) (graph.Field, bool, error) {
		f, err := s.GetField(ctx, soul, field)
		if errors.Is(err, graph.ErrNotFound) {
			return graph.Field{}, false, nil
		}
		if err != nil {
			return graph.Field{}, false, err
		}
		return f, true, nil
	}
}
