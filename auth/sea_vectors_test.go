package auth

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/internal/nodetest"
	"path/filepath"
)

// seaVectors is testdata/sea_vectors.json, made by testdata/node/capture.mjs.
type seaVectors struct {
	Generator string  `json:"generator"`
	Gun       string  `json:"gun"`
	Now       float64 `json:"now"`
	Pairs     map[string]struct {
		Pub  string `json:"pub"`
		Priv string `json:"priv"`
	} `json:"pairs"`
	Alias    string            `json:"alias"`
	Certs    map[string]string `json:"certs"`
	Captured []seaVector       `json:"captured"`
	Raw      []seaVector       `json:"raw"`
}

type seaVector struct {
	Name   string          `json:"name"`
	Soul   string          `json:"soul"`
	Field  string          `json:"field"`
	Value  json.RawMessage `json:"value"`
	State  float64         `json:"state"`
	Expect string          `json:"expect"`
	Note   string          `json:"note"`
}

func loadSEAVectors(t testing.TB, path string) *seaVectors {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v seaVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

func (v seaVector) field(t testing.TB) graph.Field {
	t.Helper()
	x, err := jsjson.Parse(v.Value, jsjson.Limits{})
	if err != nil {
		t.Fatalf("%s: value: %v", v.Name, err)
	}
	val, err := graph.ValueOf(x)
	if err != nil {
		t.Fatalf("%s: value: %v", v.Name, err)
	}
	return graph.Field{Value: val, State: v.State}
}

// checkOne runs one field through CheckPut and returns "ok" or the reason.
func checkOne(t testing.TB, c *Checker, peer *Peer, soul, field string, f graph.Field) string {
	t.Helper()
	return checkField(t, c, peer, soul, field, f, false)
}

// checkField runs one field through CheckPut, with its signatures verified
// ahead by Preverify when pre is set, and returns "ok" or the reason.
func checkField(t testing.TB, c *Checker, peer *Peer, soul, field string, f graph.Field, pre bool) string {
	t.Helper()
	diff := graph.Graph{soul: &graph.Node{Soul: soul, Fields: map[string]graph.Field{field: f}}}
	ctx := context.Background()
	if pre {
		ctx = c.Preverify(ctx, diff)
	}
	allowed, refused := c.CheckPut(ctx, peer, diff)
	switch {
	case len(refused) == 0 && len(allowed) == 1:
		return "ok"
	case len(refused) == 1 && len(allowed) == 0:
		return refused[0].Err.Error()
	}
	t.Fatalf("CheckPut(%s.%s): allowed %d souls, refused %v", soul, field, len(allowed), refused)
	return ""
}

func vectorChecker(t testing.TB, v *seaVectors, mode Mode) *Checker {
	t.Helper()
	fc := clock.NewFake(time.UnixMilli(int64(v.Now) + 10_000))
	c, err := New(Config{Clock: fc, Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSEAVectors judges every gun.js-made write of testdata/sea_vectors.json:
// frames captured from real gun.js clients (user().create, user().auth +
// put, put with opt.cert) must pass; the raw writes must get the outcome
// recorded beside them.
func TestSEAVectors(t *testing.T) {
	v := loadSEAVectors(t, "testdata/sea_vectors.json")
	runSEAVectors(t, v)
}

func runSEAVectors(t *testing.T, v *seaVectors) {
	c := vectorChecker(t, v, Secure)
	if len(v.Captured) < 10 {
		t.Fatalf("only %d captured frames", len(v.Captured))
	}
	for _, vec := range append(append([]seaVector(nil), v.Captured...), v.Raw...) {
		name := vec.Name
		if name == "" {
			name = "captured " + vec.Soul + "." + vec.Field
		}
		if got := checkOne(t, c, nil, vec.Soul, vec.Field, vec.field(t)); got != vec.Expect {
			t.Errorf("%s (%s):\n got %q\nwant %q", name, vec.Note, got, vec.Expect)
		}
	}
	// All captured frames in one message: every field allowed, nothing refused.
	diff := graph.Graph{}
	for _, vec := range v.Captured {
		diff.Set(vec.Soul, vec.Field, vec.field(t))
	}
	allowed, refused := c.CheckPut(context.Background(), nil, diff)
	if len(refused) != 0 || !allowed.Equal(diff) {
		t.Errorf("captured frames as one message: refused %v", refused)
	}
	// Open mode passes the plain soul, and nothing else changes.
	open := vectorChecker(t, v, Open)
	for _, vec := range v.Raw {
		want := vec.Expect
		if vec.Name == "other_soul" {
			want = "ok"
		}
		if got := checkOne(t, open, nil, vec.Soul, vec.Field, vec.field(t)); got != want {
			t.Errorf("open mode %s: got %q, want %q", vec.Name, got, want)
		}
	}
}

// TestSEAOwner compares seaOwner with gun.js's SEA.opt.pub on the souls
// recorded in the vectors.
func TestSEAOwner(t *testing.T) {
	v := loadSEAVectors(t, "testdata/sea_vectors.json")
	var doc struct {
		Owners map[string]string `json:"owners"`
	}
	raw, _ := os.ReadFile("testdata/sea_vectors.json")
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Owners) < 10 {
		t.Fatalf("only %d owner cases (%s)", len(doc.Owners), v.Generator)
	}
	for soul, want := range doc.Owners {
		if got := seaOwner(soul); got != want {
			t.Errorf("seaOwner(%q) = %q, gun.js says %q", soul, got, want)
		}
	}
}

// TestSEAVectorsLive makes fresh vectors with gun.js in node (the same
// script that made testdata/sea_vectors.json) and judges them.
func TestSEAVectorsLive(t *testing.T) {
	nodetest.Require(t)
	out := filepath.Join(t.TempDir(), "vectors.json")
	if _, err := nodetest.Run(t, 90*time.Second, "testdata/node/capture.mjs", out); err != nil {
		t.Fatal(err)
	}
	runSEAVectors(t, loadSEAVectors(t, out))
}
