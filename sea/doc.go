// Package sea reads and writes gun.js SEA's formats byte for byte: signed
// envelopes, encrypted envelopes, proof of work, shared secrets and
// certificates, on P-256 (as gun.js does) and on secp256k1 (Luminary's
// native curve, same formats).
//
// Start with [Sign] and [Verify] for envelopes `SEA{"m":…,"s":…}`, or
// [ParseEnvelope] and [Envelope.Verify] to keep the parsed value, the exact
// signed text and the signature. Keys come from package keys
// ([keys.ParsePrivate], [keys.ParsePublic], [keys.ParseSEAPair]).
//
// # Signatures
//
// SEA signs the text of m: m itself when it is a string, otherwise
// JSON.stringify(m) as written by internal/jsjson, with object members in
// JavaScript's order (array-index names such as "2" first, ascending, then
// insertion order). The ECDSA digest is SHA-256(SHA-256(text)), the
// signature is 64 bytes r‖s in padded standard base64 (88 characters). The
// verifier picks the curve from the public key's text form: SEA "x.y" is
// P-256, "k1:…" is secp256k1. P-256 signatures made by gun.js are often
// high-S, so they are verified with [keys.Public.VerifyLax]; secp256k1
// envelopes are only ever made by Luminary and must be low-S. Signatures
// made here are deterministic (RFC 6979) and low-S on both curves.
//
// Strings given to [Sign] are decoded first, as gun.js does: "123" signs
// the number 123 and `{"b":2}` an object. JSON that only JavaScript's
// lenient JSON.parse accepts (duplicate names, lone surrogates, numbers
// beyond float64) is refused instead of being signed differently.
// [SignValue] and [VerifyValue] handle bare signatures (the "~" member of
// gun.js user-space wrappers) over a value.
//
// gun.js's legacy fallbacks (SEA.opt.fallback: 2019 encodings, signatures
// read as UTF-8, Node's lenient base64) are not accepted: envelopes must be
// in the current format, which is the only one gun.js 0.2020.1241 writes.
//
// # Encryption
//
// [Encrypt] and [Decrypt] use SEA's AES-256-GCM format: a 9-byte salt, a
// 15-byte IV and the key SHA-256(UTF-8(passphrase + latin1(salt))). This
// format is gun.js's; its key derivation is weak for human passphrases, so
// use passphrases from [Work] (PBKDF2, 100 000 rounds) or [Secret] (ECDH).
// Once an envelope is well formed, every failure is the opaque [ErrDecrypt].
//
// # Certificates
//
// [Certify] makes gun.js certificates (members c, e, r, w, rb, wb in that
// order); [ParseCertificate] or [DecodeCertificate] read them and
// [Certificate.Verify] checks the authority's signature.
// [Certificate.Allows] and [Certificate.Expired] answer the certificant and
// expiry questions; path policies are left to package auth.
//
// # Limits
//
// Every text is bounded by [MaxEnvelopeSize] and values by a nesting depth
// of 64. Parsers are strict: unknown or duplicate members, invalid UTF-8
// and non-canonical base64 are refused.
package sea
