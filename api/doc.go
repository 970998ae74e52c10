// Package api is Luminary's outside world: the Gun wire relay at /gun
// (gorilla/websocket), outbound peering with other Gun relays, and the HTTP
// routes /healthz, /readyz and /metrics (chi).
//
// Start with [NewServer]: give it a [Config] holding the graph.DB to serve,
// and mount the returned [Server] (an http.Handler) on an http.Server with
// a ReadHeaderTimeout. Call [Server.Start] to dial the configured peers and
// [Server.Shutdown] to stop (it closes the WebSockets, which
// http.Server.Shutdown does not track). Policy plugs in through
// [Config.Guard] (what a peer may write and read) and [Config.Handlers]
// (extra message types such as a login exchange); both see the connection
// as a [PeerInfo].
//
// # Wire semantics
//
// The relay speaks gun's DAM wire protocol (gun 0.2020.1241) so unmodified
// gun.js peers interoperate:
//
//   - On connect it greets with {"#":id,"dam":"?","pid":pid} and answers a
//     peer's "?" (one without "@") with its own pid. "dam" messages are
//     never data.
//   - A frame is one message or a JSON array of messages; "[]" is a
//     keep-alive, sent to every connection every Limits.KeepAlive (20 s)
//     and ignored when received. Outgoing messages that are queued together
//     are sent as one array frame, as gun does.
//   - Message ids ("#") are remembered for at least Limits.DedupWindow (9 s);
//     a repeated id is dropped silently, as gun does.
//   - get {"#":soul} or {"#":soul,".":field} is answered with
//     {"#":id,"@":getId,"put":{soul:node}} (only the asked field for a field
//     get; a LEX condition {"*":prefix}, {"=":name}, {">":from,"<":to} on
//     "." filters the fields) or, when nothing is known, with
//     {"#":id,"@":getId}. Nodes with more than Limits.MaxReplyFields fields
//     are answered in chunks chained with "%". A get also subscribes the
//     connection to that soul (or field) for as long as the connection
//     lives; gun has no unsubscribe.
//   - put is validated (graph.ParsePut), checked by the Guard, merged with
//     HAM and made durable by graph.DB, and only then acknowledged with
//     {"#":id,"@":putId,"ok":true}. The fields HAM accepted are pushed as
//     one frame {"#":putId,"><":peers,"put":{...}}, serialized once and
//     shared, to every other connection subscribed to them (a field
//     subscriber gets only its fields) and to the outbound peer links;
//     never back to the sender nor to peers named in the put's "><".
//   - A put carrying "@" is a reply to a get this relay forwarded: it is
//     merged (and pushed) but not acknowledged. Acks ("@" without put) are
//     accepted and not routed further: every put is acknowledged by the
//     relay that received it.
//   - Unknown members are ignored; a message that is neither dam, get, put,
//     an ack, nor claimed by a Config.Handlers entry is answered with
//     "invalid: unknown message type".
//
// # Where we are stricter than gun
//
//   - Gun sends no reply at all for a structurally invalid put; Luminary
//     answers {"#":id,"@":putId,"err":"invalid: ..."}, the reason naming the
//     problem: "invalid: soul not same", "invalid: no state",
//     "invalid: bad state", "invalid: bad value", "invalid: bad node",
//     "invalid: too many keys", "invalid: too large",
//     "invalid: state in future" (a state beyond graph.DBConfig.MaxFuture:
//     no timer or queue entry is made). Nothing of a refused put is stored.
//     A structurally invalid put also counts as a strike.
//   - A put of which some fields were refused (by the Guard or the DB) is
//     answered with err (the first refusal's reason, and how many more);
//     the accepted fields are stored, since every field is its own register
//     in gun's model.
//   - Fields whose state is slightly ahead of our clock (within
//     graph.DBConfig.MaxFuture) are held back by the DB and acknowledged
//     with ok at once, as gun acks the rest of such a put; they are in
//     memory only until the clock reaches them.
//   - Frames are parsed strictly (internal/jsjson). Invalid UTF-8, lone
//     surrogates, duplicate member names, nesting beyond Limits.MaxDepth,
//     NaN and numbers that overflow (1e400) are refused with
//     {"#":id,"dam":"!","err":"invalid: parse: ..."}; a batch over
//     Limits.MaxBatch with "invalid: too many messages"; an object over the
//     member cap with "invalid: too many keys". Each counts as a strike, and
//     Limits.MaxStrikes strikes close the connection with 1008 (policy
//     violation). A message whose top-level names differ only in case
//     ("put" and "Put") is refused as ambiguous.
//   - A binary frame is answered with
//     {"#":id,"dam":"!","err":"invalid: binary not accepted"} and a strike;
//     the connection is kept.
//   - A frame over Limits.ReadLimit (default 1 MiB; gun allows about 90 MB)
//     closes the connection with 1009. permessage-deflate is never
//     negotiated, so a compressed (RSV1) frame is a protocol error: 1002.
//   - Connections over Limits.MaxConns or Limits.MaxConnsPerIP are refused
//     before the upgrade (503 / 429, "blocked: too many connections ...");
//     a get beyond Limits.MaxSubscriptions is answered with
//     "blocked: too many subscriptions" and a strike. A connection whose
//     unsent bytes would exceed Limits.SendBuffer, or which has had unsent
//     bytes and written nothing for Limits.SlowTimeout, is closed with 1013
//     as a slow consumer: the broadcaster never waits for a slow reader. A
//     reader that is merely behind gets its messages coalesced into
//     JSON-array frames and is not closed.
//   - A WebSocket upgrade with an Origin header that is neither same-origin
//     nor in Config.AllowedOrigins is refused with 403.
//
// # Ordering and concurrency
//
// One goroutine reads each connection and handles its messages in order;
// one goroutine writes it, draining a bounded queue. A put is handed to the
// DB without waiting for its commit (graph.DB.PutAsync): one connection can
// have up to Limits.MaxInflightPuts puts in flight, the store commits
// concurrent merges together (group commit) in the order they were queued,
// and the ack is queued from the store's writer once the merge is durable.
// So the puts of one connection are merged in the order it sent them. A
// get or handler message waits until every earlier put of its connection
// has been merged, so a connection always reads its own writes. No
// per-message goroutines are started and no lock is held while writing to a
// socket; the pushes of a merge are serialized once and shared by all its
// recipients.
//
// # Outbound peering
//
// For every URL in Config.Peers the relay keeps a link: it dials (http and
// https URLs are mapped to ws and wss, an empty path to /gun), greets, asks
// the remote for every soul a local connection is subscribed to, forwards
// each new local get once per soul (with the original "#" and "><"), and
// forwards every accepted put. It redials with exponential backoff and
// jitter (Config.PeerRetryMin to PeerRetryMax) on the injected clock. Loops
// end because puts are forwarded only when HAM accepted something, ids are
// deduplicated, and "><" names the peers already reached. Links are not
// closed for strikes and have their own subscription cap
// (Limits.MaxPeerSubscriptions). Relays that dial us are treated like any
// other client.
package api
