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
