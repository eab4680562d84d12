package reports

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// The run's checks beyond latency, worded once for every output (HTML,
// Markdown, JUnit): the harness's own traffic, the linearizability check,
// the generator's validity, the final state and each fault's recovery.

// harnessText is "harness requests: N (x req/s; quiet y req/s = z % of the
// load)"; warn is set when the observer is past its budget (DESIGN: ≤ 5 %
// of the load outside fault windows, or ≤ 10 req/s).
func harnessText(r *Run) (text string, warn bool) {
	s := r.Summary
	if !r.HasSummary {
		return "harness requests: not known (no summary.json)", false
	}
	if s.HarnessRequests == 0 && s.HarnessRequestsPerS == 0 {
		return "harness requests: not counted in this run", false
	}
	text = fmt.Sprintf("harness requests: %d (%.1f req/s; quiet %.1f req/s = %.1f %% of the load)",
		s.HarnessRequests, finite(s.HarnessRequestsPerS), finite(s.HarnessQuietPerS), finite(s.HarnessSharePct))
	return text, s.HarnessSharePct > 5 && s.HarnessQuietPerS > 10
}

// harnessByKind is the breakdown, largest first: "health 2400, autopilot 120".
func harnessByKind(r *Run) string {
	m := r.Summary.HarnessByKind
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return m[ks[i]] > m[ks[j]] || m[ks[i]] == m[ks[j]] && ks[i] < ks[j] })
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// harnessFull is harnessText with the breakdown.
func harnessFull(r *Run) string {
	t, _ := harnessText(r)
	if by := harnessByKind(r); by != "" {
		t += "; by kind: " + by
	}
	return t
}

// ledgerText is the ledger's verdict on one line; bad when writes were
// lost, not all read back, or acknowledged twice with different values.
func ledgerText(r *Run) (text string, bad bool) {
	l := r.Ledger
	switch {
	case l.Unverified():
		text, bad = fmt.Sprintf("ledger: %d acknowledged writes, %s", l.Acked, l.Why), true
	case l.Lost > 0:
		text, bad = fmt.Sprintf("ledger: %d acknowledged writes, %d LOST", l.Acked, l.Lost), true
	case !l.Verified:
		text = "ledger: no acknowledged writes to read back"
	default:
		text = fmt.Sprintf("ledger: %d acknowledged writes, all read back, 0 lost", l.Acked)
	}
	if l.Duplicates > 0 {
		text += fmt.Sprintf("; %d duplicate versions (one key and version acknowledged twice with different values)", l.Duplicates)
		bad = true
	}
	return text, bad
}

// linearizableText is "linearizable: yes / NO (detail) / not checked (why)";
// bad when the check found a violation. link is the run directory's
// porcupine visualisation, when there is one.
func linearizableText(r *Run) (text string, bad bool, link string) {
	s := r.Summary
	if _, err := os.Stat(filepath.Join(r.Dir, rundir.LinearizabilityFile)); err == nil {
		link = rundir.LinearizabilityFile
	}
	detail := func(prefix string) string {
		if s.Linearizability == "" {
			return prefix
		}
		if prefix == "" {
			return s.Linearizability
		}
		return prefix + "; " + s.Linearizability
	}
	ops := ""
	if s.HistoryKeys > 0 || s.HistoryOps > 0 {
		ops = fmt.Sprintf("%d keys, %d operations", s.HistoryKeys, s.HistoryOps)
	}
	switch {
	case !r.HasSummary:
		return "linearizable: not checked (no summary.json: the run ended before its checks)", false, link
	case s.Linearizable == nil:
		// The runner's own reason often starts "not checked: " already.
		why := strings.TrimPrefix(detail(""), "not checked: ")
		if why == "" {
			why = "the run recorded no check"
		}
		return "linearizable: not checked (" + why + ")", false, link
	case *s.Linearizable:
		if d := detail(ops); d != "" {
			return "linearizable: yes (" + d + ")", false, link
		}
		return "linearizable: yes", false, link
	}
	t := "linearizable: NO"
	if d := detail(ops); d != "" {
		t += " (" + d + ")"
	}
	return t, true, link
}

// generatorText says how far the generator kept its schedule.
func generatorText(r *Run) string {
	s := r.Summary
	if !r.HasSummary {
		return fmt.Sprintf("generator: %d late sends (no summary.json: not judged)", s.LateSends)
	}
	t := fmt.Sprintf("generator: %.2f %% of requests sent late", finite(s.GeneratorLatePct))
	if s.LateThresholdMs > 0 {
		t += fmt.Sprintf(" (> %s after their intended time)", fmtMs(s.LateThresholdMs))
	}
	t += fmt.Sprintf(", max send lag %s", fmtMs(s.MaxSendLagMs))
	if len(s.Invalid) > 0 {
		t += ": INVALID, " + strings.Join(s.Invalid, "; ")
	}
	return t
}

// finalView is the explicit end-of-run check, ready to print.
type finalView struct {
	Missing      string // why there is no final state
	At           string // offset from the start of the run
	Error        string // the check found no leader: every end-state expectation failed with this
	Leader       string
	Voters       string // "4/5: node1, node2, node4, node5"
	VotersShort  bool
	Peers        string
	Autopilot    string
	AutopilotBad bool
	Nodes        []rundir.FinalNode
}

func finalOf(r *Run) finalView {
	f := r.Summary.Final
	if f == nil {
		if !r.HasSummary {
			return finalView{Missing: "not taken (no summary.json: the run ended before its final check)"}
		}
		return finalView{Missing: "not recorded in this run"}
	}
	v := finalView{At: offset(f.T, r.Start), Error: f.Error, Leader: orDash(f.Leader), Nodes: f.Nodes}
	if f.Error != "" {
		return v
	}
	n := fmt.Sprint(len(f.Voters))
	if f.IntendedVoters > 0 {
		n += fmt.Sprintf("/%d", f.IntendedVoters)
		v.VotersShort = len(f.Voters) < f.IntendedVoters
	}
	v.Voters = n
	if len(f.Voters) > 0 {
		v.Voters += ": " + strings.Join(sortedNodes(f.Voters), ", ")
	}
	v.Peers = orDash(strings.Join(sortedNodes(f.Peers), ", "))
	v.Autopilot = "healthy"
	if !f.AutopilotHealthy {
		v.Autopilot, v.AutopilotBad = "NOT healthy", true
	}
	return v
}

// Text is the final state on one line.
func (v finalView) Text() string {
	switch {
	case v.Missing != "":
		return "final state: " + v.Missing
	case v.Error != "":
		return fmt.Sprintf("final state at %s: NO STATE: %s", v.At, v.Error)
	}
	var ns []string
	for _, n := range v.Nodes {
		s := n.Name + " " + n.State
		if n.Version != "" {
			s += " " + n.Version
		}
		if !n.Voter {
			s += " (non-voter)"
		}
		ns = append(ns, s)
	}
	t := fmt.Sprintf("final state at %s: leader %s; voters %s; peers %s; autopilot %s", v.At, v.Leader, v.Voters, v.Peers, v.Autopilot)
	if len(ns) > 0 {
		t += "; nodes: " + strings.Join(ns, ", ")
	}
	return t
}

func sortedNodes(ns []string) []string {
	out := append([]string(nil), ns...)
	sort.SliceStable(out, func(i, j int) bool { return naturalLess(out[i], out[j]) })
	return out
}

// offset is t as "+m:ss" from the start of the run.
func offset(t, start time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return "+" + clock(secs(t, start))
}

// recoveryCells is one fault's recovery, as every table shows it.
type recoveryCells struct {
	Leader     string
	WriteErr   string // longest run of failed writes
	WriteStall string // longest run of writes that failed or took longer than unavailable_after
	ReadErr    string
	ReadStall  string
	Healed     string // the time, "degraded (4/5 voters)" or "never healed"
	Unhealed   bool
	NoLeader   bool // the fault hit the leader and no other node led after it
	// Nodes the fault hit; for a restore, the new cluster it built.
	Nodes string
	// RTO: for the restore the summary measured, the first successful
	// write and read after the total loss; "—" for every other fault.
	RTO   string
	NoRTO bool // never served again
}

func recoveryOf(r *Run, f Fault) recoveryCells {
	fr := f.Result
	c := recoveryCells{Leader: fmtMsPtr(fr.LeaderElectedMs),
		WriteErr: fmtMs(fr.WriteErrorWindowMs), WriteStall: fmtMs(fr.WriteUnavailableMs),
		ReadErr: fmtMs(fr.ReadErrorWindowMs), ReadStall: fmtMs(fr.ReadUnavailableMs),
		Healed: fmtMsPtr(fr.HealedMs)}
	if fr.LeaderElectedMs == nil {
		c.Leader = "— (leader not hit)"
		if f.LeaderHit {
			c.Leader, c.NoLeader = "never", true
		}
	}
	c.Nodes, c.RTO = strings.Join(f.Nodes, ", "), "—"
	if rs := r.Restore; f.Kind == "restore" && rs != nil && f.Index == lastRestore(r) {
		if fr.LeaderElectedMs == nil {
			c.Leader, c.NoLeader = "—", false // it hits no node: there was no leader to lose
		}
		never := "never"
		if r.RestoreDerived {
			never = "not known"
		}
		w, rd := fmtMsPtr(rs.FirstWriteMs), fmtMsPtr(rs.FirstReadMs)
		if rs.FirstWriteMs == nil {
			w = never
		}
		if rs.FirstReadMs == nil {
			rd = never
		}
		c.RTO, c.NoRTO = "write "+w+" / read "+rd, rs.FirstWriteMs == nil || rs.FirstReadMs == nil
		if nodes := r.newNodesAfter(rs.LossAt); c.Nodes == "" && len(nodes) > 0 {
			c.Nodes = "new: " + strings.Join(nodes, ", ")
		}
	}
	switch {
	case fr.Degraded != "":
		c.Healed, c.Unhealed = fr.Degraded, true
	case fr.HealedMs == nil && r.Partial:
		c.Healed, c.Unhealed = "not healed when the run was cut short", true
	case fr.HealedMs == nil:
		c.Healed, c.Unhealed = "never healed", true
	}
	return c
}

// Text is the recovery of one fault as lines (JUnit system-out).
func (c recoveryCells) Text() string {
	t := fmt.Sprintf("leader elected after: %s\nwrites: error window %s, stall window %s\nreads: error window %s, stall window %s\nhealed: %s\n",
		c.Leader, c.WriteErr, c.WriteStall, c.ReadErr, c.ReadStall, c.Healed)
	if c.RTO != "—" && c.RTO != "" {
		t += "RTO from the total loss: " + c.RTO + "\n"
	}
	return t
}

// lastRestore is the index of the run's last restore fault: the one
// summary.json's restore measured (0: none).
func lastRestore(r *Run) int {
	idx := 0
	for _, f := range r.Faults {
		if f.Kind == "restore" {
			idx = max(idx, f.Index)
		}
	}
	return idx
}
