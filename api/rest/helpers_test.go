package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	legacyrouter "github.com/getkin/kin-openapi/routers/legacy"
	"github.com/go-chi/chi/v5"

	"github.com/krestianstvo/luminary/api/rest"
	"github.com/krestianstvo/luminary/api/rest/resttest"
	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/keys"
)

// The OpenAPI document, loaded and validated once; every request a test
// makes through env.do is validated against it (unless the test sends a
// deliberately invalid request), and so is every answer.
var (
	specOnce   sync.Once
	specDoc    *openapi3.T
	specRouter routers.Router
	specErr    error
)

func spec(t testing.TB) (*openapi3.T, routers.Router) {
	t.Helper()
	specOnce.Do(func() {
		raw := func(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
			b, err := io.ReadAll(body)
			return string(b), err
		}
		for _, ct := range []string{"application/yaml", "application/x-ndjson", "application/jsonl", "text/event-stream"} {
			openapi3filter.RegisterBodyDecoder(ct, raw)
		}
		loader := openapi3.NewLoader()
		specDoc, specErr = loader.LoadFromData(rest.OpenAPI)
		if specErr != nil {
			return
		}
		if specErr = specDoc.Validate(loader.Context); specErr != nil {
			return
		}
		// The document's server is the relative "/", which the router
		// cannot match against a request; route by path alone.
		forRouting := *specDoc
		forRouting.Servers = nil
		specRouter, specErr = legacyrouter.NewRouter(&forRouting)
	})
	if specErr != nil {
		t.Fatalf("openapi.yaml: %v", specErr)
	}
	return specDoc, specRouter
}

// coverage records, per documented operation, the statuses that tests saw
// validated answers for.
var coverage = struct {
	sync.Mutex
	seen map[string]map[int]bool
}{seen: map[string]map[int]bool{}}

func record(op string, status int) {
	coverage.Lock()
	defer coverage.Unlock()
	if coverage.seen[op] == nil {
		coverage.seen[op] = map[int]bool{}
	}
	coverage.seen[op][status] = true
}

// TestMain checks, after a full run, that every documented operation was
// answered successfully at least once, and that the refusals the issue
// names were seen with their documented statuses.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code != 0 || flag.Lookup("test.run").Value.String() != "" || testing.Short() {
		os.Exit(code)
	}
	_, _ = spec(&testing.T{})
	var missing []string
	for path, item := range specDoc.Paths.Map() {
		for method, op := range item.Operations() {
			key := method + " " + path
			ok := false
			for code := range op.Responses.Map() {
				if strings.HasPrefix(code, "2") && coverage.seen[key][atoi(code)] {
					ok = true
				}
			}
			if !ok {
				missing = append(missing, key+": no successful answer tested")
			}
		}
	}
	for _, want := range []struct {
		op     string
		status int
	}{
		{"POST /api/worlds", 401}, {"POST /api/worlds", 403}, {"POST /api/worlds", 413}, {"POST /api/worlds", 400},
		{"GET /api/worlds/{world}", 403}, {"GET /api/worlds/{world}/history", 403}, {"GET /api/worlds/{world}", 401},
		{"POST /api/worlds/{world}/certs", 401}, {"POST /api/worlds/{world}/certs", 403},
		{"POST /api/keys", 429}, {"POST /api/keys", 400}, {"POST /api/keys", 413},
	} {
		if !coverage.seen[want.op][want.status] {
			missing = append(missing, fmt.Sprintf("%s: refusal %d not tested", want.op, want.status))
		}
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "API coverage: %d operations checked, %d gaps\n", len(coverage.seen), len(missing))
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		fmt.Fprintln(os.Stderr, "API coverage incomplete:\n  "+strings.Join(missing, "\n  "))
		os.Exit(1)
	}
	os.Exit(code)
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// env is one relay's API on an in-memory service, with a fake clock.
type env struct {
	t      testing.TB
	clk    *clock.Fake
	svc    *resttest.Service
	api    *rest.API
	router chi.Router
	relay  *keys.Private
	admin  *keys.Private
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newKey(t testing.TB) *keys.Private {
	t.Helper()
	k, err := keys.Generate(keys.Secp256k1)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newEnv(t testing.TB, tune ...func(*rest.Config)) *env {
	t.Helper()
	spec(t)
	e := &env{t: t, clk: clock.NewFake(start), relay: newKey(t), admin: newKey(t), logs: &syncBuffer{}}
	svc, err := resttest.New(e.relay, e.clk)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	cfg := rest.Config{
		Service: svc, Keys: e.relay, Admins: []*keys.Public{e.admin.Public()}, Clock: e.clk,
		Logger:  slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Info:    rest.Info{Name: "test relay", Version: "v0.0.0-test", Features: []string{"gun-wire"}, Limits: map[string]int64{"ws_read_limit": 65536}},
		KeyLogN: keys.MinLogN,
	}
	for _, f := range tune {
		f(&cfg)
	}
	e.api, err = rest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.api.Close)
	e.router = chi.NewRouter()
	e.api.Mount(e.router)
	return e
}

// req describes one request.
type req struct {
	method, path string
	body         []byte
	ctype        string            // Content-Type; default application/json when body is set
	signer       *keys.Private     // sign with this key at the env clock
	header       map[string]string // extra headers (after signing)
	remote       string            // RemoteAddr
	invalid      bool              // the request breaks the spec on purpose: do not validate it
}

// res is an answer.
type res struct {
	status int
	header http.Header
	body   []byte
}

func (r *res) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer %d is not JSON: %v\n%s", r.status, err, r.body)
	}
}

// code returns the error code of an error answer.
func (r *res) code(t testing.TB) string {
	t.Helper()
	var b struct {
		Error struct{ Code, Message string }
	}
	r.decode(t, &b)
	if b.Error.Code == "" || b.Error.Message == "" {
		t.Fatalf("error answer without code and message: %s", r.body)
	}
	return b.Error.Code
}

func (e *env) newRequest(q req) *http.Request {
	e.t.Helper()
	var body io.Reader = http.NoBody
	if q.body != nil {
		body = bytes.NewReader(q.body)
	}
	r := httptest.NewRequest(q.method, "http://relay.test"+q.path, body)
	if q.body != nil {
		ct := q.ctype
		if ct == "" {
			ct = "application/json"
		}
		r.Header.Set("Content-Type", ct)
	}
	if q.remote != "" {
		r.RemoteAddr = q.remote
	}
	if q.signer != nil {
		if err := rest.SignRequestAt(r, q.signer, e.clk.Now()); err != nil {
			e.t.Fatal(err)
		}
	}
	for k, v := range q.header {
		r.Header.Set(k, v)
	}
	return r
}

// do sends q through the router and validates request and answer against
// the OpenAPI document.
func (e *env) do(q req) *res {
	e.t.Helper()
	return e.send(e.newRequest(q), q.invalid)
}

func (e *env) send(r *http.Request, invalid bool) *res {
	e.t.Helper()
	var reqBody []byte
	if r.Body != nil {
		reqBody, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	rec := httptest.NewRecorder()
	e.router.ServeHTTP(rec, r)
	out := &res{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	checkCommonHeaders(e.t, r, out)
	validate(e.t, r, reqBody, out, invalid)
	return out
}

// checkCommonHeaders: every answer is nosniff; every /api answer and every
// error is JSON (table A row 34).
func checkCommonHeaders(t testing.TB, r *http.Request, out *res) {
	t.Helper()
	if got := out.header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s %s: X-Content-Type-Options = %q", r.Method, r.URL.Path, got)
	}
	ct := out.header.Get("Content-Type")
	if out.status >= 400 && ct != "application/json" {
		t.Errorf("%s %s: error answer with Content-Type %q", r.Method, r.URL.Path, ct)
	}
	if strings.HasPrefix(r.URL.Path, "/api/") {
		if out.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: no Cache-Control: no-store", r.Method, r.URL.Path)
		}
		allowed := []string{"application/json", "application/x-ndjson", "text/event-stream"}
		if !slices.Contains(allowed, ct) {
			t.Errorf("%s %s: Content-Type %q", r.Method, r.URL.Path, ct)
		}
	}
}

// validate checks the exchange against the spec and records coverage.
// Requests to undocumented paths must be refused 404 or 405.
func validate(t testing.TB, r *http.Request, reqBody []byte, out *res, invalid bool) {
	t.Helper()
	_, router := spec(t)
	vr := r.Clone(context.Background())
	vr.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := router.FindRoute(vr)
	if err != nil {
		// The spec's router unescapes paths; the API never does, so an
		// escaped separator can reach a documented route as a parameter
		// that the API refuses as invalid.
		if out.status != http.StatusNotFound && out.status != http.StatusMethodNotAllowed && !(invalid && out.status == http.StatusBadRequest) {
			t.Errorf("%s %s: not in the spec, but answered %d", r.Method, r.URL.Path, out.status)
		}
		return
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: vr, PathParams: params, Route: route, Options: opts}
	if !invalid {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("%s %s: request does not match the spec: %v", r.Method, r.URL.Path, err)
		}
	}
	rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: out.status, Header: out.header,
		Body: io.NopCloser(bytes.NewReader(out.body)), Options: opts}
	if err := openapi3filter.ValidateResponse(context.Background(), rin); err != nil {
		t.Errorf("%s %s: answer %d does not match the spec: %v\n%s", r.Method, r.URL.Path, out.status, err, truncate(out.body))
	}
	record(r.Method+" "+route.Path, out.status)
}

func truncate(b []byte) []byte {
	if len(b) > 2000 {
		return append(b[:2000:2000], "…"...)
	}
	return b
}

// mustJSON encodes v.
func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// expect fails unless the answer has the status (and, for errors, the code).
func expect(t testing.TB, r *res, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, truncate(r.body))
	}
	if code != "" {
		if got := r.code(t); got != code {
			t.Fatalf("code %q, want %q: %s", got, code, r.body)
		}
	}
}

// sender returns a new key holding the message role in inst (issued by
// the service as the relay would).
func (e *env) sender(inst string) *keys.Private {
	e.t.Helper()
	k := newKey(e.t)
	_, err := e.svc.IssueCert(context.Background(), inst, auth.Cert{Instance: inst, Subject: k.Public().String(),
		Roles: []auth.Role{auth.RoleMessage}, Expiry: e.clk.Now().Add(time.Hour)})
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

// grant is a JoinGrant as a client decodes it.
type grant struct {
	World, Instance, Sequencer string
	Chain                      []json.RawMessage
}

func (g grant) certs(t testing.TB) []*auth.Cert {
	t.Helper()
	var out []*auth.Cert
	for _, raw := range g.Chain {
		c, err := auth.ParseCert(raw)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// createWorld hosts a world as the relay admin.
func (e *env) createWorld(spec map[string]any) rest.WorldInfo {
	e.t.Helper()
	r := e.do(req{method: "POST", path: "/api/worlds", body: mustJSON(e.t, spec), signer: e.admin})
	expect(e.t, r, http.StatusCreated, "")
	var wi rest.WorldInfo
	r.decode(e.t, &wi)
	return wi
}
