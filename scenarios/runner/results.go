package runner

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/vaultstorm/vaultstorm/checkers"
	"github.com/vaultstorm/vaultstorm/cluster/watch"
	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/load"
	"github.com/vaultstorm/vaultstorm/scenarios"
)

// phaseHists keeps one latency histogram per phase and operation, fed from
// every request, so per-phase percentiles are exact rather than averaged
// from per-second ones. A request belongs to the phase its intended time
// falls in, not the one it completed in: a request sent just before a
// fault and answered during it measures the time before the fault.
type phaseHists struct {
	mu     sync.Mutex
	starts [4]time.Time
	ops    [4]map[string]*opHist
}

type opHist struct {
	h      *hdr.Histogram
	errs   int64
	byErr  map[string]int64
	counts int64
}

func newPhaseHists() *phaseHists {
	p := &phaseHists{}
	for i := range p.ops {
		p.ops[i] = map[string]*opHist{}
	}
	return p
}

// mark starts phase p at t, unless it has started already; it reports
// whether it did.
func (p *phaseHists) mark(phase int, t time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.starts[phase].IsZero() {
		return false
	}
	p.starts[phase] = t
	return true
}

// phaseAt is the phase t falls in: the latest one started at or before t.
// Called with p.mu held.
func (p *phaseHists) phaseAt(t time.Time) int {
	ph := 0
	for i, s := range p.starts {
		if !s.IsZero() && !s.After(t) {
			ph = i
		}
	}
	return ph
}

func (p *phaseHists) record(intended time.Time, op string, lat time.Duration, class load.Class) {
	p.mu.Lock()
	defer p.mu.Unlock()
	phase := p.phaseAt(intended)
	h := p.ops[phase][op]
	if h == nil {
		h = &opHist{h: hdr.New(1, 60_000_000, 3), byErr: map[string]int64{}}
		p.ops[phase][op] = h
	}
	_ = h.h.RecordValue(max(lat.Microseconds(), 1))
	h.counts++
	if class.IsError() {
		h.errs++
		h.byErr[class.String()]++
	}
}

// stats gives each started phase's figures; a phase ends where the next
// started one begins, the last at end.
func (p *phaseHists) stats(end time.Time) []rundir.PhaseStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []rundir.PhaseStats
	for i, name := range phaseNames {
		if p.starts[i].IsZero() {
			continue
		}
		e := end
		for j := i + 1; j < len(p.starts); j++ {
			if !p.starts[j].IsZero() {
				e = p.starts[j]
				break
			}
		}
		ps := rundir.PhaseStats{Phase: name, Start: p.starts[i], End: e, Ops: map[string]rundir.OpStats{}}
		secs := e.Sub(p.starts[i]).Seconds()
		for op, h := range p.ops[i] {
			ps.Ops[op] = opStats(h, secs)
		}
		out = append(out, ps)
	}
	return out
}

func opStats(h *opHist, secs float64) rundir.OpStats {
	q := func(p float64) float64 { return float64(h.h.ValueAtQuantile(p)) / 1000 }
	s := rundir.OpStats{
		Count: h.counts, Errors: h.errs, P50: q(50), P90: q(90), P99: q(99), P999: q(99.9),
		Max: float64(h.h.Max()) / 1000,
	}
	if len(h.byErr) > 0 {
		s.ByErr = h.byErr
	}
	if secs > 0 {
		s.Rate = float64(h.counts) / secs
	}
	return s
}

// p99Of is the p99 over every op of one phase, in ms (-1 when no request).
func (p *phaseHists) p99Of(phase int) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	all := hdr.New(1, 60_000_000, 3)
	for _, h := range p.ops[phase] {
		all.Merge(h.h)
	}
	if all.TotalCount() == 0 {
		return -1
	}
	return float64(all.ValueAtQuantile(99)) / 1000
}

// unavailableAfter is the scenario's threshold, or the default.
func (r *run) unavailableAfter() time.Duration {
	if d := r.sc.Expect.UnavailableAfter; d != nil {
		return *d
	}
	return scenarios.DefaultUnavailableAfter
}

// finish computes each fault's recovery, the phases, the observer's cost
// and the verdicts. Every goroutine that feeds it has ended.
func (r *run) finish(sum *rundir.Summary, t0, loadEnd time.Time) {
	leaders := r.w.Leaders()
	after := r.unavailableAfter()
	r.outMu.Lock()
	wStall, rStall := checkers.Windows(r.writes, after, false), checkers.Windows(r.reads, after, false)
	wErr, rErr := checkers.Windows(r.writes, after, true), checkers.Windows(r.reads, after, true)
	r.outMu.Unlock()
	sum.UnavailableAfterMs = ms(after)
	final := sum.Final
	for _, fr := range r.faults {
		if fr.injected.IsZero() {
			continue
		}
		res := rundir.FaultResult{Kind: string(fr.spec.Kind), Nodes: fr.nodes, At: fr.injected.UTC()}
		if !fr.lifted.IsZero() {
			res.End = fr.lifted.UTC()
		}
		res.HealedMs = msPtr(fr.injected, fr.healed)
		if fr.healed.IsZero() {
			res.Degraded = degraded(final)
		}
		if fr.leaderHit {
			// A leader other than the nodes hit; for a rolling restart,
			// which hits every node, one other than the leader it began with.
			from, excluded := fr.injected, fr.nodes
			if fr.spec.Kind == scenarios.KindRollingRestart || fr.spec.Kind == scenarios.KindUpgrade {
				from, excluded = fr.started, fr.leaderAt
			}
			res.LeaderElectedMs = msPtr(from, watch.LeaderElected(leaders, from, excluded))
		}
		// The fault's own window: requests fail from the moment its action
		// begins (a graceful stop takes a while) until it is whole again,
		// or the end of the load when it never was.
		from, to := fr.started, fr.healed
		if to.IsZero() {
			to = loadEnd
		}
		res.WriteUnavailableMs = ms(checkers.Longest(wStall, from, to))
		res.ReadUnavailableMs = ms(checkers.Longest(rStall, from, to))
		res.WriteErrorWindowMs = ms(checkers.Longest(wErr, from, to))
		res.ReadErrorWindowMs = ms(checkers.Longest(rErr, from, to))
		if ok := checkers.FirstAvailableAfter(wStall, from); !ok.IsZero() && ok.Before(to) {
			r.event(rundir.Event{T: ok, Kind: rundir.EvWriteOK, Fault: fr.spec.Index})
		}
		if !fr.healed.IsZero() {
			r.event(rundir.Event{T: fr.healed, Kind: rundir.EvHealed, Fault: fr.spec.Index})
		}
		sum.Faults = append(sum.Faults, res)
	}
	r.upgradeResults(sum, wStall, rStall, wErr, rErr)
	sum.Phases = r.hists.stats(loadEnd)
	sum.Scenario = r.sc.Name
	r.observerCost(sum)

	// Without faults the whole load is the window unavailability is
	// judged over (a baseline must not fail at all).
	noFault := measured{}
	if len(r.sc.Faults) == 0 {
		noFault.write = ms(checkers.Longest(wStall, t0, loadEnd))
		noFault.read = ms(checkers.Longest(rStall, t0, loadEnd))
		noFault.ok = true
	}
	var pc postChecks
	if r.upgrades != nil {
		r.upgrades.mu.Lock()
		pc = r.upgrades.checks
		r.upgrades.mu.Unlock()
	}
	sum.Expectations = judge(r.sc.Expect, sum, r.hists.p99Of(1), noFault, slices.Clone(r.lost), pc)
	passed := true
	for _, e := range sum.Expectations {
		passed = passed && e.Passed
		if !e.Passed && strings.HasPrefix(e.Name, "generator_") {
			sum.Invalid = append(sum.Invalid, fmt.Sprintf("%s: want %s, got %s", e.Name, e.Want, e.Got))
		}
	}
	for _, fr := range r.faults {
		if fr.err != nil {
			passed = false
			sum.Expectations = append(sum.Expectations, rundir.Expectation{
				Name: fmt.Sprintf("fault %d (%s) ran", fr.spec.Index, fr.spec.Kind), Want: "no error", Got: fr.err.Error(),
			})
		}
	}
	sum.Passed = &passed
}

// observerCost puts the watcher's request counts in the summary.
func (r *run) observerCost(sum *rundir.Summary) {
	req := r.w.Requests()
	sum.HarnessRequests = req.Total
	sum.HarnessByKind = req.ByKind
	if s := req.Duration.Seconds(); s > 0 {
		sum.HarnessRequestsPerS = round3(float64(req.Total) / s)
	}
	if s := req.QuietFor.Seconds(); s > 0 {
		sum.HarnessQuietPerS = round3(float64(req.Quiet) / s)
	}
	if sum.AchievedRate > 0 {
		sum.HarnessSharePct = round3(100 * sum.HarnessQuietPerS / sum.AchievedRate)
	}
}

func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

// degraded describes a cluster that never became whole again, from the
// final check.
func degraded(f *rundir.FinalState) string {
	switch {
	case f == nil:
		return "degraded (end state not checked)"
	case f.Error != "":
		return "degraded (" + f.Error + ")"
	}
	return fmt.Sprintf("degraded (%d/%d voters)", len(f.Voters), f.IntendedVoters)
}

// measured is the unavailability of a run without faults.
type measured struct {
	write, read float64
	ok          bool
}

const notMeasured = "not measured"

// judge checks every expectation the scenario sets (and the generator's
// validity, always) against what was measured. Pure: everything it needs
// is passed in. A figure that could not be measured fails its expectation
// and says so; it is never taken as zero.
func judge(x scenarios.Expect, sum *rundir.Summary, p99During float64, noFault measured, lostIDs []string, pc postChecks) []rundir.Expectation {
	var out []rundir.Expectation
	add := func(name, want, got string, ok bool) {
		out = append(out, rundir.Expectation{Name: name, Want: want, Got: got, Passed: ok})
	}
	if x.LostWrites != nil {
		want := fmt.Sprintf("<= %d", *x.LostWrites)
		switch {
		case !sum.Verified:
			add("lost_writes", want, unverified(sum), false)
		default:
			add("lost_writes", want, fmt.Sprint(sum.LostWrites), sum.LostWrites <= int64(*x.LostWrites))
		}
	}
	if x.LostWrites == nil && !sum.Verified && sum.AckedWrites > 0 {
		// No threshold on lost writes (quorum-loss reports whatever it
		// lost), but a count that could not be made is not a pass either.
		add("ledger_verified", "every acknowledged write read back", unverified(sum), false)
	}
	unavail := func(name string, limit *time.Duration, of func(rundir.FaultResult) float64, none float64) {
		if limit == nil {
			return
		}
		want := "<= " + limit.String()
		if len(sum.Faults) == 0 {
			if !noFault.ok {
				add(name, want, notMeasured+" (no fault was injected)", false)
				return
			}
			add(name, want, fmtMs(none), none <= ms(*limit))
			return
		}
		m := 0.0
		for _, f := range sum.Faults {
			m = max(m, of(f))
		}
		add(name, want, fmtMs(m), m <= ms(*limit))
	}
	unavail("max_unavailability", x.MaxUnavailability, func(f rundir.FaultResult) float64 { return f.WriteUnavailableMs }, noFault.write)
	unavail("max_read_unavailability", x.MaxReadUnavailability, func(f rundir.FaultResult) float64 { return f.ReadUnavailableMs }, noFault.read)
	if x.HealedWithin != nil {
		want := "<= " + x.HealedWithin.String()
		if len(sum.Faults) == 0 {
			add("healed_within", want, notMeasured+" (no fault was injected)", false)
		}
		for i, f := range sum.Faults {
			name := fmt.Sprintf("healed_within (fault %d %s)", i+1, f.Kind)
			if f.HealedMs == nil {
				got := f.Degraded
				if got == "" {
					got = "never healed"
				}
				add(name, want, got, false)
				continue
			}
			add(name, want, fmtMs(*f.HealedMs), *f.HealedMs <= ms(*x.HealedWithin))
		}
	}
	if x.LeaderWithin != nil || x.NewLeader != nil {
		for i, f := range sum.Faults {
			hit := f.LeaderElectedMs != nil
			if x.NewLeader != nil {
				// A fault that did not hit the leader leaves LeaderElectedMs nil:
				// "new leader" then means "leadership moved", which it did not.
				got, ok := fmt.Sprint(hit), hit == *x.NewLeader
				if late := electedAfterLift(f); late != "" && *x.NewLeader {
					got, ok = late, false
				}
				add(fmt.Sprintf("new_leader (fault %d %s)", i+1, f.Kind), fmt.Sprint(*x.NewLeader), got, ok)
			}
			if x.LeaderWithin != nil && hit {
				add(fmt.Sprintf("leader_within (fault %d %s)", i+1, f.Kind), "<= "+x.LeaderWithin.String(), fmtMs(*f.LeaderElectedMs), *f.LeaderElectedMs <= ms(*x.LeaderWithin))
			}
		}
	}
	if x.P99DuringFault != nil {
		if p99During < 0 {
			add("p99_during_fault", "<= "+x.P99DuringFault.String(), notMeasured+" (no request during a fault)", false)
		} else {
			add("p99_during_fault", "<= "+x.P99DuringFault.String(), fmtMs(p99During), p99During <= ms(*x.P99DuringFault))
		}
	}
	var n, e int64
	for _, s := range sum.Ops {
		n += s.Count
		e += s.Errors
	}
	if x.P99 != nil {
		worst := 0.0
		for _, s := range sum.Ops {
			worst = max(worst, s.P99)
		}
		if n == 0 {
			add("p99", "<= "+x.P99.String(), notMeasured+" (no request)", false)
		} else {
			add("p99", "<= "+x.P99.String(), fmtMs(worst), worst <= ms(*x.P99))
		}
	}
	if x.MaxErrorRate != nil {
		want := fmt.Sprintf("<= %g%%", *x.MaxErrorRate)
		if n == 0 {
			add("max_error_rate", want, notMeasured+" (no request)", false)
		} else {
			rate := 100 * float64(e) / float64(n)
			add("max_error_rate", want, fmt.Sprintf("%.3f%%", rate), rate <= *x.MaxErrorRate)
		}
	}
	// The end state comes from the one final check; no final check, no
	// claim about the end state.
	f := sum.Final
	endUnknown := func() string {
		if f == nil {
			return notMeasured + " (no final check)"
		}
		return notMeasured + ": " + f.Error
	}
	if x.MinVotersAfter != nil {
		want := fmt.Sprintf(">= %d", *x.MinVotersAfter)
		if f == nil || f.Error != "" {
			add("min_voters_after", want, endUnknown(), false)
		} else {
			add("min_voters_after", want, fmt.Sprint(len(f.Voters)), len(f.Voters) >= *x.MinVotersAfter)
		}
	}
	if x.DeadPeersRemoved != nil && *x.DeadPeersRemoved {
		if f == nil || f.Error != "" {
			add("dead_peers_removed", "true", endUnknown(), false)
		} else {
			var left []string
			for _, id := range lostIDs {
				if slices.Contains(f.Peers, id) {
					left = append(left, id)
				}
			}
			got := "all removed"
			if len(left) > 0 {
				got = "still peers: " + joinNames(left)
			}
			add("dead_peers_removed", "true", got, len(left) == 0)
		}
	}
	if x.Linearizable != nil {
		want := fmt.Sprint(*x.Linearizable)
		switch {
		case sum.Linearizable == nil:
			got := sum.Linearizability
			if got == "" {
				got = "not checked"
			}
			add("linearizable", want, got, false)
		default:
			got := fmt.Sprint(*sum.Linearizable)
			if sum.Linearizability != "" {
				got += " (" + sum.Linearizability + ")"
			}
			add("linearizable", want, got, *sum.Linearizable == *x.Linearizable)
		}
	}
	judgeBackups(x, sum, add)
	judgeUpgrade(x, sum, pc, add)
	// The generator judges itself in every run: a run whose clock slipped
	// says nothing about Vault.
	late, lag := scenarios.DefaultGeneratorLateSends, scenarios.DefaultGeneratorMaxLag
	if x.GeneratorLateSends != nil {
		late = *x.GeneratorLateSends
	}
	if x.GeneratorMaxLag != nil {
		lag = *x.GeneratorMaxLag
	}
	if n == 0 {
		add("generator_late_sends", fmt.Sprintf("<= %g%%", late), notMeasured+" (no request)", false)
	} else {
		pct := 100 * float64(sum.LateSends) / float64(n)
		add("generator_late_sends", fmt.Sprintf("<= %g%%", late), fmt.Sprintf("%.2f%% (%d of %d sent more than %gms late)", pct, sum.LateSends, n, sum.LateThresholdMs), pct <= late)
	}
	add("generator_max_lag", "<= "+lag.String(), fmtMs(sum.MaxSendLagMs), sum.MaxSendLagMs <= ms(lag))
	return out
}

// judgeBackups checks RPO, RTO and the snapshots' cost.
func judgeBackups(x scenarios.Expect, sum *rundir.Summary, add func(name, want, got string, ok bool)) {
	rs := sum.Restore
	restoreUnknown := func() string {
		switch {
		case rs == nil:
			return notMeasured + " (no restore ran)"
		case rs.Error != "":
			return notMeasured + ": the restore failed: " + rs.Error
		case !sum.Verified:
			return notMeasured + ": " + unverified(sum)
		}
		return ""
	}
	if x.RPOWrites != nil {
		want := fmt.Sprintf("<= %d", *x.RPOWrites)
		if u := restoreUnknown(); u != "" {
			add("rpo_writes", want, u, false)
		} else {
			add("rpo_writes", want, fmt.Sprintf("%d (of %d acknowledged after the snapshot)", rs.RPOWrites, rs.AfterSnapshot), rs.RPOWrites <= int64(*x.RPOWrites))
		}
	}
	if x.RPOSeconds != nil {
		want := "<= " + x.RPOSeconds.String()
		if u := restoreUnknown(); u != "" {
			add("rpo_seconds", want, u, false)
		} else {
			add("rpo_seconds", want, fmtMs(rs.RPOSeconds*1000), rs.RPOSeconds*1000 <= ms(*x.RPOSeconds))
		}
	}
	if x.RTO != nil {
		want := "<= " + x.RTO.String()
		switch {
		case rs == nil || rs.Error != "":
			add("rto", want, restoreUnknown(), false)
		case rs.FirstWriteMs == nil || rs.FirstReadMs == nil:
			add("rto", want, "never served again within the run", false)
		default:
			worst := max(*rs.FirstWriteMs, *rs.FirstReadMs)
			add("rto", want, fmt.Sprintf("%s (first write %s, first read %s)", fmtMs(worst), fmtMs(*rs.FirstWriteMs), fmtMs(*rs.FirstReadMs)), worst <= ms(*x.RTO))
		}
	}
	if x.SnapshotP99 != nil {
		want := "<= " + x.SnapshotP99.String()
		c := sum.SnapshotP99
		switch {
		case c == nil:
			add("snapshot_p99", want, notMeasured+" (no snapshot was taken)", false)
		case c.DuringCount == 0:
			add("snapshot_p99", want, notMeasured+" (no request was sent while a snapshot was taken)", false)
		default:
			add("snapshot_p99", want, fmt.Sprintf("%s (outside snapshots %s)", fmtMs(c.DuringP99Ms), fmtMs(c.OutsideP99Ms)), c.DuringP99Ms <= ms(*x.SnapshotP99))
		}
	}
}

// judgeUpgrade checks what the upgrade checks found. A check that could
// not run fails with why.
func judgeUpgrade(x scenarios.Expect, sum *rundir.Summary, pc postChecks, add func(name, want, got string, ok bool)) {
	if v := x.VersionsAfter; v != nil {
		f := sum.Final
		switch {
		case f == nil || f.Error != "":
			got := notMeasured + " (no final check)"
			if f != nil {
				got = notMeasured + ": " + f.Error
			}
			add("versions_after", *v, got, false)
		default:
			var off []string
			for _, n := range f.Nodes {
				if n.Version != *v {
					ver := n.Version
					if ver == "" {
						ver = n.State
					}
					off = append(off, n.Name+" "+ver)
				}
			}
			got := fmt.Sprintf("every node (%d) on %s", len(f.Nodes), *v)
			if len(off) > 0 {
				got = "not on " + *v + ": " + strings.Join(off, ", ")
			}
			add("versions_after", *v, got, len(off) == 0 && len(f.Nodes) > 0)
		}
	}
	if d := x.StepDownWithin; d != nil {
		switch {
		case !pc.ran:
			add("step_down_within", "<= "+d.String(), notMeasured+" (the checks after the upgrade did not run)", false)
		case pc.stepDownMs == nil:
			add("step_down_within", "<= "+d.String(), notMeasured+": "+pc.stepDownErr, false)
		default:
			add("step_down_within", "<= "+d.String(), fmtMs(*pc.stepDownMs), *pc.stepDownMs <= ms(*d))
		}
	}
	if b := x.ReadsThroughStandbys; b != nil && *b {
		switch {
		case !pc.ran:
			add("reads_through_standbys", "true", notMeasured+" (the checks after the upgrade did not run)", false)
		case len(pc.standbyReads) == 0:
			add("reads_through_standbys", "true", notMeasured+" (no standby to read through)", false)
		default:
			var bad []string
			var nodes []string
			for n, why := range pc.standbyReads {
				nodes = append(nodes, n)
				if why != "" {
					bad = append(bad, n+": "+why)
				}
			}
			slices.Sort(nodes)
			slices.Sort(bad)
			got := "read through " + strings.Join(nodes, ", ")
			if len(bad) > 0 {
				got = strings.Join(bad, "; ")
			}
			add("reads_through_standbys", "true", got, len(bad) == 0)
		}
	}
	if b := x.SealRestart; b != nil && *b {
		switch {
		case !pc.ran:
			add("seal_restart", "true", notMeasured+" (the checks after the upgrade did not run)", false)
		case pc.sealRestartMs == nil:
			add("seal_restart", "true", pc.sealErr, false)
		default:
			add("seal_restart", "true", "a restarted standby unsealed itself in "+fmtMs(*pc.sealRestartMs), true)
		}
	}
}

// unverified says how far an unfinished read-back got, and why it stopped.
func unverified(sum *rundir.Summary) string {
	got := fmt.Sprintf("unverified (%d of %d keys read)", sum.KeysRead, sum.KeysToRead)
	if sum.VerifyError != "" {
		got += ": " + sum.VerifyError
	}
	return got
}

func fmtMs(v float64) string {
	return (time.Duration(v * float64(time.Millisecond))).Round(time.Millisecond).String()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func msPtr(from, to time.Time) *float64 {
	if to.IsZero() {
		return nil
	}
	v := ms(to.Sub(from))
	return &v
}

// electedAfterLift says, for a pause or partition whose new leader came
// only after the fault was lifted, when each happened; "" otherwise. Such a
// leader is not the majority side failing over: the old leader was back
// (and may have taken part in the vote), so the fault did not show that
// the rest of the cluster elects one on its own.
func electedAfterLift(f rundir.FaultResult) string {
	if f.LeaderElectedMs == nil || f.End.IsZero() || (f.Kind != string(scenarios.KindPause) && f.Kind != string(scenarios.KindPartition)) {
		return ""
	}
	lifted := ms(f.End.Sub(f.At))
	if *f.LeaderElectedMs <= lifted {
		return ""
	}
	return fmt.Sprintf("only after the fault was lifted (leader at %s, lifted at %s)", fmtMs(*f.LeaderElectedMs), fmtMs(lifted))
}
