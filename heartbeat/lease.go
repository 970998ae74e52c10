package heartbeat

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/krestianstvo/luminary/internal/clock"
)

// Lease decides who may sequence (tick) an instance, and hands out fencing
// epochs. [MemLease] and the lease of a [BoltLog] implement it; a later step
// implements it on a JetStream key-value bucket (revision = compare-and-set).
//
// Rules every implementation keeps:
//   - Epochs per instance strictly increase across grants, even across
//     restarts (the bbolt lease persists them), and are never below the
//     caller's min.
//   - A live grant of another holder blocks Acquire ([ErrLeaseHeld]). A
//     grant is live until ttl of monotonic time passes without Renew, or
//     until Release.
//   - Acquire by the current holder itself always succeeds with a new epoch
//     (a restarted process re-acquires at once; its old term is fenced by the
//     new epoch).
//
// The lease gives liveness (one sequencer at a time, takeover after ttl). It
// is not what makes two metronomes impossible: the log's compare-and-append
// and the epoch checks of [Acceptor] and [Follower] are, so a paused holder
// that wakes after losing its lease can publish nothing that is accepted.
type Lease interface {
	// Acquire grants the lease to holder for ttl with a new epoch >= min.
	Acquire(ctx context.Context, instance, holder string, ttl time.Duration, min uint64) (Grant, error)
	// Renew extends g by ttl. It fails with [ErrLeaseLost] once another
	// grant has been made or g was released; a lapsed grant that nobody
	// else took may be renewed.
	Renew(ctx context.Context, g Grant, ttl time.Duration) error
	// Release ends g early (no-op when g is not current).
	Release(ctx context.Context, g Grant) error
	// Current returns the live grant, if any.
	Current(ctx context.Context, instance string) (Grant, bool, error)
}

// Grant is one lease term.
type Grant struct {
	Instance string
	Holder   string
	Epoch    uint64
}

// leaseTable implements Lease over an optional persistence hook. Expiry is
// measured with clock timers (monotonic), never with wall-clock arithmetic.
type leaseTable struct {
	clk     clock.Clock
	mu      sync.Mutex
	recs    map[string]*leaseRec
	load    func(instance string) (epoch uint64, holder string, err error)
	persist func(instance string, epoch uint64, holder string) error
}

type leaseRec struct {
	epoch    uint64
	holder   string
	timer    clock.Timer // nil: not live (loaded after restart, or never armed)
	lapsed   bool
	released bool
}

func (r *leaseRec) live() bool {
	if r.released || r.timer == nil {
		return false
	}
	if !r.lapsed {
		select {
		case <-r.timer.C():
			r.lapsed = true
		default:
		}
	}
	return !r.lapsed
}

func (r *leaseRec) arm(clk clock.Clock, ttl time.Duration) {
	if r.timer != nil {
		r.timer.Reset(ttl)
	} else {
		r.timer = clk.NewTimer(ttl)
	}
	r.lapsed, r.released = false, false
}

func (t *leaseTable) rec(instance string) (*leaseRec, error) {
	if r := t.recs[instance]; r != nil {
		return r, nil
	}
	r := &leaseRec{}
	if t.load != nil {
		ep, holder, err := t.load(instance)
		if err != nil {
			return nil, err
		}
		r.epoch, r.holder = ep, holder
	}
	t.recs[instance] = r
	return r, nil
}

func (t *leaseTable) Acquire(ctx context.Context, instance, holder string, ttl time.Duration, min uint64) (Grant, error) {
	if err := ctx.Err(); err != nil {
		return Grant{}, err
	}
	if ttl <= 0 {
		return Grant{}, fmt.Errorf("heartbeat: lease ttl must be positive")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	r, err := t.rec(instance)
	if err != nil {
		return Grant{}, err
	}
	if r.live() && r.holder != holder {
		return Grant{}, fmt.Errorf("heartbeat: instance %s epoch %d: %w", instance, r.epoch, ErrLeaseHeld)
	}
	ep := max(r.epoch+1, min)
	if t.persist != nil {
		if err := t.persist(instance, ep, holder); err != nil {
			return Grant{}, err
		}
	}
	r.epoch, r.holder = ep, holder
	r.arm(t.clk, ttl)
	return Grant{Instance: instance, Holder: holder, Epoch: ep}, nil
}

func (t *leaseTable) Renew(ctx context.Context, g Grant, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	r, err := t.rec(g.Instance)
	if err != nil {
		return err
	}
	if r.epoch != g.Epoch || r.holder != g.Holder || r.released {
		return fmt.Errorf("heartbeat: instance %s epoch %d (current %d): %w", g.Instance, g.Epoch, r.epoch, ErrLeaseLost)
	}
	r.arm(t.clk, ttl)
	return nil
}

func (t *leaseTable) Release(ctx context.Context, g Grant) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, err := t.rec(g.Instance)
	if err != nil {
		return err
	}
	if r.epoch == g.Epoch && r.holder == g.Holder {
		r.released = true
		if r.timer != nil {
			r.timer.Stop()
		}
	}
	return ctx.Err()
}

func (t *leaseTable) Current(ctx context.Context, instance string) (Grant, bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, err := t.rec(instance)
	if err != nil {
		return Grant{}, false, err
	}
	if !r.live() {
		return Grant{}, false, ctx.Err()
	}
	return Grant{Instance: instance, Holder: r.holder, Epoch: r.epoch}, true, ctx.Err()
}

// MemLease is an in-memory [Lease] whose expiry runs on clk.
type MemLease struct{ leaseTable }

// NewMemLease returns an empty in-memory lease table.
func NewMemLease(clk clock.Clock) *MemLease {
	if clk == nil {
		clk = clock.System()
	}
	return &MemLease{leaseTable{clk: clk, recs: map[string]*leaseRec{}}}
}

var _ Lease = (*MemLease)(nil)
