package auth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/keys"
)

// heartbeatInbox is how a relay wires package heartbeat's message format
// into auth.Config.Inbox (package auth cannot import heartbeat).
func heartbeatInbox(v heartbeat.Verifier) auth.InboxFunc {
	return func(_ context.Context, soul string, fields map[string]graph.Field) (string, error) {
		m := make(map[string]any, len(fields))
		for k, f := range fields {
			switch k {
			case "instance", "author", "ts", "nonce", "payload", "sig", "id":
				m[k] = f.Value.Interface()
			default:
				return "", errors.New("restricted: " + k + " is written by the relay")
			}
		}
		msg, err := heartbeat.MessageFromInbox(soul, m)
		if err != nil {
			return "", errors.New(heartbeat.Reason(err))
		}
		if err := msg.Verify(v); err != nil {
			return "", errors.New(heartbeat.Reason(err))
		}
		return msg.Author, nil
	}
}

func mustKey(t *testing.T) *keys.Private {
	t.Helper()
	k, err := keys.Generate(keys.Secp256k1)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestTableA19_InboxIDMismatch covers table A row 19 for Luminary's own messages: an
// inbox soul must name the hash of the message's signed bytes.
func TestTableA19_InboxIDMismatch(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(now)
	store := graph.NewMemoryStore()
	owner, author, stranger := mustKey(t), mustKey(t), mustKey(t)
	inst := owner.Public().String()
	c, err := auth.New(auth.Config{Clock: clk, Lookup: auth.StoreLookup(store), Inbox: heartbeatInbox(heartbeat.KeyVerifier(nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st := float64(now.UnixMilli())
	put := func(diff graph.Graph) []string {
		t.Helper()
		allowed, refused := c.CheckPut(ctx, nil, diff)
		if len(allowed) > 0 {
			if _, err := store.Merge(ctx, allowed); err != nil {
				t.Fatal(err)
			}
		}
		var out []string
		for _, r := range refused {
			out = append(out, r.Field+" "+r.Err.Error())
		}
		return out
	}
	message := func(k *keys.Private, payload string) (heartbeat.Message, graph.Graph) {
		m := heartbeat.Message{Instance: inst, TS: now.UnixMilli(), Nonce: "n1", Payload: payload}
		if err := m.Sign(heartbeat.KeySigner(k)); err != nil {
			t.Fatal(err)
		}
		diff := graph.Graph{}
		for _, p := range heartbeat.InboxPuts(&m, st) {
			v, err := graph.ValueOf(p.Value)
			if err != nil {
				t.Fatal(err)
			}
			diff.Set(p.Soul, p.Field, graph.Field{Value: v, State: p.State})
		}
		return m, diff
	}
	only := func(got []string, want string) {
		t.Helper()
		if len(got) != 7 {
			t.Fatalf("got %v, want all 7 fields refused with %q", got, want)
		}
		for _, g := range got {
			if g[len(g)-len(want):] != want {
				t.Fatalf("got %v, want %q", got, want)
			}
		}
	}

	// The owner publishes a message certificate for anyone ("*").
	cert, err := auth.IssueCert(owner, auth.Cert{Instance: inst, Subject: auth.AnySubject,
		Roles: []auth.Role{auth.RoleMessage}, Expiry: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := cert.MarshalJSON()
	certs := "lum/" + inst + "/certs"
	v, _ := auth.SignField(owner, certs, cert.Serial, graph.String(string(js)), st)
	if got := put(graph.Graph{certs: {Soul: certs, Fields: map[string]graph.Field{cert.Serial: {Value: v, State: st}}}}); got != nil {
		t.Fatal(got)
	}

	m, diff := message(author, `{"say":"hi"}`)
	if got := put(diff); got != nil {
		t.Fatalf("good message: %v", got)
	}
	only(put(diff), "duplicate: already stored")

	// Row 19: the soul names another id.
	_, other := message(author, `{"say":"other"}`)
	var wrong graph.Graph = graph.Graph{}
	for _, n := range other {
		for k, f := range n.Fields {
			wrong.Set(heartbeat.InboxSoul(inst, m.ID()), k, f)
		}
	}
	// (m's soul already holds m; use a fresh state so nothing is a duplicate.)
	for _, n := range wrong {
		for k, f := range n.Fields {
			f.State++
			n.Fields[k] = f
		}
	}
	only(put(wrong), "invalid: id mismatch")

	// A tampered payload changes the message's hash: the soul and the id
	// field no longer name it.
	_, tampered := message(author, `{"say":"x"}`)
	for _, n := range tampered {
		f := n.Fields["payload"]
		f.Value = graph.String(`{"say":"y"}`)
		n.Fields["payload"] = f
	}
	only(put(tampered), "invalid: id mismatch")

	// A field the relay owns cannot ride along.
	_, extra := message(author, `{"say":"seq"}`)
	for soul := range extra {
		extra.Set(soul, "seq", graph.Field{Value: graph.Number(1), State: st})
	}
	if got := put(extra); len(got) != 8 {
		t.Fatalf("extra field: %v", got)
	}

	// Without the "*" certificate only the owner may send.
	c2, _ := auth.New(auth.Config{Clock: clk, Inbox: heartbeatInbox(heartbeat.KeyVerifier(nil))})
	_, d2 := message(stranger, "hello")
	allowed, refused := c2.CheckPut(ctx, nil, d2)
	if len(allowed) != 0 || len(refused) != 7 || refused[0].Err.Error() != "restricted: not authorised to message" {
		t.Fatalf("stranger: %v", refused)
	}
	_, d3 := message(owner, "hello")
	if _, refused := c2.CheckPut(ctx, nil, d3); len(refused) != 0 {
		t.Fatalf("owner: %v", refused)
	}
}

// TestHeartbeatAuthorizer shows the adapter from auth to
// heartbeat.Authorizer: the role names are the same strings.
func TestHeartbeatAuthorizer(t *testing.T) {
	owner, relay := mustKey(t), mustKey(t)
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	c, _ := auth.New(auth.Config{Clock: clock.NewFake(now)})
	cert, _ := auth.IssueCert(owner, auth.Cert{Instance: owner.Public().String(), Subject: relay.Public().String(),
		Roles: []auth.Role{auth.RoleTick}, Expiry: now.Add(time.Hour)})
	var a heartbeat.Authorizer = heartbeat.AuthorizerFunc(func(ctx context.Context, inst, key string, role heartbeat.Role, at time.Time) error {
		return c.Authorize(ctx, inst, key, auth.Role(role), at, cert)
	})
	if err := a.Authorize(context.Background(), owner.Public().String(), relay.Public().String(), heartbeat.RoleTick, now); err != nil {
		t.Fatal(err)
	}
	err := a.Authorize(context.Background(), owner.Public().String(), relay.Public().String(), heartbeat.RoleMessage, now)
	if err == nil || err.Error() != "restricted: not authorised to message" {
		t.Fatal(err)
	}
}
