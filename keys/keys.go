package keys

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Curve names an elliptic curve that a key lives on.
type Curve uint8

const (
	// Secp256k1 is Luminary's native curve (ECDSA via decred's secp256k1).
	Secp256k1 Curve = iota + 1
	// P256 is NIST P-256, the curve of gun.js SEA.
	P256
)

// String returns "secp256k1" or "p256", the names used in key files and on
// the command line.
func (c Curve) String() string {
	switch c {
	case Secp256k1:
		return "secp256k1"
	case P256:
		return "p256"
	}
	return fmt.Sprintf("keys.Curve(%d)", uint8(c))
}

// ParseCurve maps "secp256k1" (also "k1") and "p256" (also "p-256") to a
// Curve.
func ParseCurve(s string) (Curve, error) {
	switch strings.ToLower(s) {
	case "secp256k1", "k1":
		return Secp256k1, nil
	case "p256", "p-256":
		return P256, nil
	}
	return 0, fmt.Errorf("keys: unknown curve %q (want secp256k1 or p256)", s)
}

// Sizes of encoded keys and signatures.
const (
	// SignatureSize is the size of a signature: r‖s, 32 bytes each, big-endian.
	SignatureSize = 64

	// SharedSecretSize is the size of the ECDH output (the x coordinate).
	SharedSecretSize = 32

	// k1Prefix starts the text form of a secp256k1 public key.
	k1Prefix = "k1:"
	// k1PrivPrefix starts the text form of a secp256k1 private key.
	k1PrivPrefix = "k1priv:"

	k1PublicTextLen   = len(k1Prefix) + 44     // 33 bytes base64url = 44 chars
	p256PublicTextLen = 43 + 1 + 43            // x "." y
	scalarTextLen     = 43                     // 32 bytes base64url
	k1PrivateTextLen  = len(k1PrivPrefix) + 43 // "k1priv:" + scalar
)

// Errors callers branch on.
var (
	// ErrPublicKey is returned (possibly wrapped) for any public key that does
	// not parse: wrong length or prefix, non-canonical base64url, a point off
	// the curve or the identity.
	ErrPublicKey = errors.New("invalid: public key")

	// ErrPrivateKey is returned for a private key text that does not parse or
	// a scalar outside [1, n-1]. Its message never contains key material.
	ErrPrivateKey = errors.New("invalid: private key")

	// ErrCurveMismatch is returned by ECDH when the two keys are on different
	// curves.
	ErrCurveMismatch = errors.New("keys: curve mismatch")
)

// b64url is the unpadded base64url alphabet used for every key text.
var b64url = base64.RawURLEncoding.Strict()

// Public is a parsed public key on either curve. It is immutable and safe
// for concurrent use; share one value per key (see [Cache]).
type Public struct {
	curve Curve
	text  string
	k1    k1Public
	p256  p256Public
}

// Private is a private key on either curve. Its [Private.String] method and
// its slog value never reveal the secret; use [Private.Encode] to obtain the
// secret text on purpose.
type Private struct {
	curve Curve
	pub   *Public
	k1    k1Private
	p256  p256Private
}

// Generate creates a new random key pair on curve c.
func Generate(c Curve) (*Private, error) {
	switch c {
	case Secp256k1:
		return generateK1()
	case P256:
		return generateP256()
	}
	return nil, fmt.Errorf("keys: generate: unknown curve %v", c)
}

// ParsePublic parses the text form of a public key:
//
//   - secp256k1: "k1:" followed by the unpadded base64url encoding of the
//     33-byte compressed point (47 characters in all);
//   - P-256: SEA's "x.y", each coordinate 32 bytes big-endian in unpadded
//     base64url (87 characters in all).
//
// Parsing is strict: exact length, canonical base64url, a point on the curve.
// Every failure wraps [ErrPublicKey].
func ParsePublic(s string) (*Public, error) {
	switch {
	case len(s) == k1PublicTextLen && strings.HasPrefix(s, k1Prefix):
		return parseK1Public(s)
	case len(s) == p256PublicTextLen && s[43] == '.':
		return parseP256Public(s)
	}
	return nil, fmt.Errorf("%w: unrecognised form (length %d)", ErrPublicKey, len(s))
}

// Curve returns the curve of the key.
func (p *Public) Curve() Curve { return p.curve }

// String returns the text form that [ParsePublic] reads.
func (p *Public) String() string { return p.text }

// Equal reports whether p and q are the same key.
func (p *Public) Equal(q *Public) bool {
	return p != nil && q != nil && p.curve == q.curve && p.text == q.text
}

// Verify reports whether sig is a valid signature of SHA-256(msg) by p.
//
// It is strict: sig must be exactly 64 bytes r‖s with r and s in [1, n-1]
// and s ≤ n/2 (low-S). A high-S twin of a valid signature is refused, so a
// signature cannot be re-encoded into a second valid one.
func (p *Public) Verify(msg, sig []byte) bool {
	h := sha256.Sum256(msg)
	return p.verifyDigest(&h, sig, true)
}

// VerifyLax is [Public.Verify] without the low-S rule: it also accepts s in
// (n/2, n-1].
//
// It exists only for SEA interoperability on P-256: gun.js SEA.sign uses
// WebCrypto, which does not normalise S, so about half of its signatures are
// high-S. Accepting them is safe for Luminary because nothing is ever
// identified or deduplicated by signature bytes: identifiers hash the signed
// content, so a second valid encoding of the same signature gains an attacker
// nothing. All other checks (length, range, curve) still apply.
func (p *Public) VerifyLax(msg, sig []byte) bool {
	h := sha256.Sum256(msg)
	return p.verifyDigest(&h, sig, false)
}

func (p *Public) verifyDigest(h *[32]byte, sig []byte, strict bool) bool {
	if p == nil || len(sig) != SignatureSize {
		return false
	}
	switch p.curve {
	case Secp256k1:
		return p.k1.verify(h, sig, strict)
	case P256:
		return p.p256.verify(h, sig, strict)
	}
	return false
}

// ECDH returns the shared secret between p and priv: the 32-byte big-endian
// x coordinate of priv·P. Both keys must be on the same curve. For P-256 this
// is exactly what SEA.secret (WebCrypto deriveBits) computes; for secp256k1
// it is the same construction (RFC 5903 §9, x only). Hash or KDF the result
// before using it as a key unless a protocol (like SEA) fixes its use.
func (p *Public) ECDH(priv *Private) ([]byte, error) {
	if p == nil || priv == nil {
		return nil, errors.New("keys: ecdh: nil key")
	}
	if p.curve != priv.curve {
		return nil, fmt.Errorf("%w: %v and %v", ErrCurveMismatch, p.curve, priv.curve)
	}
	switch p.curve {
	case Secp256k1:
		return priv.k1.ecdh(&p.k1), nil
	case P256:
		return priv.p256.ecdh(&p.p256)
	}
	return nil, errors.New("keys: ecdh: unknown curve")
}

// ParsePrivate parses the secret text form of a private key:
//
//   - secp256k1: "k1priv:" followed by the 32-byte scalar in unpadded
//     base64url (50 characters);
//   - P-256: SEA's "priv", the 32-byte scalar in unpadded base64url (43
//     characters, the JWK "d").
//
// The scalar must be in [1, n-1]. Errors wrap [ErrPrivateKey] and never
// contain the input.
func ParsePrivate(s string) (*Private, error) {
	switch {
	case len(s) == k1PrivateTextLen && strings.HasPrefix(s, k1PrivPrefix):
		return parseK1Private(s[len(k1PrivPrefix):])
	case len(s) == scalarTextLen:
		return parseP256Private(s)
	}
	return nil, fmt.Errorf("%w: unrecognised form", ErrPrivateKey)
}

// Curve returns the curve of the key.
func (k *Private) Curve() Curve { return k.curve }

// Public returns the public half of k.
func (k *Private) Public() *Public { return k.pub }

// Sign returns a 64-byte r‖s signature of SHA-256(msg). Nonces are
// deterministic (RFC 6979) on both curves, and S is always low (≤ n/2), so
// [Public.Verify] accepts the result.
func (k *Private) Sign(msg []byte) ([]byte, error) {
	h := sha256.Sum256(msg)
	switch k.curve {
	case Secp256k1:
		return k.k1.sign(&h), nil
	case P256:
		return k.p256.sign(&h)
	}
	return nil, errors.New("keys: sign: unknown curve")
}

// Encode returns the secret text form that [ParsePrivate] reads. The result
// is the private key: never log it or send it anywhere.
func (k *Private) Encode() string {
	var d [32]byte
	k.scalar(&d)
	s := b64url.EncodeToString(d[:])
	clear(d[:])
	if k.curve == Secp256k1 {
		return k1PrivPrefix + s
	}
	return s
}

// scalar writes the 32-byte big-endian private scalar into d.
func (k *Private) scalar(d *[32]byte) {
	switch k.curve {
	case Secp256k1:
		k.k1.key.Key.PutBytes(d)
	case P256:
		k.p256.scalar(d)
	}
}

// String describes the key without revealing it: "private key for <pub>".
func (k *Private) String() string {
	if k == nil || k.pub == nil {
		return "private key (nil)"
	}
	return "private key for " + k.pub.text
}

// GoString is like String, so %#v does not print the scalar either.
func (k *Private) GoString() string { return k.String() }

// LogValue keeps the secret out of structured logs.
func (k *Private) LogValue() slog.Value { return slog.StringValue(k.String()) }

// Equal reports whether k and o are the same private key, in constant time
// with respect to the scalars.
func (k *Private) Equal(o *Private) bool {
	if k == nil || o == nil || k.curve != o.curve {
		return false
	}
	var a, b [32]byte
	k.scalar(&a)
	o.scalar(&b)
	eq := subtle.ConstantTimeCompare(a[:], b[:]) == 1
	clear(a[:])
	clear(b[:])
	return eq
}

// messagePrefix starts every Luminary-native signed message.
const messagePrefix = "luminary/v1/"

// Message builds the exact bytes that Luminary-native signatures cover:
//
//	"luminary/v1/" + label + 0x00, then for each part its length as 4 bytes
//	big-endian followed by its bytes.
//
// The label separates domains (each package defines its own labels as
// constants, e.g. "tick"), and the length prefixes make the split between
// parts unambiguous, so no two different (label, parts) inputs share an
// encoding. Message panics if label contains a NUL byte or a part is 4 GiB
// or longer, both programming errors.
func Message(label string, parts ...[]byte) []byte {
	n := len(messagePrefix) + len(label) + 1
	for _, p := range parts {
		n += 4 + len(p)
	}
	return AppendMessage(make([]byte, 0, n), label, parts...)
}

// AppendMessage appends [Message](label, parts...) to dst and returns the
// extended slice; use it to reuse a buffer on hot paths.
func AppendMessage(dst []byte, label string, parts ...[]byte) []byte {
	if strings.IndexByte(label, 0) >= 0 {
		panic("keys: message label contains NUL")
	}
	dst = append(dst, messagePrefix...)
	dst = append(dst, label...)
	dst = append(dst, 0)
	for _, p := range parts {
		if uint64(len(p)) > 0xffffffff {
			panic("keys: message part too long")
		}
		l := uint32(len(p))
		dst = append(dst, byte(l>>24), byte(l>>16), byte(l>>8), byte(l))
		dst = append(dst, p...)
	}
	return dst
}

// decodeScalarText decodes exactly 43 characters of canonical unpadded
// base64url into 32 bytes.
func decodeScalarText(s string, out *[32]byte) bool {
	if len(s) != scalarTextLen {
		return false
	}
	n, err := b64url.Decode(out[:], []byte(s))
	return err == nil && n == 32
}
