package reports

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/reports/internal/synth"
)

func mustLoad(t *testing.T, dirs ...string) []*Run {
	t.Helper()
	var rs []*Run
	for _, d := range dirs {
		r, err := Load(d)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	return rs
}

func regressed(c *Comparison) []string {
	var ks []string
	for _, r := range c.Regressions {
		ks = append(ks, r.Key)
	}
	return ks
}

func TestCompareSameScenario(t *testing.T) {
	a := mustLoad(t, filepath.Join(runsDir, "spot-reclaim-a"))
	b := mustLoad(t, filepath.Join(runsDir, "spot-reclaim-b"))
	c, err := Compare(a, b, DefaultCompareOptions())
	if err != nil {
		t.Fatal(err)
	}
	if c.Regressed() {
		t.Errorf("two runs of the same scenario regressed at 10%%: %v", regressed(c))
	}
	// 2 ops × (run + 4 phases) × 5 figures, 11 recovery rows (fault 1
	// did not hit the leader: no leader_elected), 2 harness rows.
	if len(c.Rows) != 63 {
		t.Errorf("%d rows; want 2 ops × (run + 4 phases) × 5 figures + 11 recovery + 2 harness = 63", len(c.Rows))
	}
	if c.Rows[0].Group != "recovery" {
		t.Error("recovery rows should come first")
	}
	keys := map[string]Row{}
	for _, r := range c.Rows {
		keys[r.Key] = r
	}
	for _, k := range []string{"fault#2 kill/write_unavailable", "fault#2 kill/write_errors", "fault#1 spot_reclaim/read_errors", "harness/quiet_requests_per_s"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("no row %s", k)
		}
	}
	var md, tbl, html bytes.Buffer
	c.WriteMarkdown(&md)
	c.WriteTable(&tbl)
	if err := c.WriteHTML(&html, a, b); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"markdown": md.String(), "table": tbl.String(), "html": html.String()} {
		if !strings.Contains(out, "fault#2 kill/leader_elected") || !strings.Contains(out, "write/run/p99.9") {
			t.Errorf("%s output lacks rows", name)
		}
		if strings.Contains(out, "NaN") {
			t.Errorf("%s output has NaN", name)
		}
	}
	if n := strings.Count(html.String(), "<svg"); n != 4 {
		t.Errorf("compare html: %d charts, want 2 overlays + 2 distributions", n)
	}
}

// worseCopy copies run a and lets edit change its summary (and samples).
func worseCopy(t *testing.T, edit func(*rundir.Summary, *rundir.Sample)) string {
	t.Helper()
	dir := copyRun(t, "spot-reclaim-a")
	var s rundir.Summary
	if err := rundir.ReadJSON(dir, rundir.SummaryFile, &s); err != nil {
		t.Fatal(err)
	}
	var samples []rundir.Sample
	rundir.ReadLines(dir, rundir.SamplesFile, func(x rundir.Sample) error {
		samples = append(samples, x)
		return nil
	})
	edit(&s, nil)
	for i := range samples {
		edit(nil, &samples[i])
	}
	if err := rundir.WriteJSON(dir, rundir.SummaryFile, s); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, rundir.SamplesFile))
	app, _ := rundir.OpenAppender(dir, rundir.SamplesFile)
	for _, x := range samples {
		app.Append(x)
	}
	app.Close()
	return dir
}

func TestCompareRecoveryWorse(t *testing.T) {
	b := worseCopy(t, func(s *rundir.Summary, _ *rundir.Sample) {
		if s != nil {
			v := *s.Faults[0].HealedMs * 1.5
			s.Faults[0].HealedMs = &v
		}
	})
	c, err := Compare(mustLoad(t, filepath.Join(runsDir, "spot-reclaim-a")), mustLoad(t, b), DefaultCompareOptions())
	if err != nil {
		t.Fatal(err)
	}
	if got := regressed(c); len(got) != 1 || got[0] != "fault#1 spot_reclaim/healed" {
		t.Fatalf("regressions %v, want exactly fault#1 spot_reclaim/healed", got)
	}
	if r := c.Regressions[0]; r.DeltaPct < 49.9 || r.DeltaPct > 50.1 {
		t.Errorf("change %.1f%%, want +50%%", r.DeltaPct)
	}
	// Switched off, it passes.
	o := DefaultCompareOptions()
	o.Thresholds = map[string]float64{"healed": -1}
	c, _ = Compare(mustLoad(t, filepath.Join(runsDir, "spot-reclaim-a")), mustLoad(t, b), o)
	if c.Regressed() {
		t.Errorf("healed=off still regressed: %v", regressed(c))
	}
}

func TestCompareLatencyWorse(t *testing.T) {
	b := worseCopy(t, func(s *rundir.Summary, x *rundir.Sample) {
		if s != nil {
			st := s.Ops["write"]
			st.P99 *= 1.5
			s.Ops["write"] = st
		}
		if x != nil {
			st := x.Ops["write"]
			st.P99 *= 1.5
			x.Ops["write"] = st
		}
	})
	c, err := Compare(mustLoad(t, filepath.Join(runsDir, "spot-reclaim-a")), mustLoad(t, b), DefaultCompareOptions())
	if err != nil {
		t.Fatal(err)
	}
	got := regressed(c)
	if len(got) != 1 || got[0] != "write/run/p99" {
		t.Fatalf("regressions %v, want exactly write/run/p99", got)
	}
	if c.Regressions[0].TestOn != "seconds" || !(c.Regressions[0].P < 0.05) {
		t.Errorf("want a significant per-second test, got %s p=%v", c.Regressions[0].TestOn, c.Regressions[0].P)
	}
	// Only a summary edit, with the seconds unchanged, is within noise:
	// the per-second samples contradict it.
	b2 := worseCopy(t, func(s *rundir.Summary, _ *rundir.Sample) {
		if s != nil {
			st := s.Ops["read"]
			st.P50 *= 1.5
			s.Ops["read"] = st
		}
	})
	c, _ = Compare(mustLoad(t, filepath.Join(runsDir, "spot-reclaim-a")), mustLoad(t, b2), DefaultCompareOptions())
	if c.Regressed() {
		t.Errorf("p50 +0.9 ms is under the 1 ms floor, yet regressed: %v", regressed(c))
	}
}

// TestCompareRepetitions: five runs a side; B's latency 40 % higher is
// found over the repetitions, and the same scenario is not.
func TestCompareRepetitions(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 15 runs")
	}
	gen := func(side string, seed uint64, scale float64) string {
		o := synth.SpotReclaim(filepath.Join(t.TempDir(), side), seed, 60)
		o.Faults = o.Faults[:1]
		o.Metrics, o.NoLedger = false, true
		o.LatencyScale = scale
		if err := synth.Generate(o); err != nil {
			t.Fatal(err)
		}
		return o.Dir
	}
	var a, same, worse []string
	for i := uint64(0); i < 5; i++ {
		a = append(a, gen("a", 10+i, 1))
		same = append(same, gen("s", 20+i, 1))
		worse = append(worse, gen("w", 30+i, 1.4))
	}
	ra, rs, rw := mustLoad(t, a...), mustLoad(t, same...), mustLoad(t, worse...)
	c, err := Compare(ra, rs, DefaultCompareOptions())
	if err != nil {
		t.Fatal(err)
	}
	if c.Regressed() {
		t.Errorf("same scenario, 5 runs a side, regressed: %v", regressed(c))
	}
	c, _ = Compare(ra, rw, DefaultCompareOptions())
	found := false
	for _, r := range c.Regressions {
		if r.Key == "write/run/p50" {
			found = true
			if r.TestOn != "repetitions" || r.SpreadA == "" || len(r.A) != 5 {
				t.Errorf("write/run/p50: test on %q, spread %q, n=%d", r.TestOn, r.SpreadA, len(r.A))
			}
		}
	}
	if !found {
		t.Errorf("40%% slower B not caught on write/run/p50: %v", regressed(c))
	}
}

// TestCompareStallAndObserver: a longer stall window regresses on its own
// row; a different observer is a warning, never a regression.
func TestCompareStallAndObserver(t *testing.T) {
	a := filepath.Join(runsDir, "spot-reclaim-a")
	b := worseCopy(t, func(s *rundir.Summary, _ *rundir.Sample) {
		if s != nil {
			s.Faults[1].WriteUnavailableMs += 3000 // stalled 3 s longer, failing no longer
			s.HarnessQuietPerS *= 3
			s.HarnessRequestsPerS *= 3
		}
	})
	c, err := Compare(mustLoad(t, a), mustLoad(t, b), DefaultCompareOptions())
	if err != nil {
		t.Fatal(err)
	}
	if got := regressed(c); len(got) != 1 || got[0] != "fault#2 kill/write_unavailable" {
		t.Errorf("regressions %v, want exactly fault#2 kill/write_unavailable (the stall window)", got)
	}
	warned := false
	for _, w := range c.Warnings {
		warned = warned || strings.Contains(w, "the harness's own traffic outside faults differs")
	}
	if !warned {
		t.Errorf("no observer warning: %v", c.Warnings)
	}
	var tbl bytes.Buffer
	c.WriteTable(&tbl)
	if !strings.Contains(tbl.String(), "harness/quiet_requests_per_s") || !strings.Contains(tbl.String(), "not judged") {
		t.Errorf("table lacks the harness rows:\n%s", tbl.String())
	}
	// An INVALID or unverified side is named in the warnings.
	bad := worseCopy(t, func(s *rundir.Summary, _ *rundir.Sample) {
		if s != nil {
			s.Invalid = []string{"max send lag 273ms"}
			s.Verified = false
		}
	})
	c, _ = Compare(mustLoad(t, a), mustLoad(t, bad), DefaultCompareOptions())
	all := strings.Join(c.Warnings, "\n")
	if !strings.Contains(all, "is INVALID") || !strings.Contains(all, "NOT VERIFIED") {
		t.Errorf("warnings:\n%s", all)
	}
}
