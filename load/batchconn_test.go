package load

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// tcpPair is a loopback TCP connection: the client end and the server end.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-acc
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// Concurrent writers' records arrive whole, each writer's in its order,
// and every byte arrives, including records bigger than maxBatch.
func TestBatchConnKeepsWrites(t *testing.T) {
	c, s := tcpPair(t)
	b := newBatchConn(c)
	const writers, each = 16, 500
	got := make(chan error, 1)
	go func() {
		r := bufio.NewReader(s)
		next := make([]uint32, writers)
		for n := 0; n < writers*each+1; n++ {
			var h [8]byte
			if _, err := io.ReadFull(r, h[:]); err != nil {
				got <- err
				return
			}
			w, size := binary.BigEndian.Uint32(h[:4]), binary.BigEndian.Uint32(h[4:])
			body := make([]byte, size)
			if _, err := io.ReadFull(r, body); err != nil {
				got <- err
				return
			}
			if w == writers { // the big one
				if !bytes.Equal(body, bytes.Repeat([]byte{7}, int(size))) {
					got <- errors.New("big record corrupted")
					return
				}
				continue
			}
			seq := binary.BigEndian.Uint32(body)
			if seq != next[w] {
				got <- errors.New("records out of order or torn")
				return
			}
			next[w]++
		}
		got <- nil
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				rec := make([]byte, 8+4+w*10)
				binary.BigEndian.PutUint32(rec, uint32(w))
				binary.BigEndian.PutUint32(rec[4:], uint32(len(rec)-8))
				binary.BigEndian.PutUint32(rec[8:], uint32(i))
				if n, err := b.Write(rec); err != nil || n != len(rec) {
					t.Errorf("write: %d, %v", n, err)
					return
				}
			}
		})
	}
	big := make([]byte, 8+3*maxBatch)
	binary.BigEndian.PutUint32(big, writers)
	binary.BigEndian.PutUint32(big[4:], 3*maxBatch)
	copy(big[8:], bytes.Repeat([]byte{7}, 3*maxBatch))
	if _, err := b.Write(big); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("reader did not get every record")
	}
}

// A failed send is returned by a later write; after Close every write fails.
func TestBatchConnErrors(t *testing.T) {
	c, s := tcpPair(t)
	b := newBatchConn(c)
	s.(*net.TCPConn).SetLinger(0)
	s.Close() // a reset, so the client's sends fail
	deadline := time.Now().Add(5 * time.Second)
	var err error
	for err == nil && time.Now().Before(deadline) {
		_, err = b.Write(make([]byte, 64<<10))
		time.Sleep(time.Millisecond)
	}
	if err == nil {
		t.Fatal("writes to a reset connection kept succeeding")
	}
	c2, _ := tcpPair(t)
	b2 := newBatchConn(c2)
	b2.Close()
	if _, err := b2.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v, want net.ErrClosed", err)
	}
}
