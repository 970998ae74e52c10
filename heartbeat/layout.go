package heartbeat

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/krestianstvo/luminary/internal/jsjson"
)

// Graph layout. The log (bbolt or JetStream) is the source of truth for
// order; the Gun graph is how the heartbeat is distributed and shown, so that
// an unmodified gun.js peer can .on() the tick exactly as in the seed and
// compute Croquet time from HAM states:
//
//	time = (state(hb.tick) − state(hb.start_time)) × rate / 1000
//
// Every soul lives under "lum/<instance>", where <instance> is the owner's
// public key text (base64url, ':' and '.' only — never '~', '#' or '/', so
// SEA does not treat these souls as user space and Gun does not treat them
// as content-addressed). The relay is the only writer of every soul below
// except lum/<I>/in/<id>, which the author writes; package api refuses any
// other write under "lum/" (see the wiring notes in doc.go).
//
//	lum/<I>                  owner, name, rate, tps, start_time, created;
//	                         links hb, log, clients, snap          (state = start)
//	lum/<I>/hb               start_time = start   (its HAM state is the start: Croquet time 0)
//	                         rate, tps            (state = start)
//	                         tick  = the signed tick, JSON text   (state = tick state; changes every tick)
//	                         epoch, seq, head     convenience copies of the tick's fields, written
//	                                              with every publication that moves them (one that
//	                                              carries entries: each term opens with its epoch
//	                                              entry); idle ticks write tick alone (state = the
//	                                              state of the tick that last moved them)
//	lum/<I>/log              head = last seq; one link per block "<b>" → lum/<I>/log/<b>
//	lum/<I>/log/<b>          b = seq / 1024; field %020d(seq) = the entry, JSON text (state = entry state)
//	lum/<I>/in/<msgid>       an inbound message as its author wrote it (instance, author, ts,
//	                         nonce, payload, sig, id); after sequencing the relay adds
//	                         seq and time (state = entry state) — the author's ack in the graph.
//	                         A transient node: the relay keeps it in memory within a bound,
//	                         oldest dropped first, never in graph.db (the log is the durable
//	                         record; a replay of a logged message is refused as a duplicate)
//	lum/<I>/clients          field <client key> = true while joined, null after leaving
//	                         (state = the join/leave entry state)
//	lum/<I>/snap             latest = seq of the latest accepted snapshot; field "<seq>" → lum/<I>/snap/<seq>
//	lum/<I>/snap/<seq>       hash, marker (seq of the KindSnapshot entry), voters (JSON array text)
//
// Snapshot data is not in the graph (it can be megabytes); the relay serves
// it by hash from the blob store. Because each entry's field carries the
// entry's state, the seed formula gives every message its Croquet time too,
// and a message's state lies strictly between the states of the ticks around
// it.

// Put is one field write for the graph layer: package api turns a slice of
// them into a graph.Graph diff for graph.DB.Put.
type Put struct {
	Soul  string
	Field string
	Value any     // nil (Gun null), string, float64, bool, or Link
	State float64 // HAM state
}

// Link is a Gun link value {"#": soul}.
type Link struct{ Soul string }

// BlockSize is the number of log entries per lum/<I>/log/<b> node.
const BlockSize = 1024

// Soul helpers for the layout above. Each builds its soul in one
// concatenation (one allocation): a relay names thousands of these a round.
func InstanceSoul(instance string) string { return "lum/" + instance }

// HeartbeatSoul is lum/<I>/hb.
func HeartbeatSoul(instance string) string { return "lum/" + instance + "/hb" }

// IsHeartbeatSoul reports whether soul is an instance's heartbeat node
// lum/<I>/hb: liveness data (the tick moves 20 times a second) that a relay
// may keep in memory only, since it rewrites it after every restart and the
// log, not the graph, is the record of time.
func IsHeartbeatSoul(soul string) bool {
	rest, ok := strings.CutPrefix(soul, "lum/")
	if !ok {
		return false
	}
	inst, ok := strings.CutSuffix(rest, "/hb")
	return ok && inst != "" && !strings.Contains(inst, "/")
}

// LogSoul is lum/<I>/log.
func LogSoul(instance string) string { return "lum/" + instance + "/log" }

// BlockSoul is the log block node holding seq.
func BlockSoul(instance string, seq uint64) string {
	var b [20]byte
	return "lum/" + instance + "/log/" + string(strconv.AppendUint(b[:0], seq/BlockSize, 10))
}

// SeqField is the field name of seq in its block: 20 digits, zero-padded,
// so lexical order is seq order.
func SeqField(seq uint64) string { return fmt.Sprintf("%020d", seq) }

// InboxSoul is lum/<I>/in/<msgid>.
func InboxSoul(instance string, id Hash) string { return "lum/" + instance + "/in/" + id.String() }

// ClientsSoul is lum/<I>/clients.
func ClientsSoul(instance string) string { return "lum/" + instance + "/clients" }

// SnapSoul is lum/<I>/snap.
func SnapSoul(instance string) string { return "lum/" + instance + "/snap" }

// SnapshotSoul is lum/<I>/snap/<seq>.
func SnapshotSoul(instance string, seq uint64) string {
	return "lum/" + instance + "/snap/" + strconv.FormatUint(seq, 10)
}

// MetaPuts returns the writes that create an instance's nodes.
func MetaPuts(m Meta) []Put {
	i, s := m.Instance, m.Start
	root := InstanceSoul(i)
	return []Put{
		{root, "owner", i, s},
		{root, "name", m.Name, s},
		{root, "rate", m.Rate, s},
		{root, "tps", float64(m.TPS), s},
		{root, "start_time", m.Start, s},
		{root, "created", float64(m.Created), s},
		{root, "hb", Link{HeartbeatSoul(i)}, s},
		{root, "log", Link{LogSoul(i)}, s},
		{root, "clients", Link{ClientsSoul(i)}, s},
		{root, "snap", Link{SnapSoul(i)}, s},
		{HeartbeatSoul(i), "start_time", m.Start, s},
		{HeartbeatSoul(i), "rate", m.Rate, s},
		{HeartbeatSoul(i), "tps", float64(m.TPS), s},
	}
}

// PublicationPuts returns the writes that present one publication: each
// entry in its log block (plus presence, snapshot and inbox-ack fields), then
// the tick on the heartbeat node.
func PublicationPuts(p Publication) []Put {
	return AppendPublicationPuts(make([]Put, 0, 5+4*len(p.Entries)), p)
}

// AppendPublicationPuts appends the writes of [PublicationPuts] to dst (a
// relay reuses one buffer for a round of thousands of publications).
func AppendPublicationPuts(dst []Put, p Publication) []Put {
	i := p.Meta.Instance
	out := dst
	for k := range p.Entries {
		e := &p.Entries[k]
		s := e.State
		if e.Seq == 1 || e.Seq%BlockSize == 0 {
			b := strconv.FormatUint(e.Seq/BlockSize, 10)
			out = append(out, Put{LogSoul(i), b, Link{BlockSoul(i, e.Seq)}, s})
		}
		out = append(out, Put{BlockSoul(i, e.Seq), SeqField(e.Seq), string(e.AppendJSON(nil)), s})
		switch e.Kind {
		case KindMessage:
			in := InboxSoul(i, e.MessageID())
			out = append(out, Put{in, "seq", float64(e.Seq), s}, Put{in, "time", VTime(s, p.Meta.Start, p.Meta.Rate), s})
		case KindJoin:
			out = append(out, Put{ClientsSoul(i), e.Author, true, s})
		case KindLeave:
			out = append(out, Put{ClientsSoul(i), e.Author, nil, s})
		case KindSnapshot:
			snap := SnapshotSoul(i, e.Ref)
			out = append(out,
				Put{snap, "hash", e.RefHash.String(), s},
				Put{snap, "marker", float64(e.Seq), s},
				Put{snap, "voters", e.Payload, s},
				Put{SnapSoul(i), strconv.FormatUint(e.Ref, 10), Link{snap}, s},
				Put{SnapSoul(i), "latest", float64(e.Ref), s})
		}
	}
	if n := len(p.Entries); n > 0 {
		last := &p.Entries[n-1]
		out = append(out, Put{LogSoul(i), "head", float64(last.Seq), last.State})
	}
	t := &p.Tick
	hb, s := HeartbeatSoul(i), t.State
	// Encoded on the stack and copied once into the string (a relay
	// publishes thousands of these a round).
	var buf [2048]byte
	out = append(out, Put{hb, "tick", string(t.AppendJSON(buf[:0])), s})
	if len(p.Entries) > 0 {
		// Idle ticks leave epoch, seq and head as they are (a third of
		// the relay's work per idle tick was rewriting them unchanged).
		out = append(out,
			Put{hb, "epoch", float64(t.Epoch), s},
			Put{hb, "seq", float64(t.Seq), s},
			Put{hb, "head", t.Head.String(), s})
	}
	return out
}

// inboxFields are the fields an author writes on lum/<I>/in/<id>.
var inboxFields = []string{"instance", "author", "ts", "nonce", "payload", "sig", "id"}

// InboxPuts returns the writes an author makes to submit m through the
// graph, at HAM state state (the author's Gun.state()).
func InboxPuts(m *Message, state float64) []Put {
	soul := InboxSoul(m.Instance, m.ID())
	out := []Put{
		{soul, "instance", m.Instance, state},
		{soul, "author", m.Author, state},
		{soul, "ts", float64(m.TS), state},
		{soul, "nonce", m.Nonce, state},
		{soul, "payload", m.Payload, state},
		{soul, "sig", b64.EncodeToString(m.Sig), state},
		{soul, "id", m.ID().String(), state},
	}
	return out
}

// MessageFromInbox rebuilds a message from the fields of a lum/<I>/in/<id>
// node (as decoded by the graph layer: strings and float64 numbers), refusing
// any field that is not part of a message, and checks that the soul's id is
// the message's id. The signature is not
// verified here (Host.Submit does that).
func MessageFromInbox(soul string, fields map[string]any) (Message, error) {
	o := &jsjson.Object{}
	for _, k := range inboxFields {
		if v, ok := fields[k]; ok {
			o.Set(k, v)
		}
	}
	if len(fields) != o.Len() {
		// Anything else (including the relay's own "seq" and "time") is not
		// the author's to write.
		return Message{}, fmt.Errorf("%w: inbox node holds fields that are not part of a message", ErrMalformed)
	}
	m, err := ParseMessage(jsjson.Append(nil, o))
	if err != nil {
		return Message{}, err
	}
	if soul != InboxSoul(m.Instance, m.ID()) {
		return Message{}, fmt.Errorf("heartbeat: inbox soul does not name the message id: %w", ErrIDMismatch)
	}
	if ts, ok := fields["ts"].(float64); !ok || ts != math.Trunc(ts) {
		return Message{}, fmt.Errorf("%w: ts", ErrMalformed)
	}
	return m, nil
}

// InboxMessage checks a lum/<I>/in/<id> node as package auth's Config.Inbox
// needs it: it rebuilds the message ([MessageFromInbox]) and verifies the
// author's signature. The returned message's Author is the key whose message
// role the caller then checks; pass the message on to [Host.Submit].
func InboxMessage(soul string, fields map[string]any, v Verifier) (Message, error) {
	m, err := MessageFromInbox(soul, fields)
	if err != nil {
		return Message{}, err
	}
	if err := m.Verify(v); err != nil {
		return Message{}, err
	}
	return m, nil
}

// ReceiptPuts returns the writes that acknowledge a sequenced message in the
// graph: seq and time on its lum/<I>/in/<id> node, at the entry's state
// (the same writes [PublicationPuts] makes for the entry).
func ReceiptPuts(r Receipt) []Put {
	soul := InboxSoul(r.Instance, r.ID)
	return []Put{{soul, "seq", float64(r.Seq), r.State}, {soul, "time", r.Time, r.State}}
}
