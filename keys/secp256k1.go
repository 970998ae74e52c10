package keys

import (
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// k1Public holds a parsed secp256k1 point.
type k1Public struct {
	key *secp256k1.PublicKey
}

// k1Private holds a secp256k1 scalar.
type k1Private struct {
	key *secp256k1.PrivateKey
}

func newK1Public(pk *secp256k1.PublicKey) *Public {
	return &Public{
		curve: Secp256k1,
		text:  k1Prefix + b64url.EncodeToString(pk.SerializeCompressed()),
		k1:    k1Public{key: pk},
	}
}

func generateK1() (*Private, error) {
	sk, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		return nil, fmt.Errorf("keys: generate secp256k1: %w", err)
	}
	return newK1Private(sk), nil
}

func newK1Private(sk *secp256k1.PrivateKey) *Private {
	return &Private{curve: Secp256k1, pub: newK1Public(sk.PubKey()), k1: k1Private{key: sk}}
}

// parseK1Public parses "k1:" + base64url(33-byte compressed point); the caller
// has checked the prefix and the total length.
func parseK1Public(s string) (*Public, error) {
	var raw [secp256k1.PubKeyBytesLenCompressed]byte
	n, err := b64url.Decode(raw[:], []byte(s[len(k1Prefix):]))
	if err != nil || n != len(raw) {
		return nil, fmt.Errorf("%w: secp256k1 key is not canonical base64url of 33 bytes", ErrPublicKey)
	}
	// Only the compressed form exists in our text encoding; ParsePubKey checks
	// the 0x02/0x03 prefix, x < p and that x is on the curve. The compressed
	// form cannot express the point at infinity.
	pk, err := secp256k1.ParsePubKey(raw[:])
	if err != nil {
		return nil, fmt.Errorf("%w: secp256k1 point: %v", ErrPublicKey, err)
	}
	return &Public{curve: Secp256k1, text: s, k1: k1Public{key: pk}}, nil
}

func parseK1Private(s string) (*Private, error) {
	var d [32]byte
	defer clear(d[:])
	if !decodeScalarText(s, &d) {
		return nil, fmt.Errorf("%w: secp256k1 scalar is not canonical base64url of 32 bytes", ErrPrivateKey)
	}
	return k1FromScalar(&d)
}

// k1FromScalar makes a key from a 32-byte big-endian scalar in [1, n-1].
func k1FromScalar(d *[32]byte) (*Private, error) {
	var sc secp256k1.ModNScalar
	if overflow := sc.SetBytes(d); overflow != 0 || sc.IsZero() {
		return nil, fmt.Errorf("%w: secp256k1 scalar out of range", ErrPrivateKey)
	}
	return newK1Private(secp256k1.NewPrivateKey(&sc)), nil
}

// k1Scalars reads r and s from a 64-byte r‖s signature and applies the range
// rules: both in [1, n-1], and s ≤ n/2 when strict.
func k1Scalars(sig []byte, strict bool) (r, s secp256k1.ModNScalar, ok bool) {
	if r.SetByteSlice(sig[:32]) || r.IsZero() {
		return r, s, false
	}
	if s.SetByteSlice(sig[32:64]) || s.IsZero() {
		return r, s, false
	}
	if strict && s.IsOverHalfOrder() {
		return r, s, false
	}
	return r, s, true
}

func (p *k1Public) verify(h *[32]byte, sig []byte, strict bool) bool {
	r, s, ok := k1Scalars(sig, strict)
	if !ok {
		return false
	}
	return ecdsa.NewSignature(&r, &s).Verify(h[:], p.key)
}

// sign uses decred's RFC 6979 deterministic signing, which always produces
// low-S signatures (BIP 62).
func (k *k1Private) sign(h *[32]byte) []byte {
	sig := ecdsa.Sign(k.key, h[:])
	out := make([]byte, SignatureSize)
	r, s := sig.R(), sig.S()
	r.PutBytesUnchecked(out[:32])
	s.PutBytesUnchecked(out[32:])
	return out
}

// ecdh returns the x coordinate of k·P. decred computes it with a
// variable-time scalar multiplication (ScalarMultNonConst); see the package
// documentation.
func (k *k1Private) ecdh(p *k1Public) []byte {
	return secp256k1.GenerateSharedSecret(k.key, p.key)
}
