package keys

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

var update = flag.Bool("update", false, "rewrite testdata/kat.json from the current implementation")

var curves = []Curve{Secp256k1, P256}

// SEA pair P from gun.md §4.8 (produced by gun.js SEA 0.2020.1241).
const (
	seaPub   = "0HyLVvGMpIV2MomZJePJPiqh6Cs9HK1f70ZTq3EifeM.zDkbiw5obwLGuE_Rkt_uUN9CsmfX9L5sz5dzoWbaCX8"
	seaPriv  = "X-_g1E2qMEWvgZIbgDv2MYQOqtcPFRsJDg_KcwFHOpA"
	seaEPub  = "8wVhnY4XQs6ZenQbf--TuOJEY9JDO4y-iN05a1UKgVw.xLrP0fbHn-128o8A9ax8Qe008PiEd-hVNWdVX5Horxg"
	seaEPriv = "j9jKEzR1tvGjjH9fcr696RbnGKdXzWDnj5ZhTDD06gg"
)

func mustGenerate(t testing.TB, c Curve) *Private {
	t.Helper()
	k, err := Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoundTrip(t *testing.T) {
	for _, c := range curves {
		t.Run(c.String(), func(t *testing.T) {
			k := mustGenerate(t, c)
			pubText := k.Public().String()
			switch c {
			case Secp256k1:
				if len(pubText) != 47 || !strings.HasPrefix(pubText, "k1:") {
					t.Fatalf("k1 public text %q", pubText)
				}
			case P256:
				if len(pubText) != 87 || pubText[43] != '.' {
					t.Fatalf("p256 public text %q", pubText)
				}
			}
			pub, err := ParsePublic(pubText)
			if err != nil {
				t.Fatal(err)
			}
			if !pub.Equal(k.Public()) || pub.Curve() != c {
				t.Fatal("parsed public key differs")
			}
			k2, err := ParsePrivate(k.Encode())
			if err != nil {
				t.Fatal(err)
			}
			if !k2.Equal(k) || !k2.Public().Equal(k.Public()) {
				t.Fatal("parsed private key differs")
			}
			msg := []byte("hello")
			sig, err := k.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			if len(sig) != SignatureSize {
				t.Fatalf("signature length %d", len(sig))
			}
			if !pub.Verify(msg, sig) || !pub.VerifyLax(msg, sig) {
				t.Fatal("own signature does not verify")
			}
			if pub.Verify([]byte("hellp"), sig) {
				t.Fatal("signature verifies for another message")
			}
			other := mustGenerate(t, c)
			if other.Public().Verify(msg, sig) {
				t.Fatal("signature verifies under another key")
			}
			sig2, _ := k.Sign(msg)
			if !bytes.Equal(sig, sig2) {
				t.Fatal("signing is not deterministic")
			}
		})
	}
}

func curveOrder(c Curve) *big.Int {
	if c == Secp256k1 {
		return secp256k1.S256().N
	}
	n := new(big.Int)
	n.SetBytes(p256N[:])
	return n
}

// highS returns the twin (r, n-s) of sig.
func highS(c Curve, sig []byte) []byte {
	n := curveOrder(c)
	s := new(big.Int).SetBytes(sig[32:])
	out := bytes.Clone(sig)
	new(big.Int).Sub(n, s).FillBytes(out[32:])
	return out
}

func TestSignatureRules(t *testing.T) {
	for _, c := range curves {
		t.Run(c.String(), func(t *testing.T) {
			k := mustGenerate(t, c)
			pub := k.Public()
			msg := []byte("rules")
			sig, _ := k.Sign(msg)
			n := curveOrder(c)

			twin := highS(c, sig)
			if pub.Verify(msg, twin) {
				t.Error("strict Verify accepted the high-S twin")
			}
			if !pub.VerifyLax(msg, twin) {
				t.Error("VerifyLax rejected the high-S twin")
			}

			set := func(i int, v *big.Int) []byte {
				out := bytes.Clone(sig)
				v.FillBytes(out[32*i : 32*i+32])
				return out
			}
			bad := map[string][]byte{
				"empty":       nil,
				"63 bytes":    sig[:63],
				"65 bytes":    append(bytes.Clone(sig), 0),
				"r=0":         set(0, big.NewInt(0)),
				"s=0":         set(1, big.NewInt(0)),
				"r=n":         set(0, n),
				"s=n":         set(1, n),
				"r=n+r":       set(0, new(big.Int).Add(n, new(big.Int).SetBytes(sig[:32])).Mod(new(big.Int).Add(n, new(big.Int).SetBytes(sig[:32])), new(big.Int).Lsh(big.NewInt(1), 256))),
				"flipped bit": func() []byte { o := bytes.Clone(sig); o[10] ^= 1; return o }(),
			}
			for name, b := range bad {
				if pub.Verify(msg, b) || pub.VerifyLax(msg, b) {
					t.Errorf("%s: accepted", name)
				}
			}
		})
	}
}

func TestParsePublicRejects(t *testing.T) {
	k1 := mustGenerate(t, Secp256k1).Public().String()
	p := mustGenerate(t, P256).Public().String()

	// A k1 point whose x is not on the curve: x = 5 has no square root mod p
	// on secp256k1 (y² = 125 + 7 = 132 is a non-residue).
	var offCurve [33]byte
	offCurve[0] = 2
	offCurve[32] = 5
	var fx secp256k1.FieldVal
	fx.SetInt(5)
	var fy secp256k1.FieldVal
	if secp256k1.DecompressY(&fx, false, &fy) {
		t.Fatal("test assumption: x=5 should not be on secp256k1")
	}
	var wrongPrefix [33]byte
	copy(wrongPrefix[:], mustDecode(t, k1[3:]))
	wrongPrefix[0] = 4

	// A P-256 point off the curve: (1, 1).
	var one [32]byte
	one[31] = 1

	nonCanonical := func(s string) string {
		// Flip a trailing bit that base64url decoding ignores without Strict:
		// the last character of a 43-char group carries 2 unused bits.
		last := s[len(s)-1]
		i := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", last)
		alpha := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		return s[:len(s)-1] + string(alpha[i^1])
	}

	cases := map[string]string{
		"empty":                "",
		"k1 short":             k1[:46],
		"k1 long":              k1 + "A",
		"k1 wrong prefix text": "K1:" + k1[3:],
		"k1 padded":            k1[:46] + "=",
		"k1 std alphabet":      "k1:" + strings.NewReplacer("-", "+", "_", "/").Replace(k1[3:]) + strings.Repeat("", 0),
		"k1 prefix byte 04":    "k1:" + b64url.EncodeToString(wrongPrefix[:]),
		"k1 off curve":         "k1:" + b64url.EncodeToString(offCurve[:]),
		"k1 newline":           k1[:20] + "\n" + k1[21:],
		"p256 short":           p[:86],
		"p256 no dot":          p[:43] + "_" + p[44:],
		"p256 off curve":       b64url.EncodeToString(one[:]) + "." + b64url.EncodeToString(one[:]),
		"p256 zero":            b64url.EncodeToString(make([]byte, 32)) + "." + b64url.EncodeToString(make([]byte, 32)),
		"p256 non-canonical x": nonCanonical(p[:43]) + p[43:],
		"p256 non-canonical y": p[:44] + nonCanonical(p[44:]),
		"p256 uppercase text":  strings.ToUpper(p),
		"p256 with k1 prefix":  "k1:" + p,
	}
	for name, s := range cases {
		if name == "k1 std alphabet" && !strings.ContainsAny(k1[3:], "-_") {
			continue // nothing to change in this key
		}
		pub, err := ParsePublic(s)
		if err == nil {
			if pub.String() == k1 || pub.String() == p {
				continue // uppercasing etc. happened to be a no-op
			}
			t.Errorf("%s: %q parsed", name, s)
			continue
		}
		if !errors.Is(err, ErrPublicKey) {
			t.Errorf("%s: error %v does not wrap ErrPublicKey", name, err)
		}
	}
}

func mustDecode(t testing.TB, s string) []byte {
	t.Helper()
	b, err := b64url.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParsePrivateRejects(t *testing.T) {
	n := secp256k1.S256().N
	var nb [32]byte
	n.FillBytes(nb[:])
	pn := p256N
	cases := map[string]string{
		"empty":       "",
		"k1 zero":     "k1priv:" + b64url.EncodeToString(make([]byte, 32)),
		"k1 n":        "k1priv:" + b64url.EncodeToString(nb[:]),
		"p256 zero":   b64url.EncodeToString(make([]byte, 32)),
		"p256 n":      b64url.EncodeToString(pn[:]),
		"p256 short":  seaPriv[:42],
		"k1 as p256":  "k1priv:" + seaPriv[:42],
		"public text": seaPub,
	}
	for name, s := range cases {
		_, err := ParsePrivate(s)
		if !errors.Is(err, ErrPrivateKey) {
			t.Errorf("%s: err = %v", name, err)
			continue
		}
		if s != "" && len(s) > 8 && strings.Contains(err.Error(), s) {
			t.Errorf("%s: error message contains the input", name)
		}
	}
}

func TestSEAPairP(t *testing.T) {
	priv, err := ParsePrivate(seaPriv)
	if err != nil {
		t.Fatal(err)
	}
	if got := priv.Public().String(); got != seaPub {
		t.Fatalf("pub from priv = %s, want %s", got, seaPub)
	}
	if got := priv.Encode(); got != seaPriv {
		t.Fatalf("Encode = %s", got)
	}
	js := `{"pub":"` + seaPub + `","priv":"` + seaPriv + `","epub":"` + seaEPub + `","epriv":"` + seaEPriv + `"}`
	pair, err := ParseSEAPair([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if pair.EPriv.Public().String() != seaEPub {
		t.Fatal("epub mismatch")
	}
	if got := string(pair.SEAJSON()); got != js {
		t.Fatalf("SEAJSON = %s", got)
	}
	if strings.Contains(pair.String(), seaPriv) || strings.Contains(pair.String(), seaEPriv) {
		t.Fatal("Pair.String leaks a private key")
	}

	bad := []string{
		`{"pub":"` + seaEPub + `","priv":"` + seaPriv + `"}`, // mismatched halves
		`{"priv":"` + seaPriv + `"}`,                         // no pub
		`{"pub":"` + seaPub + `","pub":"` + seaPub + `"}`,    // duplicate
		`{"pub":"` + seaPub + `","extra":"x"}`,               // unknown member
		`{"pub":1}`,
		`["` + seaPub + `"]`,
		`{"pub":"` + seaPub + `","priv":"` + seaPriv + `x"}`,
	}
	for _, b := range bad {
		_, err := ParseSEAPair([]byte(b))
		if !errors.Is(err, ErrPair) {
			t.Errorf("%s: err = %v", b, err)
		}
		if err != nil && strings.Contains(err.Error(), seaPriv) {
			t.Errorf("error leaks priv: %v", err)
		}
	}

	for _, c := range curves {
		gp, err := GeneratePair(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseSEAPair(gp.SEAJSON())
		if err != nil {
			t.Fatal(err)
		}
		if !back.Priv.Equal(gp.Priv) || !back.EPriv.Equal(gp.EPriv) || back.Pub.Equal(back.EPub) {
			t.Fatal("generated pair does not round-trip")
		}
	}
}

func TestECDH(t *testing.T) {
	for _, c := range curves {
		a, b := mustGenerate(t, c), mustGenerate(t, c)
		ab, err := b.Public().ECDH(a)
		if err != nil {
			t.Fatal(err)
		}
		ba, err := a.Public().ECDH(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(ab) != SharedSecretSize || !bytes.Equal(ab, ba) {
			t.Fatalf("%v: ECDH not symmetric", c)
		}
	}
	_, err := mustGenerate(t, P256).Public().ECDH(mustGenerate(t, Secp256k1))
	if !errors.Is(err, ErrCurveMismatch) {
		t.Fatalf("cross-curve ECDH: %v", err)
	}

	// SEA vector V6 (gun.md §4.8): A.epriv × B.epub.
	aPriv, err := ParsePrivate("DZLgSHa-V6y3ouk9qhTlJgOYcdJ_ecLgyJ_Hg3OSHRk")
	if err != nil {
		t.Fatal(err)
	}
	bPub, err := ParsePublic("766rcll03reGVMVZycUg9HjxML2KNI-dKZG0OwhoKgw.hgHzMW-avP744aV9bTUkLA_Gxq1V5B-k1-a-nv4Rc1g")
	if err != nil {
		t.Fatal(err)
	}
	sec, err := bPub.ECDH(aPriv)
	if err != nil {
		t.Fatal(err)
	}
	if got := b64url.EncodeToString(sec); got != "P9JT57K34ylIfXVqBZdC7I5jehSXH-kP7_62Wn5CbW8" {
		t.Fatalf("V6 secret = %s", got)
	}
}

func TestMessage(t *testing.T) {
	got := Message("tick", []byte("ab"), nil, []byte{0})
	want := []byte("luminary/v1/tick\x00\x00\x00\x00\x02ab\x00\x00\x00\x00\x00\x00\x00\x01\x00")
	if !bytes.Equal(got, want) {
		t.Fatalf("Message = %q", got)
	}
	// Moving a byte between parts changes the encoding.
	if bytes.Equal(Message("x", []byte("ab"), []byte("c")), Message("x", []byte("a"), []byte("bc"))) {
		t.Fatal("parts are ambiguous")
	}
	if bytes.Equal(Message("ab"), Message("a", []byte("b"))) {
		t.Fatal("label and parts are ambiguous")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("NUL in label did not panic")
		}
	}()
	Message("a\x00b")
}

func TestPrivateNeverPrinted(t *testing.T) {
	for _, c := range curves {
		k := mustGenerate(t, c)
		secret := k.Encode()
		scalar := secret[strings.LastIndexByte(secret, ':')+1:]
		var logBuf bytes.Buffer
		slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("key", "k", k)
		outs := []string{
			fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k), logBuf.String(),
		}
		js, _ := json.Marshal(struct{ K *Private }{k})
		outs = append(outs, string(js))
		for _, o := range outs {
			if strings.Contains(o, scalar) {
				t.Fatalf("%v: private key printed: %s", c, o)
			}
		}
	}
}

func TestCache(t *testing.T) {
	c := NewCache(2)
	var texts []string
	for range 3 {
		texts = append(texts, mustGenerate(t, Secp256k1).Public().String())
	}
	p0, err := c.Parse(texts[0])
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := c.Parse(texts[0]); again != p0 {
		t.Fatal("cache miss on a cached key")
	}
	c.Parse(texts[1])
	c.Parse(texts[0]) // texts[1] is now least recently used
	c.Parse(texts[2])
	if c.Len() != 2 {
		t.Fatalf("Len = %d", c.Len())
	}
	if again, _ := c.Parse(texts[0]); again != p0 {
		t.Fatal("recently used key was evicted")
	}
	if _, err := c.Parse("nope"); !errors.Is(err, ErrPublicKey) {
		t.Fatal("bad key not reported")
	}
	if c.Len() != 2 {
		t.Fatal("failed parse was cached")
	}
}

// kat is a known-answer vector: deterministic (RFC 6979, low-S) signatures
// by fixed keys, recorded in testdata/kat.json.
type kat struct {
	Curve string `json:"curve"`
	Priv  string `json:"priv"`
	Pub   string `json:"pub"`
	Msg   string `json:"msg_hex"`
	Sig   string `json:"sig_hex"`
}

func katKey(t testing.TB, c Curve, i int) *Private {
	t.Helper()
	d := sha256.Sum256(fmt.Appendf(nil, "luminary keys kat %v %d", c, i))
	s := b64url.EncodeToString(d[:])
	if c == Secp256k1 {
		s = "k1priv:" + s
	}
	k, err := ParsePrivate(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKnownAnswers(t *testing.T) {
	path := filepath.Join("testdata", "kat.json")
	if *update {
		var out []kat
		msgs := [][]byte{nil, []byte("hello"), Message("tick", []byte("instance-1"), []byte{0, 0, 0, 1})}
		for _, c := range curves {
			for i, m := range msgs {
				k := katKey(t, c, i)
				sig, err := k.Sign(m)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, kat{c.String(), k.Encode(), k.Public().String(), hex.EncodeToString(m), hex.EncodeToString(sig)})
			}
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var vs []kat
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	for i, v := range vs {
		k, err := ParsePrivate(v.Priv)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if k.Curve().String() != v.Curve || k.Public().String() != v.Pub {
			t.Fatalf("%d: derived pub %s, want %s", i, k.Public(), v.Pub)
		}
		msg, _ := hex.DecodeString(v.Msg)
		sig, err := k.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(sig); got != v.Sig {
			t.Fatalf("%d (%s): signature %s, want %s", i, v.Curve, got, v.Sig)
		}
		pub, _ := ParsePublic(v.Pub)
		want, _ := hex.DecodeString(v.Sig)
		if !pub.Verify(msg, want) {
			t.Fatalf("%d: recorded signature does not verify", i)
		}
	}
}
