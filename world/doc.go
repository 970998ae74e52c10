// Package world holds Luminary's private worlds: membership, content keys,
// encrypted payloads, key rotation when a member leaves, and password
// worlds. A relay carrying a private world (a Luminary relay or any Gun
// relay) stores and forwards only ciphertext; only members can read, and
// only members holding a valid certificate can write.
//
// Start with [Create] (the owner makes its instance a private world),
// [AddMember] and [RemoveMember] over a [Store] ([DBStore] on a graph;
// client.Client.WorldStore through a running relay), and
// [Load] to read the membership ([World]) and a member's [Keyring]. Members
// send with [SealMessage] and read log entries with [Keyring.OpenEntry];
// snapshots go through [SealSnapshot] and [Keyring.OpenSnapshot], private
// fields through [SealField] and [Keyring.OpenField]. A relay checks what
// arrives with a [Guard] (no key needed). [PasswordWorld] derives a world
// from a name and a password instead of keys.
//
// # What the relay sees
//
// A relay sees: the instance id (the owner's key), member keys and roles,
// certificates, revocations, the key epoch, wrapped keys (useless without a
// member's private key), ticks (time is not secret; they stay signed and
// readable), every entry's author, timestamp, nonce, sequence number and
// Croquet time, payload and snapshot sizes and timing, join/leave entries
// and their optional client info (do not put secrets there). It does not
// see: message payloads, snapshot data, or private fields.
//
// # Content keys and epochs
//
// Each key epoch e ≥ 1 of an instance has a 32-byte random secret (a
// [ContentKey]). Subkeys are derived with HKDF-SHA256 (no salt):
//
//	payload key   = HKDF(secret, info = M("world.key", "payload",        I, be64(e)))
//	snapshot key  = HKDF(secret, info = M("world.key", "snapshot",       I, be64(e)))
//	snap-IV key   = HKDF(secret, info = M("world.key", "snapshot-nonce", I, be64(e)))
//
// where M is [keys.Message] (the prefix "luminary/v1/", the label, NUL,
// then each part as a 4-byte big-endian length and its bytes), I is the
// instance id text and be64 an 8-byte big-endian integer. Epochs are
// integers in [1, 2^53−1].
//
// # Envelopes
//
// The AEAD is XChaCha20-Poly1305 (24-byte nonce, 16-byte tag). An
// [Envelope] has a text form, used for message payloads and field values:
//
//	"lum1" "." kind "." epoch "." base64url(nonce) "." base64url(ciphertext)
//
// kind is "m" (message), "d" (data) or "s" (snapshot), epoch is decimal
// without leading zeros, base64url is unpadded and canonical (no CR/LF).
// The binary form, used for snapshot blobs, is
//
//	0x01 ‖ kind byte (1 m, 2 d, 3 s) ‖ be64(epoch) ‖ nonce (24) ‖ ciphertext
//
// The instance and the sender are not in the envelope: they are in what
// carries it (a heartbeat message's instance and author; a field's soul and
// signed writer) and bound by the associated data, which is
//
//	AAD = M("world.payload", [0x01, kind], I, be64(e), sender, id parts…)
//
// with these id parts per kind:
//
//	message   be64(ts), nonce      (the heartbeat message's ts in ms and its nonce)
//	data      soul, field
//	snapshot  be64(seq)            (sender is empty)
//
// For messages and data, the plaintext under the AEAD is the sender's
// 64-byte signature followed by the payload, the signature covering
//
//	M("world.inner", [0x01, kind], I, be64(e), sender, id parts…, payload)
//
// and the nonce is random. So: a member verifies the sender after
// decrypting ([ErrSender] otherwise); a member who strips someone's outer
// signature and re-signs the envelope as its own fails the AAD (the sender
// is bound); an envelope under another message (other ts, nonce, author or
// instance), field or epoch fails to open ([ErrDecrypt], one opaque error);
// resending the same message is the same message id, which the log refuses
// as "duplicate:". The outer signature is the ordinary one of package
// heartbeat (or auth's signed wrapper for fields), over the envelope text,
// which the relay verifies before it stores or sequences anything.
//
// The message id cannot be bound before sequencing because it is the hash
// of the signed message (including the payload); the envelope binds the
// message's ts and nonce instead, which together with the author and the
// payload determine that id.
//
// Snapshots are deterministic so that honest members' votes (over the
// hash of the blob) agree: the nonce is the first 24 bytes of
// HMAC-SHA256(snap-IV key, M("world.snap-iv", AAD) ‖ data), and there is no
// sender signature inside (the votes are signed). [Keyring.OpenSnapshot]
// recomputes the nonce and refuses a blob that is not exactly this
// encryption.
//
// A relay checks envelopes structurally ([ParseEnvelope],
// [ParseEnvelopeBinary], reliability.md table A row 27): unknown version or
// kind, nonce not 24 bytes, ciphertext shorter than the tag (or, for
// messages and data, than tag plus signature), bad epoch or encoding all
// give "invalid: envelope: <reason>" ([ErrEnvelope]) and nothing is stored.
// [Guard] adds: in a private instance every message payload, snapshot and
// lum/<I>/data field must be an envelope of the right kind under the
// current epoch ([ErrStaleEpoch]), so nothing can be written after a
// rotation that a removed member could read.
//
// # Wrapped keys
//
// A content key reaches a member as a [WrappedKey]: an ephemeral key pair
// on the member's curve (secp256k1 for "k1:" keys, P-256 for SEA "x.y"
// keys), Z = ECDH(ephemeral, member) (32-byte x coordinate), and
//
//	info = M("world.wrap", I, be64(e), ephemeral pub text, member pub text)
//	kek  = HKDF-SHA256(Z, salt none, info)
//	ct   = XChaCha20-Poly1305(kek).Seal(random nonce, secret, AAD = info)
//
// with the text form {"v":1,"epk":"<ephemeral pub>","nonce":"<24 B>","ct":"<48 B>"}
// (base64url). ECDH costs about 0.1 ms, so it happens once per member and
// epoch, never per message.
//
// # Records
//
// Membership is data in the instance namespace of package auth, every field
// in auth's signed wrapper, written by the owner or an admin (auth demands
// the admin role for all of these souls):
//
//	lum/<I>            private = true
//	lum/<I>/world      v = 1, epoch = current epoch, created = ms; password = KDF info (password worlds)
//	lum/<I>/members    <member> = true | false          (auth's access list: who may read)
//	lum/<I>/roster     <member> = {"v":1,"roles":[…],"certs":[serials],"by":"<admin>","at":ms,
//	                               "epoch":n,"removed":ms or 0,"removedBy":"<admin>" or ""}
//	lum/<I>/keys/<e>   <member> = wrapped key of epoch e (the owner has one too)
//	lum/<I>/certs      <serial> = certificate JSON (auth.Cert)
//	lum/<I>/revoked    <serial> = revocation time in ms
//
// One change (a world created, a member added or removed, a rotation, a
// password set) is one put of all its records. A relay (package service)
// judges that put's record fields per instance as a whole: when one is
// refused, other than as an exact duplicate, it refuses the others too
// ("restricted: refused with the rest of its change", or the first
// refusal's "auth-required: private instance"), so a change with one field
// the relay refuses (a certificate signed by the wrong key, a revocation in
// the same put that cuts the writer's own chain) leaves nothing half
// written.
// [RecordInstance] names these souls.
//
// [Load] verifies every record it uses (signature, and the writer's admin
// chain at the record's state; wrapped keys when [World.Keyring] unwraps
// them) and leaves out what fails ([World.Rejected]).
//
// Adding a member ([World.PlanAdd]) issues it an auth certificate for its
// roles (default message and snapshot), publishes it, lists it in members
// and roster, and wraps the current key for it (and, with
// [AddOptions.History], every older key the admin holds; a late joiner
// needs at least the epoch of the latest snapshot).
//
// Removing a member ([World.PlanRemove]) revokes every certificate issued
// to it, sets members to false and marks the roster, and rotates: a new
// epoch key wrapped for the owner and every remaining member, then the
// world record's epoch. The relay then refuses the removed member's writes
// ("restricted: certificate revoked"; on its own connection
// "auth-required: private instance") and reads, and it never receives the
// new key. Old epochs stay readable to everyone who held them, including
// the removed member (it could read them before; nothing is re-encrypted).
// Removing an admin also invalidates the certificates that admin issued.
//
// # Password worlds
//
// For people who share a link rather than keys, [PasswordWorld] derives a
// world from a name and a password, as Croquet users expect:
//
//	salt  = SHA-256(M("world.salt", name))[:16]
//	seed  = Argon2id(password, salt, t, m, p, 32)     defaults t=3, m=64 MiB, p=1;
//	                                                  caps t ≤ 10, m ≤ 256 MiB, p ≤ 4
//	owner = first valid scalar of HKDF(seed, M("world.password", "owner", curve, name, be32(counter)))
//	key   = epoch 1, secret HKDF(seed, M("world.password", "content", I))
//
// Everyone who knows the password holds the owner key, so the instance is
// the derived owner's and no key needs wrapping. The salt depends on the
// name only, so name and password are all a joiner needs; the parameters are
// published in the world record. Password holders log in to the relay with
// the derived owner key, which auth serves private instances to.
//
// What a password world does not protect, compared with key-based
// membership:
//
//   - Identity: every password holder holds the owner key. Anyone with the
//     password can write, issue certificates and sign as the owner; the
//     inner signature proves "some password holder", not a person.
//   - Removal: there is none. Revoking someone means choosing a new
//     password, which is a new world (a new instance id); old data stays
//     readable to everyone who knew the old password.
//   - Offline guessing: the instance id is a public function of name and
//     password, so anyone can test guesses offline against it without
//     contacting a relay. Argon2id makes each guess cost about 64 MiB and
//     0.1–1 s; a weak password still falls. The name-derived salt also
//     lets an attacker precompute guesses for a given name before the
//     world exists. Use long random passwords (a link with 128 random
//     bits is safe; a human word is not).
//   - Forward secrecy: a leaked password exposes every message ever sent.
//
// # Errors
//
// [ErrEnvelope] ("invalid: envelope: …") is the relay's refusal of a
// malformed envelope, [ErrStaleEpoch] joins it for an old epoch;
// [ErrDecrypt] is the one opaque decryption failure, [ErrUnknownEpoch] an
// epoch the member lacks, [ErrSender] an inner signature that fails;
// [ErrWrappedKey], [ErrRecord], [ErrNotMember], [ErrNotWorld] and
// [ErrParams] concern membership records and parameters.
//
// # API at a glance
//
//	Keys       ContentKey: NewContentKey, Instance, Epoch, Equal; Keyring: NewKeyring,
//	           Add, Key, Current, Epochs, OpenMessage, OpenEntry, OpenField, OpenSnapshot
//	Sealing    SealMessage, SealField, SealSnapshot
//	Envelopes  Envelope, Kind (KindMessage, KindData, KindSnapshot), ParseEnvelope,
//	           ParseEnvelopeBinary, CheckPayload
//	Wrapping   WrappedKey, Wrap, Unwrap, ParseWrappedKey
//	Membership World: Load, Members, Member, Active, HasKey, Keyring, AdminChain, Revoked,
//	           PlanAdd, PlanRemove; PlanCreate; Create, AddMember, RemoveMember;
//	           Admin, AddOptions, Member, Store, Reader, DBStore; soul helpers
//	           RootSoul, WorldSoul, MembersSoul, RosterSoul, KeysSoul, CertsSoul, RevokedSoul
//	Relay      Guard: NewGuard, Private, Epoch, CheckMessage, CheckSnapshot, CheckField, Inbox
//	Passwords  PasswordWorld, PasswordKeys, PasswordParams, PasswordInfo, PasswordSalt,
//	           PlanCreatePassword, CreatePassword
package world
