package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vaultstorm/vaultstorm/cluster/external"
	"github.com/vaultstorm/vaultstorm/scenarios"
)

// attachInventory reads an inventory and attaches it to its cluster
// (cluster_name checked, nodes discovered).
func attachInventory(ctx context.Context, file string) (*external.Fleet, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	inv, err := scenarios.ParseInventory(file, src)
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return external.Attach(actx, inv)
}

// confirmed says whether acting on a cluster that matters was asked for:
// --yes, or CI=true (a pipeline has no one to ask, and wrote the job).
func confirmed(yes bool) bool { return yes || os.Getenv("CI") == "true" }

func externalNodeOp(ctx context.Context, file, op, name string, dryRun, yes bool) error {
	if !slices.Contains(external.Ops, op) {
		return fmt.Errorf("unknown action %q for an inventory's cluster: %s", op, strings.Join(external.Ops, ", "))
	}
	f, err := attachInventory(ctx, file)
	if err != nil {
		return err
	}
	n, err := f.Node(name)
	if err != nil {
		return err
	}
	argv, err := f.Inv.Commands.Argv(op, n)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if dryRun {
		fmt.Printf("would run (%s %s, cluster %s): %s\n", op, n.Name, f.Inv.ClusterName, external.Quote(argv))
		return nil
	}
	if !confirmed(yes) {
		return fmt.Errorf("%s %s acts on the cluster %s (%d nodes) that %s describes: add --yes to do it (CI=true counts as yes), or --dry-run to see the command", op, n.Name, f.Inv.ClusterName, len(f.Nodes()), file)
	}
	f.Inv.Commands.Out = os.Stderr
	start := time.Now()
	if err := f.Inv.Commands.Run(ctx, op, n); err != nil {
		return err
	}
	fmt.Printf("%s %s: %s done in %s\n", op, n.Name, external.Quote(argv), time.Since(start).Round(time.Millisecond))
	return nil
}

// externalStatus lists an inventory's cluster as Vault sees it.
func externalStatus(ctx context.Context, file string, jsonOut bool) error {
	f, err := attachInventory(ctx, file)
	if err != nil {
		return err
	}
	peers := f.Peers()
	if jsonOut {
		return printJSON(struct {
			Cluster string          `json:"cluster_name"`
			Nodes   []external.Node `json:"nodes"`
		}{f.Inv.ClusterName, f.Nodes()})
	}
	fmt.Printf("cluster %s: %d raft peers (from %s)\n", f.Inv.ClusterName, len(peers), file)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "  NODE\tADDRESS\tHOST\tVOTER\tLEADER\tCOMMANDS")
	for i, n := range f.Nodes() {
		addr := n.APIAddr
		if addr == "" {
			addr = "(not in sys/ha-status)"
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%v\t%v\t%s\n", n.Name, addr, n.Host, peers[i].Voter, peers[i].Leader, strings.Join(f.Inv.Commands.Available(), ","))
	}
	return errors.Join(w.Flush())
}

// printSchedule is `run --dry-run`: each fault at its time, and on an
// inventory's cluster the command each step would run, rendered for the
// node the target picks now (the leader, a follower, …: the run picks
// again at the fault's time). Nothing is run.
func printSchedule(sc *scenarios.Scenario, f *external.Fleet) error {
	where := fmt.Sprintf("a new %d-node %s cluster", sc.Cluster.Nodes, sc.Cluster.Provider)
	var byName map[string]external.Node
	var leader string
	var names []string
	if f != nil {
		where = fmt.Sprintf("the cluster %s (%d raft peers, from %s)", f.Inv.ClusterName, len(f.Nodes()), f.Inv.File)
		byName = map[string]external.Node{}
		peers := f.Peers()
		for i, n := range f.Nodes() {
			byName[n.Name] = n
			names = append(names, n.Name)
			if peers[i].Leader {
				leader = n.Name
			}
		}
	}
	fmt.Printf("dry run of %s on %s: load %s for %s; nothing is run\n", sc.Name, where, describeRate(sc.Load), sc.Load.Duration)
	if len(sc.Faults) == 0 {
		fmt.Println("  no faults")
	}
	for _, ft := range sc.Faults {
		fmt.Printf("  at %s: fault %d %s on %s\n", ft.At, ft.Index, ft.Kind, ft.Target)
		if f == nil {
			continue
		}
		node, why := pickNow(ft.Target, leader, names)
		if node == "" {
			fmt.Printf("      (%s)\n", why)
			continue
		}
		steps := schedSteps(ft)
		if ft.Kind == scenarios.KindSpotReclaim && ft.Notice > 0 && f.Inv.Commands.Has(external.OpNotice) {
			steps = append([]schedStep{{0, external.OpNotice}}, steps...)
		}
		if len(steps) == 0 {
			fmt.Printf("      cannot run on an inventory's cluster\n")
			continue
		}
		for _, st := range steps {
			argv, err := f.Inv.Commands.Argv(st.op, byName[node])
			line := external.Quote(argv)
			if err != nil {
				line = "MISSING: " + err.Error()
			}
			fmt.Printf("      %-12s %s (%s %s): %s\n", "+"+st.after.String(), st.op, why, node, line)
		}
	}
	return nil
}

type schedStep struct {
	after time.Duration // from the fault's at
	op    string
}

// schedSteps are the commands a fault runs on an inventory's cluster, in
// order, as the runner runs them (a reclaim's replacement is the fleet's,
// found in raft: no command).
func schedSteps(ft scenarios.Fault) []schedStep {
	switch ft.Kind {
	case scenarios.KindKill, scenarios.KindStop:
		s := []schedStep{{0, string(ft.Kind)}}
		if ft.Restart {
			s = append(s, schedStep{ft.RestartAfter, external.OpStart})
		}
		return s
	case scenarios.KindPause:
		return []schedStep{{0, external.OpPause}, {ft.Duration, external.OpResume}}
	case scenarios.KindPartition:
		return []schedStep{{0, external.OpPartition}, {ft.Duration, external.OpHeal}}
	case scenarios.KindSpotReclaim:
		return []schedStep{{ft.Notice, external.OpReclaim}}
	}
	return nil
}

// pickNow is the node a target would pick if the fault came now.
func pickNow(t scenarios.Target, leader string, names []string) (string, string) {
	switch t.Kind {
	case scenarios.TargetLeader:
		if leader == "" {
			return "", "no leader now"
		}
		return leader, "the leader now"
	case scenarios.TargetNode:
		if slices.Contains(names, t.Name) {
			return t.Name, "node"
		}
		return "", fmt.Sprintf("no node %s in the cluster (%s)", t.Name, strings.Join(names, ", "))
	}
	for _, n := range names {
		if n != leader {
			return n, "e.g."
		}
	}
	return "", "no follower now"
}

func describeRate(l scenarios.LoadSpec) string {
	if l.Workers > 0 {
		return fmt.Sprintf("closed loop, %d workers", l.Workers)
	}
	return fmt.Sprintf("%g req/s", l.Rate)
}
