package sea

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/krestianstvo/luminary/internal/jsjson"
)

// SEA's AES-GCM format (gun.md §4.4).
const (
	ivSize   = 15 // gun.js uses a 15-byte GCM nonce
	saltSize = 9
	tagSize  = 16
)

// ErrDecrypt is the one error Decrypt returns once the envelope is well
// formed: wrong passphrase, modified ciphertext, nonce, salt or tag, or a
// plaintext that is not UTF-8. It carries no detail.
var ErrDecrypt = errors.New("sea: could not decrypt")

// Encrypt encrypts data for passphrase exactly as gun.js SEA.encrypt(data,
// passphrase) does and returns `SEA{"ct":…,"iv":…,"s":…}`.
//
// The plaintext is data if it is a string (not decoded, unlike Sign), else
// JSON.stringify(data). A 9-byte salt and a 15-byte IV are drawn at random;
// the AES-256-GCM key is SHA-256(UTF-8(passphrase + latin1(salt))), each salt
// byte becoming the code point U+0000–U+00FF (gun.js's quirk, reproduced
// exactly). For a recipient's key, pass the shared secret from [Secret]; to
// use a SEA pair as gun.js does with SEA.encrypt(data, pair), pass the pair's
// epriv text.
//
// This is gun.js's format, kept for compatibility: its key derivation is a
// single SHA-256, so a low-entropy passphrase is cheap to guess. Derive
// passphrases with [Work] or [Secret], never from user input directly.
func Encrypt(data any, passphrase string) (string, error) {
	if passphrase == "" {
		return "", errors.New("sea: encrypt: empty passphrase")
	}
	if !utf8.ValidString(passphrase) {
		return "", errors.New("sea: encrypt: passphrase is not valid UTF-8")
	}
	if err := checkValue(data, 0); err != nil {
		return "", fmt.Errorf("sea: encrypt: %w", err)
	}
	msg := textOf(nil, jsOrder(data, 0))
	if len(msg) > MaxEnvelopeSize/2 {
		return "", errors.New("sea: encrypt: data too large")
	}
	var salt [saltSize]byte
	var iv [ivSize]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return "", err
	}
	if _, err := rand.Read(iv[:]); err != nil {
		return "", err
	}
	aead, err := seaAEAD(passphrase, salt[:])
	if err != nil {
		return "", err
	}
	ct := aead.Seal(nil, iv[:], msg, nil)

	out := make([]byte, 0, 32+base64.StdEncoding.EncodedLen(len(ct)))
	out = append(out, `SEA{"ct":"`...)
	out = base64.StdEncoding.AppendEncode(out, ct)
	out = append(out, `","iv":"`...)
	out = base64.StdEncoding.AppendEncode(out, iv[:])
	out = append(out, `","s":"`...)
	out = base64.StdEncoding.AppendEncode(out, salt[:])
	out = append(out, `"}`...)
	return string(out), nil
}

// seaAEAD derives gun's AES-256-GCM key from passphrase and salt.
func seaAEAD(passphrase string, salt []byte) (cipher.AEAD, error) {
	combo := make([]byte, 0, len(passphrase)+2*len(salt))
	combo = append(combo, passphrase...)
	for _, b := range salt {
		combo = utf8.AppendRune(combo, rune(b)) // latin1 code point, UTF-8 encoded
	}
	key := sha256.Sum256(combo)
	clear(combo)
	block, err := aes.NewCipher(key[:])
	clear(key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithNonceSize(block, ivSize)
}

// Decrypt decrypts a SEA encrypted envelope (`SEA{"ct","iv","s"}`, with or
// without the "SEA" prefix) with passphrase, like gun.js SEA.decrypt, and
// returns the plaintext decoded as gun.js does: a leading "SEA{" loses its
// "SEA", JSON text becomes its value, anything else is returned as a string.
//
// A malformed envelope (not strict JSON, members other than ct, iv and s, a
// salt that is not 9 bytes, an IV that is not 15 bytes, non-canonical
// base64) is refused with an error wrapping ErrEnvelope; everything after
// that fails with the opaque ErrDecrypt.
func Decrypt(env string, passphrase string) (any, error) {
	obj, err := parseObject(env)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEnvelope, err)
	}
	return decrypt(obj, passphrase)
}

// DecryptValue is Decrypt for an envelope that is already decoded, such as
// the "ek" object of a gun.js user's auth record.
func DecryptValue(v any, passphrase string) (any, error) {
	obj, ok := v.(*jsjson.Object)
	if !ok || obj == nil {
		return nil, fmt.Errorf("%w: not an object", ErrEnvelope)
	}
	return decrypt(obj, passphrase)
}

func decrypt(obj *jsjson.Object, passphrase string) (any, error) {
	if obj.Len() != 3 {
		return nil, fmt.Errorf("%w: want exactly the members ct, iv and s", ErrEnvelope)
	}
	ct, ok1 := b64Member(obj, "ct", -1)
	iv, ok2 := b64Member(obj, "iv", ivSize)
	salt, ok3 := b64Member(obj, "s", saltSize)
	if !ok1 || !ok2 || !ok3 || len(ct) < tagSize {
		return nil, fmt.Errorf("%w: ct, iv (15 bytes) and s (9 bytes) must be canonical base64", ErrEnvelope)
	}
	if passphrase == "" || !utf8.ValidString(passphrase) {
		return nil, ErrDecrypt
	}
	aead, err := seaAEAD(passphrase, salt)
	if err != nil {
		return nil, ErrDecrypt
	}
	pt, err := aead.Open(nil, iv, ct, nil)
	if err != nil || !utf8.Valid(pt) {
		return nil, ErrDecrypt
	}
	v, err := seaParse(string(pt))
	if err != nil {
		return nil, fmt.Errorf("sea: decrypt: plaintext is %w", err)
	}
	return v, nil
}

// b64Member decodes member k as canonical padded standard base64, of exactly
// size bytes unless size < 0.
func b64Member(obj *jsjson.Object, k string, size int) ([]byte, bool) {
	v, _ := obj.Get(k)
	s, ok := v.(string)
	if !ok {
		return nil, false
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || (size >= 0 && len(b) != size) {
		return nil, false
	}
	// Strict decoding still skips '\r' and '\n'; require the canonical text.
	if base64.StdEncoding.EncodedLen(len(b)) != len(s) {
		return nil, false
	}
	return b, true
}
