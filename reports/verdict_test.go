package reports

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/load"
	"github.com/vaultstorm/vaultstorm/metrics"
	"github.com/vaultstorm/vaultstorm/reports/internal/synth"
)

// editSummary rewrites a copied run's summary.json.
func editSummary(t *testing.T, dir string, edit func(*rundir.Summary)) {
	t.Helper()
	var s rundir.Summary
	if err := rundir.ReadJSON(dir, rundir.SummaryFile, &s); err != nil {
		t.Fatal(err)
	}
	edit(&s)
	if err := rundir.WriteJSON(dir, rundir.SummaryFile, s); err != nil {
		t.Fatal(err)
	}
}

type rendered struct {
	html, md string
	junit    xsdSuites
	verdict  Verdict
}

func renderAll(t *testing.T, dir string) rendered {
	t.Helper()
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	if err := Render(dir); err != nil {
		t.Fatal(err)
	}
	read := func(f string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return rendered{html: string(read(HTMLFile)), md: string(read(MarkdownFile)), junit: validateJUnit(t, read(JUnitFile)), verdict: r.Verdict()}
}

// failure returns the failure of the test case named name ("" if it passed
// or does not exist) and whether the case exists; skipped cases fail the
// test: nothing is ever skipped.
func (x rendered) failure(t *testing.T, name string) (typ, msg string, ok bool) {
	t.Helper()
	for _, c := range x.junit.Suites[0].Cases {
		if len(c.Skipped) > 0 {
			t.Errorf("junit case %q is skipped: a check that could not run must fail", *c.Name)
		}
		if *c.Name != name {
			continue
		}
		ok = true
		for _, f := range c.Failures {
			typ, msg = f.Type, *f.Message
		}
	}
	return typ, msg, ok
}

func verdictDiv(html string) string {
	i := strings.Index(html, `id="verdict">`)
	j := strings.Index(html[i:], "<")
	return html[i+len(`id="verdict">`) : i+j]
}

// TestUnverifiedNeverPasses: a summary whose read-back did not finish
// (verified false) fails, even when it is an older summary whose
// lost_writes expectation passed on "0", or has no such expectation.
func TestUnverifiedNeverPasses(t *testing.T) {
	for _, tc := range []struct {
		name string
		keep func(rundir.Expectation) bool
	}{
		{"lost_writes passed on 0", func(rundir.Expectation) bool { return true }},
		{"no lost_writes expectation", func(e rundir.Expectation) bool { return e.Name != "lost_writes" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyRun(t, "spot-reclaim-a")
			editSummary(t, dir, func(s *rundir.Summary) {
				s.Verified, s.KeysRead, s.KeysToRead, s.VerifyError = false, 10, 4000, "no leader"
				s.Expectations = slices.DeleteFunc(s.Expectations, func(e rundir.Expectation) bool { return !tc.keep(e) })
			})
			x := renderAll(t, dir)
			why := "NOT VERIFIED: 10 of 4000 keys read back: no leader"
			if x.verdict.Text != "FAIL" || x.verdict.Passed || !slices.Contains(x.verdict.Reasons, why) {
				t.Errorf("verdict %+v, want FAIL because %q", x.verdict, why)
			}
			if v := verdictDiv(x.html); v != "FAIL" {
				t.Errorf("report.html verdict %q, want FAIL", v)
			}
			if !strings.Contains(x.html, `<div class="banner failed" id="unverified-banner">`+why) {
				t.Error("report.html has no red NOT VERIFIED banner")
			}
			if !strings.Contains(section(t, x.html, "ledger"), `class="bad">NOT VERIFIED<`) {
				t.Error("ledger box does not say NOT VERIFIED in red")
			}
			typ, msg, ok := x.failure(t, "no acknowledged write lost")
			if !ok || typ != "unverified" || !strings.Contains(msg, why) {
				t.Errorf("junit ledger case: present %v, failure %q %q; want an unverified failure", ok, typ, msg)
			}
			if *x.junit.Suites[0].Failures == 0 {
				t.Errorf("junit has no failure")
			}
			if !strings.Contains(x.md, "❌ FAIL") || !strings.Contains(x.md, why) {
				t.Errorf("summary.md lacks FAIL and %q:\n%s", why, x.md)
			}
		})
	}
}

// TestUnverifiedNothingWritten: no acknowledged write means nothing to
// read back: not a failure.
func TestUnverifiedNothingWritten(t *testing.T) {
	dir := copyRun(t, "spot-reclaim-a")
	editSummary(t, dir, func(s *rundir.Summary) { s.Verified, s.AckedWrites = false, 0 })
	if x := renderAll(t, dir); x.verdict.Text != "PASS" {
		t.Errorf("verdict %s with 0 acknowledged writes, want PASS", x.verdict.Text)
	}
}

// TestInvalidRun: a run whose generator fell behind is INVALID, never PASS,
// whatever its expectations say, in every output.
func TestInvalidRun(t *testing.T) {
	dir := copyRun(t, "spot-reclaim-a")
	reasons := []string{"26328 of 72000 requests sent late (36.6 %, limit 1 %)", "max send lag 273ms (limit 100ms)"}
	editSummary(t, dir, func(s *rundir.Summary) { s.Invalid = reasons })
	x := renderAll(t, dir)
	want := "the harness, not Vault, fell behind: " + strings.Join(reasons, "; ")
	if x.verdict.Text != "INVALID" || x.verdict.Passed || x.verdict.InvalidText() != want {
		t.Errorf("verdict %+v", x.verdict)
	}
	if v := verdictDiv(x.html); v != "INVALID" {
		t.Errorf("report.html verdict %q", v)
	}
	if !strings.Contains(x.html, `id="invalid-banner">INVALID — `+want) {
		t.Error("no INVALID banner naming the harness")
	}
	typ, msg, ok := x.failure(t, "generator kept its schedule")
	if !ok || typ != "invalid" || !strings.Contains(msg, want) {
		t.Errorf("junit: present %v, failure %q %q", ok, typ, msg)
	}
	if !strings.HasPrefix(x.md, "## ⛔ INVALID") || !strings.Contains(x.md, want) {
		t.Errorf("summary.md:\n%s", x.md)
	}
	// As the runner writes it: a failed generator expectation says it
	// already; no second JUnit case.
	editSummary(t, dir, func(s *rundir.Summary) {
		for i, e := range s.Expectations {
			if e.Name == "generator_max_lag" {
				s.Expectations[i].Got, s.Expectations[i].Passed = "273ms", false
			}
		}
	})
	x = renderAll(t, dir)
	if _, _, ok := x.failure(t, "generator kept its schedule"); ok || x.verdict.Text != "INVALID" {
		t.Errorf("with a failed generator expectation: extra case %v, verdict %s", ok, x.verdict.Text)
	}
	if _, msg, _ := x.failure(t, "generator_max_lag"); msg == "" {
		t.Error("generator_max_lag does not fail")
	}
	// A partial run that is also INVALID says INVALID: nothing it
	// measured counts.
	os.WriteFile(filepath.Join(dir, rundir.MetaFile), []byte(`{"tool":"x","command":"x","started":"2025-06-03T02:00:00Z"}`), 0o644)
	if x := renderAll(t, dir); x.verdict.Text != "INVALID" {
		t.Errorf("partial and invalid: %s", x.verdict.Text)
	}
}

// TestNotLinearizable: a violation fails the run even without an
// expectation, links porcupine's visualisation, and is a JUnit failure.
func TestNotLinearizable(t *testing.T) {
	dir := copyRun(t, "spot-reclaim-a")
	detail := "key vaultstorm/k00042: read saw version 3 after version 4 was acknowledged"
	editSummary(t, dir, func(s *rundir.Summary) {
		no := false
		s.Linearizable, s.Linearizability = &no, detail
		s.Expectations = slices.DeleteFunc(s.Expectations, func(e rundir.Expectation) bool { return e.Name == "linearizable" })
	})
	os.WriteFile(filepath.Join(dir, rundir.LinearizabilityFile), []byte("<html></html>"), 0o644)
	x := renderAll(t, dir)
	// No expectation on it: the runner's verdict stands (the exit code
	// said PASS), and the violation is shown, in red, as a reason.
	if x.verdict.Text != "PASS" || !slices.ContainsFunc(x.verdict.Reasons, func(r string) bool { return strings.Contains(r, "NOT LINEARIZABLE") }) {
		t.Errorf("verdict %+v, want PASS with the violation as a reason", x.verdict)
	}
	checks := section(t, x.html, "checks")
	if !strings.Contains(checks, `<li id="check-linearizable" class="bad">linearizable: NO (16 keys`) ||
		!strings.Contains(checks, `<a href="linearizability.html">`) || !strings.Contains(checks, detail) {
		t.Errorf("checks section:\n%s", checks)
	}
	if _, _, ok := x.failure(t, "histories linearizable"); ok {
		t.Errorf("junit fails a check the runner did not judge")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, JUnitFile)); !strings.Contains(string(b), detail) {
		t.Errorf("junit.xml does not report the violation")
	}
	// With the expectation, the run fails on it.
	editSummary(t, dir, func(s *rundir.Summary) {
		f := false
		s.Passed = &f
		s.Expectations = append(s.Expectations, rundir.Expectation{Name: "linearizable", Want: "true", Got: "false (" + detail + ")"})
	})
	if x = renderAll(t, dir); x.verdict.Text != "FAIL" {
		t.Errorf("verdict %s with a failed linearizable expectation, want FAIL", x.verdict.Text)
	}
	if _, msg, _ := x.failure(t, "linearizable"); !strings.Contains(msg, detail) {
		t.Errorf("junit linearizable failure %q", msg)
	}
}

// TestQuorumLossReport: three of five nodes killed for good. The fixture
// is what the runner's new contract writes: lost_writes "unverified",
// degraded instead of healed, no final state.
func TestQuorumLossReport(t *testing.T) {
	x := renderAll(t, copyRun(t, "quorum-loss-unverified"))
	if x.verdict.Text != "FAIL" {
		t.Errorf("verdict %s", x.verdict.Text)
	}
	if _, msg, _ := x.failure(t, "lost_writes"); !strings.Contains(msg, "measured unverified (0 of ") {
		t.Errorf("lost_writes failure %q", msg)
	}
	degraded := "degraded (no leader: node4 and node5 are standbys without quorum)"
	if _, msg, _ := x.failure(t, "healed_within (fault 1 kill)"); !strings.Contains(msg, degraded) {
		t.Errorf("healed_within failure %q, want it to say %q", msg, degraded)
	}
	rec := section(t, x.html, "recovery")
	if !strings.Contains(rec, `<td class="bad">`+degraded+`</td>`) || !strings.Contains(rec, `<td class="bad">never</td>`) {
		t.Errorf("recovery: degraded and a leader never elected should be red:\n%s", rec)
	}
	if !strings.Contains(section(t, x.html, "checks"), `<p class="bad" id="final-state">Final check at &#43;1:07: no state: no leader`) {
		t.Errorf("final state error not shown in red:\n%s", section(t, x.html, "checks"))
	}
	if !strings.Contains(x.md, "**final state at +1:07: NO STATE: no leader") || !strings.Contains(x.md, "**"+degraded+"**") {
		t.Errorf("summary.md:\n%s", x.md)
	}
}

// TestDegraded: a node killed for good leaves the cluster degraded, never
// healed: red in the recovery table, a JUnit failure naming it.
func TestDegraded(t *testing.T) {
	o := synth.SpotReclaim(filepath.Join(t.TempDir(), "follower-kill"), 5, 60)
	o.Scenario, o.Metrics, o.NoLedger = "follower-kill", false, true
	o.Faults = []synth.Fault{{Kind: "kill", Nodes: []string{"node4"}, At: 20 * time.Second, ReadOutage: time.Second, ReadFailPct: 20}}
	if err := synth.Generate(o); err != nil {
		t.Fatal(err)
	}
	x := renderAll(t, o.Dir)
	if x.verdict.Text != "FAIL" {
		t.Errorf("verdict %s", x.verdict.Text)
	}
	if !strings.Contains(section(t, x.html, "recovery"), `<td class="bad">degraded (4/5 voters)</td>`) {
		t.Errorf("recovery:\n%s", section(t, x.html, "recovery"))
	}
	if _, msg, _ := x.failure(t, "healed_within (fault 1 kill)"); !strings.Contains(msg, "degraded (4/5 voters)") {
		t.Errorf("junit healed_within failure %q", msg)
	}
	if !strings.Contains(x.md, "**degraded (4/5 voters)**") {
		t.Error("summary.md lacks the degraded fault")
	}
}

// TestChecksShown: the new figures of summary.json reach every output.
func TestChecksShown(t *testing.T) {
	dir := copyRun(t, "spot-reclaim-a")
	var s rundir.Summary
	rundir.ReadJSON(dir, rundir.SummaryFile, &s)
	x := renderAll(t, dir)
	harness := fmt.Sprintf("harness requests: %d (%.1f req/s; quiet %.1f req/s = %.1f %% of the load)",
		s.HarnessRequests, s.HarnessRequestsPerS, s.HarnessQuietPerS, s.HarnessSharePct)
	lin := fmt.Sprintf("linearizable: yes (%d keys, %d operations)", s.HistoryKeys, s.HistoryOps)
	checks := section(t, x.html, "checks")
	for _, want := range []string{harness, "by kind: health ", lin, "5/5: node1, node2, node4, node5, node6", "<td class=\"l\">node6</td>"} {
		if !strings.Contains(checks, want) {
			t.Errorf("checks section lacks %q:\n%s", want, checks)
		}
	}
	f2 := s.Faults[1]
	rec := section(t, x.html, "recovery")
	for _, want := range []string{"<th>write errors</th><th>write stall</th>", "<td>" + fmtMs(f2.WriteErrorWindowMs) + "</td><td>" + fmtMs(f2.WriteUnavailableMs) + "</td>"} {
		if !strings.Contains(rec, want) {
			t.Errorf("recovery lacks %q:\n%s", want, rec)
		}
	}
	for _, want := range []string{harness, lin, "final state at +2:07: leader node2; voters 5/5", "| write errors | write stall |"} {
		if !strings.Contains(x.md, want) {
			t.Errorf("summary.md lacks %q", want)
		}
	}
	for _, c := range x.junit.Suites[0].Cases {
		if strings.HasSuffix(*c.Name, "recovers") {
			out := strings.Join(c.SystemOut, "")
			if !strings.Contains(out, "stall window") || !strings.Contains(out, "error window") || !strings.Contains(out, harness) {
				t.Errorf("%s system-out:\n%s", *c.Name, out)
			}
		}
	}
	// Duplicate versions are a loss the ledger saw: red, in the ledger.
	editSummary(t, dir, func(s *rundir.Summary) { s.DuplicateVersions = 2 })
	x = renderAll(t, dir)
	if !strings.Contains(section(t, x.html, "ledger"), "duplicate versions") || !strings.Contains(x.md, "Duplicate versions: 2") {
		t.Error("duplicate versions not shown")
	}
}

// TestNodesFollowCluster: the replacement node6 of a spot reclaim gets a
// lane and a metrics series; a node seen only in metrics, or only as a
// fault's target, gets a lane too; order is natural (node6 < node10).
func TestNodesFollowCluster(t *testing.T) {
	dir := copyRun(t, "spot-reclaim-a")
	r := mustLoad(t, dir)[0]
	if want := []string{"node1", "node2", "node3", "node4", "node5", "node6"}; !slices.Equal(r.Nodes, want) {
		t.Errorf("nodes %v, want %v", r.Nodes, want)
	}
	if _, ok := r.Metrics["node6"]; !ok {
		t.Fatal("fixture has no metrics/node6.prom.jsonl")
	}
	_, html := render(t, "spot-reclaim-a")
	vm := section(t, html, "vault-metrics")
	if !strings.Contains(vm, ">node6<") {
		t.Error("no node6 series in the Vault metrics charts")
	}
	if !strings.Contains(section(t, html, "nodes"), ">node6<") {
		t.Error("no node6 lane")
	}

	// node10 only in metrics, node12 only as the target of a fault notice.
	b, _ := os.ReadFile(filepath.Join(dir, rundir.MetricsDir, "node2"+metrics.Suffix))
	os.WriteFile(filepath.Join(dir, rundir.MetricsDir, "node10"+metrics.Suffix), bytes.ReplaceAll(b, []byte(`"node2"`), []byte(`"node10"`)), 0o644)
	app, _ := rundir.OpenAppender(dir, rundir.EventsFile)
	app.Append(rundir.Event{T: r.Start.Add(50 * time.Second), Kind: rundir.EvFaultNotice, Fault: 3, Node: "node12", Msg: "spot interruption notice"})
	app.Close()
	r = mustLoad(t, dir)[0]
	want := []string{"node1", "node2", "node3", "node4", "node5", "node6", "node10", "node12"}
	if !slices.Equal(r.Nodes, want) {
		t.Errorf("nodes %v, want %v", r.Nodes, want)
	}
	var lanes []string
	for _, l := range r.Lanes {
		lanes = append(lanes, l.Node)
	}
	if !slices.Equal(lanes, want) {
		t.Errorf("lanes %v, want %v", lanes, want)
	}
	x := renderAll(t, dir)
	if !strings.Contains(section(t, x.html, "vault-metrics"), ">node10<") || !strings.Contains(section(t, x.html, "nodes"), ">node12<") {
		t.Error("node10 series or node12 lane missing")
	}
}

// TestDrainSample: the load's last, partial sample (9 writes in 0.088 s,
// what the drain of in-flight requests leaves) is not charted as a rate of
// 102 writes/s; every plotted rate stays within 10 % of the true one, and
// the sample still counts in the totals.
func TestDrainSample(t *testing.T) {
	dir := copyRun(t, "spot-reclaim-a")
	var samples []rundir.Sample
	rundir.ReadLines(dir, rundir.SamplesFile, func(s rundir.Sample) error {
		samples = append(samples, s)
		return nil
	})
	last := &samples[len(samples)-1]
	if last.Interval >= 1 {
		t.Fatalf("fixture's last sample is %gs long, want the load's partial last sample", last.Interval)
	}
	last.Interval = 0.088
	last.Ops = map[string]rundir.OpStats{"read": {Count: 14, P50: 300}, "write": {Count: 9, P50: 400}}
	// A tick the flusher took late: 50 writes in 1.25 s is 40/s.
	late := &samples[50]
	wo := late.Ops["write"]
	wo.Count, wo.Errors, late.Interval = 50, 0, 1.25
	late.Ops["write"] = wo
	os.Remove(filepath.Join(dir, rundir.SamplesFile))
	app, _ := rundir.OpenAppender(dir, rundir.SamplesFile)
	for _, s := range samples {
		app.Append(s)
	}
	app.Close()

	r := mustLoad(t, dir)[0]
	trueRate := float64(testRuns()["spot-reclaim-a"].Rates["write"])
	xs, ok, bad := rateSeries(r, "write")
	if len(xs) != len(samples)-1 {
		t.Errorf("%d points from %d samples: the partial last one should be left out", len(xs), len(samples))
	}
	// The last plotted second and the late tick, away from the faults.
	for _, i := range []int{len(ok) - 1, 50} {
		if got := ok[i] + bad[i]; math.Abs(got-trueRate) > 0.1*trueRate {
			t.Errorf("point %d at %.2fs: %.1f writes/s, true rate %.0f", i, xs[i], got, trueRate)
		}
	}
	if x := xs[50]; math.Abs(x-(secs(samples[50].T, r.Start)+0.625)) > 1e-9 {
		t.Errorf("late tick plotted at %.3f, want its middle", x)
	}
	// Totals still count the drained requests.
	os.Remove(filepath.Join(dir, rundir.SummaryFile))
	var want int64
	for _, s := range samples {
		want += s.Ops["write"].Count
	}
	if got := mustLoad(t, dir)[0].Summary.Ops["write"].Count; got != want {
		t.Errorf("derived write count %d, samples say %d", got, want)
	}
}

// TestWriteTableUnverified: the terminal table of `run` and `load` says
// how far the read-back got instead of "LOST WRITES: 0".
func TestWriteTableUnverified(t *testing.T) {
	var s rundir.Summary
	if err := rundir.ReadJSON(filepath.Join(runsDir, "quorum-loss-unverified"), rundir.SummaryFile, &s); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	load.WriteTable(&b, s)
	out := b.String()
	want := fmt.Sprintf("NOT VERIFIED: %d of %d keys read back: %s", s.KeysRead, s.KeysToRead, s.VerifyError)
	if !strings.Contains(out, want) || strings.Contains(out, "LOST WRITES") {
		t.Errorf("want %q and no LOST WRITES:\n%s", want, out)
	}
	s.Invalid = []string{"max send lag 273ms (limit 100ms)"}
	b.Reset()
	load.WriteTable(&b, s)
	for _, want := range []string{"INVALID: the harness, not Vault, fell behind: max send lag 273ms", "linearizable: not checked (timed out", "harness requests: "} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("lacks %q:\n%s", want, b.String())
		}
	}
}
