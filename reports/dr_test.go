package reports

import (
	"html/template"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

const drRun = "total-loss-restore"

// row returns the HTML of the table row <tr id="id">…</tr>.
func row(t *testing.T, html, id string) string {
	t.Helper()
	i := strings.Index(html, `<tr id="`+id+`"`)
	if i < 0 {
		t.Fatalf("row %q missing", id)
	}
	j := strings.Index(html[i:], "</tr>")
	return html[i : i+j]
}

func drSummary(t *testing.T, dir string) rundir.Summary {
	t.Helper()
	var s rundir.Summary
	if err := rundir.ReadJSON(dir, rundir.SummaryFile, &s); err != nil {
		t.Fatal(err)
	}
	if s.Restore == nil || len(s.Restore.Phases) != 5 || s.Restore.FirstWriteMs == nil || s.Restore.FirstReadMs == nil {
		t.Fatalf("fixture %s: want a restore with five phases and an RTO, got %+v", drRun, s.Restore)
	}
	return s
}

// TestDRSection: the restore of a total-loss run in every output: the
// snapshot restored, every phase of the RTO with its time after the loss,
// the first write and read, and the RPO counts; a row for the restore in
// the recovery table with its RTO, and the total loss's row with its
// outage.
func TestDRSection(t *testing.T) {
	dir := copyRun(t, drRun)
	s := drSummary(t, dir)
	rs := s.Restore
	if rs.BeforeSnapshot == 0 || rs.AfterSnapshot == 0 || rs.RPOWrites != rs.AfterSnapshot-rs.AfterPresent || !(rs.RPOSeconds > 0) {
		t.Fatalf("fixture's RPO is degenerate: %+v", rs)
	}
	x := renderAll(t, dir)
	if x.verdict.Text != "PASS" {
		t.Errorf("verdict %s, want PASS", x.verdict.Text)
	}
	dr := section(t, x.html, "dr")
	if !strings.Contains(dr, "<code>"+rs.Snapshot.Name+"</code>") || !strings.Contains(dr, fmtNum(int64(rs.Snapshot.Index))) || !strings.Contains(dr, HumanBytes(rs.Snapshot.Size)) {
		t.Errorf("DR section does not name the snapshot restored (%s, index %d, %d bytes):\n%s", rs.Snapshot.Name, rs.Snapshot.Index, rs.Snapshot.Size, dr)
	}
	if before := fmtMs(durMs(rs.LossAt.Sub(rs.Snapshot.Started))) + " before the loss"; !strings.Contains(dr, before) {
		t.Errorf("DR section lacks %q", before)
	}
	prev := 0.0
	for _, p := range rs.Phases {
		tr := row(t, dr, "phase-"+p.Name)
		if !strings.Contains(tr, "<td>"+fmtMs(p.Ms)+"</td><td>"+fmtMs(p.Ms-prev)+"</td>") || !strings.Contains(tr, `class="rto-bar"`) {
			t.Errorf("phase %s: want ended %s, took %s, a bar:\n%s", p.Name, fmtMs(p.Ms), fmtMs(p.Ms-prev), tr)
		}
		prev = p.Ms
	}
	for id, v := range map[string]float64{"rto-write": *rs.FirstWriteMs, "rto-read": *rs.FirstReadMs} {
		if tr := row(t, dr, id); !strings.Contains(tr, "<td>"+fmtMs(v)+"</td>") || !strings.Contains(tr, `class="rto-bar serve"`) {
			t.Errorf("%s: want %s:\n%s", id, fmtMs(v), tr)
		}
	}
	for id, want := range map[string][]int64{
		"rpo-before": {rs.BeforeSnapshot, rs.BeforeSnapshot, 0},
		"rpo-during": {rs.InFlight, rs.InFlightPresent, rs.InFlight - rs.InFlightPresent},
		"rpo-after":  {rs.AfterSnapshot, rs.AfterPresent, rs.RPOWrites},
	} {
		tr := row(t, dr, id)
		cells := "<td>" + fmtNum(want[0]) + "</td><td>" + fmtNum(want[1]) + "</td><td>" + fmtNum(want[2]) + "</td>"
		if !strings.Contains(tr, cells) {
			t.Errorf("%s: want %s:\n%s", id, cells, tr)
		}
	}
	if !strings.Contains(dr, "<dt>rpo_writes</dt><dd><b>"+fmtNum(rs.RPOWrites)+"</b>") || !strings.Contains(dr, "<dt>rpo_seconds</dt><dd><b>"+fmtMs(rs.RPOSeconds*1000)+"</b>") {
		t.Errorf("DR section lacks rpo_writes %d and rpo_seconds %gs", rs.RPOWrites, rs.RPOSeconds)
	}
	if strings.Contains(dr, "restore-error") {
		t.Error("a restore that worked shows an error")
	}

	// The recovery table: the total loss's outage, the restore's RTO.
	rec := section(t, x.html, "recovery")
	loss, restore := row(t, rec, "recovery-1"), row(t, rec, "recovery-2")
	if f := s.Faults[0]; !strings.Contains(loss, "total_loss") || !strings.Contains(loss, "<td>"+fmtMs(f.WriteErrorWindowMs)+"</td><td>"+fmtMs(f.WriteUnavailableMs)+"</td>") {
		t.Errorf("total loss row lacks its outage (%s):\n%s", fmtMs(f.WriteUnavailableMs), loss)
	}
	rto := "write " + fmtMs(*rs.FirstWriteMs) + " / read " + fmtMs(*rs.FirstReadMs)
	if !strings.Contains(restore, "<td>"+rto+"</td>") || !strings.Contains(restore, "new: node6, node7, node8, node9, node10") {
		t.Errorf("restore row lacks %q or the new nodes:\n%s", rto, restore)
	}
	if !strings.HasSuffix(loss, "<td>—</td>") {
		t.Errorf("total loss row has an RTO of its own:\n%s", loss)
	}

	// summary.md and junit.xml say the same.
	for _, want := range []string{"### Disaster recovery", rs.Snapshot.Name, "| provision (new nodes running) | " + fmtMs(rs.Phases[0].Ms) + " |",
		"| healthy (every voter) | " + fmtMs(rs.Phases[4].Ms) + " |", "| first write (RTO) | " + fmtMs(*rs.FirstWriteMs) + " |",
		"| after the snapshot, before the loss (the RPO) | " + fmtNumPlain(rs.AfterSnapshot), "**rpo_writes " + fmtNumPlain(rs.RPOWrites) + ", rpo_seconds " + fmtMs(rs.RPOSeconds*1000) + "**",
		"RTO (from the loss) |", rto} {
		if !strings.Contains(x.md, want) {
			t.Errorf("summary.md lacks %q:\n%s", want, x.md)
		}
	}
	junit, _ := os.ReadFile(filepath.Join(dir, JUnitFile))
	for _, want := range []string{"RTO by phase (after the loss): provision " + fmtMs(rs.Phases[0].Ms) + ", init " + fmtMs(rs.Phases[1].Ms),
		"first write " + fmtMs(*rs.FirstWriteMs), "RPO: " + fmtNumPlain(rs.RPOWrites) + " writes (" + fmtMs(rs.RPOSeconds*1000) + ")",
		"RTO from the total loss: " + rto} {
		if !strings.Contains(string(junit), want) {
			t.Errorf("junit.xml lacks %q", want)
		}
	}
	if f := *x.junit.Suites[0].Failures; f != 0 {
		t.Errorf("junit: %d failures in a run that passed", f)
	}
}

func fmtNumPlain(v int64) string { return strings.ReplaceAll(fmtNum(v), "\u202f", "") }

// TestDRRestoreFailed: a restore that failed (a new cluster under another
// transit key cannot decrypt the snapshot's keys) shows its error in red,
// the phases it never reached and an RTO of never; JUnit fails exactly
// the expectations the runner failed, rto among them, with the error.
func TestDRRestoreFailed(t *testing.T) {
	dir := copyRun(t, drRun)
	msg := "restore: snapshot-force: Error making API request. Code: 500. Errors: * failed to decrypt the keyring: cipher: message authentication failed"
	editSummary(t, dir, func(s *rundir.Summary) {
		rs := s.Restore
		rs.Error, rs.Phases = msg, rs.Phases[:2]
		rs.FirstWriteMs, rs.FirstReadMs = nil, nil
		rs.InFlight, rs.InFlightPresent, rs.AfterSnapshot, rs.RPOWrites, rs.RPOSeconds = 0, 0, 0, 0, 0
		s.Faults[1].HealedMs, s.Faults[1].Degraded = nil, "degraded (0/5 voters)"
		f := false
		s.Passed = &f
		for i, e := range s.Expectations {
			switch {
			case e.Name == "rto" || strings.HasPrefix(e.Name, "rpo_"):
				s.Expectations[i].Got, s.Expectations[i].Passed = "not measured: the restore failed: "+msg, false
			case strings.HasPrefix(e.Name, "healed_within (fault 2"):
				s.Expectations[i].Got, s.Expectations[i].Passed = "degraded (0/5 voters)", false
			}
		}
		s.Expectations = append(s.Expectations, rundir.Expectation{Name: "fault 2 (restore) ran", Want: "no error", Got: msg})
	})
	x := renderAll(t, dir)
	if x.verdict.Text != "FAIL" {
		t.Errorf("verdict %s, want FAIL", x.verdict.Text)
	}
	dr := section(t, x.html, "dr")
	if !strings.Contains(dr, `<p class="bad" id="restore-error">RESTORE FAILED: `+template.HTMLEscapeString(msg)+`</p>`) {
		t.Errorf("no red restore error:\n%s", dr)
	}
	for _, p := range []string{"restore", "unsealed", "healthy"} {
		if tr := row(t, dr, "phase-"+p); !strings.Contains(tr, `<td class="bad">not reached</td>`) {
			t.Errorf("phase %s not shown as not reached:\n%s", p, tr)
		}
	}
	for _, id := range []string{"rto-write", "rto-read"} {
		if tr := row(t, dr, id); !strings.Contains(tr, `<td class="bad">never (within the run)</td>`) {
			t.Errorf("%s:\n%s", id, tr)
		}
	}
	if !strings.Contains(dr, "RPO: not counted (the restore failed)") {
		t.Error("the RPO of a failed restore is not said to be uncounted")
	}
	if tr := row(t, section(t, x.html, "recovery"), "recovery-2"); !strings.Contains(tr, `<td class="bad">write never / read never</td>`) {
		t.Errorf("restore row:\n%s", tr)
	}
	// JUnit fails exactly the failed expectations.
	var failedExp, failedCases []string
	var s rundir.Summary
	rundir.ReadJSON(dir, rundir.SummaryFile, &s)
	for _, e := range s.Expectations {
		if !e.Passed {
			failedExp = append(failedExp, e.Name)
		}
	}
	for _, c := range x.junit.Suites[0].Cases {
		if len(c.Failures) > 0 {
			failedCases = append(failedCases, *c.Name)
		}
	}
	slices.Sort(failedExp)
	slices.Sort(failedCases)
	if !slices.Equal(failedExp, failedCases) {
		t.Errorf("junit failures %v, want exactly the failed expectations %v", failedCases, failedExp)
	}
	if typ, m, _ := x.failure(t, "rto"); typ != "expectation" || !strings.Contains(m, msg) {
		t.Errorf("rto failure %q %q, want the restore's error", typ, m)
	}
	if !strings.Contains(x.md, "> **RESTORE FAILED: "+msg+"**") {
		t.Errorf("summary.md lacks the restore error:\n%s", x.md)
	}
	if junit, _ := os.ReadFile(filepath.Join(dir, JUnitFile)); !strings.Contains(string(junit), "RESTORE FAILED: "+msg) {
		t.Error("junit.xml system-out lacks the restore error")
	}
}

// TestSnapshotTicks: one tick per stored snapshot and one × per failed
// attempt on every latency and throughput chart, none elsewhere; the
// same from the events of a run without summary.json; the cost line.
func TestSnapshotTicks(t *testing.T) {
	dir := copyRun(t, drRun)
	s := drSummary(t, dir)
	ok, failed := 0, 0
	for _, sn := range s.Snapshots {
		if sn.Error != "" {
			failed++
		} else {
			ok++
		}
	}
	if ok < 3 || failed == 0 {
		t.Fatalf("fixture: %d snapshots, %d failed; want several and a failure", ok, failed)
	}
	count := func(x rendered, ops int) {
		t.Helper()
		// colSnap and colSnapFail, as vgsvg writes them.
		tick, cross := "stroke:#6A3D9A", "stroke:#E7298A"
		lat, thr := section(t, x.html, "latency"), section(t, x.html, "throughput")
		if n := strings.Count(lat, tick); n != ok*ops {
			t.Errorf("latency charts: %d snapshot ticks, want %d per chart × %d", n, ok, ops)
		}
		if n := strings.Count(lat, cross); n != failed*ops {
			t.Errorf("latency charts: %d failed-snapshot marks, want %d per chart × %d", n, failed, ops)
		}
		if n, m := strings.Count(thr, tick), strings.Count(thr, cross); n != ok || m != failed {
			t.Errorf("throughput chart: %d ticks and %d failed marks, want %d and %d", n, m, ok, failed)
		}
		if n := strings.Count(section(t, x.html, "nodes"), tick); n != 0 {
			t.Errorf("node timeline has %d snapshot ticks", n)
		}
	}
	x := renderAll(t, dir)
	count(x, 2)
	c := s.SnapshotP99
	cost := "snapshots: " + fmtNumPlain(int64(ok)) + " taken (" + fmtNumPlain(int64(failed)) + " failed), mean " + fmtMs(c.MeanDurationMs) + ", mean size " + HumanBytes(c.MeanSize) +
		"; p99 during " + fmtMs(c.DuringP99Ms) + " (" + fmtNum(c.DuringCount) + " requests) vs outside " + fmtMs(c.OutsideP99Ms) + " (" + fmtNum(c.OutsideCount) + " requests)"
	if !strings.Contains(section(t, x.html, "latency"), `id="snapshot-cost">`+cost+`</p>`) || !strings.Contains(section(t, x.html, "checks"), cost) {
		t.Errorf("snapshot cost line %q missing from the latency section or the checks", cost)
	}
	if !strings.Contains(x.md, cost) {
		t.Errorf("summary.md lacks %q", cost)
	}
	if c.DuringCount == 0 || !(c.DuringP99Ms > c.OutsideP99Ms*0.5) {
		t.Errorf("fixture's snapshot cost is degenerate: %+v", c)
	}

	// A run cut short: the events say the same.
	os.Remove(filepath.Join(dir, rundir.SummaryFile))
	r := mustLoad(t, dir)[0]
	if len(r.Snapshots) != ok+failed {
		t.Fatalf("from events: %d snapshots, want %d", len(r.Snapshots), ok+failed)
	}
	for i, m := range r.Snapshots {
		want := s.Snapshots[i]
		if m.Failed() != (want.Error != "") || !m.Failed() && (m.Name != want.Name || m.Size != want.Size || m.Index != want.Index || !m.T.Equal(want.Started)) {
			t.Errorf("snapshot %d from events %+v, summary %+v", i, m, want)
		}
	}
	x = renderAll(t, dir)
	count(x, 2)
	// The restore's phases come from its notes; RTO and RPO were never
	// measured, and the report says so rather than "never".
	dr := section(t, x.html, "dr")
	loss := r.Faults[0].Start
	for _, p := range s.Restore.Phases {
		at := s.Restore.LossAt.Add(msDur(p.Ms))
		if tr := row(t, dr, "phase-"+p.Name); !strings.Contains(tr, "<td>"+fmtMs(durMs(at.Sub(loss)))+"</td>") {
			t.Errorf("derived phase %s: want %s after the loss:\n%s", p.Name, fmtMs(durMs(at.Sub(loss))), tr)
		}
	}
	if !strings.Contains(dr, "Derived from the events of a run cut short") || !strings.Contains(row(t, dr, "rto-write"), "not known (the run was cut short)") ||
		!strings.Contains(dr, "RPO: not counted (the run ended before the read-back)") {
		t.Errorf("derived DR section:\n%s", dr)
	}

	// A run without snapshots has no tick and no cost line.
	_, html := render(t, "spot-reclaim-a")
	if strings.Contains(html, "stroke:#6A3D9A") || strings.Contains(html, "snapshot-cost") || strings.Contains(html, `<section id="dr"`) {
		t.Error("a run without snapshots shows snapshot marks or a DR section")
	}
}

// TestRestoreLanes: the restored cluster's node6–node10 get lanes, from
// their provisioning on, after node1–node5 in natural order; the old
// nodes end removed.
func TestRestoreLanes(t *testing.T) {
	dir := copyRun(t, drRun)
	s := drSummary(t, dir)
	r := mustLoad(t, dir)[0]
	want := []string{"node1", "node2", "node3", "node4", "node5", "node6", "node7", "node8", "node9", "node10"}
	var lanes []string
	for _, l := range r.Lanes {
		lanes = append(lanes, l.Node)
		if len(l.Segs) == 0 {
			t.Errorf("%s: empty lane", l.Node)
			continue
		}
		isNew := slices.Contains(want[5:], l.Node)
		if first := l.Segs[0].Start; isNew != first.After(s.Restore.LossAt) {
			t.Errorf("%s: lane starts at %s, loss at %s", l.Node, first, s.Restore.LossAt)
		}
		last := l.Segs[len(l.Segs)-1].State
		if !isNew && last != "removed" || isNew && last != "leader" && last != "follower" {
			t.Errorf("%s ends %s", l.Node, last)
		}
	}
	if !slices.Equal(lanes, want) {
		t.Errorf("lanes %v, want %v", lanes, want)
	}
	x := renderAll(t, dir)
	nodes := section(t, x.html, "nodes")
	for _, n := range append(want, "uninitialized", "removed", "sealed") {
		if !strings.Contains(nodes, ">"+n+"<") {
			t.Errorf("node timeline lacks %q", n)
		}
	}
	if !strings.Contains(section(t, x.html, "dr"), "<dt>restored cluster</dt><dd>node6, node7, node8, node9, node10</dd>") {
		t.Error("DR section does not name the restored cluster")
	}
}

// TestCompareRTODoubled: the restore's RTO, RPO and the snapshots' p99 are
// compared rows; a doubled RTO is a regression on exactly its two rows, a
// doubled RPO on its own, and a threshold switches one off.
func TestCompareRTODoubled(t *testing.T) {
	a := filepath.Join(runsDir, drRun)
	c, err := Compare(mustLoad(t, a), mustLoad(t, a), DefaultCompareOptions())
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]Row{}
	for _, r := range c.Rows {
		keys[r.Key] = r
	}
	for _, k := range []string{"restore/rto_write", "restore/rto_read", "restore/rpo_writes", "restore/rpo_seconds", "snapshots/during/p99", "snapshots/outside/p99"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("no compared row %s", k)
		}
	}
	if c.Regressed() {
		t.Errorf("a run against itself regressed: %v", regressed(c))
	}
	worse := func(edit func(*rundir.RestoreResult)) string {
		dir := copyRun(t, drRun)
		editSummary(t, dir, func(s *rundir.Summary) { edit(s.Restore) })
		return dir
	}
	b := worse(func(rs *rundir.RestoreResult) {
		w, r := *rs.FirstWriteMs*2, *rs.FirstReadMs*2
		rs.FirstWriteMs, rs.FirstReadMs = &w, &r
	})
	c, _ = Compare(mustLoad(t, a), mustLoad(t, b), DefaultCompareOptions())
	if got := regressed(c); !slices.Equal(got, []string{"restore/rto_write", "restore/rto_read"}) {
		t.Errorf("doubled RTO: regressions %v, want restore/rto_write and restore/rto_read", got)
	}
	for _, r := range c.Regressions {
		if r.DeltaPct < 99.9 || r.DeltaPct > 100.1 {
			t.Errorf("%s: change %.1f%%, want +100%%", r.Key, r.DeltaPct)
		}
	}
	var md strings.Builder
	c.WriteMarkdown(&md)
	if !strings.Contains(md.String(), "| restore/rto_write |") || !strings.Contains(md.String(), "**REGRESSION") {
		t.Errorf("markdown:\n%s", md.String())
	}
	o := DefaultCompareOptions()
	o.Thresholds = map[string]float64{"rto_write": -1}
	c, _ = Compare(mustLoad(t, a), mustLoad(t, b), o)
	if got := regressed(c); !slices.Equal(got, []string{"restore/rto_read"}) {
		t.Errorf("rto_write off: regressions %v", got)
	}

	b = worse(func(rs *rundir.RestoreResult) { rs.RPOSeconds *= 2 })
	c, _ = Compare(mustLoad(t, a), mustLoad(t, b), DefaultCompareOptions())
	if got := regressed(c); !slices.Equal(got, []string{"restore/rpo_seconds"}) {
		t.Errorf("doubled rpo_seconds: regressions %v", got)
	}
	// A restore that failed in B never served again: a regression.
	b = worse(func(rs *rundir.RestoreResult) { rs.Error, rs.FirstWriteMs, rs.FirstReadMs = "failed", nil, nil })
	c, _ = Compare(mustLoad(t, a), mustLoad(t, b), DefaultCompareOptions())
	if got := regressed(c); !slices.Contains(got, "restore/rto_write") {
		t.Errorf("failed restore in B: regressions %v", got)
	}
}
