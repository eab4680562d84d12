package runbucket

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaultstorm/vaultstorm/snapshots/snaptest"
)

func writeRun(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// suite uploads two runs and an unfinished folder to the bucket at u,
// reads them back, and checks what must be refused.
func suite(t *testing.T, u string) {
	ctx := context.Background()
	root := t.TempDir()
	runs := map[string]map[string]string{
		"shard-0-of-2": {"meta.json": `{"shard":{"index":0}}`, "ledger.jsonl": "a\nb\n", "metrics/node1.prom.jsonl": "m\n"},
		"shard-1-of-2": {"meta.json": `{"shard":{"index":1}}`, "ledger.jsonl": "c\n", ".summary.json.123": "temporary"},
	}
	for name, files := range runs {
		writeRun(t, filepath.Join(root, name), files)
		n, err := Upload(ctx, u, filepath.Join(root, name), name)
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		for f := range files {
			if !strings.HasPrefix(f, ".") {
				want++
			}
		}
		if n != want {
			t.Errorf("%s: %d files uploaded, want %d (no temporary files)", name, n, want)
		}
	}
	// A second upload into a folder that holds a run is refused.
	if _, err := Upload(ctx, u, filepath.Join(root, "shard-0-of-2"), "shard-0-of-2"); err == nil || !strings.Contains(err.Error(), "already holds a run") {
		t.Errorf("upload over a run: %v", err)
	}
	// A directory that is not a run is refused before anything is written.
	writeRun(t, filepath.Join(root, "junk"), map[string]string{"x": "y"})
	if _, err := Upload(ctx, u, filepath.Join(root, "junk"), "junk"); err == nil || !strings.Contains(err.Error(), "not a run directory") {
		t.Errorf("upload of a non-run: %v", err)
	}

	into := filepath.Join(t.TempDir(), "shards")
	dirs, err := Download(ctx, u, into)
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != 2 || filepath.Base(dirs[0]) != "shard-0-of-2" || filepath.Base(dirs[1]) != "shard-1-of-2" {
		t.Fatalf("downloaded %v, want the two complete runs (junk has no meta.json)", dirs)
	}
	for _, d := range dirs {
		for name, body := range runs[filepath.Base(d)] {
			got, err := os.ReadFile(filepath.Join(d, filepath.FromSlash(name)))
			if strings.HasPrefix(name, ".") {
				if err == nil {
					t.Errorf("%s: temporary file %s was copied", d, name)
				}
				continue
			}
			if err != nil || string(got) != body {
				t.Errorf("%s/%s: %q (%v), want %q", d, name, got, err, body)
			}
		}
	}
}

func TestBucketFile(t *testing.T) {
	u := (&url.URL{Scheme: "file", Path: filepath.ToSlash(t.TempDir())}).String() + "?prefix=nightly-42/"
	suite(t, u)
	if _, err := Download(context.Background(), strings.Replace(u, "nightly-42", "other", 1), t.TempDir()); err == nil || !strings.Contains(err.Error(), "no run folder") {
		t.Errorf("empty prefix: %v", err)
	}
}

// TestBucketS3 runs the same against a real S3 server process (bin/s3server).
func TestBucketS3(t *testing.T) {
	s3 := snaptest.StartS3(t)
	suite(t, s3.URL+"&prefix=nightly-42/")
}
