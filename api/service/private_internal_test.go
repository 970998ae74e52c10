package service

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/world"
)

// refusal is a wire reason as auth would give it.
type refusal string

func (r refusal) Error() string { return string(r) }

func node(soul string, fields ...string) *graph.Node {
	n := &graph.Node{Soul: soul, Fields: map[string]graph.Field{}}
	for _, f := range fields {
		n.Fields[f] = graph.Field{Value: graph.String("v"), State: 1}
	}
	return n
}

func summary(fes []graph.FieldError) string {
	var b strings.Builder
	for _, fe := range fes {
		fmt.Fprintf(&b, "%s.%s=%s;", fe.Soul, fe.Field, fe.Err)
	}
	return b.String()
}

func TestWholeRecordChanges(t *testing.T) {
	a, b := world.RootSoul("A"), world.RootSoul("B")
	roster, keysA := world.RosterSoul("A"), world.KeysSoul("A", 3)
	hb, dataA := a+"/hb", a+"/data/x"
	allowed := graph.Graph{
		roster:                 node(roster, "m1", "m2"),
		keysA:                  node(keysA, "m1"),
		hb:                     node(hb, "tick"),
		dataA:                  node(dataA, "k"),
		world.MembersSoul("B"): node(world.MembersSoul("B"), "m1"),
	}
	first := graph.FieldError{Soul: world.CertsSoul("A"), Field: "s1", Err: refusal("restricted: certificate signature does not verify")}

	t.Run("refusal withdraws the instance's other records", func(t *testing.T) {
		out, refused := wholeRecordChanges(allowed, []graph.FieldError{first})
		if len(out) != 3 {
			t.Fatalf("kept %v", out.Souls())
		}
		for _, s := range []string{hb, dataA, world.MembersSoul("B")} {
			if out[s] != allowed[s] {
				t.Errorf("%s not kept as it was", s)
			}
		}
		want := first.Soul + ".s1=" + first.Err.Error() + ";" +
			keysA + ".m1=restricted: refused with the rest of its change;" +
			roster + ".m1=restricted: refused with the rest of its change;" +
			roster + ".m2=restricted: refused with the rest of its change;"
		if got := summary(refused); got != want {
			t.Fatalf("refused\n got %s\nwant %s", got, want)
		}
		if !errors.Is(refused[1].Err, auth.ErrRestricted) {
			t.Fatalf("withdrawn fields carry %v, want a restricted refusal", refused[1].Err)
		}
		if len(allowed) != 5 {
			t.Fatal("the input graph was changed")
		}
	})
	t.Run("duplicates and other souls do not count", func(t *testing.T) {
		dup := graph.FieldError{Soul: a, Field: "private", Err: refusal("duplicate: already stored")}
		other := graph.FieldError{Soul: hb, Field: "tick", Err: refusal("restricted: not authorised to tick")}
		out, refused := wholeRecordChanges(allowed, []graph.FieldError{dup, other})
		if len(out) != len(allowed) || len(refused) != 2 {
			t.Fatalf("kept %d of %d souls, refused %s", len(out), len(allowed), summary(refused))
		}
	})
	t.Run("a stranger to a private world learns nothing more", func(t *testing.T) {
		private := graph.FieldError{Soul: b, Field: "private", Err: &auth.Refusal{Prefix: auth.PrefixAuthRequired, Text: "private instance"}}
		out, refused := wholeRecordChanges(allowed, []graph.FieldError{private})
		if out[world.MembersSoul("B")] != nil || out[roster] == nil {
			t.Fatalf("kept %v", out.Souls())
		}
		if len(refused) != 2 || refused[1].Err != private.Err {
			t.Fatalf("refused %s, want the private-instance answer for the rest", summary(refused))
		}
	})
}
