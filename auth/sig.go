package auth

import (
	"encoding/base64"
	"math/big"

	"github.com/krestianstvo/luminary/keys"
)

// Group orders, used only to explain a signature that failed to verify
// (invalid: signature encoding / non-canonical signature / signer mismatch).
// Verification itself is done by package keys.
var (
	orderK1, _   = new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)
	orderP256, _ = new(big.Int).SetString("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)
)

// explainBadSig classifies a 64-byte r‖s signature that did not verify
// strictly under pub: out-of-range scalars are an encoding error, a high-S
// twin is non-canonical, anything else is a signature by another key or over
// other bytes. Called only on the failure path.
func explainBadSig(pub *keys.Public, sig []byte) *Refusal {
	if len(sig) != keys.SignatureSize {
		return invalid(txtSigEncoding)
	}
	n := orderK1
	if pub.Curve() == keys.P256 {
		n = orderP256
	}
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	if r.Sign() == 0 || s.Sign() == 0 || r.Cmp(n) >= 0 || s.Cmp(n) >= 0 {
		return invalid(txtSigEncoding)
	}
	half := new(big.Int).Rsh(n, 1)
	if s.Cmp(half) > 0 {
		return invalid(txtSigNonCanon)
	}
	return invalid(txtSignerMismatch)
}

// decodeSig64 decodes a strict unpadded base64url 64-byte signature.
func decodeSig64(s string) ([]byte, bool) {
	return decodeExact(s, keys.SignatureSize)
}

// decodeExact decodes strict unpadded base64url that must yield exactly n
// bytes. Go's decoder skips CR and LF even in strict mode, so a length check
// on the text is what makes the encoding canonical: one value, one text.
func decodeExact(s string, n int) ([]byte, bool) {
	if len(s) != base64.RawURLEncoding.EncodedLen(n) {
		return nil, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != n {
		return nil, false
	}
	return b, true
}
