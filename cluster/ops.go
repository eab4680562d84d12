package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vaultstorm/vaultstorm/cluster/pki"
	"github.com/vaultstorm/vaultstorm/cluster/storage"
)

// Kill sends SIGKILL to the node's server and waits until it is gone:
// a crash, or the instance vanishing.
func (c *Cluster) Kill(ctx context.Context, n *Node) error {
	return c.signal(ctx, n, syscall.SIGKILL)
}

// Stop sends SIGTERM and waits: a graceful shutdown.
func (c *Cluster) Stop(ctx context.Context, n *Node) error {
	return c.signal(ctx, n, syscall.SIGTERM)
}

// Pause stops the node's process (SIGSTOP): a stalled VM or a long GC pause.
func (c *Cluster) Pause(ctx context.Context, n *Node) error {
	return c.signal(ctx, n, syscall.SIGSTOP)
}

// Resume continues a paused node (SIGCONT).
func (c *Cluster) Resume(ctx context.Context, n *Node) error {
	return c.signal(ctx, n, syscall.SIGCONT)
}

func (c *Cluster) signal(ctx context.Context, n *Node, sig syscall.Signal) error {
	if err := c.provider.Signal(ctx, c, n, sig); err != nil {
		return err
	}
	return c.Save()
}

// Start starts a stopped or killed node on its existing data disk.
func (c *Cluster) Start(ctx context.Context, n *Node) error {
	if c.ext != nil {
		return c.provider.Start(ctx, c, n)
	}
	if err := c.writeConfig(n); err != nil {
		return err
	}
	return c.startNode(ctx, n)
}

// DestroyDisk removes the node's data array: its instance-store disks are
// gone with the instance. The node must not be running.
func (c *Cluster) DestroyDisk(n *Node) error {
	if c.provider.Alive(context.Background(), c, n) {
		return fmt.Errorf("%s is running: kill it before destroying its disk", n.Name)
	}
	c.State.Retired = append(c.State.Retired, n.Array)
	if err := c.Save(); err != nil {
		return err
	}
	if err := n.Array.Destroy(); err != nil {
		return fmt.Errorf("destroy disk of %s: %w", n.Name, err)
	}
	c.State.Retired = c.State.Retired[:len(c.State.Retired)-1]
	n.Array = storage.Array{}
	return c.Save()
}

// Replace is what happens to a spot instance: the node is killed, its
// RAID0 array is destroyed with it, and a new node with the same name,
// address and raft node ID starts on a fresh, empty array. It rejoins
// through retry_join and unseals itself through the transit seal.
func (c *Cluster) Replace(ctx context.Context, n *Node) error {
	if err := c.Gone(ctx, n); err != nil {
		return err
	}
	return c.Provision(ctx, n)
}

// Gone kills the node (if it runs) and destroys its disk.
func (c *Cluster) Gone(ctx context.Context, n *Node) error {
	if c.provider.Alive(ctx, c, n) {
		if err := c.Kill(ctx, n); err != nil {
			return err
		}
	}
	// The instance goes before its disks: a container holds its bind mount.
	if err := c.provider.Discard(ctx, c, n); err != nil {
		return err
	}
	if n.Array.Mount != "" {
		return c.DestroyDisk(n)
	}
	return nil
}

// Provision starts a new generation of a gone node on a fresh array.
func (c *Cluster) Provision(ctx context.Context, n *Node) error {
	n.Generation++
	n.Started = time.Time{}
	if err := c.makeDisk(ctx, n); err != nil {
		return err
	}
	return c.Start(ctx, n)
}

// Lose is a node gone for good, as a reclaimed spot instance is: killed,
// its disks destroyed, and dropped from the cluster's node list (it stays
// in the raft configuration until autopilot removes the dead peer).
func (c *Cluster) Lose(ctx context.Context, n *Node) error {
	if c.ext != nil {
		return c.loseExternal(ctx, n)
	}
	if err := c.Gone(ctx, n); err != nil {
		return err
	}
	for i, m := range c.State.Nodes {
		if m == n {
			c.State.Nodes = append(c.State.Nodes[:i], c.State.Nodes[i+1:]...)
			break
		}
	}
	n.LostAt = time.Now()
	c.State.Lost = append(c.State.Lost, n)
	return c.Save()
}

// AddNode starts a brand-new node, as an autoscaling group launches a
// replacement instance: the next free name and address, a certificate from
// the intermediate CA, a fresh RAID0 array, and a new raft node ID. It
// joins through retry_join and auto-unseals; autopilot promotes it once
// stable.
func (c *Cluster) AddNode(ctx context.Context, zone string) (*Node, error) {
	if c.ext != nil {
		return c.awaitReplacement(ctx, zone)
	}
	n, err := c.newNode(zone)
	if err != nil {
		return nil, err
	}
	return n, c.Provision(ctx, n)
}

// newNode adds a node that has never run: the next free name and address,
// a certificate from the intermediate CA, a new raft node ID. It has no
// disk and no process yet.
func (c *Cluster) newNode(zone string) (*Node, error) {
	idx := 0
	for _, m := range append(append([]*Node(nil), c.State.Nodes...), c.State.Lost...) {
		var i int
		if _, err := fmt.Sscanf(m.Name, "node%d", &i); err == nil && i > idx {
			idx = i
		}
	}
	idx++
	if idx > maxNodeIndex {
		return nil, fmt.Errorf("no free node address left (.11-.%d used)", 10+maxNodeIndex)
	}
	name := fmt.Sprintf("node%d", idx)
	n := &Node{Name: name, Role: RoleVoter, NodeID: name, IP: ipFor(c.State.Spec, idx), Zone: zone}
	inputs, err := c.pkiInputs()
	if err != nil {
		return nil, err
	}
	ca, err := pki.LoadIntermediate(inputs, c.TLSDir())
	if err != nil {
		return nil, err
	}
	if err := ca.Issue(inputs, c.TLSDir(), pki.Host{Name: n.Name, Addr: n.IP}); err != nil {
		return nil, err
	}
	c.State.Nodes = append(c.State.Nodes, n)
	return n, c.Save()
}

func (c *Cluster) pkiInputs() (*pki.Inputs, error) {
	if c.State.Spec.PKIDir == "" {
		return pki.SeedInputs()
	}
	return pki.LoadInputs(c.State.Spec.PKIDir)
}

// FailDisk makes member i of the node's RAID0 array fail. RAID0 has no
// redundancy: the node's data set is lost and it must be replaced.
func (c *Cluster) FailDisk(n *Node, i int) error {
	return n.Array.FailMember(i)
}

// Survivors are the nodes that were members before the earliest loss that
// has not been recovered: the ones outage recovery must rebuild a quorum
// from. Replacements started after the loss have no raft state to offer.
func (c *Cluster) Survivors() []*Node {
	var first time.Time
	for _, l := range c.State.Lost {
		if first.IsZero() || l.LostAt.Before(first) {
			first = l.LostAt
		}
	}
	var out []*Node
	for _, n := range c.State.Nodes {
		if first.IsZero() || (!n.Started.IsZero() && n.Started.Before(first)) {
			out = append(out, n)
		}
	}
	return out
}

// RecoverQuorum performs Vault's documented outage recovery for a cluster
// that lost its quorum: every survivor is stopped, a raft/peers.json that
// lists only the survivors is written into each one's data directory, and
// they are started again. They elect a leader among themselves; waiting
// replacements then join through retry_join. Returns the survivors.
func (c *Cluster) RecoverQuorum(ctx context.Context) ([]*Node, error) {
	surv := c.Survivors()
	if len(surv) == 0 {
		return nil, fmt.Errorf("no surviving node with raft data: nothing to recover from (restore a snapshot instead)")
	}
	type peer struct {
		ID       string `json:"id"`
		Address  string `json:"address"`
		NonVoter bool   `json:"non_voter"`
	}
	var peers []peer
	for _, n := range surv {
		peers = append(peers, peer{ID: n.NodeID, Address: fmt.Sprintf("%s:%d", n.IP, ClusterPort)})
	}
	b, err := json.MarshalIndent(peers, "", "  ")
	if err != nil {
		return nil, err
	}
	for _, n := range surv {
		// SIGKILL, not SIGTERM: a node with no quorum can hang in shutdown,
		// and raft has fsynced what it acknowledged.
		if c.provider.Alive(ctx, c, n) {
			if err := c.Kill(ctx, n); err != nil {
				return nil, err
			}
		}
		dir := filepath.Join(n.Array.Mount, "raft")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("peers.json for %s: %w", n.Name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "peers.json"), b, 0o600); err != nil {
			return nil, fmt.Errorf("peers.json for %s: %w", n.Name, err)
		}
		// Vault runs as another user in a container, and must be able to
		// read and then remove the file.
		if p, ok := c.provider.(interface{ chownForNode(string) error }); ok {
			for _, f := range []string{dir, filepath.Join(dir, "peers.json")} {
				if err := p.chownForNode(f); err != nil {
					return nil, fmt.Errorf("peers.json for %s: %w", n.Name, err)
				}
			}
		}
	}
	for _, n := range surv {
		if err := c.Start(ctx, n); err != nil {
			return nil, err
		}
	}
	// The lost nodes are out of the configuration now; nothing is left for
	// autopilot to remove.
	return surv, nil
}

// NetNS is the network namespace of n's server when it is a host of its
// own (a container): network faults on it act there. "" when n shares
// this host's network (a process on a loopback address).
func (c *Cluster) NetNS(ctx context.Context, n *Node) (string, error) {
	if p, ok := c.provider.(interface {
		netNS(context.Context, *Cluster, *Node) (string, error)
	}); ok {
		return p.netNS(ctx, c, n)
	}
	return "", nil
}

// Isolate cuts n off from everyone, clients included, until heal: its
// container leaves the cluster's network and heal connects it again on
// the same address. Only a provider whose nodes have a network of their
// own (docker) can.
func (c *Cluster) Isolate(ctx context.Context, n *Node) (heal func() error, err error) {
	p, ok := c.provider.(interface {
		isolate(context.Context, *Cluster, *Node) (func() error, error)
	})
	if !ok {
		return nil, fmt.Errorf("isolate %s: provider %s cannot disconnect a node from its network", n.Name, c.provider.Name())
	}
	return p.isolate(ctx, c, n)
}
