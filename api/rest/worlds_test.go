package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/api/rest"
	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/keys"
)

func TestWellKnown(t *testing.T) {
	e := newEnv(t)
	r := e.do(req{method: "GET", path: "/.well-known/luminary"})
	expect(t, r, http.StatusOK, "")
	var doc struct {
		Software, Version, Relay, Curve string
		Features                        []string
		Endpoints                       map[string]string
		Auth                            struct {
			Scheme, Label string
			Headers       []string
			Window        int64 `json:"window_s"`
		}
		Limits map[string]int64
	}
	r.decode(t, &doc)
	if doc.Relay != e.relay.Public().String() || doc.Software != "luminary" || doc.Version != "v0.0.0-test" || doc.Curve != "secp256k1" {
		t.Fatalf("info: %+v", doc)
	}
	if doc.Limits["max_body_bytes"] != rest.DefaultMaxBodyBytes || doc.Limits["ws_read_limit"] != 65536 || doc.Auth.Window != 60 {
		t.Fatalf("limits: %v auth %+v", doc.Limits, doc.Auth)
	}
	for _, f := range []string{"gun-wire", "signed-requests", "history", "user-keys"} {
		if !strings.Contains(strings.Join(doc.Features, " "), f) {
			t.Errorf("feature %q missing: %v", f, doc.Features)
		}
	}
	if doc.Endpoints["openapi"] != "/openapi.yaml" || doc.Auth.Label != "http" {
		t.Fatalf("endpoints %v auth %+v", doc.Endpoints, doc.Auth)
	}
	// A read may be signed; a bad signature is refused even here.
	expect(t, e.do(req{method: "GET", path: "/.well-known/luminary", signer: newKey(t)}), http.StatusOK, "")
	expect(t, e.do(req{method: "GET", path: "/.well-known/luminary", header: map[string]string{rest.HeaderKey: "k1:nope"}, invalid: true}),
		http.StatusUnauthorized, "unauthenticated")
}

// TestDemoWorldLifecycle walks every world route on an open world: host,
// list, info (by alias and id), join, presence, messages, history (by seq
// and time), export, and verification of the export and of a message.
func TestDemoWorldLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	wi := e.createWorld(map[string]any{"alias": "demo", "name": "Demo <b>world</b>", "tps": 20, "open": true})
	if wi.ID != "demo" || wi.Alias != "demo" || !wi.Open || wi.Private || wi.TPS != 20 || wi.Rate != 1 {
		t.Fatalf("created: %+v", wi)
	}
	if wi.Seq != 1 || !wi.Metronome.Local || wi.Metronome.Sequencer != e.relay.Public().String() || wi.Metronome.Epoch != 1 {
		t.Fatalf("metronome/seq: %+v", wi)
	}
	inst := wi.Instance

	r := e.do(req{method: "GET", path: "/api/worlds"})
	expect(t, r, http.StatusOK, "")
	var list struct{ Worlds []rest.WorldInfo }
	r.decode(t, &list)
	if len(list.Worlds) != 1 || list.Worlds[0].Instance != inst {
		t.Fatalf("list: %+v", list)
	}
	// Stored text with HTML is served as escaped JSON only (table A row 34).
	if bytes.Contains(r.body, []byte("<b>")) {
		t.Fatalf("HTML served raw: %s", r.body)
	}

	for _, ref := range []string{"demo", inst, url.PathEscape(inst), strings.ReplaceAll(inst, ":", "%3A")} {
		r := e.do(req{method: "GET", path: "/api/worlds/" + ref})
		expect(t, r, http.StatusOK, "")
		var got rest.WorldInfo
		r.decode(t, &got)
		if got.Instance != inst || got.Name != "Demo <b>world</b>" {
			t.Fatalf("info by %s: %+v", ref, got)
		}
	}
	e.clk.Advance(1500 * time.Millisecond)
	r = e.do(req{method: "GET", path: "/api/worlds/demo"})
	var later rest.WorldInfo
	r.decode(t, &later)
	if later.Time < 1.4 || later.Time > 1.6 {
		t.Fatalf("Croquet time after 1.5 s: %v", later.Time)
	}

	// Join with a fresh key: the grant lets it send messages.
	page := newKey(t)
	r = e.do(req{method: "POST", path: "/api/worlds/demo/join", body: mustJSON(t, map[string]string{"pub": page.Public().String()})})
	expect(t, r, http.StatusOK, "")
	var g grant
	r.decode(t, &g)
	chain := g.certs(t)
	if g.World != "demo" || g.Instance != inst || g.Sequencer != e.relay.Public().String() || len(chain) == 0 {
		t.Fatalf("grant: %+v", g)
	}
	leaf := chain[len(chain)-1]
	if leaf.Subject != page.Public().String() || !leaf.Has(auth.RoleMessage) {
		t.Fatalf("leaf certificate: %+v", leaf)
	}

	r = e.do(req{method: "GET", path: "/api/worlds/demo/presence"})
	expect(t, r, http.StatusOK, "")
	var pres struct {
		World, Instance string
		Count           int
		Clients         []string
	}
	r.decode(t, &pres)
	if pres.Count != 1 || pres.Clients[0] != page.Public().String() || pres.World != "demo" {
		t.Fatalf("presence: %+v", pres)
	}

	// Three messages from the page's key.
	var receipts []heartbeat.Receipt
	for i := range 3 {
		e.clk.Advance(100 * time.Millisecond)
		rc, err := e.svc.Submit(ctx, page, inst, fmt.Sprintf(`{"t":"move","i":%d,"html":"<script>alert(1)</script>"}`, i))
		if err != nil {
			t.Fatal(err)
		}
		receipts = append(receipts, rc)
	}

	// History by seq, paged.
	r = e.do(req{method: "GET", path: "/api/worlds/demo/history?from=1&limit=2"})
	expect(t, r, http.StatusOK, "")
	var h struct {
		Head    uint64
		Next    uint64
		Entries []json.RawMessage
		Ticks   []json.RawMessage
	}
	r.decode(t, &h)
	if h.Head != 5 || len(h.Entries) != 2 || h.Next != 3 || len(h.Ticks) == 0 {
		t.Fatalf("history page 1: head %d next %d entries %d ticks %d", h.Head, h.Next, len(h.Entries), len(h.Ticks))
	}
	if bytes.Contains(r.body, []byte("<script>")) {
		t.Fatal("stored script served unescaped")
	}
	for _, raw := range h.Entries {
		if _, err := heartbeat.ParseEntry(unescapeHTML(raw)); err != nil {
			t.Fatalf("entry does not parse back: %v", err)
		}
	}
	r = e.do(req{method: "GET", path: fmt.Sprintf("/api/worlds/demo/history?from=%d&to=%d", h.Next, 4)})
	h.Next = 0
	r.decode(t, &h)
	if len(h.Entries) != 2 || h.Next != 0 {
		t.Fatalf("history 3..4: %d entries, next %d", len(h.Entries), h.Next)
	}

	// History by Croquet time: the last message only.
	last := receipts[2]
	q := url.Values{"from_time": {fmt.Sprint(last.Time - 0.0005)}, "to_time": {fmt.Sprint(last.Time + 0.0005)}}
	r = e.do(req{method: "GET", path: "/api/worlds/" + inst + "/history?" + q.Encode()})
	expect(t, r, http.StatusOK, "")
	r.decode(t, &h)
	if len(h.Entries) != 1 {
		t.Fatalf("by time: %d entries: %s", len(h.Entries), r.body)
	}
	ent, err := heartbeat.ParseEntry(unescapeHTML(h.Entries[0]))
	if err != nil || ent.Seq != last.Seq {
		t.Fatalf("by time: %v %+v", err, ent)
	}

	// Export, then verify the export: valid, with provenance naming the page.
	r = e.do(req{method: "GET", path: "/api/worlds/demo/export"})
	expect(t, r, http.StatusOK, "")
	if r.header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("export Content-Type %q", r.header.Get("Content-Type"))
	}
	export := r.body
	if n := bytes.Count(export, []byte("\n")); n < 6 {
		t.Fatalf("export has %d lines", n)
	}
	r = e.do(req{method: "POST", path: "/api/verify/history", body: export, ctype: "application/x-ndjson"})
	expect(t, r, http.StatusOK, "")
	var vr struct {
		Valid                    bool
		Entries, Messages, Ticks int
		Meta                     struct{ Instance string }
		Epochs                   []struct{ Holder string }
		Provenance               []struct {
			Seq              uint64
			Kind, Author, ID string
		}
		Defect *struct {
			Line   int
			Reason string
		}
	}
	r.decode(t, &vr)
	if !vr.Valid || vr.Entries != 5 || vr.Messages != 3 || vr.Meta.Instance != inst || len(vr.Epochs) != 1 ||
		vr.Epochs[0].Holder != e.relay.Public().String() || len(vr.Provenance) != 5 {
		t.Fatalf("verify report: %s", r.body)
	}
	if p := vr.Provenance[4]; p.Kind != "msg" || p.Author != page.Public().String() || p.ID != last.ID.String() {
		t.Fatalf("provenance of the last message: %+v", p)
	}
	r = e.do(req{method: "POST", path: "/api/verify/history?provenance=false", body: export, ctype: "text/plain"})
	expect(t, r, http.StatusOK, "")
	if bytes.Contains(r.body, []byte(`"provenance"`)) {
		t.Fatal("provenance=false still lists provenance")
	}
	// A tampered payload breaks the chain: valid false, with the defect.
	tampered := bytes.Replace(export, []byte(`\"i\":1`), []byte(`\"i\":7`), 1)
	if bytes.Equal(tampered, export) {
		t.Fatal("test did not tamper")
	}
	r = e.do(req{method: "POST", path: "/api/verify/history", body: tampered, ctype: "application/jsonl"})
	expect(t, r, http.StatusOK, "")
	r.decode(t, &vr)
	if vr.Valid || vr.Defect == nil || vr.Defect.Line == 0 || !strings.HasPrefix(vr.Defect.Reason, "invalid:") {
		t.Fatalf("tampered history: %s", r.body)
	}

	// Verify one message: valid and sequenced; a forged one is not valid.
	ents, _ := e.svc.Log().Read(ctx, inst, last.Seq, 1)
	msg := ents.Entries[0].Message()
	r = e.do(req{method: "POST", path: "/api/verify/message", body: msg.AppendJSON(nil)})
	expect(t, r, http.StatusOK, "")
	var mr rest.MessageReport
	r.decode(t, &mr)
	if !mr.Valid || !mr.Sequenced || mr.Seq != last.Seq || mr.ID != last.ID.String() || mr.Author != page.Public().String() || mr.Time != last.Time {
		t.Fatalf("message report: %+v (receipt %+v)", mr, last)
	}
	forged := msg
	forged.Payload = `{"t":"forged"}`
	r = e.do(req{method: "POST", path: "/api/verify/message", body: forged.AppendJSON(nil)})
	expect(t, r, http.StatusOK, "")
	mr = rest.MessageReport{}
	r.decode(t, &mr)
	if mr.Valid || mr.Sequenced || mr.Reason != "invalid: signature" {
		t.Fatalf("forged message report: %+v", mr)
	}
	// The id member must match the fields.
	var withID map[string]any
	_ = json.Unmarshal(msg.AppendJSON(nil), &withID)
	withID["id"] = strings.Repeat("A", 43)
	expect(t, e.do(req{method: "POST", path: "/api/verify/message", body: mustJSON(t, withID)}), http.StatusBadRequest, "invalid")

	// The status page sees the world.
	r = e.do(req{method: "GET", path: "/api/status"})
	expect(t, r, http.StatusOK, "")
	var st rest.Status
	r.decode(t, &st)
	if len(st.Worlds) != 1 || st.Worlds[0].ID != "demo" || st.Worlds[0].Seq != 5 || st.Worlds[0].Peers != 1 || st.Time == "" {
		t.Fatalf("status: %s", r.body)
	}
}

// unescapeHTML undoes encoding/json's HTML escaping (\u003c etc.) so the
// JSON parses with heartbeat's exact parser.
func unescapeHTML(b []byte) []byte {
	r := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&")
	return []byte(r.Replace(string(b)))
}

// TestCreateWorldRefusals: the refusals of hosting, each with its code.
func TestCreateWorldRefusals(t *testing.T) {
	e := newEnv(t, func(c *rest.Config) { c.MaxBodyBytes = 4096 })
	good := mustJSON(t, map[string]any{"name": "x"})
	cases := []struct {
		name   string
		q      req
		status int
		code   string
	}{
		{"unsigned", req{method: "POST", path: "/api/worlds", body: good, invalid: true}, 401, "unauthenticated"},
		{"not an admin", req{method: "POST", path: "/api/worlds", body: good, signer: newKey(t)}, 403, "forbidden"},
		{"oversized body", req{method: "POST", path: "/api/worlds", body: bytes.Repeat([]byte(" "), 4097), signer: e.admin, invalid: true}, 413, "too_large"},
		{"bad JSON", req{method: "POST", path: "/api/worlds", body: []byte(`{"name":`), signer: e.admin, invalid: true}, 400, "bad_json"},
		{"not an object", req{method: "POST", path: "/api/worlds", body: []byte(`["x"]`), signer: e.admin, invalid: true}, 400, "bad_json"},
		{"unknown member", req{method: "POST", path: "/api/worlds", body: []byte(`{"name":"x","owner":"y"}`), signer: e.admin, invalid: true}, 400, "bad_json"},
		{"case variant member", req{method: "POST", path: "/api/worlds", body: []byte(`{"Name":"x"}`), signer: e.admin, invalid: true}, 400, "bad_json"},
		{"duplicate member", req{method: "POST", path: "/api/worlds", body: []byte(`{"name":"x","name":"y"}`), signer: e.admin, invalid: true}, 400, "bad_json"},
		{"invalid UTF-8", req{method: "POST", path: "/api/worlds", body: []byte("{\"name\":\"\xff\"}"), signer: e.admin, invalid: true}, 400, "bad_json"},
		{"lone surrogate", req{method: "POST", path: "/api/worlds", body: []byte(`{"name":"\ud800"}`), signer: e.admin, invalid: true}, 400, "bad_json"},
		{"wrong type", req{method: "POST", path: "/api/worlds", body: []byte(`{"tps":"20"}`), signer: e.admin, invalid: true}, 400, "bad_json"},
		{"wrong media type", req{method: "POST", path: "/api/worlds", body: good, ctype: "text/plain", signer: e.admin, invalid: true}, 415, "unsupported_media_type"},
		{"rate out of range", req{method: "POST", path: "/api/worlds", body: []byte(`{"rate":100}`), signer: e.admin, invalid: true}, 400, "invalid"},
		{"tps out of range", req{method: "POST", path: "/api/worlds", body: []byte(`{"tps":61}`), signer: e.admin, invalid: true}, 400, "invalid"},
		{"private and open", req{method: "POST", path: "/api/worlds", body: []byte(`{"private":true,"open":true}`), signer: e.admin}, 400, "invalid"},
		{"bad instance key", req{method: "POST", path: "/api/worlds", body: []byte(`{"instance":"k1:AAAA"}`), signer: e.admin, invalid: true}, 400, "invalid"},
		{"bad alias", req{method: "POST", path: "/api/worlds", body: []byte(`{"alias":"Demo"}`), signer: e.admin, invalid: true}, 400, "invalid"},
		{"with a query", req{method: "POST", path: "/api/worlds?x=1", body: good, signer: e.admin, invalid: true}, 201, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(c.q)
			expect(t, r, c.status, c.code)
		})
	}
	// Hosting the same alias twice is a conflict.
	e.createWorld(map[string]any{"alias": "twice"})
	r := e.do(req{method: "POST", path: "/api/worlds", body: []byte(`{"alias":"twice"}`), signer: e.admin})
	expect(t, r, http.StatusConflict, "conflict")
	// The Location names the world.
	r = e.do(req{method: "POST", path: "/api/worlds", body: []byte(`{"alias":"loc"}`), signer: e.admin})
	expect(t, r, http.StatusCreated, "")
	if r.header.Get("Location") != "/api/worlds/loc" {
		t.Fatalf("Location %q", r.header.Get("Location"))
	}
}

// TestOpenHosting: an owner hosts its own world when the relay allows it,
// and must hand the relay a tick certificate to do so.
func TestOpenHosting(t *testing.T) {
	e := newEnv(t, func(c *rest.Config) { c.OpenHosting = true })
	owner := newKey(t)
	inst := owner.Public().String()
	body := mustJSON(t, map[string]any{"instance": inst, "name": "mine"})
	// Someone else may not host it.
	expect(t, e.do(req{method: "POST", path: "/api/worlds", body: body, signer: newKey(t)}), 403, "forbidden")
	// Without a tick certificate for the relay the relay cannot sequence it.
	expect(t, e.do(req{method: "POST", path: "/api/worlds", body: body, signer: owner}), 400, "invalid")
	tick := issue(t, owner, inst, e.relay.Public().String(), e.clk.Now(), auth.RoleTick)
	body = mustJSON(t, map[string]any{"instance": inst, "name": "mine", "chain": []*auth.Cert{tick}})
	r := e.do(req{method: "POST", path: "/api/worlds", body: body, signer: owner})
	expect(t, r, http.StatusCreated, "")
	var wi rest.WorldInfo
	r.decode(t, &wi)
	if wi.ID != inst || wi.Owner != inst || wi.Seq != 1 {
		t.Fatalf("hosted: %+v", wi)
	}
	expect(t, e.do(req{method: "POST", path: "/api/worlds", body: body, signer: owner}), 409, "conflict")
	// A chain for another instance is refused.
	other := newKey(t)
	bad := mustJSON(t, map[string]any{"instance": other.Public().String(), "chain": []*auth.Cert{tick}})
	expect(t, e.do(req{method: "POST", path: "/api/worlds", body: bad, signer: other}), 400, "invalid")
}

func issue(t testing.TB, issuer *keys.Private, inst, subject string, now time.Time, roles ...auth.Role) *auth.Cert {
	t.Helper()
	c, err := auth.IssueCert(issuer, auth.Cert{Instance: inst, Subject: subject, Roles: roles, Expiry: now.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPrivateWorld: reads of a private world need a member's signature.
func TestPrivateWorld(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	wi := e.createWorld(map[string]any{"alias": "secret", "private": true})
	pub := e.createWorld(map[string]any{"alias": "public"})
	member, stranger := newKey(t), newKey(t)
	e.svc.AddMember(wi.Instance, member.Public().String())

	for _, path := range []string{"/api/worlds/secret", "/api/worlds/secret/presence", "/api/worlds/secret/history", "/api/worlds/secret/export"} {
		t.Run(strings.TrimPrefix(path, "/api/worlds/"), func(t *testing.T) {
			expect(t, e.do(req{method: "GET", path: path}), 401, "unauthenticated")
			expect(t, e.do(req{method: "GET", path: path, signer: stranger}), 403, "not_member")
			expect(t, e.do(req{method: "GET", path: path, signer: member}), 200, "")
			expect(t, e.do(req{method: "GET", path: path, signer: e.admin}), 200, "")
		})
	}
	// The list hides the private world from strangers only.
	names := func(signer *keys.Private) []string {
		r := e.do(req{method: "GET", path: "/api/worlds", signer: signer})
		expect(t, r, 200, "")
		var l struct{ Worlds []rest.WorldInfo }
		r.decode(t, &l)
		var out []string
		for _, w := range l.Worlds {
			out = append(out, w.ID)
		}
		return out
	}
	if got := strings.Join(names(nil), ","); got != "public" {
		t.Fatalf("stranger sees %q", got)
	}
	if got := strings.Join(names(member), ","); got != "secret,public" {
		t.Fatalf("member sees %q", got)
	}
	// The status page shows private worlds to relay admins only.
	count := func(signer *keys.Private) int {
		r := e.do(req{method: "GET", path: "/api/status", signer: signer})
		expect(t, r, 200, "")
		var st rest.Status
		r.decode(t, &st)
		return len(st.Worlds)
	}
	if count(nil) != 1 || count(member) != 1 || count(e.admin) != 2 {
		t.Fatalf("status counts: %d %d %d", count(nil), count(member), count(e.admin))
	}
	// Joining is for open worlds; a private world refuses non-members first.
	j := mustJSON(t, map[string]string{"pub": stranger.Public().String()})
	expect(t, e.do(req{method: "POST", path: "/api/worlds/secret/join", body: j}), 401, "unauthenticated")
	expect(t, e.do(req{method: "POST", path: "/api/worlds/public/join", body: j}), 403, "forbidden")

	// Where a private world's message sits is told to members only.
	rc, err := e.svc.Submit(ctx, e.sender(wi.Instance), wi.Instance, "sealed")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := e.svc.Log().Read(ctx, wi.Instance, rc.Seq, 1)
	pm := p.Entries[0].Message()
	body := pm.AppendJSON(nil)
	var mr rest.MessageReport
	e.do(req{method: "POST", path: "/api/verify/message", body: body}).decode(t, &mr)
	if !mr.Valid || mr.Sequenced || mr.Seq != 0 {
		t.Fatalf("stranger's report: %+v", mr)
	}
	e.do(req{method: "POST", path: "/api/verify/message", body: body, signer: member}).decode(t, &mr)
	if !mr.Valid || !mr.Sequenced || mr.Seq != rc.Seq {
		t.Fatalf("member's report: %+v", mr)
	}
	_ = pub
}

func TestWorldNotFoundAndPaths(t *testing.T) {
	e := newEnv(t)
	e.createWorld(map[string]any{"alias": "demo", "open": true})
	for _, path := range []string{"/api/worlds/nope", "/api/worlds/nope/presence", "/api/worlds/nope/history", "/api/worlds/nope/export",
		"/api/worlds/" + newKey(t).Public().String()} {
		expect(t, e.do(req{method: "GET", path: path}), 404, "not_found")
	}
	// Table A row 31: traversal, encoded dots, absolute paths, NUL: never
	// anything but a JSON refusal, and no file is read anywhere.
	for _, path := range []string{
		"/api/worlds/..", "/api/worlds/.", "/api/worlds/%2e%2e", "/api/worlds/%2E%2E/history", "/api/worlds/..%2f..%2fetc%2fpasswd",
		"/api/worlds/a%00b", "/api/worlds/%00", "/api/worlds/a%2Fb/presence", "/api/worlds/" + strings.Repeat("a", 129),
	} {
		r := e.do(req{method: "GET", path: path, invalid: true})
		expect(t, r, 400, "invalid")
	}
	for _, path := range []string{"/api/worlds/../openapi.yaml", "/api/../etc/passwd", "/api//etc/passwd", "/api/worlds/demo/../../keys", "/api/nope", "/api/worlds/demo/nope"} {
		r := e.do(req{method: "GET", path: path, invalid: true})
		if r.status != 404 {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		if r.code(t) != "not_found" {
			t.Fatalf("%s: %s", path, r.body)
		}
	}
	r := e.do(req{method: "DELETE", path: "/api/worlds/demo", invalid: true})
	expect(t, r, 405, "method_not_allowed")
	// A body on a read, and unknown query parameters, are refused.
	expect(t, e.do(req{method: "GET", path: "/api/worlds/demo", body: []byte(`{}`), invalid: true}), 400, "invalid")
	expect(t, e.do(req{method: "GET", path: "/api/worlds/demo?x=1", invalid: true}), 400, "invalid")
	expect(t, e.do(req{method: "GET", path: "/api/worlds?x=1", invalid: true}), 400, "invalid")
}

func TestHistoryQueries(t *testing.T) {
	e := newEnv(t, func(c *rest.Config) { c.MaxHistoryLimit = 3 })
	wi := e.createWorld(map[string]any{"alias": "h"})
	author := e.sender(wi.Instance)
	for i := range 5 {
		e.clk.Advance(50 * time.Millisecond)
		if _, err := e.svc.Submit(context.Background(), author, wi.Instance, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	type page struct {
		Head, Next uint64
		Entries    []struct{ Seq uint64 }
	}
	get := func(q string) page {
		r := e.do(req{method: "GET", path: "/api/worlds/h/history" + q})
		expect(t, r, 200, "")
		var p page
		r.decode(t, &p)
		return p
	}
	seqs := func(p page) string {
		var s []string
		for _, e := range p.Entries {
			s = append(s, fmt.Sprint(e.Seq))
		}
		return strings.Join(s, ",")
	}
	for q, want := range map[string]string{
		"":                 "1,2,3",
		"?from=3":          "3,4,5",
		"?from=2&to=3":     "2,3",
		"?from=2&limit=1":  "2",
		"?from=7":          "",
		"?from=0&to=1":     "1",
		"?from_time=0":     "1,2,3",
		"?from_time=1000":  "",
		"?to_time=0.00001": "1",
	} {
		if got := seqs(get(q)); got != want {
			t.Errorf("%q: seqs %q, want %q", q, got, want)
		}
	}
	if p := get(""); p.Next != 4 || p.Head != 6 {
		t.Fatalf("paging: next %d head %d", p.Next, p.Head)
	}
	if p := get("?from=4"); p.Next != 0 || seqs(p) != "4,5,6" {
		t.Fatalf("last page: next %d seqs %s", p.Next, seqs(p))
	}
	for _, q := range []string{"?limit=0", "?limit=4", "?from=x", "?from=-1", "?from=3&to=2", "?from=1&from_time=1",
		"?from_time=-1", "?from_time=NaN", "?to_time=Inf", "?from_time=2&to_time=1", "?cursor=1", "?from=1&from=2",
		"?from=9007199254740993"} {
		r := e.do(req{method: "GET", path: "/api/worlds/h/history" + q, invalid: true})
		expect(t, r, 400, "invalid")
	}
	for _, q := range []string{"?from=3&to=2", "?limit=1", "?from=x"} {
		expect(t, e.do(req{method: "GET", path: "/api/worlds/h/export" + q, invalid: true}), 400, "invalid")
	}
	// A range export starts with a header naming the previous hash.
	r := e.do(req{method: "GET", path: "/api/worlds/h/export?from=3&to=4"})
	expect(t, r, 200, "")
	first, _, _ := bytes.Cut(r.body, []byte("\n"))
	if !bytes.Contains(first, []byte(`"from":3`)) || !bytes.Contains(first, []byte(`"prev"`)) {
		t.Fatalf("range export header: %s", first)
	}
}
