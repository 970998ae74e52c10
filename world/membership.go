package world

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/keys"
)

// ErrNotWorld is returned by [Load] for an instance without a world record
// (not a private world, or not created yet).
var ErrNotWorld = errors.New("world: not a private world")

// Defaults for membership changes.
const (
	// DefaultValidFor is how long a member's certificate is valid.
	DefaultValidFor = 365 * 24 * time.Hour
)

// DefaultRoles are the roles a member gets when AddOptions.Roles is empty:
// it may send messages and vote on snapshots.
var DefaultRoles = []auth.Role{auth.RoleMessage, auth.RoleSnapshot}

// World is the membership state of one private instance, read from its
// records with [Load]: the current key epoch, the roster, the wrapped keys
// and the certificates. Every record it uses was verified: signed by the
// owner, or by an admin whose certificate chain was valid when the record
// was written and has not been revoked. Records that fail are left out and
// listed in Rejected.
//
// A World is a snapshot; reload it after changes. The Plan methods compute
// the signed writes of a change without doing any I/O ([AddMember] and
// [RemoveMember] load, plan and put in one call).
type World struct {
	Instance string
	Epoch    uint64    // current key epoch
	Created  time.Time // when the world record was written
	Private  bool      // lum/<I> private = true (auth restricts reads to members)
	Password *PasswordInfo

	// Rejected lists records that were present but did not verify.
	Rejected []error

	owner     *keys.Public
	checker   *auth.Checker
	members   map[string]*Member
	access    map[string]bool                   // lum/<I>/members
	keyFields map[uint64]map[string]graph.Field // epoch → member → stored field
	certs     map[string]*auth.Cert             // serial → published certificate
	revoked   map[string]bool                   // serials
}

// Reader reads nodes of the graph. Node returns nil (and no error) for a
// soul that does not exist.
type Reader interface {
	Node(ctx context.Context, soul string) (map[string]graph.Field, error)
}

// Store is a Reader that can also write: Put must apply the relay's checks
// (package auth) and either store the whole diff or nothing; Now returns a
// HAM state for new writes, strictly increasing.
type Store interface {
	Reader
	Put(ctx context.Context, diff graph.Graph) error
	Now() float64
}

// Load reads and verifies the world records of instance.
func Load(ctx context.Context, s Reader, instance string) (*World, error) {
	owner, err := keys.ParsePublic(instance)
	if err != nil {
		return nil, fmt.Errorf("world: instance id: %w", err)
	}
	lookup := func(ctx context.Context, soul, field string) (graph.Field, bool, error) {
		n, err := s.Node(ctx, soul)
		if err != nil {
			return graph.Field{}, false, err
		}
		f, ok := n[field]
		return f, ok, nil
	}
	checker, err := auth.New(auth.Config{Lookup: lookup})
	if err != nil {
		return nil, err
	}
	w := &World{
		Instance: instance, owner: owner, checker: checker,
		members: map[string]*Member{}, access: map[string]bool{},
		keyFields: map[uint64]map[string]graph.Field{}, certs: map[string]*auth.Cert{},
		revoked: map[string]bool{},
	}
	// read verifies and returns the fields of soul; with only, just those
	// fields are read (the instance root also holds the time service's
	// fields, which are not membership records).
	read := func(soul string, only ...string) (map[string]graph.Value, error) {
		n, err := s.Node(ctx, soul)
		if err != nil {
			return nil, fmt.Errorf("world: read %s: %w", soul, err)
		}
		out := map[string]graph.Value{}
		for field, f := range n {
			if f.Value.IsNull() || (len(only) > 0 && !slices.Contains(only, field)) {
				continue
			}
			v, _, err := w.verify(ctx, soul, field, f)
			if err != nil {
				w.Rejected = append(w.Rejected, fmt.Errorf("%s %s: %w", soul, field, err))
				continue
			}
			out[field] = v
		}
		return out, nil
	}

	root, err := read(RootSoul(instance), fieldPrivate)
	if err != nil {
		return nil, err
	}
	if b, ok := root[fieldPrivate].AsBool(); ok && b {
		w.Private = true
	}
	rec, err := read(WorldSoul(instance))
	if err != nil {
		return nil, err
	}
	ep, ok := rec[fieldEpoch].AsNumber()
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotWorld, instance)
	}
	if !wholeMs(ep) || ep < 1 {
		return nil, fmt.Errorf("%w: epoch %v", ErrRecord, ep)
	}
	w.Epoch = uint64(ep)
	if c, ok := rec[fieldCreated].AsNumber(); ok && wholeMs(c) {
		w.Created = time.UnixMilli(int64(c))
	}
	if p, ok := rec[fieldPassword].AsString(); ok {
		if w.Password, err = parsePasswordInfo(p); err != nil {
			return nil, fmt.Errorf("%w: password parameters: %v", ErrRecord, err)
		}
	}

	revoked, err := read(RevokedSoul(instance))
	if err != nil {
		return nil, err
	}
	for serial := range revoked {
		w.revoked[serial] = true
	}
	certs, err := read(CertsSoul(instance))
	if err != nil {
		return nil, err
	}
	for serial, v := range certs {
		s, _ := v.AsString()
		c, err := auth.ParseCert([]byte(s))
		if err != nil || c.Serial != serial || c.Instance != instance || c.VerifySignature() != nil {
			w.Rejected = append(w.Rejected, fmt.Errorf("%s %s: %w: certificate", CertsSoul(instance), serial, ErrRecord))
			continue
		}
		w.certs[serial] = c
	}
	access, err := read(MembersSoul(instance))
	if err != nil {
		return nil, err
	}
	for k, v := range access {
		if b, ok := v.AsBool(); ok && b {
			w.access[k] = true
		}
	}
	roster, err := read(RosterSoul(instance))
	if err != nil {
		return nil, err
	}
	for k, v := range roster {
		s, _ := v.AsString()
		m, err := parseMember(k, s)
		if err != nil {
			w.Rejected = append(w.Rejected, fmt.Errorf("%s %s: %w: %v", RosterSoul(instance), k, ErrRecord, err))
			continue
		}
		w.members[k] = m
	}
	for e := uint64(1); e <= w.Epoch; e++ {
		n, err := s.Node(ctx, KeysSoul(instance, e))
		if err != nil {
			return nil, fmt.Errorf("world: read %s: %w", KeysSoul(instance, e), err)
		}
		if len(n) > 0 {
			w.keyFields[e] = n
		}
	}
	return w, nil
}

// verify checks one stored field: a signed wrapper whose signature is good
// and whose writer is the owner or held the admin role when it was
// written. It returns the inner value and the writer.
func (w *World) verify(ctx context.Context, soul, field string, f graph.Field) (graph.Value, string, error) {
	wr, err := parseWrapper(f.Value)
	if err != nil {
		return graph.Value{}, "", err
	}
	writer := w.owner
	if wr.Writer != "" {
		if writer, err = keys.ParsePublic(wr.Writer); err != nil {
			return graph.Value{}, "", fmt.Errorf("%w: writer: %v", ErrRecord, err)
		}
	}
	if !writer.Verify(auth.PutMessage(soul, field, wr.Value, f.State), wr.Sig) {
		return graph.Value{}, "", fmt.Errorf("%w: signature does not verify", ErrRecord)
	}
	if !writer.Equal(w.owner) {
		at := time.UnixMilli(int64(f.State))
		if err := w.checker.Authorize(ctx, w.Instance, writer.String(), auth.RoleAdmin, at, wr.Chain...); err != nil {
			return graph.Value{}, "", fmt.Errorf("%w: writer is not an admin: %v", ErrRecord, err)
		}
	}
	return wr.Value, writer.String(), nil
}

// Owner returns the instance owner's key text (the instance id).
func (w *World) Owner() string { return w.Instance }

// Members returns every roster entry, removed ones included, in the order
// they were added.
func (w *World) Members() []*Member { return sortedMembers(w.members) }

// Member returns the roster entry of key.
func (w *World) Member(key string) (*Member, bool) {
	m, ok := w.members[key]
	return m, ok
}

// Active returns the keys that hold the current epoch's key by right: the
// owner and every member not removed, sorted.
func (w *World) Active() []string {
	out := []string{w.Instance}
	for k, m := range w.members {
		if !m.Removed && k != w.Instance {
			out = append(out, k)
		}
	}
	slices.Sort(out[1:])
	return out
}

// HasKey reports whether a wrapped key of epoch exists for member (without
// verifying or unwrapping it).
func (w *World) HasKey(epoch uint64, member string) bool {
	_, ok := w.keyFields[epoch][member]
	return ok
}

// Keyring unwraps every epoch key stored for priv's public key, after
// verifying each record's signature. It fails with [ErrNotMember] when there
// is none.
func (w *World) Keyring(ctx context.Context, priv *keys.Private) (*Keyring, error) {
	pub := priv.Public().String()
	ring, err := NewKeyring(w.Instance)
	if err != nil {
		return nil, err
	}
	if w.Password != nil && pub == w.Instance {
		// A password world's key is derived, not wrapped; the caller
		// holds it already (see PasswordWorld).
		return nil, fmt.Errorf("%w: password world keys come from PasswordWorld", ErrNotMember)
	}
	epochs := make([]uint64, 0, len(w.keyFields))
	for e := range w.keyFields {
		epochs = append(epochs, e)
	}
	slices.Sort(epochs)
	var errs []error
	for _, e := range epochs {
		soul := KeysSoul(w.Instance, e)
		f, ok := w.keyFields[e][pub]
		if !ok || f.Value.IsNull() {
			continue
		}
		v, _, err := w.verify(ctx, soul, pub, f)
		if err != nil {
			errs = append(errs, fmt.Errorf("epoch %d: %w", e, err))
			continue
		}
		s, _ := v.AsString()
		wk, err := ParseWrappedKey(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("epoch %d: %w", e, err))
			continue
		}
		k, err := Unwrap(wk, w.Instance, e, priv)
		if err != nil {
			errs = append(errs, fmt.Errorf("epoch %d: %w", e, err))
			continue
		}
		if err := ring.Add(k); err != nil {
			return nil, err
		}
	}
	if len(ring.Epochs()) == 0 {
		if len(errs) > 0 {
			return nil, fmt.Errorf("%w: %s: %w", ErrNotMember, pub, errors.Join(errs...))
		}
		return nil, fmt.Errorf("%w: no key stored for %s", ErrNotMember, pub)
	}
	return ring, nil
}

// AdminChain returns a certificate chain that lets key act as an admin at
// time at: nil for the owner, else a published owner-issued certificate
// for key with the admin role that is valid and not revoked.
func (w *World) AdminChain(key string, at time.Time) ([]*auth.Cert, error) {
	if key == w.Instance {
		return nil, nil
	}
	serials := make([]string, 0, len(w.certs))
	for s := range w.certs {
		serials = append(serials, s)
	}
	sort.Strings(serials)
	for _, s := range serials {
		c := w.certs[s]
		if c.Subject != key || c.Issuer != w.Instance || !c.Has(auth.RoleAdmin) || w.revoked[s] {
			continue
		}
		if (!c.NotBefore.IsZero() && at.Before(c.NotBefore)) || at.After(c.Expiry) {
			continue
		}
		return []*auth.Cert{c}, nil
	}
	return nil, fmt.Errorf("world: %s is neither the owner nor an admin of %s", key, w.Instance)
}

// certsOf returns the serials of every known certificate whose subject is
// key: those in its roster entry and those published in lum/<I>/certs.
func (w *World) certsOf(key string) []string {
	var out []string
	if m, ok := w.members[key]; ok {
		out = append(out, m.Certs...)
	}
	for s, c := range w.certs {
		if c.Subject == key {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Revoked reports whether a certificate serial is on the revocation list.
func (w *World) Revoked(serial string) bool { return w.revoked[serial] }

// Admin is the key that signs membership changes: the instance owner (no
// chain) or an admin with the chain that proves it (owner-issued first).
type Admin struct {
	Key   *keys.Private
	Chain []*auth.Cert
}

// signer signs fields of the instance namespace for an Admin.
type signer struct {
	a     Admin
	state float64
	g     graph.Graph
	err   error
}

func (s *signer) put(soul, field string, v graph.Value) {
	if s.err != nil {
		return
	}
	sv, err := auth.SignField(s.a.Key, soul, field, v, s.state, s.a.Chain...)
	if err != nil {
		s.err = err
		return
	}
	s.g.Set(soul, field, graph.Field{Value: sv, State: s.state})
}

// PlanCreate returns the writes that make owner's instance a private
// world with key epoch 1, and that epoch's key (wrapped for the owner in
// lum/<I>/keys/1). state is the HAM state of every write; its millisecond
// part is also the creation time.
func PlanCreate(owner *keys.Private, state float64) (graph.Graph, *ContentKey, error) {
	inst := owner.Public().String()
	k, err := NewContentKey(inst, 1)
	if err != nil {
		return nil, nil, err
	}
	wk, err := Wrap(k, owner.Public())
	if err != nil {
		return nil, nil, err
	}
	s := &signer{a: Admin{Key: owner}, state: state, g: graph.Graph{}}
	s.put(RootSoul(inst), fieldPrivate, graph.Bool(true))
	s.put(WorldSoul(inst), fieldVersion, graph.Number(recordVersion))
	s.put(WorldSoul(inst), fieldCreated, graph.Number(float64(int64(state))))
	s.put(KeysSoul(inst, 1), inst, graph.String(wk.String()))
	s.put(WorldSoul(inst), fieldEpoch, graph.Number(1))
	if s.err != nil {
		return nil, nil, s.err
	}
	return s.g, k, nil
}

// AddOptions tunes a member's addition. The zero value adds a member with
// [DefaultRoles], a certificate valid for [DefaultValidFor], and the
// current epoch's key only.
type AddOptions struct {
	Roles    []auth.Role
	ValidFor time.Duration
	// History also wraps every older epoch key the admin holds, so the new
	// member can read what was written before it joined (a late joiner
	// needs at least the epoch of the latest snapshot).
	History bool
}

// PlanAdd returns the writes that add member: a certificate for its roles
// (issued by the admin, published in lum/<I>/certs), true in
// lum/<I>/members, its roster record, and the current key (and older ones
// with History) wrapped for it. ring is the admin's keyring; it must hold
// the current epoch.
func (w *World) PlanAdd(a Admin, ring *Keyring, member *keys.Public, opt AddOptions, state float64) (graph.Graph, *Member, error) {
	key := member.String()
	if key == w.Instance {
		return nil, nil, fmt.Errorf("world: the owner is always a member")
	}
	if m, ok := w.members[key]; ok && !m.Removed {
		return nil, nil, fmt.Errorf("world: %s is already a member (remove it first to change its roles)", key)
	}
	cur, ok := ring.Key(w.Epoch)
	if !ok {
		return nil, nil, fmt.Errorf("world: the admin does not hold the key of the current epoch %d", w.Epoch)
	}
	roles := opt.Roles
	if len(roles) == 0 {
		roles = DefaultRoles
	}
	validFor := opt.ValidFor
	if validFor <= 0 {
		validFor = DefaultValidFor
	}
	now := time.UnixMilli(int64(state))
	cert, err := auth.IssueCert(a.Key, auth.Cert{Instance: w.Instance, Subject: key, Roles: roles, Expiry: now.Add(validFor)})
	if err != nil {
		return nil, nil, err
	}
	certJSON, _ := cert.MarshalJSON()
	m := &Member{Key: key, Roles: slices.Clone(roles), Certs: []string{cert.Serial},
		AddedBy: a.Key.Public().String(), AddedAt: now, AddedEpoch: w.Epoch}

	ks := []*ContentKey{cur}
	if opt.History {
		ks = ks[:0]
		for _, e := range ring.Epochs() {
			if e <= w.Epoch {
				k, _ := ring.Key(e)
				ks = append(ks, k)
			}
		}
	}
	s := &signer{a: a, state: state, g: graph.Graph{}}
	s.put(CertsSoul(w.Instance), cert.Serial, graph.String(string(certJSON)))
	for _, k := range ks {
		wk, err := Wrap(k, member)
		if err != nil {
			return nil, nil, err
		}
		s.put(KeysSoul(w.Instance, k.Epoch()), key, graph.String(wk.String()))
	}
	s.put(RosterSoul(w.Instance), key, graph.String(m.record()))
	s.put(MembersSoul(w.Instance), key, graph.Bool(true))
	if s.err != nil {
		return nil, nil, s.err
	}
	return s.g, m, nil
}

// PlanRemove returns the writes that remove member and rotate the content
// key: every certificate issued to it revoked, false in lum/<I>/members,
// its roster record marked removed, a new key epoch (current + 1) whose key
// is wrapped for the owner and every remaining member, and the world
// record's epoch advanced. It returns the new epoch's key.
//
// After these writes the relay refuses the removed member's writes (revoked
// certificates) and reads (not in the access list), and it never receives
// the new key. Older epochs' keys stay where they are: the removed member
// keeps what it could read before, and remaining members keep reading old
// entries.
func (w *World) PlanRemove(a Admin, member string, state float64) (graph.Graph, *ContentKey, error) {
	m, ok := w.members[member]
	if !ok || m.Removed {
		return nil, nil, fmt.Errorf("%w: %s", ErrNotMember, member)
	}
	if w.Epoch >= MaxEpoch {
		return nil, nil, errors.New("world: key epochs exhausted")
	}
	if a.Key.Public().String() == member {
		return nil, nil, errors.New("world: an admin cannot remove itself (ask the owner)")
	}
	now := time.UnixMilli(int64(state))
	next := w.Epoch + 1
	k, err := NewContentKey(w.Instance, next)
	if err != nil {
		return nil, nil, err
	}
	s := &signer{a: a, state: state, g: graph.Graph{}}
	for _, serial := range w.certsOf(member) {
		if !w.revoked[serial] {
			s.put(RevokedSoul(w.Instance), serial, graph.Number(float64(now.UnixMilli())))
		}
	}
	gone := *m
	gone.Removed, gone.RemovedAt, gone.RemovedBy = true, now, a.Key.Public().String()
	s.put(RosterSoul(w.Instance), member, graph.String(gone.record()))
	s.put(MembersSoul(w.Instance), member, graph.Bool(false))
	for _, key := range w.Active() {
		if key == member {
			continue
		}
		pub, err := keys.ParsePublic(key)
		if err != nil {
			return nil, nil, fmt.Errorf("world: member %s: %w", key, err)
		}
		wk, err := Wrap(k, pub)
		if err != nil {
			return nil, nil, err
		}
		s.put(KeysSoul(w.Instance, next), key, graph.String(wk.String()))
	}
	s.put(WorldSoul(w.Instance), fieldEpoch, graph.Number(float64(next)))
	if s.err != nil {
		return nil, nil, s.err
	}
	return s.g, k, nil
}

// Create makes owner's instance a private world in s and returns the key
// of epoch 1. It refuses an instance that already is one.
func Create(ctx context.Context, s Store, owner *keys.Private) (*ContentKey, error) {
	inst := owner.Public().String()
	if _, err := Load(ctx, s, inst); err == nil {
		return nil, fmt.Errorf("world: %s is already a private world", inst)
	} else if !errors.Is(err, ErrNotWorld) {
		return nil, err
	}
	g, k, err := PlanCreate(owner, s.Now())
	if err != nil {
		return nil, err
	}
	if err := s.Put(ctx, g); err != nil {
		return nil, err
	}
	return k, nil
}

// admin resolves the chain of key in w.
func (w *World) admin(key *keys.Private, at time.Time) (Admin, error) {
	chain, err := w.AdminChain(key.Public().String(), at)
	if err != nil {
		return Admin{}, err
	}
	return Admin{Key: key, Chain: chain}, nil
}

// AddMember loads the world of instance, adds member on the authority of
// by (the owner or an admin, whose chain is found among the published
// certificates) and writes the change.
func AddMember(ctx context.Context, s Store, instance string, by *keys.Private, member *keys.Public, opt AddOptions) (*Member, error) {
	w, err := Load(ctx, s, instance)
	if err != nil {
		return nil, err
	}
	state := s.Now()
	a, err := w.admin(by, time.UnixMilli(int64(state)))
	if err != nil {
		return nil, err
	}
	ring, err := w.Keyring(ctx, by)
	if err != nil {
		return nil, err
	}
	g, m, err := w.PlanAdd(a, ring, member, opt, state)
	if err != nil {
		return nil, err
	}
	if err := s.Put(ctx, g); err != nil {
		return nil, err
	}
	return m, nil
}

// RemoveMember loads the world of instance, removes member on the
// authority of by, rotates the key and writes the change. It returns the
// new epoch's key.
func RemoveMember(ctx context.Context, s Store, instance string, by *keys.Private, member string) (*ContentKey, error) {
	w, err := Load(ctx, s, instance)
	if err != nil {
		return nil, err
	}
	state := s.Now()
	a, err := w.admin(by, time.UnixMilli(int64(state)))
	if err != nil {
		return nil, err
	}
	g, k, err := w.PlanRemove(a, member, state)
	if err != nil {
		return nil, err
	}
	if err := s.Put(ctx, g); err != nil {
		return nil, err
	}
	return k, nil
}

// DBStore is a [Store] over a graph.DB. When Checker is set, every Put is
// judged by it first, as the relay judges a peer's put, and refused whole
// if any field is refused (so a rotation is never half written).
type DBStore struct {
	DB      *graph.DB
	Checker *auth.Checker
}

// Node implements Reader.
func (d DBStore) Node(ctx context.Context, soul string) (map[string]graph.Field, error) {
	n, err := d.DB.Get(ctx, soul)
	if errors.Is(err, graph.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return n.Fields, nil
}

// Now implements Store.
func (d DBStore) Now() float64 { return d.DB.Now() }

// Put implements Store.
func (d DBStore) Put(ctx context.Context, diff graph.Graph) error {
	if d.Checker != nil {
		_, refused := d.Checker.CheckPut(ctx, nil, diff)
		if len(refused) > 0 {
			return RefusedError(refused)
		}
	}
	res, err := d.DB.Put(ctx, diff, "world")
	if err != nil {
		return err
	}
	if len(res.Refused) > 0 {
		return RefusedError(res.Refused)
	}
	return nil
}

// RefusedError summarises the refusals of a world write (the first three
// fields and their reasons) as one error wrapping the first reason; for
// Store implementations. refused must not be empty.
func RefusedError(refused []graph.FieldError) error {
	var b strings.Builder
	for i, fe := range refused {
		if i == 3 {
			b.WriteString("; and " + strconv.Itoa(len(refused)-3) + " more")
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(fe.Soul + " " + fe.Field + ": " + fe.Err.Error())
	}
	return fmt.Errorf("world: write refused: %s: %w", b.String(), refused[0].Err)
}
