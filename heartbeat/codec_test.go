package heartbeat_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/heartbeat/heartbeattest"
)

func sampleStream() *heartbeattest.Stream {
	owner := heartbeattest.Signer(1)
	s := heartbeattest.NewStream(owner, owner.Public(), 1, heartbeat.Head{}, nil, 0, heartbeattest.Epoch)
	s.Message(heartbeattest.Signer(2), heartbeattest.Epoch.UnixMilli(), `{"action":"setProperty","parameters":["x",1]}`)
	s.Message(heartbeattest.Signer(3), heartbeattest.Epoch.UnixMilli(), "\u2028<b>\"quoted\"</b>")
	s.Tick(50 * time.Millisecond)
	return s
}

func TestCodecRoundTrip(t *testing.T) {
	s := sampleStream()
	for _, e := range s.Entries {
		b, _ := e.MarshalJSON()
		got, err := heartbeat.ParseEntry(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(normEntry(got), normEntry(e)) {
			t.Fatalf("entry round trip:\n%+v\n%+v", got, e)
		}
	}
	tk := s.Ticks[0]
	b, _ := tk.MarshalJSON()
	got, err := heartbeat.ParseTick(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, tk) {
		t.Fatalf("tick round trip:\n%+v\n%+v", got, tk)
	}
	m := s.Entries[1].Message()
	mb, _ := m.MarshalJSON()
	gm, err := heartbeat.ParseMessage(mb)
	if err != nil || gm.ID() != m.ID() {
		t.Fatalf("message round trip: %v", err)
	}
	meta := s.Seq.Meta()
	metab, _ := meta.MarshalJSON()
	if gmeta, err := heartbeat.ParseMeta(metab); err != nil || gmeta != meta {
		t.Fatalf("meta round trip: %v", err)
	}
}

func normEntry(e heartbeat.Entry) heartbeat.Entry {
	if len(e.Sig) == 0 {
		e.Sig = nil
	}
	return e
}

func TestCodecStrict(t *testing.T) {
	s := sampleStream()
	m := s.Entries[1].Message()
	good, _ := m.MarshalJSON()
	e := s.Entries[1]
	goodEntry, _ := e.MarshalJSON()
	cases := map[string]struct {
		data []byte
		want error
	}{
		"duplicate member":    {bytes.Replace(good, []byte(`{"instance"`), []byte(`{"sig":"x","instance"`), 1), heartbeat.ErrMalformed},
		"case variant member": {bytes.Replace(good, []byte(`{"instance"`), []byte(`{"Sig":"x","instance"`), 1), heartbeat.ErrMalformed},
		"unknown member":      {bytes.Replace(good, []byte(`{"instance"`), []byte(`{"extra":1,"instance"`), 1), heartbeat.ErrMalformed},
		"id mismatch":         {bytes.Replace(good, []byte(`"payload":"{`), []byte(`"payload":"{ `), 1), heartbeat.ErrIDMismatch},
		"entry hash mismatch": {bytes.Replace(goodEntry, []byte(`"seq":2`), []byte(`"seq":3`), 1), heartbeat.ErrIDMismatch},
		"lone surrogate":      {bytes.Replace(good, []byte(`"payload":"{`), []byte(`"payload":"\ud800{`), 1), heartbeat.ErrMalformed},
		"fractional ts":       {bytes.Replace(good, []byte(`"ts":`), []byte(`"ts":0.5,"x":`), 1), heartbeat.ErrMalformed},
		"not an object":       {[]byte(`[1,2]`), heartbeat.ErrMalformed},
		"deep":                {[]byte(strings.Repeat("[", 100) + strings.Repeat("]", 100)), heartbeat.ErrMalformed},
	}
	for name, c := range cases {
		if _, err := heartbeat.ParseMessage(c.data); name != "entry hash mismatch" && !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
	if _, err := heartbeat.ParseEntry(cases["entry hash mismatch"].data); !errors.Is(err, heartbeat.ErrIDMismatch) {
		t.Errorf("entry hash mismatch: %v", err)
	}
	// State NaN/negative/huge (table A row 8) is refused.
	for _, st := range []string{`-1`, `0`, `1e400`, `9007199254740993`, `"1"`} {
		bad := bytes.Replace(goodEntry, []byte(`"state":`), []byte(`"state":`+st+`,"x":`), 1)
		if _, err := heartbeat.ParseEntry(bad); err == nil {
			t.Errorf("state %s accepted", st)
		}
	}
}

func FuzzParseEntry(f *testing.F) {
	s := sampleStream()
	for _, e := range s.Entries {
		b, _ := e.MarshalJSON()
		f.Add(b)
	}
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := heartbeat.ParseEntry(data)
		if err != nil {
			return
		}
		b, _ := e.MarshalJSON()
		e2, err := heartbeat.ParseEntry(b)
		if err != nil || e2.Hash() != e.Hash() {
			t.Fatalf("re-encode does not round trip: %v", err)
		}
	})
}

func FuzzParseTick(f *testing.F) {
	ticks, _ := heartbeat.SignRound(heartbeattest.Signer(1), records(5))
	for _, tk := range ticks {
		b, _ := tk.MarshalJSON()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tk, err := heartbeat.ParseTick(data)
		if err != nil {
			return
		}
		_ = heartbeat.VerifyTick(&tk, heartbeat.KeyVerifier(nil), nil) // must not panic
		b, _ := tk.MarshalJSON()
		tk2, err := heartbeat.ParseTick(b)
		if err != nil || tk2.Leaf() != tk.Leaf() {
			t.Fatalf("re-encode does not round trip: %v", err)
		}
	})
}

func FuzzParseMessage(f *testing.F) {
	s := sampleStream()
	m := s.Entries[1].Message()
	b, _ := m.MarshalJSON()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := heartbeat.ParseMessage(data)
		if err != nil {
			return
		}
		b, _ := m.MarshalJSON()
		m2, err := heartbeat.ParseMessage(b)
		if err != nil || m2.ID() != m.ID() {
			t.Fatalf("re-encode does not round trip: %v", err)
		}
	})
}
