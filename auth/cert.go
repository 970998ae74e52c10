package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/keys"
)

// Role is a right within an instance namespace that a [Cert] delegates.
type Role string

// The roles. The owner of an instance holds all of them implicitly.
const (
	// RoleTick may run the metronome: write lum/<I>/hb, lum/<I>/log/… and
	// lum/<I>/clients.
	RoleTick Role = "tick"
	// RoleMessage may send external messages: write lum/<I>/in/….
	RoleMessage Role = "message"
	// RoleSnapshot may publish snapshots: write lum/<I>/snap/….
	RoleSnapshot Role = "snapshot"
	// RoleAdmin may issue certificates (be an intermediate of a chain) and
	// write the instance's administrative souls: lum/<I> itself,
	// lum/<I>/certs, lum/<I>/revoked, lum/<I>/members and any soul under
	// lum/<I>/ that the role table does not name.
	RoleAdmin Role = "admin"
)

// Known reports whether r is one of the four roles.
func (r Role) Known() bool {
	switch r {
	case RoleTick, RoleMessage, RoleSnapshot, RoleAdmin:
		return true
	}
	return false
}

// Cert delegates roles in one instance namespace from an issuer to a
// subject. A chain starts with a Cert issued by the instance owner; every
// further Cert is issued by the subject of the one before it, which must hold
// [RoleAdmin]. Validity is always judged by the relay's clock.
//
// A Cert is not SEA's certificate (gun.md §4.7): it is Luminary's own format
// for instance namespaces, signed over domain-separated bytes (see
// [Cert.SignedBytes]) with strict low-S ECDSA on either curve.
type Cert struct {
	Instance  string    // public key text of the instance owner
	Subject   string    // public key text of the key receiving the roles, or AnySubject
	Roles     []Role    // at least one, no repeats
	NotBefore time.Time // not valid before (millisecond precision); zero: no lower bound
	Expiry    time.Time // not valid after (millisecond precision); required
	Serial    string    // 1–64 base64url characters; the handle for revocation
	Issuer    string    // public key text of the signer
	Sig       []byte    // 64-byte r‖s over SignedBytes, by Issuer
}

// AnySubject as a certificate's Subject grants its roles to every key, like
// SEA's "*" certificant: an owner can open an instance to messages from
// anyone. It cannot carry [RoleAdmin], so it can only end a chain.
const AnySubject = "*"

// CertLabel is the keys.Message label of certificate signatures.
const CertLabel = "cert"

// maxSafeMillis is 2^53, the largest integer a JavaScript number holds
// exactly; certificate times are refused beyond it.
const maxSafeMillis = 1 << 53

// ErrCert is wrapped by every error from [ParseCert] and [IssueCert].
var ErrCert = errors.New("auth: bad certificate")

// Has reports whether the certificate grants role r.
func (c *Cert) Has(r Role) bool { return slices.Contains(c.Roles, r) }

// SignedBytes returns the exact bytes the issuer signs:
//
//	keys.Message("cert", instance, subject, roles joined by ",",
//	             notBefore ms (decimal), expiry ms (decimal), serial, issuer)
func (c *Cert) SignedBytes() []byte {
	roles := make([]string, len(c.Roles))
	for i, r := range c.Roles {
		roles[i] = string(r)
	}
	return keys.Message(CertLabel,
		[]byte(c.Instance),
		[]byte(c.Subject),
		[]byte(strings.Join(roles, ",")),
		strconv.AppendInt(nil, millis(c.NotBefore), 10),
		strconv.AppendInt(nil, millis(c.Expiry), 10),
		[]byte(c.Serial),
		[]byte(c.Issuer),
	)
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// validate checks the fields that do not need key parsing.
func (c *Cert) validate() error {
	if c.Instance == "" || c.Subject == "" || c.Issuer == "" {
		return fmt.Errorf("%w: instance, subject and issuer are required", ErrCert)
	}
	if len(c.Roles) == 0 {
		return fmt.Errorf("%w: no roles", ErrCert)
	}
	for i, r := range c.Roles {
		if !r.Known() {
			return fmt.Errorf("%w: unknown role %q", ErrCert, r)
		}
		if slices.Contains(c.Roles[:i], r) {
			return fmt.Errorf("%w: role %q repeated", ErrCert, r)
		}
	}
	if c.Subject == AnySubject && slices.Contains(c.Roles, RoleAdmin) {
		return fmt.Errorf("%w: the admin role cannot be granted to %q", ErrCert, AnySubject)
	}
	if !validSerial(c.Serial) {
		return fmt.Errorf("%w: serial must be 1-64 base64url characters", ErrCert)
	}
	nb, exp := millis(c.NotBefore), millis(c.Expiry)
	if nb < 0 || exp <= 0 || nb > maxSafeMillis || exp > maxSafeMillis {
		return fmt.Errorf("%w: times out of range", ErrCert)
	}
	if exp <= nb {
		return fmt.Errorf("%w: expiry not after notBefore", ErrCert)
	}
	return nil
}

func validSerial(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

// IssueCert signs a certificate. tmpl supplies Instance, Subject, Roles,
// NotBefore and Expiry, and optionally Serial (16 random bytes in base64url
// when empty); Issuer and Sig are set from issuer. Times are truncated to
// milliseconds.
func IssueCert(issuer *keys.Private, tmpl Cert) (*Cert, error) {
	if issuer == nil {
		return nil, fmt.Errorf("%w: nil issuer", ErrCert)
	}
	c := tmpl
	c.Roles = slices.Clone(tmpl.Roles)
	c.Issuer = issuer.Public().String()
	if !c.NotBefore.IsZero() {
		c.NotBefore = time.UnixMilli(c.NotBefore.UnixMilli())
	}
	c.Expiry = time.UnixMilli(c.Expiry.UnixMilli())
	if c.Serial == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("auth: issue certificate: %w", err)
		}
		c.Serial = base64.RawURLEncoding.EncodeToString(b[:])
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	sig, err := issuer.Sign(c.SignedBytes())
	if err != nil {
		return nil, fmt.Errorf("auth: issue certificate: %w", err)
	}
	c.Sig = sig
	return &c, nil
}

// MarshalJSON encodes the certificate as
//
//	{"instance":…,"subject":…,"roles":[…],"notBefore":ms,"expiry":ms,
//	 "serial":…,"issuer":…,"sig":base64url}
func (c *Cert) MarshalJSON() ([]byte, error) {
	return jsjson.Append(nil, c.object()), nil
}

func (c *Cert) object() *jsjson.Object {
	roles := make([]any, len(c.Roles))
	for i, r := range c.Roles {
		roles[i] = string(r)
	}
	return &jsjson.Object{
		Keys: []string{"instance", "subject", "roles", "notBefore", "expiry", "serial", "issuer", "sig"},
		Values: []any{c.Instance, c.Subject, roles,
			float64(millis(c.NotBefore)), float64(millis(c.Expiry)),
			c.Serial, c.Issuer, base64.RawURLEncoding.EncodeToString(c.Sig)},
	}
}

// certLimits bounds certificate JSON.
var certLimits = jsjson.Limits{MaxBytes: 4096, MaxDepth: 4, MaxMembers: 16, MaxElements: 8}

// ParseCert decodes a certificate from its JSON encoding (see
// [Cert.MarshalJSON]). It checks the shape only; the signature and validity
// are checked when a write relies on it. Errors wrap [ErrCert].
func ParseCert(data []byte) (*Cert, error) {
	v, err := jsjson.Parse(data, certLimits)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCert, err)
	}
	return certFromValue(v)
}

// certFromValue decodes a certificate from a parsed JSON value.
func certFromValue(v any) (*Cert, error) {
	o, ok := v.(*jsjson.Object)
	if !ok {
		return nil, fmt.Errorf("%w: not an object", ErrCert)
	}
	if o.Len() != 8 {
		return nil, fmt.Errorf("%w: want exactly 8 members", ErrCert)
	}
	var c Cert
	str := func(k string) (string, error) {
		x, ok := o.Get(k)
		s, isStr := x.(string)
		if !ok || !isStr {
			return "", fmt.Errorf("%w: %q must be a string", ErrCert, k)
		}
		return s, nil
	}
	ms := func(k string) (time.Time, error) {
		x, ok := o.Get(k)
		f, isNum := x.(float64)
		if !ok || !isNum || f < 0 || f > maxSafeMillis || f != math.Trunc(f) {
			return time.Time{}, fmt.Errorf("%w: %q must be whole milliseconds", ErrCert, k)
		}
		if f == 0 {
			return time.Time{}, nil
		}
		return time.UnixMilli(int64(f)), nil
	}
	var err error
	if c.Instance, err = str("instance"); err != nil {
		return nil, err
	}
	if c.Subject, err = str("subject"); err != nil {
		return nil, err
	}
	if c.Serial, err = str("serial"); err != nil {
		return nil, err
	}
	if c.Issuer, err = str("issuer"); err != nil {
		return nil, err
	}
	sig, err := str("sig")
	if err != nil {
		return nil, err
	}
	if c.Sig, ok = decodeSig64(sig); !ok {
		return nil, fmt.Errorf("%w: sig must be 64 bytes in base64url", ErrCert)
	}
	if c.NotBefore, err = ms("notBefore"); err != nil {
		return nil, err
	}
	if c.Expiry, err = ms("expiry"); err != nil {
		return nil, err
	}
	rv, _ := o.Get("roles")
	roles, ok := rv.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: roles must be an array", ErrCert)
	}
	for _, r := range roles {
		s, ok := r.(string)
		if !ok {
			return nil, fmt.Errorf("%w: roles must be strings", ErrCert)
		}
		c.Roles = append(c.Roles, Role(s))
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// VerifySignature reports whether Sig is the Issuer's valid (strict, low-S)
// signature over [Cert.SignedBytes]. It does not judge validity times,
// revocation or the chain; a write is judged by [Checker.Authorize].
func (c *Cert) VerifySignature() error {
	pub, err := keys.ParsePublic(c.Issuer)
	if err != nil {
		return fmt.Errorf("%w: issuer: %v", ErrCert, err)
	}
	if !pub.Verify(c.SignedBytes(), c.Sig) {
		return fmt.Errorf("%w: signature does not verify", ErrCert)
	}
	return nil
}
