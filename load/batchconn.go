package load

import (
	"net"
	"sync"
)

// batchConn is a connection whose writes return once copied, sent by one
// goroutine that takes everything written meanwhile in one system call.
//
// Why: an HTTP/2 client writes and flushes each request's frames on its
// own, under the connection's write lock. With 32 requests in flight that
// is a write(2) per request, and on loopback each one also runs the
// receiving side's TCP stack and wakes the server's reader: on this 2-core
// machine the costliest thing the generator did per request. Written
// behind, the requests queued while one system call runs leave together
// in the next, and the server reads them together.
//
// A write's error is returned by a later Write (or Close): the HTTP/2
// client learns of a broken connection from its reads anyway.
type batchConn struct {
	net.Conn
	mu      sync.Mutex
	sent    sync.Cond // a batch left, or the connection failed
	pending []byte    // written, not yet sent
	spare   []byte    // the last batch's buffer, for the next one
	sending bool      // the sender holds a batch, or has been woken for one
	err     error     // the first failed write (or Close), returned from then on
	wake    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// maxBatch bounds what may wait unsent: past it a writer waits for the
// sender, as it would have waited for its own system call.
const maxBatch = 256 << 10

func newBatchConn(c net.Conn) *batchConn {
	b := &batchConn{Conn: c, wake: make(chan struct{}, 1), done: make(chan struct{})}
	b.sent.L = &b.mu
	go b.send()
	return b
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	for b.err == nil && len(b.pending) >= maxBatch {
		b.sent.Wait()
	}
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	b.pending = append(b.pending, p...)
	start := !b.sending
	b.sending = true
	b.mu.Unlock()
	if start {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

func (b *batchConn) send() {
	for {
		select {
		case <-b.done:
			return
		case <-b.wake:
		}
		b.mu.Lock()
		for len(b.pending) > 0 && b.err == nil {
			batch := b.pending
			b.pending = b.spare[:0]
			b.mu.Unlock()
			_, err := b.Conn.Write(batch)
			b.mu.Lock()
			b.spare = batch[:0]
			if err != nil && b.err == nil {
				b.err = err
			}
			b.sent.Broadcast()
		}
		b.sending = false
		b.mu.Unlock()
	}
}

func (b *batchConn) Close() error {
	b.once.Do(func() { close(b.done) })
	b.mu.Lock()
	if b.err == nil {
		b.err = net.ErrClosed
	}
	b.sent.Broadcast()
	b.mu.Unlock()
	return b.Conn.Close()
}
