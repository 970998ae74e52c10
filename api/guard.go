package api

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/krestianstvo/luminary/graph"
)

// Guard decides what a peer may write and read. The relay calls it after a
// put has been parsed and validated and before anything is merged, and
// before answering a get. The auth package implements it; [OpenGuard]
// allows everything.
//
// Guards run on the connection's reader goroutine, so they see one
// connection's messages in order, and must not block for long.
type Guard interface {
	// CheckPut returns the part of diff the peer may write and the fields it
	// may not, each with a machine-readable reason ("restricted: ...",
	// "auth-required: ..."). allowed may be diff itself. The *Message being
	// handled is available through [MessageFrom](ctx).
	CheckPut(ctx context.Context, p *PeerInfo, diff graph.Graph) (allowed graph.Graph, refused []graph.FieldError)
	// CheckGet returns nil if the peer may read soul, else an error whose
	// text is sent as the get's "err" reply.
	CheckGet(ctx context.Context, p *PeerInfo, soul string) error
}

// Preverifier is an optional interface of a Guard. Preverify does the part
// of CheckPut that does not depend on the order of puts — signature
// verification — for diff, and returns the context to pass to the CheckPut
// call for the same diff, carrying its results. The relay calls Preverify
// on up to Limits.VerifyWorkers goroutines at once, so that even one
// connection's puts are verified on every core, and then calls CheckPut in
// the connection's order with the returned context. Preverify must be safe
// for concurrent use and change no state; CheckPut must reach the same
// decisions with or without it.
type Preverifier interface {
	Preverify(ctx context.Context, p *PeerInfo, diff graph.Graph) context.Context
}

// OpenGuard allows every put and get.
type OpenGuard struct{}

var _ Guard = OpenGuard{}

// CheckPut allows all of diff.
func (OpenGuard) CheckPut(_ context.Context, _ *PeerInfo, diff graph.Graph) (graph.Graph, []graph.FieldError) {
	return diff, nil
}

// CheckGet allows every soul.
func (OpenGuard) CheckGet(context.Context, *PeerInfo, string) error { return nil }

// Handler handles a message carrying an extra top-level member (see
// Config.Handlers). It returns a frame to send back to the peer (one
// complete JSON message, or nil for none), or an error whose text is sent
// back as {"@": msg.ID, "err": text}. Handlers run on the connection's reader
// goroutine, after every earlier put from that connection has been merged.
type Handler func(ctx context.Context, p *PeerInfo, msg *Message) ([]byte, error)

// PeerInfo describes one WebSocket connection (an inbound client or relay,
// or an outbound peer link) to guards and handlers.
type PeerInfo struct {
	// ID is unique among the connections of this process.
	ID uint64
	// RemoteAddr is the TCP peer address (never taken from headers).
	RemoteAddr string
	// Outbound is true for links this relay dialled (--peers).
	Outbound bool
	// URL is the dialled URL of an outbound link, empty otherwise.
	URL string
	// Values holds whatever guards and handlers attach to the connection,
	// e.g. the public keys it has proven. Keys should be unexported types
	// of the package that sets them, as with context values.
	Values sync.Map

	pid  atomic.Pointer[string]
	conn *conn
}

// PID returns the gun peer id the remote sent in its "dam":"?" handshake,
// or "" before it has.
func (p *PeerInfo) PID() string {
	if s := p.pid.Load(); s != nil {
		return *s
	}
	return ""
}

// Send queues frame (one complete JSON message) for the peer without
// blocking. It reports false if the connection is closing or its queue was
// full (the connection is then closed as a slow consumer).
func (p *PeerInfo) Send(frame []byte) bool { return p.conn.enqueue(frame) }

// Close closes the connection with a WebSocket close code and reason.
func (p *PeerInfo) Close(code int, reason string) { p.conn.closeWith(code, reason, true) }

// Context returns a context that is cancelled when the connection closes.
func (p *PeerInfo) Context() context.Context { return p.conn.ctx }

type msgKey struct{}

// MessageFrom returns the wire message a Guard call is made for, or nil.
func MessageFrom(ctx context.Context) *Message {
	m, _ := ctx.Value(msgKey{}).(*Message)
	return m
}
