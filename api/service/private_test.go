package service_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/client"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/keys"
	"github.com/krestianstvo/luminary/world"
)

// inboxDiff is the put a client sends for message m.
func inboxDiff(m *heartbeat.Message) graph.Graph {
	diff := graph.Graph{}
	for _, p := range heartbeat.InboxPuts(m, float64(time.Now().UnixMicro())/1000) {
		n := diff[p.Soul]
		if n == nil {
			n = graph.NewNode(p.Soul)
			diff[p.Soul] = n
		}
		v, _ := graph.ValueOf(p.Value)
		n.Fields[p.Field] = graph.Field{Value: v, State: p.State}
	}
	return diff
}

// privateSetup is a key-based private world hosted by the relay r: its
// owner, one member with the message role, its instance id, the world
// store and the content key.
type privateSetup struct {
	owner, member *keys.Private
	inst          string
	st            world.DBStore
	ck            *world.ContentKey
}

func newPrivateWorld(t *testing.T, r *relay) privateSetup {
	t.Helper()
	ctx := context.Background()
	p := privateSetup{owner: newKey(t), member: newKey(t)}
	p.inst = p.owner.Public().String()
	checker, err := auth.New(auth.Config{Lookup: auth.StoreLookup(r.db)})
	if err != nil {
		t.Fatal(err)
	}
	p.st = world.DBStore{DB: r.db, Checker: checker}
	if p.ck, err = world.Create(ctx, p.st, p.owner); err != nil {
		t.Fatal(err)
	}
	if _, err := world.AddMember(ctx, p.st, p.inst, p.owner, p.member.Public(), world.AddOptions{
		Roles: []auth.Role{auth.RoleMessage}, ValidFor: time.Hour}); err != nil {
		t.Fatal(err)
	}
	// The owner asks the relay to host it (tick certificate for the relay
	// key, published in the world's namespace).
	oc := dial(t, r.URL, p.owner)
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := oc.Host(hctx, client.HostSpec{Alias: "hidden", Private: true}); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPrivateWorldThroughRelay runs a key-based private world through the
// real relay (Gun wire, auth, the world guard, the sequencer): a member's
// sealed message is sequenced and readable by members; a malformed envelope
// is refused "invalid: envelope" and leaves nothing behind (table A row 27);
// nothing the relay stores or sequences contains the plaintext.
func TestPrivateWorldThroughRelay(t *testing.T) {
	r := startRelay(t, relayOpts{dir: "-"})
	ctx := context.Background()
	p := newPrivateWorld(t, r)
	member, inst, st, ck := p.member, p.inst, p.st, p.ck

	c := dial(t, r.URL, member)
	w := join(t, c, inst)
	col := collect(w)

	var nonce [12]byte
	_, _ = rand.Read(nonce[:])
	secret := "plaintext-" + base64.RawURLEncoding.EncodeToString(nonce[:])
	m, err := world.SealMessage(ck, member, time.Now(), []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, inboxDiff(&m)); err != nil {
		t.Fatalf("sealed message refused: %v", err)
	}
	col.waitFor(t, 15*time.Second, "the sealed message", func(es []heartbeat.Entry) bool {
		for _, id := range messageIDs(es) {
			if id == m.ID() {
				return true
			}
		}
		return false
	})

	// Table A row 27: an envelope whose nonce is not 24 bytes, correctly
	// signed by the member, is refused before it is merged.
	bad := heartbeat.Message{Instance: inst, Author: member.Public().String(), TS: time.Now().UnixMilli(),
		Nonce: "n2", Payload: "lum1.m.1.AAAAAA.AAAAAAAAAAAAAAAAAAAAAA"}
	if err := bad.Sign(heartbeat.KeySigner(member)); err != nil {
		t.Fatal(err)
	}
	relayRefusal(t, c.Put(ctx, inboxDiff(&bad)), "invalid: envelope")
	if _, err := r.db.Get(ctx, heartbeat.InboxSoul(inst, bad.ID())); err == nil {
		t.Fatal("the refused envelope was stored")
	}
	if _, ok, _ := r.svc.Log().Lookup(ctx, inst, bad.ID()); ok {
		t.Fatal("the refused envelope was sequenced")
	}

	// Nothing the relay stored or sequenced holds the plaintext; a member
	// opens the sequenced entry.
	if err := r.db.Scan(ctx, "", func(n *graph.Node) error {
		if js := (graph.Graph{n.Soul: n}).AppendJSON(nil); bytes.Contains(js, []byte(secret)) {
			t.Errorf("plaintext stored in %s", n.Soul)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	page, err := r.svc.Log().Read(ctx, inst, 1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	wl, err := world.Load(ctx, st, inst)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := wl.Keyring(ctx, member)
	if err != nil {
		t.Fatal(err)
	}
	opened := 0
	for i := range page.Entries {
		e := &page.Entries[i]
		if strings.Contains(e.Payload, secret) {
			t.Errorf("plaintext in log entry %d", e.Seq)
		}
		if e.Kind != heartbeat.KindMessage {
			continue
		}
		pt, err := ring.OpenEntry(e)
		if err != nil {
			t.Fatalf("member cannot open entry %d: %v", e.Seq, err)
		}
		if string(pt) == secret {
			opened++
		}
	}
	if opened != 1 {
		t.Fatalf("member opened %d copies of the message, want 1", opened)
	}
}
