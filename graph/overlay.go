package graph

import (
	"slices"
	"strings"
	"sync"
)

// overlay holds the durable fields that are in the write-ahead log but not
// yet in a synced bbolt transaction. The writer adds each group commit to
// cur after its log record is synced; a checkpoint freezes cur (the writer
// swaps in a new one), writes the frozen fields to bbolt and then drops
// them. Every field in the overlay is the HAM winner over what bbolt holds
// for it, and cur wins over frozen, so a read takes cur, then frozen,
// then bbolt — reading the overlay before opening its bbolt transaction,
// so that a checkpoint finishing in between loses nothing.
type overlay struct {
	mu     sync.RWMutex
	cur    map[string]map[string]Field // written by the writer
	frozen map[string]map[string]Field // read-only; being checkpointed, or nil

	// Approximate memory of cur and frozen, for backpressure.
	curBytes, frozenBytes int
}

func newOverlay() *overlay {
	return &overlay{cur: make(map[string]map[string]Field)}
}

// entryBytes estimates the memory one field takes in the overlay.
func entryBytes(name string, f Field) int {
	return len(name) + f.Value.size() + 64
}

// lookupOverlay returns the field soul/name of cur, else of frozen. The
// writer calls it without ov.mu held: it is the only goroutine that
// changes cur, and it passes the frozen map it took at the start of its
// batch.
func lookupOverlay(cur, frozen map[string]map[string]Field, soul, name string) (Field, bool) {
	if f, ok := cur[soul][name]; ok {
		return f, true
	}
	f, ok := frozen[soul][name]
	return f, ok
}

// add puts the fields of one synced group commit into cur. It takes
// ownership of g's inner maps (the caller drops g).
func (ov *overlay) add(g map[string]map[string]Field) {
	ov.mu.Lock()
	defer ov.mu.Unlock()
	for soul, fields := range g {
		node := ov.cur[soul]
		if node == nil {
			ov.cur[soul] = fields
			ov.curBytes += len(soul) + 64
			for name, f := range fields {
				ov.curBytes += entryBytes(name, f)
			}
			continue
		}
		for name, f := range fields {
			if old, ok := node[name]; ok {
				ov.curBytes -= entryBytes(name, old)
			}
			node[name] = f
			ov.curBytes += entryBytes(name, f)
		}
	}
}

// freeze makes cur the frozen map and starts an empty cur. It returns the
// frozen map, or nil if cur was empty. The previous frozen map must have
// been dropped.
func (ov *overlay) freeze() map[string]map[string]Field {
	ov.mu.Lock()
	defer ov.mu.Unlock()
	if len(ov.cur) == 0 {
		return nil
	}
	ov.frozen, ov.frozenBytes = ov.cur, ov.curBytes
	ov.cur, ov.curBytes = make(map[string]map[string]Field), 0
	return ov.frozen
}

// drop forgets the frozen map once bbolt holds it.
func (ov *overlay) drop() {
	ov.mu.Lock()
	ov.frozen, ov.frozenBytes = nil, 0
	ov.mu.Unlock()
}

// frozenMap returns the frozen map (nil if none).
func (ov *overlay) frozenMap() map[string]map[string]Field {
	ov.mu.RLock()
	defer ov.mu.RUnlock()
	return ov.frozen
}

// bytes returns the approximate memory of cur and of cur plus frozen.
func (ov *overlay) bytes() (cur, total int) {
	ov.mu.RLock()
	defer ov.mu.RUnlock()
	return ov.curBytes, ov.curBytes + ov.frozenBytes
}

// node returns a copy of the overlay's fields of soul, or nil.
func (ov *overlay) node(soul string) *Node {
	ov.mu.RLock()
	defer ov.mu.RUnlock()
	fz, cu := ov.frozen[soul], ov.cur[soul]
	if len(fz) == 0 && len(cu) == 0 {
		return nil
	}
	n := &Node{Soul: soul, Fields: make(map[string]Field, len(fz)+len(cu))}
	for name, f := range fz {
		n.Fields[name] = f
	}
	for name, f := range cu {
		n.Fields[name] = f
	}
	return n
}

// hasSoul reports whether the overlay holds a field of soul.
func (ov *overlay) hasSoul(soul string) bool {
	ov.mu.RLock()
	defer ov.mu.RUnlock()
	return len(ov.cur[soul]) > 0 || len(ov.frozen[soul]) > 0
}

// field returns the overlay's field soul/name.
func (ov *overlay) field(soul, name string) (Field, bool) {
	ov.mu.RLock()
	defer ov.mu.RUnlock()
	return lookupOverlay(ov.cur, ov.frozen, soul, name)
}

// scan returns copies of the overlay's nodes whose soul starts with
// prefix, sorted by soul.
func (ov *overlay) scan(prefix string) []*Node {
	ov.mu.RLock()
	byName := make(map[string]*Node)
	for _, m := range []map[string]map[string]Field{ov.frozen, ov.cur} {
		for soul, fields := range m {
			if !strings.HasPrefix(soul, prefix) || len(fields) == 0 {
				continue
			}
			n := byName[soul]
			if n == nil {
				n = &Node{Soul: soul, Fields: make(map[string]Field, len(fields))}
				byName[soul] = n
			}
			for name, f := range fields {
				n.Fields[name] = f
			}
		}
	}
	ov.mu.RUnlock()
	nodes := make([]*Node, 0, len(byName))
	for _, n := range byName {
		nodes = append(nodes, n)
	}
	slices.SortFunc(nodes, func(a, b *Node) int { return strings.Compare(a.Soul, b.Soul) })
	return nodes
}
