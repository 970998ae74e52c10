package sea

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/keys"
)

const (
	pPub  = "0HyLVvGMpIV2MomZJePJPiqh6Cs9HK1f70ZTq3EifeM.zDkbiw5obwLGuE_Rkt_uUN9CsmfX9L5sz5dzoWbaCX8"
	pPriv = "X-_g1E2qMEWvgZIbgDv2MYQOqtcPFRsJDg_KcwFHOpA"
)

var curves = []keys.Curve{keys.Secp256k1, keys.P256}

func gen(t testing.TB, c keys.Curve) *keys.Private {
	t.Helper()
	k, err := keys.Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSignInput checks gun's S.parse rule against outputs of gun.js
// 0.2020.1241 (m as SEA.sign wrote it, observed in node).
func TestSignInput(t *testing.T) {
	priv := gen(t, keys.P256)
	cases := []struct{ in, m string }{
		{`"hello"`, `"hello"`},
		{` 123 `, `123`},
		{`SEA{bad`, `"{bad"`},
		{`{"b":1,"2":2}`, `{"2":2,"b":1}`},
		{`{"b":1,"10":2,"9":3,"01":4}`, `{"9":3,"10":2,"b":1,"01":4}`},
		{`hello`, `"hello"`},
		{`-0`, `0`},
		{`[1,{"z":1,"0":2}]`, `[1,{"0":2,"z":1}]`},
		{``, `""`},
		{`null`, `null`},
	}
	for _, c := range cases {
		env, err := Sign(c.in, priv)
		if err != nil {
			t.Fatalf("Sign(%q): %v", c.in, err)
		}
		want := `SEA{"m":` + c.m + `,"s":"`
		if !strings.HasPrefix(env, want) {
			t.Errorf("Sign(%q) = %s, want prefix %s", c.in, env, want)
		}
		if _, err := Verify(env, priv.Public()); err != nil {
			t.Errorf("Sign(%q) does not verify: %v", c.in, err)
		}
	}
	// JSON that gun.js would parse leniently is refused, not mis-signed.
	for _, in := range []string{`1e400`, `{"a":1,"a":2}`, `"\ud800"`, strings.Repeat("[", 100) + strings.Repeat("]", 100), "\xff"} {
		if _, err := Sign(in, priv); err == nil {
			t.Errorf("Sign(%q) succeeded", in)
		}
	}
	// Values are written in JavaScript order without modifying the input.
	obj := &jsjson.Object{Keys: []string{"b", "1"}, Values: []any{1.0, 2.0}}
	env, err := Sign(obj, priv)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(env, `SEA{"m":{"1":2,"b":1},`) || obj.Keys[0] != "b" {
		t.Fatalf("Sign(object) = %s, keys now %v", env, obj.Keys)
	}
	if _, err := Sign(map[string]any{"x": make(chan int)}, priv); err == nil {
		t.Fatal("unsupported type accepted")
	}
	dup := &jsjson.Object{Keys: []string{"a", "a"}, Values: []any{1.0, 2.0}}
	if _, err := Sign(dup, priv); err == nil {
		t.Fatal("object with duplicate names accepted")
	}
}

func TestVerifyReturnsDecodedString(t *testing.T) {
	priv := gen(t, keys.P256)
	// A string m that holds JSON comes back decoded, as in gun.js.
	e, err := signValue(`{"x":1}`, priv)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Verify(e.String(), priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	if !jsjson.Equal(m, &jsjson.Object{Keys: []string{"x"}, Values: []any{1.0}}) {
		t.Fatalf("m = %#v", m)
	}
	if e.Value() != `{"x":1}` || e.Text() != `{"x":1}` {
		t.Fatal("envelope keeps the raw string")
	}
}

func twinHighS(c keys.Curve, sig []byte) []byte {
	var n *big.Int
	if c == keys.Secp256k1 {
		n = secp256k1.S256().N
	} else {
		n, _ = new(big.Int).SetString("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", 16)
	}
	out := append([]byte(nil), sig...)
	new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:])).FillBytes(out[32:])
	return out
}

func TestEnvelopePerCurve(t *testing.T) {
	for _, c := range curves {
		t.Run(c.String(), func(t *testing.T) {
			priv := gen(t, c)
			pub := priv.Public()
			env, err := Sign(map[string]any{"tick": 1, "w": "x"}, priv)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(env, `SEA{"m":{"tick":1,"w":"x"},"s":"`) {
				t.Fatal(env)
			}
			e, err := ParseEnvelope(env)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Verify(pub); err != nil {
				t.Fatal(err)
			}
			// The digest is SHA-256(SHA-256(text)): keys verifies it over the
			// single hash.
			h := sha256.Sum256([]byte(e.Text()))
			if !pub.Verify(h[:], e.Signature()) {
				t.Fatal("not a signature over SHA-256(text)")
			}
			if err := e.Verify(gen(t, c).Public()); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("other key: %v", err)
			}
			// The high-S twin: accepted on P-256 (gun.js interop), refused
			// on secp256k1.
			twin := twinHighS(c, e.Signature())
			tenv := `SEA{"m":{"tick":1,"w":"x"},"s":"` + base64.StdEncoding.EncodeToString(twin) + `"}`
			_, err = Verify(tenv, pub)
			if c == keys.P256 && err != nil {
				t.Fatalf("P-256 high-S twin refused: %v", err)
			}
			if c == keys.Secp256k1 && !errors.Is(err, ErrBadSignature) {
				t.Fatalf("secp256k1 high-S twin: %v", err)
			}
			// The verifier's curve comes from the key: a k1 key cannot
			// verify a P-256 envelope and vice versa.
			for _, o := range curves {
				if o != c {
					if _, err := Verify(env, gen(t, o).Public()); !errors.Is(err, ErrBadSignature) {
						t.Fatalf("cross-curve: %v", err)
					}
				}
			}
		})
	}
}

func TestParseEnvelopeRejects(t *testing.T) {
	priv := gen(t, keys.P256)
	env, _ := Sign("hello", priv)
	sig := env[strings.Index(env, `"s":"`)+5 : len(env)-2]
	// Flip the last significant bits of the final base64 character before
	// the padding: decodes leniently, not canonically.
	i := strings.IndexByte(sig, '=') - 1
	nonCanon := sig[:i] + string(sig[i]+1) + sig[i+1:]
	cases := map[string]string{
		"not json":         `SEA{"m":"hello"`,
		"array":            `SEA["m","s"]`,
		"string":           `"SEA"`,
		"no s":             `SEA{"m":"hello"}`,
		"no m":             `SEA{"s":"` + sig + `"}`,
		"extra member":     `SEA{"m":"hello","s":"` + sig + `","x":1}`,
		"duplicate m":      `SEA{"m":"hello","m":"hello","s":"` + sig + `"}`,
		"s number":         `SEA{"m":"hello","s":1}`,
		"s short":          `SEA{"m":"hello","s":"` + sig[:84] + `"}`,
		"s unpadded":       `SEA{"m":"hello","s":"` + strings.TrimRight(sig, "=") + `"}`,
		"s url alphabet":   `SEA{"m":"hello","s":"` + strings.NewReplacer("+", "-", "/", "_").Replace(sig) + `"}`,
		"s non-canonical":  `SEA{"m":"hello","s":"` + nonCanon + `"}`,
		"s with newline":   `SEA{"m":"hello","s":"` + sig[:40] + `\n` + sig[41:] + `"}`,
		"s 65 bytes":       `SEA{"m":"hello","s":"` + base64.StdEncoding.EncodeToString(make([]byte, 65)) + `"}`,
		"invalid utf8":     "SEA{\"m\":\"\xff\",\"s\":\"" + sig + "\"}",
		"lone surrogate":   `SEA{"m":"\ud800","s":"` + sig + `"}`,
		"too large":        `SEA{"m":"` + strings.Repeat("a", MaxEnvelopeSize) + `","s":"` + sig + `"}`,
		"deep":             `SEA{"m":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `,"s":"` + sig + `"}`,
		"prefix no brace":  `SEA "m"`,
		"trailing garbage": env + "x",
	}
	if strings.ContainsAny(sig, "+/") == false {
		delete(cases, "s url alphabet")
	}
	for name, s := range cases {
		if _, err := ParseEnvelope(s); !errors.Is(err, ErrEnvelope) {
			t.Errorf("%s: %v", name, err)
		}
		if _, err := Verify(s, priv.Public()); err == nil {
			t.Errorf("%s: Verify succeeded", name)
		}
	}
}

func TestEncryptRoundTrip(t *testing.T) {
	for _, data := range []any{"secret msg", "123", map[string]any{"x": 1.0}, []any{1.0, "a"}, "SEA{\"m\":1}", "ünïcødé ☃"} {
		env, err := Encrypt(data, "pass")
		if err != nil {
			t.Fatal(err)
		}
		obj, err := parseObject(env)
		if err != nil || obj.Len() != 3 || !strings.HasPrefix(env, `SEA{"ct":"`) {
			t.Fatalf("envelope %s", env)
		}
		if iv, _ := obj.Get("iv"); len(iv.(string)) != 20 {
			t.Fatalf("iv %v", iv)
		}
		if s, _ := obj.Get("s"); len(s.(string)) != 12 {
			t.Fatalf("salt %v", s)
		}
		got, err := Decrypt(env, "pass")
		if err != nil {
			t.Fatal(err)
		}
		// gun.js decodes JSON plaintext on the way out.
		want := data
		switch d := data.(type) {
		case string:
			want, _ = seaParse(d)
		case map[string]any:
			want = &jsjson.Object{Keys: []string{"x"}, Values: []any{1.0}}
		}
		if !jsjson.Equal(got, want) {
			t.Fatalf("Decrypt(Encrypt(%v)) = %#v", data, got)
		}
		if _, err := Decrypt(env, "Pass"); !errors.Is(err, ErrDecrypt) {
			t.Fatal("wrong passphrase decrypted")
		}
	}
	if _, err := Encrypt("x", ""); err == nil {
		t.Fatal("empty passphrase accepted")
	}
}

func TestDecryptRejects(t *testing.T) {
	env, _ := Encrypt("x", "pass")
	obj, _ := parseObject(env)
	ct, _ := obj.Get("ct")
	iv, _ := obj.Get("iv")
	s, _ := obj.Get("s")
	mk := func(ct, iv, s string) string {
		return `SEA{"ct":"` + ct + `","iv":"` + iv + `","s":"` + s + `"}`
	}
	b64 := base64.StdEncoding.EncodeToString
	malformed := map[string]string{
		"iv 12 bytes":  mk(ct.(string), b64(make([]byte, 12)), s.(string)),
		"salt 8 bytes": mk(ct.(string), iv.(string), b64(make([]byte, 8))),
		"ct short":     mk(b64(make([]byte, 15)), iv.(string), s.(string)),
		"ct not b64":   mk("!!!!", iv.(string), s.(string)),
		"extra":        `SEA{"ct":"` + ct.(string) + `","iv":"` + iv.(string) + `","s":"` + s.(string) + `","x":1}`,
		"missing s":    `SEA{"ct":"` + ct.(string) + `","iv":"` + iv.(string) + `"}`,
		"not json":     `SEA{`,
	}
	for name, e := range malformed {
		if _, err := Decrypt(e, "pass"); !errors.Is(err, ErrEnvelope) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestWorkOptions(t *testing.T) {
	b64, err := Work("password", "salt", WorkOptions{Iterations: 1000, Bits: 256})
	if err != nil {
		t.Fatal(err)
	}
	hx, err := Work("password", "salt", WorkOptions{Iterations: 1000, Bits: 256, Encode: "hex"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(b64)
	if len(raw) != 32 || len(hx) != 64 {
		t.Fatal("lengths")
	}
	// A value is JSON.stringify'd first.
	a, _ := Work(map[string]any{"a": 1}, "salt", WorkOptions{Iterations: 10})
	b, _ := Work(`{"a":1}`, "salt", WorkOptions{Iterations: 10})
	if a != b {
		t.Fatal("value and its JSON text differ")
	}
	sha, _ := Work("hello", "", WorkOptions{Name: "sha-512"})
	if r, _ := base64.StdEncoding.DecodeString(sha); len(r) != 64 {
		t.Fatal("sha-512 length")
	}
	bad := []WorkOptions{
		{Iterations: MaxWorkIterations + 1}, {Iterations: -1}, {Bits: 7}, {Bits: 100000},
		{Name: "argon2"}, {Name: "sha-1"}, {Encode: "utf8"},
	}
	for _, o := range bad {
		if _, err := Work("p", "s", o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	if _, err := Work("p", "", WorkOptions{}); err == nil {
		t.Error("empty salt accepted for PBKDF2")
	}
}

func TestSecretK1(t *testing.T) {
	a, b := gen(t, keys.Secp256k1), gen(t, keys.Secp256k1)
	ab, err := Secret(b.Public().String(), a)
	if err != nil {
		t.Fatal(err)
	}
	ba, _ := Secret(a.Public().String(), b)
	if ab != ba || len(ab) != 43 {
		t.Fatalf("k1 secret %s %s", ab, ba)
	}
	if _, err := Secret(b.Public().String(), gen(t, keys.P256)); !errors.Is(err, keys.ErrCurveMismatch) {
		t.Fatalf("cross-curve: %v", err)
	}
	if _, err := Secret("garbage", a); !errors.Is(err, keys.ErrPublicKey) {
		t.Fatalf("bad pub: %v", err)
	}
	// Encrypt for a recipient through the secret, as gun.js apps do.
	env, _ := Encrypt("hi", ab)
	if got, err := Decrypt(env, ba); err != nil || got != "hi" {
		t.Fatalf("decrypt with shared secret: %v %v", got, err)
	}
}

func TestCertify(t *testing.T) {
	for _, c := range curves {
		t.Run(c.String(), func(t *testing.T) {
			auth := gen(t, c)
			alice, bob := gen(t, keys.P256).Public(), gen(t, keys.Secp256k1).Public()
			exp := time.UnixMilli(1795670400810)
			type tc struct {
				certificants, policy any
				opt                  CertifyOptions
				m                    string
			}
			cases := []tc{
				{"*", []any{map[string]any{"*": "hb"}}, CertifyOptions{}, `{"c":"*","w":[{"*":"hb"}]}`},
				{alice, map[string]any{"*": "inbox", "+": "*"}, CertifyOptions{Expiry: exp},
					`{"c":"` + alice.String() + `","e":1795670400810,"w":{"*":"inbox","+":"*"}}`},
				{[]*keys.Public{alice, bob}, "hb", CertifyOptions{WriteBlock: "~x/blocked"},
					`{"c":["` + alice.String() + `","` + bob.String() + `"],"w":"hb","wb":"~x/blocked"}`},
				{[]string{alice.String()}, map[string]any{"read": "r", "write": "w"}, CertifyOptions{},
					`{"c":"` + alice.String() + `","r":"r","w":"w"}`},
				{[]any{alice.String(), "*"}, []string{"a", "b"}, CertifyOptions{},
					`{"c":"*","w":["a","b"]}`},
				{&keys.Pair{Pub: bob}, map[string]any{"read": "r", "#": "x"}, CertifyOptions{},
					`{"c":"` + bob.String() + `","r":"r","w":{"#":"x","read":"r"}}`},
			}
			for i, x := range cases {
				s, err := Certify(x.certificants, x.policy, auth, x.opt)
				if err != nil {
					t.Fatalf("%d: %v", i, err)
				}
				cert, err := ParseCertificate(s)
				if err != nil {
					t.Fatalf("%d: %v", i, err)
				}
				if cert.Envelope().Text() != x.m {
					t.Fatalf("%d: m = %s, want %s", i, cert.Envelope().Text(), x.m)
				}
				if err := cert.Verify(auth.Public()); err != nil {
					t.Fatalf("%d: %v", i, err)
				}
				if !cert.Allows(alice.String()) && !cert.Allows(bob.String()) {
					t.Fatalf("%d: allows nobody", i)
				}
				if cert.Allows(gen(t, c).Public().String()) != cert.AnyCertificant {
					t.Fatalf("%d: Allows(stranger)", i)
				}
				// DecodeCertificate from the decoded object gives the same.
				v, _ := jsjson.Parse([]byte(s[3:]), jsjson.Limits{})
				cert2, err := DecodeCertificate(v)
				if err != nil || cert2.Verify(auth.Public()) != nil || cert2.String() != s {
					t.Fatalf("%d: DecodeCertificate: %v", i, err)
				}
			}
			for _, bad := range []struct{ c, p any }{{"", "hb"}, {nil, "hb"}, {[]string{}, "hb"}, {"*", ""}, {"*", map[string]any{"x": 1}}, {"*", nil}} {
				if _, err := Certify(bad.c, bad.p, auth, CertifyOptions{}); err == nil {
					t.Errorf("Certify(%v, %v) succeeded", bad.c, bad.p)
				}
			}
			if _, err := Certify("*", "hb", auth, CertifyOptions{ReadBlock: 5.0}); err == nil {
				t.Error("bad block accepted")
			}
		})
	}
}

func TestParseCertificateRejects(t *testing.T) {
	auth := gen(t, keys.P256)
	for name, m := range map[string]any{
		"string m":     "hello",
		"no c":         map[string]any{"w": "x"},
		"no policy":    map[string]any{"c": "*"},
		"c number":     map[string]any{"c": 1, "w": "x"},
		"c empty list": map[string]any{"c": []any{}, "w": "x"},
		"c list num":   map[string]any{"c": []any{1}, "w": "x"},
		"e string":     map[string]any{"c": "*", "w": "x", "e": "1"},
		"w number":     map[string]any{"c": "*", "w": 1},
		"unknown":      map[string]any{"c": "*", "w": "x", "z": 1},
		"wb number":    map[string]any{"c": "*", "w": "x", "wb": 1},
	} {
		e, err := signValue(jsOrder(m, 0), auth)
		if err != nil {
			// map values must be checked first
			if err := checkValue(m, 0); err != nil {
				t.Fatal(err)
			}
			t.Fatal(err)
		}
		if _, err := ParseCertificate(e.String()); !errors.Is(err, ErrCertificate) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestJSOrder(t *testing.T) {
	cases := map[string]string{
		`{"b":1,"a":2}`:                         `{"b":1,"a":2}`,
		`{"b":1,"2":2,"1":3}`:                   `{"1":3,"2":2,"b":1}`,
		`{"4294967294":1,"4294967295":2,"0":3}`: `{"0":3,"4294967294":1,"4294967295":2}`,
		`{"x":{"9":1,"a":2,"-1":3,"1.5":4}}`:    `{"x":{"9":1,"a":2,"-1":3,"1.5":4}}`,
		`{"x":[{"b":1,"0":2}]}`:                 `{"x":[{"0":2,"b":1}]}`,
		`{"007":1,"7":2}`:                       `{"7":2,"007":1}`,
	}
	for in, want := range cases {
		v, err := jsjson.Parse([]byte(in), jsjson.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		before := string(jsjson.Marshal(v))
		got := string(jsjson.Marshal(jsOrder(v, 0)))
		if got != want {
			t.Errorf("jsOrder(%s) = %s, want %s", in, got, want)
		}
		if string(jsjson.Marshal(v)) != before {
			t.Errorf("jsOrder modified its input %s", in)
		}
	}
}

func TestSignValue(t *testing.T) {
	for _, c := range curves {
		priv := gen(t, c)
		m := &jsjson.Object{}
		m.Set("#", "~"+priv.Public().String())
		m.Set(".", "status")
		m.Set(":", "online")
		m.Set(">", 1795666827826.0)
		sig, err := SignValue(m, priv)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyValue(m, sig, priv.Public()); err != nil {
			t.Fatal(err)
		}
		// A string m is signed as it is.
		sig2, _ := SignValue(`{"a":1}`, priv)
		if err := VerifyValue(`{"a":1}`, sig2, priv.Public()); err != nil {
			t.Fatal(err)
		}
		if err := VerifyValue(`{"a":2}`, sig2, priv.Public()); !errors.Is(err, ErrBadSignature) {
			t.Fatal(err)
		}
		if err := VerifyValue(m, "AAAA", priv.Public()); !errors.Is(err, ErrEnvelope) {
			t.Fatal(err)
		}
	}
}
