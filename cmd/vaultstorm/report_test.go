package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

const testRuns = "../../testdata/runs"

// exitCode runs a command as main would and returns its exit code.
func exitCode(t *testing.T, cmd *cobra.Command, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	if err == nil {
		return 0, out.String()
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code, out.String() + err.Error()
	}
	return 2, out.String() + err.Error()
}

func copyRun(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dst, os.DirFS(filepath.Join(testRuns, name))); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestReportCommand(t *testing.T) {
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	for _, name := range []string{"spot-reclaim-a", "leader-kill-partial"} {
		dir := copyRun(t, name)
		code, out := exitCode(t, reportCmd(), dir)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, out)
		}
		for _, f := range []string{"report.html", "junit.xml", "summary.md", "latency.hgrm"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	if code, _ := exitCode(t, reportCmd(), filepath.Join(t.TempDir(), "nope")); code != 2 {
		t.Errorf("missing run directory: exit %d, want 2", code)
	}
	if code, _ := exitCode(t, reportCmd(), t.TempDir()); code != 2 {
		t.Errorf("empty directory: exit %d, want 2", code)
	}
}

func TestCompareCommand(t *testing.T) {
	a, b := filepath.Join(testRuns, "spot-reclaim-a"), filepath.Join(testRuns, "spot-reclaim-b")
	if code, out := exitCode(t, compareCmd(), a, b, "--max-regression", "10%"); code != 0 {
		t.Errorf("same scenario: exit %d\n%s", code, out)
	}

	// B: a copy of A with the leader-kill's write unavailability 50 % worse.
	worse := copyRun(t, "spot-reclaim-a")
	var s rundir.Summary
	if err := rundir.ReadJSON(worse, rundir.SummaryFile, &s); err != nil {
		t.Fatal(err)
	}
	s.Faults[1].WriteUnavailableMs *= 1.5
	if err := rundir.WriteJSON(worse, rundir.SummaryFile, s); err != nil {
		t.Fatal(err)
	}
	code, out := exitCode(t, compareCmd(), a, worse)
	if code != 1 || !strings.Contains(out, "REGRESSION") || !strings.Contains(out, "fault#2 kill/write_unavailable") {
		t.Errorf("50%% worse: exit %d, want 1\n%s", code, out)
	}
	if code, out := exitCode(t, compareCmd(), a, worse, "--threshold", "write_unavailable=60%"); code != 0 {
		t.Errorf("with a 60%% threshold on it: exit %d\n%s", code, out)
	}
	if code, out := exitCode(t, compareCmd(), "--a", a, "--b", worse, "--format", "markdown"); code != 1 || !strings.Contains(out, "| metric |") {
		t.Errorf("markdown: exit %d\n%s", code, out)
	}
	html := filepath.Join(t.TempDir(), "c.html")
	if code, out := exitCode(t, compareCmd(), a, b, "--format", "html", "--out", html); code != 0 {
		t.Errorf("html: exit %d\n%s", code, out)
	}
	if b, _ := os.ReadFile(html); !bytes.Contains(b, []byte("<svg")) {
		t.Error("html comparison has no charts")
	}
	// Glob of repetitions: both test runs of the scenario against one.
	if code, out := exitCode(t, compareCmd(), filepath.Join(testRuns, "spot-reclaim-[ab]"), a); code != 0 || !strings.Contains(out, "2 runs") {
		t.Errorf("glob: exit %d\n%s", code, out)
	}

	for _, bad := range [][]string{
		{a},
		{a, filepath.Join(t.TempDir(), "missing")},
		{a, b, "--max-regression", "ten"},
		{a, b, "--threshold", "p99"},
		{a, b, "--format", "pdf"},
		{filepath.Join(testRuns, "no-such-*"), b},
	} {
		if code, out := exitCode(t, compareCmd(), bad...); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", bad, code, out)
		}
	}
}
