package rest_test

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/krestianstvo/luminary/api/rest"
	"github.com/krestianstvo/luminary/keys"
)

// A client (the CLI, a script) signs an administrative request with its
// key; the relay checks the four headers.
func ExampleSignRequest() {
	admin, err := keys.Generate(keys.Secp256k1)
	if err != nil {
		panic(err)
	}
	body := []byte(`{"alias":"demo","open":true}`)
	req, _ := http.NewRequest("POST", "https://relay.example/api/worlds", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if err := rest.SignRequest(req, admin); err != nil {
		panic(err)
	}
	for _, h := range []string{rest.HeaderKey, rest.HeaderDate, rest.HeaderNonce, rest.HeaderSignature} {
		fmt.Println(h, req.Header.Get(h) != "")
	}
	// Output:
	// Luminary-Key true
	// Luminary-Date true
	// Luminary-Nonce true
	// Luminary-Signature true
}
