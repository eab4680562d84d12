package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/reports"
	"github.com/vaultstorm/vaultstorm/snapshots/snaptest"
)

// TestShardBadInput: a bad --shard is one line naming the flag, exit 2,
// before anything is sent (no cluster needed).
func TestShardBadInput(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--shard", "5/4"}, `--shard "5/4": the index is 0-based: 0 to 3`},
		{[]string{"--shard", "4/4"}, `--shard "4/4": the index is 0-based`},
		{[]string{"--shard", "0/0"}, `--shard "0/0": N (the number of shards) must be at least 1`},
		{[]string{"--shard", "x/y"}, `--shard "x/y": want I/N`},
		{[]string{"--shard", "-1/4"}, `--shard "-1/4": the index is 0-based`},
		{[]string{"--shard", "2"}, `--shard "2": want I/N`},
		{[]string{"--shard", "0/2", "--closed", "4"}, "--shard cannot be combined with --closed"},
		{[]string{"--run-id", "x"}, "--run-id names a sharded run: give --shard I/N too"},
		{[]string{"--shard", "0/2", "--run-id", "a b"}, `--run-id "a b"`},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			r := run(t, nil, append([]string{"load", "--dir", t.TempDir(), "--out", dir, "--duration", "1s"}, c.args...)...)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if r.code != 2 || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
				t.Errorf("exit %d, stderr %q: want exit 2 and one line containing %q", r.code, r.stderr, c.want)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("%s was created", dir)
			}
		})
	}
	r := run(t, nil, "load", "--help")
	for _, want := range []string{"--shard", "0-based", "JOB_COMPLETION_INDEX", "NOMAD_ALLOC_INDEX", "WHOLE run's rate"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("load --help does not explain %q", want)
		}
	}
}

// unionHist adds every shard's recorded intervals of op, read with
// hdrhistogram-go's own log reader (not the merge's code).
func unionHist(t *testing.T, dirs []string, op string) *hdr.Histogram {
	t.Helper()
	u := hdr.New(1000, int64(60*time.Second), 3)
	for _, d := range dirs {
		f, err := os.Open(filepath.Join(d, rundir.HistogramsFile))
		if err != nil {
			t.Fatal(err)
		}
		lr := hdr.NewHistogramLogReader(f)
		for {
			h, err := lr.NextIntervalHistogram()
			if errors.Is(err, io.EOF) || (err == nil && h == nil) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", d, err)
			}
			if h.Tag() == op {
				if dropped := u.Merge(h); dropped != 0 {
					t.Fatalf("%d dropped", dropped)
				}
			}
		}
		f.Close()
	}
	return u
}

// runShards starts n 'load --shard i/n' processes at once and waits for
// them; it returns their run directories.
func runShards(t *testing.T, root string, n int, env []string, extra ...string) []string {
	t.Helper()
	dirs := make([]string, n)
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		dirs[i] = filepath.Join(root, fmt.Sprintf("shard-%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := append([]string{"load", "--shard", fmt.Sprintf("%d/%d", i, n), "--run-id", "test-run", "--out", dirs[i]}, extra...)
			results[i] = runEnv(t, nil, env, args...)
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Fatalf("shard %d/%d: exit %d\n%s%s", i, n, r.code, r.stdout, r.stderr)
		}
		var m rundir.Meta
		if err := rundir.ReadJSON(dirs[i], rundir.MetaFile, &m); err != nil {
			t.Fatal(err)
		}
		if m.Shard == nil || m.Shard.Index != i || m.Shard.Count != n || m.Shard.RunID != "test-run" {
			t.Errorf("shard %d: meta.json shard %+v", i, m.Shard)
		}
	}
	return dirs
}

// checkMerged asserts what a merge must give: per op, the count and errors
// of the shards summed and the percentiles of the union of their
// histograms; the ledger the union of theirs.
func checkMerged(t *testing.T, shardDirs []string, out string) rundir.Summary {
	t.Helper()
	var sum rundir.Summary
	if err := rundir.ReadJSON(out, rundir.SummaryFile, &sum); err != nil {
		t.Fatal(err)
	}
	want := map[string]rundir.OpStats{}
	var acked int64
	for _, d := range shardDirs {
		var s rundir.Summary
		if err := rundir.ReadJSON(d, rundir.SummaryFile, &s); err != nil {
			t.Fatal(err)
		}
		for op, st := range s.Ops {
			w := want[op]
			w.Count += st.Count
			w.Errors += st.Errors
			want[op] = w
		}
		acked += s.AckedWrites
	}
	if len(sum.Ops) != len(want) {
		t.Errorf("merged ops %v, shards' %v", sum.Ops, want)
	}
	for op, w := range want {
		got := sum.Ops[op]
		if got.Count != w.Count || got.Errors != w.Errors {
			t.Errorf("%s: merged count %d errors %d, shards' sum %d, %d", op, got.Count, got.Errors, w.Count, w.Errors)
		}
		u := unionHist(t, shardDirs, op)
		if u.TotalCount() != w.Count {
			t.Errorf("%s: the shards' histograms hold %d values, their summaries %d", op, u.TotalCount(), w.Count)
		}
		if p99 := float64(u.ValueAtQuantile(99)) / 1e6; got.P99 != p99 {
			t.Errorf("%s: merged p99 %v ms, p99 of the union of the shards' histograms %v ms", op, got.P99, p99)
		}
		t.Logf("%s: %d requests, %d errors, p99 %.3f ms (union %.3f ms)", op, got.Count, got.Errors, got.P99, float64(u.ValueAtQuantile(99))/1e6)
	}
	if sum.AckedWrites != acked {
		t.Errorf("merged acknowledged writes %d, shards' sum %d", sum.AckedWrites, acked)
	}
	for _, f := range []string{reports.HTMLFile, reports.MarkdownFile, reports.JUnitFile, reports.MergeFile} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	return sum
}

// TestShardMergeFake: two shards against the fake Vault (a process serving
// KV v2), merged; then a merge with no cluster to read back from says
// NOT VERIFIED and exits 2, never "0 lost".
func TestShardMergeFake(t *testing.T) {
	env := fakeVaultEnv(t, "2000")
	root := t.TempDir()
	dirs := runShards(t, root, 2, env, "--rate", "100", "--duration", "2s", "--keys", "20")
	out := filepath.Join(root, "merged")
	r := runEnv(t, nil, env, "merge", "--out", out, dirs[1], dirs[0])
	if r.code != 0 {
		t.Fatalf("merge: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	sum := checkMerged(t, dirs, out)
	if !sum.Verified || sum.LostWrites != 0 || sum.TargetRate != 100 {
		t.Errorf("verified %v lost %d target %v", sum.Verified, sum.LostWrites, sum.TargetRate)
	}
	for _, want := range []string{"merged 2 shards of run test-run", "shard 0/2 " + dirs[0], "all ops:", "LOST WRITES: 0", "report: " + filepath.Join(out, "report.html")} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("merge output lacks %q:\n%s", want, r.stdout)
		}
	}

	// No cluster: VAULT_ADDR unset and no 'up' cluster in --dir.
	out2 := filepath.Join(root, "merged-unverified")
	r = run(t, nil, "merge", "--dir", filepath.Join(root, "no-cluster"), "--out", out2, dirs[0], dirs[1])
	if r.code != 2 || !strings.Contains(r.stderr, "NOT VERIFIED") {
		t.Errorf("merge without a cluster: exit %d, stderr %q: want 2 and NOT VERIFIED", r.code, r.stderr)
	}
	if strings.Contains(r.stdout, "LOST WRITES: 0") {
		t.Errorf("an unverified merge printed LOST WRITES: 0:\n%s", r.stdout)
	}
	var s2 rundir.Summary
	if err := rundir.ReadJSON(out2, rundir.SummaryFile, &s2); err != nil || s2.Verified {
		t.Errorf("unverified merge's summary: verified %v (%v)", s2.Verified, err)
	}
	if md, _ := os.ReadFile(filepath.Join(out2, reports.MarkdownFile)); !strings.Contains(string(md), "NOT VERIFIED") {
		t.Errorf("summary.md of an unverified merge does not say NOT VERIFIED:\n%s", md)
	}

	// Refused: a shard missing, and the same shard twice.
	r = run(t, nil, "merge", "--out", filepath.Join(root, "m3"), dirs[0])
	if r.code != 2 || !strings.Contains(r.stderr, "shard(s) 1 of 2 (0-based) missing") {
		t.Errorf("one of two shards: exit %d, %q", r.code, r.stderr)
	}
	r = run(t, nil, "merge", "--out", filepath.Join(root, "m4"), dirs[0], dirs[0])
	if r.code != 2 || !strings.Contains(r.stderr, "shard 0/2 again") {
		t.Errorf("the same shard twice: exit %d, %q", r.code, r.stderr)
	}
}

// TestShardMergeCluster: four shards of 50 req/s each (--rate 200 in
// total) against a real three-node cluster at once, merged and verified.
func TestShardMergeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a real cluster")
	}
	vb := vaultBin(t)
	root := t.TempDir()
	cdir := filepath.Join(root, "cluster")
	t.Cleanup(func() {
		if r := run(t, nil, "down", "--dir", cdir); r.code != 0 {
			t.Errorf("down: exit %d: %s", r.code, r.stderr)
		}
		if b, _ := exec.Command("pgrep", "-f", cdir).Output(); len(b) > 0 {
			t.Errorf("processes left: %s", b)
		}
	})
	t0 := time.Now()
	r := run(t, nil, "up", "--dir", cdir, "--vault-bin", vb, "--nodes", "3", "--storage", "dir", "--subnet", "87")
	if r.code != 0 {
		t.Fatalf("up: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("up: %s", time.Since(t0).Round(100*time.Millisecond))
	t1 := time.Now()
	env := []string{"VAULTSTORM_DIR=" + cdir}
	dirs := runShards(t, root, 4, env, "--rate", "200", "--duration", "5s", "--keys", "50")
	t.Logf("4 shards: %s", time.Since(t1).Round(100*time.Millisecond))
	for i, d := range dirs {
		var s rundir.Summary
		rundir.ReadJSON(d, rundir.SummaryFile, &s)
		if s.TargetRate != 50 || !s.Verified || s.LostWrites != 0 {
			t.Errorf("shard %d: target %v req/s (want 50), verified %v, lost %d", i, s.TargetRate, s.Verified, s.LostWrites)
		}
	}
	out := filepath.Join(root, "merged")
	t2 := time.Now()
	r = runEnv(t, nil, env, "merge", "--out", out, dirs[0], dirs[1], dirs[2], dirs[3])
	t.Logf("merge: %s\n%s%s", time.Since(t2).Round(100*time.Millisecond), r.stdout, r.stderr)
	if r.code != 0 {
		t.Fatalf("merge: exit %d", r.code)
	}
	sum := checkMerged(t, dirs, out)
	if !sum.Verified || sum.LostWrites != 0 || sum.KeysToRead == 0 || sum.KeysRead != sum.KeysToRead {
		t.Errorf("merged ledger: verified %v, lost %d, keys read %d of %d", sum.Verified, sum.LostWrites, sum.KeysRead, sum.KeysToRead)
	}
	if sum.TargetRate != 200 {
		t.Errorf("merged target rate %v, want 200", sum.TargetRate)
	}
	if !strings.Contains(r.stdout, "LOST WRITES: 0") || !strings.Contains(r.stdout, ": PASS") {
		t.Errorf("merge output: want LOST WRITES: 0 and PASS")
	}
}

// TestShardManifests: the example Nomad job parses as HCL and both
// examples pass the 0-based index to --shard (the YAML is checked by hand:
// the harness has no YAML parser of its own).
func TestShardManifests(t *testing.T) {
	b, err := os.ReadFile("../../examples/shards/nomad.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if _, diags := hclsyntax.ParseConfig(b, "nomad.hcl", hcl.InitialPos); diags.HasErrors() {
		t.Fatal(diags)
	}
	if !strings.Contains(string(b), `"${NOMAD_ALLOC_INDEX}/4"`) || !strings.Contains(string(b), "count = 4") {
		t.Error("nomad.hcl: want count = 4 and --shard ${NOMAD_ALLOC_INDEX}/4")
	}
	k, err := os.ReadFile("../../examples/shards/k8s-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"completionMode: Indexed", "completions: 4", "parallelism: 4", "--shard=$(JOB_COMPLETION_INDEX)/4"} {
		if !strings.Contains(string(k), want) {
			t.Errorf("k8s-job.yaml lacks %q", want)
		}
	}
}

// TestShardUploadMergeS3: two shards against the fake Vault upload their
// run directories to a real S3 server process; merge reads them back from
// the bucket URL prefix.
func TestShardUploadMergeS3(t *testing.T) {
	s3 := snaptest.StartS3(t)
	env := append(fakeVaultEnv(t, "2000"), s3.Env...)
	bucket := s3.URL + "&prefix=run-7/"
	root := t.TempDir()
	dirs := runShards(t, root, 2, env, "--rate", "60", "--duration", "2s", "--keys", "10", "--upload", bucket)
	out := filepath.Join(root, "merged")
	r := runEnv(t, nil, env, "merge", "--out", out, bucket)
	if r.code != 0 {
		t.Fatalf("merge %s: exit %d\n%s%s", bucket, r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "2 run folder(s)") {
		t.Errorf("merge stderr %q: want the folders it read", r.stderr)
	}
	fetched := []string{filepath.Join(out, "shards", "shard-0-of-2"), filepath.Join(out, "shards", "shard-1-of-2")}
	for i, d := range fetched {
		a, _ := os.ReadFile(filepath.Join(dirs[i], rundir.LedgerFile))
		b, err := os.ReadFile(filepath.Join(d, rundir.LedgerFile))
		if err != nil || len(a) == 0 || string(a) != string(b) {
			t.Errorf("%s: ledger not the uploaded one (%v)", d, err)
		}
	}
	sum := checkMerged(t, dirs, out)
	if !sum.Verified || sum.LostWrites != 0 {
		t.Errorf("verified %v lost %d", sum.Verified, sum.LostWrites)
	}
	// A shard uploaded again into the same place is refused, loudly.
	r = runEnv(t, nil, env, "load", "--shard", "0/2", "--rate", "20", "--duration", "1s", "--keys", "5", "--out", filepath.Join(root, "again"), "--upload", bucket)
	if r.code != 2 || !strings.Contains(r.stderr, "already holds a run") {
		t.Errorf("second upload of shard 0: exit %d, %q", r.code, r.stderr)
	}
}
