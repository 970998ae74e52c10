package keys

import (
	"testing"
)

// benchMsg is the size of a typical signed heartbeat (performance.md §1).
var benchMsg = make([]byte, 229)

func BenchmarkSign(b *testing.B) {
	for _, c := range curves {
		b.Run(c.String(), func(b *testing.B) {
			k := mustGenerate(b, c)
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				if _, err := k.Sign(benchMsg); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, start)
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, c := range curves {
		b.Run(c.String(), func(b *testing.B) {
			k := mustGenerate(b, c)
			sig, _ := k.Sign(benchMsg)
			pub := k.Public()
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				if !pub.Verify(benchMsg, sig) {
					b.Fatal("verify failed")
				}
			}
			reportCPU(b, start)
		})
	}
}

func BenchmarkParsePublic(b *testing.B) {
	for _, c := range curves {
		b.Run(c.String(), func(b *testing.B) {
			s := mustGenerate(b, c).Public().String()
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				if _, err := ParsePublic(s); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, start)
		})
		b.Run(c.String()+"/cached", func(b *testing.B) {
			s := mustGenerate(b, c).Public().String()
			cache := NewCache(1024)
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				if _, err := cache.Parse(s); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, start)
		})
	}
}

func BenchmarkECDH(b *testing.B) {
	for _, c := range curves {
		b.Run(c.String(), func(b *testing.B) {
			k, o := mustGenerate(b, c), mustGenerate(b, c)
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				if _, err := o.Public().ECDH(k); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, start)
		})
	}
}
