package auth

import (
	"context"
	"testing"

	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/jsjson"
)

// checkOnePre is checkOne with the signatures verified ahead by Preverify.
func checkOnePre(t testing.TB, c *Checker, soul, field string, f graph.Field) string {
	t.Helper()
	return checkField(t, c, nil, soul, field, f, true)
}

// TestPreverifySameVerdicts judges every gun.js vector (captured writes,
// forgeries, certificate bypasses, unsigned writes) with and without
// Preverify: the verdicts must be identical.
func TestPreverifySameVerdicts(t *testing.T) {
	v := loadSEAVectors(t, "testdata/sea_vectors.json")
	c := vectorChecker(t, v, Secure)
	for _, vec := range append(append([]seaVector(nil), v.Captured...), v.Raw...) {
		f := vec.field(t)
		plain := checkOne(t, c, nil, vec.Soul, vec.Field, f)
		pre := checkOnePre(t, c, vec.Soul, vec.Field, f)
		if plain != pre || pre != vec.Expect {
			t.Errorf("%s %s.%s: without Preverify %q, with %q, want %q", vec.Name, vec.Soul, vec.Field, plain, pre, vec.Expect)
		}
	}
}

// TestPreverifyOtherDiff: a context from Preverify of one write is no
// licence for another. A value, state or field that differs from what was
// verified is verified again (and a forged one refused).
func TestPreverifyOtherDiff(t *testing.T) {
	v := loadSEAVectors(t, "testdata/sea_vectors.json")
	c := vectorChecker(t, v, Secure)
	var vec seaVector
	for _, x := range v.Captured {
		if x.Field == "status" {
			vec = x
		}
	}
	if vec.Soul == "" {
		t.Fatal("no captured status write")
	}
	good := vec.field(t)
	ctx := c.Preverify(context.Background(), graph.Graph{vec.Soul: &graph.Node{Soul: vec.Soul, Fields: map[string]graph.Field{vec.Field: good}}})
	s, _ := good.Value.AsString()
	x, err := jsjson.Parse([]byte(s), jsjson.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	w := x.(*jsjson.Object)
	w.Set(":", "forged")
	forged := string(jsjson.Append(nil, w)) // the same signature over another value
	for name, f := range map[string]graph.Field{
		"other value": {Value: graph.String(forged), State: good.State},
		"other state": {Value: good.Value, State: good.State + 1},
	} {
		diff := graph.Graph{vec.Soul: &graph.Node{Soul: vec.Soul, Fields: map[string]graph.Field{vec.Field: f}}}
		allowed, refused := c.CheckPut(ctx, nil, diff)
		if len(allowed) != 0 || len(refused) != 1 {
			t.Errorf("%s: allowed %v, refused %v", name, allowed, refused)
			continue
		}
		wantPrefix(t, refused[0].Err.Error(), PrefixInvalid)
	}
	// The write that was verified passes with the context.
	diff := graph.Graph{vec.Soul: &graph.Node{Soul: vec.Soul, Fields: map[string]graph.Field{vec.Field: good}}}
	if _, refused := c.CheckPut(ctx, nil, diff); len(refused) != 0 {
		t.Fatalf("the preverified write: %v", refused)
	}
}

// TestPreverifyReplay: an exact replay of a stored field is found by
// Preverify without verifying it, and CheckPut refuses it as a duplicate.
func TestPreverifyReplay(t *testing.T) {
	v := loadSEAVectors(t, "testdata/sea_vectors.json")
	c := vectorChecker(t, v, Secure)
	store := graph.NewMemoryStore()
	c.cfg.Lookup = StoreLookup(store)
	vec := v.Captured[0]
	for _, x := range v.Captured {
		if x.Field == "status" {
			vec = x
		}
	}
	f := vec.field(t)
	diff := graph.Graph{vec.Soul: &graph.Node{Soul: vec.Soul, Fields: map[string]graph.Field{vec.Field: f}}}
	ctx := c.Preverify(context.Background(), diff)
	if pv := preverifiedFrom(ctx); pv == nil || len(pv.fields) != 1 || pv.fields[0].dup || pv.fields[0].sig.r != nil {
		t.Fatalf("first write: preverified %+v", pv)
	}
	if _, err := store.Merge(context.Background(), diff); err != nil {
		t.Fatal(err)
	}
	ctx = c.Preverify(context.Background(), diff)
	pv := preverifiedFrom(ctx)
	if pv == nil || !pv.fields[0].dup || pv.fields[0].sig.signer != "" {
		t.Fatalf("replay: preverified %+v", pv)
	}
	_, refused := c.CheckPut(ctx, nil, diff)
	if len(refused) != 1 {
		t.Fatalf("replay: refused %v", refused)
	}
	wantPrefix(t, refused[0].Err.Error(), PrefixDuplicate)
}
