package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/krestianstvo/luminary/client"
)

// WorldMetronomeCmd runs a world's metronome and sequencer in this
// process, through a relay that hosts the world (client.World.RunMetronome):
// the key needs the world's tick role (the owner's key, or a tick
// certificate from 'luminary cert issue --publish'). It takes the world
// from the relay's own metronome, or stands by while another peer holds
// it, until interrupted.
type WorldMetronomeCmd struct {
	Key      string        `required:"" help:"Key file holding the world's tick role."`
	Relay    string        `required:"" env:"LUMINARY_RELAY" help:"Relay base URL (http:// or https://)."`
	World    string        `required:"" help:"The world's instance id (its owner's public key)."`
	LeaseTTL time.Duration `name:"lease-ttl" default:"500ms" help:"Lease term asked of the relay: a standby takes over about this long after this process stops."`
	Timeout  time.Duration `default:"30s" help:"How long to wait for the relay when starting."`
	PasswordFlags
}

// Run runs the metronome until SIGINT or SIGTERM.
func (c *WorldMetronomeCmd) Run(env *Env) error {
	if err := relayURL(c.Relay); err != nil {
		return err
	}
	if c.LeaseTTL < 100*time.Millisecond || c.LeaseTTL > 10*time.Second || c.Timeout <= 0 {
		return usageError{errors.New("--lease-ttl must be 100ms to 10s and --timeout positive")}
	}
	key, err := c.readKey(env, c.Key)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(env.Ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(env.Stderr, nil))
	start, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	cl, err := dialRelay(start, c.Relay, client.Config{Key: key, RequireLogin: true, Logger: logger})
	if err != nil {
		return err
	}
	defer cl.Close()
	w, err := cl.Join(start, c.World)
	if err != nil {
		return fmt.Errorf("join %s: %w", c.World, err)
	}
	logger.Info("metronome: running", "world", c.World, "key", key.Public().String(), "relay", cl.RelayKey())
	return w.RunMetronome(ctx, client.MetronomeOptions{LeaseTTL: c.LeaseTTL, Logger: logger})
}
