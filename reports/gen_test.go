package reports

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/reports/internal/synth"
)

// go test ./reports -run TestGenerateTestdata -update rewrites the
// checked-in run directories under testdata/runs from the simulator, so
// they stay realistic when the run directory contract grows.
var update = flag.Bool("update", false, "regenerate testdata/runs")

const runsDir = "../testdata/runs"

// testRuns are the checked-in run directories and how they were made.
func testRuns() map[string]synth.Options {
	a := synth.SpotReclaim("", 1, 120)
	b := synth.SpotReclaim("", 2, 120)
	partial := synth.SpotReclaim("", 3, 120)
	partial.Scenario = "leader-kill"
	partial.Faults = partial.Faults[1:] // the leader kill, at 70 s
	partial.Faults[0].At = 30 * time.Second
	partial.CutAt = 41 // SIGKILLed 11 s after the fault, before it healed
	return map[string]synth.Options{
		"spot-reclaim-a":      a,
		"spot-reclaim-b":      b,
		"leader-kill-partial": partial,
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
