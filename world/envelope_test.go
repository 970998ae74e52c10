package world_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/krestianstvo/luminary/world"
)

func sampleEnvelope(kind world.Kind, ctLen int) *world.Envelope {
	e := &world.Envelope{Kind: kind, Epoch: 42, Ciphertext: bytes.Repeat([]byte{0xab}, ctLen)}
	for i := range e.Nonce {
		e.Nonce[i] = byte(i)
	}
	return e
}

func TestEnvelopeRoundTrip(t *testing.T) {
	for _, k := range []world.Kind{world.KindMessage, world.KindData, world.KindSnapshot} {
		e := sampleEnvelope(k, 100)
		txt := e.String()
		got, err := world.ParseEnvelope(txt)
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != txt || got.Kind != k || got.Epoch != 42 || got.Nonce != e.Nonce || !bytes.Equal(got.Ciphertext, e.Ciphertext) {
			t.Fatalf("%v: text round trip %q", k, got)
		}
		bin, err := e.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if len(bin) != world.HeaderSize+100 || bin[0] != 1 || bin[1] != byte(k) {
			t.Fatalf("binary form % x", bin[:12])
		}
		got, err = world.ParseEnvelopeBinary(bin)
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != txt {
			t.Fatalf("binary round trip %q", got)
		}
	}
	if s := sampleEnvelope(world.KindMessage, 80).String(); !strings.HasPrefix(s, "lum1.m.42.AAECAwQFBgcICQoLDA0ODxAREhMUFRYX.") {
		t.Fatalf("text form %q", s)
	}
}

// TestEnvelopeStructure is reliability.md table A row 27: each malformed
// envelope is refused with "invalid: envelope" and a reason.
func TestEnvelopeStructure(t *testing.T) {
	good := sampleEnvelope(world.KindMessage, 80).String()
	p := strings.Split(good, ".")
	join := func(xs ...string) string { return strings.Join(xs, ".") }
	b64 := base64.RawURLEncoding.EncodeToString
	cases := map[string]struct{ in, reason string }{
		"nonce 23 bytes":         {join(p[0], p[1], p[2], b64(make([]byte, 23)), p[4]), "nonce must be 24 bytes"},
		"nonce 25 bytes":         {join(p[0], p[1], p[2], b64(make([]byte, 25)), p[4]), "nonce must be 24 bytes"},
		"nonce padded":           {join(p[0], p[1], p[2], p[3]+"==", p[4]), "nonce must be 24 bytes"},
		"nonce bad alphabet":     {join(p[0], p[1], p[2], "+"+p[3][1:], p[4]), "nonce encoding"},
		"ciphertext 15 bytes":    {join(p[0], "s", p[2], p[3], b64(make([]byte, 15))), "shorter than the 16-byte tag"},
		"ciphertext empty":       {join(p[0], p[1], p[2], p[3], ""), "shorter than the 16-byte tag"},
		"message without sig":    {join(p[0], "m", p[2], p[3], b64(make([]byte, 79))), "inner signature"},
		"ciphertext not base64":  {join(p[0], p[1], p[2], p[3], "!!!!"), "ciphertext encoding"},
		"ciphertext non-canon":   {join(p[0], p[1], p[2], p[3], b64(make([]byte, 80))[:106]+"B"), "ciphertext encoding"},
		"unknown version":        {"lum2" + good[4:], "unknown version"},
		"no version":             {"hello", "not an envelope"},
		"unknown kind":           {join(p[0], "x", p[2], p[3], p[4]), "unknown kind"},
		"epoch zero":             {join(p[0], p[1], "0", p[3], p[4]), "key epoch"},
		"epoch leading zero":     {join(p[0], p[1], "042", p[3], p[4]), "key epoch"},
		"epoch negative":         {join(p[0], p[1], "-1", p[3], p[4]), "key epoch"},
		"epoch beyond 2^53":      {join(p[0], p[1], "9007199254740992", p[3], p[4]), "key epoch"},
		"too few parts":          {join(p[0], p[1], p[2], p[3]), "5 dot-separated parts"},
		"too many parts":         {good + ".x", "5 dot-separated parts"},
		"empty":                  {"", "not an envelope"},
		"json":                   {`{"ct":"x"}`, "not an envelope"},
		"leading space":          {" " + good, "unknown version"},
		"upper-case kind letter": {join(p[0], "M", p[2], p[3], p[4]), "unknown kind"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e, err := world.ParseEnvelope(c.in)
			if err == nil {
				t.Fatalf("accepted %q as %v", c.in, e)
			}
			if !errors.Is(err, world.ErrEnvelope) || !strings.HasPrefix(err.Error(), "invalid: envelope: ") {
				t.Fatalf("error %q does not wrap ErrEnvelope", err)
			}
			if !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("reason %q, want %q", err, c.reason)
			}
		})
	}
	if _, err := world.CheckPayload(join(p[0], "d", p[2], p[3], p[4])); !errors.Is(err, world.ErrEnvelope) {
		t.Fatalf("data envelope as a message payload: %v", err)
	}
}

func TestEnvelopeBinaryStructure(t *testing.T) {
	good, _ := sampleEnvelope(world.KindSnapshot, 16).MarshalBinary()
	cases := map[string]struct {
		in     []byte
		reason string
	}{
		"empty":           {nil, "empty"},
		"unknown version": {append([]byte{2}, good[1:]...), "unknown version"},
		"short header":    {good[:world.HeaderSize-1], "shorter than its header"},
		"short tag":       {good[:len(good)-1], "16-byte tag"},
		"unknown kind":    {append([]byte{1, 9}, good[2:]...), "unknown kind"},
		"epoch zero":      {append(append([]byte{1, 3}, make([]byte, 8)...), good[10:]...), "key epoch"},
		"message no sig":  {append([]byte{1, 1}, good[2:]...), "inner signature"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := world.ParseEnvelopeBinary(c.in)
			if !errors.Is(err, world.ErrEnvelope) || !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("error %v, want %q", err, c.reason)
			}
		})
	}
}

// FuzzParseEnvelope: the text parser never panics, every error wraps
// ErrEnvelope, and whatever it accepts re-encodes to the same text (one
// encoding per envelope) and survives the binary form.
func FuzzParseEnvelope(f *testing.F) {
	for _, k := range []world.Kind{world.KindMessage, world.KindData, world.KindSnapshot} {
		f.Add(sampleEnvelope(k, 80).String())
	}
	f.Add("lum1.m.1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("lum1...")
	f.Add("lum2.m.1.x.y")
	f.Fuzz(func(t *testing.T, s string) {
		e, err := world.ParseEnvelope(s)
		if err != nil {
			if !errors.Is(err, world.ErrEnvelope) {
				t.Fatalf("error %v does not wrap ErrEnvelope", err)
			}
			return
		}
		if e.String() != s {
			t.Fatalf("accepted %q, re-encodes as %q", s, e.String())
		}
		bin, err := e.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		e2, err := world.ParseEnvelopeBinary(bin)
		if err != nil || e2.String() != s {
			t.Fatalf("binary round trip: %v", err)
		}
	})
}

// FuzzParseEnvelopeBinary: the binary parser never panics, errors wrap
// ErrEnvelope, and accepted input re-encodes to itself.
func FuzzParseEnvelopeBinary(f *testing.F) {
	for _, k := range []world.Kind{world.KindMessage, world.KindData, world.KindSnapshot} {
		b, _ := sampleEnvelope(k, 80).MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := world.ParseEnvelopeBinary(b)
		if err != nil {
			if !errors.Is(err, world.ErrEnvelope) {
				t.Fatalf("error %v does not wrap ErrEnvelope", err)
			}
			return
		}
		out, err := e.MarshalBinary()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("accepted % x, re-encodes as % x (%v)", b, out, err)
		}
	})
}
