package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// MergeFile is the merged run's account of its shards: which directories,
// each one's totals, and every operation together ("all").
const MergeFile = "merge.json"

// loadConfigFile is load's load.json (load.ConfigFile); reports reads only
// the fields a merge must check, and copies the rest through.
const loadConfigFile = "load.json"

// MergeResult is merge.json.
type MergeResult struct {
	RunID  string        `json:"run_id,omitempty"`
	Count  int           `json:"shards"`
	Shards []ShardTotals `json:"shard_runs"`
	// Ops is the merged run's per-operation figures (as summary.json's),
	// All every operation together: counts summed, percentiles from the
	// exact sum of every shard's histograms.
	Ops map[string]rundir.OpStats `json:"ops"`
	All rundir.OpStats            `json:"all"`
	// Seconds is how many wall-clock seconds the merged samples span.
	Seconds int `json:"seconds"`
}

// ShardTotals is one shard's own figures, as its summary.json has them.
type ShardTotals struct {
	Index         int                       `json:"index"`
	Dir           string                    `json:"dir"`
	KeyPrefix     string                    `json:"key_prefix"`
	Started       time.Time                 `json:"started"`
	Ended         time.Time                 `json:"ended"`
	Ops           map[string]rundir.OpStats `json:"ops"`
	AckedWrites   int64                     `json:"acked_writes"`
	UnknownWrites int64                     `json:"unknown_writes"`
	LedgerLines   int                       `json:"ledger_lines"`
}

// shardRun is one shard directory as read for a merge.
type shardRun struct {
	dir    string
	meta   rundir.Meta
	sum    rundir.Summary
	config map[string]any
	mount  string
	prefix string
}

// MergeShards combines the run directories of one sharded load run ('load
// --shard I/N', I 0-based) into one run directory out, which must not
// exist or be empty. It writes meta.json, load.json, samples.jsonl,
// histograms.hlog, ledger.jsonl, summary.json and merge.json; the ledger is
// the union of the shards' and is NOT verified here (summary.json says
// verified false until the caller reads it back).
//
// Histograms are added exactly (hdrhistogram-go's Merge, which reports the
// values a histogram could not hold: any is an error), per wall-clock
// second and over the whole run; per-second samples are summed by the
// wall-clock second they started in. Shards that are not all of one run
// are refused: a different shard count or run id, a duplicate or missing
// index, another KV mount, a run that did not finish, a run that did not
// overlap the others in time, a key in two shards' ledgers.
func MergeShards(out string, dirs []string) (*MergeResult, error) {
	if len(dirs) == 0 {
		return nil, errors.New("merge: no shard directories given")
	}
	shards := make([]*shardRun, 0, len(dirs))
	for _, d := range dirs {
		s, err := readShard(d)
		if err != nil {
			return nil, err
		}
		shards = append(shards, s)
	}
	if err := checkShards(shards); err != nil {
		return nil, err
	}
	sort.Slice(shards, func(i, j int) bool { return shards[i].meta.Shard.Index < shards[j].meta.Shard.Index })
	if err := prepareOut(out); err != nil {
		return nil, err
	}

	res := &MergeResult{RunID: shards[0].meta.Shard.RunID, Count: len(shards)}
	lines, err := uniteLedgers(out, shards)
	if err != nil {
		return nil, err
	}
	secs, perMs, err := mergeHistograms(out, shards)
	if err != nil {
		return nil, err
	}
	n, err := mergeSamples(out, shards, secs, perMs)
	if err != nil {
		return nil, err
	}
	res.Seconds = n

	sum := mergeSummary(shards)
	for op := range sum.Ops {
		st := sum.Ops[op]
		if h := secs.total[op]; h != nil {
			fillPercentiles(&st, h, perMs)
		}
		sum.Ops[op] = st
	}
	res.Ops = sum.Ops
	for _, op := range slices.Sorted(maps.Keys(sum.Ops)) {
		addCounts(&res.All, sum.Ops[op])
		res.All.Rate += sum.Ops[op].Rate
	}
	res.All.Rate = round3(res.All.Rate)
	if secs.all != nil {
		fillPercentiles(&res.All, secs.all, perMs)
	}
	for i, s := range shards {
		res.Shards = append(res.Shards, ShardTotals{Index: s.meta.Shard.Index, Dir: s.dir, KeyPrefix: s.prefix,
			Started: s.meta.Started, Ended: s.meta.Ended, Ops: s.sum.Ops,
			AckedWrites: s.sum.AckedWrites, UnknownWrites: s.sum.UnknownWrites, LedgerLines: lines[i]})
	}

	meta := mergeMeta(shards)
	cfg := shards[0].config
	delete(cfg, "shard")
	cfg["key_prefix"] = commonPrefix(shards)
	cfg["target_rate"] = sum.TargetRate
	cfg["shards"] = len(shards)
	for name, v := range map[string]any{rundir.MetaFile: meta, loadConfigFile: cfg, rundir.SummaryFile: sum, MergeFile: res} {
		if err := rundir.WriteJSON(out, name, v); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func readShard(dir string) (*shardRun, error) {
	s := &shardRun{dir: dir}
	if err := rundir.ReadJSON(dir, rundir.MetaFile, &s.meta); err != nil {
		return nil, fmt.Errorf("%s: not a load run directory: %w", dir, err)
	}
	if s.meta.Shard == nil {
		return nil, fmt.Errorf("%s: not a shard (meta.json has no shard): run each generator with 'vaultstorm load --shard I/N'", dir)
	}
	if s.meta.Partial() {
		return nil, fmt.Errorf("%s: shard %d/%d did not finish (no end time in meta.json): its figures would be short; run it again", dir, s.meta.Shard.Index, s.meta.Shard.Count)
	}
	if err := rundir.ReadJSON(dir, rundir.SummaryFile, &s.sum); err != nil {
		return nil, fmt.Errorf("%s: shard %d/%d has no readable summary.json: %w", dir, s.meta.Shard.Index, s.meta.Shard.Count, err)
	}
	if err := rundir.ReadJSON(dir, loadConfigFile, &s.config); err != nil {
		return nil, fmt.Errorf("%s: no readable %s: %w", dir, loadConfigFile, err)
	}
	s.mount, _ = s.config["mount"].(string)
	s.prefix, _ = s.config["key_prefix"].(string)
	if s.mount == "" {
		return nil, fmt.Errorf("%s: %s names no mount", dir, loadConfigFile)
	}
	return s, nil
}

// checkShards refuses a set of shards that are not, together, every
// generator of one sharded run.
func checkShards(shards []*shardRun) error {
	first := shards[0]
	n, id := first.meta.Shard.Count, first.meta.Shard.RunID
	byIndex := map[int]string{}
	for _, s := range shards {
		sh := s.meta.Shard
		switch {
		case sh.Count != n:
			return fmt.Errorf("%s: shard %d of %d, but %s is a shard of %d: not one sharded run", s.dir, sh.Index, sh.Count, first.dir, n)
		case sh.RunID != id:
			return fmt.Errorf("%s: run id %q, but %s has %q: not one sharded run", s.dir, sh.RunID, first.dir, id)
		case s.mount != first.mount:
			return fmt.Errorf("%s: mount %q, but %s used %q: one ledger cannot be read back from two mounts", s.dir, s.mount, first.dir, first.mount)
		case sh.Index < 0 || sh.Index >= sh.Count:
			return fmt.Errorf("%s: shard index %d is outside 0..%d", s.dir, sh.Index, sh.Count-1)
		}
		if other, dup := byIndex[sh.Index]; dup {
			return fmt.Errorf("%s: shard %d/%d again (%s is shard %d too)", s.dir, sh.Index, n, other, sh.Index)
		}
		byIndex[sh.Index] = s.dir
	}
	var missing []string
	for i := range n {
		if _, ok := byIndex[i]; !ok {
			missing = append(missing, fmt.Sprint(i))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("shard(s) %s of %d (0-based) missing: got %d director(ies), %s …; a merge of part of the shards would report part of the load as the whole", strings.Join(missing, ", "), n, len(shards), first.dir)
	}
	// The shards of one run send at the same time: every one must overlap
	// every other (the latest start before the earliest end).
	latest, earliest := shards[0], shards[0]
	for _, s := range shards {
		if s.meta.Started.After(latest.meta.Started) {
			latest = s
		}
		if s.meta.Ended.Before(earliest.meta.Ended) {
			earliest = s
		}
	}
	if !latest.meta.Started.Before(earliest.meta.Ended) {
		return fmt.Errorf("%s: started %s, after %s had ended (%s): the shards did not run together, not one sharded run",
			latest.dir, latest.meta.Started.Format(time.RFC3339), earliest.dir, earliest.meta.Ended.Format(time.RFC3339))
	}
	return nil
}

// ShardsDir is the folder of a merged run directory that holds the shard
// run directories merge read from a bucket: the only thing a merge output
// may hold before the merge.
const ShardsDir = "shards"

func prepareOut(out string) error {
	ents, err := os.ReadDir(out)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("merge output %s: %w", out, err)
	case len(ents) > 1 || len(ents) == 1 && (ents[0].Name() != ShardsDir || !ents[0].IsDir()):
		return fmt.Errorf("merge output %s exists and is not empty: give a new directory", out)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("merge output: %w", err)
	}
	return nil
}

// uniteLedgers writes every shard's ledger lines, in shard order and each
// shard's own order, to out's ledger.jsonl. A key in two shards' ledgers
// means the shards' key prefixes overlapped: refused, since one shard's
// writes could then pass for another's. It returns each shard's line count.
func uniteLedgers(out string, shards []*shardRun) ([]int, error) {
	f, err := os.OpenFile(filepath.Join(out, rundir.LedgerFile), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("merge ledger: %w", err)
	}
	defer f.Close()
	owner := map[string]int{}
	counts := make([]int, len(shards))
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for i, s := range shards {
		err := rundir.ReadLines(s.dir, rundir.LedgerFile, func(e rundir.LedgerEntry) error {
			if j, ok := owner[e.Key]; ok && j != i {
				return fmt.Errorf("%s: key %s is in %s's ledger too: the shards' key prefixes overlap", s.dir, e.Key, shards[j].dir)
			}
			owner[e.Key] = i
			counts[i]++
			if err := enc.Encode(e); err != nil {
				return err
			}
			if buf.Len() > 1<<20 {
				if _, err := f.Write(buf.Bytes()); err != nil {
					return err
				}
				buf.Reset()
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("merge ledger: %w", err)
		}
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		return nil, fmt.Errorf("merge ledger: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("merge ledger: %w", err)
	}
	return counts, nil
}

// mergedHists is every shard's histograms added: per wall-clock second
// (its start, Unix ms) and operation, per operation over the run, and
// every operation together.
type mergedHists struct {
	perSec map[int64]map[string]*hdr.PackedHistogram
	total  map[string]*hdr.Histogram
	all    *hdr.Histogram
}

type geom struct {
	lo, hi int64
	digits int
}

// mergeHistograms adds the shards' interval logs and writes the sum as one
// interval log, one interval per wall-clock second and operation. The
// geometry of an operation's first interval is the geometry of its sums:
// a shard whose values do not fit it (a wider range) makes Merge drop
// them, and a dropped value is an error, never a silently lower p99.
func mergeHistograms(out string, shards []*shardRun) (*mergedHists, float64, error) {
	m := &mergedHists{perSec: map[int64]map[string]*hdr.PackedHistogram{}, total: map[string]*hdr.Histogram{}}
	geoms := map[string]geom{}
	perMs := 0.0
	for _, s := range shards {
		var mergeErr error
		pm, err := readHlog(filepath.Join(s.dir, rundir.HistogramsFile), func(h *hdr.PackedHistogram, op string, startMs int64) {
			if mergeErr != nil {
				return
			}
			if op == "" {
				op = "all"
			}
			g, ok := geoms[op]
			if !ok {
				g = geom{h.LowestTrackableValue(), h.HighestTrackableValue(), int(h.SignificantFigures())}
				geoms[op] = g
			}
			sec := startMs - ((startMs%1000)+1000)%1000
			ops := m.perSec[sec]
			if ops == nil {
				ops = map[string]*hdr.PackedHistogram{}
				m.perSec[sec] = ops
			}
			dst := ops[op]
			if dst == nil {
				dst = hdr.NewPacked(g.lo, g.hi, g.digits)
				ops[op] = dst
			}
			if d := dst.Merge(h); d != 0 {
				mergeErr = fmt.Errorf("%s: %d %s value(s) of the interval at %s do not fit the merged histogram (%d..%d, %d digits) and would be dropped: the shards' histograms differ",
					s.dir, d, op, time.UnixMilli(startMs).UTC().Format(time.RFC3339), g.lo, g.hi, g.digits)
			}
		})
		if err != nil {
			return nil, 0, fmt.Errorf("merge histograms: %w", err)
		}
		if mergeErr != nil {
			return nil, 0, fmt.Errorf("merge histograms: %w", mergeErr)
		}
		if perMs != 0 && pm != perMs {
			return nil, 0, fmt.Errorf("%s: its histograms are in another unit than %s's", s.dir, shards[0].dir)
		}
		perMs = pm
	}
	if perMs == 0 {
		perMs = 1e6
	}

	var buf bytes.Buffer
	w := hdr.NewHistogramLogWriter(&buf)
	secs := slices.Sorted(maps.Keys(m.perSec))
	base := time.Now().UnixMilli()
	if len(secs) > 0 {
		base = secs[0]
	}
	unit := "ns"
	if perMs == 1e3 {
		unit = "µs"
	}
	w.SetBaseTime(base)
	w.OutputLogFormatVersion()
	w.OutputComment(fmt.Sprintf("[vaultstorm merge of %d shards: each interval the exact sum of the shards' intervals that started in that wall-clock second; latency from intended send time, values in %s, one tag per operation]", len(shards), unit))
	w.OutputStartTime(base)
	w.OutputBaseTime(base)
	w.OutputLegend()
	for _, sec := range secs {
		ops := m.perSec[sec]
		for _, op := range slices.Sorted(maps.Keys(ops)) {
			h := ops[op]
			g := geoms[op]
			tot := m.total[op]
			if tot == nil {
				tot = hdr.New(g.lo, g.hi, g.digits)
				m.total[op] = tot
			}
			if d := h.MergeInto(tot); d != 0 {
				return nil, 0, fmt.Errorf("merge histograms: %d %s value(s) dropped adding up the run", d, op)
			}
			h.SetTag(op)
			h.SetStartTimeMs(sec)
			h.SetEndTimeMs(sec + 1000)
			if err := w.OutputIntervalPackedHistogram(h); err != nil {
				return nil, 0, fmt.Errorf("merge histograms: encode: %w", err)
			}
		}
	}
	// "all": every operation's values in one histogram, of the first
	// operation's geometry (load records every operation alike).
	for _, op := range slices.Sorted(maps.Keys(m.total)) {
		t := m.total[op]
		if m.all == nil {
			m.all = hdr.New(t.LowestTrackableValue(), t.HighestTrackableValue(), int(t.SignificantFigures()))
		}
		if d := m.all.Merge(t); d != 0 {
			return nil, 0, fmt.Errorf("merge histograms: %d %s value(s) dropped adding every operation together", d, op)
		}
	}
	if err := os.WriteFile(filepath.Join(out, rundir.HistogramsFile), buf.Bytes(), 0o644); err != nil {
		return nil, 0, fmt.Errorf("merge histograms: %w", err)
	}
	return m, perMs, nil
}

// mergeSamples sums the shards' per-second samples by the wall-clock second
// they started in, with each second's percentiles from its merged
// histograms. It returns how many seconds it wrote.
func mergeSamples(out string, shards []*shardRun, m *mergedHists, perMs float64) (int, error) {
	bySec := map[int64]*rundir.Sample{}
	for _, s := range shards {
		err := rundir.ReadLines(s.dir, rundir.SamplesFile, func(smp rundir.Sample) error {
			t := smp.T.Truncate(time.Second)
			sec := t.UnixMilli()
			dst := bySec[sec]
			if dst == nil {
				dst = &rundir.Sample{T: t.UTC(), Ops: map[string]rundir.OpStats{}}
				bySec[sec] = dst
			}
			dst.LateSends += smp.LateSends
			dst.Interval = max(dst.Interval, interval(smp))
			for op, o := range smp.Ops {
				st := dst.Ops[op]
				addCounts(&st, o)
				st.Rate = round3(st.Rate + o.Rate)
				dst.Ops[op] = st
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("merge samples: %w", err)
		}
	}
	app, err := rundir.OpenAppender(out, rundir.SamplesFile)
	if err != nil {
		return 0, fmt.Errorf("merge samples: %w", err)
	}
	defer app.Close()
	secs := slices.Sorted(maps.Keys(bySec))
	for _, sec := range secs {
		smp := bySec[sec]
		if smp.Interval >= 1 {
			smp.Interval = 0 // a whole second, as load writes it
		}
		for op, st := range smp.Ops {
			st.P50, st.P90, st.P99, st.P999, st.Max = 0, 0, 0, 0, 0
			if h := m.perSec[sec][op]; h != nil && h.TotalCount() > 0 {
				v := h.ValueAtPercentilesSlice([]float64{50, 90, 99, 99.9})
				st.P50, st.P90, st.P99, st.P999 = round3(float64(v[0])/perMs), round3(float64(v[1])/perMs), round3(float64(v[2])/perMs), round3(float64(v[3])/perMs)
				st.Max = round3(float64(h.Max()) / perMs)
			}
			smp.Ops[op] = st
		}
		if err := app.Append(smp); err != nil {
			return 0, fmt.Errorf("merge samples: %w", err)
		}
	}
	return len(secs), app.Close()
}

// mergeSummary adds the shards' summaries: counts and errors summed, rates
// summed (each shard's over its own duration), the worst send lag; the
// ledger verdict is left unverified for the caller's one read-back.
func mergeSummary(shards []*shardRun) rundir.Summary {
	var s rundir.Summary
	s.Ops = map[string]rundir.OpStats{}
	closed := false
	for _, sh := range shards {
		x := sh.sum
		for op, o := range x.Ops {
			st := s.Ops[op]
			addCounts(&st, o)
			st.Rate = round3(st.Rate + o.Rate)
			s.Ops[op] = st
		}
		s.AckedWrites += x.AckedWrites
		s.UnknownWrites += x.UnknownWrites
		s.LateSends += x.LateSends
		s.TargetRate = round3(s.TargetRate + x.TargetRate)
		s.Duration = max(s.Duration, x.Duration)
		s.AchievedRate = round3(s.AchievedRate + x.AchievedRate)
		s.LateThresholdMs = max(s.LateThresholdMs, x.LateThresholdMs)
		s.MaxSendLagMs = max(s.MaxSendLagMs, x.MaxSendLagMs)
		s.PoolWaits += x.PoolWaits
		s.PeakWorkers += x.PeakWorkers
		s.ConnsOpened += x.ConnsOpened
		s.HistoryKeys += x.HistoryKeys
		s.HistoryOps += x.HistoryOps
		closed = closed || x.RateReached == nil
		for _, why := range x.Invalid {
			s.Invalid = append(s.Invalid, fmt.Sprintf("shard %d: %s", sh.meta.Shard.Index, why))
		}
	}
	var n int64
	for _, st := range s.Ops {
		n += st.Count
	}
	if n > 0 {
		s.GeneratorLatePct = round3(100 * float64(s.LateSends) / float64(n))
	}
	if !closed && s.TargetRate > 0 {
		ok := s.AchievedRate >= 0.98*s.TargetRate
		s.RateReached = &ok
	}
	// Not read back yet: unknown, never "0 lost".
	s.Verified = false
	s.VerifyError = "the merged ledger has not been read back"
	return s
}

func mergeMeta(shards []*shardRun) rundir.Meta {
	first := shards[0].meta
	m := rundir.Meta{
		Tool:         first.Tool,
		Command:      "vaultstorm merge",
		VaultVersion: first.VaultVersion,
		Nodes:        first.Nodes,
		Load:         fmt.Sprintf("%d shards merged; shard 0: %s", len(shards), first.Load),
		Started:      first.Started,
		Ended:        first.Ended,
	}
	for _, s := range shards {
		m.Started = minTime(m.Started, s.meta.Started)
		if s.meta.Ended.After(m.Ended) {
			m.Ended = s.meta.Ended
		}
		m.Merged = append(m.Merged, rundir.MergedShard{Index: s.meta.Shard.Index, Dir: s.dir, Started: s.meta.Started, Ended: s.meta.Ended})
	}
	// The merged samples start on whole seconds: the run's axis does too,
	// or the first second would be drawn before the run began.
	m.Started = m.Started.Truncate(time.Second).UTC()
	return m
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// commonPrefix is the longest '/'-ended prefix of every shard's key prefix
// (load/<run id>/ for shards that kept the default).
func commonPrefix(shards []*shardRun) string {
	p := shards[0].prefix
	for _, s := range shards[1:] {
		for !strings.HasPrefix(s.prefix, p) {
			p = p[:len(p)-1]
		}
	}
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i+1]
	}
	return ""
}

func round3(f float64) float64 {
	if f >= 0 {
		return float64(int64(f*1000+0.5)) / 1000
	}
	return -float64(int64(-f*1000+0.5)) / 1000
}
