package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/krestianstvo/luminary/api/rest"
	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/keys"
)

// worldsConfig configures the worlds command: it creates worlds on a
// Luminary relay through its HTTP API, each owned by a fresh key the tool
// makes (the instance id) and run by the relay, which the owner makes its
// metronome with a tick certificate (chain) for the relay key (the relay's
// "anytime availability"). Requests are signed by an admin key the relay
// lists (serve --admins) or, with --as-owner, by each world's owner (serve
// --open-hosting).
type worldsConfig struct {
	URL         string
	Count       int
	TPS         int
	AdminKey    *keys.Private // nil: sign as the owner
	MessageCert bool          // publish an AnySubject message certificate (anyone may send)
	Concurrency int
	Validity    time.Duration
	Timeout     time.Duration
	Name        string
}

// worldsResult is what the command did.
type worldsResult struct {
	Tool      string   `json:"tool"`
	Mode      string   `json:"mode"`
	Label     string   `json:"label"`
	Started   string   `json:"started"`
	Relay     string   `json:"relay_key"`
	Requested int      `json:"requested"`
	Created   int      `json:"created"`
	Seconds   float64  `json:"seconds"`
	Load1     float64  `json:"load1"`
	Errors    []string `json:"errors,omitempty"`
	Worlds    []string `json:"-"`
}

// relayKey reads the relay's public key from /.well-known/luminary.
func relayKey(ctx context.Context, base string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/.well-known/luminary", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("luminary-load: relay info: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("luminary-load: relay info: HTTP %d (is this a Luminary relay with its HTTP API?)", resp.StatusCode)
	}
	var doc struct {
		Relay string `json:"relay"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil || doc.Relay == "" {
		return "", fmt.Errorf("luminary-load: relay info: no relay key (%v)", err)
	}
	return doc.Relay, nil
}

// signedPost sends a signed JSON POST and returns the status and body.
func signedPost(ctx context.Context, hc *http.Client, base, path string, body []byte, k *keys.Private) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if err := rest.SignRequest(req, k); err != nil {
		return 0, nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, nil
}

// certObject returns a certificate as a JSON object value for a request body.
func certObject(c *auth.Cert) (any, error) {
	b, err := c.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return jsjson.Parse(b, jsjson.Limits{})
}

// createWorld hosts one world owned by a fresh key; it returns the
// instance id.
func createWorld(ctx context.Context, hc *http.Client, base, relay string, cfg worldsConfig, n int) (string, error) {
	owner, err := keys.Generate(keys.Secp256k1)
	if err != nil {
		return "", err
	}
	inst := owner.Public().String()
	now := time.Now()
	// Tick and admin for the relay key, as the relay gives itself for the
	// worlds it creates: admin lets it publish further certificates.
	tick, err := auth.IssueCert(owner, auth.Cert{Instance: inst, Subject: relay, Roles: []auth.Role{auth.RoleTick, auth.RoleAdmin},
		NotBefore: now.Add(-time.Minute), Expiry: now.Add(cfg.Validity)})
	if err != nil {
		return "", err
	}
	tickObj, err := certObject(tick)
	if err != nil {
		return "", err
	}
	body := &jsjson.Object{}
	body.Set("instance", inst)
	body.Set("name", fmt.Sprintf("%s %d", cfg.Name, n))
	body.Set("tps", float64(cfg.TPS))
	body.Set("chain", []any{tickObj})
	signer := cfg.AdminKey
	if signer == nil {
		signer = owner
	}
	status, answer, err := signedPost(ctx, hc, base, "/api/worlds", jsjson.Append(nil, body), signer)
	if err != nil {
		return "", err
	}
	if status != http.StatusCreated {
		return "", fmt.Errorf("POST /api/worlds: HTTP %d: %s", status, strings.TrimSpace(string(answer)))
	}
	if cfg.MessageCert {
		mc, err := auth.IssueCert(owner, auth.Cert{Instance: inst, Subject: auth.AnySubject, Roles: []auth.Role{auth.RoleMessage},
			NotBefore: now.Add(-time.Minute), Expiry: now.Add(cfg.Validity)})
		if err != nil {
			return "", err
		}
		mObj, err := certObject(mc)
		if err != nil {
			return "", err
		}
		cb := &jsjson.Object{}
		cb.Set("cert", mObj)
		status, answer, err := signedPost(ctx, hc, base, "/api/worlds/"+url.PathEscape(inst)+"/certs", jsjson.Append(nil, cb), owner)
		if err != nil {
			return "", err
		}
		if status != http.StatusCreated {
			return "", fmt.Errorf("POST /api/worlds/{world}/certs: HTTP %d: %s", status, strings.TrimSpace(string(answer)))
		}
	}
	return inst, nil
}

func runWorlds(ctx context.Context, cfg worldsConfig) (*worldsResult, error) {
	if cfg.Count < 1 || cfg.Count > 100000 || cfg.Concurrency < 1 || cfg.TPS < 1 || cfg.TPS > 60 {
		return nil, errors.New("luminary-load: --count must be 1..100000, --concurrency positive, --tps 1..60")
	}
	base, err := httpBase(cfg.URL)
	if err != nil {
		return nil, err
	}
	res := &worldsResult{Tool: "luminary-load", Mode: "worlds", Label: "worlds", Started: time.Now().UTC().Format(time.RFC3339), Requested: cfg.Count}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	relay, err := relayKey(ctx, base)
	if err != nil {
		return nil, err
	}
	res.Relay = relay
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency}}
	t0 := time.Now()
	out := make([]string, cfg.Count)
	var next atomic.Int64
	var emu sync.Mutex
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.Count || ctx.Err() != nil || failed.Load() > 10 {
					return
				}
				inst, err := createWorld(ctx, hc, base, relay, cfg, i)
				if err != nil {
					failed.Add(1)
					emu.Lock()
					if len(res.Errors) < 10 {
						res.Errors = append(res.Errors, err.Error())
					}
					emu.Unlock()
					continue
				}
				out[i] = inst
			}
		})
	}
	wg.Wait()
	for _, w := range out {
		if w != "" {
			res.Worlds = append(res.Worlds, w)
		}
	}
	res.Created = len(res.Worlds)
	res.Seconds = round3(time.Since(t0).Seconds())
	res.Load1 = load1()
	if res.Created < cfg.Count {
		return res, fmt.Errorf("luminary-load: created %d of %d worlds", res.Created, cfg.Count)
	}
	return res, nil
}

func cmdWorlds(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("worlds", stderr)
	u := fs.String("url", "http://127.0.0.1:8765/gun", "relay URL")
	cfg := worldsConfig{}
	fs.IntVar(&cfg.Count, "count", 1, "worlds to create")
	fs.IntVar(&cfg.TPS, "tps", 20, "ticks per second of each world")
	adminFile := fs.String("admin-key", "", "file holding the admin's private key text (see newkey); empty: sign as each world's owner (serve --open-hosting)")
	fs.BoolVar(&cfg.MessageCert, "message-cert", false, "let any key send messages to the worlds (an AnySubject message certificate)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 4, "requests in flight")
	fs.DurationVar(&cfg.Validity, "validity", 24*time.Hour, "validity of the certificates")
	fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Minute, "give up after this long")
	fs.StringVar(&cfg.Name, "name", "bench", "world name prefix")
	outPath := fs.String("out", "", "write the instance ids here, one per line (default: stdout)")
	jsonPath := fs.String("json", "", "write a summary as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.URL = *u
	if *adminFile != "" {
		b, err := os.ReadFile(*adminFile)
		if err != nil {
			return fmt.Errorf("luminary-load: %w", err)
		}
		k, err := keys.ParsePrivate(strings.TrimSpace(string(b)))
		if err != nil {
			return fmt.Errorf("luminary-load: --admin-key: %w", err)
		}
		cfg.AdminKey = k
	}
	res, err := runWorlds(ctx, cfg)
	if res == nil {
		return err
	}
	ids := strings.Join(res.Worlds, "\n")
	if len(res.Worlds) > 0 {
		ids += "\n"
	}
	if *outPath != "" {
		if werr := os.WriteFile(*outPath, []byte(ids), 0o644); werr != nil {
			return fmt.Errorf("luminary-load: %w", werr)
		}
	} else {
		fmt.Fprint(stdout, ids)
	}
	fmt.Fprintf(stderr, "created %d/%d worlds in %.1f s (load1 %.2f)\n", res.Created, res.Requested, res.Seconds, res.Load1)
	for _, e := range res.Errors {
		fmt.Fprintf(stderr, "  error: %s\n", e)
	}
	if werr := writeJSON(*jsonPath, res); werr != nil {
		return werr
	}
	return err
}

// cmdNewKey writes a fresh secp256k1 private key text to a file (mode 0600)
// and prints its public key: the admin key a benchmark passes to serve
// --admins and to worlds --admin-key.
func cmdNewKey(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("newkey", stderr)
	out := fs.String("out", "", "file to write the private key text to (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("luminary-load: newkey needs --out")
	}
	k, err := keys.Generate(keys.Secp256k1)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, []byte(k.Encode()+"\n"), 0o600); err != nil {
		return fmt.Errorf("luminary-load: %w", err)
	}
	fmt.Fprintln(stdout, k.Public().String())
	return nil
}
