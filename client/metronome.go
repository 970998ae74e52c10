package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/jsjson"
)

// MetronomeOptions tunes [World.RunMetronome]. Zero fields take defaults.
type MetronomeOptions struct {
	// LeaseTTL is the lease term asked of the relay (default 500 ms): a
	// standby takes over about this long after this metronome stops.
	LeaseTTL time.Duration
	// RequestTimeout bounds one exchange with the relay (default 2 s).
	RequestTimeout time.Duration
	// Logger receives the sequencer's events (default: the client's).
	Logger *slog.Logger
}

// RunMetronome runs the world's metronome and sequencer in this client
// until ctx ends: a heartbeat.Host signing with the client's key, whose
// ordered log and lease are the relay's, reached over the Gun wire (the
// lumSeq member; see api/service/remote.go). The client's key needs the
// world's tick role (the owner's key, or a tick certificate published at
// lum/<I>/certs) and a login on the relay.
//
// While another holder (the relay's own host or another peer) has the
// lease, the client stands by and takes over when that holder stops
// renewing it, with a new epoch; the relay's host yields to a remote
// metronome that asks. Every batch the client sends is judged by the
// relay (round signature, tick role, current grant and epoch, order,
// author signatures and roles) before it is stored and published, so a
// client cannot make the relay accept what a relay-run metronome could
// not. Messages the relay admits for the world are handed to the client
// while it holds the lease; their authors get receipts from the relay when
// the client's batch carrying them is accepted.
//
// A failure of the relay connection ends the current term (the host
// steps down and competes again once the client has reconnected); a
// failure that stops the host restarts it after a pause. RunMetronome
// returns nil when ctx ends, after releasing the lease, and an error at
// once when the relay refuses the client as a sequencer of the world:
// heartbeat.ErrNotAuthorisedToTick without the tick role, a [*RelayError]
// otherwise (no login, a world the relay does not host).
func (w *World) RunMetronome(ctx context.Context, opts MetronomeOptions) error {
	c := w.c
	if c.cfg.Key == nil {
		return ErrNoKey
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = 500 * time.Millisecond
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = c.log
	}
	holder := c.cfg.Key.Public().String()
	wire := &seqWire{c: c, holder: holder, ttl: opts.LeaseTTL, timeout: opts.RequestTimeout, logger: opts.Logger}
	pause := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := w.runHost(ctx, wire, opts)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		var re *RelayError
		if errors.As(err, &re) || errors.Is(err, heartbeat.ErrNotAuthorisedToTick) {
			// Refused (not authorised, not logged in, unknown world): asking
			// again would not help.
			return fmt.Errorf("client: metronome of %s: %w", w.inst, err)
		}
		opts.Logger.Warn("client: metronome stopped; restarting", "instance", w.inst, "err", err)
		t := c.clk.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		}
		pause = min(2*pause, 2*time.Second)
	}
	return nil
}

// runHost runs one heartbeat.Host for the world until ctx ends or it fails.
func (w *World) runHost(ctx context.Context, wire *seqWire, opts MetronomeOptions) error {
	c := w.c
	st, err := wire.State(ctx, w.inst)
	if err != nil {
		return err
	}
	if st.Meta == nil {
		return fmt.Errorf("client: world %s has no metadata yet: %w", w.inst, heartbeat.ErrUnknownInstance)
	}
	host, err := heartbeat.NewHost(heartbeat.HostConfig{
		Signer: heartbeat.KeySigner(c.cfg.Key),
		Log:    wire,
		Lease:  wire,
		Sink:   wire,
		// The relay judges every message's author again when it accepts a
		// batch; here only the tick role is checked (to not ask for a lease
		// the relay would refuse).
		Authorizer: heartbeat.AuthorizerFunc(func(ctx context.Context, inst, key string, role heartbeat.Role, at time.Time) error {
			if role != heartbeat.RoleTick {
				return nil
			}
			return w.certs.Authorize(ctx, inst, key, auth.Role(role), at)
		}),
		Clock:    c.clk,
		Logger:   opts.Logger,
		LeaseTTL: opts.LeaseTTL,
		// A round's batch travels in one frame, which must fit the relay's
		// read limit (1 MiB by default).
		MaxBatch: remoteMaxBatch,
	})
	if err != nil {
		return err
	}
	if err := host.Add(heartbeat.InstanceConfig{Instance: w.inst, Name: st.Meta.Name, Rate: st.Meta.Rate, TPS: st.Meta.TPS}); err != nil {
		return err
	}
	// Messages from the relay are submitted on their own goroutine: Submit
	// asks the relay's log for duplicates, and the answer arrives on the
	// connection's reader, which must not wait for it.
	sq := &sequencerIn{host: host, in: make(chan heartbeat.Message, seqQueue)}
	subCtx, stopSubmit := context.WithCancel(ctx)
	submitted := make(chan struct{})
	go func() {
		defer close(submitted)
		sq.run(subCtx, c)
	}()
	c.mu.Lock()
	c.sequencers[w.inst] = sq
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.sequencers[w.inst] == sq {
			delete(c.sequencers, w.inst)
		}
		c.mu.Unlock()
		stopSubmit()
		<-submitted
	}()
	return host.Run(ctx)
}

// remoteMaxBatch bounds the entries a remote host sequences per round: a
// round's batch is one frame to the relay, and 256 entries of ordinary
// messages (≈ 600 bytes each) stay well inside the relay's default 1 MiB
// read limit. Worlds with large payloads need a larger --read-limit.
const remoteMaxBatch = 256

// seqQueue bounds the messages from the relay waiting for Submit.
const seqQueue = 10000

// sequencerIn feeds the messages the relay hands over to a host.
type sequencerIn struct {
	host *heartbeat.Host
	in   chan heartbeat.Message
}

func (q *sequencerIn) run(ctx context.Context, c *Client) {
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case m := <-q.in:
					c.refuseSeq(m.Instance, m.ID(), heartbeat.ErrNotSequencer)
				default:
					return
				}
			}
		case m := <-q.in:
			id := m.ID()
			q.host.Submit(ctx, m, func(_ heartbeat.Receipt, err error) {
				if err != nil {
					c.refuseSeq(m.Instance, id, err)
				}
			})
		}
	}
}

// refuseSeq tells the relay that the message id was not sequenced here.
// A failure that is not one of heartbeat's refusals (a cancelled exchange
// with the relay while stopping, say) says nothing against the message:
// it is reported as "not the sequencer", so the relay hands it on.
func (c *Client) refuseSeq(inst string, id heartbeat.Hash, err error) {
	if heartbeat.ReasonError(heartbeat.Reason(err)) == nil {
		err = heartbeat.ErrNotSequencer
	}
	body := seqBody("refuse", inst)
	body.Set("holder", c.cfg.Key.Public().String())
	body.Set("id", id.String())
	body.Set("err", heartbeat.Reason(err))
	_ = c.send(memberFrame(newID(), heartbeat.SeqMember, jsjson.Append(nil, body)))
}

// seqRequest serves a lumSeq request from the relay: a message to sequence.
func (c *Client) seqRequest(v any) {
	o, ok := v.(*jsjson.Object)
	if !ok {
		return
	}
	switch op, _ := o.Get("op"); op {
	case "msg":
	case "presence":
		c.seqPresence(o)
		return
	case "snapshot":
		c.seqSnapshot(o)
		return
	default:
		return
	}
	text, _ := o.Get("message")
	s, ok := text.(string)
	if !ok {
		return
	}
	m, err := heartbeat.ParseMessage([]byte(s))
	if err != nil {
		c.log.Debug("client: malformed message from the relay", "err", err)
		return
	}
	c.mu.Lock()
	sq := c.sequencers[m.Instance]
	c.mu.Unlock()
	if sq == nil {
		c.refuseSeq(m.Instance, m.ID(), heartbeat.ErrNotSequencer)
		return
	}
	select {
	case sq.in <- m:
	default:
		c.refuseSeq(m.Instance, m.ID(), heartbeat.ErrQueueFull)
	}
}

// seqPresence hands the world's presence, as the relay sees it, to the host
// sequencing it here: the keys present when its term starts (it logs the
// joins and leaves that make the log agree), then each join and leave.
func (c *Client) seqPresence(o *jsjson.Object) {
	inst, sq := c.sequencerOf(o)
	if sq == nil {
		return
	}
	logged := func(_ heartbeat.Receipt, err error) {
		if err != nil && !errors.Is(err, heartbeat.ErrDuplicate) {
			c.log.Debug("client: presence not logged", "instance", inst, "err", err)
		}
	}
	// Join, Leave and SyncPresence only queue (no exchange with the relay):
	// safe on the reader goroutine.
	if v, ok := o.Get("join"); ok {
		if k, ok := v.(string); ok {
			sq.host.Join(context.Background(), inst, k, "", logged)
		}
		return
	}
	if v, ok := o.Get("leave"); ok {
		if k, ok := v.(string); ok {
			sq.host.Leave(context.Background(), inst, k, logged)
		}
		return
	}
	kv, _ := o.Get("keys")
	keys, ok := stringList(kv, heartbeat.MaxWirePresence)
	if !ok {
		return
	}
	sq.host.SyncPresence(context.Background(), inst, keys, logged)
}

// sequencerOf returns the instance a relay request names and the host
// sequencing it here (nil when none does).
func (c *Client) sequencerOf(o *jsjson.Object) (string, *sequencerIn) {
	iv, _ := o.Get("instance")
	inst, _ := iv.(string)
	c.mu.Lock()
	defer c.mu.Unlock()
	return inst, c.sequencers[inst]
}

// stringList converts a decoded JSON array of at most max strings.
func stringList(v any, max int) ([]string, bool) {
	list, ok := v.([]any)
	if !ok || len(list) > max {
		return nil, false
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		k, ok := x.(string)
		if !ok {
			return nil, false
		}
		out = append(out, k)
	}
	return out, true
}

// seqSnapshot hands the host sequencing a world here the snapshot marker
// the relay decided from the members' votes, to log as it is: the relay
// accepts this term's batch only with exactly that marker.
func (c *Client) seqSnapshot(o *jsjson.Object) {
	inst, sq := c.sequencerOf(o)
	if sq == nil {
		return
	}
	sv, _ := o.Get("seq")
	seq, ok := sv.(float64)
	hv, _ := o.Get("hash")
	ht, _ := hv.(string)
	hash, err := heartbeat.ParseHash(ht)
	vv, _ := o.Get("voters")
	voters, ok2 := stringList(vv, heartbeat.MaxWirePresence)
	if !ok || !ok2 || err != nil || seq < 1 || seq != float64(uint64(seq)) {
		c.log.Debug("client: malformed snapshot marker from the relay", "instance", inst)
		return
	}
	// Only queues (no exchange with the relay): safe on the reader goroutine.
	sq.host.AppendSnapshot(context.Background(), inst, uint64(seq), hash, voters, func(_ heartbeat.Receipt, err error) {
		if err != nil && !errors.Is(err, heartbeat.ErrDuplicate) {
			c.log.Debug("client: snapshot marker not logged", "instance", inst, "err", err)
		}
	})
}

// seqWire is the relay's log, lease and publication sink as a remote
// sequencer sees them (heartbeat.Log, heartbeat.Lease, heartbeat.Sink).
type seqWire struct {
	c       *Client
	holder  string
	ttl     time.Duration
	timeout time.Duration
	logger  *slog.Logger
}

var (
	_ heartbeat.Log   = (*seqWire)(nil)
	_ heartbeat.Lease = (*seqWire)(nil)
	_ heartbeat.Sink  = (*seqWire)(nil)
)

// errUnsupported: the relay does not serve this part of its log to a
// sequencer (the host never asks for it).
var errUnsupported = errors.New("client: not served to a remote sequencer")

// call sends one lumSeq request and returns the answer's lumSeq member
// (nil for a plain ok).
func (s *seqWire) call(ctx context.Context, body *jsjson.Object) (any, error) {
	body.Set("holder", s.holder)
	data := jsjson.Append(nil, body)
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var out any
	err := s.c.roundTrip(ctx, false, func(id string) []byte { return memberFrame(id, heartbeat.SeqMember, data) }, func(m *msg) (bool, error) {
		if m.Err != "" {
			return true, seqError(m.Err)
		}
		out, _ = m.member(heartbeat.SeqMember)
		return true, nil
	})
	return out, err
}

// seqError turns a relay's refusal back into heartbeat's sentinel, so
// that the host reacts to it as to its own log's and lease's errors.
func seqError(reason string) error {
	for _, s := range []error{heartbeat.ErrLeaseHeld, heartbeat.ErrLeaseLost, heartbeat.ErrConflict} {
		if reason == seqWireText(s) {
			return fmt.Errorf("%w (relay: %s)", s, reason)
		}
	}
	if err := heartbeat.ReasonError(reason); err != nil {
		return err
	}
	return &RelayError{reason}
}

// seqWireText is the relay's text for the lease's and the log's errors
// (api/service: SeqLeaseHeld, SeqLeaseLost, SeqConflict).
func seqWireText(err error) string {
	switch err {
	case heartbeat.ErrLeaseHeld:
		return "restricted: lease held by another holder"
	case heartbeat.ErrLeaseLost:
		return "restricted: lease lost"
	case heartbeat.ErrConflict:
		return "invalid: time/seq order (append conflicts with the log head)"
	}
	return ""
}

func seqBody(op, inst string) *jsjson.Object {
	o := &jsjson.Object{}
	o.Set("op", op)
	if inst != "" {
		o.Set("instance", inst)
	}
	return o
}

// Acquire implements heartbeat.Lease.
func (s *seqWire) Acquire(ctx context.Context, inst, holder string, ttl time.Duration, min uint64) (heartbeat.Grant, error) {
	if holder != s.holder {
		return heartbeat.Grant{}, fmt.Errorf("client: acquire for %s: %w", holder, heartbeat.ErrNotAuthorisedToTick)
	}
	b := seqBody("acquire", inst)
	b.Set("ttl", float64(ttl.Milliseconds()))
	b.Set("min", float64(min))
	v, err := s.call(ctx, b)
	if err != nil {
		return heartbeat.Grant{}, err
	}
	return grantOf(v, inst)
}

func grantOf(v any, inst string) (heartbeat.Grant, error) {
	o, ok := v.(*jsjson.Object)
	if !ok {
		return heartbeat.Grant{}, errors.New("client: lease answer is not an object")
	}
	h, _ := o.Get("holder")
	e, _ := o.Get("epoch")
	holder, ok1 := h.(string)
	epoch, ok2 := e.(float64)
	if !ok1 || !ok2 || epoch < 1 || epoch != float64(uint64(epoch)) {
		return heartbeat.Grant{}, errors.New("client: malformed lease answer")
	}
	return heartbeat.Grant{Instance: inst, Holder: holder, Epoch: uint64(epoch)}, nil
}

// Renew implements heartbeat.Lease.
func (s *seqWire) Renew(ctx context.Context, g heartbeat.Grant, ttl time.Duration) error {
	b := seqBody("renew", g.Instance)
	b.Set("epoch", float64(g.Epoch))
	b.Set("ttl", float64(ttl.Milliseconds()))
	_, err := s.call(ctx, b)
	if err != nil && !errors.Is(err, heartbeat.ErrLeaseLost) {
		// The relay could not be asked: the term cannot be trusted to
		// continue (the lease may lapse meanwhile).
		return fmt.Errorf("%w (%w)", heartbeat.ErrLeaseLost, err)
	}
	return err
}

// Release implements heartbeat.Lease.
func (s *seqWire) Release(ctx context.Context, g heartbeat.Grant) error {
	b := seqBody("release", g.Instance)
	b.Set("epoch", float64(g.Epoch))
	_, err := s.call(ctx, b)
	return err
}

// Current implements heartbeat.Lease.
func (s *seqWire) Current(ctx context.Context, inst string) (heartbeat.Grant, bool, error) {
	v, err := s.call(ctx, seqBody("current", inst))
	if err != nil {
		return heartbeat.Grant{}, false, err
	}
	if o, ok := v.(*jsjson.Object); ok && o.Len() == 0 {
		return heartbeat.Grant{}, false, nil
	}
	g, err := grantOf(v, inst)
	return g, err == nil, err
}

// State implements heartbeat.Log.
func (s *seqWire) State(ctx context.Context, inst string) (heartbeat.LogState, error) {
	v, err := s.call(ctx, seqBody("state", inst))
	if err != nil {
		return heartbeat.LogState{}, err
	}
	return heartbeat.LogStateFromValue(v)
}

// Lookup implements heartbeat.Log.
func (s *seqWire) Lookup(ctx context.Context, inst string, id heartbeat.Hash) (heartbeat.Entry, bool, error) {
	b := seqBody("lookup", inst)
	b.Set("id", id.String())
	v, err := s.call(ctx, b)
	if err != nil {
		return heartbeat.Entry{}, false, err
	}
	o, ok := v.(*jsjson.Object)
	if !ok {
		return heartbeat.Entry{}, false, errors.New("client: malformed lookup answer")
	}
	ev, found := o.Get("entry")
	if !found {
		return heartbeat.Entry{}, false, nil
	}
	e, err := heartbeat.ParseEntry(jsjson.Append(nil, ev))
	if err != nil {
		return heartbeat.Entry{}, false, err
	}
	return e, true, nil
}

// HolderMark implements heartbeat.Log.
func (s *seqWire) HolderMark(ctx context.Context, holder string) (float64, error) {
	if holder != s.holder {
		return 0, errUnsupported
	}
	v, err := s.call(ctx, seqBody("mark", ""))
	if err != nil {
		return 0, err
	}
	o, ok := v.(*jsjson.Object)
	if !ok {
		return 0, errors.New("client: malformed mark answer")
	}
	m, _ := o.Get("mark")
	f, ok := m.(float64)
	if !ok {
		return 0, errors.New("client: malformed mark answer")
	}
	return f, nil
}

// Append implements heartbeat.Log: the relay judges each batch (see
// api/service/remote.go) and answers per batch. A failed exchange is
// reported as a conflict of every batch, which ends the terms involved:
// whether the relay stored them is unknown, and a new term starts from the
// log as the relay holds it.
func (s *seqWire) Append(ctx context.Context, batches []heartbeat.Batch) error {
	list := make([]any, len(batches))
	for i := range batches {
		list[i] = jsjson.Raw(batches[i].AppendJSON(nil))
	}
	b := seqBody("append", "")
	b.Set("batches", list)
	v, err := s.call(ctx, b)
	if err != nil {
		ae := make(heartbeat.AppendError, len(batches))
		for i := range ae {
			ae[i] = fmt.Errorf("client: append through the relay: %w (%w)", heartbeat.ErrConflict, err)
		}
		return ae
	}
	o, ok := v.(*jsjson.Object)
	var errs []any
	if ok {
		x, _ := o.Get("errs")
		errs, ok = x.([]any)
	}
	if !ok || len(errs) != len(batches) {
		return fmt.Errorf("client: malformed append answer: %w", heartbeat.ErrLogBroken)
	}
	var ae heartbeat.AppendError
	for i, e := range errs {
		if e == nil {
			continue
		}
		reason, _ := e.(string)
		if ae == nil {
			ae = make(heartbeat.AppendError, len(batches))
		}
		ae[i] = seqError(reason)
	}
	if ae != nil {
		return ae
	}
	return nil
}

// Read, ReadByTime and Instances are not served to a sequencer.
func (s *seqWire) Read(context.Context, string, uint64, int) (heartbeat.Page, error) {
	return heartbeat.Page{}, errUnsupported
}

// ReadByTime implements heartbeat.Log (not served).
func (s *seqWire) ReadByTime(context.Context, string, float64, float64, int) (heartbeat.Page, error) {
	return heartbeat.Page{}, errUnsupported
}

// Instances implements heartbeat.Log (not served).
func (s *seqWire) Instances(context.Context) ([]string, error) { return nil, errUnsupported }

// Publish implements heartbeat.Sink: an idle tick goes to the relay, which
// publishes it once it has judged it (a stored publication was published
// when its append was accepted). It does not wait for the relay.
func (s *seqWire) Publish(p heartbeat.Publication) {
	if p.Stored || len(p.Entries) > 0 {
		return
	}
	t := p.Tick
	b := heartbeat.Batch{Instance: t.Instance, Tick: &t}
	body := seqBody("tick", "")
	body.Set("holder", s.holder)
	body.Set("batch", jsjson.Raw(b.AppendJSON(nil)))
	if err := s.c.send(memberFrame(newID(), heartbeat.SeqMember, jsjson.Append(nil, body))); err != nil {
		s.logger.Debug("client: idle tick not sent", "instance", t.Instance, "err", err)
	}
}
