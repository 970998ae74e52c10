package keys_test

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/internal/nodetest"
)

// TestKnownAnswersNode checks testdata/kat.json (our deterministic RFC 6979
// low-S signatures) against an independent implementation, @noble/curves.
func TestKnownAnswersNode(t *testing.T) {
	nodetest.Require(t)
	kat, _ := filepath.Abs(filepath.Join("testdata", "kat.json"))
	out, err := nodetest.Run(t, 60*time.Second, filepath.Join("testdata", "node", "kat.mjs"), kat)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Checked int      `json:"checked"`
		Errors  []string `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("node output %q: %v", out, err)
	}
	if res.Checked == 0 || len(res.Errors) > 0 {
		t.Fatalf("checked %d vectors, errors: %v", res.Checked, res.Errors)
	}
}
