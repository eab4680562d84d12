package scenarios

import (
	"fmt"
	"math"
	"reflect"
	"time"
)

// Floors that Scale does not go below. Each exists because Vault (or the
// measurement) has a minimum that a shorter duration would not respect, so a
// CI run at --time-scale 0.1 would test nothing or fail for the wrong reason.
// A floor never raises a duration above what the file says: a 500ms pause
// written as such stays 500ms.
const (
	// Before-fault phase: the first fault comes after at least two whole
	// one-second samples, so "before" has a baseline.
	MinFaultAt = 2 * time.Second
	// The whole load, so that before/during/after each get some samples.
	MinLoadDuration = 10 * time.Second
	// Latency faults: long enough for raft's heartbeats and a few hundred
	// requests to go through the slow node.
	MinLatencyDuration = 10 * time.Second
	// healed_within when a fault replaces nodes: autopilot removes a dead
	// server only after dead_server_last_contact_threshold, which Vault
	// refuses to set below 1m, and counts the replacement healthy only after
	// server_stabilization_time (10s by default); plus 20s for start,
	// retry_join and auto-unseal.
	MinHealedReplace = 90 * time.Second
	// healed_within when nodes only restart: start, auto-unseal, raft
	// catch-up and autopilot's 10s server_stabilization_time.
	MinHealedRestart = 30 * time.Second
	// Snapshot interval: a raft snapshot of a small data set, written to
	// the store, takes a good part of a second on a loaded 2-core host;
	// closer snapshots would overlap and measure only snapshotting.
	MinSnapshotInterval = 2 * time.Second
	// MinRestoreServed is how long after a restore fault the load keeps
	// running at any scale: a new five-node cluster, the restore call and
	// the keys reloaded took 20-40s here, and its first requests must be
	// measured.
	MinRestoreServed = 90 * time.Second
	// MinUpgradeStep is one node's turn in an upgrade at any scale: a
	// graceful stop, a start, the transit unseal and autopilot's
	// stabilization time took 10-20s here.
	MinUpgradeStep = 20 * time.Second
	// MinHealedRestore floors healed_within in a scenario with a restore:
	// the total loss heals only once the restored cluster is whole.
	MinHealedRestore = 2 * time.Minute
)

// minDisruption is the shortest pause or partition that still lets raft
// and Vault fail over while it lasts: a follower waits 1–2 heartbeat
// timeouts (1s × performance_multiplier) before calling an election, which
// takes up to one more; then the new raft leader still has to become
// Vault's active node (take the lock, load mounts and policies) before
// sys/health says so. At multiplier 1 that took 1.8–2.4 s on an idle 2-core
// host and over 3 s on a loaded one, so a 3-election-timeout partition
// sometimes ended before the majority had an active node and the scenario
// measured the heal instead of the failover. PromotionSlack covers the
// step-up.
//
// A scenario that expects a leader within W also keeps the disruption at
// least W long: a shorter one heals before a slow but acceptable election
// can finish, and the leader then elected (after the heal, with the old
// leader back) would be measured as the failover. CI saw exactly that: an
// 8 s partition, a leader 8.17 s in.
func minDisruption(s *Scenario) time.Duration {
	d := 3*s.Cluster.ElectionTimeout() + PromotionSlack
	if w := s.Expect.LeaderWithin; w != nil && *w > d {
		d = *w
	}
	return d
}

// PromotionSlack is the time minDisruption allows, beyond raft's election,
// for the new leader to become Vault's active node.
const PromotionSlack = 5 * time.Second

// Scale returns a copy of the scenario with every schedule duration
// multiplied by f (--time-scale; f < 1 shrinks): the load's duration and
// ramp, the snapshot interval, each fault's at, restart_after,
// replace_after, notice, duration and pause_between, and
// expect.healed_within. expect.rpo_writes and rpo_seconds follow the
// snapshot interval (times interval as run / interval as written), and
// expect.rto the time from each total loss to its restore (the RTO counts
// from the loss, so it moves by as much as that gap). Scale leaves alone
// what raft's timers and the hardware bound rather than the schedule:
// latency delay and jitter, every timeout, the restore's snapshot, and the
// expectations leader_within, max_unavailability, max_read_unavailability,
// p99, p99_during_fault, snapshot_p99 and step_down_within. Durations are
// floored as documented on the Min* constants; each floor that took effect
// is recorded in ScaleNotes.
func (s *Scenario) Scale(f float64) (*Scenario, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 || f > 100 {
		return nil, fmt.Errorf("time scale must be above 0 and at most 100, got %g", f)
	}
	c := *s
	c.Faults = append([]Fault(nil), s.Faults...)
	c.Warnings = append([]string(nil), s.Warnings...)
	c.ScaleNotes = append([]string(nil), s.ScaleNotes...)
	c.Expect = s.Expect.clone()
	c.TimeScale = s.TimeScale * f

	sc := func(what string, d, floor time.Duration) time.Duration {
		out := time.Duration(math.Round(float64(d) * f))
		if fl := min(d, floor); out < fl {
			c.ScaleNotes = append(c.ScaleNotes, fmt.Sprintf("%s: %s × %g = %s raised to %s (floor, see scenarios.Min*)", what, d, f, out, fl))
			out = fl
		}
		// Keep whole milliseconds: the scaled scenario is written back as
		// HCL (scenario.hcl in the run directory) and read again.
		return out.Round(time.Millisecond)
	}
	c.Load.Duration = sc("load duration", s.Load.Duration, MinLoadDuration)
	if s.Snapshots != nil {
		sn := *s.Snapshots
		sn.Interval = sc("snapshots interval", sn.Interval, MinSnapshotInterval)
		c.Snapshots = &sn
		ratio := float64(sn.Interval) / float64(max(s.Snapshots.Interval, 1))
		if e := c.Expect.RPOSeconds; e != nil {
			*e = time.Duration(math.Round(float64(*e) * ratio)).Round(time.Millisecond)
		}
		if e := c.Expect.RPOWrites; e != nil {
			*e = int(math.Ceil(float64(*e) * ratio))
		}
	}
	c.Load.Ramp = sc("load ramp", s.Load.Ramp, 0)
	if c.Load.Ramp > c.Load.Duration {
		c.Load.Ramp = c.Load.Duration
	}
	// Every fault's at moves by the same shift (rather than each being
	// floored on its own) so the order and spacing constraints the file was
	// validated against — e.g. recover_quorum after the reclaim's notice —
	// still hold after scaling.
	var shift time.Duration
	if len(s.Faults) > 0 {
		first := s.Faults[0].At
		if fl := min(first, MinFaultAt); time.Duration(float64(first)*f) < fl {
			shift = fl - time.Duration(float64(first)*f)
			c.ScaleNotes = append(c.ScaleNotes, fmt.Sprintf("fault schedule: every at moved %s later so the first fault comes after %s of load (floor, see scenarios.MinFaultAt)", shift.Round(time.Millisecond), fl))
		}
	}
	replaces, restored := false, false
	// The load must outlast every fault's start and end by as much as the
	// file had it (up to MinFaultAt), so the fault and the recovery after it
	// are both measured under load.
	var needLoad time.Duration
	var needFor string
	needAfter := func(orig, scaled time.Duration, what string) {
		if gap := s.Load.Duration - orig; gap > 0 {
			if n := scaled + min(gap, MinFaultAt); n > needLoad {
				needLoad, needFor = n, what
			}
		}
	}
	for i := range c.Faults {
		ft := &c.Faults[i]
		what := fmt.Sprintf("fault %d (%s)", ft.Index, ft.Kind)
		ft.At = (time.Duration(math.Round(float64(ft.At)*f)) + shift).Round(time.Millisecond)
		ft.RestartAfter = sc(what+" restart_after", ft.RestartAfter, 0)
		ft.ReplaceAfter = sc(what+" replace_after", ft.ReplaceAfter, 0)
		ft.Notice = sc(what+" notice", ft.Notice, 0)
		ft.PauseBetween = sc(what+" pause_between", ft.PauseBetween, 0)
		switch ft.Kind {
		case KindPause, KindPartition:
			ft.Duration = sc(what+" duration", ft.Duration, minDisruption(s))
		case KindLatency:
			ft.Duration = sc(what+" duration", ft.Duration, MinLatencyDuration)
		}
		if ft.Replace || ft.Kind == KindRecoverQuorum {
			replaces = true
		}
		if ft.Kind == KindUpgrade {
			// Each node's turn (stop, start, unseal, stabilise) takes what
			// it takes at any scale: keep the whole roll under load.
			if n := ft.At + time.Duration(s.Cluster.Nodes)*MinUpgradeStep; n > needLoad {
				needLoad, needFor = n, fmt.Sprintf("%s (at %s) rolls every node", what, ft.At)
			}
		}
		if ft.Kind == KindRestore {
			replaces = true
			restored = true
			// A rebuild takes what it takes at any scale: the load must
			// still be running when the restored cluster serves again.
			if n := ft.At + MinRestoreServed; n > needLoad {
				needLoad, needFor = n, fmt.Sprintf("%s (at %s) is served again", what, ft.At)
			}
		}
		orig := s.Faults[i]
		needAfter(orig.At, ft.At, fmt.Sprintf("%s (at %s)", what, ft.At))
		needAfter(orig.At+max(orig.Duration, orig.RestartAfter), ft.At+max(ft.Duration, ft.RestartAfter),
			fmt.Sprintf("%s (ends at %s)", what, ft.At+max(ft.Duration, ft.RestartAfter)))
	}
	// Floors and the shift can push a fault's start or end to or past the
	// end of the load; lengthen the load rather than move a fault, so the
	// schedule stays as written.
	if needLoad > c.Load.Duration {
		c.ScaleNotes = append(c.ScaleNotes, fmt.Sprintf("load duration: %s raised to %s so %s happens under load", c.Load.Duration, needLoad, needFor))
		c.Load.Duration = needLoad
	}
	if r := c.Expect.RTO; r != nil {
		var shift time.Duration // the most any loss-to-restore gap grew (or least it shrank)
		for i, pair := range restores(s.Faults) {
			d := (c.Faults[pair[1]].At - c.Faults[pair[0]].At) - (s.Faults[pair[1]].At - s.Faults[pair[0]].At)
			if i == 0 || d > shift {
				shift = d
			}
		}
		*r += shift
	}
	if h := c.Expect.HealedWithin; h != nil {
		floor := MinHealedRestart
		if replaces {
			floor = MinHealedReplace
		}
		if restored {
			floor = MinHealedRestore
		}
		v := sc("expect healed_within", *h, floor)
		c.Expect.HealedWithin = &v
	}
	return &c, nil
}

// clone copies e and every value its fields point to.
func (e Expect) clone() Expect {
	c := e
	v := reflect.ValueOf(&c).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			p := reflect.New(f.Type().Elem())
			p.Elem().Set(f.Elem())
			f.Set(p)
		}
	}
	return c
}

// SetRate replaces the load's open-loop rate (the --rate of `run`); a ramp
// keeps its shape, its start scaled by the same factor.
func (s *Scenario) SetRate(rate float64) error {
	if s.Load.Workers > 0 {
		return fmt.Errorf("the scenario's load is closed-loop (%d workers): it has no rate", s.Load.Workers)
	}
	if rate <= 0 || rate > maxRate {
		return fmt.Errorf("%g: want a rate above 0 and at most %d requests per second", rate, maxRate)
	}
	if s.Load.Rate > 0 {
		s.Load.RampFrom *= rate / s.Load.Rate
	}
	s.Load.Rate = rate
	return nil
}
