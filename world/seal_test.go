package world_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/keys"
	"github.com/krestianstvo/luminary/world"
)

// fixture: an instance with keys for epochs 1 and 2, and a member ring
// holding both.
type fixture struct {
	owner      *keys.Private
	inst       string
	k1, k2     *world.ContentKey
	ring       *world.Keyring
	alice, bob *keys.Private
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{owner: newKey(t, keys.Secp256k1), alice: newKey(t, keys.Secp256k1), bob: newKey(t, keys.P256)}
	f.inst = f.owner.Public().String()
	var err error
	if f.k1, err = world.NewContentKey(f.inst, 1); err != nil {
		t.Fatal(err)
	}
	if f.k2, err = world.NewContentKey(f.inst, 2); err != nil {
		t.Fatal(err)
	}
	if f.ring, err = world.NewKeyring(f.inst, f.k1, f.k2); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSealOpenMessage(t *testing.T) {
	f := newFixture(t)
	for _, s := range []*keys.Private{f.alice, f.bob, f.owner} {
		for _, k := range []*world.ContentKey{f.k1, f.k2} {
			for _, pt := range [][]byte{nil, []byte("hello"), bytes.Repeat([]byte{0}, 70000)} {
				m, err := world.SealMessage(k, s, t0, pt)
				if err != nil {
					t.Fatal(err)
				}
				if err := m.Verify(heartbeat.KeyVerifier(nil)); err != nil {
					t.Fatalf("outer signature: %v", err)
				}
				if m.Author != s.Public().String() || m.Instance != f.inst || m.TS != t0.UnixMilli() || len(m.Nonce) != 22 {
					t.Fatalf("message fields %+v", m)
				}
				got, err := f.ring.OpenMessage(&m)
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("open: %v", err)
				}
				if env, _ := world.CheckPayload(m.Payload); env.Epoch != k.Epoch() {
					t.Fatalf("epoch %d", env.Epoch)
				}
			}
		}
	}
	if f.ring.Current().Epoch() != 2 || len(f.ring.Epochs()) != 2 {
		t.Fatal("keyring epochs")
	}
}

// resign returns m with a new outer signature by s (author = s).
func resign(t *testing.T, m heartbeat.Message, s *keys.Private) heartbeat.Message {
	t.Helper()
	if err := m.Sign(heartbeat.KeySigner(s)); err != nil {
		t.Fatal(err)
	}
	return m
}

// editEnvelope parses m's payload, applies fn and writes it back.
func editEnvelope(t *testing.T, m heartbeat.Message, fn func(e *world.Envelope)) heartbeat.Message {
	t.Helper()
	e, err := world.ParseEnvelope(m.Payload)
	if err != nil {
		t.Fatal(err)
	}
	e.Ciphertext = bytes.Clone(e.Ciphertext)
	fn(e)
	m.Payload = e.String()
	return m
}

// TestOpenRefuses: tampered ciphertext, wrong key epoch, swapped
// associated data and stolen envelopes are each refused with a clear
// reason.
func TestOpenRefuses(t *testing.T) {
	f := newFixture(t)
	mallory := newKey(t, keys.Secp256k1)
	m, err := world.SealMessage(f.k1, f.alice, t0, []byte("attack at dawn"))
	if err != nil {
		t.Fatal(err)
	}
	onlyK1, _ := world.NewKeyring(f.inst, f.k1)
	other := newFixture(t)
	otherRing, _ := world.NewKeyring(other.inst, other.k1)

	cases := []struct {
		name string
		m    heartbeat.Message
		ring *world.Keyring
		want error
	}{
		{"tampered first byte", editEnvelope(t, m, func(e *world.Envelope) { e.Ciphertext[0] ^= 1 }), f.ring, world.ErrDecrypt},
		{"tampered inner signature", editEnvelope(t, m, func(e *world.Envelope) { e.Ciphertext[40] ^= 0x80 }), f.ring, world.ErrDecrypt},
		{"tampered tag", editEnvelope(t, m, func(e *world.Envelope) { e.Ciphertext[len(e.Ciphertext)-1] ^= 1 }), f.ring, world.ErrDecrypt},
		{"truncated", editEnvelope(t, m, func(e *world.Envelope) { e.Ciphertext = e.Ciphertext[:len(e.Ciphertext)-1] }), f.ring, world.ErrDecrypt},
		{"tampered nonce", editEnvelope(t, m, func(e *world.Envelope) { e.Nonce[3] ^= 1 }), f.ring, world.ErrDecrypt},
		{"epoch relabelled to a held epoch", editEnvelope(t, m, func(e *world.Envelope) { e.Epoch = 2 }), f.ring, world.ErrDecrypt},
		{"epoch not held", editEnvelope(t, m, func(e *world.Envelope) { e.Epoch = 3 }), f.ring, world.ErrUnknownEpoch},
		{"epoch 2 for a ring with epoch 1 only", mustSeal(t, f.k2, f.alice), onlyK1, world.ErrUnknownEpoch},
		{"kind relabelled", editEnvelope(t, m, func(e *world.Envelope) { e.Kind = world.KindData }), f.ring, world.ErrEnvelope},
		{"other nonce (AAD)", func() heartbeat.Message { x := m; x.Nonce = "other"; return x }(), f.ring, world.ErrDecrypt},
		{"other ts (AAD)", func() heartbeat.Message { x := m; x.TS++; return x }(), f.ring, world.ErrDecrypt},
		{"re-signed by another member (AAD sender)", resign(t, m, mallory), f.ring, world.ErrDecrypt},
		{"other author claimed (AAD sender)", func() heartbeat.Message { x := m; x.Author = f.bob.Public().String(); return x }(), f.ring, world.ErrDecrypt},
		{"payload of another message", func() heartbeat.Message {
			x := mustSeal(t, f.k1, f.alice)
			x.Payload = m.Payload
			return x
		}(), f.ring, world.ErrDecrypt},
		{"not an envelope", func() heartbeat.Message { x := m; x.Payload = "attack at dawn"; return x }(), f.ring, world.ErrEnvelope},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.ring.OpenMessage(&c.m)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if c.want == world.ErrDecrypt && err.Error() != "world: message authentication failed" {
				t.Fatalf("decryption error is not opaque: %q", err)
			}
		})
	}
	// Another instance's keyring never opens it.
	m2 := m
	m2.Instance = other.inst
	if _, err := otherRing.OpenMessage(&m2); !errors.Is(err, world.ErrDecrypt) {
		t.Fatalf("other instance: %v", err)
	}
	if _, err := otherRing.OpenMessage(&m); err == nil || !strings.Contains(err.Error(), "keyring for") {
		t.Fatalf("mismatched keyring: %v", err)
	}
	// Untouched, it opens.
	if _, err := f.ring.OpenMessage(&m); err != nil {
		t.Fatal(err)
	}
}

func mustSeal(t *testing.T, k *world.ContentKey, s *keys.Private) heartbeat.Message {
	t.Helper()
	m, err := world.SealMessage(k, s, t0, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSealOpenField(t *testing.T) {
	f := newFixture(t)
	soul := world.RootSoul(f.inst) + "/data/doc"
	v, err := world.SealField(f.k2, f.alice, soul, "body", []byte("private text"))
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := auth.SignField(f.alice, soul, "body", v, 1000)
	if err != nil {
		t.Fatal(err)
	}
	pt, writer, err := f.ring.OpenField(soul, "body", wrapped)
	if err != nil || string(pt) != "private text" || writer != f.alice.Public().String() {
		t.Fatalf("open field: %q %s %v", pt, writer, err)
	}
	// Moved to another field, soul, or re-signed by someone else: refused.
	if _, _, err := f.ring.OpenField(soul, "title", wrapped); !errors.Is(err, world.ErrDecrypt) {
		t.Fatalf("other field: %v", err)
	}
	other := world.RootSoul(f.inst) + "/data/other"
	if _, _, err := f.ring.OpenField(other, "body", wrapped); !errors.Is(err, world.ErrDecrypt) {
		t.Fatalf("other soul: %v", err)
	}
	stolen, _ := auth.SignField(f.bob, soul, "body", v, 2000)
	if _, _, err := f.ring.OpenField(soul, "body", stolen); !errors.Is(err, world.ErrDecrypt) {
		t.Fatalf("re-signed by bob: %v", err)
	}
	if _, err := world.SealField(f.k2, f.alice, "lum/someone-else/data", "x", nil); err == nil {
		t.Fatal("sealed a field of another instance")
	}
	// A message envelope is not a field envelope.
	m := mustSeal(t, f.k1, f.alice)
	asField, _ := auth.SignField(f.alice, soul, "body", graph.String(m.Payload), 3000)
	if _, _, err := f.ring.OpenField(soul, "body", asField); !errors.Is(err, world.ErrEnvelope) {
		t.Fatalf("message envelope as field: %v", err)
	}
}

func TestSnapshot(t *testing.T) {
	f := newFixture(t)
	data := bytes.Repeat([]byte("state "), 1000)
	a, err := world.SealSnapshot(f.k2, 77, data)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := world.SealSnapshot(f.k2, 77, data)
	if !bytes.Equal(a, b) {
		t.Fatal("not deterministic")
	}
	if c, _ := world.SealSnapshot(f.k2, 78, data); bytes.Equal(a[:world.HeaderSize], c[:world.HeaderSize]) {
		t.Fatal("another seq gives the same nonce")
	}
	if c, _ := world.SealSnapshot(f.k1, 77, data); bytes.Equal(a[world.HeaderSize:], c[world.HeaderSize:]) {
		t.Fatal("another epoch gives the same ciphertext")
	}
	got, err := f.ring.OpenSnapshot(77, a)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("open: %v", err)
	}
	if _, err := f.ring.OpenSnapshot(78, a); !errors.Is(err, world.ErrDecrypt) {
		t.Fatalf("other seq: %v", err)
	}
	bad := bytes.Clone(a)
	bad[len(bad)/2] ^= 1
	if _, err := f.ring.OpenSnapshot(77, bad); !errors.Is(err, world.ErrDecrypt) {
		t.Fatalf("tampered: %v", err)
	}
	onlyK1, _ := world.NewKeyring(f.inst, f.k1)
	if _, err := onlyK1.OpenSnapshot(77, a); !errors.Is(err, world.ErrUnknownEpoch) {
		t.Fatalf("epoch not held: %v", err)
	}
}

func TestKeyring(t *testing.T) {
	f := newFixture(t)
	dup, _ := world.NewContentKey(f.inst, 1)
	if err := f.ring.Add(dup); err == nil {
		t.Fatal("two keys for one epoch")
	}
	if err := f.ring.Add(f.k1); err != nil {
		t.Fatal("re-adding the same key:", err)
	}
	other, _ := world.NewContentKey(newFixture(t).inst, 3)
	if err := f.ring.Add(other); err == nil {
		t.Fatal("a key of another instance")
	}
	if s := f.k1.String(); !strings.Contains(s, "epoch 1") || strings.Contains(s, "secret") {
		t.Fatalf("String %q", s)
	}
	if _, err := world.NewContentKey(f.inst, 0); err == nil {
		t.Fatal("epoch 0")
	}
}
