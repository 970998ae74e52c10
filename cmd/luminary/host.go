package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/krestianstvo/luminary/client"
)

// dialRelay connects a Luminary client to the relay whose base URL (a
// --relay flag, checked by relayURL) is relay.
func dialRelay(ctx context.Context, relay string, cfg client.Config) (*client.Client, error) {
	cl, err := client.Dial(ctx, strings.TrimRight(relay, "/")+"/gun", cfg)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	return cl, nil
}

// WorldHostCmd asks a running relay to host the world owned by a key. It
// connects as the owner (package client): the owner signs a tick
// certificate for the relay key and publishes it in the world's namespace,
// so that the relay may run the metronome and every follower can check who
// ticks; --private first writes the owner-signed private flag; then a
// signed POST /api/worlds asks the relay to host the world.
type WorldHostCmd struct {
	Key      string        `required:"" help:"Key file of the world's owner (the world is this key's instance)."`
	Relay    string        `required:"" env:"LUMINARY_RELAY" help:"Relay base URL (http:// or https://)."`
	Alias    string        `help:"Short name for URLs on this relay (lowercase letters, digits and '-')."`
	Name     string        `help:"Display name."`
	TPS      int           `name:"tps" default:"20" help:"Ticks per second (1 to 60)."`
	Rate     float64       `default:"1" help:"Croquet time scale (1 = real time)."`
	Private  bool          `help:"Only members may read (see 'world create' and 'world add-member')."`
	Open     bool          `help:"Anyone may join through POST /api/worlds/{world}/join (demo worlds; the relay's certificate then also carries the admin role, to certify joiners); not with --private."`
	ValidFor time.Duration `default:"720h" help:"Validity of the relay's tick certificate; host again to renew it."`
	Timeout  time.Duration `default:"30s" help:"How long to wait for the relay."`
	PasswordFlags
}

// Run hosts the world and prints the relay's world info.
func (c *WorldHostCmd) Run(env *Env) error {
	if err := relayURL(c.Relay); err != nil {
		return err
	}
	if c.Private && c.Open {
		return usageError{errors.New("--private and --open exclude each other")}
	}
	if c.ValidFor <= 0 || c.Timeout <= 0 {
		return usageError{errors.New("--valid-for and --timeout must be positive")}
	}
	owner, err := c.readKey(env, c.Key)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(env.Ctx, c.Timeout)
	defer cancel()
	cl, err := dialRelay(ctx, c.Relay, client.Config{Key: owner})
	if err != nil {
		return err
	}
	defer cl.Close()
	w, err := cl.Host(ctx, client.HostSpec{Name: c.Name, Alias: c.Alias, Rate: c.Rate, TPS: c.TPS,
		Private: c.Private, Open: c.Open, TickValidity: c.ValidFor})
	if err != nil {
		return err
	}
	out, err := json.Marshal(map[string]any{"instance": w.Instance(), "alias": c.Alias, "relay": cl.RelayKey(),
		"private": c.Private, "open": c.Open, "tps": c.TPS, "rate": c.Rate})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s\n", out)
	return nil
}
