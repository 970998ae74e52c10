// Package heartbeattest is a deterministic test harness for package
// heartbeat: seeded keys, a fake-clock simulation with an in-memory network
// that delays, loses, duplicates and reorders messages, follower peers with a
// small deterministic application, senders that retry until acknowledged,
// and hosts (sequencers) that can be crashed, paused and revived.
//
// Start with [NewWorld]: add hosts, peers and senders, then call
// [World.Run] to advance simulated time. Everything runs on the caller's
// goroutine, driven by one fake clock and one seeded random source, so a
// seed reproduces a run exactly. Nothing sleeps.
package heartbeattest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/keys"
)

// Key returns a deterministic secp256k1 key derived from seed.
func Key(seed uint64) *keys.Private {
	r := rand.New(rand.NewPCG(seed, 0x6c756d696e617279))
	for {
		var b [32]byte
		for i := 0; i < 32; i += 8 {
			binary.BigEndian.PutUint64(b[i:], r.Uint64())
		}
		k, err := keys.ParsePrivate("k1priv:" + base64.RawURLEncoding.EncodeToString(b[:]))
		if err == nil {
			return k
		}
	}
}

// Signer returns heartbeat.KeySigner(Key(seed)).
func Signer(seed uint64) heartbeat.Signer { return heartbeat.KeySigner(Key(seed)) }

// Epoch is the fake clock's starting wall time in every simulation.
var Epoch = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// SkewClock is a clock.Clock whose wall clock is a fake clock's plus an
// adjustable offset, while its timers run on the fake's monotonic time. It
// models a peer with a wrong clock, or an NTP step (SetOffset), without
// disturbing other peers sharing the fake.
type SkewClock struct {
	*clock.Fake
	mu     sync.Mutex
	offset time.Duration
}

// NewSkewClock returns a SkewClock over f with the given offset.
func NewSkewClock(f *clock.Fake, offset time.Duration) *SkewClock {
	return &SkewClock{Fake: f, offset: offset}
}

// Now returns the fake's wall time plus the offset.
func (c *SkewClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Fake.Now().Add(c.offset)
}

// SetOffset steps the wall clock by changing the offset.
func (c *SkewClock) SetOffset(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset = d
}

// App is a tiny deterministic application: it folds every applied entry
// into a running hash, so two peers that applied the same entries at the same
// times hold the same Hash. It checks that time never goes backwards.
type App struct {
	Seq   uint64
	Time  float64
	Count uint64
	Hash  [32]byte
}

// Apply applies one follower item. It returns an error if time goes
// backwards.
func (a *App) Apply(it heartbeat.Item) error {
	if it.Time < a.Time {
		return fmt.Errorf("time went backwards: %v after %v", it.Time, a.Time)
	}
	a.Time = it.Time
	if it.Entry == nil {
		return nil
	}
	e := it.Entry
	h := e.Hash()
	var buf [8 + 8]byte
	binary.BigEndian.PutUint64(buf[:8], e.Seq)
	binary.BigEndian.PutUint64(buf[8:], math.Float64bits(it.Time))
	s := sha256.New()
	s.Write(a.Hash[:])
	s.Write(h[:])
	s.Write(buf[:])
	s.Sum(a.Hash[:0])
	a.Seq = e.Seq
	a.Count++
	return nil
}

// Snapshot serialises the state deterministically.
func (a *App) Snapshot() []byte {
	b := make([]byte, 0, 8*3+32)
	b = binary.BigEndian.AppendUint64(b, a.Seq)
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(a.Time))
	b = binary.BigEndian.AppendUint64(b, a.Count)
	return append(b, a.Hash[:]...)
}

// RestoreApp parses a snapshot made by Snapshot.
func RestoreApp(b []byte) (*App, error) {
	if len(b) != 56 {
		return nil, fmt.Errorf("heartbeattest: snapshot of %d bytes", len(b))
	}
	a := &App{Seq: binary.BigEndian.Uint64(b), Time: math.Float64frombits(binary.BigEndian.Uint64(b[8:])), Count: binary.BigEndian.Uint64(b[16:])}
	copy(a.Hash[:], b[24:])
	return a, nil
}

// Ctx is a background context for harness calls.
var Ctx = context.Background()
