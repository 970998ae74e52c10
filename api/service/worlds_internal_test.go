package service

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/krestianstvo/luminary/keys"
)

// The worlds file assembled from cached record encodings is byte for byte
// what encoding the whole sorted list gives, and it loads back.
func TestWorldsFileText(t *testing.T) {
	path := filepath.Join(t.TempDir(), WorldsFile)
	w := newWorldStore(path)
	var recs []*worldRec
	for i, created := range []int64{30, 10, 20, 10, 40} {
		k, err := keys.Generate(keys.Secp256k1)
		if err != nil {
			t.Fatal(err)
		}
		r := &worldRec{Instance: k.Public().String(), Name: "w\u2028<\"" + string(rune('a'+i)), Rate: 1, TPS: 20, Created: created,
			Private: i%2 == 0, Alias: []string{"", "x", "", "y", ""}[i]}
		if err := w.add(r, nil, nil); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
		sorted := slices.Clone(recs)
		slices.SortFunc(sorted, recBefore)
		want, err := json.MarshalIndent(sorted, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want)+"\n" {
			t.Fatalf("after %d worlds:\n got %s\nwant %s", i+1, got, want)
		}
	}
	again := newWorldStore(path)
	if err := again.load(); err != nil {
		t.Fatal(err)
	}
	if len(again.byInst) != len(recs) || len(again.order) != len(recs) {
		t.Fatalf("reloaded %d worlds (%d in order), want %d", len(again.byInst), len(again.order), len(recs))
	}
	if err := again.add(recs[0], nil, nil); err != errExists {
		t.Fatalf("re-adding a world: %v", err)
	}
}
