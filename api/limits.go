package api

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/krestianstvo/luminary/graph"
)

// Limits bounds everything a stranger can make the relay hold or do. Every
// field is configurable; [DefaultLimits] gives the values used for zero
// fields. A refusal always carries a machine-readable reason.
type Limits struct {
	// ReadLimit is the largest WebSocket message accepted, in bytes. A
	// larger message closes the connection with 1009 (message too big).
	// Default 1 MiB. Gun's own relay accepts about 90 MB (opt.max), which
	// lets one peer make the relay buffer and parse 90 MB per frame; gun.js
	// clients never send frames anywhere near 1 MiB for ordinary data.
	ReadLimit int64
	// MaxBatch is the largest number of messages in one array frame.
	// Default 100 (gun batches what it emits within one tick).
	MaxBatch int
	// MaxDepth caps JSON nesting in a frame. Default 16.
	MaxDepth int
	// Graph bounds each put: souls per put, fields per node, value size
	// (see graph.Limits). Zero fields take graph's defaults.
	Graph graph.Limits
	// MaxSubscriptions is the number of distinct souls one connection may
	// subscribe to with get. Default 1000. Gun has no unsubscribe message,
	// so a long-lived connection that reads many souls reaches this.
	MaxSubscriptions int
	// MaxPeerSubscriptions is MaxSubscriptions for outbound peer links
	// (relays the operator chose to peer with, which forward the gets of
	// all their clients). Default 100000.
	MaxPeerSubscriptions int
	// MaxConns caps open inbound WebSocket connections. Default 10000.
	MaxConns int
	// MaxConnsPerIP caps open inbound connections from one remote IP
	// (X-Forwarded-For is never trusted). Default 256.
	MaxConnsPerIP int
	// SendBuffer is the most bytes queued for one connection and not yet
	// written to its socket (pushes, replies, acks, errors; each frame
	// counts 32 bytes more than its length). A connection that would go
	// over it is closed with 1013 (try again later) as a slow consumer,
	// instead of making the broadcaster wait. A connection with nothing
	// unsent may always queue one frame, however large. While the writer is
	// behind, queued messages go out as JSON-array frames of up to 64
	// messages. Default 8 MiB (about 30,000 pushes of a 200-byte value:
	// 3 s of a 10,000 puts/s stream).
	SendBuffer int
	// SlowTimeout closes a connection (1013) that has had unsent bytes and
	// made no write progress (no frame written to its socket) for this
	// long, however little it holds. A sweep on the injected clock checks
	// every SlowTimeout/4, so such a connection is closed between
	// SlowTimeout and SlowTimeout*5/4 after its last write. Independently,
	// one frame write that takes longer than WriteWait fails and ends the
	// connection. Default 10 s.
	SlowTimeout time.Duration
	// MaxInflightPuts is the number of puts one connection may have between
	// decoding and ack; the connection's reader waits when it is reached
	// (TCP then pushes back on the peer). Default 1024.
	MaxInflightPuts int
	// MaxInflightBytes bounds the frame bytes of one connection's
	// in-flight puts the same way (a put counts its share of the frame it
	// came in, at least 256 bytes). Default 8 MiB.
	MaxInflightBytes int
	// VerifyWorkers is the number of puts whose signatures are verified at
	// once, across all connections, ahead of their in-order judgement and
	// merge (when the Guard is a [Preverifier]). Default GOMAXPROCS, so
	// that one connection's puts use every core; negative verifies each
	// put on its connection's reader, in turn.
	VerifyWorkers int
	// MaxReplyFields is the most fields sent in one get reply message;
	// larger nodes are answered in chunks chained with "%", as gun does.
	// Default 1000.
	MaxReplyFields int
	// MaxStrikes is the number of invalid frames or messages (parse errors,
	// binary frames, oversized batches, structurally invalid puts, unknown
	// message types, refused subscriptions) after which a connection is
	// closed with 1008. Outbound peer links are never closed for strikes
	// (they are logged). Default 10.
	MaxStrikes int
	// DedupWindow is how long message ids are remembered (at least; at
	// most twice as long). Default 9 s, as gun.
	DedupWindow time.Duration
	// DedupEntries caps remembered ids; past it the window shrinks.
	// Default 1<<20 (ids are kept as 64-bit hashes: some tens of MB at
	// most).
	DedupEntries int

	// HandshakeTimeout bounds the WebSocket upgrade. Default 10 s.
	HandshakeTimeout time.Duration
	// WriteWait bounds one frame write. Default 10 s.
	WriteWait time.Duration
	// PongWait is how long a connection may stay silent (no pong, no
	// frame) before it is dropped. Default 60 s.
	PongWait time.Duration
	// PingPeriod is the interval of WebSocket pings; it must be below
	// PongWait. Default 54 s.
	PingPeriod time.Duration
	// KeepAlive is the interval of gun's "[]" keep-alive frame. Default
	// 20 s, as gun.
	KeepAlive time.Duration
	// CloseGrace is how long a closing connection waits for the peer's
	// close frame. Default 1 s.
	CloseGrace time.Duration
}

// DefaultLimits returns the limits used for zero fields.
func DefaultLimits() Limits {
	return Limits{
		ReadLimit:            1 << 20,
		MaxBatch:             100,
		MaxDepth:             defaultMaxDepth,
		MaxSubscriptions:     1000,
		MaxPeerSubscriptions: 100000,
		MaxConns:             10000,
		MaxConnsPerIP:        256,
		SendBuffer:           8 << 20,
		SlowTimeout:          10 * time.Second,
		MaxInflightPuts:      1024,
		MaxInflightBytes:     8 << 20,
		MaxReplyFields:       1000,
		MaxStrikes:           10,
		DedupWindow:          9 * time.Second,
		DedupEntries:         1 << 20,
		HandshakeTimeout:     10 * time.Second,
		WriteWait:            10 * time.Second,
		PongWait:             60 * time.Second,
		PingPeriod:           54 * time.Second,
		KeepAlive:            20 * time.Second,
		CloseGrace:           time.Second,
	}
}

// withDefaults fills zero fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setD := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	if l.ReadLimit == 0 {
		l.ReadLimit = d.ReadLimit
	}
	set(&l.MaxBatch, d.MaxBatch)
	set(&l.MaxDepth, d.MaxDepth)
	set(&l.MaxSubscriptions, d.MaxSubscriptions)
	set(&l.MaxPeerSubscriptions, d.MaxPeerSubscriptions)
	set(&l.MaxConns, d.MaxConns)
	set(&l.MaxConnsPerIP, d.MaxConnsPerIP)
	set(&l.SendBuffer, d.SendBuffer)
	setD(&l.SlowTimeout, d.SlowTimeout)
	set(&l.MaxInflightPuts, d.MaxInflightPuts)
	set(&l.MaxInflightBytes, d.MaxInflightBytes)
	set(&l.MaxReplyFields, d.MaxReplyFields)
	set(&l.VerifyWorkers, runtime.GOMAXPROCS(0))
	set(&l.MaxStrikes, d.MaxStrikes)
	set(&l.DedupEntries, d.DedupEntries)
	setD(&l.DedupWindow, d.DedupWindow)
	setD(&l.HandshakeTimeout, d.HandshakeTimeout)
	setD(&l.WriteWait, d.WriteWait)
	setD(&l.PongWait, d.PongWait)
	if l.PingPeriod == 0 {
		l.PingPeriod = l.PongWait * 9 / 10
	}
	setD(&l.KeepAlive, d.KeepAlive)
	setD(&l.CloseGrace, d.CloseGrace)
	return l
}

// validate rejects nonsense.
func (l Limits) validate() error {
	var errs []error
	pos := func(name string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("api: limit %s must not be negative", name))
		}
	}
	pos("ReadLimit", l.ReadLimit)
	for name, v := range map[string]int{
		"MaxBatch": l.MaxBatch, "MaxDepth": l.MaxDepth, "MaxSubscriptions": l.MaxSubscriptions, "MaxPeerSubscriptions": l.MaxPeerSubscriptions,
		"MaxConns": l.MaxConns, "MaxConnsPerIP": l.MaxConnsPerIP, "SendBuffer": l.SendBuffer,
		"MaxInflightPuts": l.MaxInflightPuts, "MaxInflightBytes": l.MaxInflightBytes,
		"MaxReplyFields": l.MaxReplyFields, "MaxStrikes": l.MaxStrikes, "DedupEntries": l.DedupEntries,
	} {
		pos(name, int64(v))
	}
	if l.MaxDepth > 0 && l.MaxDepth < 6 {
		errs = append(errs, errors.New("api: MaxDepth must be at least 6 (a batched put nests 6 deep)"))
	}
	if l.PingPeriod >= l.PongWait && l.PongWait > 0 {
		errs = append(errs, errors.New("api: PingPeriod must be shorter than PongWait"))
	}
	if l.DedupWindow < 0 || l.WriteWait < 0 || l.PongWait < 0 || l.KeepAlive < 0 || l.CloseGrace < 0 || l.HandshakeTimeout < 0 || l.SlowTimeout < 0 {
		errs = append(errs, errors.New("api: durations must not be negative"))
	}
	return errors.Join(errs...)
}

// decodeLimits derives the frame decoder's limits.
func (l Limits) decodeLimits() DecodeLimits {
	return DecodeLimits{
		MaxBytes:   int(l.ReadLimit),
		MaxBatch:   l.MaxBatch,
		MaxDepth:   l.MaxDepth,
		MaxMembers: defaultMaxMembers,
	}
}
