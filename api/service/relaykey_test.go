package service_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/krestianstvo/luminary/api/service"
	"github.com/krestianstvo/luminary/keys"
)

// TestRelayKeyFile: the relay key is created on the first start (mode
// 0600, with a generated password in relay.key.pass, also 0600), reopened
// on the next, and refused when a file is readable by others or the
// password is wrong.
func TestRelayKeyFile(t *testing.T) {
	dir := t.TempDir()
	k1, created, err := service.LoadRelayKey(dir, nil, keys.MinLogN)
	if err != nil || !created {
		t.Fatalf("first start: %v %v", created, err)
	}
	for _, name := range []string{service.RelayKeyFile, service.RelayKeyPassFile} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v", name, st.Mode().Perm())
		}
	}
	k2, created, err := service.LoadRelayKey(dir, nil, keys.MinLogN)
	if err != nil || created || !k2.Equal(k1) {
		t.Fatalf("second start: %v %v", created, err)
	}
	if _, _, err := service.LoadRelayKey(dir, []byte("not the password"), keys.MinLogN); !errors.Is(err, keys.ErrWrongPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if err := os.Chmod(filepath.Join(dir, service.RelayKeyPassFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := service.LoadRelayKey(dir, nil, keys.MinLogN); !errors.Is(err, service.ErrInsecurePassFile) {
		t.Fatalf("world-readable password file: %v", err)
	}
	if err := os.Chmod(filepath.Join(dir, service.RelayKeyPassFile), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, service.RelayKeyFile), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, _, err := service.LoadRelayKey(dir, nil, keys.MinLogN); !errors.Is(err, keys.ErrInsecureFile) {
		t.Fatalf("group-readable key file: %v", err)
	}

	// With a password from the environment no password file is written.
	dir2 := t.TempDir()
	if _, created, err := service.LoadRelayKey(dir2, []byte("correct horse battery"), keys.MinLogN); err != nil || !created {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir2, service.RelayKeyPassFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("password file written although a password was given: %v", err)
	}
	if _, _, err := service.LoadRelayKey(dir2, nil, keys.MinLogN); err == nil {
		t.Fatal("opened without the password")
	}
}
