package keys

import (
	"errors"
	"fmt"

	"github.com/krestianstvo/luminary/internal/jsjson"
)

// Pair is a SEA key pair: a signing key (Pub/Priv) and a separate ECDH key
// (EPub/EPriv), as gun.js SEA.pair() makes them. The private halves are nil
// for a pair known only by its public keys.
type Pair struct {
	Pub   *Public
	Priv  *Private
	EPub  *Public
	EPriv *Private
}

// ErrPair is returned (wrapped) by ParseSEAPair for malformed pair JSON or
// halves that do not belong together.
var ErrPair = errors.New("invalid: key pair")

// maxPairJSON bounds the pair JSON that ParseSEAPair reads.
const maxPairJSON = 1024

// GeneratePair creates a pair with two independent keys on curve c.
func GeneratePair(c Curve) (*Pair, error) {
	sk, err := Generate(c)
	if err != nil {
		return nil, err
	}
	ek, err := Generate(c)
	if err != nil {
		return nil, err
	}
	return &Pair{Pub: sk.Public(), Priv: sk, EPub: ek.Public(), EPriv: ek}, nil
}

// ParseSEAPair reads gun's pair JSON {"pub","priv","epub","epriv"}. Members
// other than these four are refused, "pub" is required, and every private
// half must match its public half (a missing public half is derived). The
// error never contains key material.
func ParseSEAPair(data []byte) (*Pair, error) {
	v, err := jsjson.Parse(data, jsjson.Limits{MaxBytes: maxPairJSON, MaxDepth: 1, MaxMembers: 4})
	if err != nil {
		return nil, fmt.Errorf("%w: not a JSON object of at most four members", ErrPair)
	}
	obj, ok := v.(*jsjson.Object)
	if !ok {
		return nil, fmt.Errorf("%w: not a JSON object", ErrPair)
	}
	var text [4]string
	for i, k := range obj.Keys {
		s, ok := obj.Values[i].(string)
		if !ok {
			return nil, fmt.Errorf("%w: member %q is not a string", ErrPair, k)
		}
		switch k {
		case "pub":
			text[0] = s
		case "priv":
			text[1] = s
		case "epub":
			text[2] = s
		case "epriv":
			text[3] = s
		default:
			return nil, fmt.Errorf("%w: unknown member %q", ErrPair, k)
		}
	}
	if text[0] == "" {
		return nil, fmt.Errorf("%w: missing pub", ErrPair)
	}
	p := &Pair{}
	if p.Pub, p.Priv, err = parseHalves(text[0], text[1]); err != nil {
		return nil, err
	}
	if text[2] != "" || text[3] != "" {
		if p.EPub, p.EPriv, err = parseHalves(text[2], text[3]); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func parseHalves(pubText, privText string) (*Public, *Private, error) {
	var pub *Public
	var err error
	if pubText != "" {
		if pub, err = ParsePublic(pubText); err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrPair, err)
		}
	}
	if privText == "" {
		return pub, nil, nil
	}
	priv, err := ParsePrivate(privText)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrPair, err)
	}
	if pub == nil {
		return priv.Public(), priv, nil
	}
	if !pub.Equal(priv.Public()) {
		return nil, nil, fmt.Errorf("%w: private key does not match its public key", ErrPair)
	}
	return pub, priv, nil
}

// SEAJSON returns the pair as gun's JSON {"pub","priv","epub","epriv"} with
// absent halves left out. The result holds secrets: never log it.
func (p *Pair) SEAJSON() []byte {
	obj := &jsjson.Object{}
	add := func(k string, v string) {
		if v != "" {
			obj.Set(k, v)
		}
	}
	if p.Pub != nil {
		add("pub", p.Pub.String())
	}
	if p.Priv != nil {
		add("priv", p.Priv.Encode())
	}
	if p.EPub != nil {
		add("epub", p.EPub.String())
	}
	if p.EPriv != nil {
		add("epriv", p.EPriv.Encode())
	}
	return jsjson.Append(nil, obj)
}

// String describes the pair by its public keys only.
func (p *Pair) String() string {
	s := "pair"
	if p.Pub != nil {
		s += " pub=" + p.Pub.String()
	}
	if p.EPub != nil {
		s += " epub=" + p.EPub.String()
	}
	return s
}
