package main

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/vaultstorm/vaultstorm/cluster/watch"
	"github.com/vaultstorm/vaultstorm/internal/vaultenv"
	"github.com/vaultstorm/vaultstorm/load"
)

// resolveTarget finds the Vault to talk to: the one the user's environment
// points at when VAULT_ADDR is set (VAULT_ADDR, VAULT_CACERT, VAULT_TOKEN or
// VAULT_TOKEN_FILE, as they were when vaultstorm started: main unsets them,
// see internal/vaultenv), otherwise the cluster that `vaultstorm up` made,
// from its state alone.
func resolveTarget() (load.Target, error) {
	if addr := vaultenv.Get("VAULT_ADDR"); addr != "" {
		return envTarget(addr)
	}
	return clusterTarget()
}

func envTarget(addr string) (load.Target, error) {
	t := load.Target{CACert: vaultenv.Get("VAULT_CACERT"), Token: vaultenv.Get("VAULT_TOKEN")}
	for _, a := range strings.Split(addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			t.Addrs = append(t.Addrs, a)
			t.Names = append(t.Names, "")
		}
	}
	if ns := vaultenv.Get("VAULT_NAMESPACE"); ns != "" {
		// Silently writing to the root namespace instead would put the
		// load's keys somewhere the user did not ask for.
		return t, fmt.Errorf("VAULT_NAMESPACE=%s is set: load and verify do not support Vault namespaces; unset it to use the root namespace", ns)
	}
	if t.CACert != "" {
		b, err := os.ReadFile(t.CACert)
		if err != nil {
			return t, fmt.Errorf("VAULT_CACERT: %w", err)
		}
		if blk, _ := pem.Decode(b); blk == nil || blk.Type != "CERTIFICATE" {
			return t, fmt.Errorf("VAULT_CACERT=%s: no PEM certificate in it", t.CACert)
		}
	}
	if t.Token == "" {
		if f := vaultenv.Get("VAULT_TOKEN_FILE"); f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return t, fmt.Errorf("read VAULT_TOKEN_FILE: %w", err)
			}
			t.Token = strings.TrimSpace(string(b))
		}
	}
	if t.Token == "" {
		return t, errors.New("VAULT_ADDR is set but no token: set VAULT_TOKEN or VAULT_TOKEN_FILE")
	}
	return discoverTarget(t), nil
}

// discoverTarget learns the cluster's nodes from Vault itself (raft
// configuration and sys/ha-status) when VAULT_ADDR names fewer than all of
// them, so --target can name any node (by its raft node ID) and "active"
// can follow a leader change; the load keeps the list current while it
// runs (Target.Discover). A token that may not read those endpoints, or a
// server without integrated storage, keeps VAULT_ADDR's addresses, and
// says so once.
func discoverTarget(t load.Target) load.Target {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	nodes, err := watch.DiscoverNodes(ctx, t.Addrs, t.CACert, t.Token)
	if err != nil {
		fmt.Fprintf(os.Stderr, "note: using only the nodes VAULT_ADDR names (%s): %v\n", strings.Join(t.Addrs, ", "), err)
		return t
	}
	t.Names, t.Addrs, t.Discover = nil, nil, true
	for _, n := range nodes {
		t.Names = append(t.Names, n.Name)
		t.Addrs = append(t.Addrs, n.Addr)
	}
	return t
}
