package netfault

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// nfnetlink_queue protocol (linux/netfilter/nfnetlink_queue.h). Spelled out
// here because the only Go client library is not reachable from this
// project's module proxy, and the part we need is small.
const (
	nfnlSubsysQueue = 3

	nfqnlMsgPacket       = 0
	nfqnlMsgConfig       = 2
	nfqnlMsgVerdictBatch = 3

	nfqaPacketHdr  = 1
	nfqaVerdictHdr = 2

	nfqaCfgCmd         = 1
	nfqaCfgParams      = 2
	nfqaCfgQueueMaxlen = 3
	nfqaCfgMask        = 4
	nfqaCfgFlags       = 5

	nfqnlCfgCmdBind   = 1
	nfqnlCfgCmdUnbind = 2
	nfqnlCopyMeta     = 1

	nfqaCfgFFailOpen = 1 // queue full: accept instead of drop
	nfqaCfgFGSO      = 4 // hand us GSO super-packets whole: lo carries 64 KiB ones

	nfAccept = 1

	// How many packets may wait in the kernel; at 200 ms of delay this is
	// 300k packets/s, far above what a Vault node sends.
	queueMaxLen = 1 << 16

	// NFQUEUE target (xt_NFQUEUE, revision 3) flag: if no process listens
	// on the queue, accept the packet rather than drop it.
	nfqFlagBypass = 1
)

// nfQueue holds the packets of one latency fault and releases each after
// its delay. Release times never decrease (jitter does not reorder
// packets, unlike netem's default), which lets one batch verdict release
// every packet up to an id, and keeps TCP from reading jitter as loss.
type nfQueue struct {
	num           uint16
	conn          *netlink.Conn
	delay, jitter time.Duration

	pending chan held
	done    chan struct{}
	wg      sync.WaitGroup
	maxID   atomic.Uint32 // highest packet id received
	stopped sync.Once

	// Counters for tests and the event log.
	held, released atomic.Uint64
}

type held struct {
	id  uint32
	due time.Time
}

var (
	queuesMu sync.Mutex
	queues   = map[*nfQueue]bool{}
)

func stopAllQueues() {
	queuesMu.Lock()
	qs := make([]*nfQueue, 0, len(queues))
	for q := range queues {
		qs = append(qs, q)
	}
	queuesMu.Unlock()
	for _, q := range qs {
		q.stop()
	}
}

// queueBase is where queue numbers start; numbers are per network
// namespace, so stay clear of 0 (iptables' default) and small numbers.
const queueBase = 0x5653 // "VS"

// openQueue binds a free queue number and starts the reader and releaser.
func openQueue(delay, jitter time.Duration) (*nfQueue, error) {
	return openQueueIn(hostNS, delay, jitter)
}

// openQueueIn binds the queue in network namespace nsFD: a queue receives
// only the packets of the namespace its socket was made in.
func openQueueIn(nsFD int, delay, jitter time.Duration) (*nfQueue, error) {
	var cfg *netlink.Config
	if nsFD != hostNS {
		cfg = &netlink.Config{NetNS: nsFD}
	}
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, cfg)
	if err != nil {
		return nil, fmt.Errorf("open nfnetlink socket: %w", explainErr(err))
	}
	_ = conn.SetOption(netlink.NoENOBUFS, true)
	_ = conn.SetReadBuffer(8 << 20)
	start := uint16(queueBase + (syscall.Getpid()%512)*16 + int(faultSeq.Load()%16))
	var lastErr error
	for i := uint16(0); i < 64; i++ {
		num := start + i
		if err := configQueue(conn, num); err != nil {
			lastErr = err
			if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
				break
			}
			continue
		}
		q := &nfQueue{num: num, conn: conn, delay: delay, jitter: jitter,
			pending: make(chan held, queueMaxLen), done: make(chan struct{})}
		q.wg.Add(2)
		go q.read()
		go q.release()
		queuesMu.Lock()
		queues[q] = true
		queuesMu.Unlock()
		return q, nil
	}
	conn.Close()
	return nil, fmt.Errorf("bind an NFQUEUE: %w", explainErr(lastErr))
}

func nfgen(queue uint16) []byte {
	b := []byte{unix.AF_UNSPEC, 0 /* NFNETLINK_V0 */, 0, 0}
	binary.BigEndian.PutUint16(b[2:], queue)
	return b
}

func queueMsg(msgType int, queue uint16, flags netlink.HeaderFlags, attrs []netlink.Attribute) (netlink.Message, error) {
	ab, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		return netlink.Message{}, err
	}
	return netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(nfnlSubsysQueue<<8 | msgType), Flags: flags},
		Data:   append(nfgen(queue), ab...),
	}, nil
}

func configQueue(conn *netlink.Conn, num uint16) error {
	cmd := func(c byte) []netlink.Attribute {
		// struct nfqnl_msg_config_cmd { u8 command; u8 pad; be16 pf; }
		return []netlink.Attribute{{Type: nfqaCfgCmd, Data: []byte{c, 0, 0, 0}}}
	}
	params := make([]byte, 5) // struct nfqnl_msg_config_params { be32 copy_range; u8 copy_mode; } (packed)
	params[4] = nfqnlCopyMeta
	be32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	steps := [][]netlink.Attribute{
		cmd(nfqnlCfgCmdBind),
		{
			{Type: nfqaCfgParams, Data: params},
			{Type: nfqaCfgQueueMaxlen, Data: be32(queueMaxLen)},
			{Type: nfqaCfgMask, Data: be32(nfqaCfgFFailOpen | nfqaCfgFGSO)},
			{Type: nfqaCfgFlags, Data: be32(nfqaCfgFFailOpen | nfqaCfgFGSO)},
		},
	}
	for i, attrs := range steps {
		m, err := queueMsg(nfqnlMsgConfig, num, netlink.Request|netlink.Acknowledge, attrs)
		if err != nil {
			return err
		}
		if _, err := conn.Execute(m); err != nil {
			if i > 0 {
				unbind(conn, num)
			}
			return fmt.Errorf("configure NFQUEUE %d: %w", num, err)
		}
	}
	return nil
}

func unbind(conn *netlink.Conn, num uint16) {
	m, err := queueMsg(nfqnlMsgConfig, num, netlink.Request|netlink.Acknowledge,
		[]netlink.Attribute{{Type: nfqaCfgCmd, Data: []byte{nfqnlCfgCmdUnbind, 0, 0, 0}}})
	if err == nil {
		_, _ = conn.Execute(m)
	}
}

// read receives packet notices and schedules each packet's release.
func (q *nfQueue) read() {
	defer q.wg.Done()
	var last time.Time
	for {
		msgs, err := q.conn.Receive()
		if err != nil {
			select {
			case <-q.done:
				return
			default:
			}
			// ENOBUFS (a lost notice) is harmless: the next batch verdict
			// covers every lower id. Anything else: retry, gently.
			if !errors.Is(err, syscall.ENOBUFS) {
				time.Sleep(10 * time.Millisecond)
			}
			continue
		}
		now := time.Now()
		for _, m := range msgs {
			if m.Header.Type != netlink.HeaderType(nfnlSubsysQueue<<8|nfqnlMsgPacket) || len(m.Data) < 4 {
				continue // acks and errors of our own verdicts
			}
			id, ok := packetID(m.Data[4:])
			if !ok {
				continue
			}
			due := now.Add(q.delay)
			if q.jitter > 0 {
				due = due.Add(time.Duration(rand.Int64N(int64(2*q.jitter)+1)) - q.jitter)
			}
			if due.Before(last) {
				due = last
			}
			last = due
			if id > q.maxID.Load() {
				q.maxID.Store(id)
			}
			q.held.Add(1)
			select {
			case q.pending <- held{id: id, due: due}:
			case <-q.done:
				return
			}
		}
	}
}

func packetID(attrs []byte) (uint32, bool) {
	ad, err := netlink.NewAttributeDecoder(attrs)
	if err != nil {
		return 0, false
	}
	for ad.Next() {
		if ad.Type() == nfqaPacketHdr {
			b := ad.Bytes()
			if len(b) >= 4 {
				return binary.BigEndian.Uint32(b), true
			}
		}
	}
	return 0, false
}

// release waits for each packet's due time and accepts every packet up to
// the latest one that is due, in one batch verdict.
func (q *nfQueue) release() {
	defer q.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var h held
		select {
		case h = <-q.pending:
		case <-q.done:
			return
		}
		if d := time.Until(h.due); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-q.done:
				return
			}
		}
		id, n := h.id, uint64(1)
	drain:
		for {
			select {
			case h2 := <-q.pending:
				if time.Until(h2.due) > 0 {
					// Not due: accept what is due first, then wait for it.
					q.verdict(id)
					q.released.Add(n)
					id, n = h2.id, 1
					if d := time.Until(h2.due); d > 0 {
						timer.Reset(d)
						select {
						case <-timer.C:
						case <-q.done:
							return
						}
					}
					continue
				}
				id, n = h2.id, n+1
			default:
				break drain
			}
		}
		q.verdict(id)
		q.released.Add(n)
	}
}

func (q *nfQueue) verdict(id uint32) {
	hdr := binary.BigEndian.AppendUint32(nil, nfAccept)
	hdr = binary.BigEndian.AppendUint32(hdr, id)
	m, err := queueMsg(nfqnlMsgVerdictBatch, q.num, netlink.Request, []netlink.Attribute{{Type: nfqaVerdictHdr, Data: hdr}})
	if err == nil {
		_, _ = q.conn.Send(m)
	}
}

// stop releases every packet still held, then unbinds the queue. Closing
// the socket with packets queued would make the kernel drop them, so the
// final verdict comes first. Call it after the nftables rule is gone, so no
// new packet arrives.
func (q *nfQueue) stop() {
	q.stopped.Do(func() {
		close(q.done)
		_ = q.conn.SetReadDeadline(time.Now()) // unblock read()
		q.wg.Wait()
		// Notices of packets queued just before the rule went away may
		// still be unread; read them so the final verdict covers them.
		for {
			_ = q.conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			msgs, err := q.conn.Receive()
			if err != nil {
				break
			}
			for _, m := range msgs {
				if m.Header.Type == netlink.HeaderType(nfnlSubsysQueue<<8|nfqnlMsgPacket) && len(m.Data) >= 4 {
					if id, ok := packetID(m.Data[4:]); ok && id > q.maxID.Load() {
						q.maxID.Store(id)
						q.held.Add(1)
					}
				}
			}
		}
		if q.held.Load() > 0 {
			q.verdict(q.maxID.Load())
		}
		unbind(q.conn, q.num)
		q.conn.Close()
		queuesMu.Lock()
		delete(queues, q)
		queuesMu.Unlock()
	})
}
