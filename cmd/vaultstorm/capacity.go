package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vaultstorm/vaultstorm/capacity"
	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/internal/vaultenv"
	"github.com/vaultstorm/vaultstorm/load"
	"github.com/vaultstorm/vaultstorm/reports"
	"github.com/vaultstorm/vaultstorm/scenarios"
)

func init() { rootCmd.AddCommand(capacityCmd()) }

type capacityFlags struct {
	sloP99                          time.Duration
	sloErrors, sloAchieved, maxLate string
	warmup, hold, timeout           time.Duration
	startRate, factor, maxRate      float64
	precision                       string
	maxSteps                        int
	expectRate                      float64
	mixes                           []string
	nodes, storage                  string
	valueSizes, keys                string
	target, mount, keyDist, out     string
	vaultBin, provider              string
	subnet, procs                   int
	http2                           bool
	// From a scenario file's cluster block, for the clusters --nodes
	// stands up.
	disks    int
	diskSize int64
}

func capacityCmd() *cobra.Command {
	var f capacityFlags
	cmd := &cobra.Command{
		Use:   "capacity [FILE] [flags]",
		Short: "Find the highest rate the cluster sustains within an SLO: rate steps, then bisection",
		Long: `capacity answers "how much KV load does this cluster carry at my latency
objective?". It holds open-loop rates one after another, growing
geometrically (--start-rate, x --factor) until a step breaks the SLO, then
bisects between the last step that met it and the first that did not, to
--precision. Each step runs --warmup + --hold (+1 s of drain, not measured):
the warm-up is discarded, the hold measured. A step meets the SLO when,
over its hold:

  p99 (from each request's intended send time) <= --slo-p99
  failed requests                              <= --slo-errors
  achieved rate                                >= --slo-achieved of the target

The answer, per series, is the highest rate that met the SLO below every
rate that broke it. A step where the generator itself fell behind (more
than --max-late of its sends later than a tenth of --slo-p99, not because
the cluster held every worker) measures the harness, not Vault: when the
SLO broke there and the cluster's share alone cannot explain it, the
search stops "generator-bound" and reports no capacity, only a lower
bound. Each step also reports the CPU the generator and each node used
(from /proc; local clusters only), since on one machine they share it.

Which cluster:
  --nodes 3,5,7   stand up a fresh cluster per node count (x --storage), one
                  after another, measure it, tear it down
  (no --nodes)    the cluster 'vaultstorm up' made in --dir, or the Vault that
                  VAULT_ADDR, VAULT_CACERT and VAULT_TOKEN point at

FILE: a scenario file with a capacity block (see scenarios/README.md) holds
the same settings, so a nightly job keeps its capacity gate in a file; its
cluster block shapes the clusters, its load block the requests, and flags
given on the command line win.

Series: every combination of cluster shape, --mix (repeatable), --value-size
and --keys (comma lists) is searched on its own, one chart line each.

The run directory (default runs/<UTC time>-capacity/) gets capacity.json
(settings, every step, the answers), steps/SERIES/NN-RATE/ (each step a load
run directory), report.html (chart of rate vs p50/p99 with the SLO and the
knee), junit.xml and summary.md. 'vaultstorm compare A B' of two capacity
runs says how far each knee moved.

Ctrl-C stops the search: the steps' writes are read back, the clusters
--nodes stood up are torn down, and the run directory keeps every step
measured. A capacity run killed outright
(SIGKILL) leaves its cluster in RUN/clusters/SHAPE: 'vaultstorm down --dir
RUN/clusters/SHAPE' removes it.

Exit status: 0 when every series was measured (and sustains --expect-rate,
when given); 1 when a series falls short of --expect-rate, did not meet the
SLO even at its first rate with --expect-rate given, or lost acknowledged
writes; 2 for bad input or a harness error; 3 when a series stopped
generator-bound (nothing said about the cluster).`,
		Example: `  vaultstorm capacity --slo-p99 50ms
  vaultstorm capacity --nodes 3,5,7 --mix read=100 --mix read=80,write=20 --mix write=100
  vaultstorm capacity --nodes 5 --storage raid0,single,dir --mix write=100
  vaultstorm capacity --expect-rate 800 --slo-p99 100ms   # nightly gate: exit 1 below 800 req/s`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if err := f.fromScenario(cmd, args[0]); err != nil {
					return err
				}
			}
			return runCapacity(cmd, f)
		},
	}
	fl := cmd.Flags()
	def := capacity.DefaultSLO()
	ds := capacity.DefaultSearch()
	fl.DurationVar(&f.sloP99, "slo-p99", time.Duration(def.P99Ms*float64(time.Millisecond)), "SLO: p99 latency of every operation, from intended send time")
	fl.StringVar(&f.sloErrors, "slo-errors", fmt.Sprintf("%g%%", def.ErrorPct), "SLO: most failed requests, percent of answered ones")
	fl.StringVar(&f.sloAchieved, "slo-achieved", fmt.Sprintf("%g%%", def.AchievedPct), "SLO: least achieved rate, percent of the step's target")
	fl.StringVar(&f.maxLate, "max-late", fmt.Sprintf("%g%%", def.MaxLatePct), "generator check: more sends than this later than a tenth of --slo-p99 make a broken step generator-bound")
	fl.DurationVar(&f.warmup, "warmup", 5*time.Second, "start of each step, discarded (whole seconds)")
	fl.DurationVar(&f.hold, "hold", 15*time.Second, "measured part of each step (whole seconds)")
	fl.Float64Var(&f.startRate, "start-rate", ds.Start, "first step, req/s")
	fl.Float64Var(&f.factor, "factor", ds.Factor, "each step before the knee is this many times the last")
	fl.Float64Var(&f.maxRate, "max-rate", ds.Max, "no step above this rate; reaching it within the SLO reports a ceiling, not a knee")
	fl.StringVar(&f.precision, "precision", fmt.Sprintf("%g%%", ds.Precision*100), "bisect until the rates that met and broke the SLO are this close")
	fl.IntVar(&f.maxSteps, "max-steps", ds.MaxSteps, "most steps per series")
	fl.Float64Var(&f.expectRate, "expect-rate", 0, "gate: every series must sustain at least this rate within the SLO (junit.xml: one case per series)")
	fl.StringArrayVar(&f.mixes, "mix", []string{"read=80,write=20"}, "operation weights, repeatable: one series per mix")
	fl.StringVar(&f.nodes, "nodes", "", "stand up a fresh cluster per node count, e.g. 3,5,7 (default: measure the cluster that is up, or VAULT_ADDR)")
	fl.StringVar(&f.storage, "storage", "raid0", "with --nodes: data disk kinds to compare, e.g. raid0,single,dir")
	fl.StringVar(&f.valueSizes, "value-size", "256", "bytes per written value; a comma list makes one series each")
	fl.StringVar(&f.keys, "keys", "1000", "key space; a comma list makes one series each")
	fl.StringVar(&f.target, "target", "active", "where requests go: active, all (standbys forward), or one node")
	fl.StringVar(&f.mount, "mount", "vaultstorm", "KV version 2 mount path; created if missing")
	fl.StringVar(&f.keyDist, "key-dist", "uniform", "key choice: uniform, zipf or zipf:THETA")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Second, "per-request timeout")
	fl.BoolVar(&f.http2, "http2", false, "speak HTTP/2 instead of HTTP/1.1")
	fl.StringVar(&f.out, "out", "", "run directory (default runs/<UTC time>-capacity/)")
	fl.StringVar(&f.vaultBin, "vault-bin", defaultVaultBin(), "with --nodes: the Vault binary (default bin/vault)")
	fl.StringVar(&f.provider, "provider", "process", "with --nodes: where the nodes run, process or docker")
	fl.IntVar(&f.subnet, "subnet", 0, "with --nodes: third octet of the nodes' loopback addresses (127.0.SUBNET.11…)")
	addProcsFlag(fl, &f.procs)
	return cmd
}

// percent parses "0.1%" or "0.1" as a percentage.
func percent(flag, s string, lo, hi float64) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("--%s %q: want a percentage from %g%% to %g%%, e.g. 0.1%%", flag, s, lo, hi)
	}
	return v, nil
}

func intList(flag, s string, lo, hi int) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < lo || n > hi {
			return nil, fmt.Errorf("--%s %q: %q is not a whole number from %d to %d", flag, s, strings.TrimSpace(p), lo, hi)
		}
		out = append(out, n)
	}
	return out, nil
}

func (f capacityFlags) plan(cmd *cobra.Command) (*capacity.Plan, error) {
	p := &capacity.Plan{SLO: capacity.DefaultSLO(), Warmup: f.warmup, Hold: f.hold, ExpectRate: f.expectRate}
	var err error
	p.SLO.P99Ms = float64(f.sloP99) / float64(time.Millisecond)
	p.SLO.LateMs = capacity.LateMs(p.SLO.P99Ms)
	if p.SLO.ErrorPct, err = percent("slo-errors", f.sloErrors, 0, 100); err != nil {
		return nil, err
	}
	if p.SLO.AchievedPct, err = percent("slo-achieved", f.sloAchieved, 1, 100); err != nil {
		return nil, err
	}
	if p.SLO.MaxLatePct, err = percent("max-late", f.maxLate, 0, 100); err != nil {
		return nil, err
	}
	prec, err := percent("precision", f.precision, 0.1, 50)
	if err != nil {
		return nil, err
	}
	p.Search = capacity.Search{Start: f.startRate, Factor: f.factor, Max: f.maxRate, Precision: prec / 100, MaxSteps: f.maxSteps}
	for _, m := range f.mixes {
		mix, err := load.ParseMix(m)
		if err != nil {
			return nil, fmt.Errorf("--mix %q: %w", m, err)
		}
		p.Mixes = append(p.Mixes, mix)
	}
	if p.ValueSizes, err = intList("value-size", f.valueSizes, 1, 1<<20); err != nil {
		return nil, err
	}
	if p.Keys, err = intList("keys", f.keys, 1, 10_000_000); err != nil {
		return nil, err
	}
	if f.timeout <= 0 {
		return nil, fmt.Errorf("--timeout %s: must be positive", f.timeout)
	}
	p.Load = load.Options{Target: f.target, Mount: strings.Trim(f.mount, "/"), Timeout: f.timeout, HTTP2: f.http2}
	if p.Load.KeyDist, err = load.ParseKeyDist(f.keyDist); err != nil {
		return nil, fmt.Errorf("--key-dist: %w", err)
	}
	if f.nodes != "" {
		counts, err := intList("nodes", f.nodes, 1, 15)
		if err != nil {
			return nil, err
		}
		for _, n := range counts {
			for _, s := range strings.Split(f.storage, ",") {
				s = strings.TrimSpace(s)
				if _, err := capacity.StorageKind(s); err != nil {
					return nil, fmt.Errorf("--storage: %w", err)
				}
				p.Shapes = append(p.Shapes, capacity.Shape{Nodes: n, Storage: s})
			}
		}
		p.Spec, p.VaultBin = cluster.DefaultSpec(), f.vaultBin
		p.Spec.Subnet = f.subnet
		switch f.provider {
		case "process", "docker":
			p.Spec.Provider = f.provider
		default:
			return nil, fmt.Errorf("--provider %q: want process or docker", f.provider)
		}
		if f.disks > 0 {
			p.Spec.Disks = f.disks
		}
		if f.diskSize > 0 {
			p.Spec.DiskSize = f.diskSize
		}
		if vaultenv.Get("VAULT_ADDR") != "" {
			return nil, errors.New("--nodes stands up its own clusters, but VAULT_ADDR is set: unset it, or drop --nodes to measure that Vault")
		}
	} else {
		if err := p.ValidateSettings(); err != nil {
			return nil, err
		}
		for _, fl := range []string{"storage", "subnet", "provider"} {
			if cmd.Flags().Changed(fl) {
				return nil, fmt.Errorf("--%s shapes the clusters --nodes stands up: give --nodes too", fl)
			}
		}
		ex, err := existingCluster()
		if err != nil {
			return nil, err
		}
		p.Existing = ex
	}
	return p, p.Validate()
}

// fromScenario takes every setting the command line did not give from a
// scenario file's capacity, cluster and load blocks.
func (f *capacityFlags) fromScenario(cmd *cobra.Command, arg string) error {
	sc, err := scenarios.Load(arg)
	if err != nil {
		return err
	}
	c := sc.Capacity
	if c == nil {
		return fmt.Errorf("%s has no capacity block: it is a fault scenario, run it with `vaultstorm run %s`", arg, arg)
	}
	for _, w := range sc.Warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
	}
	set := func(name string, cond bool, apply func()) {
		if cond && !cmd.Flags().Changed(name) {
			apply()
		}
	}
	pct := func(v float64) string { return fmt.Sprintf("%g%%", v) }
	set("slo-p99", c.SLOP99 > 0, func() { f.sloP99 = c.SLOP99 })
	set("slo-errors", c.SLOErrors > 0, func() { f.sloErrors = pct(c.SLOErrors) })
	set("slo-achieved", c.SLOAchieved > 0, func() { f.sloAchieved = pct(c.SLOAchieved) })
	set("max-late", c.MaxLate > 0, func() { f.maxLate = pct(c.MaxLate) })
	set("warmup", c.Warmup > 0, func() { f.warmup = c.Warmup })
	set("hold", c.Hold > 0, func() { f.hold = c.Hold })
	set("start-rate", c.StartRate > 0, func() { f.startRate = c.StartRate })
	set("factor", c.Factor > 0, func() { f.factor = c.Factor })
	set("max-rate", c.MaxRate > 0, func() { f.maxRate = c.MaxRate })
	set("precision", c.Precision > 0, func() { f.precision = pct(c.Precision) })
	set("max-steps", c.MaxSteps > 0, func() { f.maxSteps = c.MaxSteps })
	set("expect-rate", c.ExpectRate > 0, func() { f.expectRate = c.ExpectRate })
	l := sc.Load
	set("mix", true, func() {
		f.mixes = []string{l.Mix.String()}
		if len(c.Mixes) > 0 {
			f.mixes = nil
			for _, m := range c.Mixes {
				f.mixes = append(f.mixes, m.String())
			}
		}
	})
	ints := func(vs []int, def int) string {
		if len(vs) == 0 {
			return strconv.Itoa(def)
		}
		s := make([]string, len(vs))
		for i, v := range vs {
			s[i] = strconv.Itoa(v)
		}
		return strings.Join(s, ",")
	}
	set("value-size", true, func() { f.valueSizes = ints(c.ValueSizes, l.ValueSize) })
	set("keys", true, func() { f.keys = ints(c.Keys, l.Keys) })
	set("target", true, func() { f.target = l.Target })
	set("mount", true, func() { f.mount = l.Mount })
	set("key-dist", true, func() { f.keyDist = l.Distribution.String() })
	cl := sc.Cluster
	if cl.Provider == scenarios.ProviderExternal {
		return nil // the Vault VAULT_ADDR points at
	}
	set("nodes", true, func() { f.nodes = ints(c.Nodes, cl.Nodes) })
	set("storage", true, func() {
		f.storage = cl.Storage
		if len(c.Storage) > 0 {
			f.storage = strings.Join(c.Storage, ",")
		}
	})
	set("provider", true, func() { f.provider = cl.Provider })
	f.disks, f.diskSize = cl.DisksPerNode, cl.DiskSize
	switch {
	case cl.VaultBin != "" && !cmd.Flags().Changed("vault-bin"):
		f.vaultBin = cl.VaultBin
	case cl.VaultVersion != "" && !cmd.Flags().Changed("vault-bin"):
		if f.vaultBin, err = versionBin(cmd.Context(), cl.VaultVersion); err != nil {
			return fmt.Errorf("%s: %w", arg, err)
		}
	}
	return nil
}

// existingCluster is what `load` would target, with the node processes
// when this machine runs them.
func existingCluster() (*capacity.Existing, error) {
	if addr := vaultenv.Get("VAULT_ADDR"); addr != "" {
		t, err := envTarget(addr)
		if err != nil {
			return nil, err
		}
		return &capacity.Existing{Target: t, Nodes: len(t.Addrs), Provider: "external", Source: addr}, nil
	}
	c, err := cluster.Open(clusterDir)
	if err != nil {
		return nil, fmt.Errorf("%w: stand one up with `vaultstorm up`, let capacity stand its own with --nodes 5, or set VAULT_ADDR, VAULT_CACERT and VAULT_TOKEN", err)
	}
	t, err := clusterTarget()
	if err != nil {
		return nil, err
	}
	ex := &capacity.Existing{Target: t, Nodes: len(c.State.Nodes), Storage: string(c.State.Spec.Storage),
		Provider: c.State.Provider, VaultVersion: c.State.VaultVersion, Source: clusterDir, PIDs: map[string]int{}}
	for _, n := range c.State.Nodes {
		ex.PIDs[n.Name] = n.PID
	}
	return ex, nil
}

func runCapacity(cmd *cobra.Command, f capacityFlags) error {
	p, err := f.plan(cmd)
	if err != nil {
		return err
	}
	procs, err := setProcs(f.procs)
	if err != nil {
		return err
	}
	out := f.out
	if out == "" {
		out = filepath.Join("runs", time.Now().UTC().Format("20060102T150405Z")+"-capacity")
	}
	if entries, _ := os.ReadDir(out); len(entries) > 0 {
		return fmt.Errorf("--out %s already holds a run: pick another directory", out)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("create run directory: %w", err)
	}
	p.OutDir = out
	start := time.Now()
	stderr := cmd.ErrOrStderr()
	p.Logf = func(format string, a ...any) {
		fmt.Fprintf(stderr, "%7.1fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
	}
	p.OnStep = func(ser *rundir.CapacitySeries, st rundir.CapacityStep) {
		p.Logf("  step %2d %-9s %8g req/s: achieved %8.1f  p50 %7.1fms  p99 %7.1fms  errors %.2f%%  late %.2f%%  → %s%s",
			st.Index, st.Phase, st.Rate, st.Achieved, st.P50Ms, st.P99Ms, st.ErrorPct, st.LatePct, st.Verdict, whyText(st))
	}
	meta := rundir.Meta{Tool: "vaultstorm " + version, Command: "vaultstorm " + strings.Join(os.Args[1:], " "),
		Load: fmt.Sprintf("capacity search, SLO p99 ≤ %gms", p.SLO.P99Ms), Started: time.Now().UTC()}
	if p.Existing != nil {
		meta.Nodes, meta.Storage, meta.Provider, meta.VaultVersion = p.Existing.Nodes, p.Existing.Storage, p.Existing.Provider, p.Existing.VaultVersion
	}
	if err := rundir.WriteJSON(out, rundir.MetaFile, meta); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "capacity: SLO p99 ≤ %gms, errors ≤ %g%%, achieved ≥ %g%%; steps %s warm-up + %s hold; %d harness thread(s) → %s\n",
		p.SLO.P99Ms, p.SLO.ErrorPct, p.SLO.AchievedPct, p.Warmup, p.Hold, procs, out)
	doc, runErr := p.Run(cmd.Context())
	if doc != nil {
		if !doc.Ended.IsZero() {
			meta.Ended = doc.Ended
			if err := rundir.WriteJSON(out, rundir.MetaFile, meta); err != nil {
				runErr = errors.Join(runErr, err)
			}
		}
		if err := reports.Render(out); err != nil {
			fmt.Fprintln(stderr, "report:", err)
		}
		printCapacity(cmd.OutOrStdout(), doc, out)
	}
	if cmd.Context().Err() != nil {
		return failed("capacity interrupted: partial results in %s", out)
	}
	if runErr != nil {
		return runErr
	}
	return capacityVerdict(doc)
}

func whyText(st rundir.CapacityStep) string {
	if len(st.Why) == 0 {
		return ""
	}
	return " (" + strings.Join(st.Why, "; ") + ")"
}

// capacityVerdict is the exit status: lost writes and a missed gate fail,
// a generator-bound series is INVALID.
func capacityVerdict(doc *rundir.Capacity) error {
	v := reports.JudgeCapacity(doc)
	switch {
	case len(v.Invalid) > 0:
		return &exitError{code: 3, err: fmt.Errorf("capacity INVALID: %s", strings.Join(v.Invalid, "; "))}
	case len(v.Failed) > 0:
		return failed("capacity FAILED: %s", strings.Join(v.Failed, "; "))
	}
	return nil
}

func printCapacity(w io.Writer, doc *rundir.Capacity, out string) {
	fmt.Fprintf(w, "\ncapacity at p99 ≤ %gms, errors ≤ %g%%, achieved ≥ %g%%:\n", doc.SLO.P99Ms, doc.SLO.ErrorPct, doc.SLO.AchievedPct)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIES\tCAPACITY\tSTATUS\tSTEPS\tLEDGER")
	for _, s := range doc.Series {
		ledger := fmt.Sprintf("%d acked, %d lost", s.AckedWrites, s.LostWrites)
		if !s.Verified {
			ledger = "UNVERIFIED: " + s.VerifyError
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", s.Name, reports.CapacityText(s), s.Status, len(s.Steps), ledger)
	}
	tw.Flush()
	for _, s := range doc.Series {
		if s.Reason != "" && s.Status != rundir.SeriesKnee {
			fmt.Fprintf(w, "  %s: %s\n", s.Name, s.Reason)
		}
	}
	fmt.Fprintf(w, "run directory: %s (report.html, capacity.json)\n", out)
}
