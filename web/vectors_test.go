package web_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/internal/nodetest"
	"github.com/krestianstvo/luminary/keys"
)

var update = flag.Bool("update", false, "rewrite web/testdata/vectors.json from the Go packages")

// vectorFile is the file the JavaScript tests read (web/test/crypto.test.mjs
// and protocol.test.mjs).
const vectorFile = "testdata/vectors.json"

type sigVector struct {
	Name       string   `json:"name"`
	Label      string   `json:"label"`
	PartsHex   []string `json:"parts_hex"`
	MessageHex string   `json:"message_hex"`
	SHA256Hex  string   `json:"sha256_hex"`
	Pub        string   `json:"pub"`
	Priv       string   `json:"priv,omitempty"`
	SigHex     string   `json:"sig_hex"`
	Valid      bool     `json:"valid"`
}

type vectors struct {
	Note       string      `json:"note"`
	Signatures []sigVector `json:"signatures"`
	Heartbeat  hbVectors   `json:"heartbeat"`
	Wrappers   []wrapVec   `json:"wrappers"`
	Inbox      inboxVec    `json:"inbox"`
	Certs      certVectors `json:"certs"`
}

// inboxVec is a message submitted through the graph: the field values of
// heartbeat.InboxPuts, as JSON, in order (the self-authenticating inbox
// format that auth.Config.Inbox judges; heartbeat.InboxMessage reads it).
type inboxVec struct {
	Instance   string            `json:"instance"`
	Soul       string            `json:"soul"`
	AuthorPriv string            `json:"author_priv"`
	TS         int64             `json:"ts"`
	Nonce      string            `json:"nonce"`
	Payload    string            `json:"payload"`
	State      float64           `json:"state"`
	Fields     *orderedStringMap `json:"fields"`
}

// orderedStringMap marshals as a JSON object in insertion order; values are
// JSON texts.
type orderedStringMap struct {
	keys []string
	vals map[string]string
}

func (m *orderedStringMap) set(k, v string) {
	if m.vals == nil {
		m.vals = map[string]string{}
	}
	m.keys = append(m.keys, k)
	m.vals[k] = v
}

func (m *orderedStringMap) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range m.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kj, _ := json.Marshal(k)
		b.Write(kj)
		b.WriteByte(':')
		b.WriteString(m.vals[k]) // already JSON
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// hbVectors is a short stream made by package heartbeat's Sequencer and
// SignRound: the JSON texts exactly as Go encodes them.
type hbVectors struct {
	Instance string `json:"instance"`
	Signer   string `json:"signer"`
	// Entries are heartbeat.Entry JSON texts, seq 1, 2, ...
	Entries []string `json:"entries"`
	// Ticks are heartbeat.Tick JSON texts of this instance, in order, with
	// the seq each follows and its time in integer ms
	// (floor((state-start)*rate)).
	Ticks []tickVec `json:"ticks"`
	// Round holds the ticks of one round over five instances (odd count:
	// the last leaf is promoted), to test Merkle paths.
	Round []string `json:"round"`
	// Messages are heartbeat.Message JSON texts; for those with author_priv
	// the JavaScript signer must produce the same text byte for byte.
	Messages []msgVec `json:"messages"`
	// Bad are tampered texts that must be refused.
	Bad []badVec `json:"bad"`
}

type tickVec struct {
	JSON   string `json:"json"`
	TimeMs int64  `json:"time_ms"`
}

type msgVec struct {
	JSON       string `json:"json"`
	AuthorPriv string `json:"author_priv"`
	ID         string `json:"id"`
}

type badVec struct {
	What string `json:"what"` // "entry" or "tick"
	Why  string `json:"why"`
	JSON string `json:"json"`
}

// wrapVec is a field value signed by auth.SignField.
type wrapVec struct {
	Name       string          `json:"name"`
	Instance   string          `json:"instance"`
	Soul       string          `json:"soul"`
	Field      string          `json:"field"`
	Value      json.RawMessage `json:"value"`
	State      float64         `json:"state"`
	WriterPriv string          `json:"writer_priv"`
	Chain      json.RawMessage `json:"chain,omitempty"`
	Wrapped    string          `json:"wrapped"`
}

// testKey derives a fixed private key from a name, so the file is the same
// on every run (signatures are RFC 6979, also deterministic).
func testKey(t *testing.T, c keys.Curve, name string) *keys.Private {
	t.Helper()
	d := sha256.Sum256([]byte("luminary web test vector key " + name))
	text := base64.RawURLEncoding.EncodeToString(d[:])
	if c == keys.Secp256k1 {
		text = "k1priv:" + text
	}
	k, err := keys.ParsePrivate(text)
	if err != nil {
		t.Fatalf("test key %s: %v", name, err)
	}
	return k
}

func hexParts(parts [][]byte) []string {
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = hex.EncodeToString(p)
	}
	return out
}

func makeVectors(t *testing.T) vectors {
	t.Helper()
	var vs vectors
	vs.Note = "Generated by `go test ./web -run TestVectors -update` with the Go package keys; see README.md here."
	add := func(name string, k *keys.Private, label string, parts [][]byte, mutate func(sig []byte) []byte, valid bool, withPriv bool) {
		msg := keys.Message(label, parts...)
		sig, err := k.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		if mutate != nil {
			sig = mutate(bytes.Clone(sig))
		}
		if got := k.Public().Verify(msg, sig); got != valid {
			t.Fatalf("vector %s: Go Verify = %v, want %v", name, got, valid)
		}
		h := sha256.Sum256(msg)
		v := sigVector{
			Name: name, Label: label, PartsHex: hexParts(parts),
			MessageHex: hex.EncodeToString(msg), SHA256Hex: hex.EncodeToString(h[:]),
			Pub: k.Public().String(), SigHex: hex.EncodeToString(sig), Valid: valid,
		}
		if withPriv {
			v.Priv = k.Encode()
		}
		vs.Signatures = append(vs.Signatures, v)
	}
	k1 := testKey(t, keys.Secp256k1, "alice")
	p := testKey(t, keys.P256, "bob")
	parts := [][]byte{[]byte("demo"), []byte(`{"t":"drag","s":1,"x":10,"y":20}`), {0, 1, 2, 255}}
	add("k1 valid", k1, "in", parts, nil, true, true)
	add("k1 empty parts", k1, "tick", nil, nil, true, true)
	add("k1 unicode part", k1, "in", [][]byte{[]byte("мир ✓")}, nil, true, true)
	add("k1 flipped bit", k1, "in", parts, func(s []byte) []byte { s[10] ^= 1; return s }, false, false)
	add("k1 high-S twin", k1, "in", parts, highS(secp256k1N), false, false)
	add("p256 valid", p, "in", parts, nil, true, false)
	add("p256 high-S twin", p, "in", parts, highS(p256N), false, false)
	vs.Heartbeat = makeHeartbeat(t)
	vs.Wrappers = makeWrappers(t)
	vs.Inbox = makeInbox(t)
	vs.Certs = makeCerts(t)
	return vs
}

// wall is the fixed wall clock of the vector stream.
var wall = time.UnixMilli(1795666825781)

func makeHeartbeat(t *testing.T) hbVectors {
	t.Helper()
	owner := testKey(t, keys.Secp256k1, "owner")
	alice := testKey(t, keys.Secp256k1, "alice")
	signer := heartbeat.KeySigner(owner)
	inst := owner.Public().String()
	hv := hbVectors{Instance: inst, Signer: signer.Public()}
	seq, genesis := heartbeat.NewSequencer(heartbeat.TermStart{
		Meta:   heartbeat.Meta{Instance: inst, Name: "demo", Rate: 1, TPS: 20, Created: wall.UnixMilli()},
		Holder: inst, Epoch: 1, Wall: wall, Elapsed: 0,
	})
	meta := seq.Meta()
	entries := []heartbeat.Entry{genesis}
	var ticks []heartbeat.Tick
	tick := func(el time.Duration) {
		rec := seq.Tick(el)
		ts, err := heartbeat.SignRound(signer, []heartbeat.TickRecord{rec})
		if err != nil {
			t.Fatal(err)
		}
		ticks = append(ticks, ts[0])
	}
	msg := func(el time.Duration, nonce, payload string) {
		m := heartbeat.Message{Instance: inst, TS: wall.UnixMilli() + el.Milliseconds(), Nonce: nonce, Payload: payload}
		if err := m.Sign(heartbeat.KeySigner(alice)); err != nil {
			t.Fatal(err)
		}
		hv.Messages = append(hv.Messages, msgVec{JSON: string(m.AppendJSON(nil)), AuthorPriv: alice.Encode(), ID: m.ID().String()})
		entries = append(entries, seq.Append(heartbeat.Entry{Kind: heartbeat.KindMessage, Author: m.Author, TS: m.TS, Nonce: m.Nonce, Payload: m.Payload, Sig: m.Sig}, el))
	}
	ms := time.Millisecond
	tick(50 * ms)
	entries = append(entries, seq.Append(heartbeat.Entry{Kind: heartbeat.KindJoin, Author: alice.Public().String()}, 61*ms))
	msg(73*ms, "n1", `{"t":"drag","s":0,"x":100,"y":120}`)
	tick(100 * ms)
	tick(150 * ms)
	msg(171*ms, "", `{"t":"drop","s":0}`)
	msg(172*ms, "n3", "not json ✓")
	tick(200 * ms)
	entries = append(entries, seq.Append(heartbeat.Entry{Kind: heartbeat.KindLeave, Author: alice.Public().String()}, 230*ms))
	tick(250 * ms)
	for _, e := range entries {
		hv.Entries = append(hv.Entries, string(e.AppendJSON(nil)))
	}
	for _, tk := range ticks {
		hv.Ticks = append(hv.Ticks, tickVec{JSON: string(tk.AppendJSON(nil)), TimeMs: int64(math.Floor((tk.State - meta.Start) * meta.Rate))})
	}
	// One round over five instances.
	var recs []heartbeat.TickRecord
	for i := range 5 {
		k := testKey(t, keys.Secp256k1, "instance "+strconv.Itoa(i))
		recs = append(recs, heartbeat.TickRecord{
			Instance: k.Public().String(), Epoch: 3, N: uint64(10 + i), Seq: uint64(i), State: meta.Start + 1000 + float64(i),
			Start: meta.Start, Rate: 0.5,
		})
	}
	round, err := heartbeat.SignRound(signer, recs)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range round {
		if err := heartbeat.VerifyTick(&tk, heartbeat.KeyVerifier(nil), nil); err != nil {
			t.Fatal(err)
		}
		hv.Round = append(hv.Round, string(tk.AppendJSON(nil)))
	}
	// Tampered copies.
	bad := func(what, why, text string) {
		if slices.Contains(hv.Entries, text) || slices.ContainsFunc(hv.Ticks, func(v tickVec) bool { return v.JSON == text }) {
			t.Fatalf("bad vector %q is not tampered", why)
		}
		hv.Bad = append(hv.Bad, badVec{What: what, Why: why, JSON: text})
	}
	e2 := hv.Entries[2]
	bad("entry", "payload changed", strings.Replace(e2, `\"x\":100`, `\"x\":101`, 1))
	bad("entry", "seq changed", strings.Replace(e2, `"seq":3`, `"seq":4`, 1))
	bad("entry", "unknown member", strings.Replace(e2, `{"instance"`, `{"extra":1,"instance"`, 1))
	sigged := entries[2]
	sigged.Sig = bytes.Clone(sigged.Sig)
	sigged.Sig[5] ^= 1
	bad("entry", "author signature broken (hash recomputed)", string(sigged.AppendJSON(nil)))
	t0 := ticks[1]
	t0.Proof.Sig = bytes.Clone(t0.Proof.Sig)
	t0.Proof.Sig[7] ^= 1
	bad("tick", "round signature broken", string(t0.AppendJSON(nil)))
	t1 := round[1]
	t1.Proof.Path = slices.Clone(t1.Proof.Path)
	t1.Proof.Path[0][0] ^= 1
	bad("tick", "merkle path broken", string(t1.AppendJSON(nil)))
	t2 := ticks[2]
	t2.N++
	bad("tick", "n changed", string(t2.AppendJSON(nil)))
	return hv
}

func makeInbox(t *testing.T) inboxVec {
	t.Helper()
	owner := testKey(t, keys.Secp256k1, "owner")
	alice := testKey(t, keys.Secp256k1, "alice")
	inst := owner.Public().String()
	m := heartbeat.Message{Instance: inst, TS: wall.UnixMilli(), Nonce: "tab.7", Payload: `{"t":"drag","s":3,"x":1,"y":2}`}
	if err := m.Sign(heartbeat.KeySigner(alice)); err != nil {
		t.Fatal(err)
	}
	state := float64(wall.UnixMilli()) + 0.5
	iv := inboxVec{Instance: inst, Soul: heartbeat.InboxSoul(inst, m.ID()), AuthorPriv: alice.Encode(), TS: m.TS,
		Nonce: m.Nonce, Payload: m.Payload, State: state, Fields: &orderedStringMap{}}
	fields := map[string]any{}
	for _, p := range heartbeat.InboxPuts(&m, state) {
		if p.Soul != iv.Soul || p.State != state {
			t.Fatalf("inbox put %+v", p)
		}
		v, err := graph.ValueOf(p.Value)
		if err != nil {
			t.Fatal(err)
		}
		iv.Fields.set(p.Field, string(v.AppendJSON(nil)))
		fields[p.Field] = p.Value
	}
	if _, err := heartbeat.InboxMessage(iv.Soul, fields, heartbeat.KeyVerifier(nil)); err != nil {
		t.Fatalf("heartbeat does not read its own inbox puts: %v", err)
	}
	return iv
}

func aliceCert(t *testing.T, owner, alice *keys.Private) *auth.Cert {
	t.Helper()
	cert, err := auth.IssueCert(owner, auth.Cert{
		Instance: owner.Public().String(), Subject: alice.Public().String(), Roles: []auth.Role{auth.RoleMessage},
		NotBefore: wall, Expiry: wall.Add(24 * time.Hour), Serial: "c2VyaWFs",
	})
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func makeWrappers(t *testing.T) []wrapVec {
	t.Helper()
	owner := testKey(t, keys.Secp256k1, "owner")
	alice := testKey(t, keys.Secp256k1, "alice")
	inst := owner.Public().String()
	cert := aliceCert(t, owner, alice)
	certJSON, err := json.Marshal(cert)
	if err != nil {
		t.Fatal(err)
	}
	var out []wrapVec
	add := func(name string, k *keys.Private, soul, field string, v graph.Value, state float64, chain ...*auth.Cert) {
		w, err := auth.SignField(k, soul, field, v, state, chain...)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := w.AsString()
		wv := wrapVec{Name: name, Instance: inst, Soul: soul, Field: field, Value: v.AppendJSON(nil), State: state, WriterPriv: k.Encode(), Wrapped: s}
		if len(chain) > 0 {
			wv.Chain = json.RawMessage("[" + string(certJSON) + "]")
		}
		out = append(out, wv)
	}
	msgSoul := "lum/" + inst + "/in/abc"
	add("owner string", owner, "lum/"+inst+"/hb", "tick", graph.String(`{"n":1}`), 1795666825781.5)
	add("writer with chain", alice, msgSoul, "msg", graph.String(`{"payload":"x ✓"}`), 1795666825999)
	add("number value", alice, msgSoul, "n", graph.Number(0.1), 1795666826000.25, cert)
	return out
}

var (
	secp256k1N, _ = new(big.Int).SetString("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16)
	p256N, _      = new(big.Int).SetString("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", 16)
)

// highS replaces s by n−s: the same signature in its malleable twin form.
func highS(n *big.Int) func([]byte) []byte {
	return func(sig []byte) []byte {
		s := new(big.Int).SetBytes(sig[32:])
		new(big.Int).Sub(n, s).FillBytes(sig[32:])
		return sig
	}
}

// TestVectors checks that testdata/vectors.json is what the Go packages
// produce today (run with -update to rewrite it), so the JavaScript tests
// that read it test against the real Go encoding.
func TestVectors(t *testing.T) {
	got, err := json.MarshalIndent(makeVectors(t), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.WriteFile(vectorFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(vectorFile)
	if err != nil {
		t.Fatalf("%v (run go test ./web -run TestVectors -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run go test ./web -run TestVectors -update", vectorFile)
	}
}

// TestJSSignaturesVerifyInGo signs with web/src/crypto.js in node and checks
// every signature with the Go package keys: the direction the relay relies on.
func TestJSSignaturesVerifyInGo(t *testing.T) {
	nodetest.Require(t)
	out, err := nodetest.Run(t, time.Minute, filepath.Join("test", "jssign.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	var got []struct {
		Pub      string   `json:"pub"`
		Label    string   `json:"label"`
		PartsHex []string `json:"parts_hex"`
		SigHex   string   `json:"sig_hex"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &got); err != nil {
		t.Fatalf("jssign output: %v\n%s", err, out)
	}
	if len(got) < 10 {
		t.Fatalf("jssign made %d signatures, want at least 10", len(got))
	}
	for i, s := range got {
		pub, err := keys.ParsePublic(s.Pub)
		if err != nil {
			t.Fatalf("signature %d: %v", i, err)
		}
		parts := make([][]byte, len(s.PartsHex))
		for j, h := range s.PartsHex {
			if parts[j], err = hex.DecodeString(h); err != nil {
				t.Fatal(err)
			}
		}
		sig, err := hex.DecodeString(s.SigHex)
		if err != nil {
			t.Fatal(err)
		}
		if !pub.Verify(keys.Message(s.Label, parts...), sig) {
			t.Errorf("signature %d by %s does not verify in Go", i, s.Pub)
		}
	}
}

// certVectors are a world's published certificates (the wrapped values of
// lum/<I>/certs, as stored), its revocations, and who may tick at what
// time according to package auth: the browser's CertBook must agree.
type certVectors struct {
	Instance string            `json:"instance"`
	Certs    map[string]string `json:"certs"`   // field (serial) → wrapped value
	Revoked  []string          `json:"revoked"` // serials at lum/<I>/revoked
	Checks   []certCheck       `json:"checks"`
}

type certCheck struct {
	Name string `json:"name"`
	Key  string `json:"key"`
	Role string `json:"role"`
	At   int64  `json:"at"` // ms
	OK   bool   `json:"ok"`
}

func makeCerts(t *testing.T) certVectors {
	t.Helper()
	ctx := t.Context()
	owner := testKey(t, keys.Secp256k1, "owner")
	admin := testKey(t, keys.P256, "cert-admin")
	direct := testKey(t, keys.Secp256k1, "cert-direct")
	viaAdmin := testKey(t, keys.P256, "cert-via-admin")
	msgOnly := testKey(t, keys.Secp256k1, "cert-message-only")
	expired := testKey(t, keys.Secp256k1, "cert-expired")
	later := testKey(t, keys.Secp256k1, "cert-not-yet")
	revoked := testKey(t, keys.Secp256k1, "cert-revoked")
	forged := testKey(t, keys.Secp256k1, "cert-forged")
	selfMade := testKey(t, keys.Secp256k1, "cert-self-made")
	deep := []*keys.Private{testKey(t, keys.Secp256k1, "cert-deep-1"), testKey(t, keys.Secp256k1, "cert-deep-2"), testKey(t, keys.Secp256k1, "cert-deep-3")}
	stranger := testKey(t, keys.Secp256k1, "cert-stranger")
	inst := owner.Public().String()
	day := 24 * time.Hour
	issue := func(by *keys.Private, subject string, roles []auth.Role, nb, exp time.Time, serial string) *auth.Cert {
		c, err := auth.IssueCert(by, auth.Cert{Instance: inst, Subject: subject, Roles: roles, NotBefore: nb, Expiry: exp, Serial: serial})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tick := []auth.Role{auth.RoleTick}
	cAdmin := issue(owner, admin.Public().String(), []auth.Role{auth.RoleAdmin}, wall.Add(-day), wall.Add(day), "admin")
	cDeep1 := issue(owner, deep[0].Public().String(), []auth.Role{auth.RoleAdmin}, time.Time{}, wall.Add(day), "deep1")
	cDeep2 := issue(deep[0], deep[1].Public().String(), []auth.Role{auth.RoleAdmin}, time.Time{}, wall.Add(day), "deep2")
	type pub struct {
		by    *keys.Private
		cert  *auth.Cert
		chain []*auth.Cert
	}
	forgedCert := issue(owner, forged.Public().String(), tick, time.Time{}, wall.Add(day), "forged")
	forgedCert.Sig = slices.Clone(forgedCert.Sig)
	forgedCert.Sig[5] ^= 1
	pubs := []pub{
		{owner, cAdmin, nil},
		{owner, issue(owner, direct.Public().String(), []auth.Role{auth.RoleMessage, auth.RoleTick}, wall.Add(-time.Hour), wall.Add(day), "direct"), nil},
		{admin, issue(admin, viaAdmin.Public().String(), tick, time.Time{}, wall.Add(day), "via-admin"), []*auth.Cert{cAdmin}},
		{owner, issue(owner, msgOnly.Public().String(), []auth.Role{auth.RoleMessage}, time.Time{}, wall.Add(day), "msg-only"), nil},
		{owner, issue(owner, expired.Public().String(), tick, wall.Add(-2*day), wall.Add(-day), "expired"), nil},
		{owner, issue(owner, later.Public().String(), tick, wall.Add(day), wall.Add(2*day), "not-yet"), nil},
		{owner, issue(owner, revoked.Public().String(), tick, time.Time{}, wall.Add(day), "revoked"), nil},
		{owner, forgedCert, nil},
		{owner, issue(owner, auth.AnySubject, []auth.Role{auth.RoleMessage}, time.Time{}, wall.Add(day), "anyone"), nil},
		{owner, cDeep1, nil},
		{deep[0], cDeep2, []*auth.Cert{cDeep1}},
		{deep[1], issue(deep[1], deep[2].Public().String(), tick, time.Time{}, wall.Add(day), "deep3"), []*auth.Cert{cDeep1, cDeep2}},
		// Published by its own subject, who is nobody's admin: no chain.
		{selfMade, issue(selfMade, selfMade.Public().String(), tick, time.Time{}, wall.Add(day), "self-made"), nil},
	}
	certsSoul := heartbeat.InstanceSoul(inst) + "/certs"
	revokedSoul := heartbeat.InstanceSoul(inst) + "/revoked"
	cv := certVectors{Instance: inst, Certs: map[string]string{}, Revoked: []string{"revoked"}}
	node := graph.NewNode(certsSoul)
	state := float64(wall.UnixMilli())
	for _, p := range pubs {
		js, err := json.Marshal(p.cert)
		if err != nil {
			t.Fatal(err)
		}
		// The forged and self-made certificates are stored as a relay in
		// open mode would pass them on: wrapped by their publisher.
		w, err := auth.SignField(p.by, certsSoul, p.cert.Serial, graph.String(string(js)), state, p.chain...)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := w.AsString()
		cv.Certs[p.cert.Serial] = s
		node.Fields[p.cert.Serial] = graph.Field{Value: w, State: state}
	}
	// package auth's verdicts: certificates registered from the certs node
	// as the Go client registers them, revocations looked up.
	revokedSerials := map[string]bool{"revoked": true}
	checker, err := auth.New(auth.Config{Mode: auth.Open, Clock: clock.NewFake(wall),
		Lookup: func(_ context.Context, soul, field string) (graph.Field, bool, error) {
			if soul == revokedSoul && revokedSerials[field] {
				return graph.Field{Value: graph.Bool(true), State: state}, true, nil
			}
			return graph.Field{}, false, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	checker.CheckPut(ctx, nil, graph.Graph{certsSoul: node})
	check := func(name string, k string, role auth.Role, at time.Time) {
		err := checker.Authorize(ctx, inst, k, role, at)
		cv.Checks = append(cv.Checks, certCheck{Name: name, Key: k, Role: string(role), At: at.UnixMilli(), OK: err == nil})
	}
	check("owner", inst, auth.RoleTick, wall)
	check("direct tick certificate", direct.Public().String(), auth.RoleTick, wall)
	check("direct, before notBefore", direct.Public().String(), auth.RoleTick, wall.Add(-2*time.Hour))
	check("direct, after expiry", direct.Public().String(), auth.RoleTick, wall.Add(2*day))
	check("through an admin", viaAdmin.Public().String(), auth.RoleTick, wall)
	check("admin holds no tick role", admin.Public().String(), auth.RoleTick, wall)
	check("message role only", msgOnly.Public().String(), auth.RoleTick, wall)
	check("message role", msgOnly.Public().String(), auth.RoleMessage, wall)
	check("expired", expired.Public().String(), auth.RoleTick, wall)
	check("not yet valid", later.Public().String(), auth.RoleTick, wall)
	check("not yet valid, later", later.Public().String(), auth.RoleTick, wall.Add(day+time.Hour))
	check("revoked", revoked.Public().String(), auth.RoleTick, wall)
	check("forged signature", forged.Public().String(), auth.RoleTick, wall)
	check("anyone may send messages", stranger.Public().String(), auth.RoleMessage, wall)
	check("anyone may not tick", stranger.Public().String(), auth.RoleTick, wall)
	check("chain of three", deep[2].Public().String(), auth.RoleTick, wall)
	check("self-made", selfMade.Public().String(), auth.RoleTick, wall)
	for _, c := range cv.Checks {
		t.Logf("cert check %-28s ok=%v", c.Name, c.OK)
	}
	return cv
}
