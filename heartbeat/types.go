package heartbeat

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind says what an [Entry] records.
type Kind uint8

// Entry kinds. Their numeric values are part of the entry hash; never
// renumber them.
const (
	KindMessage  Kind = 1 // an external message signed by its author
	KindJoin     Kind = 2 // a client joined (Author = client key)
	KindLeave    Kind = 3 // a client left (Author = client key)
	KindEpoch    Kind = 4 // a sequencer term begins (Author = holder key, Ref = previous epoch)
	KindSnapshot Kind = 5 // a snapshot was accepted (Ref = its seq, RefHash = its hash)
)

var kindNames = [...]string{KindMessage: "msg", KindJoin: "join", KindLeave: "leave", KindEpoch: "epoch", KindSnapshot: "snapshot"}

// String returns the wire name of k ("msg", "join", "leave", "epoch",
// "snapshot").
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

func parseKind(s string) (Kind, bool) {
	for k, n := range kindNames {
		if n != "" && n == s {
			return Kind(k), true
		}
	}
	return 0, false
}

// Limits on field sizes; every parser and the admission path enforce them.
const (
	MaxKeyText    = 128     // public key text (instance id, author)
	MaxNonce      = 64      // bytes of a message nonce
	MaxPayload    = 1 << 20 // absolute cap on a payload; hosts configure lower
	MaxName       = 256     // instance name
	MaxPath       = 40      // Merkle path length (2^40 leaves)
	maxSafeInt    = 1<<53 - 1
	minRate       = 1.0 / 64
	maxRate       = 64
	defaultTPS    = 20
	maxTPS        = 60
	signatureSize = 64
)

// Message is an external message as its author signs it. Its id is the
// SHA-256 of the exact signed bytes, so a re-sent message (even with another
// valid signature) is recognised as a duplicate.
type Message struct {
	Instance string // instance id (owner public key text)
	Author   string // author public key text
	TS       int64  // author's wall clock, Unix milliseconds (checked against a window)
	Nonce    string // author-chosen, makes equal payloads distinct (≤ MaxNonce bytes)
	Payload  string // application data, opaque to Luminary (usually JSON text)
	Sig      []byte // 64-byte r‖s by Author over SignedBytes
}

// SignedBytes returns the exact bytes the author signs:
// keys.Message("heartbeat.message", instance, author, ts (8 bytes BE), nonce,
// payload).
func (m *Message) SignedBytes() []byte {
	return signedMessageBytes(m.Instance, m.Author, m.TS, m.Nonce, m.Payload)
}

func signedMessageBytes(instance, author string, ts int64, nonce, payload string) []byte {
	return keysMessage(labelMessage, []byte(instance), []byte(author), u64(uint64(ts)), []byte(nonce), []byte(payload))
}

// ID returns the message id: SHA-256 of [Message.SignedBytes].
func (m *Message) ID() Hash { return SHA256(m.SignedBytes()) }

// Sign sets m.Author to s's key and signs m.
func (m *Message) Sign(s Signer) error {
	m.Author = s.Public()
	sig, err := s.Sign(m.SignedBytes())
	if err != nil {
		return fmt.Errorf("heartbeat: sign message: %w", err)
	}
	m.Sig = sig
	return nil
}

// Verify checks the author's signature.
func (m *Message) Verify(v Verifier) error {
	if len(m.Sig) != signatureSize || !v.Verify(m.Author, m.SignedBytes(), m.Sig) {
		return fmt.Errorf("heartbeat: message %s: %w", m.ID(), ErrBadSignature)
	}
	return nil
}

// validate checks field shapes and sizes (not the signature).
func (m *Message) validate(maxPayload int) error {
	if err := checkKeyText("instance", m.Instance); err != nil {
		return err
	}
	if err := checkKeyText("author", m.Author); err != nil {
		return err
	}
	if m.TS < 0 || m.TS > maxSafeInt {
		return fmt.Errorf("%w: ts out of range", ErrMalformed)
	}
	if len(m.Nonce) > MaxNonce || !utf8.ValidString(m.Nonce) {
		return fmt.Errorf("%w: nonce", ErrMalformed)
	}
	if maxPayload <= 0 || maxPayload > MaxPayload {
		maxPayload = MaxPayload
	}
	if len(m.Payload) > maxPayload {
		return fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrTooLarge, len(m.Payload), maxPayload)
	}
	if !utf8.ValidString(m.Payload) {
		return fmt.Errorf("%w: payload is not valid UTF-8", ErrMalformed)
	}
	if len(m.Sig) != signatureSize {
		return fmt.Errorf("%w: signature must be %d bytes", ErrBadSignature, signatureSize)
	}
	return nil
}

// checkKeyText checks the syntax of a public key text used in souls: 1 to
// MaxKeyText characters from base64url plus ':' and '.', so it can never
// contain the soul separator '/', nor Gun's special '~' and '#'. Whether it
// is a valid point is checked by signature verification.
func checkKeyText(what, s string) error {
	if len(s) == 0 || len(s) > MaxKeyText {
		return fmt.Errorf("%w: %s key text length", ErrMalformed, what)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == ':' || c == '.') {
			return fmt.Errorf("%w: %s key text has character %q", ErrMalformed, what, c)
		}
	}
	return nil
}

// Entry is one position in an instance's ordered log. The sequencer assigns
// Epoch, Seq, State and Prev; Hash() chains it to its predecessor, and the
// next signed [Tick] at or after its seq covers it.
//
// Which of the payload fields are used depends on Kind:
//
//	KindMessage   Author, TS, Nonce, Payload, Sig: the signed Message
//	KindJoin      Author = client key; Payload optional client info
//	KindLeave     Author = client key
//	KindEpoch     Author = the holder (sequencer key) of the new epoch; Ref = previous epoch (0 at genesis)
//	KindSnapshot  Ref = seq of the snapshot point, RefHash = snapshot hash, Payload = JSON array of voters
//
// Unused fields are zero and still part of the hash.
type Entry struct {
	Instance string
	Epoch    uint64
	Seq      uint64
	State    float64 // HAM state in ms (Gun.state() units); strictly increasing along the log
	Prev     Hash    // hash of entry Seq-1 (zero for Seq 1)
	Kind     Kind

	Author  string
	TS      int64
	Nonce   string
	Payload string
	Sig     []byte
	Ref     uint64
	RefHash Hash
}

// Hash returns the entry hash: SHA-256 of keys.Message("heartbeat.entry",
// instance, epoch, seq, state bits, prev, kind, author, ts, nonce, payload,
// sig, ref, refHash), integers as 8 bytes big-endian and the state as its
// IEEE-754 bits.
func (e *Entry) Hash() Hash {
	return hashMessage(labelEntry, []byte(e.Instance), u64(e.Epoch), u64(e.Seq), f64(e.State), e.Prev[:],
		[]byte{byte(e.Kind)}, []byte(e.Author), u64(uint64(e.TS)), []byte(e.Nonce), []byte(e.Payload), e.Sig,
		u64(e.Ref), e.RefHash[:])
}

// Message returns the signed message of a KindMessage entry.
func (e *Entry) Message() Message {
	return Message{Instance: e.Instance, Author: e.Author, TS: e.TS, Nonce: e.Nonce, Payload: e.Payload, Sig: e.Sig}
}

// MessageID returns the message id of a KindMessage entry (zero otherwise).
func (e *Entry) MessageID() Hash {
	if e.Kind != KindMessage {
		return Hash{}
	}
	return SHA256(signedMessageBytes(e.Instance, e.Author, e.TS, e.Nonce, e.Payload))
}

// validate checks shapes and sizes (not signatures or order).
func (e *Entry) validate() error {
	if err := checkKeyText("instance", e.Instance); err != nil {
		return err
	}
	if e.Seq == 0 || e.Seq > maxSafeInt || e.Epoch == 0 || e.Epoch > maxSafeInt || e.Ref > maxSafeInt {
		return fmt.Errorf("%w: entry seq/epoch/ref out of range", ErrMalformed)
	}
	if err := checkState(e.State); err != nil {
		return err
	}
	if e.Seq == 1 && !e.Prev.IsZero() {
		return fmt.Errorf("%w: seq 1 must have a zero prev", ErrMalformed)
	}
	switch e.Kind {
	case KindMessage:
		m := e.Message()
		return m.validate(MaxPayload)
	case KindJoin, KindLeave, KindEpoch:
		if err := checkKeyText("author", e.Author); err != nil {
			return err
		}
	case KindSnapshot:
		if e.Ref == 0 || e.Ref >= e.Seq {
			return fmt.Errorf("%w: snapshot marker ref", ErrMalformed)
		}
	default:
		return fmt.Errorf("%w: unknown entry kind %d", ErrMalformed, e.Kind)
	}
	if len(e.Payload) > MaxPayload || !utf8.ValidString(e.Payload) || len(e.Nonce) > MaxNonce || len(e.Sig) > signatureSize {
		return fmt.Errorf("%w: entry fields", ErrMalformed)
	}
	return nil
}

// checkState checks that s is a usable HAM state: finite, positive, below
// 2^53.
func checkState(s float64) error {
	if math.IsNaN(s) || math.IsInf(s, 0) || s <= 0 || s >= maxSafeInt {
		return fmt.Errorf("%w: bad state", ErrMalformed)
	}
	return nil
}

// TickRecord is what a tick asserts: in epoch Epoch the sequencer's N-th
// tick comes right after entry Seq (whose hash is Head) at HAM state State.
// Start and Rate repeat the instance's time base so that any tick alone lets
// a peer compute Croquet time.
type TickRecord struct {
	Instance string
	Epoch    uint64
	N        uint64
	Seq      uint64 // 0 before the first entry (never happens in practice: seq 1 is the genesis epoch entry)
	Head     Hash
	State    float64
	Start    float64
	Rate     float64
}

// Leaf returns the Merkle leaf hash of the record: SHA-256 of
// keys.Message("heartbeat.tick", instance, epoch, n, seq, head, state bits,
// start bits, rate bits).
func (r *TickRecord) Leaf() Hash {
	return hashMessage(labelLeaf, []byte(r.Instance), u64(r.Epoch), u64(r.N), u64(r.Seq), r.Head[:],
		f64(r.State), f64(r.Start), f64(r.Rate))
}

// Time returns the Croquet time of the tick in seconds.
func (r *TickRecord) Time() float64 { return VTime(r.State, r.Start, r.Rate) }

func (r *TickRecord) validate() error {
	if err := checkKeyText("instance", r.Instance); err != nil {
		return err
	}
	if r.Epoch == 0 || r.Epoch > maxSafeInt || r.N == 0 || r.N > maxSafeInt || r.Seq > maxSafeInt {
		return fmt.Errorf("%w: tick epoch/n/seq out of range", ErrMalformed)
	}
	if err := checkState(r.State); err != nil {
		return err
	}
	if err := checkState(r.Start); err != nil {
		return err
	}
	if r.Start > r.State {
		return fmt.Errorf("%w: tick before instance start", ErrOrder)
	}
	if math.IsNaN(r.Rate) || r.Rate < minRate || r.Rate > maxRate {
		return fmt.Errorf("%w: tick rate out of range", ErrMalformed)
	}
	return nil
}

// Proof binds a [TickRecord] to a round signature: the record's leaf is at
// Index among Count leaves whose Merkle root the Signer signed.
type Proof struct {
	Signer string // the sequencer's public key text
	Index  uint32
	Count  uint32
	Path   []Hash // sibling hashes from the leaf up (levels where the node is promoted have none)
	Sig    []byte // signature over keys.Message("heartbeat.round", signer, count, root)
}

// Tick is a signed checkpoint: a record plus its proof.
type Tick struct {
	TickRecord
	Proof Proof
}

// Meta describes an instance. It is written once, by the first sequencer
// term, and never changes.
type Meta struct {
	Instance string  // owner public key text; also the instance id
	Name     string  // display name
	Start    float64 // HAM state of start_time: Croquet time 0
	Rate     float64 // time scale (1 = real time)
	TPS      int     // ticks per second (1..60)
	Created  int64   // Unix ms when created (informational)
}

// Period returns the tick period.
func (m *Meta) Period() time.Duration { return periodOf(m.TPS) }

func periodOf(tps int) time.Duration {
	if tps < 1 || tps > maxTPS {
		tps = defaultTPS
	}
	return time.Second / time.Duration(tps)
}

func (m *Meta) validate() error {
	if err := checkKeyText("instance", m.Instance); err != nil {
		return err
	}
	if len(m.Name) > MaxName || !utf8.ValidString(m.Name) || strings.ContainsRune(m.Name, 0) {
		return fmt.Errorf("%w: instance name", ErrMalformed)
	}
	if err := checkState(m.Start); err != nil {
		return err
	}
	if math.IsNaN(m.Rate) || m.Rate < minRate || m.Rate > maxRate {
		return fmt.Errorf("%w: rate must be in [1/64, 64]", ErrMalformed)
	}
	if m.TPS < 1 || m.TPS > maxTPS {
		return fmt.Errorf("%w: tps must be in [1, 60]", ErrMalformed)
	}
	return nil
}

// Head is the last entry of a log.
type Head struct {
	Seq   uint64
	Hash  Hash
	State float64
	Epoch uint64
}

// VTime computes Croquet time in seconds from HAM states exactly as the seed
// does in JavaScript: ((state - start) * rate) / 1000. Every peer, in Go or
// JavaScript, gets the identical float64.
func VTime(state, start, rate float64) float64 {
	d := float64(state - start)
	p := float64(d * rate)
	return p / 1000
}

// Receipt acknowledges a sequenced message (or presence change): it is
// durable in the log at Seq.
type Receipt struct {
	Instance string
	ID       Hash // message id (zero for presence)
	Epoch    uint64
	Seq      uint64
	State    float64
	Time     float64 // Croquet time in seconds
}

// ReceiptOf is the receipt of entry e in the instance described by meta
// (its start and rate give the Croquet time).
func ReceiptOf(e *Entry, meta Meta) Receipt {
	return Receipt{Instance: e.Instance, ID: e.MessageID(), Epoch: e.Epoch, Seq: e.Seq, State: e.State,
		Time: VTime(e.State, meta.Start, meta.Rate)}
}

// micros converts a state to the smallest microsecond count u with
// float64(u)/1000 >= s.
func micros(s float64) int64 {
	u := int64(math.Ceil(s * 1000))
	for float64(u)/1000 < s {
		u++
	}
	for float64(u-1)/1000 >= s {
		u--
	}
	return u
}

// stateOf converts microseconds to a HAM state in milliseconds.
func stateOf(us int64) float64 { return float64(us) / 1000 }
