package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/vaultstorm/vaultstorm/cluster/watch"
	"github.com/vaultstorm/vaultstorm/internal/tlsconf"
)

// node is one Vault API endpoint.
type node struct {
	idx    int
	name   string
	addr   string // as given, e.g. https://127.0.0.11:8200
	scheme string
	host   string
	api    *vault.Client // for the api-client mode and setup calls
}

func (n *node) label() string {
	if n.name != "" {
		return n.name + " (" + n.addr + ")"
	}
	return n.addr
}

// client talks to the target's nodes. One http.Transport serves every node,
// so idle connections and TLS sessions are pooled once for the whole run.
type client struct {
	hc      *http.Client
	tr      *http.Transport
	h2      *h2Pool     // the HTTP/2 connections, when HTTP/2 is asked for
	hdr     http.Header // X-Vault-Token; shared read-only by every request
	token   string
	nodes   []*node // the target's nodes, as given
	timeout time.Duration

	// w is the cluster's one observer: who is active, which nodes exist.
	// The load's own unless the caller (the scenario runner) shares its.
	w      *watch.Watcher
	ownW   bool
	mu     sync.Mutex
	byAddr map[string]*node        // every node ever used, by address
	all    atomic.Pointer[[]*node] // "all" rotation: the nodes there are now
	mode   string                  // "active", "all" or "node"
	fixed  *node
	rr     atomic.Uint64
	active atomic.Pointer[node]
	// routeMode is where "active" requests go, as the last setActive
	// said to the user: RouteActive (to c.active: the active node, or the
	// last one during a failover), RouteStandby, or RouteNoActive (nowhere:
	// no node is active and the last active one is sealed or gone).
	routeMode atomic.Int32
	logf      func(string, ...any)
	dials     *atomic.Int64 // connections opened: each costs a TLS handshake
}

// newTLSConfig verifies servers against caFile (or the system roots when no
// CA file is given). Verification is never turned off.
func newTLSConfig(caFile string) (*tls.Config, error) {
	cfg, err := tlsconf.Client(caFile)
	if err != nil {
		return nil, err
	}
	// The session cache lets a reconnect resume instead of verifying the
	// chain and doing a full key exchange again: after a stall or a
	// leader change many connections are reopened at once.
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(256)
	return cfg, nil
}

type clientConfig struct {
	maxConns int
	timeout  time.Duration
	http2    bool
	watcher  *watch.Watcher // shared observer; nil: the client makes its own
}

func newClient(t Target, cc clientConfig) (*client, error) {
	if len(t.Addrs) == 0 {
		return nil, errors.New("target has no Vault address")
	}
	if t.Token == "" {
		return nil, errors.New("target has no token")
	}
	tlsCfg, err := newTLSConfig(t.CACert)
	if err != nil {
		return nil, err
	}
	// maxConnsPerNode bounds HTTP/1.1 connections to one node.
	const maxConnsPerNode = 64
	// HTTP/2 health check: silence before a ping, and the wait for its answer.
	const h2PingAfter, h2PingTimeout = time.Second, 2 * time.Second
	dialer := &net.Dialer{Timeout: min(cc.timeout, 5*time.Second), KeepAlive: 30 * time.Second}
	var dials atomic.Int64
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// Refused dials (a dead node) are errors already counted;
			// this counts the connections that cost a TLS handshake.
			dials.Add(1)
			if cc.http2 {
				// Many requests share the connection: see batchConn.
				return newBatchConn(conn), nil
			}
			return conn, nil
		},
		TLSClientConfig:     tlsCfg,
		TLSHandshakeTimeout: cc.timeout,
		MaxIdleConns:        cc.maxConns,
		MaxIdleConnsPerHost: cc.maxConns,
		IdleConnTimeout:     90 * time.Second,
		// Vault's answers are small JSON; gzip would only cost CPU on both sides.
		DisableCompression: true,
		ForceAttemptHTTP2:  cc.http2,
	}
	var rt http.RoundTripper = tr
	var h2 *h2Pool
	if cc.http2 {
		// One connection per node, its streams shared by every request:
		// when the server is slow, opening more connections (and paying a
		// TLS handshake on both sides for each) is what turns a slow second
		// into a collapse, and is not what is being measured. Requests
		// beyond the server's stream limit wait client-side, and their
		// latency still counts from their intended time.
		//
		// A connection that stops answering (the server resumed after a
		// stall but this connection did not, or a middlebox dropped it) is
		// pinged after 1 s without a frame and closed 2 s later: its
		// requests fail as a lost connection and the next ones get a new
		// connection, instead of every request queueing on it until its
		// timeout. A whole-node stall shorter than 3 s does not trip it.
		tr.HTTP2 = &http.HTTP2Config{StrictMaxConcurrentRequests: true, SendPingTimeout: h2PingAfter, PingTimeout: h2PingTimeout}
		h2 = newH2Pool(tr, cc.timeout)
		rt = h2
	} else {
		// A non-nil empty map is how net/http is told "HTTP/1.1 only".
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		// A bounded pool per node, for the reason above: a stall must not
		// set off a TLS handshake per request piled up behind it. Requests
		// past the bound wait for a connection client-side, and their
		// latency still counts from their intended time.
		tr.MaxConnsPerHost = min(cc.maxConns, maxConnsPerNode)
	}
	c := &client{
		hc:      &http.Client{Transport: rt},
		tr:      tr,
		h2:      h2,
		hdr:     http.Header{"X-Vault-Token": {t.Token}},
		token:   t.Token,
		timeout: cc.timeout,
		dials:   &dials,
		byAddr:  map[string]*node{},
	}
	c.routeMode.Store(int32(watch.RouteActive)) // sending to the active node says nothing
	var wnodes []watch.Node
	for i, a := range t.Addrs {
		n, err := c.newNode(i, nameAt(t, i), a, t.Token)
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, n)
		c.byAddr[n.addr] = n
		wnodes = append(wnodes, watch.Node{Name: n.name, Addr: n.addr})
	}
	all := slices.Clone(c.nodes)
	c.all.Store(&all)
	if cc.watcher != nil {
		c.w = cc.watcher
	} else {
		// Health only: a token for a KV load need not read autopilot.
		wo := watch.Options{CACert: t.CACert}
		if t.Discover {
			wo.Discover = t.Token
		}
		if c.w, err = watch.New(wnodes, wo); err != nil {
			return nil, err
		}
		c.ownW = true
	}
	return c, nil
}

// closeConns closes the connections no request is using (all of them, for
// HTTP/2, at the end of a run).
func (c *client) closeConns() {
	c.tr.CloseIdleConnections()
	if c.h2 != nil {
		c.h2.close()
	}
}

func nameAt(t Target, i int) string {
	if i < len(t.Names) {
		return t.Names[i]
	}
	return ""
}

func (c *client) newNode(i int, name, addr, token string) (*node, error) {
	u, err := url.Parse(strings.TrimRight(addr, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("Vault address %q: want https://HOST:PORT", addr)
	}
	cfg := &vault.Config{Address: u.String(), HttpClient: c.hc, MaxRetries: 0, Timeout: c.timeout}
	ac, err := vault.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault client for %s: %w", addr, err)
	}
	ac.SetToken(token)
	// vault/api retries 412s and reads VAULT_* variables; neither must
	// change what is measured.
	ac.SetMaxRetries(0)
	ac.SetCloneHeaders(false)
	return &node{idx: i, name: name, addr: u.String(), scheme: u.Scheme, host: u.Host, api: ac}, nil
}

// selectTarget binds the client to "active", "all" or one node, given by
// name, as nodeN (1-based) or by address.
func (c *client) selectTarget(spec string) error {
	switch spec {
	case "", "active":
		c.mode = "active"
		return nil
	case "all":
		c.mode = "all"
		return nil
	}
	c.mode = "node"
	for _, n := range c.nodes {
		if n.name == spec || n.addr == strings.TrimRight(spec, "/") || n.host == spec {
			c.fixed = n
			return nil
		}
	}
	var k int
	if _, err := fmt.Sscanf(spec, "node%d", &k); err == nil && k >= 1 && k <= len(c.nodes) && fmt.Sprintf("node%d", k) == spec {
		c.fixed = c.nodes[k-1]
		return nil
	}
	var names []string
	for i, n := range c.nodes {
		if n.name != "" {
			names = append(names, n.name)
		} else {
			names = append(names, fmt.Sprintf("node%d", i+1))
		}
	}
	return fmt.Errorf("target %q: want active, all, or one of %s", spec, strings.Join(names, ", "))
}

// pick is the node the next request goes to. It never blocks or allocates.
func (c *client) pick() *node {
	switch c.mode {
	case "node":
		return c.fixed
	case "all":
		all := *c.all.Load()
		return all[c.rr.Add(1)%uint64(len(all))]
	}
	if n := c.active.Load(); n != nil {
		return n
	}
	return c.nodes[0]
}

// holding reports whether "active" requests are being held back because
// no node is active (watch.RouteNoActive): they are not sent at all.
func (c *client) holding() bool {
	return c.mode == "active" && watch.Route(c.routeMode.Load()) == watch.RouteNoActive
}

// noteFailure makes the watcher look again at once when requests to
// the presumed active node fail the way a dead or demoted leader fails.
func (c *client) noteFailure(cl Class) {
	if c.mode != "active" {
		return
	}
	switch cl {
	case ConnRefused, ConnReset, Timeout, Sealed, Standby, NoLeader, NoActive:
		c.w.Kick()
	}
}

// request sends one request and returns the status and, when buf is not
// nil, the body read into *buf (at most limit bytes). It is the hot path.
func (c *client) request(ctx context.Context, n *node, method, path, query string, body io.ReadCloser, clen int64, buf *[]byte, limit int) (int, error) {
	req := &http.Request{
		Method:        method,
		URL:           &url.URL{Scheme: n.scheme, Host: n.host, Path: path, RawQuery: query},
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        c.hdr,
		Body:          body,
		ContentLength: clen,
		Host:          n.host,
	}
	resp, err := c.hc.Do(req.WithContext(ctx))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if buf == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, err
	}
	b := (*buf)[:0]
	for len(b) < limit {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		k, rerr := resp.Body.Read(b[len(b):min(cap(b), limit)])
		b = b[:len(b)+k]
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			*buf = b
			return resp.StatusCode, rerr
		}
	}
	*buf = b
	if len(b) >= limit {
		// Drain so the connection can be reused.
		io.Copy(io.Discard, resp.Body)
	}
	return resp.StatusCode, nil
}

// getJSON is for setup and verification, off the hot path.
func (c *client) getJSON(ctx context.Context, n *node, path string, v any) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var buf []byte
	st, err := c.request(ctx, n, http.MethodGet, path, "", nil, 0, &buf, 16<<20)
	if err != nil {
		return st, buf, err
	}
	if v != nil && st == 200 {
		if err := json.Unmarshal(buf, v); err != nil {
			return st, buf, fmt.Errorf("GET %s on %s: %w", path, n.addr, err)
		}
	}
	return st, buf, nil
}

// follow points the client at the watcher's view of the cluster: the
// active node for "active" traffic (a live standby, which forwards, when
// the active node is not known), and the nodes there are now for "all"
// (a replacement node joins the rotation, a lost one leaves it). It runs
// on every change the watcher sees, never on the request path.
func (c *client) follow() {
	nodes := c.w.Nodes()
	c.mu.Lock()
	all := make([]*node, 0, len(nodes))
	for _, wn := range nodes {
		n := c.byAddr[wn.Addr]
		if n == nil {
			var err error
			if n, err = c.newNode(len(c.byAddr), wn.Name, wn.Addr, c.token); err != nil {
				continue
			}
			c.byAddr[wn.Addr] = n
		}
		all = append(all, n)
	}
	if len(all) > 0 {
		c.all.Store(&all)
	}
	var target *node
	t, route := c.w.Target()
	if route != watch.NoRoute && route != watch.RouteNoActive {
		target = c.byAddr[t.Addr]
	}
	c.mu.Unlock()
	if c.mode == "active" && (target != nil || route == watch.RouteNoActive) {
		c.setActive(target, route)
	}
}

// findLeader asks every node now (one sweep of the watcher) and returns
// where "active" traffic should go, and what that node is (watch.Route).
func (c *client) findLeader(ctx context.Context) (*node, watch.Route, error) {
	c.w.Sweep(ctx)
	t, route := c.w.Target()
	if route == watch.RouteNoActive {
		return nil, route, fmt.Errorf("cannot find the active node: none is, and %s, the last active one, is sealed or gone", c.w.LastActive())
	}
	if route == watch.NoRoute {
		var states []string
		for _, n := range c.w.Nodes() {
			states = append(states, n.Addr+" "+c.w.State(n.Name))
		}
		return nil, route, fmt.Errorf("cannot find the active node: no node answers unsealed (%s)", strings.Join(states, ", "))
	}
	c.mu.Lock()
	n := c.byAddr[t.Addr]
	c.mu.Unlock()
	if n == nil {
		c.follow()
		c.mu.Lock()
		n = c.byAddr[t.Addr]
		c.mu.Unlock()
	}
	if n == nil {
		return nil, route, fmt.Errorf("cannot find the active node: %s is not usable", t.Addr)
	}
	return n, route, nil
}

// setActive points "active" requests at n, or at nothing for
// watch.RouteNoActive (n is nil then). It says so once when a standby
// stands in for an active node the harness does not know of, once when
// requests stop because no node is active, and once when they go to a node
// again. Holding on the last active node through a failover is the normal
// case and says nothing.
func (c *client) setActive(n *node, route watch.Route) {
	if route != watch.RouteNoActive {
		c.active.Store(n)
	}
	mode := route
	if mode != watch.RouteStandby && mode != watch.RouteNoActive {
		mode = watch.RouteActive
	}
	if watch.Route(c.routeMode.Swap(int32(mode))) == mode || c.logf == nil {
		return
	}
	switch {
	case mode == watch.RouteStandby:
		c.logf("no known node is active: sending to standby %s, which forwards to the active node (one the harness was not told of)", n.label())
	case mode == watch.RouteNoActive:
		c.logf("no node is active, and %s, the last active one, is sealed or gone: requests are not sent (they count as no_active) until one is elected; a standby would forward them to the lost leader and hold its own promotion back", c.w.LastActive())
	case route == watch.RouteActive:
		c.logf("the active node is %s: sending there", n.label())
	default:
		c.logf("sending to %s, the last active node, again", n.label())
	}
}

// vaultErr renders a Vault error response as one line.
func vaultErr(status int, body []byte) string {
	var e struct {
		Errors []string `json:"errors"`
	}
	if json.Unmarshal(body, &e) == nil && len(e.Errors) > 0 {
		return fmt.Sprintf("HTTP %d: %s", status, strings.Join(strings.Fields(strings.Join(e.Errors, "; ")), " "))
	}
	b := bytes.TrimSpace(body)
	if len(b) > 200 {
		b = b[:200]
	}
	if len(b) == 0 {
		return fmt.Sprintf("HTTP %d", status)
	}
	return fmt.Sprintf("HTTP %d: %s", status, strings.Join(strings.Fields(string(b)), " "))
}

// describeErr turns a transport error into the one line a user needs.
func describeErr(addr string, err error) string {
	switch classifyErr(err) {
	case ConnRefused:
		return fmt.Sprintf("cannot reach Vault at %s: connection refused (is it running?)", addr)
	case Timeout:
		return fmt.Sprintf("cannot reach Vault at %s: timed out", addr)
	case TLSError:
		return fmt.Sprintf("TLS with Vault at %s failed (wrong CA file? set VAULT_CACERT): %v", addr, err)
	}
	return fmt.Sprintf("cannot reach Vault at %s: %v", addr, err)
}
