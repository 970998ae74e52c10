package world_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/keys"
	"github.com/krestianstvo/luminary/world"
)

func TestCreateAddLoad(t *testing.T) {
	r := newRelay(t)
	owner := newKey(t, keys.Secp256k1)
	alice := newKey(t, keys.Secp256k1)
	bob := newKey(t, keys.P256)
	inst := owner.Public().String()
	k1 := mustCreate(t, r, owner)
	if _, err := world.Create(ctx, r.store(), owner); err == nil {
		t.Fatal("created the same world twice")
	}
	mustAdd(t, r, inst, owner, alice, world.AddOptions{})
	mustAdd(t, r, inst, owner, bob, world.AddOptions{Roles: []auth.Role{auth.RoleMessage}})
	if _, err := world.AddMember(ctx, r.store(), inst, owner, bob.Public(), world.AddOptions{}); err == nil {
		t.Fatal("added bob twice")
	}

	w, err := world.Load(ctx, r.store(), inst)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Rejected) > 0 {
		t.Fatalf("rejected records: %v", w.Rejected)
	}
	if !w.Private || w.Epoch != 1 || !w.Created.Equal(t0) {
		t.Fatalf("world: private %v epoch %d created %v", w.Private, w.Epoch, w.Created)
	}
	if len(w.Members()) != 2 {
		t.Fatalf("members %v", w.Members())
	}
	ma, okA := w.Member(alice.Public().String())
	mb, okB := w.Member(bob.Public().String())
	if !okA || !okB || len(mb.Roles) != 1 || mb.Roles[0] != auth.RoleMessage || len(ma.Roles) != 2 ||
		ma.AddedBy != inst || ma.AddedEpoch != 1 || ma.Removed || len(ma.Certs) != 1 {
		t.Fatalf("member records %+v %+v", ma, mb)
	}
	if got := w.Active(); len(got) != 3 || got[0] != inst {
		t.Fatalf("active %v", got)
	}
	for _, p := range []*keys.Private{owner, alice, bob} {
		ring, err := w.Keyring(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if !ring.Current().Equal(k1) {
			t.Fatalf("%s holds another key", p.Public())
		}
	}
	stranger := newKey(t, keys.Secp256k1)
	if _, err := w.Keyring(ctx, stranger); !errors.Is(err, world.ErrNotMember) {
		t.Fatalf("stranger's keyring: %v", err)
	}
	// auth sees the members: they may read the private instance, others not.
	if err := r.checker.CheckGet(ctx, r.login(bob), world.KeysSoul(inst, 1)); err != nil {
		t.Fatalf("member read refused: %v", err)
	}
	if err := r.checker.CheckGet(ctx, r.login(stranger), world.KeysSoul(inst, 1)); !errors.Is(err, auth.ErrAuthRequired) {
		t.Fatalf("stranger read: %v", err)
	}
}

// TestAdminAddsAndRemoves: an admin (certificate from the owner) manages
// members; a plain member cannot.
func TestAdminAddsAndRemoves(t *testing.T) {
	r := newRelay(t)
	owner := newKey(t, keys.Secp256k1)
	admin := newKey(t, keys.P256)
	alice := newKey(t, keys.Secp256k1)
	carol := newKey(t, keys.Secp256k1)
	inst := owner.Public().String()
	mustCreate(t, r, owner)
	mustAdd(t, r, inst, owner, admin, world.AddOptions{Roles: []auth.Role{auth.RoleAdmin, auth.RoleMessage}})
	mustAdd(t, r, inst, admin, alice, world.AddOptions{})
	if _, err := world.AddMember(ctx, r.store(), inst, alice, carol.Public(), world.AddOptions{}); err == nil {
		t.Fatal("a plain member added someone")
	}
	if _, err := world.RemoveMember(ctx, r.store(), inst, alice, admin.Public().String()); err == nil {
		t.Fatal("a plain member removed the admin")
	}
	k2, err := world.RemoveMember(ctx, r.store(), inst, admin, alice.Public().String())
	if err != nil {
		t.Fatal(err)
	}
	w, err := world.Load(ctx, r.store(), inst)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Rejected) > 0 {
		t.Fatalf("rejected: %v", w.Rejected)
	}
	m, _ := w.Member(alice.Public().String())
	if w.Epoch != 2 || !m.Removed || m.RemovedBy != admin.Public().String() || m.AddedBy != admin.Public().String() {
		t.Fatalf("epoch %d, alice %+v", w.Epoch, m)
	}
	for _, p := range []*keys.Private{owner, admin} {
		ring, err := w.Keyring(ctx, p)
		if err != nil || !ring.Current().Equal(k2) {
			t.Fatalf("%v does not hold epoch 2: %v", p, err)
		}
	}
}

// TestRemovedMember is issue 6's removal test: a removed member, holding
// all its old keys and certificates, fails to read entries written after
// its removal and fails to write at all, by every path.
func TestRemovedMember(t *testing.T) {
	r := newRelay(t)
	owner := newKey(t, keys.Secp256k1)
	alice := newKey(t, keys.Secp256k1)
	bob := newKey(t, keys.P256)
	inst := owner.Public().String()
	mustCreate(t, r, owner)
	mustAdd(t, r, inst, owner, alice, world.AddOptions{})
	mustAdd(t, r, inst, owner, bob, world.AddOptions{})
	r.startHost(owner)
	alicePeer, bobPeer := r.login(alice), r.login(bob)

	// Before: both write and read epoch 1.
	bobOld := keyring(t, r, inst, bob)
	for _, s := range []*keys.Private{alice, bob} {
		m, err := world.SealMessage(keyring(t, r, inst, s).Current(), s, r.clk.Now(), []byte("before "+s.Public().String()[:8]))
		if err != nil {
			t.Fatal(err)
		}
		peer := alicePeer
		if s == bob {
			peer = bobPeer
		}
		if err := r.submit(peer, m); err != nil {
			t.Fatal(err)
		}
	}
	w, _ := world.Load(ctx, r.store(), inst)
	bobMember, _ := w.Member(bob.Public().String())
	bobCerts := bobMember.Certs

	// Remove bob: epoch 2.
	if _, err := world.RemoveMember(ctx, r.store(), inst, owner, bob.Public().String()); err != nil {
		t.Fatal(err)
	}
	w, err := world.Load(ctx, r.store(), inst)
	if err != nil {
		t.Fatal(err)
	}
	if w.Epoch != 2 || w.HasKey(2, bob.Public().String()) || !w.HasKey(2, alice.Public().String()) || !w.HasKey(2, inst) {
		t.Fatalf("rotation: epoch %d, keys for bob %v alice %v owner %v", w.Epoch,
			w.HasKey(2, bob.Public().String()), w.HasKey(2, alice.Public().String()), w.HasKey(2, inst))
	}
	for _, s := range bobCerts {
		if !w.Revoked(s) {
			t.Fatalf("bob's certificate %s not revoked", s)
		}
	}
	// Reloading bob's keyring gives him epoch 1 only.
	bobNow, err := w.Keyring(ctx, bob)
	if err != nil || len(bobNow.Epochs()) != 1 || bobNow.Epochs()[0] != 1 {
		t.Fatalf("bob's keyring after removal: %v %v", bobNow, err)
	}

	// After: alice writes under epoch 2.
	aliceRing := keyring(t, r, inst, alice)
	if aliceRing.Current().Epoch() != 2 {
		t.Fatalf("alice's current epoch %d", aliceRing.Current().Epoch())
	}
	secret := []byte("after the removal: bob must not read this")
	m, err := world.SealMessage(aliceRing.Current(), alice, r.clk.Now(), secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.submit(alicePeer, m); err != nil {
		t.Fatal(err)
	}

	// Bob cannot read it, with every key he ever had.
	entries := r.entries(inst)
	last := entries[len(entries)-1]
	for _, ring := range []*world.Keyring{bobOld, bobNow} {
		if _, err := ring.OpenEntry(&last); !errors.Is(err, world.ErrUnknownEpoch) {
			t.Fatalf("bob opened a new entry: %v", err)
		}
	}
	// Alice reads old and new; bob still reads what he could before.
	msgs := 0
	for _, e := range entries {
		if e.Kind != heartbeat.KindMessage {
			continue
		}
		msgs++
		if _, err := aliceRing.OpenEntry(&e); err != nil {
			t.Fatalf("alice cannot open entry %d: %v", e.Seq, err)
		}
		if e.Seq != last.Seq {
			if _, err := bobOld.OpenEntry(&e); err != nil {
				t.Fatalf("bob lost an old entry %d: %v", e.Seq, err)
			}
		}
	}
	if msgs != 3 {
		t.Fatalf("%d messages in the log", msgs)
	}
	// Bob cannot read the graph any more (auth's access list).
	if err := r.checker.CheckGet(ctx, bobPeer, world.KeysSoul(inst, 2)); !errors.Is(err, auth.ErrAuthRequired) {
		t.Fatalf("bob read the private instance: %v", err)
	}

	// Bob cannot write: (1) an old-epoch message through the graph on his
	// logged-in connection.
	old, err := world.SealMessage(bobOld.Current(), bob, r.clk.Now(), []byte("bob after removal"))
	if err != nil {
		t.Fatal(err)
	}
	err = r.submit(bobPeer, old)
	if !errors.Is(err, auth.ErrAuthRequired) {
		t.Fatalf("bob's write on his connection: %v", err)
	}
	if r.fieldExists(heartbeat.InboxSoul(inst, old.ID()), "payload") {
		t.Fatal("bob's refused message was stored")
	}
	// (2) The same via a path without a connection (another relay's
	// replication): the Guard names the stale epoch.
	if err := r.submit(nil, old); !errors.Is(err, auth.ErrInvalid) || !strings.Contains(err.Error(), "stale key epoch") {
		t.Fatalf("old-epoch message: %v", err)
	}
	// (3) An envelope that claims the current epoch (bob has no key for
	// it, but the relay cannot know): the revoked certificate stops it.
	forged := old
	forged.Payload = strings.Replace(old.Payload, "lum1.m.1.", "lum1.m.2.", 1)
	forged.Nonce = "forged"
	if err := forged.Sign(heartbeat.KeySigner(bob)); err != nil {
		t.Fatal(err)
	}
	err = r.submit(nil, forged)
	if !errors.Is(err, auth.ErrRestricted) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("current-epoch message by bob: %v", err)
	}
	// (4) Straight to the sequencer: refused by role (revoked).
	done := false
	var serr error
	r.host.Submit(ctx, forged, func(_ heartbeat.Receipt, err error) { done, serr = true, err })
	r.pump(func() bool { return done })
	if !errors.Is(serr, heartbeat.ErrNotAuthorised) || !strings.Contains(serr.Error(), "revoked") {
		t.Fatalf("sequencer accepted bob: %v", serr)
	}
	// (5) A signed field carrying his old certificate chain, on a soul his
	// snapshot role used to let him write (lum/<I>/snap).
	chain := []*auth.Cert{}
	for _, s := range bobCerts {
		f, err := r.db.GetField(ctx, world.CertsSoul(inst), s)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := auth.ParseWrapper(f.Value)
		cs, _ := w.Value.AsString()
		c, err := auth.ParseCert([]byte(cs))
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	soul := heartbeat.SnapSoul(inst)
	state := r.db.Now()
	v, err := auth.SignField(bob, soul, "note", graph.String("bob"), state, chain...)
	if err != nil {
		t.Fatal(err)
	}
	g := graph.Graph{}
	g.Set(soul, "note", graph.Field{Value: v, State: state})
	if ref := r.put(nil, g); len(ref) != 1 || !strings.Contains(ref[0].Err.Error(), "revoked") {
		t.Fatalf("bob's chained write: %v", ref)
	}
	// Nothing by bob after his removal reached the log.
	for _, e := range r.entries(inst)[len(entries):] {
		if e.Author == bob.Public().String() {
			t.Fatalf("entry %d by bob after removal", e.Seq)
		}
	}
}

// TestReplayedEnvelope: the exact message again is a duplicate at the
// graph and at the log; the envelope in another message fails to open.
func TestReplayedEnvelope(t *testing.T) {
	r := newRelay(t)
	owner := newKey(t, keys.Secp256k1)
	alice := newKey(t, keys.Secp256k1)
	mallory := newKey(t, keys.Secp256k1)
	inst := owner.Public().String()
	mustCreate(t, r, owner)
	mustAdd(t, r, inst, owner, alice, world.AddOptions{})
	mustAdd(t, r, inst, owner, mallory, world.AddOptions{})
	r.startHost(owner)
	ring := keyring(t, r, inst, alice)
	m, err := world.SealMessage(ring.Current(), alice, r.clk.Now(), []byte("once"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.submit(r.login(alice), m); err != nil {
		t.Fatal(err)
	}
	// The same inbox frame again (same states): auth's duplicate.
	frame := graph.Graph{}
	for _, x := range heartbeat.InboxPuts(&m, r.db.Now()) {
		v, _ := graph.ValueOf(x.Value)
		frame.Set(x.Soul, x.Field, graph.Field{Value: v, State: x.State})
	}
	if ref := r.put(r.login(alice), frame); len(ref) > 0 {
		t.Fatal(ref)
	}
	if ref := r.put(r.login(alice), frame); len(ref) == 0 || !errors.Is(ref[0].Err, auth.ErrDuplicate) {
		t.Fatalf("graph replay: %v", ref)
	}
	// The same message submitted again (new states): the log's duplicate.
	if err := r.submit(r.login(alice), m); !errors.Is(err, heartbeat.ErrDuplicate) {
		t.Fatalf("submit replay: %v", err)
	}
	var derr error
	done := false
	r.host.Submit(ctx, m, func(_ heartbeat.Receipt, err error) { done, derr = true, err })
	r.pump(func() bool { return done })
	if !errors.Is(derr, heartbeat.ErrDuplicate) || heartbeat.Reason(derr) != "duplicate: already sequenced" {
		t.Fatalf("log replay: %v", derr)
	}
	// Mallory (a member) re-sends alice's envelope as her own message: the
	// relay sequences it (it cannot decrypt), members refuse it.
	re := heartbeat.Message{Instance: inst, TS: r.clk.Now().UnixMilli(), Nonce: "replay", Payload: m.Payload}
	if err := re.Sign(heartbeat.KeySigner(mallory)); err != nil {
		t.Fatal(err)
	}
	if err := r.submit(r.login(mallory), re); err != nil {
		t.Fatal(err)
	}
	es := r.entries(inst)
	last := es[len(es)-1]
	if _, err := ring.OpenEntry(&last); !errors.Is(err, world.ErrDecrypt) {
		t.Fatalf("replayed envelope opened: %v", err)
	}
	n := 0
	for _, e := range es {
		if e.Kind == heartbeat.KindMessage {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d messages sequenced, want the original and mallory's copy", n)
	}
}

// TestStructuralRefusalsStoreNothing covers table A row 27 at the relay:
// each bad envelope is refused with "invalid: envelope" and nothing is
// stored or sequenced.
func TestStructuralRefusalsStoreNothing(t *testing.T) {
	r := newRelay(t)
	owner := newKey(t, keys.Secp256k1)
	inst := owner.Public().String()
	mustCreate(t, r, owner)
	r.startHost(owner)
	ring := keyring(t, r, inst, owner)
	good, err := world.SealMessage(ring.Current(), owner, r.clk.Now(), []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good.Payload, ".")
	for name, payload := range map[string]string{
		"nonce 23 bytes":  strings.Join([]string{parts[0], parts[1], parts[2], parts[3][:30], parts[4]}, "."),
		"nonce 25 bytes":  strings.Join([]string{parts[0], parts[1], parts[2], parts[3] + "AAA", parts[4]}, "."),
		"short tag":       strings.Join([]string{parts[0], parts[1], parts[2], parts[3], parts[4][:20]}, "."),
		"unknown version": "lum2" + good.Payload[4:],
		"plaintext":       `{"hello":"world"}`,
		"snapshot kind":   strings.Replace(good.Payload, "lum1.m.", "lum1.s.", 1),
	} {
		t.Run(name, func(t *testing.T) {
			m := good
			m.Payload = payload
			m.Nonce = name
			if err := m.Sign(heartbeat.KeySigner(owner)); err != nil {
				t.Fatal(err)
			}
			before := len(r.entries(inst))
			err := r.submit(r.login(owner), m)
			if err == nil || !strings.HasPrefix(err.Error(), "invalid: envelope") {
				t.Fatalf("refusal %v", err)
			}
			if r.fieldExists(heartbeat.InboxSoul(inst, m.ID()), "payload") || len(r.entries(inst)) != before {
				t.Fatal("something was stored")
			}
		})
	}
}

// TestForgedRecordsIgnored: records written behind the relay's back (not
// signed by the owner or an admin) are left out when a member loads.
func TestForgedRecordsIgnored(t *testing.T) {
	r := newRelay(t)
	owner := newKey(t, keys.Secp256k1)
	mallory := newKey(t, keys.Secp256k1)
	inst := owner.Public().String()
	mustCreate(t, r, owner)
	mustAdd(t, r, inst, owner, mallory, world.AddOptions{})
	// Mallory (a member, no admin role) writes a wrapped key and an epoch
	// straight into the store (a relay that does not check).
	k, _ := world.NewContentKey(inst, 7)
	wk, _ := world.Wrap(k, mallory.Public())
	g := graph.Graph{}
	state := r.db.Now()
	v1, _ := auth.SignField(mallory, world.KeysSoul(inst, 1), mallory.Public().String(), graph.String(wk.String()), state)
	v2, _ := auth.SignField(mallory, world.WorldSoul(inst), "epoch", graph.Number(7), state)
	g.Set(world.KeysSoul(inst, 1), mallory.Public().String(), graph.Field{Value: v1, State: state})
	g.Set(world.WorldSoul(inst), "epoch", graph.Field{Value: v2, State: state})
	if _, refused := r.checker.CheckPut(ctx, nil, g); len(refused) != 2 {
		t.Fatalf("the relay accepted mallory's records: %v", refused)
	}
	if _, err := r.db.Put(ctx, g, nil); err != nil {
		t.Fatal(err)
	}
	_, err := world.Load(ctx, r.store(), inst)
	if !errors.Is(err, world.ErrNotWorld) {
		t.Fatalf("load with a forged epoch: %v", err)
	}
}

func TestCertificateExpiry(t *testing.T) {
	r := newRelay(t)
	owner := newKey(t, keys.Secp256k1)
	alice := newKey(t, keys.Secp256k1)
	inst := owner.Public().String()
	mustCreate(t, r, owner)
	mustAdd(t, r, inst, owner, alice, world.AddOptions{ValidFor: time.Hour})
	r.clk.Advance(2 * time.Hour)
	err := r.checker.Authorize(ctx, inst, alice.Public().String(), auth.RoleMessage, r.clk.Now())
	if !errors.Is(err, auth.ErrRestricted) {
		t.Fatalf("expired certificate: %v", err)
	}
}

func TestRecordInstance(t *testing.T) {
	for soul, want := range map[string]string{
		world.RootSoul("I"): "I", world.WorldSoul("I"): "I", world.MembersSoul("I"): "I", world.RosterSoul("I"): "I",
		world.KeysSoul("I", 0): "I", world.KeysSoul("I", 12): "I", world.CertsSoul("I"): "I", world.RevokedSoul("I"): "I",
		"lum/I/hb": "", "lum/I/data": "", "lum/I/data/x": "", "lum/I/keys": "", "lum/I/keys/": "",
		"lum/I/keys/x": "", "lum/I/keys/1/2": "", "lum/I/members/x": "", "lum/": "", "lum//world": "",
		"~I/world": "", "I": "",
	} {
		got, ok := world.RecordInstance(soul)
		if got != want || ok != (want != "") {
			t.Errorf("world.RecordInstance(%q) = %q, %v; want %q", soul, got, ok, want)
		}
	}
}
