// Package auth decides who may write what, before anything reaches HAM.
//
// Start with [New] and a [Config], then call [Checker.CheckPut] with every
// parsed put (it judges field by field, as gun does: refused fields are
// dropped, the rest of the message goes on) and [Checker.CheckGet] before
// answering a get. A [Peer] per connection carries the keys it proved with
// the login exchange ([Checker.Challenge], [Respond], [Checker.Login], or
// [Checker.HandleAuth] for the wire form). Package heartbeat asks
// [Checker.Authorize] whether a key holds a role. Writers sign instance
// fields with [SignField] and delegate roles with [IssueCert]. A relay that
// verifies on several cores calls [Checker.Preverify] for each put first,
// on any goroutine, and passes the context it returns to CheckPut in the
// puts' order: the signatures of SEA user-space fields are then verified
// once, ahead, and every other rule is still applied at the put's turn.
//
// # Which rules judge a soul
//
// In this order (gun's order, with instance souls first):
//
//	lum/<I>[/…]   instance namespace of the owner key <I>      (ours, below)
//	~@            the list of aliases                          (gun)
//	~@<alias>     the pubs claiming an alias                   (gun)
//	…~X.Y…        SEA user space of owner X.Y (SEA.opt.pub)    (gun, corrected)
//	…#…           content-addressed                            (gun)
//	anything else Secure mode: refused; Open mode: passed      (gun's secure option)
//
// A soul may also carry gun's "<?N" suffix: data older than N seconds (by
// the relay clock) is refused.
//
// # SEA user space
//
// Values are SEA's signed wrapper, the JSON string
// {":": value, "~": sig, "*": writer, "+": certificate}, where sig is SEA's
// signature (ECDSA P-256 over SHA-256(SHA-256(text)), high-S accepted since
// WebCrypto does not normalise S) of {"#": soul, ".": field, ":": value,
// ">": state}; ~owner.pub is the raw owner key. This is gun's format byte for
// byte (research/gun.md §5), so gun.js clients read what we store. Where gun
// is wrong we are stricter:
//
//   - A writer ("*") other than the owner must carry a valid certificate
//     ("+") signed by the owner. gun.js accepts a wrapper with "*" and no
//     "+", which lets anyone write into anyone's space (gun.md §5.2); we
//     answer "restricted: Certificate required.".
//   - Certificate expiry is judged by the relay clock, and also against the
//     write's claimed state (gun only checks the state, which the writer
//     picks, so a backdated write passes an expired certificate there).
//   - Certificates naming several keys (an array "c") work; npm gun 1241
//     drops them silently.
//   - Path prefixes match whole segments. With path = the soul after its
//     first "/" and t = path + "/" + field (or field alone at the root), a
//     policy {"*": p} matches t == p or t starting with p + "/"; a p that is
//     empty or ends in "/" matches as a plain prefix. So {"*": "inbox"}
//     allows ~o.inbox, ~o/inbox.x and ~o/inbox/y.z, and refuses
//     ~o.inboxEVIL and ~o/inboxEVIL.x, which gun.js accepts. Prefixes on a
//     field alone ({".": {"*": "k"}}) stay plain prefixes.
//   - A policy's "+": "*" (the writer's key must appear) requires the key as
//     a whole "/"-segment of t, on every soul including the root (gun checks
//     substrings and skips the root). The exception is a canonical link,
//     the value {"#": soul + "/" + field} that gun's chain API writes on its
//     way down; it cannot point anywhere else.
//   - Inner values must be Gun values (null, string, boolean, number, link).
//
// Certificates are decoded and verified by package sea; verified ones are
// cached.
//
// # Instance namespaces
//
// An instance (a world) is named by its owner's public key text <I>
// (secp256k1 "k1:…" or P-256 "x.y") and owns every soul lum/<I> and
// lum/<I>/<path>. gun.js does not treat these as user space (no "~"), so
// SEA's firewall ignores them; we judge them. Souls under lum/ holding "~",
// "#", "<?" or empty segments are refused. Every field is a [Wrapper]:
//
//	{":": value, "~": base64url(sig), "*": writer, "+": [cert, …]}
//
// "*" is omitted for the owner and "+" when no certificate is needed. sig is
// a strict low-S ECDSA signature (either curve) over [PutMessage]:
// keys.Message("put", soul, field, JSON.stringify(value), state as a JS
// number), which binds the instance, path, field, value and state.
//
// Role needed per soul (the owner holds every role):
//
//	lum/<I>                 admin    (fields such as name; "private": true makes the instance private)
//	lum/<I>/hb              tick     (the metronome)
//	lum/<I>/log[/…]         tick     (the sequenced log)
//	lum/<I>/clients         tick     (joined clients, written by the sequencer)
//	lum/<I>/in[/…]          message  (external messages; see Config.Inbox)
//	lum/<I>/snap[/…]        snapshot
//	lum/<I>/certs           admin    (field = serial, value = certificate JSON: published certificates)
//	lum/<I>/revoked         admin    (field = serial, value = time in ms or true; never null)
//	lum/<I>/members         admin    (field = member key, value true/false: readers of a private instance)
//	any other lum/<I>/…     admin
//
// A link from a parent to its child, {"#": "lum/<I>/a/b"} in field b of
// lum/<I>/a, needs only the child's role. With [Config.Inbox] set, a node
// lum/<I>/in/<id> is judged as one message in package heartbeat's format
// (the id is the hash of the signed bytes) whose author needs the message
// role.
//
// # Certificates for roles
//
// A [Cert] grants roles in one instance to one subject key (or to every key,
// [AnySubject], never with admin) between NotBefore and Expiry. A chain
// starts with a certificate issued by the owner; each further one is issued
// by the subject of the one before, which must hold admin; at most
// [Config.MaxChainDepth] certificates. Validity is judged by the relay clock
// (and the write's state may not lie after an expiry). The owner (or an
// admin) revokes a certificate by writing its serial to lum/<I>/revoked; the
// revocation applies to every write the relay judges after it, including
// later fields of the same message (revocations in a message are judged
// first). A revoked intermediate revokes the chains through it.
//
// # Login and private instances
//
// A connection proves a key by signing keys.Message("login", nonce, relay
// id, time): the nonce is 32 fresh bytes, good once and on that connection
// only; the relay id ([Config.RelayID]) stops replays to another relay; the
// time and the challenge's age must be within [Config.LoginWindow]. Failed
// logins count strikes; from [Config.MaxLoginStrikes] on, Login also returns
// [ErrTooManyStrikes] and the connection should be closed (1008). The wire
// form is described at [AuthMember].
//
// Reads of every soul of a private instance are served only to a connection
// logged in as the owner or a member. Writes are judged by their signatures
// whether or not the connection logged in, but a refused write to a private
// instance from a connection that is not a member is answered only
// "auth-required: private instance", so strangers learn nothing about it.
//
// # Modes
//
// [Secure] (the zero value, the default) refuses souls that no rule
// protects; [Open] passes them like a stock gun.js relay. The default is
// Secure because an unprotected soul is writable and deletable by anyone:
// Luminary's own data lives in instance namespaces and SEA user space, and
// a relay that also stores other souls must say so (--secure=false).
//
// # Replays
//
// A field whose state and value equal what the graph already holds is an
// exact replay. HAM would make it a no-op; the Checker refuses it first with
// "duplicate: already stored" (before any signature is checked, so replays
// are cheap), and nothing is stored or forwarded. It is not an error: a
// client may treat "duplicate:" as success.
//
// # Trust in the graph
//
// [Config.Lookup] reads revocations, members, the private flag, block lists
// and current values for replay detection. The graph must hold only writes
// that passed a Checker (data a relay loads from its own store at start-up
// was checked when it was written); stored values are not re-verified.
//
// # Refusals
//
// Every refusal is a [*Refusal] with one of four prefixes (see [ErrInvalid]
// and its siblings); [Checker.CheckPut] returns them inside graph.FieldError.
// The wire reasons:
//
//	SEA user space (gun.js strings kept after our prefix)
//	  auth-required: Unverified data.           no signed wrapper (unsigned value)
//	  invalid: Unverified data.                 signature does not verify for the signer ("*" or the owner)
//	  invalid: Account not same!                ~owner.pub is not the owner
//	  invalid: bad value                        the wrapper's ":" is not a Gun value
//	  restricted: Certificate required.         "*" is not the owner and there is no "+" (gun.js: accepted)
//	  restricted: Certificate verification fail. certificate not by the owner, malformed, writer not
//	                                            a certificant, no write policy, or path not allowed
//	  restricted: Certificate expired.          past "e" by the relay clock or by the write's state
//	  restricted: Path "<p>" or key "<k>" must contain string "<pub>".   policy "+" rule
//	  restricted: Certificant <pub> blocked.    write block list ("wb")
//	Alias lists and content addressing (gun.js strings)
//	  invalid: Data must exist!                 ~@ field is falsy
//	  invalid: Alias must exist!                ~@<alias> field is falsy
//	  invalid: Alias not same!                  the link does not match the field
//	  invalid: Data hash not same as hash!      field name is not the SHA-256 of the value
//	Other souls
//	  restricted: Soul missing public key at '<field>'.   Secure mode (gun's secure string)
//	  invalid: Data older than the soul's <? limit.
//	Instance namespaces
//	  auth-required: unsigned                   the value is not a signed wrapper
//	  auth-required: private instance           refused write or read by a non-member connection
//	  invalid: instance soul                    bad lum/ soul
//	  invalid: public key                       instance id or writer key does not parse
//	  invalid: bad signed wrapper               unknown member or missing ":"
//	  invalid: bad value                        ":" is not a Gun value
//	  invalid: signature encoding               "~" not 64 bytes of base64url, r or s zero or ≥ n
//	  invalid: non-canonical signature          high-S twin
//	  invalid: signer mismatch                  does not verify for the claimed writer (also: shuffled)
//	  invalid: certificate                      certificate JSON malformed, or a published one for
//	                                            another instance or serial
//	  invalid: revocation must name a serial and carry a time or true
//	  restricted: not authorised to <role>      no certificate, or none granting the role
//	  restricted: certificate expired
//	  restricted: certificate not yet valid
//	  restricted: certificate for another instance
//	  restricted: certificate issuer is not the instance owner
//	  restricted: certificate chain broken
//	  restricted: certificate issuer lacks the admin role
//	  restricted: certificate revoked
//	  restricted: certificate chain too deep
//	  restricted: certificate signature does not verify
//	  restricted: certificate subject is not the writer
//	  (Config.Inbox: its own reasons, e.g. "invalid: id mismatch", "invalid: signature")
//	Every soul
//	  duplicate: already stored                 exact replay (same state and value)
//	  restricted: could not check (internal error)   a graph lookup failed (fail closed)
//	Login (all auth-required:)
//	  auth-required: login: no challenge pending (ask for one; each is good once)
//	  auth-required: login: challenge mismatch
//	  auth-required: login: response is for another relay
//	  auth-required: login: challenge expired
//	  auth-required: login: stale response time
//	  auth-required: login: public key
//	  auth-required: login: bad signature
//	  auth-required: login: malformed response
//	  auth-required: login: too many keys on this connection
//	  auth-required: login: not offered by this relay
//
// gun.js clients only log an ack's err, so the prefix does not disturb them;
// machines branch on the prefix ([PrefixOf]).
//
// # Wiring the checker into a relay
//
// Package api declares the Guard it calls before every merge; the adapter is
// small and is exercised end to end in api/auth_interop_test.go (authGuard
// keeps each connection's *Peer in api.PeerInfo.Values; authHandler serves
// "auth" wire messages and closes the connection with 1008 when a reply says
// Close). A relay also sets:
//
//   - Config.RelayID to the relay key's public text (login binds to it);
//   - Config.Lookup to StoreLookup(db) for a *graph.DB;
//   - Config.Inbox to a function that decodes and verifies heartbeat messages
//     written to lum/<I>/in/<id> (auth cannot import heartbeat; see
//     heartbeatInbox in auth/inbox_test.go for the exact function);
//   - heartbeat's Authorizer to
//     heartbeat.AuthorizerFunc(func(ctx, i, k, r, at) error {
//     return c.Authorize(ctx, i, k, Role(r), at) }).
//
// Send refused[i].Err.Error() on the wire (the *Refusal text) rather than the
// FieldError text, so that gun's exact strings follow our prefix.
package auth
