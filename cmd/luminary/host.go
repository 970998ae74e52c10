package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/krestianstvo/luminary/api/rest"
	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/keys"
)

// WorldHostCmd asks a running relay to host the world owned by a key: it
// reads the relay's identity, signs a tick certificate for it with the owner
// key (so the relay may run the metronome), and posts a signed
// POST /api/worlds.
type WorldHostCmd struct {
	Key      string        `required:"" help:"Key file of the world's owner (the world is this key's instance)."`
	Relay    string        `required:"" env:"LUMINARY_RELAY" help:"Relay base URL (http:// or https://)."`
	Alias    string        `help:"Short name for URLs on this relay (lowercase letters, digits and '-')."`
	Name     string        `help:"Display name."`
	TPS      int           `name:"tps" default:"20" help:"Ticks per second (1 to 60)."`
	Rate     float64       `default:"1" help:"Croquet time scale (1 = real time)."`
	Private  bool          `help:"Only members may read (see 'world add-member')."`
	Open     bool          `help:"Anyone may join through POST /api/worlds/{world}/join (demo worlds); not with --private."`
	ValidFor time.Duration `default:"8760h" help:"Validity of the relay's tick certificate."`
	PasswordFlags
}

// relayInfo is the part of /.well-known/luminary the CLI reads.
type relayInfo struct {
	Relay string `json:"relay"`
}

// Run hosts the world and prints the relay's world info.
func (c *WorldHostCmd) Run(env *Env) error {
	u, err := url.Parse(c.Relay)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError{errors.New("--relay must be an http:// or https:// URL")}
	}
	if c.Private && c.Open {
		return usageError{errors.New("--private and --open exclude each other")}
	}
	if c.ValidFor <= 0 {
		return usageError{errors.New("--valid-for must be positive")}
	}
	base := strings.TrimRight(c.Relay, "/")
	pw, err := c.password(env, false)
	if err != nil {
		return err
	}
	defer clear(pw)
	owner, err := keys.ReadFile(c.Key, pw)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 30 * time.Second}

	var info relayInfo
	if err := getJSON(env, client, base+"/.well-known/luminary", &info); err != nil {
		return err
	}
	relayKey, err := keys.ParsePublic(info.Relay)
	if err != nil {
		return fmt.Errorf("relay identity: %w", err)
	}
	now := time.Now()
	tick, err := auth.IssueCert(owner, auth.Cert{
		Instance: owner.Public().String(), Subject: relayKey.String(),
		Roles: []auth.Role{auth.RoleTick}, NotBefore: now.Add(-time.Minute), Expiry: now.Add(c.ValidFor),
	})
	if err != nil {
		return err
	}
	spec := map[string]any{
		"instance": owner.Public().String(),
		"tps":      c.TPS,
		"rate":     c.Rate,
		"private":  c.Private,
		"open":     c.Open,
		"chain":    []*auth.Cert{tick},
	}
	if c.Alias != "" {
		spec["alias"] = c.Alias
	}
	if c.Name != "" {
		spec["name"] = c.Name
	}
	body, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(env.Ctx, http.MethodPost, base+"/api/worlds", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if err := rest.SignRequest(req, owner); err != nil {
		return err
	}
	answer, err := doRelay(client, req, http.StatusCreated)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s\n", bytes.TrimSpace(answer))
	return nil
}

// getJSON reads a JSON document from the relay.
func getJSON(env *Env, client *http.Client, target string, v any) error {
	req, err := http.NewRequestWithContext(env.Ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	answer, err := doRelay(client, req, http.StatusOK)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(answer, v); err != nil {
		return fmt.Errorf("relay: %s: %w", target, err)
	}
	return nil
}

// doRelay sends req and returns the body of an answer with status want, or
// the relay's JSON error as a Go error.
func doRelay(client *http.Client, req *http.Request, want int) ([]byte, error) {
	res, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(res.Body, maxRelayAnswer))
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	if res.StatusCode != want {
		var e struct {
			Error struct{ Code, Message string }
		}
		if json.Unmarshal(answer, &e) == nil && e.Error.Code != "" {
			return nil, fmt.Errorf("relay refused (%d %s): %s", res.StatusCode, e.Error.Code, e.Error.Message)
		}
		return nil, fmt.Errorf("relay answered %s", res.Status)
	}
	return answer, nil
}
