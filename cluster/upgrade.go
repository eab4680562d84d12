package cluster

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/vaultstorm/vaultstorm/cluster/watch"
)

// NodeBin is the Vault binary n runs: its own (set by an upgrade), else
// the cluster's.
func (c *Cluster) NodeBin(n *Node) string {
	if n.VaultBin != "" {
		return n.VaultBin
	}
	return c.State.VaultBin
}

// NodeHealth asks n's sys/health and returns its state (watch.Health.State:
// leader, follower, sealed, uninitialized, down) and the version it
// reports. err is the error of asking (the state is then down).
func (c *Cluster) NodeHealth(ctx context.Context, n *Node) (state, version string, err error) {
	cl, err := c.clients.get(n)
	if err != nil {
		return StateDown, "", err
	}
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	h, err := cl.Sys().HealthWithContext(hctx)
	if err != nil || h == nil {
		return HealthState(h, err), "", err
	}
	return HealthState(h, nil), h.Version, nil
}

// NodeVersion is the Vault version n reports in sys/health (e.g. "1.21.0"),
// or an error when it does not answer.
func (c *Cluster) NodeVersion(ctx context.Context, n *Node) (string, error) {
	_, v, err := c.NodeHealth(ctx, n)
	if err != nil {
		return "", fmt.Errorf("version of %s: sys/health: %w", n.Name, err)
	}
	if v == "" {
		return "", fmt.Errorf("version of %s: sys/health has no version", n.Name)
	}
	return v, nil
}

// ActiveNode is the node that answers sys/health as the active one.
func (c *Cluster) ActiveNode(ctx context.Context) (*Node, error) { return c.activeNode(ctx) }

// StepDown asks the active node n to give up leadership (sys/step-down; on
// raft storage Vault transfers raft leadership) and waits until another
// node answers as active. It refuses a node that is not active: a standby
// would forward the request and step down whoever leads.
func (c *Cluster) StepDown(ctx context.Context, n *Node) error {
	if st, _, err := c.NodeHealth(ctx, n); st != StateLeader {
		if err != nil {
			return fmt.Errorf("step-down: %s does not answer: %w", n.Name, err)
		}
		return fmt.Errorf("step-down: %s is not the active node (it is %s)", n.Name, st)
	}
	cl, err := c.clients.get(n)
	if err != nil {
		return err
	}
	if err := cl.Sys().StepDownWithContext(ctx); err != nil {
		return fmt.Errorf("step-down of %s: %w", n.Name, err)
	}
	last := n.Name + " is still active"
	for {
		if a, err := c.activeNode(ctx); err == nil && a != n {
			return nil
		} else if err != nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after the step-down of %s no other node became active: %s", n.Name, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// UpgradeNode replaces n's Vault binary with bin the way HashiCorp's
// upgrade guide does it for one node: SIGTERM (a graceful shutdown; the
// active node hands over leadership), the binary swapped, the node started
// on its own data, and then a wait, within timeout, until the node answers
// unsealed on bin's version, autopilot counts it a healthy voter on that
// version (proof the leader heard from the new process), and the whole
// cluster is healthy (WaitHealthy). A rollback is the same call with the
// older binary. Once every node runs bin it becomes the cluster's binary:
// nodes launched later (replacements) run it too; the seal keeps its own.
func (c *Cluster) UpgradeNode(ctx context.Context, n *Node, bin string, timeout time.Duration) error {
	if c.State.Provider == "external" {
		return fmt.Errorf("upgrade of %s: provider %s cannot swap a node's binary", n.Name, c.State.Provider)
	}
	if abs, err := filepath.Abs(bin); err == nil {
		bin = abs
	}
	// The new binary must work before the node is touched.
	version, err := VaultVersion(ctx, bin)
	if err != nil {
		return fmt.Errorf("upgrade of %s: %w", n.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if c.provider.Alive(ctx, c, n) {
		if err := c.Stop(ctx, n); err != nil {
			return fmt.Errorf("upgrade of %s: stop: %w", n.Name, err)
		}
	}
	n.VaultBin = bin
	if bin == c.State.VaultBin {
		n.VaultBin = ""
	}
	if err := c.Start(ctx, n); err != nil {
		return fmt.Errorf("upgrade of %s: start on %s: %w", n.Name, bin, err)
	}
	if err := c.waitUpgraded(ctx, n, version); err != nil {
		return fmt.Errorf("upgrade of %s to %s: %w", n.Name, version, err)
	}
	rest := time.Until(deadline(ctx))
	if err := c.WaitHealthy(ctx, len(c.State.Nodes), rest, nil); err != nil {
		return fmt.Errorf("upgrade of %s to %s: %w", n.Name, version, err)
	}
	return c.adoptBin(bin, version)
}

func deadline(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(time.Hour)
	}
	return d
}

// adoptBin makes bin the cluster's binary once every node runs it.
func (c *Cluster) adoptBin(bin, version string) error {
	for _, m := range c.State.Nodes {
		if c.NodeBin(m) != bin {
			return c.Save()
		}
	}
	if c.State.VaultBin == bin {
		return c.Save()
	}
	if s := c.State.Seal; s != nil && s.VaultBin == "" {
		s.VaultBin = c.State.VaultBin // the KMS is not under test
	}
	c.State.VaultBin, c.State.VaultVersion = bin, version
	for _, m := range c.State.Nodes {
		m.VaultBin = ""
	}
	return c.Save()
}

// waitUpgraded waits until n answers unsealed on version and autopilot
// (on the active node) counts it a healthy voter that reported version.
func (c *Cluster) waitUpgraded(ctx context.Context, n *Node, version string) error {
	last := "no answer yet"
	for {
		st, v, err := c.NodeHealth(ctx, n)
		switch {
		case err != nil:
			last = n.Name + ": " + err.Error()
		case !watch.Unsealed(st):
			last = n.Name + " is " + st
		case !SameVersion(v, version):
			last = fmt.Sprintf("%s reports version %s", n.Name, v)
		default:
			ap, err := c.autopilot(ctx)
			if err != nil {
				last = err.Error()
				break
			}
			s, ok := ap.Servers[n.NodeID]
			switch {
			case !ok || s == nil:
				last = n.Name + " is not a raft peer in autopilot's view"
			case s.Status != "voter" && s.Status != "leader":
				last = n.Name + " is " + s.Status
			case !s.Healthy:
				last = n.Name + " is not healthy in autopilot's view"
			case s.Version != "" && !SameVersion(s.Version, version):
				last = fmt.Sprintf("autopilot still has %s on %s", n.Name, s.Version)
			default:
				return nil
			}
		}
		if !c.provider.Alive(ctx, c, n) {
			return fmt.Errorf("%s exited; end of %s:\n%s", n.Name, c.LogFile(n.Name), c.logTail(ctx, n, 8))
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("not an unsealed, healthy voter in time: %s", last)
			}
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// SameVersion reports whether two Vault version strings name the same
// release: a leading "v" and build metadata ("+ent") are ignored.
func SameVersion(a, b string) bool { return normVersion(a) == normVersion(b) }

func normVersion(v string) string {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	if i := strings.IndexByte(v, '+'); i >= 0 {
		v = v[:i]
	}
	return v
}
