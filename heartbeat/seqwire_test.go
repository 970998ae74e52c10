package heartbeat_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/heartbeat/heartbeattest"
	"github.com/krestianstvo/luminary/internal/jsjson"
)

// seqLimits are the client frame limits (wireLimits) with room for one
// presence key more than MaxWirePresence, so that the decoder's own bound
// is what refuses it.
var seqLimits = jsjson.Limits{MaxBytes: 64 << 20, MaxDepth: 16, MaxMembers: 1 << 20, MaxElements: 1 << 16}

func decodeSeqBatch(b []byte) (heartbeat.Batch, error) {
	v, err := jsjson.Parse(b, seqLimits)
	if err != nil {
		return heartbeat.Batch{}, err
	}
	return heartbeat.BatchFromValue(v)
}

func decodeSeqState(b []byte) (heartbeat.LogState, error) {
	v, err := jsjson.Parse(b, seqLimits)
	if err != nil {
		return heartbeat.LogState{}, err
	}
	return heartbeat.LogStateFromValue(v)
}

// seqBatches returns a stream and three batches a remote sequencer sends:
// the first (meta, genesis epoch entry, three messages, a signed tick and a
// reservation), an idle tick, and a log-wide reservation.
func seqBatches() (s *heartbeattest.Stream, first, idle, wide heartbeat.Batch) {
	owner := heartbeattest.Signer(1)
	s = heartbeattest.NewStream(owner, owner.Public(), 1, heartbeat.Head{}, nil, 0, heartbeattest.Epoch)
	for i := range 3 {
		s.Message(heartbeattest.Signer(uint64(2+i)), heartbeattest.Epoch.UnixMilli(), fmt.Sprintf(`{"n":%d,"s":"\u2028<é>"}`, i))
	}
	tk := s.Tick(50 * time.Millisecond)
	m := s.Seq.Meta()
	first = heartbeat.Batch{Instance: owner.Public(), Meta: &m, Entries: slices.Clone(s.Entries), Tick: &tk, Reserve: s.Reserve}
	tk2 := s.Tick(50 * time.Millisecond)
	idle = heartbeat.Batch{Instance: owner.Public(), Tick: &tk2, Reserve: s.Reserve}
	wide = heartbeat.Batch{Instance: heartbeat.AllInstances, Holder: owner.Public(), Reserve: s.Reserve + 1000.5}
	return s, first, idle, wide
}

// roundTripBatch decodes the wire form of b and checks that it encodes to
// the same bytes again.
func roundTripBatch(t *testing.T, b heartbeat.Batch) heartbeat.Batch {
	t.Helper()
	enc := b.AppendJSON(nil)
	got, err := decodeSeqBatch(enc)
	if err != nil {
		t.Fatalf("%s: %v", enc, err)
	}
	if again := got.AppendJSON(nil); !bytes.Equal(again, enc) {
		t.Fatalf("re-encoded differs:\n%s\n%s", enc, again)
	}
	return got
}

// Batches survive the wire: entry hashes and the tick's proof are intact
// (the tick still verifies) and the log accepts the decoded batches.
func TestSeqWireBatch(t *testing.T) {
	_, first, idle, wide := seqBatches()
	if first.Reserve == 0 || len(first.Entries) != 4 {
		t.Fatalf("fixture: reserve %v, %d entries", first.Reserve, len(first.Entries))
	}
	got := roundTripBatch(t, first)
	if got.Instance != first.Instance || *got.Meta != *first.Meta || got.Reserve != first.Reserve || got.Holder != "" || len(got.Entries) != len(first.Entries) {
		t.Fatalf("round trip: %+v", got)
	}
	for i := range got.Entries {
		if got.Entries[i].Hash() != first.Entries[i].Hash() {
			t.Fatalf("entry %d hash changed", i)
		}
	}
	if !reflect.DeepEqual(*got.Tick, *first.Tick) {
		t.Fatalf("tick changed:\n%+v\n%+v", *got.Tick, *first.Tick)
	}
	if err := heartbeat.VerifyTick(got.Tick, heartbeat.KeyVerifier(nil), nil); err != nil {
		t.Fatalf("decoded tick does not verify: %v", err)
	}
	gotIdle := roundTripBatch(t, idle)
	if gotIdle.Meta != nil || gotIdle.Entries != nil || gotIdle.Reserve != idle.Reserve || !reflect.DeepEqual(*gotIdle.Tick, *idle.Tick) {
		t.Fatalf("idle round trip: %+v", gotIdle)
	}
	if err := heartbeat.VerifyTick(gotIdle.Tick, heartbeat.KeyVerifier(nil), nil); err != nil {
		t.Fatalf("decoded idle tick does not verify: %v", err)
	}
	gotWide := roundTripBatch(t, wide)
	if !reflect.DeepEqual(gotWide, wide) {
		t.Fatalf("wide round trip: %+v", gotWide)
	}
	if js := string(wide.AppendJSON(nil)); !strings.HasPrefix(js, `{"instance":"*","reserve":`) {
		t.Fatalf("wide form: %s", js)
	}
	log := heartbeat.NewMemLog()
	ctx := context.Background()
	if err := log.Append(ctx, []heartbeat.Batch{got}); err != nil {
		t.Fatalf("log refuses the decoded first batch: %v", err)
	}
	if err := log.Append(ctx, []heartbeat.Batch{gotWide, gotIdle}); err != nil {
		t.Fatalf("log refuses the decoded idle and wide batches: %v", err)
	}
	if st, err := log.State(ctx, first.Instance); err != nil || st.Head.Hash != first.Entries[3].Hash() || st.Wide != wide.Reserve {
		t.Fatalf("log state after decoded batches: %+v %v", st, err)
	}
}

// seqState returns a full log state: the log's state after the first batch
// plus a log-wide mark, presence and a snapshot.
func seqState() heartbeat.LogState {
	_, first, _, _ := seqBatches()
	log := heartbeat.NewMemLog()
	if err := log.Append(context.Background(), []heartbeat.Batch{first}); err != nil {
		panic(err)
	}
	st, err := log.State(context.Background(), first.Instance)
	if err != nil {
		panic(err)
	}
	st.Wide = st.Reserved + 7.25
	st.Presence = []string{heartbeattest.Signer(7).Public(), heartbeattest.Signer(8).Public(), heartbeattest.Signer(9).Public()}
	slices.Sort(st.Presence)
	st.Snapshot = &heartbeat.SnapshotRef{Seq: 2, Hash: heartbeat.SHA256([]byte("snap")), Marker: 3}
	return st
}

// A full log state survives the wire exactly; a zero one is "{}" and stays
// zero (zero head, zero hash).
func TestSeqWireLogState(t *testing.T) {
	st := seqState()
	if st.Meta == nil || st.Head.Seq != 4 || st.LastTick == nil || st.Reserved == 0 || st.Holder == "" {
		t.Fatalf("fixture: %+v", st)
	}
	enc := st.AppendJSON(nil)
	got, err := decodeSeqState(enc)
	if err != nil {
		t.Fatalf("%s: %v", enc, err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Fatalf("round trip:\n%+v\n%+v", got, st)
	}
	if again := got.AppendJSON(nil); !bytes.Equal(again, enc) {
		t.Fatalf("re-encoded differs:\n%s\n%s", enc, again)
	}
	if err := heartbeat.VerifyTick(got.LastTick, heartbeat.KeyVerifier(nil), nil); err != nil {
		t.Fatalf("decoded tick does not verify: %v", err)
	}
	var zero heartbeat.LogState
	if js := string(zero.AppendJSON(nil)); js != "{}" {
		t.Fatalf("zero state: %s", js)
	}
	got, err = decodeSeqState([]byte("{}"))
	if err != nil || !reflect.DeepEqual(got, zero) || !got.Head.Hash.IsZero() {
		t.Fatalf("zero round trip: %+v %v", got, err)
	}
	newInst := heartbeat.LogState{Meta: st.Meta}
	if got, err = decodeSeqState(newInst.AppendJSON(nil)); err != nil || got.Head != (heartbeat.Head{}) || *got.Meta != *st.Meta {
		t.Fatalf("state without entries: %+v %v", got, err)
	}
}

// Every decoding rule refuses what it should, with ErrMalformed (or
// ErrTooLarge for counts, ErrIDMismatch for an entry whose hash is wrong).
func TestSeqWireRefusals(t *testing.T) {
	s, first, _, _ := seqBatches()
	other := heartbeattest.NewStream(heartbeattest.Signer(20), heartbeattest.Signer(20).Public(), 1, heartbeat.Head{}, nil, 0, heartbeattest.Epoch)
	otk := other.Tick(50 * time.Millisecond)
	ometa := other.Seq.Meta()
	e := s.Entries[1]
	ej := string(e.AppendJSON(nil))
	tj := string(first.Tick.AppendJSON(nil))
	mj, _ := first.Meta.MarshalJSON()
	xm, _ := ometa.MarshalJSON()
	hash := e.Hash().String()
	r := strings.NewReplacer( // longer names first: comparisons go in argument order
		"$EPOCH-1", strings.Replace(ej, `"epoch":1,`, `"epoch":-1,`, 1),
		"$I", first.Instance, "$M", string(mj), "$E", ej, "$T", tj, "$H", hash,
		"$XE", string(other.Entries[0].AppendJSON(nil)), "$XT", string(otk.AppendJSON(nil)), "$XM", string(xm),
		"$BADHASH", strings.Replace(ej, hash, heartbeat.SHA256([]byte("x")).String(), 1),
		"$SEQ2.5", strings.Replace(ej, `"seq":2,`, `"seq":2.5,`, 1),
		"$BADTICK", strings.Replace(tj, `"index":0,`, `"index":1,`, 1),
		"$4097", strings.TrimSuffix(strings.Repeat(`{},`, heartbeat.MaxWireBatchEntries+1), ","),
		"$10001", strings.TrimSuffix(strings.Repeat(`"a",`, heartbeat.MaxWirePresence+1), ","),
	)
	const head = `"head":{"seq":4,"hash":"$H","state":5,"epoch":1}`
	for _, c := range []struct {
		name, batch, state string
		want               error
	}{
		{name: "batch not an object", batch: `[1]`},
		{name: "batch without instance", batch: `{"reserve":1}`},
		{name: "instance not a string", batch: `{"instance":1}`},
		{name: "bad instance text", batch: `{"instance":"a/b"}`},
		{name: "batch unknown member", batch: `{"instance":"$I","x":1}`},
		{name: "meta not an object", batch: `{"instance":"$I","meta":[]}`},
		{name: "meta malformed", batch: `{"instance":"$I","meta":{"instance":"$I"}}`},
		{name: "meta of another instance", batch: `{"instance":"$I","meta":$XM}`},
		{name: "entries not an array", batch: `{"instance":"$I","entries":{}}`},
		{name: "entry not an object", batch: `{"instance":"$I","entries":[$E,1]}`},
		{name: "entry of another instance", batch: `{"instance":"$I","entries":[$XE]}`},
		{name: "entry hash mismatch", batch: `{"instance":"$I","entries":[$BADHASH]}`, want: heartbeat.ErrIDMismatch},
		{name: "entry seq not an integer", batch: `{"instance":"$I","entries":[$SEQ2.5]}`},
		{name: "entry epoch negative", batch: `{"instance":"$I","entries":[$EPOCH-1]}`},
		{name: "too many entries", batch: `{"instance":"$I","entries":[$4097]}`, want: heartbeat.ErrTooLarge},
		{name: "tick not an object", batch: `{"instance":"$I","tick":"x"}`},
		{name: "tick of another instance", batch: `{"instance":"$I","tick":$XT}`},
		{name: "tick proof index", batch: `{"instance":"$I","tick":$BADTICK}`},
		{name: "reserve negative", batch: `{"instance":"$I","reserve":-1}`},
		{name: "reserve not a number", batch: `{"instance":"$I","reserve":"1"}`},
		{name: "reserve too large", batch: `{"instance":"$I","reserve":9007199254740992}`},
		{name: "holder bad text", batch: `{"instance":"$I","holder":"a b"}`},
		{name: "wide batch with meta", batch: `{"instance":"*","meta":$M,"holder":"$I","reserve":1}`},
		{name: "wide batch with entries", batch: `{"instance":"*","entries":[],"holder":"$I","reserve":1}`},
		{name: "wide batch with tick", batch: `{"instance":"*","tick":$T,"holder":"$I","reserve":1}`},
		{name: "wide batch without holder", batch: `{"instance":"*","reserve":1}`},
		{name: "wide batch reserve negative", batch: `{"instance":"*","holder":"$I","reserve":-1}`},

		{name: "state not an object", state: `null`},
		{name: "state unknown member", state: `{"meta":$M,"x":1}`},
		{name: "state without meta", state: `{"reserved":1}`},
		{name: "state meta malformed", state: `{"meta":{}}`},
		{name: "head not an object", state: `{"meta":$M,"head":1}`},
		{name: "head seq negative", state: `{"meta":$M,"head":{"seq":-1,"hash":"$H","state":5,"epoch":1}}`},
		{name: "head seq not an integer", state: `{"meta":$M,"head":{"seq":1.5,"hash":"$H","state":5,"epoch":1}}`},
		{name: "head epoch not an integer", state: `{"meta":$M,"head":{"seq":4,"hash":"$H","state":5,"epoch":0.5}}`},
		{name: "head seq zero", state: `{"meta":$M,"head":{"seq":0,"hash":"$H","state":5,"epoch":1}}`},
		{name: "head without hash", state: `{"meta":$M,"head":{"seq":4,"state":5,"epoch":1}}`},
		{name: "head empty hash", state: `{"meta":$M,"head":{"seq":4,"hash":"","state":5,"epoch":1}}`},
		{name: "head bad state", state: `{"meta":$M,"head":{"seq":4,"hash":"$H","state":0,"epoch":1}}`},
		{name: "head unknown member", state: `{"meta":$M,"head":{"seq":4,"hash":"$H","state":5,"epoch":1,"x":1}}`},
		{name: "last tick malformed", state: `{"meta":$M,"lastTick":$BADTICK}`},
		{name: "last tick of another instance", state: `{"meta":$M,"lastTick":$XT}`},
		{name: "reserved negative", state: `{"meta":$M,"reserved":-1}`},
		{name: "wide not a number", state: `{"meta":$M,"wide":true}`},
		{name: "state holder bad text", state: `{"meta":$M,"holder":"~x"}`},
		{name: "presence not an array", state: `{"meta":$M,"presence":"a"}`},
		{name: "presence element not a string", state: `{"meta":$M,"presence":[1]}`},
		{name: "presence bad key text", state: `{"meta":$M,"presence":["a#"]}`},
		{name: "presence unsorted", state: `{"meta":$M,"presence":["b","a"]}`},
		{name: "presence duplicate", state: `{"meta":$M,"presence":["a","a"]}`},
		{name: "presence too large", state: `{"meta":$M,"presence":[$10001]}`, want: heartbeat.ErrTooLarge},
		{name: "snapshot not an object", state: `{"meta":$M,` + head + `,"snapshot":[]}`},
		{name: "snapshot marker before point", state: `{"meta":$M,` + head + `,"snapshot":{"seq":2,"hash":"$H","marker":2}}`},
		{name: "snapshot beyond head", state: `{"meta":$M,` + head + `,"snapshot":{"seq":2,"hash":"$H","marker":5}}`},
		{name: "snapshot without hash", state: `{"meta":$M,` + head + `,"snapshot":{"seq":2,"marker":3}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := c.want
			if want == nil {
				want = heartbeat.ErrMalformed
			}
			var err error
			if c.batch != "" {
				_, err = decodeSeqBatch([]byte(r.Replace(c.batch)))
			} else {
				_, err = decodeSeqState([]byte(r.Replace(c.state)))
			}
			if !errors.Is(err, want) {
				t.Fatalf("got %v, want %v", err, want)
			}
		})
	}
	// JSON text has no non-finite numbers, but a parsed value might.
	for _, k := range []string{"reserve", "reserved", "wide"} {
		o := &jsjson.Object{}
		if k == "reserve" {
			o.Set("instance", first.Instance)
		} else {
			o.Set("meta", mustParse(t, mj))
		}
		o.Set(k, math.Inf(1))
		var err error
		if k == "reserve" {
			_, err = heartbeat.BatchFromValue(o)
		} else {
			_, err = heartbeat.LogStateFromValue(o)
		}
		if !errors.Is(err, heartbeat.ErrMalformed) {
			t.Errorf("non-finite %s: %v", k, err)
		}
	}
	// The valid forms used above decode.
	for _, js := range []string{`{"instance":"$I","meta":$M,"entries":[$E],"tick":$T}`, `{"meta":$M,` + head + `,"snapshot":{"seq":2,"hash":"$H","marker":3}}`} {
		var err error
		if strings.HasPrefix(js, `{"instance"`) {
			_, err = decodeSeqBatch([]byte(r.Replace(js)))
		} else {
			_, err = decodeSeqState([]byte(r.Replace(js)))
		}
		if err != nil {
			t.Errorf("%s: %v", js, err)
		}
	}
}

func mustParse(t *testing.T, b []byte) any {
	t.Helper()
	v, err := jsjson.Parse(b, seqLimits)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func FuzzBatchWire(f *testing.F) {
	_, first, idle, wide := seqBatches()
	for _, b := range []heartbeat.Batch{first, idle, wide, {Instance: first.Instance}} {
		f.Add(b.AppendJSON(nil))
	}
	f.Add([]byte(`{"instance":"*","holder":"k1:x","reserve":-0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		val, err := jsjson.Parse(data, seqLimits)
		if err != nil {
			return
		}
		got, err := heartbeat.BatchFromValue(val)
		if err != nil {
			return
		}
		enc := got.AppendJSON(nil)
		again, err := decodeSeqBatch(enc)
		if err != nil {
			t.Fatalf("re-encoded batch refused: %v\n%s", err, enc)
		}
		if enc2 := again.AppendJSON(nil); !bytes.Equal(enc2, enc) {
			t.Fatalf("re-encode not stable:\n%s\n%s", enc, enc2)
		}
	})
}

func FuzzLogStateWire(f *testing.F) {
	st := seqState()
	f.Add(st.AppendJSON(nil))
	f.Add([]byte(`{}`))
	f.Add((&heartbeat.LogState{Meta: st.Meta, Presence: []string{"a", "b"}}).AppendJSON(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		val, err := jsjson.Parse(data, seqLimits)
		if err != nil {
			return
		}
		got, err := heartbeat.LogStateFromValue(val)
		if err != nil {
			return
		}
		enc := got.AppendJSON(nil)
		again, err := decodeSeqState(enc)
		if err != nil {
			t.Fatalf("re-encoded state refused: %v\n%s", err, enc)
		}
		if enc2 := again.AppendJSON(nil); !bytes.Equal(enc2, enc) {
			t.Fatalf("re-encode not stable:\n%s\n%s", enc, enc2)
		}
	})
}
