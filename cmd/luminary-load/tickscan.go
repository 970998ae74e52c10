package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Tick values. The gun.js metronome (the design as published: a peer
// writes the tick field of lum/<i>/hb) writes the string
//
//	LT.<run>.<i>.<n>
//
// as the value of field "tick": instance index i, tick counter n (1, 2, …).
// A marker string rather than a bare number lets a follower find ticks in a
// frame without decoding it and without mistaking a HAM state (the
// `">":{"tick":<state>}` metadata) for a counter.
//
// Luminary's relay writes field "tick" of lum/<I>/hb as the JSON text of a
// signed heartbeat.Tick, whose members start
//
//	{"instance":"<I>","epoch":<e>,"n":<n>,"seq":<s>,"head":"…","state":<ms>,…
//
// (heartbeat/codec.go, fixed member order). Inside a Gun frame that text is
// a JSON string, so its quotes arrive escaped (\").
const gunTickMarker = "LT."

// makeGunTick returns the gun.js metronome's tick value.
func makeGunTick(run string, i int, n uint64) string {
	b := make([]byte, 0, 32)
	b = append(b, gunTickMarker...)
	b = append(b, run...)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, n, 10)
	return string(b)
}

// tickSeen is one tick a follower recognised in a frame.
type tickSeen struct {
	inst  int     // instance index (gun: from the value; luminary: from the instance table)
	epoch uint64  // luminary only
	n     uint64  // tick counter
	state float64 // luminary only: the tick's HAM state (ms)
}

// scanGunTicks appends every gun.js metronome tick of run `run` found in
// frame to dst.
func scanGunTicks(dst []tickSeen, frame []byte, run string) []tickSeen {
	if !bytes.Contains(frame, []byte(`"put"`)) {
		return dst
	}
	prefix := make([]byte, 0, len(gunTickMarker)+len(run)+1)
	prefix = append(prefix, gunTickMarker...)
	prefix = append(prefix, run...)
	prefix = append(prefix, '.')
	for {
		k := bytes.Index(frame, prefix)
		if k < 0 {
			return dst
		}
		frame = frame[k+len(prefix):]
		i, rest, ok := cutUint(frame)
		if !ok || len(rest) == 0 || rest[0] != '.' || i > 1<<30 {
			continue
		}
		n, rest2, ok := cutUint(rest[1:])
		if !ok || len(rest2) == 0 || rest2[0] != '"' {
			continue
		}
		dst = append(dst, tickSeen{inst: int(i), n: n})
		frame = rest2
	}
}

// Escaped member names of a Luminary tick as they appear inside a frame.
var (
	lumTickStart = []byte(`{\"instance\":\"`)
	lumTickEpoch = []byte(`\",\"epoch\":`)
	lumTickN     = []byte(`,\"n\":`)
	lumTickState = []byte(`,\"state\":`)
)

// scanLuminaryTicks appends every Luminary tick found in frame to dst; index
// maps instance ids to indexes (ticks of other instances are skipped). The
// member order is fixed by heartbeat's encoder; log entries, which also
// start with "instance", are told apart because their "epoch" is followed
// by "seq", not "n".
func scanLuminaryTicks(dst []tickSeen, frame []byte, index map[string]int) []tickSeen {
	if !bytes.Contains(frame, []byte(`"put"`)) {
		return dst
	}
	for {
		k := bytes.Index(frame, lumTickStart)
		if k < 0 {
			return dst
		}
		frame = frame[k+len(lumTickStart):]
		e := bytes.Index(frame, lumTickEpoch)
		if e < 0 || e > 256 {
			continue
		}
		inst := frame[:e]
		rest := frame[e+len(lumTickEpoch):]
		epoch, rest, ok := cutUint(rest)
		if !ok || !bytes.HasPrefix(rest, lumTickN) {
			continue
		}
		n, rest, ok := cutUint(rest[len(lumTickN):])
		if !ok {
			continue
		}
		s := bytes.Index(rest, lumTickState)
		if s < 0 || s > 512 {
			continue
		}
		state, rest2, ok := cutFloat(rest[s+len(lumTickState):])
		if !ok {
			continue
		}
		idx, known := index[string(inst)]
		frame = rest2
		if !known {
			continue
		}
		dst = append(dst, tickSeen{inst: idx, epoch: epoch, n: n, state: state})
	}
}

// cutFloat parses a leading JSON number (digits, '.', exponent).
func cutFloat(b []byte) (float64, []byte, bool) {
	i := 0
	for i < len(b) && i < 40 {
		c := b[i]
		if (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E' {
			i++
			continue
		}
		break
	}
	if i == 0 {
		return 0, b, false
	}
	v, err := strconv.ParseFloat(string(b[:i]), 64)
	if err != nil {
		return 0, b, false
	}
	return v, b[i:], true
}

// parseTicksStrict decodes a frame fully and returns the ticks in field
// "tick" of every lum/…/hb node: gun.js marker values of run `run` when
// index is nil, Luminary tick JSON otherwise. It is the reference the fast
// scanners are tested against (and the --strict path).
func parseTicksStrict(frame []byte, run string, index map[string]int) ([]tickSeen, error) {
	if isKeepAlive(frame) {
		return nil, nil
	}
	ms, err := decodeFrame(frame)
	if err != nil {
		return nil, err
	}
	var out []tickSeen
	for _, m := range ms {
		if len(m.Put) == 0 || m.Dam != "" {
			continue
		}
		var g map[string]map[string]json.RawMessage
		if err := json.Unmarshal(m.Put, &g); err != nil {
			return nil, fmt.Errorf("luminary-load: decode put: %w", err)
		}
		for soul, node := range g {
			if !strings.HasPrefix(soul, "lum/") || !strings.HasSuffix(soul, "/hb") {
				continue
			}
			raw, ok := node["tick"]
			if !ok {
				continue
			}
			var v string
			if json.Unmarshal(raw, &v) != nil {
				continue
			}
			if index == nil {
				prefix := gunTickMarker + run + "."
				if !strings.HasPrefix(v, prefix) {
					continue
				}
				parts := strings.Split(v[len(prefix):], ".")
				if len(parts) != 2 {
					return nil, fmt.Errorf("luminary-load: soul %s: malformed tick %q", soul, v)
				}
				i, err1 := strconv.Atoi(parts[0])
				n, err2 := strconv.ParseUint(parts[1], 10, 64)
				if err1 != nil || err2 != nil {
					return nil, fmt.Errorf("luminary-load: soul %s: malformed tick %q", soul, v)
				}
				out = append(out, tickSeen{inst: i, n: n})
				continue
			}
			var t struct {
				Instance string  `json:"instance"`
				Epoch    uint64  `json:"epoch"`
				N        uint64  `json:"n"`
				State    float64 `json:"state"`
			}
			if err := json.Unmarshal([]byte(v), &t); err != nil {
				return nil, fmt.Errorf("luminary-load: soul %s: tick: %w", soul, err)
			}
			if soul != "lum/"+t.Instance+"/hb" {
				return nil, fmt.Errorf("luminary-load: soul %s carries a tick of %s", soul, t.Instance)
			}
			idx, ok := index[t.Instance]
			if !ok {
				continue
			}
			out = append(out, tickSeen{inst: idx, epoch: t.Epoch, n: t.N, state: t.State})
		}
	}
	return out, nil
}

// scanReplyIDs appends the id of every `"@":"<id>"` member in frame to dst:
// the ids of the messages the frame answers (gets and puts), found without
// decoding the frame. A value that merely contains that text inside a
// string arrives escaped (\"@\":\"), so it is not matched.
func scanReplyIDs(dst []string, frame []byte) []string {
	const at = `"@":"`
	for {
		k := bytes.Index(frame, []byte(at))
		if k < 0 {
			return dst
		}
		frame = frame[k+len(at):]
		e := bytes.IndexByte(frame, '"')
		if e < 0 || e > 64 {
			continue
		}
		dst = append(dst, string(frame[:e]))
		frame = frame[e:]
	}
}
