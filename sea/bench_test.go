package sea

import (
	"crypto/sha256"
	"testing"

	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/keys"
)

// benchValue is a heartbeat-sized m (about 230 bytes of JSON).
func benchValue(pub string) *jsjson.Object {
	tick := &jsjson.Object{}
	tick.Set("seq", 123456.0)
	tick.Set("t", 1795666827826.0)
	tick.Set("by", pub)
	m := &jsjson.Object{}
	m.Set("#", "~"+pub+"/world-1")
	m.Set(".", "tick")
	m.Set(":", tick)
	m.Set(">", 1795666827826.5)
	return m
}

func BenchmarkSign(b *testing.B) {
	for _, c := range curves {
		b.Run(c.String(), func(b *testing.B) {
			priv := gen(b, c)
			m := benchValue(priv.Public().String())
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				if _, err := Sign(m, priv); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, start)
		})
	}
}

// BenchmarkVerify is the raw signature check that an envelope needs
// (keys.Public verify of the SHA-256 digest), the baseline for
// BenchmarkVerifyEnvelope.
func BenchmarkVerify(b *testing.B) {
	for _, c := range curves {
		b.Run(c.String(), func(b *testing.B) {
			priv := gen(b, c)
			e, _ := ParseEnvelope(mustSign(nil, benchValue(priv.Public().String()), priv))
			d := sha256.Sum256([]byte(e.Text()))
			pub := priv.Public()
			sig := e.Signature()
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				if !verifyDigest(pub, d[:], sig) {
					b.Fatal("verify failed")
				}
			}
			reportCPU(b, start)
		})
	}
}

// BenchmarkVerifyEnvelope is what a receiver pays per signed message:
// look the signer up in a key cache, parse the envelope text (strict JSON,
// re-serialize m, hash), and verify.
func BenchmarkVerifyEnvelope(b *testing.B) {
	for _, c := range curves {
		b.Run(c.String(), func(b *testing.B) {
			priv := gen(b, c)
			pubText := priv.Public().String()
			env := mustSign(nil, benchValue(pubText), priv)
			cache := keys.NewCache(1024)
			b.SetBytes(int64(len(env)))
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				pub, err := cache.Parse(pubText)
				if err != nil {
					b.Fatal(err)
				}
				e, err := ParseEnvelope(env)
				if err != nil {
					b.Fatal(err)
				}
				if err := e.Verify(pub); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, start)
		})
	}
}

// BenchmarkParseEnvelope is the envelope overhead alone.
func BenchmarkParseEnvelope(b *testing.B) {
	priv := gen(b, keys.P256)
	env := mustSign(nil, benchValue(priv.Public().String()), priv)
	b.SetBytes(int64(len(env)))
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		if _, err := ParseEnvelope(env); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start)
}
