package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/cluster/clustertest"
	"github.com/vaultstorm/vaultstorm/snapshots"
	"github.com/vaultstorm/vaultstorm/snapshots/snaptest"
)

// TestSnapshotListS3: `snapshot list` of a store in a real S3 server shows
// its snapshots newest first with their metadata, and retention at work.
func TestSnapshotListS3(t *testing.T) {
	s3 := snaptest.StartS3(t)
	ctx := context.Background()
	store, err := snapshots.OpenStore(ctx, s3.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	base := time.Date(2026, 12, 5, 15, 30, 0, 0, time.UTC)
	for i := range 5 {
		start := base.Add(time.Duration(i) * 30 * time.Second)
		snap := snaptest.FakeSnapshot(uint64(1000+i), 2, 10<<10, true)
		if _, err := store.PutFile(ctx, snapshots.Info{Name: snapshots.NameFor(start), Started: start, Ended: start.Add(250 * time.Millisecond),
			Node: "https://127.0.64.11:8200", VaultVersion: "1.21.0"}, bytes.NewReader(snap)); err != nil {
			t.Fatal(err)
		}
	}
	list := func() []string {
		t.Helper()
		r := runEnv(t, nil, s3.Env, "snapshot", "list", s3.URL)
		if r.code != 0 {
			t.Fatalf("snapshot list: exit %d: %s", r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[0], "INDEX") || !strings.Contains(lines[0], "NODE") {
			t.Errorf("header %q", lines[0])
		}
		return lines[1:]
	}
	rows := list()
	if len(rows) != 5 {
		t.Fatalf("5 snapshots stored, list shows %d:\n%s", len(rows), strings.Join(rows, "\n"))
	}
	for i, row := range rows {
		k := 4 - i
		f := strings.Fields(row)
		want := snapshots.NameFor(base.Add(time.Duration(k) * 30 * time.Second))
		// NAME DATE TIME DURATION SIZE(2 fields) INDEX TERM NODE
		if len(f) != 9 || f[0] != want || f[3] != "250ms" || f[6] != fmt.Sprint(1000+k) || f[7] != "2" || f[8] != "https://127.0.64.11:8200" {
			t.Errorf("row %d = %q, want %s first, duration 250ms, index %d term 2, node", i, row, want, 1000+k)
		}
	}

	if _, err := store.Retain(ctx, 3); err != nil {
		t.Fatal(err)
	}
	rows = list()
	if len(rows) != 3 || !strings.HasPrefix(rows[0], snapshots.NameFor(base.Add(2*time.Minute))) || !strings.HasPrefix(rows[2], snapshots.NameFor(base.Add(time.Minute))) {
		t.Errorf("after keeping 3: %q", rows)
	}
	r := runEnv(t, nil, s3.Env, "snapshot", "list", "--json", s3.URL)
	var infos []snapshots.Info
	if err := json.Unmarshal([]byte(r.stdout), &infos); err != nil || len(infos) != 3 || infos[0].Index != 1004 {
		t.Errorf("list --json: %v %+v (%s)", err, infos, r.stderr)
	}

	// Errors name the store.
	bad := strings.Replace(s3.URL, s3.Bucket, "no-such-bucket", 1)
	if r := runEnv(t, nil, s3.Env, "snapshot", "list", bad); r.code != 2 || !strings.Contains(r.stderr, bad) {
		t.Errorf("list of a missing bucket: exit %d, %q", r.code, r.stderr)
	}
	if r := runEnv(t, nil, nil, "snapshot", "list", "gs://x"); r.code != 2 || !strings.Contains(r.stderr, "gs://x") {
		t.Errorf("list gs://x: exit %d, %q", r.code, r.stderr)
	}
	if r := runEnv(t, nil, nil, "snapshot", "list", filepath.Join(t.TempDir(), "nothing")); r.code != 2 || !strings.Contains(r.stderr, "no such folder") {
		t.Errorf("list of a missing folder: exit %d, %q", r.code, r.stderr)
	}
	if r := runEnv(t, nil, []string{"VAULT_ADDR=https://127.0.0.1:1", "VAULT_TOKEN=x"}, "snapshot", "save"); r.code != 2 || !strings.Contains(r.stderr, "say where") {
		t.Errorf("save with VAULT_ADDR and no destination: exit %d, %q", r.code, r.stderr)
	}
}

// TestSnapshotCLICluster drives save, list and restore on a real cluster,
// through --dir and through VAULT_ADDR, into a folder, a file and S3.
func TestSnapshotCLICluster(t *testing.T) {
	needRoot(t, "a real cluster on loop devices")
	s3 := snaptest.StartS3(t)
	spec := cluster.DefaultSpec()
	spec.Nodes, spec.Subnet = 3, 64
	c := clustertest.Start(t, &spec)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, addrs, ca, token, err := c.Endpoints()
	if err != nil {
		t.Fatal(err)
	}
	var clients []*api.Client
	for _, n := range c.State.Nodes {
		cl, err := c.Client(n)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, cl)
	}
	root, err := snapshots.Active(ctx, clients...)
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().MountWithContext(ctx, "clisnap", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	kv := root.KVv2("clisnap")
	if _, err := kv.Put(ctx, "a", map[string]any{"v": "1"}); err != nil {
		t.Fatal(err)
	}
	dir := []string{"--dir", c.Dir}
	cli := func(env []string, args ...string) result {
		t.Helper()
		r := runEnv(t, nil, append(append([]string{}, s3.Env...), env...), args...)
		if r.code != 0 {
			t.Fatalf("vaultstorm %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r
	}

	// The cluster's default store, DIR/snapshots.
	r := cli(nil, append(dir, "snapshot", "save")...)
	if !strings.Contains(r.stdout, "saved vaultstorm-") || !strings.Contains(r.stdout, filepath.Join(c.Dir, "snapshots")) || !strings.Contains(r.stdout, "raft index") {
		t.Errorf("save: %q", r.stdout)
	}
	t.Logf("%s", strings.TrimSpace(r.stdout))
	if r := cli(nil, append(dir, "snapshot", "list")...); strings.Count(r.stdout, "vaultstorm-") != 1 {
		t.Errorf("list of the default store: %q", r.stdout)
	}

	// S3, three times, keeping two.
	for range 3 {
		cli(nil, append(dir, "snapshot", "save", "--retain", "2", s3.URL)...)
		time.Sleep(5 * time.Millisecond)
	}
	r = cli(nil, "snapshot", "list", s3.URL)
	if rows := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(rows) != 3 {
		t.Errorf("after 3 saves with --retain 2, list shows %d rows:\n%s", len(rows)-1, r.stdout)
	}

	// A file, through VAULT_ADDR (every node listed: the active one is used).
	env := []string{"VAULT_ADDR=" + strings.Join(addrs, ","), "VAULT_CACERT=" + ca, "VAULT_TOKEN=" + token}
	file := filepath.Join(t.TempDir(), "backup.snap")
	r = cli(env, "snapshot", "save", file)
	var info snapshots.Info
	if b, err := os.ReadFile(file + ".json"); err != nil || json.Unmarshal(b, &info) != nil || info.Index == 0 || info.Name != "backup.snap" {
		t.Errorf("%s.json: %v %+v", file, err, info)
	}
	if st, err := os.Stat(file); err != nil || st.Size() != info.Size {
		t.Errorf("%s: %v, want %d bytes", file, err, info.Size)
	}

	// Written after every snapshot: gone after any restore.
	if _, err := kv.Put(ctx, "b", map[string]any{"v": "after"}); err != nil {
		t.Fatal(err)
	}
	waitGone := func(what string) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			_, err := kv.Get(ctx, "b")
			if errors.Is(err, api.ErrSecretNotFound) {
				if s, err := kv.Get(ctx, "a"); err == nil && s.Data["v"] == "1" {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %s: clisnap/b still readable or clisnap/a not (%v)", what, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	r = cli(env, "snapshot", "restore", file)
	if !strings.Contains(r.stdout, "restore of backup.snap") || !strings.Contains(r.stdout, "accepted") {
		t.Errorf("restore: %q", r.stdout)
	}
	waitGone("restore of " + file)

	if _, err := kv.Put(ctx, "b", map[string]any{"v": "after"}); err != nil {
		t.Fatal(err)
	}
	cli(nil, append(dir, "snapshot", "restore", s3.URL)...)
	waitGone("restore of the newest in S3")

	// A file that no longer matches its .json is refused, naming it.
	b, _ := os.ReadFile(file)
	os.WriteFile(file, b[:len(b)-1], 0o600)
	if r := runEnv(t, nil, env, "snapshot", "restore", file); r.code != 2 || !strings.Contains(r.stderr, file) || !strings.Contains(r.stderr, "sha256") {
		t.Errorf("restore of a changed file: exit %d %q", r.code, r.stderr)
	}
}
