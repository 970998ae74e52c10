package world

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/keys"
)

// wrapVersion is the version of the wrapped-key format.
const wrapVersion = 1

// WrappedKey is a content key encrypted to one member's public key,
// ECIES-style: an ephemeral key pair on the member's curve, ECDH, HKDF-SHA256
// and XChaCha20-Poly1305. Its text form ([WrappedKey.String]) is the value
// of the member's field in lum/<I>/keys/<epoch>.
type WrappedKey struct {
	Ephemeral  string          // ephemeral public key text (same curve as the member)
	Nonce      [NonceSize]byte // random
	Ciphertext []byte          // the 32-byte secret, then the 16-byte tag
}

// wrapInfo returns the HKDF info and associated data of a wrapped key:
//
//	keys.Message("world.wrap", instance, epoch (8 bytes BE), ephemeral, member)
func wrapInfo(instance string, epoch uint64, ephemeral, member string) []byte {
	return keys.Message(labelWrap, []byte(instance), be64(epoch), []byte(ephemeral), []byte(member))
}

// Wrap encrypts k to member. It costs one key generation and one ECDH on
// the member's curve (about 0.1 ms on secp256k1), so wrap once per member
// and epoch, never per message.
func Wrap(k *ContentKey, member *keys.Public) (*WrappedKey, error) {
	if k == nil || member == nil {
		return nil, errors.New("world: wrap: nil key")
	}
	eph, err := keys.Generate(member.Curve())
	if err != nil {
		return nil, fmt.Errorf("world: wrap: %w", err)
	}
	var nonce [NonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("world: wrap: %w", err)
	}
	return wrapWith(k, member, eph, nonce)
}

// wrapWith is Wrap with a given ephemeral key and nonce (for test vectors).
func wrapWith(k *ContentKey, member *keys.Public, eph *keys.Private, nonce [NonceSize]byte) (*WrappedKey, error) {
	shared, err := member.ECDH(eph)
	if err != nil {
		return nil, fmt.Errorf("world: wrap: %w", err)
	}
	defer clear(shared)
	w := &WrappedKey{Ephemeral: eph.Public().String()}
	info := wrapInfo(k.instance, k.epoch, w.Ephemeral, member.String())
	kek, err := hkdf.Key(sha256.New, shared, nil, string(info), chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	aead, err := chacha20poly1305.NewX(kek)
	if err != nil {
		return nil, err
	}
	w.Nonce = nonce
	w.Ciphertext = aead.Seal(nil, w.Nonce[:], k.secret[:], info)
	return w, nil
}

// Unwrap decrypts a wrapped key with the member's private key and returns
// the content key of epoch of instance. Any failure after the format
// checks is the opaque [ErrDecrypt] (wrong member, wrong instance or epoch,
// tampered bytes).
//
// For secp256k1 members the ECDH is decred's, which is not constant time;
// the ephemeral point comes from a record only the owner or an admin can
// sign, and the computation happens on the member's own machine.
func Unwrap(w *WrappedKey, instance string, epoch uint64, priv *keys.Private) (*ContentKey, error) {
	if w == nil || priv == nil {
		return nil, errors.New("world: unwrap: nil key")
	}
	eph, err := keys.ParsePublic(w.Ephemeral)
	if err != nil {
		return nil, fmt.Errorf("%w: ephemeral key: %v", ErrWrappedKey, err)
	}
	if eph.Curve() != priv.Curve() {
		return nil, fmt.Errorf("%w: ephemeral key on %v, member key on %v", ErrWrappedKey, eph.Curve(), priv.Curve())
	}
	shared, err := eph.ECDH(priv)
	if err != nil {
		return nil, ErrDecrypt
	}
	defer clear(shared)
	info := wrapInfo(instance, epoch, w.Ephemeral, priv.Public().String())
	kek, err := hkdf.Key(sha256.New, shared, nil, string(info), chacha20poly1305.KeySize)
	if err != nil {
		return nil, ErrDecrypt
	}
	defer clear(kek)
	aead, err := chacha20poly1305.NewX(kek)
	if err != nil {
		return nil, ErrDecrypt
	}
	secret, err := aead.Open(nil, w.Nonce[:], w.Ciphertext, info)
	if err != nil {
		return nil, ErrDecrypt
	}
	defer clear(secret)
	return newContentKey(instance, epoch, secret)
}

// String returns the text form, a JSON object with exactly these members in
// this order:
//
//	{"v":1,"epk":"<ephemeral public key text>","nonce":"<24 bytes>","ct":"<48 bytes>"}
//
// binary values in unpadded base64url.
func (w *WrappedKey) String() string {
	o := &jsjson.Object{
		Keys:   []string{"v", "epk", "nonce", "ct"},
		Values: []any{float64(wrapVersion), w.Ephemeral, b64.EncodeToString(w.Nonce[:]), b64.EncodeToString(w.Ciphertext)},
	}
	return string(jsjson.Append(nil, o))
}

// wrappedLimits bounds the JSON of a wrapped key.
var wrappedLimits = jsjson.Limits{MaxBytes: 1024, MaxDepth: 1, MaxMembers: 4, MaxElements: 1, RejectCaseVariants: true}

// ParseWrappedKey decodes the text form strictly: exact members, version 1,
// a parsable ephemeral key text, a 24-byte nonce and a 48-byte ciphertext.
// Errors wrap [ErrWrappedKey].
func ParseWrappedKey(s string) (*WrappedKey, error) {
	v, err := jsjson.Parse([]byte(s), wrappedLimits)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWrappedKey, err)
	}
	o, err := exactObject(v, "v", "epk", "nonce", "ct")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWrappedKey, err)
	}
	if n, ok := o.number("v"); !ok || n != wrapVersion {
		return nil, fmt.Errorf("%w: unknown version", ErrWrappedKey)
	}
	w := &WrappedKey{}
	var ok bool
	if w.Ephemeral, ok = o.str("epk"); !ok {
		return nil, fmt.Errorf("%w: epk must be a string", ErrWrappedKey)
	}
	if _, err := keys.ParsePublic(w.Ephemeral); err != nil {
		return nil, fmt.Errorf("%w: epk: %v", ErrWrappedKey, err)
	}
	nonce, ok := o.bytes("nonce")
	if !ok || len(nonce) != NonceSize {
		return nil, fmt.Errorf("%w: nonce must be 24 bytes", ErrWrappedKey)
	}
	copy(w.Nonce[:], nonce)
	if w.Ciphertext, ok = o.bytes("ct"); !ok || len(w.Ciphertext) != SecretSize+TagSize {
		return nil, fmt.Errorf("%w: ciphertext must be 48 bytes", ErrWrappedKey)
	}
	return w, nil
}

// object is a parsed JSON object with typed getters.
type object struct{ *jsjson.Object }

// exactObject checks that v is an object whose member names are exactly
// names (in any order).
func exactObject(v any, names ...string) (object, error) {
	o, ok := v.(*jsjson.Object)
	if !ok {
		return object{}, errors.New("not an object")
	}
	if o.Len() != len(names) {
		return object{}, fmt.Errorf("want exactly %d members", len(names))
	}
	for _, n := range names {
		if _, ok := o.Get(n); !ok {
			return object{}, fmt.Errorf("missing %q", n)
		}
	}
	return object{o}, nil
}

func (o object) str(k string) (string, bool) {
	v, _ := o.Get(k)
	s, ok := v.(string)
	return s, ok
}

func (o object) number(k string) (float64, bool) {
	v, _ := o.Get(k)
	f, ok := v.(float64)
	return f, ok
}

func (o object) bytes(k string) ([]byte, bool) {
	s, ok := o.str(k)
	if !ok {
		return nil, false
	}
	return decodeB64(s)
}
