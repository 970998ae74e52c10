package jsjson

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// appendStringBytewise is AppendString without the eight-byte fast path:
// the reference the fast path must agree with.
func appendStringBytewise(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case strSafe[c]:
			dst = append(dst, c)
			i++
		case c < utf8.RuneSelf:
			dst = appendEscape(dst, c)
			i++
		default:
			if r, size := utf8.DecodeRuneInString(s[i:]); r != utf8.RuneError || size != 1 {
				dst = append(dst, s[i:i+size]...)
				i += size
				continue
			}
			var n int
			dst, n = appendInvalid(dst, s[i:])
			i += n
		}
	}
	return append(dst, '"')
}

// firstSpecial is the index of the first byte of w (little-endian) that
// is not strSafe, or 8.
func firstSpecial(w uint64) int {
	for i := range 8 {
		if !strSafe[byte(w>>(8*i))] {
			return i
		}
	}
	return 8
}

// specialBytes finds the first byte that needs attention, wherever it
// sits in the word and whatever surrounds it, and flags nothing in a
// plain word.
func TestSpecialBytes(t *testing.T) {
	check := func(w uint64) {
		t.Helper()
		got := 8
		if m := specialBytes(w); m != 0 {
			got = bits.TrailingZeros64(m) >> 3
		}
		if want := firstSpecial(w); got != want {
			t.Fatalf("specialBytes(%#016x): first flagged byte %d, want %d", w, got, want)
		}
	}
	for _, fill := range []byte{'a', ' ', '~', 0x7f, '!', '#', '[', ']', 0, '"', 0x1f, 0xff} {
		for pos := range 8 {
			for b := range 256 {
				var w uint64
				for i := range 8 {
					w |= uint64(fill) << (8 * i)
				}
				w = w&^(0xff<<(8*pos)) | uint64(b)<<(8*pos)
				check(w)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 500000 {
		w := r.Uint64()
		if r.IntN(2) == 0 {
			w &= 0x7f7f7f7f7f7f7f7f
		}
		check(w)
	}
}

func TestAppendStringMatchesBytewise(t *testing.T) {
	tick := `{"instance":"lum/abc","epoch":1,"n":7,"path":["AAAA","BBBB"],"sig":"x\\y"}` + "\n\x00é\xed\xa0\x80\xff"
	for i := range len(tick) + 1 {
		for j := i; j <= len(tick); j++ {
			s := tick[i:j]
			if got, want := string(AppendString(nil, s)), string(appendStringBytewise(nil, s)); got != want {
				t.Fatalf("AppendString(%q) = %s, want %s", s, got, want)
			}
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add(`{"instance":"lum/abc","n":7}`)
	f.Add("abcdefgh\"ijklmnop\\qrstuvw\x01xyz\xed\xa0\x80é")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(AppendString(nil, s)), string(appendStringBytewise(nil, s)); got != want {
			t.Fatalf("AppendString(%q) = %s, want %s", s, got, want)
		}
	})
}

// appendMillis agrees with the shortest-digits path for thousandths
// (HAM states with microsecond precision) and declines everything else.
func TestAppendMillis(t *testing.T) {
	slow := func(f float64) string {
		b := strconv.AppendFloat(nil, f, 'f', -1, 64) // shortest digits, plain notation
		return string(b)
	}
	r := rand.New(rand.NewPCG(3, 4))
	check := func(f float64) {
		t.Helper()
		got, ok := appendMillis(nil, f)
		if !ok {
			return
		}
		if string(got) != slow(f) {
			t.Fatalf("appendMillis(%v) = %s, shortest digits %s", f, got, slow(f))
		}
		if string(AppendNumber(nil, f)) != slow(f) {
			t.Fatalf("AppendNumber(%v) = %s", f, AppendNumber(nil, f))
		}
	}
	taken := 0
	for range 300000 {
		us := r.Int64N(1 << 52) // up to 2^52 µs: past the 2^42 ms bound
		f := float64(us) / 1000
		if r.IntN(4) == 0 {
			f = -f
		}
		if _, ok := appendMillis(nil, f); ok {
			taken++
		}
		check(f)
		check(math.Nextafter(f, math.Inf(1))) // not a whole number of thousandths
	}
	if taken < 1000 {
		t.Fatalf("the fast path took only %d of the states", taken)
	}
	for _, f := range []float64{1764251234567.123, 1764251234567.1, 1764251234567.12, 0.001, 0.5, 4398046511103.999, 1.0005, 0.0005, 1e-7, 1 << 42, 1<<42 + 0.5} {
		check(f)
	}
	for _, f := range []float64{0.0005, 1e-7, 1 << 42, 1<<42 + 0.5, 1.0005} {
		if _, ok := appendMillis(nil, f); ok {
			t.Errorf("appendMillis(%v) took a number it must decline", f)
		}
	}
	if b, ok := appendMillis(nil, 1764251234567.123); !ok || string(b) != "1764251234567.123" {
		t.Errorf("a HAM state: %s, %v", b, ok)
	}
}

func BenchmarkAppendStringTick(b *testing.B) {
	s := `{"instance":"lum/0348e1a0f2c9b2f1c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b","epoch":1,"n":123,"seq":0,"head":"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=","state":1764251234567.123,"start":1764251000000,"rate":1,"signer":"AkjhU7rHd1vS2H3xq0n2lJ5s7N0Wq3f4i9oP6Kz1c2d3","index":17,"count":5000,"path":["47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=","47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=","47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=","47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=","47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=","47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=","47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=","47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=","47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=","47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=","47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=","47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=","47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="],"sig":"MEUCIQDx7yJ3m0lZ2nV4l6Q8b1c2d3e4f5g6h7i8j9k0l1m2nAIgQ5r6s7t8u9v0w1x2y3z4A5B6C7D8E9F0G1H2I3J4K5L="}`
	buf := make([]byte, 0, 2*len(s))
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		buf = AppendString(buf[:0], s)
	}
}

func BenchmarkAppendNumberState(b *testing.B) {
	buf := make([]byte, 0, 64)
	for b.Loop() {
		buf = AppendNumber(buf[:0], 1764251234567.123)
	}
}

// A put frame as a gun.js SEA user sends it: the value is the signed
// wrapper, JSON text inside a JSON string (escaped quotes throughout).
func BenchmarkParseSEAPutFrame(b *testing.B) {
	inner := `SEA{"m":{"#":"~AkjhU7rHd1vS2H3xq0n2lJ5s7N0Wq3f4i9oP6Kz1c2d3.bench","." :"f1",":":"` + strings.Repeat("v", 180) + `",">":1764251234567.123},"s":"MEUCIQDx7yJ3m0lZ2nV4l6Q8b1c2d3e4f5g6h7i8j9k0l1m2nAIgQ5r6s7t8u9v0w1x2y3z4A5B6C7D8E9F0G1H2I3J4K5L="}`
	frame := []byte(`{"put":{"~AkjhU7rHd1vS2H3xq0n2lJ5s7N0Wq3f4i9oP6Kz1c2d3.bench":{"_":{"#":"~AkjhU7rHd1vS2H3xq0n2lJ5s7N0Wq3f4i9oP6Kz1c2d3.bench",">":{"f1":1764251234567.123}},"f1":` +
		string(AppendString(nil, inner)) + `}},"#":"abcdefghij"}`)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(frame, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
