package heartbeat_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/heartbeat/heartbeattest"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/keys"
)

// BenchmarkSequencerThroughput pushes messages through one instance on a
// real clock: admission (author signature verification), sequencing, one
// round signature per step, durable group-committed bbolt append, ack.
// 512 messages are kept in flight. Metric: msgs/s.
func BenchmarkSequencerThroughput(b *testing.B) {
	for _, curve := range []keys.Curve{keys.Secp256k1, keys.P256} {
		b.Run("authors="+curve.String(), func(b *testing.B) {
			bl, err := heartbeat.OpenBolt(filepath.Join(b.TempDir(), "bench.db"), heartbeat.BoltOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer bl.Close()
			owner := heartbeattest.Key(1)
			inst := owner.Public().String()
			h, err := heartbeat.NewHost(heartbeat.HostConfig{Signer: heartbeat.KeySigner(owner), Log: bl, Lease: bl.Lease(), MaxQueue: 1 << 20})
			if err != nil {
				b.Fatal(err)
			}
			if err := h.Add(heartbeat.InstanceConfig{Instance: inst}); err != nil {
				b.Fatal(err)
			}
			runCtx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- h.Run(runCtx) }()
			defer func() { cancel(); <-done }()
			author, _ := keys.Generate(curve)
			signer := heartbeat.KeySigner(author)
			waitActive(b, h, inst)
			msgs := make([]heartbeat.Message, b.N)
			now := time.Now().UnixMilli()
			for i := range msgs {
				msgs[i] = heartbeat.Message{Instance: inst, TS: now, Nonce: fmt.Sprint(i), Payload: `{"action":"setProperty","node":"n1","member":"x","parameters":[1]}`}
				if err := msgs[i].Sign(signer); err != nil {
					b.Fatal(err)
				}
			}
			sem := make(chan struct{}, 512)
			var wg sync.WaitGroup
			b.ResetTimer()
			cpu0 := cpuTime()
			start := time.Now()
			for i := range msgs {
				sem <- struct{}{}
				wg.Add(1)
				h.Submit(context.Background(), msgs[i], func(_ heartbeat.Receipt, err error) {
					if err != nil {
						b.Error(err)
					}
					<-sem
					wg.Done()
				})
			}
			wg.Wait()
			b.StopTimer()
			reportCPU(b, cpu0)
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// BenchmarkTickRound signs one round over n instances' tick records:
// building the Merkle tree and every path, and one secp256k1 signature.
func BenchmarkTickRound(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprint("instances=", n), func(b *testing.B) {
			recs := records(n)
			s := heartbeattest.Signer(1)
			cpu0 := cpuTime()
			for b.Loop() {
				if _, err := heartbeat.SignRound(s, recs); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu0)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/instance")
		})
	}
}

// BenchmarkHostRound is one full idle host step for n instances, each due:
// a Sequencer tick per instance, one round signature, publication (no
// reservation write in steady state). A 20 Hz budget is 50 ms per round.
func BenchmarkHostRound(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprint("instances=", n), func(b *testing.B) {
			fake := clock.NewFake(heartbeattest.Epoch)
			start := fake.Now()
			log := heartbeat.NewMemLog()
			relay := heartbeattest.Signer(1)
			h, err := heartbeat.NewHost(heartbeat.HostConfig{Signer: relay, Log: log, Lease: heartbeat.NewMemLease(fake), Clock: fake,
				Elapsed:      func() time.Duration { return fake.Now().Sub(start) },
				Authorizer:   heartbeat.AuthorizerFunc(func(context.Context, string, string, heartbeat.Role, time.Time) error { return nil }),
				LeaseTTL:     time.Hour, // no renewals inside the measurement
				ReserveAhead: time.Hour, // steady state: no reservation writes
				Sink:         heartbeat.SinkFunc(func(heartbeat.Publication) {}),
				MaxInstances: n,
			})
			if err != nil {
				b.Fatal(err)
			}
			for i := range n {
				if err := h.Add(heartbeat.InstanceConfig{Instance: heartbeattest.Key(uint64(10000 + i)).Public().String()}); err != nil {
					b.Fatal(err)
				}
			}
			for range 3 { // acquire, start terms, first (writing) round
				if _, err := h.Step(context.Background()); err != nil {
					b.Fatal(err)
				}
				fake.Advance(50 * time.Millisecond)
			}
			cpu0 := cpuTime()
			for b.Loop() {
				fake.Advance(50 * time.Millisecond)
				if _, err := h.Step(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu0)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/instance")
		})
	}
}

// BenchmarkFollowerVerify measures what a follower pays.
func BenchmarkFollowerVerify(b *testing.B) {
	v := heartbeat.KeyVerifier(nil)
	ticks, err := heartbeat.SignRound(heartbeattest.Signer(1), records(5000))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("tick/cold-round", func(b *testing.B) { // first tick of a round: path + signature
		defer reportCPU(b, cpuTime())
		for b.Loop() {
			if err := heartbeat.VerifyTick(&ticks[17], v, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tick/cached-round", func(b *testing.B) { // any later tick of the same round: path only
		cache := heartbeat.NewRoundCache(16)
		_ = heartbeat.VerifyTick(&ticks[0], v, cache)
		i := 0
		defer reportCPU(b, cpuTime())
		for b.Loop() {
			i = (i + 1) % len(ticks)
			if err := heartbeat.VerifyTick(&ticks[i], v, cache); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, skip := range []bool{false, true} {
		name := "entry/author-verified"
		if skip {
			name = "entry/sequencer-trusted"
		}
		b.Run(name, func(b *testing.B) { // one op = 64 message entries + the tick covering them
			s := longStreamN(64)
			inst := s.Seq.Meta().Instance
			cache := heartbeat.NewRoundCache(16)
			cpu0 := cpuTime()
			for b.Loop() {
				f, _ := heartbeat.NewFollower(heartbeat.FollowerConfig{Instance: inst, Verifier: v, Cache: cache, SkipAuthorSignatures: skip})
				for _, e := range s.Entries {
					_ = f.AddEntry(e)
				}
				if err := f.AddTick(s.Ticks[len(s.Ticks)-1]); err != nil {
					b.Fatal(err)
				}
				if len(f.Ready()) != len(s.Entries)+1 {
					b.Fatal("not applied")
				}
			}
			reportCPU(b, cpu0)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(s.Entries)), "ns/entry")
		})
	}
}

func longStreamN(n int) *heartbeattest.Stream {
	owner := heartbeattest.Signer(1)
	s := heartbeattest.NewStream(owner, owner.Public(), 1, heartbeat.Head{}, nil, 0, heartbeattest.Epoch)
	author := heartbeattest.Signer(2)
	for range n {
		s.Message(author, heartbeattest.Epoch.UnixMilli(), `{"action":"x"}`)
	}
	s.Tick(time.Millisecond)
	return s
}

// BenchmarkSequencerLatency paces messages at 2,000/s into one instance
// (secp256k1 authors, durable bbolt log, real clock) and reports the
// submit-to-ack latency: at ack time the message is durable and the signed
// checkpoint tick that covers it is published in the same round, so this is
// also the sequencing latency a follower sees before network delay.
func BenchmarkSequencerLatency(b *testing.B) {
	bl, err := heartbeat.OpenBolt(filepath.Join(b.TempDir(), "lat.db"), heartbeat.BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer bl.Close()
	owner := heartbeattest.Key(1)
	inst := owner.Public().String()
	h, err := heartbeat.NewHost(heartbeat.HostConfig{Signer: heartbeat.KeySigner(owner), Log: bl, Lease: bl.Lease()})
	if err != nil {
		b.Fatal(err)
	}
	if err := h.Add(heartbeat.InstanceConfig{Instance: inst}); err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	waitActive(b, h, inst)
	signer := heartbeattest.Signer(2)
	n := max(b.N, 2000)
	msgs := make([]heartbeat.Message, n)
	now := time.Now().UnixMilli()
	for i := range msgs {
		msgs[i] = heartbeat.Message{Instance: inst, TS: now, Nonce: fmt.Sprint(i), Payload: `{"action":"x"}`}
		if err := msgs[i].Sign(signer); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	tick := time.NewTicker(500 * time.Microsecond)
	defer tick.Stop()
	b.ResetTimer()
	begin := time.Now()
	for i := 0; i < len(msgs); {
		<-tick.C
		// Catch up when ticks were dropped, so the offered rate stays 2,000/s;
		// latency is measured from each message's scheduled send time.
		due := min(len(msgs), int(time.Since(begin)/(500*time.Microsecond))+1)
		for ; i < due; i++ {
			j := i
			wg.Add(1)
			sent := begin.Add(time.Duration(j) * 500 * time.Microsecond)
			h.Submit(context.Background(), msgs[j], func(_ heartbeat.Receipt, err error) {
				if err != nil {
					b.Error(err)
				}
				lat[j] = time.Since(sent)
				wg.Done()
			})
		}
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(len(msgs))/time.Since(begin).Seconds(), "msgs/s")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkBoltAppend is one durable single-entry append (one commit, one
// fsync pair) at a time: the floor of the group-commit latency.
func BenchmarkBoltAppend(b *testing.B) {
	bl, err := heartbeat.OpenBolt(filepath.Join(b.TempDir(), "append.db"), heartbeat.BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer bl.Close()
	owner := heartbeattest.Signer(1)
	s := heartbeattest.NewStream(owner, owner.Public(), 1, heartbeat.Head{}, nil, 0, heartbeattest.Epoch)
	m := s.Seq.Meta()
	tk := s.Tick(time.Millisecond)
	if err := bl.Append(context.Background(), []heartbeat.Batch{{Instance: m.Instance, Meta: &m, Entries: s.Entries, Tick: &tk, Reserve: 4e12}}); err != nil {
		b.Fatal(err)
	}
	author := heartbeattest.Signer(2)
	batches := make([]heartbeat.Batch, b.N)
	for i := range batches {
		e := s.Message(author, heartbeattest.Epoch.UnixMilli(), `{"a":1}`)
		t := s.Tick(time.Millisecond)
		batches[i] = heartbeat.Batch{Instance: m.Instance, Entries: []heartbeat.Entry{e}, Tick: &t}
	}
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := range batches {
		if err := bl.Append(context.Background(), batches[i:i+1]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportCPU(b, cpu0)
}

// waitActive blocks until the host runs a term of inst (its genesis entry
// is durable), polling its status on a ticker for at most 10 s.
func waitActive(b *testing.B, h *heartbeat.Host, inst string) {
	b.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		if st, _ := h.Status(inst); st.Active && st.Seq > 0 {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			b.Fatalf("instance %s: no term after 10 s", inst)
		}
	}
}

// BenchmarkAcceptorIdleTick is what a relay spends on one idle tick of a
// world whose metronome runs on a peer (a remote sequencer): the Acceptor
// verifies the tick's round signature (each remote tick is its own round,
// so the round cache does not help), checks the lease and the order, and
// publishes it (to a sink that discards). At t ns/op a remote-run world
// ticking 20 times a second takes 20·t ns of relay CPU a second.
func BenchmarkAcceptorIdleTick(b *testing.B) {
	for _, curve := range []keys.Curve{keys.Secp256k1, keys.P256} {
		b.Run("metronome="+curve.String(), func(b *testing.B) {
			k, err := keys.Generate(curve)
			if err != nil {
				b.Fatal(err)
			}
			signer := heartbeat.KeySigner(k)
			clk := clock.NewFake(heartbeattest.Epoch)
			log := heartbeat.NewMemLog()
			lease := heartbeat.NewMemLease(clk)
			inst := signer.Public()
			acc, err := heartbeat.NewAcceptor(heartbeat.AcceptorConfig{Log: log, Lease: lease, Clock: clk})
			if err != nil {
				b.Fatal(err)
			}
			g, err := lease.Acquire(context.Background(), inst, inst, time.Hour, 1)
			if err != nil {
				b.Fatal(err)
			}
			s := heartbeattest.NewStream(signer, inst, g.Epoch, heartbeat.Head{}, nil, 0, clk.Now())
			tk := s.Tick(time.Millisecond)
			m := s.Seq.Meta()
			if err := acc.Accept(context.Background(), heartbeat.Batch{Instance: inst, Meta: &m, Entries: s.Entries, Tick: &tk, Reserve: s.Reserve}); err != nil {
				b.Fatal(err)
			}
			ticks := make([]heartbeat.Tick, b.N)
			for i := range ticks {
				ticks[i] = s.Tick(50 * time.Microsecond)
			}
			b.ResetTimer()
			for i := range ticks {
				if i%1000 == 0 { // the holder's reservation, as it renews it (not timed)
					b.StopTimer()
					mark := ticks[min(i+1000, len(ticks)-1)].State + 1
					if err := log.Append(context.Background(), []heartbeat.Batch{{Instance: inst, Reserve: mark}}); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				clk.Advance(50 * time.Microsecond) // keeps the states within MaxAhead of the relay clock
				if err := acc.Accept(context.Background(), heartbeat.Batch{Instance: inst, Tick: &ticks[i]}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
