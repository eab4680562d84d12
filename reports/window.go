package reports

import (
	"fmt"
	"path/filepath"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// WindowStats is a load run's figures over part of it.
type WindowStats struct {
	Start, End time.Time
	Secs       float64 // seconds of samples in the window
	All        rundir.OpStats
	Ops        map[string]rundir.OpStats
	LateSends  int64
}

// Window computes the figures of a load run directory over the samples
// that start from skip to skip+length after the first one: counts and
// errors from samples.jsonl, percentiles from the interval histograms that
// start in the window, "all" merging every operation. A capacity step uses
// it to discard its warm-up, and runs a second past the window so that the
// drain at the end (see isDrain) stays out of it.
func Window(dir string, skip, length time.Duration) (WindowStats, error) {
	var w WindowStats
	var samples []rundir.Sample
	if err := rundir.ReadLines(dir, rundir.SamplesFile, func(s rundir.Sample) error {
		samples = append(samples, s)
		return nil
	}); err != nil {
		return w, err
	}
	if len(samples) == 0 {
		return w, fmt.Errorf("%s: no samples: the load did not run", dir)
	}
	r := &Run{Samples: samples}
	w.Start = samples[0].T.Add(skip)
	w.End = w.Start.Add(length)
	merged := map[string]*hdr.Histogram{}
	var all *hdr.Histogram
	from, to := w.Start.UnixMilli(), w.End.UnixMilli()
	perMs, err := readHlog(filepath.Join(dir, rundir.HistogramsFile), func(h *hdr.PackedHistogram, op string, t int64) {
		if t < from || t >= to {
			return
		}
		mergeInto(merged, op, h)
		if all == nil {
			all = hdr.New(h.LowestTrackableValue(), h.HighestTrackableValue(), int(h.SignificantFigures()))
		}
		h.MergeInto(all)
	})
	if err != nil {
		return w, err
	}
	r.PerMs = perMs
	p := r.phaseStats(rundir.PhaseStats{Start: w.Start, End: w.End}, merged)
	w.Ops = p.Ops
	var last rundir.Sample
	for _, s := range samples {
		if s.T.Before(w.Start) || !s.T.Before(w.End) {
			continue
		}
		w.Secs += interval(s)
		w.LateSends += s.LateSends
		last = s
	}
	if got := last.T.Add(time.Duration(interval(last) * float64(time.Second))).Sub(w.Start); w.Secs == 0 || got < length-100*time.Millisecond {
		return w, fmt.Errorf("%s: samples cover %.1fs of the %s window after the first %s: the load stopped early", dir, max(got.Seconds(), 0), length, skip)
	}
	for _, st := range w.Ops {
		addCounts(&w.All, st)
	}
	if w.Secs > 0 {
		w.All.Rate = float64(w.All.Count) / w.Secs
	}
	if all != nil {
		fillPercentiles(&w.All, all, perMs)
	}
	return w, nil
}
