package heartbeat_test

import (
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/heartbeat/heartbeattest"
	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/keys"
)

var updateVectors = flag.Bool("update-vectors", false, "rewrite testdata/vectors.json")

// vectors computes the golden values of the signed and hashed formats from
// fixed keys (RFC 6979 signatures are deterministic).
func vectors(t *testing.T) []byte {
	owner := heartbeattest.Key(1)
	author := heartbeattest.Key(2)
	inst := owner.Public().String()
	m := heartbeat.Message{Instance: inst, TS: 1795780800000, Nonce: "n-1", Payload: `{"action":"setProperty","parameters":["x",1]}`}
	if err := m.Sign(heartbeat.KeySigner(author)); err != nil {
		t.Fatal(err)
	}
	e := heartbeat.Entry{Instance: inst, Epoch: 1, Seq: 2, State: 1795780800000.123, Kind: heartbeat.KindMessage,
		Author: m.Author, TS: m.TS, Nonce: m.Nonce, Payload: m.Payload, Sig: m.Sig}
	e.Prev[0] = 1
	recs := []heartbeat.TickRecord{
		{Instance: inst, Epoch: 1, N: 1, Seq: 2, Head: e.Hash(), State: 1795780800050.5, Start: 1795780800000, Rate: 1},
		{Instance: heartbeattest.Key(3).Public().String(), Epoch: 4, N: 9, Seq: 7, State: 1795780800050.25, Start: 1795780700000, Rate: 2},
		{Instance: heartbeattest.Key(4).Public().String(), Epoch: 1, N: 1, Seq: 1, State: 1795780800050.75, Start: 1795780800000, Rate: 0.5},
	}
	ticks, err := heartbeat.SignRound(heartbeat.KeySigner(owner), recs)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := ticks[0].Root()
	priv := func(k *keys.Private) string { return k.Encode() }
	o := &jsjson.Object{}
	o.Set("about", "Golden values of package heartbeat's signed and hashed formats; regenerate with go test -run TestVectors -update-vectors")
	o.Set("owner_private", priv(owner))
	o.Set("owner", inst)
	o.Set("author_private", priv(author))
	o.Set("author", author.Public().String())
	mo := &jsjson.Object{}
	mo.Set("signed_bytes_hex", hex.EncodeToString(m.SignedBytes()))
	mo.Set("id", m.ID().String())
	mo.Set("json", jsjson.Raw(must(m.MarshalJSON())))
	o.Set("message", mo)
	eo := &jsjson.Object{}
	eo.Set("hash", e.Hash().String())
	eo.Set("json", jsjson.Raw(must(e.MarshalJSON())))
	o.Set("entry", eo)
	ro := &jsjson.Object{}
	ro.Set("root", root.String())
	var leaves, tks []any
	for i := range ticks {
		leaves = append(leaves, ticks[i].Leaf().String())
		tks = append(tks, jsjson.Raw(must(ticks[i].MarshalJSON())))
	}
	ro.Set("leaves", leaves)
	ro.Set("ticks", tks)
	o.Set("round", ro)
	vo := &jsjson.Object{}
	vo.Set("state", recs[0].State)
	vo.Set("start", recs[0].Start)
	vo.Set("rate", recs[0].Rate)
	vo.Set("time", recs[0].Time())
	o.Set("vtime", vo)
	return append(jsjson.Append(nil, o), '\n')
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestVectors(t *testing.T) {
	got := vectors(t)
	path := filepath.Join("testdata", "vectors.json")
	if *updateVectors {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("vectors changed: the signed/hashed formats are part of the protocol.\ngot:  %s\nwant: %s", got, want)
	}
}
