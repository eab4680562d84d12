package reports

import (
	"fmt"
	"html/template"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// Backups in a report: the snapshots the run's agent took (ticks on the
// time axis, their cost on latency), and the restore after a total loss
// (the DR section: which snapshot, RTO by phase, RPO in acknowledged
// writes and seconds).

// SnapshotMark is one snapshot the run's agent took, or tried to.
type SnapshotMark struct {
	T     time.Time // its request started (a failed one: when it failed)
	End   time.Time // its response ended (zero for a failed one)
	Name  string
	Size  int64
	Index uint64
	Error string // the attempt failed: why
}

// Failed reports whether the attempt stored nothing.
func (s SnapshotMark) Failed() bool { return s.Error != "" }

// snapshotMsg is the runner's snapshot event text:
// "NAME: N bytes, raft index I, DURATION".
var snapshotMsg = regexp.MustCompile(`^(.+): (\d+) bytes, raft index (\d+), (\S+)$`)

// snapshotNote prefixes the runner's note for a failed attempt.
const snapshotNote = "snapshot agent: "

// collectSnapshots takes the snapshots from summary.json, or, for a run
// cut short, from the events: a snapshot event per stored one, the
// agent's note per failure.
func (r *Run) collectSnapshots() {
	if len(r.Summary.Snapshots) > 0 {
		for _, s := range r.Summary.Snapshots {
			m := SnapshotMark{T: s.Started, Name: s.Name, Size: s.Size, Index: s.Index, Error: s.Error}
			if s.Error == "" {
				m.End = s.Ended
			}
			r.Snapshots = append(r.Snapshots, m)
		}
	} else {
		r.snapshotsFromEvents()
	}
	sort.SliceStable(r.Snapshots, func(i, j int) bool { return r.Snapshots[i].T.Before(r.Snapshots[j].T) })
}

// snapshotsFromEvents is what a run cut short tells of its snapshots.
func (r *Run) snapshotsFromEvents() {
	for _, e := range r.Events {
		switch {
		case e.Kind == rundir.EvSnapshot:
			m := SnapshotMark{T: e.T, Name: e.Msg}
			if p := snapshotMsg.FindStringSubmatch(e.Msg); p != nil {
				m.Name = p[1]
				m.Size, _ = strconv.ParseInt(p[2], 10, 64)
				m.Index, _ = strconv.ParseUint(p[3], 10, 64)
				if d, err := time.ParseDuration(p[4]); err == nil {
					m.End = e.T.Add(d)
				}
			}
			r.Snapshots = append(r.Snapshots, m)
		case e.Kind == rundir.EvNote && e.Fault == 0 && strings.HasPrefix(e.Msg, snapshotNote):
			r.Snapshots = append(r.Snapshots, SnapshotMark{T: e.T, Error: strings.TrimPrefix(e.Msg, snapshotNote)})
		}
	}
}

// restorePhases are the phases of a rebuild, in order, as the runner
// names them (cluster.RestoreXxx), and how the report calls them.
var restorePhases = []struct{ name, label string }{
	{"provision", "provision (new nodes running)"},
	{"init", "init (a new cluster)"},
	{"restore", "restore call (snapshot-force)"},
	{"unsealed", "unsealed (keys through the transit seal)"},
	{"healthy", "healthy (every voter)"},
}

// restoreNote is the runner's note when a restore phase ends.
var restoreNote = regexp.MustCompile(`^restore: (\S+) done$`)

// collectRestore takes the restore from summary.json or, for a run cut
// short, derives what the events tell: the loss, the phases reached, and
// a failure of the restore's action. The RPO needs the read-back, which
// such a run never made.
func (r *Run) collectRestore() {
	if rs := r.Summary.Restore; rs != nil {
		r.Restore = rs
		return
	}
	var restore *Fault
	for i := range r.Faults {
		if r.Faults[i].Kind == "restore" {
			restore = &r.Faults[i]
		}
	}
	type reached struct {
		name string
		at   time.Time
	}
	var phases []reached
	var errMsg string
	idx := 0
	if restore != nil {
		idx = restore.Index
	}
	for _, e := range r.Events {
		if e.Kind != rundir.EvNote || e.Fault == 0 {
			continue
		}
		if m := restoreNote.FindStringSubmatch(e.Msg); m != nil && (idx == 0 || e.Fault == idx) {
			idx = e.Fault
			phases = append(phases, reached{m[1], e.T})
		}
		if idx != 0 && e.Fault == idx && strings.Contains(e.Msg, " failed: ") {
			errMsg = e.Msg[strings.Index(e.Msg, " failed: ")+len(" failed: "):]
		}
	}
	if restore == nil && len(phases) == 0 {
		return
	}
	// The total loss the restore follows: the last before it, from its
	// injection (a run cut short keeps no start of the action).
	var loss time.Time
	for _, f := range r.Faults {
		if f.Kind == "total_loss" && (restore == nil || f.Index < restore.Index) {
			loss = f.Start
		}
	}
	rs := &rundir.RestoreResult{LossAt: loss, Error: errMsg}
	for _, p := range phases {
		rs.Phases = append(rs.Phases, rundir.RestorePhase{Name: p.name, Ms: durMs(p.at.Sub(loss))})
	}
	r.Restore = rs
	r.RestoreDerived = true
}

// newNodesAfter are the nodes first seen after t (by a state change, in
// natural order): after a total loss, the restored cluster's.
func (r *Run) newNodesAfter(t time.Time) []string {
	first := map[string]time.Time{}
	for _, e := range r.Events {
		if e.Kind != rundir.EvNodeState || e.Node == "" {
			continue
		}
		if _, ok := first[e.Node]; !ok {
			first[e.Node] = e.T
		}
	}
	var out []string
	for _, n := range r.Nodes {
		if ft, ok := first[n]; ok && ft.After(t) {
			out = append(out, n)
		}
	}
	return out
}

// snapshotCostText is the snapshot-cost line: "snapshots: 8 taken (2
// failed), mean 212ms, mean size 1.4 MiB; p99 during 14ms (133 requests)
// vs outside 9.1ms (14 702 requests)". Empty when the run took none;
// warn when one failed.
func snapshotCostText(r *Run) (text string, warn bool) {
	if len(r.Snapshots) == 0 {
		return "", false
	}
	ok, failed := 0, 0
	for _, s := range r.Snapshots {
		if s.Failed() {
			failed++
		} else {
			ok++
		}
	}
	text = fmt.Sprintf("snapshots: %d taken", ok)
	if failed > 0 {
		text += fmt.Sprintf(" (%d failed)", failed)
	}
	c := r.Summary.SnapshotP99
	if c == nil {
		return text + "; their cost on latency was not measured", failed > 0
	}
	text += fmt.Sprintf(", mean %s, mean size %s", fmtMs(c.MeanDurationMs), HumanBytes(c.MeanSize))
	during := "no request sent during one"
	if c.DuringCount > 0 {
		during = fmt.Sprintf("%s (%s requests)", fmtMs(c.DuringP99Ms), fmtNum(c.DuringCount))
	}
	text += fmt.Sprintf("; p99 during %s vs outside %s (%s requests)", during, fmtMs(c.OutsideP99Ms), fmtNum(c.OutsideCount))
	return text, failed > 0
}

// drView is the restore, ready to print in every output.
type drView struct {
	Derived bool // from the events of a run cut short: no RPO

	LossAt string // "+1:10"
	// The restored snapshot.
	Snap       string // its name
	SnapAt     string // "+1:00"
	SnapBefore string // "10.2s before the loss"
	SnapTook   string
	SnapSize   string
	SnapIndex  string // "1 234 (term 2)"
	SnapNode   string
	NoSnap     bool // the restore never opened a snapshot

	Phases []drPhase
	Error  string

	RTOWrite, RTORead string
	RTOMissing        bool // never served again

	// RPO: acknowledged writes by when they were acknowledged.
	RPOKnown                 bool
	Unverified               bool // the read-back did not finish: no RPO
	Before, BeforeLost       int64
	BeforeVerified           bool
	InFlight, InFlightKept   int64
	After, AfterKept         int64
	RPOWrites                int64
	RPOSeconds               string
	FailedSnaps              []string // "+1:15 snapshot: find the active node: no active node"
	FailedSnapsMore          int
	NewNodes                 string // the restored cluster's nodes
	SnapshotsTaken, SnapsBad int
}

// drPhase is one line of the RTO table, with its bar: from the end of the
// phase before (or the loss) to its own end, on a scale of the slowest.
type drPhase struct {
	ID      string // phase-provision, rto-write, …
	Label   string
	At      string // after the loss; "not reached"
	Took    string // its own length
	Missing bool
	Serve   bool // first write or read: a bar from the loss
	Bar     template.CSS
}

// drOf is the restore of the run, nil when it had none.
func drOf(r *Run) *drView {
	rs := r.Restore
	if rs == nil {
		return nil
	}
	v := &drView{Derived: r.RestoreDerived, Error: rs.Error, LossAt: offset(rs.LossAt, r.Start)}
	s := rs.Snapshot
	if s.Name == "" && s.Started.IsZero() {
		v.NoSnap = true
	} else {
		v.Snap = orDash(s.Name)
		v.SnapAt = offset(s.Started, r.Start)
		if !rs.LossAt.IsZero() {
			v.SnapBefore = fmtMs(durMs(rs.LossAt.Sub(s.Started))) + " before the loss"
		}
		if !s.Ended.IsZero() {
			v.SnapTook = fmtMs(durMs(s.Ended.Sub(s.Started)))
		}
		v.SnapSize = HumanBytes(s.Size)
		v.SnapIndex = fmtNum(int64(s.Index))
		if s.Term > 0 {
			v.SnapIndex += fmt.Sprintf(" (term %d)", s.Term)
		}
		v.SnapNode = orDash(s.Node)
	}

	reached := map[string]float64{}
	for _, p := range rs.Phases {
		reached[p.Name] = p.Ms
	}
	scale := 0.0
	for _, p := range rs.Phases {
		scale = max(scale, p.Ms)
	}
	for _, p := range []*float64{rs.FirstWriteMs, rs.FirstReadMs} {
		if p != nil {
			scale = max(scale, *p)
		}
	}
	prev := 0.0
	for _, ph := range restorePhases {
		row := drPhase{ID: "phase-" + ph.name, Label: ph.label}
		ms, ok := reached[ph.name]
		if !ok {
			row.At, row.Took, row.Missing = "not reached", "—", true
			v.Phases = append(v.Phases, row)
			continue
		}
		row.At, row.Took = fmtMs(ms), fmtMs(max(ms-prev, 0))
		row.Bar = bar(prev, ms, scale)
		prev = ms
		v.Phases = append(v.Phases, row)
	}
	// Phases the runner knows and this report does not: shown, in order.
	for _, p := range rs.Phases {
		if !slices.ContainsFunc(restorePhases, func(x struct{ name, label string }) bool { return x.name == p.Name }) {
			v.Phases = append(v.Phases, drPhase{ID: "phase-" + p.Name, Label: p.Name, At: fmtMs(p.Ms), Took: "—", Bar: bar(0, p.Ms, scale)})
		}
	}
	serve := func(id, label string, p *float64) string {
		row := drPhase{ID: id, Label: label, Serve: true}
		if p == nil {
			row.At, row.Took, row.Missing = "never (within the run)", "—", true
			if v.Derived {
				row.At = "not known (the run was cut short)"
			}
			v.RTOMissing = true
		} else {
			row.At, row.Took = fmtMs(*p), "—"
			row.Bar = bar(0, *p, scale)
		}
		v.Phases = append(v.Phases, row)
		return row.At
	}
	v.RTOWrite = serve("rto-write", "first write (RTO)", rs.FirstWriteMs)
	v.RTORead = serve("rto-read", "first read (RTO)", rs.FirstReadMs)

	v.Unverified = !r.Ledger.Verified
	if !v.Derived && rs.Error == "" && !v.Unverified {
		v.RPOKnown = true
		v.Before, v.InFlight, v.InFlightKept = rs.BeforeSnapshot, rs.InFlight, rs.InFlightPresent
		v.After, v.AfterKept, v.RPOWrites = rs.AfterSnapshot, rs.AfterPresent, rs.RPOWrites
		v.BeforeVerified = r.Ledger.Verified
		v.BeforeLost = r.Ledger.Lost
		v.RPOSeconds = fmtMs(rs.RPOSeconds * 1000)
	}
	for _, sm := range r.Snapshots {
		if sm.Failed() {
			v.SnapsBad++
			if len(v.FailedSnaps) < 10 {
				v.FailedSnaps = append(v.FailedSnaps, offset(sm.T, r.Start)+" "+sm.Error)
			} else {
				v.FailedSnapsMore++
			}
		} else {
			v.SnapshotsTaken++
		}
	}
	if !rs.LossAt.IsZero() {
		v.NewNodes = strings.Join(r.newNodesAfter(rs.LossAt), ", ")
	}
	return v
}

// bar places a span from..to (ms after the loss) on a scale of 0..scale.
func bar(from, to, scale float64) template.CSS {
	if scale <= 0 {
		return ""
	}
	l := min(max(100*finite(from/scale), 0), 100)
	// A phase of no time still shows.
	w := max(100*finite((to-from)/scale), 0.4)
	return template.CSS(fmt.Sprintf("margin-left:%.2f%%;width:%.2f%%", l, min(w, 100-l))) //nolint:gosec // numbers only
}

// BeforePresent is how many of the writes acknowledged before the
// snapshot are readable: all of them unless the ledger lost some.
func (v *drView) BeforePresent() string {
	if !v.BeforeVerified {
		return "not verified"
	}
	return fmtNum(v.Before - min(v.BeforeLost, v.Before))
}

// beforePresentPlain is BeforePresent without grouping, for text lines.
func (v *drView) beforePresentPlain() string {
	if !v.BeforeVerified {
		return "not verified"
	}
	return fmt.Sprint(v.Before - min(v.BeforeLost, v.Before))
}

// SnapText is the restored snapshot on one line.
func (v *drView) SnapText() string {
	if v.NoSnap && v.Derived {
		return "snapshot not known (the run was cut short)"
	}
	if v.NoSnap {
		return "no snapshot was opened"
	}
	t := fmt.Sprintf("%s, request started at %s", v.Snap, v.SnapAt)
	if v.SnapBefore != "" {
		t += " (" + v.SnapBefore + ")"
	}
	if v.SnapTook != "" {
		t += ", took " + v.SnapTook
	}
	return t + fmt.Sprintf(", %s, raft index %s, from %s", v.SnapSize, v.SnapIndex, v.SnapNode)
}

// RPOText is the RPO on one line.
func (v *drView) RPOText() string {
	if !v.RPOKnown {
		switch {
		case v.Error != "":
			return "RPO: not counted (the restore failed)"
		case v.Derived:
			return "RPO: not counted (the run ended before the read-back)"
		}
		return "RPO: not counted (the read-back of the acknowledged writes did not finish)"
	}
	return fmt.Sprintf("RPO: %d writes (%s); acknowledged before the snapshot %d (present %s), during it %d (present %d), after it %d (present %d, gone %d)",
		v.RPOWrites, v.RPOSeconds, v.Before, v.beforePresentPlain(), v.InFlight, v.InFlightKept, v.After, v.AfterKept, v.After-v.AfterKept)
}

// RTOText is the RTO by phase on one line.
func (v *drView) RTOText() string {
	var parts []string
	for _, p := range v.Phases {
		name, _, _ := strings.Cut(p.Label, " (")
		parts = append(parts, name+" "+p.At)
	}
	return "RTO by phase (after the loss): " + strings.Join(parts, ", ")
}

// Text is the DR section as lines (JUnit system-out, and the base of the
// Markdown one).
func (v *drView) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "restore after the total loss at %s: %s\n", v.LossAt, v.SnapText())
	if v.Error != "" {
		fmt.Fprintf(&b, "RESTORE FAILED: %s\n", v.Error)
	}
	fmt.Fprintf(&b, "%s\n%s\n", v.RTOText(), v.RPOText())
	if v.NewNodes != "" {
		fmt.Fprintf(&b, "restored cluster: %s\n", v.NewNodes)
	}
	return b.String()
}
