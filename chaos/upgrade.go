package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vaultstorm/vaultstorm/cluster"
)

// Phases of one node's upgrade step, as Upgrade.Step is told them.
const (
	UpgradeStart       = "start"        // before the node is touched
	UpgradeSteppedDown = "stepped_down" // the active node stepped down and another one is active (step_down only)
	UpgradeEnd         = "end"          // the node is back: unsealed, a voter, the cluster healthy
	UpgradeFailed      = "failed"       // the step failed; Inject returns its error
)

// Upgrade rolls the cluster's Vault binary node by node in HashiCorp's
// documented order for HA clusters: every standby whose version differs
// from the target, one at a time (SIGTERM, binary swapped, start, wait
// until it is unsealed, a voter and autopilot healthy), then the active
// node last (sys/step-down first when StepDown, so that an upgraded
// standby takes over before it is stopped; else SIGTERM, which hands
// leadership over too). A plan that would ever fail over from a newer
// version to an older one is refused before any node is touched (see
// PlanUpgrade); so a rollback is only possible for standbys while the
// active node still runs the older version. It acts on every node of the
// cluster (the nodes given to Inject are ignored) and is over when Inject
// returns.
type Upgrade struct {
	ToBin     string // the binary to roll to; "" = bin/vault-ToVersion next to the cluster's binary
	ToVersion string // the version to roll to; "" = ToBin's version
	StepDown  bool   // sys/step-down the active node before stopping it
	// PauseBetween waits after each node's step but the last.
	PauseBetween time.Duration
	// Count > 0 and below the number of nodes to change: only that many
	// standbys, never the active node.
	Count   int
	Timeout time.Duration // per node (stop, start, healthy); default 2m
	// Active returns the names of the nodes the runner's watcher sees
	// active; nil (or not exactly one name) asks the nodes directly.
	Active func() []string
	// Step is told when each node's step begins and ends (UpgradeStart,
	// UpgradeSteppedDown, UpgradeEnd or UpgradeFailed); may be nil.
	Step func(node, phase string)
	// Logf, when set, is told the plan and each step.
	Logf func(format string, a ...any)
}

func (Upgrade) Kind() string { return "upgrade" }

func (f Upgrade) Available(c *cluster.Cluster) error {
	if c.State.Provider == "external" {
		return fmt.Errorf("upgrade swaps each node's binary: provider %s is not supported", c.State.Provider)
	}
	_, _, err := f.target(context.Background(), c)
	return err
}

// target resolves the binary and the version to roll to.
func (f Upgrade) target(ctx context.Context, c *cluster.Cluster) (bin, version string, err error) {
	bin = f.ToBin
	if bin == "" {
		if f.ToVersion == "" {
			return "", "", errors.New("upgrade: give to_version or to_bin")
		}
		bin = filepath.Join(filepath.Dir(c.State.VaultBin), "vault-"+f.ToVersion)
		if _, err := os.Stat(bin); err != nil {
			return "", "", fmt.Errorf("upgrade to Vault %s: %s not found (build it with `make vault VAULT_VERSION=%s`)", f.ToVersion, bin, f.ToVersion)
		}
	}
	version, err = cluster.VaultVersion(ctx, bin)
	if err != nil {
		return "", "", fmt.Errorf("upgrade: %w", err)
	}
	if f.ToVersion != "" && !cluster.SameVersion(version, f.ToVersion) {
		return "", "", fmt.Errorf("upgrade to %s: %s is Vault %s", f.ToVersion, bin, version)
	}
	return bin, version, nil
}

func (f Upgrade) logf(format string, a ...any) {
	if f.Logf != nil {
		f.Logf(format, a...)
	}
}

func (f Upgrade) step(node, phase string) {
	if f.Step != nil {
		f.Step(node, phase)
	}
}

func (f Upgrade) Inject(ctx context.Context, c *cluster.Cluster, _ []*cluster.Node) (Lift, error) {
	bin, version, err := f.target(ctx, c)
	if err != nil {
		return nil, err
	}
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	done := 0
	for first := true; ; first = false {
		// Planned again before every step, from what the nodes answer
		// now: if leadership moved meanwhile, the order follows it.
		count := 0
		if f.Count > 0 {
			if count = f.Count - done; count <= 0 {
				return nil, nil
			}
		}
		nodes, active, err := f.observe(ctx, c, timeout)
		if err != nil {
			return nil, err
		}
		plan, err := PlanUpgrade(nodes, active, version, count, f.StepDown)
		if err != nil {
			if done > 0 {
				return nil, fmt.Errorf("after %d node(s) upgraded: %w", done, err)
			}
			return nil, err
		}
		if done > 2*len(c.State.Nodes) {
			return nil, fmt.Errorf("upgrade: %d steps done and the plan still has %s: giving up", done, plan)
		}
		if len(plan) == 0 {
			if first {
				f.logf("upgrade: every node already runs %s: nothing to do", version)
			}
			return nil, nil
		}
		if first {
			f.logf("upgrade to %s (%s): %s", version, bin, plan)
		}
		s := plan[0]
		n, err := c.Node(s.Node)
		if err != nil {
			return nil, err
		}
		f.step(s.Node, UpgradeStart)
		if err := f.do(ctx, c, n, s, bin, version, timeout); err != nil {
			f.step(s.Node, UpgradeFailed)
			return nil, err
		}
		f.step(s.Node, UpgradeEnd)
		done++
		if f.PauseBetween > 0 && len(plan) > 1 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(f.PauseBetween):
			}
		}
	}
}

// do performs one step of the plan on n.
func (f Upgrade) do(ctx context.Context, c *cluster.Cluster, n *cluster.Node, s UpgradeStep, bin, version string, timeout time.Duration) error {
	f.logf("upgrade: %s", s)
	if s.Active && s.StepDown {
		sctx, cancel := context.WithTimeout(ctx, timeout)
		err := c.StepDown(sctx, n)
		cancel()
		if err != nil {
			return err
		}
		a, err := c.ActiveNode(ctx)
		if err != nil {
			return fmt.Errorf("after the step-down of %s: %w", n.Name, err)
		}
		if v, err := c.NodeVersion(ctx, a); err != nil || !cluster.SameVersion(v, version) {
			return fmt.Errorf("after the step-down of %s, %s took over on %q, not %s (%v)", n.Name, a.Name, v, version, err)
		}
		f.step(s.Node, UpgradeSteppedDown)
	}
	return c.UpgradeNode(ctx, n, bin, timeout)
}

// observe reads every node's version (sys/health) and finds the active
// node. It waits (up to timeout) until exactly one node answers as active
// and, when Active is set, the runner's watcher sees that same node alone:
// no step is planned in the middle of a leadership change.
func (f Upgrade) observe(ctx context.Context, c *cluster.Cluster, timeout time.Duration) ([]PlanNode, string, error) {
	until := time.Now().Add(timeout)
	for {
		var nodes []PlanNode
		var active []string
		var why string
		for _, n := range c.State.Nodes {
			st, v, err := c.NodeHealth(ctx, n)
			if err != nil || v == "" {
				why = fmt.Sprintf("%s does not answer sys/health (%v): every node must be up to plan an upgrade", n.Name, err)
				break
			}
			if st == cluster.StateLeader {
				active = append(active, n.Name)
			}
			nodes = append(nodes, PlanNode{Name: n.Name, Version: v})
		}
		if why == "" {
			switch {
			case len(active) != 1:
				why = fmt.Sprintf("%d nodes answer as active (%s): the order of an upgrade needs exactly one", len(active), strings.Join(active, ","))
			case f.Active != nil:
				if w := f.Active(); len(w) != 1 || w[0] != active[0] {
					why = fmt.Sprintf("the watcher sees %q active, the nodes say %s", w, active[0])
				}
			}
		}
		if why == "" {
			return nodes, active[0], nil
		}
		if time.Now().After(until) {
			return nil, "", errors.New("upgrade: " + why)
		}
		select {
		case <-ctx.Done():
			return nil, "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// PlanNode is one node as a plan sees it.
type PlanNode struct {
	Name    string
	Version string
}

// UpgradeStep is one node's turn.
type UpgradeStep struct {
	Node     string
	From, To string
	Active   bool // the active node: last, and the only step with a failover
	StepDown bool // sys/step-down before it is stopped (Active only)
}

func (s UpgradeStep) String() string {
	how := "standby"
	if s.Active {
		how = "active, SIGTERM"
		if s.StepDown {
			how = "active, step-down then SIGTERM"
		}
	}
	return fmt.Sprintf("%s %s -> %s (%s)", s.Node, s.From, s.To, how)
}

// UpgradePlan is the order of an upgrade.
type UpgradePlan []UpgradeStep

func (p UpgradePlan) String() string {
	var s []string
	for _, st := range p {
		s = append(s, st.String())
	}
	return strings.Join(s, "; ")
}

// ErrOlderFailover is the reason PlanUpgrade refuses a plan.
var ErrOlderFailover = errors.New("it would fail over from a newer Vault version to an older one")

// PlanUpgrade decides the order in which the nodes move to target:
// every standby whose version differs, in the order given, then the active
// node last. With 0 < count < the number of nodes to change, only count
// standbys and never the active node. It refuses (ErrOlderFailover) a plan
// that would restart or step down the active node while a node that could
// take over runs an older version than the active node at that moment:
// HashiCorp's upgrade guide never fails over from newer to older (the older
// version may not read what the newer one wrote). Versions compare as
// semver (1.19.5 < 1.21.0 < 1.21.10). An empty plan is a no-op.
func PlanUpgrade(nodes []PlanNode, active, target string, count int, stepDown bool) (UpgradePlan, error) {
	if _, err := parseVersion(target); err != nil {
		return nil, fmt.Errorf("upgrade target: %w", err)
	}
	ver := map[string]string{}
	var standbys []PlanNode
	var act *PlanNode
	for i, n := range nodes {
		if _, err := parseVersion(n.Version); err != nil {
			return nil, fmt.Errorf("%s: %w", n.Name, err)
		}
		if _, dup := ver[n.Name]; dup {
			return nil, fmt.Errorf("node %s listed twice", n.Name)
		}
		ver[n.Name] = n.Version
		if n.Name == active {
			act = &nodes[i]
		} else if cmpVersion(n.Version, target) != 0 {
			standbys = append(standbys, n)
		}
	}
	if act == nil {
		return nil, fmt.Errorf("the active node %q is not among the nodes: an upgrade's order needs the active node", active)
	}
	change := len(standbys)
	if cmpVersion(act.Version, target) != 0 {
		change++
	}
	var plan UpgradePlan
	if count > 0 && count < change {
		for _, n := range standbys[:count] {
			plan = append(plan, UpgradeStep{Node: n.Name, From: n.Version, To: target})
		}
		return plan, nil
	}
	for _, n := range standbys {
		plan = append(plan, UpgradeStep{Node: n.Name, From: n.Version, To: target})
		ver[n.Name] = target
	}
	if cmpVersion(act.Version, target) == 0 {
		return plan, nil
	}
	// The failover: whoever takes over must not run an older version.
	for _, n := range nodes {
		if n.Name != active && cmpVersion(ver[n.Name], act.Version) < 0 {
			how := "restarting"
			if stepDown {
				how = "stepping down"
			}
			return nil, fmt.Errorf("refusing the upgrade plan to %s: %s the active node %s (%s) after its standbys could let %s (%s) take over: %w (HashiCorp's order: standbys first, the active node last, never a failover to an older version; to move standbys only, set count)",
				target, how, active, act.Version, n.Name, ver[n.Name], ErrOlderFailover)
		}
	}
	plan = append(plan, UpgradeStep{Node: active, From: act.Version, To: target, Active: true, StepDown: stepDown})
	return plan, nil
}

// version is a parsed semver: major.minor.patch and an optional
// pre-release (which sorts before the release).
type version struct {
	n   [3]int
	pre string
}

func parseVersion(s string) (version, error) {
	var v version
	t := strings.TrimPrefix(strings.TrimSpace(s), "v")
	if i := strings.IndexByte(t, '+'); i >= 0 {
		t = t[:i]
	}
	t, v.pre, _ = strings.Cut(t, "-")
	parts := strings.Split(t, ".")
	if len(parts) != 3 {
		return v, fmt.Errorf("version %q: want MAJOR.MINOR.PATCH", s)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return v, fmt.Errorf("version %q: want MAJOR.MINOR.PATCH", s)
		}
		v.n[i] = n
	}
	return v, nil
}

// cmpVersion compares two versions that parse (PlanUpgrade checks first).
func cmpVersion(a, b string) int {
	va, _ := parseVersion(a)
	vb, _ := parseVersion(b)
	for i := range va.n {
		if va.n[i] != vb.n[i] {
			if va.n[i] < vb.n[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case va.pre == vb.pre:
		return 0
	case va.pre == "":
		return 1
	case vb.pre == "":
		return -1
	case va.pre < vb.pre:
		return -1
	default:
		return 1
	}
}
