package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/krestianstvo/luminary/api"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/jsjson"
)

// Snapshots and snapshot joins on the wire. Two top-level message members
// (each answered to the connection that sent it):
//
//	{"#":id,"lumSnap":<vote>}            a member's signed snapshot vote
//	                                     (heartbeat's wire form, data optional)
//	→ {"#":…,"@":id,"ok":true,"lumSnap":{"accepted":false}}
//	→ {"#":…,"@":id,"ok":true,"lumSnap":{"accepted":true,"seq":m}}   m: the marker entry
//	→ {"#":…,"@":id,"err":"<reason>"}
//
//	{"#":id,"lumJoin":{"instance":I}}    a join bundle: the latest accepted
//	                                     snapshot, its data, and the first
//	                                     page of entries after it
//	→ {"#":…,"@":id,"ok":true,"lumJoin":<bundle>}
//
// A vote is judged by the host (signature, snapshot role, quorum of present
// members, data hashing to the vote) — or, while a peer runs the world's
// metronome, by the relay, which hands the decided marker to the peer
// (remote.go). A join bundle is served to a
// connection that may read the world (private worlds: logged-in members),
// at most MaxJoinsInFlight at once; the client verifies it
// (heartbeat.NewJoiner) before trusting any of it. Both ride on one Gun
// frame, so snapshots larger than the relay's read limit (--read-limit) or
// the client's cannot be exchanged this way.
const (
	SnapshotMember = heartbeat.SnapshotMember
	JoinMember     = heartbeat.JoinMember
)

// handleSnapshot takes a member's snapshot vote.
func (s *Service) handleSnapshot(ctx context.Context, p *api.PeerInfo, msg *api.Message) ([]byte, error) {
	body, _ := msg.Member(SnapshotMember)
	v, data, err := heartbeat.SnapshotVoteFromValue(body, s.cfg.Host.MaxSnapshotBytes)
	if err != nil {
		return nil, fmt.Errorf("invalid: snapshot vote: %w", err)
	}
	if !s.worlds.hosted(v.Instance) {
		return nil, errors.New("invalid: unknown instance")
	}
	id := msg.ID
	answer := func(r heartbeat.Receipt, err error) {
		if err != nil {
			p.Send(replyFrame(id, heartbeat.Reason(err), "", nil))
			return
		}
		res := &jsjson.Object{}
		res.Set("accepted", r.Seq > 0)
		if r.Seq > 0 {
			res.Set("seq", float64(r.Seq))
		}
		p.Send(replyFrame(id, "", SnapshotMember, res))
	}
	if !s.remote.vote(ctx, v, data, answer) {
		s.host.Vote(ctx, v, data, answer)
	}
	return nil, nil
}

// handleJoin serves a join bundle.
func (s *Service) handleJoin(ctx context.Context, p *api.PeerInfo, msg *api.Message) ([]byte, error) {
	body, _ := msg.Member(JoinMember)
	o, ok := body.(*jsjson.Object)
	var inst string
	if ok {
		v, _ := o.Get("instance")
		inst, ok = v.(string)
	}
	if !ok || o.Len() != 1 || !s.worlds.hosted(inst) {
		return nil, errors.New("invalid: lumJoin needs {\"instance\": a hosted world}")
	}
	if err := s.checker.CheckGet(ctx, s.conn(p).peer, heartbeat.LogSoul(inst)); err != nil {
		return nil, err
	}
	select {
	case s.joins <- struct{}{}:
		defer func() { <-s.joins }()
	default:
		return nil, errors.New("rate-limited: too many joins in progress")
	}
	b, err := heartbeat.LoadJoin(ctx, s.log, s.blobs, inst, heartbeat.MaxJoinEntries)
	if err != nil {
		s.logger.Warn("service: join bundle", "instance", inst, "err", err)
		return nil, errors.New("invalid: join bundle unavailable")
	}
	return okFrame(msg.ID, JoinMember, b.AppendJSON(nil)), nil
}

// okFrame is {"#":new,"@":replyTo,"ok":true,"<member>":<body>} with body
// already encoded (a join bundle may be megabytes: not re-encoded).
func okFrame(replyTo, member string, body []byte) []byte {
	b := make([]byte, 0, len(body)+64)
	b = append(b, `{"#":`...)
	b = jsjson.AppendString(b, newID())
	b = append(b, `,"@":`...)
	b = jsjson.AppendString(b, replyTo)
	b = append(b, `,"ok":true,`...)
	b = jsjson.AppendString(b, member)
	b = append(b, ':')
	b = append(b, body...)
	return append(b, '}')
}

// replyFrame answers message replyTo: {"#":new,"@":replyTo,"ok":true} or,
// with a reason, {"#":…,"@":…,"err":reason}; plus "<member>":body when
// member is set.
func replyFrame(replyTo, reason, member string, body any) []byte {
	o := &jsjson.Object{}
	o.Set("#", newID())
	o.Set("@", replyTo)
	if reason != "" {
		o.Set("err", reason)
	} else {
		o.Set("ok", true)
	}
	if member != "" {
		o.Set(member, body)
	}
	return jsjson.Append(nil, o)
}
