package rest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/api/rest"
	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/keys"
)

// userWorld hosts a world owned by a user key that gave the relay tick and
// admin certificates.
func (e *env) userWorld(alias string) (*keys.Private, rest.WorldInfo) {
	e.t.Helper()
	owner := newKey(e.t)
	inst := owner.Public().String()
	c := issue(e.t, owner, inst, e.relay.Public().String(), e.clk.Now(), auth.RoleTick, auth.RoleAdmin)
	wi := e.createWorld(map[string]any{"instance": inst, "alias": alias, "chain": []*auth.Cert{c}})
	return owner, wi
}

func decodeChain(t *testing.T, r *res) []*auth.Cert {
	t.Helper()
	var doc struct{ Chain []json.RawMessage }
	r.decode(t, &doc)
	return grant{Chain: doc.Chain}.certs(t)
}

func TestIssueCert(t *testing.T) {
	e := newEnv(t)
	owner, wi := e.userWorld("mine")
	inst := wi.Instance
	member := newKey(t)
	exp := e.clk.Now().Add(time.Hour).UnixMilli()
	tmpl := mustJSON(t, map[string]any{"subject": member.Public().String(), "roles": []string{"message", "snapshot"}, "expiry": exp})

	// Refusals first: unsigned, a stranger, unknown world.
	expect(t, e.do(req{method: "POST", path: "/api/worlds/mine/certs", body: tmpl, invalid: true}), 401, "unauthenticated")
	expect(t, e.do(req{method: "POST", path: "/api/worlds/mine/certs", body: tmpl, signer: newKey(t)}), 403, "forbidden")
	expect(t, e.do(req{method: "POST", path: "/api/worlds/none/certs", body: tmpl, signer: owner}), 404, "not_found")

	// The owner asks the relay to sign: the chain is owner→relay (admin),
	// relay→member, and it proves the roles by auth's rules.
	r := e.do(req{method: "POST", path: "/api/worlds/mine/certs", body: tmpl, signer: owner})
	expect(t, r, http.StatusCreated, "")
	chain := decodeChain(t, r)
	if len(chain) != 2 || chain[0].Issuer != inst || chain[1].Issuer != e.relay.Public().String() || chain[1].Subject != member.Public().String() {
		t.Fatalf("chain: %+v", chain)
	}
	checker, _ := auth.New(auth.Config{Clock: e.clk})
	if err := checker.Authorize(context.Background(), inst, member.Public().String(), auth.RoleMessage, e.clk.Now(), chain...); err != nil {
		t.Fatalf("issued chain does not authorize: %v", err)
	}
	// The relay admin may too; and so may a holder of the admin role.
	expect(t, e.do(req{method: "POST", path: "/api/worlds/mine/certs", body: tmpl, signer: e.admin}), 201, "")
	deputy := newKey(t)
	adminTmpl := mustJSON(t, map[string]any{"subject": deputy.Public().String(), "roles": []string{"admin"}, "expiry": exp})
	expect(t, e.do(req{method: "POST", path: "/api/worlds/mine/certs", body: adminTmpl, signer: owner}), 201, "")
	expect(t, e.do(req{method: "POST", path: "/api/worlds/mine/certs", body: tmpl, signer: deputy}), 201, "")
	// ... but a mere member may not.
	expect(t, e.do(req{method: "POST", path: "/api/worlds/mine/certs", body: tmpl, signer: member}), 403, "forbidden")

	// A certificate signed locally by the owner is published as is.
	local := issue(t, owner, inst, newKey(t).Public().String(), e.clk.Now(), auth.RoleMessage)
	r = e.do(req{method: "POST", path: "/api/worlds/" + inst + "/certs", body: mustJSON(t, map[string]any{"cert": local}), signer: owner})
	expect(t, r, http.StatusCreated, "")
	if got := decodeChain(t, r); len(got) != 1 || got[0].Serial != local.Serial {
		t.Fatalf("published chain: %+v", got)
	}

	// Value refusals.
	forged := *local
	forged.Subject = newKey(t).Public().String()
	otherWorld := issue(t, newKey(t), newKey(t).Public().String(), member.Public().String(), e.clk.Now(), auth.RoleMessage)
	notOwners := issue(t, member, inst, member.Public().String(), e.clk.Now(), auth.RoleMessage)
	for name, body := range map[string]any{
		"past expiry":        map[string]any{"subject": "*", "roles": []string{"message"}, "expiry": e.clk.Now().Add(-time.Second).UnixMilli()},
		"expiry too far":     map[string]any{"subject": "*", "roles": []string{"message"}, "expiry": e.clk.Now().Add(400 * 24 * time.Hour).UnixMilli()},
		"admin for everyone": map[string]any{"subject": "*", "roles": []string{"admin"}, "expiry": exp},
		"unknown role":       map[string]any{"subject": "*", "roles": []string{"root"}, "expiry": exp},
		"repeated role":      map[string]any{"subject": "*", "roles": []string{"tick", "tick"}, "expiry": exp},
		"no roles":           map[string]any{"subject": "*", "roles": []string{}, "expiry": exp},
		"bad subject":        map[string]any{"subject": "bob", "roles": []string{"message"}, "expiry": exp},
		"not_before late":    map[string]any{"subject": "*", "roles": []string{"message"}, "expiry": exp, "not_before": exp},
		"bad serial":         map[string]any{"subject": "*", "roles": []string{"message"}, "expiry": exp, "serial": "a/b"},
		"forged signature":   map[string]any{"cert": &forged},
		"another world":      map[string]any{"cert": otherWorld},
		"not by the owner":   map[string]any{"cert": notOwners},
	} {
		t.Run(name, func(t *testing.T) {
			r := e.do(req{method: "POST", path: "/api/worlds/mine/certs", body: mustJSON(t, body), signer: owner, invalid: true})
			if name == "not by the owner" {
				expect(t, r, 403, "forbidden") // auth: certificate issuer is not the instance owner
				return
			}
			expect(t, r, 400, "invalid")
		})
	}
	for name, body := range map[string]string{
		"mixed forms":    `{"cert":{},"subject":"*"}`,
		"roles a string": `{"subject":"*","roles":"message","expiry":1}`,
		"expiry text":    `{"subject":"*","roles":["message"],"expiry":"soon"}`,
		"fraction":       `{"subject":"*","roles":["message"],"expiry":1.5}`,
		"missing expiry": `{"subject":"*","roles":["message"]}`,
	} {
		r := e.do(req{method: "POST", path: "/api/worlds/mine/certs", body: []byte(body), signer: owner, invalid: true})
		if r.status != 400 {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}

	// A relay without the owner key or an admin certificate cannot sign.
	owner2 := newKey(t)
	inst2 := owner2.Public().String()
	tick := issue(t, owner2, inst2, e.relay.Public().String(), e.clk.Now(), auth.RoleTick)
	e.createWorld(map[string]any{"instance": inst2, "alias": "tickonly", "chain": []*auth.Cert{tick}})
	expect(t, e.do(req{method: "POST", path: "/api/worlds/tickonly/certs", body: tmpl, signer: owner2}), 403, "forbidden")
}

// TestJoin covers the demo page's call and its refusals.
func TestJoin(t *testing.T) {
	e := newEnv(t, func(c *rest.Config) { c.JoinLimit = rest.Limit{Rate: 1, Burst: 2} })
	e.createWorld(map[string]any{"alias": "demo", "open": true})
	e.createWorld(map[string]any{"alias": "closed"})
	k := newKey(t).Public().String()
	body := mustJSON(t, map[string]string{"pub": k})
	expect(t, e.do(req{method: "POST", path: "/api/worlds/demo/join", body: body}), 200, "")
	// Joining again is fine (presence is per key).
	expect(t, e.do(req{method: "POST", path: "/api/worlds/demo/join", body: body}), 200, "")
	expect(t, e.do(req{method: "POST", path: "/api/worlds/closed/join", body: body, remote: "192.0.2.10:1"}), 403, "forbidden")
	expect(t, e.do(req{method: "POST", path: "/api/worlds/nope/join", body: body, remote: "192.0.2.11:1"}), 404, "not_found")
	expect(t, e.do(req{method: "POST", path: "/api/worlds/demo/join", body: []byte(`{"pub":"k1:x"}`), remote: "192.0.2.9:1", invalid: true}), 400, "invalid")
	expect(t, e.do(req{method: "POST", path: "/api/worlds/demo/join", body: []byte(`{}`), remote: "192.0.2.12:1", invalid: true}), 400, "bad_json")
	expect(t, e.do(req{method: "POST", path: "/api/worlds/demo/join", body: body, ctype: "text/plain", remote: "192.0.2.13:1", invalid: true}), 415, "unsupported_media_type")
	// The third request from one address within the second is over the burst.
	r := e.do(req{method: "POST", path: "/api/worlds/demo/join", body: body})
	expect(t, r, 429, "rate_limited")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	e.clk.Advance(time.Second)
	expect(t, e.do(req{method: "POST", path: "/api/worlds/demo/join", body: body}), 200, "")
	r = e.do(req{method: "GET", path: "/api/worlds/demo/presence"})
	var p struct{ Count int }
	r.decode(t, &p)
	if p.Count != 1 {
		t.Fatalf("presence after repeated joins: %d", p.Count)
	}
}
