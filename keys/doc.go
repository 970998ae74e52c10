// Package keys holds Luminary's key pairs: generate, parse, print, sign,
// verify and ECDH on secp256k1 (Luminary's native curve, via decred) and on
// P-256 (the curve of gun.js SEA), behind one small API.
//
// Start with [Generate] (or [ParsePrivate], [ReadFile]) for a [Private] key
// and [ParsePublic] (or a [Cache]) for a [Public] key. Sign with
// [Private.Sign] over bytes built by [Message], and check with
// [Public.Verify]. [Pair] is a SEA pair (signing key plus ECDH key); package
// sea builds SEA's envelopes on top of this package.
//
// # Text forms
//
// Public keys:
//
//	secp256k1  "k1:" + base64url(33-byte compressed point), no padding: 47 chars
//	           e.g. k1:A3qz7Xb3bFjQ…   (the prefix makes it impossible to confuse with SEA)
//	P-256      SEA's "x.y": base64url(32-byte x) "." base64url(32-byte y): 87 chars
//
// Private keys (secret; [Private.String] never prints them, [Private.Encode]
// does):
//
//	secp256k1  "k1priv:" + base64url(32-byte scalar): 50 chars
//	P-256      SEA's "priv" (the JWK "d"): base64url(32-byte scalar): 43 chars
//
// Parsing is strict: exact length, canonical unpadded base64url (one
// encoding per value), points on the curve, scalars in [1, n-1]. Public key
// errors wrap [ErrPublicKey] ("invalid: public key").
//
// # Signatures
//
// A signature is 64 bytes r‖s (32 bytes each, big-endian) over SHA-256 of
// the message; DER is never used on the wire. [Private.Sign] is
// deterministic (RFC 6979) and always low-S on both curves. [Public.Verify]
// is strict: exact length, r and s in [1, n-1], and s ≤ n/2, so the high-S
// twin (r, n−s) of a valid signature is refused. [Public.VerifyLax] drops
// only the low-S rule, for gun.js SEA signatures on P-256 (see its doc).
//
// Luminary-native signatures cover [Message](label, parts...): the prefix
// "luminary/v1/", a label naming the purpose, a NUL, then length-prefixed
// parts. Packages that sign define their labels as constants next to their
// use.
//
// # ECDH
//
// [Public.ECDH] returns the 32-byte x coordinate of the shared point. For
// P-256 it uses crypto/ecdh (constant time). For secp256k1 it uses decred's
// GenerateSharedSecret, whose scalar multiplication is not constant time;
// Luminary does not use secp256k1 ECDH with long-term keys on any path an
// attacker can time, and callers should keep it that way.
//
// # Key files
//
// [WriteFile] and [ReadFile] store one private key encrypted with a
// password: scrypt (work factor capped at [MaxLogN]) and
// XChaCha20-Poly1305, written atomically with mode 0600. [ReadFile] refuses
// files readable by group or others ([ErrInsecureFile]) and reports a wrong
// password as [ErrWrongPassword] without detail. The format is described at
// the top of keyfile.go. [ReadPublicFile] reads the public key from a key
// file without the password.
//
// # Secrets
//
// Nothing in this package logs. [Private] implements fmt.Stringer,
// fmt.GoStringer and slog.LogValuer with redacted output. Buffers holding
// secrets are cleared where this package owns them; Go gives no guarantee
// beyond that (the libraries and the garbage collector may keep copies).
package keys
