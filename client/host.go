package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/keys"
)

// HostSpec describes a world that a client's key owns and a relay runs.
type HostSpec struct {
	Name    string  // display name
	Alias   string  // relay-local short name (optional)
	Rate    float64 // time scale (default 1)
	TPS     int     // ticks per second (default 20)
	Private bool    // reads only for members (the owner writes lum/<I>.private = true first)
	Open    bool    // anyone may join through the relay's HTTP join route (the relay's certificate then also carries the admin role, to certify joiners)
	// TickValidity is the validity of the tick certificate issued to the
	// relay key (default 30 days). Renew by calling Host again before it
	// ends.
	TickValidity time.Duration
}

// Host makes the client's key the owner of a world run by the relay it is
// connected to, and follows it. The instance id is the client's public key.
//
// What the code supports, and so what Host does: the relay runs the
// metronome (a heartbeat.Host inside the relay) once it holds a tick
// certificate from the owner. Host issues that certificate for the relay
// key learnt at login, publishes it at lum/<I>/certs over the Gun wire
// (signed by the owner, judged by the relay's checker), and asks the relay
// to host the world with a signed POST /api/worlds (the relay must allow
// owners to host their worlds — rest.Config.OpenHosting — or list the key
// as an admin). A world the relay hosts already is not an error. To run
// the metronome in this client instead, call [World.RunMetronome] on the
// world: the relay's host then stands by.
func (c *Client) Host(ctx context.Context, spec HostSpec) (*World, error) {
	owner := c.cfg.Key
	if owner == nil {
		return nil, ErrNoKey
	}
	relay := c.RelayKey()
	if relay == "" {
		return nil, fmt.Errorf("%w: hosting needs the relay key, learnt at login", ErrNoLogin)
	}
	if spec.TickValidity <= 0 {
		spec.TickValidity = 30 * 24 * time.Hour
	}
	inst := owner.Public().String()
	now := c.clk.Now()
	// The relay runs the metronome (tick); for an open world it also issues
	// each joiner's message certificate, which takes the admin role.
	roles := []auth.Role{auth.RoleTick}
	if spec.Open {
		roles = append(roles, auth.RoleAdmin)
	}
	cert, err := auth.IssueCert(owner, auth.Cert{Instance: inst, Subject: relay, Roles: roles,
		NotBefore: now.Add(-time.Minute), Expiry: now.Add(spec.TickValidity)})
	if err != nil {
		return nil, err
	}
	certJSON, _ := cert.MarshalJSON()
	soul := heartbeat.InstanceSoul(inst)
	if err := c.putSigned(ctx, owner, soul+"/certs", cert.Serial, graph.String(string(certJSON))); err != nil {
		return nil, fmt.Errorf("client: publish tick certificate: %w", err)
	}
	if spec.Private {
		if err := c.putSigned(ctx, owner, soul, "private", graph.Bool(true)); err != nil {
			return nil, fmt.Errorf("client: mark private: %w", err)
		}
	}
	body := &jsjson.Object{}
	body.Set("instance", inst)
	if spec.Name != "" {
		body.Set("name", spec.Name)
	}
	if spec.Alias != "" {
		body.Set("alias", spec.Alias)
	}
	if spec.Rate != 0 {
		body.Set("rate", spec.Rate)
	}
	if spec.TPS != 0 {
		body.Set("tps", float64(spec.TPS))
	}
	if spec.Private {
		body.Set("private", true)
	}
	if spec.Open {
		body.Set("open", true)
	}
	certObj, err := jsjson.Parse(certJSON, jsjson.Limits{})
	if err != nil {
		return nil, err
	}
	body.Set("chain", []any{certObj})
	status, answer, err := c.signedHTTP(ctx, owner, http.MethodPost, "/api/worlds", jsjson.Append(nil, body))
	if err != nil {
		return nil, err
	}
	if status != http.StatusCreated && status != http.StatusConflict {
		return nil, fmt.Errorf("client: host world: HTTP %d: %s", status, strings.TrimSpace(string(answer)))
	}
	return c.Join(ctx, inst)
}

// PublishCert publishes cert at lum/<I>/certs (field: its serial) over the
// Gun wire, signed by issuer: the world's owner, or an admin whose
// certificates from the owner are chain. The relay judges the write like
// any other (the issuer must be allowed to manage the world); once it is
// stored, the relay and every follower know the certificate.
func (c *Client) PublishCert(ctx context.Context, issuer *keys.Private, cert *auth.Cert, chain ...*auth.Cert) error {
	certJSON, err := cert.MarshalJSON()
	if err != nil {
		return err
	}
	return c.putSigned(ctx, issuer, heartbeat.InstanceSoul(cert.Instance)+"/certs", cert.Serial, graph.String(string(certJSON)), chain...)
}

// putSigned writes one field signed by k (an auth wrapper, with the
// certificates that authorise k, if any) and waits for the relay's ack.
func (c *Client) putSigned(ctx context.Context, k *keys.Private, soul, field string, v graph.Value, chain ...*auth.Cert) error {
	state := float64(c.clk.Now().UnixMicro()) / 1000
	wv, err := auth.SignField(k, soul, field, v, state, chain...)
	if err != nil {
		return err
	}
	return c.Put(ctx, graph.Graph{soul: {Soul: soul, Fields: map[string]graph.Field{field: {Value: wv, State: state}}}})
}

// httpBase returns the relay's HTTP origin for its WebSocket URL.
func (c *Client) httpBase() string {
	u := c.url
	switch {
	case strings.HasPrefix(u, "ws://"):
		u = "http://" + strings.TrimPrefix(u, "ws://")
	case strings.HasPrefix(u, "wss://"):
		u = "https://" + strings.TrimPrefix(u, "wss://")
	}
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.IndexByte(u[i+3:], '/'); j >= 0 {
			u = u[:i+3+j]
		}
	}
	return u
}

// signedHTTP sends a request signed as the relay's HTTP API expects (see
// signedRequest) and returns its status and (at most 1 MiB of) its body.
func (c *Client) signedHTTP(ctx context.Context, k *keys.Private, method, target string, body []byte) (int, []byte, error) {
	resp, err := c.signedRequest(ctx, k, method, target, body)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, answer, nil
}

// signedRequest sends a request to the relay's HTTP API, signed with k as
// it expects — headers Luminary-Key, -Date, -Nonce and -Signature, the
// signature over keys.Message("http", method, target, date, nonce,
// SHA-256(body)) — or unsigned when k is nil. The caller closes the
// response body.
func (c *Client) signedRequest(ctx context.Context, k *keys.Private, method, target string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.httpBase()+target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if k != nil {
		var n [16]byte
		if _, err := rand.Read(n[:]); err != nil {
			return nil, err
		}
		nonce := base64.RawURLEncoding.EncodeToString(n[:])
		date := c.clk.Now().UTC().Format(time.RFC3339Nano)
		h := sha256.Sum256(body)
		sig, err := k.Sign(keys.Message("http", []byte(method), []byte(req.URL.RequestURI()), []byte(date), []byte(nonce), h[:]))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Luminary-Key", k.Public().String())
		req.Header.Set("Luminary-Date", date)
		req.Header.Set("Luminary-Nonce", nonce)
		req.Header.Set("Luminary-Signature", base64.RawURLEncoding.EncodeToString(sig))
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, target, err)
	}
	return resp, nil
}
