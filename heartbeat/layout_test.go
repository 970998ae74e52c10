package heartbeat_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/heartbeat/heartbeattest"
)

// The graph layout lets a gun.js peer compute Croquet time with the seed's
// formula from HAM states alone: (state(tick) - state(start_time)) * rate / 1000.
func TestLayoutSeedFormula(t *testing.T) {
	s := sampleStream()
	meta := s.Seq.Meta()
	tk := s.Ticks[0]
	puts := append(heartbeat.MetaPuts(meta), heartbeat.PublicationPuts(heartbeat.Publication{Meta: meta, Entries: s.Entries, Tick: tk, Stored: true})...)
	state := map[string]float64{}
	value := map[string]any{}
	for _, p := range puts {
		if strings.Contains(p.Soul, "~") || strings.Contains(p.Soul, "#") {
			t.Fatalf("soul %q would be special to gun/SEA", p.Soul)
		}
		k := p.Soul + "." + p.Field
		if old, ok := state[k]; !ok || p.State >= old {
			state[k], value[k] = p.State, p.Value
		}
	}
	hb := heartbeat.HeartbeatSoul(meta.Instance)
	rate := value[hb+".rate"].(float64)
	seed := (state[hb+".tick"] - state[hb+".start_time"]) * rate / 1000
	if seed != tk.Time() || seed != heartbeat.VTime(tk.State, meta.Start, meta.Rate) {
		t.Fatalf("seed formula %v, tick time %v", seed, tk.Time())
	}
	// Every log entry field carries its entry's state, so messages get their
	// time the same way, and lie strictly before the tick that follows them.
	for _, e := range s.Entries {
		k := heartbeat.BlockSoul(meta.Instance, e.Seq) + "." + heartbeat.SeqField(e.Seq)
		if state[k] != e.State || !(state[k] < state[hb+".tick"]) {
			t.Fatalf("entry %d field state %v", e.Seq, state[k])
		}
		got, err := heartbeat.ParseEntry([]byte(value[k].(string)))
		if err != nil || got.Hash() != e.Hash() {
			t.Fatalf("entry %d field does not parse back: %v", e.Seq, err)
		}
	}
	if _, err := heartbeat.ParseTick([]byte(value[hb+".tick"].(string))); err != nil {
		t.Fatal(err)
	}
	if heartbeat.SeqField(7) != "00000000000000000007" || heartbeat.BlockSoul("I", 2048) != "lum/I/log/2" {
		t.Fatal("field/soul naming")
	}
}

// The heartbeat node's epoch, seq and head move with publications that
// carry entries; an idle tick writes tick alone.
func TestLayoutIdleTickWritesTickAlone(t *testing.T) {
	s := sampleStream()
	meta := s.Seq.Meta()
	hb := heartbeat.HeartbeatSoul(meta.Instance)
	fields := func(p heartbeat.Publication) map[string]any {
		out := map[string]any{}
		for _, x := range heartbeat.PublicationPuts(p) {
			if x.Soul == hb {
				if x.State != p.Tick.State {
					t.Fatalf("%s written at %v, tick at %v", x.Field, x.State, p.Tick.State)
				}
				out[x.Field] = x.Value
			}
		}
		return out
	}
	tk := s.Ticks[len(s.Ticks)-1]
	if got := fields(heartbeat.Publication{Meta: meta, Tick: tk}); len(got) != 1 || got["tick"] == nil {
		t.Fatalf("idle tick wrote %v, want tick alone", got)
	}
	got := fields(heartbeat.Publication{Meta: meta, Entries: s.Entries, Tick: tk, Stored: true})
	if len(got) != 4 || got["epoch"] != float64(tk.Epoch) || got["seq"] != float64(tk.Seq) || got["head"] != tk.Head.String() {
		t.Fatalf("publication with entries wrote %v, want tick, epoch, seq and head", got)
	}
}

func TestInboxRoundTrip(t *testing.T) {
	s := sampleStream()
	m := s.Entries[1].Message()
	fields := map[string]any{}
	var soul string
	for _, p := range heartbeat.InboxPuts(&m, 1.8e12) {
		soul, fields[p.Field] = p.Soul, p.Value
	}
	got, err := heartbeat.MessageFromInbox(soul, fields)
	if err != nil || got.ID() != m.ID() {
		t.Fatalf("inbox round trip: %v", err)
	}
	if err := got.Verify(heartbeat.KeyVerifier(nil)); err != nil {
		t.Fatal(err)
	}
	// An author may not write the relay's ack fields.
	forged := map[string]any{"seq": 1.0}
	for k, v := range fields {
		forged[k] = v
	}
	if _, err := heartbeat.MessageFromInbox(soul, forged); !errors.Is(err, heartbeat.ErrMalformed) {
		t.Fatalf("forged ack field: %v", err)
	}
	// The soul must name the message: a record copied under another id is refused.
	other := heartbeat.InboxSoul(m.Instance, heartbeat.Hash{1})
	if _, err := heartbeat.MessageFromInbox(other, fields); !errors.Is(err, heartbeat.ErrIDMismatch) {
		t.Fatalf("wrong soul: %v", err)
	}
}

func TestSimulationIsDeterministic(t *testing.T) {
	run := func() (string, int) {
		w := heartbeattest.NewWorld(9, lossy)
		if _, err := w.AddHost("relay", heartbeattest.Signer(9002), nil); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if _, err := w.AddPeer(string(rune('a'+i)), uint64(9010+i)); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 2 {
			w.AddSender(string(rune('x'+i)), uint64(9020+i), 20, 20*time.Millisecond)
		}
		if err := w.Run(time.Second); err != nil {
			t.Fatal(err)
		}
		return string(w.Peers[0].App.Hash[:]) + string(w.Peers[2].App.Hash[:]), w.Net.Delivered
	}
	h1, n1 := run()
	h2, n2 := run()
	if h1 != h2 || n1 != n2 {
		t.Fatal("same seed, different runs")
	}
}

func TestIsHeartbeatSoul(t *testing.T) {
	for soul, want := range map[string]bool{
		"lum/k1:abc/hb": true, "lum/x.y/hb": true,
		"lum/k1:abc/hb/x": false, "lum/k1:abc/log": false, "lum//hb": false,
		"lum/a/b/hb": false, "hb": false, "x/lum/a/hb": false,
	} {
		if got := heartbeat.IsHeartbeatSoul(soul); got != want {
			t.Errorf("IsHeartbeatSoul(%q) = %v, want %v", soul, got, want)
		}
	}
}
