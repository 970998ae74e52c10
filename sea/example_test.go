package sea_test

import (
	"fmt"

	"github.com/krestianstvo/luminary/keys"
	"github.com/krestianstvo/luminary/sea"
)

func Example() {
	// Pair P of gun.md §4.8 (test keys made by gun.js SEA.pair).
	priv, err := keys.ParsePrivate("X-_g1E2qMEWvgZIbgDv2MYQOqtcPFRsJDg_KcwFHOpA")
	if err != nil {
		panic(err)
	}
	pub := priv.Public()

	// An envelope made by gun.js SEA.sign("hello", P).
	m, err := sea.Verify(`SEA{"m":"hello","s":"CmHlygd+9TZga/Xlp/+GbH6jOZJtGSkXV0pKU0YL5Juk5oN2xaMDhO6+qZO7smD5id8E82sCz8vAu8ZdSGgMqg=="}`, pub)
	fmt.Println(m, err)

	// Signing JSON text signs the value, as in gun.js.
	env, err := sea.Sign(`{"b": 2, "a": 1}`, priv)
	if err != nil {
		panic(err)
	}
	e, _ := sea.ParseEnvelope(env)
	fmt.Println(e.Text(), e.Verify(pub))
	// Output:
	// hello <nil>
	// {"b":2,"a":1} <nil>
}

func ExampleEncrypt() {
	env, err := sea.Encrypt(map[string]any{"x": 1}, "passphrase123")
	if err != nil {
		panic(err)
	}
	v, err := sea.Decrypt(env, "passphrase123")
	fmt.Printf("%v %v\n", err, v != nil)
	_, err = sea.Decrypt(env, "wrong")
	fmt.Println(err)
	// Output:
	// <nil> true
	// sea: could not decrypt
}
