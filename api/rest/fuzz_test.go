package rest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/krestianstvo/luminary/api/rest"
	"github.com/krestianstvo/luminary/keys"
)

// fuzzRoutes are the routes that parse request bodies.
// POST /api/worlds is signed by a key that is not an admin: the body is
// parsed and checked in full before that refusal, and no worlds pile up
// to slow the fuzzer down.
var fuzzRoutes = []struct {
	path, ctype string
	signed      bool
	admin       bool
}{
	{"/api/worlds", "application/json", true, false},
	{"/api/worlds/demo/certs", "application/json", true, true},
	{"/api/worlds/demo/join", "application/json", false, false},
	{"/api/verify/message", "application/json", false, false},
	{"/api/verify/history", "application/x-ndjson", false, false},
	{"/api/keys", "application/json", false, false},
}

// checkAnswer: never a 500 for client bytes; errors are JSON with a known
// code; every answer matches the spec.
func checkAnswer(t *testing.T, r *http.Request, body []byte, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code == 500 {
		t.Fatalf("500 for %q: %s", body, rec.Body.Bytes())
	}
	out := &res{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	checkCommonHeaders(t, r, out)
	if rec.Code >= 400 {
		var e struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(out.body, &e); err != nil || !slices.Contains(rest.Codes, rest.Code(e.Error.Code)) || e.Error.Message == "" {
			t.Fatalf("bad error answer %d: %s", rec.Code, out.body)
		}
	}
	validate(t, r, body, out, true)
}

func FuzzRequestBodies(f *testing.F) {
	e := newEnv(f, func(c *rest.Config) {
		c.KeyLimit = rest.Limit{Rate: -1}
		c.JoinLimit = rest.Limit{Rate: -1}
		c.VerifyLimit = rest.Limit{Rate: -1}
		c.MaxBodyBytes = 64 << 10
		c.MaxVerifyBytes = 64 << 10
	})
	e.createWorld(map[string]any{"alias": "demo", "open": true})
	k := newKey(f).Public().String()
	stranger := newKey(f)
	for i := range fuzzRoutes {
		f.Add(uint8(i), []byte(`{}`))
		f.Add(uint8(i), []byte(`{"a":`))
		f.Add(uint8(i), []byte(`[1,2,3]`))
		f.Add(uint8(i), []byte("{\"name\":\"\xff\"}"))
		f.Add(uint8(i), []byte(`{"x":{"x":{"x":{"x":{"x":{"x":{"x":{"x":{"x":{}}}}}}}}}}`))
	}
	f.Add(uint8(0), []byte(`{"alias":"a","name":"n","rate":1,"tps":20,"private":false,"open":true}`))
	f.Add(uint8(1), []byte(`{"subject":"*","roles":["message"],"expiry":1800000000000}`))
	f.Add(uint8(1), []byte(`{"cert":{"instance":"x","subject":"y","roles":["tick"],"notBefore":0,"expiry":1,"serial":"s","issuer":"i","sig":"AA"}}`))
	f.Add(uint8(2), []byte(`{"pub":"`+k+`"}`))
	f.Add(uint8(3), []byte(`{"instance":"a","author":"b","ts":1,"nonce":"n","payload":"p","sig":"AAAA"}`))
	f.Add(uint8(4), []byte(`{"history":"luminary/v1","meta":{},"from":1}`+"\n"))
	f.Add(uint8(5), []byte(`{"password":"0123456789","curve":"p256"}`))
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		rt := fuzzRoutes[int(which)%len(fuzzRoutes)]
		r := httptest.NewRequest("POST", "http://relay.test"+rt.path, bytes.NewReader(body))
		r.Header.Set("Content-Type", rt.ctype)
		if rt.signed {
			signer := stranger
			if rt.admin {
				signer = e.admin
			}
			if err := rest.SignRequestAt(r, signer, e.clk.Now()); err != nil {
				t.Fatal(err)
			}
		}
		rec := httptest.NewRecorder()
		e.router.ServeHTTP(rec, r)
		checkAnswer(t, r, body, rec)
	})
}

// FuzzSignatureHeaders: arbitrary header values never pass, and never
// crash the verifier.
func FuzzSignatureHeaders(f *testing.F) {
	e := newEnv(f)
	good := e.newRequest(req{method: "GET", path: "/api/status", signer: e.admin})
	f.Add(good.Header.Get(rest.HeaderKey), good.Header.Get(rest.HeaderDate), good.Header.Get(rest.HeaderNonce), good.Header.Get(rest.HeaderSignature))
	f.Add("k1:", "0", "AAAAAAAA", "")
	f.Add("x.y", "2026-03-01T12:00:00Z", "--------", "AA==")
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, key, date, nonce, sig string) {
		r := httptest.NewRequest("GET", "http://relay.test/api/status", nil)
		for h, v := range map[string]string{rest.HeaderKey: key, rest.HeaderDate: date, rest.HeaderNonce: nonce, rest.HeaderSignature: sig} {
			if v != "" {
				r.Header[h] = []string{v}
			}
		}
		rec := httptest.NewRecorder()
		e.router.ServeHTTP(rec, r)
		switch {
		case key == "" && date == "" && nonce == "" && sig == "":
			if rec.Code != 200 {
				t.Fatalf("unsigned read: %d", rec.Code)
			}
		case rec.Code == 200:
			// Only the seed's exact good signature may pass (once).
			if _, err := keys.ParsePublic(key); err != nil {
				t.Fatalf("accepted key %q", key)
			}
		case rec.Code != 401 && rec.Code != 429:
			t.Fatalf("status %d: %s", rec.Code, rec.Body.Bytes())
		}
		checkAnswer(t, r, nil, rec)
	})
}
