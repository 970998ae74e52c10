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
	"slices"
	"strings"
	"time"

	"github.com/krestianstvo/luminary/api/rest"
	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/client"
	"github.com/krestianstvo/luminary/keys"
)

// CertCmd groups the certificate subcommands.
type CertCmd struct {
	Issue CertIssueCmd `cmd:"" help:"Sign a certificate granting roles in a world with a key file; with --relay, publish it there."`
}

// CertIssueCmd is `luminary cert issue`.
type CertIssueCmd struct {
	Key       string        `required:"" type:"path" help:"Key file of the issuer: the world's owner, or an admin whose certificates are given with --chain."`
	Subject   string        `required:"" help:"Public key that receives the roles (k1:… or x.y), a key file to read it from, or * for every key (not with admin)."`
	Role      []string      `required:"" help:"Role to grant: tick, message, snapshot or admin. Repeat or separate with commas."`
	Instance  string        `help:"World (instance id: the owner's public key). Default: the issuer's own key, i.e. the issuer owns the world."`
	ValidFor  time.Duration `default:"720h" help:"How long the certificate is valid, from --not-before."`
	NotBefore string        `help:"Start of validity, RFC 3339 (default: now)."`
	Serial    string        `help:"Serial, 1 to 64 base64url characters (default: random); the handle for revocation."`
	Chain     string        `type:"path" help:"JSON file holding the certificates that lead from the owner to the issuer (an array), when the issuer is not the owner."`
	Relay     string        `help:"Relay base URL (http:// or https://). Publish the certificate there: POST /api/worlds/{world}/certs, signed with the key."`
	World     string        `help:"The world's name on the relay (alias or instance id); default --instance."`
	PasswordFlags
}

// maxRelayAnswer bounds what the CLI reads from a relay.
const maxRelayAnswer = 1 << 20

// Run signs the certificate, prints it (one line of JSON), and publishes
// it when --relay is set (printing the relay's answer instead).
func (c *CertIssueCmd) Run(env *Env) error {
	var roles []auth.Role
	for _, r := range c.Role {
		for _, name := range strings.Split(r, ",") {
			role := auth.Role(strings.TrimSpace(name))
			if !role.Known() {
				return usageError{fmt.Errorf("--role %q: want tick, message, snapshot or admin", name)}
			}
			roles = append(roles, role)
		}
	}
	if c.ValidFor <= 0 {
		return usageError{errors.New("--valid-for must be positive")}
	}
	notBefore := time.Now()
	if c.NotBefore != "" {
		t, err := time.Parse(time.RFC3339, c.NotBefore)
		if err != nil {
			return usageError{fmt.Errorf("--not-before: %w", err)}
		}
		notBefore = t
	}
	subject := c.Subject
	if subject != auth.AnySubject {
		pub, err := keys.ParsePublic(subject)
		if err != nil {
			p, ferr := keys.ReadPublicFile(subject)
			if ferr != nil {
				return usageError{fmt.Errorf("--subject: %w", err)}
			}
			pub = p
		}
		subject = pub.String()
	}
	if c.Relay != "" {
		if err := relayURL(c.Relay); err != nil {
			return err
		}
	}
	var chain []*auth.Cert
	if c.Chain != "" {
		data, err := readBounded(c.Chain, 64<<10)
		if err != nil {
			return fmt.Errorf("--chain: %w", err)
		}
		var raws []json.RawMessage
		if err := json.Unmarshal(data, &raws); err != nil {
			return fmt.Errorf("--chain: want a JSON array of certificates: %w", err)
		}
		for _, raw := range raws {
			ct, err := auth.ParseCert(raw)
			if err != nil {
				return fmt.Errorf("--chain: %w", err)
			}
			chain = append(chain, ct)
		}
	}
	priv, err := c.readKey(env, c.Key)
	if err != nil {
		return err
	}
	instance := c.Instance
	if instance == "" {
		instance = priv.Public().String()
	} else if p, err := keys.ParsePublic(instance); err != nil {
		return usageError{fmt.Errorf("--instance: %w", err)}
	} else {
		instance = p.String()
	}
	cert, err := auth.IssueCert(priv, auth.Cert{Instance: instance, Subject: subject, Roles: roles,
		NotBefore: notBefore, Expiry: notBefore.Add(c.ValidFor), Serial: c.Serial})
	if err != nil {
		return err
	}
	certJSON, _ := cert.MarshalJSON()
	if c.Relay == "" {
		fmt.Fprintf(env.Stdout, "%s\n", certJSON)
		return nil
	}
	world := c.World
	if world == "" {
		world = instance
	}
	err = publishCert(env, c.Relay, world, priv, cert, chain)
	if errors.Is(err, errRelayCannotSign) {
		// The relay holds no key of this world (its owner hosts it): the
		// issuer's own signed write over the Gun wire publishes it instead.
		if werr := publishCertWire(env, c.Relay, priv, cert, chain); werr != nil {
			return fmt.Errorf("%v; over the Gun wire: %w", err, werr)
		}
		return nil
	}
	return err
}

// errRelayCannotSign: the relay's certificate route refused (it needs the
// world's owner key or an admin certificate to write the world's
// certificates, and a world its owner hosts gives it neither).
var errRelayCannotSign = errors.New("the relay cannot write this world's certificates")

// publishCertWire publishes the certificate with a write signed by priv
// over the Gun wire (client.Client.PublishCert) and prints the chain.
func publishCertWire(env *Env, relay string, priv *keys.Private, cert *auth.Cert, chain []*auth.Cert) error {
	ctx, cancel := context.WithTimeout(env.Ctx, 30*time.Second)
	defer cancel()
	cl, err := dialRelay(ctx, relay, client.Config{Key: priv})
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.PublishCert(ctx, priv, cert, chain...); err != nil {
		return fmt.Errorf("publish over the Gun wire: %w", err)
	}
	out, err := json.Marshal(struct {
		Chain []*auth.Cert `json:"chain"`
	}{append(slices.Clone(chain), cert)})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s\n", out)
	fmt.Fprintf(env.Stderr, "published at lum/%s/certs over %s/gun\n", cert.Instance, strings.TrimRight(relay, "/"))
	return nil
}

// publishCert posts the certificate (and its chain) to the relay, signed
// with priv, and prints the chain the relay answers.
func publishCert(env *Env, relay, world string, priv *keys.Private, cert *auth.Cert, chain []*auth.Cert) error {
	body, err := json.Marshal(struct {
		Cert  *auth.Cert   `json:"cert"`
		Chain []*auth.Cert `json:"chain,omitempty"`
	}{cert, chain})
	if err != nil {
		return err
	}
	target := strings.TrimRight(relay, "/") + "/api/worlds/" + url.PathEscape(world) + "/certs"
	req, err := http.NewRequestWithContext(env.Ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if err := rest.SignRequest(req, priv); err != nil {
		return err
	}
	client := &http.Client{Timeout: 30 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(res.Body, maxRelayAnswer))
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	if res.StatusCode != http.StatusCreated {
		var e struct {
			Error struct{ Code, Message string }
		}
		if json.Unmarshal(answer, &e) == nil && e.Error.Code != "" {
			if res.StatusCode == http.StatusForbidden {
				// Typically the relay holds no key of this world; the wire
				// write is judged by the issuer's own rights.
				return fmt.Errorf("%w (%d %s: %s)", errRelayCannotSign, res.StatusCode, e.Error.Code, e.Error.Message)
			}
			return fmt.Errorf("relay refused (%d %s): %s", res.StatusCode, e.Error.Code, e.Error.Message)
		}
		return fmt.Errorf("relay answered %s", res.Status)
	}
	fmt.Fprintf(env.Stdout, "%s\n", bytes.TrimSpace(answer))
	fmt.Fprintf(env.Stderr, "published at %s\n", target)
	return nil
}
