package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vaultstorm/vaultstorm/cluster/clustertest"
)

// binary is vaultstorm built once for the CLI tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vaultstorm-cli-")
	if err != nil {
		panic(err)
	}
	os.Chmod(dir, 0o755)
	binary = filepath.Join(dir, "vaultstorm")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func vaultBin(t *testing.T) string { return clustertest.VaultBin(t) }

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, cred *syscall.Credential, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.Env = append(os.Environ(), "VAULT_ADDR=")
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, o.String(), e.String()}
}

// TestUpBadInput: each mistake is one line naming what to do, a non-zero
// exit, and nothing left behind.
func TestUpBadInput(t *testing.T) {
	vb := vaultBin(t)
	cases := []struct {
		name string
		args []string
		want string
		cred *syscall.Credential
	}{
		{"missing vault binary", []string{"--vault-bin", "/nonexistent/vault"}, "--vault-bin /nonexistent/vault", nil},
		{"not a vault binary", []string{"--vault-bin", "/bin/true"}, "is this a vault binary", nil},
		{"even node count", []string{"--vault-bin", vb, "--nodes", "4"}, "odd number", nil},
		{"disk too small", []string{"--vault-bin", vb, "--disk-size", "16MiB"}, "too small", nil},
		{"bad disk size", []string{"--vault-bin", vb, "--disk-size", "lots"}, "--disk-size", nil},
		{"bad storage", []string{"--vault-bin", vb, "--storage", "raid5"}, "use raid0 or dir", nil},
		{"raid0 without root", []string{"--vault-bin", vb}, "needs root", &syscall.Credential{Uid: 65534, Gid: 65534}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cluster")
			if c.cred != nil {
				os.Chmod(filepath.Dir(dir), 0o777)
				os.Chmod(filepath.Dir(filepath.Dir(dir)), 0o777)
			}
			r := run(t, c.cred, append([]string{"up", "--dir", dir}, c.args...)...)
			if r.code == 0 {
				t.Fatalf("exit 0, want failure; stdout:\n%s", r.stdout)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], c.want) {
				t.Errorf("stderr %q: want one line containing %q", r.stderr, c.want)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("%s was left behind", dir)
			}
		})
	}
}

// TestUpTwiceStatusEnvDown runs a real cluster through the CLI: up, up
// again (refused), status --json, env, down.
func TestUpTwiceStatusEnvDown(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a real cluster")
	}
	vb := vaultBin(t)
	dir := filepath.Join(t.TempDir(), "cluster")
	t.Cleanup(func() { run(t, nil, "down", "--dir", dir) })
	r := run(t, nil, "up", "--dir", dir, "--vault-bin", vb, "--nodes", "3")
	if r.code != 0 {
		t.Fatalf("up: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, nil, "up", "--dir", dir, "--vault-bin", vb, "--nodes", "3")
	if r.code == 0 || !strings.Contains(r.stderr, "already up") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("second up: exit %d, stderr %q: want a one-line refusal", r.code, r.stderr)
	}
	r = run(t, nil, "status", "--dir", dir, "--json")
	if r.code != 0 {
		t.Fatalf("status: exit %d: %s", r.code, r.stderr)
	}
	var st struct {
		Healthy bool   `json:"healthy"`
		Leader  string `json:"leader"`
		Nodes   []struct {
			Name, APIAddr, State string
			PID                  int
			Voter                bool
			Storage              struct {
				Kind    string
				Devices int
				Mount   string
			}
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, r.stdout)
	}
	if !st.Healthy || st.Leader == "" || len(st.Nodes) != 3 {
		t.Errorf("status: healthy=%v leader=%q nodes=%d", st.Healthy, st.Leader, len(st.Nodes))
	}
	for _, n := range st.Nodes {
		if n.PID == 0 || !n.Voter || n.Storage.Devices != 2 || !strings.HasSuffix(n.Storage.Kind, "raid0") {
			t.Errorf("status of %s: %+v", n.Name, n)
		}
	}
	r = run(t, nil, "env", "--dir", dir)
	tok, _ := os.ReadFile(filepath.Join(dir, "secrets", "root-token"))
	if r.code != 0 || !strings.Contains(r.stdout, "export VAULT_ADDR=") || strings.Contains(r.stdout, strings.TrimSpace(string(tok))) {
		t.Errorf("env: exit %d, output %q: want export lines that never contain the token", r.code, r.stdout)
	}
	// The env output must work in a shell: `vault status` through it.
	sh := exec.Command("sh", "-c", `eval "$1"; "$2" status -format=json >/dev/null`, "sh", r.stdout, vb)
	if out, err := sh.CombinedOutput(); err != nil {
		t.Errorf("eval of env output, then vault status: %v\n%s", err, out)
	}
	r = run(t, nil, "down", "--dir", dir)
	if r.code != 0 {
		t.Fatalf("down: exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("down left %s", dir)
	}
}
