package world_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/keys"
	"github.com/krestianstvo/luminary/world"
)

var ctx = context.Background()

// t0 is the fake clock's start in every test.
var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func newKey(t testing.TB, c keys.Curve) *keys.Private {
	t.Helper()
	k, err := keys.Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// heartbeatInbox is how a relay wires package heartbeat's message format
// into auth.Config.Inbox (as in package auth's tests).
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

// relay is an in-memory stand-in for a Luminary relay hosting private
// worlds: a graph.DB judged by auth (with the world Guard on inbox
// messages), a heartbeat host sequencing into a MemLog, and a recorder of
// every byte offered to, stored by and sent out of the relay.
type relay struct {
	t       testing.TB
	clk     *clock.Fake
	db      *graph.DB
	checker *auth.Checker
	guard   *world.Guard
	key     *keys.Private // the relay's identity (RelayID, sequencer)

	log   *heartbeat.MemLog
	host  *heartbeat.Host
	pubs  []heartbeat.Publication
	cheap bool // skip recording (benchmarks)

	mu       sync.Mutex
	captured [][]byte // every diff offered, every notification, every message submitted
}

func newRelay(t testing.TB) *relay {
	t.Helper()
	clk := clock.NewFake(t0)
	store := graph.NewMemoryStore()
	db := graph.NewDB(store, graph.DBConfig{Clock: clk})
	r := &relay{t: t, clk: clk, db: db, key: newKey(t, keys.Secp256k1)}
	lookup := auth.StoreLookup(db)
	r.guard = world.NewGuard(lookup)
	c, err := auth.New(auth.Config{
		Clock: clk, Lookup: lookup, RelayID: r.key.Public().String(),
		Inbox: r.guard.Inbox(heartbeatInbox(heartbeat.KeyVerifier(nil))),
	})
	if err != nil {
		t.Fatal(err)
	}
	r.checker = c
	cancel := db.Subscribe(func(acc graph.Graph, _ any) { r.record(acc.AppendJSON(nil)) })
	t.Cleanup(func() { cancel(); db.Close(); store.Close() })
	return r
}

func (r *relay) record(b []byte) {
	if r.cheap {
		return
	}
	r.mu.Lock()
	r.captured = append(r.captured, b)
	r.mu.Unlock()
}

// put is a peer's put arriving at the relay: recorded, judged by auth, the
// allowed part merged.
func (r *relay) put(peer *auth.Peer, diff graph.Graph) []graph.FieldError {
	r.record(diff.AppendJSON(nil))
	allowed, refused := r.checker.CheckPut(ctx, peer, diff)
	if allowed.Len() > 0 {
		res, err := r.db.Put(ctx, allowed, peer)
		if err != nil {
			r.t.Fatal(err)
		}
		refused = append(refused, res.Refused...)
	}
	return refused
}

// store is the world.Store an admin tool uses against this relay: reads
// from the graph, writes as a peer (all or nothing).
func (r *relay) store() world.Store { return relayStore{r} }

type relayStore struct{ r *relay }

func (s relayStore) Node(ctx context.Context, soul string) (map[string]graph.Field, error) {
	return world.DBStore{DB: s.r.db}.Node(ctx, soul)
}
func (s relayStore) Now() float64 { return s.r.db.Now() }
func (s relayStore) Put(_ context.Context, diff graph.Graph) error {
	r := s.r
	r.record(diff.AppendJSON(nil))
	if _, refused := r.checker.CheckPut(ctx, nil, diff); len(refused) > 0 {
		return fmt.Errorf("refused: %v", refused[0])
	}
	_, err := r.db.Put(ctx, diff, nil)
	return err
}

// login returns a peer logged in with priv.
func (r *relay) login(priv *keys.Private) *auth.Peer {
	r.t.Helper()
	p := auth.NewPeer()
	ch, err := r.checker.Challenge(p)
	if err != nil {
		r.t.Fatal(err)
	}
	resp, err := auth.Respond(priv, ch, r.clk.Now())
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.checker.Login(p, resp); err != nil {
		r.t.Fatal(err)
	}
	return p
}

// startHost starts sequencing instance with the relay's key, which the
// owner authorises to tick with a published certificate.
func (r *relay) startHost(owner *keys.Private) {
	r.t.Helper()
	inst := owner.Public().String()
	cert, err := auth.IssueCert(owner, auth.Cert{Instance: inst, Subject: r.key.Public().String(),
		Roles: []auth.Role{auth.RoleTick}, Expiry: r.clk.Now().Add(24 * time.Hour)})
	if err != nil {
		r.t.Fatal(err)
	}
	cj, _ := cert.MarshalJSON()
	state := r.db.Now()
	v, err := auth.SignField(owner, world.CertsSoul(inst), cert.Serial, graph.String(string(cj)), state)
	if err != nil {
		r.t.Fatal(err)
	}
	g := graph.Graph{}
	g.Set(world.CertsSoul(inst), cert.Serial, graph.Field{Value: v, State: state})
	if ref := r.put(nil, g); len(ref) > 0 {
		r.t.Fatal(ref)
	}
	r.log = heartbeat.NewMemLog()
	authz := heartbeat.AuthorizerFunc(func(ctx context.Context, instance, key string, role heartbeat.Role, at time.Time) error {
		return r.checker.Authorize(ctx, instance, key, auth.Role(role), at)
	})
	h, err := heartbeat.NewHost(heartbeat.HostConfig{
		Signer: heartbeat.KeySigner(r.key), Log: r.log, Lease: heartbeat.NewMemLease(r.clk), Blobs: r.log,
		Authorizer: authz, Clock: r.clk,
		Sink: heartbeat.SinkFunc(func(p heartbeat.Publication) { r.pubs = append(r.pubs, p) }),
	})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := h.Add(heartbeat.InstanceConfig{Instance: inst, Name: "private world"}); err != nil {
		r.t.Fatal(err)
	}
	r.host = h
	r.pump(func() bool { st, _ := h.Status(inst); return st.Active })
}

// pump steps the host on the fake clock until cond holds.
func (r *relay) pump(cond func() bool) {
	r.t.Helper()
	for i := 0; i < 100000; i++ {
		if cond() {
			return
		}
		d, err := r.host.Step(ctx)
		if err != nil {
			r.t.Fatal(err)
		}
		r.publish()
		if cond() {
			return
		}
		if d <= 0 || d > 10*time.Millisecond {
			d = time.Millisecond
		}
		r.clk.Advance(d)
	}
	r.t.Fatal("pump: condition never held")
}

// publish writes what the host published into the graph, as the relay
// does (relay-internal writes, not judged by auth).
func (r *relay) publish() {
	pubs := r.pubs
	r.pubs = nil
	for _, p := range pubs {
		g := graph.Graph{}
		for _, x := range heartbeat.PublicationPuts(p) {
			var v graph.Value
			switch y := x.Value.(type) {
			case nil:
				v = graph.Null()
			case heartbeat.Link:
				v = graph.Link(y.Soul)
			default:
				var err error
				if v, err = graph.ValueOf(y); err != nil {
					r.t.Fatal(err)
				}
			}
			g.Set(x.Soul, x.Field, graph.Field{Value: v, State: x.State})
		}
		if _, err := r.db.Put(ctx, g, nil); err != nil {
			r.t.Fatal(err)
		}
	}
}

// submit sends m the way a member does: through the graph (the inbox
// node, judged by auth and the Guard) and then to the sequencer (guard
// first, as the relay's wiring does). It returns the first refusal.
func (r *relay) submit(peer *auth.Peer, m heartbeat.Message) error {
	g := graph.Graph{}
	for _, x := range heartbeat.InboxPuts(&m, r.db.Now()) {
		v, err := graph.ValueOf(x.Value)
		if err != nil {
			return err
		}
		g.Set(x.Soul, x.Field, graph.Field{Value: v, State: x.State})
	}
	if ref := r.put(peer, g); len(ref) > 0 {
		return ref[0].Err
	}
	r.record([]byte(m.Payload))
	if err := r.guard.CheckMessage(ctx, &m); err != nil {
		return err
	}
	var done bool
	var rerr error
	r.host.Submit(ctx, m, func(_ heartbeat.Receipt, err error) { done, rerr = true, err })
	r.pump(func() bool { return done })
	return rerr
}

// entries returns every log entry of instance.
func (r *relay) entries(instance string) []heartbeat.Entry {
	r.t.Helper()
	p, err := r.log.Read(ctx, instance, 1, 100000)
	if err != nil {
		r.t.Fatal(err)
	}
	return p.Entries
}

// fieldExists reports whether the graph holds soul/field.
func (r *relay) fieldExists(soul, field string) bool {
	_, err := r.db.GetField(ctx, soul, field)
	return err == nil
}

// mustCreate creates a private world for owner on r.
func mustCreate(t testing.TB, r *relay, owner *keys.Private) *world.ContentKey {
	t.Helper()
	k, err := world.Create(ctx, r.store(), owner)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// mustAdd adds member by admin.
func mustAdd(t testing.TB, r *relay, inst string, by *keys.Private, member *keys.Private, opt world.AddOptions) {
	t.Helper()
	if _, err := world.AddMember(ctx, r.store(), inst, by, member.Public(), opt); err != nil {
		t.Fatal(err)
	}
}

// keyring loads priv's keyring.
func keyring(t testing.TB, r *relay, inst string, priv *keys.Private) *world.Keyring {
	t.Helper()
	w, err := world.Load(ctx, r.store(), inst)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := w.Keyring(ctx, priv)
	if err != nil {
		t.Fatal(err)
	}
	return ring
}
