package external

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vaultstorm/vaultstorm/cluster/watch"
	"github.com/vaultstorm/vaultstorm/internal/vaultenv"
)

// DefaultCommandTimeout bounds a command the inventory leaves unbounded:
// an AWS API call or an ssh returns in seconds; a minute is a hang.
const DefaultCommandTimeout = 2 * time.Minute

// Inventory is a cluster vaultstorm did not make: where to reach it, how
// to verify and authenticate, and the commands that act on its nodes.
// scenarios.ParseInventory reads one from HCL.
type Inventory struct {
	File        string   // where it was read from, for messages
	ClusterName string   // sys/health cluster_name must be this
	Addresses   []string // API addresses to start discovery from
	CAFile      string
	TokenFile   string
	TokenEnv    string // a variable holding the token (VAULT_TOKEN as the user had it)
	Commands    *Commands
	// Nodes adds to what Vault says of a node, by raft node ID: what a
	// command needs and Vault does not know (an instance ID, a zone).
	Nodes map[string]NodeInfo
}

// NodeInfo is an inventory's `node "ID"` block.
type NodeInfo struct {
	Host       string
	Zone       string
	InstanceID string
}

// Token reads the token from token_file or token_env.
func (inv *Inventory) Token() (string, error) {
	switch {
	case inv.TokenFile != "":
		b, err := os.ReadFile(inv.TokenFile)
		if err != nil {
			return "", fmt.Errorf("%s: token_file: %w", inv.File, err)
		}
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("%s: token_file %s is empty", inv.File, inv.TokenFile)
	case inv.TokenEnv != "":
		v, ok := vaultenv.Lookup(inv.TokenEnv)
		if !ok && !strings.HasPrefix(inv.TokenEnv, vaultenv.Prefix) {
			v, ok = os.LookupEnv(inv.TokenEnv)
		}
		if !ok || strings.TrimSpace(v) == "" {
			return "", fmt.Errorf("%s: token_env %s is not set", inv.File, inv.TokenEnv)
		}
		return strings.TrimSpace(v), nil
	}
	return "", fmt.Errorf("%s: no token: give token_file or token_env", inv.File)
}

// Fleet is an inventory attached to its running cluster: the nodes as
// Vault lists them now.
type Fleet struct {
	Inv   *Inventory
	Token string

	mu    sync.Mutex
	peers []watch.Peer
}

// Attach reads the token, checks that the cluster at the inventory's
// addresses is the one it names (sys/health cluster_name: a typo in an
// address must not aim a kill at production), and discovers its nodes.
func Attach(ctx context.Context, inv *Inventory) (*Fleet, error) {
	tok, err := inv.Token()
	if err != nil {
		return nil, err
	}
	f := &Fleet{Inv: inv, Token: tok}
	if err := f.checkName(ctx); err != nil {
		return nil, err
	}
	if err := f.Refresh(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *Fleet) checkName(ctx context.Context) error {
	var errs []error
	for _, a := range f.Inv.Addresses {
		name, err := clusterName(ctx, a, f.Inv.CAFile)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if name != f.Inv.ClusterName {
			return fmt.Errorf("%s: the cluster at %s is named %q, the inventory says cluster_name = %q: refusing to act on a cluster the inventory does not name", f.Inv.File, a, name, f.Inv.ClusterName)
		}
		return nil
	}
	return fmt.Errorf("%s: no address answered sys/health: %w", f.Inv.File, errors.Join(errs...))
}

// Refresh asks the cluster for its nodes again: every raft peer, so a
// node that is down (and so gone from sys/ha-status) can still be
// started. A peer's API address, once known, is kept.
func (f *Fleet) Refresh(ctx context.Context) error {
	f.mu.Lock()
	var seed []string
	known := map[string]string{}
	for _, p := range f.peers {
		if p.APIAddr != "" {
			seed = append(seed, p.APIAddr)
			known[p.NodeID] = p.APIAddr
		}
	}
	f.mu.Unlock()
	ps, err := watch.Peers(ctx, append(seed, f.Inv.Addresses...), f.Inv.CAFile, f.Token)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Inv.File, err)
	}
	for i := range ps {
		if ps[i].APIAddr == "" {
			ps[i].APIAddr = known[ps[i].NodeID]
		}
	}
	f.mu.Lock()
	f.peers = ps
	f.mu.Unlock()
	return nil
}

// Peers are the raft peers as last discovered, in the order of Nodes.
func (f *Fleet) Peers() []watch.Peer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.peers)
}

// Nodes are the raft peers as last discovered, each as a template sees it.
func (f *Fleet) Nodes() []Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Node, 0, len(f.peers))
	for _, p := range f.peers {
		out = append(out, f.node(p))
	}
	return out
}

// Node is the node named name (its raft node ID).
func (f *Fleet) Node(name string) (Node, error) {
	var names []string
	for _, n := range f.Nodes() {
		if n.Name == name {
			return n, nil
		}
		names = append(names, n.Name)
	}
	return Node{}, fmt.Errorf("no node %q in the cluster %s (its raft peers: %s)", name, f.Inv.ClusterName, strings.Join(names, ", "))
}

// node is what templates see of p: the inventory's host, else the API
// address's, else the cluster address's (a down node has only that).
func (f *Fleet) node(p watch.Peer) Node {
	out := Node{Name: p.NodeID, APIAddr: p.APIAddr, InstanceID: p.NodeID, Cluster: f.Inv.ClusterName}
	if u, err := url.Parse(p.APIAddr); err == nil && u.Hostname() != "" {
		out.Host = u.Hostname()
	} else if h, _, err := net.SplitHostPort(p.ClusterAddr); err == nil {
		out.Host = h
	}
	if info, ok := f.Inv.Nodes[p.NodeID]; ok {
		if info.Host != "" {
			out.Host = info.Host
		}
		if info.InstanceID != "" {
			out.InstanceID = info.InstanceID
		}
		out.Zone = info.Zone
	}
	return out
}

// clusterName is sys/health's cluster_name at addr.
func clusterName(ctx context.Context, addr, caFile string) (string, error) {
	h, err := watch.HealthAt(ctx, addr, caFile)
	if err != nil {
		return "", err
	}
	if h.ClusterName == "" {
		return "", fmt.Errorf("%s: sys/health gives no cluster_name (not initialised?)", addr)
	}
	return h.ClusterName, nil
}
