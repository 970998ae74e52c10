package service

import (
	"context"
	"crypto/rand"
	"errors"
	"maps"
	"strings"

	"github.com/gorilla/websocket"

	"github.com/krestianstvo/luminary/api"
	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/jsjson"
)

// ReceiptMember is the top-level member of the frame with which the relay
// acknowledges a sequenced message to the connection that put it:
//
//	{"#":"<id>","@":"<put id>","ok":true,"lum":{"id":"<msg id>","seq":n,"epoch":e,"state":s,"time":t}}
//	{"#":"<id>","@":"<put id>","ok":true,"lum":{…,"dup":true}}       (already in the log: the original seq)
//	{"#":"<id>","@":"<put id>","err":"<reason>","lum":{"id":"<msg id>"}}  (the sequencer refused it)
//
// It comes in addition to the put's ordinary Gun ack (which says only that
// the relay took the inbox node, a transient node kept in memory, or why
// not): the receipt, not the Gun ack, says the message is durable. gun.js
// peers treat it as one more ack of the put; the Go client waits for it.
const ReceiptMember = "lum"

// conn returns the service's state for a connection, creating it (and
// arranging its cleanup) on first use.
func (s *Service) conn(p *api.PeerInfo) *connState {
	if p == nil {
		return &connState{peer: auth.NewPeer()}
	}
	if v, ok := p.Values.Load(connKey{}); ok {
		return v.(*connState)
	}
	st := &connState{peer: auth.NewPeer()}
	v, loaded := p.Values.LoadOrStore(connKey{}, st)
	if loaded {
		return v.(*connState)
	}
	context.AfterFunc(p.Context(), func() { st.close(s.pres) })
	return st
}

type connKey struct{}

// Guard returns the api.Guard of the relay: auth's checker (signatures,
// roles, private worlds, replays), plus admission of inbound messages to
// the sequencer and presence for connections that follow a world.
func (s *Service) Guard() api.Guard { return guard{s} }

type guard struct{ s *Service }

// Preverify verifies diff's signatures ahead of CheckPut (api.Preverifier;
// see auth.Checker.Preverify). It also verifies the author signature of
// every inbound message to a hosted world: a success lands in the
// service's verification cache, where the inbox judge and Host.Submit find
// it at the put's turn, so that messages too are verified on every core.
// A failure decides nothing here; the judge verifies again and refuses.
func (g guard) Preverify(ctx context.Context, _ *api.PeerInfo, diff graph.Graph) context.Context {
	s := g.s
	var parsed inboxParses
	for soul, n := range diff {
		if inst, ok := inboxInstance(soul); ok && n != nil && s.worlds.hosted(inst) {
			msg, err := s.messageOf(soul, n.Fields)
			if err == nil {
				_ = msg.Verify(s.verifier)
			}
			if parsed == nil {
				parsed = inboxParses{}
			}
			parsed[soul] = parsedInbox{fields: n.Fields, msg: msg, err: err}
		}
	}
	if parsed != nil {
		ctx = context.WithValue(ctx, inboxParsesKey{}, parsed)
	}
	return s.checker.Preverify(ctx, diff)
}

// inboxParses carries the messages Preverify rebuilt from a put's inbox
// nodes to the put's turn, where the inbox judge and the submission to the
// host reuse them instead of rebuilding each again (a rebuild is a JSON
// round trip of the message).
type inboxParses map[string]parsedInbox

type parsedInbox struct {
	fields map[string]graph.Field // what the message was rebuilt from
	msg    heartbeat.Message
	err    error
}

type inboxParsesKey struct{}

// messageIn is messageOf, reusing Preverify's result when it was rebuilt
// from the same fields.
func (s *Service) messageIn(ctx context.Context, soul string, fields map[string]graph.Field) (heartbeat.Message, error) {
	if c, ok := ctx.Value(inboxParsesKey{}).(inboxParses); ok {
		if p, ok := c[soul]; ok && maps.Equal(p.fields, fields) {
			return p.msg, p.err
		}
	}
	return s.messageOf(soul, fields)
}

// CheckPut judges diff with the checker, then submits every inbound
// message node (lum/<I>/in/<id> of a world this relay sequences) whose
// fields were accepted or refused only as duplicates to the host; the
// receipt goes back to the connection in a ReceiptMember frame.
func (g guard) CheckPut(ctx context.Context, p *api.PeerInfo, diff graph.Graph) (graph.Graph, []graph.FieldError) {
	s := g.s
	st := s.conn(p)
	allowed, refused := s.checker.CheckPut(ctx, st.peer, diff)
	allowed, refused = s.checkPrivateData(ctx, allowed, refused)
	allowed, refused = wholeRecordChanges(allowed, refused)
	var inboxes []string
	for soul := range diff {
		if inst, ok := inboxInstance(soul); ok && s.worlds.hosted(inst) {
			inboxes = append(inboxes, soul)
		}
		if inst, ok := sequencedInstance(soul); ok && s.worlds.hosted(inst) && allowed[soul] != nil {
			allowed, refused = s.refuseSequencerWrites(ctx, inst, soul, allowed, refused)
		}
	}
	if len(inboxes) == 0 {
		return allowed, refused
	}
	m := api.MessageFrom(ctx)
	putID := ""
	if m != nil && m.Ack == "" && (p == nil || !p.Outbound) {
		putID = m.ID
	}
	for _, soul := range inboxes {
		ok := true
		for _, fe := range refused {
			if fe.Soul == soul && auth.PrefixOf(fe.Err.Error()) != auth.PrefixDuplicate {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		msg, err := s.messageIn(ctx, soul, diff[soul].Fields)
		if err != nil {
			continue
		}
		s.submit(ctx, p, putID, msg)
	}
	return allowed, refused
}

// TransientSoul reports whether soul is the inbound message node
// (lum/<I>/in/<id>) of a world this relay hosts. The graph store keeps such
// nodes in memory only, within a bound, dropping the oldest
// (graph.BoltOptions.Transient): every message the host sequences is
// durable in heartbeat.db before its receipt, so a durable copy in the
// graph would only add a second fsync and a B-tree insert per message.
// An inbox node lives long enough for its author (and any subscriber) to
// see the relay add its seq and time; the log is the history. A replay of
// a message dropped from memory (or from before a restart) is still
// refused as a duplicate: the inbox check asks the log (Service.inbox).
func (s *Service) TransientSoul(soul string) bool {
	inst, ok := inboxInstance(soul)
	return ok && s.worlds.hosted(inst)
}

// submit hands a message to the host and answers the connection.
func (s *Service) submit(ctx context.Context, p *api.PeerInfo, putID string, msg heartbeat.Message) {
	start := s.clk.Now()
	id := msg.ID()
	s.pres.renew(msg.Instance, msg.Author, s.cfg.PresenceTTL)
	s.remote.dispatch(ctx, msg, func(r heartbeat.Receipt, err error) {
		dup := errors.Is(err, heartbeat.ErrDuplicate) && r.Seq > 0
		if err != nil && !dup {
			s.m.refused.WithLabelValues(prefixLabel(heartbeat.Reason(err))).Inc()
		} else if !dup {
			s.m.receiptLatency.Observe(s.clk.Now().Sub(start).Seconds())
		}
		if putID == "" || p == nil {
			return
		}
		p.Send(receiptFrame(putID, id, r, err, dup))
	})
}

func receiptFrame(putID string, id heartbeat.Hash, r heartbeat.Receipt, err error, dup bool) []byte {
	body := &jsjson.Object{}
	body.Set("id", id.String())
	reason := ""
	if err != nil && !dup {
		reason = heartbeat.Reason(err)
	} else {
		body.Set("seq", float64(r.Seq))
		body.Set("epoch", float64(r.Epoch))
		body.Set("state", r.State)
		body.Set("time", r.Time)
		if dup {
			body.Set("dup", true)
		}
	}
	return replyFrame(putID, reason, ReceiptMember, body)
}

func prefixLabel(reason string) string {
	p, _, ok := strings.Cut(reason, ":")
	if !ok {
		return "other"
	}
	switch p {
	case "invalid", "restricted", "auth-required", "rate-limited", "duplicate", "blocked":
		return p
	}
	return "other"
}

// CheckGet lets the checker judge reads (private worlds); a connection that
// subscribes to lum/<I>/hb of a hosted world follows it, and its logged-in
// keys count as present.
func (g guard) CheckGet(ctx context.Context, p *api.PeerInfo, soul string) error {
	s := g.s
	st := s.conn(p)
	if err := s.checker.CheckGet(ctx, st.peer, soul); err != nil {
		return err
	}
	if inst, ok := heartbeatInstance(soul); ok && s.worlds.hosted(inst) && p != nil && !p.Outbound {
		st.follow(s.pres, inst)
	}
	return nil
}

// Unfollowed implements api.Unfollower: a connection whose subscription to
// lum/<I>/hb was dropped (its key lost read access) no longer follows the
// world, so its keys stop counting as present through it (a leave is
// sequenced once no other connection or lease holds them).
func (g guard) Unfollowed(p *api.PeerInfo, soul string) {
	if inst, ok := heartbeatInstance(soul); ok && p != nil {
		g.s.conn(p).unfollow(g.s.pres, inst)
	}
}

// AccessChanged implements api.AccessWatcher: a world's private flag or
// member list changed, so the relay re-checks who may keep following it.
func (g guard) AccessChanged(accepted graph.Graph) []string {
	return g.s.checker.AccessChanged(accepted)
}

// sequencedInstance returns <I> for the souls only a sequencer writes:
// lum/<I>/hb, lum/<I>/log, lum/<I>/log/<b> and lum/<I>/clients.
func sequencedInstance(soul string) (string, bool) {
	inst, path, ok := auth.SplitInstanceSoul(soul)
	if !ok {
		return "", false
	}
	switch {
	case path == "hb", path == "log", path == "clients":
		return inst, true
	case strings.HasPrefix(path, "log/") && !strings.Contains(path[4:], "/"):
		return inst, true
	}
	return "", false
}

// refuseSequencerWrites refuses wire writes to the souls of a world this
// relay sequences that only its sequencer writes. The checker has already
// refused writers without the tick role ("restricted: not authorised to
// tick", table A row 20). A tick-role holder's tick that does not continue
// the published order is "invalid: time/seq order" (table A row 23); any
// other write is "restricted: not the sequencer for this instance" (a
// remote metronome sequences through the lumSeq member, remote.go).
func (s *Service) refuseSequencerWrites(ctx context.Context, inst, soul string, allowed graph.Graph, refused []graph.FieldError) (graph.Graph, []graph.FieldError) {
	node := allowed[soul]
	if node == nil {
		return allowed, refused
	}
	var head uint64
	if st, err := s.log.State(ctx, inst); err == nil {
		head = st.Head.Seq
	}
	last := s.m.numbers(inst, s.clk.Now()).last
	out := graph.Graph{}
	for k, v := range allowed {
		if k != soul {
			out[k] = v
		}
	}
	for field, f := range node.Fields {
		reason := heartbeat.ErrNotSequencer
		if soul == heartbeat.HeartbeatSoul(inst) && field == "tick" {
			text := f.Value.String()
			if s, ok := f.Value.AsString(); ok {
				text = s
				if w, err := auth.ParseWrapper(f.Value); err == nil {
					if inner, ok := w.Value.AsString(); ok {
						text = inner
					}
				}
			}
			t, err := heartbeat.ParseTick([]byte(text))
			switch {
			case err != nil:
				reason = heartbeat.ErrMalformed
			case t.Instance != inst, t.Seq != head, t.State <= last.State, t.Epoch < last.Epoch:
				reason = heartbeat.ErrOrder
			}
		}
		refused = append(refused, graph.FieldError{Soul: soul, Field: field, Err: reason})
	}
	return out, refused
}

// inboxInstance returns <I> for a soul lum/<I>/in/<id>.
func inboxInstance(soul string) (string, bool) {
	rest, ok := strings.CutPrefix(soul, auth.InstancePrefix)
	if !ok {
		return "", false
	}
	inst, tail, ok := strings.Cut(rest, "/in/")
	if !ok || inst == "" || strings.Contains(inst, "/") || tail == "" || strings.Contains(tail, "/") {
		return "", false
	}
	return inst, true
}

// heartbeatInstance returns <I> for the soul lum/<I>/hb.
func heartbeatInstance(soul string) (string, bool) {
	if inst, path, ok := auth.SplitInstanceSoul(soul); ok && path == "hb" {
		return inst, true
	}
	return "", false
}

// Handlers returns the wire extensions the service handles: the login
// exchange (auth.AuthMember), snapshot votes and joins (snapshot.go) and
// remote metronomes (remote.go).
func (s *Service) Handlers() map[string]api.Handler {
	return map[string]api.Handler{auth.AuthMember: s.handleAuth, SnapshotMember: s.handleSnapshot, JoinMember: s.handleJoin,
		SeqMember: s.handleSeq}
}

// handleAuth answers the login exchange (see auth.AuthMember). A
// successful login makes the connection's followed worlds count the key as
// present; too many failures close the connection with 1008.
func (s *Service) handleAuth(ctx context.Context, p *api.PeerInfo, msg *api.Message) ([]byte, error) {
	st := s.conn(p)
	body, _ := msg.Member(auth.AuthMember)
	reply := s.checker.HandleAuth(st.peer, body)
	frame := reply.AppendJSON(nil, newID(), msg.ID)
	if reply.OK {
		st.sync(s.pres)
	}
	if reply.Close {
		p.Send(frame)
		p.Close(websocket.ClosePolicyViolation, "too many failed logins")
		return nil, nil
	}
	return frame, nil
}

// idAlphabet is gun's message-id alphabet (no 'Y').
const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXZabcdefghijklmnopqrstuvwxyz"

// newID returns a random 9-character message id of gun's shape.
func newID() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b[:])
}
