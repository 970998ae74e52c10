package api

import (
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/krestianstvo/luminary/graph"
)

// BenchmarkPutAck measures acknowledged puts through an in-process relay:
// 8 gorilla writers, each keeping 64 puts in flight (the load tool's
// "windowed writer"), one field per put. With the bolt store every ack means
// the put is fsynced. Reported: puts/s and the ack latency p50/p99.
func BenchmarkPutAck(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchPutAck(b, graph.NewMemoryStore()) })
	b.Run("bolt", func(b *testing.B) {
		bs, err := graph.OpenBolt(filepath.Join(b.TempDir(), "graph.db"), graph.BoltOptions{})
		if err != nil {
			b.Fatal(err)
		}
		benchPutAck(b, bs)
	})
}

// noIdleTimeout keeps benchmark connections open: the test env's fake clock
// never sends the pings that would keep an idle reader's deadline moving.
func noIdleTimeout(l *Limits) { l.PongWait, l.PingPeriod = time.Hour, 50*time.Minute }

func benchPutAck(b *testing.B, store graph.Store) {
	const writers, window = 8, 64
	e := newEnvStore(b, store, withLimits(noIdleTimeout))
	st := e.now() - 1000
	conns := make([]*websocket.Conn, writers)
	for i := range conns {
		ws, _, err := websocket.DefaultDialer.Dial(e.url, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer ws.Close()
		if _, _, err := ws.ReadMessage(); err != nil { // hello
			b.Fatal(err)
		}
		conns[i] = ws
	}
	per := b.N/writers + 1
	lat := make([][]time.Duration, writers)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w, ws := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent := make(map[string]time.Time, window)
			var mu sync.Mutex
			slots := make(chan struct{}, window)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for got := 0; got < per; {
					_, data, err := ws.ReadMessage()
					if err != nil {
						b.Error(err)
						return
					}
					msgs, err := DecodeFrame(data, DecodeLimits{})
					if err != nil {
						b.Error(err)
						return
					}
					for _, m := range msgs {
						if m.Ack == "" {
							continue
						}
						if m.OK != true {
							b.Errorf("ack %s: %s", m.Ack, m.Err)
						}
						mu.Lock()
						t0 := sent[m.Ack]
						delete(sent, m.Ack)
						mu.Unlock()
						lat[w] = append(lat[w], time.Since(t0))
						got++
						<-slots
					}
				}
			}()
			soul := "bench/" + strconv.Itoa(w)
			for i := range per {
				slots <- struct{}{}
				id := newID()
				f := putFrame(id, soul, st+float64(i)/1000, "f"+strconv.Itoa(i%1000), `"value-`+strconv.Itoa(i)+`"`)
				mu.Lock()
				sent[id] = time.Now()
				mu.Unlock()
				if err := ws.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
					b.Error(err)
					return
				}
			}
			<-done
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(len(all))/el.Seconds(), "puts/s")
		b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	}
}

// BenchmarkFanout measures pushes to 50 subscribers of one soul from one
// windowed writer (memory store): each put is serialized once and queued
// to every subscriber.
func BenchmarkFanout(b *testing.B) {
	const subs, window = 50, 32
	e := newEnv(b, withLimits(func(l *Limits) { l.SendBuffer = 64 << 20; noIdleTimeout(l) }))
	st := e.now() - 1000
	var wg sync.WaitGroup
	lat := make([][]time.Duration, subs)
	sentAt := sync.Map{}
	for s := range subs {
		ws, _, err := websocket.DefaultDialer.Dial(e.url, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer ws.Close()
		ws.ReadMessage() // hello
		ws.WriteMessage(websocket.TextMessage, []byte(`{"#":"`+newID()+`","get":{"#":"fan"}}`))
		ws.ReadMessage() // reply
		wg.Add(1)
		go func() {
			defer wg.Done()
			for got := 0; got < b.N; {
				_, data, err := ws.ReadMessage()
				if err != nil {
					b.Error(err)
					return
				}
				msgs, _ := DecodeFrame(data, DecodeLimits{})
				for _, m := range msgs {
					if m.HasPut {
						if t0, ok := sentAt.Load(m.ID); ok {
							lat[s] = append(lat[s], time.Since(t0.(time.Time)))
						}
						got++
					}
				}
			}
		}()
	}
	w, _, err := websocket.DefaultDialer.Dial(e.url, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	w.ReadMessage()
	slots := make(chan struct{}, window)
	go func() {
		for {
			_, data, err := w.ReadMessage()
			if err != nil {
				return
			}
			msgs, _ := DecodeFrame(data, DecodeLimits{})
			for _, m := range msgs {
				if m.Ack != "" {
					<-slots // acks share frames when they come together
				}
			}
		}
	}()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		slots <- struct{}{}
		id := newID()
		sentAt.Store(id, time.Now())
		w.WriteMessage(websocket.TextMessage, []byte(putFrame(id, "fan", st+float64(i)/1000, "f"+strconv.Itoa(i%100), strconv.Itoa(i))))
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(b.N)/el.Seconds(), "puts/s")
		b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	}
}

// BenchmarkRoundFrames measures encoding the push frames of one heartbeat
// round of 5,000 worlds followed over 10 connections of 500 (the shape of
// `bench/heartbeat.sh ticks` at 5,000 worlds; a tick text of ~1.2 KB per
// world): "serial" with one encoder as the relay did before encodeParts,
// "parallel" with encodeParts on GOMAXPROCS goroutines. Reported: ms of
// wall clock per round (the time on the path of every tick to its
// followers).
func BenchmarkRoundFrames(b *testing.B) {
	const worlds, conns = 5000, 10
	tick := `{"instance":"k1:A6KosEmr_9WrMZK9gw0Fx8vUboCUk6UCVctCy7Ww9C1k","epoch":1,"n":66,"seq":1,` +
		`"head":"3fD1W9_SilXfGpYaNk-IMohPt_qvATbZNSrGhKCUiic","state":1795807071467.835,"start":1795807068247.632,` +
		`"rate":1,"signer":"k1:AuaMb2pLuqC9wk8hLGgJhVtzSa8aSE-7n2OJqTKJrscC","index":12,"count":5000,"path":[`
	for i := range 13 {
		if i > 0 {
			tick += ","
		}
		tick += `"S3c_HOR9UfC48EjOwHEN6jVRfQikEZmpdJwOSv5ACVY"`
	}
	tick += `],"sig":"ZI9niDiY63eeW7WtenN1yvgPEtkThNDPKe_yQ0CvwuMxlpY2cOD199kNnCiWbqpL6Pw7oGWcVte4XUQ57jNZxw"}`
	accepted := graph.Graph{}
	souls := make([]string, worlds)
	for i := range worlds {
		souls[i] = "lum/k1:A6KosEmr_9WrMZK9gw0Fx8vUboCUk6UCVctCy7W" + strconv.Itoa(100000+i) + "/hb"
		accepted.Set(souls[i], "tick", graph.Field{Value: graph.String(tick), State: 1795807071467.835})
	}
	rcpts := make([]recipient, conns)
	for i := range rcpts {
		part := graph.Graph{}
		for _, soul := range souls[i*worlds/conns : (i+1)*worlds/conns] {
			part[soul] = accepted[soul]
		}
		rcpts[i].part = part
	}
	frames := make([]outFrame, conns)
	for _, mode := range []string{"serial", "parallel"} {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				if mode == "parallel" && encodeParts(accepted, "id1", "", rcpts, frames) {
					for _, f := range frames {
						f.recycle()
					}
					continue
				}
				enc := newPushEncoder(accepted, "id1", "")
				for i, r := range rcpts {
					frames[i] = enc.ownFrame(r.part)
				}
				enc.release()
				for _, f := range frames {
					f.recycle() // as the connection's writer does once written
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/round")
			b.ReportMetric(0, "ns/op")
		})
	}
}
