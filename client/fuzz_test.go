package client

import (
	"testing"

	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/jsjson"
)

// FuzzDecodeFrame feeds arbitrary frames (what a hostile relay could send)
// to the client's frame decoder, the receipt reader and the world's graph
// input; none may panic, and decoded puts must hold valid Gun states.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`[]`,
		`{"#":"a","dam":"?","pid":"p"}`,
		`{"#":"b","@":"a","ok":true}`,
		`{"#":"c","@":"a","err":"restricted: not authorised to message"}`,
		`{"#":"d","@":"a","ok":true,"lum":{"id":"x","seq":3,"epoch":1,"state":1.5,"time":0.5,"dup":true}}`,
		`{"#":"e","put":{"lum/k1:x/hb":{"_":{"#":"lum/k1:x/hb",">":{"tick":1}},"tick":"{}"}}}`,
		`[{"#":"f","@":"g","%":"h","put":{"lum/k1:x/log/0":{"_":{"#":"lum/k1:x/log/0",">":{"00000000000000000001":2}},"00000000000000000001":"{\"seq\":1}"}}},{"#":"i"}]`,
		`{"#":"j","put":{"s":{"_":{"#":"t",">":{}}}}}`,
		`{"#":1,"@":[],"ok":null,"err":{"x":1}}`,
	} {
		f.Add([]byte(s))
	}
	jl := jsjson.Limits{MaxBytes: 1 << 20, MaxDepth: 16, MaxMembers: 1 << 12, MaxElements: 1 << 12}
	gl := graph.Limits{MaxSouls: -1, MaxFieldsPerNode: -1, MaxFields: -1, MaxValueBytes: -1}
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, err := decodeFrame(data, jl, gl)
		if err != nil {
			return
		}
		for _, m := range msgs {
			for _, n := range m.Put {
				for _, fl := range n.Fields {
					if !graph.ValidState(fl.State) {
						t.Fatalf("invalid state %v accepted", fl.State)
					}
				}
			}
			if v, ok := m.member("lum"); ok {
				_ = parseReceipt(v, m, heartbeat.Hash{}, "k1:x")
			}
			if m.Put != nil {
				for _, n := range m.Put {
					for _, fl := range n.Fields {
						_ = unwrap(fl.Value)
					}
				}
			}
		}
	})
}
