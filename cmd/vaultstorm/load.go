package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vaultstorm/vaultstorm/checkers"
	"github.com/vaultstorm/vaultstorm/internal/runbucket"
	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/load"
	"github.com/vaultstorm/vaultstorm/snapshots"
)

func init() { rootCmd.AddCommand(loadCmd(), verifyCmd()) }

var runIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

type loadFlags struct {
	rate          float64
	duration      time.Duration
	mix           string
	keys          int
	keyDist       string
	valueSize     int
	target        string
	mount         string
	keyPrefix     string
	out           string
	closed        int
	ramp          string
	steps         string
	timeout       time.Duration
	maxInFlight   int
	lateThreshold time.Duration
	noPrefill     bool
	seed          uint64
	http2         bool
	procs         int
	tick          time.Duration
	shard         string
	runID         string
	upload        string
}

func loadCmd() *cobra.Command {
	var f loadFlags
	cmd := &cobra.Command{
		Use:   "load --rate R --duration D [flags]",
		Short: "Send open-loop KV v2 load, record latencies and every acknowledged write, verify none was lost",
		Long: `load sends KV v2 traffic (reads, writes, lists, deletes) to the cluster that
'vaultstorm up' made, or to the Vault that VAULT_ADDR, VAULT_CACERT and
VAULT_TOKEN (or VAULT_TOKEN_FILE) point at, then reads back every
acknowledged write.

Open loop (the default): requests are sent on a fixed schedule whatever the
server does, and each latency is measured from the request's intended send
time, so a server stall shows in the percentiles as the stall it was (no
coordinated omission). Requests the generator itself sent late (more than
--late-threshold after their intended time) are counted as late sends; when
the achieved rate is below 98 % of the schedule, load says so loudly.
Closed loop (--closed N): N workers send back to back, for saturation tests.

The run directory (--out, default runs/<UTC time>-load/) gets meta.json,
load.json (the resolved options), samples.jsonl (one line per second),
histograms.hlog (HdrHistogram interval log, one tag per op, values in ns),
ledger.jsonl (every acknowledged write: key, version, sha256 of the value)
and summary.json. 'vaultstorm verify DIR' checks a ledger again later.

Load from many machines (--shard I/N): N load processes, one per machine,
each run with the same flags and its own index I, 0-based (0 to N-1), so
that a Kubernetes indexed Job passes "$JOB_COMPLETION_INDEX/N" and Nomad
"${NOMAD_ALLOC_INDEX}/N" unchanged. --rate (and --ramp, --steps) is the
WHOLE run's rate: each shard sends 1/N of it (--rate 200 --shard 2/4 sends
50 req/s). Each shard writes keys under its own prefix
(<key prefix>shard-I-of-N/), so its ledger is verifiable alone, and its own
run directory with the shard in meta.json and load.json. --run-id names the
sharded run (the same on every shard; default key prefix load/<run id>/);
'vaultstorm merge DIR...' then adds the shards' histograms exactly, sums
their samples per wall-clock second, unites their ledgers and verifies them
once. --closed cannot be sharded.

Exit status: 0 when the run completed and no acknowledged write was lost;
1 when acknowledged writes were lost; 2 for bad input, an unreachable, sealed
or forbidden cluster, or an interrupted run.`,
		Example: `  vaultstorm load --rate 500 --duration 30s
  vaultstorm load --rate 200 --duration 1m --mix read=50,write=40,delete=10 --target all
  vaultstorm load --ramp 100:2000@50s --duration 1m --key-dist zipf
  vaultstorm load --closed 32 --duration 20s --mix read=100
  vaultstorm load --rate 200 --duration 5m --shard "$JOB_COMPLETION_INDEX/4" --run-id nightly-42 --out /data/shard`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLoad(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.Float64Var(&f.rate, "rate", 100, "open-loop arrival rate, requests per second (all ops together)")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, "how long to send load, e.g. 30s, 5m")
	fl.StringVar(&f.mix, "mix", "read=80,write=20", "operation weights: read, write, list, delete (relative integers)")
	fl.IntVar(&f.keys, "keys", 1000, "key space size; every key is written once before the run (see --no-prefill)")
	fl.StringVar(&f.keyDist, "key-dist", "uniform", "key choice: uniform, zipf (theta 0.99) or zipf:THETA")
	fl.IntVar(&f.valueSize, "value-size", 256, "bytes per written value (1 to 1048576)")
	fl.StringVar(&f.target, "target", "active", "where requests go: active (follows leader changes), all (round-robin, standbys forward), or one node by name, nodeN or address")
	fl.StringVar(&f.mount, "mount", "vaultstorm", "KV version 2 mount path; created if missing")
	fl.StringVar(&f.keyPrefix, "key-prefix", "", "prefix of every key (default load/<run start>/, so runs never share keys)")
	fl.StringVar(&f.out, "out", "", "run directory (default runs/<UTC time>-load/)")
	fl.IntVar(&f.closed, "closed", 0, "closed loop: N workers sending back to back (--rate, --ramp and --steps are then ignored)")
	fl.StringVar(&f.ramp, "ramp", "", "ramp the rate: FROM:TO over the whole duration, or FROM:TO@D over D then hold TO (replaces --rate)")
	fl.StringVar(&f.steps, "steps", "", "step the rate: R1,R2,... each held for an equal share of --duration (replaces --rate)")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Second, "per-request timeout; a write that times out is an unknown outcome")
	fl.IntVar(&f.maxInFlight, "max-in-flight", 0, "most requests in flight (default rate x timeout x 1.25, 64 to 4096); a send that waits for a free slot counts from its intended time")
	fl.DurationVar(&f.lateThreshold, "late-threshold", 2*time.Millisecond, "a send later than this after its intended time is a late send (the generator fell behind); the default sits above this machine's ~1.1 ms timer granularity")
	fl.BoolVar(&f.noPrefill, "no-prefill", false, "do not write every key once before the run (reads of unwritten keys are 404s, counted as answers)")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of the op and key choices (0: from the clock); the seed used is in load.json")
	addProcsFlag(fl, &f.procs)
	fl.DurationVar(&f.tick, "tick", 0, "send the requests due in each tick together, in bursts (e.g. 5ms): same rate, less generator CPU per request on a small machine; 0: each at its own time")
	fl.StringVar(&f.shard, "shard", "", "run generator I of N (I 0-based: 0 to N-1, e.g. \"$JOB_COMPLETION_INDEX/4\"): 1/N of --rate, keys under <key prefix>shard-I-of-N/; merge the N run directories with 'vaultstorm merge'")
	fl.StringVar(&f.runID, "run-id", "", "with --shard: the sharded run's name, the same on every shard (checked by merge; default key prefix load/<run id>/)")
	fl.StringVar(&f.upload, "upload", "", "when the run is over, copy its run directory into this bucket (file:///dir or s3://bucket?region=…&endpoint=…&prefix=RUN/, as snapshot stores; S3 credentials from the AWS environment) under shard-I-of-N/ (with --shard) or the run directory's name; 'vaultstorm merge URL' reads the shards back")
	fl.BoolVar(&f.http2, "http2", false, "speak HTTP/2 (one connection per node, like vault/api) instead of HTTP/1.1 (a connection per request in flight)")
	return cmd
}

// loadOptions turns flags into options; every error is bad input (exit 2).
func (f loadFlags) options(cmd *cobra.Command) (load.Options, error) {
	var o load.Options
	if f.duration <= 0 {
		return o, fmt.Errorf("--duration %s: must be positive", f.duration)
	}
	if f.duration > 24*time.Hour {
		return o, fmt.Errorf("--duration %s: at most 24h", f.duration)
	}
	set := 0
	for _, n := range []string{"ramp", "steps", "closed"} {
		if cmd.Flags().Changed(n) {
			set++
		}
	}
	if set > 1 {
		return o, errors.New("--ramp, --steps and --closed exclude each other")
	}
	if set == 1 && cmd.Flags().Changed("rate") {
		return o, errors.New("--rate cannot be combined with --ramp, --steps or --closed")
	}
	var err error
	switch {
	case f.closed != 0:
		if f.closed < 0 {
			return o, fmt.Errorf("--closed %d: must be positive", f.closed)
		}
		o.Closed, o.Duration = f.closed, f.duration
	case f.ramp != "":
		if o.Schedule, err = load.ParseRamp(f.ramp, f.duration); err != nil {
			return o, fmt.Errorf("--ramp: %w", err)
		}
	case f.steps != "":
		if o.Schedule, err = load.ParseSteps(f.steps, f.duration); err != nil {
			return o, fmt.Errorf("--steps: %w", err)
		}
	default:
		if !(f.rate > 0) {
			return o, fmt.Errorf("--rate %g: must be positive", f.rate)
		}
		o.Schedule = load.Constant(f.rate, f.duration)
	}
	if o.Mix, err = load.ParseMix(f.mix); err != nil {
		return o, fmt.Errorf("--mix: %w", err)
	}
	if o.KeyDist, err = load.ParseKeyDist(f.keyDist); err != nil {
		return o, fmt.Errorf("--key-dist: %w", err)
	}
	if f.keys < 1 {
		return o, fmt.Errorf("--keys %d: must be positive", f.keys)
	}
	if f.valueSize < 1 {
		return o, fmt.Errorf("--value-size %d: must be positive", f.valueSize)
	}
	if f.timeout <= 0 {
		return o, fmt.Errorf("--timeout %s: must be positive", f.timeout)
	}
	if f.tick < 0 || f.tick > time.Second {
		return o, fmt.Errorf("--tick %s: want 0 (no bursts) up to 1s", f.tick)
	}
	if f.maxInFlight < 0 {
		return o, fmt.Errorf("--max-in-flight %d: must not be negative", f.maxInFlight)
	}
	if f.lateThreshold <= 0 {
		return o, fmt.Errorf("--late-threshold %s: must be positive", f.lateThreshold)
	}
	o.Keys, o.ValueSize, o.Target, o.Mount, o.KeyPrefix = f.keys, f.valueSize, f.target, strings.Trim(f.mount, "/"), f.keyPrefix
	o.Timeout, o.MaxInFlight, o.LateThreshold, o.NoPrefill, o.Seed, o.HTTP2 = f.timeout, f.maxInFlight, f.lateThreshold, f.noPrefill, f.seed, f.http2
	o.Tick = f.tick
	if f.upload != "" {
		if _, err := snapshots.ParseURL(f.upload); err != nil {
			return o, fmt.Errorf("--upload: %w", err)
		}
	}
	if f.runID != "" && f.shard == "" {
		return o, errors.New("--run-id names a sharded run: give --shard I/N too")
	}
	if f.shard != "" {
		sh, err := load.ParseShard(f.shard)
		if err != nil {
			return o, fmt.Errorf("--shard %w", err)
		}
		if o.Closed > 0 {
			return o, errors.New("--shard cannot be combined with --closed: a closed loop has no rate to split")
		}
		if f.runID != "" && !runIDRE.MatchString(f.runID) {
			return o, fmt.Errorf("--run-id %q: use letters, digits, '.', '_' and '-'", f.runID)
		}
		sh.RunID = f.runID
		o.Shard = &sh
		o.Schedule = o.Schedule.Split(sh)
		if o.Schedule.Count() < 1 {
			return o, fmt.Errorf("--shard %s: this shard's share of the rate sends no request in %s", f.shard, o.Schedule.Duration())
		}
		if o.Seed != 0 {
			// Shards given one --seed would otherwise make the same op
			// and key choices in lockstep.
			o.Seed += uint64(sh.Index)
		}
	}
	return o, nil
}

func runLoad(cmd *cobra.Command, f loadFlags) error {
	o, err := f.options(cmd)
	if err != nil {
		return err
	}
	procs, err := setProcs(f.procs)
	if err != nil {
		return err
	}
	target, err := resolveTarget()
	if err != nil {
		return err
	}
	started := time.Now().UTC()
	dir := f.out
	if dir == "" {
		dir = filepath.Join("runs", started.Format("20060102T150405Z")+"-load")
		if o.Shard != nil {
			dir += "-" + strings.TrimSuffix(load.ShardPrefix(*o.Shard), "/")
		}
	}
	_, statErr := os.Stat(dir)
	created := errors.Is(statErr, os.ErrNotExist)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create run directory: %w", err)
	}
	meta := rundir.Meta{
		Tool:    "vaultstorm " + version,
		Command: "vaultstorm " + strings.Join(os.Args[1:], " "),
		Nodes:   len(target.Addrs),
		Load:    o.Describe(),
		Seed:    int64(o.Seed),
		Started: started,
		Shard:   o.Shard,
	}
	if err := rundir.WriteJSON(dir, rundir.MetaFile, meta); err != nil {
		return err
	}
	stderr := cmd.ErrOrStderr()
	total := o.Duration
	if o.Closed == 0 {
		total = o.Schedule.Duration()
	}
	o.Logf = func(format string, a ...any) { fmt.Fprintf(stderr, "vaultstorm: WARNING: "+format+"\n", a...) }
	ctx := cmd.Context()
	fmt.Fprintf(stderr, "load: %s, %d generator thread(s) → %s\n", o.Describe(), procs, dir)

	var bar *load.Progress
	if fh, ok := stderr.(*os.File); ok {
		bar = load.NewProgress(fh, total)
	}
	if bar != nil {
		o.OnSample = bar.Sample
	}
	sum, runErr := load.Run(ctx, target, o, dir)
	bar.Done()
	interrupted := ctx.Err() != nil
	if runErr != nil && !interrupted {
		// Preflight (unreachable, sealed, no permission, bad mount) or a
		// failure to record: nothing was measured that verify could check
		// unless the ledger has lines.
		if _, err := os.Stat(filepath.Join(dir, rundir.LedgerFile)); created && errors.Is(err, os.ErrNotExist) {
			os.RemoveAll(dir)
		}
		return runErr
	}

	// Verify even an interrupted run: what was acknowledged must be there.
	vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	vr, verr := load.Verify(vctx, target, dir)
	vr.Apply(&sum) // a failed or partial read-back is recorded unverified, with how far it got
	if err := rundir.WriteJSON(dir, rundir.SummaryFile, sum); err != nil {
		return err
	}
	if !interrupted {
		meta.Ended = time.Now().UTC()
		if err := rundir.WriteJSON(dir, rundir.MetaFile, meta); err != nil {
			return err
		}
	}
	out := cmd.OutOrStdout()
	load.WriteTable(out, sum)
	fmt.Fprintf(out, "run directory: %s\n", dir)
	if f.upload != "" && !interrupted {
		folder := filepath.Base(filepath.Clean(dir))
		if o.Shard != nil {
			folder = strings.TrimSuffix(load.ShardPrefix(*o.Shard), "/")
		}
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
		n, err := runbucket.Upload(uctx, f.upload, dir, folder)
		cancel()
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "uploaded %d files to %s %s/\n", n, runbucket.Redact(f.upload), folder)
	}
	if verr != nil {
		return fmt.Errorf("verify: %w", verr)
	}
	if err := reportLost(stderr, vr); err != nil {
		return err
	}
	if interrupted {
		return fmt.Errorf("load interrupted after %.1fs; the run directory is partial", sum.Duration)
	}
	return nil
}

// reportLost is the loudest thing vaultstorm prints.
func reportLost(w io.Writer, vr load.VerifyResult) error {
	if vr.LostWrites == 0 && len(vr.Lost) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\n!!! LOST WRITES: %d acknowledged writes on %d keys are not readable !!!\n", vr.LostWrites, len(vr.Lost))
	for i, k := range vr.Lost {
		if i == 50 {
			fmt.Fprintf(w, "  … and %d more keys (summary.json lists them all)\n", len(vr.Lost)-i)
			break
		}
		fmt.Fprintf(w, "  %s: %s\n", k.Key, k.Reason)
	}
	return failed("%d acknowledged writes lost on %d keys", vr.LostWrites, len(vr.Lost))
}

func verifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify RUN_DIR",
		Short: "Read back every acknowledged write in a run's ledger and report any lost",
		Long: `verify reads ledger.jsonl from RUN_DIR and reads every key back from the
cluster (the one 'vaultstorm up' made, or VAULT_ADDR / VAULT_CACERT /
VAULT_TOKEN). A key is fine when its last acknowledged version is readable
with the acknowledged value, or a later version exists (a write whose
acknowledgement was lost but which was applied), or it is deleted and one of
the run's own deletes explains it. Anything else is a lost write.

Writes whose outcome was unknown (timeouts, broken connections, 5xx) are
counted apart and never called lost. summary.json in RUN_DIR is updated.

Exit status: 0 when no acknowledged write was lost, 1 when some were, 2 when
the ledger or the cluster could not be read.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			target, err := resolveTarget()
			if err != nil {
				return err
			}
			// A run restored from a snapshot is judged against its restore
			// point, as the run judged it.
			var sum rundir.Summary
			serr := rundir.ReadJSON(dir, rundir.SummaryFile, &sum)
			vr, verr := load.VerifyRestored(cmd.Context(), target, dir, restorePoint(sum))
			// Recorded even when the read-back failed: summary.json must
			// not keep an earlier "verified" (but a failure creates none).
			if serr == nil || (verr == nil && errors.Is(serr, os.ErrNotExist)) {
				vr.Apply(&sum)
				if err := rundir.WriteJSON(dir, rundir.SummaryFile, sum); err != nil && verr == nil {
					return err
				}
			}
			if verr != nil {
				return verr
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ledger: %d keys, %d acknowledged writes, %d unknown outcomes; present %d (later version %d), deleted by the run %d; LOST WRITES: %d\n",
				vr.Keys, vr.AckedWrites, vr.UnknownWrites, vr.Present+vr.Later, vr.Later, vr.Deleted, vr.LostWrites)
			return reportLost(cmd.ErrOrStderr(), vr)
		},
	}
}

// restorePoint is the restore a run's summary records, if any.
func restorePoint(s rundir.Summary) *checkers.RestorePoint {
	r := s.Restore
	if r == nil || r.Snapshot.Started.IsZero() {
		return nil
	}
	return &checkers.RestorePoint{SnapshotStarted: r.Snapshot.Started, SnapshotEnded: r.Snapshot.Ended, Loss: r.LossComplete()}
}
