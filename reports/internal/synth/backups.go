package synth

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// The snapshot agent and the restore, as scenarios/runner/backups.go
// records them.

// agentStart is how long after the load's first request the agent starts:
// its ticks are not aligned with the load's seconds.
const agentStart = 350 * time.Millisecond

// noActive is the agent's error when no node leads (snapshots.Agent).
const noActive = "snapshot: find the active node: no active node"

// loss is when the total loss began (its action's start), from t0.
func (g *gen) loss() time.Duration {
	for _, f := range g.o.Faults {
		if f.Kind == "total_loss" {
			return f.At - f.Action
		}
	}
	return 0
}

// usMs is milliseconds at the runner's resolution (whole microseconds).
func usMs(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// nodeAddr is a node's API address, as the process provider gives it
// (node1 on 127.0.0.11, node10 on 127.0.0.20).
func nodeAddr(n string) string {
	i := len(n)
	for i > 0 && n[i-1] >= '0' && n[i-1] <= '9' {
		i--
	}
	k := 0
	fmt.Sscan(n[i:], &k)
	return fmt.Sprintf("https://127.0.0.%d:8200", 10+k)
}

// planSnapshots lays out the agent's attempts, one every interval: one
// while no node leads (or the new cluster is not yet restored) fails.
// Their lengths are known before the load is simulated, since a snapshot
// slows the requests sent while it is taken; their sizes come after.
func (g *gen) planSnapshots() {
	every := g.o.SnapshotEvery
	if every <= 0 {
		return
	}
	rng := rand.New(rand.NewPCG(g.o.Seed^0x5eed, uint64(every)))
	g.during, g.outside = hdr.New(1, 60_000_000, 3), hdr.New(1, 60_000_000, 3)
	g.snaps = []snapPlan{}
	end := time.Duration(g.o.Seconds) * time.Second
	for at := agentStart + every; at < end; at += every {
		p := snapPlan{at: at}
		leader := ""
		for n, st := range g.nodeStates(g.at(at)) {
			if st == "leader" {
				leader = n
			}
		}
		if rs := g.o.Restore; rs != nil && at >= g.loss() && at < g.loss()+rs.Unsealed {
			leader = "" // the new cluster does not know the agent's token before the restore
		}
		if leader == "" {
			p.err = noActive
		} else {
			p.node = leader
			p.dur = time.Duration(160+rng.IntN(90)) * time.Millisecond
		}
		g.snaps = append(g.snaps, p)
	}
}

// inSnapshot reports whether a request sent at t went out while a
// snapshot was being taken.
func (g *gen) inSnapshot(t time.Duration) bool {
	for _, p := range g.snaps {
		if p.err == "" && t >= p.at && t <= p.at+p.dur {
			return true
		}
	}
	return false
}

// served notes the first successful request of op sent after the loss.
func (g *gen) served(op string, t, lat time.Duration) {
	if t < g.loss() {
		return
	}
	if g.firstOK == nil {
		g.firstOK = map[string]time.Duration{}
	}
	if v, ok := g.firstOK[op]; !ok || t+lat < v {
		g.firstOK[op] = t + lat
	}
}

// snapshotEvents completes each attempt (size and raft index from what the
// load wrote by then) and puts its event in the timeline: a snapshot event
// at its request start, or the agent's note when it failed.
func (g *gen) snapshotEvents() {
	if g.snaps == nil {
		return
	}
	acked := func(by time.Duration) int {
		n := 0
		for _, a := range g.acks {
			if a.at <= by {
				n++
			}
		}
		return n
	}
	var ok []rundir.Snapshot // taken before the loss
	var evs []rundir.Event
	newIndex := uint64(0) // the restored cluster's index, once restored
	choose := func() {
		// The restore opens the Nth from last taken before the loss.
		if rs := g.o.Restore; rs != nil && g.restored == nil && rs.Snapshot < len(ok) {
			r := ok[len(ok)-1-rs.Snapshot]
			g.restored = &r
		}
	}
	for i := range g.snaps {
		p := &g.snaps[i]
		if p.at >= g.loss() {
			choose()
		}
		start := g.at(p.at)
		if p.err != "" {
			// The runner stamps a failure when the agent reports it.
			t := start.Add(3 * time.Millisecond)
			p.rec = rundir.Snapshot{Started: t.UTC(), Error: p.err}
			evs = append(evs, rundir.Event{T: t.UTC(), Kind: rundir.EvNote, Msg: "snapshot agent: " + p.err})
			continue
		}
		sec := min(int(p.at/time.Second), len(g.keysAt)-1)
		keys := 0
		if sec >= 0 {
			keys = g.keysAt[sec]
		}
		size := int64(28_672 + 318*keys + int(p.at/time.Millisecond)%97)
		index, term := uint64(118+acked(p.at)), uint64(2)
		if rs := g.o.Restore; rs != nil && p.at >= g.loss() && g.restored != nil {
			if newIndex == 0 {
				newIndex = g.restored.Index + 37
			}
			index, term = newIndex+uint64(acked(p.at)-acked(g.loss()+rs.Unsealed)), 3
		}
		name := "vaultstorm-" + start.UTC().Format("20060102T150405.000Z") + ".snap"
		sum := sha256.Sum256([]byte(name))
		p.rec = rundir.Snapshot{Name: name, Started: start.UTC(), Ended: start.Add(p.dur).UTC(), Size: size,
			SHA256: hex.EncodeToString(sum[:]), Index: index, Term: term, Node: nodeAddr(p.node)}
		evs = append(evs, rundir.Event{T: start.UTC(), Kind: rundir.EvSnapshot,
			Msg: fmt.Sprintf("%s: %d bytes, raft index %d, %s", name, size, index, p.dur.Round(time.Millisecond))})
		if p.at+p.dur < g.loss() {
			ok = append(ok, p.rec)
		}
	}
	choose()
	g.timeline = append(g.timeline, evs...)
	sort.SliceStable(g.timeline, func(i, j int) bool { return g.timeline[i].T.Before(g.timeline[j].T) })
}

// snapshotCost is the runner's: p99 of every request sent while a
// snapshot was taken, and of the rest.
func (g *gen) snapshotCost() *rundir.SnapshotCost {
	var dur time.Duration
	var size int64
	n := 0
	for _, p := range g.snaps {
		if p.err == "" {
			dur += p.dur
			size += p.rec.Size
			n++
		}
	}
	if n == 0 {
		return nil
	}
	c := &rundir.SnapshotCost{DuringCount: g.during.TotalCount(), OutsideCount: g.outside.TotalCount(),
		MeanDurationMs: usMs(dur / time.Duration(n)), MeanSize: size / int64(n)}
	if c.DuringCount > 0 {
		c.DuringP99Ms = float64(g.during.ValueAtQuantile(99)) / 1000
	}
	if c.OutsideCount > 0 {
		c.OutsideP99Ms = float64(g.outside.ValueAtQuantile(99)) / 1000
	}
	return c
}

// restoreEvents are the restore's notes, one per phase with the restore's
// fault index, and the new nodes' states as the watcher sees them once
// they are provisioned: uninitialized, then a throwaway cluster (its first
// node active), the active node sealed while the snapshot's keys reload,
// and active again.
func (g *gen) restoreEvents(idx int, ev func(time.Time, rundir.Event)) {
	rs, l := g.o.Restore, g.loss()
	note := func(d time.Duration, name string) {
		ev(g.at(l+d), rundir.Event{Kind: rundir.EvNote, Fault: idx, Msg: "restore: " + name + " done"})
	}
	state := func(d time.Duration, n, st string) {
		ev(g.at(l+d+probeDelay), rundir.Event{Kind: rundir.EvNodeState, Node: n, State: st})
		if st == "leader" {
			ev(g.at(l+d+probeDelay), rundir.Event{Kind: rundir.EvLeader, Node: n})
		}
	}
	active := rs.NewNodes[0]
	note(rs.Provision, "provision")
	for _, n := range rs.NewNodes {
		state(rs.Provision, n, "uninitialized")
	}
	note(rs.Init, "init")
	state(rs.Init, active, "leader")
	for _, n := range rs.NewNodes[1:] {
		state(rs.Init, n, "follower")
	}
	note(rs.Restored, "restore")
	state(rs.Restored, active, "sealed")
	state(rs.Unsealed-probeDelay, active, "leader")
	note(rs.Unsealed, "unsealed")
	note(rs.Healthy, "healthy")
}

// restoreResult is the summary's restore: the snapshot, the phases, the
// RTO, and the RPO counted from the acknowledged writes as the ledger
// check counts them (by when each was acknowledged).
func (g *gen) restoreResult() *rundir.RestoreResult {
	rs, l := g.o.Restore, g.loss()
	res := &rundir.RestoreResult{LossAt: g.at(l).UTC()}
	if g.restored == nil {
		res.Error = fmt.Sprintf("snapshot %d from last wanted, none taken before the loss", rs.Snapshot)
		return res
	}
	res.Snapshot = *g.restored
	for _, p := range []struct {
		name string
		d    time.Duration
	}{{"provision", rs.Provision}, {"init", rs.Init}, {"restore", rs.Restored}, {"unsealed", rs.Unsealed}, {"healthy", rs.Healthy}} {
		res.Phases = append(res.Phases, rundir.RestorePhase{Name: p.name, Ms: ms(p.d)})
	}
	for op, p := range map[string]**float64{"write": &res.FirstWriteMs, "read": &res.FirstReadMs} {
		if v, ok := g.firstOK[op]; ok {
			x := usMs(v - l)
			*p = &x
		}
	}
	start := res.Snapshot.Started.Sub(g.t0)
	end := res.Snapshot.Ended.Sub(g.t0)
	var lastLost time.Duration
	for _, a := range g.acks {
		switch {
		case a.t >= l:
			// sent to the restored cluster
		case a.at < start:
			res.BeforeSnapshot++
		case a.at <= end:
			res.InFlight++
			if a.at < start+(end-start)/2 { // committed below the snapshot's index
				res.InFlightPresent++
			}
		default:
			res.AfterSnapshot++
			lastLost = max(lastLost, a.at)
		}
	}
	res.RPOWrites = res.AfterSnapshot - res.AfterPresent
	if res.RPOWrites > 0 {
		res.RPOSeconds = math.Round((lastLost-start).Seconds()*1000) / 1000
	}
	return res
}

// drExpectations judge the total-loss-restore scenario's expect block as
// the runner's judge does, in its order.
func (g *gen) drExpectations(s *rundir.Summary, add func(name, want, got string, ok bool)) {
	add("lost_writes", "<= 0", fmt.Sprint(s.LostWrites), s.LostWrites == 0)
	for i, f := range s.Faults {
		name := fmt.Sprintf("healed_within (fault %d %s)", i+1, f.Kind)
		if f.HealedMs == nil {
			add(name, "<= 1m0s", f.Degraded, false)
			continue
		}
		add(name, "<= 1m0s", fmtMs(*f.HealedMs), *f.HealedMs <= 60000)
	}
	want := fmt.Sprintf(">= %d", len(g.o.Nodes))
	add("min_voters_after", want, fmt.Sprint(len(s.Final.Voters)), len(s.Final.Voters) >= len(g.o.Nodes))
	rs := s.Restore
	add("rpo_writes", "<= 400", fmt.Sprintf("%d (of %d acknowledged after the snapshot)", rs.RPOWrites, rs.AfterSnapshot), rs.RPOWrites <= 400)
	add("rpo_seconds", "<= 15s", fmtMs(rs.RPOSeconds*1000), rs.RPOSeconds <= 15)
	if rs.FirstWriteMs == nil || rs.FirstReadMs == nil {
		add("rto", "<= 1m0s", "never served again within the run", false)
	} else {
		worst := max(*rs.FirstWriteMs, *rs.FirstReadMs)
		add("rto", "<= 1m0s", fmt.Sprintf("%s (first write %s, first read %s)", fmtMs(worst), fmtMs(*rs.FirstWriteMs), fmtMs(*rs.FirstReadMs)), worst <= 60000)
	}
	generatorExpectations(s, add)
}

func (g *gen) drHCL() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s (synthetic)\nname = %q\n\ncluster {\n  nodes = %d\n}\n\n", g.o.Scenario, g.o.Scenario, len(g.o.Nodes))
	fmt.Fprintf(&b, "load {\n  rate     = %d\n  duration = \"%ds\"\n}\n\n", g.totalRate(), g.o.Seconds)
	fmt.Fprintf(&b, "snapshots {\n  interval = %q\n  retain   = 5\n}\n", g.o.SnapshotEvery)
	for _, f := range g.o.Faults {
		at := f.At - f.Action
		if f.Kind == "restore" {
			fmt.Fprintf(&b, "\nfault \"restore\" {\n  at       = %q\n  snapshot = %d\n}\n", at, g.o.Restore.Snapshot)
			continue
		}
		fmt.Fprintf(&b, "\nfault %q {\n  at = %q\n}\n", f.Kind, at)
	}
	fmt.Fprintf(&b, "\nexpect {\n  lost_writes      = 0\n  rpo_seconds      = \"15s\"\n  rpo_writes       = 400\n  rto              = \"1m\"\n  healed_within    = \"1m\"\n  min_voters_after = %d\n}\n", len(g.o.Nodes))
	return b.String()
}

// TotalLossRestore is the checked-in total-loss-restore run, at a reduced
// time scale: snapshots every 15 s, every node and array lost 10 s after
// the fourth, a restore scheduled 8 s later from the latest snapshot, a
// new cluster of node6–node10 rebuilt in about 25 s, and the load resuming
// against it.
func TotalLossRestore(dir string, seed uint64) Options {
	o := SpotReclaim(dir, seed, 150)
	o.Scenario, o.Metrics = "total-loss-restore", false
	o.Rates = map[string]int{"read": 80, "write": 20}
	o.SnapshotEvery = 15 * time.Second
	rs := &Restore{
		Provision: 15200 * time.Millisecond, Init: 21800 * time.Millisecond, Restored: 24900 * time.Millisecond,
		Unsealed: 27600 * time.Millisecond, Healthy: 33400 * time.Millisecond,
		FirstWrite: 27900 * time.Millisecond, FirstRead: 27750 * time.Millisecond,
		NewNodes: []string{"node6", "node7", "node8", "node9", "node10"},
	}
	o.Restore = rs
	loss := 70 * time.Second
	const action = 1500 * time.Millisecond // every kill, then every array torn down
	scheduled := loss + 8*time.Second
	heal := rs.Healthy + 150*time.Millisecond
	o.Faults = []Fault{
		{Kind: "total_loss", Nodes: slices.Clone(o.Nodes), At: loss + action, Action: action,
			Election: rs.Init + probeDelay - action, NewLeader: rs.NewNodes[0],
			WriteOutage: rs.FirstWrite, ReadOutage: rs.FirstRead, ReadFailPct: 100, OutageClass: "conn_refused",
			Heal: heal - action},
		{Kind: "restore", At: loss + rs.Healthy, Action: loss + rs.Healthy - scheduled, Heal: heal - rs.Healthy},
	}
	return o
}
