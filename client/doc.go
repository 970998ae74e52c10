// Package client is the Go client of a Luminary relay: it follows worlds
// with every entry verified and sends signed messages, over Gun's wire
// protocol.
//
// Start with [Dial], then [Client.Join] for a [World]: read its ordered
// stream from [World.Events] and send with [World.Send]. [Client.Host]
// makes the client's key the owner of a world the relay runs;
// [World.RunMetronome] runs a world's metronome and sequencer in the client
// (its key holding the tick role), through the relay, which judges every
// batch and stands by. [Client.WorldStore] manages a private world's
// membership (package world) through the relay.
//
//	c, err := client.Dial(ctx, "ws://127.0.0.1:8765/gun", client.Config{Key: key})
//	w, err := c.Join(ctx, instance)
//	go func() {
//		for ev := range w.Events() { // entries and ticks, in order, with Croquet time
//			...
//		}
//	}()
//	receipt, err := w.Send(ctx, []byte(`{"t":"drag"}`)) // seq and time once durable
//
// # Wire
//
// One WebSocket (gorilla/websocket), Gun's DAM protocol: the client answers
// the relay's {"dam":"?"} with its pid, gets souls ({"get":{"#":soul}},
// which also subscribes the connection, as every Gun get does), puts
// graphs and waits for their acks, reads pushes, drops repeated message
// ids, and keeps the connection alive (pongs; a connection silent for
// Config.IdleTimeout is redialled). When the connection drops it redials
// with jittered exponential backoff, logs in again, sends a get for every
// soul it follows and re-sends unanswered requests under new ids (relays
// remember ids).
//
// With Config.Key it logs in with package auth's challenge–response
// exchange (auth.AuthMember) when the relay offers it — that makes its key
// count as present in the worlds it follows — and continues without when
// the relay does not answer (stock gun.js relays), unless
// Config.RequireLogin.
//
// # Following a world
//
// A world's log lives in the graph as lum/<I>/log/<seq/1024> blocks (one
// field per entry) and its latest signed tick in lum/<I>/hb (heartbeat's
// layout.go). Join subscribes lum/<I>/certs and lum/<I>/revoked (to learn
// who may tick: the owner, or a key with a tick certificate the owner
// published and did not revoke, checked with auth's rules), lum/<I>/hb,
// and every block from the first to the
// current tick's, and feeds what arrives — replies and pushes, in any
// order, duplicated — into a heartbeat.Follower. The follower verifies tick
// round signatures and Merkle paths, the hash chain from each signed head
// down to the applied position, monotone time and epochs, and author
// signatures (unless JoinOptions.SkipAuthorSignatures), and emits the
// total order. Gaps (a verified tick beyond entries not held) are fetched
// with gets of the missing seq fields. Join returns once the world has
// caught up with the tick that was current when it joined; the stream then
// carries live entries and ticks.
//
// A join replays the whole log from seq 1, holding up to Config.MaxPending
// entries and subscribing one soul per 1024 entries (bounded by the
// relay's subscription cap). With JoinOptions.FromSnapshot it starts from
// the latest snapshot the sequencer accepted instead: one "lumJoin"
// exchange brings the snapshot data and the first page of entries after
// it, heartbeat.NewJoiner checks the data against the signed marker entry,
// and only the blocks after the snapshot point are loaded
// ([World.Snapshot] returns the data to restore). Members vote snapshots
// with [World.SubmitSnapshot] (snapshot role; accepted once enough present
// members voted the same hash).
//
// # Sending
//
// [World.Send] signs a heartbeat.Message (instance, author, timestamp,
// nonce, payload), puts it at lum/<I>/in/<id> (heartbeat.InboxPuts) and
// waits for the relay's receipt: a reply to the put carrying a "lum"
// member with the seq, epoch, HAM state and Croquet time the sequencer
// gave it once it was durable (api/service's ReceiptMember). The entry
// appearing in the verified stream resolves the send as well. A message
// already sequenced (a retry) is answered with its original seq. Refusals
// are [*RelayError]; transient ones (not the sequencer yet, shutting down,
// rate limited) are retried with backoff until the context ends, and a
// send without an answer is re-put after Config.ResendAfter (idempotent:
// the message id is the hash of its signed bytes).
//
// # Time
//
// All time the client uses for logic comes from Config.Clock
// (internal/clock): message timestamps, HAM states of its writes, backoff
// and resend timers. Socket deadlines use the real clock.
package client
