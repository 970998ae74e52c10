package rest_test

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/krestianstvo/luminary/api/rest"
	"github.com/krestianstvo/luminary/keys"
)

var update = flag.Bool("update", false, "rewrite testdata/signature_vectors.json from the current code")

// sigVector is one known answer for request signatures (see
// testdata/README.md).
type sigVector struct {
	Comment   string `json:"comment"`
	Private   string `json:"private"`
	Public    string `json:"public"`
	Method    string `json:"method"`
	Target    string `json:"target"`
	Date      string `json:"date"`
	Nonce     string `json:"nonce"`
	Body      string `json:"body"`
	Message   string `json:"message_hex"`
	Signature string `json:"signature"`
}

const vectorsFile = "testdata/signature_vectors.json"

func TestSignatureVectors(t *testing.T) {
	if *update {
		writeVectors(t)
	}
	data, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var vs []sigVector
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 3 {
		t.Fatalf("%d vectors", len(vs))
	}
	for _, v := range vs {
		priv, err := keys.ParsePrivate(v.Private)
		if err != nil {
			t.Fatal(err)
		}
		if priv.Public().String() != v.Public {
			t.Fatalf("%s: public key", v.Comment)
		}
		msg := rest.RequestMessage(v.Method, v.Target, v.Date, v.Nonce, []byte(v.Body))
		if hex.EncodeToString(msg) != v.Message {
			t.Fatalf("%s: message bytes differ", v.Comment)
		}
		sig, err := priv.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		if base64.RawURLEncoding.EncodeToString(sig) != v.Signature {
			t.Fatalf("%s: signature differs (signing is deterministic, RFC 6979)", v.Comment)
		}
		want, _ := base64.RawURLEncoding.DecodeString(v.Signature)
		if !priv.Public().Verify(msg, want) {
			t.Fatalf("%s: signature does not verify", v.Comment)
		}
	}
}

func writeVectors(t *testing.T) {
	t.Helper()
	k1, _ := keys.ParsePrivate("k1priv:" + base64.RawURLEncoding.EncodeToString([]byte("luminary rest vector key #1 ....")))
	p256, _ := keys.ParsePrivate(base64.RawURLEncoding.EncodeToString([]byte("luminary rest vector key #2 ....")))
	cases := []struct {
		comment string
		k       *keys.Private
		method  string
		target  string
		date    string
		body    string
	}{
		{"secp256k1, host a world, RFC 3339 date", k1, "POST", "/api/worlds", "2026-03-01T12:00:00Z", `{"alias":"demo","open":true}`},
		{"secp256k1, signed read with a query, Unix ms date, empty body", k1, "GET", "/api/worlds/demo/history?from=1&limit=10", "1772366400000", ""},
		{"P-256, issue a certificate, escaped path", p256, "POST", "/api/worlds/k1%3AA/certs", "2026-03-01T12:00:00.123Z",
			`{"subject":"*","roles":["message"],"expiry":1772452800000}`},
	}
	var out []sigVector
	for _, c := range cases {
		if c.k == nil {
			t.Fatal("vector key does not parse")
		}
		nonce := "bHVtaW5hcnktbm9uY2U"
		msg := rest.RequestMessage(c.method, c.target, c.date, nonce, []byte(c.body))
		sig, err := c.k.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sigVector{Comment: c.comment, Private: c.k.Encode(), Public: c.k.Public().String(), Method: c.method,
			Target: c.target, Date: c.date, Nonce: nonce, Body: c.body, Message: hex.EncodeToString(msg),
			Signature: base64.RawURLEncoding.EncodeToString(sig)})
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	if err := os.WriteFile(vectorsFile, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
