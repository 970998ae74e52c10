// Package service runs Luminary's time service inside the relay: the
// heartbeat host (sequencer and metronome) for the worlds the relay hosts,
// the admission of signed messages from the Gun wire, presence, the login
// exchange, metrics, and the implementation of the HTTP API (rest.Service).
//
// Start with [New] over the relay's graph.DB, give the api.Server its
// [Service.Guard] and [Service.Handlers], serve [Handler] (Gun wire, HTTP
// API, web pages), call [Service.Start]; at shutdown stop the api.Server
// first, then [Service.Shutdown], then close the DB. cmd/luminary serve
// does exactly this.
//
// # Composition
//
//	relay key     <data>/relay.key (created on the first start; see relaykey.go for the password)
//	log + lease   heartbeat.OpenBolt(<data>/heartbeat.db)   (memory: MemLog, MemLease)
//	host          heartbeat.Host signing with the relay key; Authorizer = auth.Checker.Authorize
//	              (plus the tick chain a world's owner handed over when it was hosted)
//	sink          publications → heartbeat.MetaPuts/PublicationPuts → graph.DB.Put, in order,
//	              from one writer goroutine (so the api.Server pushes them to subscribers);
//	              graph.Derived (the log is the durable copy); idle ticks through an
//	              api.Held origin, released at stamp + the playout delay (Config.TickPlayout,
//	              raised up to MaxTickPlayout to cover publishing times; publish.go)
//	guard         auth.Checker (Config.Inbox judges lum/<I>/in/<id> as heartbeat messages:
//	              signature, timestamp window, already sequenced → "duplicate:"), then
//	              inbound messages → Host.Submit → a receipt frame to the sender; Preverify
//	              checks author signatures on the relay's verification workers first;
//	              AccessChanged makes the relay re-check subscriptions when a world's
//	              private flag or member list changes
//	handlers      "auth": auth's login challenge–response; "lumSnap", "lumJoin": snapshot
//	              votes and join bundles (snapshot.go)
//	worlds        <data>/worlds.json (relay-local: alias, open, private, tick chain);
//	              owner keys the relay creates in <data>/owners/ (encrypted with the relay key's password)
//
// # Messages and receipts
//
// A client puts a message node at lum/<I>/in/<id> (heartbeat.InboxPuts).
// The guard lets the checker judge it, then hands it to the host. When the
// host has made it durable, the connection receives, besides the put's
// ordinary Gun ack (the relay took the node; inbox nodes are transient, see
// below, so that ack is no promise of durability), a frame answering the
// same put with a [ReceiptMember]
// member: {"id","seq","epoch","state","time"} ("dup": true for a message
// sequenced before, with its original seq), or the sequencer's refusal.
// The host's publication then writes the entry to the log block and seq
// and time to the inbox node (heartbeat.PublicationPuts), which every
// subscriber, gun.js included, sees.
//
// # Sequencer souls
//
// For a world this relay sequences, the wire may not write lum/<I>/hb,
// lum/<I>/log[/…] or lum/<I>/clients: a writer without the tick role is
// refused by the checker ("restricted: not authorised to tick"); a
// tick-role holder's tick that does not continue the published order is
// "invalid: time/seq order"; anything else is "restricted: not the
// sequencer for this instance". A peer holding the tick role sequences
// through the lumSeq member instead (remote.go: its batches pass
// heartbeat.Acceptor, and the relay publishes them).
//
// # Remote metronomes
//
// A logged-in tick-role holder may run a world's metronome and sequencer
// itself (client.World.RunMetronome, `luminary world metronome`), with the
// relay's log and lease reached over the wire (remote.go has the
// protocol). The relay's own host yields to it and stands by: it takes the
// world back about LeaseTTL + 300 ms after the remote stops renewing, unless
// another standby peer has taken it first.
//
// # Durability and restarts
//
// A message is acknowledged only once it is in heartbeat.db (fsync). The
// graph is written after: a crash in between leaves acknowledged entries
// that are not in the graph, so on start the service writes every entry
// the log holds beyond the graph's lum/<I>/log head ("repair"). Certificates
// published at lum/<I>/certs are passed through the checker again on start,
// so that Authorize knows them. Shutdown drains the host (everything
// queued becomes durable and is acknowledged, bounded by the host's
// DrainTimeout), releases leases, and writes the last publications.
//
// Idle ticks are graph writes of four fields on lum/<I>/hb, which serve
// keeps in memory only (graph.BoltOptions.Volatile with
// heartbeat.IsHeartbeatSoul): the heartbeat log and the host's reserved
// mark are the durable record of time. BENCHMARKS.md has the cost.
//
// Inbound message nodes of hosted worlds (lum/<I>/in/<id>) are transient
// for the same reason (graph.BoltOptions.Transient with
// [Service.TransientSoul], bounded by serve's --inbox-memory): the log
// holds every sequenced message durably before its receipt, so the node
// lives in memory only, long enough for its author and subscribers to see
// the seq and time the publication adds, and the oldest go first. After
// it is dropped or the relay restarts, a replay of the message is still
// refused as a duplicate (the inbox check asks the log) and answered with the
// original receipt. Messages not yet sequenced at a crash were never
// acknowledged by a receipt; their authors send them again.
//
// # Presence
//
// A key is present while one of its logged-in connections follows the
// world (has subscribed to lum/<I>/hb), or while a lease from the HTTP join
// route has not expired (web pages do not log in; messages renew it). One
// join entry when a key becomes present, one leave entry when it stops;
// each new term reconciles the logged presence (heartbeat.Host.SyncPresence).
//
// # The demo world
//
// With Config.Demo the relay hosts a world owned by its own key, alias
// "demo", 20 ticks/s, open: POST /api/worlds/demo/join {"pub"} issues a
// short-lived message certificate for that key (published at
// lum/<I>/certs) and a presence lease. The page at / (package web) needs
// nothing else.
package service
