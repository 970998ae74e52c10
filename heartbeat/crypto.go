package heartbeat

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/krestianstvo/luminary/keys"
)

// Signed-message labels (see [keys.Message]). Each names one purpose, so a
// signature made for one can never be replayed as another.
const (
	labelMessage  = "heartbeat.message"  // an external message, signed by its author
	labelEntry    = "heartbeat.entry"    // preimage of an entry hash (hashed, not signed)
	labelLeaf     = "heartbeat.tick"     // preimage of a tick record's Merkle leaf
	labelNode     = "heartbeat.node"     // preimage of an inner Merkle node
	labelRound    = "heartbeat.round"    // a sequencer's round signature over a Merkle root
	labelSnapshot = "heartbeat.snapshot" // a member's snapshot vote
)

// Signer signs with one identity. [KeySigner] adapts a [keys.Private]; tests
// and the JetStream step may supply their own.
type Signer interface {
	// Public returns the public key text (see [keys.ParsePublic]).
	Public() string
	// Sign returns a 64-byte r‖s signature over SHA-256 of msg.
	Sign(msg []byte) ([]byte, error)
}

// Verifier checks a signature by the public key named by its text.
type Verifier interface {
	// Verify reports whether sig is a valid (strict, low-S) signature by
	// pub over msg. It returns false for an unparsable key.
	Verify(pub string, msg, sig []byte) bool
}

// KeySigner returns a [Signer] for k.
func KeySigner(k *keys.Private) Signer { return keySigner{k: k, pub: k.Public().String()} }

type keySigner struct {
	k   *keys.Private
	pub string
}

func (s keySigner) Public() string                  { return s.pub }
func (s keySigner) Sign(msg []byte) ([]byte, error) { return s.k.Sign(msg) }

// KeyVerifier returns a [Verifier] backed by [keys.Public.Verify], parsing
// keys through cache (a new cache of 4096 keys when nil).
func KeyVerifier(cache *keys.Cache) Verifier {
	if cache == nil {
		cache = keys.NewCache(4096)
	}
	return keyVerifier{cache}
}

type keyVerifier struct{ c *keys.Cache }

func (v keyVerifier) Verify(pub string, msg, sig []byte) bool {
	p, err := v.c.Parse(pub)
	if err != nil {
		return false
	}
	return p.Verify(msg, sig)
}

// Role is a capability an instance owner grants to keys.
type Role string

// Roles used by the heartbeat.
const (
	RoleTick     Role = "tick"     // run the metronome / sequence the instance
	RoleMessage  Role = "message"  // send external messages
	RoleSnapshot Role = "snapshot" // vote on snapshots
)

// Authorizer decides whether key holds role for instance at time at. It
// returns nil to allow and any error to refuse; the heartbeat maps a refusal
// to [ErrNotAuthorisedToTick] or [ErrNotAuthorised] (wrapping the cause).
// Package auth supplies the certificate-based implementation.
type Authorizer interface {
	Authorize(ctx context.Context, instance, key string, role Role, at time.Time) error
}

// AuthorizerFunc adapts a function to [Authorizer].
type AuthorizerFunc func(ctx context.Context, instance, key string, role Role, at time.Time) error

// Authorize calls f.
func (f AuthorizerFunc) Authorize(ctx context.Context, instance, key string, role Role, at time.Time) error {
	return f(ctx, instance, key, role, at)
}

// OwnerTicks is the default [Authorizer]: only the instance owner (whose
// public key text is the instance id) may tick; any key may send messages and
// vote on snapshots. Production relays use package auth instead.
var OwnerTicks Authorizer = AuthorizerFunc(func(_ context.Context, instance, key string, role Role, _ time.Time) error {
	if role == RoleTick && key != instance {
		return fmt.Errorf("key is not the instance owner")
	}
	return nil
})

// Hash is a SHA-256 digest: entry hashes, message ids, Merkle nodes,
// snapshot content addresses.
type Hash [32]byte

// String returns the unpadded base64url text of h.
func (h Hash) String() string { return b64.EncodeToString(h[:]) }

// appendText appends the String form of h.
func (h Hash) appendText(dst []byte) []byte { return b64.AppendEncode(dst, h[:]) }

// IsZero reports whether h is all zero (the "previous hash" of seq 1).
func (h Hash) IsZero() bool { return h == Hash{} }

// ParseHash parses the unpadded base64url text of a hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 43 {
		return h, fmt.Errorf("%w: hash must be 43 base64url characters", ErrMalformed)
	}
	n, err := b64.Decode(h[:], []byte(s))
	if err != nil || n != 32 {
		return Hash{}, fmt.Errorf("%w: hash is not canonical base64url", ErrMalformed)
	}
	return h, nil
}

// b64 is the strict unpadded base64url encoding used for every binary field.
var b64 = base64.RawURLEncoding.Strict()

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func f64(v float64) []byte { return u64(math.Float64bits(v)) }

func hashMessage(label string, parts ...[]byte) Hash {
	var buf [512]byte // most preimages (leaves, nodes, entries without a large payload) fit: no allocation
	return sha256.Sum256(keys.AppendMessage(buf[:0], label, parts...))
}

// SHA256 returns the content address of data (snapshot data).
func SHA256(data []byte) Hash { return sha256.Sum256(data) }

func keysMessage(label string, parts ...[]byte) []byte { return keys.Message(label, parts...) }
