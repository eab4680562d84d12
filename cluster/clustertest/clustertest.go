// Package clustertest starts real Vault clusters for tests of other
// packages, the way net/http/httptest starts servers: one call, torn down by
// t.Cleanup. It needs root, loop devices, btrfs-progs and the Vault binary
// from `make vault` (or VAULTSTORM_VAULT_BIN); without them the test fails
// with a message that says what is missing.
package clustertest

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/cluster"
)

// VaultBin finds the Vault binary for tests: VAULTSTORM_VAULT_BIN, else
// bin/vault at the repository root.
func VaultBin(t testing.TB) string {
	t.Helper()
	if b := os.Getenv("VAULTSTORM_VAULT_BIN"); b != "" {
		return b
	}
	_, file, _, _ := runtime.Caller(0)
	b := filepath.Join(filepath.Dir(file), "..", "..", "bin", "vault")
	if _, err := os.Stat(b); err != nil {
		t.Fatalf("no Vault binary at %s: run `make vault` or set VAULTSTORM_VAULT_BIN", b)
	}
	return b
}

// Start brings up a cluster of spec (DefaultSpec when nil) in a temporary
// directory and removes it when the test ends. It fails the test when the
// machine cannot run one.
func Start(t testing.TB, spec *cluster.Spec) *cluster.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs a real Vault cluster (run without -short)")
	}
	s := cluster.DefaultSpec()
	if spec != nil {
		s = *spec
	}
	if s.Subnet == 0 {
		// Away from 127.0.0.x, where a user's own cluster lives, and apart
		// from other tests' clusters.
		s.Subnet = 100 + rand.IntN(150)
	}
	// Not t.TempDir: its cleanup runs after ours and would race the
	// unmounts; Down removes the directory itself.
	dir, err := os.MkdirTemp("", "vaultstorm-test-")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := cluster.Up(ctx, cluster.Options{Dir: dir, Spec: s, VaultBin: VaultBin(t)})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("cluster up: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			KeepLogs(t, c)
		}
		if err := c.Down(context.Background()); err != nil {
			t.Errorf("cluster down: %v", err)
		}
	})
	return c
}

// KeepLogs copies the nodes' logs somewhere that outlives the test, for
// post-mortems of a failed one.
func KeepLogs(t testing.TB, c *cluster.Cluster) {
	dst, err := os.MkdirTemp("", "vaultstorm-failed-"+filepath.Base(t.Name())+"-")
	if err != nil {
		return
	}
	for _, n := range append(c.State.Nodes, c.State.Seal) {
		if b, err := os.ReadFile(c.LogFile(n.Name)); err == nil {
			os.WriteFile(filepath.Join(dst, n.Name+".log"), b, 0o600)
		}
	}
	t.Logf("node logs kept in %s", dst)
}
