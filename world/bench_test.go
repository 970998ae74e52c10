package world_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/keys"
	"github.com/krestianstvo/luminary/world"
)

var benchSizes = []int{64, 1024}

// cpuNow returns the process's user + system CPU time. Benchmarks report
// cpu-ns/op from it because the shared machine's wall clock is noisy
// (performance.md §7).
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loopCPU runs fn in a b.Loop and reports cpu-ns/op.
func loopCPU(b *testing.B, fn func()) {
	start := cpuNow()
	n := 0
	for b.Loop() {
		fn()
		n++
	}
	b.ReportMetric(float64(cpuNow()-start)/float64(n), "cpu-ns/op")
}

func benchCurves() map[string]keys.Curve {
	return map[string]keys.Curve{"k1": keys.Secp256k1, "p256": keys.P256}
}

// BenchmarkSealMessage: encrypt + sign a message (inner signature, AEAD,
// outer signature), as a sender pays per message.
func BenchmarkSealMessage(b *testing.B) {
	for name, c := range benchCurves() {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%dB", name, n), func(b *testing.B) {
				s := newKey(b, c)
				k, _ := world.NewContentKey(newKey(b, keys.Secp256k1).Public().String(), 1)
				pt := make([]byte, n)
				b.SetBytes(int64(n))
				loopCPU(b, func() {
					if _, err := world.SealMessage(k, s, t0, pt); err != nil {
						b.Fatal(err)
					}
				})
			})
		}
	}
}

// BenchmarkOpenMessage: decrypt + verify the inner signature, as a member
// pays per message (the relay verified the outer signature).
func BenchmarkOpenMessage(b *testing.B) {
	for name, c := range benchCurves() {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%dB", name, n), func(b *testing.B) {
				s := newKey(b, c)
				inst := newKey(b, keys.Secp256k1).Public().String()
				k, _ := world.NewContentKey(inst, 1)
				ring, _ := world.NewKeyring(inst, k)
				m, _ := world.SealMessage(k, s, t0, make([]byte, n))
				b.SetBytes(int64(n))
				loopCPU(b, func() {
					if _, err := ring.OpenMessage(&m); err != nil {
						b.Fatal(err)
					}
				})
			})
		}
	}
}

// BenchmarkPublicMessage is the baseline: sign and verify a plaintext
// heartbeat message of the same size.
func BenchmarkPublicMessage(b *testing.B) {
	for name, c := range benchCurves() {
		for _, n := range benchSizes {
			s := newKey(b, c)
			inst := newKey(b, keys.Secp256k1).Public().String()
			payload := string(make([]byte, n))
			b.Run(fmt.Sprintf("sign/%s/%dB", name, n), func(b *testing.B) {
				loopCPU(b, func() {
					m := heartbeat.Message{Instance: inst, TS: 1, Nonce: "n", Payload: payload}
					if err := m.Sign(heartbeat.KeySigner(s)); err != nil {
						b.Fatal(err)
					}
				})
			})
			b.Run(fmt.Sprintf("verify/%s/%dB", name, n), func(b *testing.B) {
				m := heartbeat.Message{Instance: inst, TS: 1, Nonce: "n", Payload: payload}
				_ = m.Sign(heartbeat.KeySigner(s))
				v := heartbeat.KeyVerifier(nil)
				loopCPU(b, func() {
					if err := m.Verify(v); err != nil {
						b.Fatal(err)
					}
				})
			})
		}
	}
}

// BenchmarkWrap: one member's key wrap and unwrap (ECDH on its curve).
func BenchmarkWrap(b *testing.B) {
	for name, c := range benchCurves() {
		m := newKey(b, c)
		k, _ := world.NewContentKey(newKey(b, keys.Secp256k1).Public().String(), 1)
		b.Run("wrap/"+name, func(b *testing.B) {
			loopCPU(b, func() {
				if _, err := world.Wrap(k, m.Public()); err != nil {
					b.Fatal(err)
				}
			})
		})
		wk, _ := world.Wrap(k, m.Public())
		b.Run("unwrap/"+name, func(b *testing.B) {
			loopCPU(b, func() {
				if _, err := world.Unwrap(wk, k.Instance(), 1, m); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkInstance measures the message rate through one instance, public
// and private, on the in-memory relay of the tests (auth + Guard + heartbeat
// host + graph writes of every publication), with one secp256k1 member
// holding a published message certificate.
//
//	relay:    the relay's work only (messages made outside the timer):
//	          Guard check, inbox admission (validate, window, duplicate,
//	          outer signature, role), sequencing, graph publication.
//	pipeline: sender + relay + one member: public = sign, relay, verify the
//	          author's signature; private = seal (two signatures + AEAD),
//	          relay, open (AEAD + inner signature).
//
// It reports msgs/s; compare private with public.
func BenchmarkInstance(b *testing.B) {
	const batch = 256
	for _, stage := range []string{"relay", "pipeline"} {
		for _, private := range []bool{false, true} {
			name := "public"
			if private {
				name = "private"
			}
			b.Run(stage+"/"+name, func(b *testing.B) {
				r := newRelay(b)
				r.cheap = true
				owner := newKey(b, keys.Secp256k1)
				alice := newKey(b, keys.Secp256k1)
				inst := owner.Public().String()
				var ring *world.Keyring
				if private {
					mustCreate(b, r, owner)
					mustAdd(b, r, inst, owner, alice, world.AddOptions{})
					ring = keyring(b, r, inst, alice)
				} else {
					publishCert(b, r, owner, alice, auth.RoleMessage)
				}
				r.startHost(owner)
				verifier := heartbeat.KeyVerifier(nil)
				payload := make([]byte, 64)
				for i := range payload {
					payload[i] = 'a' + byte(i%26)
				}
				make1 := func(i int) heartbeat.Message {
					if private {
						m, err := world.SealMessage(ring.Current(), alice, r.clk.Now(), payload)
						if err != nil {
							b.Fatal(err)
						}
						return m
					}
					m := heartbeat.Message{Instance: inst, TS: r.clk.Now().UnixMilli(), Nonce: fmt.Sprint(i), Payload: string(payload)}
					if err := m.Sign(heartbeat.KeySigner(alice)); err != nil {
						b.Fatal(err)
					}
					return m
				}
				read := func(e *heartbeat.Entry) {
					if e.Kind != heartbeat.KindMessage {
						return
					}
					if private {
						if _, err := ring.OpenEntry(e); err != nil {
							b.Fatal(err)
						}
						return
					}
					m := e.Message()
					if err := m.Verify(verifier); err != nil {
						b.Fatal(err)
					}
				}
				nextSeq := uint64(1)
				done, sent := 0, 0
				msgs := make([]heartbeat.Message, 0, batch)
				var cpu time.Duration
				b.ResetTimer()
				for sent < b.N {
					n := min(batch, b.N-sent)
					c0 := cpuNow()
					if stage == "relay" {
						b.StopTimer()
					}
					msgs = msgs[:0]
					for i := range n {
						msgs = append(msgs, make1(sent+i))
					}
					if stage == "relay" {
						b.StartTimer()
						c0 = cpuNow()
					}
					for i := range msgs {
						if err := r.guard.CheckMessage(ctx, &msgs[i]); err != nil {
							b.Fatal(err)
						}
						r.host.Submit(ctx, msgs[i], func(_ heartbeat.Receipt, err error) {
							if err != nil {
								b.Fatal(err)
							}
							done++
						})
					}
					sent += n
					r.pump(func() bool { return done == sent })
					if stage == "pipeline" {
						p, err := r.log.Read(ctx, inst, nextSeq, 100000)
						if err != nil {
							b.Fatal(err)
						}
						for i := range p.Entries {
							read(&p.Entries[i])
							nextSeq = p.Entries[i].Seq + 1
						}
					}
					cpu += cpuNow() - c0
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
				b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
				b.ReportMetric(float64(b.N)/cpu.Seconds(), "msgs/cpu-s")
			})
		}
	}
}

// publishCert publishes an owner-issued certificate for subject.
func publishCert(b testing.TB, r *relay, owner, subject *keys.Private, roles ...auth.Role) {
	inst := owner.Public().String()
	cert, err := auth.IssueCert(owner, auth.Cert{Instance: inst, Subject: subject.Public().String(), Roles: roles, Expiry: r.clk.Now().Add(24 * time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	cj, _ := cert.MarshalJSON()
	state := r.db.Now()
	v, err := auth.SignField(owner, world.CertsSoul(inst), cert.Serial, graph.String(string(cj)), state)
	if err != nil {
		b.Fatal(err)
	}
	g := graph.Graph{}
	g.Set(world.CertsSoul(inst), cert.Serial, graph.Field{Value: v, State: state})
	if ref := r.put(nil, g); len(ref) > 0 {
		b.Fatal(ref)
	}
}
