package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// p256Public holds a parsed P-256 point.
type p256Public struct {
	key *ecdsa.PublicKey
	raw [65]byte // uncompressed 0x04‖x‖y, for ECDH
}

// p256Private holds a P-256 scalar.
type p256Private struct {
	key *ecdsa.PrivateKey
}

// The P-256 group order n and ⌊n/2⌋ as 32-byte big-endian values.
var p256N, p256HalfN = func() (n, half [32]byte) {
	N := elliptic.P256().Params().N
	N.FillBytes(n[:])
	new(big.Int).Rsh(N, 1).FillBytes(half[:])
	return n, half
}()

func newP256Public(pk *ecdsa.PublicKey) (*Public, error) {
	raw, err := pk.Bytes()
	if err != nil || len(raw) != 65 {
		return nil, fmt.Errorf("%w: p256 point: %v", ErrPublicKey, err)
	}
	p := &Public{curve: P256, p256: p256Public{key: pk}}
	copy(p.p256.raw[:], raw)
	p.text = b64url.EncodeToString(raw[1:33]) + "." + b64url.EncodeToString(raw[33:])
	return p, nil
}

func generateP256() (*Private, error) {
	sk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("keys: generate p256: %w", err)
	}
	return newP256Private(sk)
}

func newP256Private(sk *ecdsa.PrivateKey) (*Private, error) {
	pub, err := newP256Public(&sk.PublicKey)
	if err != nil {
		return nil, err
	}
	return &Private{curve: P256, pub: pub, p256: p256Private{key: sk}}, nil
}

// parseP256Public parses SEA's "x.y"; the caller has checked the length and
// the dot at index 43.
func parseP256Public(s string) (*Public, error) {
	var raw [65]byte
	raw[0] = 4
	nx, errx := b64url.Decode(raw[1:33], []byte(s[:43]))
	ny, erry := b64url.Decode(raw[33:65], []byte(s[44:]))
	if errx != nil || erry != nil || nx != 32 || ny != 32 {
		return nil, fmt.Errorf("%w: p256 coordinates are not canonical base64url of 32 bytes", ErrPublicKey)
	}
	// ParseUncompressedPublicKey rejects coordinates ≥ p and points off the
	// curve; the identity has no affine encoding.
	pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw[:])
	if err != nil {
		return nil, fmt.Errorf("%w: p256 point: %v", ErrPublicKey, err)
	}
	return &Public{curve: P256, text: s, p256: p256Public{key: pk, raw: raw}}, nil
}

func parseP256Private(s string) (*Private, error) {
	var d [32]byte
	defer clear(d[:])
	if !decodeScalarText(s, &d) {
		return nil, fmt.Errorf("%w: p256 scalar is not canonical base64url of 32 bytes", ErrPrivateKey)
	}
	return p256FromScalar(&d)
}

// p256FromScalar makes a key from a 32-byte big-endian scalar in [1, n-1].
func p256FromScalar(d *[32]byte) (*Private, error) {
	sk, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		return nil, fmt.Errorf("%w: p256 scalar out of range", ErrPrivateKey)
	}
	return newP256Private(sk)
}

// scalarInRange reports whether 1 ≤ v ≤ limit for 32-byte big-endian values.
func scalarInRange(v []byte, limit *[32]byte) bool {
	var zero [32]byte
	return !bytes.Equal(v, zero[:]) && bytes.Compare(v, limit[:]) <= 0
}

func (p *p256Public) verify(h *[32]byte, sig []byte, strict bool) bool {
	r, s := sig[:32], sig[32:64]
	nMinus1 := p256N
	nMinus1[31]-- // n is odd, so no borrow
	if !scalarInRange(r, &nMinus1) || !scalarInRange(s, &nMinus1) {
		return false
	}
	if strict && bytes.Compare(s, p256HalfN[:]) > 0 {
		return false
	}
	var buf [72]byte
	return ecdsa.VerifyASN1(p.key, h[:], appendDERSignature(buf[:0], r, s))
}

// appendDERSignature encodes r and s (32-byte big-endian, nonzero) as the
// DER SEQUENCE { INTEGER r, INTEGER s } that crypto/ecdsa verifies.
func appendDERSignature(dst, r, s []byte) []byte {
	r, s = trimZeros(r), trimZeros(s)
	lr, ls := derIntLen(r), derIntLen(s)
	dst = append(dst, 0x30, byte(2+lr+2+ls))
	dst = appendDERInt(dst, r, lr)
	return appendDERInt(dst, s, ls)
}

func trimZeros(b []byte) []byte {
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

func derIntLen(b []byte) int {
	if b[0]&0x80 != 0 {
		return len(b) + 1
	}
	return len(b)
}

func appendDERInt(dst, b []byte, l int) []byte {
	dst = append(dst, 0x02, byte(l))
	if l > len(b) {
		dst = append(dst, 0)
	}
	return append(dst, b...)
}

// sign produces an RFC 6979 deterministic signature (crypto/ecdsa with a nil
// random source) and normalises it to low-S.
func (k *p256Private) sign(h *[32]byte) ([]byte, error) {
	der, err := k.key.Sign(nil, h[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("keys: sign p256: %w", err)
	}
	var rb, sb []byte
	var inner cryptobyte.String
	in := cryptobyte.String(der)
	if !in.ReadASN1(&inner, asn1.SEQUENCE) || !in.Empty() ||
		!inner.ReadASN1Integer(&rb) || !inner.ReadASN1Integer(&sb) || !inner.Empty() {
		return nil, errors.New("keys: sign p256: unexpected signature encoding")
	}
	r, s := new(big.Int).SetBytes(rb), new(big.Int).SetBytes(sb)
	var half [32]byte
	s.FillBytes(half[:])
	if bytes.Compare(half[:], p256HalfN[:]) > 0 {
		s.Sub(elliptic.P256().Params().N, s)
	}
	out := make([]byte, SignatureSize)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out, nil
}

func (k *p256Private) scalar(d *[32]byte) {
	b, err := k.key.Bytes()
	if err != nil || len(b) != 32 {
		panic("keys: p256 private key has no valid scalar")
	}
	copy(d[:], b)
	clear(b)
}

func (k *p256Private) ecdh(p *p256Public) ([]byte, error) {
	sk, err := k.key.ECDH()
	if err != nil {
		return nil, fmt.Errorf("keys: ecdh p256: %w", err)
	}
	pk, err := ecdh.P256().NewPublicKey(p.raw[:])
	if err != nil {
		return nil, fmt.Errorf("%w: p256 point: %v", ErrPublicKey, err)
	}
	return sk.ECDH(pk)
}
