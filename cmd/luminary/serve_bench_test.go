//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/krestianstvo/luminary/client"
	"github.com/krestianstvo/luminary/client/clienttest"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/keys"
)

// BenchmarkRelayProcess measures the relay as a separate process: the
// real binary (`luminary serve --data DIR --demo`, bbolt with fsync), b.N
// messages sent by BENCH_SENDERS (8) Go clients with BENCH_INFLIGHT (8)
// messages in flight each, delivered to BENCH_RECEIVERS (50) bare Gun wire
// subscribers of the demo world's heartbeat and log blocks. The load runs
// in the test process; the relay's CPU comes from /proc/<pid>/stat, so
// relay-µs/msg is the relay's own cost (sequencing, both graph writes,
// fan-out to 58 connections), not the clients'.
//
//	go test -run '^$' -bench RelayProcess -benchtime 3000x ./cmd/luminary/
func BenchmarkRelayProcess(b *testing.B) {
	bin := luminaryBinary(b)
	data := b.TempDir()
	senders := clienttest.EnvInt("BENCH_SENDERS", 8)
	inflight := clienttest.EnvInt("BENCH_INFLIGHT", 8)
	receivers := clienttest.EnvInt("BENCH_RECEIVERS", 50)
	srv := startServe(b, bin, data, "127.0.0.1:0")
	addr := srv.addr

	var worlds []*client.World
	var inst string
	for range senders {
		k, _ := keys.Generate(keys.Secp256k1)
		inst = demoJoin(b, addr, k)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		c, err := client.Dial(ctx, "ws://"+addr+"/gun", client.Config{Key: k})
		if err != nil {
			b.Fatal(err)
		}
		w, err := c.Join(ctx, inst, client.JoinOptions{SkipAuthorSignatures: true, Buffer: 1 << 16})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		worlds = append(worlds, w)
		go func() {
			for range w.Events() {
			}
		}()
	}
	want := int64(b.N) * int64(receivers)
	var got atomic.Int64
	done := make(chan struct{})
	var dmu sync.Mutex
	var deliv []time.Duration
	var rwg sync.WaitGroup
	var raws []*websocket.Conn
	for range receivers {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/gun", nil)
		if err != nil {
			b.Fatal(err)
		}
		ws.SetReadLimit(64 << 20)
		raws = append(raws, ws)
		souls := []string{heartbeat.HeartbeatSoul(inst)}
		for blk := uint64(0); blk <= uint64(b.N+2000)/heartbeat.BlockSize; blk++ {
			souls = append(souls, heartbeat.BlockSoul(inst, blk*heartbeat.BlockSize))
		}
		for i, s := range souls {
			_ = ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"#":"r%d%d","get":{"#":%q}}`, i, time.Now().UnixNano()%1e9, s))
		}
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			seen := map[string]bool{}
			var local []time.Duration
			defer func() {
				dmu.Lock()
				deliv = append(deliv, local...)
				dmu.Unlock()
			}()
			for {
				_, data, err := ws.ReadMessage()
				if err != nil {
					return
				}
				now := time.Now().UnixNano()
				for _, ts := range clienttest.PayloadTimes(data, seen) {
					local = append(local, time.Duration(now-ts))
					if got.Add(1) == want {
						close(done)
					}
				}
			}
		}()
	}

	cpu0 := procCPU(b, srv.cmd.Process.Pid)
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
	el := time.Since(start)
	b.StopTimer()
	cpu := procCPU(b, srv.cmd.Process.Pid) - cpu0
	for _, ws := range raws {
		ws.Close()
	}
	rwg.Wait()
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
	b.ReportMetric(clienttest.PercentileMS(receipts, 0.5), "receipt-p50-ms")
	b.ReportMetric(clienttest.PercentileMS(receipts, 0.99), "receipt-p99-ms")
	b.ReportMetric(clienttest.PercentileMS(deliv, 0.5), "deliver-p50-ms")
	b.ReportMetric(clienttest.PercentileMS(deliv, 0.99), "deliver-p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "relay-µs/msg")
	b.ReportMetric(cpu.Seconds()/el.Seconds()*100, "relay-cpu-%")
	if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, name := range []string{"luminary_publish_seconds", "luminary_message_receipt_seconds", "luminary_store_merge_seconds", "luminary_tick_lateness_seconds"} {
			sum, count := metricSumCount(string(body), name)
			if count > 0 {
				b.ReportMetric(sum/count*1000, strings.TrimPrefix(name, "luminary_")+"-avg-ms")
			}
		}
	}
}

// metricSumCount reads <name>_sum and <name>_count from a Prometheus text
// exposition.
func metricSumCount(text, name string) (sum, count float64) {
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, name+"_sum "); ok {
			sum, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok := strings.CutPrefix(l, name+"_count "); ok {
			count, _ = strconv.ParseFloat(v, 64)
		}
	}
	return sum, count
}

// procCPU returns utime+stime of pid (clock ticks of 10 ms).
func procCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
