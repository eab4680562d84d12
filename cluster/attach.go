package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vaultstorm/vaultstorm/cluster/external"
	"github.com/vaultstorm/vaultstorm/cluster/watch"
)

// ProviderExternal is a cluster vaultstorm did not make (see Attach).
const ProviderExternal = "external"

// Attach makes a Cluster of a fleet vaultstorm did not stand up, so a
// scenario can run on it: its nodes are the fleet's raft peers, as Vault
// lists them, and every action on a node is the inventory's command for it
// (kill, stop, start, pause, resume, reclaim; partition in chaos). A
// replacement is not launched by the harness but found: AddNode waits for
// a raft peer it has not seen. dir receives state.json (the run's record of
// the nodes); nothing of the fleet is ever torn down. want, when not 0, is
// the voter count the scenario was written for: another is refused.
func Attach(ctx context.Context, dir string, f *external.Fleet, want int) (*Cluster, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := f.Refresh(ctx); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("cluster directory: %w", err)
	}
	st := &State{Provider: ProviderExternal, Phase: PhaseUp, Created: time.Now().UTC(), Spec: Spec{Provider: ProviderExternal}}
	c := &Cluster{Dir: abs, State: st, provider: externalProvider{}, file: &stateFile{path: filepath.Join(abs, StateFile)}, ext: f}
	c.clients = newClients(c)
	var missing, voters []string
	nodes := f.Nodes()
	for i, p := range f.Peers() {
		n := nodes[i]
		if p.APIAddr == "" {
			missing = append(missing, p.NodeID)
			continue
		}
		if p.Voter {
			voters = append(voters, p.NodeID)
		}
		st.Nodes = append(st.Nodes, &Node{Name: p.NodeID, Role: RoleVoter, NodeID: p.NodeID, Addr: p.APIAddr, Zone: n.Zone})
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: raft peers %s are not in sys/ha-status (down or sealed?): a run starts on a whole cluster", f.Inv.File, strings.Join(missing, ", "))
	}
	if want > 0 && len(voters) != want {
		return nil, fmt.Errorf("%s: the cluster has %d voters (%s), the scenario says nodes = %d", f.Inv.File, len(voters), strings.Join(voters, ", "), want)
	}
	st.Spec.Nodes = len(voters)
	if h, err := watch.HealthAt(ctx, st.Nodes[0].Addr, f.Inv.CAFile); err == nil {
		st.VaultVersion = h.Version
	}
	return c, c.Save()
}

// External is the fleet behind a cluster vaultstorm did not make; nil for
// its own clusters.
func (c *Cluster) External() *external.Fleet { return c.ext }

// extNode is n as the inventory's templates see it.
func (c *Cluster) extNode(n *Node) external.Node {
	if en, err := c.ext.Node(n.NodeID); err == nil {
		return en
	}
	// Gone from the raft configuration (autopilot removed it): what the
	// run knew of it is all there is.
	return external.Node{Name: n.NodeID, APIAddr: n.APIAddr(), InstanceID: n.NodeID, Zone: n.Zone, Cluster: c.ext.Inv.ClusterName}
}

// RunCommand runs the inventory's command for op on n.
func (c *Cluster) RunCommand(ctx context.Context, op string, n *Node) error {
	if c.ext == nil {
		return fmt.Errorf("%s on %s: not a cluster driven by an inventory", op, n.Name)
	}
	return c.ext.Inv.Commands.Run(ctx, op, c.extNode(n))
}

// loseExternal is a reclaim through the inventory's command: the node
// leaves the run's node list (its raft peer stays until autopilot removes
// it), as Lose does for the harness's own nodes.
func (c *Cluster) loseExternal(ctx context.Context, n *Node) error {
	if err := c.RunCommand(ctx, external.OpReclaim, n); err != nil {
		return err
	}
	c.State.Nodes = slices.DeleteFunc(c.State.Nodes, func(m *Node) bool { return m == n })
	n.LostAt = time.Now()
	c.State.Lost = append(c.State.Lost, n)
	return c.Save()
}

// ReplacementTimeout bounds the wait for the fleet's replacement of a
// reclaimed node: an autoscaling group launches one in a minute or two,
// and it must boot, join and unseal.
var ReplacementTimeout = 10 * time.Minute

// awaitReplacement waits for a raft peer the run has not seen, with an API
// address, and adds it to the node list: the fleet launched it, not the
// harness. zone is the lost node's (a hint for the record only).
func (c *Cluster) awaitReplacement(ctx context.Context, zone string) (*Node, error) {
	seen := map[string]bool{}
	for _, n := range c.all() {
		seen[n.NodeID] = true
	}
	ctx, cancel := context.WithTimeout(ctx, ReplacementTimeout)
	defer cancel()
	var last error
	for {
		if err := c.ext.Refresh(ctx); err != nil {
			last = err
		} else {
			for _, p := range c.ext.Peers() {
				if seen[p.NodeID] || p.APIAddr == "" {
					continue
				}
				n := &Node{Name: p.NodeID, Role: RoleVoter, NodeID: p.NodeID, Addr: p.APIAddr, Zone: zone, Started: time.Now()}
				if en, err := c.ext.Node(p.NodeID); err == nil && en.Zone != "" {
					n.Zone = en.Zone
				}
				c.State.Nodes = append(c.State.Nodes, n)
				return n, c.Save()
			}
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = errors.New("no new raft peer appeared")
			}
			return nil, fmt.Errorf("no replacement joined within %s: %w", ReplacementTimeout, last)
		case <-time.After(time.Second):
		}
	}
}

// externalProvider acts through the inventory's commands. Nothing of the
// fleet is made or removed by the harness.
type externalProvider struct{}

func (externalProvider) Name() string                                  { return ProviderExternal }
func (externalProvider) Prepare(ctx context.Context, c *Cluster) error { return nil }

func (externalProvider) Start(ctx context.Context, c *Cluster, n *Node) error {
	return c.RunCommand(ctx, external.OpStart, n)
}

func (externalProvider) Signal(ctx context.Context, c *Cluster, n *Node, sig syscall.Signal) error {
	op, ok := map[syscall.Signal]string{syscall.SIGKILL: external.OpKill, syscall.SIGTERM: external.OpStop, syscall.SIGSTOP: external.OpPause, syscall.SIGCONT: external.OpResume}[sig]
	if !ok {
		return fmt.Errorf("signal %v: no inventory operation for it", sig)
	}
	return c.RunCommand(ctx, op, n)
}

// Alive is whether the node answers sys/health at all.
func (externalProvider) Alive(ctx context.Context, c *Cluster, n *Node) bool {
	_, err := watch.HealthAt(ctx, n.APIAddr(), c.CAFile())
	return err == nil
}

func (externalProvider) Paused(ctx context.Context, c *Cluster, n *Node) bool { return false }
func (externalProvider) Discard(ctx context.Context, c *Cluster, n *Node) error {
	return nil
}
func (externalProvider) Teardown(ctx context.Context, c *Cluster) error { return nil }
func (externalProvider) paths(c *Cluster, n *Node) nodePaths            { return nodePaths{} }
