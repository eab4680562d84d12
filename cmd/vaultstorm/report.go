package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vaultstorm/vaultstorm/reports"
)

func init() {
	rootCmd.AddCommand(reportCmd(), compareCmd())
}

func reportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "report RUN_DIR",
		Short: "Render report.html, junit.xml, summary.md and latency.hgrm from a run directory",
		Long: `report renders, from the files of a run directory alone, the report of a run:

  report.html   one self-contained page: verdict, latency over time with the
                faults shaded, throughput, Vault's own metrics, node timeline,
                recovery and per-phase tables, percentile distributions, ledger
  junit.xml     one test case per expectation and per fault's recovery, for CI
  summary.md    verdict, recovery table and key latencies (also appended to
                $GITHUB_STEP_SUMMARY when set)
  latency.hgrm  HdrHistogram percentile distribution per operation

A run that was cut short (no end time in meta.json, no summary.json) renders
as a partial report. The exit code is 0 whenever the files were written,
whatever the run's verdict: 'vaultstorm run' sets the verdict's exit code.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if err := reports.Render(dir); err != nil {
				return err
			}
			r, err := reports.Load(dir)
			if err != nil {
				return err
			}
			v := r.Verdict()
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\nwrote %s, %s, %s, %s\n", dir, v.Text,
				reports.HTMLFile, reports.JUnitFile, reports.MarkdownFile, reports.HgrmFile)
			return nil
		},
	}
}
