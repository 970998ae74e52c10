// Command luminary is the Luminary relay and its tools.
//
//	luminary serve [flags]     run the relay (Gun wire at /gun, /healthz, /readyz, /metrics)
//	luminary keys new|show     create a password-encrypted key file, print its public key
//	luminary sign --key FILE   sign data into a SEA envelope
//	luminary verify --pub PUB  verify a SEA envelope (exit 0 valid, 1 not)
//	luminary cert issue        sign a certificate for a world; --relay URL publishes it
//	luminary world ...         private worlds: create, add-member, remove-member, members
//	luminary history export|verify  export a world's history, verify one (exit 1 at the first defect)
//	luminary replay FILE       verify a history and print its ordered stream with times
//	luminary --version         print the version
//
// Every flag of serve is mirrored by an environment variable (LUMINARY_ADDR,
// LUMINARY_DATA, LUMINARY_PEERS, ...); `luminary serve --help` lists them.
// Exit codes: 0 ok, 1 failure, 2 usage error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/alecthomas/kong"
)

// CLI is the root command line.
type CLI struct {
	Version kong.VersionFlag `help:"Print the version and exit."`

	Serve   ServeCmd   `cmd:"" help:"Run the relay."`
	Keys    KeysCmd    `cmd:"" help:"Manage key files (new, show)."`
	Sign    SignCmd    `cmd:"" help:"Sign data into a SEA envelope with a key file."`
	Verify  VerifyCmd  `cmd:"" help:"Verify a SEA envelope; exit 0 when valid, 1 when not."`
	History HistoryCmd `cmd:"" help:"Export or verify an instance's history (the timegraph)."`
	Replay  ReplayCmd  `cmd:"" help:"Verify an exported history and print its ordered stream with Croquet times."`
	Cert    CertCmd    `cmd:"" help:"Issue certificates granting roles in a world (optionally publishing them on a relay)."`
	World   WorldCmd   `cmd:"" help:"Manage private worlds (create, add-member, remove-member, members)."`
}

// Env is what subcommands receive besides their flags.
type Env struct {
	Ctx    context.Context
	Stdout io.Writer
	Stderr io.Writer
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// exitRequest carries kong's request to exit (after --help or --version)
// out of the parser.
type exitRequest struct{ code int }

// run parses args and runs the selected command. It returns the process
// exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	var cli CLI
	parser, err := kong.New(&cli,
		kong.Name("luminary"),
		kong.Description("Luminary: a Gun relay with a signed, identity-aware heartbeat."),
		kong.Writers(stdout, stderr),
		kong.Vars{"version": version()},
		kong.Exit(func(code int) { panic(exitRequest{code}) }),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	)
	if err != nil {
		fmt.Fprintln(stderr, "luminary:", err)
		return exitFailure
	}
	defer func() {
		if r := recover(); r != nil {
			req, ok := r.(exitRequest)
			if !ok {
				panic(r)
			}
			code = req.code
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintln(stderr, "luminary:", err)
		var pe *kong.ParseError
		if errors.As(err, &pe) && pe.Context != nil {
			fmt.Fprintln(stderr, "Run 'luminary --help' for usage.")
		}
		return exitUsage
	}
	if err := kctx.Run(&Env{Ctx: ctx, Stdout: stdout, Stderr: stderr}); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(stderr, "luminary:", err)
			return exitUsage
		}
		fmt.Fprintln(stderr, "luminary:", err)
		return exitFailure
	}
	return exitOK
}

// usageError marks an error caused by bad flags, found after parsing.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// version returns the module version and the VCS revision and time the
// binary was built from, when the build recorded them.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "luminary (unknown version)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, when, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	parts := []string{"luminary", v}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		parts = append(parts, rev+dirty)
	}
	if when != "" {
		parts = append(parts, when)
	}
	parts = append(parts, bi.GoVersion)
	return strings.Join(parts, " ")
}
