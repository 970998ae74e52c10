package auth

import (
	"errors"
	"strings"
)

// Wire prefixes of refusal reasons. Every reason the Checker produces starts
// with exactly one of them, followed by a space and a human-readable text;
// see the table in the package documentation.
const (
	// PrefixInvalid marks input that is malformed or whose signature does not
	// verify: the sender must fix the bytes, not its permissions.
	PrefixInvalid = "invalid:"
	// PrefixRestricted marks a well-formed, correctly signed write that the
	// signer is not permitted to make (no or bad certificate, wrong role,
	// expired, revoked, secure mode).
	PrefixRestricted = "restricted:"
	// PrefixAuthRequired marks a write that carries no signature where one is
	// required, any access to a private instance by a connection that has not
	// logged in as a member, and every failed login.
	PrefixAuthRequired = "auth-required:"
	// PrefixDuplicate marks an exact replay of a field the relay already
	// holds (same state, same value). It is not an error: nothing changes.
	PrefixDuplicate = "duplicate:"
)

// Sentinel errors, one per prefix. Every *Refusal unwraps to one of them, so
// callers branch with errors.Is(err, auth.ErrRestricted).
var (
	ErrInvalid      = errors.New("auth: invalid")
	ErrRestricted   = errors.New("auth: restricted")
	ErrAuthRequired = errors.New("auth: auth-required")
	ErrDuplicate    = errors.New("auth: duplicate")
)

// ErrTooManyStrikes is returned (joined with the login refusal) by
// [Checker.Login] once a connection has failed to log in
// [Config.MaxLoginStrikes] times; the caller should close the connection
// (WebSocket status 1008, policy violation).
var ErrTooManyStrikes = errors.New("auth: too many failed logins")

// Refusal is the reason a field, a read or a login was refused. Its Error
// method returns the wire text: Prefix, a space, Text.
type Refusal struct {
	Prefix string // one of the Prefix* constants
	Text   string // human-readable; gun's own string where gun has one
}

// Error returns the wire text, for example
// "restricted: Certificate verification fail.".
func (r *Refusal) Error() string { return r.Prefix + " " + r.Text }

// Unwrap returns the sentinel for the prefix.
func (r *Refusal) Unwrap() error {
	switch r.Prefix {
	case PrefixInvalid:
		return ErrInvalid
	case PrefixRestricted:
		return ErrRestricted
	case PrefixAuthRequired:
		return ErrAuthRequired
	case PrefixDuplicate:
		return ErrDuplicate
	}
	return nil
}

// IsPrivateRefusal reports whether err is the answer given to a connection
// that is not a member of a private instance ("auth-required: private
// instance"), which tells it nothing else.
func IsPrivateRefusal(err error) bool {
	var r *Refusal
	return errors.As(err, &r) && r.Prefix == PrefixAuthRequired && r.Text == txtPrivate
}

func invalid(text string) *Refusal      { return &Refusal{PrefixInvalid, text} }
func restricted(text string) *Refusal   { return &Refusal{PrefixRestricted, text} }
func authRequired(text string) *Refusal { return &Refusal{PrefixAuthRequired, text} }

// PrefixOf returns the prefix of a wire reason ("invalid:", …), or "" if the
// reason carries none of the four prefixes.
func PrefixOf(reason string) string {
	for _, p := range [...]string{PrefixInvalid, PrefixRestricted, PrefixAuthRequired, PrefixDuplicate} {
		if strings.HasPrefix(reason, p) {
			return p
		}
	}
	return ""
}

// Reasons texts. The gun.js strings (gun.md §5.3) are kept byte for byte
// after our prefix so that a gun.js client logs what it would log against a
// stock relay.
const (
	// gun.js strings.
	txtUnverified   = "Unverified data."
	txtAccount      = "Account not same!"
	txtCertExpired  = "Certificate expired."
	txtCertFail     = "Certificate verification fail."
	txtAliasNotSame = "Alias not same!"
	txtAliasExist   = "Alias must exist!"
	txtDataExist    = "Data must exist!"
	txtHash         = "Data hash not same as hash!"

	// Ours, for cases gun.js lets through or drops silently.
	txtCertRequired = "Certificate required."
	txtForget       = "Data older than the soul's <? limit."
	txtInternal     = "could not check (internal error)"

	// Instance namespaces.
	txtUnsigned       = "unsigned"
	txtWrapper        = "bad signed wrapper"
	txtSigEncoding    = "signature encoding"
	txtSigNonCanon    = "non-canonical signature"
	txtSignerMismatch = "signer mismatch"
	txtPublicKey      = "public key"
	txtInstanceSoul   = "instance soul"
	txtPrivate        = "private instance"
	txtCertificate    = "certificate"
	txtRevocation     = "revocation must name a serial and carry a time or true"
	txtValue          = "bad value"

	txtCertExpiredLum  = "certificate expired"
	txtCertNotYet      = "certificate not yet valid"
	txtCertOtherInst   = "certificate for another instance"
	txtCertIssuer      = "certificate issuer is not the instance owner"
	txtCertChain       = "certificate chain broken"
	txtCertNotAdmin    = "certificate issuer lacks the admin role"
	txtCertRevoked     = "certificate revoked"
	txtCertTooDeep     = "certificate chain too deep"
	txtCertSignature   = "certificate signature does not verify"
	txtCertSubject     = "certificate subject is not the writer"
	txtNotAuthorisedTo = "not authorised to "

	txtDuplicate = "already stored"
)
