package heartbeat

import (
	"fmt"

	"github.com/krestianstvo/luminary/internal/jsjson"
)

// Wire forms of log batches and log states, for a remote sequencer: a peer
// running a [Host] whose [Log] is a proxy, over the Gun wire, to a relay's
// log. Members are omitted when zero, except a batch's "instance":
//
//	batch: {"instance":I,"meta":{…},"entries":[entry…],"tick":{…},"reserve":r,"holder":K}
//	state: {"meta":{…},"head":{"seq":s,"hash":H,"state":x,"epoch":e},"lastTick":{…},
//	        "reserved":r,"holder":K,"wide":w,"presence":[K…],
//	        "snapshot":{"seq":s,"hash":H,"marker":m}}
//
// Meta, entries and ticks have their own JSON forms (see [Entry.AppendJSON]);
// every entry carries its hash and is refused when it does not match. A zero
// head (no entries yet) is written by omitting "head". The decoders take an
// already parsed value and refuse unknown members, wrong types, values out
// of range and anything beyond the bounds below; they check shapes only,
// the log checks order.

// SeqMember is the top-level Gun-wire member of a remote sequencer's
// requests and the relay's answers.
const SeqMember = "lumSeq"

// MaxWireBatchEntries bounds the entries of one wire batch (the
// [Acceptor]'s default MaxEntries).
const MaxWireBatchEntries = 4096

// MaxWirePresence bounds [LogState.Presence] on the wire (the [Host]'s
// default MaxPresence).
const MaxWirePresence = 10000

// AppendJSON appends the wire form of b to dst.
func (b *Batch) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"instance":`...)
	dst = jsjson.AppendString(dst, b.Instance)
	if b.Meta != nil {
		dst = append(dst, `,"meta":`...)
		dst = jsjson.Append(dst, b.Meta.object())
	}
	if len(b.Entries) > 0 {
		dst = append(dst, `,"entries":[`...)
		for i := range b.Entries {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = b.Entries[i].AppendJSON(dst)
		}
		dst = append(dst, ']')
	}
	if b.Tick != nil {
		dst = append(dst, `,"tick":`...)
		dst = b.Tick.AppendJSON(dst)
	}
	if b.Reserve != 0 {
		dst = append(dst, `,"reserve":`...)
		dst = jsjson.AppendNumber(dst, b.Reserve)
	}
	if b.Holder != "" {
		dst = append(dst, `,"holder":`...)
		dst = jsjson.AppendString(dst, b.Holder)
	}
	return append(dst, '}')
}

// BatchFromValue decodes the wire form of a batch from a parsed JSON value.
// Meta, entries and tick must name the batch's instance; a batch for
// [AllInstances] carries only holder and reserve. Entries must carry their
// own hashes; order, signatures and the tick's proof are not checked here.
func BatchFromValue(val any) (Batch, error) {
	o, ok := val.(*jsjson.Object)
	if !ok {
		return Batch{}, fmt.Errorf("%w: a batch is an object", ErrMalformed)
	}
	var b Batch
	r := reader{o: o}
	b.Instance = r.str("instance", true)
	if r.err != nil {
		return Batch{}, r.err
	}
	wide := b.Instance == AllInstances
	if wide {
		for _, k := range []string{"meta", "entries", "tick"} {
			if _, ok := o.Get(k); ok {
				return Batch{}, fmt.Errorf("%w: a log-wide batch carries only holder and reserve, not %q", ErrMalformed, k)
			}
		}
	} else if err := checkKeyText("instance", b.Instance); err != nil {
		return Batch{}, err
	}
	if mo := r.wireObject("meta"); mo != nil {
		m, err := metaFromObject(mo)
		if err != nil {
			return Batch{}, fmt.Errorf("batch meta: %w", err)
		}
		if m.Instance != b.Instance {
			return Batch{}, fmt.Errorf("%w: batch meta names another instance", ErrMalformed)
		}
		b.Meta = &m
	}
	if v, ok := r.get("entries", false); ok {
		arr, ok := v.([]any)
		switch {
		case !ok:
			r.fail("entries", "an array of entries")
		case len(arr) > MaxWireBatchEntries:
			return Batch{}, fmt.Errorf("heartbeat: batch of %d entries (max %d): %w", len(arr), MaxWireBatchEntries, ErrTooLarge)
		default:
			b.Entries = make([]Entry, 0, len(arr))
			for i, x := range arr {
				xo, ok := x.(*jsjson.Object)
				if !ok {
					return Batch{}, fmt.Errorf("%w: entries[%d] is not an object", ErrMalformed, i)
				}
				e, err := entryFromObject(xo)
				if err != nil {
					return Batch{}, fmt.Errorf("batch entry %d: %w", i, err)
				}
				if e.Instance != b.Instance {
					return Batch{}, fmt.Errorf("%w: batch entry %d for another instance", ErrMalformed, i)
				}
				b.Entries = append(b.Entries, e)
			}
		}
	}
	if to := r.wireObject("tick"); to != nil {
		t, err := tickFromObject(to)
		if err != nil {
			return Batch{}, fmt.Errorf("batch tick: %w", err)
		}
		if t.Instance != b.Instance {
			return Batch{}, fmt.Errorf("%w: batch tick for another instance", ErrMalformed)
		}
		b.Tick = &t
	}
	b.Reserve = r.num("reserve", false)
	b.Holder = r.str("holder", false)
	if err := r.done(); err != nil {
		return Batch{}, err
	}
	if wide {
		if err := checkWide(&b); err != nil {
			return Batch{}, err
		}
		return b, nil
	}
	if err := checkWireMark("reserve", b.Reserve); err != nil {
		return Batch{}, err
	}
	if b.Holder != "" {
		if err := checkKeyText("holder", b.Holder); err != nil {
			return Batch{}, err
		}
	}
	return b, nil
}

// AppendJSON appends the wire form of s to dst.
func (s *LogState) AppendJSON(dst []byte) []byte {
	var hb [64]byte
	start := len(dst)
	dst = append(dst, '{')
	key := func(k string) {
		if len(dst) > start+1 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, k...)
		dst = append(dst, `":`...)
	}
	if s.Meta != nil {
		key("meta")
		dst = jsjson.Append(dst, s.Meta.object())
	}
	if s.Head != (Head{}) {
		key("head")
		dst = append(dst, `{"seq":`...)
		dst = jsjson.AppendNumber(dst, float64(s.Head.Seq))
		dst = append(dst, `,"hash":"`...)
		dst = append(dst, s.Head.Hash.appendText(hb[:0])...)
		dst = append(dst, `","state":`...)
		dst = jsjson.AppendNumber(dst, s.Head.State)
		dst = append(dst, `,"epoch":`...)
		dst = jsjson.AppendNumber(dst, float64(s.Head.Epoch))
		dst = append(dst, '}')
	}
	if s.LastTick != nil {
		key("lastTick")
		dst = s.LastTick.AppendJSON(dst)
	}
	if s.Reserved != 0 {
		key("reserved")
		dst = jsjson.AppendNumber(dst, s.Reserved)
	}
	if s.Holder != "" {
		key("holder")
		dst = jsjson.AppendString(dst, s.Holder)
	}
	if s.Wide != 0 {
		key("wide")
		dst = jsjson.AppendNumber(dst, s.Wide)
	}
	if len(s.Presence) > 0 {
		key("presence")
		dst = append(dst, '[')
		for i, c := range s.Presence {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsjson.AppendString(dst, c)
		}
		dst = append(dst, ']')
	}
	if ref := s.Snapshot; ref != nil {
		key("snapshot")
		dst = append(dst, `{"seq":`...)
		dst = jsjson.AppendNumber(dst, float64(ref.Seq))
		dst = append(dst, `,"hash":"`...)
		dst = append(dst, ref.Hash.appendText(hb[:0])...)
		dst = append(dst, `","marker":`...)
		dst = jsjson.AppendNumber(dst, float64(ref.Marker))
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// LogStateFromValue decodes the wire form of a log state from a parsed
// JSON value. A state without meta (an unknown instance) must be zero; the
// last tick must name the meta's instance, presence keys must be sorted and
// distinct, and the snapshot marker must be within the head. The tick's
// proof is not verified here.
func LogStateFromValue(val any) (LogState, error) {
	o, ok := val.(*jsjson.Object)
	if !ok {
		return LogState{}, fmt.Errorf("%w: a log state is an object", ErrMalformed)
	}
	var s LogState
	r := reader{o: o}
	if mo := r.wireObject("meta"); mo != nil {
		m, err := metaFromObject(mo)
		if err != nil {
			return LogState{}, fmt.Errorf("log state meta: %w", err)
		}
		s.Meta = &m
	}
	if ho := r.wireObject("head"); ho != nil {
		hr := reader{o: ho}
		s.Head.Seq = hr.uint("seq", true)
		s.Head.Hash = hr.wireHash("hash")
		s.Head.State = hr.num("state", true)
		s.Head.Epoch = hr.uint("epoch", true)
		if err := hr.done(); err != nil {
			return LogState{}, fmt.Errorf("log state head: %w", err)
		}
		if s.Head.Seq == 0 || s.Head.Epoch == 0 {
			return LogState{}, fmt.Errorf("%w: log state head seq/epoch must be positive", ErrMalformed)
		}
		if err := checkState(s.Head.State); err != nil {
			return LogState{}, fmt.Errorf("log state head: %w", err)
		}
	}
	if to := r.wireObject("lastTick"); to != nil {
		t, err := tickFromObject(to)
		if err != nil {
			return LogState{}, fmt.Errorf("log state tick: %w", err)
		}
		s.LastTick = &t
	}
	s.Reserved = r.num("reserved", false)
	s.Holder = r.str("holder", false)
	s.Wide = r.num("wide", false)
	if v, ok := r.get("presence", false); ok {
		arr, ok := v.([]any)
		switch {
		case !ok:
			r.fail("presence", "an array of key texts")
		case len(arr) > MaxWirePresence:
			return LogState{}, fmt.Errorf("heartbeat: presence of %d clients (max %d): %w", len(arr), MaxWirePresence, ErrTooLarge)
		default:
			s.Presence = make([]string, 0, len(arr))
			for i, x := range arr {
				c, ok := x.(string)
				if !ok {
					return LogState{}, fmt.Errorf("%w: presence[%d] is not a string", ErrMalformed, i)
				}
				if err := checkKeyText("presence", c); err != nil {
					return LogState{}, err
				}
				if i > 0 && c <= s.Presence[i-1] {
					return LogState{}, fmt.Errorf("%w: presence not sorted and distinct", ErrMalformed)
				}
				s.Presence = append(s.Presence, c)
			}
		}
	}
	if so := r.wireObject("snapshot"); so != nil {
		sr := reader{o: so}
		ref := &SnapshotRef{Seq: sr.uint("seq", true), Hash: sr.wireHash("hash"), Marker: sr.uint("marker", true)}
		if err := sr.done(); err != nil {
			return LogState{}, fmt.Errorf("log state snapshot: %w", err)
		}
		if ref.Seq == 0 || ref.Marker <= ref.Seq || ref.Marker > s.Head.Seq {
			return LogState{}, fmt.Errorf("%w: snapshot marker %d must follow its point %d within the head", ErrMalformed, ref.Marker, ref.Seq)
		}
		s.Snapshot = ref
	}
	if err := r.done(); err != nil {
		return LogState{}, err
	}
	if err := checkWireMark("reserved", s.Reserved); err != nil {
		return LogState{}, err
	}
	if err := checkWireMark("wide", s.Wide); err != nil {
		return LogState{}, err
	}
	if s.Holder != "" {
		if err := checkKeyText("holder", s.Holder); err != nil {
			return LogState{}, err
		}
	}
	if s.Meta == nil {
		if s.Head != (Head{}) || s.LastTick != nil || s.Reserved != 0 || s.Holder != "" || s.Wide != 0 || len(s.Presence) > 0 || s.Snapshot != nil {
			return LogState{}, fmt.Errorf("%w: log state without meta must be empty", ErrMalformed)
		}
	} else if s.LastTick != nil && s.LastTick.Instance != s.Meta.Instance {
		return LogState{}, fmt.Errorf("%w: log state tick for another instance", ErrMalformed)
	}
	return s, nil
}

// wireObject reads an optional object member (nil when absent or not an
// object, the latter remembered as an error).
func (r *reader) wireObject(k string) *jsjson.Object {
	v, ok := r.get(k, false)
	if !ok {
		return nil
	}
	o, ok := v.(*jsjson.Object)
	if !ok {
		r.fail(k, "an object")
	}
	return o
}

// wireHash reads a required, non-empty hash member.
func (r *reader) wireHash(k string) Hash {
	h, ok := r.hash(k, true)
	if !ok {
		r.fail(k, "a hash (43 base64url characters)")
	}
	return h
}

// checkWireMark checks a reserved mark as the log does: in [0, 2^53).
func checkWireMark(what string, v float64) error {
	if v < 0 || v >= maxSafeInt {
		return fmt.Errorf("%w: %s out of range", ErrMalformed, what)
	}
	return nil
}
