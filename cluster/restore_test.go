package cluster_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/cluster/clustertest"
)

// TestTotalLossRestore: every node and array gone, a brand-new cluster
// restored from a snapshot comes back with no human step (transit
// auto-unseal), with the snapshot's data and the old root token, and
// without what was written after it. Then the same restore under a new
// transit key must fail loudly: Vault cannot decrypt the snapshot's keys.
func TestTotalLossRestore(t *testing.T) {
	spec := cluster.DefaultSpec()
	spec.Nodes, spec.Subnet = 3, 74
	c := clustertest.Start(t, &spec)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cl, err := c.Client(c.State.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Sys().MountWithContext(ctx, "kv", &apiMount); err != nil {
		t.Fatal(err)
	}
	waitKV(t, ctx, c, "kv")
	put(t, ctx, c, "kv", "before", "in the snapshot")
	var snap bytes.Buffer
	if err := leaderClient(t, c).Sys().RaftSnapshotWithContext(ctx, &snap); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	put(t, ctx, c, "kv", "after", "written after the snapshot")
	oldToken, _ := os.ReadFile(c.TokenFile())

	lost, err := c.TotalLoss(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(lost) != 3 || len(c.State.Nodes) != 0 || len(c.State.Lost) != 3 {
		t.Fatalf("after total loss: %d lost, %d nodes left", len(lost), len(c.State.Nodes))
	}
	for _, n := range lost {
		if n.Array.Mount != "" {
			t.Errorf("%s still has its array %s", n.Name, n.Array.Mount)
		}
	}

	var phases []string
	start := time.Now()
	nodes, err := c.RestoreFromSnapshot(ctx, 3, bytes.NewReader(snap.Bytes()), 5*time.Minute, func(p string) { phases = append(phases, p) })
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	t.Logf("restored onto %d new nodes in %s, phases %v", len(nodes), time.Since(start).Round(time.Millisecond), phases)
	if want := []string{cluster.RestoreProvisioned, cluster.RestoreInitialized, cluster.RestoreRestored, cluster.RestoreUnsealed, cluster.RestoreHealthy}; strings.Join(phases, ",") != strings.Join(want, ",") {
		t.Errorf("phases %v, want %v", phases, want)
	}
	for _, n := range nodes {
		if n.Name == "node1" || n.Name == "node2" || n.Name == "node3" {
			t.Errorf("restored node reuses the old name %s", n.Name)
		}
	}
	if tok, _ := os.ReadFile(c.TokenFile()); !bytes.Equal(tok, oldToken) {
		t.Errorf("the root token file changed across the restore: the snapshot's token is the one that works")
	}
	if v := get(t, ctx, c, "kv", "before"); v != "in the snapshot" {
		t.Errorf("before: %q, want the snapshot's value", v)
	}
	if v := get(t, ctx, c, "kv", "after"); v != "" {
		t.Errorf("after: %q, want nothing: it was written after the snapshot", v)
	}
	st := mustStatus(t, c)
	if !st.Healthy || st.Voters != 3 {
		t.Errorf("restored cluster: healthy %v, %d voters", st.Healthy, st.Voters)
	}

	// The KMS key replaced: the snapshot's keys were sealed with the old
	// one. Vault must refuse, not come up empty.
	if _, err := c.TotalLoss(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.UseNewSealKey(ctx, "another-key"); err != nil {
		t.Fatal(err)
	}
	_, err = c.RestoreFromSnapshot(ctx, 1, bytes.NewReader(snap.Bytes()), 2*time.Minute, nil)
	if err == nil {
		t.Fatal("a restore under another transit key succeeded")
	}
	t.Logf("restore under another transit key: %v", err)
	if !strings.Contains(err.Error(), "transit key") && !strings.Contains(err.Error(), "seal") {
		t.Errorf("the error does not say the seal is the problem: %v", err)
	}
}

var apiMount = api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}

// leaderClient is a client of the active node (standbys would forward).
func leaderClient(t *testing.T, c *cluster.Cluster) *api.Client {
	t.Helper()
	st := mustStatus(t, c)
	for _, n := range c.State.Nodes {
		if n.Name == st.Leader {
			cl, err := c.Client(n)
			if err != nil {
				t.Fatal(err)
			}
			return cl
		}
	}
	t.Fatalf("no leader among %d nodes", len(c.State.Nodes))
	return nil
}

// waitKV waits until a new KV v2 mount answers writes.
func waitKV(t *testing.T, ctx context.Context, c *cluster.Cluster, mount string) {
	t.Helper()
	cl := leaderClient(t, c)
	for {
		if _, err := cl.Logical().ReadWithContext(ctx, mount+"/config"); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("mount %s never ready", mount)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func put(t *testing.T, ctx context.Context, c *cluster.Cluster, mount, key, v string) {
	t.Helper()
	if _, err := leaderClient(t, c).KVv2(mount).Put(ctx, key, map[string]any{"v": v}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// get reads a key through the active node ("" when absent).
func get(t *testing.T, ctx context.Context, c *cluster.Cluster, mount, key string) string {
	t.Helper()
	s, err := leaderClient(t, c).KVv2(mount).Get(ctx, key)
	if err != nil {
		if strings.Contains(err.Error(), "secret not found") {
			return ""
		}
		t.Fatalf("get %s: %v", key, err)
	}
	v, _ := s.Data["v"].(string)
	return v
}
