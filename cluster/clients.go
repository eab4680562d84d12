package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vaultstorm/vaultstorm/internal/tlsconf"
)

// clients hands out one vault/api client per node, all verifying TLS
// against the root CA alone and sharing one connection pool.
type clients struct {
	c    *Cluster
	once sync.Once
	err  error
	tr   *http.Transport
	mu   sync.Mutex
	m    map[string]*api.Client
}

func newClients(c *Cluster) *clients { return &clients{c: c, m: map[string]*api.Client{}} }

func (cs *clients) transport() (*http.Transport, error) {
	cs.once.Do(func() {
		cfg, err := tlsconf.Client(cs.c.CAFile())
		if err != nil {
			cs.err = fmt.Errorf("load root CA: %w", err)
			return
		}
		cs.tr = &http.Transport{
			TLSClientConfig:     cfg,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 8,
			IdleConnTimeout:     30 * time.Second,
		}
	})
	return cs.tr, cs.err
}

// get returns the client for n, with token set (the seal's own root token
// for the seal node, the cluster's root token otherwise, none before init).
func (cs *clients) get(n *Node) (*api.Client, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cl, ok := cs.m[n.Name]; ok {
		return cl, nil
	}
	tr, err := cs.transport()
	if err != nil {
		return nil, err
	}
	cfg := &api.Config{
		Address: n.APIAddr(),
		// No http.Client.Timeout: it would cap every request at 10 s
		// whatever SetClientTimeout says (init needs longer); Timeout
		// below bounds each request through its context instead.
		HttpClient: &http.Client{Transport: tr},
		MaxRetries: 0, // a probe reports what it saw; retries would hide it
		Timeout:    10 * time.Second,
	}
	cl, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", n.Name, err)
	}
	// NewClient takes a token, a namespace and headers from VAULT_TOKEN,
	// VAULT_NAMESPACE and VAULT_HEADERS. The CLI unsets every VAULT_*
	// variable first thing (internal/vaultenv); this package is also used
	// without it (tests), and a client of a cluster the harness made is
	// built from its state alone.
	cl.ClearToken()
	cl.ClearNamespace()
	cl.SetHeaders(http.Header{api.RequestHeaderName: {"true"}})
	if tok, err := cs.c.token(n.Role); err == nil {
		cl.SetToken(tok)
	}
	cs.m[n.Name] = cl
	return cl, nil
}

// reset drops cached clients, e.g. after init wrote a token.
func (cs *clients) reset() {
	cs.mu.Lock()
	cs.m = map[string]*api.Client{}
	cs.mu.Unlock()
}

func (c *Cluster) token(role string) (string, error) {
	if c.ext != nil {
		return c.ext.Token, nil // the inventory's: not necessarily root
	}
	f := RootTokenFile
	if role == RoleSeal {
		f = sealRootTokenFile
	}
	b, err := os.ReadFile(c.secret(f))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// Client returns an API client for the named node (root token set).
func (c *Cluster) Client(n *Node) (*api.Client, error) { return c.clients.get(n) }

// waitAPI waits until n answers sys/health at all (sealed or not), failing
// early when its process died, with the end of its log.
func (c *Cluster) waitAPI(ctx context.Context, n *Node, timeout time.Duration) error {
	cl, err := c.clients.get(n)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		hctx, hcancel := context.WithTimeout(ctx, time.Second)
		_, err := cl.Sys().HealthWithContext(hctx)
		hcancel()
		if err == nil {
			return nil
		}
		if !c.provider.Alive(ctx, c, n) {
			return fmt.Errorf("%s exited during start-up; end of %s:\n%s", n.Name, c.LogFile(n.Name), c.logTail(ctx, n, 8))
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s did not answer on %s within %s: %v", n.Name, n.APIAddr(), timeout, err)
			}
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// logTail is the end of n's log, for error messages; a provider may add
// what its server printed before it opened the log.
func (c *Cluster) logTail(ctx context.Context, n *Node, lines int) string {
	if p, ok := c.provider.(interface {
		logTail(context.Context, *Cluster, *Node, int) string
	}); ok {
		return p.logTail(ctx, c, n, lines)
	}
	return tail(c.LogFile(n.Name), lines)
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "  (no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// RootToken reads the cluster's root token from its 0600 file.
func (c *Cluster) RootToken() (string, error) {
	t, err := c.token(RoleVoter)
	if err != nil {
		return "", fmt.Errorf("read root token: %w", err)
	}
	return t, nil
}

// Endpoints are what a client of the cluster needs: node names and API
// addresses (parallel), the root CA file and the root token.
func (c *Cluster) Endpoints() (names, addrs []string, caFile, token string, err error) {
	if token, err = c.RootToken(); err != nil {
		return nil, nil, "", "", err
	}
	for _, n := range c.State.Nodes {
		names = append(names, n.Name)
		addrs = append(addrs, n.APIAddr())
	}
	return names, addrs, c.CAFile(), token, nil
}
