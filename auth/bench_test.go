package auth

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/keys"
	"github.com/krestianstvo/luminary/sea"
)

// Benchmarks of the verification cost (see /work/team/bench-auth.md).
//
//	go test -run '^$' -bench 'CheckPut|RawVerify' -benchtime 2s ./auth/
//
// BenchmarkCheckPut judges one signed field per put, the way a relay sees a
// gun.js user's write or a heartbeat write; BenchmarkRawVerify is the bare
// signature check of the same bytes. Their ratio is the cost of everything
// around the signature (parsing the wrapper, rebuilding the signed text,
// key and certificate caches, the graph lookup for replays).

type benchCase struct {
	name string
	c    *Checker
	diff graph.Graph
	raw  func() bool // the bare signature check of the same write
}

func benchCases(b *testing.B) []benchCase {
	v := loadSEAVectors(b, "testdata/sea_vectors.json")
	var out []benchCase
	store := graph.NewMemoryStore()
	lookup := StoreLookup(store)

	// SEA user space: a gun.js user's own write, and a write under a
	// certificate (A's inbox, by B), both as captured from gun.js.
	pick := func(name string, pred func(seaVector) bool) {
		for _, vec := range v.Captured {
			if !pred(vec) {
				continue
			}
			c := vectorChecker(b, v, Secure)
			c.cfg.Lookup = lookup
			f := vec.field(b)
			diff := graph.Graph{}
			diff.Set(vec.Soul, vec.Field, f)
			w, _ := c.parseSEAWrapper(f.Value)
			signer := w.writer
			if signer == "" {
				signer = seaOwner(vec.Soul)
			}
			pub, _ := keys.ParsePublic(signer)
			m := &jsjson.Object{Keys: putKeys[:], Values: []any{vec.Soul, vec.Field, w.inner, f.State}}
			text, _ := sea.Text(m)
			sig, _ := decodeSEASig(w.sig)
			digest := sha256.Sum256([]byte(text))
			out = append(out, benchCase{name, c, diff, func() bool { return pub.VerifyLax(digest[:], sig) }})
			return
		}
		b.Fatalf("no captured vector for %s", name)
	}
	pick("sea-p256-own", func(s seaVector) bool { return s.Field == "status" })
	pick("sea-p256-cert", func(s seaVector) bool { return s.Field == "text" })

	// Instance namespace, secp256k1: the owner's write, and a tick-role
	// holder's write under a certificate.
	for _, withCert := range []bool{false, true} {
		w := newWorld(b)
		w.c.cfg.Lookup = lookup
		signer := w.owner
		var chain []*Cert
		name := "instance-k1-owner"
		if withCert {
			signer = genKey(b, keys.Secp256k1)
			chain = []*Cert{w.cert(w.owner, signer, RoleTick)}
			name = "instance-k1-cert"
		}
		soul := w.soul("hb")
		st := w.now()
		val := w.sign(signer, soul, "beat", graph.Number(42), st, chain...)
		diff := graph.Graph{}
		diff.Set(soul, "beat", graph.Field{Value: val, State: st})
		msg := PutMessage(soul, "beat", graph.Number(42), st)
		sig := sigOf(b, val)
		pub := signer.Public()
		out = append(out, benchCase{name, w.c, diff, func() bool { return pub.Verify(msg, sig) }})
	}
	return out
}

func BenchmarkCheckPut(b *testing.B) {
	ctx := context.Background()
	for _, bc := range benchCases(b) {
		b.Run(bc.name, func(b *testing.B) {
			if _, refused := bc.c.CheckPut(ctx, nil, bc.diff); len(refused) != 0 {
				b.Fatal(refused)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				bc.c.CheckPut(ctx, nil, bc.diff)
			}
		})
	}
}

func BenchmarkCheckPutParallel(b *testing.B) {
	ctx := context.Background()
	for _, bc := range benchCases(b) {
		b.Run(bc.name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bc.c.CheckPut(ctx, nil, bc.diff)
				}
			})
		})
	}
}

func BenchmarkRawVerify(b *testing.B) {
	for _, bc := range benchCases(b) {
		b.Run(bc.name, func(b *testing.B) {
			if !bc.raw() {
				b.Fatal("raw verify fails")
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				bc.raw()
			}
		})
	}
}

// BenchmarkVerifyRatio interleaves small batches of CheckPut and of the raw
// signature check, so both see the same machine load, and reports verified
// puts per second, raw verifications per second and their ratio (the target
// is a ratio of at least 0.70).
func BenchmarkVerifyRatio(b *testing.B) {
	ctx := context.Background()
	const batch = 20
	for _, bc := range benchCases(b) {
		b.Run(bc.name, func(b *testing.B) {
			var tPut, tRaw time.Duration
			n := 0
			for n < b.N {
				t := time.Now()
				for i := 0; i < batch; i++ {
					bc.raw()
				}
				tRaw += time.Since(t)
				t = time.Now()
				for i := 0; i < batch; i++ {
					bc.c.CheckPut(ctx, nil, bc.diff)
				}
				tPut += time.Since(t)
				n += batch
			}
			puts := float64(n) / tPut.Seconds()
			raw := float64(n) / tRaw.Seconds()
			b.ReportMetric(puts, "puts/s")
			b.ReportMetric(raw, "raw/s")
			b.ReportMetric(puts/raw, "ratio")
		})
	}
}
