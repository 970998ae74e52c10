package jsjson

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

// appendStringRef is AppendString written byte by byte, the way it was
// before its eight-byte fast path: the reference the fuzz test holds the
// fast path to.
func appendStringRef(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if strSafe[c] {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			dst = append(dst, s[start:i]...)
			if u, ok := wtf8Surrogate(s[i:]); ok {
				dst = append(dst, '\\', 'u', hexDigits[u>>12], hexDigits[u>>8&0xF], hexDigits[u>>4&0xF], hexDigits[u&0xF])
				i += 3
			} else {
				dst = append(dst, "\uFFFD"...)
				i++
			}
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// tickText is shaped like a published heartbeat tick: JSON text with a
// quote every few bytes and runs of base64.
var tickText = `{"instance":"k1:AjwbHh1mEZfZ1nA7pO0Cq6mCw9bJ4GVqk3-z2zJ3a8Xk","epoch":3,"n":1234,"seq":77,"head":"` +
	strings.Repeat("Qm9vZ2x5IHdvb2dseSBib29neSB3b29neSBib29n", 1) + `","state":1795666825781.001,"start":1795666800000,"rate":1,` +
	`"signer":"k1:A2Zb9l8kB7nq5d2rRzq1oS1xYtq6k4yF0vW3cJ8u9eHt","index":17,"count":5000,"path":[` +
	strings.Repeat(`"Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5","`, 12) + `"Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"],` +
	`"sig":"` + strings.Repeat("c2lnbmF0dXJlIGJ5dGVz", 4) + `"}`

var appendStringCases = []string{
	"", "a", "plain ascii text that needs no escape at all, longer than eight",
	`quote " and backslash \ and both \"`, "ctl \x00\x01\x1f\x7f tab\t nl\n cr\r ff\f bs\b",
	"héllo wörld ✓ 𝄞 utf-8", "bad \xff\xfe utf-8", "surrogate \xed\xa0\x80 lone",
	"ends in a high byte \xc3", "12345678\"12345678\\12345678\x0112345678\x80",
	tickText,
}

func TestAppendStringMatchesReference(t *testing.T) {
	for _, s := range appendStringCases {
		for cut := 0; cut <= len(s) && cut < 24; cut++ { // every alignment of the fast path
			in := s[cut:]
			if got, want := AppendString(nil, in), appendStringRef(nil, in); !bytes.Equal(got, want) {
				t.Fatalf("AppendString(%q) = %s, want %s", in, got, want)
			}
		}
	}
}

// FuzzAppendString holds AppendString to the byte-by-byte reference.
func FuzzAppendString(f *testing.F) {
	for _, s := range appendStringCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := AppendString(nil, s), appendStringRef(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("AppendString(%q) = %q, want %q", s, got, want)
		}
	})
}

func BenchmarkAppendString(b *testing.B) {
	for _, bc := range []struct{ name, s string }{
		{"tick", tickText},
		{"ascii", strings.Repeat("plain text without quotes ", 40)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, 0, 4096)
			b.SetBytes(int64(len(bc.s)))
			for b.Loop() {
				buf = AppendString(buf[:0], bc.s)
			}
		})
		b.Run(bc.name+"/ref", func(b *testing.B) {
			buf := make([]byte, 0, 4096)
			b.SetBytes(int64(len(bc.s)))
			for b.Loop() {
				buf = appendStringRef(buf[:0], bc.s)
			}
		})
	}
}
