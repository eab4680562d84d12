package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/vaultstorm/vaultstorm/load"
)

// resolveTarget finds the Vault to talk to: the environment (VAULT_ADDR,
// VAULT_CACERT, VAULT_TOKEN or VAULT_TOKEN_FILE) when VAULT_ADDR is set,
// otherwise the cluster that `vaultstorm up` made.
func resolveTarget() (load.Target, error) {
	if addr := os.Getenv("VAULT_ADDR"); addr != "" {
		return envTarget(addr)
	}
	return clusterTarget()
}

func envTarget(addr string) (load.Target, error) {
	t := load.Target{CACert: os.Getenv("VAULT_CACERT"), Token: os.Getenv("VAULT_TOKEN")}
	for _, a := range strings.Split(addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			t.Addrs = append(t.Addrs, a)
			t.Names = append(t.Names, "")
		}
	}
	if t.Token == "" {
		if f := os.Getenv("VAULT_TOKEN_FILE"); f != "" {
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
	return t, nil
}
