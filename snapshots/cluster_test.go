package snapshots

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/cluster/clustertest"
)

// TestClusterSaveRestore runs on a real three-node cluster (127.0.64.x):
// the least-privilege token takes a snapshot and can do nothing else; data
// written after it is gone once it is restored; the agent keeps N.
func TestClusterSaveRestore(t *testing.T) {
	spec := cluster.DefaultSpec()
	spec.Nodes, spec.Subnet = 3, 64
	c := clustertest.Start(t, &spec)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	var clients []*api.Client
	for _, n := range c.State.Nodes {
		cl, err := c.Client(n)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, cl)
	}
	root, err := Active(ctx, clients...)
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().MountWithContext(ctx, "snaptest", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	kv := root.KVv2("snaptest")
	put := func(key, val string) {
		t.Helper()
		if _, err := kv.Put(ctx, key, map[string]any{"v": val}); err != nil {
			t.Fatalf("write %s: %v", key, err)
		}
	}
	for i := range 50 {
		put(fmt.Sprintf("k%d", i), "before")
	}

	token, err := EnsurePolicy(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	look, err := root.Auth().Token().LookupWithContext(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	pols, _ := look.TokenPolicies()
	orphan, _ := look.Data["orphan"].(bool)
	if strings.Join(pols, ",") != PolicyName || !orphan || fmt.Sprint(look.Data["period"]) != fmt.Sprint(int(TokenPeriod.Seconds())) {
		t.Errorf("snapshot token: policies %v orphan %v period %v", pols, orphan, look.Data["period"])
	}

	store, err := OpenStore(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	lp, err := WithToken(root, token)
	if err != nil {
		t.Fatal(err)
	}
	info, err := Save(ctx, lp, store)
	if err != nil {
		t.Fatalf("save with the least-privilege token: %v", err)
	}
	t.Logf("snapshot %s: %d bytes in %s, raft index %d term %d, from %s (Vault %s)",
		info.Name, info.Size, info.Duration().Round(time.Millisecond), info.Index, info.Term, info.Node, info.VaultVersion)
	l, err := root.Sys().LeaderWithContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Index == 0 || info.Term == 0 || info.Index > l.RaftAppliedIndex || info.Node != root.Address() || info.Via != "" ||
		len(info.SHA256) != 64 || info.Size < 1000 || !strings.HasPrefix(info.VaultVersion, "1.") {
		t.Errorf("snapshot info %+v (leader applied index now %d)", info, l.RaftAppliedIndex)
	}
	if st, err := store.Stat(ctx, info.Name); err != nil || st.Index != info.Index || st.Term != info.Term || !st.Started.Equal(info.Started) {
		t.Errorf("recorded %+v, %v", st, err)
	}

	// Asked of a standby, the snapshot comes from the active node, and the
	// metadata says so.
	for _, cl := range clients {
		if cl.Address() == root.Address() {
			continue
		}
		sb, err := WithToken(cl, token)
		if err != nil {
			t.Fatal(err)
		}
		si, err := Save(ctx, sb, store)
		if err != nil {
			t.Fatalf("save through standby %s: %v", cl.Address(), err)
		}
		if si.Node != root.Address() || si.Via != cl.Address() || si.Index < info.Index {
			t.Errorf("through standby %s: node %q via %q index %d", cl.Address(), si.Node, si.Via, si.Index)
		}
		if err := store.Delete(ctx, si.Name); err != nil {
			t.Fatal(err)
		}
		break
	}

	// The token reads snapshots and nothing else.
	forbidden := func(what string, err error) {
		t.Helper()
		var re *api.ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
			t.Errorf("%s with the snapshot token: %v, want 403 permission denied", what, err)
		}
	}
	_, err = lp.KVv2("snaptest").Get(ctx, "k1")
	forbidden("read a KV secret", err)
	_, err = lp.Logical().ReadWithContext(ctx, "sys/mounts")
	forbidden("list mounts", err)
	r, _, err := store.Open(ctx, info.Name)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(r)
	r.Close()
	forbidden("restore", RestoreFrom(ctx, lp, bytes.NewReader(buf.Bytes()), false))
	forbidden("force restore", RestoreFrom(ctx, lp, bytes.NewReader(buf.Bytes()), true))

	// After the snapshot: overwrite, add, delete.
	for i := range 10 {
		put(fmt.Sprintf("k%d", i), "after")
		put(fmt.Sprintf("new%d", i), "after")
	}
	if err := kv.DeleteMetadata(ctx, "k49"); err != nil {
		t.Fatal(err)
	}

	rinfo, err := Restore(ctx, root, store, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if rinfo.Name != info.Name {
		t.Errorf("restored %s, want the newest %s", rinfo.Name, info.Name)
	}
	// Vault applies it in the background: wait for the data to be back.
	deadline := time.Now().Add(2 * time.Minute)
	var last string
	for {
		last = snapshotState(ctx, root)
		if last == "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if last != "" {
		t.Fatalf("after the restore: %s", last)
	}

	// The agent, on the same cluster: follows whichever node is active,
	// keeps two.
	actx, acancel := context.WithTimeout(ctx, time.Minute)
	defer acancel()
	var mu sync.Mutex
	var took []Info
	agent := &Agent{
		Store: store, Interval: 500 * time.Millisecond, Retain: 2, Token: token,
		Active: func(ctx context.Context) (*api.Client, error) { return Active(ctx, clients...) },
		OnSnapshot: func(i Info) {
			mu.Lock()
			took = append(took, i)
			if len(took) == 3 {
				acancel()
			}
			mu.Unlock()
		},
		OnError: func(err error) { t.Errorf("agent: %v", err) },
	}
	agent.Run(actx)
	list, err := store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(took) != 3 || len(list) != 2 || list[0].Name != took[2].Name || list[1].Name != took[1].Name {
		t.Errorf("agent took %d, store keeps %v", len(took), list)
	}
	for _, i := range took {
		t.Logf("agent snapshot %s: %d bytes in %s, index %d term %d", i.Name, i.Size, i.Duration().Round(time.Millisecond), i.Index, i.Term)
	}
	if t.Failed() {
		fmt.Fprintln(os.Stderr, "cluster directory", c.Dir)
	}
}

// snapshotState says what differs from the state at the snapshot ("" when
// it is all back): k0-k48 at version 1 with "before", k49 there, no new*.
func snapshotState(ctx context.Context, c *api.Client) string {
	kv := c.KVv2("snaptest")
	for i := range 50 {
		s, err := kv.Get(ctx, fmt.Sprintf("k%d", i))
		if err != nil {
			return fmt.Sprintf("k%d: %v", i, err)
		}
		if s.Data["v"] != "before" || s.VersionMetadata == nil || s.VersionMetadata.Version != 1 {
			return fmt.Sprintf("k%d = %v (version %v)", i, s.Data["v"], s.VersionMetadata)
		}
	}
	for i := range 10 {
		if _, err := kv.Get(ctx, fmt.Sprintf("new%d", i)); !errors.Is(err, api.ErrSecretNotFound) {
			return fmt.Sprintf("new%d still there (%v)", i, err)
		}
	}
	return ""
}
