// Command vaultstorm is a chaos and benchmark harness for HashiCorp Vault
// clusters on integrated (raft) storage.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/vaultstorm/vaultstorm/internal/vaultenv"
)

// version is set by the Makefile through -ldflags.
var version = "dev"

// exitError carries a specific exit code out of a command: 1 means "the
// checks ran and failed", 2 means bad input or a harness error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// failed returns an error that makes vaultstorm exit 1 (a check failed).
func failed(format string, a ...any) error {
	return &exitError{code: 1, err: fmt.Errorf(format, a...)}
}

var rootCmd = &cobra.Command{
	Use:   "vaultstorm",
	Short: "Chaos and benchmark harness for Vault clusters on raft storage",
	Long: `vaultstorm stands up a Vault cluster on integrated (raft) storage - TLS from a
cfssl root -> intermediate CA, RAID0 data disks on loop devices, transit
auto-unseal - drives KV load against it, kills, replaces, partitions and slows
its nodes, and reports latency, recovery times and lost writes.

Typical use:
  sudo vaultstorm up            # five-node cluster on 127.0.0.11-15
  eval "$(vaultstorm env)"      # point the vault CLI at it
  vaultstorm load --rate 500 --duration 30s
  sudo vaultstorm down`,
	SilenceUsage:  true,
	SilenceErrors: true,
	Version:       version,
}

func main() {
	// First of all: the user's VAULT_* variables (say, from `eval
	// "$(vaultstorm env)"` for a cluster since taken down) must reach no
	// vault/api client of the harness and no child process; the code that
	// targets a user's Vault on purpose reads them from the snapshot.
	vaultenv.Isolate()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := rootCmd.ExecuteContext(ctx)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "vaultstorm:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	os.Exit(2)
}
