package service_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/internal/nodetest"
)

// TestGunJSSeesTicks: an unmodified gun.js client in node follows a world
// with gun.get('lum/<I>/hb').on(...), as the Luminary seed does, and sees
// the tick advance at the configured rate (20/s): it counts distinct ticks
// over a window of wall time it measures itself. The bound is generous
// (±30 %): it is a count, not a timing assertion on our code's speed.
// Croquet time computed from HAM states with the seed's formula never goes
// backwards.
func TestGunJSSeesTicks(t *testing.T) {
	nodetest.Require(t)
	r := startRelay(t, relayOpts{dir: "-"})
	inst := r.openWorld(t, "gunjs", 20)
	const window = 3 * time.Second
	p := nodetest.Start(t, "testdata/node/ticks.mjs", r.HTTP+"/gun", inst, "3000")
	p.WaitLine(t, "FIRST ", 30*time.Second)
	line := p.WaitLine(t, "RESULT ", window+30*time.Second)
	var res struct {
		Ticks    int     `json:"ticks"`
		WindowMS float64 `json:"window_ms"`
		FirstS   float64 `json:"first_s"`
		LastS    float64 `json:"last_s"`
		Monotone bool    `json:"monotone"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "RESULT ")), &res); err != nil {
		t.Fatal(err)
	}
	rate := float64(res.Ticks) / (res.WindowMS / 1000)
	t.Logf("gun.js saw %d ticks in %.0f ms: %.1f/s; Croquet time %.3f s .. %.3f s", res.Ticks, res.WindowMS, rate, res.FirstS, res.LastS)
	if rate < 14 || rate > 26 {
		t.Fatalf("gun.js saw %.1f ticks/s, want 20 ± 30 %%", rate)
	}
	if !res.Monotone || res.LastS <= res.FirstS {
		t.Fatalf("Croquet time from HAM states: %+v", res)
	}
}
