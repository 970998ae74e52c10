package keys

import (
	"errors"
	"testing"
)

func FuzzParsePublic(f *testing.F) {
	for _, c := range curves {
		k, _ := Generate(c)
		f.Add(k.Public().String())
	}
	f.Add(seaPub)
	f.Add("k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePublic(s)
		if err != nil {
			if !errors.Is(err, ErrPublicKey) {
				t.Fatalf("error %v does not wrap ErrPublicKey", err)
			}
			return
		}
		// One text per key: a parsed key prints back exactly its input.
		if p.String() != s {
			t.Fatalf("ParsePublic(%q).String() = %q", s, p.String())
		}
		if p.Verify([]byte("x"), make([]byte, SignatureSize)) {
			t.Fatal("zero signature verified")
		}
	})
}

func FuzzParsePrivate(f *testing.F) {
	for _, c := range curves {
		k, _ := Generate(c)
		f.Add(k.Encode())
	}
	f.Add(seaPriv)
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePrivate(s)
		if err != nil {
			if !errors.Is(err, ErrPrivateKey) {
				t.Fatalf("error %v does not wrap ErrPrivateKey", err)
			}
			return
		}
		if k.Encode() != s {
			t.Fatalf("round trip changed the key text")
		}
	})
}
