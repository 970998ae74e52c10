package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/krestianstvo/luminary/client"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/jsjson"
)

// HistoryCmd reads an instance's history (the timegraph).
type HistoryCmd struct {
	Verify HistoryVerifyCmd `cmd:"" help:"Check an exported history: every signature, the hash chain, the order and the time; print who sent what. Exit 1 on any defect, with its line and seq."`
	Export HistoryExportCmd `cmd:"" help:"Export a world's history as JSON lines: from a running relay (--relay), or from a stopped relay's heartbeat log (--data; the file is locked while the relay runs)."`
}

// ReplayCmd is `luminary replay FILE`.
type ReplayCmd struct {
	File    string `arg:"" help:"History file (JSON lines, as written by 'history export'); - reads standard input."`
	Ticks   bool   `help:"Also print the signed checkpoint ticks."`
	MaxText int    `default:"120" help:"Cut payloads longer than this many bytes in the output (0: never)."`
}

// maxHistoryInput bounds what replay reads from standard input (it reads
// the history twice: to verify, then to print).
const maxHistoryInput = 1 << 30

// openHistory opens a history file, or standard input for "-".
func openHistory(name string) (io.ReadCloser, error) {
	if name == "-" {
		return io.NopCloser(stdin), nil
	}
	return os.Open(name)
}

// HistoryVerifyCmd is `luminary history verify FILE`.
type HistoryVerifyCmd struct {
	File  string `arg:"" help:"History file (JSON lines, as written by 'history export'); - reads standard input."`
	Quiet bool   `short:"q" help:"Print the summary only, not the provenance of every entry."`
}

// Run verifies the file and prints the report with the provenance of every
// entry: seq, Croquet time, kind, author, message id and payload hash.
func (c *HistoryVerifyCmd) Run(env *Env) error {
	f, err := openHistory(c.File)
	if err != nil {
		return err
	}
	defer f.Close()
	// Payload hashes come from a second reader of the same bytes, fed as
	// VerifyHistory reads.
	pr, pw := io.Pipe()
	hashes := make(chan map[uint64][32]byte, 1)
	go func() { hashes <- payloadHashes(pr) }()
	rep, err := heartbeat.VerifyHistory(io.TeeReader(f, pw), heartbeat.VerifyOptions{})
	pw.Close()
	printHistoryReport(env.Stdout, rep, <-hashes, !c.Quiet)
	if err != nil {
		if d := rep.Defect; d != nil {
			return fmt.Errorf("history: DEFECT at line %d (seq %d): %v", d.Line, d.Seq, d.Err)
		}
		return err
	}
	fmt.Fprintln(env.Stdout, "verified: signatures, hash chain, order and time are intact")
	return nil
}

// payloadHashes reads history lines and returns the SHA-256 of each
// entry's payload by seq (entries it cannot parse are skipped: the
// verifier reports them).
func payloadHashes(r io.Reader) map[uint64][32]byte {
	out := map[uint64][32]byte{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		if e, ok := entryOfLine(sc.Bytes()); ok {
			out[e.Seq] = sha256.Sum256([]byte(e.Payload))
		}
	}
	_, _ = io.Copy(io.Discard, r) // drain, so the verifier never blocks on the pipe
	return out
}

// historyLimits bounds one history line.
var historyLimits = jsjson.Limits{MaxBytes: 4 << 20, MaxDepth: 6, MaxMembers: 64, MaxElements: 64}

// entryOfLine parses {"entry":{…}}.
func entryOfLine(line []byte) (heartbeat.Entry, bool) {
	v, err := jsjson.Parse(line, historyLimits)
	if err != nil {
		return heartbeat.Entry{}, false
	}
	o, ok := v.(*jsjson.Object)
	if !ok || o.Len() != 1 || o.Keys[0] != "entry" {
		return heartbeat.Entry{}, false
	}
	e, err := heartbeat.ParseEntry(jsjson.Append(nil, o.Values[0]))
	return e, err == nil
}

// tickOfLine parses {"tick":{…}}.
func tickOfLine(line []byte) (heartbeat.Tick, bool) {
	v, err := jsjson.Parse(line, historyLimits)
	if err != nil {
		return heartbeat.Tick{}, false
	}
	o, ok := v.(*jsjson.Object)
	if !ok || o.Len() != 1 || o.Keys[0] != "tick" {
		return heartbeat.Tick{}, false
	}
	t, err := heartbeat.ParseTick(jsjson.Append(nil, o.Values[0]))
	return t, err == nil
}

func printHistoryReport(w io.Writer, rep *heartbeat.Report, hashes map[uint64][32]byte, provenance bool) {
	if rep == nil || rep.Meta.Instance == "" {
		return
	}
	m := rep.Meta
	fmt.Fprintf(w, "instance  %s\nname      %s\nrate      %g  tps %d  start %s\n", m.Instance, m.Name, m.Rate, m.TPS,
		time.UnixMicro(int64(m.Start*1000)).UTC().Format(time.RFC3339Nano))
	if rep.Entries > 0 {
		fmt.Fprintf(w, "entries   %d (seq %d..%d), %d messages, %d signed ticks\n", rep.Entries, rep.From, rep.To, rep.Messages, rep.Ticks)
		fmt.Fprintf(w, "time      %.3f s .. %.3f s\n", heartbeat.VTime(rep.FirstState, m.Start, m.Rate), heartbeat.VTime(rep.LastState, m.Start, m.Rate))
	}
	for _, e := range rep.Epochs {
		fmt.Fprintf(w, "epoch %-3d held by %s from seq %d (t=%.3f s)\n", e.Epoch, e.Holder, e.Seq, e.Time)
	}
	if !provenance || len(rep.Provenance) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME(s)\tKIND\tAUTHOR\tMESSAGE ID\tBYTES\tPAYLOAD SHA-256")
	for _, p := range rep.Provenance {
		id, ph := "", ""
		if p.Kind == heartbeat.KindMessage {
			id = p.ID.String()
		}
		if h, ok := hashes[p.Seq]; ok && p.Bytes > 0 {
			ph = base64.RawURLEncoding.EncodeToString(h[:])
		}
		fmt.Fprintf(tw, "%d\t%.3f\t%s\t%s\t%s\t%d\t%s\n", p.Seq, p.Time, p.Kind, p.Author, id, p.Bytes, ph)
	}
	tw.Flush()
}

// HistoryExportCmd is `luminary history export --world ID`.
type HistoryExportCmd struct {
	Instance string `arg:"" optional:"" help:"Instance id (the owner's public key text); or use --world."`
	World    string `help:"World to export: its instance id or the alias the relay knows it by (worlds.json)."`
	Relay    string `help:"Base URL (http:// or https://) of a running relay to export from (its HTTP API; --data is then not used; not read from LUMINARY_RELAY)."`
	Key      string `type:"existingfile" help:"With --relay: key file that signs the request (a private world exports only to its owner, admins and members)."`
	PasswordFlags
	Timeout time.Duration `default:"10m" help:"With --relay: how long the export may take."`
	Data    string        `default:"./luminary-data" env:"LUMINARY_DATA" help:"Without --relay: the data directory; the heartbeat log is <data>/heartbeat.db."`
	From    uint64        `help:"First seq (default 1)."`
	To      uint64        `help:"Last seq (default: the head)."`
	Out     string        `short:"o" default:"-" help:"Output file (created, never overwritten); - writes to standard output."`
}

// Run exports the history.
func (c *HistoryExportCmd) Run(env *Env) error {
	ref := c.World
	if ref == "" {
		ref = c.Instance
	}
	if ref == "" || (c.World != "" && c.Instance != "") {
		return usageError{errors.New("history export: name the world once, with --world (or as the argument)")}
	}
	if c.Relay != "" {
		return c.fromRelay(env, ref)
	}
	inst, err := resolveWorld(c.Data, ref)
	if err != nil {
		return err
	}
	path := filepath.Join(c.Data, "heartbeat.db")
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	bl, err := heartbeat.OpenBolt(path, heartbeat.BoltOptions{})
	if err != nil {
		return fmt.Errorf("history: %w (is the relay running? use --relay, or stop it first)", err)
	}
	defer bl.Close()
	w, done, err := c.output(env)
	if err != nil {
		return err
	}
	return done(heartbeat.Export(env.Ctx, bl, inst, w, heartbeat.ExportOptions{From: c.From, To: c.To}))
}

// fromRelay exports through a running relay's HTTP API.
func (c *HistoryExportCmd) fromRelay(env *Env, ref string) error {
	if err := relayURL(c.Relay); err != nil {
		return err
	}
	key, err := c.optionalKey(env, c.Key)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(env.Ctx, c.Timeout)
	defer cancel()
	cl, err := dialRelay(ctx, c.Relay, client.Config{Key: key, RequireLogin: key != nil})
	if err != nil {
		return err
	}
	defer cl.Close()
	w, done, err := c.output(env)
	if err != nil {
		return err
	}
	return done(cl.ExportHistory(ctx, ref, c.From, c.To, w))
}

// output opens where the history goes: standard output, or a new file
// (never overwritten) that done closes, and removes if the export failed.
func (c *HistoryExportCmd) output(env *Env) (w io.Writer, done func(error) error, err error) {
	if c.Out == "-" {
		return env.Stdout, func(err error) error { return err }, nil
	}
	f, err := os.OpenFile(c.Out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, nil, err
	}
	return f, func(err error) error {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(c.Out)
		}
		return err
	}, nil
}

// resolveWorld maps an alias from <data>/worlds.json to its instance id;
// anything else is taken as an instance id.
func resolveWorld(data, ref string) (string, error) {
	b, err := os.ReadFile(filepath.Join(data, "worlds.json"))
	if errors.Is(err, os.ErrNotExist) {
		return ref, nil
	}
	if err != nil {
		return "", fmt.Errorf("history: %w", err)
	}
	var recs []struct {
		Instance string `json:"instance"`
		Alias    string `json:"alias"`
	}
	if err := json.Unmarshal(b, &recs); err != nil {
		return "", fmt.Errorf("history: worlds.json: %w", err)
	}
	for _, r := range recs {
		if r.Alias != "" && r.Alias == ref {
			return r.Instance, nil
		}
	}
	return ref, nil
}

// Run verifies the history, then prints its ordered stream: every entry
// with its Croquet time (and, with --ticks, the signed ticks). It prints
// nothing of a history that does not verify.
func (c *ReplayCmd) Run(env *Env) error {
	f, err := openHistory(c.File)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxHistoryInput+1))
	f.Close()
	if err != nil {
		return err
	}
	if len(data) > maxHistoryInput {
		return fmt.Errorf("replay: history larger than %d bytes", maxHistoryInput)
	}
	rep, err := heartbeat.VerifyHistory(bytes.NewReader(data), heartbeat.VerifyOptions{})
	if err != nil {
		if d := rep.Defect; d != nil {
			return fmt.Errorf("replay: DEFECT at line %d (seq %d): %v", d.Line, d.Seq, d.Err)
		}
		return err
	}
	m := rep.Meta
	bw := bufio.NewWriter(env.Stdout)
	defer bw.Flush()
	fmt.Fprintf(bw, "# %s %q rate %g tps %d: %d entries, %d messages (verified)\n", m.Instance, m.Name, m.Rate, m.TPS, rep.Entries, rep.Messages)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if e, ok := entryOfLine(line); ok {
			t := heartbeat.VTime(e.State, m.Start, m.Rate)
			switch e.Kind {
			case heartbeat.KindMessage:
				fmt.Fprintf(bw, "%12.6f  %6d  msg     %s  %s\n", t, e.Seq, e.Author, clip(e.Payload, c.MaxText))
			case heartbeat.KindEpoch:
				fmt.Fprintf(bw, "%12.6f  %6d  epoch   %d held by %s\n", t, e.Seq, e.Epoch, e.Author)
			case heartbeat.KindSnapshot:
				fmt.Fprintf(bw, "%12.6f  %6d  snapshot of seq %d %s\n", t, e.Seq, e.Ref, e.RefHash)
			default:
				fmt.Fprintf(bw, "%12.6f  %6d  %-7s %s\n", t, e.Seq, e.Kind, e.Author)
			}
			continue
		}
		if c.Ticks {
			if tk, ok := tickOfLine(line); ok {
				fmt.Fprintf(bw, "%12.6f  %6d  tick    epoch %d n %d\n", tk.Time(), tk.Seq, tk.Epoch, tk.N)
			}
		}
	}
	return sc.Err()
}

func clip(s string, n int) string {
	if n > 0 && len(s) > n {
		return s[:n] + "…"
	}
	return s
}
