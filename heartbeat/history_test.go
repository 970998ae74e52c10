package heartbeat_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/heartbeat/heartbeattest"
)

// exported returns the history of a two-epoch world (a failover mid-run).
func exported(t *testing.T) (*heartbeattest.World, []byte) {
	t.Helper()
	w, a, _ := failoverWorld(t, 21)
	if err := w.Run(800 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	a.Crash()
	if err := w.Run(1200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	quiesce(t, w)
	var buf bytes.Buffer
	if err := heartbeat.Export(ctx, w.Log, w.Instance, &buf, heartbeat.ExportOptions{PageSize: 7}); err != nil {
		t.Fatal(err)
	}
	return w, buf.Bytes()
}

func TestHistoryExportVerify(t *testing.T) {
	w, data := exported(t)
	rep, err := heartbeat.VerifyHistory(bytes.NewReader(data), heartbeat.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := w.Log.State(ctx, w.Instance)
	acked := 0
	for _, s := range w.Senders {
		acked += len(s.Acked)
	}
	if rep.To != st.Head.Seq || rep.Entries != int(st.Head.Seq) || rep.Messages != acked || len(rep.Epochs) != 2 || rep.Ticks == 0 {
		t.Fatalf("report: to %d entries %d messages %d (acked %d) epochs %d ticks %d", rep.To, rep.Entries, rep.Messages, acked, len(rep.Epochs), rep.Ticks)
	}
	if rep.Epochs[0].Holder == rep.Epochs[1].Holder {
		t.Fatal("both epochs name the same holder")
	}
	authors := map[string]bool{}
	for _, p := range rep.Provenance {
		if p.Kind == heartbeat.KindMessage {
			authors[p.Author] = true
		}
	}
	if len(authors) != len(w.Senders) {
		t.Fatalf("provenance names %d authors, want %d", len(authors), len(w.Senders))
	}
	// A range export verifies on its own too.
	var part bytes.Buffer
	if err := heartbeat.Export(ctx, w.Log, w.Instance, &part, heartbeat.ExportOptions{From: 10, To: 20}); err != nil {
		t.Fatal(err)
	}
	prep, err := heartbeat.VerifyHistory(&part, heartbeat.VerifyOptions{Authorizer: w.Auth})
	if err != nil || prep.From != 10 || prep.To < 20 {
		t.Fatalf("range: %v %+v", err, prep)
	}
	// Every end point works (the range is extended to its covering tick).
	for to := uint64(2); to < 40; to++ {
		var b bytes.Buffer
		if err := heartbeat.Export(ctx, w.Log, w.Instance, &b, heartbeat.ExportOptions{From: 1, To: to}); err != nil {
			t.Fatal(err)
		}
		if _, err := heartbeat.VerifyHistory(&b, heartbeat.VerifyOptions{}); err != nil {
			t.Fatalf("export 1..%d: %v", to, err)
		}
	}
	// Reading by time returns the same entries as by seq.
	p, _ := w.Log.ReadByTime(ctx, w.Instance, prep.FirstState, prep.LastState, 1000)
	if len(p.Entries) != int(prep.To-9) || p.Entries[0].Seq != 10 {
		t.Fatalf("by time: %d entries from %d", len(p.Entries), p.Entries[0].Seq)
	}
}

func TestHistoryVerifyFindsDefects(t *testing.T) {
	_, data := exported(t)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	// Find a message entry line that is followed by another entry line.
	msg := -1
	for i := 1; i+1 < len(lines); i++ {
		if strings.Contains(lines[i], `"kind":"msg"`) && strings.HasPrefix(lines[i+1], `{"entry"`) {
			msg = i
			break
		}
	}
	if msg < 0 {
		t.Fatal("no message line")
	}
	reentry := func(line string, f func(e *heartbeat.Entry)) string {
		inner := strings.TrimSuffix(strings.TrimPrefix(line, `{"entry":`), "}")
		e, err := heartbeat.ParseEntry([]byte(inner))
		if err != nil {
			t.Fatal(err)
		}
		f(&e)
		b, _ := e.MarshalJSON()
		return `{"entry":` + string(b) + `}`
	}
	join := func(ls []string) []byte { return []byte(strings.Join(ls, "\n") + "\n") }
	replace := func(i int, s string) []byte {
		c := append([]string{}, lines...)
		c[i] = s
		return join(c)
	}
	lastTick := -1
	for i := range lines {
		if strings.HasPrefix(lines[i], `{"tick"`) {
			lastTick = i
		}
	}
	cases := map[string]struct {
		data []byte
		line int
		want error
	}{
		"edited payload": {replace(msg, strings.Replace(lines[msg], `"payload":"{`, `"payload":"{ `, 1)), msg + 1, heartbeat.ErrIDMismatch},
		"rehashed edit":  {replace(msg, reentry(lines[msg], func(e *heartbeat.Entry) { e.Payload = `{"evil":1}` })), msg + 1, heartbeat.ErrBadSignature},
		"broken chain":   {replace(msg, reentry(lines[msg], func(e *heartbeat.Entry) { e.State += 0.001 })), msg + 2, heartbeat.ErrFork},
		"dropped entry":  {join(append(append([]string{}, lines[:msg]...), lines[msg+1:]...)), msg + 1, heartbeat.ErrOrder},
		"uncovered tail": {join(lines[:lastTick]), lastTick + 1, heartbeat.ErrOrder},
		"forged tick":    {replace(lastTick, flipSig(lines[lastTick])), lastTick + 1, heartbeat.ErrBadSignature},
		"garbage line":   {replace(msg, `{"entry":`), msg + 1, heartbeat.ErrMalformed},
	}
	for name, c := range cases {
		rep, err := heartbeat.VerifyHistory(bytes.NewReader(c.data), heartbeat.VerifyOptions{})
		var d *heartbeat.Defect
		if !errors.Is(err, heartbeat.ErrHistory) || !errors.As(err, &d) || !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
			continue
		}
		if d.Line != c.line || rep.Defect != d {
			t.Errorf("%s: defect at line %d, want %d (%v)", name, d.Line, c.line, err)
		}
	}
}

// flipSig changes the first character of the last "sig" in line.
func flipSig(line string) string {
	i := strings.LastIndex(line, `"sig":"`) + len(`"sig":"`)
	c := byte('A')
	if line[i] == 'A' {
		c = 'B'
	}
	return line[:i] + string(c) + line[i+1:]
}

func FuzzVerifyHistory(f *testing.F) {
	owner := heartbeattest.Signer(1)
	s := heartbeattest.NewStream(owner, owner.Public(), 1, heartbeat.Head{}, nil, 0, heartbeattest.Epoch)
	s.Message(heartbeattest.Signer(2), heartbeattest.Epoch.UnixMilli(), `{"a":1}`)
	tk := s.Tick(time.Millisecond)
	log := heartbeat.NewMemLog()
	m := s.Seq.Meta()
	if err := log.Append(ctx, []heartbeat.Batch{{Instance: m.Instance, Meta: &m, Entries: s.Entries, Tick: &tk, Reserve: s.Reserve}}); err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if err := heartbeat.Export(ctx, log, m.Instance, &buf, heartbeat.ExportOptions{}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("{}\n{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := heartbeat.VerifyHistory(bytes.NewReader(data), heartbeat.VerifyOptions{MaxLine: 1 << 16})
		if (err == nil) != (rep.Defect == nil) {
			t.Fatalf("error %v but defect %v", err, rep.Defect)
		}
	})
}
