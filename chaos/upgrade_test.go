package chaos

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/cluster/clustertest"
)

func nodes(vs ...string) []PlanNode {
	var out []PlanNode
	for i := 0; i+1 < len(vs); i += 2 {
		out = append(out, PlanNode{Name: vs[i], Version: vs[i+1]})
	}
	return out
}

func TestPlanUpgrade(t *testing.T) {
	cases := []struct {
		name     string
		nodes    []PlanNode
		active   string
		target   string
		count    int
		stepDown bool
		want     string // the plan, or the error's text
		refused  bool
	}{
		{name: "upgrade: standbys then the active node",
			nodes:  nodes("node1", "1.19.5", "node2", "1.19.5", "node3", "1.19.5", "node4", "1.19.5", "node5", "1.19.5"),
			active: "node2", target: "1.21.0", stepDown: true,
			want: "node1 1.19.5 -> 1.21.0 (standby); node3 1.19.5 -> 1.21.0 (standby); node4 1.19.5 -> 1.21.0 (standby); node5 1.19.5 -> 1.21.0 (standby); node2 1.19.5 -> 1.21.0 (active, step-down then SIGTERM)"},
		{name: "upgrade without step-down",
			nodes:  nodes("node1", "1.19.5", "node2", "1.19.5", "node3", "1.19.5"),
			active: "node1", target: "1.21.0",
			want: "node2 1.19.5 -> 1.21.0 (standby); node3 1.19.5 -> 1.21.0 (standby); node1 1.19.5 -> 1.21.0 (active, SIGTERM)"},
		{name: "count 2: standbys only",
			nodes:  nodes("node1", "1.19.5", "node2", "1.19.5", "node3", "1.19.5", "node4", "1.19.5", "node5", "1.19.5"),
			active: "node1", target: "1.21.0", count: 2, stepDown: true,
			want: "node2 1.19.5 -> 1.21.0 (standby); node3 1.19.5 -> 1.21.0 (standby)"},
		{name: "count covering every node to change is the whole upgrade",
			nodes:  nodes("node1", "1.19.5", "node2", "1.21.0", "node3", "1.19.5"),
			active: "node1", target: "1.21.0", count: 2,
			want: "node3 1.19.5 -> 1.21.0 (standby); node1 1.19.5 -> 1.21.0 (active, SIGTERM)"},
		{name: "resumed upgrade: only the nodes not on the target",
			nodes:  nodes("node1", "1.21.0", "node2", "1.19.5", "node3", "1.21.0"),
			active: "node2", target: "1.21.0", stepDown: true,
			want: "node2 1.19.5 -> 1.21.0 (active, step-down then SIGTERM)"},
		{name: "rollback of two upgraded standbys: allowed, the leader is still old",
			nodes:  nodes("node1", "1.19.5", "node2", "1.21.0", "node3", "1.21.0", "node4", "1.19.5", "node5", "1.19.5"),
			active: "node1", target: "1.19.5",
			want: "node2 1.21.0 -> 1.19.5 (standby); node3 1.21.0 -> 1.19.5 (standby)"},
		{name: "rollback that would restart the newer leader while old standbys exist",
			nodes:  nodes("node1", "1.21.0", "node2", "1.21.0", "node3", "1.21.0"),
			active: "node1", target: "1.19.5", stepDown: true,
			want: "stepping down the active node node1 (1.21.0) after its standbys could let node2 (1.19.5) take over", refused: true},
		{name: "only the newer leader left to roll back",
			nodes:  nodes("node1", "1.19.5", "node2", "1.21.0", "node3", "1.19.5"),
			active: "node2", target: "1.19.5",
			want: "restarting the active node node2 (1.21.0) after its standbys could let node1 (1.19.5) take over", refused: true},
		{name: "upgrade to a target below a newer standby that stays",
			nodes:  nodes("node1", "1.21.0", "node2", "1.21.10", "node3", "1.21.0"),
			active: "node1", target: "1.21.0",
			want: "node2 1.21.10 -> 1.21.0 (standby)"},
		{name: "no-op: everyone already on the target",
			nodes:  nodes("node1", "1.21.0", "node2", "1.21.0", "node3", "v1.21.0+ent"),
			active: "node3", target: "1.21.0", stepDown: true,
			want: ""},
		{name: "unknown active node",
			nodes:  nodes("node1", "1.19.5", "node2", "1.19.5", "node3", "1.19.5"),
			active: "node9", target: "1.21.0",
			want: `the active node "node9" is not among the nodes`, refused: true},
		{name: "bad version",
			nodes:  nodes("node1", "1.19", "node2", "1.19.5", "node3", "1.19.5"),
			active: "node2", target: "1.21.0",
			want: `node1: version "1.19": want MAJOR.MINOR.PATCH`, refused: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plan, err := PlanUpgrade(c.nodes, c.active, c.target, c.count, c.stepDown)
			if c.refused {
				if err == nil {
					t.Fatalf("plan %s: want an error containing %q", plan, c.want)
				}
				if !strings.Contains(err.Error(), c.want) {
					t.Errorf("error %q: want it to contain %q", err, c.want)
				}
				if strings.Contains(c.want, "take over") && !errors.Is(err, ErrOlderFailover) {
					t.Errorf("error %q is not ErrOlderFailover", err)
				}
				if plan != nil {
					t.Errorf("a refused plan came with steps: %s", plan)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := plan.String(); got != c.want {
				t.Errorf("plan\n  %s\nwant\n  %s", got, c.want)
			}
			for i, s := range plan {
				if s.Active && i != len(plan)-1 {
					t.Errorf("the active node is step %d of %d, not the last", i+1, len(plan))
				}
			}
		})
	}
}

func TestCmpVersion(t *testing.T) {
	order := []string{"1.9.9", "1.19.5", "1.21.0-rc1", "1.21.0", "v1.21.1+ent", "1.21.10", "2.0.0"}
	for i := range order {
		for j := range order {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := cmpVersion(order[i], order[j]); got != want {
				t.Errorf("cmpVersion(%s, %s) = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
}

// oldVaultBin is the older Vault an upgrade starts from:
// VAULTSTORM_VAULT_BIN_OLD (the Makefile exports it), else
// bin/vault-1.19.5 at the repository root.
func oldVaultBin(t *testing.T) string {
	t.Helper()
	b := os.Getenv("VAULTSTORM_VAULT_BIN_OLD")
	if b == "" {
		_, file, _, _ := runtime.Caller(0)
		b = filepath.Join(filepath.Dir(file), "..", "bin", "vault-1.19.5")
	}
	if _, err := os.Stat(b); err != nil {
		t.Fatalf("no old Vault binary at %s: run `make vault VAULT_VERSION=1.19.5` or set VAULTSTORM_VAULT_BIN_OLD", b)
	}
	return b
}

// TestUpgradeRealCluster rolls a real three-node cluster from the old
// Vault to the default one: standbys first, then the active node after a
// step-down. Every node ends on the new version, a healthy voter; a value
// written before is readable; the active node changed at the last step
// only. Then a rollback plan that would fail over to the older version is
// refused before any node is touched.
func TestUpgradeRealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs a real Vault cluster (run without -short)")
	}
	oldBin, newBin := oldVaultBin(t), clustertest.VaultBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	oldV, err := cluster.VaultVersion(ctx, oldBin)
	if err != nil {
		t.Fatal(err)
	}
	newV, err := cluster.VaultVersion(ctx, newBin)
	if err != nil {
		t.Fatal(err)
	}
	if cmpVersion(oldV, newV) >= 0 {
		t.Fatalf("old binary %s is Vault %s, not older than %s (%s)", oldBin, oldV, newV, newBin)
	}
	spec := cluster.DefaultSpec()
	spec.Nodes, spec.Subnet = 3, 75
	t.Setenv("VAULTSTORM_VAULT_BIN", oldBin) // clustertest.Start runs this binary
	c := clustertest.Start(t, &spec)
	for _, n := range c.State.Nodes {
		if v, err := c.NodeVersion(ctx, n); err != nil || v != oldV {
			t.Fatalf("%s before the upgrade: version %q (%v), want %s", n.Name, v, err, oldV)
		}
	}

	first, err := c.ActiveNode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := c.Client(first)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Sys().MountWithContext(ctx, "kv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := cl.KVv2("kv").Put(ctx, "before-upgrade", map[string]any{"v": "written on " + oldV})
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("KV write before the upgrade: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}

	type obs struct{ node, phase, active string }
	var mu sync.Mutex
	var seen []obs
	f := Upgrade{ToBin: newBin, StepDown: true, Timeout: 2 * time.Minute, Logf: t.Logf,
		Step: func(node, phase string) {
			a := ""
			if phase == UpgradeEnd || phase == UpgradeStart {
				if n, err := c.ActiveNode(ctx); err == nil {
					a = n.Name
				}
			}
			mu.Lock()
			seen = append(seen, obs{node, phase, a})
			mu.Unlock()
		}}
	if err := f.Available(c); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := f.Inject(ctx, c, nil); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	t.Logf("upgrade %s -> %s of 3 nodes took %s: %v", oldV, newV, time.Since(start).Round(time.Millisecond), seen)

	// Standbys first, the active node last (stepped down first), and
	// leadership moved at that step only.
	var order []string
	for _, o := range seen {
		if o.phase == UpgradeEnd {
			order = append(order, o.node)
			last := len(order) == 3
			if !last && o.active != first.Name {
				t.Errorf("after the step of %s the active node is %q: it changed before the last step", o.node, o.active)
			}
			if last && (o.active == "" || o.active == first.Name) {
				t.Errorf("after the last step the active node is %q: want another than %s", o.active, first.Name)
			}
		}
		if o.phase == UpgradeFailed {
			t.Errorf("step of %s failed", o.node)
		}
	}
	if len(order) != 3 || order[2] != first.Name {
		t.Errorf("steps %v: want the two standbys, then the active node %s", order, first.Name)
	}
	var steppedDown bool
	for _, o := range seen {
		steppedDown = steppedDown || (o.phase == UpgradeSteppedDown && o.node == first.Name)
	}
	if !steppedDown {
		t.Errorf("no %s phase for %s: %v", UpgradeSteppedDown, first.Name, seen)
	}

	for _, n := range c.State.Nodes {
		if v, err := c.NodeVersion(ctx, n); err != nil || v != newV {
			t.Errorf("%s after the upgrade: version %q (%v), want %s", n.Name, v, err, newV)
		}
	}
	if c.State.VaultVersion != newV || c.NodeBin(c.State.Nodes[0]) != newBin {
		t.Errorf("cluster binary after the upgrade: %s (%s), want %s (%s)", c.NodeBin(c.State.Nodes[0]), c.State.VaultVersion, newBin, newV)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Healthy || st.Voters != 3 {
		t.Errorf("after the upgrade: healthy %v, %d voters", st.Healthy, st.Voters)
	}
	ap, err := c.Autopilot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !ap.Healthy {
		t.Errorf("autopilot unhealthy after the upgrade")
	}
	for id, s := range ap.Servers {
		if s.Status != "voter" && s.Status != "leader" || !s.Healthy || !cluster.SameVersion(s.Version, newV) {
			t.Errorf("autopilot server %s: %s, healthy %v, version %s", id, s.Status, s.Healthy, s.Version)
		}
	}
	// Read through every node (standbys forward to the active one).
	for _, n := range c.State.Nodes {
		cl, err := c.Client(n)
		if err != nil {
			t.Fatal(err)
		}
		s, err := cl.KVv2("kv").Get(ctx, "before-upgrade")
		if err != nil {
			t.Errorf("read through %s after the upgrade: %v", n.Name, err)
			continue
		}
		if v, _ := s.Data["v"].(string); v != "written on "+oldV {
			t.Errorf("read through %s: %q", n.Name, v)
		}
	}

	// A rollback of the whole cluster would end with the newer active
	// node stopped while older standbys can take over: refused, and no
	// node touched.
	pids := map[string]int{}
	for _, n := range c.State.Nodes {
		pids[n.Name] = n.PID
	}
	back := Upgrade{ToBin: oldBin, StepDown: true, Timeout: time.Minute,
		Step: func(node, phase string) { t.Errorf("refused rollback touched %s (%s)", node, phase) }}
	_, err = back.Inject(ctx, c, nil)
	if err == nil || !errors.Is(err, ErrOlderFailover) {
		t.Fatalf("rollback of the whole cluster: %v, want a refusal (%v)", err, ErrOlderFailover)
	}
	t.Logf("refused: %v", err)
	for _, n := range c.State.Nodes {
		if n.PID != pids[n.Name] || n.VaultBin != "" {
			t.Errorf("%s was touched by the refused rollback: pid %d -> %d, binary %q", n.Name, pids[n.Name], n.PID, n.VaultBin)
		}
		if v, err := c.NodeVersion(ctx, n); err != nil || v != newV {
			t.Errorf("%s after the refused rollback: version %q (%v)", n.Name, v, err)
		}
	}
}
