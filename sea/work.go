package sea

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"unicode/utf8"

	"github.com/krestianstvo/luminary/keys"
)

// Work defaults and caps (gun.js SEA.work).
const (
	// DefaultWorkIterations is gun.js's PBKDF2 iteration count.
	DefaultWorkIterations = 100_000
	// MaxWorkIterations caps WorkOptions.Iterations so a caller-supplied
	// option cannot make Work run for minutes.
	MaxWorkIterations = 10_000_000
	// DefaultWorkBits is gun.js's PBKDF2 output length (64 bytes).
	DefaultWorkBits = 512
	// maxWorkBits caps WorkOptions.Bits.
	maxWorkBits = 8192
)

// WorkOptions mirror gun.js SEA.work's opt. The zero value is gun.js's
// default: PBKDF2-HMAC-SHA-256, 100 000 iterations, 512 bits, base64.
type WorkOptions struct {
	// Name is "" or "PBKDF2" for PBKDF2, or a name starting with "sha"
	// (any case): "SHA-256" (content addressing), "SHA-384" or "SHA-512",
	// which hash the data once and ignore the salt.
	Name string
	// Iterations for PBKDF2; 0 means DefaultWorkIterations.
	Iterations int
	// Bits is the PBKDF2 output length in bits (gun.js's opt.length), a
	// multiple of 8; 0 means DefaultWorkBits.
	Bits int
	// Encode is "" or "base64" (padded standard base64, the default) or
	// "hex".
	Encode string
}

// Work is gun.js SEA.work(data, salt, null, opt): a password hash for proof
// of work and for deriving passphrases. data is a string (used as is) or a
// value (JSON.stringify'd); salt is used as its UTF-8 bytes and must not be
// empty (gun.js would draw a random salt, making the output impossible to
// derive again). With a SHA name the salt is ignored and may be empty.
func Work(data any, salt string, opt WorkOptions) (string, error) {
	if err := checkValue(data, 0); err != nil {
		return "", fmt.Errorf("sea: work: %w", err)
	}
	text := textOf(nil, jsOrder(data, 0))
	if len(text) > MaxEnvelopeSize {
		return "", errors.New("sea: work: data too large")
	}
	encode := func(b []byte) (string, error) {
		switch opt.Encode {
		case "", "base64":
			return base64.StdEncoding.EncodeToString(b), nil
		case "hex":
			return hex.EncodeToString(b), nil
		}
		return "", fmt.Errorf("sea: work: unsupported encoding %q", opt.Encode)
	}
	if name := strings.ToLower(opt.Name); strings.HasPrefix(name, "sha") {
		var h hash.Hash
		switch name {
		case "sha-256":
			h = sha256.New()
		case "sha-384":
			h = sha512.New384()
		case "sha-512":
			h = sha512.New()
		default:
			return "", fmt.Errorf("sea: work: unsupported hash %q", opt.Name)
		}
		h.Write(text)
		return encode(h.Sum(nil))
	} else if name != "" && name != "pbkdf2" {
		return "", fmt.Errorf("sea: work: unsupported algorithm %q", opt.Name)
	}
	if salt == "" {
		return "", errors.New("sea: work: empty salt")
	}
	if !utf8.ValidString(salt) {
		return "", errors.New("sea: work: salt is not valid UTF-8")
	}
	iter := opt.Iterations
	if iter == 0 {
		iter = DefaultWorkIterations
	}
	if iter < 1 || iter > MaxWorkIterations {
		return "", fmt.Errorf("sea: work: iterations %d outside [1, %d]", iter, MaxWorkIterations)
	}
	bits := opt.Bits
	if bits == 0 {
		bits = DefaultWorkBits
	}
	if bits < 8 || bits > maxWorkBits || bits%8 != 0 {
		return "", fmt.Errorf("sea: work: bits %d must be a multiple of 8 in [8, %d]", bits, maxWorkBits)
	}
	out, err := pbkdf2.Key(sha256.New, string(text), []byte(salt), iter, bits/8)
	if err != nil {
		return "", fmt.Errorf("sea: work: %w", err)
	}
	defer clear(out)
	return encode(out)
}

// Secret is gun.js SEA.secret(otherEPub, myPair): ECDH between myEPriv and
// the other side's public ECDH key, returned as the 32-byte x coordinate in
// unpadded base64url (43 characters). It is symmetric, and is meant to be
// used as an [Encrypt] passphrase. For P-256 keys the result equals gun.js's;
// secp256k1 keys ("k1:" public text) produce the same construction on
// secp256k1 (x coordinate, base64url), which gun.js cannot compute. Both
// keys must be on the same curve.
func Secret(otherEPub string, myEPriv *keys.Private) (string, error) {
	if myEPriv == nil {
		return "", errors.New("sea: secret: no private key")
	}
	pub, err := keys.ParsePublic(otherEPub)
	if err != nil {
		return "", fmt.Errorf("sea: secret: %w", err)
	}
	x, err := pub.ECDH(myEPriv)
	if err != nil {
		return "", fmt.Errorf("sea: secret: %w", err)
	}
	defer clear(x)
	return base64.RawURLEncoding.EncodeToString(x), nil
}
