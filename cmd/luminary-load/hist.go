package main

import (
	"math"
	"math/bits"
	"time"
)

// Histogram layout: values below 2^histSubBits are counted exactly; above,
// each power of two is split into 2^(histSubBits-1) equal buckets, so a bucket
// is never wider than 1/64 of its lower bound (relative error < 1.6%), in the
// spirit of an HDR histogram. Values are nanoseconds.
const (
	histSubBits = 7
	histSub     = 1 << histSubBits // 128 exact values
	histHalf    = histSub / 2      // 64 buckets per power of two
	histBuckets = histSub + (64-histSubBits)*histHalf
)

// histogram records durations with bounded relative error and constant
// memory. The zero value is not ready; use newHistogram. It is not safe for
// concurrent use: give each goroutine its own and merge.
type histogram struct {
	counts []uint64
	n      uint64
	sum    float64
	min    int64
	max    int64
}

func newHistogram() *histogram {
	return &histogram{counts: make([]uint64, histBuckets), min: math.MaxInt64}
}

// bucketOf returns the bucket index of v (v >= 0).
func bucketOf(v uint64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits // >= 1
	top := v >> shift                    // in [64, 127]
	return histSub + (shift-1)*histHalf + int(top-histHalf)
}

// bucketBounds returns the inclusive lower and exclusive upper value of a bucket.
func bucketBounds(i int) (lo, hi uint64) {
	if i < histSub {
		return uint64(i), uint64(i) + 1
	}
	j := i - histSub
	shift := j/histHalf + 1
	top := uint64(j%histHalf + histHalf)
	return top << shift, (top + 1) << shift
}

// record adds one duration; negative values count as 0.
func (h *histogram) record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(uint64(v))]++
	h.n++
	h.sum += float64(v)
	h.min = min(h.min, v)
	h.max = max(h.max, v)
}

// merge adds o's samples to h.
func (h *histogram) merge(o *histogram) {
	if o == nil || o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// count returns the number of samples.
func (h *histogram) count() uint64 { return h.n }

// quantile returns the value at quantile q in [0,1]: the midpoint of the
// bucket holding the sample of rank ceil(q*n), clamped to the exact min and
// max. It returns 0 for an empty histogram.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q <= 0 {
		return time.Duration(h.min)
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketBounds(i)
			mid := int64(lo + (hi-1-lo)/2)
			return time.Duration(min(max(mid, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

// mean returns the arithmetic mean.
func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// latencySummary is the JSON form of a histogram, in milliseconds.
type latencySummary struct {
	Count uint64  `json:"count"`
	MinMs float64 `json:"min_ms"`
	P50Ms float64 `json:"p50_ms"`
	P90Ms float64 `json:"p90_ms"`
	P99Ms float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	MaxMs float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

func ms(d time.Duration) float64 {
	return math.Round(float64(d)/1e3) / 1e3
}

func (h *histogram) summary() latencySummary {
	if h.n == 0 {
		return latencySummary{}
	}
	return latencySummary{
		Count: h.n,
		MinMs: ms(time.Duration(h.min)),
		P50Ms: ms(h.quantile(0.50)),
		P90Ms: ms(h.quantile(0.90)),
		P99Ms: ms(h.quantile(0.99)),
		P999:  ms(h.quantile(0.999)),
		MaxMs: ms(time.Duration(h.max)),
		Mean:  ms(h.mean()),
	}
}
