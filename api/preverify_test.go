package api

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/krestianstvo/luminary/graph"
)

// gateGuard is a Preverifier whose Preverify of a soul listed in gates
// waits until that gate is closed. CheckPut records the order in which it
// judges souls and whether it got Preverify's context for the same diff;
// souls starting with "ro/" are refused.
type gateGuard struct {
	gates   map[string]chan struct{}
	entered chan string

	mu      sync.Mutex
	order   []string
	withPre int
}

type gateKey struct{}

func (g *gateGuard) Preverify(ctx context.Context, _ *PeerInfo, diff graph.Graph) context.Context {
	var soul string
	for s := range diff {
		soul = s
	}
	g.entered <- soul
	if ch := g.gates[soul]; ch != nil {
		<-ch
	}
	return context.WithValue(ctx, gateKey{}, soul)
}

func (g *gateGuard) CheckPut(ctx context.Context, _ *PeerInfo, diff graph.Graph) (graph.Graph, []graph.FieldError) {
	if MessageFrom(ctx) == nil {
		panic("no message in guard context")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	allowed := graph.Graph{}
	var refused []graph.FieldError
	for soul, n := range diff {
		g.order = append(g.order, soul)
		if ctx.Value(gateKey{}) == soul {
			g.withPre++
		}
		if strings.HasPrefix(soul, "ro/") {
			for f := range n.Fields {
				refused = append(refused, graph.FieldError{Soul: soul, Field: f, Err: errorString("restricted: read-only")})
			}
			continue
		}
		allowed[soul] = n
	}
	return allowed, refused
}

func (g *gateGuard) CheckGet(context.Context, *PeerInfo, string) error { return nil }

type errorString string

func (e errorString) Error() string { return string(e) }

func (g *gateGuard) judged() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.order...)
}

// TestPreverifyPipeline: one connection's puts are preverified
// concurrently (a later put's Preverify runs while an earlier one's is
// still busy), but judged, merged and acknowledged in the order they came,
// each with its own Preverify context; a get waits for them.
func TestPreverifyPipeline(t *testing.T) {
	slow := make(chan struct{})
	g := &gateGuard{gates: map[string]chan struct{}{"s/1": slow}, entered: make(chan string, 8)}
	e := newEnv(t, func(c *Config) {
		c.Guard = g
		c.Limits.VerifyWorkers = 2
	})
	c := e.dial()
	st := e.now()
	c.send(putFrame("p1", "s/1", st, "a", "1"))
	c.send(putFrame("p2", "s/2", st, "a", "2"))
	c.send(putFrame("p3", "ro/3", st, "a", "3"))
	seen := map[string]bool{}
	for len(seen) < 2 {
		seen[<-g.entered] = true
	}
	if !seen["s/1"] || !seen["s/2"] {
		t.Fatalf("preverified concurrently: %v", seen)
	}
	// s/1 is still being verified, so nothing may have been judged.
	if got := g.judged(); len(got) != 0 {
		t.Fatalf("judged %v before the first put was verified", got)
	}
	close(slow)
	for _, id := range []string{"p1", "p2"} {
		if r := c.reply(id, nil); r["ok"] != true {
			t.Fatalf("ack of %s: %v", id, r)
		}
	}
	if r := c.reply("p3", nil); !strings.HasPrefix(r.str("err"), "restricted: read-only") {
		t.Fatalf("refused put: %v", r)
	}
	if got := g.judged(); strings.Join(got, " ") != "s/1 s/2 ro/3" {
		t.Fatalf("judged in order %v", got)
	}
	g.mu.Lock()
	withPre := g.withPre
	g.mu.Unlock()
	if withPre != 3 {
		t.Fatalf("%d of 3 CheckPut calls had their Preverify context", withPre)
	}
	if e.stored("s/1") == nil || e.stored("s/2") == nil || e.stored("ro/3") != nil {
		t.Fatal("stored the wrong puts")
	}
	// A get after a put still being verified sees it.
	gate := make(chan struct{})
	g.gates["s/4"] = gate
	if s := <-g.entered; s != "ro/3" {
		t.Fatalf("third Preverify was for %s", s)
	}
	c.send(putFrame("p4", "s/4", st, "a", "4"))
	c.send(`{"#":"g4","get":{"#":"s/4"}}`)
	if s := <-g.entered; s != "s/4" {
		t.Fatalf("fourth Preverify was for %s", s)
	}
	close(gate)
	acked := false
	r := c.reply("g4", func(m msg) bool {
		acked = acked || m.str("@") == "p4" && m["ok"] == true
		return m.str("@") == "p4"
	})
	if !acked || r.node("s/4")["a"] != 4.0 {
		t.Fatalf("get after a preverified put: ack first %v, reply %v", acked, r)
	}
}
