package sea

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/keys"
)

type vectorFile struct {
	Source string `json:"source"`
	Pairs  map[string]struct {
		Pub, Priv, EPub, EPriv string
	} `json:"pairs"`
	Verify []struct {
		ID       string          `json:"id"`
		Pub      string          `json:"pub"`
		Envelope string          `json:"envelope"`
		Text     string          `json:"text"`
		M        json.RawMessage `json:"m"`
		Tampered string          `json:"tampered"`
	} `json:"verify"`
	Decrypt []struct {
		ID         string          `json:"id"`
		Passphrase string          `json:"passphrase"`
		Envelope   string          `json:"envelope"`
		Plaintext  json.RawMessage `json:"plaintext"`
	} `json:"decrypt"`
	Work []struct {
		ID   string  `json:"id"`
		Data string  `json:"data"`
		Salt *string `json:"salt"`
		Opt  struct {
			Name string `json:"name"`
		} `json:"opt"`
		Out string `json:"out"`
	} `json:"work"`
	Secret []struct {
		ID     string `json:"id"`
		AEPriv string `json:"a_epriv"`
		AEPub  string `json:"a_epub"`
		BEPriv string `json:"b_epriv"`
		BEPub  string `json:"b_epub"`
		Secret string `json:"secret"`
	} `json:"secret"`
	Wrapper []struct {
		ID  string          `json:"id"`
		Pub string          `json:"pub"`
		M   json.RawMessage `json:"m"`
		Sig string          `json:"sig"`
	} `json:"wrapper"`
	Login []struct {
		ID       string          `json:"id"`
		Password string          `json:"password"`
		Salt     string          `json:"salt"`
		EK       json.RawMessage `json:"ek"`
		Pub      string          `json:"pub"`
	} `json:"login"`
	Certificate []struct {
		ID           string          `json:"id"`
		Authority    string          `json:"authority"`
		Certificate  string          `json:"certificate"`
		Any          bool            `json:"any"`
		Certificants []string        `json:"certificants"`
		Expiry       *float64        `json:"expiry"`
		W            json.RawMessage `json:"w"`
	} `json:"certificate"`
}

func loadVectors(t *testing.T) *vectorFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(v.Source, "0.2020.1241") {
		t.Fatalf("unexpected source %q", v.Source)
	}
	return &v
}

// jsv decodes raw JSON with jsjson (ordered objects).
func jsv(t *testing.T, raw []byte) any {
	t.Helper()
	v, err := jsjson.Parse(raw, jsjson.Limits{})
	if err != nil {
		t.Fatalf("parse %s: %v", raw, err)
	}
	return v
}

func mustPub(t *testing.T, s string) *keys.Public {
	t.Helper()
	p, err := keys.ParsePublic(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustPriv(t *testing.T, s string) *keys.Private {
	t.Helper()
	p, err := keys.ParsePrivate(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVectorsVerify(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.Verify {
		t.Run(tc.ID, func(t *testing.T) {
			pub := mustPub(t, tc.Pub)
			m, err := Verify(tc.Envelope, pub)
			if err != nil {
				t.Fatal(err)
			}
			if !jsjson.Equal(m, jsv(t, tc.M)) {
				t.Fatalf("m = %#v", m)
			}
			e, err := ParseEnvelope(tc.Envelope)
			if err != nil {
				t.Fatal(err)
			}
			if e.Text() != tc.Text {
				t.Fatalf("signed text %q, want %q", e.Text(), tc.Text)
			}
			if e.String() != tc.Envelope {
				t.Fatalf("re-serialized %s", e.String())
			}
			// Without the prefix too.
			if _, err := Verify(strings.TrimPrefix(tc.Envelope, "SEA"), pub); err != nil {
				t.Fatal(err)
			}
			// Another key, or a tampered m, fails.
			other := mustPub(t, v.Pairs["P"].EPub)
			if _, err := Verify(tc.Envelope, other); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("other key: %v", err)
			}
			if tc.Tampered != "" {
				if _, err := Verify(tc.Tampered, pub); !errors.Is(err, ErrBadSignature) {
					t.Fatalf("tampered: %v", err)
				}
			}
			// Re-signing with P gives a different (deterministic, low-S)
			// signature that verifies; and Sign of the envelope itself
			// returns it unchanged, as gun.js does.
			priv := mustPriv(t, v.Pairs["P"].Priv)
			again, err := Sign(tc.Envelope, priv)
			if err != nil {
				t.Fatal(err)
			}
			if again != tc.Envelope {
				t.Fatalf("Sign(already signed) = %s", again)
			}
			fresh, err := Sign(m, priv)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(fresh, pub); err != nil {
				t.Fatalf("fresh signature: %v", err)
			}
		})
	}
}

func TestVectorsDecrypt(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.Decrypt {
		t.Run(tc.ID, func(t *testing.T) {
			got, err := Decrypt(tc.Envelope, tc.Passphrase)
			if err != nil {
				t.Fatal(err)
			}
			if !jsjson.Equal(got, jsv(t, tc.Plaintext)) {
				t.Fatalf("plaintext %#v", got)
			}
			if _, err := Decrypt(tc.Envelope, tc.Passphrase+"x"); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("wrong passphrase: %v", err)
			}
			obj, _ := parseObject(tc.Envelope)
			for _, k := range []string{"ct", "iv", "s"} {
				val, _ := obj.Get(k)
				raw := []byte(val.(string))
				// Change one base64 character in the middle (keeping the
				// encoding canonical by swapping two letters' case).
				i := len(raw) / 3
				if raw[i] >= 'a' && raw[i] <= 'z' {
					raw[i] -= 32
				} else if raw[i] >= 'A' && raw[i] <= 'Z' {
					raw[i] += 32
				} else {
					raw[i] = 'Q'
				}
				tampered := strings.Replace(tc.Envelope, val.(string), string(raw), 1)
				if _, err := Decrypt(tampered, tc.Passphrase); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("tampered %s: %v", k, err)
				}
			}
		})
	}
}

func TestVectorsWork(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.Work {
		t.Run(tc.ID, func(t *testing.T) {
			salt := ""
			if tc.Salt != nil {
				salt = *tc.Salt
			}
			got, err := Work(tc.Data, salt, WorkOptions{Name: tc.Opt.Name})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.Out {
				t.Fatalf("Work = %s, want %s", got, tc.Out)
			}
		})
	}
}

func TestVectorsSecret(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.Secret {
		a, b := mustPriv(t, tc.AEPriv), mustPriv(t, tc.BEPriv)
		if a.Public().String() != tc.AEPub || b.Public().String() != tc.BEPub {
			t.Fatal("epriv does not derive epub")
		}
		ab, err := Secret(tc.BEPub, a)
		if err != nil {
			t.Fatal(err)
		}
		ba, err := Secret(tc.AEPub, b)
		if err != nil {
			t.Fatal(err)
		}
		if ab != tc.Secret || ba != tc.Secret {
			t.Fatalf("secrets %s %s, want %s", ab, ba, tc.Secret)
		}
	}
}

func TestVectorsWrapper(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.Wrapper {
		pub := mustPub(t, tc.Pub)
		m := jsv(t, tc.M)
		if err := VerifyValue(m, tc.Sig, pub); err != nil {
			t.Fatalf("%s: %v", tc.ID, err)
		}
		text, _ := Text(m)
		if !strings.HasPrefix(text, `{"#":"~`+tc.Pub+`",".":"status"`) {
			t.Fatalf("text %s", text)
		}
		m.(*jsjson.Object).Set(":", "offline")
		if err := VerifyValue(m, tc.Sig, pub); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("tampered value: %v", err)
		}
	}
}

func TestVectorsLogin(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.Login {
		proof, err := Work(tc.Password, tc.Salt, WorkOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecryptValue(jsv(t, tc.EK), proof)
		if err != nil {
			t.Fatalf("%s: %v", tc.ID, err)
		}
		obj, ok := got.(*jsjson.Object)
		if !ok {
			t.Fatalf("plaintext %#v", got)
		}
		privText, _ := obj.Get("priv")
		epriv, _ := obj.Get("epriv")
		priv := mustPriv(t, privText.(string))
		mustPriv(t, epriv.(string))
		if priv.Public().String() != tc.Pub {
			t.Fatalf("priv derives %s, want %s", priv.Public(), tc.Pub)
		}
		// The same record as text decrypts too.
		if _, err := Decrypt(string(jsjson.Marshal(jsv(t, tc.EK))), proof); err != nil {
			t.Fatal(err)
		}
		wrong, _ := Work(tc.Password+"!", tc.Salt, WorkOptions{})
		if _, err := DecryptValue(jsv(t, tc.EK), wrong); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("wrong password: %v", err)
		}
	}
}

func TestVectorsCertificate(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.Certificate {
		t.Run(tc.ID, func(t *testing.T) {
			c, err := ParseCertificate(tc.Certificate)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Verify(mustPub(t, tc.Authority)); err != nil {
				t.Fatal(err)
			}
			if err := c.Verify(mustPub(t, v.Pairs["P"].Pub)); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("wrong authority: %v", err)
			}
			if c.AnyCertificant != tc.Any || strings.Join(c.Certificants, ",") != strings.Join(tc.Certificants, ",") {
				t.Fatalf("certificants %v %v", c.AnyCertificant, c.Certificants)
			}
			if !jsjson.Equal(c.WritePolicy, jsv(t, tc.W)) || c.ReadPolicy != nil {
				t.Fatalf("policy %#v", c.WritePolicy)
			}
			if c.String() != tc.Certificate {
				t.Fatalf("String = %s", c.String())
			}
			stranger := v.Pairs["P"].Pub
			if c.Allows(stranger) != tc.Any {
				t.Fatalf("Allows(stranger) = %v", c.Allows(stranger))
			}
			for _, p := range tc.Certificants {
				if !c.Allows(p) {
					t.Fatalf("Allows(%s) = false", p)
				}
			}
			if tc.Expiry == nil {
				if c.HasExpiry || c.Expired(time.Now().Add(1000*time.Hour)) {
					t.Fatal("expiry without e")
				}
			} else {
				e := time.UnixMilli(int64(*tc.Expiry))
				if !c.HasExpiry || c.ExpiryMillis != *tc.Expiry || c.Expired(e) || !c.Expired(e.Add(time.Millisecond)) {
					t.Fatal("expiry handling")
				}
			}
			// Tampering with any member of m breaks the signature.
			tampered := strings.Replace(tc.Certificate, `"w":`, `"w":[{"*":"x"}],"r":`, 1)
			if tc2, err := ParseCertificate(tampered); err == nil {
				if err := tc2.Verify(mustPub(t, tc.Authority)); !errors.Is(err, ErrBadSignature) {
					t.Fatalf("tampered certificate: %v", err)
				}
			}
		})
	}
}
