package api

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/krestianstvo/luminary/graph"
)

// TestRecipientsInConnectionOrder checks that a broadcast queues to its
// connections in the order they were made, the same for every broadcast
// whatever the map iteration order of its souls and subscribers.
func TestRecipientsInConnectionOrder(t *testing.T) {
	x := newSubIndex(newMetrics(prometheus.NewRegistry()))
	conns := []*conn{{serial: 30}, {serial: 10}, {serial: 20}, {serial: 40}}
	accepted := graph.Graph{}
	for i := range 64 {
		soul := fmt.Sprintf("lum/w%02d/hb", i)
		accepted.Set(soul, "tick", graph.Field{Value: graph.String("t"), State: 1})
		c := conns[i%len(conns)]
		if _, err := x.add(c, soul, "", false, 1000); err != nil {
			t.Fatal(err)
		}
		if i%8 == 0 { // and some souls followed by a second connection
			if _, err := x.add(conns[(i+1)%len(conns)], soul, "", false, 1000); err != nil {
				t.Fatal(err)
			}
		}
	}
	none := func(*conn) bool { return false }
	for range 20 {
		rs := x.recipients(accepted, none)
		if len(rs) != len(conns) {
			t.Fatalf("%d recipients, want %d", len(rs), len(conns))
		}
		for i, r := range rs {
			if want := uint64(10 * (i + 1)); r.c.serial != want {
				t.Fatalf("recipient %d is connection %d, want %d", i, r.c.serial, want)
			}
		}
	}
	// One soul (the fast path) followed by every connection.
	one := graph.Graph{}
	one.Set("lum/all/hb", "tick", graph.Field{Value: graph.String("t"), State: 1})
	for _, c := range conns {
		if _, err := x.add(c, "lum/all/hb", "", false, 1000); err != nil {
			t.Fatal(err)
		}
	}
	for range 20 {
		rs := x.recipients(one, none)
		for i, r := range rs {
			if want := uint64(10 * (i + 1)); r.c.serial != want {
				t.Fatalf("one soul: recipient %d is connection %d, want %d", i, r.c.serial, want)
			}
		}
	}
}
