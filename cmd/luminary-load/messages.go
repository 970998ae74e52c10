package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/keys"
)

// messagesConfig configures the messages mode: C clients, one connection
// each, send external messages through one instance at a rising total rate;
// every client also receives every message, and the tool measures delivery
// and end-to-end latency.
//
// Kind "gun" is Luminary as published: every message is a put to the one
// shared field tick of lum/m<run>/message (a register), which every client
// follows; concurrent writes overwrite each other (croquet-luminary.md
// §4.1), so delivery shows what a register loses. Kind "luminary" is our
// relay: each message is a heartbeat.Message signed by its client's key and
// put at lum/<I>/in/<id>; the relay verifies, sequences and acknowledges it
// with a receipt, and publishes it in the log, lum/<I>/log/<block>, which
// every client follows.
type messagesConfig struct {
	URL         string        `json:"url"`
	Label       string        `json:"label"`
	Kind        string        `json:"kind"`
	Clients     int           `json:"clients"`
	Rates       []int         `json:"rates"`
	Size        int           `json:"payload_size"`
	Instance    string        `json:"instance,omitempty"`
	Curve       string        `json:"curve,omitempty"`
	Queue       int           `json:"queue"`
	MaxBatch    int           `json:"max_batch"`
	P99GoalMs   float64       `json:"p99_goal_ms"`
	Hello       bool          `json:"hello"`
	RelayPID    int           `json:"relay_pid,omitempty"`
	Step        time.Duration `json:"-"`
	Drain       time.Duration `json:"-"`
	GetTimeout  time.Duration `json:"-"`
	DialTimeout time.Duration `json:"-"`
	StepS       float64       `json:"step_s"`
	DrainS      float64       `json:"drain_s"`
	// Trace, if set, receives one line per delivery to the first
	// traceClients clients: "<client> <seq> <send unix ns> <receive unix
	// ns>", to see when in a step the latency goes (BENCHMARKS.md).
	Trace io.Writer `json:"-"`
}

// traceClients is how many clients a trace follows.
const traceClients = 3

// deliveryTrace writes the lines of messagesConfig.Trace.
type deliveryTrace struct {
	mu  sync.Mutex
	w   *bufio.Writer
	buf []byte
}

func newDeliveryTrace(w io.Writer) *deliveryTrace {
	if w == nil {
		return nil
	}
	t := &deliveryTrace{w: bufio.NewWriterSize(w, 1<<16)}
	t.w.WriteString("# client seq send_unix_ns receive_unix_ns\n")
	return t
}

func (t *deliveryTrace) record(client int, seq uint64, sent, at int64) {
	if t == nil || client >= traceClients {
		return
	}
	t.mu.Lock()
	b := strconv.AppendInt(t.buf[:0], int64(client), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, sent, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, at, 10)
	b = append(b, '\n')
	t.w.Write(b)
	t.buf = b
	t.mu.Unlock()
}

func (t *deliveryTrace) flush() error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.w.Flush()
}

func (c *messagesConfig) validate() error {
	switch {
	case c.Kind != "gun" && c.Kind != "luminary":
		return errors.New("luminary-load: --kind must be gun or luminary")
	case c.Kind == "luminary" && c.Instance == "":
		return errors.New("luminary-load: --instance is required with --kind luminary")
	case c.Clients < 2 || c.Clients > 10000:
		return errors.New("luminary-load: --clients must be 2..10000")
	case len(c.Rates) == 0:
		return errors.New("luminary-load: --rates must list at least one rate")
	case c.Size < 64 || c.Size > 1<<20:
		return errors.New("luminary-load: --size must be 64..1048576")
	case c.Step <= 0 || c.Drain < 0 || c.GetTimeout <= 0 || c.DialTimeout <= 0:
		return errors.New("luminary-load: durations must be positive")
	case c.Queue < 1 || c.MaxBatch < 1:
		return errors.New("luminary-load: --queue and --max-batch must be positive")
	}
	var total, secs float64
	for _, r := range c.Rates {
		if r < 1 || r > 1000000 {
			return errors.New("luminary-load: each rate must be 1..1000000 msgs/s")
		}
		total += float64(r) * c.Step.Seconds()
		secs += (c.Step + c.Drain).Seconds()
	}
	if total > 5_000_000 {
		return errors.New("luminary-load: rates × step exceed 5M messages; shorten --step")
	}
	if c.Kind == "luminary" && secs > 100 {
		// Messages are signed before the run and carry their signing
		// time; the relay refuses timestamps older than 120 s.
		return errors.New("luminary-load: steps + drains must stay under 100 s (message timestamps are checked against a 120 s window)")
	}
	c.StepS, c.DrainS = c.Step.Seconds(), c.Drain.Seconds()
	return nil
}

// messagesStep is the outcome of one rate step.
type messagesStep struct {
	Rate         int            `json:"rate"`
	Sent         uint64         `json:"sent"`
	SentPerSec   float64        `json:"sent_per_s"`
	NotSent      uint64         `json:"not_sent"` // dropped at the tool: a connection's queue was full
	Acked        uint64         `json:"acked"`    // gun: ok acks; luminary: receipts (sequenced)
	AckErrors    uint64         `json:"ack_errors"`
	AckPerSec    float64        `json:"acked_per_s"` // acked / (last ack − step start)
	AckLatency   latencySummary `json:"ack_latency"`
	Expected     uint64         `json:"expected"` // deliveries expected (see messagesResult)
	Received     uint64         `json:"received"` // applied by the receiver (see messagesResult)
	DeliveredPct float64        `json:"delivered_pct"`
	WireReceived uint64         `json:"wire_received"` // arrived on the wire, applied or not
	WirePct      float64        `json:"wire_pct"`
	Latency      latencySummary `json:"latency"`
	DrainS       float64        `json:"drain_s"`
	Load1        float64        `json:"load1"`
	ToolCPU      float64        `json:"tool_cpu_s"`
	RelayCPU     float64        `json:"relay_cpu_s"`
	Pass         bool           `json:"pass"`
}

// messagesResult: Expected deliveries per message are Clients for
// Luminary (every client, the sender included, reads the ordered log) and
// Clients − 1 for gun.js (a relay does not echo a put to its sender).
// Received counts what a receiver applies: for Luminary every entry of the
// log; for gun.js what a gun peer's .on() would report, which the tool
// decides as HAM does for one register field: a put is applied when its
// state is above the field's current state at that receiver (equal
// states: the lexically larger value wins), the receiver's own writes
// included. Other puts are discarded as historical (croquet-luminary.md
// §4.1). WireReceived counts every put that arrived.
type messagesResult struct {
	Tool            string         `json:"tool"`
	Mode            string         `json:"mode"`
	Label           string         `json:"label"`
	Kind            string         `json:"kind"`
	Started         string         `json:"started"`
	Params          messagesConfig `json:"params"`
	Load1Start      float64        `json:"load1_start"`
	Load1End        float64        `json:"load1_end"`
	Connected       int            `json:"connected"`
	Subscribed      int            `json:"subscribed"` // gets sent (souls × clients)
	GetReplies      int            `json:"get_replies"`
	HeadSeq         uint64         `json:"head_seq,omitempty"`
	Blocks          int            `json:"log_blocks_followed,omitempty"`
	PresignSeconds  float64        `json:"presign_s,omitempty"`
	Steps           []messagesStep `json:"steps"`
	HighestRateHeld int            `json:"highest_rate_held"`
	ErrorSamples    []string       `json:"error_samples,omitempty"`
	Late            uint64         `json:"late"`
	BadFrames       uint64         `json:"bad_frames"`
	ConnErrors      []string       `json:"conn_errors,omitempty"`
}

// ackFrame is the part of a relay's reply that the messages mode reads.
type ackFrame struct {
	At  string          `json:"@"`
	OK  json.RawMessage `json:"ok"`
	Err json.RawMessage `json:"err"`
	Lum json.RawMessage `json:"lum"`
	Dam string          `json:"dam"`
	ID  string          `json:"#"`
}

// msgPlan says which message belongs to which step and client.
type msgPlan struct {
	seqPlan
	clients int
}

func (p msgPlan) client(s uint64) int { return int(s % uint64(p.clients)) }

// msgClient is one client connection: it sends its messages and counts
// what it receives.
type msgClient struct {
	idx    int
	p      *peer
	tx     *batchSender
	run    string
	plan   msgPlan
	shared *msgShared

	mu       sync.Mutex
	seen     []uint64 // bitset over message seqs
	counts   []uint64
	wire     []uint64
	hists    []*histogram
	regState float64 // gun: the register's HAM state at this receiver
	regSeq   int64   // gun: the message it holds (-1: none)
	closed   []bool
	late     uint64
	bad      atomic.Uint64
	dbuf     []delivery
	ids      []string
	getIDs   map[string]bool
	replies  atomic.Int64
	wantGets int
	gotGets  chan struct{}
	replyCh  chan struct{}
	settled  atomic.Bool // the get phase is over: stop decoding frames for replies
}

// msgShared is the state every client reads: send times and ack bookkeeping.
type msgShared struct {
	kind     string
	sendNano []atomic.Int64
	idOf     map[string]uint64 // put id -> message seq (read-only during the run)
	acked    []atomic.Bool
	stateOf  []atomic.Uint64 // gun: the HAM state each message was written with (float64 bits)
	stepAck  []atomic.Uint64
	stepErr  []atomic.Uint64
	stepRx   []atomic.Uint64

	amu      sync.Mutex
	ackHists []*histogram
	lastAck  []int64
	errs     []string

	trace *deliveryTrace // nil without messagesConfig.Trace
}

func (c *msgClient) onFrame(raw []byte) []message {
	now := time.Now()
	at := now.UnixNano()
	var ms []message
	if bytes.Contains(raw, []byte(`"dam"`)) {
		ms = decodeAll(raw, &c.bad)
	}
	if !c.settled.Load() && int(c.replies.Load()) < c.wantGets {
		c.ids = scanReplyIDs(c.ids[:0], raw)
		c.mu.Lock()
		for _, id := range c.ids {
			if c.getIDs[id] {
				c.getIDs[id] = false
				if int(c.replies.Add(1)) == c.wantGets {
					close(c.gotGets)
				}
				select {
				case c.replyCh <- struct{}{}:
				default:
				}
			}
		}
		c.mu.Unlock()
	}
	if bytes.Contains(raw, []byte(`"@":"`)) && isAckFrame(raw) {
		c.handleAcks(raw, at)
	}
	ds := scanDeliveries(c.dbuf[:0], raw, c.run)
	c.dbuf = ds
	if len(ds) == 0 {
		return ms
	}
	c.mu.Lock()
	for _, d := range ds {
		s := d.seq
		if s >= c.plan.total {
			c.bad.Add(1)
			continue
		}
		w, bit := s/64, uint64(1)<<(s%64)
		if c.seen[w]&bit != 0 {
			continue
		}
		c.seen[w] |= bit
		k := c.plan.stepOf(s)
		if c.closed[k] {
			c.late++
			continue
		}
		if c.shared.kind == "gun" {
			if c.plan.client(s) == c.idx {
				continue // a relay does not echo our own put; not expected
			}
			c.wire[k]++
			c.shared.stepRx[k].Add(1)
			if !c.applyLocked(s) {
				continue // discarded by HAM as historical: .on() never sees it
			}
			c.counts[k]++
			if sn := c.shared.sendNano[s].Load(); sn != 0 {
				c.hists[k].record(time.Duration(at - sn))
				c.shared.trace.record(c.idx, s, sn, at)
			}
			continue
		}
		c.wire[k]++
		c.counts[k]++
		if sn := c.shared.sendNano[s].Load(); sn != 0 {
			c.hists[k].record(time.Duration(at - sn))
			c.shared.trace.record(c.idx, s, sn, at)
		}
		c.shared.stepRx[k].Add(1)
	}
	c.mu.Unlock()
	return ms
}

// applyLocked decides, as HAM does for one register field, whether message
// s replaces the receiver's current value; c.mu is held.
func (c *msgClient) applyLocked(s uint64) bool {
	st := math.Float64frombits(c.shared.stateOf[s].Load())
	switch {
	case c.regSeq < 0 || st > c.regState:
	case st < c.regState:
		return false
	default: // equal states: the lexically larger value wins
		// The values differ within their "<seq>.0." part, so the padding
		// length does not change the comparison.
		if makeValue(c.run, s, 0, 64) <= makeValue(c.run, uint64(c.regSeq), 0, 64) {
			return false
		}
	}
	c.regState, c.regSeq = st, int64(s)
	return true
}

// isAckFrame reports whether raw may answer a put: a member "ok", "err" or
// "lum" at any depth (a quote inside a JSON string is escaped, so these
// bytes never come from a value). The pushes every subscriber receives
// answer its get ("@") with a put and none of them; decoding each of
// those in every client cost the tool more CPU than anything else, on the
// cores it shares with the relay.
func isAckFrame(raw []byte) bool {
	return bytes.Contains(raw, []byte(`"ok":`)) || bytes.Contains(raw, []byte(`"err":`)) || bytes.Contains(raw, []byte(`"lum":`))
}

// handleAcks reads the replies to our puts in a frame.
func (c *msgClient) handleAcks(raw []byte, at int64) {
	var acks []ackFrame
	b := bytes.TrimSpace(raw)
	if len(b) > 0 && b[0] == '[' {
		if json.Unmarshal(b, &acks) != nil {
			c.bad.Add(1)
			return
		}
	} else {
		var a ackFrame
		if json.Unmarshal(b, &a) != nil {
			c.bad.Add(1)
			return
		}
		acks = []ackFrame{a}
	}
	sh := c.shared
	for i := range acks {
		a := &acks[i]
		s, ok := sh.idOf[a.At]
		if !ok || a.Dam != "" {
			continue
		}
		k := c.plan.stepOf(s)
		errText := ""
		if len(a.Err) > 0 {
			errText = errText0(a.Err)
		}
		done := false
		switch {
		case errText != "" && !bytes.HasPrefix([]byte(errText), []byte("duplicate:")):
			sh.stepErr[k].Add(1)
			sh.amu.Lock()
			if len(sh.errs) < 5 {
				sh.errs = append(sh.errs, errText)
			}
			sh.amu.Unlock()
			continue
		case sh.kind == "luminary":
			done = len(a.Lum) > 0 && string(a.Lum) != "null" // the receipt: sequenced
		default:
			done = len(a.OK) > 0 && string(a.OK) != "false" && string(a.OK) != "null"
		}
		if !done || sh.acked[s].Swap(true) {
			continue
		}
		sh.stepAck[k].Add(1)
		if sn := sh.sendNano[s].Load(); sn != 0 {
			sh.amu.Lock()
			sh.ackHists[k].record(time.Duration(at - sn))
			sh.lastAck[k] = max(sh.lastAck[k], at)
			sh.amu.Unlock()
		}
	}
}

func errText0(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// closeStep stops counting step k and returns its tallies.
func (c *msgClient) closeStep(k int) (applied, wire uint64, h *histogram) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed[k] = true
	return c.counts[k], c.wire[k], c.hists[k]
}

// fieldKV is one field of a put built by appendNodePut.
type fieldKV struct {
	name string
	str  string
	num  float64
	isN  bool
}

// appendNodePut appends a put of several fields on one soul, all at state:
//
//	{"#":id,"put":{soul:{"_":{"#":soul,">":{f:state,…}},f:v,…}}}
func appendNodePut(b []byte, id, soul string, state float64, fields []fieldKV) []byte {
	b = append(b, `{"#":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"put":{`...)
	b = appendJSONString(b, soul)
	b = append(b, `:{"_":{"#":`...)
	b = appendJSONString(b, soul)
	b = append(b, `,">":{`...)
	for i, f := range fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, f.name)
		b = append(b, ':')
		b = appendState(b, state)
	}
	b = append(b, `}}`...)
	for _, f := range fields {
		b = append(b, ',')
		b = appendJSONString(b, f.name)
		b = append(b, ':')
		if f.isN {
			b = appendState(b, f.num)
		} else {
			b = appendJSONString(b, f.str)
		}
	}
	return append(b, `}}}`...)
}

// inboxFrame builds the put that submits a signed message at its inbox
// soul, exactly the fields heartbeat.InboxPuts lists.
func inboxFrame(id string, m *heartbeat.Message, state float64) []byte {
	puts := heartbeat.InboxPuts(m, state)
	fields := make([]fieldKV, 0, len(puts))
	for _, p := range puts {
		switch v := p.Value.(type) {
		case string:
			fields = append(fields, fieldKV{name: p.Field, str: v})
		case float64:
			fields = append(fields, fieldKV{name: p.Field, num: v, isN: true})
		}
	}
	return appendNodePut(make([]byte, 0, 512), id, puts[0].Soul, state, fields)
}

// presign signs every message of the run before it starts (so the tool's
// signing does not compete with the relay for CPU during the steps) and
// returns the inbox frames by message seq.
func presign(inst string, ks []*keys.Private, run string, total uint64, size int, ids []string) ([][]byte, error) {
	frames := make([][]byte, total)
	nowMs := time.Now().UnixMilli()
	state := float64(time.Now().UnixMicro()) / 1000
	workers := max(runtime.GOMAXPROCS(0), 1)
	var wg sync.WaitGroup
	var ferr atomic.Value
	for w := range workers {
		wg.Go(func() {
			for s := uint64(w); s < total; s += uint64(workers) {
				k := ks[s%uint64(len(ks))]
				m := heartbeat.Message{Instance: inst, Author: k.Public().String(), TS: nowMs,
					Nonce: "n" + strconv.FormatUint(s, 36) + "." + run, Payload: makeValue(run, s, 0, size)}
				if err := m.Sign(heartbeat.KeySigner(k)); err != nil {
					ferr.Store(err)
					return
				}
				frames[s] = inboxFrame(ids[s], &m, state)
			}
		})
	}
	wg.Wait()
	if e, ok := ferr.Load().(error); ok {
		return nil, e
	}
	return frames, nil
}

// headSeqOf reads field seq of lum/<I>/hb from a get reply frame.
func headSeqOf(raw []byte, soul string) (uint64, bool) {
	ms, err := decodeFrame(raw)
	if err != nil {
		return 0, false
	}
	for _, m := range ms {
		if len(m.Put) == 0 {
			continue
		}
		var g map[string]map[string]json.RawMessage
		if json.Unmarshal(m.Put, &g) != nil {
			continue
		}
		if raw, ok := g[soul]["seq"]; ok {
			var f float64
			if json.Unmarshal(raw, &f) == nil && f >= 0 && f == math.Trunc(f) {
				return uint64(f), true
			}
		}
	}
	return 0, false
}

// readHeadSeq asks the relay for lum/<I>/hb and returns its seq field.
func readHeadSeq(ctx context.Context, o dialOptions, inst string, timeout time.Duration) (uint64, error) {
	p, err := dialPeer(ctx, o)
	if err != nil {
		return 0, err
	}
	defer p.close()
	soul := heartbeat.HeartbeatSoul(inst)
	id := newID()
	got := make(chan uint64, 1)
	var bad atomic.Uint64
	go func() {
		_ = p.run(func(raw []byte) []message {
			if s, ok := headSeqOf(raw, soul); ok {
				select {
				case got <- s:
				default:
				}
			}
			if bytes.Contains(raw, []byte(`"dam"`)) {
				return decodeAll(raw, &bad)
			}
			return nil
		})
	}()
	if err := p.sendBuilt(func(b []byte) []byte { return appendGet(b, id, soul) }); err != nil {
		return 0, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case s := <-got:
		return s, nil
	case <-t.C:
		return 0, fmt.Errorf("luminary-load: no heartbeat for %s within %v (is the world hosted?)", inst, timeout)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func runMessages(ctx context.Context, cfg messagesConfig) (*messagesResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	res := &messagesResult{Tool: "luminary-load", Mode: "messages", Label: cfg.Label, Kind: cfg.Kind, Params: cfg,
		Started: time.Now().UTC().Format(time.RFC3339), Load1Start: load1()}
	run := newID()[:6]
	plan := msgPlan{seqPlan: newSeqPlan(cfg.Rates, cfg.Step), clients: cfg.Clients}
	nsteps := len(cfg.Rates)
	dopts := dialOptions{url: cfg.URL, timeout: cfg.DialTimeout, hello: cfg.Hello, readLimit: 64 << 20}

	sh := &msgShared{kind: cfg.Kind, sendNano: make([]atomic.Int64, plan.total), idOf: make(map[string]uint64, plan.total),
		acked: make([]atomic.Bool, plan.total), stateOf: make([]atomic.Uint64, plan.total), stepAck: make([]atomic.Uint64, nsteps), stepErr: make([]atomic.Uint64, nsteps),
		stepRx: make([]atomic.Uint64, nsteps), ackHists: make([]*histogram, nsteps), lastAck: make([]int64, nsteps),
		trace: newDeliveryTrace(cfg.Trace)}
	for k := range sh.ackHists {
		sh.ackHists[k] = newHistogram()
	}
	ids := make([]string, plan.total)
	for s := range ids {
		id := newID()
		for _, dup := sh.idOf[id]; dup; _, dup = sh.idOf[id] {
			id = newID()
		}
		ids[s] = id
		sh.idOf[id] = uint64(s)
	}

	// Souls to follow.
	var souls []string
	var frames [][]byte
	if cfg.Kind == "gun" {
		souls = []string{"lum/m" + run + "/message"}
	} else {
		head, err := readHeadSeq(ctx, dopts, cfg.Instance, cfg.GetTimeout)
		if err != nil {
			return nil, err
		}
		res.HeadSeq = head
		// Every entry after the head: our messages, plus a margin for
		// presence and epoch entries written meanwhile.
		last := head + plan.total + plan.total/8 + 64
		for b := (head + 1) / heartbeat.BlockSize; b <= last/heartbeat.BlockSize; b++ {
			souls = append(souls, heartbeat.BlockSoul(cfg.Instance, b*heartbeat.BlockSize))
		}
		res.Blocks = len(souls)
		curve, err := keys.ParseCurve(cfg.Curve)
		if err != nil {
			return nil, err
		}
		ks := make([]*keys.Private, cfg.Clients)
		for i := range ks {
			if ks[i], err = keys.Generate(curve); err != nil {
				return nil, err
			}
		}
		t0 := time.Now()
		frames, err = presign(cfg.Instance, ks, run, plan.total, cfg.Size, ids)
		if err != nil {
			return nil, err
		}
		res.PresignSeconds = round3(time.Since(t0).Seconds())
	}

	var cemu sync.Mutex
	connErr := func(s string) {
		cemu.Lock()
		if len(res.ConnErrors) < 20 {
			res.ConnErrors = append(res.ConnErrors, s)
		}
		cemu.Unlock()
	}
	clients := make([]*msgClient, cfg.Clients)
	var readers sync.WaitGroup
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.tx.close()
				c.p.close()
			}
		}
		readers.Wait()
	}()
	var dwg sync.WaitGroup
	sem := make(chan struct{}, 16)
	var dialErr atomic.Value
	for i := range clients {
		dwg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			p, err := dialPeer(ctx, dopts)
			if err != nil {
				dialErr.Store(err)
				return
			}
			c := &msgClient{idx: i, p: p, run: run, plan: plan, shared: sh, seen: make([]uint64, (plan.total+63)/64),
				counts: make([]uint64, nsteps), wire: make([]uint64, nsteps), regSeq: -1, hists: make([]*histogram, nsteps), closed: make([]bool, nsteps),
				getIDs: make(map[string]bool, len(souls)), wantGets: len(souls), gotGets: make(chan struct{}), replyCh: make(chan struct{}, 1)}
			for k := range c.hists {
				c.hists[k] = newHistogram()
			}
			getIDs := make([]string, len(souls))
			for k := range souls {
				getIDs[k] = newID()
				c.getIDs[getIDs[k]] = true
			}
			c.tx = newBatchSender(p, cfg.Queue, cfg.MaxBatch, func(key uint64, nano int64) {
				sh.sendNano[key].Store(nano)
				if cfg.Kind == "gun" {
					// A gun peer applies its own put locally first.
					c.mu.Lock()
					c.applyLocked(key)
					c.mu.Unlock()
				}
			})
			clients[i] = c
			readers.Go(func() {
				if err := p.run(c.onFrame); err != nil {
					connErr(fmt.Sprintf("client %d read: %v", i, err))
				}
			})
			for lo := 0; lo < len(souls); lo += 100 {
				hi := min(lo+100, len(souls))
				err := p.sendBuilt(func(b []byte) []byte {
					b = append(b, '[')
					for k := lo; k < hi; k++ {
						if k > lo {
							b = append(b, ',')
						}
						b = appendGet(b, getIDs[k], souls[k])
					}
					return append(b, ']')
				})
				if err != nil {
					connErr(fmt.Sprintf("client %d get: %v", i, err))
					return
				}
				waitReplies(ctx, &c.replies, c.replyCh, int64(hi), getBatchWait)
			}
		})
	}
	dwg.Wait()
	if e, ok := dialErr.Load().(error); ok {
		return nil, e
	}
	res.Connected = len(clients)
	res.Subscribed = len(clients) * len(souls)
	deadline := time.NewTimer(cfg.GetTimeout)
	for _, c := range clients {
		select {
		case <-c.gotGets:
		case <-deadline.C:
			deadline.Reset(0)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	deadline.Stop()
	for _, c := range clients {
		c.settled.Store(true)
		res.GetReplies += int(c.replies.Load())
	}

	perMsg := uint64(cfg.Clients)
	if cfg.Kind == "gun" {
		perMsg--
	}
	states := make([]*stateClock, cfg.Clients) // gun: one Gun.state() per client, as separate peers
	for i := range states {
		states[i] = newStateClock()
	}
	soul := souls[0]
	for k, rate := range cfg.Rates {
		st := messagesStep{Rate: rate}
		cpu := startCPU(cfg.RelayPID)
		base := plan.base[k]
		n := plan.total - base
		if k+1 < nsteps {
			n = plan.base[k+1] - base
		}
		tick := time.NewTicker(time.Millisecond)
		start := time.Now()
		var sent, notSent uint64
		var last time.Time
	send:
		for sent+notSent < n {
			select {
			case <-ctx.Done():
				break send
			case now := <-tick.C:
				if now.Sub(start) > 2*cfg.Step {
					break send
				}
				due := min(n, uint64(now.Sub(start).Seconds()*float64(rate))+1)
				for sent+notSent < due {
					s := base + sent + notSent
					ci := plan.client(s)
					var msg []byte
					if cfg.Kind == "gun" {
						st := states[ci].next()
						sh.stateOf[s].Store(math.Float64bits(st))
						msg = appendPut(make([]byte, 0, cfg.Size+160), ids[s], soul, "tick", st, makeValue(run, s, 0, cfg.Size))
					} else {
						msg = frames[s]
					}
					if clients[ci].tx.offer(outMsg{msg: msg, key: s}) {
						sent++
					} else {
						notSent++
					}
					last = time.Now()
				}
			}
		}
		tick.Stop()
		st.Sent, st.NotSent = sent, notSent
		if sent > 0 {
			st.SentPerSec = round1(float64(sent) / max(last.Sub(start).Seconds(), 1e-3))
		}
		st.Expected = sent * perMsg
		drainStart := time.Now()
		poll := time.NewTicker(5 * time.Millisecond)
		drainEnd := time.NewTimer(cfg.Drain)
	drain:
		for sh.stepRx[k].Load() < st.Expected || (cfg.Kind == "luminary" && sh.stepAck[k].Load()+sh.stepErr[k].Load() < sent) {
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
		st.DrainS = round3(time.Since(drainStart).Seconds())
		lat := newHistogram()
		for _, c := range clients {
			applied, wire, h := c.closeStep(k)
			st.Received += applied
			st.WireReceived += wire
			lat.merge(h)
		}
		st.Latency = lat.summary()
		st.Acked, st.AckErrors = sh.stepAck[k].Load(), sh.stepErr[k].Load()
		sh.amu.Lock()
		st.AckLatency = sh.ackHists[k].summary()
		if st.Acked > 0 && sh.lastAck[k] > start.UnixNano() {
			st.AckPerSec = round1(float64(st.Acked) / max(float64(sh.lastAck[k]-start.UnixNano())/1e9, cfg.Step.Seconds()))
		}
		sh.amu.Unlock()
		st.ToolCPU, st.RelayCPU = cpu.stop()
		st.Load1 = load1()
		if st.Expected > 0 {
			st.DeliveredPct = float64(int64(float64(st.Received)*1e4/float64(st.Expected))) / 100
			st.WirePct = float64(int64(float64(st.WireReceived)*1e4/float64(st.Expected))) / 100
		}
		st.Pass = st.Expected > 0 && st.Received == st.Expected && st.NotSent == 0 &&
			float64(lat.quantile(0.99)) < cfg.P99GoalMs*float64(time.Millisecond)
		if cfg.Kind == "luminary" {
			st.Pass = st.Pass && st.Acked == sent
		}
		res.Steps = append(res.Steps, st)
		if st.Pass && rate > res.HighestRateHeld {
			res.HighestRateHeld = rate
		}
		if ctx.Err() != nil {
			break
		}
	}
	for _, c := range clients {
		if e := c.tx.close(); e != "" {
			connErr(fmt.Sprintf("client %d %s", c.idx, e))
		}
		c.mu.Lock()
		res.Late += c.late
		c.mu.Unlock()
		res.BadFrames += c.bad.Load()
	}
	sh.amu.Lock()
	res.ErrorSamples = append(res.ErrorSamples, sh.errs...)
	sh.amu.Unlock()
	res.Load1End = load1()
	if err := sh.trace.flush(); err != nil && ctx.Err() == nil {
		return res, fmt.Errorf("luminary-load: trace: %w", err)
	}
	return res, ctx.Err()
}

func cmdMessages(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("messages", stderr)
	var c commonFlags
	c.register(fs)
	cfg := messagesConfig{}
	rates := fs.String("rates", "100,500,1000,2000,3000", "comma-separated total message rates (msgs/s), one step each")
	fs.StringVar(&cfg.Kind, "kind", "luminary", "luminary: signed messages through lum/<I>/in, followed in the log; gun: puts to one shared register field")
	fs.IntVar(&cfg.Clients, "clients", 50, "clients, one connection each; each sends and receives")
	fs.StringVar(&cfg.Instance, "instance", "", "kind luminary: the world (instance id) to send through")
	fs.StringVar(&cfg.Curve, "curve", "secp256k1", "kind luminary: the clients' key curve (secp256k1 or p256)")
	fs.IntVar(&cfg.Size, "size", 100, "payload bytes (>= 64)")
	fs.IntVar(&cfg.Queue, "queue", 10000, "messages waiting per connection before the tool drops (counted as not sent)")
	fs.IntVar(&cfg.MaxBatch, "max-batch", 1, "most messages packed into one frame per connection")
	fs.Float64Var(&cfg.P99GoalMs, "p99-goal", 50, "a step passes with 100% delivery, every message acknowledged, and p99 below this (ms)")
	fs.DurationVar(&cfg.Step, "step", 5*time.Second, "duration of each rate step")
	fs.DurationVar(&cfg.Drain, "drain", 3*time.Second, "how long to wait for a step's last deliveries")
	fs.DurationVar(&cfg.GetTimeout, "get-timeout", 10*time.Second, "wait this long for the get replies")
	tracePath := fs.String("trace", "", "write one line per delivery to the first 3 clients to this file: client, seq, send and receive time (unix ns)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rs, err := parseRates(*rates)
	if err != nil {
		return err
	}
	cfg.Rates = rs
	if *tracePath != "" {
		f, err := os.Create(*tracePath)
		if err != nil {
			return err
		}
		defer f.Close()
		cfg.Trace = f
	}
	cfg.URL, cfg.Label, cfg.Hello, cfg.RelayPID, cfg.DialTimeout = c.url, c.label, c.hello, c.relayPID, c.dialTimeout
	res, err := runMessages(ctx, cfg)
	if res == nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d clients, %d/%d gets answered", res.Label, res.Connected, res.GetReplies, res.Subscribed)
	if res.Kind == "luminary" {
		fmt.Fprintf(stdout, ", head seq %d, %d log blocks followed, presigned in %.2f s", res.HeadSeq, res.Blocks, res.PresignSeconds)
	}
	fmt.Fprintln(stdout)
	printMessagesTable(stdout, []*messagesResult{res})
	for _, e := range res.ErrorSamples {
		fmt.Fprintf(stdout, "  error sample: %s\n", e)
	}
	if res.Late > 0 {
		fmt.Fprintf(stdout, "  %d deliveries arrived after their step's drain (not counted)\n", res.Late)
	}
	for _, e := range res.ConnErrors {
		fmt.Fprintf(stdout, "  connection: %s\n", e)
	}
	if werr := writeJSON(c.jsonPath, res); werr != nil {
		return werr
	}
	return err
}
