package world

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/krestianstvo/luminary/keys"
)

// SecretSize is the size of a content key's secret.
const SecretSize = 32

// MaxEpoch is the largest key epoch: 2^53 − 1, so that JavaScript peers hold
// every epoch exactly.
const MaxEpoch = 1<<53 - 1

// Labels of the keys.Message encodings this package uses. Each names one
// purpose, so bytes made for one can never be taken for another.
const (
	labelKey      = "world.key"      // HKDF info of the per-purpose subkeys of a content key
	labelPayload  = "world.payload"  // associated data of an envelope
	labelInner    = "world.inner"    // the sender's signature inside an envelope
	labelSnapIV   = "world.snap-iv"  // input of a snapshot's synthetic nonce
	labelWrap     = "world.wrap"     // HKDF info and associated data of a wrapped key
	labelPassword = "world.password" // HKDF info of a password world's keys
	labelSalt     = "world.salt"     // a password world's salt
)

// Subkey purposes (the second part of the labelKey info).
const (
	purposePayload   = "payload"
	purposeSnapshot  = "snapshot"
	purposeSnapNonce = "snapshot-nonce"
)

// ContentKey is the secret of one key epoch of one private instance, with
// the subkeys derived from it. Every member holding the epoch holds the same
// ContentKey. It is immutable and safe for concurrent use.
//
// The secret is 32 random bytes ([NewContentKey]) or derived from a password
// ([PasswordWorld]). Subkeys are HKDF-SHA256(secret, salt = none, info =
// keys.Message("world.key", purpose, instance, epoch as 8 bytes
// big-endian)) for the purposes "payload" (messages and private fields),
// "snapshot" and "snapshot-nonce"; see the package documentation.
type ContentKey struct {
	instance string
	epoch    uint64
	secret   [SecretSize]byte

	payload   cipher.AEAD // XChaCha20-Poly1305, random nonces
	snapshot  cipher.AEAD // XChaCha20-Poly1305, synthetic nonces
	snapNonce [32]byte    // HMAC-SHA256 key for synthetic nonces
}

// NewContentKey returns a fresh random key for epoch of instance.
func NewContentKey(instance string, epoch uint64) (*ContentKey, error) {
	var s [SecretSize]byte
	if _, err := rand.Read(s[:]); err != nil {
		return nil, fmt.Errorf("world: new content key: %w", err)
	}
	k, err := newContentKey(instance, epoch, s[:])
	clear(s[:])
	return k, err
}

// newContentKey derives the subkeys of secret for epoch of instance.
func newContentKey(instance string, epoch uint64, secret []byte) (*ContentKey, error) {
	if err := checkInstance(instance); err != nil {
		return nil, err
	}
	if epoch == 0 || epoch > MaxEpoch {
		return nil, fmt.Errorf("world: key epoch %d outside [1, 2^53-1]", epoch)
	}
	if len(secret) != SecretSize {
		return nil, errors.New("world: content key secret must be 32 bytes")
	}
	k := &ContentKey{instance: instance, epoch: epoch}
	copy(k.secret[:], secret)
	var err error
	pk := k.subkey(purposePayload)
	defer clear(pk)
	if k.payload, err = chacha20poly1305.NewX(pk); err != nil {
		return nil, err
	}
	sk := k.subkey(purposeSnapshot)
	defer clear(sk)
	if k.snapshot, err = chacha20poly1305.NewX(sk); err != nil {
		return nil, err
	}
	nk := k.subkey(purposeSnapNonce)
	copy(k.snapNonce[:], nk)
	clear(nk)
	return k, nil
}

// subkey derives the 32-byte subkey for purpose.
func (k *ContentKey) subkey(purpose string) []byte {
	info := keys.Message(labelKey, []byte(purpose), []byte(k.instance), be64(k.epoch))
	out, err := hkdf.Key(sha256.New, k.secret[:], nil, string(info), 32)
	if err != nil {
		panic("world: hkdf: " + err.Error()) // only for lengths HKDF cannot produce
	}
	return out
}

// Instance returns the instance id (the owner's public key text).
func (k *ContentKey) Instance() string { return k.instance }

// Epoch returns the key epoch.
func (k *ContentKey) Epoch() uint64 { return k.epoch }

// Equal reports whether k and o are the same key of the same epoch of the
// same instance, comparing the secrets in constant time.
func (k *ContentKey) Equal(o *ContentKey) bool {
	if k == nil || o == nil {
		return k == o
	}
	same := subtle.ConstantTimeCompare(k.secret[:], o.secret[:]) == 1
	return same && k.epoch == o.epoch && k.instance == o.instance
}

// String describes the key without revealing it.
func (k *ContentKey) String() string {
	if k == nil {
		return "content key (nil)"
	}
	return "content key for " + k.instance + " epoch " + strconv.FormatUint(k.epoch, 10)
}

// GoString is like String, so %#v does not print the secret either.
func (k *ContentKey) GoString() string { return k.String() }

// LogValue keeps the secret out of structured logs.
func (k *ContentKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// Keyring holds the content keys of one instance that a member holds, one
// per key epoch. Sealing uses the newest epoch; opening picks the epoch the
// envelope names. It is safe for concurrent use.
type Keyring struct {
	instance string
	mu       sync.RWMutex
	keys     map[uint64]*ContentKey
	current  *ContentKey
	pubs     *keys.Cache // sender keys of opened envelopes
}

// keyringCacheSize bounds the parsed sender keys a keyring remembers.
const keyringCacheSize = 1024

// parse parses a sender's public key text through the keyring's cache.
func (r *Keyring) parse(s string) (*keys.Public, error) { return r.pubs.Parse(s) }

// NewKeyring returns a keyring for instance holding ks (none is fine).
func NewKeyring(instance string, ks ...*ContentKey) (*Keyring, error) {
	if err := checkInstance(instance); err != nil {
		return nil, err
	}
	r := &Keyring{instance: instance, keys: map[uint64]*ContentKey{}, pubs: keys.NewCache(keyringCacheSize)}
	for _, k := range ks {
		if err := r.Add(k); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Instance returns the instance the keyring belongs to.
func (r *Keyring) Instance() string { return r.instance }

// Add adds k. It refuses a key of another instance and a different key for
// an epoch the keyring already holds.
func (r *Keyring) Add(k *ContentKey) error {
	if k == nil {
		return errors.New("world: keyring: nil key")
	}
	if k.instance != r.instance {
		return fmt.Errorf("world: keyring for %s: key of instance %s", r.instance, k.instance)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.keys[k.epoch]; ok {
		if !old.Equal(k) {
			return fmt.Errorf("world: keyring: two different keys for epoch %d", k.epoch)
		}
		return nil
	}
	r.keys[k.epoch] = k
	if r.current == nil || k.epoch > r.current.epoch {
		r.current = k
	}
	return nil
}

// Key returns the key of epoch.
func (r *Keyring) Key(epoch uint64) (*ContentKey, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.keys[epoch]
	return k, ok
}

// Current returns the key of the newest epoch held, or nil when empty.
func (r *Keyring) Current() *ContentKey {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.current
}

// Epochs returns the epochs held, ascending.
func (r *Keyring) Epochs() []uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]uint64, 0, len(r.keys))
	for e := range r.keys {
		out = append(out, e)
	}
	slices.Sort(out)
	return out
}

// be64 returns v as 8 bytes big-endian.
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// checkInstance checks the syntax of an instance id: a public key text (it
// is bound into every derivation, so it must be the exact text).
func checkInstance(instance string) error {
	if len(instance) == 0 || len(instance) > 128 {
		return errors.New("world: instance id length")
	}
	for i := 0; i < len(instance); i++ {
		c := instance[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == ':' || c == '.') {
			return fmt.Errorf("world: instance id has character %q", c)
		}
	}
	return nil
}
