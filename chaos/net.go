package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vaultstorm/vaultstorm/chaos/netfault"
	"github.com/vaultstorm/vaultstorm/cluster"
)

func init() {
	// `down` (and the next `up`) removes rules a crashed run left behind.
	cluster.RegisterCleaner(func(c *cluster.Cluster) error { return netfault.CleanupSubnet(c.State.Spec.Subnet) })
}

// Partition cuts each node off from every other node of the cluster, in
// both directions, until Lift. The cut-off node keeps serving clients,
// as a node behind a broken network link would. Isolate cuts it off from
// everyone, clients included: its container is disconnected from the
// network (a dead NIC, an instance whose security group lost every rule).
type Partition struct {
	Isolate bool
}

func (Partition) Kind() string { return "partition" }

func (f Partition) Available(c *cluster.Cluster) error {
	if f.Isolate {
		if c.State.Provider != "docker" {
			return fmt.Errorf("partition with isolate = true disconnects the node's container from its network: provider %s has none (run it with --provider docker)", c.State.Provider)
		}
		return nil
	}
	switch c.State.Provider {
	case "docker":
		// Each node's own network stack; the kernel is this host's.
		return netfault.PartitionAvailable()
	case "process":
	default:
		return fmt.Errorf("partition acts on the nodes' network from this host: provider %s is not supported", c.State.Provider)
	}
	for _, n := range c.State.Nodes {
		// Without a cgroup only replies could be matched: raft's own
		// connections leave from 127.0.0.1 and would cross the cut.
		if _, _, ok := c.NodeCgroup(n); !ok {
			return fmt.Errorf("partition needs each node in a cgroup v2 of its own (%s has none: is cgroup2 mounted?)", n.Name)
		}
	}
	return netfault.PartitionAvailable()
}

func (f Partition) Inject(ctx context.Context, c *cluster.Cluster, nodes []*cluster.Node) (Lift, error) {
	var heals []func() error
	for _, n := range nodes {
		var heal func() error
		var err error
		switch {
		case c.External() != nil:
			heal, err = partitionCommand(ctx, c, n)
		case f.Isolate:
			heal, err = c.Isolate(ctx, n)
		default:
			heal, err = partitionNode(ctx, c, n)
		}
		if err != nil {
			for _, h := range heals {
				h()
			}
			return nil, fmt.Errorf("partition %s: %w", n.Name, err)
		}
		heals = append(heals, heal)
	}
	return func(ctx context.Context) ([]*cluster.Node, error) {
		var errs []error
		for _, h := range heals {
			errs = append(errs, h())
		}
		return nodes, errors.Join(errs...)
	}, nil
}

// Latency adds delay, jitter and loss to the packets each node sends,
// until Lift: a slow or lossy link, or a noisy neighbour.
type Latency struct {
	Delay, Jitter time.Duration
	Loss          float64 // percent
}

func (Latency) Kind() string { return "latency" }

func (Latency) Available(c *cluster.Cluster) error {
	if c.State.Provider != "process" && c.State.Provider != "docker" {
		return fmt.Errorf("latency acts on the nodes' network from this host: provider %s is not supported", c.State.Provider)
	}
	return netfault.LatencyAvailable()
}

func (f Latency) Inject(ctx context.Context, c *cluster.Cluster, nodes []*cluster.Node) (Lift, error) {
	var undos []func() error
	for _, n := range nodes {
		undo, err := f.slow(ctx, c, n)
		if err != nil {
			for _, u := range undos {
				u()
			}
			return nil, fmt.Errorf("latency on %s: %w", n.Name, err)
		}
		undos = append(undos, undo)
	}
	return func(ctx context.Context) ([]*cluster.Node, error) {
		var errs []error
		for _, u := range undos {
			errs = append(errs, u())
		}
		return nodes, errors.Join(errs...)
	}, nil
}

// partitionNode cuts n off from every other node: inside its own network
// stack when it has one (a container), else by address and cgroup on this
// host's loopback.
func partitionNode(ctx context.Context, c *cluster.Cluster, n *cluster.Node) (func() error, error) {
	ns, err := c.NetNS(ctx, n)
	if err != nil {
		return nil, err
	}
	ep, err := endpoint(c, n)
	if err != nil {
		return nil, err
	}
	var peers []netfault.Endpoint
	var addrs []netip.Addr
	for _, p := range c.State.Nodes {
		if p.Name != n.Name {
			pe, err := endpoint(c, p)
			if err != nil {
				return nil, err
			}
			peers, addrs = append(peers, pe), append(addrs, pe.Addr)
		}
	}
	if ns != "" {
		return netfault.PartitionIn(ctx, ns, ep.Addr, addrs)
	}
	return netfault.PartitionNodes(ctx, ep, peers)
}

// slow delays what n sends, in its own network stack when it has one.
func (f Latency) slow(ctx context.Context, c *cluster.Cluster, n *cluster.Node) (func() error, error) {
	ns, err := c.NetNS(ctx, n)
	if err != nil {
		return nil, err
	}
	ep, err := endpoint(c, n)
	if err != nil {
		return nil, err
	}
	if ns != "" {
		return netfault.LatencyIn(ctx, ns, ep.Addr, f.Delay, f.Jitter, f.Loss)
	}
	return netfault.LatencyNode(ctx, ep, f.Delay, f.Jitter, f.Loss)
}

// endpoint is n as the firewall matches it: its address and its cgroup.
func endpoint(c *cluster.Cluster, n *cluster.Node) (netfault.Endpoint, error) {
	addr, err := netip.ParseAddr(n.IP)
	if err != nil {
		return netfault.Endpoint{}, fmt.Errorf("address of %s: %w", n.Name, err)
	}
	ep := netfault.Endpoint{Addr: addr}
	if id, level, ok := c.NodeCgroup(n); ok {
		ep.CgroupID, ep.CgroupLevel = id, level
	}
	return ep, nil
}
