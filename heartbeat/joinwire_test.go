package heartbeat_test

import (
	"bytes"
	"testing"

	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/heartbeat/heartbeattest"
	"github.com/krestianstvo/luminary/internal/jsjson"
)

// wireLimits are the parse limits of a client frame (client.Config).
var wireLimits = jsjson.Limits{MaxBytes: 64 << 20, MaxDepth: 16, MaxMembers: 1 << 20, MaxElements: 10000}

func sampleBundle() heartbeat.JoinBundle {
	s := sampleStream()
	return heartbeat.JoinBundle{Meta: s.Seq.Meta(), Page: heartbeat.Page{Entries: s.Entries, Ticks: s.Ticks}}
}

func decodeBundle(t testing.TB, b []byte) (heartbeat.JoinBundle, error) {
	v, err := jsjson.Parse(b, wireLimits)
	if err != nil {
		return heartbeat.JoinBundle{}, err
	}
	return heartbeat.JoinBundleFromValue(v, 1<<20)
}

// A join bundle survives its wire form, and a joiner accepts the decoded
// one; a snapshot reference needs its marker after its point; snapshot
// data needs a snapshot.
func TestJoinBundleWire(t *testing.T) {
	b := sampleBundle()
	got, err := decodeBundle(t, b.AppendJSON(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got.Meta != b.Meta || got.Snapshot != nil || len(got.Page.Entries) != len(b.Page.Entries) || len(got.Page.Ticks) != 1 {
		t.Fatalf("round trip: %+v", got)
	}
	for i := range got.Page.Entries {
		if got.Page.Entries[i].Hash() != b.Page.Entries[i].Hash() {
			t.Fatalf("entry %d changed", i)
		}
	}
	if _, err := heartbeat.NewJoiner(heartbeat.FollowerConfig{}, got); err != nil {
		t.Fatalf("joiner refuses the decoded bundle: %v", err)
	}
	b.Snapshot = &heartbeat.SnapshotRef{Seq: 2, Hash: heartbeat.SHA256([]byte("state")), Marker: 3}
	b.Data = []byte("state")
	got, err = decodeBundle(t, b.AppendJSON(nil))
	if err != nil || *got.Snapshot != *b.Snapshot || string(got.Data) != "state" {
		t.Fatalf("with a snapshot: %+v %v", got.Snapshot, err)
	}
	for name, bad := range map[string]string{
		"marker before point": `"marker":1`,
		"unknown member":      `"marker":3,"x":1`,
	} {
		js := bytes.Replace(b.AppendJSON(nil), []byte(`"marker":3`), []byte(bad), 1)
		if _, err := decodeBundle(t, js); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	b.Snapshot = nil
	if _, err := decodeBundle(t, b.AppendJSON(nil)); err == nil {
		t.Error("data without a snapshot accepted")
	}
	big := sampleBundle()
	big.Snapshot, big.Data = &heartbeat.SnapshotRef{Seq: 1, Marker: 2}, make([]byte, 2<<20)
	if _, err := decodeBundle(t, big.AppendJSON(nil)); err == nil {
		t.Error("data over the bound accepted")
	}
}

// A vote survives its wire form with and without data; the signature is
// checked by whoever receives it (here: it still verifies).
func TestSnapshotVoteWire(t *testing.T) {
	v := heartbeat.SnapshotVote{Instance: heartbeattest.Signer(1).Public(), Seq: 7, Hash: heartbeat.SHA256([]byte("s"))}
	if err := v.Sign(heartbeattest.Signer(2)); err != nil {
		t.Fatal(err)
	}
	for _, data := range [][]byte{nil, []byte("s")} {
		val, err := jsjson.Parse(v.AppendJSON(nil, data), wireLimits)
		if err != nil {
			t.Fatal(err)
		}
		got, gotData, err := heartbeat.SnapshotVoteFromValue(val, 1<<10)
		if err != nil || got.Seq != 7 || got.Hash != v.Hash || got.Author != v.Author || !bytes.Equal(got.Sig, v.Sig) || !bytes.Equal(gotData, data) {
			t.Fatalf("round trip: %+v %q %v", got, gotData, err)
		}
		if !heartbeat.KeyVerifier(nil).Verify(got.Author, got.SignedBytes(), got.Sig) {
			t.Fatal("decoded vote does not verify")
		}
	}
	val, _ := jsjson.Parse(v.AppendJSON(nil, make([]byte, 2048)), wireLimits)
	if _, _, err := heartbeat.SnapshotVoteFromValue(val, 1024); err == nil {
		t.Fatal("vote data over the bound accepted")
	}
}

func FuzzJoinBundleWire(f *testing.F) {
	b := sampleBundle()
	f.Add(b.AppendJSON(nil))
	b.Snapshot, b.Data = &heartbeat.SnapshotRef{Seq: 1, Marker: 2}, []byte("x")
	f.Add(b.AppendJSON(nil))
	v := heartbeat.SnapshotVote{Instance: "k1:x", Seq: 1, Author: "k1:y", Sig: make([]byte, 64)}
	f.Add(v.AppendJSON(nil, []byte("d")))
	f.Add([]byte(`{"meta":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		val, err := jsjson.Parse(data, wireLimits)
		if err != nil {
			return
		}
		_, _, _ = heartbeat.SnapshotVoteFromValue(val, 1<<16)
		got, err := heartbeat.JoinBundleFromValue(val, 1<<16)
		if err != nil {
			return
		}
		again, err := decodeBundle(t, got.AppendJSON(nil))
		if err != nil || len(again.Page.Entries) != len(got.Page.Entries) || !bytes.Equal(again.Data, got.Data) {
			t.Fatalf("re-encode does not round trip: %v", err)
		}
	})
}
