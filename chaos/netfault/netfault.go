// Package netfault injects network faults between Vault nodes that live on
// loopback addresses (the process provider: node N on 127.0.0.(10+N)):
// partitions and added latency/loss, with real kernel mechanisms.
//
// Everything is done in one nftables table, ip "vaultstorm", so Cleanup is a
// single table delete and `nft list table ip vaultstorm` shows what is
// active. Each fault is its own base chain in that table (named after the
// fault), so healing one fault deletes one chain and leaves the others.
//
// Partition drops packets (rather than rejecting them) because that is what
// a real network split looks like: the peers see silence, not a refusal, so
// Vault and raft run into their heartbeat and dial timeouts instead of
// failing fast on a connection reset.
//
// Latency delays packets the node sends. The obvious tool, tc netem, is often
// not built into minimal kernels (this project's CI kernel has neither
// sch_netem nor sch_prio), so packets are held in an NFQUEUE (a kernel queue
// that waits for a verdict from user space) and released after the delay by
// this process; loss is an nftables random-number match that drops packets
// in the kernel. The queue is set up with bypass and fail-open, so if this
// process dies the packets flow undelayed rather than being dropped.
//
// Only 127.0.0.0/8 addresses are accepted, and rules match only on the lo
// interface: nothing here can touch traffic of any other address.
package netfault

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// TableName is the nftables table (family ip) that holds every vaultstorm rule.
const TableName = "vaultstorm"

var table = &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4}

var loopback = netip.MustParsePrefix("127.0.0.0/8")

// faultSeq numbers the chains of this process's faults; the pid keeps two
// vaultstorm processes sharing the table from clashing.
var faultSeq atomic.Uint64

// chainName names one fault's chain after the node's subnet (the third
// octet of 127.0.S.x), so that one cluster's cleanup leaves another
// cluster's faults alone: "s7-partition-1234-1".
func chainName(kind string, node netip.Addr) string {
	return fmt.Sprintf("%s%s-%d-%d", subnetPrefix(int(node.As4()[2])), kind, syscall.Getpid(), faultSeq.Add(1))
}

func subnetPrefix(subnet int) string { return fmt.Sprintf("s%d-", subnet) }

// CleanupSubnet removes the fault chains on nodes of 127.0.SUBNET.0/24 (one
// cluster's), and the table when no chain is left. Idempotent; what
// `vaultstorm down` calls.
func CleanupSubnet(subnet int) error {
	names, err := Active()
	if err != nil {
		return err
	}
	left := 0
	for _, n := range names {
		if !strings.HasPrefix(n, subnetPrefix(subnet)) {
			left++
			continue
		}
		if err := deleteChain(n); err != nil {
			return err
		}
	}
	if left == 0 {
		return Cleanup()
	}
	return nil
}

func checkLoopback(what string, a netip.Addr) error {
	if !a.IsValid() || !a.Is4() || !loopback.Contains(a) {
		return fmt.Errorf("%s %v: only IPv4 loopback addresses (127.0.0.0/8) are allowed", what, a)
	}
	return nil
}

func newConn() (*nftables.Conn, error) { return newConnIn(hostNS) }

// hostNS stands for this process's own network namespace where a
// namespace file descriptor is expected.
const hostNS = -1

// newConnIn talks to nftables in the network namespace nsFD (hostNS: this
// process's own).
func newConnIn(nsFD int) (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if nsFD != hostNS {
		opts = append(opts, nftables.WithNetNSFd(nsFD))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("open nftables netlink socket: %w", explainErr(err))
	}
	return c, nil
}

// explainErr turns the kernel's terse errno into what the user must do.
func explainErr(err error) error {
	switch {
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%w (network faults need root or CAP_NET_ADMIN)", err)
	case errors.Is(err, syscall.EPROTONOSUPPORT), errors.Is(err, syscall.EAFNOSUPPORT):
		return fmt.Errorf("%w (the kernel has no nftables: CONFIG_NF_TABLES)", err)
	}
	return err
}

// Match builders. Registers: everything here compares register 1.

func oifLo() []expr.Any {
	name := make([]byte, 16) // IFNAMSIZ, NUL padded, as nft emits it
	copy(name, "lo")
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: name},
	}
}

func ipAddr(offset uint32, a netip.Addr) []expr.Any {
	b := a.As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b[:]},
	}
}

func saddr(a netip.Addr) []expr.Any { return ipAddr(12, a) }
func daddr(a netip.Addr) []expr.Any { return ipAddr(16, a) }

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// addChain queues a base chain on the output hook of lo traffic: every
// loopback packet is locally generated, so it passes the output hook once,
// on the sender's side, before it reaches any receiver. One hook is enough
// to cut or slow both directions.
func addChain(c *nftables.Conn, name string) *nftables.Chain {
	c.AddTable(table) // no NLM_F_EXCL: a no-op when the table exists
	policy := nftables.ChainPolicyAccept
	return c.AddChain(&nftables.Chain{
		Name:     name,
		Table:    table,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookOutput,
		Priority: nftables.ChainPriorityFilter,
		Policy:   &policy,
	})
}

// deleteChain removes one fault's chain. A chain already gone (healed
// twice, or Cleanup ran first) is not an error.
func deleteChain(name string) error { return deleteChainIn(hostNS, name) }

func deleteChainIn(nsFD int, name string) error {
	c, err := newConnIn(nsFD)
	if err != nil {
		return err
	}
	ch := &nftables.Chain{Name: name, Table: table}
	c.FlushChain(ch)
	c.DelChain(ch)
	if err := c.Flush(); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("delete nftables chain %s: %w", name, explainErr(err))
	}
	return nil
}

// Partition cuts node off from peers in both directions: every packet from
// node to a peer and from a peer to node is dropped, including those of
// established connections. Traffic between node and addresses not in peers
// (e.g. a load generator on 127.0.0.1) still flows, so clients keep talking
// to a partitioned leader, as they would in a real split.
//
// The partition stays until heal is called (or Cleanup); ctx bounds only the
// setup. heal is idempotent and safe to call after Cleanup.
func Partition(ctx context.Context, node netip.Addr, peers []netip.Addr) (heal func() error, err error) {
	eps := make([]Endpoint, len(peers))
	for i, p := range peers {
		eps[i] = Endpoint{Addr: p}
	}
	return partition(ctx, Endpoint{Addr: node}, eps)
}

func partition(ctx context.Context, nodeEP Endpoint, peerEPs []Endpoint) (heal func() error, err error) {
	node := nodeEP.Addr
	peers := make([]netip.Addr, len(peerEPs))
	for i, p := range peerEPs {
		peers[i] = p.Addr
	}
	if err := checkPartition(checkLoopback, node, peers); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := newConn()
	if err != nil {
		return nil, err
	}
	name := chainName("partition", node)
	ch := addChain(c, name)
	for _, p := range peerEPs {
		for _, dir := range [][2]Endpoint{{nodeEP, p}, {p, nodeEP}} {
			for _, from := range dir[0].from() {
				c.AddRule(&nftables.Rule{
					Table: table,
					Chain: ch,
					Exprs: concat(oifLo(), from, daddr(dir[1].Addr),
						[]expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}}),
				})
			}
		}
	}
	// One netlink batch: the kernel applies the chain and all its rules
	// atomically, so there is no instant where only one direction is cut.
	if err := c.Flush(); err != nil {
		return nil, fmt.Errorf("partition %v from %s: %w", node, addrList(peers), explainErr(err))
	}
	return onceErr(func() error { return deleteChain(name) }), nil
}

// checkPartition validates a partition's addresses with check (which
// addresses a fault may touch) before anything is changed.
func checkPartition(check func(string, netip.Addr) error, node netip.Addr, peers []netip.Addr) error {
	if err := check("node", node); err != nil {
		return err
	}
	if len(peers) == 0 {
		return errors.New("partition: no peers to cut the node off from")
	}
	for _, p := range peers {
		if err := check("peer", p); err != nil {
			return err
		}
		if p == node {
			return fmt.Errorf("partition: node %v is in its own peer list", node)
		}
	}
	return nil
}

func addrList(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// onceErr makes an undo function idempotent: the first call does the work,
// later calls return its result.
func onceErr(f func() error) func() error {
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() { err = f() })
		return err
	}
}

// Cleanup removes every rule vaultstorm made, by any process: it stops this
// process's latency queues and deletes the table. It is idempotent and is
// what `vaultstorm down` calls.
func Cleanup() error {
	stopAllQueues()
	c, err := newConn()
	if err != nil {
		return err
	}
	c.DelTable(table)
	if err := c.Flush(); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("delete nftables table ip %s: %w", TableName, explainErr(err))
	}
	return nil
}

// Active lists the fault chains currently in the table (any process's),
// e.g. "partition-1234-1": for `vaultstorm status` and for tests.
func Active() ([]string, error) {
	c, err := newConn()
	if err != nil {
		return nil, err
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("list nftables chains: %w", explainErr(err))
	}
	var out []string
	for _, ch := range chains {
		if ch.Table != nil && ch.Table.Name == TableName {
			out = append(out, ch.Name)
		}
	}
	return out, nil
}
