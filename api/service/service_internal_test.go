package service

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
)

// rateWindow reports the events of the last two seconds per second, and
// forgets older ones however long it sat idle.
func TestRateWindow(t *testing.T) {
	var r rateWindow
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 200 { // 20 a second for 10 s
		r.add(t0.Add(time.Duration(i) * 50 * time.Millisecond))
	}
	now := t0.Add(10 * time.Second)
	if got := r.rate(now); got < 20 || got > 21 {
		t.Fatalf("rate after 20/s = %v, want 20–21", got)
	}
	if got := r.rate(now.Add(3 * time.Second)); got != 0 {
		t.Fatalf("rate 3 s after the last event = %v, want 0", got)
	}
	// A slot reused after a whole turn of the ring starts from zero.
	later := now.Add(time.Hour)
	for i := range 4000 { // 2,000 a second for 2 s
		r.add(later.Add(time.Duration(i) * 500 * time.Microsecond))
	}
	if got := r.rate(later.Add(2 * time.Second)); got < 1900 || got > 2000 {
		t.Fatalf("rate after 2,000/s = %v, want 1,900–2,000", got)
	}
}

// messageIn reuses the message Preverify rebuilt from the same fields, and
// rebuilds it when the fields differ.
func TestMessageInReusesPreverifyParse(t *testing.T) {
	s := &Service{}
	soul := "lum/x/in/y"
	fields := map[string]graph.Field{"author": {Value: graph.String("a"), State: 1}}
	cached := heartbeat.Message{Author: "from preverify"}
	ctx := context.WithValue(context.Background(), inboxParsesKey{}, inboxParses{soul: {fields: maps.Clone(fields), msg: cached}})
	if m, err := s.messageIn(ctx, soul, fields); err != nil || m.Author != "from preverify" {
		t.Fatalf("same fields: %+v, %v; want the cached message", m, err)
	}
	other := map[string]graph.Field{"author": {Value: graph.String("b"), State: 1}}
	if m, err := s.messageIn(ctx, soul, other); err == nil || m.Author == "from preverify" {
		t.Fatalf("other fields: %+v, %v; want a rebuild (which fails: the node is incomplete)", m, err)
	}
}
