package runner_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/cluster/clustertest"
	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/scenarios"
	"github.com/vaultstorm/vaultstorm/scenarios/runner"
)

// The verdict tests: scenarios of testdata/ whose outcome is known, run on
// real clusters. Each must be judged the way it deserves.

func runFile(t *testing.T, file string, subnet int, during func(ctx context.Context, c *cluster.Cluster, t0 time.Time)) (string, rundir.Summary) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: real clusters")
	}
	sc, err := scenarios.Load(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "run")
	res, err := runner.Run(context.Background(), runner.Options{
		Scenario: sc, OutDir: out, VaultBin: clustertest.VaultBin(t), Subnet: subnet,
		Logf: func(f string, a ...any) { t.Logf(f, a...) }, DuringLoad: during,
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	logFaults(t, res.Summary.Faults)
	for _, e := range res.Summary.Expectations {
		t.Logf("  passed=%v %s want %s got %s", e.Passed, e.Name, e.Want, e.Got)
	}
	nothingLeft(t, out)
	return out, res.Summary
}

func expectation(s rundir.Summary, name string) (rundir.Expectation, bool) {
	for _, e := range s.Expectations {
		if e.Name == name || strings.HasPrefix(e.Name, name+" ") {
			return e, true
		}
	}
	return rundir.Expectation{}, false
}

// Three of five voters killed for good, lost_writes = 0 expected: nothing
// can be read back, so the run fails as unverified (not "0 lost"), the
// end-state expectations fail for want of a leader, the cluster is
// degraded, never healed; and the CLI exits 1 with a report that says why.
func TestQuorumGoneIsNotAPass(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: real clusters")
	}
	bin := os.Getenv("VAULTSTORM_BIN")
	if bin == "" {
		t.Fatal("VAULTSTORM_BIN is not set: run through `make test`, which builds bin/vaultstorm")
	}
	out := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(bin, "run", filepath.Join("testdata", "quorum-gone.hcl"), "--out", out, "--subnet", "71",
		"--vault-bin", clustertest.VaultBin(t))
	b, err := cmd.CombinedOutput()
	t.Logf("vaultstorm run:\n%s", b)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1 (an expectation failed)", err)
	}
	var s rundir.Summary
	if err := rundir.ReadJSON(out, rundir.SummaryFile, &s); err != nil {
		t.Fatal(err)
	}
	if s.Verified {
		t.Errorf("summary says verified with no quorum left")
	}
	e, ok := expectation(s, "lost_writes")
	if !ok || e.Passed || !strings.Contains(e.Got, "unverified") {
		t.Errorf("lost_writes judged %+v, want a failure saying unverified", e)
	}
	if e, ok := expectation(s, "min_voters_after"); !ok || e.Passed || !strings.Contains(e.Got, "not measured") {
		t.Errorf("min_voters_after judged %+v, want not measured (no leader at the end)", e)
	}
	if len(s.Faults) != 1 || s.Faults[0].HealedMs != nil || !strings.Contains(s.Faults[0].Degraded, "degraded") {
		t.Errorf("fault result %+v, want never healed and degraded", s.Faults)
	}
	if s.Final == nil || s.Final.Error == "" {
		t.Errorf("final state %+v, want an error (no leader)", s.Final)
	}
	for _, f := range []string{"report.html", "junit.xml", "summary.md"} {
		rb, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if !strings.Contains(strings.ToLower(string(rb)), "unverified") && !strings.Contains(strings.ToLower(string(rb)), "not verified") {
			t.Errorf("%s does not say the ledger is unverified", f)
		}
	}
	if !strings.Contains(string(b), "FAIL") {
		t.Errorf("the CLI output has no FAIL line")
	}
}

// A standby the load is sent to stops for 5 s: no request fails, but those
// sent during the stall wait for it, so the stall window is ≈ 4-5 s (the
// stall less the 1 s allowance) while the error window is 0.
func TestStandbyStallIsUnavailability(t *testing.T) {
	_, s := runFile(t, "standby-stall.hcl", 72, nil)
	if len(s.Faults) != 1 {
		t.Fatalf("faults %+v, want one", s.Faults)
	}
	f := s.Faults[0]
	if f.LeaderElectedMs != nil {
		t.Fatalf("node3 was the leader (a new one was elected): this test needs it to be a standby")
	}
	if f.WriteUnavailableMs < 3500 || f.WriteUnavailableMs > 5500 || f.ReadUnavailableMs < 3500 || f.ReadUnavailableMs > 5500 {
		t.Errorf("stall windows: writes %.0fms, reads %.0fms, want ≈4-5s", f.WriteUnavailableMs, f.ReadUnavailableMs)
	}
	if f.WriteErrorWindowMs != 0 {
		t.Errorf("error window %.0fms, want 0: the requests waited, none failed", f.WriteErrorWindowMs)
	}
	if f.HealedMs == nil {
		t.Errorf("never healed after SIGCONT")
	}
}

// A value changed behind the harness's back: every acknowledged write is
// still there (the ledger passes), but the history is not linearizable,
// and the run fails on it.
func TestBehindTheBackIsNotLinearizable(t *testing.T) {
	var wrote string
	var werr error
	out, s := runFile(t, "behind-the-back.hcl", 73, func(ctx context.Context, c *cluster.Cluster, t0 time.Time) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(4 * time.Second):
		}
		var cfg struct {
			Mount     string `json:"mount"`
			KeyPrefix string `json:"key_prefix"`
		}
		// The cluster lives in RUN/cluster; the load's settings in RUN.
		if werr = rundir.ReadJSON(filepath.Dir(c.Dir), "load.json", &cfg); werr != nil {
			return
		}
		key := cfg.KeyPrefix + "k00"
		for _, n := range c.State.Nodes {
			cl, err := c.Client(n)
			if err != nil {
				werr = err
				continue
			}
			if _, werr = cl.KVv2(cfg.Mount).Put(ctx, key, map[string]any{"v": "changed behind the harness's back"}); werr == nil {
				wrote = key
				return
			}
		}
	})
	if wrote == "" {
		t.Fatalf("the test could not write behind the harness's back: %v", werr)
	}
	if s.Linearizable == nil || *s.Linearizable {
		t.Errorf("linearizable = %v (%s), want false", s.Linearizable, s.Linearizability)
	}
	if e, ok := expectation(s, "linearizable"); !ok || e.Passed {
		t.Errorf("linearizable expectation %+v, want failed", e)
	}
	if !s.Verified || s.LostWrites != 0 {
		t.Errorf("ledger: verified %v, lost %d: the external write must not count as a lost one", s.Verified, s.LostWrites)
	}
	if _, err := os.Stat(filepath.Join(out, rundir.LinearizabilityFile)); err != nil {
		t.Errorf("no visualisation of the violation: %v", err)
	}
}
