package heartbeat

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/krestianstvo/luminary/internal/jsjson"
)

// History (the timegraph) export format: JSON lines.
//
//	{"history":"luminary/v1","meta":{…Meta…},"from":1,"prev":"<hash of entry from-1, when from > 1>"}
//	{"entry":{…Entry…}}
//	{"tick":{…Tick…}}
//	…
//
// Entries appear in seq order; each stored (checkpoint) tick appears right
// after the entry at its position, so the file is the instance's total order.
// The last entry is always followed by a tick that covers it (the log stores
// a checkpoint tick with every batch of entries). Only checkpoint ticks are
// exported: idle ticks are never stored and carry nothing to verify.

// HistoryFormat is the value of the header's "history" member.
const HistoryFormat = "luminary/v1"

// ExportOptions selects what [Export] writes.
type ExportOptions struct {
	From, To uint64 // inclusive seq range; From 0 means 1, To 0 means the head
	PageSize int    // entries per log read, default 1024
}

// Export writes the history of instance in [from, to] to w, extending the
// range to the stored tick that covers entry to (so a range export verifies
// on its own).
func Export(ctx context.Context, log Log, instance string, w io.Writer, opt ExportOptions) error {
	st, err := log.State(ctx, instance)
	if err != nil {
		return err
	}
	if st.Meta == nil {
		return fmt.Errorf("%w: %s", ErrUnknownInstance, instance)
	}
	from, to := max(opt.From, 1), opt.To
	if to == 0 || to > st.Head.Seq {
		to = st.Head.Seq
	}
	if from > to {
		return fmt.Errorf("heartbeat: export: empty range %d..%d", from, to)
	}
	// Extend the range to the stored tick that covers its last entry, so
	// the export ends signed.
	if p, err := log.Read(ctx, instance, to, 1); err != nil {
		return err
	} else if n := len(p.Ticks); n > 0 && p.Ticks[n-1].Seq > to {
		to = p.Ticks[n-1].Seq
	}
	page := opt.PageSize
	if page <= 0 {
		page = 1024
	}
	bw := bufio.NewWriter(w)
	hdr := &jsjson.Object{}
	hdr.Set("history", HistoryFormat)
	hdr.Set("meta", st.Meta.object())
	hdr.Set("from", float64(from))
	if from > 1 {
		p, err := log.Read(ctx, instance, from-1, 1)
		if err != nil {
			return err
		}
		if len(p.Entries) != 1 {
			return fmt.Errorf("heartbeat: export: entry %d missing", from-1)
		}
		hdr.Set("prev", p.Entries[0].Hash().String())
	}
	buf := jsjson.Append(nil, hdr)
	buf = append(buf, '\n')
	lastTick := uint64(0)
	for seq := from; seq <= to; {
		p, err := log.Read(ctx, instance, seq, int(min(uint64(page), to-seq+1)))
		if err != nil {
			return err
		}
		if len(p.Entries) == 0 {
			return fmt.Errorf("heartbeat: export: entry %d missing", seq)
		}
		ti := 0
		for i := range p.Entries {
			e := &p.Entries[i]
			o := &jsjson.Object{}
			o.Set("entry", e.object(e.Hash()))
			buf = append(jsjson.Append(buf, o), '\n')
			for ti < len(p.Ticks) && p.Ticks[ti].Seq <= e.Seq {
				t := &p.Ticks[ti]
				ti++
				if t.Seq != e.Seq || t.Seq <= lastTick {
					continue
				}
				lastTick = t.Seq
				o := &jsjson.Object{}
				o.Set("tick", t.object())
				buf = append(jsjson.Append(buf, o), '\n')
			}
			seq = e.Seq + 1
		}
		if _, err := bw.Write(buf); err != nil {
			return err
		}
		buf = buf[:0]
	}
	if _, err := bw.Write(buf); err != nil {
		return err
	}
	return bw.Flush()
}

// VerifyOptions configures [VerifyHistory].
type VerifyOptions struct {
	Verifier Verifier // default KeyVerifier(nil)
	// Authorizer, when set, is asked whether each epoch's holder may tick
	// and each author may send (at the entry's time). Without it, the
	// holder of each epoch is whoever its KindEpoch entry names (every tick
	// of the epoch must be signed by that key), and holders and authors are
	// listed in the report for a human to judge.
	Authorizer Authorizer
	MaxLine    int // longest accepted line, default 2 MiB
}

// Report is the result of [VerifyHistory].
type Report struct {
	Meta       Meta
	From, To   uint64 // seqs of the first and last entry read
	Entries    int
	Messages   int
	Ticks      int
	FirstState float64
	LastState  float64
	Epochs     []EpochInfo
	Provenance []Provenance // one per entry, in order
	Defect     *Defect      // the first defect; nil when the history verified
}

// EpochInfo describes one sequencer term found in a history.
type EpochInfo struct {
	Epoch  uint64
	Holder string
	Seq    uint64  // seq of its KindEpoch entry
	Time   float64 // Croquet time of its start
}

// Provenance says who put what into the log.
type Provenance struct {
	Seq    uint64
	Kind   Kind
	Author string  // message author, joining/leaving client, epoch holder
	ID     Hash    // message id (messages only)
	TS     int64   // author's timestamp (messages only)
	Bytes  int     // payload size
	Time   float64 // Croquet time, seconds
}

// Defect is the first problem found, with its position.
type Defect struct {
	Line int    // 1-based line number
	Seq  uint64 // seq at or near the problem (0 when unknown)
	Err  error
}

func (d *Defect) Error() string {
	return fmt.Sprintf("heartbeat: history line %d (seq %d): %v", d.Line, d.Seq, d.Err)
}

func (d *Defect) Unwrap() error { return d.Err }

// ErrHistory wraps every defect [VerifyHistory] reports.
var ErrHistory = errors.New("heartbeat: history does not verify")

// VerifyHistory reads an exported history and checks every signature (each
// message's author, each tick's round signature and Merkle path), the hash
// chain, seq contiguity, strictly increasing states (so monotone Croquet
// time), epochs changing only through epoch entries, ticks signed by their
// epoch's holder and positioned at the chain head, and that every entry is
// covered by a signed tick. It returns the report (filled up to the first
// defect) and, on a defect, an error wrapping [ErrHistory] and a *[Defect].
func VerifyHistory(r io.Reader, opt VerifyOptions) (*Report, error) {
	if opt.Verifier == nil {
		opt.Verifier = KeyVerifier(nil)
	}
	if opt.MaxLine <= 0 {
		opt.MaxLine = 2 << 20
	}
	v := &historyVerifier{opt: opt, rep: &Report{}, cache: NewRoundCache(1024), holders: map[uint64]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), opt.MaxLine)
	for sc.Scan() {
		v.line++
		if err := v.handle(sc.Bytes()); err != nil {
			return v.defect(err)
		}
	}
	if err := sc.Err(); err != nil {
		v.line++
		return v.defect(fmt.Errorf("%w: %w", ErrMalformed, err))
	}
	if v.line == 0 {
		return v.defect(fmt.Errorf("%w: empty history", ErrMalformed))
	}
	if v.rep.Entries > 0 && v.covered < v.seq {
		v.line++
		return v.defect(fmt.Errorf("entries %d..%d are not covered by a signed tick: %w", v.covered+1, v.seq, ErrOrder))
	}
	return v.rep, nil
}

type historyVerifier struct {
	opt     VerifyOptions
	rep     *Report
	cache   *RoundCache
	line    int
	header  bool
	seq     uint64 // last entry seq read
	at      uint64 // seq of the item being checked (for the defect position)
	prev    Hash
	epoch   uint64
	last    float64 // last state (entry or tick)
	covered uint64
	holders map[uint64]string
}

func (v *historyVerifier) defect(err error) (*Report, error) {
	d := &Defect{Line: v.line, Seq: v.at, Err: err}
	if d.Seq == 0 {
		d.Seq = v.seq
	}
	v.rep.Defect = d
	return v.rep, fmt.Errorf("%w: %w", ErrHistory, d)
}

func (v *historyVerifier) handle(line []byte) error {
	o, err := parseObject(line)
	if err != nil {
		return err
	}
	if !v.header {
		return v.handleHeader(o)
	}
	if o.Len() != 1 {
		return fmt.Errorf("%w: a line must hold one entry or one tick", ErrMalformed)
	}
	inner, ok := o.Values[0].(*jsjson.Object)
	if !ok {
		return fmt.Errorf("%w: %q must be an object", ErrMalformed, o.Keys[0])
	}
	if s, ok := inner.Get("seq"); ok { // for the defect position, before any check
		if f, ok := s.(float64); ok && f >= 0 && f <= maxSafeInt {
			v.at = uint64(f)
		}
	}
	switch o.Keys[0] {
	case "entry":
		e, err := entryFromObject(inner)
		if err != nil {
			return err
		}
		return v.handleEntry(&e)
	case "tick":
		t, err := tickFromObject(inner)
		if err != nil {
			return err
		}
		return v.handleTick(&t)
	}
	return fmt.Errorf("%w: unknown line kind %q", ErrMalformed, o.Keys[0])
}

func (v *historyVerifier) handleHeader(o *jsjson.Object) error {
	r := reader{o: o}
	if f := r.str("history", true); f != HistoryFormat && r.err == nil {
		return fmt.Errorf("%w: unknown history format %q", ErrMalformed, f)
	}
	mv, _ := r.get("meta", true)
	from := r.uint("from", true)
	prev, hasPrev := r.hash("prev", false)
	if err := r.done(); err != nil {
		return err
	}
	mo, ok := mv.(*jsjson.Object)
	if !ok {
		return fmt.Errorf("%w: meta must be an object", ErrMalformed)
	}
	m, err := metaFromObject(mo)
	if err != nil {
		return err
	}
	if from == 0 || (from > 1) != hasPrev {
		return fmt.Errorf("%w: header from/prev", ErrMalformed)
	}
	v.rep.Meta, v.header = m, true
	v.seq, v.covered, v.prev = from-1, from-1, prev
	return nil
}

func (v *historyVerifier) handleEntry(e *Entry) error {
	v.at = e.Seq
	switch {
	case e.Instance != v.rep.Meta.Instance:
		return fmt.Errorf("%w: entry of another instance", ErrMalformed)
	case e.Seq != v.seq+1:
		return fmt.Errorf("heartbeat: seq %d after %d: %w", e.Seq, v.seq, ErrOrder)
	case e.Prev != v.prev:
		return fmt.Errorf("heartbeat: entry %d does not chain to its predecessor: %w", e.Seq, ErrFork)
	case e.State <= v.last:
		return fmt.Errorf("heartbeat: entry %d state %v not after %v: %w", e.Seq, e.State, v.last, ErrOrder)
	}
	if e.Kind == KindEpoch {
		if e.Epoch <= v.epoch {
			return fmt.Errorf("heartbeat: epoch entry %d does not raise epoch %d: %w", e.Seq, v.epoch, ErrOrder)
		}
		v.holders[e.Epoch] = e.Author
		v.rep.Epochs = append(v.rep.Epochs, EpochInfo{Epoch: e.Epoch, Holder: e.Author, Seq: e.Seq, Time: v.vtime(e.State)})
	} else if v.epoch != 0 && e.Epoch != v.epoch {
		return fmt.Errorf("heartbeat: entry %d changes epoch without an epoch entry: %w", e.Seq, ErrOrder)
	}
	p := Provenance{Seq: e.Seq, Kind: e.Kind, Author: e.Author, Bytes: len(e.Payload), Time: v.vtime(e.State)}
	if e.Kind == KindMessage {
		m := e.Message()
		if err := m.Verify(v.opt.Verifier); err != nil {
			return err
		}
		if a := v.opt.Authorizer; a != nil {
			if err := a.Authorize(context.Background(), e.Instance, e.Author, RoleMessage, time.UnixMicro(micros(e.State))); err != nil {
				return fmt.Errorf("heartbeat: entry %d by %s: %w: %w", e.Seq, e.Author, ErrNotAuthorised, err)
			}
		}
		p.ID, p.TS = m.ID(), e.TS
		v.rep.Messages++
	}
	v.rep.Provenance = append(v.rep.Provenance, p)
	if v.rep.Entries == 0 {
		v.rep.From, v.rep.FirstState = e.Seq, e.State
	}
	v.rep.Entries++
	v.rep.To, v.rep.LastState = e.Seq, e.State
	v.seq, v.prev, v.epoch, v.last = e.Seq, e.Hash(), e.Epoch, e.State
	return nil
}

func (v *historyVerifier) vtime(state float64) float64 {
	return VTime(state, v.rep.Meta.Start, v.rep.Meta.Rate)
}

func (v *historyVerifier) handleTick(t *Tick) error {
	last := v.seq
	v.at = t.Seq
	switch {
	case t.Instance != v.rep.Meta.Instance:
		return fmt.Errorf("%w: tick of another instance", ErrMalformed)
	case t.Seq != last || t.Head != v.prev:
		return fmt.Errorf("heartbeat: tick %d/%d at seq %d is not at the head %d: %w", t.Epoch, t.N, t.Seq, last, ErrOrder)
	case t.Epoch != v.epoch:
		return fmt.Errorf("heartbeat: tick epoch %d at an entry of epoch %d: %w", t.Epoch, v.epoch, ErrFork)
	case t.State <= v.last:
		return fmt.Errorf("heartbeat: tick %d/%d state %v not after %v: %w", t.Epoch, t.N, t.State, v.last, ErrOrder)
	case t.Start != v.rep.Meta.Start || t.Rate != v.rep.Meta.Rate:
		return fmt.Errorf("heartbeat: tick %d/%d time base differs from the instance's: %w", t.Epoch, t.N, ErrOrder)
	}
	if err := VerifyTick(t, v.opt.Verifier, v.cache); err != nil {
		return err
	}
	holder, known := v.holders[t.Epoch]
	switch {
	case known && holder != t.Proof.Signer:
		return fmt.Errorf("heartbeat: tick %d/%d signed by %s, epoch holder is %s: %w", t.Epoch, t.N, t.Proof.Signer, holder, ErrNotAuthorisedToTick)
	case !known && v.opt.Authorizer == nil:
		return fmt.Errorf("heartbeat: tick %d/%d: epoch %d has no epoch entry in this history and no authorizer was given: %w", t.Epoch, t.N, t.Epoch, ErrNotAuthorisedToTick)
	}
	if a := v.opt.Authorizer; a != nil {
		if err := a.Authorize(context.Background(), t.Instance, t.Proof.Signer, RoleTick, time.UnixMicro(micros(t.State))); err != nil {
			return fmt.Errorf("heartbeat: tick %d/%d by %s: %w: %w", t.Epoch, t.N, t.Proof.Signer, ErrNotAuthorisedToTick, err)
		}
	}
	v.covered, v.last = t.Seq, t.State
	v.rep.Ticks++
	return nil
}
