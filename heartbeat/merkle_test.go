package heartbeat_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/heartbeat/heartbeattest"
)

func records(n int) []heartbeat.TickRecord {
	recs := make([]heartbeat.TickRecord, n)
	for i := range recs {
		recs[i] = heartbeat.TickRecord{Instance: heartbeattest.Key(uint64(100 + i)).Public().String(), Epoch: 1, N: uint64(i + 1), Seq: uint64(i), State: 1.7e12 + float64(i), Start: 1.7e12, Rate: 1}
	}
	return recs
}

func TestSignRoundEverySize(t *testing.T) {
	s := heartbeattest.Signer(1)
	v := heartbeat.KeyVerifier(nil)
	recs := records(33)
	for n := 1; n <= len(recs); n++ {
		ticks, err := heartbeat.SignRound(s, recs[:n])
		if err != nil {
			t.Fatal(err)
		}
		var root heartbeat.Hash
		for i := range ticks {
			if err := heartbeat.VerifyTick(&ticks[i], v, nil); err != nil {
				t.Fatalf("n=%d i=%d: %v", n, i, err)
			}
			r, _ := ticks[i].Root()
			if i == 0 {
				root = r
			} else if r != root {
				t.Fatalf("n=%d: leaf %d reaches another root", n, i)
			}
		}
	}
}

// TestSignRoundLarge covers rounds of thousands of worlds, sizes on and
// around powers of two (odd last nodes promoted at several levels): a
// wrong inner node would send the leaves beneath it to another root.
func TestSignRoundLarge(t *testing.T) {
	s := heartbeattest.Signer(1)
	v := heartbeat.KeyVerifier(nil)
	all := records(5001)
	for _, n := range []int{2047, 2048, 2049, 3000, 4097, 5001} {
		ticks, err := heartbeat.SignRound(s, all[:n])
		if err != nil {
			t.Fatal(err)
		}
		cache := heartbeat.NewRoundCache(4)
		for i := range ticks {
			if err := heartbeat.VerifyTick(&ticks[i], v, cache); err != nil {
				t.Fatalf("n=%d i=%d: %v", n, i, err)
			}
		}
	}
}

func TestVerifyTickRejectsTampering(t *testing.T) {
	s := heartbeattest.Signer(1)
	v := heartbeat.KeyVerifier(nil)
	ticks, err := heartbeat.SignRound(s, records(5))
	if err != nil {
		t.Fatal(err)
	}
	good := ticks[2]
	cases := map[string]func(t *heartbeat.Tick){
		"state":       func(t *heartbeat.Tick) { t.State++ },
		"seq":         func(t *heartbeat.Tick) { t.Seq++ },
		"head":        func(t *heartbeat.Tick) { t.Head[0] ^= 1 },
		"index":       func(t *heartbeat.Tick) { t.Proof.Index = 3 },
		"count":       func(t *heartbeat.Tick) { t.Proof.Count = 6 },
		"path":        func(t *heartbeat.Tick) { t.Proof.Path[0][0] ^= 1 },
		"short path":  func(t *heartbeat.Tick) { t.Proof.Path = t.Proof.Path[:1] },
		"long path":   func(t *heartbeat.Tick) { t.Proof.Path = append(t.Proof.Path, heartbeat.Hash{}) },
		"sig":         func(t *heartbeat.Tick) { t.Proof.Sig = append([]byte{}, t.Proof.Sig...); t.Proof.Sig[5] ^= 1 },
		"signer":      func(t *heartbeat.Tick) { t.Proof.Signer = heartbeattest.Signer(2).Public() },
		"index>count": func(t *heartbeat.Tick) { t.Proof.Index = 9 },
	}
	for name, mut := range cases {
		tk := good
		tk.Proof.Path = append([]heartbeat.Hash{}, good.Proof.Path...)
		mut(&tk)
		if err := heartbeat.VerifyTick(&tk, v, nil); !errors.Is(err, heartbeat.ErrBadSignature) {
			t.Errorf("%s: got %v, want ErrBadSignature", name, err)
		}
	}
	// A cached round does not let a tampered sibling through.
	cache := heartbeat.NewRoundCache(8)
	if err := heartbeat.VerifyTick(&good, v, cache); err != nil {
		t.Fatal(err)
	}
	bad := ticks[3]
	bad.State++
	if err := heartbeat.VerifyTick(&bad, v, cache); err == nil {
		t.Fatal("tampered tick passed through the cache")
	}
}

// countingVerifier counts signature checks.
type countingVerifier struct {
	heartbeat.Verifier
	n int
}

func (c *countingVerifier) Verify(pub string, msg, sig []byte) bool {
	c.n++
	return c.Verifier.Verify(pub, msg, sig)
}

func TestRoundCacheAmortises(t *testing.T) {
	ticks, err := heartbeat.SignRound(heartbeattest.Signer(1), records(20))
	if err != nil {
		t.Fatal(err)
	}
	cv := &countingVerifier{Verifier: heartbeat.KeyVerifier(nil)}
	cache := heartbeat.NewRoundCache(16)
	for i := range ticks {
		if err := heartbeat.VerifyTick(&ticks[i], cv, cache); err != nil {
			t.Fatal(err)
		}
	}
	if cv.n != 1 {
		t.Fatalf("%d signature checks for one round, want 1", cv.n)
	}
}

func ExampleSignRound() {
	recs := records(3)
	ticks, _ := heartbeat.SignRound(heartbeattest.Signer(1), recs)
	for _, t := range ticks {
		fmt.Println(t.Proof.Index, t.Proof.Count, len(t.Proof.Path))
	}
	// Output:
	// 0 3 2
	// 1 3 2
	// 2 3 1
}
