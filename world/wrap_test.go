package world_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/krestianstvo/luminary/keys"
	"github.com/krestianstvo/luminary/world"
)

func TestWrapUnwrap(t *testing.T) {
	owner := newKey(t, keys.Secp256k1)
	inst := owner.Public().String()
	k, _ := world.NewContentKey(inst, 5)
	for _, c := range []keys.Curve{keys.Secp256k1, keys.P256} {
		member := newKey(t, c)
		wk, err := world.Wrap(k, member.Public())
		if err != nil {
			t.Fatal(err)
		}
		txt := wk.String()
		parsed, err := world.ParseWrappedKey(txt)
		if err != nil || parsed.String() != txt {
			t.Fatalf("parse %s: %v", txt, err)
		}
		got, err := world.Unwrap(parsed, inst, 5, member)
		if err != nil || !got.Equal(k) {
			t.Fatalf("unwrap on %v: %v", c, err)
		}
		// Another member, epoch or instance: opaque failure.
		if _, err := world.Unwrap(parsed, inst, 5, newKey(t, c)); !errors.Is(err, world.ErrDecrypt) {
			t.Fatalf("other member: %v", err)
		}
		if _, err := world.Unwrap(parsed, inst, 6, member); !errors.Is(err, world.ErrDecrypt) {
			t.Fatalf("other epoch: %v", err)
		}
		if _, err := world.Unwrap(parsed, newKey(t, keys.Secp256k1).Public().String(), 5, member); !errors.Is(err, world.ErrDecrypt) {
			t.Fatalf("other instance: %v", err)
		}
		other := keys.P256
		if c == keys.P256 {
			other = keys.Secp256k1
		}
		if _, err := world.Unwrap(parsed, inst, 5, newKey(t, other)); !errors.Is(err, world.ErrWrappedKey) {
			t.Fatalf("curve mismatch: %v", err)
		}
		tampered := *parsed
		tampered.Ciphertext = append([]byte(nil), parsed.Ciphertext...)
		tampered.Ciphertext[0] ^= 1
		if _, err := world.Unwrap(&tampered, inst, 5, member); !errors.Is(err, world.ErrDecrypt) {
			t.Fatalf("tampered: %v", err)
		}
	}
}

func TestParseWrappedKeyStrict(t *testing.T) {
	k, _ := world.NewContentKey(newKey(t, keys.Secp256k1).Public().String(), 1)
	good, _ := world.Wrap(k, newKey(t, keys.Secp256k1).Public())
	txt := good.String()
	bad := map[string]string{
		"version 2":      strings.Replace(txt, `"v":1`, `"v":2`, 1),
		"extra member":   strings.Replace(txt, `{"v":1`, `{"x":0,"v":1`, 1),
		"missing member": strings.Replace(txt, `,"ct"`, `,"cx"`, 1),
		"duplicate":      strings.Replace(txt, `{"v":1`, `{"v":1,"v":1`, 1),
		"case variant":   strings.Replace(txt, `"epk":`, `"EPK":"x","epk":`, 1),
		"bad epk":        strings.Replace(txt, `"epk":"k1:`, `"epk":"k2:`, 1),
		"short nonce":    strings.Replace(txt, `"nonce":"`, `"nonce":"AAAA`, 1),
		"not json":       "lum1.whatever",
		"newline in ct":  strings.Replace(txt, `"ct":"`, `"ct":"\n`, 1),
	}
	for name, s := range bad {
		if _, err := world.ParseWrappedKey(s); !errors.Is(err, world.ErrWrappedKey) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParseWrappedKey(f *testing.F) {
	k, _ := world.NewContentKey(newKey(f, keys.Secp256k1).Public().String(), 1)
	for _, c := range []keys.Curve{keys.Secp256k1, keys.P256} {
		wk, _ := world.Wrap(k, newKey(f, c).Public())
		f.Add(wk.String())
	}
	f.Fuzz(func(t *testing.T, s string) {
		wk, err := world.ParseWrappedKey(s)
		if err != nil {
			if !errors.Is(err, world.ErrWrappedKey) {
				t.Fatalf("error %v does not wrap ErrWrappedKey", err)
			}
			return
		}
		again, err := world.ParseWrappedKey(wk.String())
		if err != nil || again.String() != wk.String() {
			t.Fatalf("re-encoding does not parse back: %v", err)
		}
	})
}

func TestPasswordWorld(t *testing.T) {
	cheap := world.PasswordParams{Memory: world.MinPasswordMemory, Time: 1, Threads: 1}
	a, err := world.PasswordWorld("our world", []byte("hunter2"), cheap, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := world.PasswordWorld("our world", []byte("hunter2"), cheap, keys.Secp256k1)
	if a.Instance != b.Instance || !a.Key.Equal(b.Key) || !a.Owner.Equal(b.Owner) {
		t.Fatal("not deterministic")
	}
	if !strings.HasPrefix(a.Instance, "k1:") || a.Key.Epoch() != 1 {
		t.Fatalf("instance %s epoch %d", a.Instance, a.Key.Epoch())
	}
	for _, o := range []struct {
		name, pw string
		p        world.PasswordParams
		c        keys.Curve
	}{
		{"our world", "hunter3", cheap, 0},
		{"our world!", "hunter2", cheap, 0},
		{"our world", "hunter2", world.PasswordParams{Memory: world.MinPasswordMemory, Time: 2, Threads: 1}, 0},
		{"our world", "hunter2", cheap, keys.P256},
	} {
		c, err := world.PasswordWorld(o.name, []byte(o.pw), o.p, o.c)
		if err != nil {
			t.Fatal(err)
		}
		if c.Instance == a.Instance || c.Key.Equal(a.Key) {
			t.Fatalf("%+v gives the same world", o)
		}
	}
	// Caps and inputs.
	for _, p := range []world.PasswordParams{
		{Memory: world.MaxPasswordMemory + 1, Time: 1},
		{Memory: world.MinPasswordMemory - 1, Time: 1},
		{Memory: world.MinPasswordMemory, Time: world.MaxPasswordTime + 1},
		{Memory: world.MinPasswordMemory, Time: 1, Threads: world.MaxPasswordThreads + 1},
	} {
		if _, err := world.PasswordWorld("w", []byte("p"), p, 0); !errors.Is(err, world.ErrParams) {
			t.Fatalf("%v: %v", p, err)
		}
	}
	if _, err := world.PasswordWorld("", []byte("p"), cheap, 0); err == nil {
		t.Fatal("empty name")
	}
	if _, err := world.PasswordWorld("w", nil, cheap, 0); err == nil {
		t.Fatal("empty password")
	}

	// Through a relay: anyone with the password creates (idempotently),
	// reads the parameters back, and exchanges messages.
	r := newRelay(t)
	if err := world.CreatePassword(ctx, r.store(), a); err != nil {
		t.Fatal(err)
	}
	if err := world.CreatePassword(ctx, r.store(), b); err != nil {
		t.Fatal("second creation:", err)
	}
	w, err := world.Load(ctx, r.store(), a.Instance)
	if err != nil {
		t.Fatal(err)
	}
	if w.Password == nil || w.Password.Params != (world.PasswordParams{Memory: world.MinPasswordMemory, Time: 1, Threads: 1}) ||
		string(w.Password.Salt) != string(world.PasswordSalt("our world")) || w.Epoch != 1 || !w.Private {
		t.Fatalf("world %+v password %+v", w, w.Password)
	}
	m, err := world.SealMessage(a.Key, a.Owner, t0, []byte("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := b.Keyring().OpenMessage(&m); err != nil || string(pt) != "hi" {
		t.Fatalf("open: %v", err)
	}
	wrong, _ := world.PasswordWorld("our world", []byte("hunter3"), cheap, 0)
	m.Instance = wrong.Instance
	if _, err := wrong.Keyring().OpenMessage(&m); !errors.Is(err, world.ErrDecrypt) {
		t.Fatalf("wrong password: %v", err)
	}
}
