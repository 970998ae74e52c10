package api_test

// Interop tests of package auth wired into the relay: real gun.js clients
// (npm gun 0.2020.1241, each in its own node process, scripts in
// auth/testdata/node) against an in-process relay whose Guard is an
// auth.Checker in secure mode, and, for contrast, against a stock gun.js
// relay. See issue 4, "Verify before merge".

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/krestianstvo/luminary/api"
	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/internal/nodetest"
	"github.com/krestianstvo/luminary/keys"
)

// authGuard adapts an auth.Checker to api.Guard; each connection's
// auth.Peer lives in PeerInfo.Values.
type authGuard struct{ c *auth.Checker }

type authPeerKey struct{}

func authPeer(p *api.PeerInfo) *auth.Peer {
	v, _ := p.Values.LoadOrStore(authPeerKey{}, auth.NewPeer())
	return v.(*auth.Peer)
}

func (g authGuard) CheckPut(ctx context.Context, p *api.PeerInfo, diff graph.Graph) (graph.Graph, []graph.FieldError) {
	return g.c.CheckPut(ctx, authPeer(p), diff)
}

// Preverify lets the relay verify signatures on its workers
// (api.Preverifier), as the relay's own guard does.
func (g authGuard) Preverify(ctx context.Context, _ *api.PeerInfo, diff graph.Graph) context.Context {
	return g.c.Preverify(ctx, diff)
}

func (g authGuard) CheckGet(ctx context.Context, p *api.PeerInfo, soul string) error {
	return g.c.CheckGet(ctx, authPeer(p), soul)
}

// authHandler serves the "auth" login messages.
func authHandler(c *auth.Checker) api.Handler {
	return func(_ context.Context, p *api.PeerInfo, m *api.Message) ([]byte, error) {
		body, _ := m.Member(auth.AuthMember)
		reply := c.HandleAuth(authPeer(p), body)
		var id [9]byte
		_, _ = rand.Read(id[:])
		frame := reply.AppendJSON(nil, base64.RawURLEncoding.EncodeToString(id[:]), m.ID)
		if reply.Close {
			p.Send(frame)
			p.Close(1008, "too many failed logins")
			return nil, nil
		}
		return frame, nil
	}
}

// authRelay is an in-process relay on 127.0.0.1 with an auth.Checker.
type authRelay struct {
	url     string // http://127.0.0.1:port/gun, as gun.js peers are configured
	checker *auth.Checker
	db      *graph.DB
	relay   *keys.Private
}

func startAuthRelay(t *testing.T, mode auth.Mode) *authRelay {
	t.Helper()
	store := graph.NewMemoryStore()
	db := graph.NewDB(store, graph.DBConfig{Clock: clock.System(), MaxFuture: 30 * time.Second})
	relay, err := keys.Generate(keys.Secp256k1)
	if err != nil {
		t.Fatal(err)
	}
	checker, err := auth.New(auth.Config{
		Clock: clock.System(), Mode: mode, RelayID: relay.Public().String(), Lookup: auth.StoreLookup(db),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.NewServer(api.Config{
		DB: db, Clock: clock.System(), Guard: authGuard{checker},
		Handlers: map[string]api.Handler{auth.AuthMember: authHandler(checker)},
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
		db.Close()
		store.Close()
	})
	return &authRelay{url: hs.URL + "/gun", checker: checker, db: db, relay: relay}
}

// authScript runs one of auth/testdata/node/*.mjs to completion and returns
// its output lines.
func authScript(t *testing.T, script string, args ...string) []string {
	t.Helper()
	path := filepath.Join(nodetest.Root(t), "auth", "testdata", "node", script)
	out, err := nodetest.Run(t, 60*time.Second, path, args...)
	if err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s", script, err, out)
	}
	return strings.Split(strings.TrimSpace(out), "\n")
}

// answer returns the relay's answer line of rawput.mjs ("ACK ok",
// "ERR <reason>" or "NOACK").
func answer(t *testing.T, lines []string) string {
	t.Helper()
	for _, l := range lines {
		if strings.HasPrefix(l, "ACK ") || strings.HasPrefix(l, "ERR ") || l == "NOACK" {
			return l
		}
	}
	t.Fatalf("no answer in %q", lines)
	return ""
}

// wantAnswer checks an answer. The relay may append where the refused field
// is (": soul … field …") after the reason.
func wantAnswer(t *testing.T, got, want string) {
	t.Helper()
	if got != want && !strings.HasPrefix(got, want+":") {
		t.Fatalf("relay answered %q, want %q", got, want)
	}
}

// line returns the text after prefix on the first line that has it.
func line(t *testing.T, lines []string, prefix string) string {
	t.Helper()
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			return rest
		}
	}
	t.Fatalf("no %q line in %q", prefix, lines)
	return ""
}

// TestAuthInteropUserSpace: a gun.js user signs up, logs in and writes its
// own space through our relay; another gun.js client reads it back.
func TestAuthInteropUserSpace(t *testing.T) {
	nodetest.Require(t)
	r := startAuthRelay(t, auth.Secure)
	out := authScript(t, "user.mjs", r.url, "alice", "correct horse battery")
	pub := line(t, out, "PUB ")
	if got := line(t, out, "ACK status "); got != "ok" {
		t.Fatalf("status write: %s", got)
	}
	if got := line(t, out, "ACK profile "); got != "ok" {
		t.Fatalf("profile write: %s", got)
	}
	read := authScript(t, "read.mjs", r.url, "~"+pub, "status")
	if got := line(t, read, "VALUE "); got != `"online"` {
		t.Fatalf("reader saw %s", got)
	}
	if s := r.checker.Stats(); s.Allowed == 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestAuthInteropBypassRefused: the certificate bypass of research/gun.md
// §5.2 is refused by our relay and the victim's data is unchanged; a stock
// gun.js relay accepts it.
func TestAuthInteropBypassRefused(t *testing.T) {
	nodetest.Require(t)
	r := startAuthRelay(t, auth.Secure)
	pub := line(t, authScript(t, "user.mjs", r.url, "victim", "correct horse battery"), "PUB ")
	wantAnswer(t, answer(t, authScript(t, "rawput.mjs", r.url, "bypass", pub)), "ERR restricted: Certificate required.")
	if got := line(t, authScript(t, "read.mjs", r.url, "~"+pub, "status"), "VALUE "); got != `"online"` {
		t.Fatalf("victim's status is now %s", got)
	}
	f, err := r.db.GetField(context.Background(), "~"+pub, "status")
	if err != nil || !strings.Contains(f.Value.String(), "online") {
		t.Fatalf("stored %v %v", f.Value, err)
	}

	t.Run("stock gun.js relay accepts it", func(t *testing.T) {
		url, _ := nodetest.StartGunRelay(t, nodetest.GunRelayOptions{Radisk: true})
		pub := line(t, authScript(t, "user.mjs", url, "victim", "correct horse battery"), "PUB ")
		wantAnswer(t, answer(t, authScript(t, "rawput.mjs", url, "bypass", pub)), "ACK ok")
		if got := line(t, authScript(t, "read.mjs", url, "~"+pub, "status"), "VALUE "); got != `"PWNED"` {
			t.Fatalf("stock relay: victim's status is %s", got)
		}
	})
}

// TestAuthInteropCertificateWrite: a gun.js user holding a valid certificate
// writes into another user's space through our relay, and a reader sees it.
func TestAuthInteropCertificateWrite(t *testing.T) {
	nodetest.Require(t)
	r := startAuthRelay(t, auth.Secure)
	out := authScript(t, "certwrite.mjs", r.url)
	owner, writer := line(t, out, "OWNER "), line(t, out, "WRITER ")
	if got := line(t, out, "ACK "); got != "ok" {
		t.Fatalf("certificate write: %s", got)
	}
	read := authScript(t, "read.mjs", r.url, "~"+owner+"/inbox/"+writer, "text")
	if got := line(t, read, "VALUE "); got != `"hi from B"` {
		t.Fatalf("reader saw %s", got)
	}
}

// TestAuthInteropPrefixLeak: {"*":"inbox"} lets a gun.js relay store
// ~A.inboxEVIL; ours refuses it.
func TestAuthInteropPrefixLeak(t *testing.T) {
	nodetest.Require(t)
	r := startAuthRelay(t, auth.Secure)
	wantAnswer(t, answer(t, authScript(t, "rawput.mjs", r.url, "inboxevil")), "ERR restricted: Certificate verification fail.")
	url, _ := nodetest.StartGunRelay(t, nodetest.GunRelayOptions{Radisk: true})
	wantAnswer(t, answer(t, authScript(t, "rawput.mjs", url, "inboxevil")), "ACK ok")
}

// TestAuthInteropLoginAndPrivateInstance logs in over the wire ("auth"
// messages) and reads a private instance before and after.
func TestAuthInteropLoginAndPrivateInstance(t *testing.T) {
	r := startAuthRelay(t, auth.Secure)
	owner, _ := keys.Generate(keys.Secp256k1)
	ctx := context.Background()
	inst := auth.InstancePrefix + owner.Public().String()
	st := r.db.Now()
	v, _ := auth.SignField(owner, inst, "private", graph.Bool(true), st)
	hb := inst + "/hb"
	v2, _ := auth.SignField(owner, hb, "beat", graph.Number(1), st)
	diff := graph.Graph{}
	diff.Set(inst, "private", graph.Field{Value: v, State: st})
	diff.Set(hb, "beat", graph.Field{Value: v2, State: st})
	if allowed, refused := r.checker.CheckPut(ctx, nil, diff); len(refused) != 0 {
		t.Fatal(refused)
	} else if _, err := r.db.Put(ctx, allowed, nil); err != nil {
		t.Fatal(err)
	}

	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(r.url, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	// reply reads frames until the one answering id.
	reply := func(id string) *jsjson.Object {
		t.Helper()
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			x, err := jsjson.Parse(data, jsjson.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			msgs, ok := x.([]any)
			if !ok {
				msgs = []any{x}
			}
			for _, m := range msgs {
				if o, ok := m.(*jsjson.Object); ok {
					if at, _ := o.Get("@"); at == id {
						return o
					}
				}
			}
		}
	}
	send := func(s string) {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	get := `{"#":"g1","get":{"#":"` + hb + `"}}`
	send(get)
	if e, _ := reply("g1").Get("err"); e != "auth-required: private instance" {
		t.Fatalf("read before login: err %v", e)
	}

	send(string(auth.AppendChallengeRequest(nil, "a1")))
	body, _ := reply("a1").Get(auth.AuthMember)
	ch, err := auth.ParseChallenge(body)
	if err != nil || ch.Relay != r.relay.Public().String() {
		t.Fatalf("challenge %+v %v", ch, err)
	}
	resp, _ := auth.Respond(owner, ch, time.Now())
	send(string(resp.AppendJSON(nil, "a2")))
	if ok, _ := reply("a2").Get("ok"); ok != true {
		t.Fatal("login refused")
	}
	send(`{"#":"g2","get":{"#":"` + hb + `"}}`)
	put, _ := reply("g2").Get("put")
	if p, ok := put.(*jsjson.Object); !ok || p.Len() != 1 {
		t.Fatalf("read after login: %s", jsjson.Marshal(put))
	}
	// A replayed login answer is refused.
	send(string(resp.AppendJSON(nil, "a3")))
	if e, _ := reply("a3").Get("err"); !strings.HasPrefix(e.(string), "auth-required: ") {
		t.Fatalf("replay: %v", e)
	}
}
