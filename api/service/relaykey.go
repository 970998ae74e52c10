package service

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/krestianstvo/luminary/keys"
)

// The relay key: the identity the relay signs ticks, certificates and
// logins with. It lives in <data>/relay.key, a keys key file (scrypt +
// XChaCha20-Poly1305, mode 0600, written atomically), created on the first
// start.
//
// Its password comes from, in order:
//
//  1. Config.KeyPassword (the command line passes LUMINARY_RELAY_KEY_PASSWORD);
//  2. the file <data>/relay.key.pass (first line), which the relay writes on
//     the first start when no password was given: 32 random bytes in
//     base64url, mode 0600.
//
// With (2) the key is only as safe as the data directory's file modes, as
// any unattended service key is; the encryption then still keeps the key
// out of a copy of relay.key alone (a backup, a log attachment). Both files
// are refused when group or others may read them (keys.ErrInsecureFile
// for the key; the same rule for the password file), so a careless chmod
// stops the relay instead of leaking the key. Operators who want the key
// encrypted at rest with a secret that is not on the disk set
// LUMINARY_RELAY_KEY_PASSWORD and delete relay.key.pass.

// RelayKeyFile and RelayKeyPassFile are the file names under the data
// directory.
const (
	RelayKeyFile     = "relay.key"
	RelayKeyPassFile = "relay.key.pass"
)

// ErrInsecurePassFile reports a password file readable by group or others.
var ErrInsecurePassFile = errors.New("service: relay key password file must not be readable by group or others (chmod 600)")

// LoadRelayKey opens <dir>/relay.key, creating it (and, without a
// password, relay.key.pass) on the first start. It reports whether the key
// was created.
func LoadRelayKey(dir string, password []byte, logN int) (*keys.Private, bool, error) {
	keyPath := filepath.Join(dir, RelayKeyFile)
	passPath := filepath.Join(dir, RelayKeyPassFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("service: data directory: %w", err)
	}
	_, statErr := os.Stat(keyPath)
	exists := statErr == nil
	if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("service: relay key: %w", statErr)
	}
	if len(password) == 0 {
		p, err := readPassFile(passPath)
		switch {
		case err == nil:
			password = p
		case errors.Is(err, fs.ErrNotExist) && !exists:
			var b [32]byte
			if _, err := rand.Read(b[:]); err != nil {
				return nil, false, fmt.Errorf("service: relay key password: %w", err)
			}
			password = []byte(base64.RawURLEncoding.EncodeToString(b[:]))
			if err := writeNew(passPath, append(append([]byte(nil), password...), '\n')); err != nil {
				return nil, false, fmt.Errorf("service: relay key password file: %w", err)
			}
		case errors.Is(err, fs.ErrNotExist):
			return nil, false, fmt.Errorf("service: %s exists but there is no password: set LUMINARY_RELAY_KEY_PASSWORD or restore %s", keyPath, RelayKeyPassFile)
		default:
			return nil, false, err
		}
	}
	if exists {
		k, err := keys.ReadFile(keyPath, password)
		if err != nil {
			return nil, false, fmt.Errorf("service: relay key %s: %w", keyPath, err)
		}
		return k, false, nil
	}
	k, err := keys.Generate(keys.Secp256k1)
	if err != nil {
		return nil, false, err
	}
	if err := keys.WriteFile(keyPath, k, password, keys.FileOptions{LogN: logN}); err != nil {
		return nil, false, fmt.Errorf("service: write relay key: %w", err)
	}
	return k, true, nil
}

// readPassFile reads the first line of a password file, refusing files that
// group or others may read.
func readPassFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %v", ErrInsecurePassFile, path, st.Mode().Perm())
	}
	buf := make([]byte, 4096)
	n, _ := f.Read(buf)
	line, _, _ := strings.Cut(string(buf[:n]), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return nil, fmt.Errorf("service: %s: first line is empty", path)
	}
	return []byte(line), nil
}

// writeNew creates path with mode 0600 and data, failing if it exists, and
// syncs it.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
