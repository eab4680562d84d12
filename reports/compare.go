package reports

import (
	"fmt"
	"math"
	"path"
	"sort"
	"strings"

	"golang.org/x/perf/benchmath"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// CompareOptions sets what counts as a regression of B against A.
type CompareOptions struct {
	// MaxRegression is the default allowed worsening, as a fraction (0.10 =
	// 10 %); a row may override it through Thresholds.
	MaxRegression float64
	// Thresholds overrides MaxRegression per row. Keys, most specific
	// first: a row key or a glob of row keys ("write/during*/p99"), a stat
	// (throughput, p50, p99, p99.9, max, leader_elected, write_unavailable,
	// read_unavailable, write_errors, read_errors, healed, rto_write,
	// rto_read, rpo_writes, rpo_seconds, snapshot_p99) or a group
	// (latency, recovery, rpo). A negative value switches the check off.
	// The restore's RTO rows are recovery rows (its floor applies), the
	// snapshot p99 rows latency rows; the RPO rows have no floor: the
	// loss comes at a fixed time after a snapshot, so a few more writes
	// gone is a real difference.
	// write_unavailable and read_unavailable are the stall windows (failed
	// or slower than unavailable_after), write_errors and read_errors the
	// error windows (failed only). The harness rows (its own requests per
	// second) are shown, never judged: they say whether two runs were
	// observed alike, not how Vault did.
	Thresholds map[string]float64
	// Differences below these are never regressions, whatever their
	// percentage: 0.4 ms → 0.5 ms is +25 % and means nothing, and recovery
	// is measured by probes every 50 ms.
	MinLatencyDeltaMs  float64
	MinRecoveryDeltaMs float64
	// Alpha is the significance level of the Mann-Whitney U test.
	Alpha float64
}

// DefaultCompareOptions: 10 %, 1 ms, 250 ms, α = 0.05.
func DefaultCompareOptions() CompareOptions {
	return CompareOptions{MaxRegression: 0.10, MinLatencyDeltaMs: 1, MinRecoveryDeltaMs: 250, Alpha: 0.05}
}

// Row is one compared figure.
type Row struct {
	Key    string // op/phase/stat or fault#N kind/stat
	Group  string // latency, throughput, recovery
	Stat   string
	Unit   string // ms or req/s
	Higher bool   // higher is better (throughput)

	A, B       []float64 // one value per repetition; +Inf: never happened
	CenterA    float64   // median over repetitions
	CenterB    float64
	SpreadA    string // range over repetitions, e.g. "±3%"; "" for one
	SpreadB    string
	DeltaPct   float64 // (B-A)/A in %; ±Inf when A is 0
	P          float64 // U-test p-value; NaN when no test was possible
	TestOn     string  // what the test compared: "repetitions" or "seconds"
	Threshold  float64 // fraction; < 0 = off
	Regressed  bool
	Improved   bool
	Note       string
	sampleA    []float64
	sampleB    []float64
	haveSample bool
}

// Comparison is the result of Compare.
type Comparison struct {
	A, B        []string // run directories
	Rows        []Row
	Regressions []Row
	Warnings    []string
	Opts        CompareOptions
}

// Regressed reports whether any row regressed beyond its threshold.
func (c *Comparison) Regressed() bool { return len(c.Regressions) > 0 }

// Compare compares runs B (the candidate: new Vault version, new config)
// against runs A (the baseline), each side one or more repetitions of the
// same scenario.
//
// Noise is judged the way benchstat does, with a Mann-Whitney U test: over
// the repetitions when each side has several; else, for load figures, over
// the per-second values inside the phase (each second is one sample of the
// phase's behaviour). A difference beyond the threshold counts as a
// regression only when the test says it is beyond noise, or when there is
// nothing to test (one repetition of a recovery time).
func Compare(a, b []*Run, o CompareOptions) (*Comparison, error) {
	if len(a) == 0 || len(b) == 0 {
		return nil, fmt.Errorf("compare: need at least one run on each side (got %d and %d)", len(a), len(b))
	}
	if o.Alpha == 0 {
		o.Alpha = 0.05
	}
	c := &Comparison{Opts: o}
	for _, r := range a {
		c.A = append(c.A, r.Dir)
	}
	for _, r := range b {
		c.B = append(c.B, r.Dir)
	}
	c.Warnings = append(c.Warnings, sanity(a, "A")...)
	c.Warnings = append(c.Warnings, sanity(b, "B")...)
	if sa, sb := scenarioOf(a[0]), scenarioOf(b[0]); sa != sb {
		c.Warnings = append(c.Warnings, fmt.Sprintf("different scenarios: A is %q, B is %q", sa, sb))
	}

	rows := map[string]*Row{}
	var order []string
	add := func(key, group, stat, unit string, higher bool, side int, v float64, sample []float64, haveSample bool) {
		row := rows[key]
		if row == nil {
			row = &Row{Key: key, Group: group, Stat: stat, Unit: unit, Higher: higher}
			rows[key] = row
			order = append(order, key)
		}
		if side == 0 {
			row.A = append(row.A, v)
			row.sampleA = append(row.sampleA, sample...)
		} else {
			row.B = append(row.B, v)
			row.sampleB = append(row.sampleB, sample...)
		}
		row.haveSample = row.haveSample || haveSample
	}
	for side, runs := range [][]*Run{a, b} {
		for _, r := range runs {
			collect(r, func(key, group, stat, unit string, higher bool, v float64, sample []float64) {
				add(key, group, stat, unit, higher, side, v, sample, sample != nil)
			})
		}
	}
	// Recovery first: it is the resilience question; then the whole run,
	// then each phase.
	rank := func(g string) int {
		switch g {
		case "recovery", "rpo":
			return 0
		case "harness":
			return 1
		}
		return 2
	}
	sort.SliceStable(order, func(i, j int) bool { return rank(rows[order[i]].Group) < rank(rows[order[j]].Group) })
	for _, k := range order {
		row := rows[k]
		if len(row.A) == 0 || len(row.B) == 0 {
			side := "B"
			if len(row.A) == 0 {
				side = "A"
			}
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: only in %s, not compared", k, map[string]string{"A": "B", "B": "A"}[side]))
			continue
		}
		c.judge(row)
		if row.Group == "harness" {
			c.observerWarning(row)
		}
		c.Rows = append(c.Rows, *row)
		if row.Regressed {
			c.Regressions = append(c.Regressions, *row)
		}
	}
	return c, nil
}

func scenarioOf(r *Run) string { return firstNonEmpty(r.Meta.Scenario, r.Summary.Scenario) }

func sanity(runs []*Run, side string) []string {
	var w []string
	for _, r := range runs {
		if r.Partial {
			w = append(w, fmt.Sprintf("%s: %s is a partial run (cut short)", side, r.Dir))
		}
		if inv := r.Summary.Invalid; len(inv) > 0 {
			w = append(w, fmt.Sprintf("%s: %s is INVALID (the harness, not Vault, fell behind: %s): its figures say nothing about Vault", side, r.Dir, strings.Join(inv, "; ")))
		}
		if r.Ledger.Unverified() {
			w = append(w, fmt.Sprintf("%s: %s: %s", side, r.Dir, r.Ledger.Why))
		}
		if scenarioOf(r) != scenarioOf(runs[0]) {
			w = append(w, fmt.Sprintf("%s: %s is scenario %q, not %q like %s", side, r.Dir, scenarioOf(r), scenarioOf(runs[0]), runs[0].Dir))
		}
	}
	return w
}

var latencyStats = []struct {
	name string
	get  func(rundir.OpStats) float64
}{
	{"p50", func(s rundir.OpStats) float64 { return s.P50 }},
	{"p99", func(s rundir.OpStats) float64 { return s.P99 }},
	{"p99.9", func(s rundir.OpStats) float64 { return s.P999 }},
	{"max", func(s rundir.OpStats) float64 { return s.Max }},
}

func goodput(s rundir.OpStats) float64 {
	if s.Count == 0 {
		return 0
	}
	return s.Rate * float64(s.Count-s.Errors) / float64(s.Count)
}

// collect emits every comparable figure of one run.
func collect(r *Run, emit func(key, group, stat, unit string, higher bool, v float64, sample []float64)) {
	type span struct {
		name       string
		ops        map[string]rundir.OpStats
		start, end int64
	}
	spans := []span{{"run", r.Summary.Ops, math.MinInt64, math.MaxInt64}}
	count := map[string]int{}
	for _, p := range r.Summary.Phases {
		count[p.Phase]++
	}
	seen := map[string]int{}
	for _, p := range r.Summary.Phases {
		seen[p.Phase]++
		name := p.Phase
		if count[p.Phase] > 1 {
			name = fmt.Sprintf("%s#%d", p.Phase, seen[p.Phase])
		}
		spans = append(spans, span{name, p.Ops, p.Start.UnixNano(), p.End.UnixNano()})
	}
	for _, sp := range spans {
		for _, op := range sortedOps(sp.ops) {
			st := sp.ops[op]
			var secsOK []float64
			perSec := map[string][]float64{}
			for i, s := range r.Samples {
				if t := s.T.UnixNano(); t < sp.start || t >= sp.end || r.isDrain(i) {
					continue
				}
				o, ok := s.Ops[op]
				if !ok {
					continue
				}
				secsOK = append(secsOK, float64(o.Count-o.Errors)/interval(s))
				if o.Count-o.Errors > 0 {
					perSec["p50"] = append(perSec["p50"], o.P50)
					perSec["p99"] = append(perSec["p99"], o.P99)
					perSec["p99.9"] = append(perSec["p99.9"], o.P999)
					perSec["max"] = append(perSec["max"], o.Max)
				}
			}
			base := op + "/" + sp.name + "/"
			emit(base+"throughput", "throughput", "throughput", "req/s", true, goodput(st), nonEmpty(secsOK))
			for _, ls := range latencyStats {
				emit(base+ls.name, "latency", ls.name, "ms", false, ls.get(st), nonEmpty(perSec[ls.name]))
			}
		}
	}
	for _, f := range r.Faults {
		fr := f.Result
		base := fmt.Sprintf("fault#%d %s/", f.Index, f.Kind)
		never := func(p *float64) float64 {
			if p == nil {
				return math.Inf(1)
			}
			return *p
		}
		if fr.LeaderElectedMs != nil || !f.Leader.IsZero() {
			emit(base+"leader_elected", "recovery", "leader_elected", "ms", false, never(fr.LeaderElectedMs), nil)
		}
		// The stall windows keep their old names (unavailable: failed or
		// slower than unavailable_after, as DESIGN defines it); the error
		// windows count failed requests only.
		emit(base+"write_unavailable", "recovery", "write_unavailable", "ms", false, fr.WriteUnavailableMs, nil)
		emit(base+"write_errors", "recovery", "write_errors", "ms", false, fr.WriteErrorWindowMs, nil)
		emit(base+"read_unavailable", "recovery", "read_unavailable", "ms", false, fr.ReadUnavailableMs, nil)
		emit(base+"read_errors", "recovery", "read_errors", "ms", false, fr.ReadErrorWindowMs, nil)
		// Degraded is never healed, as the runner counts it.
		healed := never(fr.HealedMs)
		if fr.Degraded != "" {
			healed = math.Inf(1)
		}
		emit(base+"healed", "recovery", "healed", "ms", false, healed, nil)
	}
	collectBackups(r, emit)
	if r.HasSummary && (r.Summary.HarnessRequests > 0 || r.Summary.HarnessRequestsPerS > 0) {
		emit("harness/requests_per_s", "harness", "harness_rate", "req/s", false, r.Summary.HarnessRequestsPerS, nil)
		emit("harness/quiet_requests_per_s", "harness", "harness_quiet_rate", "req/s", false, r.Summary.HarnessQuietPerS, nil)
	}
}

// collectBackups emits the restore's RTO and RPO and the snapshots' cost
// on latency, where the run measured them. A restore that failed has an
// RTO of never and no RPO; a restore derived from a run cut short has
// neither.
func collectBackups(r *Run, emit func(key, group, stat, unit string, higher bool, v float64, sample []float64)) {
	if rs := r.Restore; rs != nil && !r.RestoreDerived {
		never := func(p *float64) float64 {
			if p == nil {
				return math.Inf(1)
			}
			return *p
		}
		emit("restore/rto_write", "recovery", "rto_write", "ms", false, never(rs.FirstWriteMs), nil)
		emit("restore/rto_read", "recovery", "rto_read", "ms", false, never(rs.FirstReadMs), nil)
		if rs.Error == "" && r.Summary.Verified {
			emit("restore/rpo_writes", "rpo", "rpo_writes", "writes", false, float64(rs.RPOWrites), nil)
			emit("restore/rpo_seconds", "rpo", "rpo_seconds", "s", false, rs.RPOSeconds, nil)
		}
	}
	if c := r.Summary.SnapshotP99; c != nil {
		if c.DuringCount > 0 {
			emit("snapshots/during/p99", "latency", "snapshot_p99", "ms", false, c.DuringP99Ms, nil)
		}
		if c.OutsideCount > 0 {
			emit("snapshots/outside/p99", "latency", "snapshot_p99", "ms", false, c.OutsideP99Ms, nil)
		}
	}
}

func nonEmpty(s []float64) []float64 {
	if len(s) == 0 {
		return nil
	}
	return s
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return s[n/2]
	}
	if math.IsInf(s[n/2], 1) {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func spread(v []float64) string {
	if len(v) < 2 {
		return ""
	}
	m := median(v)
	if m == 0 || math.IsInf(m, 0) {
		return ""
	}
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	if math.IsInf(hi, 1) {
		return "±∞"
	}
	return fmt.Sprintf("±%.0f%%", 100*math.Max(hi/m-1, 1-lo/m))
}

// threshold finds the row's allowed worsening.
func (c *Comparison) threshold(row *Row) float64 {
	th := c.Opts.Thresholds
	if v, ok := th[row.Key]; ok {
		return v
	}
	keys := make([]string, 0, len(th))
	for k := range th {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.ContainsAny(k, "*?[") {
			if ok, _ := path.Match(k, row.Key); ok {
				return th[k]
			}
		}
	}
	if v, ok := th[row.Stat]; ok {
		return v
	}
	if v, ok := th[row.Group]; ok {
		return v
	}
	return c.Opts.MaxRegression
}

// observerWarning says when the two sides were observed differently: the
// harness's own requests are part of the experiment (probes cost the
// cluster CPU), so recovery and latency figures of runs whose observers
// differ by more than half are not like for like.
func (c *Comparison) observerWarning(row *Row) {
	a, b := row.CenterA, row.CenterB
	if row.Key != "harness/quiet_requests_per_s" || max(a, b) < 1 {
		return
	}
	if min(a, b) < max(a, b)/1.5 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("the harness's own traffic outside faults differs: A %.1f req/s, B %.1f req/s; figures may not be like for like", a, b))
	}
}

func (c *Comparison) judge(row *Row) {
	row.CenterA, row.CenterB = median(row.A), median(row.B)
	row.SpreadA, row.SpreadB = spread(row.A), spread(row.B)
	row.Threshold = c.threshold(row)
	a, b := row.CenterA, row.CenterB
	switch {
	case a == b:
		row.DeltaPct = 0
	case a == 0 || math.IsInf(a, 1) || math.IsInf(b, 1):
		row.DeltaPct = math.Inf(1)
		if b < a {
			row.DeltaPct = math.Inf(-1)
		}
	default:
		row.DeltaPct = (b - a) / a * 100
	}
	row.P = math.NaN()
	if row.Group == "harness" {
		row.Note = "the harness's own traffic: not judged"
		return
	}

	// Which way is worse, and by how much in absolute terms.
	worse := b > a
	if row.Higher {
		worse = b < a
	}
	floor := 0.0
	switch row.Group {
	case "latency":
		floor = c.Opts.MinLatencyDeltaMs
	case "recovery":
		floor = c.Opts.MinRecoveryDeltaMs
	}
	absDiff := math.Abs(b - a)
	beyond := math.Abs(row.DeltaPct) > row.Threshold*100 && absDiff >= floor
	if math.IsInf(b, 1) && !math.IsInf(a, 1) {
		beyond, row.Note = true, "never happened in B"
	}
	if math.IsInf(a, 1) && !math.IsInf(b, 1) {
		row.Note = "never happened in A"
	}

	// Noise: repetitions first, seconds within the phase else.
	row.P = math.NaN()
	thr := &benchmath.Thresholds{CompareAlpha: c.Opts.Alpha}
	var sa, sb []float64
	switch {
	case len(row.A) >= 2 && len(row.B) >= 2:
		sa, sb, row.TestOn = row.A, row.B, "repetitions"
	case row.haveSample:
		sa, sb, row.TestOn = row.sampleA, row.sampleB, "seconds"
	}
	significant := true // with nothing to test (one recovery time a side), the threshold alone decides
	gate := true
	if row.TestOn != "" && min(len(sa), len(sb)) < 2 {
		row.Note = joinNote(row.Note, fmt.Sprintf("n=%d+%d too few to test", len(sa), len(sb)))
		gate = row.TestOn == "repetitions"
	} else if row.TestOn != "" {
		cmp := benchmath.AssumeNothing.Compare(benchmath.NewSample(finiteCopy(sa), thr), benchmath.NewSample(finiteCopy(sb), thr))
		row.P = cmp.P
		significant = cmp.P <= cmp.Alpha
		if !significant && uMinP(len(sa), len(sb)) > cmp.Alpha {
			// The test could never have rejected with so few samples.
			// Repetitions are the user's stated unit of noise, so their
			// threshold still decides; a phase of two or three seconds is
			// too short to say anything about and does not gate.
			row.Note = joinNote(row.Note, fmt.Sprintf("n=%d+%d too few to test", len(sa), len(sb)))
			if row.TestOn == "repetitions" {
				significant = true
			} else {
				gate = false
			}
		}
	}
	if row.Threshold < 0 {
		row.Note = joinNote(row.Note, "check off")
		return
	}
	if !gate {
		if beyond {
			row.Note = joinNote(row.Note, "not judged")
		}
		return
	}
	if beyond && significant {
		if worse {
			row.Regressed = true
		} else {
			row.Improved = true
		}
	} else if beyond && !significant {
		row.Note = joinNote(row.Note, "within noise")
	}
}

// uMinP is the smallest two-sided p-value a Mann-Whitney U test can give
// for samples of n1 and n2 values: 2 / C(n1+n2, n1).
func uMinP(n1, n2 int) float64 {
	c := 1.0
	for i := 1; i <= n1; i++ {
		c = c * float64(n2+i) / float64(i)
	}
	return 2 / c
}

func finiteCopy(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		if math.IsInf(x, 1) {
			x = math.MaxFloat64 // ranks last, which is all the U test needs
		}
		out[i] = x
	}
	return out
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + "; " + b
}

// Cell formatting shared by the table, Markdown and HTML outputs.

func (row Row) fmtVal(v float64) string {
	if math.IsInf(v, 1) {
		return "never"
	}
	switch row.Unit {
	case "ms":
		return fmtMs(v)
	case "s":
		return fmtMs(v * 1000)
	case "writes":
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func (row Row) deltaString() string {
	switch {
	case row.DeltaPct == 0:
		return "0%"
	case math.IsInf(row.DeltaPct, 1):
		return "+∞"
	case math.IsInf(row.DeltaPct, -1):
		return "-∞"
	}
	return fmt.Sprintf("%+.1f%%", row.DeltaPct)
}

func (row Row) pString() string {
	if math.IsNaN(row.P) {
		return ""
	}
	return fmt.Sprintf("p=%.3f (%s)", row.P, row.TestOn)
}

func (row Row) verdict() string {
	switch {
	case row.Regressed:
		return "REGRESSION"
	case row.Improved:
		return "better"
	}
	return ""
}

func (row Row) thresholdString() string {
	if row.Group == "harness" {
		return "—"
	}
	if row.Threshold < 0 {
		return "off"
	}
	return fmt.Sprintf("%g%%", row.Threshold*100)
}
