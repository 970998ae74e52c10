package auth

import (
	"context"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/keys"
)

// t0 is the relay clock at the start of every instance test.
var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// world is a relay in miniature: a Checker over an in-memory graph with a
// fake clock, and an instance owned by owner.
type world struct {
	t     testing.TB
	clk   *clock.Fake
	store *graph.MemoryStore
	c     *Checker
	relay *keys.Private
	owner *keys.Private
	id    string     // the instance id: owner's public key text
	refMu sync.Mutex // OnRefuse runs on the goroutines of concurrent checks
	refs  []string
}

func newWorld(t testing.TB, mutate ...func(*Config)) *world {
	t.Helper()
	w := &world{t: t, clk: clock.NewFake(t0), store: graph.NewMemoryStore()}
	w.relay = genKey(t, keys.Secp256k1)
	w.owner = genKey(t, keys.Secp256k1)
	w.id = w.owner.Public().String()
	cfg := Config{
		Clock:   w.clk,
		RelayID: w.relay.Public().String(),
		Lookup:  StoreLookup(w.store),
		OnRefuse: func(prefix, reason string) {
			w.refMu.Lock()
			w.refs = append(w.refs, prefix)
			w.refMu.Unlock()
		},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.c = c
	return w
}

func genKey(t testing.TB, c keys.Curve) *keys.Private {
	t.Helper()
	k, err := keys.Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// now returns the relay clock in ms, the state an honest writer would use.
func (w *world) now() float64 { return float64(w.clk.Now().UnixMilli()) }

// soul returns lum/<id>/<path> (or the root for path "").
func (w *world) soul(path string) string {
	if path == "" {
		return InstancePrefix + w.id
	}
	return InstancePrefix + w.id + "/" + path
}

// sign wraps a value signed by priv.
func (w *world) sign(priv *keys.Private, soul, field string, v graph.Value, state float64, chain ...*Cert) graph.Value {
	w.t.Helper()
	s, err := SignField(priv, soul, field, v, state, chain...)
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// putRaw judges one field, merges it if allowed and returns "ok" or the reason.
func (w *world) putRaw(peer *Peer, soul, field string, v graph.Value, state float64) string {
	w.t.Helper()
	diff := graph.Graph{}
	diff.Set(soul, field, graph.Field{Value: v, State: state})
	return w.apply(peer, diff)[0]
}

// apply judges diff, merges what is allowed, and returns one outcome per
// refused field (or ["ok"]).
func (w *world) apply(peer *Peer, diff graph.Graph) []string {
	w.t.Helper()
	allowed, refused := w.c.CheckPut(context.Background(), peer, diff)
	if len(allowed) > 0 {
		if _, err := w.store.Merge(context.Background(), allowed); err != nil {
			w.t.Fatal(err)
		}
	}
	if len(refused) == 0 {
		return []string{"ok"}
	}
	var out []string
	for _, r := range refused {
		if allowed[r.Soul] != nil {
			if _, ok := allowed[r.Soul].Fields[r.Field]; ok {
				w.t.Fatalf("%s.%s both allowed and refused", r.Soul, r.Field)
			}
		}
		out = append(out, r.Err.Error())
	}
	return out
}

// put signs and judges one field.
func (w *world) put(peer *Peer, priv *keys.Private, path, field string, v graph.Value, chain ...*Cert) string {
	w.t.Helper()
	soul := w.soul(path)
	st := w.now()
	return w.putRaw(peer, soul, field, w.sign(priv, soul, field, v, st, chain...), st)
}

// cert issues a certificate for the world's instance valid for an hour.
func (w *world) cert(issuer *keys.Private, subject *keys.Private, roles ...Role) *Cert {
	w.t.Helper()
	c, err := IssueCert(issuer, Cert{
		Instance: w.id, Subject: subject.Public().String(), Roles: roles,
		NotBefore: w.clk.Now().Add(-time.Minute), Expiry: w.clk.Now().Add(time.Hour),
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// stored reports whether the graph holds soul.field.
func (w *world) stored(soul, field string) bool {
	_, err := w.store.GetField(context.Background(), soul, field)
	return err == nil
}

// login logs peer in with priv.
func (w *world) login(peer *Peer, priv *keys.Private) {
	w.t.Helper()
	ch, err := w.c.Challenge(peer)
	if err != nil {
		w.t.Fatal(err)
	}
	resp, err := Respond(priv, ch, w.clk.Now())
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.c.Login(peer, resp); err != nil {
		w.t.Fatal(err)
	}
}

func b64std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func wantPrefix(t testing.TB, got, prefix string) {
	t.Helper()
	if !strings.HasPrefix(got, prefix+" ") {
		t.Fatalf("got %q, want prefix %q", got, prefix)
	}
}

func wantReason(t testing.TB, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// decodeSEASig decodes SEA's signature text: padded standard base64 of 64 bytes.
func decodeSEASig(s string) ([]byte, bool) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	return b, err == nil && len(b) == keys.SignatureSize
}
