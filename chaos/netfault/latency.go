package netfault

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"
)

// Latency delays every packet node sends by delay ± jitter (uniform) and
// drops lossPct percent of them, until undo is called (or Cleanup). Only
// packets whose source is node are touched, so a request to the node is on
// time and its reply is late, as with netem on the node's own interface:
// the RTT between node and anyone grows by delay.
//
// ctx bounds only the setup. undo is idempotent and safe after Cleanup; it
// releases every packet still held before it returns.
func Latency(ctx context.Context, node netip.Addr, delay, jitter time.Duration, lossPct float64) (undo func() error, err error) {
	return latency(ctx, Endpoint{Addr: node}, delay, jitter, lossPct)
}

func latency(ctx context.Context, ep Endpoint, delay, jitter time.Duration, lossPct float64) (undo func() error, err error) {
	node := ep.Addr
	if err := checkLoopback("node", node); err != nil {
		return nil, err
	}
	if err := checkLatency(delay, jitter, lossPct); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var q *nfQueue
	if delay > 0 {
		if q, err = openQueue(delay, jitter); err != nil {
			return nil, fmt.Errorf("latency on %v: %w", node, err)
		}
	}
	c, err := newConn()
	if err != nil {
		if q != nil {
			q.stop()
		}
		return nil, err
	}
	name := chainName("latency", node)
	ch := addChain(c, name)
	// Per matcher a loss rule then a queue rule: a packet that matches
	// the first matcher is queued (a final verdict) before the second
	// could count it again.
	for _, from := range ep.from() {
		addLatencyRules(c, ch, concat(oifLo(), from), lossPct, q)
	}
	if err := c.Flush(); err != nil {
		if q != nil {
			q.stop()
		}
		return nil, fmt.Errorf("latency on %v: %w", node, explainNFQueueErr(explainErr(err)))
	}
	return onceErr(func() error {
		err := deleteChain(name)
		if q != nil {
			q.stop()
		}
		return err
	}), nil
}

// addLatencyRules queues the rules that drop lossPct percent of the
// packets match selects and hold the rest in q (nil: no delay).
func addLatencyRules(c *nftables.Conn, ch *nftables.Chain, match []expr.Any, lossPct float64, q *nfQueue) {
	if lossPct > 0 {
		c.AddRule(&nftables.Rule{Table: ch.Table, Chain: ch, Exprs: concat(match, lossExprs(lossPct),
			[]expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}})})
	}
	if q != nil {
		c.AddRule(&nftables.Rule{Table: ch.Table, Chain: ch, Exprs: concat(match,
			[]expr.Any{&expr.Counter{}, nfqueueTarget(q.num)})})
	}
}

func checkLatency(delay, jitter time.Duration, lossPct float64) error {
	switch {
	case delay < 0 || jitter < 0:
		return fmt.Errorf("latency: delay %s and jitter %s must not be negative", delay, jitter)
	case jitter > delay:
		return fmt.Errorf("latency: jitter %s exceeds delay %s", jitter, delay)
	case delay > time.Minute:
		return fmt.Errorf("latency: delay %s is over 1m", delay)
	case math.IsNaN(lossPct) || lossPct < 0 || lossPct > 100:
		return fmt.Errorf("latency: loss %g%% is not a percentage", lossPct)
	case delay == 0 && lossPct == 0:
		return errors.New("latency: nothing to do (no delay, no loss)")
	}
	return nil
}

// lossExprs matches lossPct percent of packets, in hundredths of a percent:
// "numgen random mod 10000 < N", with the byte swap nft itself emits
// (numgen writes host order, cmp compares big-endian bytes).
func lossExprs(lossPct float64) []expr.Any {
	n := uint32(math.Round(lossPct * 100))
	return []expr.Any{
		&expr.Numgen{Register: 1, Modulus: 10000, Type: unix.NFT_NG_RANDOM},
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
		&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: binary.BigEndian.AppendUint32(nil, n)},
	}
}

// nfqueueTarget is "queue num N bypass" through the xtables NFQUEUE target
// (nft_compat), because kernels built without nft_queue (this project's CI
// kernel) still have xt_NFQUEUE. struct xt_NFQ_info_v3 is in host order.
func nfqueueTarget(num uint16) expr.Any {
	info := make([]byte, 0, 8)
	info = binary.NativeEndian.AppendUint16(info, num) // queuenum
	info = binary.NativeEndian.AppendUint16(info, 1)   // queues_total
	info = binary.NativeEndian.AppendUint16(info, nfqFlagBypass)
	info = append(info, 0, 0) // XT_ALIGN padding
	u := xt.Unknown(info)
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &u}
}

func explainNFQueueErr(err error) error {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("%w (the kernel lacks the xtables NFQUEUE target through nft_compat: CONFIG_NFT_COMPAT, CONFIG_NETFILTER_XT_TARGET_NFQUEUE)", err)
	}
	return err
}
