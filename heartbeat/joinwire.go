package heartbeat

import (
	"fmt"

	"github.com/krestianstvo/luminary/internal/jsjson"
)

// Wire forms of snapshot votes and join bundles, for relays and clients
// that exchange them over a connection (api/service's lumSnap and lumJoin
// messages). Both are JSON objects with a fixed member order; the decoders
// take an already parsed value (the member of a Gun message) and refuse
// unknown members, wrong types and anything beyond their bounds.
//
//	vote:   {"instance":I,"seq":s,"hash":H,"author":K,"sig":S[,"data":D]}
//	bundle: {"meta":{…},"snapshot":{"seq":s,"hash":H,"marker":m}|null,"data":D,
//	         "entries":[entry…],"ticks":[tick…]}
//
// H is a hash and S a signature in unpadded base64url, D the snapshot data
// in unpadded base64url ("" when there is none).

// The top-level members of a Gun message that carry a snapshot vote and a
// join-bundle request (and their replies).
const (
	SnapshotMember = "lumSnap"
	JoinMember     = "lumJoin"
)

// MaxJoinEntries bounds the entries (and ticks) of one join bundle.
const MaxJoinEntries = 4096

// AppendJSON appends the wire form of v, with data when it is not nil.
func (v *SnapshotVote) AppendJSON(dst []byte, data []byte) []byte {
	o := &jsjson.Object{}
	o.Set("instance", v.Instance)
	o.Set("seq", float64(v.Seq))
	o.Set("hash", v.Hash.String())
	o.Set("author", v.Author)
	o.Set("sig", b64.EncodeToString(v.Sig))
	if data != nil {
		o.Set("data", b64.EncodeToString(data))
	}
	return jsjson.Append(dst, o)
}

// SnapshotVoteFromValue decodes the wire form of a vote and its data (nil
// when absent). The signature is not verified here; maxData bounds the
// decoded data.
func SnapshotVoteFromValue(val any, maxData int) (SnapshotVote, []byte, error) {
	o, ok := val.(*jsjson.Object)
	if !ok {
		return SnapshotVote{}, nil, fmt.Errorf("%w: a snapshot vote is an object", ErrMalformed)
	}
	var v SnapshotVote
	r := reader{o: o}
	v.Instance = r.str("instance", true)
	v.Seq = r.uint("seq", true)
	v.Hash, _ = r.hash("hash", true)
	v.Author = r.str("author", true)
	v.Sig = r.bytes("sig", true, signatureSize)
	data := r.data("data", maxData)
	if err := r.done(); err != nil {
		return SnapshotVote{}, nil, err
	}
	if err := checkKeyText("instance", v.Instance); err != nil {
		return SnapshotVote{}, nil, err
	}
	if err := checkKeyText("author", v.Author); err != nil {
		return SnapshotVote{}, nil, err
	}
	return v, data, nil
}

// AppendJSON appends the wire form of b.
func (b *JoinBundle) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"meta":`...)
	dst = jsjson.Append(dst, b.Meta.object())
	dst = append(dst, `,"snapshot":`...)
	if b.Snapshot == nil {
		dst = append(dst, "null"...)
	} else {
		o := &jsjson.Object{}
		o.Set("seq", float64(b.Snapshot.Seq))
		o.Set("hash", b.Snapshot.Hash.String())
		o.Set("marker", float64(b.Snapshot.Marker))
		dst = jsjson.Append(dst, o)
	}
	dst = append(dst, `,"data":"`...)
	dst = b64.AppendEncode(dst, b.Data)
	dst = append(dst, `","entries":[`...)
	for i := range b.Page.Entries {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = b.Page.Entries[i].AppendJSON(dst)
	}
	dst = append(dst, `],"ticks":[`...)
	for i := range b.Page.Ticks {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = b.Page.Ticks[i].AppendJSON(dst)
	}
	return append(dst, "]}"...)
}

// JoinBundleFromValue decodes the wire form of a join bundle. Every entry
// must carry its own hash; ticks are decoded, not verified ([NewJoiner]
// verifies the bundle as a whole). maxData bounds the snapshot data.
func JoinBundleFromValue(val any, maxData int) (JoinBundle, error) {
	o, ok := val.(*jsjson.Object)
	if !ok {
		return JoinBundle{}, fmt.Errorf("%w: a join bundle is an object", ErrMalformed)
	}
	var b JoinBundle
	r := reader{o: o}
	if mv, ok := r.get("meta", true); ok {
		mo, ok := mv.(*jsjson.Object)
		if !ok {
			return JoinBundle{}, fmt.Errorf("%w: member \"meta\" must be an object", ErrMalformed)
		}
		m, err := metaFromObject(mo)
		if err != nil {
			return JoinBundle{}, fmt.Errorf("join bundle meta: %w", err)
		}
		b.Meta = m
	}
	if sv, ok := r.get("snapshot", true); ok && sv != nil {
		so, ok := sv.(*jsjson.Object)
		if !ok {
			return JoinBundle{}, fmt.Errorf("%w: member \"snapshot\" must be an object or null", ErrMalformed)
		}
		sr := reader{o: so}
		ref := &SnapshotRef{Seq: sr.uint("seq", true), Marker: sr.uint("marker", true)}
		ref.Hash, _ = sr.hash("hash", true)
		if err := sr.done(); err != nil {
			return JoinBundle{}, fmt.Errorf("join bundle snapshot: %w", err)
		}
		if ref.Seq == 0 || ref.Marker <= ref.Seq {
			return JoinBundle{}, fmt.Errorf("%w: snapshot marker %d must follow its point %d", ErrMalformed, ref.Marker, ref.Seq)
		}
		b.Snapshot = ref
	}
	b.Data = r.data("data", maxData)
	for _, k := range []string{"entries", "ticks"} {
		v, ok := r.get(k, true)
		if !ok {
			break
		}
		arr, ok := v.([]any)
		if !ok || len(arr) > MaxJoinEntries {
			r.fail(k, fmt.Sprintf("an array of at most %d objects", MaxJoinEntries))
			break
		}
		for i, x := range arr {
			xo, ok := x.(*jsjson.Object)
			if !ok {
				return JoinBundle{}, fmt.Errorf("%w: %s[%d] is not an object", ErrMalformed, k, i)
			}
			if k == "entries" {
				e, err := entryFromObject(xo)
				if err != nil {
					return JoinBundle{}, fmt.Errorf("join bundle entry %d: %w", i, err)
				}
				b.Page.Entries = append(b.Page.Entries, e)
			} else {
				t, err := tickFromObject(xo)
				if err != nil {
					return JoinBundle{}, fmt.Errorf("join bundle tick %d: %w", i, err)
				}
				b.Page.Ticks = append(b.Page.Ticks, t)
			}
		}
	}
	if err := r.done(); err != nil {
		return JoinBundle{}, err
	}
	if b.Snapshot == nil && len(b.Data) > 0 {
		return JoinBundle{}, fmt.Errorf("%w: snapshot data without a snapshot", ErrMalformed)
	}
	return b, nil
}

// data reads an optional base64url member of at most max decoded bytes
// (nil when absent).
func (r *reader) data(k string, max int) []byte {
	v, ok := r.get(k, false)
	if !ok {
		return nil
	}
	s, ok := v.(string)
	if !ok || b64.DecodedLen(len(s)) > max {
		r.fail(k, fmt.Sprintf("base64url of at most %d bytes", max))
		return nil
	}
	out, err := b64.DecodeString(s)
	if err != nil {
		r.fail(k, "canonical base64url")
		return nil
	}
	return out
}
