package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vaultstorm/vaultstorm/checkers"
	"github.com/vaultstorm/vaultstorm/internal/runbucket"
	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/load"
	"github.com/vaultstorm/vaultstorm/reports"
)

func init() { rootCmd.AddCommand(mergeCmd()) }

func mergeCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "merge [--out DIR] SHARD_DIR|BUCKET_URL...",
		Short: "Combine the run directories of 'load --shard I/N' into one run, verify its ledger once, render its report",
		Long: `merge combines the N run directories of one sharded load run ('vaultstorm
load --shard I/N', I 0-based, one per machine) into ONE run directory, as
if one generator had sent the whole load:

  histograms.hlog  the shards' HdrHistogram intervals added exactly, per
                   operation and per wall-clock second (hdrhistogram-go's
                   Merge; a value a histogram cannot hold fails the merge)
  samples.jsonl    the shards' per-second samples summed by the wall-clock
                   second they started in (shards are aligned by their
                   absolute timestamps, so their clocks must agree: NTP)
  ledger.jsonl     the union of the shards' ledgers (disjoint keys)
  summary.json     counts, errors and rates the sum of the shards',
                   percentiles from the added histograms
  merge.json       each shard's own totals and every operation together ("all")

A BUCKET_URL (file:///dir or s3://bucket?region=…&endpoint=…&prefix=RUN/,
where 'load --upload' put the shards) stands for every run folder in it:
they are downloaded into DIR/shards/ first.

It then reads the united ledger back ONCE from the cluster (the one 'vaultstorm
up' made, or VAULT_ADDR / VAULT_CACERT / VAULT_TOKEN) and renders
report.html, summary.md, junit.xml and latency.hgrm into the merged
directory, as 'vaultstorm report' does.

Refused, naming the directory: a directory that is not a finished shard, a
different shard count or --run-id, a duplicate or missing index, another KV
mount, shards that did not run at the same time, a key in two shards'
ledgers. There is no --partial: a merge of some shards would report part of
the load as the whole; run the missing shard again instead.

Exit status: 0 when the ledger was read back and no acknowledged write was
lost; 1 when writes were lost; 2 for refused shards or when the ledger could
not be read back (the merged directory is still written, its ledger
"NOT VERIFIED", never "0 lost": run 'vaultstorm verify DIR' and 'vaultstorm
report DIR' once the cluster is reachable).`,
		Example: `  vaultstorm merge --out runs/nightly runs/shard-0 runs/shard-1 runs/shard-2 runs/shard-3
  vaultstorm merge runs/*-load-shard-*-of-4
  vaultstorm merge --out runs/nightly 's3://runs?region=us-east-1&prefix=nightly-42/'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runMerge(cmd, out, args) },
	}
	cmd.Flags().StringVar(&out, "out", "", "merged run directory, new or empty (default runs/<UTC time>-merged/)")
	return cmd
}

func runMerge(cmd *cobra.Command, out string, dirs []string) error {
	if out == "" {
		out = filepath.Join("runs", time.Now().UTC().Format("20060102T150405Z")+"-merged")
	}
	dirs, err := fetchShards(cmd, out, dirs)
	if err != nil {
		return err
	}
	res, err := reports.MergeShards(out, dirs)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "merged %d shards", res.Count)
	if res.RunID != "" {
		fmt.Fprintf(w, " of run %s", res.RunID)
	}
	fmt.Fprintf(w, " (%d wall-clock seconds):\n", res.Seconds)
	for _, s := range res.Shards {
		fmt.Fprintf(w, "  shard %d/%d %s: %s; %d acknowledged writes\n", s.Index, res.Count, s.Dir, opCounts(s.Ops), s.AckedWrites)
	}

	var sum rundir.Summary
	if err := rundir.ReadJSON(out, rundir.SummaryFile, &sum); err != nil {
		return err
	}
	// One read-back of the united ledger, through the existing verify path.
	ctx := cmd.Context()
	vr, verr := verifyMerged(ctx, out)
	vr.Apply(&sum) // unverified stays unverified: never "0 lost"
	if err := rundir.WriteJSON(out, rundir.SummaryFile, sum); err != nil {
		return err
	}
	if err := reports.Render(out); err != nil {
		return fmt.Errorf("render the merged report: %w", err)
	}
	load.WriteTable(w, sum)
	a := res.All
	fmt.Fprintf(w, "all ops: %d requests, %d errors, %.1f req/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
		a.Count, a.Errors, a.Rate, a.P50, a.P99, a.P999, a.Max)
	r, err := reports.Load(out)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: %s\nreport: %s\n", out, r.Verdict().Text, filepath.Join(out, reports.HTMLFile))
	if verr != nil {
		return fmt.Errorf("the merged ledger is NOT VERIFIED (%w); the merged run is in %s: run 'vaultstorm verify %s' then 'vaultstorm report %s' once the cluster answers", verr, out, out, out)
	}
	return reportLost(cmd.ErrOrStderr(), vr)
}

// verifyMerged reads the merged ledger back from the cluster; when there is
// no cluster to ask, the result says so (unverified, with why).
func verifyMerged(ctx context.Context, dir string) (load.VerifyResult, error) {
	target, err := resolveTarget()
	if err != nil {
		var entries []rundir.LedgerEntry
		rundir.ReadLines(dir, rundir.LedgerFile, func(e rundir.LedgerEntry) error {
			entries = append(entries, e)
			return nil
		})
		err = fmt.Errorf("no cluster to read it back from: %w", err)
		return checkers.Unverified(entries, err), err
	}
	vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	return load.Verify(vctx, target, dir)
}

// fetchShards replaces every bucket URL among args by the run folders in
// it, downloaded into OUT/shards/ (so the merged run keeps its sources).
func fetchShards(cmd *cobra.Command, out string, args []string) ([]string, error) {
	if !slices.ContainsFunc(args, runbucket.IsURL) {
		return args, nil
	}
	if ents, err := os.ReadDir(out); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("merge output %s exists and is not empty: give a new directory", out)
	}
	var dirs []string
	for _, a := range args {
		if !runbucket.IsURL(a) {
			dirs = append(dirs, a)
			continue
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Minute)
		got, err := runbucket.Download(ctx, a, filepath.Join(out, reports.ShardsDir))
		cancel()
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "merge: %d run folder(s) from %s → %s\n", len(got), runbucket.Redact(a), filepath.Join(out, reports.ShardsDir))
		dirs = append(dirs, got...)
	}
	return dirs, nil
}

func opCounts(ops map[string]rundir.OpStats) string {
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(ops)) {
		parts = append(parts, fmt.Sprintf("%s %d (%d errors)", op, ops[op].Count, ops[op].Errors))
	}
	return strings.Join(parts, ", ")
}
