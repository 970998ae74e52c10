// Package graph is Gun's data model for Luminary: nodes of fields, HAM
// conflict resolution, Gun's state clock, deferral of future states, and
// durable stores.
//
// Most code uses a [DB]: open a store ([OpenBolt] for a durable file,
// [NewMemoryStore] for tests), wrap it with [NewDB], decode incoming puts
// with [ParsePut] (from the jsjson value of a message's "put" member) and
// hand them to [DB.Put]; take states for local writes from [DB.Now];
// listen to accepted changes with [DB.Subscribe].
//
//	store, err := graph.OpenBolt("luminary.db", graph.BoltOptions{})
//	db := graph.NewDB(store, graph.DBConfig{Clock: clock.System()})
//	defer store.Close()
//	defer db.Close()
//	diff, err := graph.ParsePut(msgPut, graph.Limits{})
//	res, err := db.Put(ctx, diff, peer) // returns after fsync
//
// # Data model
//
// A [Graph] maps souls to [Node] values; a node holds [Field] values, each a
// [Value] (null, string, bool, finite number or link) with a state. Every
// field is an independent last-writer-wins register. The wire form of a put
// is {soul: {"_": {"#": soul, ">": {field: state}}, field: value}}, written
// by [Graph.AppendJSON] with JavaScript's JSON.stringify rules (package
// internal/jsjson).
//
// # HAM
//
// [HAM] is gun 0.2020.1241's rule: a state ahead of the local machine
// state is deferred; an older state loses; a newer state wins even with the
// same value; on equal states the value whose JSON.stringify text is
// greater in UTF-16 order wins, and the same text is a no-op. Stores apply
// it without the future check; [DB.Put] applies the future check against
// its [StateClock]: states beyond now+MaxFuture are refused
// ([ErrFutureState]), nearer ones wait in a bounded queue ([ErrDeferFull]
// when full) and land when due.
//
// # Durability
//
// [BoltStore] answers a merge only after its transaction is committed and
// fsynced; concurrent merges share one commit (group commit). A failed
// commit makes the store refuse every later write ([ErrStoreFailed]).
//
// A relay connection that pipelines many puts should use [DB.PutAsync]: it
// returns as soon as the put is queued and calls back after the commit, so
// a group-committing store gets large batches (throughput is batch size
// divided by fsync latency).
//
// # Errors
//
// [ParsePut] errors and [PutResult.Refused] reasons start with the wire
// prefix the relay sends back ("invalid: ...", "rate-limited: ...").
//
// # API at a glance
//
//	Values   Kind (KindNull, KindString, KindBool, KindNumber, KindLink);
//	         Value: Null(), String(s), Bool(b), Number(f), Link(soul), ValueOf(x);
//	         v.Kind, IsNull, AsString, AsBool, AsNumber, AsLink, AppendJSON,
//	         String, Equal, Interface
//	Graphs   Field{Value, State}; Node{Soul, Fields}: NewNode, Clone, AppendJSON;
//	         Graph (map soul -> *Node): Set, Len, Souls, Clone, Equal, AppendJSON
//	Parsing  ParsePut(v, Limits) (Graph, error); Limits, DefaultLimits, MaxState,
//	         ValidState; ErrBadNode, ErrSoulMismatch, ErrNoState, ErrBadState,
//	         ErrBadValue, ErrTooMany, ErrTooLarge
//	HAM      HAM(machine, inState, curState, inVal, curVal, curExists) Decision
//	         (Defer, Historical, Lose, Accept)
//	States   StateClock: NewStateClock(clock), Now()
//	Stores   Store (Get, GetField, Merge, Scan, Close); MergeNotifier;
//	         AsyncMerger; SoulChecker (HasSoul); Derived(ctx);
//	         MemoryStore: NewMemoryStore, NewBoundedMemoryStore
//	         (MemoryOptions: evictable souls dropped oldest first), Evicted;
//	         BoltStore: OpenBolt, BoltOptions (WAL: write-ahead log;
//	         Volatile and Transient: souls kept in memory only, the latter
//	         bounded), Stats, BoltStats, CommitInfo,
//	         Checkpoint, Path; ErrNotFound, ErrClosed, ErrStoreFailed,
//	         ErrWALCorrupt
//	DB       NewDB(store, DBConfig); Put, PutAsync, Get, GetField, HasSoul,
//	         Scan, Subscribe, Now, Deferred, Store, Close; PutResult,
//	         FieldError, ErrFutureState, ErrDeferFull
package graph
