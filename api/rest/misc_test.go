package rest_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/api/rest"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/keys"
)

func TestNewKey(t *testing.T) {
	e := newEnv(t, func(c *rest.Config) { c.KeyLimit = rest.Limit{Rate: 0.1, Burst: 2} })
	const password = "correct horse battery staple"
	r := e.do(req{method: "POST", path: "/api/keys", body: mustJSON(t, map[string]string{"password": password})})
	expect(t, r, http.StatusCreated, "")
	var k struct {
		Pub, Curve string
		KeyFile    string `json:"key_file"`
	}
	r.decode(t, &k)
	if k.Curve != "secp256k1" {
		t.Fatalf("curve %q", k.Curve)
	}
	priv, err := keys.DecryptKeyFile([]byte(k.KeyFile), []byte(password))
	if err != nil {
		t.Fatal(err)
	}
	if priv.Public().String() != k.Pub {
		t.Fatal("key file holds another key than the one announced")
	}
	if _, err := keys.DecryptKeyFile([]byte(k.KeyFile), []byte("wrong password")); !errors.Is(err, keys.ErrWrongPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if pub, err := keys.KeyFilePublic([]byte(k.KeyFile)); err != nil || pub.String() != k.Pub {
		t.Fatalf("KeyFilePublic: %v", err)
	}

	r = e.do(req{method: "POST", path: "/api/keys", body: mustJSON(t, map[string]string{"password": password, "curve": "p256"})})
	expect(t, r, http.StatusCreated, "")
	r.decode(t, &k)
	if p, err := keys.ParsePublic(k.Pub); err != nil || p.Curve() != keys.P256 || k.Curve != "p256" {
		t.Fatalf("p256 key: %v %q", err, k.Pub)
	}
	// Over the per-address burst: 429; another address is not affected,
	// and X-Forwarded-For does not move a client to another bucket.
	r = e.do(req{method: "POST", path: "/api/keys", body: mustJSON(t, map[string]string{"password": password}),
		header: map[string]string{"X-Forwarded-For": "203.0.113.7"}})
	expect(t, r, 429, "rate_limited")

	other := func(body string, remote string) *res {
		return e.do(req{method: "POST", path: "/api/keys", body: []byte(body), remote: remote, invalid: true})
	}
	expect(t, other(`{"password":"short"}`, "198.51.100.1:1"), 400, "invalid")
	expect(t, other(`{"password":"`+strings.Repeat("x", 1025)+`"}`, "198.51.100.2:1"), 400, "invalid")
	expect(t, other(`{"password":"long enough","curve":"ed25519"}`, "198.51.100.3:1"), 400, "invalid")
	expect(t, other(`{"password":"long enough","store":true}`, "198.51.100.4:1"), 400, "bad_json")
	expect(t, other(`{"password":12345678}`, "198.51.100.5:1"), 400, "bad_json")
	expect(t, other(`{}`, "198.51.100.6:1"), 400, "bad_json")
	expect(t, other(`{"password":"`+strings.Repeat("x", 2<<20)+`"}`, "198.51.100.7:1"), 413, "too_large")

	// Nothing secret reaches the log.
	if logs := e.logs.String(); strings.Contains(logs, password) || strings.Contains(logs, "long enough") || strings.Contains(logs, "ciphertext") {
		t.Fatalf("secret in logs:\n%s", logs)
	}
}

func TestInternalErrorsWithheld(t *testing.T) {
	e := newEnv(t)
	e.createWorld(map[string]any{"alias": "w"})
	e.svc.Inject("Status", errors.New("disk on fire at /var/secret"))
	r := e.do(req{method: "GET", path: "/api/status"})
	expect(t, r, 500, "internal")
	if bytes.Contains(r.body, []byte("disk")) {
		t.Fatalf("internal detail leaked: %s", r.body)
	}
	if !strings.Contains(e.logs.String(), "disk on fire") {
		t.Fatal("internal error not logged")
	}
	// Service sentinels and heartbeat reasons map to their codes.
	for err, want := range map[error]string{
		rest.ErrUnavailable:                 "unavailable",
		heartbeat.ErrNotSequencer:           "unavailable",
		heartbeat.ErrQueueFull:              "rate_limited",
		rest.ErrConflict:                    "conflict",
		heartbeat.ErrDuplicate:              "conflict",
		errors.Join(heartbeat.ErrMalformed): "invalid",
	} {
		e.svc.Inject("Presence", err)
		r := e.do(req{method: "GET", path: "/api/worlds/w/presence"})
		if got := r.code(t); got != want {
			t.Errorf("%v: code %q, want %q (%d)", err, got, want, r.status)
		}
	}
	e.svc.Inject("Presence", nil)
	e.svc.Inject("History", rest.ErrUnavailable)
	expect(t, e.do(req{method: "GET", path: "/api/worlds/w/history"}), 503, "unavailable")
	e.svc.Inject("Export", errors.New("boom"))
	expect(t, e.do(req{method: "GET", path: "/api/worlds/w/export"}), 500, "internal")
	e.svc.Inject("CreateWorld", rest.ErrUnavailable)
	expect(t, e.do(req{method: "POST", path: "/api/worlds", body: []byte(`{}`), signer: e.admin}), 503, "unavailable")
}

func TestVerifyLimits(t *testing.T) {
	e := newEnv(t, func(c *rest.Config) { c.MaxVerifyBytes = 1000 })
	expect(t, e.do(req{method: "POST", path: "/api/verify/history", body: bytes.Repeat([]byte("{}\n"), 400), ctype: "application/x-ndjson", invalid: true}), 413, "too_large")
	expect(t, e.do(req{method: "POST", path: "/api/verify/history", body: []byte("{}\n"), ctype: "application/json", invalid: true}), 415, "unsupported_media_type")
	expect(t, e.do(req{method: "POST", path: "/api/verify/history", body: []byte{}, ctype: "text/plain", invalid: true}), 400, "invalid")
	expect(t, e.do(req{method: "POST", path: "/api/verify/history?provenance=maybe", body: []byte("x"), ctype: "text/plain", invalid: true}), 400, "invalid")
	// Garbage is a report with a defect on line 1, not an error.
	r := e.do(req{method: "POST", path: "/api/verify/history", body: []byte("not json\n"), ctype: "text/plain"})
	expect(t, r, 200, "")
	var rep struct {
		Valid  bool
		Defect struct{ Line int }
	}
	r.decode(t, &rep)
	if rep.Valid || rep.Defect.Line != 1 {
		t.Fatalf("garbage: %s", r.body)
	}
	expect(t, e.do(req{method: "POST", path: "/api/verify/message", body: []byte(`{"instance":`), invalid: true}), 400, "bad_json")
	expect(t, e.do(req{method: "POST", path: "/api/verify/message", body: []byte(`{"instance":"a","author":"b","ts":1,"payload":"","sig":"x","extra":1}`), invalid: true}), 400, "bad_json")
	expect(t, e.do(req{method: "POST", path: "/api/verify/message", body: []byte(`{"instance":"a","author":"b","ts":1,"payload":"","sig":"x"}`), invalid: true}), 400, "invalid")
	e.svc.Inject("VerifyHistory", errors.New("x"))
	expect(t, e.do(req{method: "POST", path: "/api/verify/history", body: []byte("x"), ctype: "text/plain"}), 500, "internal")
}

func TestVerifyRateLimit(t *testing.T) {
	e := newEnv(t, func(c *rest.Config) { c.VerifyLimit = rest.Limit{Rate: 1, Burst: 1} })
	expect(t, e.do(req{method: "POST", path: "/api/verify/history", body: []byte("x"), ctype: "text/plain"}), 200, "")
	expect(t, e.do(req{method: "POST", path: "/api/verify/history", body: []byte("x"), ctype: "text/plain"}), 429, "rate_limited")
	expect(t, e.do(req{method: "POST", path: "/api/verify/message", body: []byte(`{}`), invalid: true}), 429, "rate_limited")
}

func TestStatusStream(t *testing.T) {
	e := newEnv(t, func(c *rest.Config) { c.MaxStreams = 1 })
	e.createWorld(map[string]any{"alias": "demo", "open": true})
	srv := httptest.NewServer(e.router)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hreq, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/status/stream", nil)
	resp, err := srv.Client().Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("stream answer %d %v", resp.StatusCode, resp.Header)
	}
	rd := bufio.NewReader(resp.Body)
	event := func() string {
		t.Helper()
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		blank, _ := rd.ReadString('\n')
		if !strings.HasPrefix(line, "data: {") || blank != "\n" {
			t.Fatalf("event %q %q", line, blank)
		}
		return line
	}
	first := event()
	validate(t, hreq, nil, &res{status: resp.StatusCode, header: resp.Header, body: []byte(first)}, false)
	if !strings.Contains(first, `"id":"demo"`) {
		t.Fatalf("first event: %s", first)
	}
	// A second stream is over the cap.
	expect(t, e.do(req{method: "GET", path: "/api/status/stream"}), 429, "rate_limited")
	// The next event comes when the clock reaches the interval.
	e.clk.BlockUntil(1)
	e.clk.Advance(time.Second)
	second := event()
	if second == first {
		t.Fatal("second event equals the first (time did not move)")
	}
	// Close ends the stream; new streams are refused.
	e.api.Close()
	if _, err := io.ReadAll(rd); err != nil {
		t.Fatal(err)
	}
	expect(t, e.do(req{method: "GET", path: "/api/status/stream"}), 503, "unavailable")
}

func TestConfigRefused(t *testing.T) {
	if _, err := rest.New(rest.Config{}); err == nil {
		t.Fatal("empty config accepted")
	}
	k := newKey(t)
	if _, err := rest.New(rest.Config{Service: (*fakeNil)(nil), Keys: k, Admins: []*keys.Public{nil}}); err == nil {
		t.Fatal("nil admin accepted")
	}
	if _, err := rest.New(rest.Config{Service: (*fakeNil)(nil), Keys: k, KeyLogN: 40}); err == nil {
		t.Fatal("scrypt logN 40 accepted")
	}
}

// fakeNil is a Service that is never called.
type fakeNil struct{ rest.Service }

// TestExportCutShortAborts: an export that fails after it has written
// part of the history ends the connection (no terminating chunk), so the
// client reading it gets an error instead of a shorter history that
// would verify.
func TestExportCutShortAborts(t *testing.T) {
	e := newEnv(t)
	e.createWorld(map[string]any{"alias": "cut", "tps": 20})
	e.clk.Advance(200 * time.Millisecond)
	hs := httptest.NewServer(e.router)
	defer hs.Close()
	get := func() ([]byte, error) {
		res, err := http.Get(hs.URL + "/api/worlds/cut/export")
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("export: %s", res.Status)
		}
		return io.ReadAll(res.Body)
	}
	whole, err := get()
	if err != nil || len(whole) == 0 {
		t.Fatalf("export: %d bytes, %v", len(whole), err)
	}
	e.svc.Inject("ExportMidway", errors.New("disk gone"))
	// A small history is still in the server's buffer: the request fails
	// (EOF); a large one fails in the body (unexpected EOF). Either way
	// the reader gets an error.
	if got, err := get(); err == nil {
		t.Fatalf("a cut export read cleanly (%d bytes)", len(got))
	}
}
