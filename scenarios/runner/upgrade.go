package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/vaultstorm/vaultstorm/chaos"
	"github.com/vaultstorm/vaultstorm/checkers"
	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/cluster/watch"
	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/scenarios"
)

// Upgrade checks, modelled on Vault's own enos upgrade scenario: after the
// roll, every node runs the new version (versions_after, from the final
// check), a step-down elects a new leader in time (step_down_within), data
// written before the upgrade is read through each standby
// (reads_through_standbys) and the transit seal still unseals a restarted
// node (seal_restart).
const (
	markerMount = "vaultstorm"
	markerKey   = "upgrade-check/marker"
	// postCheckTimeout bounds each check: a check that does not finish
	// fails, it never passes by default.
	postCheckTimeout = 2 * time.Minute
)

// upgrades is what the run's upgrade faults did, step by step, and what
// the checks after them found.
type upgrades struct {
	mu      sync.Mutex
	steps   map[int][]rundir.UpgradeStep // by fault index
	from    map[int][]string
	marker  string // the value written before the first upgrade ("" none)
	markErr string
	checks  postChecks
}

// postChecks are the results of the checks after an upgrade; a nil
// measurement with an error says why it could not be taken.
type postChecks struct {
	ran           bool
	stepDownMs    *float64
	stepDownErr   string
	standbyReads  map[string]string // node -> "" (read the marker) or why not
	sealRestartMs *float64
	sealErr       string
}

// upgradeFault builds the upgrade fault of f: the binary of to_version is
// bin/vault-VERSION next to the run's default binary (or to_bin).
func (r *run) upgradeFault(f scenarios.Fault) (chaos.Fault, error) {
	bin := f.ToBin
	if bin == "" {
		bin = filepath.Join(filepath.Dir(r.o.VaultBin), "vault-"+f.ToVersion)
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("fault %d (upgrade): %s not found (build it with `make vault VAULT_VERSION=%s`)", f.Index, bin, f.ToVersion)
	}
	ver := f.ToVersion
	if ver == "" {
		v, err := cluster.VaultVersion(context.Background(), bin)
		if err != nil {
			return nil, fmt.Errorf("fault %d (upgrade): %w", f.Index, err)
		}
		ver = v
	}
	if r.upgrades == nil {
		r.upgrades = &upgrades{steps: map[int][]rundir.UpgradeStep{}, from: map[int][]string{}}
	}
	u := r.upgrades
	return chaos.Upgrade{
		ToBin: bin, ToVersion: ver, StepDown: f.StepDown, PauseBetween: f.PauseBetween, Count: f.Count, Timeout: f.Timeout,
		// The watcher is made after the faults: read it when the fault runs.
		Active: func() []string { return r.w.Active() }, Logf: r.logf,
		Step: func(node, phase string) {
			now := time.Now()
			u.mu.Lock()
			defer u.mu.Unlock()
			steps := u.steps[f.Index]
			switch phase {
			case chaos.UpgradeStart:
				u.steps[f.Index] = append(steps, rundir.UpgradeStep{Node: node, Start: now, Active: slices.Contains(r.w.Active(), node)})
			case chaos.UpgradeEnd, chaos.UpgradeFailed:
				if len(steps) > 0 && steps[len(steps)-1].Node == node {
					steps[len(steps)-1].End = now
				}
			}
			r.event(rundir.Event{T: now, Kind: rundir.EvNote, Fault: f.Index, Node: node, Msg: "upgrade to " + ver + ": " + phase})
		},
	}, nil
}

// writeMarker writes a value before the first upgrade, to be read through
// every standby after it. Called with opMu held (a fault's action).
func (r *run) writeMarker(ctx context.Context) {
	u := r.upgrades
	val := fmt.Sprintf("written before the upgrade at %s", time.Now().UTC().Format(time.RFC3339Nano))
	err := func() error {
		active := r.w.Active()
		if len(active) != 1 {
			return fmt.Errorf("%w (active: %v)", errNoActive, active)
		}
		n, err := r.c.Node(active[0])
		if err != nil {
			return err
		}
		cl, err := r.c.Client(n)
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err = cl.KVv2(markerMount).Put(cctx, markerKey, map[string]any{"v": val})
		return err
	}()
	u.mu.Lock()
	defer u.mu.Unlock()
	if err != nil {
		u.markErr = err.Error()
		return
	}
	u.marker = val
}

// noteVersions records the nodes' versions before upgrade fault index.
func (r *run) noteVersions(index int) {
	vs := r.w.Versions()
	var from []string
	for _, n := range r.w.Nodes() {
		if v := vs[n.Name]; v != "" && !slices.Contains(from, v) {
			from = append(from, v)
		}
	}
	r.upgrades.mu.Lock()
	r.upgrades.from[index] = from
	r.upgrades.mu.Unlock()
}

// postUpgradeChecks runs the checks the scenario asks for, after the load.
// Each acts on the cluster (a step-down, a restart): they come after every
// measurement of the load, before the final check.
func (r *run) postUpgradeChecks(ctx context.Context) {
	u, x := r.upgrades, r.sc.Expect
	if u == nil {
		return
	}
	r.opMu.Lock()
	defer r.opMu.Unlock()
	pc := postChecks{ran: true}
	if x.ReadsThroughStandbys != nil {
		pc.standbyReads = r.readThroughStandbys(ctx)
	}
	if x.StepDownWithin != nil {
		pc.stepDownMs, pc.stepDownErr = r.stepDownCheck(ctx)
	}
	if x.SealRestart != nil {
		pc.sealRestartMs, pc.sealErr = r.sealRestartCheck(ctx)
	}
	u.mu.Lock()
	u.checks = pc
	u.mu.Unlock()
}

// readThroughStandbys reads the marker through every standby (which
// forwards to the active node): what each one answered.
func (r *run) readThroughStandbys(ctx context.Context) map[string]string {
	out := map[string]string{}
	r.upgrades.mu.Lock()
	marker, markErr := r.upgrades.marker, r.upgrades.markErr
	r.upgrades.mu.Unlock()
	active := r.w.Active()
	for _, n := range r.c.State.Nodes {
		if slices.Contains(active, n.Name) {
			continue
		}
		if marker == "" {
			out[n.Name] = "no marker was written before the upgrade: " + markErr
			continue
		}
		cl, err := r.c.Client(n)
		if err != nil {
			out[n.Name] = err.Error()
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		s, err := cl.KVv2(markerMount).Get(cctx, markerKey)
		cancel()
		switch {
		case err != nil:
			out[n.Name] = err.Error()
		case s.Data["v"] != marker:
			out[n.Name] = fmt.Sprintf("read %v, want %q", s.Data["v"], marker)
		default:
			out[n.Name] = ""
		}
	}
	return out
}

// stepDownCheck steps the active node down and times the election of
// another one, as the watcher sees it.
func (r *run) stepDownCheck(ctx context.Context) (*float64, string) {
	old := r.w.Active()
	if len(old) != 1 {
		return nil, fmt.Sprintf("not one active node to step down: %v", old)
	}
	n, err := r.c.Node(old[0])
	if err != nil {
		return nil, err.Error()
	}
	release := r.w.Focus(old)
	defer release()
	start := time.Now()
	if err := r.c.StepDown(ctx, n); err != nil {
		return nil, "step-down: " + err.Error()
	}
	deadline := start.Add(postCheckTimeout)
	for time.Now().Before(deadline) {
		if t := r.leaderSince(start, old); !t.IsZero() {
			d := ms(t.Sub(start))
			r.awaitHealed(ctx, t, time.Now().Add(postCheckTimeout))
			return &d, ""
		}
		if !sleepUntil(ctx, time.Now().Add(20*time.Millisecond)) {
			break
		}
	}
	return nil, fmt.Sprintf("no new leader within %s of the step-down", postCheckTimeout)
}

// leaderSince is when a node other than old was first seen active after t.
func (r *run) leaderSince(t time.Time, old []string) time.Time {
	for _, o := range r.w.Leaders() {
		if o.T.Before(t) {
			continue
		}
		for _, l := range o.Leaders {
			if !slices.Contains(old, l) {
				return o.T
			}
		}
	}
	return time.Time{}
}

// sealRestartCheck restarts one standby and times it until it answers
// unsealed again: the transit seal unseals it with no human step.
func (r *run) sealRestartCheck(ctx context.Context) (*float64, string) {
	active := r.w.Active()
	var n *cluster.Node
	for _, m := range r.c.State.Nodes {
		if !slices.Contains(active, m.Name) {
			n = m
			break
		}
	}
	if n == nil {
		return nil, "no standby to restart"
	}
	release := r.w.Focus([]string{n.Name})
	defer release()
	if err := r.c.Stop(ctx, n); err != nil {
		return nil, "stop " + n.Name + ": " + err.Error()
	}
	start := time.Now()
	if err := r.c.Start(ctx, n); err != nil {
		return nil, "start " + n.Name + ": " + err.Error()
	}
	// Asked directly, not read from the watcher: its last state of n may
	// be from before the stop ("follower" at once, and the final check then
	// found n still starting: "down").
	last := ""
	for time.Since(start) < postCheckTimeout {
		r.w.Count(watch.KindHealth)
		st, _, _ := r.c.NodeHealth(ctx, n)
		last = st
		if st == cluster.StateFollower || st == cluster.StateLeader {
			d := ms(time.Since(start))
			r.awaitHealed(ctx, start, time.Now().Add(postCheckTimeout))
			return &d, ""
		}
		if !sleepUntil(ctx, time.Now().Add(100*time.Millisecond)) {
			break
		}
	}
	return nil, fmt.Sprintf("%s not unsealed within %s of its restart (last %s)", n.Name, postCheckTimeout, last)
}

// upgradeResults measures each step of each upgrade: the stall and error
// windows clipped to it, the leaders that came, the p99 of its requests.
func (r *run) upgradeResults(sum *rundir.Summary, wStall, rStall, wErr, rErr []checkers.Window) {
	u := r.upgrades
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	leaders := r.w.Leaders()
	for _, fr := range r.faults {
		if fr.spec.Kind != scenarios.KindUpgrade || fr.started.IsZero() {
			continue
		}
		res := rundir.UpgradeResult{Fault: fr.spec.Index, To: fr.spec.ToVersion, From: u.from[fr.spec.Index]}
		if fr.err != nil {
			res.Error = fr.err.Error()
		}
		for _, st := range u.steps[fr.spec.Index] {
			end := st.End
			if end.IsZero() {
				end = time.Now()
			}
			st.WriteUnavailableMs = ms(checkers.Longest(wStall, st.Start, end))
			st.ReadUnavailableMs = ms(checkers.Longest(rStall, st.Start, end))
			st.WriteErrorWindowMs = ms(checkers.Longest(wErr, st.Start, end))
			st.ReadErrorWindowMs = ms(checkers.Longest(rErr, st.Start, end))
			var before []string
			for _, o := range leaders {
				if o.T.After(st.Start) {
					break
				}
				before = o.Leaders
			}
			for _, o := range leaders {
				if o.T.Before(st.Start) || o.T.After(end) {
					continue
				}
				for _, l := range o.Leaders {
					if !slices.Contains(before, l) && !slices.Contains(st.NewLeaders, l) {
						st.NewLeaders = append(st.NewLeaders, l)
					}
				}
			}
			st.P99Ms = r.p99Between(st.Start, end)
			res.Steps = append(res.Steps, st)
		}
		if n := len(res.Steps); n > 0 {
			res.TotalMs = ms(res.Steps[n-1].End.Sub(res.Steps[0].Start))
		}
		sum.Upgrades = append(sum.Upgrades, res)
	}
}

// p99Between is the p99 of every request sent in [from, to], in ms (0
// when none was).
func (r *run) p99Between(from, to time.Time) float64 {
	h := hdr.New(1, 60_000_000, 3)
	r.outMu.Lock()
	for _, outs := range [][]checkers.Outcome{r.writes, r.reads} {
		for _, o := range outs {
			if !o.Intended.Before(from) && !o.Intended.After(to) {
				_ = h.RecordValue(max(o.End.Sub(o.Intended).Microseconds(), 1))
			}
		}
	}
	r.outMu.Unlock()
	if h.TotalCount() == 0 {
		return 0
	}
	return float64(h.ValueAtQuantile(99)) / 1000
}

// errNoActive: no node answers as the active one.
var errNoActive = errors.New("no active node")
