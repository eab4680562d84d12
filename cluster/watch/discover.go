package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// haStatus is sys/ha-status: every node the active node has heard from
// (standbys echo to it), with its API and cluster addresses.
type haStatus struct {
	Data struct {
		Nodes []haNode `json:"nodes"`
	} `json:"data"`
}

type haNode struct {
	Hostname       string `json:"hostname"`
	APIAddress     string `json:"api_address"`
	ClusterAddress string `json:"cluster_address"`
	ActiveNode     bool   `json:"active_node"`
}

// Discover asks the cluster which nodes it has: the raft configuration
// names the peers (node ID, cluster address), sys/ha-status gives each
// one's API address. It asks the nodes it knows in turn (any node answers:
// a standby forwards both to the active node) with the Discover token, or
// Token when that is empty. A peer that ha-status does not list (down,
// sealed, not yet echoing) keeps the address it was known by, and is left
// out when it has none: there is nothing to probe it at. Nodes come back
// sorted by name, named by their raft node ID.
func (w *Watcher) Discover(ctx context.Context) ([]Node, error) {
	token := w.o.Discover
	if token == "" {
		token = w.o.Token
	}
	if token == "" {
		return nil, errors.New("discover: no token to read sys/ha-status and the raft configuration with")
	}
	known := w.Nodes()
	var errs []error
	for _, n := range orderForDiscovery(known, w.Active()) {
		nodes, err := w.discoverVia(ctx, n.Addr, token, known)
		if err == nil {
			return nodes, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", n.Addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("discover the cluster's nodes: %w", errors.Join(errs...))
}

// DiscoverNodes is Discover once, from the API addresses given, for a
// caller with no watcher of its own.
func DiscoverNodes(ctx context.Context, addrs []string, caCert, token string) ([]Node, error) {
	var seed []Node
	for _, a := range addrs {
		seed = append(seed, Node{Name: a, Addr: a})
	}
	w, err := New(seed, Options{CACert: caCert, Discover: token, Timeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	defer w.tr.CloseIdleConnections()
	return w.Discover(ctx)
}

// HealthAt is one node's sys/health, asked once, for a caller with no
// watcher of its own.
func HealthAt(ctx context.Context, addr, caCert string) (*Health, error) {
	w, err := New(nil, Options{CACert: caCert, Timeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	defer w.tr.CloseIdleConnections()
	h, err := w.health(ctx, addr, KindHealth)
	if err != nil {
		return nil, fmt.Errorf("%s: sys/health: %w", addr, err)
	}
	return h, nil
}

// orderForDiscovery puts the active nodes first: they answer without a
// forward.
func orderForDiscovery(known []Node, active []string) []Node {
	out := slices.Clone(known)
	sort.SliceStable(out, func(i, j int) bool {
		return slices.Contains(active, out[i].Name) && !slices.Contains(active, out[j].Name)
	})
	return out
}

// Peer is one server in the raft configuration, with the API address
// sys/ha-status gives it ("" when it is not listed there: down, sealed, or
// not echoing for the last 15 s).
type Peer struct {
	NodeID      string
	ClusterAddr string // host:port
	APIAddr     string
	Voter       bool
	Leader      bool
}

func (w *Watcher) peersVia(ctx context.Context, addr, token string) ([]Peer, error) {
	var rc raftConfig
	if err := w.getJSON(ctx, addr, "/v1/sys/storage/raft/configuration", token, &rc); err != nil {
		return nil, err
	}
	var hs haStatus
	if err := w.getJSON(ctx, addr, "/v1/sys/ha-status", token, &hs); err != nil {
		return nil, err
	}
	if len(rc.Data.Config.Servers) == 0 {
		return nil, errors.New("the raft configuration lists no server (not integrated storage?)")
	}
	apiByCluster := map[string]string{}
	for _, h := range hs.Data.Nodes {
		if k := hostPort(h.ClusterAddress); k != "" && h.APIAddress != "" {
			apiByCluster[k] = strings.TrimRight(h.APIAddress, "/")
		}
	}
	var out []Peer
	for _, s := range rc.Data.Config.Servers {
		k := hostPort(s.Address)
		out = append(out, Peer{NodeID: s.NodeID, ClusterAddr: k, APIAddr: apiByCluster[k], Voter: s.Voter, Leader: s.Leader})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out, nil
}

func (w *Watcher) discoverVia(ctx context.Context, addr, token string, known []Node) ([]Node, error) {
	peers, err := w.peersVia(ctx, addr, token)
	if err != nil {
		return nil, err
	}
	prev := map[string]string{}
	for _, n := range known {
		if n.NodeID != "" {
			prev[n.NodeID] = n.Addr
		}
	}
	var out []Node
	for _, p := range peers {
		a := p.APIAddr
		if a == "" {
			a = prev[p.NodeID]
		}
		if a == "" {
			continue
		}
		out = append(out, Node{Name: p.NodeID, NodeID: p.NodeID, Addr: a})
	}
	if len(out) == 0 {
		return nil, errors.New("no raft peer has a known API address")
	}
	return out, nil
}

// Peers is the raft configuration joined with sys/ha-status, asked of the
// addresses given in turn, for a caller with no watcher of its own.
func Peers(ctx context.Context, addrs []string, caCert, token string) ([]Peer, error) {
	w, err := New(nil, Options{CACert: caCert, Timeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	defer w.tr.CloseIdleConnections()
	var errs []error
	for _, a := range addrs {
		ps, err := w.peersVia(ctx, a, token)
		if err == nil {
			return ps, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", a, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("discover the cluster's nodes: %w", errors.Join(errs...))
}

func (w *Watcher) getJSON(ctx context.Context, addr, path, token string, v any) error {
	body, code, err := w.get(ctx, addr, path, token, KindDiscover)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %s", path, code, strings.Join(strings.Fields(string(body)), " "))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// hostPort is the host:port of a cluster address, which ha-status gives
// as a URL and the raft configuration bare.
func hostPort(a string) string {
	if u, err := url.Parse(a); err == nil && u.Host != "" {
		a = u.Host
	}
	if h, p, err := net.SplitHostPort(a); err == nil {
		return net.JoinHostPort(h, p)
	}
	return ""
}

// discoverLoop keeps the node list the cluster's own. A failed discovery
// (no leader during an election) keeps the list as it was.
func (w *Watcher) discoverLoop() {
	defer w.wg.Done()
	for {
		nodes, err := w.Discover(w.ctx)
		if w.ctx.Err() != nil {
			return
		}
		if err == nil && !sameNodes(nodes, w.Nodes()) {
			w.SetNodes(nodes)
		}
		select {
		case <-w.ctx.Done():
			return
		case <-time.After(w.o.Coarse):
		}
	}
}

func sameNodes(a, b []Node) bool {
	key := func(ns []Node) []string {
		var k []string
		for _, n := range ns {
			k = append(k, n.Name+"="+n.Addr)
		}
		sort.Strings(k)
		return k
	}
	return slices.Equal(key(a), key(b))
}
