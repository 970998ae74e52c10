package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/api"
	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/internal/nodetest"
	"github.com/krestianstvo/luminary/keys"
	"github.com/krestianstvo/luminary/web"
)

// harnessRelay is a demo relay assembled in the test from the real packages
// (api's Gun wire and graph DB, heartbeat's Host and graph layout, auth's
// certificates, web's pages), so the browser test can run in relay mode
// before `luminary serve --demo` exists. It mirrors what the page expects
// of the real server (web/README.md):
//
//   - GET / and /status: web.Handler();
//   - /gun: the Gun wire; the graph holds heartbeat.MetaPuts and
//     heartbeat.PublicationPuts of every publication;
//   - POST /api/worlds/demo/join {"pub"}: a certificate for role "message"
//     issued by the instance owner, and a KindJoin entry for the key;
//   - messages the page puts at lum/<I>/in/<id> are unwrapped and submitted
//     to the Host.
//
// Writes from pages pass an auth.Checker (open mode for non-instance souls)
// with Config.Inbox judging lum/<I>/in/<id> nodes as heartbeat messages, and
// the owner publishes a message certificate for every key ("*"), as the demo
// world would.
type harnessRelay struct {
	URL      string
	Instance string
}

func startHarnessRelay(t *testing.T) *harnessRelay {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	store := graph.NewMemoryStore()
	db := graph.NewDB(store, graph.DBConfig{})
	checker, err := auth.New(auth.Config{Mode: auth.Open, Lookup: auth.StoreLookup(store), Inbox: heartbeatInbox})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.NewServer(api.Config{DB: db, Guard: checkerGuard{checker}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	owner, err := keys.Generate(keys.Secp256k1)
	if err != nil {
		t.Fatal(err)
	}
	inst := owner.Public().String()

	// Anyone may send messages: an owner-signed certificate for "*",
	// published at lum/<I>/certs through the checker (which registers it).
	anyone, err := auth.IssueCert(owner, auth.Cert{Instance: inst, Subject: auth.AnySubject,
		Roles: []auth.Role{auth.RoleMessage}, Expiry: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	certJSON, _ := json.Marshal(anyone)
	certSoul := heartbeat.InstanceSoul(inst) + "/certs"
	st := db.Now()
	cv, err := auth.SignField(owner, certSoul, anyone.Serial, graph.String(string(certJSON)), st)
	if err != nil {
		t.Fatal(err)
	}
	certDiff := graph.Graph{certSoul: {Soul: certSoul, Fields: map[string]graph.Field{anyone.Serial: {Value: cv, State: st}}}}
	if allowed, refused := checker.CheckPut(ctx, nil, certDiff); len(refused) > 0 {
		t.Fatalf("harness: certificate refused: %v", refused)
	} else if _, err := db.Put(ctx, allowed, nil); err != nil {
		t.Fatal(err)
	}

	// Publications go to the graph in order, off the host's goroutine.
	var mu sync.Mutex
	var queue []heartbeat.Publication
	wake := make(chan struct{}, 1)
	sink := heartbeat.SinkFunc(func(p heartbeat.Publication) {
		mu.Lock()
		queue = append(queue, p)
		mu.Unlock()
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	host, err := heartbeat.NewHost(heartbeat.HostConfig{
		Signer: heartbeat.KeySigner(owner),
		Log:    heartbeat.NewMemLog(),
		Lease:  heartbeat.NewMemLease(clock.System()),
		Sink:   sink,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Add(heartbeat.InstanceConfig{Instance: inst, Name: "demo", Rate: 1, TPS: 20}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); _ = host.Run(ctx) }()
	go func() {
		defer wg.Done()
		metaDone := false
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
			mu.Lock()
			ps := queue
			queue = nil
			mu.Unlock()
			for _, p := range ps {
				var puts []heartbeat.Put
				if !metaDone {
					puts = heartbeat.MetaPuts(p.Meta)
					metaDone = true
				}
				puts = append(puts, heartbeat.PublicationPuts(p)...)
				if _, err := db.Put(ctx, toGraph(puts), nil); err != nil && ctx.Err() == nil {
					t.Errorf("harness: put publication: %v", err)
				}
			}
		}
	}()

	// Inbox: messages written by pages are submitted once.
	inPrefix := heartbeat.InstanceSoul(inst) + "/in/"
	inbox := make(chan *graph.Node, 4096)
	unsub := db.Subscribe(func(g graph.Graph, _ any) {
		for soul, n := range g {
			if strings.HasPrefix(soul, inPrefix) {
				select {
				case inbox <- n.Clone():
				default:
				}
			}
		}
	})
	go func() {
		defer wg.Done()
		done := map[string]bool{}
		seen := map[string]map[string]any{}
		for {
			var n *graph.Node
			select {
			case <-ctx.Done():
				return
			case n = <-inbox:
			}
			soul := n.Soul
			if done[soul] {
				continue
			}
			fields := seen[soul]
			if fields == nil {
				fields = map[string]any{}
				seen[soul] = fields
			}
			for k, f := range n.Fields {
				if k != "seq" && k != "time" {
					fields[k] = f.Value.Interface()
				}
			}
			if len(fields) < 7 {
				continue // the rest of the fields are on their way
			}
			delete(seen, soul)
			m, err := heartbeat.MessageFromInbox(soul, fields)
			if err != nil {
				t.Logf("harness: inbox %s: %v", soul, err)
				done[soul] = true
				continue
			}
			done[soul] = true
			host.Submit(ctx, m, func(_ heartbeat.Receipt, err error) {
				if err != nil && !errors.Is(err, heartbeat.ErrDuplicate) {
					t.Logf("harness: submit: %v", err)
				}
			})
		}
	}()

	mux := http.NewServeMux()
	mux.Handle("/gun", srv)
	mux.HandleFunc("POST /api/worlds/{world}/join", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("world") != "demo" {
			http.Error(w, `{"error":"no such world"}`, http.StatusNotFound)
			return
		}
		var req struct {
			Pub string `json:"pub"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
			http.Error(w, `{"error":"invalid: body"}`, http.StatusBadRequest)
			return
		}
		pub, err := keys.ParsePublic(req.Pub)
		if err != nil {
			http.Error(w, `{"error":"invalid: public key"}`, http.StatusBadRequest)
			return
		}
		host.Join(r.Context(), inst, pub.String(), "", func(heartbeat.Receipt, error) {})
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"world": "demo", "instance": inst, "sequencer": host.Holder()})
	})
	// A minimal /api/status (web/README.md "Status API"): seq and
	// messages per second are real; jitter is not measured here.
	started := time.Now()
	var stMu sync.Mutex
	lastSeq, lastAt := uint64(0), started
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		st, _ := host.Status(inst)
		now := time.Now()
		stMu.Lock()
		rate := 0.0
		if dt := now.Sub(lastAt).Seconds(); dt > 0 && lastSeq > 0 {
			rate = float64(st.Seq-lastSeq) / dt
		}
		lastSeq, lastAt = st.Seq, now
		stMu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"time": now.UTC().Format(time.RFC3339Nano), "uptime_s": now.Sub(started).Seconds(), "peers": 0,
			"worlds": []map[string]any{{
				"id": "demo", "instance": inst, "seq": st.Seq, "tps": st.Meta.TPS, "tick_rate": float64(st.Meta.TPS),
				"time_s":    heartbeat.VTime(float64(now.UnixMicro())/1000, st.Meta.Start, st.Meta.Rate),
				"jitter_ms": map[string]float64{"p50": 0, "p99": 0}, "msgs_per_s": rate, "peers": 0,
			}},
		})
	})
	mux.Handle("/", web.Handler())
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		hs.Close()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		cancel()
		unsub()
		wg.Wait()
		_ = db.Close()
		_ = store.Close()
	})
	return &harnessRelay{URL: hs.URL, Instance: inst}
}

// checkerGuard adapts an auth.Checker to api.Guard (no logins here).
type checkerGuard struct{ c *auth.Checker }

func (g checkerGuard) CheckPut(ctx context.Context, _ *api.PeerInfo, diff graph.Graph) (graph.Graph, []graph.FieldError) {
	return g.c.CheckPut(ctx, nil, diff)
}

func (g checkerGuard) CheckGet(ctx context.Context, _ *api.PeerInfo, soul string) error {
	return g.c.CheckGet(ctx, nil, soul)
}

// heartbeatInbox judges lum/<I>/in/<id> nodes as heartbeat messages
// (auth.Config.Inbox), as heartbeat/doc.go's wiring notes describe.
func heartbeatInbox(_ context.Context, soul string, fields map[string]graph.Field) (string, error) {
	m := make(map[string]any, len(fields))
	for k, f := range fields {
		switch k {
		case "instance", "author", "ts", "nonce", "payload", "sig", "id":
			m[k] = f.Value.Interface()
		default:
			return "", errors.New("restricted: " + k + " is written by the relay")
		}
	}
	msg, err := heartbeat.InboxMessage(soul, m, heartbeat.KeyVerifier(nil))
	if err != nil {
		return "", errors.New(heartbeat.Reason(err))
	}
	return msg.Author, nil
}

func toGraph(puts []heartbeat.Put) graph.Graph {
	g := graph.Graph{}
	for _, p := range puts {
		n := g[p.Soul]
		if n == nil {
			n = graph.NewNode(p.Soul)
			g[p.Soul] = n
		}
		var v graph.Value
		switch x := p.Value.(type) {
		case nil:
			v = graph.Null()
		case string:
			v = graph.String(x)
		case float64:
			v = graph.Number(x)
		case bool:
			v = graph.Bool(x)
		case heartbeat.Link:
			v = graph.Link(x.Soul)
		}
		n.Fields[p.Field] = graph.Field{Value: v, State: p.State}
	}
	return g
}

// TestBrowserHarnessRelay runs the relay-mode browser test against
// harnessRelay: two pages, a drag, the same state hash, a late third page.
func TestBrowserHarnessRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	requireBrowser(t)
	r := startHarnessRelay(t)
	p := nodetest.StartWith(t, nodetest.StartOptions{Env: []string{"LUMINARY_URL=" + r.URL, "LUMINARY_SHOT_PREFIX=harness-"}},
		filepath.Join("test", "browser.test.mjs"))
	if err := p.Wait(t, 4*time.Minute); err != nil {
		t.Fatalf("browser test: %v\n%s", err, p.Output())
	}
	t.Logf("browser test output:\n%s", p.Output())
}
