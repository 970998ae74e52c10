// Package heartbeat is Luminary's time service: the metronome and sequencer
// that replace the Croquet reflector. It orders every instance's external
// messages and presence changes into one signed, hash-chained log, ticks at
// the instance's rate, and lets every peer compute the same Croquet time from
// HAM states exactly as the Krestianstvo Luminary seed does:
//
//	time = (state(tick) − state(start_time)) × rate / 1000
//
// Start with [Host] (run the sequencer for instances, on a [Log] and a
// [Lease]: [OpenBolt] for both, or [NewMemLog] and [NewMemLease]) and
// [Follower] (turn what arrives from the network, in any order, into the
// verified total order). [Message] is what clients sign and send;
// [LoadJoin] and [NewJoiner] let a late peer join from a snapshot;
// [Export] and [VerifyHistory] are the timegraph. [PublicationPuts] maps
// everything onto the Gun graph so that unmodified gun.js peers can watch the
// tick. Package heartbeattest is a deterministic simulation harness.
//
// Everything here is transport-free: the relay (package api) and the Go
// client wire it to the Gun protocol. The core is pure — [Sequencer] and
// [Follower] take time as arguments and return what to store, send and
// apply, like etcd raft's Ready — with a thin I/O shell ([Host.Step],
// [Host.Run]) driven by an injected clock.
//
// # DESIGN
//
// ## What the seed got wrong, and what this package does instead
//
// The seed (research: croquet-luminary.md §4) writes ticks and messages into
// one Gun register and derives time from each writer's HAM state. A register
// is not a log (concurrent messages are lost), writers' clock skew decides
// time and survival, late messages run out of order, joins have no
// consistent cut, the metronome has no failover with fencing, and nothing is
// signed. This package keeps the seed's formula and its gun.js-visible tick,
// and puts a sequencer underneath:
//
//   - One sequencer per instance per epoch (a lease with a fencing token)
//     stamps every entry with (epoch, seq, state, prev hash); clients never
//     stamp. States come from the sequencer's monotonic clock and never go
//     backwards, across epochs and restarts.
//   - Ticks and entries form one total order; followers refuse gaps, forks
//     and time going backwards.
//   - The log is append-only and durable before anything is acknowledged;
//     join = accepted snapshot + log suffix; history is exportable and
//     verifiable offline.
//
// ## Identity
//
// An instance id is its owner's public key text (package keys: secp256k1
// "k1:…" or P-256 "x.y"). Roles (tick, message, snapshot) are decided by an
// [Authorizer]; the owner holds all, and package auth's certificate
// auth.Checker.Authorize plugs in through [AuthorizerFunc]. Signatures
// always cover keys.Message(label, parts…) — domain-separated, length
// prefixed bytes — never JSON:
//
//	heartbeat.message   instance, author, ts, nonce, payload           (signed by the author; SHA-256 = message id)
//	heartbeat.entry     instance, epoch, seq, state, prev, kind, author, ts, nonce, payload, sig, ref, ref_hash (hashed)
//	heartbeat.tick      instance, epoch, n, seq, head, state, start, rate (Merkle leaf)
//	heartbeat.node      left, right                                      (Merkle node)
//	heartbeat.round     signer, count, root                              (signed by the sequencer)
//	heartbeat.snapshot  instance, seq, hash, author                      (signed by a member)
//
// ## Entries, ticks, total order
//
// An instance's log is one stream of [Entry] values: messages, presence
// join/leave, epoch starts and snapshot markers. Entry seq n carries the hash
// of entry n−1, so the head hash commits to the whole history. A [Tick] is a
// signed checkpoint positioned right after entry Seq: it names the head hash
// and a state. The total order is entries by seq, with ticks after the entry
// at their position (several ticks at one position ordered by state). States
// strictly increase along that order — entries and ticks alike, at least 1 µs
// apart — so Croquet time never decreases and a message's state lies strictly
// between the states of the ticks around it.
//
// Signature coverage: the sequencer signs ticks, not entries. An entry is
// covered through the hash chain by the next tick at or after it. To keep
// message latency low the host does not wait for the next cadence tick: every
// round that appends entries also issues a tick at the new head (a
// checkpoint), stored with them in the same atomic append. So a message is
// durable, acknowledged, covered and published within one round (one group
// commit, a few ms), and followers apply it at once. The alternative, signing
// every entry, costs one signature per message for the sequencer and one
// more verification per message for every follower (decred verify ≈ 120 µs:
// 2,000 msg/s would take a quarter of a follower core for sequencer
// signatures alone); a checkpoint costs one signature per round, shared by all
// instances of the host (next section). The price is that under load the
// gun.js-visible tick moves more often than the cadence (once per commit).
//
// Idle ticks (no new entries) are published but never stored: they carry
// nothing to verify and would cost 100,000 writes/s for 5,000 instances. The
// reserved high-water mark (below) makes that safe. A peer replaying the log
// sees only checkpoint ticks; Croquet semantics depend only on the entries
// and their times (the VM runs scheduled messages in time order however time
// is advanced), so replay is deterministic. Live followers may see different
// subsets of idle ticks under loss; their entry streams, with times, are
// identical. (The relay's service pushes idle ticks with a playout delay, an
// offset from their stamp that covers the time rounds take to publish, so
// they arrive on a steady cadence: api/service Config.TickPlayout and
// MaxTickPlayout.)
//
// ## Amortised signing (5,000 instances)
//
// Per step, a host builds one Merkle tree (SHA-256; leaf and node hashes
// domain-separated; an odd last node is promoted, not duplicated) over the
// tick records of every instance it ticks in that step and signs its root
// once, binding signer and leaf count ([SignRound]). Each tick carries its
// Merkle path and the round signature. Followers verify the path and the
// signature, remembering verified rounds ([RoundCache]): the second instance
// of a round costs only hashing. See /work/team/bench-heartbeat.md.
//
// ## Time
//
// HAM states are float64 milliseconds like Gun.state(); the sequencer issues
// them on a microsecond grid. A term starts at base state
//
//	B = max(wall now, last issued state + one tick period, reserved mark + 1 µs)
//
// and issues B + (monotonic elapsed since the term started). Wall-clock steps
// during a term change neither cadence nor time (table B row 12); a new term
// always starts above everything an earlier term issued. Timestamp-oracle
// rule: before publishing any state the host makes durable a reserved mark at
// or above it ("issued up to T+Δ", Δ = ReserveAhead, default 500 ms, renewed
// when within Δ/2); the log refuses to store anything above the mark, and a
// new term starts above it. A host keeps ONE such mark for all the instances
// it sequences (a batch for [AllInstances] naming the holder): every
// instance's states are near the same wall clock, so one small durable write
// every Δ/2 covers them all, where a mark per instance cost 1,000 instances
// 4,000 records a second and a durable commit in nearly every round. The log
// bounds an instance's states by its own mark and its current holder's
// ([LogState.Bound]); a new holder's first entry must exceed the previous
// holder's mark; a restarted host starts each term above the mark it
// inherited (not above the renewals it has made since for other instances,
// which would start every term up to Δ ahead of the wall clock). So after
// kill -9 time resumes above every value ever published, even idle ticks
// that were never stored (table B row 2). All instances of one rate tick on
// one grid of the host's clock, so one round — one signature — serves them
// all whatever their start times; an idle tick is stamped at its slot on that
// grid (the latest grid point its round has passed), not at the moment the
// round got the CPU, so a late round shifts neither Croquet time nor the
// cadence followers see (a tick with entries is stamped after them). If
// the base lies ahead of the wall clock (a restart within Δ), the host waits
// up to MaxStartWait for the wall clock to catch up, so that gun.js peers —
// which defer states ahead of their clock — are not held back; beyond that it
// runs ahead. The relay refuses states more than MaxAhead beyond its clock
// from remote metronomes ([Acceptor], table B row 13).
//
// Client timestamps never become states. They are only checked at admission
// against the host clock: −WindowPast (120 s) / +WindowFuture (30 s), else
// "invalid: timestamp out of window" (table A row 24). The window follows the
// host's wall clock, including its steps.
//
// ## Fencing and failover
//
// [Lease] grants an instance to one holder with a strictly increasing epoch;
// expiry is measured with monotonic clock timers. A standby host polls
// Acquire (AcquireEvery, 100 ms); when the holder stops renewing, the lease
// lapses after LeaseTTL (500 ms) and the standby starts epoch e+1 with a
// KindEpoch entry naming itself (and the previous epoch) as the next entry
// after the head — time continuing from the reserved mark. Measured takeover
// in the simulation: about 505 ms from the last tick of the old epoch to the
// first of the new at 20 ticks/s (target ≤ 1 s). Fencing does not rely on the
// lease: the log's compare-and-append (next seq, previous hash, epoch never
// below the head's, an epoch change only through an epoch entry whose state
// exceeds the reserved mark) means two sequencers can never both extend one
// log; a paused holder that wakes up fails its next append or renewal and
// steps down, and its late idle ticks are either consistent with the old
// chain (their states are below the new term's start) or ignored by
// followers as stale. A remote metronome's batches pass the [Acceptor], which
// also requires the signer to hold the tick role and the current grant with
// the current epoch ("restricted: not authorised to tick", "restricted: stale
// epoch"). A test with two hosts and a deliberately broken lease (each its
// own) shows followers still see one linear history.
//
// The relay can run the metronome itself ("anytime availability"): its key
// holds a tick certificate, and its [Host] competes for the lease like any
// peer's. A relay (api/service) lets a peer holding the tick role take the
// lease from its own host, stands by while the peer ticks, and takes the
// world back when the peer's lease lapses and no standby peer has taken
// it.
//
// ## Durability
//
// [Log.Append] returns only after the batch is durable. [BoltLog] commits
// every request waiting at that moment in one bbolt transaction (group
// commit: one fsync pair acknowledges the group); a failed commit breaks the
// log for good (never retry an fsync). The message id index makes
// resubmission idempotent across restarts ("duplicate:" with the original
// seq, table A row 15). Acknowledged messages survive kill -9 (table B row
// 1: tested by re-executing the test binary, killing it with SIGKILL and
// re-verifying the whole history; LUMINARY_KILL_ITERS=200 for the full
// count); SIGTERM drains, acknowledges and releases leases (row 15).
//
// ## Joining
//
// Members vote snapshots: (seq, SHA-256 of their serialised state after
// applying entry seq and before anything that follows it), signed. When
// min(SnapshotQuorum, present clients) — at least 1 — distinct members agree
// and the data is in the blob store, the sequencer appends a KindSnapshot
// marker entry. A joiner loads the latest accepted snapshot and every entry
// after its seq ([LoadJoin]: from the log, no live peer needed); [NewJoiner]
// checks the data hash and that the signed marker names exactly that
// snapshot. With no snapshot, the whole log. With one member present, its
// vote alone is accepted (nobody can confirm it); the log still lets anyone
// re-verify by replay.
//
// ## Presence
//
// [Host.Join] and [Host.Leave] emit one KindJoin/KindLeave entry per change,
// from the sequencer only; repeats complete with ErrDuplicate and no entry.
// [Host.SyncPresence] reconciles after a failover or restart. Presence is per
// key; the relay counts connections per key.
//
// ## Graph layout
//
// See layout.go: lum/<I> (owner, name, rate, tps, start_time, links),
// lum/<I>/hb (start_time, rate, tps, tick, epoch, seq, head), lum/<I>/log and
// lum/<I>/log/<seq/1024> (entries as JSON text in 20-digit zero-padded seq
// fields, each at its entry's state), lum/<I>/in/<msgid> (inbound messages,
// one soul each, so concurrent senders never overwrite each other; the relay
// adds seq and time as the ack; transient: kept in memory within a bound,
// since the log is their durable record), lum/<I>/clients, lum/<I>/snap and
// lum/<I>/snap/<seq>. No "~" or "#" appears in these souls, so SEA leaves them
// alone and package auth judges them (roles per soul in auth's doc).
//
// ## Scale-out seam
//
// [Log] and [Lease] are small interfaces with memory and bbolt
// implementations side by side. The JetStream step maps Log to a stream per
// instance (Append = publish with expected-last-sequence; Read = ordered
// consumer; Lookup = a KV bucket keyed by message id) and Lease to a KV
// bucket with revision compare-and-set; hosts are then stateless and any relay
// can sequence any instance. The simulation harness already runs several hosts
// on one shared log and lease.
//
// ## Wiring (package api, the Go client, the CLI)
//
//   - Relay: open [OpenBolt] at <data>/heartbeat.db; a [Host] signing with the
//     relay key; Host.Add for every instance it serves; Host.Run under the
//     server context. Sink (must not block: queue): write [MetaPuts] once per
//     instance and [PublicationPuts] for every publication, converted to a
//     graph.Graph and graph.DB.Put with the local origin (Put values are
//     nil/string/float64/bool/[Link]); also push publications to Go
//     followers over the wire (entries and ticks as their JSON forms).
//   - Admission: on a put under lum/<I>/in/<id>, auth's Config.Inbox =
//     [InboxMessage]; then [Host.Submit]; on done answer the put with the
//     receipt or [Reason](err) ("duplicate: …" is an ack, not a failure);
//     the publication writes seq and time on the inbox node (the same writes
//     as [ReceiptPuts]). Keep inbox nodes out of the durable graph (the
//     relay: graph.BoltOptions.Transient): the log already holds them.
//   - Presence: Host.Join/Leave on a client's first/last connection per key;
//     [Host.SyncPresence] when a term starts.
//   - Gap fill and join endpoints: Log.Read / ReadByTime / [LoadJoin] (blob
//     data served by hash); remote metronomes: the lumSeq member
//     ([SeqMember], [Batch.AppendJSON], [LogState.AppendJSON]) carries a
//     peer's Lease and Log calls to the relay, whose [Acceptor] judges its
//     batches (api/service/remote.go, client.World.RunMetronome).
//   - Authorizer: heartbeat.AuthorizerFunc(func(ctx, i, k, r, at) error {
//     return checker.Authorize(ctx, i, k, auth.Role(r), at) }).
//   - Metrics: wrap Sink and the done callbacks (prometheus lives in api).
//   - Go client: sign [Message]s, submit, run a [Follower] over the
//     subscription, fetch [Follower.Missing] ranges, join with [NewJoiner].
//   - CLI: `luminary history export|verify` (cmd/luminary/history.go).
package heartbeat
