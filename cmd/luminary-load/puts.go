package main

import (
	"context"
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/krestianstvo/luminary/keys"
)

// putsConfig configures the puts mode.
type putsConfig struct {
	URL           string        `json:"url"`
	Label         string        `json:"label"`
	Writers       int           `json:"writers"`
	Window        int           `json:"window"`
	ValueSize     int           `json:"value_size"`
	FieldsPerSoul int           `json:"fields_per_soul"`
	Warmup        time.Duration `json:"-"`
	Duration      time.Duration `json:"-"`
	Timeout       time.Duration `json:"-"`
	DialTimeout   time.Duration `json:"-"`
	Hello         bool          `json:"hello"`
	RelayPID      int           `json:"relay_pid,omitempty"`
	Signed        string        `json:"signed,omitempty"` // "" or "sea": pre-signed SEA user-space puts
	Users         int           `json:"users,omitempty"`
	Presign       int           `json:"presign,omitempty"`
	Tamper        int           `json:"tamper_every,omitempty"`
	VerifyBench   time.Duration `json:"-"`
	WarmupS       float64       `json:"warmup_s"`
	DurationS     float64       `json:"duration_s"`
	TimeoutS      float64       `json:"timeout_s"`
}

func (c *putsConfig) validate() error {
	switch {
	case c.Writers < 1 || c.Writers > 10000:
		return fmt.Errorf("luminary-load: --writers must be 1..10000")
	case c.Window < 1 || c.Window > 1<<20:
		return fmt.Errorf("luminary-load: --window must be 1..1048576")
	case c.ValueSize < 1 || c.ValueSize > 1<<24:
		return fmt.Errorf("luminary-load: --size must be 1..16777216")
	case c.FieldsPerSoul < 1:
		return fmt.Errorf("luminary-load: --fields-per-soul must be >= 1")
	case c.Duration <= 0 || c.Timeout <= 0 || c.Warmup < 0 || c.DialTimeout <= 0:
		return fmt.Errorf("luminary-load: durations must be positive")
	case c.Signed != "" && c.Signed != "sea":
		return fmt.Errorf("luminary-load: --signed must be empty or sea")
	case c.Signed == "sea" && (c.Users < 1 || c.Users > 1000 || c.Presign < 1 || c.Presign > 5_000_000):
		return fmt.Errorf("luminary-load: --users must be 1..1000 and --presign 1..5000000")
	}
	c.WarmupS, c.DurationS, c.TimeoutS = c.Warmup.Seconds(), c.Duration.Seconds(), c.Timeout.Seconds()
	return nil
}

// putsResult is the outcome of one puts run. Definitions:
//   - Sent: puts written during the measured window (after warm-up).
//   - AckedInWindow: positive acks that arrived during the measured window,
//     whatever the put's send time; AckedPerSec = AckedInWindow / duration.
//   - AckLatency: ack time minus send time for puts sent in the window and
//     acked before their timeout (acks arriving in the drain count).
//   - Errors: puts sent in the window answered with "err".
//   - Timeouts: puts sent in the window with no reply within the timeout.
//   - ForeignAcks: acks to one writer's put that reached another writer's
//     connection; LateAcks: acks after the put timed out (warm-up puts
//     included); DuplicateAcks: a second ack to a put already acked. None of
//     them counts as an ack.
type putsResult struct {
	Tool            string         `json:"tool"`
	Mode            string         `json:"mode"`
	Label           string         `json:"label"`
	Started         string         `json:"started"`
	Params          putsConfig     `json:"params"`
	Load1Start      float64        `json:"load1_start"`
	Load1End        float64        `json:"load1_end"`
	Connected       int            `json:"connected"`
	Sent            uint64         `json:"sent"`
	SentPerSec      float64        `json:"sent_per_s"`
	AckedInWindow   uint64         `json:"acked_in_window"`
	AckedPerSec     float64        `json:"acked_per_s"`
	Errors          uint64         `json:"errors"`
	Timeouts        uint64         `json:"timeouts"`
	Unresolved      uint64         `json:"unresolved"`
	ErrorSamples    []string       `json:"error_samples,omitempty"`
	AckLatency      latencySummary `json:"ack_latency"`
	OtherFrames     uint64         `json:"other_frames"`
	ForeignAcks     uint64         `json:"foreign_acks"`
	DuplicateAcks   uint64         `json:"duplicate_acks"`
	LateAcks        uint64         `json:"late_acks"`
	BadFrames       uint64         `json:"bad_frames"`
	ConnErrors      []string       `json:"conn_errors,omitempty"`
	ToolCPUSeconds  float64        `json:"tool_cpu_s"`
	RelayCPUSeconds float64        `json:"relay_cpu_s"`

	// Signed runs: the pool of pre-signed puts and, when --verify-bench
	// was given, this machine's raw verification rate measured in the same
	// command just before the run, and the ratios to it.
	PresignSeconds float64     `json:"presign_s,omitempty"`
	PoolExhausted  bool        `json:"pool_exhausted,omitempty"`
	Verify         *verifyRate `json:"verify,omitempty"`
	// VerifyAfter is the same measurement right after the run; the ratios
	// use the mean of Verify and VerifyAfter (RawPerSecAll, RawCPUUsPerOp).
	VerifyAfter      *verifyRate `json:"verify_after,omitempty"`
	RawPerSecAll     float64     `json:"raw_per_s_all_threads_mean,omitempty"`
	RawCPUUsPerOp    float64     `json:"raw_cpu_us_per_op_mean,omitempty"`
	RawCPUUsPerOpAll float64     `json:"raw_cpu_us_per_op_all_threads_mean,omitempty"`
	RelayCPUUsPerAck float64     `json:"relay_cpu_us_per_ack,omitempty"`
	// AckedVsRaw is acked puts/s ÷ raw verifications/s on all threads.
	AckedVsRaw float64 `json:"acked_vs_raw_verify,omitempty"`
	// CPUVsRaw is raw verify CPU µs/op ÷ relay CPU µs per acked put: the
	// share of the relay's per-put CPU that verification alone would take.
	CPUVsRaw float64 `json:"raw_verify_cpu_vs_relay_cpu_per_ack,omitempty"`
	// CPUVsRawAll is CPUVsRaw with the raw CPU per op measured with every
	// thread busy, as the relay's cores are while it verifies on all of
	// them.
	CPUVsRawAll float64 `json:"raw_verify_cpu_all_threads_vs_relay_cpu_per_ack,omitempty"`
}

// pendingPut is a put waiting for its ack.
type pendingPut struct {
	sent     time.Time
	measured bool
}

// putWriter is one writer connection and its in-flight window.
type putWriter struct {
	cfg    *putsConfig
	idx    int
	run    string
	p      *peer
	states *stateClock
	tokens chan struct{}

	mu      sync.Mutex
	pending map[string]pendingPut
	errs    []string

	hist *histogram // owned by the reader goroutine until it returns
	pool *putPool   // signed runs: pre-built puts (shared by all writers)

	sent, acked, errors, timeouts, other, bad atomic.Uint64
	foreign, dupAcks, lateAcks                atomic.Uint64

	// ids is shared by all writers: every put id ever sent in this run and
	// the writer that sent it, so an ack that reaches the wrong connection
	// (foreign) or arrives twice (duplicate) is told apart from noise.
	ids *idOwners
	// expired holds the ids of puts given up on (timed out), so their
	// acks are counted as late rather than duplicate.
	expired *sync.Map
}

// phase times shared by all writers.
type putsClock struct {
	warmEnd, end time.Time
}

func runPuts(ctx context.Context, cfg putsConfig) (*putsResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	res := &putsResult{Tool: "luminary-load", Mode: "puts", Label: cfg.Label, Params: cfg,
		Started: time.Now().UTC().Format(time.RFC3339), Load1Start: load1()}
	run := newID()[:6]
	states := newStateClock()

	var pool *putPool
	if cfg.Signed == "sea" {
		users := make([]*keys.Private, cfg.Users)
		for i := range users {
			k, err := keys.Generate(keys.P256)
			if err != nil {
				return nil, err
			}
			users[i] = k
		}
		t0 := time.Now()
		p, err := buildSEAPool(users, run, cfg.Presign, cfg.ValueSize, cfg.Tamper)
		if err != nil {
			return nil, err
		}
		pool = p
		res.PresignSeconds = round3(time.Since(t0).Seconds())
		// Raw verification is measured right before the run (after
		// signing, so the relay and the machine are as they will be) and
		// right after it; the ratios use the mean of the two.
		if cfg.VerifyBench > 0 {
			vr, err := measureVerify(ctx, keys.P256, 0, cfg.VerifyBench)
			if err != nil {
				return nil, err
			}
			res.Verify = vr
		}
		res.Load1Start = load1()
	}

	ws := make([]*putWriter, cfg.Writers)
	ids := newIDOwners()
	var expired sync.Map
	var dialErr error
	var dmu sync.Mutex
	var dwg sync.WaitGroup
	for i := range ws {
		dwg.Go(func() {
			p, err := dialPeer(ctx, dialOptions{url: cfg.URL, timeout: cfg.DialTimeout, hello: cfg.Hello, readLimit: 64 << 20, cork: true})
			if err != nil {
				dmu.Lock()
				dialErr = err
				dmu.Unlock()
				return
			}
			ws[i] = &putWriter{cfg: &cfg, idx: i, run: run, p: p, states: states, ids: ids, expired: &expired,
				tokens: make(chan struct{}, cfg.Window), pending: make(map[string]pendingPut), hist: newHistogram(), pool: pool}
		})
	}
	dwg.Wait()
	if dialErr != nil {
		for _, w := range ws {
			if w != nil {
				w.p.close()
			}
		}
		return nil, dialErr
	}
	res.Connected = len(ws)

	start := time.Now()
	clk := putsClock{warmEnd: start.Add(cfg.Warmup)}
	clk.end = clk.warmEnd.Add(cfg.Duration)

	var readers, senders sync.WaitGroup
	connErrs := make(chan string, 2*len(ws))
	for _, w := range ws {
		readers.Go(func() {
			if err := w.p.run(func(raw []byte) []message { return w.onFrame(raw, clk) }); err != nil {
				connErrs <- fmt.Sprintf("writer %d read: %v", w.idx, err)
			}
		})
	}
	stopSend := make(chan struct{})
	for _, w := range ws {
		senders.Go(func() {
			if err := w.sendLoop(clk, stopSend); err != nil {
				connErrs <- fmt.Sprintf("writer %d send: %v", w.idx, err)
			}
		})
	}
	// The run ends only after every sender has returned (and flushed):
	// a put registered just before the end must be on the wire before the
	// drain decides nothing is left.
	sendersDone := make(chan struct{})
	go func() { senders.Wait(); close(sendersDone) }()
	stopped := false
	stopSenders := func() {
		if !stopped {
			close(stopSend)
			stopped = true
		}
	}

	// Measure CPU across the measured window only.
	var cpu cpuWatch
	sweep := time.NewTicker(50 * time.Millisecond)
	defer sweep.Stop()
	measuring, measured := false, false
	var toolCPU, relayCPU float64
	measuredFor := cfg.Duration
	drainEnd := clk.end.Add(cfg.Timeout)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-sweep.C:
			if !measuring && !now.Before(clk.warmEnd) {
				cpu = startCPU(cfg.RelayPID)
				measuring = true
			}
			if measuring && !measured && !now.Before(clk.end) {
				toolCPU, relayCPU = cpu.stop()
				measured = true
			}
			if !now.Before(clk.end) {
				stopSenders()
			}
			sent := false
			select {
			case <-sendersDone:
				sent = true
			default:
			}
			left := 0
			for _, w := range ws {
				left += w.sweep(now)
			}
			if sent && !now.Before(clk.end) && (left == 0 || now.After(drainEnd)) {
				break loop
			}
			if pool != nil && sent && left == 0 && !now.Before(clk.warmEnd) {
				// Every pre-signed put is sent and resolved: end the
				// window now (rates are computed over what was measured).
				if measuring && !measured {
					toolCPU, relayCPU = cpu.stop()
					measured = true
				}
				measuredFor = now.Sub(clk.warmEnd)
				break loop
			}
		}
	}
	stopSenders()
	for _, w := range ws {
		w.p.close()
	}
	senders.Wait()
	readers.Wait()
	close(connErrs)
	for e := range connErrs {
		res.ConnErrors = append(res.ConnErrors, e)
	}

	hist := newHistogram()
	for _, w := range ws {
		hist.merge(w.hist)
		res.Sent += w.sent.Load()
		res.AckedInWindow += w.acked.Load()
		res.Errors += w.errors.Load()
		res.Timeouts += w.timeouts.Load()
		res.OtherFrames += w.other.Load()
		res.ForeignAcks += w.foreign.Load()
		res.DuplicateAcks += w.dupAcks.Load()
		res.LateAcks += w.lateAcks.Load()
		res.BadFrames += w.bad.Load()
		w.mu.Lock()
		for _, pp := range w.pending {
			if pp.measured {
				res.Unresolved++
			}
		}
		if len(res.ErrorSamples) < 5 {
			res.ErrorSamples = append(res.ErrorSamples, w.errs...)
		}
		w.mu.Unlock()
	}
	if len(res.ErrorSamples) > 5 {
		res.ErrorSamples = res.ErrorSamples[:5]
	}
	secs := max(measuredFor.Seconds(), 1e-3)
	res.SentPerSec = round1(float64(res.Sent) / secs)
	res.AckedPerSec = round1(float64(res.AckedInWindow) / secs)
	res.AckLatency = hist.summary()
	res.ToolCPUSeconds, res.RelayCPUSeconds = toolCPU, relayCPU
	res.Load1End = load1()
	if pool != nil {
		res.PoolExhausted = pool.next.Load() >= uint64(len(pool.frames))
		if v := res.Verify; v != nil {
			rawAll, rawCPU, rawCPUAll := v.RawPerSecAll, v.RawCPUUsPerOp, v.RawCPUUsPerOpAll
			if va, err := measureVerify(ctx, keys.P256, 0, cfg.VerifyBench); err == nil {
				res.VerifyAfter = va
				rawAll, rawCPU = (rawAll+va.RawPerSecAll)/2, (rawCPU+va.RawCPUUsPerOp)/2
				rawCPUAll = (rawCPUAll + va.RawCPUUsPerOpAll) / 2
			}
			res.RawPerSecAll, res.RawCPUUsPerOp, res.RawCPUUsPerOpAll = round1(rawAll), round3(rawCPU), round3(rawCPUAll)
			if rawAll > 0 {
				res.AckedVsRaw = round3(res.AckedPerSec / rawAll)
			}
			if relayCPU > 0 && res.AckedInWindow > 0 {
				res.RelayCPUUsPerAck = round3(relayCPU * 1e6 / float64(res.AckedInWindow))
				res.CPUVsRaw = round3(rawCPU / res.RelayCPUUsPerAck)
				res.CPUVsRawAll = round3(rawCPUAll / res.RelayCPUUsPerAck)
			}
		}
	}
	return res, ctx.Err()
}

// sendLoop keeps the window full until the measured window ends.
func (w *putWriter) sendLoop(clk putsClock, stop <-chan struct{}) error {
	var seq uint64
	soulPrefix := "lload/" + w.run + "/w" + strconv.Itoa(w.idx) + "/"
	defer func() { _ = w.p.flush() }() // best effort: the run is over
	for {
		select {
		case w.tokens <- struct{}{}:
		default:
			// The window is full: write out the frames gathered so far,
			// then wait for an ack to free a slot.
			if err := w.p.flush(); err != nil {
				select {
				case <-stop:
					return nil
				default:
					return err
				}
			}
			select {
			case w.tokens <- struct{}{}:
			case <-stop:
				return nil
			}
		}
		now := time.Now()
		if !now.Before(clk.end) {
			<-w.tokens
			return nil
		}
		measured := !now.Before(clk.warmEnd)
		var build func(b []byte) []byte
		var id string
		if w.pool != nil {
			pid, frame, ok := w.pool.take()
			if !ok {
				<-w.tokens
				return nil // pool exhausted: the run is shorter than planned (reported)
			}
			id = pid
			build = func(b []byte) []byte { return append(b, frame...) }
		} else {
			id = newID()
			soul := soulPrefix + strconv.FormatUint(seq/uint64(w.cfg.FieldsPerSoul), 10)
			field := "f" + strconv.FormatUint(seq, 10)
			value := makeValue(w.run, seq, now.UnixNano(), w.cfg.ValueSize)
			state := w.states.next()
			build = func(b []byte) []byte { return appendPut(b, id, soul, field, state, value) }
		}
		seq++
		w.ids.store(id, w.idx)
		w.mu.Lock()
		w.pending[id] = pendingPut{sent: now, measured: measured}
		w.mu.Unlock()
		if err := w.p.sendCorked(build); err != nil {
			w.mu.Lock()
			delete(w.pending, id) // never sent
			w.mu.Unlock()
			select {
			case <-stop:
				return nil // closed by runPuts at the end of the run
			default:
				return err
			}
		}
		if measured {
			w.sent.Add(1)
		}
	}
}

// onFrame handles one frame on a writer connection: acks resolve pending
// puts; everything else (pushes, forwarded gets, dam) is counted and dropped.
func (w *putWriter) onFrame(raw []byte, clk putsClock) []message {
	ms := decodeAll(raw, &w.bad)
	now := time.Now()
	for i := range ms {
		m := &ms[i]
		kind := ackKind(m)
		if kind == 0 {
			w.other.Add(1)
			continue
		}
		w.mu.Lock()
		pp, ok := w.pending[m.At]
		if ok {
			delete(w.pending, m.At)
			if kind < 0 && len(w.errs) < 5 {
				w.errs = append(w.errs, ackErr(m))
			}
		}
		w.mu.Unlock()
		if !ok {
			if owner, known := w.ids.load(m.At); !known {
				w.other.Add(1)
			} else if owner != w.idx {
				w.foreign.Add(1)
			} else if _, late := w.expired.Load(m.At); late {
				w.lateAcks.Add(1)
			} else {
				w.dupAcks.Add(1)
			}
			continue
		}
		<-w.tokens
		if kind < 0 {
			if pp.measured {
				w.errors.Add(1)
			}
			continue
		}
		if !now.Before(clk.warmEnd) && now.Before(clk.end) {
			w.acked.Add(1)
		}
		if pp.measured {
			w.hist.record(now.Sub(pp.sent))
		}
	}
	return ms
}

// sweep expires puts older than the timeout and returns how many puts sent
// are still pending.
func (w *putWriter) sweep(now time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, pp := range w.pending {
		if now.Sub(pp.sent) > w.cfg.Timeout {
			delete(w.pending, id)
			w.expired.Store(id, struct{}{})
			if pp.measured {
				w.timeouts.Add(1)
			}
			<-w.tokens
		}
	}
	return len(w.pending)
}

// idOwners maps every put id of a run to the writer that sent it. Keys are
// 64-bit hashes of the ids and values writer indexes, so the map holds no
// pointers: a run sends millions of puts, and a sync.Map of them was the
// tool's largest cost after its writes (the collector scanned it at every
// cycle, on the two cores the relay under test needs). A hash collision
// (about one in 2^64 per pair) could only misfile an unexpected ack.
type idOwners struct {
	seed maphash.Seed
	mu   sync.Mutex
	m    map[uint64]int32
}

func newIDOwners() *idOwners {
	return &idOwners{seed: maphash.MakeSeed(), m: make(map[uint64]int32, 1<<16)}
}

func (o *idOwners) store(id string, writer int) {
	h := maphash.String(o.seed, id)
	o.mu.Lock()
	o.m[h] = int32(writer)
	o.mu.Unlock()
}

func (o *idOwners) load(id string) (writer int, ok bool) {
	h := maphash.String(o.seed, id)
	o.mu.Lock()
	w, ok := o.m[h]
	o.mu.Unlock()
	return int(w), ok
}
