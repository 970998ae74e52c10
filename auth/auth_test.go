package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/keys"
)

func TestFieldByField(t *testing.T) {
	w := newWorld(t)
	st := w.now()
	hb := w.soul("hb")
	diff := graph.Graph{}
	diff.Set(hb, "beat", graph.Field{Value: w.sign(w.owner, hb, "beat", graph.Number(1), st), State: st})
	diff.Set(hb, "bad", graph.Field{Value: graph.String("unsigned"), State: st})
	diff.Set("plain", "x", graph.Field{Value: graph.String("y"), State: st})
	allowed, refused := w.c.CheckPut(context.Background(), nil, diff)
	if len(allowed) != 1 || len(allowed[hb].Fields) != 1 {
		t.Fatalf("allowed %v", allowed)
	}
	if _, ok := allowed[hb].Fields["beat"]; !ok {
		t.Fatal("beat not allowed")
	}
	if allowed[hb] == diff[hb] {
		t.Fatal("partial node shared with diff")
	}
	if len(diff[hb].Fields) != 2 {
		t.Fatal("diff modified")
	}
	want := [][3]string{
		{hb, "bad", "auth-required: unsigned"},
		{"plain", "x", "restricted: Soul missing public key at 'x'."},
	}
	if len(refused) != len(want) {
		t.Fatalf("refused %v", refused)
	}
	for i := range want {
		got := [3]string{refused[i].Soul, refused[i].Field, refused[i].Err.Error()}
		if got != want[i] {
			t.Errorf("refused[%d] = %q, want %q", i, got, want[i])
		}
		var r *Refusal
		if !errors.As(refused[i], &r) {
			t.Errorf("refused[%d] does not wrap a *Refusal", i)
		}
	}
	s := w.c.Stats()
	if s.Allowed != 1 || s.AuthRequired != 1 || s.Restricted != 1 {
		t.Fatalf("stats %+v", s)
	}
	if strings.Join(w.refs, " ") != "auth-required: restricted:" {
		t.Fatalf("OnRefuse saw %v", w.refs)
	}
}

func TestRevocationInSameMessage(t *testing.T) {
	w := newWorld(t)
	k := genKey(t, keys.Secp256k1)
	c := w.cert(w.owner, k, RoleTick)
	st := w.now()
	hb, rev := w.soul("hb"), w.soul("revoked")
	diff := graph.Graph{}
	// The tick sorts before the revocation by soul, but revocations are
	// judged first: a message that carries both applies the revocation.
	diff.Set(hb, "beat", graph.Field{Value: w.sign(k, hb, "beat", graph.Number(1), st, c), State: st})
	diff.Set(rev, c.Serial, graph.Field{Value: w.sign(w.owner, rev, c.Serial, graph.Number(st), st), State: st})
	got := w.apply(nil, diff)
	if len(got) != 1 || got[0] != "restricted: certificate revoked" {
		t.Fatalf("got %v", got)
	}
	if !w.stored(rev, c.Serial) {
		t.Fatal("revocation not stored")
	}
}

func TestRevocationCannotBeWithdrawn(t *testing.T) {
	w := newWorld(t)
	wantReason(t, w.put(nil, w.owner, "revoked", "abc", graph.Null()), "invalid: "+txtRevocation)
	wantReason(t, w.put(nil, w.owner, "revoked", "abc", graph.Bool(false)), "invalid: "+txtRevocation)
	wantReason(t, w.put(nil, w.owner, "revoked", "not a serial!", graph.Bool(true)), "invalid: "+txtRevocation)
	k := genKey(t, keys.Secp256k1)
	wantReason(t, w.put(nil, k, "revoked", "abc", graph.Bool(true), w.cert(w.owner, k, RoleTick)), "restricted: not authorised to admin")
	wantReason(t, w.put(nil, k, "revoked", "abc", graph.Bool(true), w.cert(w.owner, k, RoleAdmin)), "ok")
}

func TestAuthorizeFromPublishedCerts(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	relay := genKey(t, keys.Secp256k1)
	admin := genKey(t, keys.P256)
	ca := w.cert(w.owner, admin, RoleAdmin)
	ct := w.cert(admin, relay, RoleTick)
	if err := w.c.Authorize(ctx, w.id, relay.Public().String(), RoleTick, w.clk.Now()); !errors.Is(err, ErrRestricted) {
		t.Fatalf("before publishing: %v", err)
	}
	for _, c := range []*Cert{ca, ct} {
		js, _ := c.MarshalJSON()
		wantReason(t, w.put(nil, w.owner, "certs", c.Serial, graph.String(string(js))), "ok")
	}
	if err := w.c.Authorize(ctx, w.id, relay.Public().String(), RoleTick, w.clk.Now()); err != nil {
		t.Fatalf("after publishing: %v", err)
	}
	if err := w.c.Authorize(ctx, w.id, relay.Public().String(), RoleMessage, w.clk.Now()); err == nil {
		t.Fatal("message role granted")
	}
	if err := w.c.Authorize(ctx, w.id, w.id, RoleAdmin, w.clk.Now()); err != nil {
		t.Fatalf("owner: %v", err)
	}
	// Explicit chain.
	if err := w.c.Authorize(ctx, w.id, relay.Public().String(), RoleTick, w.clk.Now(), ca, ct); err != nil {
		t.Fatalf("explicit chain: %v", err)
	}
	// Expiry by the given time.
	err := w.c.Authorize(ctx, w.id, relay.Public().String(), RoleTick, w.clk.Now().Add(2*time.Hour))
	if err == nil || err.Error() != "restricted: certificate expired" {
		t.Fatalf("later: %v", err)
	}
	// Revoking the admin's certificate revokes the chain.
	wantReason(t, w.put(nil, w.owner, "revoked", ca.Serial, graph.Bool(true)), "ok")
	if err := w.c.Authorize(ctx, w.id, relay.Public().String(), RoleTick, w.clk.Now()); err == nil || err.Error() != "restricted: certificate revoked" {
		t.Fatalf("revoked: %v", err)
	}
	// A published certificate must belong to the instance and its field.
	js, _ := ct.MarshalJSON()
	wantReason(t, w.put(nil, w.owner, "certs", "other", graph.String(string(js))), "invalid: certificate")
	other := newWorld(t)
	wantReason(t, other.put(nil, other.owner, "certs", ct.Serial, graph.String(string(js))), "invalid: certificate")
}

func TestCanonicalLinks(t *testing.T) {
	w := newWorld(t)
	k := genKey(t, keys.Secp256k1)
	c := w.cert(w.owner, k, RoleTick)
	// gun's chain API writes lum/<I>.hb = {"#":"lum/<I>/hb"} on the way down;
	// a tick holder may write exactly that link, nothing else on the root.
	wantReason(t, w.put(nil, k, "", "hb", graph.Link(w.soul("hb")), c), "ok")
	wantReason(t, w.put(nil, k, "", "log", graph.Link(w.soul("log")), c), "ok")
	wantReason(t, w.put(nil, k, "log", "7", graph.Link(w.soul("log/7")), c), "ok")
	wantReason(t, w.put(nil, k, "", "hb", graph.Link(w.soul("elsewhere")), c), "restricted: not authorised to admin")
	wantReason(t, w.put(nil, k, "", "hb", graph.String("x"), c), "restricted: not authorised to admin")
	wantReason(t, w.put(nil, k, "", "in", graph.Link(w.soul("in")), c), "restricted: not authorised to message")
}

func TestInstanceSouls(t *testing.T) {
	w := newWorld(t)
	for _, soul := range []string{
		InstancePrefix + w.id + "/", InstancePrefix + w.id + "//x", InstancePrefix + w.id + "/a~b",
		InstancePrefix + w.id + "/a#b", InstancePrefix + w.id + "/x<?5", InstancePrefix,
	} {
		wantReason(t, w.putRaw(nil, soul, "f", graph.String("x"), w.now()), "invalid: instance soul")
	}
	// P-256 owners work as well.
	w2 := newWorld(t)
	w2.owner = genKey(t, keys.P256)
	w2.id = w2.owner.Public().String()
	wantReason(t, w2.put(nil, w2.owner, "hb", "beat", graph.Number(1)), "ok")
	// A wrapper with an unknown member is refused.
	v := rewrap(t, w.sign(w.owner, w.soul("hb"), "beat", graph.Number(1), w.now()), func(o *jsjson.Object) { o.Set("x", 1.0) })
	wantReason(t, w.putRaw(nil, w.soul("hb"), "beat", v, w.now()), "invalid: bad signed wrapper")
	// Values must be Gun values inside the wrapper too.
	v = rewrap(t, w.sign(w.owner, w.soul("hb"), "beat", graph.Number(1), w.now()), func(o *jsjson.Object) { o.Set(":", []any{1.0}) })
	wantReason(t, w.putRaw(nil, w.soul("hb"), "beat", v, w.now()), "invalid: bad value")
}

func TestSEAHighSAccepted(t *testing.T) {
	// gun.js SEA does not normalise S, so either twin of a SEA signature is
	// accepted in user space (keys.VerifyLax); see the package docs.
	v := loadSEAVectors(t, "testdata/sea_vectors.json")
	c := vectorChecker(t, v, Secure)
	vec := v.Captured[len(v.Captured)-1]
	f := vec.field(t)
	w, ok := c.parseSEAWrapper(f.Value)
	if !ok {
		t.Fatal("not a wrapper")
	}
	sig, _ := decodeSEASig(w.sig)
	twin := highS(sig, orderP256)
	s, _ := f.Value.AsString()
	x, _ := jsjson.Parse([]byte(s), jsjson.Limits{})
	o := x.(*jsjson.Object)
	o.Set("~", b64std(twin))
	f2 := graph.Field{Value: graph.String(string(jsjson.Marshal(o))), State: f.State}
	for _, ff := range []graph.Field{f, f2} {
		if got := checkOne(t, c, nil, vec.Soul, vec.Field, ff); got != "ok" {
			t.Fatalf("got %q", got)
		}
	}
}

func TestForgetLimit(t *testing.T) {
	w := newWorld(t)
	soul := "~@x<?10" // alias-pubs rules apply after the age check
	wantReason(t, w.putRaw(nil, soul, "~a.b", graph.Link("~a.b"), w.now()-20_000), "invalid: "+txtForget)
	wantReason(t, w.putRaw(nil, soul, "~a.b", graph.Link("~a.b"), w.now()-5_000), "ok")
}

func TestModes(t *testing.T) {
	if m, err := ParseMode("OPEN"); err != nil || m != Open {
		t.Fatal(m, err)
	}
	if _, err := ParseMode("lax"); err == nil {
		t.Fatal("lax accepted")
	}
	if Secure.String() != "secure" || (Config{}).Mode != Secure {
		t.Fatal("secure is not the zero value")
	}
	if _, err := New(Config{RelayID: "nope"}); err == nil {
		t.Fatal("bad relay id accepted")
	}
	if _, err := New(Config{MaxChainDepth: -1}); err == nil {
		t.Fatal("negative depth accepted")
	}
}

func TestCertJSON(t *testing.T) {
	owner := genKey(t, keys.Secp256k1)
	sub := genKey(t, keys.P256)
	c, err := IssueCert(owner, Cert{Instance: owner.Public().String(), Subject: sub.Public().String(),
		Roles: []Role{RoleTick, RoleMessage}, Expiry: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := c.MarshalJSON()
	c2, err := ParseCert(js)
	if err != nil {
		t.Fatal(err)
	}
	js2, _ := c2.MarshalJSON()
	if string(js) != string(js2) {
		t.Fatalf("round trip:\n%s\n%s", js, js2)
	}
	if err := c2.VerifySignature(); err != nil {
		t.Fatal(err)
	}
	c2.Roles = []Role{RoleTick}
	if c2.VerifySignature() == nil {
		t.Fatal("changed roles still verify")
	}
	for _, bad := range []string{
		`{}`, `[]`, `null`,
		strings.Replace(string(js), `"tick"`, `"root"`, 1),
		strings.Replace(string(js), `"tick"`, `"message"`, 1),
		strings.Replace(string(js), `"roles":["tick","message"]`, `"roles":[]`, 1),
		strings.Replace(string(js), `"notBefore":0`, `"notBefore":1.5`, 1),
		strings.Replace(string(js), `"notBefore":0`, `"notBefore":-1`, 1),
		strings.Replace(string(js), `"notBefore":0`, `"notBefore":99999999999999999`, 1),
		strings.Replace(string(js), `"serial":"`, `"serial":"!`, 1),
		strings.Replace(string(js), `"notBefore":0`, `"notBefore":0,"x":1`, 1),
	} {
		if _, err := ParseCert([]byte(bad)); !errors.Is(err, ErrCert) {
			t.Errorf("ParseCert(%s) = %v", bad, err)
		}
	}
	if _, err := IssueCert(owner, Cert{Instance: "i", Subject: "s", Roles: []Role{RoleTick}}); !errors.Is(err, ErrCert) {
		t.Fatalf("no expiry: %v", err)
	}
}

func TestAuthWire(t *testing.T) {
	w := newWorld(t)
	user := genKey(t, keys.P256)
	peer := NewPeer()

	parse := func(b []byte) *jsjson.Object {
		x, err := jsjson.Parse(b, jsjson.Limits{})
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return x.(*jsjson.Object)
	}
	req := parse(AppendChallengeRequest(nil, "c1"))
	body, _ := req.Get(AuthMember)
	reply := w.c.HandleAuth(peer, body)
	if reply.Challenge == nil {
		t.Fatalf("no challenge: %+v", reply)
	}
	out := parse(reply.AppendJSON(nil, "r1", "c1"))
	if at, _ := out.Get("@"); at != "c1" {
		t.Fatalf("reply %s", jsjson.Marshal(out))
	}
	chBody, _ := out.Get(AuthMember)
	ch, err := ParseChallenge(chBody)
	if err != nil || ch.Relay != w.c.cfg.RelayID {
		t.Fatalf("challenge %+v %v", ch, err)
	}
	resp, err := Respond(user, ch, w.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	msg := parse(resp.AppendJSON(nil, "c2"))
	body, _ = msg.Get(AuthMember)
	reply = w.c.HandleAuth(peer, body)
	if !reply.OK || reply.Close {
		t.Fatalf("login reply %+v", reply)
	}
	if got := string(reply.AppendJSON(nil, "r2", "c2")); got != `{"#":"r2","@":"c2","ok":true}` {
		t.Fatal(got)
	}
	if !peer.LoggedIn(user.Public().String()) || w.c.Stats().Logins != 1 {
		t.Fatal("not logged in")
	}
	// Replay of the same answer, then garbage: strikes, then close.
	r1 := w.c.HandleAuth(peer, body)
	r2 := w.c.HandleAuth(peer, "garbage")
	r3 := w.c.HandleAuth(peer, body)
	if r1.OK || r2.OK || r3.OK || r1.Close || r2.Close || !r3.Close {
		t.Fatalf("replies %+v %+v %+v", r1, r2, r3)
	}
	wantPrefix(t, r1.Err, PrefixAuthRequired)
	wantReason(t, r2.Err, "auth-required: login: malformed response")
	if got := string(r3.AppendJSON(nil, "r3", "")); !strings.HasPrefix(got, `{"#":"r3","err":"auth-required: `) {
		t.Fatal(got)
	}
}

func TestRefusalErrors(t *testing.T) {
	for p, sentinel := range map[string]error{
		PrefixInvalid: ErrInvalid, PrefixRestricted: ErrRestricted,
		PrefixAuthRequired: ErrAuthRequired, PrefixDuplicate: ErrDuplicate,
	} {
		r := &Refusal{p, "x"}
		if !errors.Is(r, sentinel) || PrefixOf(r.Error()) != p {
			t.Errorf("%s", p)
		}
	}
	if PrefixOf("error: x") != "" {
		t.Fatal("unknown prefix")
	}
}

func TestCheckGetPublic(t *testing.T) {
	w := newWorld(t)
	for _, s := range []string{"plain", "~a.b", w.soul("hb"), InstancePrefix + "bad"} {
		if err := w.c.CheckGet(context.Background(), nil, s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
}

func TestLookupErrorsFailClosed(t *testing.T) {
	boom := errors.New("disk on fire")
	w := newWorld(t)
	w.c.cfg.Lookup = func(context.Context, string, string) (graph.Field, bool, error) { return graph.Field{}, false, boom }
	k := genKey(t, keys.Secp256k1)
	wantReason(t, w.put(nil, k, "hb", "beat", graph.Number(1), w.cert(w.owner, k, RoleTick)), "restricted: "+txtInternal)
	if err := w.c.CheckGet(context.Background(), NewPeer(), w.soul("hb")); err == nil {
		t.Fatal("read allowed without knowing whether the instance is private")
	}
	// The owner's own writes need no lookup.
	wantReason(t, w.put(nil, w.owner, "hb", "beat", graph.Number(1)), "ok")
}

// TestReplayCheckAsksHasSoulOnce: the replay check of a node of several
// fields on a soul the graph does not hold reads no field (one HasSoul);
// an exact replay of that node, now held, is refused field by field.
func TestReplayCheckAsksHasSoulOnce(t *testing.T) {
	var lookups, asks atomic.Int64
	w := newWorld(t)
	lookup := w.c.cfg.Lookup
	w.c.cfg.Lookup = func(ctx context.Context, soul, field string) (graph.Field, bool, error) {
		lookups.Add(1)
		return lookup(ctx, soul, field)
	}
	w.c.cfg.HasSoul = func(ctx context.Context, soul string) (bool, error) {
		asks.Add(1)
		return w.store.HasSoul(ctx, soul)
	}
	hb := w.soul("hb")
	st := w.now()
	diff := graph.Graph{}
	for _, f := range []string{"a", "b", "c"} {
		diff.Set(hb, f, graph.Field{Value: w.sign(w.owner, hb, f, graph.Number(1), st), State: st})
	}
	if got := w.apply(nil, diff); len(got) != 1 || got[0] != "ok" {
		t.Fatalf("first put: %v", got)
	}
	if asks.Load() != 1 || lookups.Load() != 0 {
		t.Fatalf("new soul: %d HasSoul, %d lookups; want 1, 0", asks.Load(), lookups.Load())
	}
	got := w.apply(nil, diff)
	if len(got) != 3 {
		t.Fatalf("replay: %v, want three refusals", got)
	}
	for _, r := range got {
		if !strings.HasPrefix(r, "duplicate:") {
			t.Fatalf("replay: %v", got)
		}
	}
	if asks.Load() != 2 || lookups.Load() != 3 {
		t.Fatalf("held soul: %d HasSoul, %d lookups; want 2, 3", asks.Load(), lookups.Load())
	}
	// One field: a lookup, no HasSoul.
	wantReason(t, w.put(nil, w.owner, "hb", "d", graph.Number(2)), "ok")
	if asks.Load() != 2 || lookups.Load() != 4 {
		t.Fatalf("one field: %d HasSoul, %d lookups; want 2, 4", asks.Load(), lookups.Load())
	}
}

// TestConcurrentUse exercises the Checker, its caches and a shared Peer
// from several goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.KeyCacheSize, c.CertCacheSize, c.RegistrySize = 2, 2, 2 })
	k := genKey(t, keys.Secp256k1)
	cert := w.cert(w.owner, k, RoleTick)
	js, _ := cert.MarshalJSON()
	wantReason(t, w.put(nil, w.owner, "certs", cert.Serial, graph.String(string(js))), "ok")
	st := w.now()
	hb := w.soul("hb")
	diff := graph.Graph{}
	diff.Set(hb, "beat", graph.Field{Value: w.sign(k, hb, "beat", graph.Number(1), st, cert), State: st})
	peer := NewPeer()
	ctx := context.Background()
	done := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for i := 0; i < 20; i++ {
				if _, refused := w.c.CheckPut(ctx, peer, diff); len(refused) != 0 {
					done <- refused[0]
					return
				}
				if err := w.c.Authorize(ctx, w.id, k.Public().String(), RoleTick, w.clk.Now()); err != nil {
					done <- err
					return
				}
				ch, _ := w.c.Challenge(peer)
				resp, _ := Respond(k, ch, w.clk.Now())
				_ = w.c.Login(peer, resp) // may race with another goroutine's challenge
				_ = w.c.CheckGet(ctx, peer, hb)
				_ = w.c.Stats()
			}
			done <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestParseWrapper(t *testing.T) {
	w := newWorld(t)
	k := genKey(t, keys.P256)
	c := w.cert(w.owner, k, RoleTick)
	v := w.sign(k, w.soul("hb"), "beat", graph.Link("x"), 5, c)
	p, err := ParseWrapper(v)
	if err != nil || p.Writer != k.Public().String() || len(p.Chain) != 1 || !p.Value.Equal(graph.Link("x")) {
		t.Fatalf("%+v %v", p, err)
	}
	if !p.Encode().Equal(v) {
		t.Fatalf("re-encode:\n%v\n%v", p.Encode(), v)
	}
	if _, err := ParseWrapper(graph.Number(1)); !errors.Is(err, ErrAuthRequired) {
		t.Fatal(err)
	}
	if _, err := ParseWrapper(graph.String(`{"~":"x",":":1}`)); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
}

// parseInstanceSoul accepts lum/<I> and lum/<I>/<segments> and refuses an
// empty instance or segment, and the characters other soul kinds use.
func TestParseInstanceSoul(t *testing.T) {
	for soul, want := range map[string]instanceSoul{
		"lum/I":           {id: "I"},
		"lum/I/hb":        {id: "I", path: "hb"},
		"lum/I/log/0":     {id: "I", path: "log/0"},
		"lum/I/members/x": {id: "I", path: "members/x"},
	} {
		got, ok := parseInstanceSoul(soul)
		if !ok || got != want {
			t.Errorf("%q: %+v %v, want %+v", soul, got, ok, want)
		}
	}
	for _, soul := range []string{"lum/", "lum//hb", "lum/I/", "lum/I//hb", "lum/I/hb/", "lum/I/a//b", "lum/~I", "lum/I/#x", "lum/I/<?1", "other/I"} {
		if got, ok := parseInstanceSoul(soul); ok {
			t.Errorf("%q accepted as %+v", soul, got)
		}
	}
}

// Grantees lists the keys holding a role through published certificates,
// as Authorize judges them: not the owner, nobody for a certificate for
// any key (it names nobody in particular), not another role, nothing past
// its expiry or revoked.
func TestGrantees(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a, b, m := genKey(t, keys.Secp256k1), genKey(t, keys.P256), genKey(t, keys.Secp256k1)
	ca, cb := w.cert(w.owner, a, RoleTick), w.cert(w.owner, b, RoleTick)
	any, err := IssueCert(w.owner, Cert{Instance: w.id, Subject: AnySubject, Roles: []Role{RoleMessage},
		NotBefore: w.clk.Now().Add(-time.Minute), Expiry: w.clk.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	cm := w.cert(w.owner, m, RoleMessage)
	for _, c := range []*Cert{ca, cb, any, cm} {
		js, _ := c.MarshalJSON()
		wantReason(t, w.put(nil, w.owner, "certs", c.Serial, graph.String(string(js))), "ok")
	}
	want := []string{a.Public().String(), b.Public().String()}
	slices.Sort(want)
	if got := w.c.Grantees(ctx, w.id, RoleTick, w.clk.Now()); !slices.Equal(got, want) {
		t.Fatalf("tick grantees %v, want %v", got, want)
	}
	if got := w.c.Grantees(ctx, w.id, RoleMessage, w.clk.Now()); !slices.Equal(got, []string{m.Public().String()}) {
		t.Fatalf("message grantees %v", got)
	}
	wantReason(t, w.put(nil, w.owner, "revoked", ca.Serial, graph.Bool(true)), "ok")
	if got := w.c.Grantees(ctx, w.id, RoleTick, w.clk.Now()); !slices.Equal(got, []string{b.Public().String()}) {
		t.Fatalf("after revoking a's certificate: %v", got)
	}
	if got := w.c.Grantees(ctx, w.id, RoleTick, w.clk.Now().Add(2*time.Hour)); len(got) != 0 {
		t.Fatalf("after expiry: %v", got)
	}
}

func TestIsPrivateRefusal(t *testing.T) {
	if !IsPrivateRefusal(authRequired(txtPrivate)) || !IsPrivateRefusal(fmt.Errorf("put: %w", authRequired(txtPrivate))) {
		t.Fatal("the private-instance answer is not recognised")
	}
	for _, err := range []error{authRequired(txtUnsigned), restricted(txtPrivate), errors.New("auth-required: private instance"), nil} {
		if IsPrivateRefusal(err) {
			t.Fatalf("%v taken for the private-instance answer", err)
		}
	}
}

func TestSplitInstanceSoul(t *testing.T) {
	for soul, want := range map[string][3]string{
		"lum/I":       {"I", "", "ok"},
		"lum/I/hb":    {"I", "hb", "ok"},
		"lum/I/log/3": {"I", "log/3", "ok"},
		"lum/I/":      {"I", "", "ok"},
		"lum//hb":     {"", "hb", ""},
		"lum/":        {"", "", ""},
		"~I/hb":       {"", "", ""},
		"lumen/I/hb":  {"", "", ""},
	} {
		inst, path, ok := SplitInstanceSoul(soul)
		if ok != (want[2] == "ok") || ok && (inst != want[0] || path != want[1]) {
			t.Errorf("SplitInstanceSoul(%q) = %q, %q, %v; want %v", soul, inst, path, ok, want)
		}
	}
}
