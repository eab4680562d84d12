package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// TotalLoss is every instance of the pool gone at once with its RAID0
// array (a capacity reclaim across the pool, a bad deploy that wipes every
// array): every node is killed first, then every array destroyed, and the
// nodes are dropped from the cluster (State.Lost). The transit seal, the
// cloud KMS, survives. Nothing of the raft data is left: only a snapshot
// can bring the data back.
func (c *Cluster) TotalLoss(ctx context.Context) ([]*Node, error) {
	nodes := append([]*Node(nil), c.State.Nodes...)
	if len(nodes) == 0 {
		return nil, errors.New("total loss: the cluster has no node left to lose")
	}
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		if !c.provider.Alive(ctx, c, n) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The provider's Signal is safe for distinct nodes; the state
			// is saved once below, not from each goroutine.
			errs[i] = c.provider.Signal(ctx, c, n, syscall.SIGKILL)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("total loss: %w", err)
	}
	if err := c.Save(); err != nil {
		return nil, err
	}
	for _, n := range nodes {
		if err := c.Lose(ctx, n); err != nil {
			return nil, fmt.Errorf("total loss: %w", err)
		}
	}
	return nodes, nil
}

// Restore phases, in order, as RestoreFromSnapshot reports them.
const (
	RestoreProvisioned = "provision" // the new nodes run, on fresh arrays
	RestoreInitialized = "init"      // a new cluster: initialised (a throwaway root key and token), every node a voter
	RestoreRestored    = "restore"   // the snapshot restore call returned
	RestoreUnsealed    = "unsealed"  // the active node serves the snapshot's data, its keys unsealed through the transit seal
	RestoreHealthy     = "healthy"   // every node a healthy voter again
)

// RestoreFromSnapshot rebuilds the cluster after a total loss the way
// HashiCorp documents it: a brand-new cluster first (count new nodes: new
// names, addresses, node IDs and arrays, certificates from the same
// intermediate CA, the same transit key; the first initialised, the others
// joined), then the snapshot restored onto its active node with
// snapshot-force (the new cluster's root key differs from the snapshot's),
// after which every node reloads the snapshot's keyring through the
// transit seal: no human step. Joining nodes after the restore instead
// left them unable to talk raft to the leader ("tls: unrecognized name",
// the raft TLS keyring of the snapshot; cf. hashicorp/vault#31742).
//
// The snapshot brings back the old cluster's root token and recovery
// keys; the throwaway ones of the new init stop working. The cluster's
// secret files are set back to the old ones, so every client (the load,
// the watcher) keeps its token across the restore. phase is called as each
// RestoreXxx phase ends.
func (c *Cluster) RestoreFromSnapshot(ctx context.Context, count int, snap io.Reader, timeout time.Duration, phase func(string)) ([]*Node, error) {
	if count < 1 {
		return nil, fmt.Errorf("restore: %d nodes", count)
	}
	if len(c.State.Nodes) > 0 {
		return nil, fmt.Errorf("restore: the cluster still has %d nodes; a restore rebuilds it after a total loss", len(c.State.Nodes))
	}
	if phase == nil {
		phase = func(string) {}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	oldToken, err := os.ReadFile(c.TokenFile())
	if err != nil {
		return nil, fmt.Errorf("restore: the old root token: %w", err)
	}
	oldRecovery, err := os.ReadFile(c.secret(RecoveryFile))
	if err != nil {
		return nil, fmt.Errorf("restore: the old recovery keys: %w", err)
	}
	zones := max(c.State.Spec.Zones, 1)
	var nodes []*Node
	for i := range count {
		n, err := c.newNode(zoneFor(i+1, zones))
		if err != nil {
			return nodes, fmt.Errorf("restore: %w", err)
		}
		nodes = append(nodes, n)
	}
	// Every config lists every new peer for retry_join.
	for _, n := range nodes {
		if err := c.makeDisk(ctx, n); err != nil {
			return nodes, fmt.Errorf("restore: %w", err)
		}
		if err := c.writeConfig(n); err != nil {
			return nodes, err
		}
	}
	first := nodes[0]
	if err := c.startNode(ctx, first); err != nil {
		return nodes, fmt.Errorf("restore: %w", err)
	}
	if err := c.waitAPI(ctx, first, time.Minute); err != nil {
		return nodes, fmt.Errorf("restore: %w", err)
	}
	phase(RestoreProvisioned)
	// initCluster writes the new (throwaway) token and recovery keys; the
	// old ones are written back below, whatever happens.
	defer func() {
		_ = os.WriteFile(c.TokenFile(), oldToken, 0o600)
		_ = os.WriteFile(c.secret(RecoveryFile), oldRecovery, 0o600)
		c.clients.reset()
	}()
	if err := c.initCluster(ctx, first, c.State.Spec.StabilizationTime); err != nil {
		return nodes, fmt.Errorf("restore: %w", err)
	}
	// Started only now so their first retry_join finds an initialised
	// leader (as in Up).
	for _, n := range nodes[1:] {
		if err := c.startNode(ctx, n); err != nil {
			return nodes, fmt.Errorf("restore: %w", err)
		}
	}
	deadline, _ := ctx.Deadline()
	if err := c.WaitHealthy(ctx, count, time.Until(deadline), nil); err != nil {
		return nodes, fmt.Errorf("restore: the new cluster before the restore: %w", err)
	}
	phase(RestoreInitialized)
	leader, err := c.activeNode(ctx)
	if err != nil {
		return nodes, fmt.Errorf("restore: %w", err)
	}
	cl, err := c.clients.get(leader)
	if err != nil {
		return nodes, err
	}
	if err := cl.Sys().RaftSnapshotRestoreWithContext(ctx, snap, true); err != nil {
		return nodes, fmt.Errorf("restore: snapshot restore on %s: %w", leader.Name, err)
	}
	phase(RestoreRestored)
	if err := os.WriteFile(c.TokenFile(), oldToken, 0o600); err != nil {
		return nodes, err
	}
	c.clients.reset()
	if err := c.waitRestored(ctx, leader); err != nil {
		return nodes, fmt.Errorf("restore: %w", err)
	}
	phase(RestoreUnsealed)
	if err := c.WaitHealthy(ctx, count, time.Until(deadline), nil); err != nil {
		return nodes, fmt.Errorf("restore: after the restore: %w", err)
	}
	phase(RestoreHealthy)
	return nodes, nil
}

// activeNode is the node that answers as the active one.
func (c *Cluster) activeNode(ctx context.Context) (*Node, error) {
	for _, n := range c.State.Nodes {
		if st, _ := c.nodeState(ctx, n); st == StateLeader {
			return n, nil
		}
	}
	return nil, errors.New("no node is active")
}

// waitRestored waits until n is active again and answers the restored
// cluster's root token: the snapshot's keyring is loaded and its data
// served. A node that sealed itself instead (it could not decrypt the
// snapshot's keys: another transit key) fails at once.
func (c *Cluster) waitRestored(ctx context.Context, n *Node) error {
	cl, err := c.clients.get(n)
	if err != nil {
		return err
	}
	var last string
	for {
		h, err := cl.Sys().HealthWithContext(ctx)
		st := HealthState(h, err)
		switch {
		case st == StateSealed:
			return fmt.Errorf("%s sealed itself after the restore: it could not decrypt the snapshot's keys (was the snapshot taken under another transit key?); end of %s:\n%s",
				n.Name, c.LogFile(n.Name), c.logTail(ctx, n, 8))
		case st == StateLeader:
			if _, err := cl.Auth().Token().LookupSelfWithContext(ctx); err == nil {
				return nil
			} else {
				last = "the snapshot's root token: " + err.Error()
			}
		default:
			last = st
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not serving the restored data: %s", n.Name, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
