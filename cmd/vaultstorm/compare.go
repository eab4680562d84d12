package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/reports"
)

func compareCmd() *cobra.Command {
	var (
		as, bs      []string
		maxReg      string
		thresholds  []string
		format, out string
		minLat      time.Duration
		minRec      time.Duration
		alpha       float64
	)
	cmd := &cobra.Command{
		Use:   "compare RUN_A RUN_B",
		Short: "Compare run B against baseline run A: is B worse beyond a threshold?",
		Long: `compare answers the pre-upgrade question: is B (a new Vault version, a changed
configuration) worse than A on the same scenario? It compares throughput and
p50/p99/p99.9/max per operation, for the whole run and each phase, and each
fault's recovery times (leader elected, write/read unavailability, healed).

Repetitions: RUN_A and RUN_B may each be a glob (quote it) matching several
run directories of the same scenario, e.g. 'runs/*-spot-reclaim-1.20', or
give --a/--b once per directory instead of the two arguments. With at least
two runs per side each figure shows its spread and a Mann-Whitney U test (as
benchstat does) tells whether a difference is beyond noise; with one run per
side, load figures are tested over the per-second samples of the phase.

A figure regresses when B is worse than A by more than its threshold, by
more than a floor (--min-latency-delta, --min-recovery-delta), and, where a
test was possible, significantly. Thresholds: --max-regression for all, and
--threshold KEY=P to override, KEY being a figure's name or a glob of names
(write/during*/p99), a statistic (throughput, p50, p99, p99.9, max,
leader_elected, write_unavailable, read_unavailable, healed) or a group
(latency, recovery); P is a percentage or "off".

Two capacity runs (directories with capacity.json, one a side): each
series' capacity side by side, how far its knee moved, and a regression
when B's is lower than A's by more than --max-regression or B measured none.

Exit status: 0 when B is within the thresholds, 1 when a figure regressed,
2 for bad input.`,
		Example: `  vaultstorm compare runs/0603-spot-reclaim runs/0604-spot-reclaim
  vaultstorm compare 'runs/*-spot-reclaim-1.20.*' 'runs/*-spot-reclaim-1.21.*' --max-regression 5%
  vaultstorm compare A B --threshold max=off --threshold healed=25% --format html --out compare.html`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 && len(args) != 2 {
				return fmt.Errorf("compare: want RUN_A RUN_B (or --a/--b), got %d arguments", len(args))
			}
			if len(args) == 2 {
				as, bs = append([]string{args[0]}, as...), append([]string{args[1]}, bs...)
			}
			if len(as) == 0 || len(bs) == 0 {
				return fmt.Errorf("compare: need runs for both A and B")
			}
			o := reports.DefaultCompareOptions()
			var err error
			if o.MaxRegression, err = parsePercent(maxReg); err != nil {
				return fmt.Errorf("--max-regression: %w", err)
			}
			o.Thresholds = map[string]float64{}
			for _, t := range thresholds {
				k, v, ok := strings.Cut(t, "=")
				if !ok || k == "" {
					return fmt.Errorf("--threshold %q: want KEY=PERCENT", t)
				}
				if o.Thresholds[k], err = parsePercent(v); err != nil {
					return fmt.Errorf("--threshold %q: %w", t, err)
				}
			}
			if minLat < 0 || minRec < 0 || alpha <= 0 || alpha >= 1 {
				return fmt.Errorf("compare: floors must be >= 0 and --alpha in (0,1)")
			}
			o.MinLatencyDeltaMs = float64(minLat) / float64(time.Millisecond)
			o.MinRecoveryDeltaMs = float64(minRec) / float64(time.Millisecond)
			o.Alpha = alpha
			switch format {
			case "table", "markdown", "md", "html":
			default:
				return fmt.Errorf("--format %q: want table, markdown or html", format)
			}

			if done, err := compareCapacity(cmd, as, bs, o.MaxRegression, format, out); done {
				return err
			}
			runsA, err := loadRuns(as)
			if err != nil {
				return fmt.Errorf("A: %w", err)
			}
			runsB, err := loadRuns(bs)
			if err != nil {
				return fmt.Errorf("B: %w", err)
			}
			c, err := reports.Compare(runsA, runsB, o)
			if err != nil {
				return err
			}
			html := func(w io.Writer) error { return c.WriteHTML(w, runsA, runsB) }
			if err := render(cmd, format, out, c.WriteTable, c.WriteMarkdown, html); err != nil {
				return err
			}
			if c.Regressed() {
				return failed("B regressed against A in %d figure(s)", len(c.Regressions))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&as, "a", nil, "a baseline run directory or glob (repeatable; instead of RUN_A)")
	f.StringArrayVar(&bs, "b", nil, "a candidate run directory or glob (repeatable; instead of RUN_B)")
	f.StringVar(&maxReg, "max-regression", "10%", "allowed worsening of any figure")
	f.StringArrayVar(&thresholds, "threshold", nil, "KEY=PERCENT|off: per-figure threshold (repeatable)")
	f.DurationVar(&minLat, "min-latency-delta", time.Millisecond, "latency changes smaller than this never count")
	f.DurationVar(&minRec, "min-recovery-delta", 250*time.Millisecond, "recovery-time changes smaller than this never count")
	f.Float64Var(&alpha, "alpha", 0.05, "significance level of the U test")
	f.StringVar(&format, "format", "table", "table, markdown or html")
	f.StringVarP(&out, "out", "o", "", "write to this file instead of stdout")
	return cmd
}

// compareCapacity compares two capacity runs (done false: they are not
// capacity runs, compare them as scenario runs).
func compareCapacity(cmd *cobra.Command, as, bs []string, maxReg float64, format, out string) (bool, error) {
	isCap := func(d string) bool {
		_, err := os.Stat(filepath.Join(d, rundir.CapacityFile))
		return err == nil
	}
	capA, capB := len(as) == 1 && isCap(as[0]), len(bs) == 1 && isCap(bs[0])
	switch {
	case !capA && !capB:
		return false, nil
	case capA != capB:
		return true, fmt.Errorf("compare: one side is a capacity run (capacity.json) and the other is not: compare capacity runs with capacity runs, one directory a side")
	}
	var a, b rundir.Capacity
	if err := rundir.ReadJSON(as[0], rundir.CapacityFile, &a); err != nil {
		return true, fmt.Errorf("A: %w", err)
	}
	if err := rundir.ReadJSON(bs[0], rundir.CapacityFile, &b); err != nil {
		return true, fmt.Errorf("B: %w", err)
	}
	c, err := reports.CompareCapacity(&a, &b, maxReg)
	if err != nil {
		return true, err
	}
	if err := render(cmd, format, out, c.WriteTable, c.WriteMarkdown, c.WriteHTML); err != nil {
		return true, err
	}
	if c.Regressed() {
		return true, failed("B's capacity regressed against A's")
	}
	return true, nil
}

// emit writes a comparison to the --out file, or to w when there is none.
func emit(w io.Writer, b []byte, out string) error {
	if out == "" || out == "-" {
		_, err := w.Write(b)
		return err
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	fmt.Fprintln(w, "wrote", out)
	return nil
}

// parsePercent reads "10%", "10" (percent) or "off".
func parsePercent(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "off" || s == "none" {
		return -1, nil
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a percentage", s)
	}
	return v / 100, nil
}

// loadRuns expands globs and loads every run directory, in name order.
func loadRuns(patterns []string) ([]*reports.Run, error) {
	var dirs []string
	seen := map[string]bool{}
	for _, p := range patterns {
		matches := []string{p}
		if strings.ContainsAny(p, "*?[") {
			m, err := filepath.Glob(p)
			if err != nil {
				return nil, fmt.Errorf("glob %q: %w", p, err)
			}
			if len(m) == 0 {
				return nil, fmt.Errorf("glob %q matches nothing", p)
			}
			sort.Strings(m)
			matches = m
		}
		for _, d := range matches {
			if seen[d] {
				continue
			}
			seen[d] = true
			if _, err := os.Stat(filepath.Join(d, rundir.MetaFile)); err != nil && strings.ContainsAny(p, "*?[") {
				continue // a glob may also match files and other directories
			}
			dirs = append(dirs, d)
		}
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("no run directories in %s", strings.Join(patterns, ", "))
	}
	var runs []*reports.Run
	for _, d := range dirs {
		r, err := reports.Load(d)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	return runs, nil
}

// render writes a comparison in the format asked for (checked already) to
// out, or to stdout when out is "".
func render(cmd *cobra.Command, format, out string, table, markdown, html func(io.Writer) error) error {
	write := map[string]func(io.Writer) error{"table": table, "markdown": markdown, "md": markdown, "html": html}[format]
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		return err
	}
	return emit(cmd.OutOrStdout(), buf.Bytes(), out)
}
