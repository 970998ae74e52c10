package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/krestianstvo/luminary/keys"
)

// LoginLabel is the keys.Message label of login signatures.
const LoginLabel = "login"

// NonceSize is the size of a login challenge nonce.
const NonceSize = 32

// Peer is what the relay knows about one connection: the keys it has proved
// by logging in, its pending challenge and its failed logins. The zero value
// is a connection that has not logged in. It is safe for concurrent use.
type Peer struct {
	mu      sync.Mutex
	keys    []*keys.Public
	pending *Challenge
	strikes int
}

// NewPeer returns a Peer that has not logged in.
func NewPeer() *Peer { return &Peer{} }

// Keys returns the keys the connection has logged in with, oldest first.
func (p *Peer) Keys() []*keys.Public {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*keys.Public(nil), p.keys...)
}

// LoggedIn reports whether the connection has proved the key with text pub.
func (p *Peer) LoggedIn(pub string) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range p.keys {
		if k.String() == pub {
			return true
		}
	}
	return false
}

// Strikes returns the number of failed logins on the connection.
func (p *Peer) Strikes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.strikes
}

// Challenge is what the relay sends a connection that wants to log in. It
// is good for one response on that connection only, within the login window.
type Challenge struct {
	Nonce    [NonceSize]byte
	Relay    string    // the relay's public key text (Config.RelayID)
	IssuedAt time.Time // relay clock, millisecond precision
}

// Response is a connection's answer to a Challenge: a signature, by the key
// it logs in with, over
//
//	keys.Message("login", nonce, relay, time in ms as decimal text)
//
// Binding the relay's identity stops a response being replayed to another
// relay; the nonce is fresh per challenge and connection, and Time bounds
// how long an answer is good.
type Response struct {
	Pub   string          // the key text being proved
	Nonce [NonceSize]byte // the challenge's nonce
	Relay string          // the relay the response is for
	Time  time.Time       // the responder's clock, millisecond precision
	Sig   []byte          // 64-byte r‖s
}

// LoginMessage returns the bytes a login response signs.
func LoginMessage(nonce [NonceSize]byte, relay string, t time.Time) []byte {
	return keys.Message(LoginLabel, nonce[:], []byte(relay), strconv.AppendInt(nil, t.UnixMilli(), 10))
}

// Challenge creates a fresh challenge for peer and remembers it as the
// peer's only pending challenge (replacing any earlier one).
func (c *Checker) Challenge(peer *Peer) (Challenge, error) {
	var ch Challenge
	if _, err := rand.Read(ch.Nonce[:]); err != nil {
		return Challenge{}, fmt.Errorf("auth: challenge: %w", err)
	}
	ch.Relay = c.cfg.RelayID
	ch.IssuedAt = time.UnixMilli(c.cfg.Clock.Now().UnixMilli())
	peer.mu.Lock()
	p := ch
	peer.pending = &p
	peer.mu.Unlock()
	return ch, nil
}

// Respond answers a challenge with priv: the client side of login. now is
// the client's clock.
func Respond(priv *keys.Private, ch Challenge, now time.Time) (Response, error) {
	t := time.UnixMilli(now.UnixMilli())
	sig, err := priv.Sign(LoginMessage(ch.Nonce, ch.Relay, t))
	if err != nil {
		return Response{}, fmt.Errorf("auth: respond: %w", err)
	}
	return Response{Pub: priv.Public().String(), Nonce: ch.Nonce, Relay: ch.Relay, Time: t, Sig: sig}, nil
}

// Login checks a response against peer's pending challenge and, if it is
// good, adds the key to the peer. The pending challenge is used up by any
// attempt, good or bad, so a response can never be replayed. A refusal is a
// *Refusal with the "auth-required:" prefix; it counts a strike on the peer,
// and from the MaxLoginStrikes-th strike on it is joined with
// ErrTooManyStrikes, telling the caller to close the connection (1008).
func (c *Checker) Login(peer *Peer, resp Response) error {
	now := c.cfg.Clock.Now()
	peer.mu.Lock()
	pending := peer.pending
	peer.pending = nil
	peer.mu.Unlock()

	r := c.judgeLogin(pending, resp, now)
	if r == nil {
		pub, err := c.keys.Parse(resp.Pub)
		if err != nil { // cannot happen: judgeLogin parsed it
			r = authRequired("login: public key")
		} else if r = c.addKey(peer, pub); r == nil {
			c.stats.logins.Add(1)
			return nil
		}
	}
	return c.strike(peer, r)
}

// strike counts a failed login on peer and returns the refusal, joined with
// ErrTooManyStrikes once the peer has MaxLoginStrikes of them.
func (c *Checker) strike(peer *Peer, r *Refusal) error {
	c.count(r)
	peer.mu.Lock()
	peer.strikes++
	strikes := peer.strikes
	peer.mu.Unlock()
	if strikes >= c.cfg.MaxLoginStrikes {
		return errors.Join(r, ErrTooManyStrikes)
	}
	return r
}

func (c *Checker) addKey(peer *Peer, pub *keys.Public) *Refusal {
	peer.mu.Lock()
	defer peer.mu.Unlock()
	for _, k := range peer.keys {
		if k.Equal(pub) {
			return nil
		}
	}
	if len(peer.keys) >= c.cfg.MaxPeerKeys {
		return authRequired("login: too many keys on this connection")
	}
	peer.keys = append(peer.keys, pub)
	return nil
}

func (c *Checker) judgeLogin(pending *Challenge, resp Response, now time.Time) *Refusal {
	if c.cfg.RelayID == "" {
		return authRequired("login: not offered by this relay")
	}
	if pending == nil {
		return authRequired("login: no challenge pending (ask for one; each is good once)")
	}
	if subtle.ConstantTimeCompare(pending.Nonce[:], resp.Nonce[:]) != 1 {
		return authRequired("login: challenge mismatch")
	}
	if resp.Relay != c.cfg.RelayID {
		return authRequired("login: response is for another relay")
	}
	win := c.cfg.LoginWindow
	if now.Sub(pending.IssuedAt) > win {
		return authRequired("login: challenge expired")
	}
	if d := now.Sub(resp.Time); d > win || d < -win {
		return authRequired("login: stale response time")
	}
	pub, err := c.keys.Parse(resp.Pub)
	if err != nil {
		return authRequired("login: public key")
	}
	if !pub.Verify(LoginMessage(resp.Nonce, c.cfg.RelayID, resp.Time), resp.Sig) {
		return authRequired("login: bad signature")
	}
	return nil
}
