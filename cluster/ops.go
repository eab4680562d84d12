package cluster

import (
	"context"
	"fmt"
	"syscall"

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
	if n.Array.Mount != "" {
		return c.DestroyDisk(n)
	}
	return nil
}

// Provision starts a new generation of a gone node on a fresh array.
func (c *Cluster) Provision(ctx context.Context, n *Node) error {
	n.Generation++
	if err := c.makeDisk(ctx, n); err != nil {
		return err
	}
	return c.Start(ctx, n)
}

// FailDisk makes member i of the node's RAID0 array fail. RAID0 has no
// redundancy: the node's data set is lost and it must be replaced.
func (c *Cluster) FailDisk(n *Node, i int) error {
	return n.Array.FailMember(i)
}
