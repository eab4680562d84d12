package main

import (
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

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
	return t, nil
}
