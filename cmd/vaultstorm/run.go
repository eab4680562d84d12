package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/load"
	"github.com/vaultstorm/vaultstorm/reports"
	"github.com/vaultstorm/vaultstorm/scenarios"
	"github.com/vaultstorm/vaultstorm/scenarios/runner"
)

func init() { rootCmd.AddCommand(runCmd()) }

func runCmd() *cobra.Command {
	var timeScale float64
	var seed int64
	var out, vaultBin string
	var keep bool
	var subnet, procs int
	cmd := &cobra.Command{
		Use:   "run NAME|FILE",
		Short: "Run a scenario: cluster up, load, faults on schedule, recovery measured, verdict",
		Long: `run is the main job. It stands up a fresh cluster (as 'up' does), drives the
scenario's KV load, injects its faults on their schedule, probes every node
every 50 ms to time leader elections, unavailability and healing, reads back
every acknowledged write, judges the scenario's expectations, writes the run
directory and its reports, and tears the cluster down (also on Ctrl-C).

NAME is a built-in scenario (see 'vaultstorm scenarios'); FILE is your own HCL.

Exit status: 0 when every expectation holds, 1 when one fails, 2 for bad
input or a harness error.

The run directory (default runs/<UTC time>-<scenario>/) holds scenario.hcl
(as run), events.jsonl, samples.jsonl, histograms.hlog, ledger.jsonl,
metrics/, nodes/*.log, summary.json, report.html, junit.xml, summary.md and
latency.hgrm.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := scenarios.Load(args[0])
			if err != nil {
				return err
			}
			if procs, err = setProcs(procs); err != nil {
				return err
			}
			if cmd.Flags().Changed("seed") {
				sc.Seed = seed
			} else if sc.Seed == 0 {
				sc.Seed = time.Now().UnixNano() & (1<<53 - 1)
			}
			if timeScale != 1 {
				if sc, err = sc.Scale(timeScale); err != nil {
					return fmt.Errorf("--time-scale: %w", err)
				}
			}
			for _, w := range sc.Warnings {
				fmt.Fprintln(os.Stderr, "warning:", w)
			}
			if out == "" {
				out = filepath.Join("runs", time.Now().UTC().Format("20060102T150405Z")+"-"+sc.Name)
			}
			if _, err := os.Stat(out); err == nil {
				if entries, _ := os.ReadDir(out); len(entries) > 0 {
					return fmt.Errorf("--out %s already holds a run: pick another directory", out)
				}
			}
			fmt.Printf("scenario %s (seed %d, time scale %g, %d harness thread(s)): %s\nrun directory: %s\n", sc.Name, sc.Seed, sc.TimeScale, procs, sc.Description, out)
			// The bar starts with the load, not with the cluster bring-up.
			var prog *load.Progress
			var once sync.Once
			start := time.Now()
			res, err := runner.Run(cmd.Context(), runner.Options{
				Scenario: sc, OutDir: out, VaultBin: vaultBin, Keep: keep, Subnet: subnet,
				Tool: "vaultstorm " + version, Command: strings.Join(os.Args, " "),
				Logf: func(format string, a ...any) {
					fmt.Fprintf(os.Stderr, "%7.1fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
				},
				OnSample: func(s rundir.Sample) {
					once.Do(func() { prog = load.NewProgress(os.Stderr, sc.Load.Duration) })
					prog.Sample(s)
				},
			})
			prog.Done()
			if res != nil {
				if rerr := reports.Render(out); rerr != nil {
					fmt.Fprintln(os.Stderr, "report:", rerr)
				}
				printRun(res.Summary, out)
			}
			if err != nil {
				if errors.Is(err, cmd.Context().Err()) && res != nil {
					return failed("run interrupted: partial results in %s", out)
				}
				return err
			}
			if res.Summary.Passed != nil && !*res.Summary.Passed {
				return failed("scenario %s FAILED: see %s", sc.Name, filepath.Join(out, "report.html"))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.Float64Var(&timeScale, "time-scale", 1, "multiply every duration of the scenario (0.1 for a quick CI run; Vault's hard minimums are kept)")
	f.Int64Var(&seed, "seed", 0, "seed for every random choice (targets, zones); default: the scenario's, else the clock")
	f.StringVar(&out, "out", "", "run directory (default runs/<UTC time>-<scenario>)")
	f.BoolVar(&keep, "keep", false, "leave the cluster up at the end (remove it with vaultstorm down --dir RUN/cluster)")
	f.IntVar(&subnet, "subnet", 0, "third octet of the nodes' loopback addresses (127.0.SUBNET.11…), to run beside another cluster")
	addProcsFlag(f, &procs)
	f.StringVar(&vaultBin, "vault-bin", defaultVaultBin(), "Vault binary, unless the scenario names one (default bin/vault)")
	return cmd
}

// printRun prints the recovery table and the verdicts.
func printRun(s rundir.Summary, out string) {
	load.WriteTable(os.Stdout, s)
	if len(s.Faults) > 0 {
		fmt.Println("\nrecovery:")
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "  #\tFAULT\tNODES\tLEADER ELECTED\tWRITES DOWN\tREADS DOWN\tHEALED")
		for i, f := range s.Faults {
			fmt.Fprintf(w, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, f.Kind, strings.Join(f.Nodes, ","),
				optMs(f.LeaderElectedMs), msStr(f.WriteUnavailableMs), msStr(f.ReadUnavailableMs), optMs(f.HealedMs))
		}
		w.Flush()
	}
	if len(s.Expectations) > 0 {
		fmt.Println("\nexpectations:")
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		for _, e := range s.Expectations {
			v := "PASS"
			if !e.Passed {
				v = "FAIL"
			}
			fmt.Fprintf(w, "  %s\t%s\twant %s\tgot %s\n", v, e.Name, e.Want, e.Got)
		}
		w.Flush()
	}
	if s.Passed != nil {
		v := "PASSED"
		if !*s.Passed {
			v = "FAILED"
		}
		fmt.Printf("\n%s: %s %s\n", v, s.Scenario, filepath.Join(out, "report.html"))
	}
}

func optMs(v *float64) string {
	if v == nil {
		return "-"
	}
	return msStr(*v)
}

func msStr(v float64) string {
	return (time.Duration(v * float64(time.Millisecond))).Round(time.Millisecond).String()
}
