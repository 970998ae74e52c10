package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/keys"
)

// TestParseCertRejectsLineBreaks: Go's base64 decoder skips CR and LF even in
// strict mode, so without a length check one certificate had many texts.
func TestParseCertRejectsLineBreaks(t *testing.T) {
	owner := genKey(t, keys.Secp256k1)
	subject := genKey(t, keys.P256)
	now := time.Unix(1_800_000_000, 0)
	c, err := IssueCert(owner, Cert{Instance: owner.Public().String(), Subject: subject.Public().String(),
		Roles: []Role{RoleMessage}, NotBefore: now, Expiry: now.Add(time.Hour), Serial: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	text, err := c.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseCert(text); err != nil {
		t.Fatalf("ParseCert(original) = %v", err)
	}
	i := strings.Index(string(text), `"sig":"`) + len(`"sig":"`) + 10
	for _, brk := range []string{`\n`, `\r`, `\r\n`} {
		bent := string(text[:i]) + brk + string(text[i:])
		if _, err := ParseCert([]byte(bent)); err == nil {
			t.Errorf("ParseCert accepted a signature with a line break: %s", bent)
		}
	}
}
