package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"

	"golang.org/x/term"

	"github.com/krestianstvo/luminary/keys"
)

// KeysCmd groups the key management subcommands.
type KeysCmd struct {
	New  KeysNewCmd  `cmd:"" help:"Generate a key pair and store it in a password-encrypted key file."`
	Show KeysShowCmd `cmd:"" help:"Print the public key (identity) stored in a key file; needs no password."`
}

// PasswordFlags choose where a key file password comes from: a file, the
// LUMINARY_KEY_PASSWORD environment variable, or a prompt when stdin is a
// terminal, in that order.
type PasswordFlags struct {
	PasswordFile string `type:"path" help:"Read the key file password from the first line of this file (else LUMINARY_KEY_PASSWORD, else a prompt on a terminal)."`
}

// passwordEnv is the environment variable holding a key file password.
const passwordEnv = "LUMINARY_KEY_PASSWORD"

// maxPasswordFile bounds what --password-file reads.
const maxPasswordFile = 4096

// Test seams: the terminal used for prompts and stdin for data.
var (
	stdin      io.Reader = os.Stdin
	isTerminal           = func() bool { return term.IsTerminal(int(os.Stdin.Fd())) }
	readSecret           = func() ([]byte, error) { return term.ReadPassword(int(os.Stdin.Fd())) }
)

// readKey reads the key file at path with the password the flags name.
func (f PasswordFlags) readKey(env *Env, path string) (*keys.Private, error) {
	pw, err := f.password(env, false)
	if err != nil {
		return nil, err
	}
	defer clear(pw)
	return keys.ReadFile(path, pw)
}

// optionalKey reads the key file at path, or returns nil when path is
// empty (a command that may run anonymously).
func (f PasswordFlags) optionalKey(env *Env, path string) (*keys.Private, error) {
	if path == "" {
		return nil, nil
	}
	return f.readKey(env, path)
}

// relayURL checks a --relay flag: an http:// or https:// base URL.
func relayURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError{errors.New("--relay must be an http:// or https:// URL")}
	}
	return nil
}

// password returns the key file password; confirm asks twice when prompting.
func (f PasswordFlags) password(env *Env, confirm bool) ([]byte, error) {
	if f.PasswordFile != "" {
		b, err := readBounded(f.PasswordFile, maxPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("password file: %w", err)
		}
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[:i]
		}
		b = bytes.TrimSuffix(b, []byte("\r"))
		if len(b) == 0 {
			return nil, errors.New("password file: first line is empty")
		}
		return b, nil
	}
	if p, ok := os.LookupEnv(passwordEnv); ok {
		if p == "" {
			return nil, errors.New(passwordEnv + " is set but empty")
		}
		return []byte(p), nil
	}
	if !isTerminal() {
		return nil, usageError{errors.New("no password: use --password-file, set " + passwordEnv + ", or run on a terminal")}
	}
	fmt.Fprint(env.Stderr, "Key file password: ")
	p, err := readSecret()
	fmt.Fprintln(env.Stderr)
	if err != nil {
		return nil, fmt.Errorf("read password: %w", err)
	}
	if len(p) == 0 {
		return nil, errors.New("empty password")
	}
	if confirm {
		fmt.Fprint(env.Stderr, "Repeat password: ")
		again, err := readSecret()
		fmt.Fprintln(env.Stderr)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		if !bytes.Equal(p, again) {
			return nil, errors.New("passwords do not match")
		}
	}
	return p, nil
}

// KeysNewCmd generates a key pair.
type KeysNewCmd struct {
	Curve string `default:"secp256k1" enum:"secp256k1,p256" help:"Curve: secp256k1 (Luminary's native curve) or p256 (gun.js SEA's)."`
	Out   string `short:"o" type:"path" help:"Key file to write (mode 0600, written atomically, never overwritten without --force). Without it the encrypted key file is written to stdout."`
	Force bool   `help:"Overwrite an existing key file."`
	LogN  int    `name:"scrypt-log-n" default:"15" help:"scrypt work factor log2(N) for the key file (10 to 20)."`
	PasswordFlags
}

// Run generates the key, writes the key file and prints the public key.
func (c *KeysNewCmd) Run(env *Env) error {
	curve, err := keys.ParseCurve(c.Curve)
	if err != nil {
		return usageError{err}
	}
	if c.LogN < keys.MinLogN || c.LogN > keys.MaxLogN {
		return usageError{fmt.Errorf("--scrypt-log-n must be in [%d, %d]", keys.MinLogN, keys.MaxLogN)}
	}
	pw, err := c.password(env, true)
	if err != nil {
		return err
	}
	defer clear(pw)
	priv, err := keys.Generate(curve)
	if err != nil {
		return err
	}
	opt := keys.FileOptions{LogN: c.LogN, Overwrite: c.Force}
	if c.Out == "" {
		data, err := keys.EncryptKeyFile(priv, pw, opt)
		if err != nil {
			return err
		}
		if _, err := env.Stdout.Write(data); err != nil {
			return err
		}
		fmt.Fprintln(env.Stderr, "public key:", priv.Public())
		return nil
	}
	if err := keys.WriteFile(c.Out, priv, pw, opt); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s exists; use --force to replace it", c.Out)
		}
		return err
	}
	fmt.Fprintln(env.Stdout, priv.Public())
	return nil
}

// KeysShowCmd prints the public key of a key file.
type KeysShowCmd struct {
	File string `arg:"" type:"path" help:"Key file."`
}

// Run prints the public key text.
func (c *KeysShowCmd) Run(env *Env) error {
	pub, err := keys.ReadPublicFile(c.File)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, pub)
	return nil
}

// readBounded reads at most limit bytes of path and fails if it is longer.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAllBounded(f, limit)
}

func readAllBounded(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("input larger than %d bytes", limit)
	}
	return b, nil
}
