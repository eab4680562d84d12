package netfault

import (
	"context"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/google/nftables/expr"
)

// Endpoint is one node as the network sees it. On loopback every outgoing
// connection leaves from 127.0.0.1 whatever address its process listens
// on, so the source address names a node only on replies from its
// listeners; the cgroup v2 of the sending socket names it on everything it
// sends. Nodes started in a cgroup of their own (the process provider does)
// are matched both ways.
type Endpoint struct {
	Addr        netip.Addr
	CgroupID    uint64 // inode of the node's cgroup v2 directory; 0 = none
	CgroupLevel uint32 // its depth below the cgroup2 root
}

// from matches packets sent by e: by source address, and by the sending
// socket's cgroup when e has one. Each matcher becomes its own rule.
func (e Endpoint) from() [][]expr.Any {
	m := [][]expr.Any{saddr(e.Addr)}
	if e.CgroupID != 0 {
		m = append(m, []expr.Any{
			&expr.Socket{Key: expr.SocketKeyCgroupv2, Level: e.CgroupLevel, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint64(nil, e.CgroupID)},
		})
	}
	return m
}

// PartitionNodes is Partition for nodes that may run in cgroups of their
// own: every packet node sends to a peer's address, and every packet a
// peer sends to node's address, is dropped.
func PartitionNodes(ctx context.Context, node Endpoint, peers []Endpoint) (heal func() error, err error) {
	return partition(ctx, node, peers)
}

// LatencyNode is Latency for a node that may run in a cgroup of its own:
// every packet it sends is delayed (and lossPct of them dropped), its
// outgoing raft connections included.
func LatencyNode(ctx context.Context, node Endpoint, delay, jitter time.Duration, lossPct float64) (undo func() error, err error) {
	return latency(ctx, node, delay, jitter, lossPct)
}
