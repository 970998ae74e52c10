package sea

import (
	"errors"
	"testing"

	"github.com/krestianstvo/luminary/keys"
)

func envelopeSeeds(f *testing.F) {
	v := []string{
		`SEA{"m":"hello","s":"CmHlygd+9TZga/Xlp/+GbH6jOZJtGSkXV0pKU0YL5Juk5oN2xaMDhO6+qZO7smD5id8E82sCz8vAu8ZdSGgMqg=="}`,
		`SEA{"m":{"a":1,"b":"x"},"s":"1AxDC64YtEsdwn2UJvRdBrGNLUK+P5gOON3r4cyz5z+0uO5QF0cWNxbkgE0yCr/oxwKCVM4KC+dgugAKvisrBQ=="}`,
		`SEA{"m":{"c":"*","w":[{"*":"hb"}]},"s":"5iuvMiEqYDfmn95rPxK7UtJ9SpEbwu8HbJIKFCI9stXvt8un0g1TIA172F4YQYxMo7CaMgt32jt/3vHtj8mCiQ=="}`,
		`SEA{"m":{"c":"ByV8do9jFbl-blzCq21Dwu23fA4kT-NgTtB0gDs7DdA.eFYjY8VXR8fVCcIn544iKXbxUo75am4lM0bR9zVVd08","e":1795670400810,"w":{"*":"inbox","+":"*"}},"s":"T5kiZ3iC8zOGtdYAUDLshkZX4Td89hk6A5BnfWBKpAJzoSsGoozp+3F1HQn+cCN0eo/ty0umYhdzj6d6WVveaQ=="}`,
		`{"m":{"2":1,"b":[1,2,{"0":null}]},"s":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="}`,
		`SEA{"ct":"wS1RueC6SFpD2EoT0rY1plsO/oFTFv4=","iv":"Rk/s5q2nP7lcfs4IkDaA","s":"7nwqfoX5A6SD"}`,
		`SEA{`, ``, `SEA"x"`,
	}
	for _, s := range v {
		f.Add(s)
	}
}

func FuzzParseEnvelope(f *testing.F) {
	envelopeSeeds(f)
	pub, _ := keys.ParsePublic(pPub)
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseEnvelope(s)
		if err != nil {
			if !errors.Is(err, ErrEnvelope) {
				t.Fatalf("error %v does not wrap ErrEnvelope", err)
			}
			return
		}
		// The canonical form parses to the same signed text and signature,
		// and is a fixed point.
		canon := e.String()
		e2, err := ParseEnvelope(canon)
		if err != nil {
			t.Fatalf("canonical form %q does not parse: %v", canon, err)
		}
		if e2.Text() != e.Text() || string(e2.Signature()) != string(e.Signature()) || e2.String() != canon {
			t.Fatalf("round trip changed the envelope: %q -> %q", s, canon)
		}
		if err := e.Verify(pub); err != nil && !errors.Is(err, ErrBadSignature) {
			t.Fatalf("Verify: %v", err)
		}
	})
}

func FuzzParseCertificate(f *testing.F) {
	envelopeSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCertificate(s)
		if err != nil {
			if !errors.Is(err, ErrEnvelope) && !errors.Is(err, ErrCertificate) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if !c.AnyCertificant && len(c.Certificants) == 0 {
			t.Fatal("certificate without certificants")
		}
		if c.ReadPolicy == nil && c.WritePolicy == nil {
			t.Fatal("certificate without policy")
		}
		c2, err := ParseCertificate(c.String())
		if err != nil || c2.String() != c.String() {
			t.Fatalf("round trip: %v", err)
		}
		if c.AnyCertificant != c.Allows("anyone") {
			t.Fatal("Allows disagrees with AnyCertificant")
		}
	})
}

func FuzzDecrypt(f *testing.F) {
	envelopeSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		_, err := Decrypt(s, "passphrase123")
		if err != nil && !errors.Is(err, ErrEnvelope) && !errors.Is(err, ErrDecrypt) && !errors.Is(err, errAmbiguousJSON) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}
