package auth

import (
	"context"

	"github.com/krestianstvo/luminary/graph"
)

// Preverification: the expensive part of judging a put, done ahead of the
// put's turn.
//
// Signature verification of a SEA user-space field depends on nothing but
// the field (soul, name, state, value): not on the graph, the clock, the
// connection or earlier puts. [Checker.Preverify] does it, and the replay
// lookup that precedes it, for every such field of a put, on whatever
// goroutine the caller likes; [Checker.CheckPut] later judges the put in
// order and takes each field's signature verdict from the context instead
// of verifying again. Everything else — certificates, expiry by the relay
// clock, write policies, block lists, instance namespaces, revocations —
// is still judged by CheckPut at the put's turn. A verdict is used only for
// a field with the same soul, name, state and value as the one verified,
// so a context used with another diff changes nothing: those fields are
// verified inline.

// preField is one field's preverified verdict.
type preField struct {
	soul, field string
	f           graph.Field
	dup         bool    // an exact replay of what the graph held
	sig         userSig // when !dup
}

// preverified is what Preverify attaches to a context.
type preverified struct {
	fields []preField
}

type preKey struct{}

// Preverify verifies the signatures of the SEA user-space fields of diff,
// after looking each up for an exact replay (which is then not verified at
// all, as in CheckPut), and returns ctx carrying the verdicts for the
// CheckPut call that judges the same diff. It changes no state and may run
// concurrently with anything, so a relay can verify one connection's puts
// on every core and still judge and merge them in the order they came.
// CheckPut reaches the same decisions with or without it; see the
// comment at the top of preverify.go for what it does and does not cover.
func (c *Checker) Preverify(ctx context.Context, diff graph.Graph) context.Context {
	var pv *preverified
	for soul, node := range diff {
		if node == nil {
			continue
		}
		kind, owner := classify(soul)
		if kind != kindUser {
			continue
		}
		for name, f := range node.Fields {
			if name == "pub" && soul == "~"+owner {
				continue // the account's own key: no signature
			}
			if pv == nil {
				pv = &preverified{fields: make([]preField, 0, len(node.Fields))}
			}
			pf := preField{soul: soul, field: name, f: f}
			fc := fieldCheck{soul: soul, field: name, f: f}
			if c.isDuplicate(ctx, &fc) {
				pf.dup = true
			} else {
				pf.sig = c.userSignature(soul, name, f, owner)
			}
			pv.fields = append(pv.fields, pf)
		}
	}
	if pv == nil {
		return ctx
	}
	return context.WithValue(ctx, preKey{}, pv)
}

// preverifiedFrom returns what Preverify attached to ctx, or nil.
func preverifiedFrom(ctx context.Context) *preverified {
	pv, _ := ctx.Value(preKey{}).(*preverified)
	return pv
}

// find returns the verdict Preverify reached for exactly this field, or
// nil.
func (pv *preverified) find(soul, field string, f graph.Field) *preField {
	if pv == nil {
		return nil
	}
	for i := range pv.fields {
		p := &pv.fields[i]
		if p.soul == soul && p.field == field && p.f.State == f.State && p.f.Value.Equal(f.Value) {
			return p
		}
	}
	return nil
}
