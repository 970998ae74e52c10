package client

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/api"
	"github.com/krestianstvo/luminary/api/rest"
	"github.com/krestianstvo/luminary/api/service"
	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/heartbeat/heartbeattest"
	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/keys"
)

// seqRelay is an in-memory relay hosting one world that keys may tick.
func seqRelay(t *testing.T, tickers ...*keys.Private) (url, inst string, svc *service.Service) {
	t.Helper()
	db := graph.NewDB(graph.NewMemoryStore(), graph.DBConfig{})
	svc, err := service.New(service.Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.NewServer(api.Config{DB: db, Guard: svc.Guard(), Handlers: svc.Handlers()})
	if err != nil {
		t.Fatal(err)
	}
	ra, err := rest.New(rest.Config{Service: svc, Keys: svc.PrivateKey()})
	if err != nil {
		t.Fatal(err)
	}
	svc.Start()
	srv.Start()
	hs := httptest.NewServer(service.Handler(srv, ra, nil))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ra.Close()
		hs.CloseClientConnections()
		_ = srv.Shutdown(ctx)
		hs.Close()
		_ = svc.Shutdown(ctx)
		_ = db.Close()
	})
	ctx := context.Background()
	wi, err := svc.CreateWorld(ctx, rest.WorldSpec{Alias: "fence", Name: "fence", TPS: 20, Open: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range tickers {
		if _, err := svc.IssueCert(ctx, wi.Instance, auth.Cert{Instance: wi.Instance, Subject: k.Public().String(),
			Roles: []auth.Role{auth.RoleTick}, Expiry: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	url = "ws" + strings.TrimPrefix(hs.URL, "http") + "/gun"
	// Wait until the relay's own host has started the world: a remote
	// holder that took the lease before the genesis entry was in the log
	// would find the instance unknown to it. A join returns once it has the
	// world's first tick, which follows that entry.
	jctx, jcancel := context.WithTimeout(ctx, 30*time.Second)
	defer jcancel()
	jc := dialTest(t, url, testKey(t))
	w, err := jc.Join(jctx, wi.Instance)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	jc.Close()
	return url, wi.Instance, svc
}

func testKey(t *testing.T) *keys.Private {
	t.Helper()
	k, err := keys.Generate(keys.Secp256k1)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func dialTest(t *testing.T, url string, k *keys.Private) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, url, Config{Key: k})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSeqWireFencing: while peer A runs the world's metronome through the
// relay, another logged-in peer R that also holds the tick role cannot
// take the lease, append a batch it signed, publish an idle tick or raise
// a reservation: every attempt is refused with a wire reason, and the log
// is left as A made it. A connection not logged in as the holder it names
// is refused before anything else.
func TestSeqWireFencing(t *testing.T) {
	ka, kr := testKey(t), testKey(t)
	url, inst, svc := seqRelay(t, ka, kr)
	ca, cr := dialTest(t, url, ka), dialTest(t, url, kr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wa, err := ca.Join(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	mctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- wa.RunMetronome(mctx, MetronomeOptions{LeaseTTL: 2 * time.Second}) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("RunMetronome: %v", err)
		}
	}()
	// Wait for A's term: its epoch entry in the stream.
	var epochA uint64
	for epochA == 0 {
		select {
		case ev, ok := <-wa.Events():
			if !ok {
				t.Fatal("stream ended")
			}
			if ev.Entry != nil && ev.Entry.Kind == heartbeat.KindEpoch && ev.Entry.Author == ka.Public().String() {
				epochA = ev.Entry.Epoch
			}
		case <-ctx.Done():
			t.Fatal("A never started a term")
		}
	}
	go func() {
		for range wa.Events() {
		}
	}()
	before, err := svc.Log().State(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}

	r := &seqWire{c: cr, holder: kr.Public().String(), ttl: time.Second, timeout: 5 * time.Second}
	if _, err := r.Acquire(ctx, inst, r.holder, time.Second, 0); !errors.Is(err, heartbeat.ErrLeaseHeld) {
		t.Fatalf("R acquires A's lease: %v, want ErrLeaseHeld", err)
	}
	if err := r.Renew(ctx, heartbeat.Grant{Instance: inst, Holder: r.holder, Epoch: epochA}, time.Second); !errors.Is(err, heartbeat.ErrLeaseLost) {
		t.Fatalf("R renews A's epoch: %v, want ErrLeaseLost", err)
	}
	// A batch R signed, continuing the log exactly, in A's epoch and in the next.
	st, err := r.State(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	for _, epoch := range []uint64{epochA, epochA + 1} {
		s := heartbeattest.NewStream(heartbeat.KeySigner(kr), inst, epoch, st.Head, st.Meta, st.Bound(), time.Now())
		s.Message(heartbeattest.Signer(7), time.Now().UnixMilli(), `{"forged":true}`)
		tk := s.Tick(time.Millisecond)
		err := r.Append(ctx, []heartbeat.Batch{{Instance: inst, Entries: s.Entries, Tick: &tk}})
		var ae heartbeat.AppendError
		if !errors.As(err, &ae) || len(ae) != 1 || !errors.Is(ae[0], heartbeat.ErrNotAuthorisedToTick) {
			t.Fatalf("R's batch at epoch %d: %v, want a refusal as not authorised to tick", epoch, err)
		}
		// The same batch's tick alone, as an idle tick.
		idle := s.Tick(time.Millisecond)
		b := heartbeat.Batch{Instance: inst, Tick: &idle}
		body := seqBody("tick", "")
		body.Set("batch", jsjson.Raw(b.AppendJSON(nil)))
		if _, err := r.call(ctx, body); !errors.Is(err, heartbeat.ErrNotAuthorisedToTick) {
			t.Fatalf("R's idle tick at epoch %d: %v, want not authorised to tick", epoch, err)
		}
	}
	// A log-wide reservation by a key that holds no lease here.
	err = r.Append(ctx, []heartbeat.Batch{{Instance: heartbeat.AllInstances, Holder: r.holder, Reserve: float64(time.Now().UnixMilli())}})
	var ae heartbeat.AppendError
	if !errors.As(err, &ae) || !errors.Is(ae[0], heartbeat.ErrNotAuthorisedToTick) {
		t.Fatalf("R's reservation: %v, want not authorised to tick", err)
	}
	// Naming a holder the connection has not logged in as.
	imp := &seqWire{c: cr, holder: ka.Public().String(), ttl: time.Second, timeout: 5 * time.Second}
	var re *RelayError
	if _, err := imp.State(ctx, inst); !errors.As(err, &re) || re.Prefix() != "auth-required:" {
		t.Fatalf("R speaking as A: %v, want auth-required", err)
	}

	after, err := svc.Log().State(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	if after.Head != before.Head || after.Holder != ka.Public().String() {
		t.Fatalf("log changed: head %+v → %+v, holder %s", before.Head, after.Head, after.Holder)
	}
	if m, _ := svc.Log().HolderMark(ctx, r.holder); m != 0 {
		t.Fatalf("R's mark stored: %v", m)
	}
}

// TestSeqWireStalledHolder: a peer that takes the lease and keeps renewing
// it but never ticks loses it (the relay stops renewing a holder that has
// not ticked for a second, or three after its grant), and the relay's host
// takes the world back.
func TestSeqWireStalledHolder(t *testing.T) {
	kr := testKey(t)
	url, inst, svc := seqRelay(t, kr)
	cr := dialTest(t, url, kr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := dialTest(t, url, testKey(t)).Join(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	r := &seqWire{c: cr, holder: kr.Public().String(), ttl: 500 * time.Millisecond, timeout: 5 * time.Second}
	g, err := r.Acquire(ctx, inst, r.holder, r.ttl, 0)
	if err != nil {
		t.Fatal(err)
	}
	tk := time.NewTicker(100 * time.Millisecond)
	defer tk.Stop()
	for renewals := 0; ; renewals++ {
		<-tk.C
		err := r.Renew(ctx, g, r.ttl)
		if errors.Is(err, heartbeat.ErrLeaseLost) {
			t.Logf("renewal %d refused: %v", renewals, err)
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatal("the relay kept renewing a holder that never ticked")
		}
	}
	relay := svc.RelayKey().String()
	for {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				t.Fatal("stream ended")
			}
			if ev.Entry != nil && ev.Entry.Kind == heartbeat.KindEpoch && ev.Entry.Author == relay && ev.Entry.Epoch > g.Epoch {
				return
			}
		case <-ctx.Done():
			t.Fatal("the relay did not take the world back")
		}
	}
}

// TestSeqWireIdleTickRate: the lease holder's idle ticks are cut off at
// twice the world's rate before any of them costs the relay a signature
// verification; a peer that does not hold the lease is refused outright.
func TestSeqWireIdleTickRate(t *testing.T) {
	kr, ko := testKey(t), testKey(t)
	url, inst, _ := seqRelay(t, kr, ko)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := &seqWire{c: dialTest(t, url, kr), holder: kr.Public().String(), ttl: 10 * time.Second, timeout: 5 * time.Second}
	other := &seqWire{c: dialTest(t, url, ko), holder: ko.Public().String(), ttl: time.Second, timeout: 5 * time.Second}
	g, err := r.Acquire(ctx, inst, r.holder, r.ttl, 0)
	if err != nil {
		t.Fatal(err)
	}
	idle := func(w *seqWire, k *keys.Private) error {
		s := heartbeattest.NewStream(heartbeat.KeySigner(k), inst, g.Epoch, heartbeat.Head{}, nil, 0, time.Now())
		tk := s.Tick(time.Millisecond)
		body := seqBody("tick", "")
		body.Set("batch", jsjson.Raw((&heartbeat.Batch{Instance: inst, Tick: &tk}).AppendJSON(nil)))
		_, err := w.call(ctx, body)
		return err
	}
	if err := idle(other, ko); !errors.Is(err, heartbeat.ErrNotAuthorisedToTick) {
		t.Fatalf("idle tick from a peer without the lease: %v", err)
	}
	// A 20 ticks/s world: 40 pass the limiter at once, then 40 a second.
	const n = 100
	start := time.Now()
	passed := 0
	for range n {
		err := idle(r, kr)
		var re *RelayError
		if !errors.As(err, &re) || re.Prefix() != "rate-limited:" {
			passed++
		}
	}
	if most := 40 + int(40*time.Since(start).Seconds()) + 1; passed > most || passed == n {
		t.Fatalf("%d of %d back-to-back idle ticks passed the limiter, want at most %d", passed, n, most)
	}
}

// TestSeqWireLogsOnlyWhatRelayHanded: a remote holder's batches may log
// only the joins and leaves the relay handed it, and only the snapshot
// markers the relay decided from the members' votes. A batch that logs a
// join of a key the relay never reported present, or a snapshot nobody
// voted, is refused whole (nothing stored); the same term's batch without
// it is accepted.
func TestSeqWireLogsOnlyWhatRelayHanded(t *testing.T) {
	kr := testKey(t)
	url, inst, svc := seqRelay(t, kr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := &seqWire{c: dialTest(t, url, kr), holder: kr.Public().String(), ttl: 10 * time.Second, timeout: 5 * time.Second}
	g, err := r.Acquire(ctx, inst, r.holder, r.ttl, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.State(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	term := func(forged *heartbeat.Entry) heartbeat.Batch {
		s := heartbeattest.NewStream(heartbeat.KeySigner(kr), inst, g.Epoch, st.Head, st.Meta, st.Bound(), time.Now())
		if forged != nil {
			s.Elapsed += time.Millisecond
			s.Entries = append(s.Entries, s.Seq.Append(*forged, s.Elapsed))
		}
		tk := s.Tick(time.Millisecond)
		return heartbeat.Batch{Instance: inst, Entries: s.Entries, Tick: &tk, Reserve: s.Reserve}
	}
	for name, forged := range map[string]*heartbeat.Entry{
		"a join the relay never handed": {Kind: heartbeat.KindJoin, Author: testKey(t).Public().String()},
		"a snapshot nobody voted": {Kind: heartbeat.KindSnapshot, Ref: 1, RefHash: heartbeat.SHA256([]byte("state")),
			Payload: `["` + kr.Public().String() + `"]`},
	} {
		err = r.Append(ctx, []heartbeat.Batch{term(forged)})
		var ae heartbeat.AppendError
		if !errors.As(err, &ae) || len(ae) != 1 || !errors.Is(ae[0], heartbeat.ErrNotAuthorised) {
			t.Fatalf("%s: %v, want restricted: not authorised", name, err)
		}
		if now, err := svc.Log().State(ctx, inst); err != nil || now.Head != st.Head {
			t.Fatalf("%s: log changed by a refused batch: %+v → %+v (%v)", name, st.Head, now.Head, err)
		}
	}
	if err := r.Append(ctx, []heartbeat.Batch{term(nil)}); err != nil {
		t.Fatalf("the term's batch without the forged join: %v", err)
	}
	if now, err := svc.Log().State(ctx, inst); err != nil || now.Head.Seq != st.Head.Seq+1 {
		t.Fatalf("epoch entry not stored: head %+v (%v)", now.Head, err)
	}
}
