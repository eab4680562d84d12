package reports

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

func fp(v float64) *float64 { return &v }

// capDoc is a hand-written capacity.json: a knee at 400, a search that
// stopped generator-bound, one below its first rate.
func capDoc() *rundir.Capacity {
	step := func(i int, rate, p99 float64, v string) rundir.CapacityStep {
		return rundir.CapacityStep{Index: i, Rate: rate, Verdict: v, P50Ms: p99 / 3, P99Ms: p99, Achieved: rate, Count: int64(rate * 10),
			GeneratorCPU: fp(0.1), NodeCPU: map[string]float64{"node1": 0.4, "node2": 0.2}}
	}
	t0 := time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)
	return &rundir.Capacity{
		SLO: rundir.SLO{P99Ms: 100, ErrorPct: 0.1, AchievedPct: 98, MaxLatePct: 1, LateMs: 10}, WarmupS: 5, HoldS: 15,
		StartRate: 100, Factor: 2, MaxRate: 10000, Precision: 0.05, Started: t0, Ended: t0.Add(time.Hour),
		Series: []rundir.CapacitySeries{
			{Name: "3 nodes, read=100", Status: rundir.SeriesKnee, Capacity: fp(400), LowerBound: fp(400), FirstBad: fp(420), Verified: true, AckedWrites: 10,
				Steps: []rundir.CapacityStep{step(1, 100, 5, rundir.StepMet), step(2, 200, 8, rundir.StepMet), step(3, 400, 40, rundir.StepMet), step(4, 800, 900, rundir.StepBroken), step(5, 420, 130, rundir.StepBroken)}},
			{Name: "5 nodes, read=100", Status: rundir.SeriesGeneratorBound, LowerBound: fp(200), Verified: true, Reason: "the generator fell behind at 400 req/s",
				Steps: []rundir.CapacityStep{step(1, 100, 5, rundir.StepMet), step(2, 200, 8, rundir.StepMet), step(3, 400, 150, rundir.StepGeneratorBound)}},
		},
	}
}

func TestJudgeCapacity(t *testing.T) {
	doc := capDoc()
	if v := JudgeCapacity(doc); v.Text != "INVALID" || len(v.Invalid) != 1 {
		t.Errorf("generator-bound series: %s %v, want INVALID", v.Text, v.Invalid)
	}
	doc.Series = doc.Series[:1]
	if v := JudgeCapacity(doc); v.Text != "PASS" {
		t.Errorf("knee: %s %v", v.Text, v.Failed)
	}
	doc.ExpectRate = 500
	if v := JudgeCapacity(doc); v.Text != "FAIL" || !strings.Contains(strings.Join(v.Failed, ";"), "sustains 400 req/s, want ≥ 500") {
		t.Errorf("gate missed: %s %v", v.Text, v.Failed)
	}
	doc.ExpectRate = 300
	doc.Series[0].LostWrites = 2
	if v := JudgeCapacity(doc); v.Text != "FAIL" {
		t.Errorf("lost writes: %s", v.Text)
	}
	doc.Series[0].LostWrites, doc.Series[0].Verified = 0, false
	if v := JudgeCapacity(doc); v.Text != "FAIL" {
		t.Errorf("unverified writes: %s", v.Text)
	}
	doc.Series[0].Verified, doc.Ended = true, time.Time{}
	if v := JudgeCapacity(doc); v.Text != "PARTIAL" {
		t.Errorf("cut short: %s", v.Text)
	}
	below := rundir.CapacitySeries{Status: rundir.SeriesBelowStart, Steps: []rundir.CapacityStep{{Rate: 100, Verdict: rundir.StepBroken}}}
	if got := CapacityText(below); got != "< 100 req/s" {
		t.Errorf("below start: %q", got)
	}
	if got := CapacityText(capDoc().Series[1]); !strings.HasPrefix(got, "not measured (generator-bound") {
		t.Errorf("generator-bound: %q", got)
	}
}

func TestRenderCapacity(t *testing.T) {
	dir := t.TempDir()
	doc := capDoc()
	doc.ExpectRate = 300
	if err := rundir.WriteJSON(dir, rundir.CapacityFile, doc); err != nil {
		t.Fatal(err)
	}
	if err := Render(dir); err != nil {
		t.Fatal(err)
	}
	html, _ := os.ReadFile(filepath.Join(dir, HTMLFile))
	for _, want := range []string{"<svg", "INVALID", "400 req/s", "node1 0.40", "SLO p99 100ms"} {
		if !bytes.Contains(html, []byte(want)) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	junit, _ := os.ReadFile(filepath.Join(dir, JUnitFile))
	// Per series: measured, gate, ledger; the generator-bound one fails two.
	if !bytes.Contains(junit, []byte(`tests="6" failures="2"`)) {
		t.Errorf("junit:\n%s", junit)
	}
	md, _ := os.ReadFile(filepath.Join(dir, MarkdownFile))
	if !bytes.Contains(md, []byte("| 3 nodes, read=100 | 400 req/s | knee |")) {
		t.Errorf("summary.md:\n%s", md)
	}
}

func TestCompareCapacity(t *testing.T) {
	a, b := capDoc(), capDoc()
	*b.Series[0].Capacity = 300 // the knee moved down 25 %
	c, err := CompareCapacity(a, b, 0.10)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Regressed() || !c.Rows[0].Regressed || *c.Rows[0].Change != -0.25 || c.Rows[1].Regressed {
		t.Errorf("rows: %+v", c.Rows)
	}
	if c, _ := CompareCapacity(a, b, 0.30); c.Regressed() {
		t.Errorf("25%% down with 30%% allowed regressed: %+v", c.Rows)
	}
	b.Series[0].Capacity, b.Series[0].Status = nil, rundir.SeriesGeneratorBound
	if c, _ := CompareCapacity(a, b, 0.30); !c.Rows[0].Regressed {
		t.Errorf("B measured nothing: %+v", c.Rows[0])
	}
	var buf bytes.Buffer
	if err := c.WriteTable(&buf); err != nil || !strings.Contains(buf.String(), "REGRESSED") {
		t.Errorf("table: %v\n%s", err, buf.String())
	}
	buf.Reset()
	if err := c.WriteHTML(&buf); err != nil || !strings.Contains(buf.String(), "REGRESSED") {
		t.Errorf("html: %v", err)
	}
	b.SLO.P99Ms = 50
	if _, err := CompareCapacity(a, b, 0.1); err == nil || !strings.Contains(err.Error(), "different SLOs") {
		t.Errorf("different SLOs compared: %v", err)
	}
}
