package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/krestianstvo/luminary/api"
	"github.com/krestianstvo/luminary/client"
	"github.com/krestianstvo/luminary/client/clienttest"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
)

// Benchmarks of the time service through the relay. Results and commands:
// BENCHMARKS.md ("The time service through the relay").
//
//	go test -run '^$' -bench 'Sequence' -benchtime 2000x ./api/service/
//	go test -run '^$' -bench 'IdleWorlds' -benchtime 1x ./api/service/

// BenchmarkSequenceThroughRelay: b.N messages sequenced through one world,
// end to end over the Gun wire: senders (Go clients, each message signed,
// put at the inbox, judged by auth, sequenced, made durable in bbolt,
// acknowledged with seq and time) and 50 receiving Go clients that follow
// the world (tick signatures, Merkle paths and the hash chain verified;
// author signatures too unless BENCH_SKIP_AUTHOR=1). Reported: msgs/s,
// receipt latency (send to ack) and delivery latency (send to arrival in a
// receiver's verified stream) p50/p99.
//
// BENCH_RECEIVERS (50), BENCH_SENDERS (8 clients) and BENCH_INFLIGHT
// (messages in flight per sender, 8) tune it.
func BenchmarkSequenceThroughRelay(b *testing.B) {
	receivers := clienttest.EnvInt("BENCH_RECEIVERS", 50)
	senders := clienttest.EnvInt("BENCH_SENDERS", 8)
	inflight := clienttest.EnvInt("BENCH_INFLIGHT", 8)
	skipAuthor := os.Getenv("BENCH_SKIP_AUTHOR") == "1"
	r := startRelay(b, relayOpts{limits: api.Limits{MaxConnsPerIP: 1000}})
	inst := r.openWorld(b, "bench", 20)

	var delivMu sync.Mutex
	var deliv []time.Duration
	var got atomic.Int64
	done := make(chan struct{})
	want := int64(b.N) * int64(receivers)
	var rwg sync.WaitGroup
	var followers []*client.World
	raw := os.Getenv("BENCH_RAW_RECEIVERS") == "1"
	var raws []*websocket.Conn
	record := func(local []time.Duration) {
		delivMu.Lock()
		deliv = append(deliv, local...)
		delivMu.Unlock()
	}
	for i := 0; raw && i < receivers; i++ {
		souls := []string{heartbeat.HeartbeatSoul(inst)}
		for blk := uint64(0); blk <= uint64(b.N+1000)/heartbeat.BlockSize; blk++ {
			souls = append(souls, heartbeat.BlockSoul(inst, blk*heartbeat.BlockSize))
		}
		ws := rawSubscriber(b, r.URL, souls...)
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			var local []time.Duration
			defer func() { record(local) }()
			seen := map[string]bool{}
			for {
				_, data, err := ws.ReadMessage()
				if err != nil {
					return
				}
				now := time.Now().UnixNano()
				for _, t := range clienttest.PayloadTimes(data, seen) {
					local = append(local, time.Duration(now-t))
					if got.Add(1) == want {
						close(done)
					}
				}
			}
		}()
		followers = append(followers, nil)
		raws = append(raws, ws)
	}
	for i := 0; !raw && i < receivers; i++ {
		c := dial(b, r.URL, newKey(b))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		w, err := c.Join(ctx, inst, client.JoinOptions{SkipAuthorSignatures: skipAuthor, Buffer: 4096})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		followers = append(followers, w)
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			var local []time.Duration
			for ev := range w.Events() {
				if ev.Entry == nil || ev.Entry.Kind != heartbeat.KindMessage {
					continue
				}
				var p struct {
					T int64 `json:"t"`
				}
				if json.Unmarshal([]byte(ev.Entry.Payload), &p) == nil && p.T > 0 {
					local = append(local, time.Duration(time.Now().UnixNano()-p.T))
					if got.Add(1) == want {
						close(done)
					}
				}
			}
			delivMu.Lock()
			deliv = append(deliv, local...)
			delivMu.Unlock()
		}()
	}
	var worlds []*client.World
	for range senders {
		c := dial(b, r.URL, newKey(b))
		worlds = append(worlds, join(b, c, inst))
	}

	var cpu0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &cpu0)
	b.ResetTimer()
	start := time.Now()
	receipts, err := clienttest.SendLoad(worlds, inflight, b.N, func(t0 time.Time) []byte {
		return fmt.Appendf(nil, `{"t":%d,"pad":"0123456789abcdef0123456789abcdef"}`, t0.UnixNano())
	})
	if err != nil {
		b.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(120 * time.Second):
		b.Fatalf("receivers got %d of %d deliveries", got.Load(), want)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	var cpu1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &cpu1)
	for _, w := range append(worlds, followers...) {
		if w != nil {
			w.Close()
		}
	}
	for _, ws := range raws {
		ws.Close()
	}
	rwg.Wait()
	if os.Getenv("BENCH_DEBUG") == "1" {
		b.Logf("histograms: %s", histAverages(r))
	}
	r.stop()
	cpu := time.Duration(cpu1.Utime.Nano()+cpu1.Stime.Nano()-cpu0.Utime.Nano()-cpu0.Stime.Nano()) * time.Nanosecond
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(clienttest.PercentileMS(receipts, 0.5), "receipt-p50-ms")
	b.ReportMetric(clienttest.PercentileMS(receipts, 0.99), "receipt-p99-ms")
	b.ReportMetric(clienttest.PercentileMS(deliv, 0.5), "deliver-p50-ms")
	b.ReportMetric(clienttest.PercentileMS(deliv, 0.99), "deliver-p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
}

// BenchmarkIdleWorlds measures what idle ticking costs: BENCH_WORLDS
// worlds (100) at 20 ticks/s each, nobody sending, for BENCH_SECONDS (3):
// ticks published per second, durable graph commits per second (every
// idle tick is a graph write: the graph has no volatile souls), fields
// written, and process CPU per tick.
func BenchmarkIdleWorlds(b *testing.B) {
	worlds := clienttest.EnvInt("BENCH_WORLDS", 100)
	secs := clienttest.EnvInt("BENCH_SECONDS", 3)
	for range b.N {
		r := startRelay(b, relayOpts{})
		var insts []string
		for i := range worlds {
			insts = append(insts, r.openWorld(b, fmt.Sprintf("w%d", i), 20))
		}
		bs := r.store.(*graph.BoltStore)
		// Wait (bounded) until every world's term runs.
		deadline := time.Now().Add(30 * time.Second)
		for _, inst := range insts {
			for {
				if st, ok := r.svc.Host().Status(inst); ok && st.Active && st.Seq > 0 {
					break
				}
				if time.Now().After(deadline) {
					b.Fatal("worlds did not start")
				}
				<-time.After(10 * time.Millisecond)
			}
		}
		st0 := bs.Stats()
		var cpu0, cpu1 syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &cpu0)
		t0 := time.Now()
		ticks0 := tickCount(r)
		<-time.After(time.Duration(secs) * time.Second) // the measured window
		ticks1 := tickCount(r)
		el := time.Since(t0).Seconds()
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &cpu1)
		st1 := bs.Stats()
		cpu := time.Duration(cpu1.Utime.Nano()+cpu1.Stime.Nano()-cpu0.Utime.Nano()-cpu0.Stime.Nano()) * time.Nanosecond
		ticks := ticks1 - ticks0
		b.ReportMetric(ticks/el, "ticks/s")
		b.ReportMetric(float64(st1.Commits-st0.Commits)/el, "commits/s")
		b.ReportMetric(float64(st1.Accepted-st0.Accepted)/el, "fields/s")
		b.ReportMetric(float64(cpu.Microseconds())/max(ticks, 1), "cpu-µs/tick")
		b.ReportMetric(cpu.Seconds()/el*100, "cpu-%")
		r.stop()
	}
}

// tickCount reads luminary_ticks_total from the relay's metrics.
func tickCount(r *relay) float64 { return counter(r, "luminary_ticks_total") }

// rawSubscriber is a bare Gun wire subscriber (no verification): it gets
// the souls and reads pushes.
func rawSubscriber(b *testing.B, url string, souls ...string) *websocket.Conn {
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	ws.SetReadLimit(64 << 20)
	for i, soul := range souls {
		msg := fmt.Sprintf(`{"#":"g%d%d","get":{"#":%q}}`, i, time.Now().UnixNano()%1e9, soul)
		if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			b.Fatal(err)
		}
	}
	return ws
}

// histAverages returns "name=avg(count)" for the relay's histograms, for
// diagnosing benchmark runs.
func histAverages(r *relay) string {
	mfs, _ := r.reg.Gather()
	out := ""
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h != nil && h.GetSampleCount() > 0 {
				out += fmt.Sprintf("%s=%.2fms(n=%d) ", mf.GetName(), h.GetSampleSum()/float64(h.GetSampleCount())*1000, h.GetSampleCount())
			}
		}
	}
	return out
}
