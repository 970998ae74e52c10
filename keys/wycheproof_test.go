package keys

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Wycheproof vector files (see testdata/wycheproof/README.md).
type wpFile struct {
	Algorithm     string    `json:"algorithm"`
	Schema        string    `json:"schema"`
	NumberOfTests int       `json:"numberOfTests"`
	TestGroups    []wpGroup `json:"testGroups"`
}

type wpGroup struct {
	Type      string `json:"type"`
	PublicKey struct {
		Curve        string `json:"curve"`
		Uncompressed string `json:"uncompressed"`
	} `json:"publicKey"`
	SHA   string   `json:"sha"`
	Tests []wpTest `json:"tests"`
}

type wpTest struct {
	TcID    int      `json:"tcId"`
	Comment string   `json:"comment"`
	Flags   []string `json:"flags"`
	Msg     string   `json:"msg"`
	Sig     string   `json:"sig"`
	Result  string   `json:"result"`
}

func loadWycheproof(t *testing.T, name string) *wpFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "wycheproof", name))
	if err != nil {
		t.Fatal(err)
	}
	var f wpFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range f.TestGroups {
		if g.SHA != "SHA-256" {
			t.Fatalf("%s: unexpected hash %s", name, g.SHA)
		}
		n += len(g.Tests)
	}
	if n != f.NumberOfTests || n == 0 {
		t.Fatalf("%s: %d tests, header says %d", name, n, f.NumberOfTests)
	}
	return &f
}

// wpPublic converts the vector's uncompressed point to our text form and
// parses it, so ParsePublic is exercised as well.
func wpPublic(t *testing.T, curve, uncompressed string) *Public {
	t.Helper()
	raw, err := hex.DecodeString(uncompressed)
	if err != nil || len(raw) != 65 || raw[0] != 4 {
		t.Fatalf("bad uncompressed key %q", uncompressed)
	}
	var text string
	switch curve {
	case "secp256k1":
		pk, err := secp256k1.ParsePubKey(raw)
		if err != nil {
			t.Fatal(err)
		}
		text = k1Prefix + b64url.EncodeToString(pk.SerializeCompressed())
	case "secp256r1":
		text = b64url.EncodeToString(raw[1:33]) + "." + b64url.EncodeToString(raw[33:])
	default:
		t.Fatalf("unexpected curve %s", curve)
	}
	pub, err := ParsePublic(text)
	if err != nil {
		t.Fatalf("ParsePublic(%s): %v", text, err)
	}
	return pub
}

// derToRS parses a DER ECDSA signature strictly (minimal lengths and
// integers, non-negative, nothing trailing) into 64-byte r‖s. Integers wider
// than 32 bytes cannot be valid scalars and are refused.
func derToRS(der []byte) ([]byte, bool) {
	var r, s []byte
	var inner cryptobyte.String
	in := cryptobyte.String(der)
	if !in.ReadASN1(&inner, asn1.SEQUENCE) || !in.Empty() ||
		!inner.ReadASN1Integer(&r) || !inner.ReadASN1Integer(&s) || !inner.Empty() {
		return nil, false
	}
	if len(r) > 32 || len(s) > 32 {
		return nil, false
	}
	out := make([]byte, 64)
	copy(out[32-len(r):32], r)
	copy(out[64-len(s):], s)
	return out, true
}

func TestWycheproofSecp256k1Bitcoin(t *testing.T) {
	f := loadWycheproof(t, "ecdsa_secp256k1_sha256_bitcoin_test.json")
	var accepted, rejected int
	for _, g := range f.TestGroups {
		pub := wpPublic(t, g.PublicKey.Curve, g.PublicKey.Uncompressed)
		for _, tc := range g.Tests {
			msg, _ := hex.DecodeString(tc.Msg)
			der, _ := hex.DecodeString(tc.Sig)
			got := false
			if sig, err := ecdsa.ParseDERSignature(der); err == nil {
				var rs [64]byte
				r, s := sig.R(), sig.S()
				r.PutBytesUnchecked(rs[:32])
				s.PutBytesUnchecked(rs[32:])
				got = pub.Verify(msg, rs[:])
			}
			switch tc.Result {
			case "valid":
				if !got {
					t.Errorf("tcId %d (%s %v): valid signature rejected", tc.TcID, tc.Comment, tc.Flags)
				}
			case "invalid":
				if got {
					t.Errorf("tcId %d (%s %v): invalid signature accepted", tc.TcID, tc.Comment, tc.Flags)
				}
			default:
				t.Logf("tcId %d (%s): %s; we accept=%v", tc.TcID, tc.Comment, tc.Result, got)
			}
			if got {
				accepted++
			} else {
				rejected++
			}
		}
	}
	t.Logf("secp256k1 bitcoin: %d accepted, %d rejected", accepted, rejected)
}

func testWycheproofP256(t *testing.T, name string, decode func([]byte) ([]byte, bool)) {
	f := loadWycheproof(t, name)
	var lax, strict, highS int
	for _, g := range f.TestGroups {
		pub := wpPublic(t, g.PublicKey.Curve, g.PublicKey.Uncompressed)
		for _, tc := range g.Tests {
			msg, _ := hex.DecodeString(tc.Msg)
			raw, _ := hex.DecodeString(tc.Sig)
			sig, ok := decode(raw)
			gotLax := ok && pub.VerifyLax(msg, sig)
			gotStrict := ok && pub.Verify(msg, sig)
			isHigh := ok && bytes.Compare(sig[32:], p256HalfN[:]) > 0
			switch tc.Result {
			case "valid":
				if !gotLax {
					t.Errorf("tcId %d (%s): VerifyLax rejected a valid signature", tc.TcID, tc.Comment)
				}
				if gotStrict == isHigh {
					t.Errorf("tcId %d (%s): strict Verify = %v for a valid signature with high-S = %v", tc.TcID, tc.Comment, gotStrict, isHigh)
				}
				if isHigh {
					highS++
				}
			case "invalid":
				if gotLax || gotStrict {
					t.Errorf("tcId %d (%s %v): invalid signature accepted (lax %v, strict %v)", tc.TcID, tc.Comment, tc.Flags, gotLax, gotStrict)
				}
			default:
				t.Logf("tcId %d (%s): %s; we accept lax=%v strict=%v", tc.TcID, tc.Comment, tc.Result, gotLax, gotStrict)
			}
			if gotLax {
				lax++
			}
			if gotStrict {
				strict++
			}
		}
	}
	t.Logf("%s: VerifyLax accepted %d, Verify accepted %d; %d valid high-S signatures refused by Verify", name, lax, strict, highS)
}

func TestWycheproofP256P1363(t *testing.T) {
	testWycheproofP256(t, "ecdsa_secp256r1_sha256_p1363_test.json", func(b []byte) ([]byte, bool) {
		return b, len(b) == SignatureSize
	})
}

func TestWycheproofP256DER(t *testing.T) {
	testWycheproofP256(t, "ecdsa_secp256r1_sha256_test.json", derToRS)
}
