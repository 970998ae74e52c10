// Package clienttest holds what the benchmarks that drive a world through
// the Go client share: the sending loop and the percentile of its
// latencies. It is imported by tests only.
package clienttest

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/krestianstvo/luminary/client"
)

// SendTimeout bounds each send of [SendLoad].
const SendTimeout = 60 * time.Second

// SendLoad sends n messages through worlds, with inflight sends in flight
// on each world, the payload of each made by payload from the moment it is
// sent, and returns every send's receipt latency (from Send to its
// receipt). On the first failed send it stops every sender and returns
// that error with the latencies gathered so far.
func SendLoad(worlds []*client.World, inflight, n int, payload func(sent time.Time) []byte) ([]time.Duration, error) {
	var (
		next     atomic.Int64
		stop     atomic.Bool
		mu       sync.Mutex
		out      = make([]time.Duration, 0, n)
		firstErr error
		wg       sync.WaitGroup
	)
	for _, w := range worlds {
		for range inflight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var local []time.Duration
				for !stop.Load() && next.Add(1) <= int64(n) {
					t0 := time.Now()
					ctx, cancel := context.WithTimeout(context.Background(), SendTimeout)
					_, err := w.Send(ctx, payload(t0))
					cancel()
					if err != nil {
						stop.Store(true)
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
						break
					}
					local = append(local, time.Since(t0))
				}
				mu.Lock()
				out = append(out, local...)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	return out, firstErr
}

// PercentileMS returns the p quantile (0 ≤ p ≤ 1) of xs in milliseconds,
// or 0 when xs is empty. It sorts xs.
func PercentileMS(xs []time.Duration, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return float64(xs[min(len(xs)-1, int(float64(len(xs))*p))]) / float64(time.Millisecond)
}
