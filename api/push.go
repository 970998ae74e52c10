package api

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/internal/sched"
)

// pushEncoder builds the push frames of one broadcast:
// {"#":id[,"><":seen],"put":{soul:node,...}}. Each node that goes out
// whole (the recipient follows the entire soul, or the frame carries the
// whole commit) is encoded once, into a scratch buffer shared by every
// frame of the broadcast, and every frame is sized exactly before it is
// filled by copying, into a fresh allocation (a frame several connections
// share) or a pooled buffer (a frame for one connection; frames.go). A
// heartbeat round of a thousand worlds pushes hundreds of kilobytes a
// frame; growing each frame (and each cached node) by appending made
// several times the output in garbage, most of what such a relay
// allocated.
type pushEncoder struct {
	accepted graph.Graph
	head     []byte // {"#":id[,"><":seen],"put":
	scratch  *[]byte
	spans    map[string]span // whole nodes encoded in scratch, `"soul":{...}`
	parts    []span          // per frame, reused
}

type span struct{ lo, hi int }

// spareScratch keeps scratch buffers between broadcasts: broadcasts run
// one at a time on the graph's answerer, each with one encoder, or one per
// CPU for a large one (encodeParts), so a few are enough; a concurrent
// one beyond them allocates its own. Not a sync.Pool: the collector empties
// pools every other cycle, and at hundreds of kilobytes a round that is
// garbage the next cycle must collect. A buffer larger than maxSpareScratch
// is dropped instead of pinning memory after a burst.
var spareScratch [4]atomic.Pointer[[]byte]

const maxSpareScratch = 16 << 20

func takeScratch() *[]byte {
	for i := range spareScratch {
		if b := spareScratch[i].Swap(nil); b != nil {
			return b
		}
	}
	b := make([]byte, 0, 64<<10)
	return &b
}

func newPushEncoder(accepted graph.Graph, id, seen string) *pushEncoder {
	head := appendPushOpen(make([]byte, 0, 64), id, seen)
	return &pushEncoder{accepted: accepted, head: append(head, `,"put":`...), scratch: takeScratch()}
}

// release keeps the scratch buffer for the next broadcast; e must not be used
// afterwards. Frames already returned stay valid (they are copies).
func (e *pushEncoder) release() {
	if e.scratch == nil {
		return
	}
	if cap(*e.scratch) <= maxSpareScratch {
		*e.scratch = (*e.scratch)[:0]
		for i := range spareScratch {
			if spareScratch[i].CompareAndSwap(nil, e.scratch) {
				break
			}
		}
	}
	e.scratch = nil
}

// frame returns the push of part (a subset of the accepted graph: whole
// accepted nodes, or nodes holding some of their fields). Its put body is
// exactly part.AppendJSON's text. The frame is a fresh allocation, safe to
// share.
func (e *pushEncoder) frame(part graph.Graph) []byte {
	size := e.layout(part)
	return e.fill(make([]byte, 0, size))
}

// ownFrame is frame in a buffer from the frame pool: the frame must go to
// one connection only, which recycles it once written.
func (e *pushEncoder) ownFrame(part graph.Graph) outFrame {
	b, home := newFrame(e.layout(part))
	return outFrame{b: e.fill(b), home: home}
}

// layout encodes (or finds) the nodes of part in the scratch buffer,
// notes their spans in order and returns the size of part's frame.
func (e *pushEncoder) layout(part graph.Graph) int {
	souls := part.Souls()
	e.parts = e.parts[:0]
	size := len(e.head) + 2 + len(souls) // '{' '}' and the commas, then '}'
	for i, soul := range souls {
		sched.Yield(i) // a frame of thousands of ticks (see internal/sched)
		n := part[soul]
		var sp span
		if n == e.accepted[soul] {
			sp = e.whole(soul, n)
		} else {
			sp = e.encode(soul, n)
		}
		e.parts = append(e.parts, sp)
		size += sp.hi - sp.lo
	}
	return size
}

// fill appends the frame laid out by the last layout to out.
func (e *pushEncoder) fill(out []byte) []byte {
	out = append(out, e.head...)
	out = append(out, '{')
	buf := *e.scratch
	for i, sp := range e.parts {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, buf[sp.lo:sp.hi]...)
	}
	return append(out, '}', '}')
}

// whole returns the span of the accepted node n, encoding it on first use.
func (e *pushEncoder) whole(soul string, n *graph.Node) span {
	if sp, ok := e.spans[soul]; ok {
		return sp
	}
	if e.spans == nil {
		e.spans = make(map[string]span, len(e.accepted))
	}
	sp := e.encode(soul, n)
	e.spans[soul] = sp
	return sp
}

// encode appends `"soul":node` to the scratch buffer and returns its span.
func (e *pushEncoder) encode(soul string, n *graph.Node) span {
	lo := len(*e.scratch)
	b := jsjson.AppendString(*e.scratch, soul)
	b = append(b, ':')
	*e.scratch = n.AppendJSON(b)
	return span{lo, len(*e.scratch)}
}

// parallelPushMin is the least number of accepted nodes for which a
// broadcast encodes its recipients' frames on several goroutines: a round
// of thousands of heartbeat ticks followed over many connections (each
// frame a different part of the round) took the graph's answerer about 2 µs
// a node, on one core, on the path of every tick to its followers.
const parallelPushMin = 256

// encodeParts fills frames[i] with the push frame of rcpts[i].part when the
// broadcast is large enough to be worth several goroutines and every
// recipient takes a part (so there is no shared whole frame to encode
// once); it reports whether it did. Each goroutine takes the next recipient
// and has its own encoder, so a node two recipients share is encoded at
// most once per goroutine; the frames are the same bytes a single encoder
// would build.
func encodeParts(accepted graph.Graph, id, seen string, rcpts []recipient, frames []outFrame) bool {
	k := min(runtime.GOMAXPROCS(0), len(rcpts))
	if k < 2 || len(accepted) < parallelPushMin {
		return false
	}
	for _, r := range rcpts {
		if r.part == nil {
			return false
		}
	}
	var next atomic.Int64
	work := func() {
		enc := newPushEncoder(accepted, id, seen)
		defer enc.release()
		for {
			i := int(next.Add(1)) - 1
			if i >= len(rcpts) {
				return
			}
			frames[i] = enc.ownFrame(rcpts[i].part)
		}
	}
	var wg sync.WaitGroup
	for range k - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	return true
}
