// Package snaptest helps tests of snapshot stores: a real S3-compatible
// server process on a loopback port (bin/s3server from `make s3`), and
// archives shaped like Vault's raft snapshots.
package snaptest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// S3 is a running S3 server with one empty bucket.
type S3 struct {
	// URL opens the bucket with gocloud.dev/blob (snapshots.OpenStore).
	URL      string
	Endpoint string // http://127.0.0.1:PORT
	Bucket   string
	// Env is what a child process needs to reach it (the credentials); the
	// test process has it set already.
	Env []string
	PID int
}

// Credentials the tests use; the test server accepts any.
const (
	AccessKey = "vaultstorm"
	SecretKey = "vaultstorm-secret"
)

// ServerBin finds the S3 server for tests: VAULTSTORM_S3_BIN, else
// bin/s3server at the repository root (`make s3`).
func ServerBin(t testing.TB) string {
	t.Helper()
	if b := os.Getenv("VAULTSTORM_S3_BIN"); b != "" {
		return b
	}
	_, file, _, _ := runtime.Caller(0)
	b := filepath.Join(filepath.Dir(file), "..", "..", "bin", "s3server")
	if _, err := os.Stat(b); err != nil {
		t.Fatalf("no S3 server at %s: run `make s3` or set VAULTSTORM_S3_BIN", b)
	}
	return b
}

// StartS3 starts the S3 server on a free 127.0.0.1 port with its data in a
// temporary folder, creates a bucket, sets the AWS credentials in the
// test's environment (t.Setenv), and stops the server when the test ends:
// SIGTERM to its PID, SIGKILL after 5 s, then its folder is removed.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: starts an S3 server process (run without -short)")
	}
	bin := ServerBin(t)
	dir, err := os.MkdirTemp("", "vaultstorm-s3-")
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	os.Mkdir(data, 0o700)
	cmd := exec.Command(bin, serverArgs(data, port)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+AccessKey, "AWS_SECRET_ACCESS_KEY="+SecretKey)
	if err := cmd.Start(); err != nil {
		logf.Close()
		os.RemoveAll(dir)
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s := &S3{
		Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port),
		Bucket:   "vaultstorm-test",
		PID:      cmd.Process.Pid,
	}
	t.Cleanup(func() {
		stop(t, cmd.Process, exited)
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("S3 server log (end):\n%s", tail(string(b), 30))
			}
		}
		os.RemoveAll(dir)
	})
	s.URL = fmt.Sprintf("s3://%s?endpoint=%s&region=us-east-1&use_path_style=true", s.Bucket, s.Endpoint)
	s.Env = []string{
		"AWS_ACCESS_KEY_ID=" + AccessKey, "AWS_SECRET_ACCESS_KEY=" + SecretKey,
		// Never ask a cloud's metadata service for credentials or a region.
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + os.DevNull, "AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
	}
	for _, kv := range s.Env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_SESSION_TOKEN", "")

	// The bucket, once the server answers (SeaweedFS takes seconds).
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for {
		select {
		case <-exited:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("S3 server %s exited at start-up:\n%s", bin, tail(string(b), 30))
		default:
		}
		code, body, err := put(s.Endpoint + "/" + s.Bucket)
		if err == nil && code/100 == 2 {
			return s
		}
		last = fmt.Sprintf("%d %s %v", code, body, err)
		if time.Now().After(deadline) {
			t.Fatalf("S3 server on %s: no bucket after 60s (last: %s)", s.Endpoint, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// serverArgs are tools/s3's flags (s3server: gofakes3 serving a folder).
func serverArgs(dir string, port int) []string {
	return []string{"-addr", fmt.Sprintf("127.0.0.1:%d", port), "-dir", dir, "-quiet"}
}

func put(url string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPut, url, nil)
	if err != nil {
		return 0, "", err
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

// stop sends SIGTERM, then SIGKILL after 5 s, and waits for the exit.
func stop(t testing.TB, p *os.Process, exited <-chan struct{}) {
	p.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return
	case <-time.After(5 * time.Second):
	}
	p.Signal(syscall.SIGKILL)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Errorf("S3 server pid %d still running 10s after SIGKILL", p.Pid)
	}
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Alive reports whether the process pid still exists (not a zombie).
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// state is the field after the parenthesised command name
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// FakeSnapshot builds an archive shaped like a Vault raft snapshot (what
// github.com/hashicorp/raft-snapshot writes): gzip(tar(meta.json,
// state.bin, SHA256SUMS[, SHA256SUMS.sealed])) with stateSize bytes of
// pseudo-random state, seeded by index and term.
func FakeSnapshot(index, term uint64, stateSize int, sealed bool) []byte {
	state := make([]byte, stateSize)
	r := rand.New(rand.NewPCG(index, term))
	for i := range state {
		state[i] = byte(r.Uint32())
	}
	meta, _ := json.Marshal(map[string]any{
		"Version": 1, "ID": fmt.Sprintf("%d-%d-1700000000000", term, index), "Index": index, "Term": term,
		"Peers":              nil,
		"Configuration":      map[string]any{"Servers": []map[string]any{{"Suffrage": 0, "ID": "node1", "Address": "127.0.64.11:8201"}}},
		"ConfigurationIndex": 1, "Size": stateSize,
	})
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b))})
		tw.Write(b)
	}
	mh, sh := sha256.Sum256(meta), sha256.Sum256(state)
	sums := fmt.Sprintf("%x  meta.json\n%x  state.bin\n", mh, sh)
	add("meta.json", meta)
	add("state.bin", state)
	add("SHA256SUMS", []byte(sums))
	if sealed {
		add("SHA256SUMS.sealed", []byte("sealed:"+sums))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}
