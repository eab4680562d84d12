package load

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// wedgeProxy forwards TCP to a server and can wedge the connections open
// at that moment: they stay open but carry nothing more either way, as a
// connection that stopped answering does. Connections made after the
// wedge pass.
type wedgeProxy struct {
	ln     net.Listener
	to     string
	gen    atomic.Int64 // generation of new connections
	wedged atomic.Int64 // connections of generations below this are wedged
	mu     sync.Mutex
	conns  []net.Conn
}

func newWedgeProxy(t *testing.T, to string) *wedgeProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &wedgeProxy{ln: ln, to: to}
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	go p.serve()
	return p
}

func (p *wedgeProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.to)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		g := p.gen.Load()
		go p.pipe(g, up, c)
		go p.pipe(g, c, up)
	}
}

// pipe copies src to dst until its connection's generation is wedged;
// from then on it reads and drops, so the sender's writes do not block.
func (p *wedgeProxy) pipe(gen int64, dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && gen >= p.wedged.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				dst.Close()
			}
			return
		}
	}
}

// wedge stops every connection open now.
func (p *wedgeProxy) wedge() {
	g := p.gen.Add(1)
	p.wedged.Store(g)
}

// An HTTP/2 connection that stops answering mid-load (the server is fine,
// the connection is not): the health check closes it within 3 s, the
// requests on it fail as a broken connection, and the load carries on over
// a new connection, instead of every request queueing on the dead one
// until its 8 s timeout.
func TestHTTP2WedgedConnection(t *testing.T) {
	st := newStub(t)
	st.Mount("vaultstorm")
	u, _ := url.Parse(st.srv.URL)
	px := newWedgeProxy(t, u.Host)
	tg := st.target
	tg.Addrs = []string{"https://" + px.ln.Addr().String()}
	const rate, wedgeAt, total = 200, 2 * time.Second, 7 * time.Second
	o := Options{Schedule: Constant(rate, total), Keys: 50, NoPrefill: true, Seed: 3, HTTP2: true, Timeout: 8 * time.Second}
	go func() {
		time.Sleep(wedgeAt)
		px.wedge()
	}()
	s, err := Run(context.Background(), tg, o, "")
	if err != nil {
		t.Fatal(err)
	}
	n, errs := countOps(s)
	r := s.Ops["read"]
	t.Logf("%d requests, %d errors %v, p50 %.0fms p99 %.0fms max %.0fms", n, errs, r.ByErr, r.P50, r.P99, r.Max)
	if r.ByErr["timeout"] > 0 {
		t.Errorf("%d requests timed out: they waited on the wedged connection until their deadline", r.ByErr["timeout"])
	}
	for cl, k := range r.ByErr {
		if cl != "conn_reset" {
			t.Errorf("%d requests failed as %s: only the connection's loss (conn_reset) is expected", k, cl)
		}
	}
	if errs == 0 {
		t.Errorf("no errors: the proxy did not wedge the connection (the test checks nothing)")
	}
	// Requests sent in the 3 s it takes to notice may fail; the rest not.
	if max := int64(rate * 3.5); errs > max {
		t.Errorf("%d errors, want at most %d (the 3 s it takes to notice)", errs, max)
	}
	if r.Max > 4000 {
		t.Errorf("max latency %.0fms: a request waited on the wedged connection longer than the 3 s health check plus 1 s", r.Max)
	}
}
