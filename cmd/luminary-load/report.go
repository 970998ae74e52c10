package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// load1 returns the 1-minute load average from /proc/loadavg, or -1.
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// selfCPU returns this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU returns the user+system CPU time of process pid from
// /proc/pid/stat (fields 14 and 15, in USER_HZ = 100 ticks per second on
// Linux). It returns -1 when pid is 0 or unreadable.
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	s := string(b)
	// The command name may contain spaces; fields restart after the last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	// After ')': f[0] is field 3 (state); utime is field 14 → f[11], stime f[12].
	if len(f) < 13 {
		return -1
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(ut+st) * (time.Second / 100)
}

// cpuWatch measures CPU used by this process and, optionally, the relay.
type cpuWatch struct {
	pid        int
	self, peer time.Duration
}

func startCPU(pid int) cpuWatch {
	return cpuWatch{pid: pid, self: selfCPU(), peer: procCPU(pid)}
}

// stop returns seconds of CPU used since start by the tool and the relay
// (-1 when the relay is unknown).
func (w cpuWatch) stop() (tool, relay float64) {
	tool = (selfCPU() - w.self).Seconds()
	relay = -1
	if w.peer >= 0 {
		if now := procCPU(w.pid); now >= 0 {
			relay = (now - w.peer).Seconds()
		}
	}
	return round3(tool), round3(relay)
}

func round3(v float64) float64 {
	if v < 0 {
		return v
	}
	return math.Round(v*1000) / 1000
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// writeJSON writes v as indented JSON to path ("" writes nothing).
func writeJSON(path string, v any) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("luminary-load: encode results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("luminary-load: write %s: %w", path, err)
	}
	return nil
}

func fmtMs(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func fmtCPU(v float64) string {
	if v < 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func fmtPerOp(cpuSeconds float64, ops uint64) string {
	if cpuSeconds < 0 || ops == 0 {
		return "-"
	}
	return strconv.FormatFloat(cpuSeconds*1e6/float64(ops), 'f', 0, 64)
}

// printPutsTable prints one row per puts result.
func printPutsTable(w io.Writer, rs []*putsResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "relay\twriters\twindow\tacked/s\tsent/s\terrors\ttimeouts\tack p50 ms\tp90\tp99\tmax\trelay µs/ack\ttool cpu s\tother rx/put\tload1\t")
	for _, r := range rs {
		a := r.AckLatency
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.0f\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%.2f→%.2f\t\n",
			r.Label, r.Params.Writers, r.Params.Window, r.AckedPerSec, r.SentPerSec, r.Errors, r.Timeouts,
			fmtMs(a.P50Ms), fmtMs(a.P90Ms), fmtMs(a.P99Ms), fmtMs(a.MaxMs),
			fmtPerOp(r.RelayCPUSeconds, r.AckedInWindow), fmtCPU(r.ToolCPUSeconds),
			float64(r.OtherFrames)/float64(max(r.Sent, 1)), r.Load1Start, r.Load1End)
	}
	tw.Flush()
}

// printFanoutTable prints one row per rate step of each fanout result.
func printFanoutTable(w io.Writer, rs []*fanoutResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "relay\tsubs\trate/s\tsent/s\tdelivered\tof expected\tdup\tdeliveries/frame\tlat p50 ms\tp90\tp99\tmax\tack p50\tack p99\trelay µs/delivery\tload1\tpass\t")
	for _, r := range rs {
		for _, s := range r.Steps {
			pass := "no"
			if s.Pass {
				pass = "yes"
			}
			perFrame := "-"
			if s.Frames > 0 {
				perFrame = strconv.FormatFloat(float64(s.Received)/float64(s.Frames), 'f', 1, 64)
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%d\t%.2f%%\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%s\t\n",
				r.Label, r.Subscribed, s.Rate, s.SentPerSec, s.Received, s.DeliveredPct, s.Duplicates, perFrame,
				fmtMs(s.Latency.P50Ms), fmtMs(s.Latency.P90Ms), fmtMs(s.Latency.P99Ms), fmtMs(s.Latency.MaxMs),
				fmtMs(s.AckLatency.P50Ms), fmtMs(s.AckLatency.P99Ms),
				fmtPerOp(s.RelayCPUSeconds, s.Received), s.Load1, pass)
		}
	}
	tw.Flush()
	for _, r := range rs {
		held := "none"
		if r.HighestRateHeld > 0 {
			held = strconv.Itoa(r.HighestRateHeld) + " puts/s"
		}
		fmt.Fprintf(w, "%s: highest rate held with 100%% delivery to %d subscribers and p99 < %v: %s\n",
			r.Label, r.Subscribed, time.Duration(r.Params.P99GoalMs*float64(time.Millisecond)), held)
	}
}

// runReport reads result files and prints them side by side.
func runReport(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("luminary-load: report needs result files")
	}
	var puts []*putsResult
	var fans []*fanoutResult
	var ticks []*ticksResult
	var msgs []*messagesResult
	var verifies []*verifyResult
	for _, path := range args {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("luminary-load: %w", err)
		}
		var head struct {
			Mode string `json:"mode"`
		}
		if err := json.Unmarshal(b, &head); err != nil {
			return fmt.Errorf("luminary-load: %s: %w", path, err)
		}
		switch head.Mode {
		case "puts":
			var r putsResult
			if err := json.Unmarshal(b, &r); err != nil {
				return fmt.Errorf("luminary-load: %s: %w", path, err)
			}
			puts = append(puts, &r)
		case "fanout":
			var r fanoutResult
			if err := json.Unmarshal(b, &r); err != nil {
				return fmt.Errorf("luminary-load: %s: %w", path, err)
			}
			fans = append(fans, &r)
		case "ticks":
			var r ticksResult
			if err := json.Unmarshal(b, &r); err != nil {
				return fmt.Errorf("luminary-load: %s: %w", path, err)
			}
			ticks = append(ticks, &r)
		case "messages":
			var r messagesResult
			if err := json.Unmarshal(b, &r); err != nil {
				return fmt.Errorf("luminary-load: %s: %w", path, err)
			}
			msgs = append(msgs, &r)
		case "verify":
			var r verifyResult
			if err := json.Unmarshal(b, &r); err != nil || r.Rate == nil {
				return fmt.Errorf("luminary-load: %s: bad verify result (%v)", path, err)
			}
			verifies = append(verifies, &r)
		default:
			return fmt.Errorf("luminary-load: %s: unknown mode %q", path, head.Mode)
		}
	}
	if len(puts) > 0 {
		fmt.Fprintln(stdout, "== puts: acked puts/s and ack latency ==")
		printPutsTable(stdout, puts)
		fmt.Fprintln(stdout)
	}
	if len(ticks) > 0 {
		// By instance count, then gun.js before Luminary (the order of the
		// script's runs), whatever order the files came in.
		rank := func(r *ticksResult) int {
			if r.Kind == "gun" {
				return 0
			}
			return 1
		}
		slices.SortStableFunc(ticks, func(a, b *ticksResult) int {
			if a.Instances != b.Instances {
				return a.Instances - b.Instances
			}
			if rank(a) != rank(b) {
				return rank(a) - rank(b)
			}
			return strings.Compare(a.Label, b.Label)
		})
		fmt.Fprintln(stdout, "== ticks: N instances at their tick rate, followers of lum/<I>/hb ==")
		printTicksTable(stdout, ticks)
		if len(ticks) > 1 {
			fmt.Fprintln(stdout)
			printTicksSideBySide(stdout, ticks)
		}
		fmt.Fprintln(stdout)
	}
	if len(msgs) > 0 {
		fmt.Fprintln(stdout, "== messages: C clients through one instance ==")
		printMessagesTable(stdout, msgs)
		if len(msgs) > 1 {
			fmt.Fprintln(stdout)
			printMessagesSideBySide(stdout, msgs)
		}
		fmt.Fprintln(stdout)
	}
	for _, v := range verifies {
		printVerify(stdout, v.Rate)
	}
	for _, p := range puts {
		if p.Verify != nil {
			rawAll, rawCPU, when := p.Verify.RawPerSecAll, p.Verify.RawCPUUsPerOp, "measured just before"
			if p.VerifyAfter != nil {
				rawAll, rawCPU, when = p.RawPerSecAll, p.RawCPUUsPerOp, "mean of just before and just after"
			}
			fmt.Fprintf(stdout, "%s %dx%d: %.0f acked puts/s = %.1f%% of raw P-256 verify on %d threads (%.0f/s, %s); raw verify CPU %.1f µs = %.1f%% of the relay's %.1f µs CPU per acked put",
				p.Label, p.Params.Writers, p.Params.Window, p.AckedPerSec, p.AckedVsRaw*100, p.Verify.Threads, rawAll, when,
				rawCPU, p.CPUVsRaw*100, p.RelayCPUSeconds*1e6/float64(max(p.AckedInWindow, 1)))
			if p.CPUVsRawAll > 0 {
				fmt.Fprintf(stdout, " (%.1f µs = %.1f%% measured with all %d threads busy)", p.RawCPUUsPerOpAll, p.CPUVsRawAll*100, p.Verify.Threads)
			}
			fmt.Fprintln(stdout)
		}
		if p.PoolExhausted {
			fmt.Fprintf(stdout, "%s %dx%d: WARNING the pre-signed pool ran out; the window was cut short\n", p.Label, p.Params.Writers, p.Params.Window)
		}
	}
	if len(fans) > 0 {
		fmt.Fprintln(stdout, "== fanout: one writer, one soul, S subscribers ==")
		printFanoutTable(stdout, fans)
		if len(fans) > 1 {
			fmt.Fprintln(stdout)
			printFanoutSideBySide(stdout, fans)
		}
	}
	return nil
}

// printFanoutSideBySide prints delivered% and p99 per rate, one column pair
// per relay.
func printFanoutSideBySide(w io.Writer, fans []*fanoutResult) {
	rates := map[int]bool{}
	for _, r := range fans {
		for _, s := range r.Steps {
			rates[s.Rate] = true
		}
	}
	var rs []int
	for r := range rates {
		rs = append(rs, r)
	}
	sort.Ints(rs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "rate/s\t")
	for _, r := range fans {
		fmt.Fprintf(tw, "%s delivered\t%s p50 ms\t%s p99 ms\t", r.Label, r.Label, r.Label)
	}
	fmt.Fprintln(tw)
	for _, rate := range rs {
		fmt.Fprintf(tw, "%d\t", rate)
		for _, r := range fans {
			found := false
			for _, s := range r.Steps {
				if s.Rate == rate {
					fmt.Fprintf(tw, "%.2f%%\t%s\t%s\t", s.DeliveredPct, fmtMs(s.Latency.P50Ms), fmtMs(s.Latency.P99Ms))
					found = true
					break
				}
			}
			if !found {
				fmt.Fprint(tw, "-\t-\t-\t")
			}
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// printTicksTable prints one row per ticks result.
func printTicksTable(w io.Writer, rs []*ticksResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "relay\tinstances\tfollowed\twritten\tdropped@tool\treceived\tlost\tlost %\tticks/s/inst\tgap p50 ms\tp99\tmax\tlag p50 ms\tp99\trelay cpu %\ttool cpu s\tclosed conns\tload1\tpass\t")
	for _, r := range rs {
		written := "-"
		dropped := "-"
		if r.Kind == "gun" {
			written = strconv.FormatUint(r.Written, 10)
			dropped = strconv.FormatUint(r.DroppedAtSender, 10)
		}
		pass := "no"
		if r.Pass {
			pass = "yes"
		}
		relayPct := "-"
		if r.RelayCPUSeconds >= 0 {
			relayPct = strconv.FormatFloat(r.RelayCPUPct, 'f', 0, 64)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\t%d\t%.2f\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%.2f→%.2f\t%s\t\n",
			r.Label, r.Instances, r.Totals.Followed, written, dropped, r.Totals.Received, r.Lost, r.LostPct, r.TicksPerSec,
			fmtMs(r.Gap.P50Ms), fmtMs(r.Gap.P99Ms), fmtMs(r.Gap.MaxMs), fmtMs(r.Lag.P50Ms), fmtMs(r.Lag.P99Ms),
			relayPct, fmtCPU(r.ToolCPUSeconds), r.SlowConsumerCloses, r.FollowerConns, r.Load1Start, r.Load1End, pass)
	}
	tw.Flush()
}

// printMessagesTable prints one row per rate step of each messages result.
func printMessagesTable(w io.Writer, rs []*messagesResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "relay\tclients\trate/s\tsent/s\tnot sent\tacked\tack errs\tacked/s\tack p50 ms\tack p99\tapplied\tof expected\ton the wire\tlat p50 ms\tp90\tp99\tmax\trelay cpu s\tload1\tpass\t")
	for _, r := range rs {
		for _, s := range r.Steps {
			pass := "no"
			if s.Pass {
				pass = "yes"
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%d\t%d\t%d\t%.0f\t%s\t%s\t%d\t%.2f%%\t%.2f%%\t%s\t%s\t%s\t%s\t%s\t%.2f\t%s\t\n",
				r.Label, r.Connected, s.Rate, s.SentPerSec, s.NotSent, s.Acked, s.AckErrors, s.AckPerSec,
				fmtMs(s.AckLatency.P50Ms), fmtMs(s.AckLatency.P99Ms), s.Received, s.DeliveredPct, s.WirePct,
				fmtMs(s.Latency.P50Ms), fmtMs(s.Latency.P90Ms), fmtMs(s.Latency.P99Ms), fmtMs(s.Latency.MaxMs),
				fmtCPU(s.RelayCPU), s.Load1, pass)
		}
	}
	tw.Flush()
	for _, r := range rs {
		held := "none"
		if r.HighestRateHeld > 0 {
			held = strconv.Itoa(r.HighestRateHeld) + " msgs/s"
		}
		fmt.Fprintf(w, "%s: highest rate held with 100%% delivery to %d clients and p99 < %v: %s\n",
			r.Label, r.Connected, time.Duration(r.Params.P99GoalMs*float64(time.Millisecond)), held)
	}
}

// printTicksSideBySide prints lost % and gap p99 per instance count, one
// column group per relay label.
func printTicksSideBySide(w io.Writer, rs []*ticksResult) {
	var labels []string
	byKey := map[string]*ticksResult{}
	ns := map[int]bool{}
	for _, r := range rs {
		if !slices.Contains(labels, r.Label) {
			labels = append(labels, r.Label)
		}
		byKey[r.Label+"/"+strconv.Itoa(r.Instances)] = r
		ns[r.Instances] = true
	}
	counts := slices.Sorted(maps.Keys(ns))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "instances\t")
	for _, l := range labels {
		fmt.Fprintf(tw, "%s lost %%\t%s gap p50/p99/max ms\t%s relay cpu %%\t%s load1\t", l, l, l, l)
	}
	fmt.Fprintln(tw)
	for _, n := range counts {
		fmt.Fprintf(tw, "%d\t", n)
		for _, l := range labels {
			r, ok := byKey[l+"/"+strconv.Itoa(n)]
			if !ok {
				fmt.Fprint(tw, "-\t-\t-\t-\t")
				continue
			}
			fmt.Fprintf(tw, "%.2f\t%s / %s / %s\t%.0f\t%.2f\t", r.LostPct, fmtMs(r.Gap.P50Ms), fmtMs(r.Gap.P99Ms), fmtMs(r.Gap.MaxMs), r.RelayCPUPct, r.Load1Start)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// printMessagesSideBySide prints applied % and latency per rate, one
// column group per relay.
func printMessagesSideBySide(w io.Writer, rs []*messagesResult) {
	rates := map[int]bool{}
	for _, r := range rs {
		for _, s := range r.Steps {
			rates[s.Rate] = true
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "msgs/s\t")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s applied\t%s p50/p99 ms\t%s acked/s\t", r.Label, r.Label, r.Label)
	}
	fmt.Fprintln(tw)
	for _, rate := range slices.Sorted(maps.Keys(rates)) {
		fmt.Fprintf(tw, "%d\t", rate)
		for _, r := range rs {
			i := slices.IndexFunc(r.Steps, func(s messagesStep) bool { return s.Rate == rate })
			if i < 0 {
				fmt.Fprint(tw, "-\t-\t-\t")
				continue
			}
			s := r.Steps[i]
			fmt.Fprintf(tw, "%.2f%%\t%s / %s\t%.0f\t", s.DeliveredPct, fmtMs(s.Latency.P50Ms), fmtMs(s.Latency.P99Ms), s.AckPerSec)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}
