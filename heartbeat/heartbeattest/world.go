package heartbeattest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/keys"
)

// Messages on the simulated network.
type (
	// SubmitReq asks a host to sequence a message.
	SubmitReq struct{ Msg heartbeat.Message }
	// SubmitResp answers a SubmitReq.
	SubmitResp struct {
		ID      heartbeat.Hash
		Receipt heartbeat.Receipt
		Err     error
	}
	// JoinReq asks a host to log a client's join.
	JoinReq struct{ Client string }
	// JoinResp answers a JoinReq.
	JoinResp struct{ Err error }
	// VoteReq carries a snapshot vote and its data.
	VoteReq struct {
		Vote heartbeat.SnapshotVote
		Data []byte
	}
	// FetchReq asks the log server for entries from From.
	FetchReq struct {
		From uint64
		Max  int
	}
	// FetchResp carries a page of the log.
	FetchResp struct{ Page heartbeat.Page }
)

// World is one simulated instance: a shared log and lease (standing for the
// relay's store, or the JetStream cluster of the scale-out step), a log
// server answering gap fills, hosts competing to sequence, follower peers
// and senders, all on one network and one fake clock.
type World struct {
	Clock    *clock.Fake
	Rand     *rand.Rand
	Net      *Network
	Log      *heartbeat.MemLog
	Lease    *heartbeat.MemLease
	Owner    *keys.Private
	Instance string
	// Tickers are the keys allowed to tick besides the owner.
	Tickers map[string]bool
	Auth    heartbeat.Authorizer
	Cache   *heartbeat.RoundCache

	Hosts   []*HostNode
	Peers   []*Peer
	Senders []*Sender

	start time.Time
}

// LogServer is the network name of the log server node.
const LogServer = "log"

// NewWorld returns an empty world whose faults come from net and whose
// randomness comes from seed.
func NewWorld(seed uint64, net NetConfig) *World {
	clk := clock.NewFake(Epoch)
	rnd := rand.New(rand.NewPCG(seed, seed*0x9e3779b97f4a7c15+1))
	w := &World{
		Clock: clk, Rand: rnd, Net: NewNetwork(clk, rnd, net), Log: heartbeat.NewMemLog(),
		Lease: heartbeat.NewMemLease(clk), Owner: Key(seed*1000 + 1), Tickers: map[string]bool{},
		Cache: heartbeat.NewRoundCache(4096), start: clk.Now(),
	}
	w.Instance = w.Owner.Public().String()
	w.Auth = heartbeat.AuthorizerFunc(func(_ context.Context, instance, key string, role heartbeat.Role, _ time.Time) error {
		if role == heartbeat.RoleTick && key != instance && !w.Tickers[key] {
			return errors.New("no tick certificate")
		}
		return nil
	})
	w.Net.Register(LogServer, func(from string, msg any) {
		if r, ok := msg.(FetchReq); ok {
			p, err := w.Log.Read(Ctx, w.Instance, r.From, r.Max)
			if err == nil {
				w.Net.Send(LogServer, from, FetchResp{Page: p})
			}
		}
	})
	return w
}

// Elapsed is the simulation's monotonic clock (the fake's wall clock is
// never stepped; skewed peers use a SkewClock on top of it).
func (w *World) Elapsed() time.Duration { return w.Clock.Now().Sub(w.start) }

// HostNode is a simulated sequencer host.
type HostNode struct {
	Name  string
	Host  *heartbeat.Host
	Clock clock.Clock
	Alive bool // stepped and connected
	Pubs  int
	// Published records every publication with the simulation time.
	Published []Pub
	w         *World
}

// Pub is one publication of a host, with when it happened.
type Pub struct {
	At      time.Duration
	Tick    heartbeat.Tick
	Entries int
}

// AddHost adds a host (allowed to tick) whose signer is signer. mod may
// adjust its configuration (clock, TTLs...).
func (w *World) AddHost(name string, signer heartbeat.Signer, mod func(*heartbeat.HostConfig)) (*HostNode, error) {
	hn := &HostNode{Name: name, Clock: w.Clock, Alive: true, w: w}
	w.Tickers[signer.Public()] = true
	cfg := heartbeat.HostConfig{
		Signer: signer, Log: w.Log, Lease: w.Lease, Blobs: w.Log, Authorizer: w.Auth, Clock: w.Clock,
		Elapsed: w.Elapsed, Sink: heartbeat.SinkFunc(hn.publish),
	}
	if mod != nil {
		mod(&cfg)
	}
	hn.Clock = cfg.Clock
	h, err := heartbeat.NewHost(cfg)
	if err != nil {
		return nil, err
	}
	if err := h.Add(heartbeat.InstanceConfig{Instance: w.Instance, Name: "sim"}); err != nil {
		return nil, err
	}
	hn.Host = h
	w.Net.Register(name, hn.handle)
	w.Hosts = append(w.Hosts, hn)
	return hn, nil
}

func (hn *HostNode) publish(p heartbeat.Publication) {
	hn.Pubs++
	hn.Published = append(hn.Published, Pub{At: hn.w.Elapsed(), Tick: p.Tick, Entries: len(p.Entries)})
	for _, peer := range hn.w.Peers {
		hn.w.Net.Send(hn.Name, peer.Name, p)
	}
}

func (hn *HostNode) handle(from string, msg any) {
	switch m := msg.(type) {
	case SubmitReq:
		id := m.Msg.ID()
		hn.Host.Submit(Ctx, m.Msg, func(r heartbeat.Receipt, err error) {
			hn.w.Net.Send(hn.Name, from, SubmitResp{ID: id, Receipt: r, Err: err})
		})
	case JoinReq:
		hn.Host.Join(Ctx, hn.w.Instance, m.Client, "", func(_ heartbeat.Receipt, err error) {
			hn.w.Net.Send(hn.Name, from, JoinResp{Err: err})
		})
	case VoteReq:
		hn.Host.Vote(Ctx, m.Vote, m.Data, nil)
	}
}

// Crash stops the host for good: it is never stepped again and its traffic
// is dropped (like kill -9 of a process whose store is elsewhere).
func (hn *HostNode) Crash() { hn.Alive = false; hn.w.Net.SetDown(hn.Name, true) }

// Pause stops stepping the host and cuts it off; Resume brings the same
// host object back (a "zombie" that missed its lease expiry).
func (hn *HostNode) Pause() { hn.Crash() }

// Resume reconnects and steps a paused host again.
func (hn *HostNode) Resume() { hn.Alive = true; hn.w.Net.SetDown(hn.Name, false) }

// Run advances the world by d in steps of 1 ms: deliver due messages, step
// live hosts, poll peers and senders.
func (w *World) Run(d time.Duration) error {
	for end := w.Elapsed() + d; w.Elapsed() < end; {
		w.Clock.Advance(time.Millisecond)
		w.Net.Deliver()
		for _, h := range w.Hosts {
			if h.Alive {
				if _, err := h.Host.Step(Ctx); err != nil {
					return fmt.Errorf("host %s: %w", h.Name, err)
				}
			}
		}
		now := w.Clock.Now()
		for _, p := range w.Peers {
			p.poll(now)
		}
		for _, s := range w.Senders {
			s.poll(now)
		}
	}
	return nil
}

// Active returns the host currently sequencing, if any.
func (w *World) Active() *HostNode {
	for _, h := range w.Hosts {
		if st, ok := h.Host.Status(w.Instance); ok && st.Active && h.Alive {
			return h
		}
	}
	return nil
}

// EntryRec is what a peer saw of one entry.
type EntryRec struct {
	Seq  uint64
	Hash heartbeat.Hash
	Time float64
	Kind heartbeat.Kind
	ID   heartbeat.Hash
}

// Peer is a follower with an App. It asks the log server for gaps
// (Missing) and, when nothing arrives for a while, for everything after its
// position.
type Peer struct {
	Name       string
	F          *heartbeat.Follower
	App        *App
	Entries    []EntryRec
	Ticks      []heartbeat.Tick
	Errs       []error
	Signer     heartbeat.Signer // for joins and snapshot votes
	VoteEvery  uint64           // vote a snapshot after every entry whose seq is a multiple (0: never)
	FetchEvery time.Duration
	StallAfter time.Duration
	Joined     bool

	w          *World
	lastFetch  time.Time
	lastChange time.Time
	lastJoin   time.Time
}

func (w *World) newPeer(name string, f *heartbeat.Follower, app *App, seed uint64) *Peer {
	p := &Peer{Name: name, F: f, App: app, Signer: Signer(seed), FetchEvery: 30 * time.Millisecond,
		StallAfter: 150 * time.Millisecond, w: w, lastChange: w.Clock.Now()}
	w.Net.Register(name, p.handle)
	w.Peers = append(w.Peers, p)
	return p
}

// FollowerConfig returns the follower configuration peers use.
func (w *World) FollowerConfig() heartbeat.FollowerConfig {
	return heartbeat.FollowerConfig{Instance: w.Instance, Authorizer: w.Auth, Cache: w.Cache}
}

// AddPeer adds a peer following from the beginning of the log.
func (w *World) AddPeer(name string, seed uint64) (*Peer, error) {
	f, err := heartbeat.NewFollower(w.FollowerConfig())
	if err != nil {
		return nil, err
	}
	return w.newPeer(name, f, &App{}, seed), nil
}

// JoinPeer adds a peer that joins now from the latest accepted snapshot
// plus the log after it, read straight from the store (no live peer
// involved).
func (w *World) JoinPeer(name string, seed uint64) (*Peer, *heartbeat.JoinBundle, error) {
	b, err := heartbeat.LoadJoin(Ctx, w.Log, w.Log, w.Instance, 1<<16)
	if err != nil {
		return nil, nil, err
	}
	f, err := heartbeat.NewJoiner(w.FollowerConfig(), b)
	if err != nil {
		return nil, nil, err
	}
	app := &App{}
	if b.Snapshot != nil {
		if app, err = RestoreApp(b.Data); err != nil {
			return nil, nil, err
		}
	}
	p := w.newPeer(name, f, app, seed)
	p.drain()
	return p, &b, nil
}

func (p *Peer) handle(from string, msg any) {
	switch m := msg.(type) {
	case heartbeat.Publication:
		for _, e := range m.Entries {
			p.note(p.F.AddEntry(e))
		}
		p.note(p.F.AddTick(m.Tick))
	case FetchResp:
		for _, e := range m.Page.Entries {
			p.note(p.F.AddEntry(e))
		}
		for _, t := range m.Page.Ticks {
			p.note(p.F.AddTick(t))
		}
	case JoinResp:
		if m.Err == nil || errors.Is(m.Err, heartbeat.ErrDuplicate) {
			p.Joined = true
		}
	}
	p.drain()
}

func (p *Peer) note(err error) {
	if err != nil {
		p.Errs = append(p.Errs, err)
	}
}

func (p *Peer) drain() {
	for _, it := range p.F.Ready() {
		p.lastChange = p.w.Clock.Now()
		if err := p.App.Apply(it); err != nil {
			p.Errs = append(p.Errs, err)
		}
		if it.Tick != nil {
			p.Ticks = append(p.Ticks, *it.Tick)
			continue
		}
		e := it.Entry
		p.Entries = append(p.Entries, EntryRec{Seq: e.Seq, Hash: e.Hash(), Time: it.Time, Kind: e.Kind, ID: e.MessageID()})
		if p.VoteEvery > 0 && e.Seq%p.VoteEvery == 0 {
			data := p.App.Snapshot()
			v := heartbeat.SnapshotVote{Instance: p.w.Instance, Seq: e.Seq, Hash: heartbeat.SHA256(data)}
			if err := v.Sign(p.Signer); err != nil {
				p.Errs = append(p.Errs, err)
				continue
			}
			for _, h := range p.w.Hosts {
				p.w.Net.Send(p.Name, h.Name, VoteReq{Vote: v, Data: data})
			}
		}
	}
}

func (p *Peer) poll(now time.Time) {
	if !p.Joined && p.VoteEvery > 0 && now.Sub(p.lastJoin) >= 100*time.Millisecond {
		p.lastJoin = now
		if h := p.w.Active(); h != nil {
			p.w.Net.Send(p.Name, h.Name, JoinReq{Client: p.Signer.Public()})
		}
	}
	if now.Sub(p.lastFetch) < p.FetchEvery {
		return
	}
	if miss := p.F.Missing(1); len(miss) > 0 {
		p.lastFetch = now
		p.w.Net.Send(p.Name, LogServer, FetchReq{From: miss[0].From, Max: int(min(miss[0].To-miss[0].From+1, 256))})
		return
	}
	if now.Sub(p.lastChange) >= p.StallAfter {
		p.lastFetch = now
		p.w.Net.Send(p.Name, LogServer, FetchReq{From: p.F.Applied().Seq + 1, Max: 256})
	}
}

// Sender sends Total signed messages, one every ~Interval, and resends each
// until a host acknowledges it (rotating hosts when refused as not the
// sequencer or when it gets no answer).
type Sender struct {
	Name     string
	Signer   heartbeat.Signer
	Clock    clock.Clock // its wall clock (for timestamps)
	Total    int
	Interval time.Duration
	Retry    time.Duration

	Acked   map[heartbeat.Hash]heartbeat.Receipt
	Refused map[heartbeat.Hash]error
	Errs    []error

	w      *World
	made   int
	nextAt time.Time
	order  []heartbeat.Hash
	out    map[heartbeat.Hash]*outMsg
	target int
}

type outMsg struct {
	m     heartbeat.Message
	last  time.Time
	tries int
}

// AddSender adds a sender.
func (w *World) AddSender(name string, seed uint64, total int, interval time.Duration) *Sender {
	s := &Sender{Name: name, Signer: Signer(seed), Clock: w.Clock, Total: total, Interval: interval, Retry: 80 * time.Millisecond,
		Acked: map[heartbeat.Hash]heartbeat.Receipt{}, Refused: map[heartbeat.Hash]error{}, w: w,
		out: map[heartbeat.Hash]*outMsg{}, nextAt: w.Clock.Now()}
	w.Net.Register(name, s.handle)
	w.Senders = append(w.Senders, s)
	return s
}

// Done reports whether every message was acknowledged or refused.
func (s *Sender) Done() bool { return s.made == s.Total && len(s.out) == 0 }

func (s *Sender) poll(now time.Time) {
	if s.made < s.Total && !now.Before(s.nextAt) {
		m := heartbeat.Message{Instance: s.w.Instance, TS: s.Clock.Now().UnixMilli(), Nonce: fmt.Sprintf("%s-%d", s.Name, s.made),
			Payload: fmt.Sprintf(`{"from":%q,"n":%d}`, s.Name, s.made)}
		if err := m.Sign(s.Signer); err != nil {
			s.Errs = append(s.Errs, err)
			return
		}
		s.made++
		id := m.ID()
		s.order = append(s.order, id)
		s.out[id] = &outMsg{m: m}
		s.nextAt = now.Add(time.Duration(s.w.Rand.Int64N(int64(2*s.Interval) + 1)))
	}
	for _, id := range s.order {
		o := s.out[id]
		if o == nil || (o.tries > 0 && now.Sub(o.last) < s.Retry) {
			continue
		}
		if o.tries > 0 && o.tries%2 == 0 {
			s.target++
		}
		o.tries++
		o.last = now
		if len(s.w.Hosts) > 0 {
			s.w.Net.Send(s.Name, s.w.Hosts[s.target%len(s.w.Hosts)].Name, SubmitReq{Msg: o.m})
		}
	}
	s.order = slices.DeleteFunc(s.order, func(id heartbeat.Hash) bool { return s.out[id] == nil })
}

func (s *Sender) handle(from string, msg any) {
	r, ok := msg.(SubmitResp)
	if !ok || s.out[r.ID] == nil && s.Acked[r.ID] == (heartbeat.Receipt{}) {
		return
	}
	switch {
	case r.Err == nil || errors.Is(r.Err, heartbeat.ErrDuplicate):
		if old, ok := s.Acked[r.ID]; ok && old.Seq != r.Receipt.Seq {
			s.Errs = append(s.Errs, fmt.Errorf("message %s acked at seq %d and %d", r.ID, old.Seq, r.Receipt.Seq))
		}
		s.Acked[r.ID] = r.Receipt
		delete(s.out, r.ID)
	case errors.Is(r.Err, heartbeat.ErrNotSequencer) || errors.Is(r.Err, heartbeat.ErrClosed) || errors.Is(r.Err, heartbeat.ErrQueueFull):
		s.target++
	default:
		if s.out[r.ID] != nil {
			s.Refused[r.ID] = r.Err
			delete(s.out, r.ID)
		}
	}
}

// Check verifies the world's invariants: no peer or sender error; every
// peer that is given holds the same entries (seq, hash, time) in order,
// contiguous from its starting point; entry and tick times never decrease;
// every acknowledged message is in the log exactly once at its receipt's
// seq and appears exactly once in every peer that started before it.
func (w *World) Check(peers ...*Peer) error {
	if len(peers) == 0 {
		peers = w.Peers
	}
	for _, p := range peers {
		if len(p.Errs) > 0 {
			return fmt.Errorf("peer %s: %d errors, first: %w", p.Name, len(p.Errs), p.Errs[0])
		}
		if err := p.F.Err(); err != nil {
			return fmt.Errorf("peer %s stopped: %w", p.Name, err)
		}
		for i := 1; i < len(p.Entries); i++ {
			if p.Entries[i].Seq != p.Entries[i-1].Seq+1 {
				return fmt.Errorf("peer %s: seq %d after %d", p.Name, p.Entries[i].Seq, p.Entries[i-1].Seq)
			}
			if !(p.Entries[i].Time > p.Entries[i-1].Time) {
				return fmt.Errorf("peer %s: time %v after %v at seq %d", p.Name, p.Entries[i].Time, p.Entries[i-1].Time, p.Entries[i].Seq)
			}
		}
		for i := 1; i < len(p.Ticks); i++ {
			if !(p.Ticks[i].State > p.Ticks[i-1].State) {
				return fmt.Errorf("peer %s: tick state %v after %v", p.Name, p.Ticks[i].State, p.Ticks[i-1].State)
			}
		}
	}
	for _, s := range w.Senders {
		if len(s.Errs) > 0 {
			return fmt.Errorf("sender %s: %w", s.Name, s.Errs[0])
		}
	}
	// Identical streams on the common range.
	bySeq := map[uint64]EntryRec{}
	for _, p := range peers {
		for _, e := range p.Entries {
			if o, ok := bySeq[e.Seq]; ok && o != e {
				return fmt.Errorf("peer %s differs at seq %d: %+v vs %+v", p.Name, e.Seq, e, o)
			}
			bySeq[e.Seq] = e
		}
	}
	// Every ack is in the log exactly once, at its seq.
	seen := map[heartbeat.Hash]uint64{}
	st, err := w.Log.State(Ctx, w.Instance)
	if err != nil {
		return err
	}
	for from := uint64(1); from <= st.Head.Seq; {
		pg, err := w.Log.Read(Ctx, w.Instance, from, 4096)
		if err != nil {
			return err
		}
		for _, e := range pg.Entries {
			if e.Kind == heartbeat.KindMessage {
				id := e.MessageID()
				if _, dup := seen[id]; dup {
					return fmt.Errorf("message %s twice in the log", id)
				}
				seen[id] = e.Seq
			}
			from = e.Seq + 1
		}
	}
	for _, s := range w.Senders {
		for id, r := range s.Acked {
			if seq, ok := seen[id]; !ok || seq != r.Seq {
				return fmt.Errorf("acked message %s (seq %d) is not in the log at that seq (found %d, %v)", id, r.Seq, seq, ok)
			}
			for _, p := range peers {
				if len(p.Entries) == 0 || p.Entries[0].Seq > r.Seq || p.Entries[len(p.Entries)-1].Seq < r.Seq {
					continue
				}
				if got := p.Entries[r.Seq-p.Entries[0].Seq]; got.ID != id {
					return fmt.Errorf("peer %s has %s at seq %d, ack says %s", p.Name, got.ID, r.Seq, id)
				}
			}
		}
	}
	return nil
}
