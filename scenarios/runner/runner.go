// Package runner runs a scenario end to end: it stands the cluster up,
// drives load, injects each fault on its schedule, watches recovery through
// the cluster's one watcher, checks the ledger and the histories, judges
// the expectations and writes it all to a run directory. It owns time;
// faults (package chaos) and load (package load) know nothing of each
// other.
package runner

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaultstorm/vaultstorm/chaos"
	"github.com/vaultstorm/vaultstorm/checkers"
	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/cluster/external"
	"github.com/vaultstorm/vaultstorm/cluster/storage"
	"github.com/vaultstorm/vaultstorm/cluster/watch"
	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/load"
	"github.com/vaultstorm/vaultstorm/metrics"
	"github.com/vaultstorm/vaultstorm/scenarios"
)

// Options for one run.
type Options struct {
	Scenario *scenarios.Scenario // parsed, scaled, seeded
	OutDir   string              // the run directory, created
	VaultBin string              // used unless the scenario names a binary or version
	Keep     bool                // leave the cluster up at the end
	Subnet   int                 // third octet of the nodes' loopback addresses
	Tool     string              // "vaultstorm <version>", for meta.json
	Command  string
	// Logf prints progress for a person; nil is quiet.
	Logf func(format string, a ...any)
	// OnSample receives each second of load (progress bars).
	OnSample func(rundir.Sample)
	// Fleet is the cluster to run on when the scenario's provider is
	// "external" (an inventory, attached): the runner stands up nothing
	// and tears down nothing.
	Fleet *external.Fleet
	// DuringLoad, when set, runs beside the load once it has started,
	// with the cluster (tests use it to act behind the harness's back).
	DuringLoad func(ctx context.Context, c *cluster.Cluster, t0 time.Time)
}

// Result is what a run measured.
type Result struct {
	Summary rundir.Summary
	// ClusterDir is set when Keep left the cluster up.
	ClusterDir string
}

// phases of a run, in order.
var phaseNames = []string{"before", "during", "recovery", "after"}

// Observer timing. Fine probing runs from focusLead before a fault's action
// until the cluster is whole again; metrics are scraped every second then,
// every quietScrape otherwise.
const (
	focusLead   = time.Second
	quietScrape = 10 * time.Second
	// linearizeTimeout bounds the porcupine check: an undecided check is
	// reported as such, never as a pass.
	linearizeTimeout = 2 * time.Minute
)

type run struct {
	o      Options
	sc     *scenarios.Scenario
	c      *cluster.Cluster
	events *rundir.Appender
	w      *watch.Watcher
	logf   func(string, ...any)

	opMu sync.Mutex // one fault action at a time: they all change the cluster
	// noticed are the nodes given a spot interruption notice and not yet
	// reclaimed (under opMu): no other fault picks them meanwhile.
	noticed map[*cluster.Node]bool

	outMu  sync.Mutex
	writes []checkers.Outcome
	reads  []checkers.Outcome
	hists  *phaseHists

	loadStart   atomic.Pointer[time.Time]
	loadStarted chan struct{}

	rng *rand.Rand

	faults   []*faultRun
	lost     []string  // node IDs lost for good (guarded by opMu)
	backups  *backups  // the snapshot agent and restores; nil without a snapshots block
	upgrades *upgrades // the upgrade faults' steps and checks; nil without one
	frMu     sync.Mutex
	acted    int // faults whose action (and lift) is over, or failed; guarded by frMu
}

// faultRun is one fault as it happened. Its fields are written by the
// fault's goroutine only; the times are guarded by run.frMu because the
// phase logic reads them while other faults run.
type faultRun struct {
	spec      scenarios.Fault
	nodes     []string
	targetIDs []string
	leaderHit bool
	leaderAt  []string  // active node(s) when the fault began
	started   time.Time // the fault action began
	injected  time.Time // t_fault: the fault action returned
	lifted    time.Time // fault_end (zero when never lifted)
	healed    time.Time // whole again after it (zero: never, within the run)
	err       error
	over      sync.Once // counted in run.acted
}

// Run executes the scenario. The error is for harness failures (bad
// input, a cluster that cannot start); failed expectations are in the
// summary with Passed false.
func Run(ctx context.Context, o Options) (res *Result, err error) {
	sc := o.Scenario
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("create run directory: %w", err)
	}
	r := &run{o: o, sc: sc, logf: o.Logf, hists: newPhaseHists(), loadStarted: make(chan struct{})}
	if r.logf == nil {
		r.logf = func(string, ...any) {}
	}
	meta := rundir.Meta{
		Tool: o.Tool, Command: o.Command, Scenario: sc.Name, Nodes: sc.Cluster.Nodes,
		Provider: sc.Cluster.Provider, Seal: "transit", Seed: sc.Seed, TimeScale: sc.TimeScale,
		Load: describeLoad(sc.Load), Started: time.Now().UTC(),
	}
	if err := rundir.WriteJSON(o.OutDir, rundir.MetaFile, meta); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(o.OutDir, rundir.ScenarioFile), sc.HCL(), 0o644); err != nil {
		return nil, fmt.Errorf("write scenario: %w", err)
	}
	ev, err := rundir.OpenAppender(o.OutDir, rundir.EventsFile)
	if err != nil {
		return nil, err
	}
	defer ev.Close()
	r.events = ev
	r.event(rundir.Event{Kind: rundir.EvRunStart, Msg: sc.Name})
	for _, n := range sc.ScaleNotes {
		r.event(rundir.Event{Kind: rundir.EvNote, Msg: n})
	}

	faults, err := r.buildFaults()
	if err != nil {
		return nil, err
	}
	spec, bin, err := clusterSpec(sc, o.VaultBin)
	if err != nil {
		return nil, err
	}
	spec.Subnet = o.Subnet
	var c *cluster.Cluster
	if sc.Cluster.Provider == scenarios.ProviderExternal {
		if o.Fleet == nil {
			return nil, errors.New("provider \"external\" needs an inventory: cluster { inventory = \"FILE\" } or --inventory FILE")
		}
		o.Fleet.Inv.Commands.Dir = filepath.Join(o.OutDir, "commands")
		r.logf("cluster: %s (from %s), driven by its inventory's commands", o.Fleet.Inv.ClusterName, o.Fleet.Inv.File)
		c, err = cluster.Attach(ctx, filepath.Join(o.OutDir, "cluster"), o.Fleet, sc.Cluster.Nodes)
		if err != nil {
			r.event(rundir.Event{Kind: rundir.EvNote, Msg: "attach failed: " + err.Error()})
			return nil, fmt.Errorf("attach: %w", err)
		}
	} else {
		r.logf("cluster: %d nodes, storage %s, Vault %s", spec.Nodes, storageName(spec.Storage), bin)
		c, err = cluster.Up(ctx, cluster.Options{Dir: filepath.Join(o.OutDir, "cluster"), Spec: spec, VaultBin: bin})
		if err != nil {
			r.event(rundir.Event{Kind: rundir.EvNote, Msg: "cluster up failed: " + err.Error()})
			return nil, fmt.Errorf("cluster up: %w", err)
		}
	}
	r.c = c
	res = &Result{}
	// Every goroutine of the run is joined before this runs (bg.Wait
	// below, on every path), so the logs and the teardown see a quiet
	// cluster.
	defer func() {
		r.collectLogs()
		if o.Keep {
			res.ClusterDir = c.Dir
			r.logf("cluster kept in %s (remove it with: vaultstorm down --dir %s)", c.Dir, c.Dir)
			return
		}
		if err := c.Down(context.WithoutCancel(ctx)); err != nil {
			r.logf("teardown: %v", err)
		}
	}()
	meta.VaultVersion = c.State.VaultVersion
	meta.Storage = string(c.State.Spec.Storage)
	meta.Provider = c.State.Provider
	if err := rundir.WriteJSON(o.OutDir, rundir.MetaFile, meta); err != nil {
		return nil, err
	}
	for i, f := range faults {
		if err := chaos.Available(f, c, sc.Faults[i].Restart); err != nil {
			return nil, fmt.Errorf("fault %d (%s) cannot run here: %w", i+1, f.Kind(), err)
		}
	}

	_, _, caFile, token, err := c.Endpoints()
	if err != nil {
		return nil, err
	}
	r.w, err = watch.New(watchNodes(c), watch.Options{CACert: caFile, Token: token, Intended: sc.Cluster.Nodes, Event: r.event})
	if err != nil {
		return nil, err
	}
	r.w.Start()
	defer r.w.Stop()

	runCtx, cancel := context.WithCancel(ctx)
	var bg sync.WaitGroup
	defer func() {
		cancel()
		bg.Wait()
	}()
	bg.Add(1)
	go func() {
		defer bg.Done()
		_ = metrics.ScrapeWith(runCtx, nil, nil, caFile, token, o.OutDir, metrics.Options{
			Nodes: func() (names, addrs []string) {
				for _, n := range r.w.Nodes() {
					names, addrs = append(names, n.Name), append(addrs, n.Addr)
				}
				return names, addrs
			},
			Every: func() time.Duration {
				if r.w.Focused() {
					return time.Second
				}
				return quietScrape
			},
			OnRequest: func() { r.w.Count(watch.KindMetrics) },
		})
	}()

	// Load and faults run together; faults are timed from the first
	// request of the load's schedule.
	names, addrs, _, _, _ := c.Endpoints()
	target := load.Target{Names: names, Addrs: addrs, CACert: caFile, Token: token}
	lo, err := loadOptions(sc, r)
	if err != nil {
		return nil, err
	}
	var loadSum rundir.Summary
	var loadErr error
	loadDone := make(chan struct{})
	bg.Add(1)
	go func() {
		defer bg.Done()
		defer close(loadDone)
		loadSum, loadErr = load.Run(runCtx, target, lo, o.OutDir)
	}()
	select {
	case <-r.loadStarted:
	case <-loadDone:
		cancel()
		if loadErr == nil {
			loadErr = errors.New("load ended before its first request")
		}
		return nil, fmt.Errorf("load: %w", loadErr)
	}
	t0 := *r.loadStart.Load()
	r.setPhase(0, t0)
	r.logf("load started: %s", describeLoad(sc.Load))
	if sc.Snapshots != nil {
		if err := r.startSnapshots(runCtx, caFile, &bg); err != nil {
			return nil, fmt.Errorf("snapshots: %w", err)
		}
	}
	if o.DuringLoad != nil {
		bg.Add(1)
		go func() {
			defer bg.Done()
			o.DuringLoad(runCtx, c, t0)
		}()
	}

	// Each fault runs in its own goroutine until its cluster is whole
	// again, or until the scenario's healed_within (a minute when it sets
	// none) after it, even past the end of the load: healing after the
	// load is still measured.
	healLimit := time.Minute
	if sc.Expect.HealedWithin != nil {
		healLimit = *sc.Expect.HealedWithin
	}
	for i := range faults {
		r.faults = append(r.faults, &faultRun{spec: sc.Faults[i]})
	}
	var fwg sync.WaitGroup
	for i, f := range faults {
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			r.runFault(runCtx, t0, f, r.faults[i], healLimit)
		}()
	}
	allFaultsDone := make(chan struct{})
	bg.Add(1)
	go func() {
		defer bg.Done()
		fwg.Wait()
		close(allFaultsDone)
	}()

	<-loadDone
	if ctx.Err() != nil {
		r.event(rundir.Event{Kind: rundir.EvNote, Msg: "run interrupted"})
	}
	select {
	case <-allFaultsDone:
	case <-ctx.Done():
	}
	loadEnd := time.Now()
	cancel()
	bg.Wait()
	if loadErr != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("load: %w", loadErr)
	}
	if ctx.Err() == nil {
		r.postUpgradeChecks(ctx)
	}

	// The end state, checked once and explicitly: what every end-of-run
	// expectation reads.
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	final := r.w.Final(fctx, 5)
	fcancel()
	r.w.Stop()
	if final.Error != "" {
		r.logf("final check: %s", final.Error)
	}

	sum := loadSum
	sum.Final = &final
	r.verify(ctx, &sum)
	r.linearize(&sum)
	r.finish(&sum, t0, loadEnd)
	meta.Ended = time.Now().UTC()
	if ctx.Err() != nil {
		meta.Ended = time.Time{} // cut short: the run stays partial
	}
	if err := rundir.WriteJSON(o.OutDir, rundir.SummaryFile, sum); err != nil {
		return nil, err
	}
	if err := rundir.WriteJSON(o.OutDir, rundir.MetaFile, meta); err != nil {
		return nil, err
	}
	r.event(rundir.Event{Kind: rundir.EvRunEnd})
	res.Summary = sum
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, nil
}

// verify reads back every acknowledged write through the nodes the
// cluster has now (reclaimed ones are gone). A read-back that fails or
// stops leaves the summary unverified, with why: never "0 lost".
func (r *run) verify(ctx context.Context, sum *rundir.Summary) {
	names, addrs, caFile, token, err := r.c.Endpoints()
	if err != nil {
		sum.Verified, sum.VerifyError = false, err.Error()
		return
	}
	vctx, vcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer vcancel()
	vr, err := load.VerifyRestored(vctx, load.Target{Names: names, Addrs: addrs, CACert: caFile, Token: token}, r.o.OutDir, r.restorePoint())
	vr.Apply(sum)
	r.backupResults(sum, vr.RPO)
	if err != nil {
		sum.Verified, sum.VerifyError = false, err.Error()
		r.event(rundir.Event{Kind: rundir.EvNote, Msg: "verify: " + err.Error()})
		r.logf("verify: %v", err)
	}
}

// linearize checks the sampled keys' histories.
func (r *run) linearize(sum *rundir.Summary) {
	if r.restorePoint() != nil {
		sum.Linearizable = nil
		sum.Linearizability = "not checked: the cluster was restored from a snapshot, so the writes acknowledged after it are gone by design (the RPO): its history is not one register's"
		return
	}
	lr, err := checkers.CheckDir(r.o.OutDir, linearizeTimeout)
	sum.Linearizable, sum.HistoryKeys, sum.HistoryOps = lr.Linearizable, lr.Keys, lr.Ops
	sum.Linearizability = lr.Detail
	if err != nil {
		sum.Linearizable = nil
		sum.Linearizability = "not checked: " + err.Error()
	}
}

func (r *run) event(e rundir.Event) {
	if e.T.IsZero() {
		e.T = time.Now()
	}
	_ = r.events.Append(e)
}

// setPhase starts phase p at t; requests are put in the phase their
// intended time falls in.
func (r *run) setPhase(p int, t time.Time) {
	if r.hists.mark(p, t) {
		r.event(rundir.Event{T: t, Kind: rundir.EvPhase, Phase: phaseNames[p]})
	}
}

// onResult runs on the load's workers for every request.
func (r *run) onResult(res load.Result) {
	if r.loadStart.Load() == nil {
		t := res.Intended
		if r.loadStart.CompareAndSwap(nil, &t) {
			close(r.loadStarted)
		}
	}
	if res.Class == load.Canceled {
		return // the run was stopped, not the cluster
	}
	o := checkers.Outcome{Seq: res.Seq, Intended: res.Intended, End: res.End, OK: !res.Class.IsError()}
	r.outMu.Lock()
	switch res.Op {
	case load.OpWrite:
		r.writes = append(r.writes, o)
	case load.OpRead:
		r.reads = append(r.reads, o)
	}
	r.outMu.Unlock()
	r.hists.record(res.Intended, res.Op.String(), res.Latency(), res.Class)
}

func watchNodes(c *cluster.Cluster) []watch.Node {
	var out []watch.Node
	for _, n := range c.State.Nodes {
		out = append(out, watch.Node{Name: n.Name, NodeID: n.NodeID, Addr: n.APIAddr()})
	}
	return out
}

// runFault waits for the fault's time, injects it, holds it, lifts it,
// and waits (up to healLimit after it) for the cluster to be whole again.
// The watcher probes finely from focusLead before the action until then.
func (r *run) runFault(ctx context.Context, t0 time.Time, f chaos.Fault, fr *faultRun, healLimit time.Duration) {
	defer r.actionOver(fr)
	spec := fr.spec
	action := t0.Add(spec.At)
	// A spot interruption notice names its instances: they are chosen
	// when it is given (and, on an inventory's cluster, its notice
	// command runs then: AWS FIS interrupts them itself when it ends).
	var chosen []*cluster.Node
	if spec.Kind == scenarios.KindSpotReclaim && spec.Notice > 0 {
		if !sleepUntil(ctx, action) {
			return
		}
		var ok bool
		if chosen, ok = r.notice(ctx, fr); !ok {
			return
		}
		action = action.Add(spec.Notice)
	}
	if !sleepUntil(ctx, action.Add(-focusLead)) {
		return
	}
	release := r.w.Focus(nil)
	defer func() { release() }()
	if !sleepUntil(ctx, action) {
		return
	}
	r.opMu.Lock()
	nodes, err := chosen, error(nil)
	if chosen == nil {
		nodes, err = r.targets(spec)
	} else {
		for _, n := range chosen {
			delete(r.noticed, n)
			if !slices.Contains(r.c.State.Nodes, n) {
				err = fmt.Errorf("%s, given the notice, was gone before its reclaim", n.Name)
			}
		}
	}
	if err != nil {
		r.opMu.Unlock()
		fr.err = err
		r.event(rundir.Event{Kind: rundir.EvNote, Fault: spec.Index, Msg: "no target: " + err.Error()})
		r.logf("fault %d %s: %v", spec.Index, spec.Kind, err)
		return
	}
	for _, n := range nodes {
		fr.nodes = append(fr.nodes, n.Name)
		fr.targetIDs = append(fr.targetIDs, n.NodeID)
	}
	prev := release
	release = r.w.Focus(fr.nodes)
	prev()
	fr.leaderAt = r.w.Active()
	for _, l := range fr.leaderAt {
		if slices.Contains(fr.nodes, l) || spec.Kind == scenarios.KindRecoverQuorum {
			fr.leaderHit = true
		}
	}
	if spec.Kind == scenarios.KindUpgrade {
		if r.upgrades.marker == "" && r.upgrades.markErr == "" {
			r.writeMarker(ctx)
		}
		r.noteVersions(spec.Index)
	}
	r.setTime(&fr.started, time.Now())
	r.setPhase(1, fr.started)
	var lift chaos.Lift
	injected, ok := r.act(fr, "fault", func() (err error) {
		lift, err = f.Inject(ctx, r.c, nodes)
		return err
	})
	r.setTime(&fr.injected, injected)
	if !ok {
		return
	}
	r.event(rundir.Event{T: fr.injected, Kind: rundir.EvFaultStart, Fault: spec.Index, Node: joinNames(fr.nodes), Msg: string(spec.Kind)})
	on := joinNames(fr.nodes)
	if on == "" {
		on = "the cluster"
	}
	r.logf("fault %d: %s on %s", spec.Index, spec.Kind, on)
	if hold, doLift := holdFor(spec); lift != nil && doLift {
		if !sleepUntil(ctx, fr.injected.Add(hold)) {
			return
		}
		r.opMu.Lock()
		var added []*cluster.Node
		lifted, ok := r.act(fr, "lifting the fault", func() (err error) {
			added, err = lift(ctx)
			return err
		})
		r.setTime(&fr.lifted, lifted)
		if !ok {
			return
		}
		msg := "lifted"
		if len(added) > 0 && (spec.Kind == scenarios.KindSpotReclaim || spec.Kind == scenarios.KindZoneOutage || spec.Kind == scenarios.KindDiskLoss) {
			var names []string
			for _, n := range added {
				names = append(names, n.Name)
				r.event(rundir.Event{Kind: rundir.EvNodeState, Node: n.Name, State: "replaced", Msg: "replacement for fault " + fmt.Sprint(spec.Index)})
			}
			msg = "replacement launched: " + joinNames(names)
		}
		r.event(rundir.Event{T: fr.lifted, Kind: rundir.EvFaultEnd, Fault: spec.Index, Node: joinNames(fr.nodes), Msg: msg})
		r.logf("fault %d: %s", spec.Index, msg)
	}
	r.actionOver(fr)
	healed := r.awaitHealed(ctx, later(fr.injected, fr.lifted), fr.injected.Add(healLimit))
	r.setTime(&fr.healed, healed)
}

func (r *run) setTime(p *time.Time, t time.Time) {
	r.frMu.Lock()
	*p = t
	r.frMu.Unlock()
}

// actionOver counts a fault whose action (and lift) is over or failed,
// once; the run moves to "recovery" when it is the last.
func (r *run) actionOver(fr *faultRun) {
	fr.over.Do(func() {
		r.frMu.Lock()
		r.acted++
		last := r.acted == len(r.faults)
		r.frMu.Unlock()
		if last {
			r.setPhase(2, time.Now())
		}
	})
}

// awaitHealed waits until the watcher finds the cluster whole at or after
// since, or the deadline passes, or the run ends. The last fault to heal
// moves the run to "after".
func (r *run) awaitHealed(ctx context.Context, since, deadline time.Time) time.Time {
	for {
		if h := watch.HealedAt(r.w.HealthLog(), since); !h.IsZero() {
			r.maybeAfter(h)
			return h
		}
		if time.Now().After(deadline) || !sleepUntil(ctx, time.Now().Add(50*time.Millisecond)) {
			return time.Time{}
		}
	}
}

// maybeAfter starts "after" at h when every fault that acted is over and
// healed by then.
func (r *run) maybeAfter(h time.Time) {
	log := r.w.HealthLog()
	r.frMu.Lock()
	defer r.frMu.Unlock()
	if r.acted < len(r.faults) {
		return
	}
	for _, f := range r.faults {
		if !f.injected.IsZero() && watch.HealedAt(log, later(f.injected, f.lifted)).IsZero() {
			return
		}
	}
	r.setPhase(3, h)
}

// act runs one fault action, which the caller holds opMu for, releases
// opMu, and tells the watcher which nodes the cluster should now have. It
// returns when the action ended and whether it succeeded; a failure is
// recorded on the fault.
func (r *run) act(fr *faultRun, what string, f func() error) (time.Time, bool) {
	err := f()
	done := time.Now()
	r.lost = r.lost[:0]
	for _, n := range r.c.State.Lost {
		r.lost = append(r.lost, n.NodeID)
	}
	r.w.SetNodes(watchNodes(r.c))
	r.opMu.Unlock()
	if err != nil {
		fr.err = err
		r.event(rundir.Event{Kind: rundir.EvNote, Fault: fr.spec.Index, Msg: what + " failed: " + err.Error()})
		r.logf("fault %d %s: %s failed: %v", fr.spec.Index, fr.spec.Kind, what, err)
		return done, false
	}
	return done, true
}

// notice gives a spot reclaim's interruption notice: its nodes are chosen
// now, recorded, and on an inventory's cluster its notice command runs on
// each (when the inventory has one). ok is false when the fault cannot go
// on (recorded on it).
func (r *run) notice(ctx context.Context, fr *faultRun) ([]*cluster.Node, bool) {
	spec := fr.spec
	r.opMu.Lock()
	nodes, err := r.targets(spec)
	if err == nil {
		if r.noticed == nil {
			r.noticed = map[*cluster.Node]bool{}
		}
		for _, n := range nodes {
			r.noticed[n] = true
		}
	}
	r.opMu.Unlock()
	if err != nil {
		fr.err = err
		r.event(rundir.Event{Kind: rundir.EvNote, Fault: spec.Index, Msg: "no target: " + err.Error()})
		r.logf("fault %d %s: %v", spec.Index, spec.Kind, err)
		return nil, false
	}
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	r.event(rundir.Event{Kind: rundir.EvFaultNotice, Fault: spec.Index, Node: joinNames(names), Msg: fmt.Sprintf("spot interruption notice: gone in %s", spec.Notice)})
	if fl := r.c.External(); fl != nil && fl.Inv.Commands.Has(external.OpNotice) {
		for _, n := range nodes {
			if err := r.c.RunCommand(ctx, external.OpNotice, n); err != nil {
				r.opMu.Lock()
				for _, n := range nodes {
					delete(r.noticed, n)
				}
				r.opMu.Unlock()
				fr.err = err
				r.event(rundir.Event{Kind: rundir.EvNote, Fault: spec.Index, Msg: "notice failed: " + err.Error()})
				r.logf("fault %d %s: notice failed: %v", spec.Index, spec.Kind, err)
				return nil, false
			}
		}
		r.logf("fault %d: spot interruption notice sent to %s (gone in %s)", spec.Index, joinNames(names), spec.Notice)
	}
	return nodes, true
}

// holdFor is how long a fault stays before it is lifted, and whether it is.
func holdFor(f scenarios.Fault) (time.Duration, bool) {
	switch f.Kind {
	case scenarios.KindKill, scenarios.KindStop:
		return f.RestartAfter, f.Restart
	case scenarios.KindPause, scenarios.KindPartition, scenarios.KindLatency:
		return f.Duration, true
	case scenarios.KindSpotReclaim, scenarios.KindZoneOutage, scenarios.KindDiskLoss:
		return f.ReplaceAfter, f.Replace
	}
	return 0, false
}

// targets resolves a fault's target to nodes. Called with opMu held.
func (r *run) targets(f scenarios.Fault) ([]*cluster.Node, error) {
	nodes := slices.DeleteFunc(slices.Clone(r.c.State.Nodes), func(n *cluster.Node) bool { return r.noticed[n] })
	leaders := r.w.Active()
	isLeader := func(n *cluster.Node) bool { return slices.Contains(leaders, n.Name) }
	pick := func(from []*cluster.Node, count int, what string) ([]*cluster.Node, error) {
		if len(from) < count {
			return nil, fmt.Errorf("need %d %s node(s), have %d", count, what, len(from))
		}
		from = slices.Clone(from)
		rng := r.rand()
		rng.Shuffle(len(from), func(i, j int) { from[i], from[j] = from[j], from[i] })
		return from[:count], nil
	}
	count := max(f.Count, 1)
	switch f.Kind {
	case scenarios.KindRecoverQuorum, scenarios.KindRestore:
		return nil, nil
	case scenarios.KindTotalLoss, scenarios.KindUpgrade:
		return slices.Clone(nodes), nil
	case scenarios.KindRollingRestart:
		var followers, lead []*cluster.Node
		for _, n := range nodes {
			if isLeader(n) && f.LeaderLast {
				lead = append(lead, n)
			} else {
				followers = append(followers, n)
			}
		}
		return append(followers, lead...), nil
	case scenarios.KindZoneOutage:
		zone := f.Zone
		switch zone {
		case "leader":
			for _, n := range nodes {
				if isLeader(n) {
					zone = n.Zone
				}
			}
			if zone == "leader" {
				return nil, errors.New("no leader to take the zone of")
			}
		case "random", "":
			zones := r.sc.Cluster.ZoneNames()
			zone = zones[r.rand().IntN(len(zones))]
		}
		return inZone(nodes, zone)
	}
	switch f.Target.Kind {
	case scenarios.TargetLeader:
		for _, n := range nodes {
			if isLeader(n) {
				return []*cluster.Node{n}, nil
			}
		}
		return nil, errors.New("no leader right now")
	case scenarios.TargetFollower:
		var fs []*cluster.Node
		for _, n := range nodes {
			if !isLeader(n) {
				fs = append(fs, n)
			}
		}
		return pick(fs, count, "follower")
	case scenarios.TargetRandom:
		return pick(nodes, count, "")
	case scenarios.TargetNode:
		n, err := r.c.Node(f.Target.Name)
		if err != nil {
			return nil, err
		}
		return []*cluster.Node{n}, nil
	case scenarios.TargetZone:
		return inZone(nodes, f.Target.Name)
	}
	return nil, fmt.Errorf("unknown target %q", f.Target)
}

func inZone(nodes []*cluster.Node, zone string) ([]*cluster.Node, error) {
	var in []*cluster.Node
	for _, n := range nodes {
		if n.Zone == zone {
			in = append(in, n)
		}
	}
	if len(in) == 0 {
		return nil, fmt.Errorf("zone %s has no nodes", zone)
	}
	return in, nil
}

var randMu sync.Mutex

func (r *run) rand() *rand.Rand {
	randMu.Lock()
	defer randMu.Unlock()
	if r.rng == nil {
		r.rng = r.sc.Rand()
	}
	return r.rng
}

// collectLogs copies every node's Vault log into the run directory. The
// logs may hold secrets (request paths, token accessors): 0600.
func (r *run) collectLogs() {
	dir := filepath.Join(r.o.OutDir, rundir.NodesDir)
	_ = os.MkdirAll(dir, 0o755)
	if r.c.External() != nil {
		return // its logs are on its hosts; the commands' output is in commands/
	}
	nodes := append(append([]*cluster.Node{r.c.State.Seal}, r.c.State.Nodes...), r.c.State.Lost...)
	for _, n := range nodes {
		if b, err := os.ReadFile(r.c.LogFile(n.Name)); err == nil {
			_ = os.WriteFile(filepath.Join(dir, n.Name+".log"), b, 0o600)
		}
	}
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func joinNames(names []string) string {
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ","
		}
		out += n
	}
	return out
}

func storageName(k storage.Kind) string {
	if k == "" {
		return "raid0 (md or btrfs, detected)"
	}
	return string(k)
}
