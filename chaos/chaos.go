// Package chaos holds the faults vaultstorm injects into a cluster. A fault
// is a small thing with one job: act on the nodes it is given and return a
// way to lift itself. It knows nothing about time, probes or reports; the
// scenario runner owns the schedule, picks the nodes and measures recovery
// (the shape of etcd's robustness failpoints).
package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/vaultstorm/vaultstorm/cluster"
)

// Fault is one kind of failure.
type Fault interface {
	// Kind is the fault's name in scenario files, e.g. "spot_reclaim".
	Kind() string
	// Available says why this fault cannot run on this cluster and machine
	// (not root, no kernel support, a provider that cannot do it), or nil.
	Available(c *cluster.Cluster) error
	// Inject applies the fault to nodes and returns once the fault action
	// is done (t_fault). The returned Lift undoes it (heal, restart,
	// replace); it may be nil when there is nothing to undo.
	Inject(ctx context.Context, c *cluster.Cluster, nodes []*cluster.Node) (Lift, error)
}

// Lift undoes a fault. It returns the nodes it brought (back) into the
// cluster, so the runner knows whom to wait for.
type Lift func(ctx context.Context) ([]*cluster.Node, error)

func needRoot(what string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s needs root", what)
	}
	return nil
}

// Signal kills or stops nodes; Lift restarts them on their own disks.
type Signal struct {
	Name string // "kill" (SIGKILL) or "stop" (SIGTERM)
}

func (f Signal) Kind() string { return f.Name }

func (f Signal) Available(c *cluster.Cluster) error { return nil }

func (f Signal) Inject(ctx context.Context, c *cluster.Cluster, nodes []*cluster.Node) (Lift, error) {
	act := c.Kill
	if f.Name == "stop" {
		act = c.Stop
	}
	if err := each(ctx, nodes, act); err != nil {
		return nil, err
	}
	return func(ctx context.Context) ([]*cluster.Node, error) {
		return nodes, each(ctx, nodes, c.Start)
	}, nil
}

// Pause stops nodes with SIGSTOP; Lift continues them.
type Pause struct{}

func (Pause) Kind() string                       { return "pause" }
func (Pause) Available(c *cluster.Cluster) error { return nil }

func (Pause) Inject(ctx context.Context, c *cluster.Cluster, nodes []*cluster.Node) (Lift, error) {
	if err := each(ctx, nodes, c.Pause); err != nil {
		return nil, err
	}
	return func(ctx context.Context) ([]*cluster.Node, error) {
		return nodes, each(ctx, nodes, c.Resume)
	}, nil
}

// Reclaim is a spot reclaim, a zone outage or the end of a disk loss: the
// instances are gone with their RAID0 disks. Lift launches as many new
// instances (new names, addresses, node IDs and empty arrays) in the same
// zones, as an autoscaling group would; they join by retry_join and
// auto-unseal, and autopilot removes the dead peers.
type Reclaim struct {
	Name string // spot_reclaim or zone_outage
}

func (f Reclaim) Kind() string { return f.Name }

func (f Reclaim) Available(c *cluster.Cluster) error {
	if c.State.Spec.Storage != "dir" {
		return needRoot(f.Name + " (destroys RAID0 arrays)")
	}
	return nil
}

func (f Reclaim) Inject(ctx context.Context, c *cluster.Cluster, nodes []*cluster.Node) (Lift, error) {
	zones := make([]string, len(nodes))
	for i, n := range nodes {
		zones[i] = n.Zone
		if err := c.Lose(ctx, n); err != nil {
			return nil, fmt.Errorf("reclaim %s: %w", n.Name, err)
		}
	}
	return replaceIn(c, zones), nil
}

func replaceIn(c *cluster.Cluster, zones []string) Lift {
	return func(ctx context.Context) ([]*cluster.Node, error) {
		var added []*cluster.Node
		for _, z := range zones {
			n, err := c.AddNode(ctx, z)
			if err != nil {
				return added, fmt.Errorf("replacement in %s: %w", z, err)
			}
			added = append(added, n)
		}
		return added, nil
	}
}

// DiskLoss fails one member of each node's RAID0 array. With no
// redundancy the node's data set is gone; Lift is the replacement: the
// broken node is removed with its disks and a new one launched.
type DiskLoss struct {
	Disk int
}

func (DiskLoss) Kind() string { return "disk_loss" }

func (DiskLoss) Available(c *cluster.Cluster) error {
	if c.State.Spec.Storage == "dir" {
		return errors.New("disk_loss needs RAID0 storage; this cluster uses a plain directory")
	}
	return needRoot("disk_loss")
}

func (f DiskLoss) Inject(ctx context.Context, c *cluster.Cluster, nodes []*cluster.Node) (Lift, error) {
	for _, n := range nodes {
		if err := c.FailDisk(n, f.Disk); err != nil {
			return nil, fmt.Errorf("fail disk %d of %s: %w", f.Disk, n.Name, err)
		}
	}
	return func(ctx context.Context) ([]*cluster.Node, error) {
		zones := make([]string, len(nodes))
		for i, n := range nodes {
			zones[i] = n.Zone
			if err := c.Lose(ctx, n); err != nil {
				return nil, err
			}
		}
		return replaceIn(c, zones)(ctx)
	}, nil
}

// RollingRestart restarts every node in turn, followers first and the
// active node last, waiting for the cluster to heal in between: the shape
// of an upgrade. It is over when Inject returns.
type RollingRestart struct {
	Kill        bool          // SIGKILL instead of SIGTERM
	WaitHealthy bool          // wait for a healthy cluster between nodes
	Timeout     time.Duration // per node
}

func (RollingRestart) Kind() string                       { return "rolling_restart" }
func (RollingRestart) Available(c *cluster.Cluster) error { return nil }

func (f RollingRestart) Inject(ctx context.Context, c *cluster.Cluster, nodes []*cluster.Node) (Lift, error) {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	stop := c.Stop
	if f.Kill {
		stop = c.Kill
	}
	for _, n := range nodes {
		if err := stop(ctx, n); err != nil {
			return nil, err
		}
		if err := c.Start(ctx, n); err != nil {
			return nil, err
		}
		if f.WaitHealthy {
			if err := c.WaitHealthy(ctx, len(c.State.Nodes), timeout, nil); err != nil {
				return nil, fmt.Errorf("after restarting %s: %w", n.Name, err)
			}
		}
	}
	return nil, nil
}

// RecoverQuorum is the operator's outage recovery after a quorum loss:
// raft/peers.json on the survivors, restart (see cluster.RecoverQuorum).
type RecoverQuorum struct{}

func (RecoverQuorum) Kind() string { return "recover_quorum" }

func (RecoverQuorum) Available(c *cluster.Cluster) error {
	if c.State.Provider != "process" && c.State.Provider != "docker" {
		return fmt.Errorf("recover_quorum writes peers.json into the nodes' data directories: provider %s cannot", c.State.Provider)
	}
	return nil
}

func (RecoverQuorum) Inject(ctx context.Context, c *cluster.Cluster, nodes []*cluster.Node) (Lift, error) {
	if _, err := c.RecoverQuorum(ctx); err != nil {
		return nil, err
	}
	return nil, nil
}

func each(ctx context.Context, nodes []*cluster.Node, f func(context.Context, *cluster.Node) error) error {
	for _, n := range nodes {
		if err := f(ctx, n); err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
	}
	return nil
}

// TotalLoss is every instance of the pool gone at once with its RAID0
// array; the transit seal survives. There is nothing to lift: only a
// Restore brings the data back.
type TotalLoss struct{}

func (TotalLoss) Kind() string { return "total_loss" }

func (TotalLoss) Available(c *cluster.Cluster) error {
	if c.State.Spec.Storage != "dir" {
		return needRoot("total_loss (destroys RAID0 arrays)")
	}
	return nil
}

func (TotalLoss) Inject(ctx context.Context, c *cluster.Cluster, nodes []*cluster.Node) (Lift, error) {
	_, err := c.TotalLoss(ctx)
	return nil, err
}

// Restore rebuilds the cluster from a snapshot after a total loss (see
// cluster.RestoreFromSnapshot). The snapshot comes from Open (the runner's
// snapshot store); the fault knows nothing of stores.
type Restore struct {
	Nodes   int // how many new nodes
	Timeout time.Duration
	// Open returns the snapshot to restore and a name for it.
	Open func(ctx context.Context) (io.ReadCloser, string, error)
	// Phase is told when each restore phase ends (cluster.RestoreXxx).
	Phase func(name string)
}

func (Restore) Kind() string { return "restore" }

func (Restore) Available(c *cluster.Cluster) error {
	if c.State.Spec.Storage != "dir" {
		return needRoot("restore (creates RAID0 arrays)")
	}
	return nil
}

func (f Restore) Inject(ctx context.Context, c *cluster.Cluster, nodes []*cluster.Node) (Lift, error) {
	rc, name, err := f.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("open the snapshot to restore: %w", err)
	}
	defer rc.Close()
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	if _, err := c.RestoreFromSnapshot(ctx, f.Nodes, rc, timeout, f.Phase); err != nil {
		return nil, fmt.Errorf("restore from %s: %w", name, err)
	}
	return nil, nil
}
