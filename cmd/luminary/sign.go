package main

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/keys"
	"github.com/krestianstvo/luminary/sea"
)

// SignCmd signs data into a SEA envelope.
type SignCmd struct {
	Key  string `required:"" type:"path" help:"Key file of the signer."`
	Data string `arg:"" optional:"" default:"-" help:"Data to sign, or - (the default) to read it from stdin byte for byte. As in gun.js, text that is JSON is signed as that JSON value."`
	PasswordFlags
}

// Run prints SEA{"m":…,"s":…} and a newline.
func (c *SignCmd) Run(env *Env) error {
	data, err := argOrStdin(c.Data)
	if err != nil {
		return err
	}
	priv, err := c.readKey(env, c.Key)
	if err != nil {
		return err
	}
	env2, err := sea.Sign(data, priv)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, env2)
	return nil
}

// VerifyCmd verifies a SEA envelope.
type VerifyCmd struct {
	Pub      string `required:"" help:"Public key of the signer: k1:… (secp256k1) or SEA's x.y (P-256), or a key file to read it from."`
	Envelope string `arg:"" optional:"" default:"-" help:"SEA envelope, or - (the default) to read it from stdin."`
}

// Run prints the signed value as JSON and exits 0 when the envelope is valid;
// otherwise it fails (exit 1) with the reason.
func (c *VerifyCmd) Run(env *Env) error {
	pub, err := keys.ParsePublic(c.Pub)
	if err != nil {
		p, ferr := keys.ReadPublicFile(c.Pub)
		if ferr != nil {
			return usageError{fmt.Errorf("--pub: %w", err)}
		}
		pub = p
	}
	text, err := argOrStdin(c.Envelope)
	if err != nil {
		return err
	}
	m, err := sea.Verify(string(bytes.TrimSpace([]byte(text))), pub)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s\n", jsjson.Marshal(m))
	return nil
}

// argOrStdin returns arg, or all of stdin (bounded) when arg is "-".
func argOrStdin(arg string) (string, error) {
	if arg != "-" {
		return arg, nil
	}
	b, err := readAllBounded(stdin, sea.MaxEnvelopeSize)
	if err != nil {
		return "", fmt.Errorf("stdin: %w", err)
	}
	if len(b) == 0 {
		return "", usageError{errors.New("no data: give it as an argument or on stdin")}
	}
	return string(b), nil
}
