package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/keys"
	"github.com/krestianstvo/luminary/sea"
)

// putPool is a set of puts built before a run (SEA-signed user-space
// writes): writers take them in order; when the pool is exhausted the
// writers stop.
type putPool struct {
	ids    []string
	frames [][]byte
	next   atomic.Uint64
}

// take returns the next put, or false when the pool is exhausted.
func (p *putPool) take() (string, []byte, bool) {
	i := p.next.Add(1) - 1
	if i >= uint64(len(p.frames)) {
		return "", nil, false
	}
	return p.ids[i], p.frames[i], true
}

// seaPutKeys are the members SEA signs for a user-space write, in order.
var seaPutKeys = []string{"#", ".", ":", ">"}

// seaWrapper returns the value gun.js SEA stores for a signed user-space
// write of value to soul.field at state: the JSON text {":":value,"~":sig},
// sig being SEA's signature of {"#":soul,".":field,":":value,">":state}
// (auth/doc.go "SEA user space", research gun.md §5.2).
func seaWrapper(priv *keys.Private, soul, field string, value any, state float64) (string, error) {
	m := &jsjson.Object{Keys: seaPutKeys, Values: []any{soul, field, value, state}}
	sig, err := sea.SignValue(m, priv)
	if err != nil {
		return "", err
	}
	w := &jsjson.Object{Keys: []string{":", "~"}, Values: []any{value, sig}}
	return string(jsjson.Append(nil, w)), nil
}

// buildSEAPool signs n user-space puts, spread over users P-256 keys: put j
// writes field "f" of soul ~<pub>/lload<run>/<j> with a value of size
// bytes. Signing runs on every core before the run starts.
//
// With tamper > 0, every tamper-th put carries a signature over a
// different value (a valid signature for the wrong data): a relay that
// verifies must refuse exactly those, which the run reports as errors.
func buildSEAPool(users []*keys.Private, run string, n, size, tamper int) (*putPool, error) {
	pool := &putPool{ids: make([]string, n), frames: make([][]byte, n)}
	pubs := make([]string, len(users))
	for i, u := range users {
		pubs[i] = u.Public().String()
	}
	seen := make(map[string]bool, n)
	for j := range pool.ids {
		id := newID()
		for seen[id] {
			id = newID()
		}
		seen[id] = true
		pool.ids[j] = id
	}
	states := newStateClock()
	st := make([]float64, n)
	for j := range st {
		st[j] = states.next()
	}
	workers := max(runtime.GOMAXPROCS(0), 1)
	var wg sync.WaitGroup
	var ferr atomic.Value
	for w := range workers {
		wg.Go(func() {
			for j := w; j < n; j += workers {
				u := j % len(users)
				soul := "~" + pubs[u] + "/lload" + run + "/" + strconv.Itoa(j)
				value := makeValue(run, uint64(j), 0, size)
				wrapped, err := seaWrapper(users[u], soul, "f", value, st[j])
				if err == nil && tamper > 0 && j%tamper == 0 {
					var forged string
					forged, err = seaWrapper(users[u], soul, "f", value+"!", st[j])
					if err == nil {
						wrapped = swapSig(wrapped, forged)
					}
				}
				if err != nil {
					ferr.Store(err)
					return
				}
				pool.frames[j] = appendPut(make([]byte, 0, len(wrapped)+2*len(soul)+96), pool.ids[j], soul, "f", st[j], wrapped)
			}
		})
	}
	wg.Wait()
	if e, ok := ferr.Load().(error); ok {
		return nil, e
	}
	return pool, nil
}

// swapSig returns wrapper w with the "~" signature of wrapper from.
func swapSig(w, from string) string {
	sigOf := func(s string) string {
		i := strings.LastIndex(s, `,"~":"`)
		return s[i:]
	}
	return strings.TrimSuffix(w, sigOf(w)) + sigOf(from)
}

// verifyRate is the raw signature verification rate of this machine for
// one curve, measured in-process: "raw" verifies a 64-byte r‖s over a
// message (keys.Public.Verify: SHA-256 + ECDSA); "sea" is the relay's
// per-put check of a SEA user-space write (JSON text of {#,.,:,>},
// SHA-256, ECDSA), via sea.VerifyValue.
type verifyRate struct {
	Curve         string  `json:"curve"`
	Threads       int     `json:"threads"`
	Seconds       float64 `json:"seconds"`
	RawPerSec1    float64 `json:"raw_per_s_1_thread"`
	RawPerSecAll  float64 `json:"raw_per_s_all_threads"`
	RawCPUUsPerOp float64 `json:"raw_cpu_us_per_op"`
	// RawCPUUsPerOpAll is the CPU per verification with every thread busy
	// (cores contend for caches and, on a VM, for shared physical cores),
	// the condition a relay verifying on all cores runs in.
	RawCPUUsPerOpAll float64 `json:"raw_cpu_us_per_op_all_threads"`
	SEAPerSec1       float64 `json:"sea_per_s_1_thread,omitempty"`
	SEAPerSecAll     float64 `json:"sea_per_s_all_threads,omitempty"`
	SEACPUUsPerOp    float64 `json:"sea_cpu_us_per_op,omitempty"`
	Load1            float64 `json:"load1"`
	VerifiedFailed   uint64  `json:"verify_failures"`
}

// measureVerify runs each verification loop for d/4 on one goroutine and
// d/4 on `threads` goroutines.
func measureVerify(ctx context.Context, curve keys.Curve, threads int, d time.Duration) (*verifyRate, error) {
	if threads < 1 {
		threads = runtime.GOMAXPROCS(0)
	}
	const nkeys = 8
	type sample struct {
		pub      *keys.Public
		msg, sig []byte
		seaM     *jsjson.Object
		seaSig   string
	}
	samples := make([]sample, nkeys)
	for i := range samples {
		k, err := keys.Generate(curve)
		if err != nil {
			return nil, err
		}
		msg := []byte(makeValue("verify", uint64(i), 0, 200))
		sig, err := k.Sign(msg)
		if err != nil {
			return nil, err
		}
		samples[i] = sample{pub: k.Public(), msg: msg, sig: sig}
		if curve == keys.P256 {
			soul := "~" + k.Public().String() + "/lloadverify/" + strconv.Itoa(i)
			m := &jsjson.Object{Keys: seaPutKeys, Values: []any{soul, "f", string(msg), float64(1764206400000 + i)}}
			s, err := sea.SignValue(m, k)
			if err != nil {
				return nil, err
			}
			samples[i].seaM, samples[i].seaSig = m, s
		}
	}
	vr := &verifyRate{Curve: curve.String(), Threads: threads, Seconds: d.Seconds(), Load1: load1()}
	var failures atomic.Uint64
	loop := func(n int, dur time.Duration, op func(s *sample) bool) (perSec, cpuUs float64) {
		var ops atomic.Uint64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		c0 := selfCPU()
		t0 := time.Now()
		for g := range n {
			wg.Go(func() {
				var local uint64
				for i := g; ; i++ {
					select {
					case <-stop:
						ops.Add(local)
						return
					default:
					}
					for range 16 {
						if !op(&samples[i%nkeys]) {
							failures.Add(1)
						}
						local++
					}
				}
			})
		}
		t := time.NewTimer(dur)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		close(stop)
		wg.Wait()
		el := time.Since(t0).Seconds()
		cpu := (selfCPU() - c0).Seconds()
		o := float64(ops.Load())
		if o == 0 || el == 0 {
			return 0, 0
		}
		return round1(o / el), round3(cpu * 1e6 / o)
	}
	raw := func(s *sample) bool { return s.pub.Verify(s.msg, s.sig) }
	vr.RawPerSec1, vr.RawCPUUsPerOp = loop(1, d/4, raw)
	vr.RawPerSecAll, vr.RawCPUUsPerOpAll = loop(threads, d/4, raw)
	if curve == keys.P256 {
		seaOp := func(s *sample) bool { return sea.VerifyValue(s.seaM, s.seaSig, s.pub) == nil }
		vr.SEAPerSec1, vr.SEACPUUsPerOp = loop(1, d/4, seaOp)
		vr.SEAPerSecAll, _ = loop(threads, d/4, seaOp)
	}
	vr.VerifiedFailed = failures.Load()
	if vr.VerifiedFailed > 0 {
		return vr, errors.New("luminary-load: verify: a known-good signature failed to verify")
	}
	return vr, ctx.Err()
}

// verifyResult is the JSON file of the verify command.
type verifyResult struct {
	Tool    string      `json:"tool"`
	Mode    string      `json:"mode"`
	Label   string      `json:"label"`
	Started string      `json:"started"`
	Rate    *verifyRate `json:"rate"`
}

func cmdVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify", stderr)
	curveName := fs.String("curve", "p256", "curve: p256 (SEA) or secp256k1")
	threads := fs.Int("threads", 0, "goroutines for the parallel pass (0: GOMAXPROCS)")
	d := fs.Duration("duration", 4*time.Second, "total measuring time (four passes)")
	jsonPath := fs.String("json", "", "write the result as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	curve, err := keys.ParseCurve(*curveName)
	if err != nil {
		return err
	}
	vr, err := measureVerify(ctx, curve, *threads, *d)
	if vr == nil {
		return err
	}
	printVerify(stdout, vr)
	if werr := writeJSON(*jsonPath, &verifyResult{Tool: "luminary-load", Mode: "verify", Label: "verify " + vr.Curve,
		Started: time.Now().UTC().Format(time.RFC3339), Rate: vr}); werr != nil {
		return werr
	}
	return err
}

func printVerify(w io.Writer, vr *verifyRate) {
	fmt.Fprintf(w, "verify %s: raw %.0f/s on 1 thread (%.1f µs CPU/op), %.0f/s on %d threads (%.1f µs CPU/op)",
		vr.Curve, vr.RawPerSec1, vr.RawCPUUsPerOp, vr.RawPerSecAll, vr.Threads, vr.RawCPUUsPerOpAll)
	if vr.SEAPerSec1 > 0 {
		fmt.Fprintf(w, "; SEA put check %.0f/s on 1 thread (%.1f µs CPU/op), %.0f/s on %d threads",
			vr.SEAPerSec1, vr.SEACPUUsPerOp, vr.SEAPerSecAll, vr.Threads)
	}
	fmt.Fprintf(w, "; load1 %.2f\n", vr.Load1)
}
