package world_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/keys"
	"github.com/krestianstvo/luminary/world"
)

// canary returns a distinctive plaintext that must never appear outside a
// member's memory.
func canary(t testing.TB, what string) []byte {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return []byte(fmt.Sprintf(`{"secret":"PLAINTEXT-%s-%s"}`, what, hex.EncodeToString(b[:])))
}

// leaks reports whether blob contains secret, raw or in base64 (standard
// or URL alphabet, at each of the three alignments).
func leaks(blob, secret []byte) bool {
	if bytes.Contains(blob, secret) {
		return true
	}
	// The distinctive token alone also counts (JSON escaping may change
	// the quotes around it).
	if i := bytes.Index(secret, []byte("PLAINTEXT-")); i >= 0 {
		tok := secret[i:]
		if j := bytes.IndexByte(tok, '"'); j >= 0 {
			tok = tok[:j]
		}
		if bytes.Contains(blob, tok) {
			return true
		}
	}
	for off := 0; off < 3; off++ {
		for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
			s := enc.EncodeToString(secret[off:])
			if len(s) > 8 && bytes.Contains(blob, []byte(s[4:len(s)-4])) {
				return true
			}
		}
	}
	return false
}

// TestRelaySeesNoPlaintext runs a private world with three members on two
// curves through an in-memory relay (graph, auth, Guard, heartbeat host)
// and captures everything the relay is offered, stores, logs, notifies and
// keeps as blobs: messages, a snapshot and a private field. Members read
// every plaintext back; none of it appears in anything captured.
func TestRelaySeesNoPlaintext(t *testing.T) {
	r := newRelay(t)
	owner := newKey(t, keys.Secp256k1)
	alice := newKey(t, keys.Secp256k1)
	bob := newKey(t, keys.P256)
	inst := owner.Public().String()
	mustCreate(t, r, owner)
	mustAdd(t, r, inst, owner, alice, world.AddOptions{})
	mustAdd(t, r, inst, owner, bob, world.AddOptions{})
	r.startHost(owner)

	var secrets [][]byte
	sent := map[string]string{} // plaintext → author
	senders := []*keys.Private{owner, alice, bob}
	for round := range 3 {
		for i, s := range senders {
			ring := keyring(t, r, inst, s)
			pt := canary(t, fmt.Sprintf("msg%d-%d", round, i))
			m, err := world.SealMessage(ring.Current(), s, r.clk.Now(), pt)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.submit(r.login(s), m); err != nil {
				t.Fatalf("submit by member %d: %v", i, err)
			}
			secrets = append(secrets, pt)
			sent[string(pt)] = s.Public().String()
		}
	}

	// A snapshot at the head, voted by bob.
	bobRing := keyring(t, r, inst, bob)
	entries := r.entries(inst)
	head := entries[len(entries)-1].Seq
	snap := canary(t, "snapshot")
	secrets = append(secrets, snap)
	blob, err := world.SealSnapshot(bobRing.Current(), head, snap)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := world.SealSnapshot(bobRing.Current(), head, snap)
	if !bytes.Equal(blob, again) {
		t.Fatal("snapshot sealing is not deterministic")
	}
	if err := r.guard.CheckSnapshot(ctx, inst, blob); err != nil {
		t.Fatal(err)
	}
	vote := heartbeat.SnapshotVote{Instance: inst, Seq: head, Hash: heartbeat.SHA256(blob)}
	if err := vote.Sign(heartbeat.KeySigner(bob)); err != nil {
		t.Fatal(err)
	}
	voted := false
	r.host.Vote(ctx, vote, blob, func(_ heartbeat.Receipt, err error) {
		if err != nil {
			t.Errorf("vote: %v", err)
		}
		voted = true
	})
	r.pump(func() bool { return voted })
	r.pump(func() bool {
		st, _ := r.log.State(ctx, inst)
		return st.Snapshot != nil
	})

	// A private field, written by the owner under lum/<I>/data.
	field := canary(t, "field")
	secrets = append(secrets, field)
	soul := world.RootSoul(inst) + "/" + world.DataSegment + "/notes"
	ownerRing := keyring(t, r, inst, owner)
	env, err := world.SealField(ownerRing.Current(), owner, soul, "text", field)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.guard.CheckField(ctx, soul, env); err != nil {
		t.Fatal(err)
	}
	state := r.db.Now()
	signed, err := auth.SignField(owner, soul, "text", env, state)
	if err != nil {
		t.Fatal(err)
	}
	g := graph.Graph{}
	g.Set(soul, "text", graph.Field{Value: signed, State: state})
	if ref := r.put(r.login(owner), g); len(ref) > 0 {
		t.Fatal(ref)
	}

	// Members read everything back (so the test is not vacuous).
	got := 0
	for _, e := range r.entries(inst) {
		if e.Kind != heartbeat.KindMessage {
			continue
		}
		pt, err := bobRing.OpenEntry(&e)
		if err != nil {
			t.Fatalf("bob cannot open entry %d: %v", e.Seq, err)
		}
		if sent[string(pt)] != e.Author {
			t.Fatalf("entry %d: plaintext %q not sent by %s", e.Seq, pt, e.Author)
		}
		got++
	}
	if got != len(sent) {
		t.Fatalf("read %d messages, sent %d", got, len(sent))
	}
	st, _ := r.log.State(ctx, inst)
	stored, err := r.log.GetBlob(ctx, st.Snapshot.Hash)
	if err != nil {
		t.Fatal(err)
	}
	aliceRing := keyring(t, r, inst, alice)
	if pt, err := aliceRing.OpenSnapshot(st.Snapshot.Seq, stored); err != nil || !bytes.Equal(pt, snap) {
		t.Fatalf("alice cannot open the snapshot: %v", err)
	}
	f, err := r.db.GetField(ctx, soul, "text")
	if err != nil {
		t.Fatal(err)
	}
	if pt, writer, err := aliceRing.OpenField(soul, "text", f.Value); err != nil || !bytes.Equal(pt, field) || writer != inst {
		t.Fatalf("alice cannot open the field: %v (writer %s)", err, writer)
	}

	// Everything the relay holds or handled.
	all := append([][]byte(nil), r.captured...)
	if err := r.db.Scan(ctx, "", func(n *graph.Node) error {
		all = append(all, n.AppendJSON(nil))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	p, err := r.log.Read(ctx, inst, 1, 100000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range p.Entries {
		all = append(all, e.AppendJSON(nil))
	}
	for _, tk := range p.Ticks {
		all = append(all, tk.AppendJSON(nil))
	}
	all = append(all, stored)
	var size int
	for _, b := range all {
		size += len(b)
		for _, s := range secrets {
			if leaks(b, s) {
				t.Fatalf("plaintext %q found in relay data: %.300s", s, b)
			}
		}
	}
	// Positive control: the detector does find a plaintext that is there.
	if !leaks(append([]byte("x"), secrets[0]...), secrets[0]) {
		t.Fatal("leak detector is broken")
	}
	t.Logf("%d messages, 1 snapshot, 1 field; scanned %d captured items, %d bytes", got, len(all), size)
}

// TestCaptureDetectsPublicPlaintext is the control for the test above: in a
// public instance the same capture does find the plaintext.
func TestCaptureDetectsPublicPlaintext(t *testing.T) {
	r := newRelay(t)
	owner := newKey(t, keys.Secp256k1)
	inst := owner.Public().String()
	pt := canary(t, "public")
	m := heartbeat.Message{Instance: inst, TS: r.clk.Now().UnixMilli(), Nonce: "n1", Payload: string(pt)}
	if err := m.Sign(heartbeat.KeySigner(owner)); err != nil {
		t.Fatal(err)
	}
	if err := r.guard.CheckMessage(ctx, &m); err != nil {
		t.Fatalf("public instance payload refused: %v", err)
	}
	g := graph.Graph{}
	for _, x := range heartbeat.InboxPuts(&m, r.db.Now()) {
		v, _ := graph.ValueOf(x.Value)
		g.Set(x.Soul, x.Field, graph.Field{Value: v, State: x.State})
	}
	if ref := r.put(nil, g); len(ref) > 0 {
		t.Fatal(ref)
	}
	found := false
	for _, b := range r.captured {
		found = found || leaks(b, pt)
	}
	if !found {
		t.Fatal("the capture did not see a public plaintext")
	}
}
