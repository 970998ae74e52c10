package clienttest

import (
	"bytes"
	"os"
	"strconv"
)

// EnvInt returns the positive integer in the environment variable name,
// or def.
func EnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// PayloadTimes returns the "t" of every message entry in a pushed frame
// whose t is not in seen yet, and adds them to seen. It does not decode
// the frame: the benchmarks' payload {"t":<unix ns>} sits in an entry's
// JSON text, which sits in a string of the frame, so it appears there as
// {\\\"t\\\":<digits>. Cheap, so that receivers measure the relay, not
// JSON decoding.
func PayloadTimes(frame []byte, seen map[string]bool) []int64 {
	pat := []byte(`{\\\"t\\\":`)
	var out []int64
	for {
		i := bytes.Index(frame, pat)
		if i < 0 {
			return out
		}
		frame = frame[i+len(pat):]
		j := 0
		for j < len(frame) && frame[j] >= '0' && frame[j] <= '9' {
			j++
		}
		k := string(frame[:j])
		if seen[k] {
			continue
		}
		seen[k] = true
		if t, err := strconv.ParseInt(k, 10, 64); err == nil {
			out = append(out, t)
		}
	}
}
