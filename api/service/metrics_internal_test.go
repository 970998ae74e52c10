package service

import (
	"math"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestRoundHistogramMatchesPrometheus checks that the lock-guarded
// histogram behind tick_lateness_seconds and tick_interval_deviation_seconds
// exposes exactly what a prometheus.Histogram with the same buckets would,
// values on a bucket bound included (buckets are "less or equal").
func TestRoundHistogramMatchesPrometheus(t *testing.T) {
	bounds := []float64{.001, .01, .1, 1}
	values := []float64{0, .0005, .001, .0010001, .01, .05, .1, .5, 1, 1.5, 30}
	want := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Help: "h", Buckets: bounds})
	got := newRoundHistogram("h", "h", bounds)
	for _, v := range values {
		want.Observe(v)
		got.observe(v)
	}
	var w, g dto.Metric
	if err := want.Write(&w); err != nil {
		t.Fatal(err)
	}
	if err := got.metric().Write(&g); err != nil {
		t.Fatal(err)
	}
	wh, gh := w.GetHistogram(), g.GetHistogram()
	if wh.GetSampleCount() != gh.GetSampleCount() || math.Abs(wh.GetSampleSum()-gh.GetSampleSum()) > 1e-12 {
		t.Fatalf("count/sum: got %d/%g, want %d/%g", gh.GetSampleCount(), gh.GetSampleSum(), wh.GetSampleCount(), wh.GetSampleSum())
	}
	if len(wh.GetBucket()) != len(gh.GetBucket()) {
		t.Fatalf("buckets: got %d, want %d", len(gh.GetBucket()), len(wh.GetBucket()))
	}
	for i, wb := range wh.GetBucket() {
		gb := gh.GetBucket()[i]
		if wb.GetUpperBound() != gb.GetUpperBound() || wb.GetCumulativeCount() != gb.GetCumulativeCount() {
			t.Errorf("bucket %d: got le=%g %d, want le=%g %d", i, gb.GetUpperBound(), gb.GetCumulativeCount(),
				wb.GetUpperBound(), wb.GetCumulativeCount())
		}
	}
}
