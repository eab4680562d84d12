package load

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// h2Pool sends requests over one HTTP/2 connection per node, made with
// http.Transport.NewClientConn and replaced as soon as it fails. The transport's own pool is not used for HTTP/2 because its
// per-host connection limit, which is what keeps a lost connection from
// setting off a dial per queued request, miscounts HTTP/2 connections:
// once the health check had closed a wedged connection, requests waited
// for a connection that was never dialled (golang/go#34941; about 3 runs
// in 20 of TestHTTP2WedgedConnection). Here a slot has at most one dial in
// progress per node, and the requests that arrive meanwhile wait for it.
type h2Pool struct {
	tr          *http.Transport
	dialTimeout time.Duration
	mu          sync.Mutex
	hosts       map[string]*h2Conn
	closed      bool // under mu: a dial that ends later closes its connection
}

// h2Conn is one node's connection, or the dial that will make it.
type h2Conn struct {
	mu      sync.Mutex
	cc      *http.ClientConn
	dialing chan struct{} // closed when the dial in progress ends
	err     error         // that dial's error, for the requests that waited on it
}

func newH2Pool(tr *http.Transport, dialTimeout time.Duration) *h2Pool {
	return &h2Pool{tr: tr, dialTimeout: dialTimeout, hosts: map[string]*h2Conn{}}
}

func (p *h2Pool) host(addr string) *h2Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.hosts[addr]
	if h == nil {
		h = &h2Conn{}
		p.hosts[addr] = h
	}
	return h
}

// RoundTrip sends req on its host's connection, dialling it first if it
// is missing or broken.
func (p *h2Pool) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		// HTTP/2 needs TLS here (Vault speaks no cleartext HTTP/2).
		return p.tr.RoundTrip(req)
	}
	h := p.host(req.URL.Host)
	for attempt := 0; ; attempt++ {
		cc, err := h.conn(req.Context(), p, req.URL.Host)
		if err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
		resp, err := cc.RoundTrip(req)
		if err != nil && attempt == 0 && unsent(err) && (req.Body == nil || req.Body == http.NoBody) {
			// It waited for a stream on a connection that was then lost:
			// it was never sent, so it goes on the replacement, as the
			// transport's own pool would do. (A body may have been closed,
			// and a pooled one reused, so writes are not resent.)
			continue
		}
		if err == nil && resp.ProtoMajor != 2 {
			resp.Body.Close()
			return nil, fmt.Errorf("%s answered over %s: HTTP/2 needs a server that offers it over TLS (ALPN h2)", req.URL.Host, resp.Proto)
		}
		return resp, err
	}
}

// unsent is net/http's error for a request that found its HTTP/2
// connection closed before it could be sent (it has no exported type).
func unsent(err error) bool {
	return strings.Contains(err.Error(), "http2: client conn not usable")
}

// conn returns the usable connection, dialling one if there is none. Only
// one dial is in progress; others wait for its result or their own
// deadline.
func (s *h2Conn) conn(ctx context.Context, p *h2Pool, addr string) (*http.ClientConn, error) {
	s.mu.Lock()
	if s.cc != nil && s.cc.Err() == nil {
		cc := s.cc
		s.mu.Unlock()
		return cc, nil
	}
	if s.cc != nil {
		s.cc.Close()
		s.cc = nil
	}
	ch := s.dialing
	if ch == nil {
		ch = make(chan struct{})
		s.dialing = ch
		// The dial is the node's, not this request's: a request that gives
		// up must not fail the dial the others wait for.
		go s.dial(p, addr, ch)
	}
	s.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cc != nil && s.cc.Err() == nil {
		return s.cc, nil
	}
	if s.err != nil {
		return nil, s.err
	}
	return nil, errors.New("HTTP/2 connection to " + addr + " lost as soon as it was made")
}

func (s *h2Conn) dial(p *h2Pool, addr string, done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), p.dialTimeout)
	cc, err := p.tr.NewClientConn(ctx, "https", addr)
	cancel()
	p.mu.Lock()
	if p.closed && cc != nil {
		cc.Close()
		cc, err = nil, errors.New("HTTP/2 connections closed")
	}
	s.mu.Lock()
	s.cc, s.err, s.dialing = cc, err, nil
	s.mu.Unlock()
	p.mu.Unlock()
	close(done)
}

// close closes every connection; requests still on them are interrupted.
func (p *h2Pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, s := range p.hosts {
		s.mu.Lock()
		if s.cc != nil {
			s.cc.Close()
			s.cc = nil
		}
		s.mu.Unlock()
	}
}
