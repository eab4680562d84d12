package runner

import (
	"fmt"
	"slices"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/load"
	"github.com/vaultstorm/vaultstorm/scenarios"
)

// phaseHists keeps one latency histogram per phase and operation, fed from
// every request, so per-phase percentiles are exact rather than averaged
// from per-second ones.
type phaseHists struct {
	mu     sync.Mutex
	starts [4]time.Time
	ends   [4]time.Time
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

func (p *phaseHists) mark(phase int, t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 0; i < phase; i++ {
		if p.ends[i].IsZero() && !p.starts[i].IsZero() {
			p.ends[i] = t
		}
	}
	if p.starts[phase].IsZero() {
		p.starts[phase] = t
	}
}

func (p *phaseHists) record(phase int, op string, lat time.Duration, class load.Class) {
	p.mu.Lock()
	defer p.mu.Unlock()
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

func (p *phaseHists) stats(end time.Time) []rundir.PhaseStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []rundir.PhaseStats
	for i, name := range phaseNames {
		if p.starts[i].IsZero() {
			continue
		}
		e := p.ends[i]
		if e.IsZero() {
			e = end
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

// finish computes each fault's recovery, the phases and the verdicts.
func (r *run) finish(sum *rundir.Summary) {
	leaders, health, ap := r.probe.observations()
	r.outMu.Lock()
	wOut, rOut := outages(r.writes), outages(r.reads)
	r.outMu.Unlock()
	now := time.Now()
	for _, fr := range r.faults {
		if fr.injected.IsZero() {
			continue
		}
		res := rundir.FaultResult{Kind: string(fr.spec.Kind), Nodes: fr.nodes, At: fr.injected.UTC()}
		if !fr.lifted.IsZero() {
			res.End = fr.lifted.UTC()
		}
		healed := healedAt(health, later(fr.injected, fr.lifted))
		res.HealedMs = msPtr(fr.injected, healed)
		if fr.leaderHit {
			// A leader other than the nodes hit; for a rolling restart,
			// which hits every node, one other than the leader it began with.
			from, excluded := fr.injected, fr.nodes
			if fr.spec.Kind == scenarios.KindRollingRestart {
				from, excluded = fr.started, fr.leaderAt
			}
			res.LeaderElectedMs = msPtr(from, leaderElected(leaders, from, excluded))
		}
		windowEnd := healed
		if windowEnd.IsZero() {
			windowEnd = now
		}
		// Requests fail from the moment the action begins (a graceful stop
		// takes a while), not only once it returned.
		from := fr.started
		res.WriteUnavailableMs = ms(longestOverlapping(wOut, from, windowEnd))
		res.ReadUnavailableMs = ms(longestOverlapping(rOut, from, windowEnd))
		if ok := firstOKAfterFailure(wOut, from); !ok.IsZero() && ok.Before(windowEnd) {
			r.event(rundir.Event{T: ok, Kind: rundir.EvWriteOK, Fault: fr.spec.Index})
		}
		if !healed.IsZero() {
			r.event(rundir.Event{T: healed, Kind: rundir.EvHealed, Fault: fr.spec.Index})
		}
		sum.Faults = append(sum.Faults, res)
	}
	sum.Phases = r.hists.stats(now)
	sum.Scenario = r.sc.Name
	lostIDs := slices.Clone(r.lost)
	sum.Expectations = judge(r.sc.Expect, sum, r.hists.p99Of(1), apView{ap}, lostIDs)
	passed := true
	for _, e := range sum.Expectations {
		passed = passed && e.Passed
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

// judge checks every expectation the scenario sets against what was
// measured. Pure: everything it needs is passed in.
func judge(x scenarios.Expect, sum *rundir.Summary, p99During float64, ap apView, lostIDs []string) []rundir.Expectation {
	var out []rundir.Expectation
	add := func(name, want, got string, ok bool) {
		out = append(out, rundir.Expectation{Name: name, Want: want, Got: got, Passed: ok})
	}
	if x.LostWrites != nil {
		add("lost_writes", fmt.Sprintf("<= %d", *x.LostWrites), fmt.Sprint(sum.LostWrites), sum.LostWrites <= int64(*x.LostWrites))
	}
	maxOf := func(f func(rundir.FaultResult) float64) (float64, bool) {
		m, any := 0.0, false
		for _, fr := range sum.Faults {
			m, any = max(m, f(fr)), true
		}
		return m, any
	}
	if x.MaxUnavailability != nil {
		m, _ := maxOf(func(f rundir.FaultResult) float64 { return f.WriteUnavailableMs })
		add("max_unavailability", "<= "+x.MaxUnavailability.String(), fmtMs(m), m <= ms(*x.MaxUnavailability))
	}
	if x.MaxReadUnavailability != nil {
		m, _ := maxOf(func(f rundir.FaultResult) float64 { return f.ReadUnavailableMs })
		add("max_read_unavailability", "<= "+x.MaxReadUnavailability.String(), fmtMs(m), m <= ms(*x.MaxReadUnavailability))
	}
	if x.HealedWithin != nil {
		for i, f := range sum.Faults {
			name := fmt.Sprintf("healed_within (fault %d %s)", i+1, f.Kind)
			if f.HealedMs == nil {
				add(name, "<= "+x.HealedWithin.String(), "never healed", false)
				continue
			}
			add(name, "<= "+x.HealedWithin.String(), fmtMs(*f.HealedMs), *f.HealedMs <= ms(*x.HealedWithin))
		}
	}
	if x.LeaderWithin != nil || x.NewLeader != nil {
		for i, f := range sum.Faults {
			hit := f.LeaderElectedMs != nil
			if x.NewLeader != nil {
				// A fault that did not hit the leader leaves LeaderElectedMs nil:
				// "new leader" then means "leadership moved", which it did not.
				add(fmt.Sprintf("new_leader (fault %d %s)", i+1, f.Kind), fmt.Sprint(*x.NewLeader), fmt.Sprint(hit), hit == *x.NewLeader)
			}
			if x.LeaderWithin != nil && hit {
				add(fmt.Sprintf("leader_within (fault %d %s)", i+1, f.Kind), "<= "+x.LeaderWithin.String(), fmtMs(*f.LeaderElectedMs), *f.LeaderElectedMs <= ms(*x.LeaderWithin))
			}
		}
	}
	if x.P99DuringFault != nil {
		if p99During < 0 {
			add("p99_during_fault", "<= "+x.P99DuringFault.String(), "no request during a fault", false)
		} else {
			add("p99_during_fault", "<= "+x.P99DuringFault.String(), fmtMs(p99During), p99During <= ms(*x.P99DuringFault))
		}
	}
	if x.P99 != nil {
		worst := 0.0
		for _, s := range sum.Ops {
			worst = max(worst, s.P99)
		}
		add("p99", "<= "+x.P99.String(), fmtMs(worst), worst <= ms(*x.P99))
	}
	if x.MaxErrorRate != nil {
		var n, e int64
		for _, s := range sum.Ops {
			n += s.Count
			e += s.Errors
		}
		rate := 0.0
		if n > 0 {
			rate = 100 * float64(e) / float64(n)
		}
		add("max_error_rate", fmt.Sprintf("<= %g%%", *x.MaxErrorRate), fmt.Sprintf("%.3f%%", rate), rate <= *x.MaxErrorRate)
	}
	if x.MinVotersAfter != nil {
		v := ap.voters()
		add("min_voters_after", fmt.Sprintf(">= %d", *x.MinVotersAfter), fmt.Sprint(v), v >= *x.MinVotersAfter)
	}
	if x.DeadPeersRemoved != nil && *x.DeadPeersRemoved {
		var left []string
		for _, id := range lostIDs {
			if ap.hasPeer(id) {
				left = append(left, id)
			}
		}
		got := "all removed"
		if len(left) > 0 {
			got = "still peers: " + joinNames(left)
		}
		if !ap.known() {
			got = "no autopilot state (no leader at the end)"
		}
		add("dead_peers_removed", "true", got, len(left) == 0 && ap.known())
	}
	return out
}

func fmtMs(v float64) string {
	return (time.Duration(v * float64(time.Millisecond))).Round(time.Millisecond).String()
}
