package world

import (
	"context"
	"fmt"
	"strings"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
)

// Guard is the relay's side of private worlds: it tells whether an
// instance is private and checks what members send there without any key.
// In a private instance every message payload and snapshot blob must be an
// envelope (structure per reliability.md table A row 27) under the current
// key epoch; anything else is refused with an "invalid: envelope: …"
// reason before it is stored or sequenced.
//
// Guard reads the relay's graph through an auth.LookupFunc and, like auth,
// trusts what it finds (the graph holds only writes the Checker accepted).
// It is safe for concurrent use.
type Guard struct {
	lookup auth.LookupFunc
}

// NewGuard returns a Guard reading the relay's graph through lookup.
func NewGuard(lookup auth.LookupFunc) *Guard { return &Guard{lookup: lookup} }

// inner returns the inner value of a stored wrapper field, or ok false.
func (g *Guard) inner(ctx context.Context, soul, field string) (graph.Value, bool, error) {
	f, ok, err := g.lookup(ctx, soul, field)
	if err != nil || !ok {
		return graph.Value{}, false, err
	}
	w, err := parseWrapper(f.Value)
	if err != nil {
		return graph.Value{}, false, nil
	}
	return w.Value, true, nil
}

// Private reports whether instance is private (lum/<I> private = true).
func (g *Guard) Private(ctx context.Context, instance string) (bool, error) {
	v, ok, err := g.inner(ctx, RootSoul(instance), fieldPrivate)
	if err != nil || !ok {
		return false, err
	}
	b, isBool := v.AsBool()
	return isBool && b, nil
}

// Epoch returns the current key epoch of instance, 0 when it has none.
func (g *Guard) Epoch(ctx context.Context, instance string) (uint64, error) {
	v, ok, err := g.inner(ctx, WorldSoul(instance), fieldEpoch)
	if err != nil || !ok {
		return 0, err
	}
	n, isNum := v.AsNumber()
	if !isNum || !wholeMs(n) {
		return 0, nil
	}
	return uint64(n), nil
}

// check applies the rules for an envelope of instance.
func (g *Guard) check(ctx context.Context, instance string, e *Envelope, want Kind) error {
	if e.Kind != want {
		return envErr("want a " + want.String() + " envelope")
	}
	cur, err := g.Epoch(ctx, instance)
	if err != nil {
		return fmt.Errorf("world: guard: %w", err)
	}
	if cur == 0 {
		return envErr("private instance has no key epoch")
	}
	if e.Epoch != cur {
		return fmt.Errorf("%w: %w: epoch %d, current %d", ErrEnvelope, ErrStaleEpoch, e.Epoch, cur)
	}
	return nil
}

// CheckMessage checks a message before it is sequenced: nil for a public
// instance; for a private one the payload must be a message envelope under
// the current epoch. The signature and role are checked elsewhere
// (heartbeat, auth).
func (g *Guard) CheckMessage(ctx context.Context, m *heartbeat.Message) error {
	private, err := g.Private(ctx, m.Instance)
	if err != nil {
		return fmt.Errorf("world: guard: %w", err)
	}
	if !private {
		return nil
	}
	e, err := ParseEnvelope(m.Payload)
	if err != nil {
		return err
	}
	return g.check(ctx, m.Instance, e, KindMessage)
}

// CheckSnapshot checks snapshot data before it is stored: nil for a public
// instance; for a private one it must be a binary snapshot envelope under
// the current epoch.
func (g *Guard) CheckSnapshot(ctx context.Context, instance string, data []byte) error {
	private, err := g.Private(ctx, instance)
	if err != nil {
		return fmt.Errorf("world: guard: %w", err)
	}
	if !private {
		return nil
	}
	e, err := ParseEnvelopeBinary(data)
	if err != nil {
		return err
	}
	return g.check(ctx, instance, e, KindSnapshot)
}

// CheckField checks the inner value of a field written to a private
// instance under lum/<I>/data/…, the subtree for private data: it must be a
// data envelope under the current epoch (or null, a deletion). Other souls
// and public instances pass.
func (g *Guard) CheckField(ctx context.Context, soul string, value graph.Value) error {
	rest, ok := strings.CutPrefix(soul, auth.InstancePrefix)
	if !ok {
		return nil
	}
	instance, path, _ := strings.Cut(rest, "/")
	if path != DataSegment && !strings.HasPrefix(path, DataSegment+"/") {
		return nil
	}
	private, err := g.Private(ctx, instance)
	if err != nil {
		return fmt.Errorf("world: guard: %w", err)
	}
	if !private || value.IsNull() {
		return nil
	}
	s, isStr := value.AsString()
	if !isStr {
		return envErr("private data must be an envelope")
	}
	e, err := ParseEnvelope(s)
	if err != nil {
		return err
	}
	return g.check(ctx, instance, e, KindData)
}

// DataSegment names the subtree lum/<I>/data of an instance whose fields
// are private data in a private world (see [Guard.CheckField]).
const DataSegment = "data"

// Inbox wraps an auth.InboxFunc (the relay's verification of message nodes
// lum/<I>/in/<id>) with [Guard.CheckMessage]: after next has verified the
// message, a private instance's payload must be a current envelope.
func (g *Guard) Inbox(next auth.InboxFunc) auth.InboxFunc {
	return func(ctx context.Context, soul string, fields map[string]graph.Field) (string, error) {
		author, err := next(ctx, soul, fields)
		if err != nil {
			return "", err
		}
		inst, _ := fields["instance"].Value.AsString()
		payload, _ := fields["payload"].Value.AsString()
		m := heartbeat.Message{Instance: inst, Payload: payload}
		if err := g.CheckMessage(ctx, &m); err != nil {
			return "", err
		}
		return author, nil
	}
}
