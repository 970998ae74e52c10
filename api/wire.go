package api

import (
	"errors"
	"math/rand/v2"
	"strings"

	"github.com/krestianstvo/luminary/internal/jsjson"
)

// Message is one decoded Gun wire message (a DAM message). Gun names its
// members with punctuation; the fields below give them names. Members the
// relay does not know are kept in Raw and are otherwise ignored, as gun does
// (e.g. "##", "%", "FOO", "DBG").
type Message struct {
	// ID is the message id ("#"). The relay invents one when it is missing.
	ID string
	// Ack is the id this message answers ("@"); empty for a new message.
	Ack string
	// Dam is the mesh-control verb ("dam": "?", "!", "hi", ...). A message
	// with a Dam is never processed as data.
	Dam string
	// PID is the sender's peer id, sent with a "dam":"?" handshake.
	PID string
	// Seen is the "><" member: a comma list of peers the sender already
	// sent this message to.
	Seen string
	// Get is the "get" member, or nil.
	Get *jsjson.Object
	// Put is the "put" member as decoded by jsjson (normally a
	// *jsjson.Object mapping soul to node); valid only when HasPut is true.
	Put    any
	HasPut bool
	// OK is the "ok" member as decoded (true, {"":1}, {"@":n,"/":m}, ...).
	OK any
	// Err is the "err" member when it is a string.
	Err string
	// Raw is the whole message object, in received order. Handlers read
	// their own members from it.
	Raw *jsjson.Object

	// bad is set by DecodeFrame when the message object has the wrong shape
	// (e.g. a non-string "#"). The relay answers it with an error and does
	// nothing else.
	bad string
	// idMade reports that ID was invented because "#" was missing.
	idMade bool
}

// Member returns the value of the top-level member name and whether it is
// present.
func (m *Message) Member(name string) (any, bool) { return m.Raw.Get(name) }

// Invalid returns the reason DecodeFrame found the message malformed, or "".
// A malformed message is answered with an error and otherwise ignored.
func (m *Message) Invalid() string { return m.bad }

// DecodeLimits bounds what DecodeFrame accepts. Zero fields take the
// defaults of [DefaultLimits].
type DecodeLimits struct {
	// MaxBytes is the largest frame, in bytes.
	MaxBytes int
	// MaxBatch is the largest number of messages in one array frame.
	MaxBatch int
	// MaxMembers caps the members of any JSON object in the frame (souls
	// per put, fields per node, members per message).
	MaxMembers int
	// MaxDepth caps nesting; a Gun put needs 6 levels inside a batch.
	MaxDepth int
	// MaxIDBytes caps the length of "#", "@", "dam" and "pid".
	MaxIDBytes int
}

// Errors returned by DecodeFrame. Each Error() text is the reason sent on the
// wire, with its machine-readable prefix.
var (
	// ErrParse reports a frame that is not strict JSON (syntax, invalid
	// UTF-8 or lone surrogate, duplicate member name, nesting too deep).
	ErrParse = errors.New("invalid: parse")
	// ErrTooManyMessages reports a batch over MaxBatch messages.
	ErrTooManyMessages = errors.New("invalid: too many messages")
	// ErrTooManyKeys reports an object over MaxMembers members.
	ErrTooManyKeys = errors.New("invalid: too many keys")
	// ErrTooBig reports a frame over MaxBytes.
	ErrTooBig = errors.New("invalid: message too big")
	// ErrNotMessage reports a frame (or batch element) that is not a JSON
	// object.
	ErrNotMessage = errors.New("invalid: message is not an object")
)

// FrameError is the error DecodeFrame returns. Its text is what the relay
// sends back in a {"dam":"!","err":...} message.
type FrameError struct {
	Err    error  // one of the Err* sentinels above
	Detail string // what the JSON parser said, if anything
}

func (e *FrameError) Error() string {
	if e.Detail == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + ": " + e.Detail
}

// Unwrap returns the sentinel.
func (e *FrameError) Unwrap() error { return e.Err }

func (l DecodeLimits) resolved() DecodeLimits {
	d := DefaultLimits()
	if l.MaxBytes <= 0 {
		l.MaxBytes = int(d.ReadLimit)
	}
	if l.MaxBatch <= 0 {
		l.MaxBatch = d.MaxBatch
	}
	if l.MaxMembers <= 0 {
		l.MaxMembers = defaultMaxMembers
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = defaultMaxDepth
	}
	if l.MaxIDBytes <= 0 {
		l.MaxIDBytes = defaultMaxIDBytes
	}
	return l
}

const (
	defaultMaxMembers = 10000
	defaultMaxDepth   = 16
	defaultMaxIDBytes = 128
	// maxSeenBytes is the part of a "><" list the relay reads.
	maxSeenBytes = 1024
	// maxMessageMembers caps the top-level members of one message (gun
	// sends at most about eight).
	maxMessageMembers = 64
)

// DecodeFrame decodes one WebSocket text frame: a single message object or a
// JSON array of them. The keep-alive frame "[]" decodes to no messages and no
// error. Parsing is strict (see internal/jsjson): invalid UTF-8, lone
// surrogates, duplicate member names, excessive nesting and oversized
// objects or batches are refused for the whole frame with a *FrameError.
//
// A message object whose known members have the wrong type is returned with
// [Message.Invalid] set, so the caller can answer it by id.
func DecodeFrame(data []byte, lim DecodeLimits) ([]*Message, error) {
	lim = lim.resolved()
	if len(data) > lim.MaxBytes {
		return nil, &FrameError{Err: ErrTooBig}
	}
	v, err := jsjson.Parse(data, jsjson.Limits{
		MaxBytes:    lim.MaxBytes,
		MaxDepth:    lim.MaxDepth,
		MaxMembers:  lim.MaxMembers,
		MaxElements: lim.MaxBatch,
	})
	if err != nil {
		return nil, parseError(err)
	}
	switch x := v.(type) {
	case *jsjson.Object:
		return []*Message{decodeMessage(x, lim)}, nil
	case []any:
		msgs := make([]*Message, 0, len(x))
		for _, e := range x {
			o, ok := e.(*jsjson.Object)
			if !ok {
				return nil, &FrameError{Err: ErrNotMessage}
			}
			msgs = append(msgs, decodeMessage(o, lim))
		}
		return msgs, nil
	default:
		return nil, &FrameError{Err: ErrNotMessage}
	}
}

// parseError maps a jsjson error to the reason sent on the wire.
func parseError(err error) *FrameError {
	var je *jsjson.Error
	if errors.As(err, &je) && errors.Is(err, jsjson.ErrTooLarge) {
		switch {
		case strings.Contains(je.Detail, "array"):
			return &FrameError{Err: ErrTooManyMessages}
		case strings.Contains(je.Detail, "member"):
			return &FrameError{Err: ErrTooManyKeys}
		default:
			return &FrameError{Err: ErrTooBig}
		}
	}
	detail := err.Error()
	detail = strings.TrimPrefix(detail, "jsjson: ")
	return &FrameError{Err: ErrParse, Detail: detail}
}

// decodeMessage pulls the known members out of one message object.
func decodeMessage(o *jsjson.Object, lim DecodeLimits) *Message {
	m := &Message{Raw: o}
	if o.Len() > maxMessageMembers {
		m.bad = ErrTooManyKeys.Error()
	}
	str := func(name string, v any, dst *string) {
		s, ok := v.(string)
		switch {
		case !ok:
			m.setBad("invalid: " + quoteName(name) + " must be a string")
		case len(s) > lim.MaxIDBytes:
			m.setBad("invalid: " + quoteName(name) + " too long")
		default:
			*dst = s
		}
	}
	for i, k := range o.Keys {
		v := o.Values[i]
		switch k {
		case "#":
			str(k, v, &m.ID)
		case "@":
			str(k, v, &m.Ack)
		case "dam":
			str(k, v, &m.Dam)
		case "pid":
			str(k, v, &m.PID)
		case "><":
			// Gun lists up to 7 peers here, by pid or by URL; it reads only
			// the first 99 characters. Longer lists are cut, not refused.
			if sv, ok := v.(string); ok {
				if len(sv) > maxSeenBytes {
					sv = sv[:maxSeenBytes]
				}
				m.Seen = sv
			} else {
				m.setBad(`invalid: "><" must be a string`)
			}
		case "get":
			g, ok := v.(*jsjson.Object)
			if !ok {
				m.setBad(`invalid: "get" must be an object`)
				continue
			}
			m.Get = g
		case "put":
			m.Put, m.HasPut = v, true
		case "ok":
			m.OK = v
		case "err":
			if s, ok := v.(string); ok {
				m.Err = s
			} else if v != nil {
				m.Err = string(jsjson.Marshal(v))
			}
		}
	}
	if m.bad == "" && o.Len() > 1 && o.Len() <= maxMessageMembers && hasCaseVariants(o.Keys) {
		m.bad = "invalid: ambiguous member names"
	}
	if m.ID == "" {
		m.ID, m.idMade = newID(), true
	}
	return m
}

func (m *Message) setBad(reason string) {
	if m.bad == "" {
		m.bad = reason
	}
}

func quoteName(s string) string { return `"` + s + `"` }

// hasCaseVariants reports whether two of keys are equal ignoring case
// ("Put" and "put"); such a message is ambiguous and refused. keys is short
// (at most maxMessageMembers).
func hasCaseVariants(keys []string) bool {
	for i := 1; i < len(keys); i++ {
		for j := 0; j < i; j++ {
			if strings.EqualFold(keys[i], keys[j]) {
				return true
			}
		}
	}
	return false
}

// idAlphabet is gun's message-id alphabet: 0-9, A-X, Z, a-z (no 'Y').
const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXZabcdefghijklmnopqrstuvwxyz"

// newID returns a random 9-character id of gun's shape. Ids must be random:
// gun also remembers "<id>0", "<id>1", ... while applying a put, so ids that
// share a prefix can collide.
func newID() string {
	var b [9]byte
	return string(appendRandomID(b[:0]))
}

// appendRandomID appends a new random id of gun's shape to b.
func appendRandomID(b []byte) []byte {
	x := rand.Uint64()
	for range 9 {
		b = append(b, idAlphabet[x%uint64(len(idAlphabet))])
		x /= uint64(len(idAlphabet))
	}
	return b
}

// Frame builders. Every outgoing message is built by appending bytes; member
// order follows what gun sends.

// appendHello appends the relay's greeting {"#":id,"dam":"?","pid":pid}, or
// the answer to a peer's greeting when replyTo is set.
func appendHello(b []byte, id, replyTo, pid string) []byte {
	b = append(b, `{"#":`...)
	b = jsjson.AppendString(b, id)
	if replyTo != "" {
		b = append(b, `,"@":`...)
		b = jsjson.AppendString(b, replyTo)
	}
	b = append(b, `,"dam":"?","pid":`...)
	b = jsjson.AppendString(b, pid)
	return append(b, '}')
}

// appendOK appends a positive ack {"#":id,"@":replyTo,"ok":true}.
func appendOK(b []byte, id, replyTo string) []byte {
	b = append(b, `{"#":`...)
	b = jsjson.AppendString(b, id)
	b = append(b, `,"@":`...)
	b = jsjson.AppendString(b, replyTo)
	return append(b, `,"ok":true}`...)
}

// appendAck appends a positive ack with a fresh id,
// {"#":<new>,"@":replyTo,"ok":true}, without allocating the id.
func appendAck(b []byte, replyTo string) []byte {
	b = append(b, `{"#":"`...)
	b = appendRandomID(b)
	b = append(b, `","@":`...)
	b = jsjson.AppendString(b, replyTo)
	return append(b, `,"ok":true}`...)
}

// appendErr appends a negative ack {"#":id,"@":replyTo,"err":reason}.
func appendErr(b []byte, id, replyTo, reason string) []byte {
	b = append(b, `{"#":`...)
	b = jsjson.AppendString(b, id)
	b = append(b, `,"@":`...)
	b = jsjson.AppendString(b, replyTo)
	b = append(b, `,"err":`...)
	b = jsjson.AppendString(b, reason)
	return append(b, '}')
}

// appendDamErr appends a mesh error {"#":id,"dam":"!","err":reason}, used when
// a frame cannot be attributed to a message id.
func appendDamErr(b []byte, id, reason string) []byte {
	b = append(b, `{"#":`...)
	b = jsjson.AppendString(b, id)
	b = append(b, `,"dam":"!","err":`...)
	b = jsjson.AppendString(b, reason)
	return append(b, '}')
}

// appendReplyOpen starts a get reply {"#":id,"@":replyTo and leaves the
// object open for a "put" member or the closing brace.
func appendReplyOpen(b []byte, id, replyTo string) []byte {
	b = append(b, `{"#":`...)
	b = jsjson.AppendString(b, id)
	b = append(b, `,"@":`...)
	return jsjson.AppendString(b, replyTo)
}

// appendPushOpen starts a pushed put {"#":id,"><":seen and leaves the object
// open for the "put" member.
func appendPushOpen(b []byte, id, seen string) []byte {
	b = append(b, `{"#":`...)
	b = jsjson.AppendString(b, id)
	if seen != "" {
		b = append(b, `,"><":`...)
		b = jsjson.AppendString(b, seen)
	}
	return b
}

// appendGet appends a get {"#":id,"><":seen,"get":{"#":soul[,".":field]}}.
func appendGet(b []byte, id, seen, soul, field string, hasField bool) []byte {
	b = appendPushOpen(b, id, seen)
	b = append(b, `,"get":{"#":`...)
	b = jsjson.AppendString(b, soul)
	if hasField {
		b = append(b, `,".":`...)
		b = jsjson.AppendString(b, field)
	}
	return append(b, `}}`...)
}

// keepAlive is the frame gun relays send every 20 s; peers ignore it.
var keepAlive = []byte("[]")
