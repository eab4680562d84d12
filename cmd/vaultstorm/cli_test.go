package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/cluster/clustertest"
	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/load/fakevault/fvtest"
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
	fvtest.RemoveBin()
	os.Exit(code)
}

func vaultBin(t *testing.T) string { return clustertest.VaultBin(t) }

// needRoot fails the test when not root under CI (a skipped test must
// never count as a pass there) and skips it elsewhere, saying why.
func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	msg := "needs root: " + why
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set: a test that cannot run fails)")
	}
	t.Skip(msg)
}

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, cred *syscall.Credential, args ...string) result {
	t.Helper()
	return runEnv(t, cred, nil, args...)
}

// runEnv runs vaultstorm with env (KEY=VALUE, later ones win) on top of
// this process's environment, with VAULT_ADDR empty unless env sets it.
func runEnv(t *testing.T, cred *syscall.Credential, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.Env = append(append(os.Environ(), "VAULT_ADDR="), env...)
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
		{"bad storage", []string{"--vault-bin", vb, "--storage", "raid5"}, "use raid0, single (one disk, no RAID) or dir", nil},
		{"raid0 without root", []string{"--vault-bin", vb}, "needs root", &syscall.Credential{Uid: 65534, Gid: 65534}},
		{"external", []string{"--vault-bin", vb, "--provider", "external"}, "--inventory FILE", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.cred != nil {
				needRoot(t, "runs vaultstorm as uid 65534")
			}
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

// staleEnv is what a user's shell holds after `eval "$(vaultstorm env)"`
// for a cluster since taken down, plus a namespace, headers and settings
// that vault/api refuses: each used to make the harness's own clients fail
// ("seal vault: … Error loading CA File") or reach its clusters.
var staleEnv = []string{
	"VAULT_ADDR=https://127.0.0.1:1",
	"VAULT_CACERT=/nonexistent/.tls/root-ca.pem",
	"VAULT_TOKEN=bogus-token",
	"VAULT_NAMESPACE=bogus-namespace",
	"VAULT_HEADERS=not json",
	"VAULT_MAX_RETRIES=many",
	"VAULT_CLIENT_TIMEOUT=soon",
}

// without returns env with the named variables set empty (= unset for
// vaultstorm, which ignores empty VAULT_* values).
func without(env []string, names ...string) []string {
	out := slices.Clone(env)
	for _, n := range names {
		out = append(out, n+"=")
	}
	return out
}

// TestUserVaultEnv: the harness's own clusters ignore a user's VAULT_*
// variables (up, status, load and verify against the cluster directory),
// no Vault process it starts inherits them, and load/verify read them on
// purpose when VAULT_ADDR is set.
func TestUserVaultEnv(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a real cluster")
	}
	vb := vaultBin(t)
	dir := filepath.Join(t.TempDir(), "cluster")
	t.Cleanup(func() { run(t, nil, "down", "--dir", dir) })

	r := runEnv(t, nil, staleEnv, "up", "--dir", dir, "--vault-bin", vb, "--nodes", "3", "--subnet", "62")
	if r.code != 0 {
		t.Fatalf("up with a stale VAULT_* environment: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runEnv(t, nil, staleEnv, "status", "--dir", dir, "--json")
	var st struct {
		Healthy bool   `json:"healthy"`
		Leader  string `json:"leader"`
		Nodes   []struct {
			Name    string `json:"name"`
			APIAddr string `json:"api_addr"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); r.code != 0 || err != nil {
		t.Fatalf("status with a stale VAULT_* environment: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if !st.Healthy || st.Leader == "" || len(st.Nodes) != 3 {
		t.Fatalf("status: healthy=%v leader=%q nodes=%d, want a healthy 3-node cluster", st.Healthy, st.Leader, len(st.Nodes))
	}
	c, err := cluster.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.State.Seal == nil {
		t.Fatal("state has no seal node")
	}
	for _, n := range append(c.State.Nodes, c.State.Seal) {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", n.PID))
		if err != nil {
			t.Fatalf("environment of %s (pid %d): %v", n.Name, n.PID, err)
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			if strings.HasPrefix(kv, "VAULT_") {
				t.Errorf("%s (pid %d) inherited %s", n.Name, n.PID, kv)
			}
		}
	}

	// load and verify against the cluster directory (no VAULT_ADDR): the
	// rest of the stale environment is ignored.
	out := filepath.Join(t.TempDir(), "load-dir")
	loadArgs := []string{"load", "--dir", dir, "--rate", "20", "--duration", "2s", "--keys", "20"}
	r = runEnv(t, nil, without(staleEnv, "VAULT_ADDR"), append(loadArgs, "--out", out)...)
	if r.code != 0 {
		t.Fatalf("load against the cluster directory with a stale VAULT_* environment: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r = runEnv(t, nil, without(staleEnv, "VAULT_ADDR"), "verify", "--dir", dir, out); r.code != 0 {
		t.Errorf("verify against the cluster directory: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// VAULT_ADDR set: load reads VAULT_ADDR, VAULT_CACERT and VAULT_TOKEN on
	// purpose (and nothing else: the bad headers and retries stay ignored).
	var leaderAddr string
	for _, n := range st.Nodes {
		if n.Name == st.Leader {
			leaderAddr = n.APIAddr
		}
	}
	if leaderAddr == "" {
		t.Fatalf("no API address for the leader %q in status: %+v", st.Leader, st.Nodes)
	}
	tok, err := c.RootToken()
	if err != nil {
		t.Fatal(err)
	}
	userEnv := append(without(staleEnv, "VAULT_NAMESPACE"), "VAULT_ADDR="+leaderAddr, "VAULT_CACERT="+c.CAFile(), "VAULT_TOKEN="+tok)
	out = filepath.Join(t.TempDir(), "load-env")
	r = runEnv(t, nil, userEnv, append(loadArgs, "--out", out)...)
	if r.code != 0 {
		t.Fatalf("load with VAULT_ADDR=%s, VAULT_CACERT and VAULT_TOKEN of the cluster: exit %d\n%s%s", leaderAddr, r.code, r.stdout, r.stderr)
	}
	// VAULT_ADDR names one node; the other two come from the cluster
	// itself (raft configuration, sys/ha-status), not from its directory.
	var meta struct{ Nodes int }
	if b, err := os.ReadFile(filepath.Join(out, "meta.json")); err != nil || json.Unmarshal(b, &meta) != nil || meta.Nodes != 3 {
		t.Errorf("load with VAULT_ADDR: meta.json nodes=%d (%v), want the 3 nodes discovered from the one VAULT_ADDR names", meta.Nodes, err)
	}
	if strings.Contains(r.stderr, "using only the nodes VAULT_ADDR names") {
		t.Errorf("discovery failed with the root token:\n%s", r.stderr)
	}
	if r = runEnv(t, nil, userEnv, "verify", out); r.code != 0 {
		t.Errorf("verify with VAULT_ADDR: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The README's `eval "$(vaultstorm env)"` then `load --target node2`:
	// any node by name, though VAULT_ADDR names only the leader.
	var follower string
	for _, n := range st.Nodes {
		if n.Name != st.Leader {
			follower = n.Name
		}
	}
	r = runEnv(t, nil, userEnv, append(loadArgs, "--target", follower, "--out", filepath.Join(t.TempDir(), "load-follower"))...)
	if r.code != 0 {
		t.Errorf("load --target %s with VAULT_ADDR=%s (the leader): exit %d\n%s%s", follower, leaderAddr, r.code, r.stdout, r.stderr)
	}
	// --target active follows a leader change to a node VAULT_ADDR does
	// not name: the leader (VAULT_ADDR's only node) is killed 2s into a
	// 12s load. Following, the load fails for the election (2-4s here);
	// stuck on the dead node, it would fail for the last 10s.
	out = filepath.Join(t.TempDir(), "load-follow")
	follow := exec.Command(binary, append(loadArgs[:len(loadArgs)-4], "--duration", "12s", "--keys", "20", "--out", out)...)
	follow.Env = userEnv
	var fout strings.Builder
	follow.Stdout, follow.Stderr = &fout, &fout
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if r := run(t, nil, "node", "kill", st.Leader, "--dir", dir); r.code != 0 {
		t.Fatalf("node kill %s: exit %d\n%s%s", st.Leader, r.code, r.stdout, r.stderr)
	}
	follow.Wait()
	var sum rundir.Summary
	if err := rundir.ReadJSON(out, rundir.SummaryFile, &sum); err != nil {
		t.Fatalf("load following the leader: %v\n%s", err, fout.String())
	}
	var n, e int64
	for _, op := range sum.Ops {
		n, e = n+op.Count, e+op.Errors
	}
	if n == 0 || e*2 > n || sum.LostWrites != 0 {
		t.Errorf("load --target active across the leader's kill: %d of %d requests failed, %d lost: want under half failed (the new leader followed)\n%s", e, n, sum.LostWrites, fout.String())
	}
	t.Logf("leader %s killed under load: %d of %d requests failed\n%s", st.Leader, e, n, fout.String())

	// A bad VAULT_CACERT or a namespace the load cannot honour, on purpose:
	// one clear line naming the variable, exit 2, no run directory made.
	for _, c := range []struct{ name, set, want string }{
		{"missing CA file", "VAULT_CACERT=/nonexistent/ca.pem", "VAULT_CACERT"},
		{"not a PEM file", "VAULT_CACERT=" + c.TokenFile(), "VAULT_CACERT"},
		{"namespace", "VAULT_NAMESPACE=team1", "VAULT_NAMESPACE"},
	} {
		out := filepath.Join(t.TempDir(), "load-bad")
		r := runEnv(t, nil, append(slices.Clone(userEnv), c.set), append(loadArgs, "--out", out)...)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code != 2 || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
			t.Errorf("%s (%s): exit %d, stderr %q: want exit 2 and one line naming %s", c.name, c.set, r.code, r.stderr, c.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: run directory %s made anyway", c.name, out)
		}
	}
}

// TestDockerCLI drives the docker provider through the CLI: up (3 nodes),
// status --json with container IDs, node pause/resume, down; then an up
// SIGKILLed half-way, whose containers, network, arrays and loop devices
// the next down must remove anyway, from its labels and state.json.
func TestDockerCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a real cluster in containers")
	}
	needRoot(t, "loop devices and the Docker engine")
	vb := vaultBin(t)
	dir := filepath.Join(t.TempDir(), "cluster")
	t.Cleanup(func() { run(t, nil, "down", "--dir", dir) })
	subnet := fmt.Sprint(60 + os.Getpid()%30)
	r := run(t, nil, "up", "--dir", dir, "--vault-bin", vb, "--nodes", "3", "--provider", "docker", "--subnet", subnet)
	if r.code != 0 {
		t.Fatalf("up --provider docker: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, nil, "status", "--dir", dir, "--json")
	var st struct {
		Healthy  bool   `json:"healthy"`
		Provider string `json:"provider"`
		Nodes    []struct {
			Name      string `json:"name"`
			APIAddr   string `json:"api_addr"`
			Container string `json:"container"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s%s", err, r.stdout, r.stderr)
	}
	if !st.Healthy || st.Provider != "docker" || len(st.Nodes) != 3 {
		t.Errorf("status: healthy=%v provider=%q nodes=%d", st.Healthy, st.Provider, len(st.Nodes))
	}
	for _, n := range st.Nodes {
		if n.Container == "" || !strings.HasPrefix(n.APIAddr, "https://10.213."+subnet+".") {
			t.Errorf("status of %s: container %q, address %s", n.Name, n.Container, n.APIAddr)
		}
	}
	if r = run(t, nil, "status", "--dir", dir); !strings.Contains(r.stdout, "CONTAINER") {
		t.Errorf("status table has no CONTAINER column:\n%s", r.stdout)
	}
	if r = run(t, nil, "node", "pause", "node2", "--dir", dir); r.code != 0 {
		t.Fatalf("node pause: exit %d: %s", r.code, r.stderr)
	}
	if out, _ := exec.Command("docker", "inspect", "-f", "{{.State.Status}}", st.Nodes[1].Container).Output(); strings.TrimSpace(string(out)) != "paused" {
		t.Errorf("after node pause node2 its container is %q", strings.TrimSpace(string(out)))
	}
	if r = run(t, nil, "node", "resume", "node2", "--dir", dir); r.code != 0 {
		t.Fatalf("node resume: exit %d: %s", r.code, r.stderr)
	}
	if r = run(t, nil, "down", "--dir", dir); r.code != 0 {
		t.Fatalf("down: exit %d: %s", r.code, r.stderr)
	}
	dockerNothingLeft(t, dir)

	// SIGKILL in the middle of up: after the first container exists.
	cmd := exec.Command(binary, "up", "--dir", dir, "--vault-bin", vb, "--nodes", "3", "--provider", "docker", "--subnet", subnet)
	cmd.Env = append(os.Environ(), "VAULT_ADDR=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	for i := 0; i < 600; i++ {
		out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label="+cluster.LabelCluster+"="+abs).Output()
		if len(strings.Fields(string(out))) >= 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label="+cluster.LabelCluster+"="+abs).Output(); len(strings.Fields(string(out))) == 0 {
		t.Fatalf("no container of the killed up to clean: the test did not test down")
	}
	if r = run(t, nil, "down", "--dir", dir); r.code != 0 {
		t.Fatalf("down after a SIGKILLed up: exit %d: %s", r.code, r.stderr)
	}
	dockerNothingLeft(t, dir)
}

// dockerNothingLeft: no container or network with the cluster's label, no
// mount or loop device under its directory, no directory.
func dockerNothingLeft(t *testing.T, dir string) {
	t.Helper()
	abs, _ := filepath.Abs(dir)
	for _, what := range [][]string{{"ps", "-a"}, {"network", "ls"}} {
		out, err := exec.Command("docker", append(what, "-q", "--filter", "label="+cluster.LabelCluster+"="+abs)...).Output()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("docker %s: left %q (%v)", what[0], strings.TrimSpace(string(out)), err)
		}
	}
	if b, _ := os.ReadFile("/proc/self/mounts"); strings.Contains(string(b), abs) {
		t.Errorf("mounts under %s left", abs)
	}
	if out, _ := exec.Command("losetup", "--list", "--noheadings", "--output", "BACK-FILE").Output(); strings.Contains(string(out), abs) {
		t.Errorf("loop devices under %s left:\n%s", abs, out)
	}
	if _, err := os.Stat(abs); err == nil {
		t.Errorf("%s left", abs)
	}
}
