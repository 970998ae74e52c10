package heartbeat

import (
	"fmt"
	"math"
	"slices"

	"github.com/krestianstvo/luminary/internal/jsjson"
)

// Wire and storage encoding. Messages, entries, ticks and metadata travel
// and are stored as JSON objects written with jsjson (JSON.stringify form)
// and parsed strictly: no duplicate or case-variant member names, no unknown
// members, integers exact below 2^53, binary fields as canonical unpadded
// base64url. Nothing here is signed as JSON: hashes and signatures cover the
// length-prefixed bytes of keys.Message, recomputed from the parsed fields, so
// the JSON form can change without breaking a signature.

// parseLimits bounds one JSON document (a message with a maximal payload
// plus envelope).
var parseLimits = jsjson.Limits{MaxBytes: MaxPayload + 64<<10, MaxDepth: 4, MaxMembers: 32, MaxElements: MaxPath + 1, RejectCaseVariants: true}

// MarshalJSON encodes m (with its id) as a JSON object.
func (m *Message) MarshalJSON() ([]byte, error) { return m.AppendJSON(nil), nil }

// AppendJSON appends the JSON form of m to dst.
func (m *Message) AppendJSON(dst []byte) []byte {
	o := &jsjson.Object{}
	o.Set("instance", m.Instance)
	o.Set("author", m.Author)
	o.Set("ts", float64(m.TS))
	if m.Nonce != "" {
		o.Set("nonce", m.Nonce)
	}
	o.Set("payload", m.Payload)
	o.Set("sig", b64.EncodeToString(m.Sig))
	o.Set("id", m.ID().String())
	return jsjson.Append(dst, o)
}

// ParseMessage decodes the JSON form of a message. An "id" member, when
// present, must equal the id computed from the fields ([ErrIDMismatch]).
// The signature is not verified here.
func ParseMessage(data []byte) (Message, error) {
	var m Message
	o, err := parseObject(data)
	if err != nil {
		return m, err
	}
	r := reader{o: o}
	m.Instance = r.str("instance", true)
	m.Author = r.str("author", true)
	m.TS = int64(r.uint("ts", true))
	m.Nonce = r.str("nonce", false)
	m.Payload = r.str("payload", true)
	m.Sig = r.bytes("sig", true, signatureSize)
	id, hasID := r.hash("id", false)
	if err := r.done(); err != nil {
		return Message{}, err
	}
	if err := m.validate(MaxPayload); err != nil {
		return Message{}, err
	}
	if hasID && id != m.ID() {
		return Message{}, fmt.Errorf("heartbeat: message: %w", ErrIDMismatch)
	}
	return m, nil
}

// MarshalJSON encodes e (with its hash) as a JSON object.
func (e *Entry) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil), nil }

// AppendJSON appends the JSON form of e to dst. Zero optional fields are
// omitted.
func (e *Entry) AppendJSON(dst []byte) []byte { return jsjson.Append(dst, e.object(e.Hash())) }

func (e *Entry) object(h Hash) *jsjson.Object {
	o := &jsjson.Object{}
	o.Set("instance", e.Instance)
	o.Set("epoch", float64(e.Epoch))
	o.Set("seq", float64(e.Seq))
	o.Set("state", e.State)
	o.Set("prev", e.Prev.String())
	o.Set("kind", e.Kind.String())
	if e.Author != "" {
		o.Set("author", e.Author)
	}
	if e.TS != 0 {
		o.Set("ts", float64(e.TS))
	}
	if e.Nonce != "" {
		o.Set("nonce", e.Nonce)
	}
	if e.Payload != "" {
		o.Set("payload", e.Payload)
	}
	if len(e.Sig) > 0 {
		o.Set("sig", b64.EncodeToString(e.Sig))
	}
	if e.Ref != 0 {
		o.Set("ref", float64(e.Ref))
	}
	if !e.RefHash.IsZero() {
		o.Set("ref_hash", e.RefHash.String())
	}
	o.Set("hash", h.String())
	return o
}

// ParseEntry decodes the JSON form of an entry and checks that its "hash"
// member equals the hash of its fields ([ErrIDMismatch]). Signatures and
// order are not checked here.
func ParseEntry(data []byte) (Entry, error) {
	o, err := parseObject(data)
	if err != nil {
		return Entry{}, err
	}
	return entryFromObject(o)
}

func entryFromObject(o *jsjson.Object) (Entry, error) {
	var e Entry
	r := reader{o: o}
	e.Instance = r.str("instance", true)
	e.Epoch = r.uint("epoch", true)
	e.Seq = r.uint("seq", true)
	e.State = r.num("state", true)
	e.Prev, _ = r.hash("prev", true)
	kind := r.str("kind", true)
	e.Author = r.str("author", false)
	e.TS = int64(r.uint("ts", false))
	e.Nonce = r.str("nonce", false)
	e.Payload = r.str("payload", false)
	e.Sig = r.bytes("sig", false, signatureSize)
	e.Ref = r.uint("ref", false)
	e.RefHash, _ = r.hash("ref_hash", false)
	h, _ := r.hash("hash", true)
	if err := r.done(); err != nil {
		return Entry{}, err
	}
	k, ok := parseKind(kind)
	if !ok {
		return Entry{}, fmt.Errorf("%w: unknown entry kind %q", ErrMalformed, kind)
	}
	e.Kind = k
	if err := e.validate(); err != nil {
		return Entry{}, err
	}
	if e.Hash() != h {
		return Entry{}, fmt.Errorf("heartbeat: entry %d: %w", e.Seq, ErrIDMismatch)
	}
	return e, nil
}

// MarshalJSON encodes t as a JSON object.
func (t *Tick) MarshalJSON() ([]byte, error) { return t.AppendJSON(nil), nil }

// AppendJSON appends the JSON form of t to dst.
//
// It writes the members directly (the same text as jsjson.Append of
// [Tick.object], which tests check): a relay publishes 20 ticks a second
// per world, so this is on its hottest path.
func (t *Tick) AppendJSON(dst []byte) []byte {
	var hb [64]byte
	dst = slices.Grow(dst, 256+len(t.Instance)+len(t.Proof.Signer)+46*len(t.Proof.Path))
	dst = append(dst, `{"instance":`...)
	dst = jsjson.AppendString(dst, t.Instance)
	dst = append(dst, `,"epoch":`...)
	dst = jsjson.AppendNumber(dst, float64(t.Epoch))
	dst = append(dst, `,"n":`...)
	dst = jsjson.AppendNumber(dst, float64(t.N))
	dst = append(dst, `,"seq":`...)
	dst = jsjson.AppendNumber(dst, float64(t.Seq))
	dst = append(dst, `,"head":"`...)
	dst = append(dst, t.Head.appendText(hb[:0])...)
	dst = append(dst, `","state":`...)
	dst = jsjson.AppendNumber(dst, t.State)
	dst = append(dst, `,"start":`...)
	dst = jsjson.AppendNumber(dst, t.Start)
	dst = append(dst, `,"rate":`...)
	dst = jsjson.AppendNumber(dst, t.Rate)
	dst = append(dst, `,"signer":`...)
	dst = jsjson.AppendString(dst, t.Proof.Signer)
	dst = append(dst, `,"index":`...)
	dst = jsjson.AppendNumber(dst, float64(t.Proof.Index))
	dst = append(dst, `,"count":`...)
	dst = jsjson.AppendNumber(dst, float64(t.Proof.Count))
	dst = append(dst, `,"path":[`...)
	for i, h := range t.Proof.Path {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, h.appendText(hb[:0])...)
		dst = append(dst, '"')
	}
	dst = append(dst, `],"sig":"`...)
	dst = b64.AppendEncode(dst, t.Proof.Sig)
	return append(dst, `"}`...)
}

func (t *Tick) object() *jsjson.Object {
	o := &jsjson.Object{}
	o.Set("instance", t.Instance)
	o.Set("epoch", float64(t.Epoch))
	o.Set("n", float64(t.N))
	o.Set("seq", float64(t.Seq))
	o.Set("head", t.Head.String())
	o.Set("state", t.State)
	o.Set("start", t.Start)
	o.Set("rate", t.Rate)
	o.Set("signer", t.Proof.Signer)
	o.Set("index", float64(t.Proof.Index))
	o.Set("count", float64(t.Proof.Count))
	path := make([]any, len(t.Proof.Path))
	for i, h := range t.Proof.Path {
		path[i] = h.String()
	}
	o.Set("path", path)
	o.Set("sig", b64.EncodeToString(t.Proof.Sig))
	return o
}

// ParseTick decodes the JSON form of a tick. The proof is not verified
// here; see [VerifyTick].
func ParseTick(data []byte) (Tick, error) {
	o, err := parseObject(data)
	if err != nil {
		return Tick{}, err
	}
	return tickFromObject(o)
}

func tickFromObject(o *jsjson.Object) (Tick, error) {
	var t Tick
	r := reader{o: o}
	t.Instance = r.str("instance", true)
	t.Epoch = r.uint("epoch", true)
	t.N = r.uint("n", true)
	t.Seq = r.uint("seq", true)
	t.Head, _ = r.hash("head", true)
	t.State = r.num("state", true)
	t.Start = r.num("start", true)
	t.Rate = r.num("rate", true)
	t.Proof.Signer = r.str("signer", true)
	idx := r.uint("index", true)
	cnt := r.uint("count", true)
	t.Proof.Path = r.hashes("path")
	t.Proof.Sig = r.bytes("sig", true, signatureSize)
	if err := r.done(); err != nil {
		return Tick{}, err
	}
	if cnt == 0 || cnt > math.MaxUint32 || idx >= cnt {
		return Tick{}, fmt.Errorf("%w: tick proof index/count", ErrMalformed)
	}
	t.Proof.Index, t.Proof.Count = uint32(idx), uint32(cnt)
	if err := t.validate(); err != nil {
		return Tick{}, err
	}
	if err := checkKeyText("signer", t.Proof.Signer); err != nil {
		return Tick{}, err
	}
	return t, nil
}

// MarshalJSON encodes m as a JSON object.
func (m *Meta) MarshalJSON() ([]byte, error) { return jsjson.Append(nil, m.object()), nil }

func (m *Meta) object() *jsjson.Object {
	o := &jsjson.Object{}
	o.Set("instance", m.Instance)
	o.Set("name", m.Name)
	o.Set("start", m.Start)
	o.Set("rate", m.Rate)
	o.Set("tps", float64(m.TPS))
	o.Set("created", float64(m.Created))
	return o
}

// ParseMeta decodes the JSON form of instance metadata.
func ParseMeta(data []byte) (Meta, error) {
	o, err := parseObject(data)
	if err != nil {
		return Meta{}, err
	}
	return metaFromObject(o)
}

func metaFromObject(o *jsjson.Object) (Meta, error) {
	var m Meta
	r := reader{o: o}
	m.Instance = r.str("instance", true)
	m.Name = r.str("name", true)
	m.Start = r.num("start", true)
	m.Rate = r.num("rate", true)
	m.TPS = int(r.uint("tps", true))
	m.Created = int64(r.uint("created", true))
	if err := r.done(); err != nil {
		return Meta{}, err
	}
	if err := m.validate(); err != nil {
		return Meta{}, err
	}
	return m, nil
}

func parseObject(data []byte) (*jsjson.Object, error) {
	v, err := jsjson.Parse(data, parseLimits)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	o, ok := v.(*jsjson.Object)
	if !ok {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	return o, nil
}

// reader extracts typed members from an object, remembering the first
// problem; done reports it and refuses unknown members.
type reader struct {
	o    *jsjson.Object
	read []string
	err  error
}

func (r *reader) get(k string, required bool) (any, bool) {
	v, ok := r.o.Get(k)
	if !ok {
		if required && r.err == nil {
			r.err = fmt.Errorf("%w: missing member %q", ErrMalformed, k)
		}
		return nil, false
	}
	r.read = append(r.read, k)
	return v, true
}

func (r *reader) fail(k, want string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: member %q must be %s", ErrMalformed, k, want)
	}
}

func (r *reader) str(k string, required bool) string {
	v, ok := r.get(k, required)
	if !ok {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		r.fail(k, "a string")
	}
	return s
}

func (r *reader) num(k string, required bool) float64 {
	v, ok := r.get(k, required)
	if !ok {
		return 0
	}
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
		r.fail(k, "a finite number")
		return 0
	}
	return f
}

func (r *reader) uint(k string, required bool) uint64 {
	v, ok := r.get(k, required)
	if !ok {
		return 0
	}
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || f < 0 || f > maxSafeInt || math.Signbit(f) {
		r.fail(k, "an integer in [0, 2^53)")
		return 0
	}
	return uint64(f)
}

func (r *reader) bytes(k string, required bool, size int) []byte {
	s := r.str(k, required)
	if s == "" {
		return nil
	}
	if len(s) != b64.EncodedLen(size) {
		r.fail(k, fmt.Sprintf("%d bytes of base64url", size))
		return nil
	}
	b := make([]byte, size)
	if n, err := b64.Decode(b, []byte(s)); err != nil || n != size {
		r.fail(k, "canonical base64url")
		return nil
	}
	return b
}

func (r *reader) hash(k string, required bool) (Hash, bool) {
	s := r.str(k, required)
	if s == "" {
		return Hash{}, false
	}
	h, err := ParseHash(s)
	if err != nil {
		r.fail(k, "a hash (43 base64url characters)")
		return Hash{}, false
	}
	return h, true
}

func (r *reader) hashes(k string) []Hash {
	v, ok := r.get(k, true)
	if !ok {
		return nil
	}
	arr, ok := v.([]any)
	if !ok || len(arr) > MaxPath {
		r.fail(k, fmt.Sprintf("an array of at most %d hashes", MaxPath))
		return nil
	}
	out := make([]Hash, 0, len(arr))
	for _, x := range arr {
		s, ok := x.(string)
		if !ok {
			r.fail(k, "an array of hashes")
			return nil
		}
		h, err := ParseHash(s)
		if err != nil {
			r.fail(k, "an array of hashes")
			return nil
		}
		out = append(out, h)
	}
	return out
}

func (r *reader) done() error {
	if r.err != nil {
		return r.err
	}
	if len(r.read) != r.o.Len() {
		for _, k := range r.o.Keys {
			if !slices.Contains(r.read, k) {
				return fmt.Errorf("%w: unknown member %q", ErrMalformed, k)
			}
		}
	}
	return nil
}
