package keys

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var testPassword = []byte("correct horse battery staple")

// testFileOpts keeps scrypt cheap in tests.
var testFileOpts = FileOptions{LogN: MinLogN}

func TestKeyFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, c := range curves {
		t.Run(c.String(), func(t *testing.T) {
			k := mustGenerate(t, c)
			path := filepath.Join(dir, c.String()+".key")
			if err := WriteFile(path, k, testPassword, testFileOpts); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Fatalf("mode %04o", fi.Mode().Perm())
			}
			data, _ := os.ReadFile(path)
			if bytes.Contains(data, []byte(k.Encode())) || bytes.Contains(data, []byte(strings.TrimPrefix(k.Encode(), "k1priv:"))) {
				t.Fatal("key file holds the private key in clear")
			}
			got, err := ReadFile(path, testPassword)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(k) {
				t.Fatal("read a different key")
			}
			pub, err := ReadPublicFile(path)
			if err != nil || !pub.Equal(k.Public()) {
				t.Fatalf("ReadPublicFile: %v", err)
			}

			// No temporary files are left behind.
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.Contains(e.Name(), ".tmp-") {
					t.Fatalf("leftover %s", e.Name())
				}
			}
		})
	}
}

func TestKeyFileRefusals(t *testing.T) {
	dir := t.TempDir()
	k := mustGenerate(t, Secp256k1)
	path := filepath.Join(dir, "id.key")
	if err := WriteFile(path, k, testPassword, testFileOpts); err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile(path)

	// Wrong password: opaque sentinel, no key material.
	_, err := ReadFile(path, []byte("wrong"))
	if !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := ReadFile(path, nil); !errors.Is(err, ErrEmptyPassword) {
		t.Fatalf("empty password: %v", err)
	}

	// No clobbering without Overwrite.
	k2 := mustGenerate(t, Secp256k1)
	if err := WriteFile(path, k2, testPassword, testFileOpts); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("overwrite without option: %v", err)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, orig) {
		t.Fatal("existing key file was modified")
	}
	opt := testFileOpts
	opt.Overwrite = true
	if err := WriteFile(path, k2, testPassword, opt); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadFile(path, testPassword); err != nil || !got.Equal(k2) {
		t.Fatalf("overwrite: %v", err)
	}

	// Group- or world-accessible files are refused.
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o602} {
		os.Chmod(path, mode)
		if _, err := ReadFile(path, testPassword); !errors.Is(err, ErrInsecureFile) {
			t.Fatalf("mode %04o: %v", mode, err)
		}
	}
	os.Chmod(path, 0o400)
	if _, err := ReadFile(path, testPassword); err != nil {
		t.Fatalf("mode 0400: %v", err)
	}
	if _, err := ReadFile(dir, testPassword); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("directory: %v", err)
	}

	// Work factor outside the cap, on write and on read.
	for _, n := range []int{MinLogN - 1, MaxLogN + 1} {
		if _, err := EncryptKeyFile(k, testPassword, FileOptions{LogN: n}); err == nil {
			t.Fatalf("logN %d accepted for writing", n)
		}
	}
	for _, n := range []string{"40", "21", "9", "15.5", "-1", "\"15\""} {
		data := bytes.Replace(orig, []byte(`"logN": 10`), []byte(`"logN": `+n), 1)
		if _, err := DecryptKeyFile(data, testPassword); !errors.Is(err, ErrKeyFile) {
			t.Fatalf("logN %s: %v", n, err)
		}
	}
}

func TestKeyFileTamper(t *testing.T) {
	k := mustGenerate(t, P256)
	other := mustGenerate(t, P256)
	data, err := EncryptKeyFile(k, testPassword, testFileOpts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecryptKeyFile(data, testPassword); err != nil {
		t.Fatal(err)
	}
	kf, err := parseKeyFile(data)
	if err != nil {
		t.Fatal(err)
	}
	replace := func(old, new string) []byte {
		out := bytes.Replace(data, []byte(old), []byte(new), 1)
		if bytes.Equal(out, data) {
			t.Fatalf("replace %q: no change", old)
		}
		return out
	}
	flip := func(b []byte) string {
		c := bytes.Clone(b)
		c[len(c)/2] ^= 1
		return b64url.EncodeToString(c)
	}
	// Each change must fail to decrypt (authenticated) or fail to parse.
	cases := map[string][]byte{
		"ciphertext": replace(b64url.EncodeToString(kf.ct), flip(kf.ct)),
		"nonce":      replace(b64url.EncodeToString(kf.nonce), flip(kf.nonce)),
		"salt":       replace(b64url.EncodeToString(kf.salt), flip(kf.salt)),
		"pub":        replace(k.Public().String(), other.Public().String()),
		"logN":       replace(`"logN": 10`, `"logN": 11`),
	}
	for name, d := range cases {
		_, err := DecryptKeyFile(d, testPassword)
		if !errors.Is(err, ErrWrongPassword) {
			t.Errorf("%s: %v", name, err)
		}
	}
	malformed := map[string][]byte{
		"curve":          replace(`"curve": "p256"`, `"curve": "secp256k1"`),
		"unknown member": replace(`"version": 1,`, `"version": 1, "extra": 1,`),
		"duplicate":      replace(`"version": 1,`, `"version": 1, "version": 1,`),
		"version":        replace(`"version": 1,`, `"version": 2,`),
		"aead":           replace(`xchacha20poly1305`, `aes-gcm`),
		"kdf":            replace(`"name": "scrypt"`, `"name": "argon2id"`),
		"r":              replace(`"r": 8`, `"r": 16`),
		"p":              replace(`"p": 1`, `"p": 2`),
		"padded nonce":   replace(b64url.EncodeToString(kf.nonce)+`"`, b64url.EncodeToString(kf.nonce)+`="`),
		"short ct":       replace(b64url.EncodeToString(kf.ct), b64url.EncodeToString(kf.ct[:47])),
		"not json":       []byte("hello"),
		"array":          []byte("[]"),
		"huge":           bytes.Repeat([]byte(" "), MaxKeyFileSize+1),
	}
	for name, d := range malformed {
		_, err := DecryptKeyFile(d, testPassword)
		if !errors.Is(err, ErrKeyFile) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzReadKeyFile(f *testing.F) {
	for _, c := range curves {
		k, _ := Generate(c)
		data, err := EncryptKeyFile(k, testPassword, testFileOpts)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"kdf":{"logN":40}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pub, err := KeyFilePublic(data)
		if err != nil {
			if !errors.Is(err, ErrKeyFile) {
				t.Fatalf("KeyFilePublic: unexpected error type %v", err)
			}
			return
		}
		if pub == nil {
			t.Fatal("nil pub without error")
		}
		priv, err := DecryptKeyFile(data, testPassword)
		switch {
		case err == nil:
			if !priv.Public().Equal(pub) {
				t.Fatal("decrypted key does not match pub")
			}
		case errors.Is(err, ErrWrongPassword), errors.Is(err, ErrKeyFile):
		default:
			t.Fatalf("DecryptKeyFile: unexpected error %v", err)
		}
	})
}
