package keys

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/scrypt"

	"github.com/krestianstvo/luminary/internal/jsjson"
)

// Key file format, version 1. A key file is a small JSON object:
//
//	{
//	  "version": 1,
//	  "curve": "secp256k1",                 // or "p256"
//	  "pub": "k1:…",                        // public key text, readable without the password
//	  "kdf": {"name": "scrypt", "logN": 15, "r": 8, "p": 1, "salt": "…"},
//	  "aead": "xchacha20poly1305",
//	  "nonce": "…",                         // 24 bytes
//	  "ciphertext": "…"                     // 32-byte scalar + 16-byte tag
//	}
//
// All binary values are unpadded base64url and must be canonical. The AEAD
// key is scrypt(password, salt', N=2^logN, r=8, p=1, 32 bytes) where salt' =
// Message("keyfile/scrypt", salt); the associated data is
// Message("keyfile", "1", curve, pub), so the public key, curve and version
// cannot be swapped without the decryption failing. logN must be in
// [MinLogN, MaxLogN]; r and p are fixed. Members are exact: unknown, missing
// or duplicate members are refused. There is no unencrypted variant.
const (
	keyFileVersion = 1
	kdfName        = "scrypt"
	aeadName       = "xchacha20poly1305"
	scryptR        = 8
	scryptP        = 1
	saltSize       = 16

	// DefaultLogN is the scrypt work factor used when FileOptions.LogN is 0
	// (2^15 iterations, 32 MiB of memory, about 0.1 s).
	DefaultLogN = 15
	// MinLogN is the lowest accepted work factor (for tests and fuzzing; do
	// not use it for real keys).
	MinLogN = 10
	// MaxLogN caps the work factor a key file may demand (2^20: 1 GiB of
	// memory), so a hostile file cannot make loading run for hours.
	MaxLogN = 20

	// MaxKeyFileSize bounds what ReadFile and DecryptKeyFile read.
	MaxKeyFileSize = 4096
)

// Key file errors.
var (
	// ErrInsecureFile is returned by ReadFile when the key file can be read
	// or written by its group or by others (mode & 0o077 != 0).
	ErrInsecureFile = errors.New("keys: key file is accessible by group or others (chmod 600 it)")

	// ErrWrongPassword is returned when the key file does not decrypt: the
	// password is wrong or the file was modified. It carries no detail.
	ErrWrongPassword = errors.New("keys: wrong password or modified key file")

	// ErrKeyFile is returned (wrapped, with the reason) for a malformed key
	// file, including a work factor above MaxLogN.
	ErrKeyFile = errors.New("invalid: key file")

	// ErrEmptyPassword is returned when encrypting or decrypting with an
	// empty password.
	ErrEmptyPassword = errors.New("keys: empty password")
)

// FileOptions tunes WriteFile and EncryptKeyFile. The zero value is the
// default.
type FileOptions struct {
	// LogN is the scrypt work factor, log2(N); 0 means DefaultLogN. It must
	// be within [MinLogN, MaxLogN].
	LogN int
	// Overwrite allows WriteFile to replace an existing file. By default an
	// existing file is never touched and WriteFile fails with an error
	// matching fs.ErrExist.
	Overwrite bool
}

// EncryptKeyFile returns the bytes of a key file holding priv encrypted
// under password.
func EncryptKeyFile(priv *Private, password []byte, opt FileOptions) ([]byte, error) {
	if priv == nil {
		return nil, errors.New("keys: encrypt key file: nil key")
	}
	if len(password) == 0 {
		return nil, ErrEmptyPassword
	}
	logN := opt.LogN
	if logN == 0 {
		logN = DefaultLogN
	}
	if logN < MinLogN || logN > MaxLogN {
		return nil, fmt.Errorf("keys: scrypt logN %d outside [%d, %d]", logN, MinLogN, MaxLogN)
	}
	var salt [saltSize]byte
	var nonce [chacha20poly1305.NonceSizeX]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, err
	}
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	aead, err := keyFileAEAD(password, salt[:], logN)
	if err != nil {
		return nil, err
	}
	curve, pub := priv.curve.String(), priv.pub.text
	var d [32]byte
	priv.scalar(&d)
	ct := aead.Seal(nil, nonce[:], d[:], keyFileAAD(curve, pub))
	clear(d[:])

	var b bytes.Buffer
	b.WriteString("{\n  \"version\": " + strconv.Itoa(keyFileVersion) + ",\n")
	b.WriteString("  \"curve\": \"" + curve + "\",\n")
	b.WriteString("  \"pub\": \"" + pub + "\",\n")
	b.WriteString("  \"kdf\": {\"name\": \"" + kdfName + "\", \"logN\": " + strconv.Itoa(logN) +
		", \"r\": " + strconv.Itoa(scryptR) + ", \"p\": " + strconv.Itoa(scryptP) +
		", \"salt\": \"" + b64url.EncodeToString(salt[:]) + "\"},\n")
	b.WriteString("  \"aead\": \"" + aeadName + "\",\n")
	b.WriteString("  \"nonce\": \"" + b64url.EncodeToString(nonce[:]) + "\",\n")
	b.WriteString("  \"ciphertext\": \"" + b64url.EncodeToString(ct) + "\"\n}\n")
	return b.Bytes(), nil
}

// keyFile is a parsed key file before decryption.
type keyFile struct {
	curve Curve
	pub   *Public
	logN  int
	salt  []byte
	nonce []byte
	ct    []byte
}

// KeyFilePublic returns the public key recorded in a key file without
// decrypting it. It checks the whole structure, so a file it accepts is one
// DecryptKeyFile can at least try.
func KeyFilePublic(data []byte) (*Public, error) {
	kf, err := parseKeyFile(data)
	if err != nil {
		return nil, err
	}
	return kf.pub, nil
}

// DecryptKeyFile decrypts the bytes of a key file. A wrong password or any
// change to the file's authenticated parts yields ErrWrongPassword.
func DecryptKeyFile(data, password []byte) (*Private, error) {
	if len(password) == 0 {
		return nil, ErrEmptyPassword
	}
	kf, err := parseKeyFile(data)
	if err != nil {
		return nil, err
	}
	aead, err := keyFileAEAD(password, kf.salt, kf.logN)
	if err != nil {
		return nil, err
	}
	d, err := aead.Open(nil, kf.nonce, kf.ct, keyFileAAD(kf.curve.String(), kf.pub.text))
	if err != nil {
		return nil, ErrWrongPassword
	}
	defer clear(d)
	var scalar [32]byte
	defer clear(scalar[:])
	copy(scalar[:], d) // the AEAD guarantees 32 bytes
	var priv *Private
	switch kf.curve {
	case Secp256k1:
		priv, err = k1FromScalar(&scalar)
	case P256:
		priv, err = p256FromScalar(&scalar)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: bad private scalar", ErrKeyFile)
	}
	if !priv.pub.Equal(kf.pub) {
		return nil, fmt.Errorf("%w: private key does not match pub", ErrKeyFile)
	}
	return priv, nil
}

func keyFileAAD(curve, pub string) []byte {
	return Message("keyfile", []byte(strconv.Itoa(keyFileVersion)), []byte(curve), []byte(pub))
}

func keyFileAEAD(password, salt []byte, logN int) (cipher.AEAD, error) {
	k, err := scrypt.Key(password, Message("keyfile/scrypt", salt), 1<<logN, scryptR, scryptP, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("keys: scrypt: %w", err)
	}
	defer clear(k)
	return chacha20poly1305.NewX(k)
}

func parseKeyFile(data []byte) (*keyFile, error) {
	bad := func(why string) error { return fmt.Errorf("%w: %s", ErrKeyFile, why) }
	if len(data) > MaxKeyFileSize {
		return nil, bad("larger than " + strconv.Itoa(MaxKeyFileSize) + " bytes")
	}
	v, err := jsjson.Parse(data, jsjson.Limits{MaxBytes: MaxKeyFileSize, MaxDepth: 2, MaxMembers: 8, MaxElements: 1})
	if err != nil {
		return nil, bad("not strict JSON")
	}
	top, ok := v.(*jsjson.Object)
	if !ok {
		return nil, bad("not a JSON object")
	}
	if err := exactMembers(top, "version", "curve", "pub", "kdf", "aead", "nonce", "ciphertext"); err != nil {
		return nil, bad(err.Error())
	}
	kf := &keyFile{}
	if n, ok := intMember(top, "version"); !ok || n != keyFileVersion {
		return nil, bad("unsupported version")
	}
	curve, _ := top.Get("curve")
	switch curve {
	case "secp256k1":
		kf.curve = Secp256k1
	case "p256":
		kf.curve = P256
	default:
		return nil, bad("unknown curve")
	}
	pubText, ok := stringMember(top, "pub")
	if !ok {
		return nil, bad("pub is not a string")
	}
	if kf.pub, err = ParsePublic(pubText); err != nil {
		return nil, bad("pub: " + err.Error())
	}
	if kf.pub.curve != kf.curve {
		return nil, bad("pub is not on the stated curve")
	}
	kdfV, _ := top.Get("kdf")
	kdf, ok := kdfV.(*jsjson.Object)
	if !ok {
		return nil, bad("kdf is not an object")
	}
	if err := exactMembers(kdf, "name", "logN", "r", "p", "salt"); err != nil {
		return nil, bad("kdf: " + err.Error())
	}
	if name, _ := stringMember(kdf, "name"); name != kdfName {
		return nil, bad("kdf name is not scrypt")
	}
	logN, ok := intMember(kdf, "logN")
	if !ok || logN < MinLogN || logN > MaxLogN {
		return nil, bad(fmt.Sprintf("scrypt logN must be an integer in [%d, %d]", MinLogN, MaxLogN))
	}
	kf.logN = logN
	if r, ok := intMember(kdf, "r"); !ok || r != scryptR {
		return nil, bad("scrypt r must be 8")
	}
	if p, ok := intMember(kdf, "p"); !ok || p != scryptP {
		return nil, bad("scrypt p must be 1")
	}
	if kf.salt, ok = bytesMember(kdf, "salt", saltSize); !ok {
		return nil, bad("salt must be 16 bytes of canonical base64url")
	}
	if a, _ := stringMember(top, "aead"); a != aeadName {
		return nil, bad("aead is not xchacha20poly1305")
	}
	if kf.nonce, ok = bytesMember(top, "nonce", chacha20poly1305.NonceSizeX); !ok {
		return nil, bad("nonce must be 24 bytes of canonical base64url")
	}
	if kf.ct, ok = bytesMember(top, "ciphertext", 32+chacha20poly1305.Overhead); !ok {
		return nil, bad("ciphertext must be 48 bytes of canonical base64url")
	}
	return kf, nil
}

// exactMembers checks that obj has exactly the named members (Parse already
// refused duplicates).
func exactMembers(obj *jsjson.Object, names ...string) error {
	if obj.Len() != len(names) {
		for _, k := range obj.Keys {
			found := false
			for _, n := range names {
				found = found || n == k
			}
			if !found {
				return fmt.Errorf("unknown member %q", k)
			}
		}
	}
	for _, n := range names {
		if _, ok := obj.Get(n); !ok {
			return fmt.Errorf("missing member %q", n)
		}
	}
	return nil
}

func stringMember(obj *jsjson.Object, k string) (string, bool) {
	v, _ := obj.Get(k)
	s, ok := v.(string)
	return s, ok
}

func intMember(obj *jsjson.Object, k string) (int, bool) {
	v, _ := obj.Get(k)
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || f < 0 || f > 1<<20 {
		return 0, false
	}
	return int(f), true
}

func bytesMember(obj *jsjson.Object, k string, size int) ([]byte, bool) {
	s, ok := stringMember(obj, k)
	if !ok || len(s) != b64url.EncodedLen(size) {
		return nil, false
	}
	b := make([]byte, size)
	n, err := b64url.Decode(b, []byte(s))
	return b, err == nil && n == size
}

// WriteFile encrypts priv under password and writes it to path atomically:
// a temporary file with mode 0600 in the same directory is written and
// fsynced, then linked (or, with opt.Overwrite, renamed) into place, and the
// directory is fsynced. Without opt.Overwrite an existing path is left alone
// and the error matches fs.ErrExist.
func WriteFile(path string, priv *Private, password []byte, opt FileOptions) error {
	data, err := EncryptKeyFile(priv, password, opt)
	if err != nil {
		return err
	}
	return writeAtomic(path, data, opt.Overwrite)
}

func writeAtomic(path string, data []byte, overwrite bool) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("keys: write key file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return fmt.Errorf("keys: write key file: %w", err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("keys: write key file: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("keys: write key file: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("keys: write key file: %w", err)
	}
	if overwrite {
		if err = os.Rename(tmp, path); err != nil {
			return fmt.Errorf("keys: write key file: %w", err)
		}
	} else {
		// A hard link fails if path exists, so an existing key is never
		// replaced, not even by a concurrent writer.
		if err = os.Link(tmp, path); err != nil {
			return fmt.Errorf("keys: write key file: %w", err)
		}
		os.Remove(tmp)
	}
	if err = syncDir(dir); err != nil {
		return fmt.Errorf("keys: write key file: sync directory: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ReadFile loads and decrypts a key file. It refuses a file that is not a
// regular file or whose mode lets group or others read or write it
// (ErrInsecureFile), a malformed file or an excessive work factor
// (ErrKeyFile), and a wrong password (ErrWrongPassword). Errors never
// contain key material.
func ReadFile(path string, password []byte) (*Private, error) {
	data, err := readKeyFile(path, true)
	if err != nil {
		return nil, err
	}
	priv, err := DecryptKeyFile(data, password)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return priv, nil
}

// ReadPublicFile returns the public key recorded in a key file; it needs no
// password and does not check the file mode.
func ReadPublicFile(path string) (*Public, error) {
	data, err := readKeyFile(path, false)
	if err != nil {
		return nil, err
	}
	pub, err := KeyFilePublic(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pub, nil
}

func readKeyFile(path string, checkMode bool) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrKeyFile, path)
	}
	if checkMode && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %04o: %w", path, fi.Mode().Perm(), ErrInsecureFile)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if len(data) > MaxKeyFileSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrKeyFile, path, MaxKeyFileSize)
	}
	return data, nil
}
