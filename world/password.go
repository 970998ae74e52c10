package world

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/keys"
)

// Argon2id parameters of password worlds. The defaults follow RFC 9106's
// second recommended option (64 MiB, 3 passes, 1 lane: about 0.1–0.3 s on
// one core). The caps bound what a world record can make a joiner spend.
const (
	DefaultPasswordMemory  = 64 << 10  // KiB (64 MiB)
	DefaultPasswordTime    = 3         // passes
	DefaultPasswordThreads = 1         // lanes
	MaxPasswordMemory      = 256 << 10 // KiB (256 MiB)
	MaxPasswordTime        = 10
	MaxPasswordThreads     = 4
	// MinPasswordMemory and MinPasswordTime are floors for tests; real
	// worlds use the defaults.
	MinPasswordMemory = 1 << 10 // KiB (1 MiB)
	MinPasswordTime   = 1

	// MaxWorldName bounds a password world's name, in bytes.
	MaxWorldName = 256
	// passwordSaltSize is the size of the salt derived from the name.
	passwordSaltSize = 16
	passwordKDF      = "argon2id"
)

// PasswordParams are the Argon2id cost parameters. Zero fields take the
// defaults.
type PasswordParams struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8  // lanes
}

func (p PasswordParams) resolved() (PasswordParams, error) {
	if p.Memory == 0 {
		p.Memory = DefaultPasswordMemory
	}
	if p.Time == 0 {
		p.Time = DefaultPasswordTime
	}
	if p.Threads == 0 {
		p.Threads = DefaultPasswordThreads
	}
	if p.Memory < MinPasswordMemory || p.Memory > MaxPasswordMemory ||
		p.Time < MinPasswordTime || p.Time > MaxPasswordTime ||
		p.Threads > MaxPasswordThreads || p.Memory < 8*uint32(p.Threads) {
		return p, fmt.Errorf("%w: m=%d KiB t=%d p=%d (caps: m ≤ %d KiB, t ≤ %d, p ≤ %d)",
			ErrParams, p.Memory, p.Time, p.Threads, MaxPasswordMemory, MaxPasswordTime, MaxPasswordThreads)
	}
	return p, nil
}

// PasswordInfo is what a password world publishes in its world record:
// the KDF, its parameters, the salt and the curve of the derived owner key.
// It holds nothing secret. Its text form is
//
//	{"kdf":"argon2id","m":<KiB>,"t":<passes>,"p":<lanes>,"salt":"<base64url>","curve":"secp256k1"|"p256"}
type PasswordInfo struct {
	Params PasswordParams
	Salt   []byte
	Curve  keys.Curve
}

func (pi *PasswordInfo) String() string {
	o := &jsjson.Object{
		Keys: []string{"kdf", "m", "t", "p", "salt", "curve"},
		Values: []any{passwordKDF, float64(pi.Params.Memory), float64(pi.Params.Time), float64(pi.Params.Threads),
			base64.RawURLEncoding.EncodeToString(pi.Salt), pi.Curve.String()},
	}
	return string(jsjson.Append(nil, o))
}

// parsePasswordInfo decodes and range-checks the text form.
func parsePasswordInfo(s string) (*PasswordInfo, error) {
	v, err := jsjson.Parse([]byte(s), recordLimits)
	if err != nil {
		return nil, err
	}
	o, err := exactObject(v, "kdf", "m", "t", "p", "salt", "curve")
	if err != nil {
		return nil, err
	}
	if k, _ := o.str("kdf"); k != passwordKDF {
		return nil, fmt.Errorf("unknown kdf %q", k)
	}
	m, ok1 := o.number("m")
	t, ok2 := o.number("t")
	p, ok3 := o.number("p")
	if !ok1 || !ok2 || !ok3 || !wholeMs(m) || !wholeMs(t) || !wholeMs(p) || m > MaxPasswordMemory || t > MaxPasswordTime || p > MaxPasswordThreads {
		return nil, ErrParams
	}
	pi := &PasswordInfo{Params: PasswordParams{Memory: uint32(m), Time: uint32(t), Threads: uint8(p)}}
	if pi.Params, err = pi.Params.resolved(); err != nil {
		return nil, err
	}
	var ok bool
	if pi.Salt, ok = o.bytes("salt"); !ok || len(pi.Salt) != passwordSaltSize {
		return nil, errors.New("salt must be 16 bytes")
	}
	c, _ := o.str("curve")
	if pi.Curve, err = keys.ParseCurve(c); err != nil {
		return nil, err
	}
	return pi, nil
}

// PasswordSalt returns the salt of the password world called name: the
// first 16 bytes of SHA-256(keys.Message("world.salt", name)). It depends
// on the name only, so that a name and a password are all a joiner needs
// (no lookup, no directory anyone could squat).
func PasswordSalt(name string) []byte {
	h := sha256.Sum256(keys.Message(labelSalt, []byte(name)))
	return h[:passwordSaltSize]
}

// PasswordKeys is what a name and password derive: the instance owner key
// (held by everyone who knows the password), the instance id and the key of
// epoch 1.
type PasswordKeys struct {
	Name     string
	Owner    *keys.Private
	Instance string
	Key      *ContentKey
	Info     PasswordInfo
}

// Keyring returns a keyring holding the world's one key.
func (pk *PasswordKeys) Keyring() *Keyring {
	r, _ := NewKeyring(pk.Instance, pk.Key)
	return r
}

// PasswordWorld derives a password world from its name and password:
//
//	salt  = PasswordSalt(name)
//	seed  = Argon2id(password, salt, t, m, p, 32 bytes)
//	owner = the first scalar in [1, n−1] among
//	        HKDF-SHA256(seed, info = keys.Message("world.password", "owner", curve, name, counter (4 bytes BE)))
//	        for counter = 0, 1, …  (instance id = its public key text)
//	key   = epoch 1 with secret HKDF-SHA256(seed, info = keys.Message("world.password", "content", instance))
//
// The parameters must be the same for everyone (zero values take the
// defaults) and are refused above the caps. curve 0 means secp256k1.
//
// A password world is weaker than a key-based one; see "Password worlds"
// in the package documentation.
func PasswordWorld(name string, password []byte, params PasswordParams, curve keys.Curve) (*PasswordKeys, error) {
	if name == "" || len(name) > MaxWorldName || !utf8.ValidString(name) {
		return nil, fmt.Errorf("world: password world name must be 1–%d bytes of UTF-8", MaxWorldName)
	}
	if len(password) == 0 {
		return nil, errors.New("world: empty password")
	}
	if curve == 0 {
		curve = keys.Secp256k1
	}
	if curve != keys.Secp256k1 && curve != keys.P256 {
		return nil, fmt.Errorf("world: unknown curve %v", curve)
	}
	p, err := params.resolved()
	if err != nil {
		return nil, err
	}
	salt := PasswordSalt(name)
	seed := argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, 32)
	defer clear(seed)

	var owner *keys.Private
	for ctr := uint32(0); owner == nil; ctr++ {
		if ctr == 64 {
			return nil, errors.New("world: no valid scalar derived") // probability about 2^-8000
		}
		info := keys.Message(labelPassword, []byte("owner"), []byte(curve.String()), []byte(name),
			[]byte{byte(ctr >> 24), byte(ctr >> 16), byte(ctr >> 8), byte(ctr)})
		d, err := hkdf.Key(sha256.New, seed, nil, string(info), 32)
		if err != nil {
			return nil, err
		}
		text := base64.RawURLEncoding.EncodeToString(d)
		clear(d)
		if curve == keys.Secp256k1 {
			text = "k1priv:" + text
		}
		owner, _ = keys.ParsePrivate(text)
	}
	inst := owner.Public().String()
	secret, err := hkdf.Key(sha256.New, seed, nil, string(keys.Message(labelPassword, []byte("content"), []byte(inst))), SecretSize)
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	k, err := newContentKey(inst, 1, secret)
	if err != nil {
		return nil, err
	}
	return &PasswordKeys{Name: name, Owner: owner, Instance: inst, Key: k,
		Info: PasswordInfo{Params: p, Salt: salt, Curve: curve}}, nil
}

// PlanCreatePassword returns the writes that make a password world's
// instance private and publish its world record (epoch 1, with the KDF
// parameters). No key is wrapped: everyone derives it.
func PlanCreatePassword(pk *PasswordKeys, state float64) (graph.Graph, error) {
	s := &signer{a: Admin{Key: pk.Owner}, state: state, g: graph.Graph{}}
	s.put(RootSoul(pk.Instance), fieldPrivate, graph.Bool(true))
	s.put(WorldSoul(pk.Instance), fieldVersion, graph.Number(recordVersion))
	s.put(WorldSoul(pk.Instance), fieldCreated, graph.Number(float64(int64(state))))
	s.put(WorldSoul(pk.Instance), fieldPassword, graph.String(pk.Info.String()))
	s.put(WorldSoul(pk.Instance), fieldEpoch, graph.Number(1))
	return s.g, s.err
}

// CreatePassword writes a password world's records to s, unless they are
// there already (anyone with the password may call it; the second call
// changes nothing).
func CreatePassword(ctx context.Context, s Store, pk *PasswordKeys) error {
	if w, err := Load(ctx, s, pk.Instance); err == nil {
		if w.Password == nil {
			return fmt.Errorf("world: %s is a key-based world", pk.Instance)
		}
		return nil
	} else if !errors.Is(err, ErrNotWorld) {
		return err
	}
	g, err := PlanCreatePassword(pk, s.Now())
	if err != nil {
		return err
	}
	return s.Put(ctx, g)
}

// String describes the parameters.
func (p PasswordParams) String() string {
	return "argon2id m=" + strconv.FormatUint(uint64(p.Memory), 10) + "KiB t=" +
		strconv.FormatUint(uint64(p.Time), 10) + " p=" + strconv.FormatUint(uint64(p.Threads), 10)
}
