package rest

import (
	"context"
	"errors"
	"io"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/heartbeat"
)

// Service is what the HTTP API needs from the running relay. The relay's
// server implements it on top of heartbeat.Host, auth.Checker and graph.DB;
// package resttest has an in-memory implementation on the real
// heartbeat.Host for tests.
//
// The API checks syntax, sizes, signatures of requests and who may call
// what (see [Config.Admins] and the package documentation) before it calls
// a method; the Service enforces the relay's own rules (quotas, which
// worlds may be joined, certificate chains) and reports refusals by
// wrapping one of the sentinels [ErrNotFound], [ErrConflict],
// [ErrForbidden], [ErrInvalid], [ErrUnavailable] or [ErrRateLimited] (the
// heartbeat and auth sentinels are understood too, see [CodeOf]). Other
// errors are answered 500 "internal" and logged; their text never reaches
// the client.
//
// Instance ids passed to methods other than World come from a WorldInfo the
// Service returned. Every method must be safe for concurrent use and
// should honour ctx.
type Service interface {
	// CreateWorld starts hosting a world and returns its info.
	// spec.Instance empty means a world owned by a key the relay generates
	// and keeps (demo worlds). A world that exists already is ErrConflict;
	// a relay that cannot sequence it (no tick certificate for the relay
	// key in spec.Chain or published earlier) is ErrInvalid.
	CreateWorld(ctx context.Context, spec WorldSpec) (WorldInfo, error)
	// ListWorlds returns every hosted world, private ones included (the
	// API filters what a caller may see), in a stable order.
	ListWorlds(ctx context.Context) ([]WorldInfo, error)
	// World resolves ref (an instance id or a relay-local alias) to its
	// info, or ErrNotFound.
	World(ctx context.Context, ref string) (WorldInfo, error)
	// Presence returns the keys of the clients present in the world,
	// sorted (the logged presence: join minus leave entries).
	Presence(ctx context.Context, instance string) ([]string, error)
	// History reads the ordered log: entries in q's range, at most q.Limit
	// of them, and the stored ticks that cover them (as heartbeat.Log.Read
	// and ReadByTime return them).
	History(ctx context.Context, instance string, q HistoryQuery) (HistoryPage, error)
	// Export writes the history (heartbeat.Export's JSON lines) of seqs
	// [opt.From, opt.To] to w. Once it has written anything an error can
	// only cut the stream short.
	Export(ctx context.Context, instance string, w io.Writer, opt heartbeat.ExportOptions) error
	// VerifyHistory checks an exported history (heartbeat.VerifyHistory,
	// with the relay's certificate knowledge as Authorizer where it has
	// it). A history with a defect returns the report with Defect set and
	// an error wrapping heartbeat.ErrHistory.
	VerifyHistory(ctx context.Context, r io.Reader) (*heartbeat.Report, error)
	// VerifyMessage checks a signed message's author signature and looks
	// it up in its world's log. A bad signature is a report with Valid
	// false, not an error.
	VerifyMessage(ctx context.Context, m heartbeat.Message) (MessageReport, error)
	// IssueCert signs a certificate for tmpl (Instance, Subject, Roles,
	// NotBefore, Expiry, optional Serial) with the relay key and publishes
	// it at lum/<I>/certs. It returns the chain that proves it: the
	// certificates from the owner down to the new one, last. A relay that
	// holds neither the owner key nor an admin certificate for the world
	// returns ErrForbidden.
	IssueCert(ctx context.Context, instance string, tmpl auth.Cert) ([]*auth.Cert, error)
	// PublishCert stores a certificate signed elsewhere (the last of
	// chain; the others lead to it from the owner) at lum/<I>/certs after
	// checking the chain (auth's rules); a chain that does not verify is
	// ErrInvalid or an *auth.Refusal.
	PublishCert(ctx context.Context, instance string, chain []*auth.Cert) error
	// Authorize reports (nil error) whether key holds role in the world:
	// the owner, or a valid certificate chain (auth.Checker.Authorize).
	// The API asks it for auth.RoleAdmin before world administration.
	Authorize(ctx context.Context, instance, key string, role auth.Role) error
	// Member reports whether key may read a private world: the owner, a
	// listed member (lum/<I>/members) or an admin.
	Member(ctx context.Context, instance, key string) (bool, error)
	// Join admits pub to an open (demo) world: it logs pub's presence and
	// returns the certificates that let pub send messages. Worlds that are
	// not open return ErrForbidden.
	Join(ctx context.Context, instance, pub string) (JoinGrant, error)
	// Status returns the relay's live numbers for the status page.
	Status(ctx context.Context) (Status, error)
}

// Errors a [Service] wraps to choose the answer. The API maps them to
// codes with [CodeOf].
var (
	// ErrNotFound: no such world (or other named thing): 404 not_found.
	ErrNotFound = errors.New("rest: not found")
	// ErrConflict: the thing exists already: 409 conflict.
	ErrConflict = errors.New("rest: conflict")
	// ErrForbidden: the relay refuses this for this world: 403 forbidden.
	ErrForbidden = errors.New("rest: forbidden")
	// ErrInvalid: the request is well formed but not acceptable: 400 invalid.
	ErrInvalid = errors.New("rest: invalid")
	// ErrUnavailable: the relay cannot do it now (shutting down, not the
	// sequencer): 503 unavailable.
	ErrUnavailable = errors.New("rest: unavailable")
	// ErrRateLimited: a quota is exhausted: 429 rate_limited.
	ErrRateLimited = errors.New("rest: rate limited")
)

// WorldSpec is the body of POST /api/worlds.
type WorldSpec struct {
	// Instance is the owner's public key text (the instance id); empty
	// asks the relay to create an owner key it keeps.
	Instance string
	// Alias is an optional relay-local short name usable in URLs
	// (lowercase letters, digits and '-', 1 to 64 characters).
	Alias string
	// Name is the display name (at most 256 bytes).
	Name string
	// Rate is the time scale in [1/64, 64] (default 1).
	Rate float64
	// TPS is the tick rate in [1, 60] (default 20).
	TPS int
	// Private restricts reads to members.
	Private bool
	// Open lets anyone join with POST /api/worlds/{world}/join (demo
	// worlds); never together with Private.
	Open bool
	// Chain holds certificates to publish with the world, typically the
	// owner's tick certificate for the relay key.
	Chain []*auth.Cert
}

// WorldInfo describes a hosted world. Its JSON form is the answer of
// GET /api/worlds/{world}.
type WorldInfo struct {
	ID        string    `json:"id"`              // the reference used in URLs: Alias if set, else Instance
	Instance  string    `json:"instance"`        // owner public key text
	Alias     string    `json:"alias,omitempty"` // relay-local short name
	Name      string    `json:"name"`
	Owner     string    `json:"owner"`       // equals Instance
	Rate      float64   `json:"rate"`        // time scale
	TPS       int       `json:"tps"`         // ticks per second
	Private   bool      `json:"private"`     // reads need membership
	Open      bool      `json:"open"`        // anyone may join (demo)
	Created   int64     `json:"created_ms"`  // Unix ms
	Start     float64   `json:"start_state"` // HAM state of Croquet time 0
	Time      float64   `json:"time_s"`      // current Croquet time, seconds
	Seq       uint64    `json:"seq"`         // last sequenced entry
	Members   []string  `json:"members"`     // keys holding membership or certificates (bounded by the Service)
	Present   int       `json:"present"`     // clients present
	Metronome Metronome `json:"metronome"`
}

// Metronome says who sequences a world.
type Metronome struct {
	Sequencer string `json:"sequencer"` // key of the current sequencer ("" when none is known)
	Epoch     uint64 `json:"epoch"`     // its epoch (term)
	Local     bool   `json:"local"`     // this relay is the sequencer
}

// HistoryQuery selects a range of the log. Either by seq (From, To;
// inclusive; To 0 means the head) or, with ByTime, by HAM state (FromState,
// ToState; inclusive). Limit is at least 1 and at most the API's
// MaxHistoryLimit.
type HistoryQuery struct {
	From, To           uint64
	ByTime             bool
	FromState, ToState float64
	Limit              int
}

// HistoryPage is one read of the log.
type HistoryPage struct {
	Entries []heartbeat.Entry
	Ticks   []heartbeat.Tick
	Head    uint64 // seq of the last entry of the log
}

// MessageReport is the answer of POST /api/verify/message.
type MessageReport struct {
	ID        string  `json:"id"` // message id (SHA-256 of the signed bytes, base64url)
	Instance  string  `json:"instance"`
	Author    string  `json:"author"`
	Valid     bool    `json:"valid"`            // the author's signature verifies
	Reason    string  `json:"reason,omitempty"` // why not, when Valid is false
	Sequenced bool    `json:"sequenced"`        // the message is in the world's log
	Seq       uint64  `json:"seq,omitempty"`
	Epoch     uint64  `json:"epoch,omitempty"`
	State     float64 `json:"state,omitempty"` // HAM state of its entry
	Time      float64 `json:"time_s,omitempty"`
}

// MessageLog is the part of a heartbeat log ReportMessage reads.
type MessageLog interface {
	Lookup(ctx context.Context, instance string, id heartbeat.Hash) (heartbeat.Entry, bool, error)
	State(ctx context.Context, instance string) (heartbeat.LogState, error)
}

// ReportMessage builds the MessageReport of m: its author's signature
// checked with v, then, if it is valid, its entry in log (seq, epoch,
// state and Croquet time) when it was sequenced. A Service's
// VerifyMessage can be this over its own log.
func ReportMessage(ctx context.Context, log MessageLog, v heartbeat.Verifier, m heartbeat.Message) (MessageReport, error) {
	id := m.ID()
	rep := MessageReport{ID: id.String(), Instance: m.Instance, Author: m.Author}
	if err := m.Verify(v); err != nil {
		rep.Reason = heartbeat.Reason(err)
		return rep, nil
	}
	rep.Valid = true
	e, ok, err := log.Lookup(ctx, m.Instance, id)
	if err != nil || !ok {
		return rep, err
	}
	st, err := log.State(ctx, m.Instance)
	if err != nil {
		return rep, err
	}
	rep.Sequenced, rep.Seq, rep.Epoch, rep.State = true, e.Seq, e.Epoch, e.State
	if st.Meta != nil {
		rep.Time = heartbeat.VTime(e.State, st.Meta.Start, st.Meta.Rate)
	}
	return rep, nil
}

// JoinGrant is the answer of POST /api/worlds/{world}/join: what a demo
// page needs to take part.
type JoinGrant struct {
	World     string `json:"world"`     // the world's id (alias or instance)
	Instance  string `json:"instance"`  // instance id
	Sequencer string `json:"sequencer"` // the relay's key, which signs ticks when the relay runs the metronome
	// Sequencers lists every key besides the owner that may sign ticks now:
	// the relay's and those of peers holding a tick certificate (remote
	// metronomes), sorted.
	Sequencers []string     `json:"sequencers"`
	Chain      []*auth.Cert `json:"chain"` // certificates granting pub the message role, owner's first
}

// Status is the relay's live state for the status page (GET /api/status).
type Status struct {
	Time   string        `json:"time"`     // RFC 3339 with fractional seconds, UTC
	Uptime float64       `json:"uptime_s"` // seconds since the relay started
	Peers  int           `json:"peers"`    // connected Gun peers
	Worlds []WorldStatus `json:"worlds"`
}

// WorldStatus is one world's live numbers.
type WorldStatus struct {
	ID       string  `json:"id"`       // alias or instance
	Instance string  `json:"instance"` // instance id
	Private  bool    `json:"private"`  // shown only to relay admins
	Time     float64 `json:"time_s"`   // Croquet time, seconds
	Seq      uint64  `json:"seq"`
	TPS      int     `json:"tps"`       // configured ticks per second
	TickRate float64 `json:"tick_rate"` // measured ticks per second
	Jitter   Jitter  `json:"jitter_ms"`
	MsgsPerS float64 `json:"msgs_per_s"`
	Peers    int     `json:"peers"` // clients present
}

// Jitter summarises tick lateness (actual − scheduled) in milliseconds.
type Jitter struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
}
