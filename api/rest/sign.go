package rest

import (
	"bytes"
	"container/heap"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/krestianstvo/luminary/keys"
)

// Signed requests. A client proves a key by adding four headers:
//
//	Luminary-Key        public key text (secp256k1 "k1:…" or P-256 "x.y")
//	Luminary-Date       RFC 3339 time, or Unix milliseconds
//	Luminary-Nonce      8 to 64 characters of base64url, fresh per request
//	Luminary-Signature  base64url (unpadded) of the 64-byte r‖s signature
//
// The signature is a strict low-S ECDSA signature over
//
//	keys.Message("http", METHOD, request-target, date, nonce, SHA-256(body))
//
// where request-target is the escaped path and query exactly as sent
// (url.URL.RequestURI), date and nonce are the header texts, and the body
// hash covers the exact body bytes (the empty body included). The relay
// refuses a date more than [Config.AuthWindow] from its clock, and a
// (key, nonce) pair it has seen within that window. Secrets never travel:
// no bearer tokens, no keys in URLs.
const (
	HeaderKey       = "Luminary-Key"
	HeaderDate      = "Luminary-Date"
	HeaderNonce     = "Luminary-Nonce"
	HeaderSignature = "Luminary-Signature"

	// SignatureLabel is the keys.Message label of request signatures.
	SignatureLabel = "http"

	minNonce = 8
	maxNonce = 64
)

var b64 = base64.RawURLEncoding.Strict()

// RequestMessage returns the exact bytes a request signature covers.
func RequestMessage(method, target, date, nonce string, body []byte) []byte {
	h := sha256.Sum256(body)
	return keys.Message(SignatureLabel, []byte(method), []byte(target), []byte(date), []byte(nonce), h[:])
}

// SignRequest signs req with priv at the current time (see [SignRequestAt]).
func SignRequest(req *http.Request, priv *keys.Private) error {
	return SignRequestAt(req, priv, time.Now())
}

// SignRequestAt adds the four Luminary-* headers to req, dated now, with a
// fresh random nonce. It reads the body (if any) and puts an identical
// reader back, so call it last, right before sending.
func SignRequestAt(req *http.Request, priv *keys.Private, now time.Time) error {
	if priv == nil {
		return errors.New("rest: sign request: nil key")
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return fmt.Errorf("rest: sign request: read body: %w", err)
		}
		body = b
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		req.ContentLength = int64(len(b))
	}
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		return fmt.Errorf("rest: sign request: %w", err)
	}
	nonce := b64.EncodeToString(n[:])
	date := now.UTC().Format(time.RFC3339Nano)
	sig, err := priv.Sign(RequestMessage(req.Method, req.URL.RequestURI(), date, nonce, body))
	if err != nil {
		return fmt.Errorf("rest: sign request: %w", err)
	}
	req.Header.Set(HeaderKey, priv.Public().String())
	req.Header.Set(HeaderDate, date)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, b64.EncodeToString(sig))
	return nil
}

// signed reports whether r carries any of the signature headers.
func signed(r *http.Request) bool {
	return r.Header.Get(HeaderKey) != "" || r.Header.Get(HeaderSignature) != "" ||
		r.Header.Get(HeaderDate) != "" || r.Header.Get(HeaderNonce) != ""
}

// verifier checks signed requests and remembers nonces.
type verifier struct {
	window time.Duration
	keys   *keys.Cache
	nonces *nonceCache
}

// verify checks r's signature over body against now. It returns the
// signer's key, or an *Error with code unauthenticated (or rate_limited
// when the nonce cache is full).
func (v *verifier) verify(r *http.Request, body []byte, now time.Time) (*keys.Public, *Error) {
	keyText, dateText := r.Header.Get(HeaderKey), r.Header.Get(HeaderDate)
	nonce, sigText := r.Header.Get(HeaderNonce), r.Header.Get(HeaderSignature)
	if keyText == "" || dateText == "" || nonce == "" || sigText == "" {
		return nil, fail(CodeUnauthenticated, "signed request needs all of "+HeaderKey+", "+HeaderDate+", "+HeaderNonce+" and "+HeaderSignature)
	}
	date, ok := parseDate(dateText)
	if !ok {
		return nil, fail(CodeUnauthenticated, HeaderDate+" must be RFC 3339 or Unix milliseconds")
	}
	if d := now.Sub(date); d > v.window || d < -v.window {
		return nil, fail(CodeUnauthenticated, fmt.Sprintf("stale request: %s is %s from the relay clock (window %s)", HeaderDate, d.Round(time.Millisecond), v.window))
	}
	if !validNonce(nonce) {
		return nil, fail(CodeUnauthenticated, HeaderNonce+" must be 8 to 64 base64url characters")
	}
	sig, err := b64.DecodeString(sigText)
	if err != nil || len(sig) != keys.SignatureSize {
		return nil, fail(CodeUnauthenticated, HeaderSignature+" must be 64 bytes in unpadded base64url")
	}
	pub, err := v.keys.Parse(keyText)
	if err != nil {
		return nil, fail(CodeUnauthenticated, HeaderKey+" is not a public key")
	}
	if !pub.Verify(RequestMessage(r.Method, r.URL.RequestURI(), dateText, nonce, body), sig) {
		return nil, fail(CodeUnauthenticated, "signature does not verify")
	}
	// Remember the nonce only once the signature is good, so unsigned junk
	// cannot fill the cache. It is needed until the date leaves the window.
	switch v.nonces.add(keyText+"\x00"+nonce, date.Add(v.window), now) {
	case nonceReplay:
		return nil, fail(CodeUnauthenticated, "replayed request: nonce already used")
	case nonceFull:
		return nil, fail(CodeRateLimited, "too many signed requests in the window")
	}
	return pub, nil
}

// parseDate reads RFC 3339 or Unix milliseconds (digits only).
func parseDate(s string) (time.Time, bool) {
	if len(s) > 40 {
		return time.Time{}, false
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	if len(s) == 0 || len(s) > 16 {
		return time.Time{}, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return time.Time{}, false
		}
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

func validNonce(s string) bool {
	if len(s) < minNonce || len(s) > maxNonce {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// nonceCache remembers (key, nonce) pairs until they expire, at most max
// of them.
type nonceCache struct {
	mu   sync.Mutex
	max  int
	seen map[string]time.Time
	exp  expiryHeap
}

type nonceResult int

const (
	nonceNew nonceResult = iota
	nonceReplay
	nonceFull
)

func newNonceCache(max int) *nonceCache {
	return &nonceCache{max: max, seen: make(map[string]time.Time)}
}

// add records id until expires; expired entries are dropped first.
func (c *nonceCache) add(id string, expires, now time.Time) nonceResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.exp) > 0 && !c.exp[0].at.After(now) {
		e := heap.Pop(&c.exp).(expiry)
		if at, ok := c.seen[e.id]; ok && !at.After(now) {
			delete(c.seen, e.id)
		}
	}
	if _, ok := c.seen[id]; ok {
		return nonceReplay
	}
	if len(c.seen) >= c.max {
		return nonceFull
	}
	c.seen[id] = expires
	heap.Push(&c.exp, expiry{id: id, at: expires})
	return nonceNew
}

type expiry struct {
	id string
	at time.Time
}

type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
