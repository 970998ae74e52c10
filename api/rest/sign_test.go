package rest_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/api/rest"
	"github.com/krestianstvo/luminary/keys"
)

// signedCreate returns a signed POST /api/worlds request by the admin.
func (e *env) signedCreate(body string, at time.Time) *http.Request {
	e.t.Helper()
	r := e.newRequest(req{method: "POST", path: "/api/worlds", body: []byte(body)})
	if err := rest.SignRequestAt(r, e.admin, at); err != nil {
		e.t.Fatal(err)
	}
	return r
}

// TestSignedRequestRefusals: every way a signature can be wrong is 401
// unauthenticated, and nothing is created.
func TestSignedRequestRefusals(t *testing.T) {
	e := newEnv(t)
	now := e.clk.Now()
	b64 := base64.RawURLEncoding

	type mutate func(r *http.Request)
	cases := []struct {
		name string
		at   time.Time
		mut  mutate
	}{
		{"stale date", now.Add(-61 * time.Second), nil},
		{"future date", now.Add(61 * time.Second), nil},
		{"body changed", now, func(r *http.Request) { r.Body = io.NopCloser(bytes.NewReader([]byte(`{"name":"y"}`))) }},
		// /api/keys needs no signature, but one that is present is checked.
		{"path changed", now, func(r *http.Request) { r.URL.Path = "/api/keys"; r.RequestURI = "/api/keys" }},
		{"query added", now, func(r *http.Request) { r.URL.RawQuery = "a=1" }},
		{"method changed", now, func(r *http.Request) { r.Method = "PUT" }},
		{"other key", now, func(r *http.Request) { r.Header.Set(rest.HeaderKey, newKey(t).Public().String()) }},
		{"not a key", now, func(r *http.Request) { r.Header.Set(rest.HeaderKey, "k1:AAAA") }},
		{"date changed", now, func(r *http.Request) {
			r.Header.Set(rest.HeaderDate, now.Add(time.Second).UTC().Format(time.RFC3339Nano))
		}},
		{"bad date", now, func(r *http.Request) { r.Header.Set(rest.HeaderDate, "yesterday") }},
		{"nonce changed", now, func(r *http.Request) { r.Header.Set(rest.HeaderNonce, "AAAAAAAAAAAA") }},
		{"short nonce", now, func(r *http.Request) { r.Header.Set(rest.HeaderNonce, "abc") }},
		{"padded signature", now, func(r *http.Request) { r.Header.Set(rest.HeaderSignature, r.Header.Get(rest.HeaderSignature)+"==") }},
		{"short signature", now, func(r *http.Request) { r.Header.Set(rest.HeaderSignature, b64.EncodeToString(make([]byte, 63))) }},
		{"zero signature", now, func(r *http.Request) { r.Header.Set(rest.HeaderSignature, b64.EncodeToString(make([]byte, 64))) }},
		{"high-S twin", now, func(r *http.Request) {
			sig, _ := b64.DecodeString(r.Header.Get(rest.HeaderSignature))
			r.Header.Set(rest.HeaderSignature, b64.EncodeToString(highS(sig)))
		}},
		{"missing signature", now, func(r *http.Request) { r.Header.Del(rest.HeaderSignature) }},
		{"only a key", now, func(r *http.Request) {
			for _, h := range []string{rest.HeaderDate, rest.HeaderNonce, rest.HeaderSignature} {
				r.Header.Del(h)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.signedCreate(`{"name":"x"}`, c.at)
			if c.mut != nil {
				c.mut(r)
			}
			res := e.send(r, true)
			if c.name == "method changed" {
				// PUT is not routed: the refusal comes before any signature check.
				expect(t, res, 405, "method_not_allowed")
				return
			}
			expect(t, res, 401, "unauthenticated")
		})
	}
	r := e.do(req{method: "GET", path: "/api/worlds"})
	var l struct{ Worlds []any }
	r.decode(t, &l)
	if len(l.Worlds) != 0 {
		t.Fatalf("a refused request created a world")
	}

	// A good request passes once; its replay is refused, also later within
	// the window; after the window it is stale.
	good := e.signedCreate(`{"alias":"once"}`, now)
	replay := good.Clone(good.Context())
	replay.Body = io.NopCloser(bytes.NewReader([]byte(`{"alias":"once"}`)))
	expect(t, e.send(good, false), 201, "")
	expect(t, e.send(replay, false), 401, "unauthenticated")
	if !bytes.Contains(e.send(cloneWithBody(replay, `{"alias":"once"}`), false).body, []byte("replayed")) {
		t.Fatal("replay not named as such")
	}
	e.clk.Advance(30 * time.Second)
	expect(t, e.send(cloneWithBody(replay, `{"alias":"once"}`), false), 401, "unauthenticated")
	e.clk.Advance(31 * time.Second)
	res := e.send(cloneWithBody(replay, `{"alias":"once"}`), false)
	expect(t, res, 401, "unauthenticated")
	if !bytes.Contains(res.body, []byte("stale")) {
		t.Fatalf("want stale: %s", res.body)
	}

	// Unix milliseconds are accepted as the date, as is a P-256 signer.
	r2 := e.newRequest(req{method: "POST", path: "/api/worlds", body: []byte(`{"alias":"ms"}`)})
	if err := rest.SignRequestAt(r2, e.admin, e.clk.Now()); err != nil {
		t.Fatal(err)
	}
	ms := strconv.FormatInt(e.clk.Now().UnixMilli(), 10)
	resign(t, r2, e.admin, ms, `{"alias":"ms"}`)
	expect(t, e.send(r2, false), 201, "")

	p256, err := keys.Generate(keys.P256)
	if err != nil {
		t.Fatal(err)
	}
	e2 := newEnv(t, func(c *rest.Config) { c.Admins = []*keys.Public{p256.Public()} })
	expect(t, e2.do(req{method: "POST", path: "/api/worlds", body: []byte(`{}`), signer: p256}), 201, "")
}

func cloneWithBody(r *http.Request, body string) *http.Request {
	c := r.Clone(r.Context())
	c.Body = io.NopCloser(bytes.NewReader([]byte(body)))
	return c
}

// resign replaces the date of a signed request and signs it again.
func resign(t *testing.T, r *http.Request, k *keys.Private, date, body string) {
	t.Helper()
	nonce := r.Header.Get(rest.HeaderNonce)
	sig, err := k.Sign(rest.RequestMessage(r.Method, r.URL.RequestURI(), date, nonce, []byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set(rest.HeaderDate, date)
	r.Header.Set(rest.HeaderSignature, base64.RawURLEncoding.EncodeToString(sig))
}

// highS returns the (r, n−s) twin of a secp256k1 signature.
func highS(sig []byte) []byte {
	n, _ := new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(n, s)
	out := append([]byte(nil), sig[:32]...)
	return append(out, s.FillBytes(make([]byte, 32))...)
}

// TestNonceCacheBound: when the nonce cache is full, signed requests are
// refused 429 until entries expire with the window.
func TestNonceCacheBound(t *testing.T) {
	e := newEnv(t, func(c *rest.Config) { c.MaxNonces = 2 })
	for range 2 {
		expect(t, e.do(req{method: "GET", path: "/api/status", signer: e.admin}), 200, "")
	}
	r := e.do(req{method: "GET", path: "/api/status", signer: e.admin})
	expect(t, r, 429, "rate_limited")
	e.clk.Advance(61 * time.Second)
	expect(t, e.do(req{method: "GET", path: "/api/status", signer: e.admin}), 200, "")
}

func TestSignRequestBodyKept(t *testing.T) {
	k := newKey(t)
	r, _ := http.NewRequest("POST", "http://relay.test/api/worlds?x=1", bytes.NewReader([]byte("hello")))
	if err := rest.SignRequest(r, k); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	if string(b) != "hello" || r.ContentLength != 5 {
		t.Fatalf("body after signing: %q (%d)", b, r.ContentLength)
	}
	sig, err := base64.RawURLEncoding.DecodeString(r.Header.Get(rest.HeaderSignature))
	if err != nil {
		t.Fatal(err)
	}
	msg := rest.RequestMessage("POST", "/api/worlds?x=1", r.Header.Get(rest.HeaderDate), r.Header.Get(rest.HeaderNonce), []byte("hello"))
	if !k.Public().Verify(msg, sig) {
		t.Fatal("signature does not verify over the documented bytes")
	}
	// The documented layout: "luminary/v1/http", NUL, then length-prefixed parts.
	if !bytes.HasPrefix(msg, []byte("luminary/v1/http\x00\x00\x00\x00\x04POST")) {
		t.Fatalf("message layout: %q", msg[:30])
	}
	if err := rest.SignRequest(r, nil); err == nil {
		t.Fatal("nil key accepted")
	}
}
