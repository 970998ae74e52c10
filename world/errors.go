package world

import "errors"

// Errors callers branch on. Those a relay sends on the wire start with the
// machine-readable prefix ("invalid:", "restricted:"); the others are for
// members and the command line.
var (
	// ErrEnvelope is wrapped by every structural refusal of an envelope
	// (reliability.md table A row 27): unknown version or kind, a nonce that
	// is not 24 bytes, a ciphertext shorter than the 16-byte tag (or than
	// tag plus inner signature), a zero or oversized epoch, non-canonical
	// encoding. A relay checks only this; it cannot and need not decrypt.
	ErrEnvelope = errors.New("invalid: envelope")

	// ErrStaleEpoch is wrapped (together with ErrEnvelope) when a private
	// instance receives an envelope under a key epoch other than its
	// current one: after a rotation, nothing may be written that a removed
	// member could read.
	ErrStaleEpoch = errors.New("stale key epoch")

	// ErrDecrypt is the one opaque error for a ciphertext that does not
	// authenticate: tampered bytes, another key, or associated data that
	// does not match (another instance, epoch, sender, kind or id). It
	// carries no detail on purpose.
	ErrDecrypt = errors.New("world: message authentication failed")

	// ErrUnknownEpoch is returned when an envelope names a key epoch the
	// keyring does not hold: a member removed before that epoch, or a
	// member added after it without history.
	ErrUnknownEpoch = errors.New("world: no key for this epoch")

	// ErrSender is returned when a ciphertext decrypts but the sender's
	// signature inside it does not verify: a member holding the content key
	// tried to pass a message off as someone else's.
	ErrSender = errors.New("world: inner signature does not verify")

	// ErrWrappedKey is wrapped by every structural refusal of a wrapped key.
	ErrWrappedKey = errors.New("invalid: wrapped key")

	// ErrNotMember is returned when a key has no wrapped content key, or
	// when a membership change names a key that is not a member.
	ErrNotMember = errors.New("world: not a member")

	// ErrRecord is wrapped by refusals of membership records that do not
	// parse, are not signed by the owner or an admin, or contradict each
	// other.
	ErrRecord = errors.New("world: bad record")

	// ErrParams is returned for password-world KDF parameters outside the
	// accepted range (the cap protects joiners from a hostile world root
	// demanding hours of work or gigabytes of memory).
	ErrParams = errors.New("world: password KDF parameters out of range")
)
