package main

import (
	"errors"
	"io"
	"os"
	"testing"

	"github.com/alecthomas/kong"

	"github.com/krestianstvo/luminary/auth"
)

// parseServe parses `luminary serve args...` the way run does, without
// running it.
func parseServe(t *testing.T, args ...string) (*ServeCmd, error) {
	t.Helper()
	var cli CLI
	parser, err := kong.New(&cli, kong.Name("luminary"), kong.Writers(io.Discard, io.Discard),
		kong.Vars{"version": "test"}, kong.Exit(func(int) { t.Fatal("kong asked to exit") }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parser.Parse(append([]string{"serve"}, args...)); err != nil {
		return nil, err
	}
	return &cli.Serve, nil
}

// unsetenv removes environment variables for the test (restored after).
func unsetenv(t *testing.T, names ...string) {
	for _, k := range names {
		t.Setenv(k, "")
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
}

func TestServeAuthModeFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want auth.Mode
		bad  bool // a usage error after parsing
	}{
		{name: "default", want: auth.Secure},
		{name: "secure", args: []string{"--secure"}, want: auth.Secure},
		{name: "secure=true", args: []string{"--secure=true"}, want: auth.Secure},
		{name: "secure=false", args: []string{"--secure=false"}, want: auth.Open},
		{name: "auth-mode open", args: []string{"--auth-mode", "open"}, want: auth.Open},
		{name: "auth-mode secure", args: []string{"--auth-mode=secure"}, want: auth.Secure},
		{name: "both agree, open", args: []string{"--auth-mode", "open", "--secure=false"}, want: auth.Open},
		{name: "both agree, secure", args: []string{"--auth-mode", "secure", "--secure"}, want: auth.Secure},
		{name: "disagree", args: []string{"--auth-mode", "secure", "--secure=false"}, bad: true},
		{name: "disagree the other way", args: []string{"--auth-mode", "open", "--secure"}, bad: true},
		{name: "env secure=false", env: map[string]string{"LUMINARY_SECURE": "false"}, want: auth.Open},
		{name: "env auth mode open", env: map[string]string{"LUMINARY_AUTH_MODE": "open"}, want: auth.Open},
		{name: "flag over env", args: []string{"--secure"}, env: map[string]string{"LUMINARY_SECURE": "false"}, want: auth.Secure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unsetenv(t, "LUMINARY_SECURE", "LUMINARY_AUTH_MODE")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cmd, err := parseServe(t, tc.args...)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			got, err := cmd.ServiceFlags.mode()
			if tc.bad {
				var ue usageError
				if !errors.As(err, &ue) {
					t.Fatalf("mode() = %v, %v; want a usage error", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("mode() = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestServeAuthModeRejectsUnknown(t *testing.T) {
	unsetenv(t, "LUMINARY_SECURE", "LUMINARY_AUTH_MODE")
	cmd, err := parseServe(t, "--auth-mode", "lax")
	if err != nil {
		t.Fatal(err)
	}
	var ue usageError
	if _, err := cmd.ServiceFlags.mode(); !errors.As(err, &ue) {
		t.Fatalf("--auth-mode lax: %v, want a usage error", err)
	}
	if _, err := parseServe(t, "--secure=maybe"); err == nil {
		t.Fatal("--secure=maybe parsed")
	}
}
