// Package rest is the relay's HTTP API on chi: hosting and listing worlds,
// world info, presence, history by range and export, verification of
// messages and exported histories (provenance), certificates, user keys,
// joining open (demo) worlds, and the live status the status page shows.
// It is described by an OpenAPI 3.0.3 document ([OpenAPI], served at
// /openapi.yaml) that a test checks against the real routes and answers.
//
// Start with [New]: give it a [Config] holding the [Service] (what the
// handlers need from the running relay) and the relay's key, then call
// [API.Mount] on the server's chi router and [API.Close] at shutdown.
// Clients sign administrative requests with [SignRequest].
//
// # Routes
//
//	GET  /.well-known/luminary          relay identity, version, features, limits     public
//	GET  /openapi.yaml                  this API's OpenAPI document                   public
//	GET  /api/status                    live numbers per world (status page)          public (private worlds: relay admins)
//	GET  /api/status/stream             the same as Server-Sent Events                public (public worlds only)
//	GET  /api/worlds                    list worlds                                   public (private worlds: their members)
//	POST /api/worlds                    host a world                                  signed: relay admin (or owner, OpenHosting)
//	GET  /api/worlds/{world}            info: rate, members, metronome, time, seq     public world / signed member
//	GET  /api/worlds/{world}/presence   present clients                               public world / signed member
//	GET  /api/worlds/{world}/history    entries and ticks by seq or time range        public world / signed member
//	GET  /api/worlds/{world}/export     history as JSON lines (heartbeat.Export)      public world / signed member
//	POST /api/worlds/{world}/certs      issue (relay signs) or publish a certificate  signed: world admin
//	POST /api/worlds/{world}/join       join an open world with a key (demo page)     public, rate-limited
//	POST /api/verify/message            verify a signed message, find it in the log   public, rate-limited
//	POST /api/verify/history            verify an export, report provenance           public, rate-limited, 16 MiB
//	POST /api/keys                      new key pair, encrypted to a password         public, rate-limited, bounded concurrency
//
// {world} is an instance id (the owner's public key text) or the world's
// relay-local alias; anything but 1 to 128 characters of base64url, ':' and
// '.' (not starting with '.') is refused as invalid, so "..", encoded
// separators and NUL never reach the Service. The package reads no files.
//
// A world admin is a relay admin ([Config.Admins]), the world's owner, or a
// key the Service authorises for auth.RoleAdmin (a certificate chain). A
// member of a private world is its owner, a listed member or an admin.
//
// # Signed requests
//
// No bearer secrets, no keys in URLs: a client adds the headers
// Luminary-Key, Luminary-Date (RFC 3339 or Unix ms), Luminary-Nonce and
// Luminary-Signature, a strict low-S signature over
//
//	keys.Message("http", method, path+query as sent, date, nonce, SHA-256(body))
//
// ([RequestMessage]). The relay refuses dates more than [Config.AuthWindow]
// (60 s) from its clock and (key, nonce) pairs it has seen in that window;
// it remembers nonces only after the signature verified, in a bounded cache
// ([Config.MaxNonces]). Reads may be signed (required for private worlds);
// a signature that is present is always checked. Known-answer vectors are
// in testdata/signature_vectors.json.
//
// # Requests and answers
//
// Bodies are capped ([Config.MaxBodyBytes], 1 MiB; a declared or actual
// larger body is 413 too_large before anything is parsed), must carry the
// documented Content-Type (else 415), and are parsed strictly: invalid
// UTF-8, lone surrogates, duplicate or case-variant member names, unknown
// members and wrong types are bad_json; unknown query parameters are
// invalid. Answers are JSON (the export is application/x-ndjson, the stream
// text/event-stream), always with X-Content-Type-Options: nosniff and, under
// /api, Cache-Control: no-store; encoding/json escapes '<', '>' and '&', so
// stored text is never served as markup. Refusals are
//
//	{"error": {"code": "...", "message": "..."}}
//
// with a stable [Code]: bad_json, invalid (400), unauthenticated (401),
// forbidden, not_member (403), not_found (404), method_not_allowed (405),
// conflict (409), too_large (413), unsupported_media_type (415),
// rate_limited (429, with Retry-After), internal (500; the detail is logged,
// not sent), unavailable (503). [CodeOf] maps Service errors.
//
// # Limits
//
// Per-client token buckets (keyed by the connection's address, never by
// X-Forwarded-For) guard the expensive public routes: user keys (scrypt),
// joins (a certificate and a log entry each) and verification; user keys
// and history verification also have a concurrency bound, and status
// streams a count bound. Every bound is a [Config] field.
//
// # User keys
//
// POST /api/keys generates a key pair and answers it as a key file in
// package keys' format (scrypt + XChaCha20-Poly1305, the format `luminary
// keys new` writes) encrypted to the caller's password, with the public
// key. Nothing is stored; neither password nor key is logged; the request
// body is cleared after use (the decoded Go string cannot be). Serve it
// over TLS only.
package rest
