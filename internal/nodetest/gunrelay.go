package nodetest

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// RelayStartTimeout bounds how long [StartGunRelay] waits for the relay to
// listen.
const RelayStartTimeout = 20 * time.Second

// GunRelayOptions configures [StartGunRelay]. The zero value is a relay with
// AXE and RAD storage off.
type GunRelayOptions struct {
	// AXE turns on gun's AXE routing (the node default, off here because it
	// drops pushes to subscribers under load; see research/gun.md 3.6).
	AXE bool
	// Radisk turns on RAD storage in a fresh temporary directory.
	Radisk bool
	// Port to listen on; 0 lets the OS choose, which cannot race.
	Port int
	// Gun holds extra options for the Gun constructor, for example
	// {"secure": true}. web, multicast, axe, radisk, localStorage and stats
	// are always set by the relay script.
	Gun map[string]any
}

// StartGunRelay starts a stock gun.js relay (the pinned npm gun package, the
// script internal/nodetest/js/gunrelay.mjs) in its own node process on
// 127.0.0.1 and waits until it listens. It returns the relay URL,
// http://127.0.0.1:<port>/gun, which gun.js clients use as a peer (a Go
// websocket client dials ws://127.0.0.1:<port>/gun), and the process. The
// relay runs with multicast off, and writes only to a temporary directory.
func StartGunRelay(t testing.TB, opts GunRelayOptions) (string, *Proc) {
	t.Helper()
	Require(t)
	cfg := map[string]any{
		"axe":    opts.AXE,
		"radisk": opts.Radisk,
		"port":   opts.Port,
		"file":   filepath.Join(t.TempDir(), "radata"),
	}
	if opts.Gun != nil {
		cfg["gun"] = opts.Gun
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("nodetest: relay options: %v", err)
	}
	script := filepath.Join(Root(t), "internal", "nodetest", "js", "gunrelay.mjs")
	p := Start(t, script, string(raw))
	line := p.WaitLine(t, "READY ", RelayStartTimeout)
	var port int
	if _, err := fmt.Sscanf(strings.TrimPrefix(line, "READY "), "%d", &port); err != nil || port <= 0 {
		t.Fatalf("nodetest: bad relay ready line %q", line)
	}
	return fmt.Sprintf("http://127.0.0.1:%d/gun", port), p
}

// WebSocketURL turns a relay URL such as http://127.0.0.1:8765/gun into the
// address a websocket client dials, ws://127.0.0.1:8765/gun.
func WebSocketURL(url string) string {
	if rest, ok := strings.CutPrefix(url, "https://"); ok {
		return "wss://" + rest
	}
	if rest, ok := strings.CutPrefix(url, "http://"); ok {
		return "ws://" + rest
	}
	return url
}
