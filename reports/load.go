// Package reports turns a run directory into what people read: report.html
// (charts inlined as SVG), junit.xml and summary.md for CI, latency.hgrm for
// HdrHistogram tools, and the comparison of two runs (compare).
//
// Everything here is a pure function of the files in the run directory, so
// a report can be rendered again later, elsewhere, and from a run that was
// cut short: what summary.json would have said is derived from events,
// samples and histograms when it is missing.
package reports

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/metrics"
)

// Run is one run directory, loaded and with what was missing derived.
type Run struct {
	Dir     string
	Meta    rundir.Meta
	Partial bool // the run never reached its end (no Ended in meta.json)
	// HasSummary is false when summary.json is missing: Summary is then
	// derived from the other files and Derived lists what was guessed.
	HasSummary bool
	Summary    rundir.Summary
	Derived    []string

	Events  []rundir.Event
	Samples []rundir.Sample
	Ops     []string                  // operations seen, in a stable order
	Hist    map[string]*hdr.Histogram // whole run per op, in the log's unit (see PerMs)
	// PerMs is how many histogram units make a millisecond: 1e6 for the
	// nanoseconds load/ records, 1e3 for logs in microseconds.
	PerMs float64
	// KindHist merges every phase of one kind (before, during, …) per op,
	// for the percentile distribution charts.
	KindHist map[string]map[string]*hdr.Histogram
	Faults   []Fault
	Lanes    []Lane
	Metrics  map[string][]metrics.Point
	// Nodes is every node the run saw: named by an event (a fault's
	// targets, a leader, a state change, a replacement) or owning a metrics
	// file, in natural order (node2 before node10). Node lanes and metric
	// series follow it, so a replacement that joined mid-run is drawn too,
	// and a node keeps its colour on every chart.
	Nodes []string

	Start, End time.Time // the time axis of every chart
	Ledger     LedgerVerdict
	// Snapshots the run's agent took or tried to, in time order.
	Snapshots []SnapshotMark
	// Restore is summary.json's restore or, for a run cut short, what
	// its events tell of one (RestoreDerived: no RPO, no RTO).
	Restore        *rundir.RestoreResult
	RestoreDerived bool
	Notes          []string // things a reader should know (missing files, torn lines)
}

// Fault is one fault with the times that bound it on a chart.
type Fault struct {
	Index   int // 1-based, as in events
	Kind    string
	Nodes   []string
	Notice  time.Time // zero when there was no notice
	Start   time.Time // t_fault: injection
	End     time.Time // the fault was lifted (restart, replacement); may be zero
	Leader  time.Time
	WriteOK time.Time
	Healed  time.Time // zero: never healed within the run
	// LeaderHit: a node the fault hit led the cluster when it was
	// injected (from the leader events), so a new leader was due.
	LeaderHit bool
	Result    rundir.FaultResult
}

// BandEnd is where the shaded band of the fault ends: healed, or else the
// end of the run (an open band: never healed).
func (f Fault) BandEnd(runEnd time.Time) time.Time {
	if !f.Healed.IsZero() {
		return f.Healed
	}
	return runEnd
}

// Label names the fault in charts and tables.
func (f Fault) Label() string {
	s := fmt.Sprintf("#%d %s", f.Index, f.Kind)
	if len(f.Nodes) > 0 {
		s += " " + strings.Join(f.Nodes, ",")
	}
	return s
}

// Lane is one node's state over time.
type Lane struct {
	Node string
	Segs []Seg
}

// Seg is a span of one state; the last span of a lane ends at the run's end.
type Seg struct {
	State      string
	Start, End time.Time
}

// LedgerVerdict is the data-loss verdict.
type LedgerVerdict struct {
	Acked, Lost, Unknown int64
	LostKeys             []string
	// Verified is summary.json's verified: every key of the ledger was
	// read back. When false, Lost is unknown, not zero.
	Verified             bool
	KeysRead, KeysToRead int64
	VerifyError          string
	Duplicates           int64 // (key, version) acknowledged twice with different values
	// Why says, when the ledger is not verified, how far the read-back
	// got: "NOT VERIFIED: 12 of 1000 keys read back: no leader".
	Why string
}

// Unverified reports whether acknowledged writes were not all read back:
// their loss is unknown, which no verdict may count as zero.
func (l LedgerVerdict) Unverified() bool { return !l.Verified && l.Acked > 0 }

// opOrder sorts the usual operations first, anything else by name.
func opOrder(ops []string) {
	rank := map[string]int{"read": 0, "write": 1, "list": 2, "delete": 3}
	sort.Slice(ops, func(i, j int) bool {
		ri, iok := rank[ops[i]]
		rj, jok := rank[ops[j]]
		switch {
		case iok && jok:
			return ri < rj
		case iok != jok:
			return iok
		}
		return ops[i] < ops[j]
	})
}

// Load reads a run directory. It fails only when the directory is not a run
// directory at all (no meta.json, samples or events) or a file is corrupt
// before its last line; everything else missing becomes a Note.
func Load(dir string) (*Run, error) {
	r := &Run{Dir: dir, Hist: map[string]*hdr.Histogram{}, PerMs: 1e6}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("run directory %s: not a directory", dir)
	}
	metaErr := rundir.ReadJSON(dir, rundir.MetaFile, &r.Meta)
	if metaErr != nil && !errors.Is(metaErr, os.ErrNotExist) {
		return nil, metaErr
	}
	if err := rundir.ReadLines(dir, rundir.EventsFile, func(e rundir.Event) error {
		r.Events = append(r.Events, e)
		return nil
	}); err != nil {
		return nil, err
	}
	sort.SliceStable(r.Events, func(i, j int) bool { return r.Events[i].T.Before(r.Events[j].T) })
	if err := rundir.ReadLines(dir, rundir.SamplesFile, func(s rundir.Sample) error {
		r.Samples = append(r.Samples, s)
		return nil
	}); err != nil {
		return nil, err
	}
	sort.SliceStable(r.Samples, func(i, j int) bool { return r.Samples[i].T.Before(r.Samples[j].T) })
	if metaErr != nil {
		if len(r.Samples) == 0 && len(r.Events) == 0 {
			return nil, fmt.Errorf("%s: not a run directory (no %s, %s or %s)", dir, rundir.MetaFile, rundir.SamplesFile, rundir.EventsFile)
		}
		r.Notes = append(r.Notes, "meta.json is missing: the run's description is unknown")
	}
	r.Partial = r.Meta.Partial()

	sumErr := rundir.ReadJSON(dir, rundir.SummaryFile, &r.Summary)
	switch {
	case sumErr == nil:
		r.HasSummary = true
	case errors.Is(sumErr, os.ErrNotExist):
	default:
		return nil, sumErr
	}

	r.Metrics, err = metrics.ReadDir(dir)
	if err != nil {
		return nil, err
	}

	r.timeAxis()
	r.collectNodes()
	r.buildFaults()
	r.buildLanes()
	phases := r.Summary.Phases
	if !r.HasSummary {
		phases = r.phaseWindows()
	}
	// One pass over the interval log: an hour of 1 s intervals is tens of
	// thousands of histograms, far too many to hold at once.
	ph := make([]map[string]*hdr.Histogram, len(phases))
	r.KindHist = map[string]map[string]*hdr.Histogram{}
	tags := map[string]bool{}
	r.PerMs, err = readHlog(filepath.Join(dir, rundir.HistogramsFile), func(h *hdr.PackedHistogram, op string, t int64) {
		if op == "" {
			op = "all"
		}
		tags[op] = true
		mergeInto(r.Hist, op, h)
		for i, p := range phases {
			if t >= p.Start.UnixMilli() && t < p.End.UnixMilli() {
				if ph[i] == nil {
					ph[i] = map[string]*hdr.Histogram{}
				}
				mergeInto(ph[i], op, h)
				if r.KindHist[p.Phase] == nil {
					r.KindHist[p.Phase] = map[string]*hdr.Histogram{}
				}
				mergeInto(r.KindHist[p.Phase], op, h)
				break
			}
		}
	})
	if err != nil {
		return nil, err
	}
	r.collectOps(tags)
	if !r.HasSummary {
		r.deriveSummary(phases, ph)
	}
	r.collectSnapshots()
	r.collectRestore()
	if err := r.ledgerVerdict(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Run) timeAxis() {
	r.Start = r.Meta.Started
	if r.Start.IsZero() {
		switch {
		case len(r.Samples) > 0:
			r.Start = r.Samples[0].T
		case len(r.Events) > 0:
			r.Start = r.Events[0].T
		}
	}
	r.End = r.Meta.Ended
	if r.End.IsZero() {
		// A cut-short run ends at the last thing it recorded.
		if n := len(r.Samples); n > 0 {
			r.End = r.Samples[n-1].T.Add(time.Second)
		}
		if n := len(r.Events); n > 0 && r.Events[n-1].T.After(r.End) {
			r.End = r.Events[n-1].T
		}
	}
	if !r.End.After(r.Start) {
		r.End = r.Start.Add(time.Second)
	}
}

func (r *Run) collectOps(tags map[string]bool) {
	seen := map[string]bool{}
	for _, s := range r.Samples {
		for op := range s.Ops {
			seen[op] = true
		}
	}
	for op := range r.Summary.Ops {
		seen[op] = true
	}
	for op := range tags {
		seen[op] = true
	}
	for op := range seen {
		r.Ops = append(r.Ops, op)
	}
	opOrder(r.Ops)
}

// mergeInto adds an interval to m[op], creating it with the interval's own
// geometry so the merge goes index to index.
func mergeInto(m map[string]*hdr.Histogram, op string, h *hdr.PackedHistogram) {
	w := m[op]
	if w == nil {
		w = hdr.New(h.LowestTrackableValue(), h.HighestTrackableValue(), int(h.SignificantFigures()))
		m[op] = w
	}
	h.MergeInto(w)
}

// readHlog calls fn with every complete interval of an HdrHistogram
// interval log (format 1.3, as HistogramLogWriter writes it). A last line
// without its newline was being written when the writer died: it is dropped,
// as rundir.ReadLines does for JSON lines.
//
// It parses the lines itself rather than with hdr.HistogramLogReader because
// that reader decodes each interval into a dense histogram (an allocation of
// the full counts array, ~140 kB at 1 µs–60 s, 3 digits) and merging dense
// histograms walks every bucket: an hour of intervals took seconds. Packed
// histograms decode sparsely and merge in proportion to populated buckets.
//
// It returns the log's unit as units per millisecond: a comment saying
// "values in ns" (or µs) decides; else the geometry does, since a log of
// nanoseconds tracks from 1 µs = 1000 units up.
func readHlog(path string, fn func(h *hdr.PackedHistogram, tag string, startMs int64)) (perMs float64, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 1e6, nil
	}
	if err != nil {
		return 0, err
	}
	if i := bytes.LastIndexByte(b, '\n'); i < len(b)-1 {
		b = b[:i+1]
	}
	var startSec, baseSec float64
	haveStart, haveBase := false, false
	for ln := 1; len(b) > 0; ln++ {
		i := bytes.IndexByte(b, '\n')
		line := bytes.TrimRight(b[:i], "\r")
		b = b[i+1:]
		if len(line) == 0 || line[0] == '"' {
			continue // blank, or the legend
		}
		if line[0] == '#' {
			lc := strings.ToLower(string(line))
			switch {
			case strings.Contains(lc, "values in ns") || strings.Contains(lc, "nanosecond"):
				perMs = 1e6
			case strings.Contains(lc, "values in µs") || strings.Contains(lc, "values in us") || strings.Contains(lc, "microsecond"):
				perMs = 1e3
			}
			if v, ok := hlogHeader(line, "#[StartTime: "); ok {
				startSec, haveStart = v, true
			} else if v, ok := hlogHeader(line, "#[BaseTime: "); ok {
				baseSec, haveBase = v, true
			}
			continue
		}
		tag := ""
		if bytes.HasPrefix(line, []byte("Tag=")) {
			c := bytes.IndexByte(line, ',')
			if c < 0 {
				return 0, fmt.Errorf("%s:%d: Tag without fields", path, ln)
			}
			tag, line = string(line[4:c]), line[c+1:]
		}
		f := bytes.SplitN(line, []byte(","), 4)
		if len(f) != 4 {
			return 0, fmt.Errorf("%s:%d: want start,length,max,histogram", path, ln)
		}
		ts, err := strconv.ParseFloat(string(f[0]), 64)
		if err != nil {
			return 0, fmt.Errorf("%s:%d: start time: %w", path, ln, err)
		}
		if !haveStart {
			startSec, haveStart = ts, true
		}
		if !haveBase {
			// The HdrHistogram convention: timestamps more than a year
			// before StartTime are relative to it.
			if ts < startSec-365*24*3600 {
				baseSec = startSec
			}
			haveBase = true
		}
		h, err := hdr.DecodePacked(f[3])
		if err != nil {
			return 0, fmt.Errorf("%s:%d: %w", path, ln, err)
		}
		if perMs == 0 {
			perMs = 1e3
			if h.LowestTrackableValue() >= 1000 || h.HighestTrackableValue() > 1e9 {
				perMs = 1e6
			}
		}
		fn(h, tag, int64(math.Round((ts+baseSec)*1000)))
	}
	if perMs == 0 {
		perMs = 1e6
	}
	return perMs, nil
}

func hlogHeader(line []byte, prefix string) (float64, bool) {
	if !bytes.HasPrefix(line, []byte(prefix)) {
		return 0, false
	}
	rest := line[len(prefix):]
	n := 0
	for n < len(rest) && (rest[n] == '.' || rest[n] >= '0' && rest[n] <= '9') {
		n++
	}
	v, err := strconv.ParseFloat(string(rest[:n]), 64)
	return v, err == nil
}

func (r *Run) buildFaults() {
	byIdx := map[int]*Fault{}
	get := func(i int) *Fault {
		f := byIdx[i]
		if f == nil {
			f = &Fault{Index: i}
			byIdx[i] = f
		}
		return f
	}
	for _, e := range r.Events {
		if e.Fault == 0 {
			continue
		}
		f := get(e.Fault)
		switch e.Kind {
		case rundir.EvFaultNotice:
			f.Notice = e.T
		case rundir.EvFaultStart:
			f.Start = e.T
			if e.Msg != "" {
				f.Kind = strings.Fields(e.Msg)[0]
			}
			if e.Node != "" {
				f.Nodes = strings.Split(e.Node, ",")
			}
		case rundir.EvFaultEnd:
			f.End = e.T
		case rundir.EvLeader:
			if f.Leader.IsZero() {
				f.Leader = e.T
			}
		case rundir.EvWriteOK:
			if f.WriteOK.IsZero() {
				f.WriteOK = e.T
			}
		case rundir.EvHealed:
			if f.Healed.IsZero() {
				f.Healed = e.T
			}
		}
	}
	// summary.json is the authority for what it has; events fill in the
	// times it does not carry.
	for i, fr := range r.Summary.Faults {
		f := get(i + 1)
		f.Result = fr
		f.Kind = fr.Kind
		f.Nodes = fr.Nodes
		if !fr.At.IsZero() {
			f.Start = fr.At
		}
		if !fr.End.IsZero() && f.End.IsZero() {
			f.End = fr.End
		}
		if fr.HealedMs != nil && f.Healed.IsZero() {
			f.Healed = f.Start.Add(msDur(*fr.HealedMs))
		}
		if fr.LeaderElectedMs != nil && f.Leader.IsZero() {
			f.Leader = f.Start.Add(msDur(*fr.LeaderElectedMs))
		}
	}
	for _, f := range byIdx {
		if f.Start.IsZero() {
			continue // a notice whose fault never started (run cut short)
		}
		f.LeaderHit = slices.Contains(f.Nodes, r.leaderAt(f.Start))
		if f.Kind == "" {
			f.Kind = "fault"
		}
		if r.Summary.Faults == nil || f.Index > len(r.Summary.Faults) {
			f.Result = r.deriveFault(f)
		}
		r.Faults = append(r.Faults, *f)
	}
	sort.Slice(r.Faults, func(i, j int) bool { return r.Faults[i].Start.Before(r.Faults[j].Start) })
}

func msDur(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

func durMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// deriveFault measures a fault from events and samples, as the runner would
// have in summary.json: the leader from leader events (the runner's carry
// no fault index: the first leader after the injection that is none of the
// fault's nodes, when one of them led), heal from a healed event (the
// runner writes those only at the end, so a cut-short run has none), and
// the unavailability windows at 1 s resolution from the samples.
func (r *Run) deriveFault(f *Fault) rundir.FaultResult {
	fr := rundir.FaultResult{Kind: f.Kind, Nodes: f.Nodes, At: f.Start, End: f.End}
	if f.Leader.IsZero() {
		f.Leader = r.leaderElected(f.Start, f.Nodes)
	}
	if !f.Leader.IsZero() {
		v := durMs(f.Leader.Sub(f.Start))
		fr.LeaderElectedMs = &v
	}
	if !f.Healed.IsZero() {
		v := durMs(f.Healed.Sub(f.Start))
		fr.HealedMs = &v
	}
	end := f.BandEnd(r.End)
	thr := r.unavailableAfterMs()
	fr.WriteErrorWindowMs = r.unavailableRunMs("write", f.Start, end, -1)
	fr.ReadErrorWindowMs = r.unavailableRunMs("read", f.Start, end, -1)
	fr.WriteUnavailableMs = max(fr.WriteErrorWindowMs, r.unavailableRunMs("write", f.Start, end, thr))
	fr.ReadUnavailableMs = max(fr.ReadErrorWindowMs, r.unavailableRunMs("read", f.Start, end, thr))
	if !f.WriteOK.IsZero() {
		// write_ok ends the failures the runner saw, at full resolution.
		fr.WriteErrorWindowMs = durMs(f.WriteOK.Sub(f.Start))
		fr.WriteUnavailableMs = max(fr.WriteUnavailableMs, fr.WriteErrorWindowMs)
	}
	return fr
}

// unavailableAfterMs is the run's unavailable_after, 1 s by default.
func (r *Run) unavailableAfterMs() float64 {
	if v := r.Summary.UnavailableAfterMs; v > 0 {
		return v
	}
	return 1000
}

// leaderElected is when a node other than excluded was first seen leading
// after from, provided one of excluded led at from; zero otherwise (the
// fault did not hit the leader, or no new leader was seen).
func (r *Run) leaderElected(from time.Time, excluded []string) time.Time {
	if !slices.Contains(excluded, r.leaderAt(from)) {
		return time.Time{}
	}
	for _, e := range r.Events {
		if !e.T.Before(from) && isLeaderEvent(e) && !slices.Contains(excluded, e.Node) {
			return e.T
		}
	}
	return time.Time{}
}

func isLeaderEvent(e rundir.Event) bool {
	return e.Node != "" && (e.Kind == rundir.EvLeader || e.Kind == rundir.EvNodeState && e.State == "leader")
}

// leaderAt is the last node seen leading at or before t ("" none).
func (r *Run) leaderAt(t time.Time) string {
	leader := ""
	for _, e := range r.Events {
		if e.T.After(t) {
			break
		}
		if isLeaderEvent(e) {
			leader = e.Node
		}
	}
	return leader
}

// unavailableRunMs is the longest run of seconds in [from, to] in which op
// was unavailable: a 1 s-resolution stand-in for the runner's windows when
// summary.json is missing. With thrMs < 0 a second counts only when every
// request failed (the error window); else also when its median took
// thrMs or longer (the stall window: samples keep no minimum, so "most
// requests stalled" is the closest a second's figures can say).
func (r *Run) unavailableRunMs(op string, from, to time.Time, thrMs float64) float64 {
	best, cur := 0, 0
	for _, s := range r.Samples {
		if s.T.Add(time.Second).Before(from) || s.T.After(to) {
			continue
		}
		st, ok := s.Ops[op]
		down := ok && st.Count > 0 && st.Errors >= st.Count
		if thrMs >= 0 && ok && st.Count > 0 && st.P50 >= thrMs {
			down = true
		}
		if down {
			cur++
			best = max(best, cur)
		} else {
			cur = 0
		}
	}
	return float64(best) * 1000
}

// collectNodes gathers every node named by an event or owning a metrics
// file.
func (r *Run) collectNodes() {
	seen := map[string]bool{}
	add := func(n string) {
		n = strings.TrimSpace(n)
		if n != "" && !seen[n] {
			seen[n] = true
			r.Nodes = append(r.Nodes, n)
		}
	}
	for _, e := range r.Events {
		for _, n := range strings.Split(e.Node, ",") {
			add(n)
		}
	}
	for n := range r.Metrics {
		add(n)
	}
	sort.SliceStable(r.Nodes, func(i, j int) bool { return naturalLess(r.Nodes[i], r.Nodes[j]) })
}

// nodeColor is a node's colour on every chart of the report.
func (r *Run) nodeColor(node string) int {
	if i := slices.Index(r.Nodes, node); i >= 0 {
		return i
	}
	return len(r.Nodes)
}

// interval is a sample's length in seconds: 1, except the load's last,
// partial sample (and a tick the flusher took late).
func interval(s rundir.Sample) float64 {
	if s.Interval > 0 {
		return s.Interval
	}
	return 1
}

// isDrain reports whether samples[i] is the load's last, partial sample:
// shorter than a second, and the last one. It holds what completed between
// the last full second and the end of the drain, mostly the requests in
// flight when the schedule stopped (sent during the seconds before), so
// its count over its length is rate × latency ÷ length, not a rate: 9
// writes in 0.088 s at 40 writes/s read as 102 writes/s. No correction
// recovers the rate from that sample alone, so rate figures (throughput
// charts, per-second samples in compare) leave it out; its requests are
// still counted in every total and its latencies are still charted.
func (r *Run) isDrain(i int) bool {
	s := r.Samples[i]
	return i == len(r.Samples)-1 && s.Interval > 0 && s.Interval < 0.999
}

func (r *Run) buildLanes() {
	idx := map[string]int{}
	// Every node the run saw gets a lane, even one with no state event
	// (seen only as a fault's target or in metrics): blank is "not
	// observed", which is what the run knows of it.
	for _, n := range r.Nodes {
		idx[n] = len(r.Lanes)
		r.Lanes = append(r.Lanes, Lane{Node: n})
	}
	for _, e := range r.Events {
		if e.Kind != rundir.EvNodeState || e.Node == "" {
			continue
		}
		for _, node := range strings.Split(e.Node, ",") {
			i, ok := idx[node]
			if !ok {
				i = len(r.Lanes)
				idx[node] = i
				r.Lanes = append(r.Lanes, Lane{Node: node})
			}
			l := &r.Lanes[i]
			if n := len(l.Segs); n > 0 {
				if l.Segs[n-1].State == e.State {
					continue
				}
				l.Segs[n-1].End = e.T
			}
			l.Segs = append(l.Segs, Seg{State: e.State, Start: e.T})
			// A new leader demotes the old one even if no event says so.
			if e.State == "leader" {
				for j := range r.Lanes {
					lj := &r.Lanes[j]
					if j == i || len(lj.Segs) == 0 || lj.Segs[len(lj.Segs)-1].State != "leader" {
						continue
					}
					lj.Segs[len(lj.Segs)-1].End = e.T
					lj.Segs = append(lj.Segs, Seg{State: "follower", Start: e.T})
				}
			}
		}
	}
	for i := range r.Lanes {
		l := &r.Lanes[i]
		if n := len(l.Segs); n > 0 {
			l.Segs[n-1].End = r.End
		}
		// Zero-length spans (two events in the same instant) only clutter.
		segs := l.Segs[:0]
		for _, s := range l.Segs {
			if s.End.After(s.Start) {
				segs = append(segs, s)
			}
		}
		l.Segs = segs
	}
	sort.SliceStable(r.Lanes, func(i, j int) bool { return naturalLess(r.Lanes[i].Node, r.Lanes[j].Node) })
}

// naturalLess orders vault-2 before vault-10.
func naturalLess(a, b string) bool {
	ta, na := splitNum(a)
	tb, nb := splitNum(b)
	if ta != tb || na < 0 || nb < 0 {
		return a < b
	}
	return na < nb
}

func splitNum(s string) (string, int) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	if i == len(s) {
		return s, -1
	}
	n := 0
	for _, c := range s[i:] {
		n = n*10 + int(c-'0')
		if n > 1e9 {
			return s, -1
		}
	}
	return s[:i], n
}

// deriveSummary fills Summary from samples, histograms and events for a run
// that never wrote summary.json.
func (r *Run) deriveSummary(phases []rundir.PhaseStats, ph []map[string]*hdr.Histogram) {
	s := &r.Summary
	s.Scenario = r.Meta.Scenario
	s.Ops = map[string]rundir.OpStats{}
	dur := r.End.Sub(r.Start).Seconds()
	if len(r.Samples) > 0 {
		dur = 0
		for _, smp := range r.Samples {
			dur += interval(smp)
		}
	}
	s.Duration = dur
	for _, op := range r.Ops {
		st := rundir.OpStats{}
		for _, smp := range r.Samples {
			addCounts(&st, smp.Ops[op])
		}
		if dur > 0 {
			st.Rate = float64(st.Count) / dur
		}
		if h := r.Hist[op]; h != nil {
			fillPercentiles(&st, h, r.PerMs)
		} else {
			maxOfSamples(&st, r.Samples, op)
		}
		s.Ops[op] = st
	}
	for _, smp := range r.Samples {
		s.LateSends += smp.LateSends
	}
	for _, f := range r.Faults {
		s.Faults = append(s.Faults, f.Result)
	}
	for i, p := range phases {
		s.Phases = append(s.Phases, r.phaseStats(p, ph[i]))
	}
	r.Derived = append(r.Derived, "totals from samples.jsonl", "percentiles from histograms.hlog",
		"faults and phases from events.jsonl")
}

func fillPercentiles(st *rundir.OpStats, h *hdr.Histogram, perMs float64) {
	if h.TotalCount() == 0 {
		return
	}
	v := h.ValueAtPercentilesSlice([]float64{50, 90, 99, 99.9})
	st.P50, st.P90, st.P99, st.P999 = float64(v[0])/perMs, float64(v[1])/perMs, float64(v[2])/perMs, float64(v[3])/perMs
	st.Max = float64(h.Max()) / perMs
}

// maxOfSamples is the fallback without histograms: per-second percentiles
// cannot be merged, so only max is exact; the rest is the worst second.
func maxOfSamples(st *rundir.OpStats, samples []rundir.Sample, op string) {
	for _, s := range samples {
		o := s.Ops[op]
		st.P50 = max(st.P50, o.P50)
		st.P90 = max(st.P90, o.P90)
		st.P99 = max(st.P99, o.P99)
		st.P999 = max(st.P999, o.P999)
		st.Max = max(st.Max, o.Max)
	}
}

// phaseWindows cuts the run at phase events (or, without any, at each
// fault's start and heal); the figures come later from the histograms that
// start inside each window.
func (r *Run) phaseWindows() []rundir.PhaseStats {
	type cut struct {
		t    time.Time
		name string
	}
	var cuts []cut
	for _, e := range r.Events {
		if e.Kind == rundir.EvPhase && e.Phase != "" {
			cuts = append(cuts, cut{e.T, e.Phase})
		}
	}
	if len(cuts) == 0 {
		cuts = append(cuts, cut{r.Start, "before"})
		for _, f := range r.Faults {
			cuts = append(cuts, cut{f.Start, "during"})
			if !f.Healed.IsZero() {
				cuts = append(cuts, cut{f.Healed, "after"})
			}
		}
		if len(r.Faults) == 0 {
			cuts[0].name = "run"
		}
	}
	sort.SliceStable(cuts, func(i, j int) bool { return cuts[i].t.Before(cuts[j].t) })
	var ps []rundir.PhaseStats
	for i, c := range cuts {
		end := r.End
		if i+1 < len(cuts) {
			end = cuts[i+1].t
		}
		if !end.After(c.t) {
			continue
		}
		ps = append(ps, rundir.PhaseStats{Phase: c.name, Start: c.t, End: end})
	}
	return ps
}

func (r *Run) phaseStats(p rundir.PhaseStats, merged map[string]*hdr.Histogram) rundir.PhaseStats {
	start, end := p.Start, p.End
	p.Ops = map[string]rundir.OpStats{}
	secs := 0.0
	for _, smp := range r.Samples {
		if smp.T.Before(start) || !smp.T.Before(end) {
			continue
		}
		secs += interval(smp)
		for op, o := range smp.Ops {
			st := p.Ops[op]
			addCounts(&st, o)
			p.Ops[op] = st
		}
	}
	for op, st := range p.Ops {
		// Counts come in whole seconds of samples, so the rate is per
		// sampled second, not per the phase's exact length.
		if secs > 0 {
			st.Rate = float64(st.Count) / secs
		}
		if h := merged[op]; h != nil {
			fillPercentiles(&st, h, r.PerMs)
		}
		p.Ops[op] = st
	}
	return p
}

func (r *Run) ledgerVerdict() error {
	s := r.Summary
	if r.HasSummary {
		// Only summary.json's own verified says the read-back finished:
		// a summary written after a failed or cut-short read-back has
		// lost_writes 0 and means "unknown".
		v := LedgerVerdict{Acked: s.AckedWrites, Lost: s.LostWrites, Unknown: s.UnknownWrites,
			LostKeys: s.LostKeys, Verified: s.Verified, KeysRead: s.KeysRead, KeysToRead: s.KeysToRead,
			VerifyError: s.VerifyError, Duplicates: s.DuplicateVersions}
		if !v.Verified {
			switch {
			case v.KeysToRead > 0:
				v.Why = fmt.Sprintf("NOT VERIFIED: %d of %d keys read back", v.KeysRead, v.KeysToRead)
			default:
				v.Why = "NOT VERIFIED: the read-back of the acknowledged writes did not run or did not finish"
			}
			if v.VerifyError != "" {
				v.Why += ": " + v.VerifyError
			}
		}
		r.Ledger = v
		return nil
	}
	// Without summary.json nothing was read back: count what the ledger
	// says was acknowledged, and say loss is unknown.
	var v LedgerVerdict
	err := rundir.ReadLines(r.Dir, rundir.LedgerFile, func(e rundir.LedgerEntry) error {
		switch e.Outcome {
		case "ok":
			v.Acked++
		case "unknown":
			v.Unknown++
		}
		return nil
	})
	if err != nil {
		return err
	}
	v.Why = "NOT VERIFIED: the run ended before the read-back (no summary.json)"
	r.Ledger = v
	r.Summary.AckedWrites, r.Summary.UnknownWrites = v.Acked, v.Unknown
	return nil
}

// Verdict is the run's pass/fail and the reasons.
type Verdict struct {
	Known  bool // false when the run has no expectations and no summary
	Passed bool
	Failed []rundir.Expectation
	// Reasons are failures no failed expectation already states: an
	// unverified ledger, lost writes, a history that is not linearizable.
	Reasons []string
	// Invalid is summary.json's invalid: the generator fell behind its
	// schedule, so nothing the run measured can be trusted.
	Invalid []string
	Text    string // PASS, FAIL, INVALID, PARTIAL, NO VERDICT
}

// Class is the verdict's CSS class in report.html.
func (v Verdict) Class() string {
	switch v.Text {
	case "PASS":
		return "pass"
	case "PARTIAL":
		return "partial"
	case "INVALID":
		return "invalid"
	case "NO VERDICT":
		return "unknown"
	}
	return "fail"
}

// InvalidText is the INVALID banner: whose fault it is, and why.
func (v Verdict) InvalidText() string {
	if len(v.Invalid) == 0 {
		return ""
	}
	return "the harness, not Vault, fell behind: " + strings.Join(v.Invalid, "; ")
}

// Verdict decides from summary.json's expectations, and never passes what
// it cannot vouch for: a partial run (its expectations were never
// checked), an INVALID run (its generator fell behind), acknowledged writes
// that were not all read back, lost writes, a history found not
// linearizable.
func (r *Run) Verdict() Verdict {
	v := Verdict{}
	covered := func(sub string) bool {
		for _, e := range v.Failed {
			if strings.Contains(e.Name, sub) {
				return true
			}
		}
		return false
	}
	for _, e := range r.Summary.Expectations {
		if !e.Passed {
			v.Failed = append(v.Failed, e)
		}
	}
	switch {
	case r.Summary.Passed != nil:
		v.Known, v.Passed = true, *r.Summary.Passed && len(v.Failed) == 0
	case len(r.Summary.Expectations) > 0:
		v.Known, v.Passed = true, len(v.Failed) == 0
	case r.HasSummary:
		v.Known, v.Passed = true, r.Summary.LostWrites == 0
	}
	// The runner's verdict (summary.json's passed) is the verdict: it is
	// what the exit code said, and the runner already fails a run whose
	// ledger could not be read back. What it did not judge (lost writes or
	// a non-linearizable history where the scenario sets no expectation,
	// as quorum-loss) is still shown, as a reason, without changing it.
	// Only a run without that verdict (cut short, or an old summary) is
	// judged here.
	judged := r.Summary.Passed != nil
	fail := func(covers, reason string) {
		if !judged {
			v.Known, v.Passed = true, false
		}
		if !covered(covers) {
			v.Reasons = append(v.Reasons, reason)
		}
	}
	if l := r.Ledger; l.Lost > 0 {
		fail("lost", fmt.Sprintf("%d of %d acknowledged writes LOST", l.Lost, l.Acked))
	}
	// Whatever an (older) summary's expectations said: acknowledged
	// writes that were not all read back are not "nothing lost".
	if r.Ledger.Unverified() {
		// Never a pass, whoever judged: an older runner passed
		// lost_writes on a read-back that never finished.
		v.Known, v.Passed = true, false
		if !covered("lost") && !covered("ledger_verified") {
			v.Reasons = append(v.Reasons, r.Ledger.Why)
		}
	}
	if l := r.Summary.Linearizable; l != nil && !*l {
		fail("lineariz", "NOT LINEARIZABLE: "+orDash(r.Summary.Linearizability))
	}
	if len(r.Summary.Invalid) > 0 {
		v.Known, v.Passed = true, false
		v.Invalid = r.Summary.Invalid
	}
	switch {
	case len(v.Invalid) > 0:
		v.Text = "INVALID"
	case r.Partial:
		v.Known, v.Passed, v.Text = true, false, "PARTIAL"
	case !v.Known:
		v.Text = "NO VERDICT"
	case v.Passed:
		v.Text = "PASS"
	default:
		v.Text = "FAIL"
	}
	return v
}

// finite guards every figure that reaches a chart or a table.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// addCounts adds one sample's request and error counts to st.
func addCounts(st *rundir.OpStats, o rundir.OpStats) {
	st.Count += o.Count
	st.Errors += o.Errors
	for k, v := range o.ByErr {
		if st.ByErr == nil {
			st.ByErr = map[string]int64{}
		}
		st.ByErr[k] += v
	}
}
