package main

import (
	"bufio"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/load/fakevault/fvtest"
)

// fakeVaultEnv runs cmd/fakevault serving at most capacity KV requests per
// second and returns the VAULT_* environment that points at it.
func fakeVaultEnv(t *testing.T, capacity string) []string {
	return fvtest.Start(t, "--capacity", capacity, "--for", "10m")
}

func readCapacity(t *testing.T, dir string) rundir.Capacity {
	t.Helper()
	var doc rundir.Capacity
	if err := rundir.ReadJSON(dir, rundir.CapacityFile, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestCapacityBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--factor", "1"}, "factor 1: must be above 1"},
		{[]string{"--storage", "single"}, "--storage shapes the clusters --nodes stands up"},
		{[]string{"--nodes", "4"}, "odd number"},
		{[]string{"--nodes", "3", "--storage", "raid5"}, "want raid0, single or dir"},
		{[]string{"--mix", "read=80,wrte=20"}, "--mix \"read=80,wrte=20\""},
		{[]string{"--slo-errors", "lots"}, "--slo-errors \"lots\""},
		{[]string{"--warmup", "1500ms"}, "whole seconds"},
		{[]string{"--dir", "/nonexistent/cluster"}, "vaultstorm up"},
		{[]string{"../../examples/nope.hcl"}, "nope"},
		{[]string{"../../scenarios/leader-kill.hcl"}, "has no capacity block"},
	} {
		r := run(t, nil, append([]string{"capacity"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("capacity %v: exit %d, stderr %q: want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	r := run(t, nil, "run", "../../examples/capacity-nightly.hcl")
	if r.code != 2 || !strings.Contains(r.stderr, "vaultstorm capacity ../../examples/capacity-nightly.hcl") {
		t.Errorf("run of a capacity file: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestCapacityCLIFake: the command against a Vault with a known knee
// (300 req/s), through VAULT_ADDR: the answer within 10 %, the gate in
// junit.xml, a report with the chart.
func TestCapacityCLIFake(t *testing.T) {
	env := fakeVaultEnv(t, "300")
	out := filepath.Join(t.TempDir(), "run")
	r := runEnv(t, nil, env, "capacity", "--warmup", "1s", "--hold", "2s", "--start-rate", "100", "--slo-p99", "50ms",
		"--precision", "10%", "--expect-rate", "250", "--out", out)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	doc := readCapacity(t, out)
	if len(doc.Series) != 1 || doc.Ended.IsZero() {
		t.Fatalf("capacity.json: %d series, ended %v", len(doc.Series), doc.Ended)
	}
	s := doc.Series[0]
	if s.Status != rundir.SeriesKnee || s.Capacity == nil || *s.Capacity < 270 || *s.Capacity > 330 {
		t.Errorf("series: %s capacity %v (%s), want a knee within 10%% of 300", s.Status, s.Capacity, s.Reason)
	}
	if !strings.Contains(r.stdout, "req/s") || !strings.Contains(r.stdout, "knee") {
		t.Errorf("stdout lacks the answer:\n%s", r.stdout)
	}
	var ju struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Cases []struct {
				Name string `xml:"name,attr"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	b, err := os.ReadFile(filepath.Join(out, "junit.xml"))
	if err != nil || xml.Unmarshal(b, &ju) != nil {
		t.Fatalf("junit.xml: %v", err)
	}
	if ju.Tests != 3 || ju.Failures != 0 || !strings.Contains(string(b), "sustains ≥ 250 req/s at p99 ≤ 50ms") {
		t.Errorf("junit: %d tests, %d failures:\n%s", ju.Tests, ju.Failures, b)
	}
	html, _ := os.ReadFile(filepath.Join(out, "report.html"))
	if !strings.Contains(string(html), "<svg") || !strings.Contains(string(html), "PASS") {
		t.Errorf("report.html lacks the chart or the verdict")
	}
	// The same directory re-rendered by `report` gives the same verdict.
	if r := run(t, nil, "report", out); r.code != 0 {
		t.Errorf("report: exit %d: %s", r.code, r.stderr)
	}
}

// TestCapacityCLICluster stands up a real 3-node cluster on single-disk
// storage, finds its write knee, reports each node's CPU, and leaves
// nothing behind.
func TestCapacityCLICluster(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a real cluster")
	}
	needRoot(t, "capacity --nodes stands clusters up on loop devices")
	out := filepath.Join(t.TempDir(), "run")
	r := run(t, nil, "capacity", "--nodes", "3", "--storage", "single", "--mix", "write=100", "--vault-bin", vaultBin(t),
		"--subnet", "83", "--warmup", "2s", "--hold", "4s", "--start-rate", "20", "--precision", "10%", "--out", out)
	t.Logf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	doc := readCapacity(t, out)
	if len(doc.Series) != 1 {
		t.Fatalf("%d series", len(doc.Series))
	}
	s := doc.Series[0]
	if r.code != 0 || s.Status != rundir.SeriesKnee || s.Capacity == nil || s.FirstBad == nil || *s.FirstBad <= *s.Capacity {
		t.Fatalf("exit %d: %s, capacity %v, first broken %v: %s", r.code, s.Status, s.Capacity, s.FirstBad, s.Reason)
	}
	if s.Nodes != 3 || s.Storage != "btrfs-single" || !s.Verified || s.LostWrites != 0 || s.AckedWrites == 0 {
		t.Errorf("series: %+v", s)
	}
	for _, st := range s.Steps {
		if st.GeneratorCPU == nil || len(st.NodeCPU) != 3 || st.NodeCPU["node1"]+st.NodeCPU["node2"]+st.NodeCPU["node3"] <= 0 {
			t.Errorf("step %d: CPU not measured: generator %v nodes %v", st.Index, st.GeneratorCPU, st.NodeCPU)
		}
	}
	if b, _ := exec.Command("losetup", "-a").Output(); strings.Contains(string(b), filepath.Join(out, "clusters")) {
		t.Errorf("loop devices left:\n%s", b)
	}
	if b, _ := os.ReadFile("/proc/mounts"); strings.Contains(string(b), out) {
		t.Errorf("mounts left under %s", out)
	}
	if b, _ := exec.Command("pgrep", "-f", filepath.Join(out, "clusters")).Output(); len(b) > 0 {
		t.Errorf("processes left: %s", b)
	}
}

// TestCapacityInterrupted: Ctrl-C during a search leaves a readable run
// directory that says it was cut short, and exits 1.
func TestCapacityInterrupted(t *testing.T) {
	env := fakeVaultEnv(t, "0")
	out := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(binary, "capacity", "--warmup", "1s", "--hold", "2s", "--start-rate", "50", "--out", out)
	cmd.Env = append(append(os.Environ(), "VAULT_ADDR="), env...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	var log strings.Builder
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "step  2") {
			cmd.Process.Signal(os.Interrupt)
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1\n%s", err, log.String())
	}
	doc := readCapacity(t, out)
	if !doc.Ended.IsZero() || len(doc.Series) != 1 || doc.Series[0].Status != rundir.SeriesInterrupted || len(doc.Series[0].Steps) < 2 {
		t.Errorf("capacity.json after Ctrl-C: ended %v, %+v", doc.Ended, doc.Series)
	}
	if s := doc.Series[0]; !s.Verified || s.LostWrites != 0 {
		t.Errorf("writes not read back after Ctrl-C: verified %v, %s", s.Verified, s.VerifyError)
	}
	md, _ := os.ReadFile(filepath.Join(out, "summary.md"))
	if !strings.Contains(string(md), "PARTIAL") {
		t.Errorf("summary.md does not say PARTIAL:\n%s", md)
	}
}
