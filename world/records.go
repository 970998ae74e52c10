package world

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/jsjson"
)

// The souls of a private world inside the instance namespace lum/<I> of
// package auth are listed under "Records" in the package documentation.

// RootSoul returns lum/<I>, the instance root (field "private").
func RootSoul(instance string) string { return auth.InstancePrefix + instance }

// WorldSoul returns lum/<I>/world.
func WorldSoul(instance string) string { return RootSoul(instance) + "/world" }

// MembersSoul returns lum/<I>/members.
func MembersSoul(instance string) string { return RootSoul(instance) + "/members" }

// RosterSoul returns lum/<I>/roster.
func RosterSoul(instance string) string { return RootSoul(instance) + "/roster" }

// KeysSoul returns lum/<I>/keys/<epoch>.
func KeysSoul(instance string, epoch uint64) string {
	return RootSoul(instance) + "/keys/" + strconv.FormatUint(epoch, 10)
}

// CertsSoul returns lum/<I>/certs.
func CertsSoul(instance string) string { return RootSoul(instance) + "/certs" }

// RevokedSoul returns lum/<I>/revoked.
func RevokedSoul(instance string) string { return RootSoul(instance) + "/revoked" }

// RecordInstance reports whether soul is one of the record souls above
// (root, world, members, roster, keys/<e>, certs, revoked) and returns its
// instance. A relay judges the fields a change writes to these souls
// together (see the package documentation, "Records").
func RecordInstance(soul string) (string, bool) {
	instance, path, ok := auth.SplitInstanceSoul(soul)
	if !ok {
		return "", false
	}
	switch path {
	case "", "world", "members", "roster", "certs", "revoked":
		return instance, true
	}
	epoch, ok := strings.CutPrefix(path, "keys/")
	if !ok || epoch == "" {
		return "", false
	}
	if _, err := strconv.ParseUint(epoch, 10, 64); err != nil {
		return "", false
	}
	return instance, true
}

// Field names.
const (
	fieldPrivate  = "private"
	fieldVersion  = "v"
	fieldEpoch    = "epoch"
	fieldCreated  = "created"
	fieldPassword = "password"
)

// recordVersion is the version of the world and roster records.
const recordVersion = 1

// Member is one entry of a world's roster.
type Member struct {
	Key        string      // the member's public key text
	Roles      []auth.Role // roles of the certificate issued when added
	Certs      []string    // serials of the certificates issued to it
	AddedBy    string      // key that added it (owner or admin)
	AddedAt    time.Time   // millisecond precision
	AddedEpoch uint64      // key epoch current when it was added
	Removed    bool
	RemovedBy  string
	RemovedAt  time.Time
}

// record returns the roster record text:
//
//	{"v":1,"roles":[…],"certs":[…],"by":"<key>","at":ms,"epoch":n,
//	 "removed":ms (0 while a member),"removedBy":"<key>" ("" while a member)}
func (m *Member) record() string {
	roles := make([]any, len(m.Roles))
	for i, r := range m.Roles {
		roles[i] = string(r)
	}
	certs := make([]any, len(m.Certs))
	for i, c := range m.Certs {
		certs[i] = c
	}
	var removed float64
	if m.Removed {
		removed = float64(m.RemovedAt.UnixMilli())
	}
	o := &jsjson.Object{
		Keys: []string{"v", "roles", "certs", "by", "at", "epoch", "removed", "removedBy"},
		Values: []any{float64(recordVersion), roles, certs, m.AddedBy, float64(m.AddedAt.UnixMilli()),
			float64(m.AddedEpoch), removed, m.RemovedBy},
	}
	return string(jsjson.Append(nil, o))
}

var recordLimits = jsjson.Limits{MaxBytes: 16 << 10, MaxDepth: 2, MaxMembers: 8, MaxElements: 64, RejectCaseVariants: true}

// parseMember decodes a roster record for key.
func parseMember(key, s string) (*Member, error) {
	v, err := jsjson.Parse([]byte(s), recordLimits)
	if err != nil {
		return nil, err
	}
	o, err := exactObject(v, "v", "roles", "certs", "by", "at", "epoch", "removed", "removedBy")
	if err != nil {
		return nil, err
	}
	if n, ok := o.number("v"); !ok || n != recordVersion {
		return nil, fmt.Errorf("unknown record version")
	}
	m := &Member{Key: key}
	strs := func(k string) ([]string, bool) {
		x, _ := o.Get(k)
		arr, ok := x.([]any)
		if !ok {
			return nil, false
		}
		out := make([]string, 0, len(arr))
		for _, e := range arr {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	roles, ok := strs("roles")
	if !ok || len(roles) == 0 {
		return nil, fmt.Errorf("roles must be a non-empty array of strings")
	}
	for _, r := range roles {
		if !auth.Role(r).Known() {
			return nil, fmt.Errorf("unknown role %q", r)
		}
		m.Roles = append(m.Roles, auth.Role(r))
	}
	if m.Certs, ok = strs("certs"); !ok {
		return nil, fmt.Errorf("certs must be an array of strings")
	}
	if m.AddedBy, ok = o.str("by"); !ok {
		return nil, fmt.Errorf("by must be a string")
	}
	at, ok1 := o.number("at")
	ep, ok2 := o.number("epoch")
	rm, ok3 := o.number("removed")
	if !ok1 || !ok2 || !ok3 || !wholeMs(at) || !wholeMs(rm) || !wholeMs(ep) || ep < 1 {
		return nil, fmt.Errorf("at, epoch and removed must be whole numbers")
	}
	m.AddedAt, m.AddedEpoch = time.UnixMilli(int64(at)), uint64(ep)
	if m.RemovedBy, ok = o.str("removedBy"); !ok {
		return nil, fmt.Errorf("removedBy must be a string")
	}
	if rm > 0 {
		m.Removed, m.RemovedAt = true, time.UnixMilli(int64(rm))
	}
	return m, nil
}

func wholeMs(f float64) bool { return f >= 0 && f <= MaxEpoch && f == math.Trunc(f) }

// parseWrapper decodes package auth's signed wrapper of an instance field,
// {":": value, "~": sig, "*": writer, "+": [cert, …]}, checking the shape
// only. Errors wrap ErrRecord.
func parseWrapper(v graph.Value) (*auth.Wrapper, error) {
	w, err := auth.ParseWrapper(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRecord, err)
	}
	return w, nil
}

// sortedMembers returns the members ordered by time added, then key.
func sortedMembers(m map[string]*Member) []*Member {
	out := make([]*Member, 0, len(m))
	for _, x := range m {
		out = append(out, x)
	}
	slices.SortFunc(out, func(a, b *Member) int {
		if c := a.AddedAt.Compare(b.AddedAt); c != 0 {
			return c
		}
		if a.Key < b.Key {
			return -1
		}
		if a.Key > b.Key {
			return 1
		}
		return 0
	})
	return out
}
