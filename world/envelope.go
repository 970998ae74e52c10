package world

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/krestianstvo/luminary/keys"
)

// Kind says what an envelope carries; it is bound into the associated data,
// so an envelope of one kind never opens as another.
type Kind uint8

// Envelope kinds. Their values are part of the associated data; never
// renumber them.
const (
	// KindMessage is a message payload (a heartbeat log entry). Bound to
	// the sender and to the message's ts and nonce.
	KindMessage Kind = 1
	// KindData is the value of a private field in the instance namespace.
	// Bound to the writer, the soul and the field.
	KindData Kind = 2
	// KindSnapshot is snapshot data. Bound to the snapshot's seq, not to a
	// sender: honest members must produce identical bytes (see
	// [SealSnapshot]).
	KindSnapshot Kind = 3
)

var kindLetters = [...]string{KindMessage: "m", KindData: "d", KindSnapshot: "s"}
var kindNames = [...]string{KindMessage: "message", KindData: "data", KindSnapshot: "snapshot"}

// String returns "message", "data" or "snapshot".
func (k Kind) String() string {
	if k.known() {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

func (k Kind) known() bool { return k >= KindMessage && k <= KindSnapshot }

// signed reports whether envelopes of this kind carry the sender's
// signature inside the ciphertext.
func (k Kind) signed() bool { return k == KindMessage || k == KindData }

// Envelope sizes.
const (
	// Version is the envelope format version this package writes and reads.
	Version = 1
	// NonceSize is the size of an envelope nonce (XChaCha20-Poly1305).
	NonceSize = chacha20poly1305.NonceSizeX
	// TagSize is the size of the Poly1305 tag at the end of a ciphertext.
	TagSize = chacha20poly1305.Overhead
	// InnerSigSize is the size of the sender's signature that starts the
	// plaintext of message and data envelopes.
	InnerSigSize = keys.SignatureSize
	// HeaderSize is the size of a binary envelope before the ciphertext:
	// version, kind, epoch (8 bytes) and nonce.
	HeaderSize = 1 + 1 + 8 + NonceSize
	// MaxCiphertext is the hard cap on an envelope's ciphertext (64 MiB);
	// the layers that carry envelopes set lower limits (payload and
	// snapshot sizes).
	MaxCiphertext = 64 << 20

	textVersion = "lum1"
)

// Envelope is an encrypted payload as a relay stores and forwards it. The
// instance and the sender are not repeated in it: they are in whatever
// carries the envelope (a heartbeat message's instance and author, a field's
// soul and signed writer) and bound by the associated data, so an envelope
// moved anywhere else fails to open.
//
// It has two encodings with the same content: text ([Envelope.String],
// [ParseEnvelope]) for message payloads and field values, binary
// ([Envelope.MarshalBinary], [ParseEnvelopeBinary]) for snapshot blobs.
// See the package documentation for the bytes.
type Envelope struct {
	Kind       Kind
	Epoch      uint64
	Nonce      [NonceSize]byte
	Ciphertext []byte // XChaCha20-Poly1305 output: encrypted plaintext then the 16-byte tag
}

var b64 = base64.RawURLEncoding.Strict()

// decodeB64 decodes canonical unpadded base64url. Unlike the encoding/base64
// decoder alone it refuses CR and LF (which that decoder skips), so every
// value has exactly one text form.
func decodeB64(s string) ([]byte, bool) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, false
	}
	b, err := b64.DecodeString(s)
	return b, err == nil
}

// envErr returns an ErrEnvelope refusal with a reason.
func envErr(reason string) error { return fmt.Errorf("%w: %s", ErrEnvelope, reason) }

// check validates the fields that do not depend on the encoding.
func (e *Envelope) check() error {
	if !e.Kind.known() {
		return envErr("unknown kind")
	}
	if e.Epoch == 0 || e.Epoch > MaxEpoch {
		return envErr("key epoch outside [1, 2^53-1]")
	}
	n := len(e.Ciphertext)
	switch {
	case n < TagSize:
		return envErr("ciphertext shorter than the 16-byte tag")
	case e.Kind.signed() && n < TagSize+InnerSigSize:
		return envErr("ciphertext shorter than the tag and the inner signature")
	case n > MaxCiphertext:
		return envErr("ciphertext too large")
	}
	return nil
}

// String returns the text form:
//
//	"lum1." kind "." epoch "." base64url(nonce) "." base64url(ciphertext)
//
// kind is "m", "d" or "s", epoch is decimal without leading zeros, and
// base64url is unpadded.
func (e *Envelope) String() string {
	return string(e.AppendText(nil))
}

// AppendText appends the text form to dst.
func (e *Envelope) AppendText(dst []byte) []byte {
	dst = append(dst, textVersion...)
	dst = append(dst, '.')
	if e.Kind.known() {
		dst = append(dst, kindLetters[e.Kind]...)
	} else {
		dst = append(dst, '?')
	}
	dst = append(dst, '.')
	dst = strconv.AppendUint(dst, e.Epoch, 10)
	dst = append(dst, '.')
	dst = b64.AppendEncode(dst, e.Nonce[:])
	dst = append(dst, '.')
	return b64.AppendEncode(dst, e.Ciphertext)
}

// ParseEnvelope decodes the text form. It checks structure only (what a
// relay can check without the key); every error wraps [ErrEnvelope] and
// reads "invalid: envelope: <reason>".
func ParseEnvelope(s string) (*Envelope, error) {
	if len(s) > b64.EncodedLen(MaxCiphertext)+64 {
		return nil, envErr("too large")
	}
	ver, rest, ok := strings.Cut(s, ".")
	if !ok {
		return nil, envErr("not an envelope")
	}
	if ver != textVersion {
		return nil, envErr("unknown version")
	}
	parts := strings.SplitN(rest, ".", 5)
	if len(parts) != 4 {
		return nil, envErr("want 5 dot-separated parts")
	}
	var e Envelope
	switch parts[0] {
	case "m":
		e.Kind = KindMessage
	case "d":
		e.Kind = KindData
	case "s":
		e.Kind = KindSnapshot
	default:
		return nil, envErr("unknown kind")
	}
	ep, ok := parseEpoch(parts[1])
	if !ok {
		return nil, envErr("key epoch must be a decimal in [1, 2^53-1]")
	}
	e.Epoch = ep
	if len(parts[2]) != b64.EncodedLen(NonceSize) {
		return nil, envErr("nonce must be 24 bytes")
	}
	nonce, ok := decodeB64(parts[2])
	if !ok || len(nonce) != NonceSize {
		return nil, envErr("nonce encoding")
	}
	copy(e.Nonce[:], nonce)
	ct, ok := decodeB64(parts[3])
	if !ok {
		return nil, envErr("ciphertext encoding")
	}
	e.Ciphertext = ct
	if err := e.check(); err != nil {
		return nil, err
	}
	return &e, nil
}

// parseEpoch parses a canonical decimal epoch in [1, MaxEpoch].
func parseEpoch(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > 16 || s[0] == '0' {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, v <= MaxEpoch
}

// MarshalBinary returns the binary form:
//
//	version (1 byte, 0x01) ‖ kind (1 byte) ‖ epoch (8 bytes big-endian) ‖
//	nonce (24 bytes) ‖ ciphertext (the rest, tag last)
func (e *Envelope) MarshalBinary() ([]byte, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	return e.appendBinary(make([]byte, 0, HeaderSize+len(e.Ciphertext))), nil
}

func (e *Envelope) appendBinary(dst []byte) []byte {
	dst = append(dst, Version, byte(e.Kind))
	dst = binary.BigEndian.AppendUint64(dst, e.Epoch)
	dst = append(dst, e.Nonce[:]...)
	return append(dst, e.Ciphertext...)
}

// ParseEnvelopeBinary decodes the binary form. Like [ParseEnvelope] it
// checks structure only and every error wraps [ErrEnvelope]. The returned
// envelope's Ciphertext aliases b.
func ParseEnvelopeBinary(b []byte) (*Envelope, error) {
	if len(b) < 1 {
		return nil, envErr("empty")
	}
	if b[0] != Version {
		return nil, envErr("unknown version")
	}
	if len(b) < HeaderSize {
		return nil, envErr("shorter than its header")
	}
	e := &Envelope{Kind: Kind(b[1]), Epoch: binary.BigEndian.Uint64(b[2:10])}
	copy(e.Nonce[:], b[10:HeaderSize])
	e.Ciphertext = b[HeaderSize:]
	if err := e.check(); err != nil {
		return nil, err
	}
	return e, nil
}

// CheckPayload is the relay's check of a message payload in a private
// instance: it must be a text envelope of kind message. It returns nil or
// an error wrapping [ErrEnvelope]. It never needs a key.
func CheckPayload(payload string) (*Envelope, error) {
	e, err := ParseEnvelope(payload)
	if err != nil {
		return nil, err
	}
	if e.Kind != KindMessage {
		return nil, envErr("not a message envelope")
	}
	return e, nil
}
