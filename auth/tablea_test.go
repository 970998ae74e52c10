package auth

// Tests for rows 12–22, 25 and 26 of table A in
// /work/shared/research/reliability.md: each bad input gets the outcome the
// table names, and nothing from a refused field is allowed through.

import (
	"context"
	"errors"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/keys"
)

// rewrap parses a wrapper string, lets mutate change it and encodes it again.
func rewrap(t testing.TB, v graph.Value, mutate func(o *jsjson.Object)) graph.Value {
	t.Helper()
	s, _ := v.AsString()
	x, err := jsjson.Parse([]byte(s), jsjson.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	o := x.(*jsjson.Object)
	mutate(o)
	return graph.String(string(jsjson.Marshal(o)))
}

func sigOf(t testing.TB, v graph.Value) []byte {
	t.Helper()
	var sig []byte
	rewrap(t, v, func(o *jsjson.Object) {
		s, _ := o.Get("~")
		sig, _ = decodeSig64(s.(string))
	})
	return sig
}

func withSig(t testing.TB, v graph.Value, sig string) graph.Value {
	return rewrap(t, v, func(o *jsjson.Object) { o.Set("~", sig) })
}

// Row 12: an unsigned write to an instance or user namespace.
func TestTableA12_UnsignedWrite(t *testing.T) {
	w := newWorld(t)
	for _, v := range []graph.Value{graph.String("tick"), graph.Number(1), graph.Null(), graph.String(`{":":1}`)} {
		got := w.putRaw(nil, w.soul("hb"), "beat", v, w.now())
		wantReason(t, got, "auth-required: unsigned")
	}
	user := genKey(t, keys.P256)
	got := w.putRaw(nil, "~"+user.Public().String(), "status", graph.String("online"), w.now())
	wantReason(t, got, "auth-required: Unverified data.")
	if w.stored(w.soul("hb"), "beat") || w.stored("~"+user.Public().String(), "status") {
		t.Fatal("unsigned write stored")
	}
}

// Row 13: a valid signature by key A on a write claiming author B.
func TestTableA13_SignerMismatch(t *testing.T) {
	w := newWorld(t)
	a := genKey(t, keys.Secp256k1)
	b := genKey(t, keys.Secp256k1)
	soul := w.soul("in/m1")
	st := w.now()
	v := w.sign(a, soul, "body", graph.String("hi"), st, w.cert(w.owner, b, RoleMessage))
	v = rewrap(t, v, func(o *jsjson.Object) { o.Set("*", b.Public().String()) })
	wantReason(t, w.putRaw(nil, soul, "body", v, st), "invalid: signer mismatch")

	// Claiming the owner (no "*") with someone else's signature.
	v = rewrap(t, w.sign(a, soul, "body", graph.String("hi"), st), func(o *jsjson.Object) {
		o.Keys, o.Values = o.Keys[:2], o.Values[:2] // drop "*"
	})
	wantReason(t, w.putRaw(nil, soul, "body", v, st), "invalid: signer mismatch")
	if w.stored(soul, "body") {
		t.Fatal("stored")
	}
}

// Row 14: a validly signed value re-posted under another field, soul,
// instance or state.
func TestTableA14_Shuffle(t *testing.T) {
	w := newWorld(t)
	other := newWorld(t)
	st := w.now()
	v := w.sign(w.owner, w.soul("hb"), "beat", graph.Number(7), st)
	if got := w.putRaw(nil, w.soul("hb"), "beat", v, st); got != "ok" {
		t.Fatalf("original: %s", got)
	}
	cases := []struct {
		name        string
		soul, field string
		state       float64
	}{
		{"other field", w.soul("hb"), "seq", st},
		{"other soul", w.soul("log/1"), "beat", st},
		{"other instance", InstancePrefix + other.id + "/hb", "beat", st},
		{"other state", w.soul("hb"), "beat", st + 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := w
			if tc.name == "other instance" {
				c = other
			}
			wantReason(t, c.putRaw(nil, tc.soul, tc.field, v, tc.state), "invalid: signer mismatch")
		})
	}
}

// Row 15: the exact replay of an accepted write, also after a restart.
func TestTableA15_Replay(t *testing.T) {
	w := newWorld(t)
	soul := w.soul("hb")
	st := w.now()
	v := w.sign(w.owner, soul, "beat", graph.Number(1), st)
	wantReason(t, w.putRaw(nil, soul, "beat", v, st), "ok")
	wantReason(t, w.putRaw(nil, soul, "beat", v, st), "duplicate: already stored")
	if w.c.Stats().Duplicate != 1 {
		t.Fatalf("stats %+v", w.c.Stats())
	}

	// After a restart: a durable store reopened under a new Checker.
	path := filepath.Join(t.TempDir(), "g.db")
	st1, err := graph.OpenBolt(path, graph.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c1, _ := New(Config{Clock: w.clk, Lookup: StoreLookup(st1)})
	diff := graph.Graph{}
	diff.Set(soul, "beat", graph.Field{Value: v, State: st})
	allowed, refused := c1.CheckPut(context.Background(), nil, diff)
	if len(refused) != 0 {
		t.Fatal(refused)
	}
	if _, err := st1.Merge(context.Background(), allowed); err != nil {
		t.Fatal(err)
	}
	st1.Close()
	st2, err := graph.OpenBolt(path, graph.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	c2, _ := New(Config{Clock: w.clk, Lookup: StoreLookup(st2)})
	allowed, refused = c2.CheckPut(context.Background(), nil, diff)
	if len(allowed) != 0 || len(refused) != 1 || refused[0].Err.Error() != "duplicate: already stored" {
		t.Fatalf("after restart: allowed %v refused %v", allowed, refused)
	}
}

// highS returns the high-S twin of a low-S 64-byte signature.
func highS(sig []byte, n *big.Int) []byte {
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(n, s)
	out := append([]byte(nil), sig[:32]...)
	return append(out, s.FillBytes(make([]byte, 32))...)
}

// Row 16: the high-S twin of a valid signature.
func TestTableA16_HighS(t *testing.T) {
	for _, curve := range []keys.Curve{keys.Secp256k1, keys.P256} {
		t.Run(curve.String(), func(t *testing.T) {
			w := newWorld(t)
			n := orderK1
			if curve == keys.P256 {
				n = orderP256
			}
			writer := genKey(t, curve)
			soul := w.soul("hb")
			st := w.now()
			v := w.sign(writer, soul, "beat", graph.Number(1), st, w.cert(w.owner, writer, RoleTick))
			twin := withSig(t, v, b64url(highS(sigOf(t, v), n)))
			wantReason(t, w.putRaw(nil, soul, "beat", twin, st), "invalid: non-canonical signature")
			wantReason(t, w.putRaw(nil, soul, "beat", v, st), "ok")
		})
	}
}

// Row 17: signatures in the wrong encoding or out of range.
func TestTableA17_SignatureEncoding(t *testing.T) {
	w := newWorld(t)
	soul := w.soul("hb")
	st := w.now()
	v := w.sign(w.owner, soul, "beat", graph.Number(1), st)
	sig := sigOf(t, v)
	zero := make([]byte, 32)
	nBytes := orderK1.FillBytes(make([]byte, 32))
	der := append([]byte{0x30, 0x44, 0x02, 0x20}, sig[:32]...)
	der = append(append(der, 0x02, 0x20), sig[32:]...)
	cases := map[string]string{
		"63 bytes":         b64url(sig[:63]),
		"65 bytes":         b64url(append(append([]byte{}, sig...), 0)),
		"DER":              b64url(der),
		"padded base64url": b64url(sig) + "==",
		"std base64":       "+" + b64url(sig)[1:],
		"r = 0":            b64url(append(append([]byte{}, zero...), sig[32:]...)),
		"s = 0":            b64url(append(append([]byte{}, sig[:32]...), zero...)),
		"r = n":            b64url(append(append([]byte{}, nBytes...), sig[32:]...)),
		"s = n":            b64url(append(append([]byte{}, sig[:32]...), nBytes...)),
		"empty":            "",
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			wantReason(t, w.putRaw(nil, soul, "beat", withSig(t, v, s), st), "invalid: signature encoding")
		})
	}
	t.Run("not a string", func(t *testing.T) {
		bad := rewrap(t, v, func(o *jsjson.Object) { o.Set("~", 5.0) })
		wantReason(t, w.putRaw(nil, soul, "beat", bad, st), "invalid: signature encoding")
	})
	if w.stored(soul, "beat") {
		t.Fatal("stored")
	}
}

// Row 18: public keys that do not parse.
func TestTableA18_PublicKey(t *testing.T) {
	w := newWorld(t)
	soul := w.soul("hb")
	st := w.now()
	writer := genKey(t, keys.Secp256k1)
	v := w.sign(writer, soul, "beat", graph.Number(1), st, w.cert(w.owner, writer, RoleTick))
	pub := writer.Public().String()
	p256 := genKey(t, keys.P256).Public().String()
	cases := map[string]string{
		"wrong prefix":       "k2:" + pub[3:],
		"wrong prefix byte":  "k1:B" + pub[4:],
		"wrong length":       pub[:len(pub)-1],
		"off the curve":      "k1:AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAH",
		"identity":           "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"p256 off the curve": p256[:44] + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"empty":              "",
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			bad := rewrap(t, v, func(o *jsjson.Object) { o.Set("*", p) })
			wantReason(t, w.putRaw(nil, soul, "beat", bad, st), "invalid: public key")
		})
	}
	t.Run("instance id", func(t *testing.T) {
		s := InstancePrefix + "k1:nope/hb"
		wantReason(t, w.putRaw(nil, s, "beat", w.sign(w.owner, s, "beat", graph.Number(1), st), st), "invalid: public key")
	})
	if w.stored(soul, "beat") {
		t.Fatal("stored")
	}
}

// Row 19: an id that is not the hash of the content. Gun's content-addressed
// souls are the case on the Gun wire: the field name must be the SHA-256 of
// the value.
func TestTableA19_IDMismatch(t *testing.T) {
	w := newWorld(t)
	const helloHash = "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=" // SHA-256("hello world")
	wantReason(t, w.putRaw(nil, "#", helloHash, graph.String("hello mars"), w.now()), "invalid: Data hash not same as hash!")
	wantReason(t, w.putRaw(nil, "msgs#", "x#"+helloHash, graph.String("hello"), w.now()), "invalid: Data hash not same as hash!")
	wantReason(t, w.putRaw(nil, "#", helloHash, graph.String("hello world"), w.now()), "ok")
	hexHash := "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
	wantReason(t, w.putRaw(nil, "#", hexHash, graph.String("hello world"), w.now()), "ok")
	if w.stored("#", "x#"+helloHash) {
		t.Fatal("stored")
	}
}

// Row 20: a tick signed by a key with no tick certificate.
func TestTableA20_TickWithoutCert(t *testing.T) {
	w := newWorld(t)
	k := genKey(t, keys.Secp256k1)
	wantReason(t, w.put(nil, k, "hb", "beat", graph.Number(1)), "restricted: not authorised to tick")
	wantReason(t, w.put(nil, k, "hb", "beat", graph.Number(1), w.cert(w.owner, k, RoleMessage)), "restricted: not authorised to tick")
	wantReason(t, w.put(nil, k, "log/1", "beat", graph.Number(1), w.cert(w.owner, k, RoleSnapshot, RoleAdmin)), "restricted: not authorised to tick")
	if err := w.c.Authorize(context.Background(), w.id, k.Public().String(), RoleTick, w.clk.Now()); err == nil ||
		err.Error() != "restricted: not authorised to tick" || !errors.Is(err, ErrRestricted) {
		t.Fatalf("Authorize: %v", err)
	}
	wantReason(t, w.put(nil, k, "hb", "beat", graph.Number(2), w.cert(w.owner, k, RoleTick)), "ok")
}

// Row 21: a certificate expired by the relay clock, with the write's state
// backdated inside the certificate's validity (gun's expiry bug).
func TestTableA21_ExpiredBackdated(t *testing.T) {
	w := newWorld(t)
	k := genKey(t, keys.Secp256k1)
	cert := w.cert(w.owner, k, RoleTick) // valid for an hour
	w.clk.Advance(2 * time.Hour)
	soul := w.soul("hb")
	back := float64(cert.Expiry.UnixMilli() - 1000)
	v := w.sign(k, soul, "beat", graph.Number(1), back, cert)
	wantReason(t, w.putRaw(nil, soul, "beat", v, back), "restricted: certificate expired")
	if w.stored(soul, "beat") {
		t.Fatal("stored")
	}
	// The SEA twin of this row is the vector cert_expired_backdated in
	// testdata/sea_vectors.json ("restricted: Certificate expired.").
}

// Row 22: certificates for another instance, of the wrong role, from an
// issuer who is not the owner, revoked, or in too long a chain.
func TestTableA22_CertificateProblems(t *testing.T) {
	w := newWorld(t)
	k := genKey(t, keys.Secp256k1)
	admin := genKey(t, keys.Secp256k1)
	admin2 := genKey(t, keys.Secp256k1)

	t.Run("other instance", func(t *testing.T) {
		other := newWorld(t)
		wantReason(t, w.put(nil, k, "hb", "beat", graph.Number(1), other.cert(other.owner, k, RoleTick)),
			"restricted: certificate for another instance")
	})
	t.Run("wrong action", func(t *testing.T) {
		wantReason(t, w.put(nil, k, "hb", "beat", graph.Number(1), w.cert(w.owner, k, RoleMessage)),
			"restricted: not authorised to tick")
	})
	t.Run("issuer not owner", func(t *testing.T) {
		wantReason(t, w.put(nil, k, "hb", "beat", graph.Number(1), w.cert(admin, k, RoleTick)),
			"restricted: certificate issuer is not the instance owner")
	})
	t.Run("forged issuer field", func(t *testing.T) {
		c := w.cert(admin, k, RoleTick)
		c.Issuer = w.id // claims the owner, signed by someone else
		wantReason(t, w.put(nil, k, "hb", "beat", graph.Number(1), c), "restricted: certificate signature does not verify")
	})
	t.Run("subject not writer", func(t *testing.T) {
		wantReason(t, w.put(nil, k, "hb", "beat", graph.Number(1), w.cert(w.owner, admin, RoleTick)),
			"restricted: certificate subject is not the writer")
	})
	t.Run("not yet valid", func(t *testing.T) {
		c, err := IssueCert(w.owner, Cert{Instance: w.id, Subject: k.Public().String(), Roles: []Role{RoleTick},
			NotBefore: w.clk.Now().Add(time.Minute), Expiry: w.clk.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		wantReason(t, w.put(nil, k, "hb", "beat", graph.Number(1), c), "restricted: certificate not yet valid")
	})
	t.Run("chain via admin", func(t *testing.T) {
		chain := []*Cert{w.cert(w.owner, admin, RoleAdmin), w.cert(admin, k, RoleTick)}
		wantReason(t, w.put(nil, k, "hb", "beat", graph.Number(2), chain...), "ok")
	})
	t.Run("intermediate lacks admin", func(t *testing.T) {
		chain := []*Cert{w.cert(w.owner, admin, RoleTick), w.cert(admin, k, RoleTick)}
		wantReason(t, w.put(nil, k, "hb", "beat", graph.Number(3), chain...), "restricted: certificate issuer lacks the admin role")
	})
	t.Run("broken chain", func(t *testing.T) {
		chain := []*Cert{w.cert(w.owner, admin, RoleAdmin), w.cert(admin2, k, RoleTick)}
		wantReason(t, w.put(nil, k, "hb", "beat", graph.Number(3), chain...), "restricted: certificate chain broken")
	})
	t.Run("chain too deep", func(t *testing.T) {
		admin3 := genKey(t, keys.Secp256k1)
		chain := []*Cert{
			w.cert(w.owner, admin, RoleAdmin), w.cert(admin, admin2, RoleAdmin),
			w.cert(admin2, admin3, RoleAdmin), w.cert(admin3, k, RoleTick),
		}
		wantReason(t, w.put(nil, k, "hb", "beat", graph.Number(3), chain...), "restricted: certificate chain too deep")
		wantReason(t, w.put(nil, k, "hb", "beat", graph.Number(3), chain[1:]...), "restricted: certificate issuer is not the instance owner")
		w3 := newWorld(t, func(c *Config) { c.MaxChainDepth = 4 })
		chain = []*Cert{
			w3.cert(w3.owner, admin, RoleAdmin), w3.cert(admin, admin2, RoleAdmin),
			w3.cert(admin2, admin3, RoleAdmin), w3.cert(admin3, k, RoleTick),
		}
		wantReason(t, w3.put(nil, k, "hb", "beat", graph.Number(3), chain...), "ok")
	})
	t.Run("revoked serial", func(t *testing.T) {
		c := w.cert(w.owner, k, RoleTick)
		wantReason(t, w.put(nil, k, "hb", "beat", graph.Number(10), c), "ok")
		wantReason(t, w.put(nil, w.owner, "revoked", c.Serial, graph.Number(w.now())), "ok")
		w.clk.Advance(time.Millisecond)
		wantReason(t, w.put(nil, k, "hb", "beat", graph.Number(11), c), "restricted: certificate revoked")
		// An admin's certificate revoked: the chain through it fails too.
		ca := w.cert(w.owner, admin, RoleAdmin)
		chain := []*Cert{ca, w.cert(admin, k, RoleTick)}
		wantReason(t, w.put(nil, k, "hb", "beat", graph.Number(12), chain...), "ok")
		wantReason(t, w.put(nil, w.owner, "revoked", ca.Serial, graph.Bool(true)), "ok")
		w.clk.Advance(time.Millisecond)
		wantReason(t, w.put(nil, k, "hb", "beat", graph.Number(13), chain...), "restricted: certificate revoked")
	})
}

// Row 25: login answers with the wrong challenge, a reused challenge,
// another relay's identity or a stale time.
func TestTableA25_LoginRefusals(t *testing.T) {
	w := newWorld(t)
	user := genKey(t, keys.Secp256k1)
	otherRelay := genKey(t, keys.Secp256k1).Public().String()

	type step struct {
		name string
		resp func(p *Peer) Response
		want string
	}
	respond := func(ch Challenge, at time.Time) Response {
		r, err := Respond(user, ch, at)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	fresh := func(p *Peer) Challenge {
		ch, err := w.c.Challenge(p)
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	steps := []step{
		{"wrong challenge", func(p *Peer) Response {
			ch := fresh(p)
			ch.Nonce[0] ^= 1
			return respond(ch, w.clk.Now())
		}, "auth-required: login: challenge mismatch"},
		{"reused challenge", func(p *Peer) Response {
			ch := fresh(p)
			r := respond(ch, w.clk.Now())
			if err := w.c.Login(p, r); err != nil {
				t.Fatalf("first use: %v", err)
			}
			return r
		}, "auth-required: login: no challenge pending (ask for one; each is good once)"},
		{"other relay", func(p *Peer) Response {
			ch := fresh(p)
			ch.Relay = otherRelay
			return respond(ch, w.clk.Now())
		}, "auth-required: login: response is for another relay"},
		{"other relay, relabelled", func(p *Peer) Response {
			ch := fresh(p)
			ch.Relay = otherRelay
			r := respond(ch, w.clk.Now())
			r.Relay = w.c.cfg.RelayID // signature still binds the other relay
			return r
		}, "auth-required: login: bad signature"},
		{"stale response time", func(p *Peer) Response {
			return respond(fresh(p), w.clk.Now().Add(-3*time.Minute))
		}, "auth-required: login: stale response time"},
		{"stale challenge", func(p *Peer) Response {
			ch := fresh(p)
			w.clk.Advance(3 * time.Minute)
			return respond(ch, w.clk.Now())
		}, "auth-required: login: challenge expired"},
		{"wrong key", func(p *Peer) Response {
			r := respond(fresh(p), w.clk.Now())
			r.Pub = genKey(t, keys.Secp256k1).Public().String()
			return r
		}, "auth-required: login: bad signature"},
		{"other connection's challenge", func(p *Peer) Response {
			fresh(p)
			return respond(fresh(NewPeer()), w.clk.Now())
		}, "auth-required: login: challenge mismatch"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			p := NewPeer()
			resp := s.resp(p)
			keysBefore := len(p.Keys())
			err := w.c.Login(p, resp)
			if err == nil {
				t.Fatal("login accepted")
			}
			wantReason(t, err.Error(), s.want)
			if !errors.Is(err, ErrAuthRequired) {
				t.Fatalf("%v is not ErrAuthRequired", err)
			}
			if len(p.Keys()) != keysBefore {
				t.Fatal("connection gained a key")
			}
		})
	}
	t.Run("strikes then close", func(t *testing.T) {
		p := NewPeer()
		for i := 1; i <= 3; i++ {
			err := w.c.Login(p, Response{Pub: user.Public().String()})
			if got := errors.Is(err, ErrTooManyStrikes); got != (i == 3) {
				t.Fatalf("strike %d: ErrTooManyStrikes = %v (%v)", i, got, err)
			}
			if p.Strikes() != i {
				t.Fatalf("strikes %d", p.Strikes())
			}
		}
		if len(p.Keys()) != 0 {
			t.Fatal("logged in")
		}
	})
	t.Run("good login", func(t *testing.T) {
		p := NewPeer()
		w.login(p, user)
		if !p.LoggedIn(user.Public().String()) {
			t.Fatal("not logged in")
		}
	})
}

// Row 26: a write to a private instance before login.
func TestTableA26_PrivateInstanceBeforeAuth(t *testing.T) {
	w := newWorld(t)
	member := genKey(t, keys.Secp256k1)
	stranger := genKey(t, keys.Secp256k1)
	wantReason(t, w.put(nil, w.owner, "", "private", graph.Bool(true)), "ok")
	wantReason(t, w.put(nil, w.owner, "members", member.Public().String(), graph.Bool(true)), "ok")
	ctx := context.Background()

	anon := NewPeer()
	soul := w.soul("in/m1")
	st := w.now()
	// Unsigned, and signed without a role: the not-logged-in connection
	// learns only that it must log in.
	wantReason(t, w.putRaw(anon, soul, "body", graph.String("hi"), st), "auth-required: private instance")
	wantReason(t, w.put(anon, stranger, "in/m1", "body", graph.String("hi")), "auth-required: private instance")
	if w.stored(soul, "body") {
		t.Fatal("stored")
	}
	if err := w.c.CheckGet(ctx, anon, soul); err == nil || err.Error() != "auth-required: private instance" {
		t.Fatalf("read before login: %v", err)
	}
	if err := w.c.CheckGet(ctx, anon, w.soul("")); !errors.Is(err, ErrAuthRequired) {
		t.Fatalf("read root before login: %v", err)
	}

	// A stranger who logs in is still not a member.
	sp := NewPeer()
	w.login(sp, stranger)
	if err := w.c.CheckGet(ctx, sp, soul); !errors.Is(err, ErrAuthRequired) {
		t.Fatalf("stranger read: %v", err)
	}

	// After login as a member: reads are served; writes are still judged by
	// their signatures, now with the precise reason.
	mp := NewPeer()
	w.login(mp, member)
	if err := w.c.CheckGet(ctx, mp, soul); err != nil {
		t.Fatalf("member read: %v", err)
	}
	wantReason(t, w.putRaw(mp, soul, "body", graph.String("hi"), st), "auth-required: unsigned")
	wantReason(t, w.put(mp, member, "in/m1", "body", graph.String("hi")), "restricted: not authorised to message")

	// Writes are judged by signature regardless of login: a message signed
	// under a valid certificate passes even from a connection that never
	// logged in (for example another relay forwarding it).
	wantReason(t, w.put(anon, member, "in/m1", "body", graph.String("hi"), w.cert(w.owner, member, RoleMessage)), "ok")

	// Public instances stay readable by anyone.
	pub := newWorld(t)
	if err := pub.c.CheckGet(ctx, anon, pub.soul("hb")); err != nil {
		t.Fatalf("public read: %v", err)
	}
}

// An exact replay of a plain soul's field (open mode) is allowed, as a
// stock relay allows it: no signature to spare, HAM makes it a no-op, and
// gun.js peers re-put what they hold on every reconnect. Signed souls keep
// the duplicate refusal (TestTableA15_Replay).
func TestPlainReplayIsAllowed(t *testing.T) {
	lookups := 0
	w := newWorld(t, func(c *Config) {
		c.Mode = Open
		inner := c.Lookup
		c.Lookup = func(ctx context.Context, soul, field string) (graph.Field, bool, error) {
			lookups++
			return inner(ctx, soul, field)
		}
	})
	st := w.now()
	for range 2 {
		wantReason(t, w.putRaw(nil, "app/settings", "theme", graph.String("dark"), st), "ok")
	}
	if lookups != 0 {
		t.Fatalf("%d store reads to judge a plain soul, want 0", lookups)
	}
	s := newWorld(t, func(c *Config) { c.Mode = Secure })
	wantReason(t, s.putRaw(nil, "app/settings", "theme", graph.String("dark"), st), "restricted: Soul missing public key at 'theme'.")
}
