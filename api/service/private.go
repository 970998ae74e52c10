package service

import (
	"context"
	"strings"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/world"
)

// Private worlds (package world): the relay cannot decrypt anything, but it
// checks the shape of what members write before it is merged — a current
// key epoch, a well-formed envelope (table A row 27: "invalid: envelope") —
// so a stale or malformed ciphertext is refused with a reason and leaves
// nothing behind. Signatures, certificates and revocation are auth's.

// privateInbox wraps auth's inbox check: a message to a private world must
// carry a current envelope as its payload.
func (s *Service) privateInbox(next auth.InboxFunc) auth.InboxFunc {
	return s.worldGuard.Inbox(next)
}

// checkPrivateData moves fields under lum/<I>/data of private worlds whose
// inner value is not a current data envelope from allowed to refused.
func (s *Service) checkPrivateData(ctx context.Context, allowed graph.Graph, refused []graph.FieldError) (graph.Graph, []graph.FieldError) {
	out, copied := allowed, false // copied before the first change: allowed may share maps with the diff
	for soul, n := range allowed {
		if !strings.HasPrefix(soul, auth.InstancePrefix) || !strings.Contains(soul, "/"+world.DataSegment) {
			continue
		}
		var keep map[string]graph.Field // copy on the first refusal: n may be shared with the diff
		for field, f := range n.Fields {
			inner := f.Value
			if !inner.IsNull() {
				if w, err := auth.ParseWrapper(f.Value); err == nil {
					inner = w.Value
				}
			}
			if err := s.worldGuard.CheckField(ctx, soul, inner); err != nil {
				refused = append(refused, graph.FieldError{Soul: soul, Field: field, Err: err})
				if keep == nil {
					keep = make(map[string]graph.Field, len(n.Fields))
					for k, v := range n.Fields {
						keep[k] = v
					}
				}
				delete(keep, field)
			}
		}
		if keep == nil {
			continue
		}
		if !copied {
			copied = true
			out = make(graph.Graph, len(allowed))
			for k, v := range allowed {
				out[k] = v
			}
		}
		if len(keep) == 0 {
			delete(out, soul)
		} else {
			out[soul] = &graph.Node{Soul: soul, Fields: keep}
		}
	}
	return out, refused
}

// withRestOfChange is the refusal of a world record field withdrawn because
// another record field of the same put (the same change) was refused.
var withRestOfChange = &auth.Refusal{Prefix: auth.PrefixRestricted, Text: "refused with the rest of its change"}

// wholeRecordChanges judges a put's world record fields (world.RecordInstance)
// per instance as a whole: when one is refused, other than as an exact
// duplicate, the put's other record fields of that instance move from
// allowed to refused, after it (so the put's answer gives the first
// refusal's reason). One change of a world (a member added or removed, a
// rotation) is one put; judged field by field, as gun does, a change with
// one field refused (a certificate signed by the wrong key, a revocation in
// the same put that cuts the writer's own chain) was left half written: a
// member listed and rostered without its certificate. A stranger to a
// private world is answered as its first refusal was ("auth-required:
// private instance"), never with more.
func wholeRecordChanges(allowed graph.Graph, refused []graph.FieldError) (graph.Graph, []graph.FieldError) {
	var failed map[string]error // instance -> the refusal given to its other record fields
	for _, fe := range refused {
		inst, ok := world.RecordInstance(fe.Soul)
		if !ok || auth.PrefixOf(fe.Err.Error()) == auth.PrefixDuplicate {
			continue
		}
		if _, seen := failed[inst]; seen {
			continue
		}
		if failed == nil {
			failed = make(map[string]error)
		}
		failed[inst] = withRestOfChange
		if auth.IsPrivateRefusal(fe.Err) {
			failed[inst] = fe.Err
		}
	}
	if failed == nil {
		return allowed, refused
	}
	out := make(graph.Graph, len(allowed)) // allowed may share its map with the diff
	for _, soul := range allowed.Souls() {
		n := allowed[soul]
		inst, ok := world.RecordInstance(soul)
		reason, withdrawn := failed[inst]
		if !ok || !withdrawn {
			out[soul] = n
			continue
		}
		for _, field := range n.SortedFields() {
			refused = append(refused, graph.FieldError{Soul: soul, Field: field, Err: reason})
		}
	}
	return out, refused
}
