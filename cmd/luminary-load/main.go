// Command luminary-load drives any Gun relay over its wire protocol
// (WebSocket text frames at /gun) and measures it: acked puts per second
// with ack latency (puts), and delivery to many subscribers of one soul at
// rising rates (fanout). It speaks raw Gun frames, so the same run works
// against a stock gun.js relay and against Luminary.
//
// Start with:
//
//	luminary-load puts   --url http://127.0.0.1:8765/gun --json puts.json
//	luminary-load fanout --url http://127.0.0.1:8765/gun --rates 500,1000,2000
//	luminary-load report puts.json fanout.json
//
// The wire code uses only the standard library and gorilla/websocket; the
// signed modes build their messages with the project's keys, sea and
// heartbeat packages, so they are byte for byte what real clients send.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const usage = `usage: luminary-load <command> [flags]

commands:
  puts      W writers keep N puts in flight each; acked puts/s and ack latency
            (--signed sea: pre-signed SEA user-space puts)
  fanout    one writer, one soul, S subscribers; delivery at rising rates
  ticks     N instances ticking at 20/s, followers of lum/<I>/hb: tick gaps, lost ticks
  messages  C clients sending through one instance: delivery, latency, msgs/s sequenced
  verify    raw P-256 / secp256k1 verification rate on this machine (the ratio's base)
  worlds    create worlds on a Luminary relay through its HTTP API (signed requests)
  newkey    write a fresh admin private key to a file, print its public key
  report    print result files (--json output) side by side
  freeport  print a free TCP port on 127.0.0.1
  wait      wait until a relay accepts a WebSocket at --url

Run "luminary-load <command> -h" for its flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// LUMINARY_LOAD_CPUPROFILE=FILE profiles the tool itself (its own cost
	// counts: it shares the machine with the relay it measures).
	if path := os.Getenv("LUMINARY_LOAD_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "puts":
		return cmdPuts(ctx, args[1:], stdout, stderr)
	case "fanout":
		return cmdFanout(ctx, args[1:], stdout, stderr)
	case "ticks":
		return cmdTicks(ctx, args[1:], stdout, stderr)
	case "messages":
		return cmdMessages(ctx, args[1:], stdout, stderr)
	case "verify":
		return cmdVerify(ctx, args[1:], stdout, stderr)
	case "worlds":
		return cmdWorlds(ctx, args[1:], stdout, stderr)
	case "newkey":
		return cmdNewKey(args[1:], stdout, stderr)
	case "report":
		return runReport(args[1:], stdout)
	case "freeport":
		return cmdFreePort(stdout)
	case "wait":
		return cmdWait(ctx, args[1:], stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("luminary-load: unknown command %q", args[0])
	}
}

// commonFlags are shared by puts and fanout.
type commonFlags struct {
	url, label, jsonPath string
	hello                bool
	relayPID             int
	dialTimeout          time.Duration
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.url, "url", "http://127.0.0.1:8765/gun", "relay URL (http(s):// or ws(s)://, path /gun)")
	fs.StringVar(&c.label, "label", "relay", "name of the relay in the output")
	fs.StringVar(&c.jsonPath, "json", "", "write raw results as JSON to this file")
	fs.BoolVar(&c.hello, "hello", true, `answer the relay's {"dam":"?"} greeting with our pid`)
	fs.IntVar(&c.relayPID, "relay-pid", 0, "relay process id, to report its CPU from /proc (0: off)")
	fs.DurationVar(&c.dialTimeout, "dial-timeout", 5*time.Second, "WebSocket dial timeout")
}

func cmdPuts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("puts", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c commonFlags
	c.register(fs)
	cfg := putsConfig{}
	fs.IntVar(&cfg.Writers, "writers", 8, "concurrent writers, one WebSocket each")
	fs.IntVar(&cfg.Window, "window", 64, "puts in flight per writer")
	fs.IntVar(&cfg.ValueSize, "size", 200, "value size in bytes")
	fs.IntVar(&cfg.FieldsPerSoul, "fields-per-soul", 1, "distinct fields written to each soul before moving to a new soul")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "warm-up before measuring")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured duration")
	fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "a put with no reply after this counts as a timeout")
	fs.StringVar(&cfg.Signed, "signed", "", `"sea": send SEA-signed user-space puts (~<pub>/… souls, P-256), signed before the run`)
	fs.IntVar(&cfg.Users, "users", 4, "--signed sea: P-256 users the puts are spread over")
	fs.IntVar(&cfg.Presign, "presign", 150000, "--signed sea: puts signed before the run (the run stops early when they run out)")
	fs.IntVar(&cfg.Tamper, "tamper-every", 0, "--signed sea: give every n-th put a signature over other data (a verifying relay refuses those; 0: none)")
	fs.DurationVar(&cfg.VerifyBench, "verify-bench", 0, "--signed sea: measure raw P-256 verification on this machine for this long right before and right after the run (0: skip)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.URL, cfg.Label, cfg.Hello, cfg.RelayPID, cfg.DialTimeout = c.url, c.label, c.hello, c.relayPID, c.dialTimeout
	res, err := runPuts(ctx, cfg)
	if res == nil {
		return err
	}
	if res.Verify != nil {
		printVerify(stdout, res.Verify)
	}
	if res.Params.Signed != "" {
		fmt.Fprintf(stdout, "  %d SEA-signed puts over %d P-256 users, signed in %.2f s before the run; pool exhausted: %v\n",
			res.Params.Presign, res.Params.Users, res.PresignSeconds, res.PoolExhausted)
	}
	printPutsTable(stdout, []*putsResult{res})
	if res.VerifyAfter != nil {
		fmt.Fprint(stdout, "after the run: ")
		printVerify(stdout, res.VerifyAfter)
	}
	if res.Verify != nil {
		fmt.Fprintf(stdout, "  acked/s ÷ raw P-256 verify/s (%d threads, %.0f/s, mean of before and after): %.1f%%; raw verify CPU ÷ relay CPU per acked put (%.1f µs): %.1f%% with 1 thread busy (%.1f µs/op), %.1f%% with %d (%.1f µs/op)\n",
			res.Verify.Threads, res.RawPerSecAll, res.AckedVsRaw*100, res.RelayCPUUsPerAck, res.CPUVsRaw*100, res.RawCPUUsPerOp,
			res.CPUVsRawAll*100, res.Verify.Threads, res.RawCPUUsPerOpAll)
	}
	if res.ForeignAcks > 0 || res.DuplicateAcks > 0 || res.LateAcks > 0 || res.Unresolved > 0 {
		fmt.Fprintf(stdout, "  acks that reached the wrong writer: %d; second acks: %d; acks after the timeout: %d; unresolved at exit: %d\n",
			res.ForeignAcks, res.DuplicateAcks, res.LateAcks, res.Unresolved)
	}
	if res.BadFrames > 0 {
		fmt.Fprintf(stdout, "  %d frames could not be decoded\n", res.BadFrames)
	}
	for _, e := range res.ErrorSamples {
		fmt.Fprintf(stdout, "  error sample: %s\n", e)
	}
	for _, e := range res.ConnErrors {
		fmt.Fprintf(stdout, "  connection: %s\n", e)
	}
	if werr := writeJSON(c.jsonPath, res); werr != nil {
		return werr
	}
	return err
}

func cmdFanout(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fanout", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c commonFlags
	c.register(fs)
	cfg := fanoutConfig{}
	rates := fs.String("rates", "500,1000,2000,5000,10000", "comma-separated put rates (puts/s), one step each")
	fs.IntVar(&cfg.Subscribers, "subs", 50, "subscribers, one WebSocket each, each sends a get for the soul")
	fs.IntVar(&cfg.ValueSize, "size", 200, "value size in bytes (>= 64)")
	fs.DurationVar(&cfg.Step, "step", 5*time.Second, "duration of each rate step")
	fs.DurationVar(&cfg.Drain, "drain", 3*time.Second, "how long to wait for the last deliveries of a step")
	fs.DurationVar(&cfg.GetTimeout, "get-timeout", 5*time.Second, "wait this long for the initial ack and get replies")
	fs.DurationVar(&cfg.MaxSend, "max-send", 0, "stop a step's sending after this long if the relay pushes back (0: 2×step)")
	fs.DurationVar(&cfg.Tick, "tick", time.Millisecond, "pacer tick; each tick sends the puts that are due")
	fs.Float64Var(&cfg.P99GoalMs, "p99-goal", 50, "a step passes with 100% delivery and p99 below this (ms)")
	fs.BoolVar(&cfg.Strict, "strict", false, "decode every pushed frame fully and check field names (costs tool CPU)")
	fs.BoolVar(&cfg.StopOnFail, "stop-on-fail", false, "stop the ladder after the first failing step")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rs, err := parseRates(*rates)
	if err != nil {
		return err
	}
	cfg.Rates = rs
	cfg.URL, cfg.Label, cfg.Hello, cfg.RelayPID, cfg.DialTimeout = c.url, c.label, c.hello, c.relayPID, c.dialTimeout
	res, err := runFanout(ctx, cfg)
	if res == nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d/%d subscribers answered the get (p50 %s ms); initial put acked: %v\n",
		res.Label, res.GetReplies, res.Subscribed, fmtMs(res.GetLatency.P50Ms), res.InitAcked)
	if res.InitErr != "" {
		fmt.Fprintf(stdout, "  initial put rejected: %s\n", res.InitErr)
	}
	printFanoutTable(stdout, []*fanoutResult{res})
	if res.BadFrames > 0 {
		fmt.Fprintf(stdout, "  %d frames could not be decoded\n", res.BadFrames)
	}
	if res.Late > 0 {
		fmt.Fprintf(stdout, "  %d deliveries arrived after their step's drain (not counted)\n", res.Late)
	}
	for _, e := range res.ConnErrors {
		fmt.Fprintf(stdout, "  connection: %s\n", e)
	}
	if werr := writeJSON(c.jsonPath, res); werr != nil {
		return werr
	}
	return err
}

// newFlagSet returns a flag set that reports errors to stderr.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// flagSet reports whether the flag was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			found = true
		}
	})
	return found
}

func parseRates(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("luminary-load: bad rate %q", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("luminary-load: --rates is empty")
	}
	return out, nil
}

func cmdFreePort(stdout io.Writer) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("luminary-load: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	fmt.Fprintln(stdout, port)
	return nil
}

// cmdWait dials the relay's WebSocket until it succeeds or the timeout ends.
func cmdWait(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	fs.SetOutput(stderr)
	u := fs.String("url", "http://127.0.0.1:8765/gun", "relay URL")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	pid := fs.Int("pid", 0, "give up early if this process exits (0: do not watch)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	retry := time.NewTicker(100 * time.Millisecond)
	defer retry.Stop()
	for {
		p, err := dialPeer(ctx, dialOptions{url: *u, timeout: time.Second})
		if err == nil {
			p.close()
			return nil
		}
		if *pid > 0 {
			if _, serr := os.Stat("/proc/" + strconv.Itoa(*pid)); serr != nil {
				return fmt.Errorf("luminary-load: relay process %d exited before %s was ready", *pid, *u)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("luminary-load: relay at %s not ready: %w", *u, err)
		case <-retry.C:
		}
	}
}
