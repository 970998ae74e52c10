package api

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/krestianstvo/luminary/graph"
)

func atoiT(s string) int { n, _ := strconv.Atoi(s); return n }

func TestZZFanoutDebug(t *testing.T) {
	const subs, window, N = 50, 32, 5000
	rg := &recGuard{seen: map[float64]string{}}
	ls := &logStore{MemoryStore: graph.NewMemoryStore()}
	e := newEnvStore(t, ls, withLimits(func(l *Limits) { l.SendQueue = 4096; noIdleTimeout(l) }), func(c *Config) { c.Guard = rg })
	st := e.now() - 1000
	var accMu sync.Mutex
	acc := map[float64]bool{}
	e.db.Subscribe(func(g graph.Graph, _ any) {
		accMu.Lock()
		for _, n := range g {
			for _, f := range n.Fields {
				acc[f.State] = true
			}
		}
		accMu.Unlock()
	})
	var wg sync.WaitGroup
	counts := make([]atomic.Int64, subs)
	for s := range subs {
		ws, _, _ := websocket.DefaultDialer.Dial(e.url, nil)
		defer ws.Close()
		ws.ReadMessage()
		ws.WriteMessage(websocket.TextMessage, []byte(`{"#":"`+newID()+`","get":{"#":"fan"}}`))
		ws.ReadMessage()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for counts[s].Load() < N {
				ws.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, data, err := ws.ReadMessage()
				if err != nil {
					return
				}
				msgs, _ := DecodeFrame(data, DecodeLimits{})
				for _, m := range msgs {
					if m.HasPut {
						counts[s].Add(1)
					}
				}
			}
		}()
	}
	w, _, _ := websocket.DefaultDialer.Dial(e.url, nil)
	defer w.Close()
	w.ReadMessage()
	slots := make(chan struct{}, window)
	var acks atomic.Int64
	go func() {
		for {
			_, data, err := w.ReadMessage()
			if err != nil {
				return
			}
			msgs, _ := DecodeFrame(data, DecodeLimits{})
			for _, m := range msgs {
				if m.Ack != "" {
					if m.OK != true {
						t.Logf("ack %v %s", m.OK, m.Err)
					}
					acks.Add(1)
					<-slots
				}
			}
		}
	}()
	var maxOut atomic.Int64
	for i := range N {
		slots <- struct{}{}
		if o := int64(i+1) - acks.Load(); o > maxOut.Load() {
			maxOut.Store(o)
		}
		w.WriteMessage(websocket.TextMessage, []byte(putFrame(newID(), "fan", st+float64(i)/1000, "f"+strconv.Itoa(i%100), strconv.Itoa(i))))
	}
	wg.Wait()
	var got []int64
	for i := range counts {
		got = append(got, counts[i].Load())
	}
	for i := range N {
		if !acc[st+float64(i)/1000] {
			want := st + float64(i)/1000
			t.Logf("put %d (state %v) not accepted; guard saw: %q; parsed %s", i, want, rg.seen[want], strconv.FormatFloat(want, 'f', -1, 64))
		}
	}
	n := e.stored("fan")
	for k, f := range n.Fields {
		if f.State != st+float64(N-100+atoiT(k[1:]))/1000 {
			t.Logf("field %s final state %v", k, f.State)
		}
	}
	for _, l := range ls.log {
		t.Log(l)
	}
	t.Logf("max outstanding %d", maxOut.Load())
	t.Logf("deferred %v refused %v okputs %v", e.metric("luminary_fields_deferred_total"), e.metric("luminary_puts_refused_total"), e.metric("luminary_puts_accepted_total"))
	t.Logf("acks %d pushes %v accepted %v outPush %v", acks.Load(), got, e.metric("luminary_fields_accepted_total"), e.metric("luminary_messages_out_total", "type", "push"))
}

type recGuard struct {
	mu   sync.Mutex
	seen map[float64]string
}

func (g *recGuard) CheckPut(ctx context.Context, p *PeerInfo, diff graph.Graph) (graph.Graph, []graph.FieldError) {
	g.mu.Lock()
	for _, n := range diff {
		for k, f := range n.Fields {
			g.seen[f.State] += k + "=" + f.Value.String() + " "
		}
	}
	g.mu.Unlock()
	return diff, nil
}
func (g *recGuard) CheckGet(context.Context, *PeerInfo, string) error { return nil }

type logStore struct {
	*graph.MemoryStore
	mu  sync.Mutex
	log []string
}

func (l *logStore) MergeNotify(ctx context.Context, diff graph.Graph, committed func(graph.Graph)) (graph.Graph, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var before []string
	for soul, n := range diff {
		for k, f := range n.Fields {
			cur, err := l.MemoryStore.GetField(ctx, soul, k)
			before = append(before, k+" in="+strconv.FormatFloat(f.State, 'f', -1, 64)+" cur="+strconv.FormatFloat(cur.State, 'f', -1, 64)+" "+func() string {
				if err != nil {
					return err.Error()
				}
				return ""
			}())
		}
	}
	acc, err := l.MemoryStore.MergeNotify(ctx, diff, committed)
	if acc.Len() == 0 {
		l.log = append(l.log, "REJECTED "+strconv.Itoa(len(before))+" "+before[0])
	}
	return acc, err
}

func (l *logStore) Merge(ctx context.Context, diff graph.Graph) (graph.Graph, error) {
	return l.MergeNotify(ctx, diff, nil)
}
