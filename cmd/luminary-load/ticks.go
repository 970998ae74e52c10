package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ticksConfig configures the ticks mode: N instances, each followed by at
// least one subscriber of lum/<I>/hb that measures the gaps between ticks
// and the ticks it never saw.
//
// Kind "gun" is Luminary as published: the tool itself is the metronome
// (Writers connections carry the puts of every instance, paced by one
// ticker with the instances' phases spread over the period) and the relay
// only forwards. Kind "luminary" is our relay as the metronome: the tool
// only follows the worlds it is given.
type ticksConfig struct {
	URL          string        `json:"url"`
	Label        string        `json:"label"`
	Kind         string        `json:"kind"`
	Instances    int           `json:"instances"`
	WorldsFile   string        `json:"worlds_file,omitempty"`
	TPS          int           `json:"tps"`
	Followers    int           `json:"followers_per_instance"`
	SoulsPerConn int           `json:"souls_per_conn"`
	Writers      int           `json:"writers"`
	MaxBatch     int           `json:"max_batch"`
	Queue        int           `json:"queue"`
	Hello        bool          `json:"hello"`
	Strict       bool          `json:"strict"`
	GapGoalMs    float64       `json:"gap_goal_ms"`
	RelayPID     int           `json:"relay_pid,omitempty"`
	Warmup       time.Duration `json:"-"`
	Duration     time.Duration `json:"-"`
	Drain        time.Duration `json:"-"`
	GetTimeout   time.Duration `json:"-"`
	DialTimeout  time.Duration `json:"-"`
	WarmupS      float64       `json:"warmup_s"`
	DurationS    float64       `json:"duration_s"`
	DrainS       float64       `json:"drain_s"`

	worlds []string // kind luminary: the instance ids followed
}

func (c *ticksConfig) validate() error {
	switch {
	case c.Kind != "gun" && c.Kind != "luminary":
		return errors.New("luminary-load: --kind must be gun or luminary")
	case c.Kind == "gun" && (c.Instances < 1 || c.Instances > 100000):
		return errors.New("luminary-load: --instances must be 1..100000")
	case c.Kind == "luminary" && len(c.worlds) == 0:
		return errors.New("luminary-load: no worlds to follow (--worlds-file, or none listed by the relay)")
	case c.TPS < 1 || c.TPS > 1000:
		return errors.New("luminary-load: --tps must be 1..1000")
	case c.Followers < 1 || c.Followers > 100:
		return errors.New("luminary-load: --followers must be 1..100")
	case c.SoulsPerConn < 1 || c.SoulsPerConn > 100000:
		return errors.New("luminary-load: --souls-per-conn must be 1..100000")
	case c.Writers < 1 || c.Writers > 1000:
		return errors.New("luminary-load: --writers must be 1..1000")
	case c.MaxBatch < 1 || c.MaxBatch > 10000 || c.Queue < 1:
		return errors.New("luminary-load: --max-batch must be 1..10000 and --queue positive")
	case c.Warmup < 0 || c.Duration <= 0 || c.Drain < 0 || c.GetTimeout <= 0 || c.DialTimeout <= 0:
		return errors.New("luminary-load: durations must be positive")
	}
	if c.Kind == "luminary" {
		c.Instances = len(c.worlds)
	}
	if float64(c.Instances)*float64(c.TPS)*(c.Warmup+c.Duration).Seconds() > 50_000_000 {
		return errors.New("luminary-load: instances × tps × (warmup+duration) exceed 50M ticks")
	}
	c.WarmupS, c.DurationS, c.DrainS = c.Warmup.Seconds(), c.Duration.Seconds(), c.Drain.Seconds()
	return nil
}

// ticksResult is the outcome of one ticks run.
type ticksResult struct {
	Tool       string      `json:"tool"`
	Mode       string      `json:"mode"`
	Label      string      `json:"label"`
	Kind       string      `json:"kind"`
	Started    string      `json:"started"`
	Params     ticksConfig `json:"params"`
	Instances  int         `json:"instances"`
	Load1Start float64     `json:"load1_start"`
	Load1End   float64     `json:"load1_end"`

	FollowerConns int            `json:"follower_conns"`
	Subscribed    int            `json:"subscribed"`
	GetReplies    int            `json:"get_replies"`
	GetLatency    latencySummary `json:"get_latency"`

	// Kind gun: what the tool's metronome did in the window.
	Offered         uint64 `json:"offered"`           // ticks due in the window
	Written         uint64 `json:"written"`           // of those, written to the relay
	DroppedAtSender uint64 `json:"dropped_at_sender"` // not written by the window's end: the relay did not read fast enough
	WriterFrames    uint64 `json:"writer_frames"`

	Totals tickTotals `json:"totals"`
	// Lost is what followers missed: gun, written × followers − received;
	// luminary, the gaps in the tick counters (Totals.LostByGap).
	Lost    uint64  `json:"lost"`
	LostPct float64 `json:"lost_pct"`
	// CadenceExpected (luminary) is followed instances × duration × tps.
	CadenceExpected uint64 `json:"cadence_expected,omitempty"`
	// SlowConsumerCloses counts follower connections the relay closed
	// as slow consumers (Luminary's 1013: send buffer full or stalled).
	SlowConsumerCloses int `json:"slow_consumer_closes"`
	// TicksPerSec is the received ticks per followed instance per second.
	TicksPerSec float64        `json:"ticks_per_s_per_instance"`
	Gap         latencySummary `json:"gap"`
	// Lag is arrival minus send time (gun: the tool wrote the tick) or
	// minus the tick's HAM state (luminary: the relay's clock, same host).
	Lag latencySummary `json:"lag"`
	// Luminary: RoundGap is the gap between the first arrivals of
	// consecutive rounds at any follower connection (how late a round
	// as a whole reached the tool); RoundSpread is, per round, the time
	// from its first arrival at a follower connection to its last (how
	// long delivering one round to every connection took).
	RoundGap        latencySummary `json:"round_gap,omitzero"`
	RoundSpread     latencySummary `json:"round_spread,omitzero"`
	ToolCPUSeconds  float64        `json:"tool_cpu_s"`
	RelayCPUSeconds float64        `json:"relay_cpu_s"`
	RelayCPUPct     float64        `json:"relay_cpu_pct"`
	Pass            bool           `json:"pass"`
	BadFrames       uint64         `json:"bad_frames"`
	ConnErrors      []string       `json:"conn_errors,omitempty"`
}

// tickFollower is one follower connection.
type tickFollower struct {
	p       *peer
	kind    string
	run     string
	index   map[string]int // luminary: instance id -> index
	strict  bool
	slot    map[int]int // instance index -> tallies index
	tallies []tickTally
	gaps    *histogram
	lags    *histogram
	win     *tickWindow

	getIDs  map[string]time.Time
	replies atomic.Int64
	getHist *histogram
	gotAll  chan struct{}
	replyCh chan struct{} // signalled on every get reply
	wantN   int
	rmu     sync.Mutex

	settled atomic.Bool   // the get phase is over: stop decoding frames for replies
	inWin   atomic.Uint64 // new in-window ticks (for the drain)
	bad     atomic.Uint64
	buf     []tickSeen
	ids     []string
	rounds  []roundSeen // luminary: each in-window frame's first tick stamp and arrival
}

// roundSeen is when a follower connection received a frame of the round
// stamped state (luminary: every tick of a round of one rate carries the
// round's stamp).
type roundSeen struct {
	state float64
	at    int64
}

// tickWindow holds the measured window and, for gun, the send times.
type tickWindow struct {
	kind         string
	warmEnd, end int64 // unix ns
	nFrom, nTo   uint64
	perInst      uint64 // counters per instance in the send-time table (nTo+1)
	sendNano     []atomic.Int64
	writtenInWin atomic.Uint64
	instances    int
}

func (w *tickWindow) in(t tickSeen, at int64) bool {
	if w.kind == "gun" {
		return t.n >= w.nFrom && t.n <= w.nTo
	}
	return at >= w.warmEnd && at < w.end
}

func (w *tickWindow) lag(t tickSeen, at int64) (int64, bool) {
	if w.kind == "gun" {
		if t.inst < 0 || t.inst >= w.instances || t.n > w.nTo {
			return 0, false
		}
		s := w.sendNano[uint64(t.inst)*w.perInst+t.n].Load()
		if s == 0 {
			return 0, false
		}
		return at - s, true
	}
	return at - int64(t.state*1e6), true
}

func (f *tickFollower) onFrame(raw []byte) []message {
	now := time.Now()
	at := now.UnixNano()
	var ms []message
	if bytes.Contains(raw, []byte(`"dam"`)) {
		ms = decodeAll(raw, &f.bad)
	}
	if !f.settled.Load() && int(f.replies.Load()) < f.wantN {
		f.ids = scanReplyIDs(f.ids[:0], raw)
		f.rmu.Lock()
		for _, id := range f.ids {
			if sent, ok := f.getIDs[id]; ok {
				delete(f.getIDs, id)
				f.getHist.record(now.Sub(sent))
				if int(f.replies.Add(1)) == f.wantN {
					close(f.gotAll)
				}
				select {
				case f.replyCh <- struct{}{}:
				default:
				}
			}
		}
		f.rmu.Unlock()
	}
	ts := f.buf[:0]
	switch {
	case f.strict:
		var idx map[string]int
		if f.kind == "luminary" {
			idx = f.index
		}
		got, err := parseTicksStrict(raw, f.run, idx)
		if err != nil {
			f.bad.Add(1)
		}
		ts = append(ts, got...)
	case f.kind == "gun":
		ts = scanGunTicks(ts, raw, f.run)
	default:
		ts = scanLuminaryTicks(ts, raw, f.index)
	}
	f.buf = ts
	if f.kind == "luminary" && len(ts) > 0 && f.win.in(ts[0], at) {
		f.rounds = append(f.rounds, roundSeen{ts[0].state, at})
	}
	for _, t := range ts {
		k, ok := f.slot[t.inst]
		if !ok {
			continue // gun floods every put to every peer; not ours to follow
		}
		in := f.win.in(t, at)
		before := f.tallies[k].Received
		gap, hasGap := f.tallies[k].observe(t.epoch, t.n, at, in)
		if hasGap {
			f.gaps.record(time.Duration(gap))
		}
		if f.tallies[k].Received > before { // a new tick in the window
			if l, ok := f.win.lag(t, at); ok {
				f.lags.record(time.Duration(l))
			}
			f.inWin.Add(1)
		}
	}
	return ms
}

// getBatchWait bounds the wait for one batch of get replies.
const getBatchWait = 5 * time.Second

// waitReplies blocks until *n reaches want, d passes or ctx ends; ch is
// signalled whenever *n grows.
func waitReplies(ctx context.Context, n *atomic.Int64, ch <-chan struct{}, want int64, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for n.Load() < want {
		select {
		case <-ch:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// readWorlds reads instance ids, one per line ("#" comments allowed).
func readWorlds(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		out = append(out, strings.Fields(s)[0])
	}
	return out, sc.Err()
}

// fetchWorlds lists the relay's worlds with GET /api/worlds.
func fetchWorlds(ctx context.Context, gunURL string) ([]string, error) {
	base, err := httpBase(gunURL)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/worlds", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("luminary-load: list worlds: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("luminary-load: list worlds: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	var doc struct {
		Worlds []struct {
			Instance string `json:"instance"`
		} `json:"worlds"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("luminary-load: list worlds: %w", err)
	}
	out := make([]string, 0, len(doc.Worlds))
	for _, w := range doc.Worlds {
		out = append(out, w.Instance)
	}
	return out, nil
}

// assignFollowers spreads instances × followers subscriptions over
// connections of at most perConn souls, never the same instance twice on
// one connection. It returns, per connection, the instance indexes.
func assignFollowers(instances, followers, perConn int) [][]int {
	perConn = min(perConn, instances)
	var conns [][]int
	var cur []int
	for range followers {
		for i := range instances {
			cur = append(cur, i)
			if len(cur) == perConn {
				conns = append(conns, cur)
				cur = nil
			}
		}
	}
	if len(cur) > 0 {
		conns = append(conns, cur)
	}
	return conns
}

// hbSoul is the heartbeat soul of instance i: lum/<id>/hb.
func hbSoul(kind, run string, worlds []string, i int) string {
	if kind == "luminary" {
		return "lum/" + worlds[i] + "/hb"
	}
	return "lum/t" + run + "-" + strconv.Itoa(i) + "/hb"
}

func runTicks(ctx context.Context, cfg ticksConfig) (*ticksResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	res := &ticksResult{Tool: "luminary-load", Mode: "ticks", Label: cfg.Label, Kind: cfg.Kind, Params: cfg,
		Started: time.Now().UTC().Format(time.RFC3339), Load1Start: load1(), Instances: cfg.Instances}
	run := newID()[:6]
	n := cfg.Instances
	var index map[string]int
	if cfg.Kind == "luminary" {
		index = make(map[string]int, n)
		for i, w := range cfg.worlds {
			index[w] = i
		}
	}
	period := time.Second / time.Duration(cfg.TPS)
	win := &tickWindow{kind: cfg.Kind, instances: n}
	if cfg.Kind == "gun" {
		win.nFrom = uint64(cfg.Warmup/period) + 1
		win.nTo = uint64((cfg.Warmup + cfg.Duration) / period)
		win.perInst = win.nTo + 1
		win.sendNano = make([]atomic.Int64, uint64(n)*win.perInst)
	}
	dopts := dialOptions{url: cfg.URL, timeout: cfg.DialTimeout, hello: cfg.Hello, readLimit: 64 << 20}

	var cemu sync.Mutex
	connErr := func(s string) {
		cemu.Lock()
		if strings.Contains(s, "slow consumer") {
			res.SlowConsumerCloses++
		}
		if len(res.ConnErrors) < 20 {
			res.ConnErrors = append(res.ConnErrors, s)
		}
		cemu.Unlock()
	}
	var readers sync.WaitGroup
	var followers []*tickFollower
	var writers []*peer
	var senders []*batchSender
	defer func() {
		for _, s := range senders {
			s.close()
		}
		for _, f := range followers {
			f.p.close()
		}
		for _, w := range writers {
			w.close()
		}
		readers.Wait()
	}()

	// Followers: dial, subscribe with gets (batched 100 per frame).
	plan := assignFollowers(n, cfg.Followers, cfg.SoulsPerConn)
	var fmu sync.Mutex
	var dwg sync.WaitGroup
	sem := make(chan struct{}, 16)
	var dialErr error
	for _, insts := range plan {
		dwg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			p, err := dialPeer(ctx, dopts)
			if err != nil {
				fmu.Lock()
				dialErr = err
				fmu.Unlock()
				return
			}
			f := &tickFollower{p: p, kind: cfg.Kind, run: run, index: index, strict: cfg.Strict,
				slot: make(map[int]int, len(insts)), tallies: make([]tickTally, len(insts)),
				gaps: newHistogram(), lags: newHistogram(), win: win, getIDs: make(map[string]time.Time, len(insts)),
				getHist: newHistogram(), gotAll: make(chan struct{}), replyCh: make(chan struct{}, 1), wantN: len(insts)}
			ids := make([]string, len(insts))
			for k, i := range insts {
				f.slot[i] = k
				ids[k] = newID()
				f.getIDs[ids[k]] = time.Time{}
			}
			fmu.Lock()
			followers = append(followers, f)
			fmu.Unlock()
			readers.Go(func() {
				if err := p.run(f.onFrame); err != nil {
					connErr("follower read: " + err.Error())
				}
			})
			for lo := 0; lo < len(insts); lo += 100 {
				hi := min(lo+100, len(insts))
				now := time.Now()
				f.rmu.Lock()
				for k := lo; k < hi; k++ {
					if _, ok := f.getIDs[ids[k]]; ok {
						f.getIDs[ids[k]] = now
					}
				}
				f.rmu.Unlock()
				err := p.sendBuilt(func(b []byte) []byte {
					if hi-lo > 1 {
						b = append(b, '[')
					}
					for k := lo; k < hi; k++ {
						if k > lo {
							b = append(b, ',')
						}
						b = appendGet(b, ids[k], hbSoul(cfg.Kind, run, cfg.worlds, insts[k]))
					}
					if hi-lo > 1 {
						b = append(b, ']')
					}
					return b
				})
				if err != nil {
					connErr("follower get: " + err.Error())
					return
				}
				// At most one batch of gets outstanding: a relay answers
				// each get with its own frame, and a relay may close a
				// connection that does not read its replies in time
				// (Luminary: --send-buffer bytes unsent, 1013).
				waitReplies(ctx, &f.replies, f.replyCh, int64(hi), getBatchWait)
			}
		})
	}
	dwg.Wait()
	if dialErr != nil && len(followers) == 0 {
		return nil, dialErr
	}
	if dialErr != nil {
		connErr("follower dial: " + dialErr.Error())
	}
	res.FollowerConns = len(followers)
	for _, f := range followers {
		res.Subscribed += f.wantN
	}
	// Gun answers a get for a soul nobody wrote yet only after a while (or
	// not at all); wait a bounded time for the replies, then go on.
	getDeadline := time.NewTimer(cfg.GetTimeout)
	for _, f := range followers {
		select {
		case <-f.gotAll:
		case <-getDeadline.C:
			getDeadline.Reset(0)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	getDeadline.Stop()
	gh := newHistogram()
	for _, f := range followers {
		f.settled.Store(true)
		res.GetReplies += int(f.replies.Load())
		f.rmu.Lock()
		gh.merge(f.getHist)
		f.rmu.Unlock()
	}
	res.GetLatency = gh.summary()

	// The metronome (gun only).
	if cfg.Kind == "gun" {
		for range cfg.Writers {
			p, err := dialPeer(ctx, dopts)
			if err != nil {
				return nil, err
			}
			writers = append(writers, p)
			var wbad atomic.Uint64
			readers.Go(func() {
				err := p.run(func(raw []byte) []message {
					if bytes.Contains(raw, []byte(`"dam"`)) {
						return decodeAll(raw, &wbad)
					}
					return nil
				})
				if err != nil {
					connErr("writer read: " + err.Error())
				}
			})
			senders = append(senders, newBatchSender(p, cfg.Queue, cfg.MaxBatch, func(key uint64, nano int64) {
				i, c := key>>32, key&(1<<32-1)
				if c <= win.nTo {
					win.sendNano[i*win.perInst+c].Store(nano)
				}
				if c >= win.nFrom && c <= win.nTo {
					win.writtenInWin.Add(1)
				}
			}))
		}
	}

	start := time.Now()
	warmEnd := start.Add(cfg.Warmup)
	end := warmEnd.Add(cfg.Duration)
	win.warmEnd, win.end = warmEnd.UnixNano(), end.UnixNano()

	var cpu cpuWatch
	cpuStarted := false
	states := newStateClock()
	var offered, dropped uint64
	tick := time.NewTicker(time.Millisecond)
	total := uint64(n) * win.nTo // gun: ticks to write
	var next uint64              // gun: next global tick index
	perTick := float64(n) * float64(cfg.TPS) / 1e9
	var idbuf []byte
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-tick.C:
			if !cpuStarted && !now.Before(warmEnd) {
				cpu = startCPU(cfg.RelayPID)
				cpuStarted = true
			}
			if !now.Before(end) {
				break loop
			}
			if cfg.Kind != "gun" {
				continue
			}
			due := min(total, uint64(float64(now.Sub(start))*perTick)+1)
			for ; next < due; next++ {
				i := int(next % uint64(n))
				c := next/uint64(n) + 1
				soul := hbSoul("gun", run, nil, i)
				idbuf = append(idbuf[:0], newID()...)
				msg := appendPut(make([]byte, 0, 160), string(idbuf), soul, "tick", states.next(), makeGunTick(run, i, c))
				ok := senders[i%len(senders)].offer(outMsg{msg: msg, key: uint64(i)<<32 | c})
				if c >= win.nFrom && c <= win.nTo {
					offered++
					if !ok {
						dropped++
					}
				}
			}
		}
	}
	tick.Stop()
	if !cpuStarted {
		cpu = startCPU(cfg.RelayPID)
	}
	toolCPU, relayCPU := cpu.stop()
	for _, s := range senders {
		// Ticks still queued at the window's end were due in it but the
		// relay did not take them in time: they are dropped, not written
		// late (a late write would count as written and then as lost).
		if e := s.abandon(); e != "" {
			connErr("writer " + e)
		}
		res.WriterFrames += s.Frames.Load()
	}
	// Drain (gun): ticks written in the window may still be on their way.
	if cfg.Kind == "gun" {
		want := win.writtenInWin.Load() * uint64(cfg.Followers)
		poll := time.NewTicker(10 * time.Millisecond)
		drainEnd := time.NewTimer(cfg.Drain)
	drain:
		for {
			var got uint64
			for _, f := range followers {
				got += f.inWin.Load()
			}
			if got >= want {
				break
			}
			select {
			case <-poll.C:
			case <-drainEnd.C:
				break drain
			case <-ctx.Done():
				break drain
			}
		}
		poll.Stop()
		drainEnd.Stop()
	}
	for _, f := range followers {
		f.p.close()
	}
	for _, w := range writers {
		w.close()
	}
	readers.Wait()
	followersCopy := followers
	followers, writers = nil, nil

	gaps, lags := newHistogram(), newHistogram()
	for _, f := range followersCopy {
		for k := range f.tallies {
			res.Totals.add(&f.tallies[k])
		}
		gaps.merge(f.gaps)
		lags.merge(f.lags)
		res.BadFrames += f.bad.Load()
	}
	res.Gap, res.Lag = gaps.summary(), lags.summary()
	if cfg.Kind == "luminary" {
		res.RoundGap, res.RoundSpread = roundArrivals(followersCopy)
	}
	res.ToolCPUSeconds, res.RelayCPUSeconds = toolCPU, relayCPU
	if relayCPU >= 0 {
		res.RelayCPUPct = round1(relayCPU * 100 / cfg.Duration.Seconds())
	}
	if res.Totals.Followed > 0 {
		res.TicksPerSec = round1(float64(res.Totals.Received) / float64(res.Totals.Followed) / cfg.Duration.Seconds())
	}
	var denom uint64
	if cfg.Kind == "gun" {
		res.Offered = offered
		res.Written = win.writtenInWin.Load()
		res.DroppedAtSender = max(dropped, offered-min(offered, res.Written))
		res.Lost, denom = gunLoss(res.Written, uint64(cfg.Followers), res.Totals.Received)
	} else {
		res.CadenceExpected = uint64(res.Totals.Followed) * uint64(cfg.Duration/period)
		res.Lost, denom = relayLoss(res.Totals, uint64(cfg.Duration/period))
	}
	if denom > 0 {
		res.LostPct = float64(int64(float64(res.Lost)*1e4/float64(denom))) / 100
	}
	res.Pass = res.Lost == 0 && res.Totals.Silent == 0 && res.Totals.Received > 0 && res.SlowConsumerCloses == 0 &&
		float64(gaps.quantile(0.99)) < cfg.GapGoalMs*float64(time.Millisecond)
	res.Load1End = load1()
	return res, ctx.Err()
}

// roundArrivals summarises when rounds reached the follower connections:
// the gaps between consecutive rounds' first arrivals, and each round's
// spread from its first arrival to its last (rounds seen by at least two
// connections). A round is told by its stamp to the millisecond: the
// worlds of one round carry stamps that differ in the last digits (each
// world's state is its own start plus the slot), and rounds are at least
// 16 ms apart.
func roundArrivals(fs []*tickFollower) (gap, spread latencySummary) {
	type span struct {
		first, last int64
		conns       int // frames of the round received
	}
	byState := map[float64]*span{}
	for _, f := range fs {
		for _, r := range f.rounds {
			st := math.Round(r.state)
			if sp := byState[st]; sp != nil {
				sp.first, sp.last = min(sp.first, r.at), max(sp.last, r.at)
				sp.conns++
			} else {
				byState[st] = &span{r.at, r.at, 1}
			}
		}
	}
	states := slices.Sorted(maps.Keys(byState))
	g, s := newHistogram(), newHistogram()
	for i, st := range states {
		sp := byState[st]
		if sp.conns > 1 {
			s.record(time.Duration(sp.last - sp.first))
		}
		if i > 0 {
			g.record(time.Duration(sp.first - byState[states[i-1]].first))
		}
	}
	return g.summary(), s.summary()
}

// gunLoss returns the ticks followers missed when the tool was the
// metronome: written × followers − received, and that denominator.
func gunLoss(written, followers, received uint64) (lost, denom uint64) {
	denom = written * followers
	if denom > received {
		lost = denom - received
	}
	return lost, denom
}

// relayLoss returns the ticks followers missed when the relay was the
// metronome, and the denominator, from the counters (gaps in n; a followed
// instance that never ticked in the window lost all perInstance ticks) and
// from the cadence: the counters cannot show ticks missing after the last
// one a follower saw (a connection closed, a metronome that fell behind),
// but each followed instance owes perInstance ticks in the window (±1 at
// its edges). The larger shortfall counts.
func relayLoss(t tickTotals, perInstance uint64) (lost, denom uint64) {
	silent := uint64(t.Silent) * perInstance
	lost = t.LostByGap + silent
	denom = t.Expected + silent
	cadence := uint64(t.Followed) * perInstance
	if short := cadence - min(cadence, t.Received); short > uint64(t.Followed) {
		lost = max(lost, short-uint64(t.Followed))
	}
	return lost, max(denom, cadence)
}

// httpBase turns a relay URL (http(s)/ws(s)://host:port/gun) into its HTTP
// origin.
func httpBase(raw string) (string, error) {
	u, err := wsURL(raw)
	if err != nil {
		return "", err
	}
	u = strings.Replace(u, "ws://", "http://", 1)
	u = strings.Replace(u, "wss://", "https://", 1)
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.IndexByte(u[i+3:], '/'); j >= 0 {
			u = u[:i+3+j]
		}
	}
	return u, nil
}

func cmdTicks(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ticks", stderr)
	var c commonFlags
	c.register(fs)
	cfg := ticksConfig{}
	fs.StringVar(&cfg.Kind, "kind", "gun", "gun: the tool is the metronome (writes tick to lum/<i>/hb); luminary: the relay ticks its worlds, the tool only follows")
	fs.IntVar(&cfg.Instances, "instances", 250, "kind gun: instances the tool ticks")
	fs.StringVar(&cfg.WorldsFile, "worlds-file", "", "kind luminary: instance ids to follow, one per line (default: every world GET /api/worlds lists)")
	fs.IntVar(&cfg.TPS, "tps", 20, "ticks per second per instance (kind gun: written; kind luminary: expected)")
	fs.IntVar(&cfg.Followers, "followers", 1, "followers per instance")
	fs.IntVar(&cfg.SoulsPerConn, "souls-per-conn", 500, "most heartbeat souls one follower connection subscribes to")
	fs.IntVar(&cfg.Writers, "writers", 1, "kind gun: metronome connections (instance i on connection i mod writers)")
	fs.IntVar(&cfg.MaxBatch, "max-batch", 100, "kind gun: most puts packed into one frame")
	fs.IntVar(&cfg.Queue, "queue", 100000, "kind gun: puts waiting per metronome connection before ticks are dropped at the sender")
	fs.Float64Var(&cfg.GapGoalMs, "gap-goal", 55, "a run passes with no lost tick and gap p99 below this (ms)")
	fs.BoolVar(&cfg.Strict, "strict", false, "decode every frame fully (costs tool CPU)")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "warm-up before measuring")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured duration")
	fs.DurationVar(&cfg.Drain, "drain", 3*time.Second, "kind gun: wait this long for ticks written in the window")
	fs.DurationVar(&cfg.GetTimeout, "get-timeout", 10*time.Second, "wait this long for the get replies")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.URL, cfg.Label, cfg.Hello, cfg.RelayPID, cfg.DialTimeout = c.url, c.label, c.hello, c.relayPID, c.dialTimeout
	if cfg.Kind == "luminary" {
		var err error
		if cfg.WorldsFile != "" {
			f, ferr := os.Open(cfg.WorldsFile)
			if ferr != nil {
				return fmt.Errorf("luminary-load: %w", ferr)
			}
			cfg.worlds, err = readWorlds(f)
			f.Close()
		} else {
			cfg.worlds, err = fetchWorlds(ctx, cfg.URL)
		}
		if err != nil {
			return err
		}
		if flagSet(fs, "instances") && cfg.Instances < len(cfg.worlds) {
			cfg.worlds = cfg.worlds[:cfg.Instances]
		}
	}
	res, err := runTicks(ctx, cfg)
	if res == nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d follower connections, %d/%d gets answered (p50 %s ms)\n",
		res.Label, res.FollowerConns, res.GetReplies, res.Subscribed, fmtMs(res.GetLatency.P50Ms))
	printTicksTable(stdout, []*ticksResult{res})
	for _, e := range res.ConnErrors {
		fmt.Fprintf(stdout, "  connection: %s\n", e)
	}
	if werr := writeJSON(c.jsonPath, res); werr != nil {
		return werr
	}
	return err
}
