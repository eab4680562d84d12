package capacity

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/load"
	"github.com/vaultstorm/vaultstorm/reports"
)

// Config is one series: where to send load, how, and how each step is
// judged.
type Config struct {
	Target load.Target
	// PIDs are the node processes (name → PID) whose CPU each step
	// reports; nil when the nodes are not on this machine.
	PIDs map[string]int
	// Load is the base of every step: mix, keys, value size, mount, key
	// prefix (one per series, so reads find the keys the first step
	// prefilled), target, timeout. Schedule, prefill and the late
	// threshold are set per step.
	Load   load.Options
	SLO    rundir.SLO
	Warmup time.Duration // discarded at the start of each step (≥ 1s)
	Hold   time.Duration // measured (≥ 2s)
	Search Search
	// Dir is the series' directory; each step is a load run directory
	// under it. RunDir is the search's run directory, which step paths in
	// capacity.json are relative to.
	Dir, RunDir string
	// OnStep is called after each step is judged (save capacity.json,
	// print its line).
	OnStep func(rundir.CapacityStep)
	// OnSample is passed on to each step's load (progress bars).
	OnSample func(rundir.Sample)
}

// DefaultSLO is p99 ≤ 100 ms, ≤ 0.1 % errors, ≥ 98 % of the rate achieved,
// and the generator's own limit: ≤ 1 % of sends later than a tenth of the
// p99 objective.
func DefaultSLO() rundir.SLO {
	s := rundir.SLO{P99Ms: 100, ErrorPct: 0.1, AchievedPct: 98, MaxLatePct: 1}
	s.LateMs = LateMs(s.P99Ms)
	return s
}

// LateMs is the late-send threshold for a p99 objective: a tenth of it,
// never under the load's own 2 ms (this machine's timer granularity).
func LateMs(p99Ms float64) float64 { return max(p99Ms/10, 2) }

func (c Config) validate() error {
	switch {
	case c.Warmup < time.Second:
		return fmt.Errorf("warm-up %s: at least 1s (the first second of a step is never steady)", c.Warmup)
	case c.Hold < 2*time.Second:
		return fmt.Errorf("hold %s: at least 2s", c.Hold)
	case c.Warmup%time.Second != 0 || c.Hold%time.Second != 0:
		return fmt.Errorf("warm-up %s and hold %s: whole seconds (steps are measured in 1 s samples)", c.Warmup, c.Hold)
	case !(c.SLO.P99Ms > 0):
		return fmt.Errorf("SLO p99 %gms: must be positive", c.SLO.P99Ms)
	case c.SLO.ErrorPct < 0 || c.SLO.ErrorPct > 100:
		return fmt.Errorf("SLO errors %g%%: want 0 to 100", c.SLO.ErrorPct)
	case !(c.SLO.AchievedPct > 0) || c.SLO.AchievedPct > 100:
		return fmt.Errorf("SLO achieved rate %g%%: want above 0, up to 100", c.SLO.AchievedPct)
	}
	return c.Search.Validate()
}

// RunSeries searches one series and reads back every step's ledger. ser
// holds the series' description on entry; its steps and answers are
// filled as they come. It returns an error only when the search could not
// go on (an unreachable cluster, a failed step, ctx cancelled); a
// generator-bound or SLO verdict is in ser.
func RunSeries(ctx context.Context, c Config, ser *rundir.CapacitySeries) error {
	if err := c.validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", c.Dir, err)
	}
	var dirs []string
	measure := func(ctx context.Context, rate float64, phase string) (rundir.CapacityStep, error) {
		dir := filepath.Join(c.Dir, fmt.Sprintf("%02d-%g", len(dirs)+1, rate))
		dirs = append(dirs, dir)
		st, err := c.step(ctx, rate, dir, len(dirs) == 1)
		if rel, rerr := filepath.Rel(c.RunDir, dir); rerr == nil {
			st.Dir = rel
		}
		return st, err
	}
	onStep := func() {
		if c.OnStep != nil {
			c.OnStep(ser.Steps[len(ser.Steps)-1])
		}
	}
	err := c.Search.Run(ctx, ser, measure, onStep)
	// Every step's acknowledged writes must still be there, whatever
	// the search found: a capacity run that lost data is not a capacity.
	vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	verr := verify(vctx, c.Target, dirs, ser)
	return errors.Join(err, verr)
}

// step holds one rate for warm-up + hold in its own load run directory and
// judges the measured window.
func (c Config) step(ctx context.Context, rate float64, dir string, first bool) (rundir.CapacityStep, error) {
	st := rundir.CapacityStep{Rate: rate}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return st, fmt.Errorf("create %s: %w", dir, err)
	}
	o := c.Load
	// One more second past the window: the drain after the schedule ends
	// (requests in flight, answered in a last partial sample) stays out.
	o.Schedule = load.Constant(rate, c.Warmup+c.Hold+time.Second)
	o.NoPrefill = !first
	o.LateThreshold = time.Duration(c.SLO.LateMs * float64(time.Millisecond))
	// The load's own warnings (rate not reached, late sends) are what a
	// broken step is expected to show; the step's verdict says it once.
	o.Logf = nil

	// CPU is read as each 1 s sample is written, so the window's CPU and
	// its latencies cover the same seconds.
	type mark struct {
		t time.Time // the sample's start
		r cpuReading
	}
	var mu sync.Mutex
	marks := []mark{{t: time.Time{}, r: readCPU(c.PIDs)}}
	o.OnSample = func(s rundir.Sample) {
		r := readCPU(c.PIDs)
		mu.Lock()
		marks = append(marks, mark{t: s.T, r: r})
		mu.Unlock()
		if c.OnSample != nil {
			c.OnSample(s)
		}
	}
	sum, err := load.Run(ctx, c.Target, o, dir)
	if err != nil {
		return st, err
	}
	w, err := reports.Window(dir, c.Warmup, c.Hold)
	if err != nil {
		return st, err
	}
	st.Start, st.End = w.Start, w.End
	st.Count, st.Errors = w.All.Count, w.All.Errors
	st.Achieved = round3(w.All.Rate)
	if w.All.Count > 0 {
		st.ErrorPct = round3(100 * float64(w.All.Errors) / float64(w.All.Count))
		st.LatePct = round3(100 * float64(w.LateSends) / float64(w.All.Count))
	}
	st.P50Ms, st.P99Ms, st.P999Ms, st.MaxMs = round3(w.All.P50), round3(w.All.P99), round3(w.All.P999), round3(w.All.Max)
	st.LateSends, st.MaxSendLagMs, st.PoolWaits = w.LateSends, sum.MaxSendLagMs, sum.PoolWaits

	// The reading before the window is the one taken after the last
	// sample that started before it; the end, after the window's last.
	mu.Lock()
	var from, to *cpuReading
	for i := range marks {
		m := &marks[i]
		if i == 0 || m.t.Before(w.Start) {
			from = &m.r
		}
		if i > 0 && m.t.Before(w.End) {
			to = &m.r
		}
	}
	mu.Unlock()
	if from != nil && to != nil && to.at.After(from.at) {
		self, nodes := cores(*from, *to)
		st.GeneratorCPU, st.NodeCPU = &self, nodes
	}
	Judge(&st, c.SLO)
	return st, nil
}

// verify reads back the ledger of every step and adds the verdicts up.
func verify(ctx context.Context, t load.Target, dirs []string, ser *rundir.CapacitySeries) error {
	ser.Verified, ser.AckedWrites, ser.LostWrites, ser.VerifyError = true, 0, 0, ""
	var errs []error
	for _, dir := range dirs {
		var sum rundir.Summary
		if err := rundir.ReadJSON(dir, rundir.SummaryFile, &sum); err != nil {
			// A step that failed before its load ran has no ledger.
			if errors.Is(err, os.ErrNotExist) {
				if _, lerr := os.Stat(filepath.Join(dir, rundir.LedgerFile)); errors.Is(lerr, os.ErrNotExist) {
					continue
				}
			}
			errs = append(errs, err)
		}
		vr, err := load.Verify(ctx, t, dir)
		vr.Apply(&sum)
		if werr := rundir.WriteJSON(dir, rundir.SummaryFile, sum); werr != nil {
			errs = append(errs, werr)
		}
		ser.AckedWrites += sum.AckedWrites
		ser.LostWrites += sum.LostWrites
		if !sum.Verified {
			ser.Verified = false
			if ser.VerifyError == "" {
				ser.VerifyError = fmt.Sprintf("%s: %s", filepath.Base(dir), sum.VerifyError)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("verify %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}
