package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/client"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/keys"
	"github.com/krestianstvo/luminary/world"
)

// WorldCmd groups the private-world subcommands. Create, add-member,
// remove-member and members work either through a running relay
// (--relay: package client, logged in with the key) or on a stopped
// relay's data directory (--data: its database file is locked while the
// relay runs). Either way every write is judged by the relay's own checks
// (package auth) before anything is stored.
type WorldCmd struct {
	Host         WorldHostCmd         `cmd:"" help:"Ask a running relay to host the world owned by a key (it gets the owner's tick certificate and runs the metronome)."`
	Create       WorldCreateCmd       `cmd:"" help:"Make the instance of an owner key a private world (epoch 1)."`
	AddMember    WorldAddMemberCmd    `cmd:"" help:"Add a member: certificate for its roles, access, and the current content key wrapped for it."`
	RemoveMember WorldRemoveMemberCmd `cmd:"" help:"Remove a member: revoke its certificates and rotate the content key (new epoch)."`
	Members      WorldMembersCmd      `cmd:"" help:"List a private world's members, roles and key epochs."`
	Metronome    WorldMetronomeCmd    `cmd:"" help:"Run a world's metronome and sequencer here, through the relay that hosts it (needs the tick role)."`
}

// worldStore flags: where the world's records live.
type worldStore struct {
	Relay       string        `help:"Base URL (http:// or https://) of a running relay: read and write the world through it, logged in with the key (--data is then not used; not read from LUMINARY_RELAY, so that --data keeps its meaning)."`
	Timeout     time.Duration `default:"30s" help:"With --relay: how long the whole command may take."`
	Data        string        `default:"./luminary-data" env:"LUMINARY_DATA" help:"Without --relay: the stopped relay's data directory (<data>/graph.db)."`
	LockTimeout time.Duration `default:"2s" help:"Without --relay: how long to wait for the database lock held by a running relay."`
}

// open returns a world.Store that applies the relay's own write checks
// (package auth, secure mode): through the relay named by --relay, logged
// in with key (nil: anonymous, public worlds only), or on the graph in the
// data directory. The returned context bounds the command with --relay.
func (s worldStore) open(env *Env, key *keys.Private, create bool) (context.Context, world.Store, func(), error) {
	if s.Relay != "" {
		if err := relayURL(s.Relay); err != nil {
			return nil, nil, nil, err
		}
		ctx, cancel := context.WithTimeout(env.Ctx, s.Timeout)
		cl, err := dialRelay(ctx, s.Relay, client.Config{Key: key, RequireLogin: key != nil})
		if err != nil {
			cancel()
			return nil, nil, nil, err
		}
		ws, err := cl.WorldStore()
		if err != nil {
			cl.Close()
			cancel()
			return nil, nil, nil, err
		}
		return ctx, ws, func() { cl.Close(); cancel() }, nil
	}
	path := filepath.Join(s.Data, "graph.db")
	if !create {
		if _, err := os.Stat(path); err != nil {
			return nil, nil, nil, fmt.Errorf("no graph at %s: %w", path, err)
		}
	} else if err := os.MkdirAll(s.Data, 0o700); err != nil {
		return nil, nil, nil, fmt.Errorf("data directory: %w", err)
	}
	bs, err := graph.OpenBolt(path, graph.BoltOptions{OpenTimeout: s.LockTimeout})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open %s (is the relay running? use --relay, or stop it first): %w", path, err)
	}
	db := graph.NewDB(bs, graph.DBConfig{Clock: clock.System()})
	checker, err := auth.New(auth.Config{Lookup: auth.StoreLookup(db)})
	if err != nil {
		bs.Close()
		return nil, nil, nil, err
	}
	closer := func() {
		db.Close()
		bs.Close()
	}
	return env.Ctx, world.DBStore{DB: db, Checker: checker}, closer, nil
}

// worldKey flags: the signing key (owner or admin).
type worldKey struct {
	Key string `required:"" type:"existingfile" help:"Key file of the owner or an admin of the world."`
	PasswordFlags
}

func (k worldKey) load(env *Env) (*keys.Private, error) {
	pw, err := k.password(env, false)
	if err != nil {
		return nil, err
	}
	defer clear(pw)
	return keys.ReadFile(k.Key, pw)
}

// instanceOf returns the --instance flag, or the key's own instance.
func instanceOf(flag string, key *keys.Private) (string, error) {
	if flag == "" {
		return key.Public().String(), nil
	}
	if _, err := keys.ParsePublic(flag); err != nil {
		return "", usageError{fmt.Errorf("--instance: %w", err)}
	}
	return flag, nil
}

// WorldCreateCmd makes the owner's instance a private world.
type WorldCreateCmd struct {
	worldKey
	worldStore
}

// Run creates the world and prints the instance id.
func (c *WorldCreateCmd) Run(env *Env) error {
	owner, err := c.load(env)
	if err != nil {
		return err
	}
	ctx, s, closeStore, err := c.open(env, owner, true)
	if err != nil {
		return err
	}
	defer closeStore()
	if _, err := world.Create(ctx, s, owner); err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, owner.Public().String())
	return nil
}

// WorldAddMemberCmd adds a member.
type WorldAddMemberCmd struct {
	Member   string        `required:"" help:"Public key of the new member (k1:… or SEA x.y)."`
	Instance string        `help:"Instance id (the owner's public key); default: the --key's own."`
	Roles    []string      `default:"message,snapshot" sep:"," help:"Roles to grant (message, snapshot, tick, admin)."`
	ValidFor time.Duration `default:"8760h" help:"How long the member's certificate is valid."`
	History  bool          `default:"true" negatable:"" help:"Also give the member every older content key (needed to read the history and the latest snapshot)."`
	worldKey
	worldStore
}

// Run adds the member and prints its certificate serial.
func (c *WorldAddMemberCmd) Run(env *Env) error {
	member, err := keys.ParsePublic(c.Member)
	if err != nil {
		return usageError{fmt.Errorf("--member: %w", err)}
	}
	var roles []auth.Role
	for _, r := range c.Roles {
		role := auth.Role(strings.TrimSpace(r))
		if !role.Known() {
			return usageError{fmt.Errorf("--roles: unknown role %q", r)}
		}
		roles = append(roles, role)
	}
	if c.ValidFor <= 0 {
		return usageError{errors.New("--valid-for must be positive")}
	}
	by, err := c.load(env)
	if err != nil {
		return err
	}
	inst, err := instanceOf(c.Instance, by)
	if err != nil {
		return err
	}
	ctx, s, closeStore, err := c.open(env, by, false)
	if err != nil {
		return err
	}
	defer closeStore()
	m, err := world.AddMember(ctx, s, inst, by, member, world.AddOptions{Roles: roles, ValidFor: c.ValidFor, History: c.History})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "added %s (roles %s, certificate %s)\n", m.Key, joinRoles(m.Roles), strings.Join(m.Certs, ","))
	return nil
}

// WorldRemoveMemberCmd removes a member and rotates the key.
type WorldRemoveMemberCmd struct {
	Member   string `required:"" help:"Public key of the member to remove."`
	Instance string `help:"Instance id (the owner's public key); default: the --key's own."`
	worldKey
	worldStore
}

// Run removes the member and prints the new key epoch.
func (c *WorldRemoveMemberCmd) Run(env *Env) error {
	if _, err := keys.ParsePublic(c.Member); err != nil {
		return usageError{fmt.Errorf("--member: %w", err)}
	}
	by, err := c.load(env)
	if err != nil {
		return err
	}
	inst, err := instanceOf(c.Instance, by)
	if err != nil {
		return err
	}
	ctx, s, closeStore, err := c.open(env, by, false)
	if err != nil {
		return err
	}
	defer closeStore()
	k, err := world.RemoveMember(ctx, s, inst, by, c.Member)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "removed %s; content key rotated to epoch %d\n", c.Member, k.Epoch())
	return nil
}

// WorldMembersCmd lists the members.
type WorldMembersCmd struct {
	Instance string `required:"" help:"Instance id (the owner's public key)."`
	Key      string `type:"existingfile" help:"With --relay: key file to log in with (the owner's, an admin's or a member's: a private world's records are served only to them)."`
	PasswordFlags
	worldStore
}

// Run prints the world record and one line per member.
func (c *WorldMembersCmd) Run(env *Env) error {
	if _, err := keys.ParsePublic(c.Instance); err != nil {
		return usageError{fmt.Errorf("--instance: %w", err)}
	}
	key, err := c.optionalKey(env, c.Key)
	if err != nil {
		return err
	}
	ctx, s, closeStore, err := c.open(env, key, false)
	if err != nil {
		return err
	}
	defer closeStore()
	w, err := world.Load(ctx, s, c.Instance)
	if err != nil {
		return err
	}
	kind := "key-based"
	if w.Password != nil {
		kind = "password (" + w.Password.Params.String() + ")"
	}
	fmt.Fprintf(env.Stdout, "instance %s\nkind     %s\nepoch    %d\ncreated  %s\n\n", w.Instance, kind, w.Epoch, w.Created.UTC().Format(time.RFC3339))
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tROLES\tADDED\tBY\tSTATUS\tCURRENT KEY")
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", w.Instance, "owner", "-", "-", "owner", yesNo(w.HasKey(w.Epoch, w.Instance)))
	for _, m := range w.Members() {
		status := "member"
		if m.Removed {
			status = "removed " + m.RemovedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.Key, joinRoles(m.Roles), m.AddedAt.UTC().Format(time.RFC3339),
			short(m.AddedBy), status, yesNo(w.HasKey(w.Epoch, m.Key)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(w.Rejected) > 0 {
		fmt.Fprintf(env.Stderr, "luminary: %d record(s) did not verify and were ignored:\n", len(w.Rejected))
		for _, e := range w.Rejected {
			fmt.Fprintln(env.Stderr, "  ", e)
		}
	}
	return nil
}

func joinRoles(rs []auth.Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ",")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// short abbreviates a key text for tables.
func short(k string) string {
	if len(k) > 16 {
		return k[:12] + "…"
	}
	return k
}
