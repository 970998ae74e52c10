package auth_test

import (
	"slices"
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
