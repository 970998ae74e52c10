package graph

import (
	"maps"
	"slices"

	"github.com/krestianstvo/luminary/internal/jsjson"
)

// Field is one field of a node: its value and its HAM state (milliseconds
// since the Unix epoch, possibly fractional; see StateClock).
type Field struct {
	Value Value
	State float64
}

// Node is a Gun node: a soul and its fields. Field name "_" is never data.
type Node struct {
	Soul   string
	Fields map[string]Field
}

// NewNode returns an empty node named soul.
func NewNode(soul string) *Node {
	return &Node{Soul: soul, Fields: make(map[string]Field)}
}

// Clone returns a deep copy of n (values are immutable and shared).
func (n *Node) Clone() *Node {
	if n == nil {
		return nil
	}
	return &Node{Soul: n.Soul, Fields: maps.Clone(n.Fields)}
}

// SortedFields returns the field names of n in UTF-16 order (the order
// gun.js and the wire use), without the reserved name "_".
func (n *Node) SortedFields() []string {
	names := make([]string, 0, len(n.Fields))
	for k := range n.Fields {
		if k != "_" {
			names = append(names, k)
		}
	}
	slices.SortFunc(names, jsjson.CompareUTF16)
	return names
}

// AppendJSON appends n in Gun's wire form
// {"_":{"#":soul,">":{field:state,...}},field:value,...}, fields in UTF-16
// order so the output is deterministic. A field named "_" (never data) is
// left out.
func (n *Node) AppendJSON(dst []byte) []byte {
	names := n.SortedFields()
	dst = append(dst, `{"_":{"#":`...)
	dst = jsjson.AppendString(dst, n.Soul)
	dst = append(dst, `,">":{`...)
	for i, k := range names {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsjson.AppendString(dst, k)
		dst = append(dst, ':')
		dst = jsjson.AppendNumber(dst, n.Fields[k].State)
	}
	dst = append(dst, "}}"...)
	for _, k := range names {
		dst = append(dst, ',')
		dst = jsjson.AppendString(dst, k)
		dst = append(dst, ':')
		dst = n.Fields[k].Value.AppendJSON(dst)
	}
	return append(dst, '}')
}

// Graph maps souls to nodes. It is used both for put diffs (only the fields
// being written) and for snapshots. A Graph's keys must equal the Soul of
// their node.
type Graph map[string]*Node

// Souls returns the souls of g in UTF-16 order.
func (g Graph) Souls() []string {
	souls := make([]string, 0, len(g))
	for s := range g {
		souls = append(souls, s)
	}
	slices.SortFunc(souls, jsjson.CompareUTF16)
	return souls
}

// Len returns the total number of fields in g.
func (g Graph) Len() int {
	n := 0
	for _, node := range g {
		n += len(node.Fields)
	}
	return n
}

// Clone returns a deep copy of g.
func (g Graph) Clone() Graph {
	if g == nil {
		return nil
	}
	c := make(Graph, len(g))
	for s, n := range g {
		c[s] = n.Clone()
	}
	return c
}

// Set stores field f of soul in g, creating the node if needed.
func (g Graph) Set(soul, field string, f Field) {
	n := g[soul]
	if n == nil {
		n = NewNode(soul)
		g[soul] = n
	}
	n.Fields[field] = f
}

// AppendJSON appends g in the wire form of a put:
// {soul:{"_":{"#":soul,">":{field:state}},field:value},...}, souls and
// fields in UTF-16 order.
func (g Graph) AppendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	for i, s := range g.Souls() {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsjson.AppendString(dst, s)
		dst = append(dst, ':')
		dst = g[s].AppendJSON(dst)
	}
	return append(dst, '}')
}

// Equal reports whether g and o hold the same souls, fields, states and
// values.
func (g Graph) Equal(o Graph) bool {
	if len(g) != len(o) {
		return false
	}
	for s, n := range g {
		m, ok := o[s]
		if !ok || len(n.Fields) != len(m.Fields) {
			return false
		}
		for k, f := range n.Fields {
			h, ok := m.Fields[k]
			if !ok || h.State != f.State || !h.Value.Equal(f.Value) || h.Value.Kind() != f.Value.Kind() {
				return false
			}
		}
	}
	return true
}
