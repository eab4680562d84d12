package reports

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/reports/internal/synth"
)

// go test ./reports -run TestGenerateTestdata -update rewrites the
// checked-in run directories under testdata/runs from the simulator, so
// they stay realistic when the run directory contract grows.
// TestTestdataUpToDate fails until they are.
var update = flag.Bool("update", false, "regenerate testdata/runs")

const runsDir = "../testdata/runs"

// testRuns are the checked-in run directories and how they were made. The
// complete spot-reclaim runs have no ledger.jsonl (2 × 1 MB): their
// summary.json carries the ledger's verdict, and reports read the ledger
// only when there is no summary, as in the partial run.
func testRuns() map[string]synth.Options {
	a := synth.SpotReclaim("", 1, 120)
	b := synth.SpotReclaim("", 2, 120)
	a.NoLedger, b.NoLedger = true, true
	partial := synth.SpotReclaim("", 3, 120)
	partial.Scenario = "leader-kill"
	partial.Faults = partial.Faults[1:] // the leader kill, at 70 s
	partial.Faults[0].At = 30 * time.Second
	partial.CutAt = 41 // SIGKILLed 11 s after the fault, before it healed
	quorum := synth.QuorumLoss("", 4, 60)
	dr := synth.TotalLossRestore("", 5)
	dr.NoLedger = true
	return map[string]synth.Options{
		"spot-reclaim-a":         a,
		"spot-reclaim-b":         b,
		"leader-kill-partial":    partial,
		"quorum-loss-unverified": quorum,
		"total-loss-restore":     dr,
	}
}

func TestGenerateTestdata(t *testing.T) {
	if !*update {
		t.Skip("run with -update to regenerate testdata/runs")
	}
	for name, o := range testRuns() {
		o.Dir = filepath.Join(runsDir, name)
		if err := os.RemoveAll(o.Dir); err != nil {
			t.Fatal(err)
		}
		if err := synth.Generate(o); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// TestTestdataUpToDate: the checked-in runs are exactly what the simulator
// writes today, so a change to synth (or to the rundir types it writes
// with) cannot leave stale fixtures behind.
func TestTestdataUpToDate(t *testing.T) {
	if *update {
		t.Skip("regenerating")
	}
	if runtime.GOARCH != "amd64" {
		// Go may fuse x*y+z into one FMA instruction on arm64, ppc64 and
		// s390x, which can change a simulated latency's last bit.
		t.Skip("testdata/runs is generated on amd64; other architectures may round floats differently")
	}
	for name, o := range testRuns() {
		o.Dir = filepath.Join(t.TempDir(), name)
		if err := synth.Generate(o); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := filepath.Join(runsDir, name)
		var files []string
		for _, d := range []string{o.Dir, want} {
			filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
				if err == nil && !e.IsDir() {
					rel, _ := filepath.Rel(d, p)
					if !slices.Contains(files, rel) {
						files = append(files, rel)
					}
				}
				return nil
			})
		}
		for _, f := range files {
			got, err1 := os.ReadFile(filepath.Join(o.Dir, f))
			old, err2 := os.ReadFile(filepath.Join(want, f))
			if err1 != nil || err2 != nil || !bytes.Equal(got, old) {
				t.Errorf("%s/%s differs from what synth writes now: run go test ./reports -run TestGenerateTestdata -update", name, f)
			}
		}
	}
}

// runnerKinds are the event kinds the runner writes (scenarios/runner and
// its watcher), and which carry a fault index. Notes may or may not: a
// restore's phases and a failed fault action carry theirs, the snapshot
// agent's failures and the run's own notes none.
var runnerKinds = map[string]bool{ // kind -> carries a fault index
	rundir.EvRunStart: false, rundir.EvPhase: false,
	rundir.EvFaultNotice: true, rundir.EvFaultStart: true, rundir.EvFaultEnd: true,
	rundir.EvLeader: false, rundir.EvNodeState: false, rundir.EvSnapshot: false,
	rundir.EvWriteOK: true, rundir.EvHealed: true, rundir.EvRunEnd: false,
}

// TestTestdataFollowsRunner checks every fixture's events.jsonl against the
// runner's contract, in file order: only the runner's kinds; a fault index
// on fault actions, write_ok and healed only; leader and node_state name a
// node and no fault; write_ok and healed only in a run that reached its
// end, after every other event but run_end (the runner computes them in
// finish); one phase sequence before, during, recovery, after.
func TestTestdataFollowsRunner(t *testing.T) {
	names := []string{realRun}
	for name := range testRuns() {
		names = append(names, name)
	}
	for _, name := range names {
		checkRunnerContract(t, name, filepath.Join(runsDir, name))
	}
}

// realRun is a run directory recorded from a real `vaultstorm run`
// (leader-kill at --time-scale 0.1, its ledger trimmed to 200 lines, node
// logs left out): the synthetic fixtures are checked against the same
// contract as it, so the two cannot drift apart.
const realRun = "real-leader-kill"

func checkRunnerContract(t *testing.T, name, dir string) {
	t.Helper()
	var meta rundir.Meta
	if err := rundir.ReadJSON(dir, rundir.MetaFile, &meta); err != nil {
		t.Fatal(err)
	}
	var evs []rundir.Event
	if err := rundir.ReadLines(dir, rundir.EventsFile, func(e rundir.Event) error {
		evs = append(evs, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 {
		t.Fatalf("%s: no events", name)
	}
	finishing := false
	var phases []string
	for i, e := range evs {
		withFault, ok := runnerKinds[e.Kind]
		if e.Kind == rundir.EvNote {
			withFault, ok = e.Fault != 0, true
		}
		switch {
		case !ok:
			t.Errorf("%s: event %d: kind %q is not one the runner writes", name, i+1, e.Kind)
		case withFault != (e.Fault != 0):
			t.Errorf("%s: event %d: %s with fault %d", name, i+1, e.Kind, e.Fault)
		case (e.Kind == rundir.EvLeader || e.Kind == rundir.EvNodeState) && e.Node == "":
			t.Errorf("%s: event %d: %s names no node", name, i+1, e.Kind)
		}
		switch e.Kind {
		case rundir.EvWriteOK, rundir.EvHealed:
			if meta.Partial() {
				t.Errorf("%s: %s in a run cut short: the runner writes it only in finish", name, e.Kind)
			}
			finishing = true
		case rundir.EvRunEnd:
		case rundir.EvPhase:
			phases = append(phases, e.Phase)
			fallthrough
		default:
			if finishing {
				t.Errorf("%s: event %d (%s) after finish's write_ok/healed", name, i+1, e.Kind)
			}
		}
	}
	if want := []string{"before", "during", "recovery", "after"}; !slices.Equal(phases, want[:min(len(phases), len(want))]) {
		t.Errorf("%s: phases %v, want a prefix of %v", name, phases, want)
	}
	if meta.Partial() == (evs[len(evs)-1].Kind == rundir.EvRunEnd) {
		t.Errorf("%s: partial %v, yet last event %s", name, meta.Partial(), evs[len(evs)-1].Kind)
	}
	if !strings.HasPrefix(evs[0].Kind, rundir.EvRunStart) {
		t.Errorf("%s: first event %s, want run_start", name, evs[0].Kind)
	}
}

// The real run renders, and its report says what its summary says.
func TestRealRun(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(runsDir, realRun))); err != nil {
		t.Fatal(err)
	}
	x := renderAll(t, dir)
	var s rundir.Summary
	if err := rundir.ReadJSON(dir, rundir.SummaryFile, &s); err != nil {
		t.Fatal(err)
	}
	if s.Passed == nil || !*s.Passed || x.verdict.Text != "PASS" {
		t.Errorf("verdict %s, summary passed %v", x.verdict.Text, s.Passed)
	}
	if !s.Verified || s.Final == nil || s.Final.Error != "" || s.Linearizable == nil || !*s.Linearizable || s.HarnessRequests == 0 {
		t.Errorf("the real run lacks the verdict's inputs: verified %v, final %+v, linearizable %v, harness %d",
			s.Verified, s.Final, s.Linearizable, s.HarnessRequests)
	}
	for _, want := range []string{"leader_within (fault 1 kill)", "linearizable: yes", "harness requests:"} {
		if !strings.Contains(x.html, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
}
