// Package capacity finds the highest open-loop rate a Vault cluster
// sustains within a service level objective: rate steps growing
// geometrically until one breaks the SLO, then a bisection between the last
// step that met it and the first that did not. Each step is a load run of
// its own (its run directory under the search's), held long enough to be
// steady, its warm-up discarded.
//
// A step where the generator fell behind its schedule measures the
// harness, not the cluster: the search stops there and reports no capacity
// ("generator-bound"), only the lower bound it had reached.
package capacity

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// Search is how the rates are chosen.
type Search struct {
	Start     float64 // first rate, req/s
	Factor    float64 // each geometric step is Factor × the last (> 1)
	Max       float64 // no step above it
	Precision float64 // bisection stops when (bad−good)/good ≤ Precision
	MaxSteps  int     // at most this many steps in all
}

// DefaultSearch: from 50 req/s doubling, bisected to 5 %.
func DefaultSearch() Search {
	return Search{Start: 50, Factor: 2, Max: 100_000, Precision: 0.05, MaxSteps: 24}
}

// Validate rejects a search that cannot end or cannot start.
func (s Search) Validate() error {
	switch {
	case !(s.Start > 0) || math.IsInf(s.Start, 0):
		return fmt.Errorf("start rate %g: must be positive", s.Start)
	case !(s.Factor > 1) || s.Factor > 100:
		return fmt.Errorf("factor %g: must be above 1 (and at most 100)", s.Factor)
	case !(s.Max >= s.Start) || math.IsInf(s.Max, 0):
		return fmt.Errorf("max rate %g: must be at least the start rate %g", s.Max, s.Start)
	case !(s.Precision > 0) || s.Precision >= 1:
		return fmt.Errorf("precision %g: want a fraction between 0 and 1, e.g. 0.05", s.Precision)
	case s.MaxSteps < 1:
		return fmt.Errorf("max steps %d: must be positive", s.MaxSteps)
	}
	return nil
}

// Measure holds one rate and judges it (Judge); phase is "geometric" or
// "bisect". An error stops the search.
type Measure func(ctx context.Context, rate float64, phase string) (rundir.CapacityStep, error)

// Run searches, calling measure for each rate, and fills the series'
// steps, status and answers. onStep is called after every step (to save
// progress); it may be nil.
func (s Search) Run(ctx context.Context, ser *rundir.CapacitySeries, measure Measure, onStep func()) error {
	if err := s.Validate(); err != nil {
		return err
	}
	step := func(rate float64, phase string) (string, error) {
		st, err := measure(ctx, rate, phase)
		st.Index, st.Rate, st.Phase = len(ser.Steps)+1, rate, phase
		if err != nil {
			st.Verdict, st.Error = rundir.StepError, err.Error()
		}
		ser.Steps = append(ser.Steps, st)
		if onStep != nil {
			onStep()
		}
		return st.Verdict, err
	}
	finish := func(status, reason string) error {
		ser.Status, ser.Reason = status, reason
		ser.Capacity, ser.LowerBound, ser.FirstBad = nil, nil, nil
		if met, ok := ser.Met(); ok {
			ser.LowerBound = &met
			if status == rundir.SeriesKnee || status == rundir.SeriesCeiling {
				ser.Capacity = &met
			}
		}
		if bad, ok := firstBroken(ser.Steps); ok {
			ser.FirstBad = &bad
		}
		return nil
	}
	stopped := func(v string, err error, rate float64) (bool, error) {
		switch {
		case ctx.Err() != nil:
			return true, finish(rundir.SeriesInterrupted, "interrupted at "+fmtRate(rate))
		case err != nil:
			finish(rundir.SeriesError, fmt.Sprintf("step at %s: %v", fmtRate(rate), err))
			return true, err
		case v == rundir.StepError:
			return true, finish(rundir.SeriesError, fmt.Sprintf("step at %s: %s", fmtRate(rate), joinWhy(ser.Steps[len(ser.Steps)-1].Why)))
		case v == rundir.StepGeneratorBound:
			why := ser.Steps[len(ser.Steps)-1].Why
			return true, finish(rundir.SeriesGeneratorBound, fmt.Sprintf("the generator fell behind at %s (%s): the cluster's limit was not reached, and this machine cannot tell it; run the generator elsewhere or with more CPU (--procs), or shard it", fmtRate(rate), joinWhy(why)))
		}
		return false, nil
	}

	good, bad := 0.0, 0.0
	for rate := s.Start; ; rate = min(rate*s.Factor, s.Max) {
		v, err := step(rate, "geometric")
		if stop, err := stopped(v, err, rate); stop {
			return err
		}
		if v != rundir.StepMet {
			bad = rate
			break
		}
		good = rate
		if rate >= s.Max {
			return finish(rundir.SeriesCeiling, fmt.Sprintf("every step up to the highest allowed rate (%s) met the SLO: raise --max-rate to find the knee", fmtRate(s.Max)))
		}
		if len(ser.Steps) >= s.MaxSteps {
			return finish(rundir.SeriesCeiling, fmt.Sprintf("stopped after %d steps, all within the SLO", len(ser.Steps)))
		}
	}
	if good == 0 {
		return finish(rundir.SeriesBelowStart, fmt.Sprintf("the first step (%s) already broke the SLO: lower --start-rate", fmtRate(bad)))
	}
	for (bad-good)/good > s.Precision {
		if len(ser.Steps) >= s.MaxSteps {
			return finish(rundir.SeriesKnee, fmt.Sprintf("step limit (%d) reached with the knee between %s and %s", s.MaxSteps, fmtRate(good), fmtRate(bad)))
		}
		mid := roundRate((good + bad) / 2)
		if mid <= good || mid >= bad {
			break
		}
		v, err := step(mid, "bisect")
		if stop, err := stopped(v, err, mid); stop {
			return err
		}
		if v == rundir.StepMet {
			good = mid
		} else {
			bad = mid
		}
	}
	return finish(rundir.SeriesKnee, fmt.Sprintf("between %s (met) and %s (broken)", fmtRate(good), fmtRate(bad)))
}

func firstBroken(steps []rundir.CapacityStep) (float64, bool) {
	bad, ok := 0.0, false
	for _, st := range steps {
		if st.Verdict == rundir.StepBroken && (!ok || st.Rate < bad) {
			bad, ok = st.Rate, true
		}
	}
	return bad, ok
}

// roundRate keeps bisection rates readable: three significant digits.
func roundRate(r float64) float64 {
	if r <= 0 {
		return r
	}
	// Through decimal text: r/0.1*0.1 arithmetic leaves 46.300000000000004.
	v, _ := strconv.ParseFloat(strconv.FormatFloat(r, 'g', 3, 64), 64)
	return v
}

func fmtRate(r float64) string { return fmt.Sprintf("%g req/s", roundRate(r)) }

func joinWhy(why []string) string {
	if len(why) == 0 {
		return "no reason recorded"
	}
	return strings.Join(why, "; ")
}

// Judge decides a step. Latency counts from the intended send time, so a
// generator that sent late only made the step look worse: a step that met
// the SLO all the same did meet it. A broken step is the cluster's limit
// only if the generator cannot explain it: more than slo.MaxLatePct of its
// sends later than slo.LateMs (a tenth of the p99 objective) make it
// generator-bound, unless errors broke it or its p99 still breaks the
// objective with twice the worst send lag taken off. Twice: a generator
// short of CPU is as late to read an answer as it was to send the request,
// and only the sending side is measured.
// Late sends caused by every worker being busy (pool waits: the cluster
// holding requests) are the cluster's doing, not the generator's.
func Judge(st *rundir.CapacityStep, slo rundir.SLO) {
	st.Why = nil
	if st.Count == 0 {
		// A hung cluster and a generator that sent nothing look the same
		// here: nothing to judge either by.
		st.Verdict, st.Why = rundir.StepError, []string{"no request was answered in the measured window: neither the cluster nor the generator can be judged"}
		return
	}
	slow := st.P99Ms > slo.P99Ms
	if slow {
		st.Why = append(st.Why, fmt.Sprintf("p99 %.1fms > %gms", st.P99Ms, slo.P99Ms))
	}
	failing := st.ErrorPct > slo.ErrorPct
	if failing {
		st.Why = append(st.Why, fmt.Sprintf("errors %.3f%% > %g%%", st.ErrorPct, slo.ErrorPct))
	}
	short := st.Achieved < slo.AchievedPct/100*st.Rate
	if short {
		st.Why = append(st.Why, fmt.Sprintf("achieved %.1f req/s < %g%% of %g", st.Achieved, slo.AchievedPct, st.Rate))
	}
	if len(st.Why) == 0 {
		st.Verdict = rundir.StepMet
		return
	}
	st.Verdict = rundir.StepBroken
	late := st.LatePct > slo.MaxLatePct && st.PoolWaits == 0
	if !late {
		return
	}
	lateWhy := fmt.Sprintf("%.2f%% of sends left more than %gms late (max %g%%; worst lag %.1fms)", st.LatePct, slo.LateMs, slo.MaxLatePct, st.MaxSendLagMs)
	if failing || (slow && st.P99Ms-2*st.MaxSendLagMs > slo.P99Ms) {
		st.Why = append(st.Why, "the cluster's share alone breaks it, though "+lateWhy)
		return
	}
	st.Verdict = rundir.StepGeneratorBound
	st.Why = append([]string{lateWhy}, st.Why...)
}
