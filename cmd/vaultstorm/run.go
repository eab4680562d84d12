package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vaultstorm/vaultstorm/cluster/external"
	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/load"
	"github.com/vaultstorm/vaultstorm/reports"
	"github.com/vaultstorm/vaultstorm/scenarios"
	"github.com/vaultstorm/vaultstorm/scenarios/runner"
)

func init() { rootCmd.AddCommand(runCmd()) }

func runCmd() *cobra.Command {
	var timeScale, rate float64
	var seed int64
	var out, vaultBin, vaultVersion string
	var keep bool
	var subnet, procs, repeat int
	var provider, inventory string
	var dryRun, yes bool
	cmd := &cobra.Command{
		Use:   "run NAME|FILE",
		Short: "Run a scenario: cluster up, load, faults on schedule, recovery measured, verdict",
		Long: `run is the main job. It stands up a fresh cluster (as 'up' does), drives the
scenario's KV load, injects its faults on their schedule, probes every node
through one watcher (every 50 ms on the nodes a fault touches and on the
leader from just before the fault until the cluster is whole again, every
3 s otherwise) to time leader elections, unavailability and healing, reads
back every acknowledged write, checks the sampled keys' histories for
linearizability, judges the scenario's expectations, writes the run
directory and its reports, and tears the cluster down (also on Ctrl-C).

NAME is a built-in scenario (see 'vaultstorm scenarios'); FILE is your own HCL.

--inventory FILE (or cluster { provider = "external" inventory = "FILE" })
runs the scenario on a cluster vaultstorm did not make: nothing is stood up
or torn down, the nodes are read from Vault, every fault is the inventory's
command (kill, stop, pause/resume, partition/heal, spot_reclaim = reclaim;
the replacement the fleet launches is found in the raft configuration), and
each command's output goes to RUN/commands/. It needs --yes (or CI=true);
--dry-run prints the schedule and the commands it would run, and exits.

Exit status: 0 when every expectation holds, 1 when one fails (a figure
that could not be measured - an unfinished read-back, no leader at the
final check - fails its expectation), 2 for bad input or a harness error,
3 when the run is INVALID: the load generator fell behind its own
schedule (more than generator_late_sends of requests sent late, or a send
later than generator_max_lag), so the run says nothing about Vault.

--repeat N runs the scenario N times, one after another, each on a new
cluster with the same seed, into RUN/1 ... RUN/N, and prints one verdict line
per repetition; the exit status is the worst one's (a harness error over
INVALID over FAILED over PASSED). 'vaultstorm compare "A/*" "B/*"' then
compares N repetitions a side. --vault-version 1.19.5 runs bin/vault-1.19.5
(from 'make vault VAULT_VERSION=1.19.5') whatever the scenario names.

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
			if sc.Capacity != nil {
				return fmt.Errorf("%s has a capacity block: it is a capacity search, run it with `vaultstorm capacity %s`", args[0], args[0])
			}
			if procs, err = setProcs(procs); err != nil {
				return err
			}
			if cmd.Flags().Changed("seed") {
				sc.Seed = seed
			} else if sc.Seed == 0 {
				sc.Seed = time.Now().UnixNano() & (1<<53 - 1)
			}
			if cmd.Flags().Changed("rate") {
				if err := sc.SetRate(rate); err != nil {
					return fmt.Errorf("--rate: %w", err)
				}
			}
			if timeScale != 1 {
				if sc, err = sc.Scale(timeScale); err != nil {
					return fmt.Errorf("--time-scale: %w", err)
				}
			}
			if cmd.Flags().Changed("vault-version") {
				if err := pickVaultBin(cmd, &vaultBin, vaultVersion); err != nil {
					return err
				}
				// The flag wins over the scenario's cluster block, and
				// scenario.hcl (as run) says which version ran.
				sc.Cluster.VaultVersion, sc.Cluster.VaultBin = vaultVersion, ""
			}
			if cmd.Flags().Changed("provider") {
				switch provider {
				case scenarios.ProviderProcess, scenarios.ProviderDocker:
				default:
					return fmt.Errorf("--provider %q: want process or docker", provider)
				}
				// scenario.hcl (as run) says where it ran.
				sc.Cluster.Provider = provider
			}
			if inventory != "" {
				sc.Cluster.Provider, sc.Cluster.Inventory = scenarios.ProviderExternal, inventory
			}
			var fleet *external.Fleet
			if sc.Cluster.Provider == scenarios.ProviderExternal {
				if sc.Cluster.Inventory == "" {
					return errors.New("provider \"external\" needs an inventory: --inventory FILE, or inventory = \"FILE\" in the cluster block")
				}
				if fleet, err = attachInventory(cmd.Context(), sc.Cluster.Inventory); err != nil {
					return err
				}
			}
			if dryRun {
				return printSchedule(sc, fleet)
			}
			if fleet != nil && !confirmed(yes) {
				return fmt.Errorf("scenario %s acts on the cluster %s (%d nodes) that %s describes: add --yes to run it (CI=true counts as yes), or --dry-run to see what it would do", sc.Name, fleet.Inv.ClusterName, len(fleet.Nodes()), sc.Cluster.Inventory)
			}
			repeated := cmd.Flags().Changed("repeat")
			if repeat < 1 || repeat > 100 {
				return fmt.Errorf("--repeat %d: want 1-100", repeat)
			}
			if keep && repeat > 1 {
				return errors.New("--keep with --repeat: each repetition needs the addresses the previous one's cluster would keep")
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
			if !repeated {
				return runOnce(cmd, sc, out, vaultBin, keep, subnet, procs, fleet)
			}
			// --repeat N: RUN/1 … RUN/N, one after another, each with its
			// own cluster and the same seed, so `compare 'A/*' 'B/*'` has
			// N repetitions a side. Exit status: the worst repetition's.
			verdicts := make([]string, 0, repeat)
			var worst error
			for i := 1; i <= repeat; i++ {
				dir := filepath.Join(out, strconv.Itoa(i))
				fmt.Printf("\n== repetition %d/%d: %s\n", i, repeat, dir)
				err := runOnce(cmd, sc, dir, vaultBin, keep, subnet, procs, fleet)
				v := fmt.Sprintf("repetition %d/%d: %s %s", i, repeat, verdictOf(err), dir)
				fmt.Println(v)
				verdicts = append(verdicts, v)
				if severity(err) > severity(worst) {
					worst = err
				}
				if cmd.Context().Err() != nil {
					break
				}
			}
			fmt.Printf("\n%s: %d repetition(s) in %s\n  %s\ncompare them with: vaultstorm compare '%s' 'OTHER/*'\n",
				sc.Name, len(verdicts), out, strings.Join(verdicts, "\n  "), filepath.Join(out, "*"))
			return worst
		},
	}
	f := cmd.Flags()
	f.Float64Var(&timeScale, "time-scale", 1, "multiply every duration of the scenario (0.1 for a quick CI run; Vault's hard minimums are kept)")
	f.Float64Var(&rate, "rate", 0, "requests per second instead of the scenario's (a ramp keeps its shape, scaled to end at this rate); the shipped scenarios' default is what a 2-core machine running all five nodes and the generator sustains")
	f.Int64Var(&seed, "seed", 0, "seed for every random choice (targets, zones); default: the scenario's, else the clock")
	f.StringVar(&out, "out", "", "run directory (default runs/<UTC time>-<scenario>); with --repeat the parent of RUN/1 … RUN/N")
	f.BoolVar(&keep, "keep", false, "leave the cluster up at the end (remove it with vaultstorm down --dir RUN/cluster)")
	f.IntVar(&subnet, "subnet", 0, "third octet of the nodes' addresses (127.0.SUBNET.11… for process, 10.213.SUBNET.11… for docker), to run beside another cluster")
	f.StringVar(&provider, "provider", "", "where the nodes run, whatever the scenario names: process (local vault processes) or docker (a container per node on a private network)")
	f.StringVar(&inventory, "inventory", "", "run on the cluster this inventory describes (provider external): nothing stood up or torn down, faults through its commands")
	f.BoolVar(&dryRun, "dry-run", false, "print the fault schedule (and, with an inventory, each command with the nodes as they are now) and run nothing")
	f.BoolVar(&yes, "yes", false, "with an inventory: act on that cluster (CI=true counts as yes)")
	addProcsFlag(f, &procs)
	f.StringVar(&vaultBin, "vault-bin", defaultVaultBin(), "Vault binary, unless the scenario names one (default bin/vault)")
	f.StringVar(&vaultVersion, "vault-version", "", "run Vault release `VERSION` (e.g. 1.19.5), whatever the scenario names: bin/vault-VERSION next to the default binary, built by 'make vault VAULT_VERSION=VERSION'; excludes --vault-bin")
	f.IntVar(&repeat, "repeat", 1, "run the scenario N times, one after another, each on a new cluster, into RUN/1 … RUN/N (same seed); exit status: the worst run's; compare takes them as 'RUN/*'")
	return cmd
}

// runOnce runs sc into out and prints its tables: what `run` does once.
func runOnce(cmd *cobra.Command, sc *scenarios.Scenario, out, vaultBin string, keep bool, subnet, procs int, fleet *external.Fleet) error {
	fmt.Printf("scenario %s (seed %d, time scale %g, %d harness thread(s)): %s\nrun directory: %s\n", sc.Name, sc.Seed, sc.TimeScale, procs, sc.Description, out)
	// The bar starts with the load, not with the cluster bring-up.
	var prog *load.Progress
	var once sync.Once
	start := time.Now()
	res, err := runner.Run(cmd.Context(), runner.Options{
		Scenario: sc, OutDir: out, VaultBin: vaultBin, Keep: keep, Subnet: subnet, Fleet: fleet,
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
	if len(res.Summary.Invalid) > 0 {
		return &exitError{code: 3, err: fmt.Errorf("scenario %s INVALID: the harness, not Vault, fell behind (%s): nothing this run measured can be trusted; lower the rate or give the generator more CPU", sc.Name, strings.Join(res.Summary.Invalid, "; "))}
	}
	if res.Summary.Passed != nil && !*res.Summary.Passed {
		return failed("scenario %s FAILED: see %s", sc.Name, filepath.Join(out, "report.html"))
	}
	return nil
}

// verdictOf names a run's outcome from runOnce's error.
func verdictOf(err error) string {
	var ee *exitError
	switch {
	case err == nil:
		return "PASSED"
	case errors.As(err, &ee) && ee.code == 1:
		return "FAILED"
	case errors.As(err, &ee) && ee.code == 3:
		return "INVALID"
	default:
		return "ERROR (" + err.Error() + ")"
	}
}

// severity orders outcomes for --repeat's exit status: passed < failed
// (exit 1) < invalid (exit 3) < a harness error or bad input (exit 2).
func severity(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.code == 1:
		return 1
	case errors.As(err, &ee) && ee.code == 3:
		return 2
	default:
		return 3
	}
}

// printRun prints the recovery table and the verdicts.
func printRun(s rundir.Summary, out string) {
	load.WriteTable(os.Stdout, s)
	if len(s.Faults) > 0 {
		fmt.Println("\nrecovery:")
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "  #\tFAULT\tNODES\tLEADER ELECTED\tWRITES DOWN (errors)\tREADS DOWN (errors)\tHEALED")
		for i, f := range s.Faults {
			healed := optMs(f.HealedMs)
			if f.HealedMs == nil && f.Degraded != "" {
				healed = f.Degraded
			}
			fmt.Fprintf(w, "  %d\t%s\t%s\t%s\t%s (%s)\t%s (%s)\t%s\n", i+1, f.Kind, strings.Join(f.Nodes, ","),
				optMs(f.LeaderElectedMs), msStr(f.WriteUnavailableMs), msStr(f.WriteErrorWindowMs),
				msStr(f.ReadUnavailableMs), msStr(f.ReadErrorWindowMs), healed)
		}
		w.Flush()
		fmt.Printf("  (down: the longest run of requests that failed or took over %s; errors: failed ones only)\n", msStr(s.UnavailableAfterMs))
	}
	printObserved(s)
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
		if len(s.Invalid) > 0 {
			v = "INVALID"
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

// printObserved prints the end state the final check found (the load's
// table has the ledger, the histories' verdict and the observer's cost).
func printObserved(s rundir.Summary) {
	if f := s.Final; f != nil {
		if f.Error != "" {
			fmt.Printf("\nend state (%s): %s\n", f.T.Local().Format("15:04:05"), f.Error)
		} else {
			var nodes []string
			for _, n := range f.Nodes {
				nodes = append(nodes, fmt.Sprintf("%s %s %s", n.Name, n.State, n.Version))
			}
			fmt.Printf("\nend state (%s): leader %s, %d/%d voters, %d raft peers, autopilot healthy %v\n  %s\n",
				f.T.Local().Format("15:04:05"), f.Leader, len(f.Voters), f.IntendedVoters, len(f.Peers), f.AutopilotHealthy, strings.Join(nodes, "; "))
		}
	}
}
