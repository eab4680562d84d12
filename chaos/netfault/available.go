package netfault

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// probeAddr is never a node (nodes are 127.0.0.11 and up), so the probe
// rules match nothing even during the instant they exist.
var probeAddr = netip.MustParseAddr("127.255.255.254")

// Available says whether both Partition and Latency can run here, and if
// not, exactly why.
func Available() error {
	return errors.Join(PartitionAvailable(), LatencyAvailable())
}

// PartitionAvailable probes what Partition needs: privileges and nftables
// with an output-hook filter chain.
func PartitionAvailable() error {
	return probe(false)
}

// LatencyAvailable probes what Latency needs on top of PartitionAvailable:
// the numgen expression (loss), the NFQUEUE target through nft_compat, and
// nfnetlink_queue (delay).
func LatencyAvailable() error {
	if err := probe(true); err != nil {
		return err
	}
	q, err := openQueue(0, 0)
	if err != nil {
		return fmt.Errorf("latency faults unavailable: %w (the kernel needs CONFIG_NETFILTER_NETLINK_QUEUE)", err)
	}
	q.stop()
	return nil
}

// probe installs, in a throwaway table, a chain with the rule shapes the
// faults use, then deletes it: the kernel validates every expression when
// it is added, so this finds a missing module as the fault itself would.
func probe(latency bool) error {
	what := "partition"
	if latency {
		what = "latency"
	}
	c, err := newConn()
	if err != nil {
		return fmt.Errorf("%s faults unavailable: %w", what, err)
	}
	t := &nftables.Table{Name: TableName + "-probe", Family: nftables.TableFamilyIPv4}
	c.AddTable(t)
	policy := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "probe", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter, Policy: &policy})
	match := concat(oifLo(), saddr(probeAddr), daddr(probeAddr))
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: concat(match,
		[]expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}})})
	if latency {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: concat(match, lossExprs(1),
			[]expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}})})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: concat(match, []expr.Any{nfqueueTarget(queueBase)})})
	}
	ferr := c.Flush()
	c.DelTable(t)
	derr := c.Flush()
	if ferr != nil {
		err := explainErr(ferr)
		if latency {
			err = explainNFQueueErr(err)
		}
		if uid := os.Geteuid(); uid != 0 {
			err = fmt.Errorf("%w; running as uid %d", err, uid)
		}
		return fmt.Errorf("%s faults unavailable: nftables refused the rules: %w", what, err)
	}
	if derr != nil {
		return fmt.Errorf("remove the nftables probe table: %w", explainErr(derr))
	}
	return nil
}
