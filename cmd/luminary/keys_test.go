package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krestianstvo/luminary/keys"
)

// runCLI runs the CLI in-process with the given stdin.
func runCLI(t *testing.T, in string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	old := stdin
	stdin = strings.NewReader(in)
	defer func() { stdin = old }()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestKeysSignVerifyCLI(t *testing.T) {
	t.Setenv(passwordEnv, "")
	os.Unsetenv(passwordEnv)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("hunter2 hunter2\n"), 0o600)

	for _, curve := range []string{"secp256k1", "p256"} {
		t.Run(curve, func(t *testing.T) {
			key := filepath.Join(dir, curve+".key")
			code, out, errs := runCLI(t, "", "keys", "new", "--curve", curve, "--out", key, "--password-file", pwFile, "--scrypt-log-n", "10")
			if code != 0 {
				t.Fatalf("keys new: %d %s", code, errs)
			}
			pub := strings.TrimSpace(out)
			if _, err := keys.ParsePublic(pub); err != nil {
				t.Fatalf("keys new printed %q: %v", pub, err)
			}
			if fi, _ := os.Stat(key); fi.Mode().Perm() != 0o600 {
				t.Fatalf("key file mode %v", fi.Mode())
			}

			// Not overwritten without --force.
			if code, _, errs := runCLI(t, "", "keys", "new", "--curve", curve, "--out", key, "--password-file", pwFile, "--scrypt-log-n", "10"); code != 1 || !strings.Contains(errs, "exists") {
				t.Fatalf("second keys new: %d %s", code, errs)
			}

			code, out, _ = runCLI(t, "", "keys", "show", key)
			if code != 0 || strings.TrimSpace(out) != pub {
				t.Fatalf("keys show: %d %q", code, out)
			}

			// sign with the password from the environment, data as argument.
			t.Setenv(passwordEnv, "hunter2 hunter2")
			code, out, errs = runCLI(t, "", "sign", "--key", key, `{"hello":"world"}`)
			if code != 0 || !strings.HasPrefix(out, `SEA{"m":{"hello":"world"},"s":"`) {
				t.Fatalf("sign: %d %q %s", code, out, errs)
			}
			env := strings.TrimSpace(out)
			os.Unsetenv(passwordEnv)

			// sign from stdin with the password file.
			code, out2, errs := runCLI(t, "plain text", "sign", "--key", key, "--password-file", pwFile, "-")
			if code != 0 || !strings.HasPrefix(out2, `SEA{"m":"plain text"`) {
				t.Fatalf("sign stdin: %d %q %s", code, out2, errs)
			}

			code, out, errs = runCLI(t, "", "verify", "--pub="+pub, env)
			if code != 0 || strings.TrimSpace(out) != `{"hello":"world"}` {
				t.Fatalf("verify: %d %q %s", code, out, errs)
			}
			// --pub may name the key file; the envelope may come on stdin.
			code, _, errs = runCLI(t, env+"\n", "verify", "--pub="+key)
			if code != 0 {
				t.Fatalf("verify stdin: %d %s", code, errs)
			}

			tampered := strings.Replace(env, "world", "World", 1)
			code, _, errs = runCLI(t, "", "verify", "--pub="+pub, tampered)
			if code != 1 || !strings.Contains(errs, "invalid: bad signature") {
				t.Fatalf("tampered verify: %d %s", code, errs)
			}
			code, _, errs = runCLI(t, "", "verify", "--pub="+pub, "SEA{nope")
			if code != 1 || !strings.Contains(errs, "invalid: sea envelope") {
				t.Fatalf("garbage verify: %d %s", code, errs)
			}
			code, _, _ = runCLI(t, "", "verify", "--pub", "not-a-key", env)
			if code != 2 {
				t.Fatalf("bad --pub: exit %d", code)
			}

			// Wrong password: clear error, no key material.
			bad := filepath.Join(dir, "bad-pw")
			os.WriteFile(bad, []byte("wrong\n"), 0o600)
			code, _, errs = runCLI(t, "", "sign", "--key", key, "--password-file", bad, "x")
			if code != 1 || !strings.Contains(errs, "wrong password") {
				t.Fatalf("wrong password: %d %s", code, errs)
			}

			// A group-readable key file is refused.
			os.Chmod(key, 0o644)
			code, _, errs = runCLI(t, "", "sign", "--key", key, "--password-file", pwFile, "x")
			if code != 1 || !strings.Contains(errs, "chmod 600") {
				t.Fatalf("insecure key file: %d %s", code, errs)
			}
			os.Chmod(key, 0o600)
		})
	}
}

func TestKeysNewStdoutAndPrompt(t *testing.T) {
	t.Setenv(passwordEnv, "") // restored after the test
	os.Unsetenv(passwordEnv)
	// No password source and no terminal: usage error.
	oldTerm := isTerminal
	isTerminal = func() bool { return false }
	code, _, errs := runCLI(t, "", "keys", "new", "--scrypt-log-n", "10")
	isTerminal = oldTerm
	if code != 2 || !strings.Contains(errs, "no password") {
		t.Fatalf("no password: %d %s", code, errs)
	}

	// A terminal prompt asks twice; a mismatch fails.
	isTerminal = func() bool { return true }
	answers := []string{"pw-one", "pw-two"}
	oldRead := readSecret
	readSecret = func() ([]byte, error) { a := answers[0]; answers = answers[1:]; return []byte(a), nil }
	defer func() { isTerminal, readSecret = oldTerm, oldRead }()
	code, _, errs = runCLI(t, "", "keys", "new", "--scrypt-log-n", "10")
	if code != 1 || !strings.Contains(errs, "do not match") {
		t.Fatalf("mismatch: %d %s", code, errs)
	}

	// Without --out the encrypted key file goes to stdout.
	answers = []string{"pw", "pw"}
	code, out, errs := runCLI(t, "", "keys", "new", "--curve", "p256", "--scrypt-log-n", "10")
	if code != 0 || !strings.Contains(errs, "public key:") {
		t.Fatalf("keys new to stdout: %d %s", code, errs)
	}
	priv, err := keys.DecryptKeyFile([]byte(out), []byte("pw"))
	if err != nil || priv.Curve() != keys.P256 {
		t.Fatalf("stdout key file: %v", err)
	}
	if strings.Contains(out+errs, priv.Encode()) {
		t.Fatal("private key printed")
	}
}
