package world_test

import (
	"fmt"
	"time"

	"github.com/krestianstvo/luminary/keys"
	"github.com/krestianstvo/luminary/world"
)

// A member seals a message for the log; another member opens the entry.
func ExampleSealMessage() {
	owner, _ := keys.Generate(keys.Secp256k1)
	alice, _ := keys.Generate(keys.P256)
	inst := owner.Public().String()

	k, _ := world.NewContentKey(inst, 1) // normally from World.Keyring
	m, _ := world.SealMessage(k, alice, time.Now(), []byte(`{"move":"e2e4"}`))
	fmt.Println(m.Payload[:9]) // what the relay sees: an envelope

	ring, _ := world.NewKeyring(inst, k)
	pt, err := ring.OpenMessage(&m)
	fmt.Println(string(pt), err)
	// Output:
	// lum1.m.1.
	// {"move":"e2e4"} <nil>
}

// Two people who share a world's name and password derive the same world.
func ExamplePasswordWorld() {
	cheap := world.PasswordParams{Memory: world.MinPasswordMemory, Time: 1} // tests only; use the zero value
	a, _ := world.PasswordWorld("chess club", []byte("correct horse battery staple"), cheap, 0)
	b, _ := world.PasswordWorld("chess club", []byte("correct horse battery staple"), cheap, 0)
	fmt.Println(a.Instance == b.Instance, a.Key.Equal(b.Key))
	// Output: true true
}
