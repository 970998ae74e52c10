package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
)

// message is the subset of a Gun wire message (DAM) that the load tool reads.
// Unknown fields ("##", "><", "%", "FOO", ...) are ignored.
type message struct {
	ID  string          `json:"#"`
	At  string          `json:"@"`
	Put json.RawMessage `json:"put"`
	Get json.RawMessage `json:"get"`
	OK  json.RawMessage `json:"ok"`
	Err json.RawMessage `json:"err"`
	Dam string          `json:"dam"`
	Pid string          `json:"pid"`
}

// errEmptyFrame reports a frame with no JSON value in it.
var errEmptyFrame = errors.New("luminary-load: empty frame")

// decodeFrame splits one WebSocket text frame into its messages. A frame is a
// single JSON object or a JSON array of objects; the keep-alive "[]" yields no
// messages and no error.
func decodeFrame(b []byte) ([]message, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, errEmptyFrame
	}
	switch b[0] {
	case '[':
		var ms []message
		if err := json.Unmarshal(b, &ms); err != nil {
			return nil, fmt.Errorf("luminary-load: decode batch frame: %w", err)
		}
		return ms, nil
	case '{':
		var m message
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("luminary-load: decode frame: %w", err)
		}
		return []message{m}, nil
	default:
		return nil, fmt.Errorf("luminary-load: frame is neither object nor array (starts with %q)", b[0])
	}
}

// isKeepAlive reports whether a frame is the relay's "[]" keep-alive.
func isKeepAlive(b []byte) bool {
	return string(bytes.TrimSpace(b)) == "[]"
}

// ackKind classifies a message as a reply to a put: 0 not an ack (no "@", a
// dam message, or neither "ok" nor "err"), 1 positive ack, -1 negative ack
// ("err", or "ok":false/null).
func ackKind(m *message) int {
	if m.At == "" || m.Dam != "" {
		return 0
	}
	if len(m.Err) > 0 {
		return -1
	}
	switch string(m.OK) {
	case "":
		return 0
	case "false", "null":
		return -1
	}
	return 1
}

// ackErr describes a negative ack.
func ackErr(m *message) string {
	if len(m.Err) > 0 {
		return errText(m.Err)
	}
	return "ok:" + string(m.OK)
}

// errText renders a message's err field (normally a JSON string) for humans.
func errText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// idAlphabet is gun's message-id alphabet: 0-9, A-X, Z, a-z (no "Y").
const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXZabcdefghijklmnopqrstuvwxyz"

// newID returns a random 9-character id of gun's shape. Random ids matter:
// gun also remembers "<id>0", "<id>1", ... while applying a put, so sequential
// ids that share a prefix would be dropped as duplicates.
func newID() string {
	var b [9]byte
	for i := range b {
		b[i] = idAlphabet[rand.IntN(len(idAlphabet))]
	}
	return string(b[:])
}

// stateClock produces Gun HAM states the way Gun.state() does: milliseconds
// since the epoch as a float, with 1/999 ms steps for repeated calls in one
// millisecond, so states from one process strictly increase.
type stateClock struct {
	mu   sync.Mutex
	last float64
	n    int
	now  func() time.Time
}

func newStateClock() *stateClock {
	return &stateClock{last: -1, now: time.Now}
}

// next returns the next state.
func (s *stateClock) next() float64 {
	t := float64(s.now().UnixMilli())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last < t {
		s.n = 0
		s.last = t
		return t
	}
	s.n++
	s.last = t + float64(s.n)/999
	return s.last
}

// appendJSONString appends s as a JSON string. The tool only puts ASCII
// identifiers and values it made itself, so it escapes just what JSON requires.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// appendState appends a HAM state the way JavaScript prints a number of that
// size (shortest round-trip decimal, no exponent below 1e21).
func appendState(b []byte, st float64) []byte {
	return strconv.AppendFloat(b, st, 'f', -1, 64)
}

// appendPut appends one put message that writes field=value with the given
// state on soul:
//
//	{"#":id,"put":{soul:{"_":{"#":soul,">":{field:state}},field:value}}}
func appendPut(b []byte, id, soul, field string, state float64, value string) []byte {
	b = append(b, `{"#":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"put":{`...)
	b = appendJSONString(b, soul)
	b = append(b, `:{"_":{"#":`...)
	b = appendJSONString(b, soul)
	b = append(b, `,">":{`...)
	b = appendJSONString(b, field)
	b = append(b, ':')
	b = appendState(b, state)
	b = append(b, `}},`...)
	b = appendJSONString(b, field)
	b = append(b, ':')
	b = appendJSONString(b, value)
	return append(b, `}}}`...)
}

// appendGet appends a get for a whole node: {"#":id,"get":{"#":soul}}.
func appendGet(b []byte, id, soul string) []byte {
	b = append(b, `{"#":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"get":{"#":`...)
	b = appendJSONString(b, soul)
	return append(b, `}}`...)
}

// appendHello appends the answer to a relay's {"dam":"?"} greeting.
func appendHello(b []byte, pid, replyTo string) []byte {
	b = append(b, `{"dam":"?","pid":`...)
	b = appendJSONString(b, pid)
	b = append(b, `,"@":`...)
	b = appendJSONString(b, replyTo)
	b = append(b, `,"#":`...)
	b = appendJSONString(b, newID())
	return append(b, '}')
}

// valueMarker starts every value the tool writes. Values look like
//
//	LLv1.<run>.<seq>.<unixnano>.xxxx…
//
// padded with 'x' to the requested size, so a subscriber can find deliveries
// in a frame without decoding it and can tell them from another run's data.
const valueMarker = "LLv1."

// makeValue builds a value of exactly size bytes (at least the header).
func makeValue(run string, seq uint64, sentNano int64, size int) string {
	b := make([]byte, 0, max(size, 64))
	b = append(b, valueMarker...)
	b = append(b, run...)
	b = append(b, '.')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, sentNano, 10)
	b = append(b, '.')
	for len(b) < size {
		b = append(b, 'x')
	}
	return string(b)
}

// delivery is one value the tool recognised in a pushed frame.
type delivery struct {
	seq      uint64
	sentNano int64
}

// scanDeliveries finds every value of run `run` in a raw frame and appends
// them to dst. It is the fast path for subscribers: fan-out at thousands of
// puts/s times dozens of subscribers would otherwise spend the tool's CPU on
// JSON decoding and skew the relay measurement on a shared machine. Only
// frames that carry a "put" are scanned.
func scanDeliveries(dst []delivery, frame []byte, run string) []delivery {
	if !bytes.Contains(frame, []byte(`"put"`)) {
		return dst
	}
	prefix := make([]byte, 0, len(valueMarker)+len(run)+1)
	prefix = append(prefix, valueMarker...)
	prefix = append(prefix, run...)
	prefix = append(prefix, '.')
	for {
		i := bytes.Index(frame, prefix)
		if i < 0 {
			return dst
		}
		frame = frame[i+len(prefix):]
		seq, rest, ok := cutUint(frame)
		if !ok || len(rest) == 0 || rest[0] != '.' {
			continue
		}
		ns, rest2, ok := cutUint(rest[1:])
		if !ok || len(rest2) == 0 || rest2[0] != '.' {
			continue
		}
		dst = append(dst, delivery{seq: seq, sentNano: int64(ns)})
		frame = rest2
	}
}

// cutUint parses leading decimal digits.
func cutUint(b []byte) (uint64, []byte, bool) {
	var n uint64
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' && i < 19 {
		n = n*10 + uint64(b[i]-'0')
		i++
	}
	return n, b[i:], i > 0
}

// parseDeliveriesStrict decodes a frame fully and returns the deliveries of
// run `run` on soul `soul`, checking that each field name is "f<seq>" and
// matches the sequence number inside its value. It is the --strict path and
// the reference the fast scanner is tested against.
func parseDeliveriesStrict(frame []byte, soul, run string) ([]delivery, error) {
	if isKeepAlive(frame) {
		return nil, nil
	}
	ms, err := decodeFrame(frame)
	if err != nil {
		return nil, err
	}
	var out []delivery
	prefix := valueMarker + run + "."
	for _, m := range ms {
		if len(m.Put) == 0 || m.Dam != "" {
			continue
		}
		var graph map[string]map[string]json.RawMessage
		if err := json.Unmarshal(m.Put, &graph); err != nil {
			return nil, fmt.Errorf("luminary-load: decode put: %w", err)
		}
		node, ok := graph[soul]
		if !ok {
			continue
		}
		for field, raw := range node {
			if field == "_" {
				continue
			}
			var v string
			if json.Unmarshal(raw, &v) != nil || len(v) < len(prefix) || v[:len(prefix)] != prefix {
				continue
			}
			seq, rest, ok := cutUint([]byte(v[len(prefix):]))
			if !ok || len(rest) == 0 || rest[0] != '.' {
				return nil, fmt.Errorf("luminary-load: field %q: malformed value", field)
			}
			ns, _, ok := cutUint(rest[1:])
			if !ok {
				return nil, fmt.Errorf("luminary-load: field %q: malformed timestamp", field)
			}
			if field != "f"+strconv.FormatUint(seq, 10) {
				return nil, fmt.Errorf("luminary-load: field %q carries seq %d", field, seq)
			}
			out = append(out, delivery{seq: seq, sentNano: int64(ns)})
		}
	}
	return out, nil
}
