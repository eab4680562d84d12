package load

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// Histogram range: latencies are recorded in nanoseconds (the HdrHistogram
// log convention, so the Interval_Max column reads in ms), from 1 µs to 60 s
// with 3 significant digits. Longer latencies are clamped to 60 s.
const (
	histLowest  = int64(time.Microsecond)
	histHighest = int64(60 * time.Second)
	histDigits  = 3
)

func newHist() *hdr.Histogram { return hdr.New(histLowest, histHighest, histDigits) }

// interval is what one second of load accumulates.
type interval struct {
	start time.Time
	h     [numOps]*hdr.Histogram
	count [numOps]int64
	errs  [numOps][maxClass]int64
	late  int64
	lag   time.Duration // largest send lag
}

func newInterval() *interval {
	iv := &interval{}
	for i := range iv.h {
		iv.h[i] = newHist()
	}
	return iv
}

func (iv *interval) reset() {
	for i := range iv.h {
		iv.h[i].Reset()
	}
	iv.count = [numOps]int64{}
	iv.errs = [numOps][maxClass]int64{}
	iv.late = 0
	iv.lag = 0
}

// recorder holds the histograms. Workers call record under one mutex (a
// few tens of ns, uncontended most of the time on 2 cores); once a second
// flush swaps the current interval for a clean one, so the work of
// percentiles, encoding and file writes happens off the hot path and never
// while a worker waits.
type recorder struct {
	mu    sync.Mutex
	cur   *interval
	spare *interval

	// Owned by the flushing goroutine.
	ops      []Op
	total    *interval
	runStart time.Time
	samples  *rundir.Appender
	hlog     *os.File
	hw       *hdr.HistogramLogWriter
	hbuf     bytes.Buffer
	onSample func(rundir.Sample)
	err      error // first write error; the run stops on it
}

// newRecorder opens samples.jsonl and histograms.hlog in dir (either may be
// "" to record in memory only, as benchmarks do).
func newRecorder(dir string, ops []Op, start time.Time, onSample func(rundir.Sample)) (*recorder, error) {
	r := &recorder{cur: newInterval(), spare: newInterval(), total: newInterval(), ops: ops, runStart: start, onSample: onSample}
	r.cur.start = start
	if dir == "" {
		return r, nil
	}
	var err error
	if r.samples, err = rundir.OpenAppender(dir, rundir.SamplesFile); err != nil {
		return nil, fmt.Errorf("open samples: %w", err)
	}
	if r.hlog, err = os.OpenFile(filepath.Join(dir, rundir.HistogramsFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		r.samples.Close()
		return nil, fmt.Errorf("open histogram log: %w", err)
	}
	r.hw = hdr.NewHistogramLogWriter(&r.hbuf)
	ms := start.UnixMilli()
	r.hw.SetBaseTime(ms)
	r.hw.OutputLogFormatVersion()
	r.hw.OutputComment("[vaultstorm load: latency from intended send time, values in ns, one tag per operation: read write list delete]")
	r.hw.OutputStartTime(ms)
	r.hw.OutputBaseTime(ms)
	r.hw.OutputLegend()
	if err := r.writeHlog(); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// record counts one finished request. lat is from the intended send time.
func (r *recorder) record(op Op, cl Class, lat, lag time.Duration, late bool) {
	v := int64(lat)
	if v > histHighest {
		v = histHighest
	} else if v < 0 {
		v = 0
	}
	r.mu.Lock()
	iv := r.cur
	if cl != Canceled {
		// A canceled request's latency is an artefact of the stop.
		iv.h[op].RecordValue(v)
		iv.count[op]++
	}
	if cl != OK {
		iv.errs[op][cl]++
	}
	if late {
		iv.late++
	}
	if lag > iv.lag {
		iv.lag = lag
	}
	r.mu.Unlock()
}

// flush closes the current interval at now and writes its sample and
// histograms. Only one goroutine may call it.
func (r *recorder) flush(now time.Time) rundir.Sample {
	r.mu.Lock()
	old := r.cur
	r.cur = r.spare
	r.cur.start = now
	r.spare = nil
	r.mu.Unlock()

	secs := now.Sub(old.start).Seconds()
	s := rundir.Sample{T: old.start.UTC(), Ops: map[string]OpStats{}, LateSends: old.late, Interval: round3(secs)}
	for _, op := range r.ops {
		s.Ops[op.String()] = opStats(old, op, secs)
	}
	if r.samples != nil && r.err == nil {
		if err := r.samples.Append(s); err != nil {
			r.err = fmt.Errorf("append sample: %w", err)
		}
	}
	if r.hw != nil && r.err == nil {
		for _, op := range r.ops {
			h := old.h[op]
			h.SetTag(op.String())
			h.SetStartTimeMs(old.start.UnixMilli())
			h.SetEndTimeMs(now.UnixMilli())
			if err := r.hw.OutputIntervalHistogram(h); err != nil {
				r.err = fmt.Errorf("encode histogram: %w", err)
			}
		}
		if err := r.writeHlog(); err != nil && r.err == nil {
			r.err = err
		}
	}
	// Merge into the run's totals.
	t := r.total
	for op := range numOps {
		t.h[op].Merge(old.h[op])
		t.count[op] += old.count[op]
		for c, n := range old.errs[op] {
			t.errs[op][c] += n
		}
	}
	t.late += old.late
	t.lag = max(t.lag, old.lag)

	old.reset()
	r.mu.Lock()
	r.spare = old
	r.mu.Unlock()
	if r.onSample != nil {
		r.onSample(s)
	}
	return s
}

// writeHlog writes the buffered lines in one call, so a kill leaves the
// file ending on a complete line (or, at worst, one torn last line).
func (r *recorder) writeHlog() error {
	if r.hbuf.Len() == 0 {
		return nil
	}
	_, err := r.hlog.Write(r.hbuf.Bytes())
	r.hbuf.Reset()
	if err != nil {
		return fmt.Errorf("write histogram log: %w", err)
	}
	return nil
}

func (r *recorder) close() error {
	var err error
	if r.samples != nil {
		err = r.samples.Close()
	}
	if r.hlog != nil {
		if e := r.hlog.Close(); err == nil {
			err = e
		}
	}
	return err
}

// totals is the whole run's figures per op, over secs.
func (r *recorder) totals(secs float64) map[string]OpStats {
	m := map[string]OpStats{}
	for _, op := range r.ops {
		m[op.String()] = opStats(r.total, op, secs)
	}
	return m
}

type OpStats = rundir.OpStats

func opStats(iv *interval, op Op, secs float64) OpStats {
	h := iv.h[op]
	s := OpStats{Count: iv.count[op]}
	for c, n := range iv.errs[op] {
		if n == 0 {
			continue
		}
		if s.ByErr == nil {
			s.ByErr = map[string]int64{}
		}
		s.ByErr[Class(c).String()] = n
		if Class(c).IsError() {
			s.Errors += n
		}
	}
	if secs > 0 {
		s.Rate = round3(float64(s.Count) / secs)
	}
	if h.TotalCount() > 0 {
		s.P50 = ms(h.ValueAtQuantile(50))
		s.P90 = ms(h.ValueAtQuantile(90))
		s.P99 = ms(h.ValueAtQuantile(99))
		s.P999 = ms(h.ValueAtQuantile(99.9))
		s.Max = ms(h.Max())
	}
	return s
}

func ms(ns int64) float64 { return round3(float64(ns) / 1e6) }

func round3(f float64) float64 {
	if f >= 0 {
		return float64(int64(f*1000+0.5)) / 1000
	}
	return -float64(int64(-f*1000+0.5)) / 1000
}
