package load_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/vaultstorm/vaultstorm/checkers"
	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/cluster/clustertest"
	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/load"
)

// TestHistoryLinearizability runs load with history recording against a
// real three-node cluster (on 127.0.61.x): a clean run's history is
// linearizable; a run during which one sampled key is overwritten with the
// root token, behind the harness's back, is not, and the verdict names
// that key.
func TestHistoryLinearizability(t *testing.T) {
	spec := cluster.DefaultSpec()
	spec.Nodes = 3
	spec.Subnet = 61
	c := clustertest.Start(t, &spec)
	names, addrs, ca, token, err := c.Endpoints()
	if err != nil {
		t.Fatal(err)
	}
	target := load.Target{Names: names, Addrs: addrs, CACert: ca, Token: token}
	mix, _ := load.ParseMix("read=60,write=30,delete=10")
	// 20 keys, 4 sampled (k00, k05, k10, k15): ~50 operations a second on
	// the sample, with deletes, reads and writes racing on each key.
	opts := func(prefix string) load.Options {
		return load.Options{Schedule: load.Constant(100, 8*time.Second), Mix: mix, Keys: 20, HistoryKeys: 4,
			KeyPrefix: prefix, Seed: 61, Logf: t.Logf}
	}

	t.Run("Clean", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := load.Run(context.Background(), target, opts("lin-clean/"), dir); err != nil {
			t.Fatal(err)
		}
		r, err := checkers.CheckDir(dir, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d keys, %d operations: %s", r.Keys, r.Ops, r.Detail)
		// 800 requests, a fifth of them on the sample, and 4 prefill writes.
		if r.Linearizable == nil || !*r.Linearizable || r.Keys != 4 || r.Ops < 120 {
			t.Errorf("clean run on %d keys, %d operations: %s", r.Keys, r.Ops, r.Detail)
		}
		if _, err := os.Stat(filepath.Join(dir, rundir.LinearizabilityFile)); err == nil {
			t.Error("a visualisation was written for a linearizable history")
		}
		v, err := load.Verify(context.Background(), target, dir)
		if err != nil || !v.Verified || v.LostWrites != 0 || v.KeysRead != v.KeysToRead || v.KeysToRead != 20 {
			t.Errorf("verify: %v %+v", err, v)
		}

		// Behind the acknowledged version of k01, 10 more versions: KV v2
		// (max_versions 10) purges it, so its value cannot be checked. The
		// acknowledged version of k02 destroyed under a later one: lost.
		ctx := context.Background()
		kv, err := rootKV(c, "vaultstorm")
		if err != nil {
			t.Fatal(err)
		}
		for range 10 {
			if _, err := kv.Put(ctx, "lin-clean/k01", map[string]any{"v": "later"}); err != nil {
				t.Fatal(err)
			}
		}
		md, err := kv.GetMetadata(ctx, "lin-clean/k02")
		if err != nil {
			t.Fatal(err)
		}
		acked := md.CurrentVersion
		if _, err := kv.Put(ctx, "lin-clean/k02", map[string]any{"v": "later"}); err != nil {
			t.Fatal(err)
		}
		if err := kv.Destroy(ctx, "lin-clean/k02", []int{acked}); err != nil {
			t.Fatal(err)
		}
		v, err = load.Verify(ctx, target, dir)
		if err != nil || !v.Verified {
			t.Fatalf("verify: %v %+v", err, v)
		}
		if v.Unverifiable != 1 || v.UnverifiableKeys[0].Key != "lin-clean/k01" || len(v.Lost) != 1 || v.Lost[0].Key != "lin-clean/k02" ||
			!strings.Contains(v.Lost[0].Reason, "destroyed, not by this run") {
			t.Errorf("unverifiable %+v, lost %+v", v.UnverifiableKeys, v.Lost)
		}
	})

	t.Run("WriteBehindOurBack", func(t *testing.T) {
		dir := t.TempDir()
		const mount, prefix = "vaultstorm", "lin-behind/"
		const victim = prefix + "k05"
		o := opts(prefix)
		var wg sync.WaitGroup
		var once sync.Once
		var putErr error
		samples := 0
		o.OnSample = func(rundir.Sample) {
			if samples++; samples != 3 {
				return
			}
			once.Do(func() {
				wg.Add(1)
				go func() { // not on the flusher's goroutine
					defer wg.Done()
					putErr = overwrite(c, mount, victim)
				}()
			})
		}
		if _, err := load.Run(context.Background(), target, o, dir); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if putErr != nil {
			t.Fatalf("write behind the harness's back: %v", putErr)
		}
		r, err := checkers.CheckDir(dir, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d keys, %d operations: %s", r.Keys, r.Ops, r.Detail)
		if r.Linearizable == nil || *r.Linearizable || !strings.HasPrefix(r.Detail, "no: key "+victim+": ") ||
			!strings.Contains(r.Detail, "someone else wrote it") {
			t.Errorf("run with a write behind its back: %s", r.Detail)
		}
		html, err := os.ReadFile(filepath.Join(dir, rundir.LinearizabilityFile))
		if err != nil || !strings.Contains(string(html), victim) {
			t.Errorf("visualisation: %v (%d bytes, naming %s: %v)", err, len(html), victim, strings.Contains(string(html), victim))
		}
	})
}

// rootKV is the KV v2 mount through the active node, with the root token.
func rootKV(c *cluster.Cluster, mount string) (*vault.KVv2, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return nil, err
	}
	n, err := c.Node(st.Leader)
	if err != nil {
		return nil, err
	}
	api, err := c.Client(n)
	if err != nil {
		return nil, err
	}
	return api.KVv2(mount), nil
}

// overwrite writes a value to key with the root token, as an operator (or
// a bug) would, unknown to the load.
func overwrite(c *cluster.Cluster, mount, key string) error {
	kv, err := rootKV(c, mount)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = kv.Put(ctx, key, map[string]any{"v": "behind-the-back"})
	return err
}
