package capacity

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// curve is a fake cluster: a step meets the SLO at or below knee, breaks it
// above; from genLimit up the generator falls behind first.
func curve(knee, genLimit float64) Measure {
	return func(_ context.Context, rate float64, _ string) (rundir.CapacityStep, error) {
		st := rundir.CapacityStep{Rate: rate, Count: int64(rate * 10), Achieved: rate, P99Ms: 5}
		if rate > knee {
			st.P99Ms = 900
		}
		if genLimit > 0 && rate >= genLimit {
			st.LatePct, st.MaxSendLagMs, st.P99Ms = 12, 140, 150
		}
		Judge(&st, DefaultSLO())
		return st, nil
	}
}

func search(t *testing.T, s Search, m Measure) rundir.CapacitySeries {
	t.Helper()
	var ser rundir.CapacitySeries
	steps := 0
	if err := s.Run(context.Background(), &ser, m, func() { steps++ }); err != nil {
		t.Fatal(err)
	}
	if steps != len(ser.Steps) {
		t.Errorf("onStep called %d times for %d steps", steps, len(ser.Steps))
	}
	return ser
}

func TestSearchFindsTheKnee(t *testing.T) {
	for _, knee := range []float64{73, 730, 1234, 9000} {
		s := DefaultSearch()
		ser := search(t, s, curve(knee, 0))
		if ser.Status != rundir.SeriesKnee || ser.Capacity == nil || ser.FirstBad == nil {
			t.Fatalf("knee %g: status %s capacity %v first bad %v (%s)", knee, ser.Status, ser.Capacity, ser.FirstBad, ser.Reason)
		}
		good, bad := *ser.Capacity, *ser.FirstBad
		if good > knee || bad <= knee || (bad-good)/good > s.Precision {
			t.Errorf("knee %g: found %g (met) .. %g (broken), want them within %g of each other around it", knee, good, bad, s.Precision)
		}
		for i, st := range ser.Steps {
			if st.Index != i+1 || st.Rate != ser.Steps[i].Rate {
				t.Errorf("step %d: index %d", i, st.Index)
			}
		}
	}
}

func TestSearchStopsGeneratorBound(t *testing.T) {
	ser := search(t, DefaultSearch(), curve(5000, 400))
	if ser.Status != rundir.SeriesGeneratorBound {
		t.Fatalf("status %s, want generator-bound (%s)", ser.Status, ser.Reason)
	}
	if ser.Capacity != nil {
		t.Errorf("a generator-bound search reported a capacity: %g", *ser.Capacity)
	}
	if ser.LowerBound == nil || *ser.LowerBound != 200 {
		t.Errorf("lower bound %v, want 200 (the last step before the generator fell behind)", ser.LowerBound)
	}
	last := ser.Steps[len(ser.Steps)-1]
	if last.Rate != 400 || last.Verdict != rundir.StepGeneratorBound || !strings.Contains(ser.Reason, "generator fell behind at 400") {
		t.Errorf("last step %g %s; reason %q", last.Rate, last.Verdict, ser.Reason)
	}
}

func TestSearchEdges(t *testing.T) {
	ser := search(t, DefaultSearch(), curve(10, 0))
	if ser.Status != rundir.SeriesBelowStart || ser.Capacity != nil || ser.LowerBound != nil || len(ser.Steps) != 1 {
		t.Errorf("below start: status %s capacity %v lower %v, %d steps", ser.Status, ser.Capacity, ser.LowerBound, len(ser.Steps))
	}
	s := DefaultSearch()
	s.Max = 1000
	ser = search(t, s, curve(1e9, 0))
	if ser.Status != rundir.SeriesCeiling || ser.Capacity == nil || *ser.Capacity != 1000 {
		t.Errorf("ceiling: status %s capacity %v", ser.Status, ser.Capacity)
	}
	if ser.Steps[len(ser.Steps)-1].Rate != 1000 {
		t.Errorf("last step %g, want the max rate 1000", ser.Steps[len(ser.Steps)-1].Rate)
	}
	boom := errors.New("connection refused")
	ser = rundir.CapacitySeries{}
	err := DefaultSearch().Run(context.Background(), &ser, func(context.Context, float64, string) (rundir.CapacityStep, error) {
		return rundir.CapacityStep{}, boom
	}, nil)
	if !errors.Is(err, boom) || ser.Status != rundir.SeriesError || ser.Capacity != nil || ser.Steps[0].Verdict != rundir.StepError {
		t.Errorf("error: %v, status %s, capacity %v", err, ser.Status, ser.Capacity)
	}
	if err := (Search{Start: 10, Factor: 1, Max: 100, Precision: 0.05, MaxSteps: 3}).Validate(); err == nil {
		t.Error("factor 1 accepted: the search would never grow")
	}
}

// A noisy step below a broken one must not lift the answer above it.
func TestMetIsBelowEveryBrokenRate(t *testing.T) {
	ser := rundir.CapacitySeries{Steps: []rundir.CapacityStep{
		{Rate: 100, Verdict: rundir.StepMet}, {Rate: 400, Verdict: rundir.StepBroken},
		{Rate: 250, Verdict: rundir.StepBroken}, {Rate: 300, Verdict: rundir.StepMet},
		{Rate: 175, Verdict: rundir.StepMet},
	}}
	if got, ok := ser.Met(); !ok || got != 175 {
		t.Errorf("met %g %v, want 175 (300 met, but 250 broke)", got, ok)
	}
}

func TestJudge(t *testing.T) {
	slo := DefaultSLO()
	cases := []struct {
		name string
		st   rundir.CapacityStep
		want string
		why  string
	}{
		{"fine", rundir.CapacityStep{Rate: 100, Count: 1000, Achieved: 99.5, P99Ms: 40}, rundir.StepMet, ""},
		{"slow", rundir.CapacityStep{Rate: 100, Count: 1000, Achieved: 100, P99Ms: 140}, rundir.StepBroken, "p99 140.0ms > 100ms"},
		{"errors", rundir.CapacityStep{Rate: 100, Count: 1000, Errors: 2, ErrorPct: 0.2, Achieved: 100, P99Ms: 1}, rundir.StepBroken, "errors 0.200% > 0.1%"},
		{"short", rundir.CapacityStep{Rate: 100, Count: 900, Achieved: 90, P99Ms: 1}, rundir.StepBroken, "achieved 90.0 req/s < 98% of 100"},
		{"nothing", rundir.CapacityStep{Rate: 100}, rundir.StepError, "no request"},
		{"late but met", rundir.CapacityStep{Rate: 100, Count: 1000, Achieved: 100, P99Ms: 90, LatePct: 3, MaxSendLagMs: 30}, rundir.StepMet, ""},
		{"late", rundir.CapacityStep{Rate: 100, Count: 1000, Achieved: 100, P99Ms: 130, LatePct: 3, MaxSendLagMs: 60}, rundir.StepGeneratorBound, "3.00% of sends"},
		// 130 − 2×40 = 50: the generator may explain it all.
		{"late, just", rundir.CapacityStep{Rate: 100, Count: 1000, Achieved: 100, P99Ms: 180, LatePct: 3, MaxSendLagMs: 40}, rundir.StepGeneratorBound, "3.00% of sends"},
		{"late, short", rundir.CapacityStep{Rate: 100, Count: 900, Achieved: 90, P99Ms: 10, LatePct: 30, MaxSendLagMs: 60}, rundir.StepGeneratorBound, "30.00% of sends"},
		// Slower than the objective even without the worst lag: the cluster.
		{"late, slow", rundir.CapacityStep{Rate: 100, Count: 1000, Achieved: 100, P99Ms: 900, LatePct: 3, MaxSendLagMs: 60}, rundir.StepBroken, "cluster's share alone"},
		{"late, errors", rundir.CapacityStep{Rate: 100, Count: 1000, Errors: 50, ErrorPct: 5, Achieved: 100, P99Ms: 10, LatePct: 3, MaxSendLagMs: 60}, rundir.StepBroken, "errors 5.000%"},
		// Late because every worker waited on the cluster: the cluster's doing.
		{"pool", rundir.CapacityStep{Rate: 100, Count: 1000, Achieved: 100, P99Ms: 9000, LatePct: 30, PoolWaits: 12}, rundir.StepBroken, "p99"},
	}
	for _, c := range cases {
		st := c.st
		Judge(&st, slo)
		if st.Verdict != c.want || (c.why != "" && !strings.Contains(strings.Join(st.Why, "; "), c.why)) {
			t.Errorf("%s: %s %q, want %s with %q", c.name, st.Verdict, st.Why, c.want, c.why)
		}
	}
}

func TestRoundRate(t *testing.T) {
	for in, want := range map[float64]float64{1234.5: 1230, 87.66: 87.7, 150: 150, 0.5: 0.5, 46.300000000000004: 46.3, 3e6 + 1: 3e6} {
		if got := roundRate(in); got != want {
			t.Errorf("roundRate(%g) = %g, want %g", in, got, want)
		}
	}
}
