package heartbeat

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/krestianstvo/luminary/internal/jsjson"
)

// Tick.AppendJSON writes its members by hand for speed; it must produce
// exactly the text of the generic encoder over Tick.object (the form that
// ParseTick reads and that followers hash and compare).
func TestTickAppendJSONMatchesObject(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		tk := Tick{TickRecord: TickRecord{
			Instance: []string{"k1:AbC-_9", "x.y", "k1:\u00e9\"\\\u2028"}[i%3],
			Epoch:    r.Uint64N(1 << 40), N: r.Uint64N(1 << 50), Seq: r.Uint64N(1 << 30),
			State: 1.7e12 + r.Float64()*1e9, Start: 1.7e12 + r.Float64(), Rate: []float64{1, 0.5, 2.25}[i%3],
		}}
		fill(r, tk.Head[:])
		tk.Proof.Signer = "k1:signer"
		tk.Proof.Index, tk.Proof.Count = uint32(r.IntN(5000)), 5000
		for range r.IntN(14) {
			var h Hash
			fill(r, h[:])
			tk.Proof.Path = append(tk.Proof.Path, h)
		}
		tk.Proof.Sig = make([]byte, 64)
		fill(r, tk.Proof.Sig)
		got, want := tk.AppendJSON([]byte("x")), append([]byte("x"), jsjson.Append(nil, tk.object())...)
		if !bytes.Equal(got, want) {
			t.Fatalf("tick %d:\n got %s\nwant %s", i, got, want)
		}
		if i%3 == 2 {
			continue // not a key text: ParseTick refuses it, as it should
		}
		back, err := ParseTick(got[1:])
		if err != nil || back.N != tk.N || back.Head != tk.Head || len(back.Proof.Path) != len(tk.Proof.Path) {
			t.Fatalf("tick %d: round trip %v", i, err)
		}
	}
}

func fill(r *rand.Rand, b []byte) {
	for i := 0; i < len(b); i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		copy(b[i:], w[:])
	}
}
