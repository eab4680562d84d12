// Package runner runs a scenario end to end: it stands the cluster up,
// drives load, injects each fault on its schedule, watches recovery with
// probes, checks the ledger, judges the expectations and writes it all to a
// run directory. It owns time; faults (package chaos) and load (package
// load) know nothing of each other.
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
	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/cluster/storage"
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
}

// Result is what a run measured.
type Result struct {
	Summary rundir.Summary
	// ClusterDir is set when Keep left the cluster up.
	ClusterDir string
}

// phases of a run, in order.
var phaseNames = []string{"before", "during", "recovery", "after"}

type run struct {
	o      Options
	sc     *scenarios.Scenario
	c      *cluster.Cluster
	events *rundir.Appender
	probe  *prober
	logf   func(string, ...any)

	opMu sync.Mutex // one fault action at a time: they all change the cluster

	outMu  sync.Mutex
	writes []outcome
	reads  []outcome
	phase  atomic.Int32
	hists  *phaseHists

	loadStart   atomic.Pointer[time.Time]
	loadStarted chan struct{}

	rng *rand.Rand

	faultsMu sync.Mutex
	faults   []*faultRun
	lost     []string // node IDs lost for good
}

// faultRun is one fault as it happened.
type faultRun struct {
	spec      scenarios.Fault
	nodes     []string
	targetIDs []string
	leaderHit bool
	leaderAt  []string  // active node(s) when the fault began
	started   time.Time // the fault action began
	injected  time.Time // t_fault: the fault action returned
	lifted    time.Time // fault_end (zero when never lifted)
	err       error
}

// Run executes the scenario. The error is for harness failures (bad
// input, a cluster that cannot start); failed expectations are in the
// summary with Passed false.
func Run(ctx context.Context, o Options) (*Result, error) {
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

	faults, err := buildFaults(sc)
	if err != nil {
		return nil, err
	}
	spec, bin, err := clusterSpec(sc, o.VaultBin)
	if err != nil {
		return nil, err
	}
	spec.Subnet = o.Subnet
	r.logf("cluster: %d nodes, storage %s, Vault %s", spec.Nodes, storageName(spec.Storage), bin)
	clusterDir := filepath.Join(o.OutDir, "cluster")
	c, err := cluster.Up(ctx, cluster.Options{Dir: clusterDir, Spec: spec, VaultBin: bin})
	if err != nil {
		r.event(rundir.Event{Kind: rundir.EvNote, Msg: "cluster up failed: " + err.Error()})
		return nil, fmt.Errorf("cluster up: %w", err)
	}
	r.c = c
	res := &Result{}
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
		if err := f.Available(c); err != nil {
			return nil, fmt.Errorf("fault %d (%s) cannot run here: %w", i+1, f.Kind(), err)
		}
	}

	names, addrs, caFile, token, err := c.Endpoints()
	if err != nil {
		return nil, err
	}
	if r.probe, err = newProber(caFile, token, r.event); err != nil {
		return nil, err
	}
	r.probe.setNodes(r.probeNodes())
	r.probe.start()
	defer r.probe.stop()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var bg sync.WaitGroup
	bg.Add(1)
	go func() {
		defer bg.Done()
		_ = metrics.Scrape(runCtx, addrs, names, caFile, token, o.OutDir)
	}()

	// Load and faults run together; faults are timed from the first
	// request of the load's schedule.
	target := load.Target{Names: names, Addrs: addrs, CACert: caFile, Token: token}
	lo, err := loadOptions(sc, r)
	if err != nil {
		return nil, err
	}
	var loadSum rundir.Summary
	var loadErr error
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		loadSum, loadErr = load.Run(runCtx, target, lo, o.OutDir)
	}()
	select {
	case <-r.loadStarted:
	case <-loadDone:
		cancel()
		bg.Wait()
		if loadErr == nil {
			loadErr = errors.New("load ended before its first request")
		}
		return nil, fmt.Errorf("load: %w", loadErr)
	}
	t0 := *r.loadStart.Load()
	r.setPhase(0)
	r.logf("load started: %s", describeLoad(sc.Load))

	var fwg sync.WaitGroup
	for i, f := range faults {
		fr := &faultRun{spec: sc.Faults[i]}
		r.faults = append(r.faults, fr)
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			r.runFault(runCtx, t0, f, fr)
		}()
	}
	allFaultsDone := make(chan struct{})
	go func() {
		fwg.Wait()
		close(allFaultsDone)
		if len(faults) > 0 {
			r.setPhase(2)
			r.awaitHealthyPhase(runCtx)
		}
	}()

	<-loadDone
	if ctx.Err() != nil {
		r.event(rundir.Event{Kind: rundir.EvNote, Msg: "run interrupted"})
	}
	// Faults whose recovery comes after the load still run to their end.
	select {
	case <-allFaultsDone:
	case <-ctx.Done():
	}
	r.waitForHeal(ctx, t0)
	cancel()
	bg.Wait()
	if loadErr != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("load: %w", loadErr)
	}

	// Verify through the nodes the cluster has now: reclaimed ones are gone.
	sum := loadSum
	if names, addrs, caFile, token, err = c.Endpoints(); err == nil {
		vt := load.Target{Names: names, Addrs: addrs, CACert: caFile, Token: token}
		vctx, vcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		vr, err := load.Verify(vctx, vt, o.OutDir)
		vcancel()
		if err != nil {
			r.event(rundir.Event{Kind: rundir.EvNote, Msg: "verify: " + err.Error()})
			r.logf("verify: %v", err)
		} else {
			vr.Apply(&sum)
		}
	}
	r.probe.stop()
	r.finish(&sum)
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

func (r *run) event(e rundir.Event) {
	if e.T.IsZero() {
		e.T = time.Now()
	}
	_ = r.events.Append(e)
}

func (r *run) setPhase(p int) {
	r.phase.Store(int32(p))
	r.hists.mark(p, time.Now())
	r.event(rundir.Event{Kind: rundir.EvPhase, Phase: phaseNames[p]})
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
	ok := !res.Class.IsError()
	r.outMu.Lock()
	switch res.Op {
	case load.OpWrite:
		r.writes = append(r.writes, outcome{res.Intended, ok})
	case load.OpRead:
		r.reads = append(r.reads, outcome{res.Intended, ok})
	}
	r.outMu.Unlock()
	r.hists.record(int(r.phase.Load()), res.Op.String(), res.Latency(), res.Class)
}

func (r *run) probeNodes() []probeNode {
	var out []probeNode
	for _, n := range r.c.State.Nodes {
		out = append(out, probeNode{Name: n.Name, NodeID: n.NodeID, Addr: n.APIAddr()})
	}
	return out
}

// runFault waits for the fault's time, injects it, holds it, lifts it.
func (r *run) runFault(ctx context.Context, t0 time.Time, f chaos.Fault, fr *faultRun) {
	spec := fr.spec
	if !sleepUntil(ctx, t0.Add(spec.At)) {
		return
	}
	r.opMu.Lock()
	nodes, err := r.targets(spec)
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
	for _, l := range r.probe.leaderNow() {
		if slices.Contains(fr.nodes, l) || spec.Kind == scenarios.KindRecoverQuorum {
			fr.leaderHit = true
		}
	}
	if spec.Kind == scenarios.KindSpotReclaim && spec.Notice > 0 {
		r.opMu.Unlock()
		r.event(rundir.Event{Kind: rundir.EvFaultNotice, Fault: spec.Index, Node: joinNames(fr.nodes), Msg: fmt.Sprintf("spot interruption notice: gone in %s", spec.Notice)})
		r.logf("fault %d: interruption notice for %s (%s)", spec.Index, joinNames(fr.nodes), spec.Notice)
		if !sleepUntil(ctx, time.Now().Add(spec.Notice)) {
			return
		}
		r.opMu.Lock()
		// Leadership may have moved during the notice.
		fr.leaderHit = false
		for _, l := range r.probe.leaderNow() {
			fr.leaderHit = fr.leaderHit || slices.Contains(fr.nodes, l)
		}
	}
	if r.phase.Load() == 0 {
		r.setPhase(1)
	}
	fr.leaderAt = r.probe.leaderNow()
	fr.started = time.Now()
	var lift chaos.Lift
	var ok bool
	fr.injected, ok = r.act(fr, "fault", func() (err error) {
		lift, err = f.Inject(ctx, r.c, nodes)
		return err
	})
	if !ok {
		return
	}
	r.event(rundir.Event{T: fr.injected, Kind: rundir.EvFaultStart, Fault: spec.Index, Node: joinNames(fr.nodes), Msg: string(spec.Kind)})
	r.logf("fault %d: %s on %s", spec.Index, spec.Kind, joinNames(fr.nodes))
	hold, doLift := holdFor(spec)
	if lift == nil || !doLift {
		return
	}
	if !sleepUntil(ctx, fr.injected.Add(hold)) {
		return
	}
	r.opMu.Lock()
	var added []*cluster.Node
	if fr.lifted, ok = r.act(fr, "lifting the fault", func() (err error) {
		added, err = lift(ctx)
		return err
	}); !ok {
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

// act runs one fault action, which the caller holds opMu for, releases
// opMu, and tells the probes which nodes the cluster should now have. It
// returns when the action ended and whether it succeeded; a failure is
// recorded on the fault.
func (r *run) act(fr *faultRun, what string, f func() error) (time.Time, bool) {
	err := f()
	done := time.Now()
	r.updateProbes(fr.spec.Kind)
	r.opMu.Unlock()
	if err != nil {
		fr.err = err
		r.event(rundir.Event{Kind: rundir.EvNote, Fault: fr.spec.Index, Msg: what + " failed: " + err.Error()})
		r.logf("fault %d %s: %s failed: %v", fr.spec.Index, fr.spec.Kind, what, err)
		return done, false
	}
	return done, true
}

// updateProbes tells the prober which nodes the cluster should now have,
// and remembers nodes lost for good. Called with opMu held.
func (r *run) updateProbes(kind scenarios.Kind) {
	r.faultsMu.Lock()
	r.lost = r.lost[:0]
	for _, n := range r.c.State.Lost {
		r.lost = append(r.lost, n.NodeID)
	}
	r.faultsMu.Unlock()
	r.probe.setNodes(r.probeNodes())
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
	nodes := r.c.State.Nodes
	leaders := r.probe.leaderNow()
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
	case scenarios.KindRecoverQuorum:
		return nil, nil
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

// awaitHealthyPhase moves the run to "after" once the cluster is healthy
// after the last fault.
func (r *run) awaitHealthyPhase(ctx context.Context) {
	since := time.Now()
	for {
		_, health, _ := r.probe.observations()
		if !healedAt(health, since).IsZero() {
			r.setPhase(3)
			return
		}
		if !sleepUntil(ctx, time.Now().Add(100*time.Millisecond)) {
			return
		}
	}
}

// waitForHeal keeps probing after the load until every fault has healed,
// bounded by the scenario's healed_within (or a minute past the last
// fault when it sets none), so healing after the load is still measured.
func (r *run) waitForHeal(ctx context.Context, t0 time.Time) {
	limit := time.Minute
	if r.sc.Expect.HealedWithin != nil {
		limit = *r.sc.Expect.HealedWithin
	}
	deadline := time.Now()
	for _, fr := range r.faults {
		if !fr.injected.IsZero() {
			deadline = later(deadline, fr.injected.Add(limit))
		}
	}
	for time.Now().Before(deadline) {
		_, health, _ := r.probe.observations()
		allHealed := true
		for _, fr := range r.faults {
			if fr.injected.IsZero() {
				continue
			}
			if healedAt(health, later(fr.injected, fr.lifted)).IsZero() {
				allHealed = false
			}
		}
		if allHealed {
			return
		}
		if !sleepUntil(ctx, time.Now().Add(100*time.Millisecond)) {
			return
		}
	}
}

// collectLogs copies every node's Vault log into the run directory.
func (r *run) collectLogs() {
	dir := filepath.Join(r.o.OutDir, rundir.NodesDir)
	_ = os.MkdirAll(dir, 0o755)
	nodes := append(append([]*cluster.Node{r.c.State.Seal}, r.c.State.Nodes...), r.c.State.Lost...)
	for _, n := range nodes {
		if b, err := os.ReadFile(r.c.LogFile(n.Name)); err == nil {
			_ = os.WriteFile(filepath.Join(dir, n.Name+".log"), b, 0o644)
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
