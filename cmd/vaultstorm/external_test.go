package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// writeInventory describes the cluster in dir as a team would describe
// one vaultstorm did not make: one API address, the CA, a token file, and
// node commands (here: vaultstorm's own node commands on that directory,
// standing in for ssh or the cloud's CLI).
//
// The notice command leaves a file notice-NODE next to the inventory: the
// spot interruption notice, whose real counterpart (AWS FIS) has no local
// stand-in.
func writeInventory(t *testing.T, c *cluster.Cluster, name string) string {
	t.Helper()
	dir := t.TempDir()
	cmd := func(op string) string { return fmt.Sprintf("%s node %s {{.Name}} --dir %s", binary, op, c.Dir) }
	src := fmt.Sprintf(`cluster_name = %q
addresses    = [%q]
ca_file      = %q
token_file   = %q

commands {
  kill    = %q
  start   = %q
  reclaim = %q
  notice  = "touch %s/notice-{{.Name}}"
}
`, name, c.State.Nodes[0].APIAddr(), c.CAFile(), c.TokenFile(), cmd("kill"), cmd("start"), cmd("reclaim"), dir)
	p := filepath.Join(dir, "inventory.hcl")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type externalStatusJSON struct {
	Cluster string `json:"cluster_name"`
	Nodes   []struct {
		Name    string `json:"name"`
		APIAddr string `json:"api_addr"`
	} `json:"nodes"`
}

func inventoryNodes(t *testing.T, inv string) (names []string) {
	t.Helper()
	r := run(t, nil, "status", "--inventory", inv, "--json")
	var st externalStatusJSON
	if err := json.Unmarshal([]byte(r.stdout), &st); r.code != 0 || err != nil {
		t.Fatalf("status --inventory: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	for _, n := range st.Nodes {
		names = append(names, n.Name)
	}
	return names
}

// TestExternalInventory drives a local cluster only through an inventory:
// its nodes come from Vault, its faults from command templates; acting
// needs --yes (or CI=true), --dry-run runs nothing, a cluster with another
// name is refused, and a reclaimed node's replacement (launched by the
// template, not by this harness) is found in the raft configuration.
func TestExternalInventory(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a real cluster")
	}
	vb := vaultBin(t)
	dir := filepath.Join(t.TempDir(), "cluster")
	t.Cleanup(func() { run(t, nil, "down", "--dir", dir) })
	if r := run(t, nil, "up", "--dir", dir, "--vault-bin", vb, "--nodes", "3", "--storage", "dir", "--subnet", "88"); r.code != 0 {
		t.Fatalf("up: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	c, err := cluster.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	inv := writeInventory(t, c, "vaultstorm")
	if got := strings.Join(inventoryNodes(t, inv), ","); got != "node1,node2,node3" {
		t.Fatalf("discovered %s from one address, want node1,node2,node3", got)
	}
	state := func(name string) string {
		// The commands ran in other processes: read the state they left.
		c, err := cluster.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range st.Nodes {
			if n.Name == name {
				return n.State
			}
		}
		return "absent"
	}
	noCI := []string{"CI="}

	r := runEnv(t, nil, noCI, "node", "kill", "node2", "--inventory", inv, "--dry-run")
	want := fmt.Sprintf("would run (kill node2, cluster vaultstorm): %s node kill node2 --dir %s", binary, dir)
	if r.code != 0 || strings.TrimSpace(r.stdout) != want {
		t.Errorf("--dry-run: exit %d\n%s%s\nwant: %s", r.code, r.stdout, r.stderr, want)
	}
	r = runEnv(t, nil, noCI, "node", "kill", "node2", "--inventory", inv)
	if r.code != 2 || !strings.Contains(r.stderr, "add --yes") {
		t.Errorf("kill without --yes: exit %d, want 2 asking for --yes\n%s", r.code, r.stderr)
	}
	if s := state("node2"); s == "down" {
		t.Fatalf("node2 is %s after a dry run and a refused kill", s)
	}

	other := writeInventory(t, c, "vault-prod")
	r = runEnv(t, nil, noCI, "node", "kill", "node2", "--inventory", other, "--yes")
	if r.code != 2 || !strings.Contains(r.stderr, `is named "vaultstorm", the inventory says cluster_name = "vault-prod"`) {
		t.Errorf("another cluster's inventory: exit %d\n%s", r.code, r.stderr)
	}

	r = runEnv(t, nil, noCI, "node", "kill", "node2", "--inventory", inv, "--yes")
	if r.code != 0 || state("node2") != "down" {
		t.Fatalf("kill --yes: exit %d, node2 %s\n%s%s", r.code, state("node2"), r.stdout, r.stderr)
	}
	// A node down is still a raft peer: start reaches it by name.
	r = runEnv(t, nil, []string{"CI=true"}, "node", "start", "node2", "--inventory", inv)
	if r.code != 0 {
		t.Fatalf("start with CI=true: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		s := state("node2")
		if s == "follower" || s == "leader" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node2 %s 30s after start", s)
		}
	}

	r = runEnv(t, nil, noCI, "node", "reclaim", "node3", "--inventory", inv, "--yes")
	if r.code != 0 {
		t.Fatalf("reclaim: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := inventoryNodes(t, inv)
		if strings.Contains(strings.Join(got, ","), "node4") {
			t.Logf("after the reclaim of node3 the cluster lists %v", got)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no replacement discovered 60s after the reclaim: %v", got)
		}
		time.Sleep(time.Second)
	}
}

// TestRunExternal is the shipped spot-reclaim scenario run on a cluster
// the harness did not stand up: `up` made it (a stand-in for a cloud
// fleet), the run knows it only through an inventory: discovery from the
// API, the reclaim through the inventory's command (which here loses the
// node and launches a new one, as an autoscaling group would), and the
// replacement found in the raft configuration.
func TestRunExternal(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a real cluster")
	}
	vb := vaultBin(t)
	dir := filepath.Join(t.TempDir(), "cluster")
	t.Cleanup(func() { run(t, nil, "down", "--dir", dir) })
	if r := run(t, nil, "up", "--dir", dir, "--vault-bin", vb, "--nodes", "5", "--storage", "dir", "--subnet", "89"); r.code != 0 {
		t.Fatalf("up: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	c, err := cluster.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	inv := writeInventory(t, c, "vaultstorm")
	noCI := []string{"CI="}

	// --dry-run: the schedule and the command, for the node a target
	// picks now; nothing runs.
	r := runEnv(t, nil, noCI, "run", "spot-reclaim", "--inventory", inv, "--time-scale", "0.1", "--seed", "3", "--dry-run")
	if !regexp.MustCompile(`\+0s +notice \(e\.g\. node\d\): touch `).MatchString(r.stdout) {
		t.Errorf("run --dry-run shows no notice command:\n%s", r.stdout)
	}
	step := regexp.MustCompile(`\+12s +reclaim \(e\.g\. (node\d)\): ` + regexp.QuoteMeta(binary) + ` node reclaim (node\d) --dir ` + regexp.QuoteMeta(dir) + "\n")
	if m := step.FindStringSubmatch(r.stdout); r.code != 0 || !strings.Contains(r.stdout, "at 6s: fault 1 spot_reclaim on random") || m == nil || m[1] != m[2] {
		t.Errorf("run --dry-run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runEnv(t, nil, noCI, "run", "spot-reclaim", "--inventory", inv, "--time-scale", "0.1")
	if r.code != 2 || !strings.Contains(r.stderr, "add --yes") {
		t.Errorf("run on an inventory without --yes: exit %d, want 2 asking for --yes\n%s", r.code, r.stderr)
	}
	if got := inventoryNodes(t, inv); len(got) != 5 {
		t.Fatalf("after a dry run and a refused run the cluster has %v", got)
	}

	// Half the shipped rate: this test is about driving a fleet through
	// its inventory, and the generator shares the two cores with five
	// nodes and the command processes.
	out := filepath.Join(t.TempDir(), "run")
	r = runEnv(t, nil, noCI, "run", "spot-reclaim", "--inventory", inv, "--time-scale", "0.1", "--seed", "3", "--rate", "50", "--yes", "--out", out)
	if r.code != 0 {
		t.Fatalf("spot-reclaim on the inventory's cluster: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var sum rundir.Summary
	if err := rundir.ReadJSON(out, rundir.SummaryFile, &sum); err != nil {
		t.Fatal(err)
	}
	if len(sum.Faults) != 1 || sum.Faults[0].HealedMs == nil || sum.LostWrites != 0 || !sum.Verified {
		t.Fatalf("summary: faults %+v, lost %d, verified %v", sum.Faults, sum.LostWrites, sum.Verified)
	}
	lost := sum.Faults[0].Nodes
	var replaced string
	for _, e := range events(t, out) {
		if e.Kind == rundir.EvFaultEnd {
			replaced = e.Msg
		}
	}
	// The replacement's name is the raft node ID the fleet gave it; the
	// harness never made it (its own node list had five).
	if !strings.HasPrefix(replaced, "replacement launched: node6") {
		t.Errorf("fault end %q, want the replacement node6 found in raft", replaced)
	}
	logs, _ := filepath.Glob(filepath.Join(out, "commands", "*-reclaim-*.log"))
	if len(logs) != 1 || !strings.Contains(logs[0], lost[0]) {
		t.Errorf("reclaim command logs %v, want one for %v", logs, lost)
	}
	// The notice went to the node that was then reclaimed, 12s earlier.
	notices, _ := filepath.Glob(filepath.Join(filepath.Dir(inv), "notice-*"))
	if len(notices) != 1 || filepath.Base(notices[0]) != "notice-"+lost[0] {
		t.Errorf("notices %v, want one, to the reclaimed %s", notices, lost[0])
	}
	if got := strings.Join(inventoryNodes(t, inv), ","); strings.Contains(got, lost[0]) || !strings.Contains(got, "node6") {
		t.Errorf("after the run the cluster lists %s: want node6 and not the reclaimed %s", got, lost[0])
	}
	if _, err := os.Stat(filepath.Join(out, "cluster")); err == nil {
		t.Errorf("the run's record of the external cluster was left in %s/cluster", out)
	}
	t.Logf("spot-reclaim on the inventory's cluster: %s\n%s", r.stdout, r.stderr)
}

func events(t *testing.T, dir string) []rundir.Event {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, rundir.EventsFile))
	if err != nil {
		t.Fatal(err)
	}
	var out []rundir.Event
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e rundir.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}
