package main

import (
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/vaultstorm/vaultstorm/scenarios"
)

var scenariosCmd = &cobra.Command{
	Use:   "scenarios [--show NAME | --check FILE]",
	Short: "List the built-in scenarios, print one, or check a scenario file",
	Long: `Without flags, lists the scenarios built into vaultstorm, one line each;
any of them runs with "vaultstorm run NAME".

  --show NAME   prints the scenario's HCL, a starting point for your own file
  --check FILE  parses and validates FILE (or a built-in NAME) and prints it
                with every default spelled out; errors carry file:line:col`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		show, _ := cmd.Flags().GetString("show")
		check, _ := cmd.Flags().GetString("check")
		out := cmd.OutOrStdout()
		switch {
		case show != "" && check != "":
			return errors.New("give --show or --check, not both")
		case show != "":
			src, err := scenarios.Source(show)
			if err != nil {
				return err
			}
			_, err = out.Write(src)
			return err
		case check != "":
			sc, err := scenarios.Load(check)
			if err != nil {
				// One "file:line:col: problem" line per problem, which CI
				// annotators and editors link to the spot.
				return fmt.Errorf("invalid scenario:\n%w", err)
			}
			for _, w := range sc.Warnings {
				fmt.Fprintln(os.Stderr, "warning:", w)
			}
			_, err = out.Write(sc.HCL())
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		for _, s := range scenarios.Shipped() {
			fmt.Fprintf(tw, "%s\t%s\n", s.Name, s.Description)
		}
		return tw.Flush()
	},
}

func init() {
	scenariosCmd.Flags().String("show", "", "print the HCL of a built-in scenario")
	scenariosCmd.Flags().String("check", "", "validate a scenario file (or built-in name) and print it with defaults filled in")
	rootCmd.AddCommand(scenariosCmd)
}
