package sea

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/keys"
)

// Errors callers branch on.
var (
	// ErrEnvelope is returned (wrapped, with the reason) for SEA text that is
	// not a well-formed envelope: not strict JSON, missing or unknown
	// members, a signature that is not canonical base64 of 64 bytes, too
	// large.
	ErrEnvelope = errors.New("invalid: sea envelope")

	// ErrBadSignature is returned when a well-formed envelope's signature
	// does not verify under the given public key.
	ErrBadSignature = errors.New("invalid: bad signature")
)

// sigTextLen is the length of a 64-byte signature in padded standard base64.
const sigTextLen = 88

// Envelope is a parsed SEA signature `SEA{"m":…,"s":…}`. It is immutable:
// [Envelope.Verify] checks the text that was parsed.
type Envelope struct {
	m      any
	text   []byte
	digest [32]byte // SHA-256(text), the message that keys signs and verifies
	sig    [keys.SignatureSize]byte
}

// Value returns m as decoded from the envelope (objects in JavaScript member
// order). A string m is returned as the string; see [Verify] for gun's
// decoding of it.
func (e *Envelope) Value() any { return e.m }

// Text returns the exact text that the signature covers: m itself when it
// is a string, else JSON.stringify(m).
func (e *Envelope) Text() string { return string(e.text) }

// Signature returns the 64-byte r‖s signature.
func (e *Envelope) Signature() []byte { return e.sig[:] }

// String returns the envelope in SEA's text form, `SEA{"m":…,"s":"…"}`.
func (e *Envelope) String() string {
	b := append([]byte(nil), `SEA{"m":`...)
	b = jsjson.Append(b, e.m)
	b = append(b, `,"s":"`...)
	b = base64.StdEncoding.AppendEncode(b, e.sig[:])
	return string(append(b, `"}`...))
}

// Verify checks the signature under pub. The digest is SHA-256 of the text,
// which keys hashes again, so ECDSA covers SHA-256(SHA-256(text)) exactly as
// gun.js SEA does. For P-256 keys high-S signatures are accepted (gun.js
// does not normalise S; see keys.Public.VerifyLax); for secp256k1 keys the
// strict rule applies. It returns nil or an error wrapping ErrBadSignature.
func (e *Envelope) Verify(pub *keys.Public) error {
	if pub == nil {
		return fmt.Errorf("%w: no public key", ErrBadSignature)
	}
	if !verifyDigest(pub, e.digest[:], e.sig[:]) {
		return ErrBadSignature
	}
	return nil
}

func verifyDigest(pub *keys.Public, digest, sig []byte) bool {
	if pub.Curve() == keys.P256 {
		return pub.VerifyLax(digest, sig)
	}
	return pub.Verify(digest, sig)
}

// ParseEnvelope parses a SEA signature: `SEA{"m":…,"s":…}`, or the same
// object without the "SEA" prefix. The object must have exactly the members
// "m" and "s"; s must be canonical padded base64 of 64 bytes. It does not
// verify the signature.
func ParseEnvelope(s string) (*Envelope, error) {
	obj, err := parseObject(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEnvelope, err)
	}
	// The canonical text of m is never longer than the envelope it came in.
	return decodeEnvelope(obj, len(s))
}

// DecodeEnvelope is ParseEnvelope for an envelope that is already decoded,
// such as the certificate object {"m":…,"s":…} carried inside a gun.js
// user-space wrapper.
func DecodeEnvelope(v any) (*Envelope, error) {
	obj, ok := v.(*jsjson.Object)
	if !ok || obj == nil {
		return nil, fmt.Errorf("%w: not an object", ErrEnvelope)
	}
	if err := checkValue(obj, 0); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEnvelope, err)
	}
	return decodeEnvelope(jsOrder(obj, 0).(*jsjson.Object), 256)
}

func decodeEnvelope(obj *jsjson.Object, textCap int) (*Envelope, error) {
	if obj.Len() != 2 {
		return nil, fmt.Errorf("%w: want exactly the members m and s", ErrEnvelope)
	}
	m, okm := obj.Get("m")
	sv, oks := obj.Get("s")
	if !okm || !oks {
		return nil, fmt.Errorf("%w: want exactly the members m and s", ErrEnvelope)
	}
	st, ok := sv.(string)
	if !ok {
		return nil, fmt.Errorf("%w: s is not a string", ErrEnvelope)
	}
	e := &Envelope{m: m}
	if !decodeSig(st, &e.sig) {
		return nil, fmt.Errorf("%w: s is not canonical base64 of 64 bytes", ErrEnvelope)
	}
	if s, ok := m.(string); ok {
		textCap = len(s)
	}
	e.text = textOf(make([]byte, 0, textCap), m)
	e.digest = sha256.Sum256(e.text)
	return e, nil
}

// decodeSig decodes exactly 88 characters of canonical padded standard
// base64 into 64 bytes. (Go's decoder skips '\r' and '\n'; the fixed
// length rules them out.)
func decodeSig(s string, out *[keys.SignatureSize]byte) bool {
	if len(s) != sigTextLen {
		return false
	}
	var src [sigTextLen]byte // on the stack: no allocation for the conversion
	copy(src[:], s)
	var buf [keys.SignatureSize + 2]byte
	n, err := base64.StdEncoding.Strict().Decode(buf[:], src[:])
	if err != nil || n != keys.SignatureSize {
		return false
	}
	copy(out[:], buf[:n])
	return true
}

// Sign signs data the way gun.js SEA.sign(data, pair) does and returns the
// envelope text `SEA{"m":…,"s":"…"}`.
//
// data is a string or a value (nil, bool, float64, string, []any,
// *jsjson.Object; also int, int64, []string, map[string]any). As in gun.js,
// a string is first decoded: a leading "SEA{" loses its "SEA", and text that
// parses as JSON becomes that value ("123" signs the number 123, `{"b":2}`
// the object); other strings are signed as they are. JSON that only
// JavaScript's lenient JSON.parse would accept (duplicate names, lone
// surrogates, out-of-range numbers) is refused rather than signed
// differently from gun.js. Objects are written in JavaScript member order.
//
// If the decoded data is itself an envelope {m, s} that verifies under
// priv's public key, it is returned unchanged (re-serialized), as gun.js
// does. The signature is deterministic (RFC 6979) and low-S.
func Sign(data any, priv *keys.Private) (string, error) {
	if priv == nil {
		return "", errors.New("sea: sign: no private key")
	}
	m, err := signInput(data)
	if err != nil {
		return "", fmt.Errorf("sea: sign: %w", err)
	}
	if obj, ok := m.(*jsjson.Object); ok {
		if already(obj, priv.Public()) {
			return "SEA" + string(jsjson.Append(nil, obj)), nil
		}
	}
	e, err := signValue(m, priv)
	if err != nil {
		return "", err
	}
	return e.String(), nil
}

// already mirrors gun's "don't sign if we already signed it": an object with
// truthy m and s whose signature verifies under pub.
func already(obj *jsjson.Object, pub *keys.Public) bool {
	m, okm := obj.Get("m")
	s, oks := obj.Get("s")
	if !truthy(m, okm) || !truthy(s, oks) {
		return false
	}
	st, ok := s.(string)
	var sig [keys.SignatureSize]byte
	if !ok || !decodeSig(st, &sig) {
		return false
	}
	d := sha256.Sum256(textOf(nil, m))
	return verifyDigest(pub, d[:], sig[:])
}

// signInput applies gun's S.parse to a string and checks other values.
func signInput(data any) (any, error) {
	if s, ok := data.(string); ok {
		if len(s) > MaxEnvelopeSize {
			return nil, errors.New("data larger than MaxEnvelopeSize")
		}
		if err := checkValue(s, 0); err != nil {
			return nil, err
		}
		return seaParse(s)
	}
	return normalize(data)
}

// signValue signs m as given (no string decoding).
func signValue(m any, priv *keys.Private) (*Envelope, error) {
	text := textOf(nil, m)
	if len(text) > MaxEnvelopeSize {
		return nil, errors.New("sea: sign: data larger than MaxEnvelopeSize")
	}
	e := &Envelope{m: m, digest: sha256.Sum256(text), text: text}
	sig, err := priv.Sign(e.digest[:])
	if err != nil {
		return nil, fmt.Errorf("sea: sign: %w", err)
	}
	copy(e.sig[:], sig)
	return e, nil
}

// Verify parses and verifies a SEA envelope under pub, like gun.js
// SEA.verify(env, pub), and returns m. As in gun.js, a string m is decoded
// once more on the way out: a leading "SEA{" loses its "SEA" and JSON text
// becomes its value. Errors wrap ErrEnvelope or ErrBadSignature.
func Verify(env string, pub *keys.Public) (any, error) {
	e, err := ParseEnvelope(env)
	if err != nil {
		return nil, err
	}
	if err := e.Verify(pub); err != nil {
		return nil, err
	}
	s, ok := e.m.(string)
	if !ok {
		return e.m, nil
	}
	v, err := seaParse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: m holds %v", ErrEnvelope, err)
	}
	return v, nil
}

// SignValue returns the bare SEA signature (88 characters of base64) of m,
// as found in the "~" member of gun.js user-space wrappers. Unlike [Sign],
// a string m is signed as it is, without JSON decoding; objects are written
// in JavaScript member order.
func SignValue(m any, priv *keys.Private) (string, error) {
	if priv == nil {
		return "", errors.New("sea: sign: no private key")
	}
	if err := checkValue(m, 0); err != nil {
		return "", fmt.Errorf("sea: sign: %w", err)
	}
	e, err := signValue(jsOrder(m, 0), priv)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(e.sig[:]), nil
}

// VerifyValue checks a bare SEA signature sig (as made by [SignValue] or
// gun.js) of m under pub. Errors wrap ErrEnvelope (sig not canonical base64
// of 64 bytes, m not writable) or ErrBadSignature.
func VerifyValue(m any, sig string, pub *keys.Public) error {
	if err := checkValue(m, 0); err != nil {
		return fmt.Errorf("%w: %v", ErrEnvelope, err)
	}
	var raw [keys.SignatureSize]byte
	if !decodeSig(sig, &raw) {
		return fmt.Errorf("%w: signature is not canonical base64 of 64 bytes", ErrEnvelope)
	}
	if pub == nil {
		return fmt.Errorf("%w: no public key", ErrBadSignature)
	}
	d := sha256.Sum256(textOf(nil, jsOrder(m, 0)))
	if !verifyDigest(pub, d[:], raw[:]) {
		return ErrBadSignature
	}
	return nil
}

// Text returns the text SEA signs and hashes for m: m itself when it is a
// string, else JSON.stringify(m) with objects in JavaScript member order.
func Text(m any) (string, error) {
	if err := checkValue(m, 0); err != nil {
		return "", fmt.Errorf("sea: %w", err)
	}
	return string(textOf(nil, jsOrder(m, 0))), nil
}
