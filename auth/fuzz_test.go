package auth

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/keys"
)

// FuzzCheckPut feeds arbitrary souls, fields and string values (signed
// wrappers, certificates, garbage) to the Checker. Every field must end in
// exactly one of allowed or refused, and every refusal must carry one of the
// four prefixes.
func FuzzCheckPut(f *testing.F) {
	raw, err := os.ReadFile("testdata/sea_vectors.json")
	if err != nil {
		f.Fatal(err)
	}
	var v seaVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		f.Fatal(err)
	}
	for _, vec := range append(v.Captured, v.Raw...) {
		var s string
		if json.Unmarshal(vec.Value, &s) == nil {
			f.Add(vec.Soul, vec.Field, s, vec.State)
		}
	}
	w := newWorld(f)
	k := genKey(f, keys.Secp256k1)
	st := w.now()
	sv, _ := w.sign(k, w.soul("hb"), "beat", graph.Number(1), st, w.cert(w.owner, k, RoleTick)).AsString()
	f.Add(w.soul("hb"), "beat", sv, st)
	f.Add(w.soul("revoked"), "abc", sv, st)
	f.Add(w.soul("certs"), "abc", sv, st)
	f.Add("lum/x/in/y", "payload", "{}", st)
	f.Add("~@", "a", `{"#":"~@a"}`, st)
	f.Add("x<?1", "a", "b", 1.0)

	f.Fuzz(func(t *testing.T, soul, field, value string, state float64) {
		if !graph.ValidState(state) {
			return
		}
		diff := graph.Graph{}
		diff.Set(soul, field, graph.Field{Value: graph.String(value), State: state})
		diff.Set(soul, field+"2", graph.Field{Value: graph.Null(), State: state})
		allowed, refused := w.c.CheckPut(context.Background(), NewPeer(), diff)
		n := len(refused)
		for _, node := range allowed {
			n += len(node.Fields)
		}
		if n != 2 {
			t.Fatalf("%d outcomes for 2 fields", n)
		}
		for _, r := range refused {
			if PrefixOf(r.Err.Error()) == "" {
				t.Fatalf("reason without prefix: %q", r.Err.Error())
			}
		}
		// Verifying ahead (Preverify) changes no verdict.
		pallowed, prefused := w.c.CheckPut(w.c.Preverify(context.Background(), diff), NewPeer(), diff)
		if !pallowed.Equal(allowed) || len(prefused) != len(refused) {
			t.Fatalf("with Preverify: allowed %v refused %v; without: %v %v", pallowed, prefused, allowed, refused)
		}
		for i := range refused {
			if prefused[i].Soul != refused[i].Soul || prefused[i].Field != refused[i].Field || prefused[i].Err.Error() != refused[i].Err.Error() {
				t.Fatalf("with Preverify: %v; without: %v", prefused[i], refused[i])
			}
		}
	})
}

// FuzzParseCert checks that ParseCert never panics and that what it accepts
// encodes back to bytes it accepts again, unchanged.
func FuzzParseCert(f *testing.F) {
	owner := genKey(f, keys.Secp256k1)
	c, err := IssueCert(owner, Cert{Instance: owner.Public().String(), Subject: AnySubject,
		Roles: []Role{RoleMessage}, NotBefore: t0, Expiry: t0.AddDate(0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	js, _ := c.MarshalJSON()
	f.Add(js)
	f.Add([]byte(`{"instance":"a","subject":"b","roles":["tick"],"notBefore":0,"expiry":1,"serial":"s","issuer":"c","sig":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCert(data)
		if err != nil {
			return
		}
		js, _ := c.MarshalJSON()
		c2, err := ParseCert(js)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", js, err)
		}
		js2, _ := c2.MarshalJSON()
		if string(js) != string(js2) {
			t.Fatalf("not stable:\n%s\n%s", js, js2)
		}
		_ = c.VerifySignature()
	})
}

// FuzzParseResponse checks the login wire parsers never panic and that a
// parsed response encodes back to the same response.
func FuzzParseResponse(f *testing.F) {
	k := genKey(f, keys.Secp256k1)
	var ch Challenge
	ch.Relay = "r"
	resp, _ := Respond(k, ch, t0)
	f.Add(resp.AppendJSON(nil, "x"))
	f.Add(AppendChallengeRequest(nil, "y"))
	f.Add([]byte(`{"auth":{"nonce":"","t":-1}}`))
	w := newWorld(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := jsjson.Parse(data, jsjson.Limits{MaxBytes: 4096})
		if err != nil {
			return
		}
		o, ok := x.(*jsjson.Object)
		if !ok {
			return
		}
		body, _ := o.Get(AuthMember)
		_, _ = ParseChallenge(body)
		if r, err := ParseResponse(body); err == nil {
			y, err := jsjson.Parse(r.AppendJSON(nil, "id"), jsjson.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			b2, _ := y.(*jsjson.Object).Get(AuthMember)
			r2, err := ParseResponse(b2)
			if err != nil || r2.Pub != r.Pub || r2.Relay != r.Relay || !r2.Time.Equal(r.Time) || string(r2.Sig) != string(r.Sig) || r2.Nonce != r.Nonce {
				t.Fatalf("round trip: %+v %+v %v", r, r2, err)
			}
		}
		reply := w.c.HandleAuth(NewPeer(), body)
		if reply.Challenge == nil && !reply.OK && PrefixOf(reply.Err) != PrefixAuthRequired {
			t.Fatalf("reply %+v", reply)
		}
	})
}

// FuzzMatchPolicy runs SEA write policies of any shape against paths.
func FuzzMatchPolicy(f *testing.F) {
	f.Add(`{"*":"inbox","+":"*"}`, "inbox/p", "k", "p")
	f.Add(`[{"#":{"*":"a"},".":{">":"b","<":"c"}},"x/y"]`, "a", "bb", "p")
	f.Add(`{"=":"q"}`, "", "q", "p")
	f.Fuzz(func(t *testing.T, policy, path, key, writer string) {
		x, err := jsjson.Parse([]byte(policy), jsjson.Limits{MaxBytes: 4096})
		if err != nil {
			return
		}
		r := matchPolicy(x, path, key, writer, false)
		if r != nil && r.Prefix != PrefixRestricted {
			t.Fatalf("refusal %v", r)
		}
	})
}
