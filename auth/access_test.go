package auth_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
)

// AccessChanged names the worlds whose private flag or member list a
// commit touched, and nothing else.
func TestAccessChanged(t *testing.T) {
	c, err := auth.New(auth.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const a, b = "k1:AAAA", "k1:BBBB"
	g := graph.Graph{}
	g.Set(auth.InstancePrefix+a, "private", graph.Field{Value: graph.Bool(true), State: 1})
	g.Set(auth.InstancePrefix+a, "name", graph.Field{Value: graph.String("x"), State: 1})
	g.Set(auth.InstancePrefix+b+"/members", "k1:CCCC", graph.Field{Value: graph.Null(), State: 1})
	g.Set(auth.InstancePrefix+b+"/data", "private", graph.Field{Value: graph.Bool(true), State: 1})
	g.Set("~someone", "private", graph.Field{Value: graph.Bool(true), State: 1})
	got := c.AccessChanged(g)
	slices.Sort(got)
	if want := []string{auth.InstancePrefix + a, auth.InstancePrefix + b}; !slices.Equal(got, want) {
		t.Fatalf("AccessChanged = %v, want %v", got, want)
	}
	name := graph.Graph{}
	name.Set(auth.InstancePrefix+a, "name", graph.Field{Value: graph.String("y"), State: 2})
	if got := c.AccessChanged(name); len(got) != 0 {
		t.Fatalf("a name change reported %v", got)
	}
}

// BenchmarkAccessChanged: one 5,000-world round of heartbeat nodes, the
// commit the relay checks after every round (nothing in it changes access).
func BenchmarkAccessChanged(b *testing.B) {
	c, err := auth.New(auth.Config{})
	if err != nil {
		b.Fatal(err)
	}
	g := graph.Graph{}
	for i := range 5000 {
		inst := "k1:A" + string(rune('a'+i%26)) + strings.Repeat("x", 40) + strconv.Itoa(i)
		g.Set(auth.InstancePrefix+inst+"/hb", "tick", graph.Field{Value: graph.String("{}"), State: 1})
	}
	b.ReportAllocs()
	for b.Loop() {
		if got := c.AccessChanged(g); len(got) != 0 {
			b.Fatal(got)
		}
	}
}
