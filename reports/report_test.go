package reports

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// copyRun copies a checked-in run directory, so rendering into it does not
// touch testdata.
func copyRun(t testing.TB, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dst, os.DirFS(filepath.Join(runsDir, name))); err != nil {
		t.Fatal(err)
	}
	return dst
}

func render(t *testing.T, name string) (dir string, html string) {
	t.Helper()
	dir = copyRun(t, name)
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	if err := Render(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	return dir, string(b)
}

// section returns the HTML of <section id="id">…</section>.
func section(t *testing.T, html, id string) string {
	t.Helper()
	i := strings.Index(html, `<section id="`+id+`"`)
	if i < 0 {
		t.Fatalf("section %q missing", id)
	}
	j := strings.Index(html[i:], "</section>")
	if j < 0 {
		t.Fatalf("section %q not closed", id)
	}
	return html[i : i+j]
}

var dataT = regexp.MustCompile(`data-t="([^"]+)"`)

// timesInOrder checks that the rows of a table come in time order.
func timesInOrder(t *testing.T, name, html string) int {
	t.Helper()
	var prev time.Time
	ms := dataT.FindAllStringSubmatch(html, -1)
	for _, m := range ms {
		ts, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			t.Fatalf("%s: bad time %q", name, m[1])
		}
		if ts.Before(prev) {
			t.Errorf("%s: %s comes after %s", name, ts, prev)
		}
		prev = ts
	}
	return len(ms)
}

func TestReportStructure(t *testing.T) {
	dir, html := render(t, "spot-reclaim-a")
	if strings.Contains(html, "NaN") || strings.Contains(html, "+Inf") {
		t.Error("report contains NaN or Inf")
	}
	if strings.Contains(html, "http://") && !strings.Contains(html, `xmlns="http://www.w3.org/2000/svg"`) {
		t.Error("report refers to the network")
	}
	for _, bad := range []string{"<script src", "<link ", "@import", "url(http"} {
		if strings.Contains(html, bad) {
			t.Errorf("report is not self-contained: %q", bad)
		}
	}
	if !strings.Contains(html, `id="verdict">PASS<`) {
		t.Error("verdict PASS missing")
	}
	if strings.Contains(html, "partial-banner") {
		t.Error("complete run shows the partial banner")
	}
	// Every section, with its charts: a latency chart per operation and the
	// throughput, three Vault metric charts, the node timeline and one
	// distribution per operation.
	wantSVG := map[string]int{"latency": 2, "throughput": 1, "vault-metrics": 3, "nodes": 1, "distribution": 2}
	for _, id := range []string{"run", "checks", "latency", "throughput", "vault-metrics", "nodes", "recovery", "phases", "distribution", "ledger"} {
		s := section(t, html, id)
		if n := strings.Count(s, "<svg"); n != wantSVG[id] {
			t.Errorf("section %s: %d charts, want %d", id, n, wantSVG[id])
		}
	}
	for _, label := range []string{"#1 spot_reclaim node3", "#2 kill node1"} {
		if !strings.Contains(section(t, html, "latency"), label) {
			t.Errorf("fault band label %q missing from the latency chart", label)
		}
	}
	nodes := section(t, html, "nodes")
	for _, n := range []string{"node1", "node6", "leader", "follower", "sealed", "down", "replaced"} {
		if !strings.Contains(nodes, ">"+n+"<") {
			t.Errorf("node timeline lacks %q", n)
		}
	}
	if n := timesInOrder(t, "recovery", section(t, html, "recovery")); n != 2 {
		t.Errorf("recovery table: %d faults, want 2", n)
	}
	// One phase sequence per run, as the runner writes it.
	if n := timesInOrder(t, "phases", section(t, html, "phases")); n != 4 {
		t.Errorf("phase table: %d phases, want 4 (before, during, recovery, after)", n)
	}
	if !strings.Contains(section(t, html, "recovery"), "2.08s") {
		t.Error("recovery table lacks fault 2's leader election (2.08s)")
	}
	for _, f := range []string{JUnitFile, MarkdownFile, HgrmFile} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
}

// TestReportIdempotent: a report is a pure function of the run directory,
// so rendering twice (the second time with the outputs present) gives the
// same bytes.
func TestReportIdempotent(t *testing.T) {
	dir := copyRun(t, "spot-reclaim-a")
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	if err := Render(dir); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(filepath.Join(dir, HTMLFile))
	if err := Render(dir); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(filepath.Join(dir, HTMLFile))
	if !bytes.Equal(first, second) {
		t.Error("rendering twice gave different report.html")
	}
}

func TestPartialRun(t *testing.T) {
	dir, html := render(t, "leader-kill-partial")
	if _, err := os.Stat(filepath.Join(dir, rundir.SummaryFile)); err == nil {
		t.Fatal("the partial test run must have no summary.json")
	}
	if !strings.Contains(html, `id="partial-banner"`) || !strings.Contains(html, "PARTIAL RUN") {
		t.Error("no partial banner")
	}
	if !strings.Contains(html, `id="verdict">PARTIAL<`) {
		t.Error("verdict is not PARTIAL")
	}
	if strings.Contains(html, "NaN") {
		t.Error("NaN in partial report")
	}
	// Derived from events and samples: the fault, its leader election, the
	// phases up to the kill, and the ledger counted but not verified.
	rec := section(t, html, "recovery")
	if !strings.Contains(rec, "not healed when the run was cut short") || !strings.Contains(rec, "kill") {
		t.Errorf("recovery of the unhealed kill not shown:\n%s", rec)
	}
	if n := timesInOrder(t, "phases", section(t, html, "phases")); n != 3 {
		t.Errorf("derived phases: %d, want 3 (before, during, recovery)", n)
	}
	if !strings.Contains(section(t, html, "ledger"), "NOT VERIFIED") {
		t.Error("ledger of a partial run must say loss is not verified")
	}
	// The runner's leader events carry no fault index: the election is
	// derived from the first leader after the kill that is not the victim.
	want := testRuns()["leader-kill-partial"].Faults[0].Election
	if !strings.Contains(rec, fmtMs(durMs(want))) || strings.Contains(rec, "leader not hit") {
		t.Errorf("derived leader election %s missing from the recovery table:\n%s", fmtMs(durMs(want)), rec)
	}
	if n := strings.Count(html, "<svg"); n < 6 {
		t.Errorf("partial report has %d charts", n)
	}
	md, _ := os.ReadFile(filepath.Join(dir, MarkdownFile))
	if !strings.Contains(string(md), "PARTIAL") {
		t.Error("summary.md does not say partial")
	}
}

// TestTornLines: a run killed mid-write leaves half lines at the end of
// every append-only file; they are ignored, not errors.
func TestTornLines(t *testing.T) {
	dir := copyRun(t, "leader-kill-partial")
	for _, f := range []string{rundir.SamplesFile, rundir.EventsFile, rundir.HistogramsFile} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		if len(b) == 0 || b[len(b)-1] == '\n' {
			t.Fatalf("%s: test data should end in a torn line", f)
		}
	}
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Samples) != 41 || r.Hist["write"] == nil {
		t.Fatalf("samples %d, want 41", len(r.Samples))
	}
}

func TestGitHubStepSummary(t *testing.T) {
	dir := copyRun(t, "spot-reclaim-a")
	f := filepath.Join(t.TempDir(), "step")
	os.WriteFile(f, []byte("earlier step\n"), 0o644)
	t.Setenv("GITHUB_STEP_SUMMARY", f)
	if err := Render(dir); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f)
	if !strings.HasPrefix(string(b), "earlier step\n") || !strings.Contains(string(b), "✅ PASS — spot-reclaim") {
		t.Errorf("step summary not appended:\n%s", b)
	}
}

// The JUnit XML schema CI systems read (Jenkins junit-10.xsd, which GitHub
// Actions reporters and GitLab follow): the parts that matter, checked.
type xsdSuites struct {
	XMLName  xml.Name   `xml:"testsuites"`
	Tests    *int       `xml:"tests,attr"`
	Failures *int       `xml:"failures,attr"`
	Suites   []xsdSuite `xml:"testsuite"`
}

type xsdSuite struct {
	Name     *string   `xml:"name,attr"`
	Tests    *int      `xml:"tests,attr"`
	Failures *int      `xml:"failures,attr"`
	Errors   *int      `xml:"errors,attr"`
	Skipped  *int      `xml:"skipped,attr"`
	Time     string    `xml:"time,attr"`
	Stamp    string    `xml:"timestamp,attr"`
	Cases    []xsdCase `xml:"testcase"`
	Props    []struct {
		Name  *string `xml:"name,attr"`
		Value *string `xml:"value,attr"`
	} `xml:"properties>property"`
	Any []xml.Name `xml:",any"`
}

type xsdCase struct {
	Name      *string `xml:"name,attr"`
	Classname *string `xml:"classname,attr"`
	Time      string  `xml:"time,attr"`
	Failures  []struct {
		Message *string `xml:"message,attr"`
		Type    string  `xml:"type,attr"`
		Text    string  `xml:",chardata"`
	} `xml:"failure"`
	Skipped []struct {
		Message string `xml:"message,attr"`
	} `xml:"skipped"`
	Errors    []struct{} `xml:"error"`
	SystemOut []string   `xml:"system-out"`
}

var xsdDecimal = regexp.MustCompile(`^\d+(\.\d+)?$`)

func validateJUnit(t *testing.T, b []byte) xsdSuites {
	t.Helper()
	if !bytes.HasPrefix(b, []byte(`<?xml version="1.0" encoding="UTF-8"?>`)) {
		t.Error("no XML declaration")
	}
	dec := xml.NewDecoder(bytes.NewReader(b))
	for { // well-formed throughout
		if _, err := dec.Token(); err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("not well-formed: %v", err)
			}
			break
		}
	}
	var s xsdSuites
	if err := xml.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Suites) == 0 {
		t.Fatal("no testsuite")
	}
	totalT, totalF := 0, 0
	for _, su := range s.Suites {
		if su.Name == nil || *su.Name == "" || su.Tests == nil || su.Failures == nil {
			t.Fatal("testsuite needs name, tests and failures")
		}
		if !xsdDecimal.MatchString(su.Time) {
			t.Errorf("testsuite time %q is not an xs:decimal", su.Time)
		}
		if su.Stamp != "" {
			if _, err := time.Parse("2006-01-02T15:04:05", su.Stamp); err != nil {
				t.Errorf("timestamp %q is not ISO 8601 without zone: %v", su.Stamp, err)
			}
		}
		for _, p := range su.Props {
			if p.Name == nil || p.Value == nil {
				t.Error("property needs name and value")
			}
		}
		failures, skipped := 0, 0
		for _, c := range su.Cases {
			if c.Name == nil || *c.Name == "" || c.Classname == nil || *c.Classname == "" {
				t.Error("testcase needs name and classname")
			}
			if !xsdDecimal.MatchString(c.Time) {
				t.Errorf("testcase %s time %q is not an xs:decimal", *c.Name, c.Time)
			}
			if len(c.Failures)+len(c.Skipped)+len(c.Errors) > 1 {
				t.Errorf("testcase %s has more than one of failure/skipped/error", *c.Name)
			}
			for _, f := range c.Failures {
				if f.Message == nil || *f.Message == "" {
					t.Errorf("failure of %s has no message", *c.Name)
				}
			}
			failures += len(c.Failures)
			skipped += len(c.Skipped)
		}
		if *su.Tests != len(su.Cases) || *su.Failures != failures || (su.Skipped != nil && *su.Skipped != skipped) {
			t.Errorf("testsuite counts tests=%d failures=%d skipped=%v, cases say %d/%d/%d",
				*su.Tests, *su.Failures, su.Skipped, len(su.Cases), failures, skipped)
		}
		totalT += *su.Tests
		totalF += *su.Failures
	}
	if s.Tests == nil || *s.Tests != totalT || s.Failures == nil || *s.Failures != totalF {
		t.Error("testsuites totals do not add up")
	}
	return s
}

func TestJUnit(t *testing.T) {
	dir, _ := render(t, "spot-reclaim-a")
	b, _ := os.ReadFile(filepath.Join(dir, JUnitFile))
	s := validateJUnit(t, b)
	su := s.Suites[0]
	// 11 expectations (the generator's two among them) + 2 faults;
	// lost_writes is an expectation, so no separate ledger case.
	if *su.Tests != 13 || *su.Failures != 0 {
		t.Errorf("tests=%d failures=%d, want 13/0", *su.Tests, *su.Failures)
	}

	// Make one expectation and one recovery fail, and lose a write.
	var sum rundir.Summary
	if err := rundir.ReadJSON(dir, rundir.SummaryFile, &sum); err != nil {
		t.Fatal(err)
	}
	sum.Expectations[0] = rundir.Expectation{Name: "max_unavailability", Want: "<= 2s", Got: "2.57s", Passed: false}
	sum.Faults[1].HealedMs = nil
	sum.LostWrites, sum.LostKeys = 1, []string{"vaultstorm/k00042"}
	f := false
	sum.Passed = &f
	if err := rundir.WriteJSON(dir, rundir.SummaryFile, sum); err != nil {
		t.Fatal(err)
	}
	if err := Render(dir); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(dir, JUnitFile))
	s = validateJUnit(t, b)
	su = s.Suites[0]
	// The runner judged this run: JUnit fails what it failed, the one
	// expectation, so that CI and the exit code agree. The unhealed fault
	// and the lost write (no threshold on them here) are reported in the
	// cases' output, not failed a second time.
	if *su.Failures != 1 {
		t.Errorf("failures=%d, want 1", *su.Failures)
	}
	var msgs []string
	for _, c := range su.Cases {
		for _, f := range c.Failures {
			msgs = append(msgs, *f.Message)
		}
	}
	all := strings.Join(msgs, "\n")
	if !strings.Contains(all, "max_unavailability: measured 2.57s, threshold <= 2s") {
		t.Errorf("failure messages lack the expectation:\n%s", all)
	}
	if !strings.Contains(string(b), "1 lost") {
		t.Errorf("junit.xml does not report the lost write")
	}
	html, _ := os.ReadFile(filepath.Join(dir, HTMLFile))
	if !strings.Contains(string(html), `id="verdict">FAIL<`) || !strings.Contains(string(html), "vaultstorm/k00042") {
		t.Error("failed run: verdict or lost key missing from report.html")
	}
	if !regexp.MustCompile(`class="keys" id="lost-keys"><li>vaultstorm/k00042`).Match(html) {
		t.Error("lost key not in the red list")
	}
}

func TestJUnitPartial(t *testing.T) {
	dir, _ := render(t, "leader-kill-partial")
	b, _ := os.ReadFile(filepath.Join(dir, JUnitFile))
	s := validateJUnit(t, b)
	var names []string
	for _, c := range s.Suites[0].Cases {
		names = append(names, *c.Name)
	}
	if !strings.Contains(strings.Join(names, ","), "run completed") || *s.Suites[0].Failures < 1 {
		t.Errorf("partial run must fail a 'run completed' case: %v", names)
	}
}

func TestHgrm(t *testing.T) {
	dir, _ := render(t, "spot-reclaim-a")
	b, _ := os.ReadFile(filepath.Join(dir, HgrmFile))
	blocks := strings.Split(string(b), "#[op: ")
	if len(blocks) != 3 {
		t.Fatalf("want a block per op (read, write), got %d", len(blocks)-1)
	}
	var sum rundir.Summary
	rundir.ReadJSON(dir, rundir.SummaryFile, &sum)
	for _, blk := range blocks[1:] {
		op := blk[:strings.Index(blk, ",")]
		if !strings.Contains(blk, "Value\tPercentile\tTotalCount\t1/(1-Percentile)") || !strings.Contains(blk, "#[Max     =") {
			t.Errorf("%s: not the HdrHistogram percentile format", op)
		}
		m := regexp.MustCompile(`#\[Max\s+=\s+([0-9.]+), Total count\s+=\s+(\d+)\]`).FindStringSubmatch(blk)
		mx, _ := strconv.ParseFloat(m[1], 64)
		if want := sum.Ops[op].Max; mx < want*0.99 || mx > want*1.01 {
			t.Errorf("%s: hgrm max %v ms, summary max %v ms (unit mix-up?)", op, mx, want)
		}
	}
}

// TestSummaryConsistency: percentiles derived from the interval log match
// what the writer put in summary.json, so a partial run's derived figures
// can be trusted.
func TestSummaryConsistency(t *testing.T) {
	dir := copyRun(t, "spot-reclaim-a")
	want, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, rundir.SummaryFile))
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The load rounds summary.json's figures to µs; the log keeps ns.
	near := func(a, b float64) bool { return math.Abs(a-b) <= 0.001 }
	for op, w := range want.Summary.Ops {
		g := got.Summary.Ops[op]
		if g.Count != w.Count || g.Errors != w.Errors || !near(g.P99, w.P99) || !near(g.Max, w.Max) {
			t.Errorf("%s: derived %+v, summary %+v", op, g, w)
		}
	}
	if len(got.Summary.Phases) != len(want.Summary.Phases) {
		t.Fatalf("derived %d phases, summary has %d", len(got.Summary.Phases), len(want.Summary.Phases))
	}
	for i, p := range want.Summary.Phases {
		g := got.Summary.Phases[i]
		if g.Phase != p.Phase || !g.Start.Equal(p.Start) {
			t.Errorf("phase %d: derived %s@%s, summary %s@%s", i, g.Phase, g.Start, p.Phase, p.Start)
		}
	}
	for i, f := range want.Faults {
		g := got.Faults[i].Result
		if *g.HealedMs-*f.Result.HealedMs > 1 || g.Kind != f.Kind {
			j1, _ := json.Marshal(g)
			j2, _ := json.Marshal(f.Result)
			t.Errorf("fault %d: derived %s, summary %s", i+1, j1, j2)
		}
	}
}
