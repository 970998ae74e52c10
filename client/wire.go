package client

import (
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/jsjson"
)

// msg is one Gun wire message as the client reads it.
type msg struct {
	ID   string // "#"
	Ack  string // "@"
	Dam  string
	PID  string
	Put  graph.Graph // nil when absent or empty
	OK   bool        // "ok" present and truthy
	Err  string
	Raw  *jsjson.Object
	bad  error // the put did not parse
	more bool  // "%": more chunks of a get reply follow
}

// member returns a top-level member.
func (m *msg) member(k string) (any, bool) { return m.Raw.Get(k) }

// decodeFrame parses one text frame: a message or an array of messages.
func decodeFrame(data []byte, lim jsjson.Limits, glim graph.Limits) ([]*msg, error) {
	v, err := jsjson.Parse(data, lim)
	if err != nil {
		return nil, fmt.Errorf("client: frame: %w", err)
	}
	var objs []*jsjson.Object
	switch x := v.(type) {
	case *jsjson.Object:
		objs = []*jsjson.Object{x}
	case []any:
		for _, e := range x {
			o, ok := e.(*jsjson.Object)
			if !ok {
				return nil, errors.New("client: frame: batch element is not an object")
			}
			objs = append(objs, o)
		}
	default:
		return nil, errors.New("client: frame: not a message")
	}
	out := make([]*msg, 0, len(objs))
	for _, o := range objs {
		m := &msg{Raw: o}
		for i, k := range o.Keys {
			val := o.Values[i]
			switch k {
			case "#":
				m.ID, _ = val.(string)
			case "@":
				m.Ack, _ = val.(string)
			case "dam":
				m.Dam, _ = val.(string)
			case "pid":
				m.PID, _ = val.(string)
			case "%":
				m.more = true
			case "ok":
				switch x := val.(type) {
				case bool:
					m.OK = x
				case nil:
				default:
					m.OK = true
				}
			case "err":
				switch x := val.(type) {
				case string:
					m.Err = x
				case nil:
				default:
					m.Err = string(jsjson.Marshal(x))
				}
			case "put":
				g, err := graph.ParsePut(val, glim)
				if err != nil {
					m.bad = err
				} else if len(g) > 0 {
					m.Put = g
				}
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// idAlphabet is gun's message-id alphabet (no 'Y').
const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXZabcdefghijklmnopqrstuvwxyz"

// newID returns a random 9-character message id of gun's shape.
func newID() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b[:])
}

// getFrame builds {"#":id,"get":{"#":soul[,".":field]}}.
func getFrame(id, soul, field string) []byte {
	g := &jsjson.Object{}
	g.Set("#", soul)
	if field != "" {
		g.Set(".", field)
	}
	o := &jsjson.Object{}
	o.Set("#", id)
	o.Set("get", g)
	return jsjson.Append(nil, o)
}

// putFrame builds {"#":id,"put":{soul:node,…}}.
func putFrame(id string, g graph.Graph) []byte {
	b := []byte(`{"#":`)
	b = jsjson.AppendString(b, id)
	b = append(b, `,"put":`...)
	b = g.AppendJSON(b)
	return append(b, '}')
}

// helloFrame answers the relay's {"dam":"?"} with our pid.
func helloFrame(id, replyTo, pid string) []byte {
	o := &jsjson.Object{}
	o.Set("#", id)
	if replyTo != "" {
		o.Set("@", replyTo)
	}
	o.Set("dam", "?")
	o.Set("pid", pid)
	return jsjson.Append(nil, o)
}
