package netfault

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Nodes that are hosts of their own (containers, each with its own network
// stack and address on a private network) are cut and slowed inside their
// own network namespace: the rules sit in that namespace's "vaultstorm"
// table, on its own input and output hooks, so nothing on this host's
// network changes, and the rules die with the namespace when the
// container goes.

// withNamespace opens the network namespace at nsPath (e.g.
// /proc/PID/ns/net) for the length of a fault: holding the descriptor
// keeps the namespace addressable until the fault is lifted, even if the
// container's process exits in between.
func withNamespace(nsPath string) (*os.File, error) {
	f, err := os.Open(nsPath)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", nsPath, err)
	}
	var st syscall.Statfs_t
	// NSFS_MAGIC: a namespace file, not any file that happens to open.
	if err := syscall.Fstatfs(int(f.Fd()), &st); err != nil || st.Type != 0x6e736673 {
		f.Close()
		return nil, fmt.Errorf("%s is not a network namespace file", nsPath)
	}
	return f, nil
}

func checkPrivate(what string, a netip.Addr) error {
	if !a.IsValid() || !a.Is4() || !a.IsPrivate() {
		return fmt.Errorf("%s %v: only private IPv4 addresses (10/8, 172.16/12, 192.168/16) are allowed", what, a)
	}
	return nil
}

// nsChain adds a base chain on hook in the namespace's table.
func nsChain(c *nftables.Conn, name string, hook *nftables.ChainHook) *nftables.Chain {
	c.AddTable(table)
	policy := nftables.ChainPolicyAccept
	return c.AddChain(&nftables.Chain{
		Name: name, Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: hook, Priority: nftables.ChainPriorityFilter, Policy: &policy,
	})
}

// PartitionIn cuts the node whose network namespace is nsPath off from
// peers, in both directions: what it sends to a peer is dropped on its
// output hook, what a peer sends it on its input hook. Everyone else (a
// load generator on the network's gateway) still reaches it: the
// semantics of Partition, for a node that is a host of its own.
func PartitionIn(ctx context.Context, nsPath string, node netip.Addr, peers []netip.Addr) (heal func() error, err error) {
	if err := checkPartition(checkPrivate, node, peers); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ns, err := withNamespace(nsPath)
	if err != nil {
		return nil, err
	}
	fd := int(ns.Fd())
	c, err := newConnIn(fd)
	if err != nil {
		ns.Close()
		return nil, err
	}
	base := chainName("partition", node)
	out := nsChain(c, base+"-out", nftables.ChainHookOutput)
	in := nsChain(c, base+"-in", nftables.ChainHookInput)
	drop := []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}}
	for _, p := range peers {
		c.AddRule(&nftables.Rule{Table: table, Chain: out, Exprs: concat(daddr(p), drop)})
		c.AddRule(&nftables.Rule{Table: table, Chain: in, Exprs: concat(saddr(p), drop)})
	}
	// One batch: both directions are cut at the same instant.
	if err := c.Flush(); err != nil {
		ns.Close()
		return nil, fmt.Errorf("partition %v from %s: %w", node, addrList(peers), explainErr(err))
	}
	return onceErr(func() error {
		defer ns.Close()
		return errors.Join(deleteChainIn(fd, base+"-out"), deleteChainIn(fd, base+"-in"))
	}), nil
}

// LatencyIn delays every packet the node whose network namespace is nsPath
// sends out of its network interfaces by delay ± jitter, and drops lossPct
// percent of them, until undo: Latency, for a node that is a host of its
// own. The queue that holds the packets is bound inside the namespace.
func LatencyIn(ctx context.Context, nsPath string, node netip.Addr, delay, jitter time.Duration, lossPct float64) (undo func() error, err error) {
	if err := checkPrivate("node", node); err != nil {
		return nil, err
	}
	if err := checkLatency(delay, jitter, lossPct); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ns, err := withNamespace(nsPath)
	if err != nil {
		return nil, err
	}
	fd := int(ns.Fd())
	var q *nfQueue
	if delay > 0 {
		if q, err = openQueueIn(fd, delay, jitter); err != nil {
			ns.Close()
			return nil, fmt.Errorf("latency on %v: %w", node, err)
		}
	}
	stop := func() {
		if q != nil {
			q.stop()
		}
		ns.Close()
	}
	c, err := newConnIn(fd)
	if err != nil {
		stop()
		return nil, err
	}
	name := chainName("latency", node)
	ch := nsChain(c, name, nftables.ChainHookOutput)
	addLatencyRules(c, ch, notLo(), lossPct, q)
	if err := c.Flush(); err != nil {
		stop()
		return nil, fmt.Errorf("latency on %v: %w", node, explainNFQueueErr(explainErr(err)))
	}
	return onceErr(func() error {
		defer stop()
		return deleteChainIn(fd, name)
	}), nil
}

// notLo matches packets leaving by any interface but lo: inside a
// container that is everything it sends to another host.
func notLo() []expr.Any {
	m := oifLo()
	m[1].(*expr.Cmp).Op = expr.CmpOpNeq
	return m
}
