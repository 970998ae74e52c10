package auth

import (
	"errors"
	"math"
	"time"

	"github.com/krestianstvo/luminary/internal/jsjson"
)

// AuthMember is the top-level member of the Gun wire messages that carry a
// login. gun.js peers ignore messages with members they do not know, so the
// login exchange lives beside the Gun protocol:
//
//	C→R {"#":"<id>","auth":{"challenge":true}}
//	R→C {"#":"<id2>","@":"<id>","auth":{"nonce":"<b64url 32 B>","relay":"<relay pub>","t":<ms>}}
//	C→R {"#":"<id3>","auth":{"pub":"<pub>","nonce":"<b64url>","relay":"<relay pub>","t":<ms>,"sig":"<b64url 64 B>"}}
//	R→C {"#":"<id4>","@":"<id3>","ok":true}
//	 or {"#":"<id4>","@":"<id3>","err":"auth-required: login: …"}
//
// The relay may also send a challenge unasked (a reply without "@").
const AuthMember = "auth"

// ErrWire is wrapped by the parse errors of the login wire forms.
var ErrWire = errors.New("auth: malformed login message")

// AuthReply is the relay's answer to one "auth" message. Exactly one of
// Challenge, OK and Err is set. Close asks the caller to close the
// connection with WebSocket status 1008 after sending the reply.
type AuthReply struct {
	Challenge *Challenge
	OK        bool
	Err       string
	Close     bool
}

// HandleAuth answers the value of the "auth" member of a message from peer:
// a request for a challenge, or a response to one. The caller sends
// reply.AppendJSON and closes the connection if reply.Close.
func (c *Checker) HandleAuth(peer *Peer, body any) AuthReply {
	o, ok := body.(*jsjson.Object)
	if ok {
		if _, ask := o.Get("challenge"); ask && o.Len() == 1 {
			ch, err := c.Challenge(peer)
			if err != nil {
				return AuthReply{Err: authRequired("login: " + err.Error()).Error()}
			}
			return AuthReply{Challenge: &ch}
		}
	}
	resp, err := ParseResponse(body)
	if err != nil {
		// Malformed answers use up the challenge and count as a strike, the
		// same as wrong ones.
		peer.mu.Lock()
		peer.pending = nil
		peer.mu.Unlock()
		err = c.strike(peer, authRequired("login: malformed response"))
	} else {
		err = c.Login(peer, resp)
	}
	if err == nil {
		return AuthReply{OK: true}
	}
	var r *Refusal
	text := authRequired("login").Error()
	if errors.As(err, &r) {
		text = r.Error()
	}
	return AuthReply{Err: text, Close: errors.Is(err, ErrTooManyStrikes)}
}

// AppendJSON appends the reply as a Gun wire message with id "#" and, if
// replyTo is not empty, "@".
func (r AuthReply) AppendJSON(dst []byte, id, replyTo string) []byte {
	o := &jsjson.Object{}
	o.Set("#", id)
	if replyTo != "" {
		o.Set("@", replyTo)
	}
	switch {
	case r.Challenge != nil:
		o.Set(AuthMember, r.Challenge.object())
	case r.OK:
		o.Set("ok", true)
	default:
		o.Set("err", r.Err)
	}
	return jsjson.Append(dst, o)
}

func (ch *Challenge) object() *jsjson.Object {
	return &jsjson.Object{
		Keys:   []string{"nonce", "relay", "t"},
		Values: []any{b64url(ch.Nonce[:]), ch.Relay, float64(ch.IssuedAt.UnixMilli())},
	}
}

// AppendChallengeRequest appends the client's request for a challenge:
// {"#":id,"auth":{"challenge":true}}.
func AppendChallengeRequest(dst []byte, id string) []byte {
	o := &jsjson.Object{Keys: []string{"#", AuthMember}, Values: []any{id,
		&jsjson.Object{Keys: []string{"challenge"}, Values: []any{true}}}}
	return jsjson.Append(dst, o)
}

// ParseChallenge reads a challenge from the value of a reply's "auth"
// member (client side).
func ParseChallenge(body any) (Challenge, error) {
	var ch Challenge
	o, ok := body.(*jsjson.Object)
	if !ok {
		return ch, ErrWire
	}
	if err := nonceMember(o, &ch.Nonce); err != nil {
		return ch, err
	}
	relay, ok := stringMember(o, "relay")
	if !ok {
		return ch, ErrWire
	}
	ch.Relay = relay
	t, err := msMember(o, "t")
	if err != nil {
		return ch, err
	}
	ch.IssuedAt = t
	return ch, nil
}

// AppendJSON appends the response as a wire message with id "#".
func (r Response) AppendJSON(dst []byte, id string) []byte {
	body := &jsjson.Object{
		Keys: []string{"pub", "nonce", "relay", "t", "sig"},
		Values: []any{r.Pub, b64url(r.Nonce[:]), r.Relay,
			float64(r.Time.UnixMilli()), b64url(r.Sig)},
	}
	o := &jsjson.Object{Keys: []string{"#", AuthMember}, Values: []any{id, body}}
	return jsjson.Append(dst, o)
}

// ParseResponse reads a login response from the value of an "auth" member.
func ParseResponse(body any) (Response, error) {
	var r Response
	o, ok := body.(*jsjson.Object)
	if !ok || o.Len() != 5 {
		return r, ErrWire
	}
	if r.Pub, ok = stringMember(o, "pub"); !ok {
		return r, ErrWire
	}
	if r.Relay, ok = stringMember(o, "relay"); !ok {
		return r, ErrWire
	}
	if err := nonceMember(o, &r.Nonce); err != nil {
		return r, err
	}
	t, err := msMember(o, "t")
	if err != nil {
		return r, err
	}
	r.Time = t
	sig, ok := stringMember(o, "sig")
	if !ok {
		return r, ErrWire
	}
	if r.Sig, ok = decodeSig64(sig); !ok {
		return r, ErrWire
	}
	return r, nil
}

func stringMember(o *jsjson.Object, k string) (string, bool) {
	v, ok := o.Get(k)
	s, isStr := v.(string)
	return s, ok && isStr
}

func nonceMember(o *jsjson.Object, out *[NonceSize]byte) error {
	s, ok := stringMember(o, "nonce")
	if !ok {
		return ErrWire
	}
	b, ok := decodeExact(s, NonceSize)
	if !ok {
		return ErrWire
	}
	copy(out[:], b)
	return nil
}

func msMember(o *jsjson.Object, k string) (time.Time, error) {
	v, ok := o.Get(k)
	f, isNum := v.(float64)
	if !ok || !isNum || f < 0 || f > maxSafeMillis || f != math.Trunc(f) {
		return time.Time{}, ErrWire
	}
	return time.UnixMilli(int64(f)), nil
}
