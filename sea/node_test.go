package sea

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/internal/nodetest"
	"github.com/krestianstvo/luminary/keys"
)

// tamperM returns env with its m changed (same signature).
func tamperM(t *testing.T, env string) string {
	t.Helper()
	obj, err := parseObject(env)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := obj.Get("m")
	switch x := m.(type) {
	case string:
		m = x + "!"
	case float64:
		m = x + 1
	case *jsjson.Object:
		c := &jsjson.Object{Keys: append([]string(nil), x.Keys...), Values: append([]any(nil), x.Values...)}
		c.Set("tampered", true)
		m = c
	case []any:
		m = append(append([]any(nil), x...), "tampered")
	default:
		m = "tampered"
	}
	obj.Set("m", m)
	return "SEA" + string(jsjson.Marshal(obj))
}

// tamperB64 flips one bit of the base64 member k of env's object.
func tamperB64(t *testing.T, env, k string) string {
	t.Helper()
	obj, err := parseObject(env)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := obj.Get(k)
	b, err := base64.StdEncoding.DecodeString(v.(string))
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x10
	obj.Set(k, base64.StdEncoding.EncodeToString(b))
	return "SEA" + string(jsjson.Marshal(obj))
}

func nodeResult(t *testing.T, out string) *jsjson.Object {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			v, err := jsjson.Parse([]byte(rest), jsjson.Limits{})
			if err != nil {
				t.Fatalf("node result: %v", err)
			}
			return v.(*jsjson.Object)
		}
	}
	t.Fatalf("no RESULT line in node output %q", out)
	return nil
}

func get(o *jsjson.Object, k string) any {
	v, _ := o.Get(k)
	return v
}

// outcome decodes the script's {"value": v} / {"undefined": true}.
func outcome(v any) (any, bool) {
	o := v.(*jsjson.Object)
	if _, undef := o.Get("undefined"); undef {
		return nil, false
	}
	return get(o, "value"), true
}

// TestGunCrossCheck runs real gun.js SEA against this package: Go-signed
// P-256 envelopes verify in SEA.verify and SEA.sign output verifies in Go;
// Go encrypts and SEA decrypts and back; work, secret and certificates
// agree; tampering with any field fails on both sides.
func TestGunCrossCheck(t *testing.T) {
	nodetest.Require(t)
	pair, err := keys.GeneratePair(keys.P256)
	if err != nil {
		t.Fatal(err)
	}
	pub := pair.Pub.String()
	stranger := gen(t, keys.P256).Public().String()

	data := []any{
		"hello",
		map[string]any{"a": 1.0, "b": "x"},
		123.0,
		`{"z":1,"2":2}`,
		"héllo ☃ \u2028 \"q\" <&> \x01",
		[]any{1.5, nil, true, map[string]any{"n": -0.000001}},
		&jsjson.Object{Keys: []string{"#", ".", ":", ">"}, Values: []any{"~" + pub, "status", "online", 1795666827826.0}},
	}

	// Go side: signatures, encryptions and certificates for gun.js to check.
	var verify []any
	var verifyWant []any // m expected from SEA.verify, or nil for undefined
	addVerify := func(env, p string, want any) {
		verify = append(verify, map[string]any{"env": env, "pub": p})
		verifyWant = append(verifyWant, want)
	}
	for _, d := range data {
		env, err := Sign(d, pair.Priv)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Verify(env, pair.Pub)
		if err != nil {
			t.Fatal(err)
		}
		addVerify(env, pub, m)
		addVerify(tamperM(t, env), pub, nil)
		addVerify(tamperB64(t, env, "s"), pub, nil)
		addVerify(env, stranger, nil)
	}

	secretPass, err := Secret(gen(t, keys.P256).Public().String(), pair.EPriv)
	if err != nil {
		t.Fatal(err)
	}
	passes := []string{"passphrase123", pair.EPriv.Encode(), secretPass, "ünï ☃"}
	var decrypt []any
	var decryptWant []any
	for i, d := range data {
		pass := passes[i%len(passes)]
		env, err := Encrypt(d, pass)
		if err != nil {
			t.Fatal(err)
		}
		want, err := Decrypt(env, pass)
		if err != nil {
			t.Fatal(err)
		}
		decrypt = append(decrypt, map[string]any{"env": env, "pass": pass})
		decryptWant = append(decryptWant, want)
		for _, k := range []string{"ct", "iv", "s"} {
			decrypt = append(decrypt, map[string]any{"env": tamperB64(t, env, k), "pass": pass})
			decryptWant = append(decryptWant, nil)
		}
		decrypt = append(decrypt, map[string]any{"env": env, "pass": pass + "x"})
		decryptWant = append(decryptWant, nil)
	}

	var encrypt []any
	for i, d := range data {
		encrypt = append(encrypt, map[string]any{"data": d, "pass": passes[i%len(passes)]})
	}

	work := []any{
		map[string]any{"data": "password", "salt": "salt"},
		map[string]any{"data": "correct horse battery", "salt": "xfbGD7IO3aNWIcdHmzMBHres86Vy0dCE8nooemU9Va8XqbXO6t02xqxEDkjGfGld"},
		map[string]any{"data": "ünï ☃", "salt": "sälz"},
		map[string]any{"data": "hello", "salt": nil, "opt": map[string]any{"name": "SHA-256"}},
		map[string]any{"data": map[string]any{"a": 1.0}, "salt": "s", "opt": map[string]any{"iterations": 1000.0, "length": 256.0}},
	}

	exp := time.UnixMilli(1795670400810)
	certs := []struct {
		c, p any
		opt  CertifyOptions
	}{
		{"*", []any{map[string]any{"*": "hb"}}, CertifyOptions{}},
		{stranger, map[string]any{"*": "inbox", "+": "*"}, CertifyOptions{Expiry: exp}},
		{[]string{stranger, pub}, "hb", CertifyOptions{}},
	}
	var certVerify []any
	var certWant []bool
	for _, c := range certs {
		s, err := Certify(c.c, c.p, pair.Priv, c.opt)
		if err != nil {
			t.Fatal(err)
		}
		certVerify = append(certVerify, map[string]any{"cert": s, "pub": pub}, map[string]any{"cert": tamperM(t, s), "pub": pub}, map[string]any{"cert": s, "pub": stranger})
		certWant = append(certWant, true, false, false)
	}

	certify := []any{
		map[string]any{"certificants": "*", "policy": []any{map[string]any{"*": "hb"}}},
		map[string]any{"certificants": stranger, "policy": map[string]any{"*": "inbox", "+": "*"}, "expiry": 1795670400810.0},
		map[string]any{"certificants": []any{stranger, pub}, "policy": map[string]any{"read": "r", "write": "w"}},
	}

	req := map[string]any{
		"pair":       map[string]any{"pub": pub, "priv": pair.Priv.Encode(), "epub": pair.EPub.String(), "epriv": pair.EPriv.Encode()},
		"verify":     verify,
		"sign":       data,
		"decrypt":    decrypt,
		"encrypt":    encrypt,
		"work":       work,
		"certVerify": certVerify,
		"certify":    certify,
	}
	reqPath := filepath.Join(t.TempDir(), "request.json")
	if err := os.WriteFile(reqPath, jsjson.Marshal(req), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := nodetest.Run(t, 120*time.Second, filepath.Join("testdata", "node", "crosscheck.mjs"), reqPath)
	if err != nil {
		t.Fatal(err)
	}
	res := nodeResult(t, out)
	for k, n := range map[string]int{"verify": len(verify), "sign": len(data), "decrypt": len(decrypt),
		"encrypt": len(encrypt), "work": len(work), "certVerify": len(certVerify), "certify": len(certify)} {
		if got := len(get(res, k).([]any)); got != n {
			t.Fatalf("gun.js answered %d %s items, want %d", got, k, n)
		}
	}

	// 1. gun.js verified Go's envelopes, and refused every tampered one.
	for i, r := range get(res, "verify").([]any) {
		got, ok := outcome(r)
		want := verifyWant[i]
		if want == nil {
			if ok {
				t.Errorf("verify %d: gun.js accepted a tampered envelope %v", i, verify[i])
			}
			continue
		}
		if !ok || !jsjson.Equal(got, want) {
			t.Errorf("verify %d: gun.js returned %#v (ok=%v), want %#v", i, got, ok, want)
		}
	}

	// 2. Go verifies gun.js's envelopes (many are high-S), refuses tampering.
	highS := 0
	for i, e := range get(res, "sign").([]any) {
		env := e.(string)
		wantM, _ := Verify(mustSign(t, data[i], pair.Priv), pair.Pub)
		m, err := Verify(env, pair.Pub)
		if err != nil {
			t.Errorf("sign %d: Go refused gun.js envelope %s: %v", i, env, err)
			continue
		}
		if !jsjson.Equal(m, wantM) {
			t.Errorf("sign %d: m %#v, want %#v", i, m, wantM)
		}
		pe, _ := ParseEnvelope(env)
		if !pair.Pub.Verify(digest(pe), pe.Signature()) {
			highS++
		}
		for _, bad := range []string{tamperM(t, env), tamperB64(t, env, "s")} {
			if _, err := Verify(bad, pair.Pub); !errors.Is(err, ErrBadSignature) {
				t.Errorf("sign %d: tampered gun.js envelope: %v", i, err)
			}
		}
		if _, err := Verify(env, mustPub(t, stranger)); !errors.Is(err, ErrBadSignature) {
			t.Errorf("sign %d: verified under a stranger's key", i)
		}
	}
	t.Logf("%d of %d gun.js signatures were high-S (accepted via VerifyLax)", highS, len(data))

	// 3. gun.js decrypted Go's envelopes, refused tampered ones.
	for i, r := range get(res, "decrypt").([]any) {
		got, ok := outcome(r)
		want := decryptWant[i]
		if want == nil {
			if ok {
				t.Errorf("decrypt %d: gun.js decrypted a tampered envelope", i)
			}
			continue
		}
		if !ok || !jsjson.Equal(got, want) {
			t.Errorf("decrypt %d: gun.js returned %#v, want %#v", i, got, want)
		}
	}

	// 4. Go decrypts gun.js's envelopes, refuses tampered ones.
	for i, e := range get(res, "encrypt").([]any) {
		env := e.(string)
		pass := passes[i%len(passes)]
		got, err := Decrypt(env, pass)
		if err != nil {
			t.Errorf("encrypt %d: Go could not decrypt gun.js envelope: %v", i, err)
			continue
		}
		mine, _ := Encrypt(data[i], pass)
		want, _ := Decrypt(mine, pass)
		if !jsjson.Equal(got, want) {
			t.Errorf("encrypt %d: %#v, want %#v", i, got, want)
		}
		for _, k := range []string{"ct", "iv", "s"} {
			if _, err := Decrypt(tamperB64(t, env, k), pass); !errors.Is(err, ErrDecrypt) {
				t.Errorf("encrypt %d: tampered %s: %v", i, k, err)
			}
		}
	}

	// 5. Work.
	for i, w := range get(res, "work").([]any) {
		r := work[i].(map[string]any)
		opt := WorkOptions{}
		if o, ok := r["opt"].(map[string]any); ok {
			opt.Name, _ = o["name"].(string)
			if it, ok := o["iterations"].(float64); ok {
				opt.Iterations = int(it)
			}
			if l, ok := o["length"].(float64); ok {
				opt.Bits = int(l)
			}
		}
		salt, _ := r["salt"].(string)
		got, err := Work(r["data"], salt, opt)
		if err != nil || got != w.(string) {
			t.Errorf("work %d: Go %q (%v), gun.js %q", i, got, err, w)
		}
	}

	// 6. Secret, both directions.
	np := get(res, "nodePair").(*jsjson.Object)
	nodeEPriv := mustPriv(t, get(np, "epriv").(string))
	goSide, err := Secret(get(np, "epub").(string), pair.EPriv)
	if err != nil {
		t.Fatal(err)
	}
	otherSide, _ := Secret(pair.EPub.String(), nodeEPriv)
	if goSide != get(res, "secretNodeSide").(string) || otherSide != goSide {
		t.Errorf("secret: Go %s / %s, gun.js %s", goSide, otherSide, get(res, "secretNodeSide"))
	}

	// 7. Certificates, both directions.
	for i, r := range get(res, "certVerify").([]any) {
		_, ok := outcome(r)
		if ok != certWant[i] {
			t.Errorf("certVerify %d: gun.js verified=%v, want %v", i, ok, certWant[i])
		}
	}
	for i, c := range get(res, "certify").([]any) {
		s := c.(string)
		cert, err := ParseCertificate(s)
		if err != nil {
			t.Errorf("certify %d: %v (%s)", i, err, s)
			continue
		}
		if err := cert.Verify(pair.Pub); err != nil {
			t.Errorf("certify %d: %v", i, err)
		}
		if bad, err := ParseCertificate(tamperM(t, s)); err == nil && bad.Verify(pair.Pub) == nil {
			t.Errorf("certify %d: tampered gun.js certificate verified", i)
		}
		r := certify[i].(map[string]any)
		var opt CertifyOptions
		if e, ok := r["expiry"].(float64); ok {
			opt.Expiry = time.UnixMilli(int64(e))
		}
		mine, err := Certify(r["certificants"], r["policy"], pair.Priv, opt)
		if err != nil {
			t.Fatal(err)
		}
		mc, _ := ParseCertificate(mine)
		if mc.Envelope().Text() != cert.Envelope().Text() {
			t.Errorf("certify %d: Go signs %s, gun.js signed %s", i, mc.Envelope().Text(), cert.Envelope().Text())
		}
		if !cert.Allows(stranger) {
			t.Errorf("certify %d: certificant not allowed", i)
		}
	}
}

func mustSign(t testing.TB, d any, k *keys.Private) string {
	s, err := Sign(d, k)
	if err != nil {
		panic(err)
	}
	return s
}

func digest(e *Envelope) []byte { return e.digest[:] }
