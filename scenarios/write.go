package scenarios

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// HCL renders the scenario as a complete scenario file, every default
// spelled out: this is the "scenario as run" (rundir.ScenarioFile), so a
// report can show exactly what ran after --time-scale and --seed, and Parse
// of the output gives back an equal Scenario.
func (s *Scenario) HCL() []byte {
	f := hclwrite.NewEmptyFile()
	body := f.Body()
	if s.TimeScale != 0 && s.TimeScale != 1 {
		comment(body, fmt.Sprintf("time scale %g", s.TimeScale))
		for _, n := range s.ScaleNotes {
			comment(body, n)
		}
	}
	body.SetAttributeValue("name", cty.StringVal(s.Name))
	if s.Description != "" {
		body.SetAttributeValue("description", cty.StringVal(s.Description))
	}
	body.SetAttributeValue("seed", cty.NumberIntVal(s.Seed))

	body.AppendNewline()
	c := body.AppendNewBlock("cluster", nil).Body()
	cl := s.Cluster
	c.SetAttributeValue("nodes", cty.NumberIntVal(int64(cl.Nodes)))
	c.SetAttributeValue("provider", cty.StringVal(cl.Provider))
	c.SetAttributeValue("storage", cty.StringVal(cl.Storage))
	c.SetAttributeValue("disk_size", cty.StringVal(fmtSize(cl.DiskSize)))
	c.SetAttributeValue("disks_per_node", cty.NumberIntVal(int64(cl.DisksPerNode)))
	if cl.VaultVersion != "" {
		c.SetAttributeValue("vault_version", cty.StringVal(cl.VaultVersion))
	}
	if cl.VaultBin != "" {
		c.SetAttributeValue("vault_bin", cty.StringVal(cl.VaultBin))
	}
	if cl.Inventory != "" {
		c.SetAttributeValue("inventory", cty.StringVal(cl.Inventory))
	}
	c.SetAttributeValue("zones", cty.NumberIntVal(int64(cl.Zones)))
	c.SetAttributeValue("performance_multiplier", cty.NumberIntVal(int64(cl.PerformanceMultiplier)))

	body.AppendNewline()
	l := body.AppendNewBlock("load", nil).Body()
	ld := s.Load
	if ld.Workers > 0 {
		l.SetAttributeValue("workers", cty.NumberIntVal(int64(ld.Workers)))
	} else {
		l.SetAttributeValue("rate", cty.NumberFloatVal(ld.Rate))
		if ld.Ramp > 0 {
			l.SetAttributeValue("ramp_from", cty.NumberFloatVal(ld.RampFrom))
			l.SetAttributeValue("ramp", dur(ld.Ramp))
		}
	}
	l.SetAttributeValue("duration", dur(ld.Duration))
	l.SetAttributeValue("mix", cty.StringVal(ld.Mix.String()))
	l.SetAttributeValue("keys", cty.NumberIntVal(int64(ld.Keys)))
	l.SetAttributeValue("distribution", cty.StringVal(ld.Distribution.String()))
	l.SetAttributeValue("value_size", cty.NumberIntVal(int64(ld.ValueSize)))
	l.SetAttributeValue("target", cty.StringVal(ld.Target))
	l.SetAttributeValue("mount", cty.StringVal(ld.Mount))
	if ld.Tick > 0 {
		l.SetAttributeValue("tick", dur(ld.Tick))
	}
	l.SetAttributeValue("late_threshold", dur(ld.LateThreshold))
	l.SetAttributeValue("history_keys", cty.NumberIntVal(int64(ld.HistoryKeys)))

	if c := s.Capacity; c != nil {
		body.AppendNewline()
		b := body.AppendNewBlock("capacity", nil).Body()
		for _, d := range []struct {
			name string
			v    time.Duration
		}{{"slo_p99", c.SLOP99}, {"warmup", c.Warmup}, {"hold", c.Hold}} {
			if d.v != 0 {
				b.SetAttributeValue(d.name, dur(d.v))
			}
		}
		for _, f := range []struct {
			name string
			v    float64
		}{{"slo_errors", c.SLOErrors}, {"slo_achieved", c.SLOAchieved}, {"max_late", c.MaxLate}, {"start_rate", c.StartRate},
			{"factor", c.Factor}, {"max_rate", c.MaxRate}, {"precision", c.Precision}, {"expect_rate", c.ExpectRate}} {
			if f.v != 0 {
				b.SetAttributeValue(f.name, cty.NumberFloatVal(f.v))
			}
		}
		if c.MaxSteps != 0 {
			b.SetAttributeValue("max_steps", cty.NumberIntVal(int64(c.MaxSteps)))
		}
		list := func(name string, vals []cty.Value) {
			if len(vals) > 0 {
				b.SetAttributeValue(name, cty.TupleVal(vals))
			}
		}
		var mixes, storage, nodes, sizes, keys []cty.Value
		for _, m := range c.Mixes {
			mixes = append(mixes, cty.StringVal(m.String()))
		}
		for _, st := range c.Storage {
			storage = append(storage, cty.StringVal(st))
		}
		for _, n := range c.Nodes {
			nodes = append(nodes, cty.NumberIntVal(int64(n)))
		}
		for _, v := range c.ValueSizes {
			sizes = append(sizes, cty.NumberIntVal(int64(v)))
		}
		for _, k := range c.Keys {
			keys = append(keys, cty.NumberIntVal(int64(k)))
		}
		list("mixes", mixes)
		list("nodes", nodes)
		list("storage", storage)
		list("value_sizes", sizes)
		list("keys", keys)
	}

	if sn := s.Snapshots; sn != nil {
		body.AppendNewline()
		b := body.AppendNewBlock("snapshots", nil).Body()
		b.SetAttributeValue("interval", dur(sn.Interval))
		b.SetAttributeValue("retain", cty.NumberIntVal(int64(sn.Retain)))
		store := sn.Store
		if store == "" {
			store = "file://" // the run directory
		}
		b.SetAttributeValue("store", cty.StringVal(store))
	}

	for _, ft := range s.Faults {
		body.AppendNewline()
		b := body.AppendNewBlock("fault", []string{string(ft.Kind)}).Body()
		takes := plainNames(faultAttrs[ft.Kind])
		has := func(n string) bool { return slices.Contains(takes, n) }
		b.SetAttributeValue("at", dur(ft.At))
		if has("target") {
			b.SetAttributeValue("target", cty.StringVal(ft.Target.String()))
		}
		if has("count") && (ft.Kind == KindUpgrade || ft.Target.Kind == TargetFollower || ft.Target.Kind == TargetRandom) {
			b.SetAttributeValue("count", cty.NumberIntVal(int64(ft.Count)))
		}
		if has("restart_after") && ft.Restart {
			b.SetAttributeValue("restart_after", dur(ft.RestartAfter))
		}
		if has("notice") {
			b.SetAttributeValue("notice", dur(ft.Notice))
		}
		if has("zone") {
			b.SetAttributeValue("zone", cty.StringVal(ft.Zone))
		}
		if has("disk") {
			b.SetAttributeValue("disk", cty.NumberIntVal(int64(ft.Disk)))
		}
		if has("replace") {
			b.SetAttributeValue("replace", cty.BoolVal(ft.Replace))
			b.SetAttributeValue("replace_after", dur(ft.ReplaceAfter))
		}
		if has("delay") {
			b.SetAttributeValue("delay", dur(ft.Delay))
			b.SetAttributeValue("jitter", dur(ft.Jitter))
			b.SetAttributeValue("loss", cty.NumberFloatVal(ft.Loss))
		}
		if has("duration") {
			b.SetAttributeValue("duration", dur(ft.Duration))
		}
		if has("isolate") && ft.Isolate {
			b.SetAttributeValue("isolate", cty.BoolVal(true))
		}
		if has("wait_healthy") {
			b.SetAttributeValue("wait_healthy", cty.BoolVal(ft.WaitHealthy))
			b.SetAttributeValue("leader_last", cty.BoolVal(ft.LeaderLast))
			b.SetAttributeValue("signal", cty.StringVal(string(ft.Signal)))
		}
		if has("snapshot") {
			b.SetAttributeValue("snapshot", cty.NumberIntVal(int64(ft.Snapshot)))
		}
		if ft.ToVersion != "" {
			b.SetAttributeValue("to_version", cty.StringVal(ft.ToVersion))
		}
		if ft.ToBin != "" {
			b.SetAttributeValue("to_bin", cty.StringVal(ft.ToBin))
		}
		if has("step_down") {
			b.SetAttributeValue("step_down", cty.BoolVal(ft.StepDown))
			b.SetAttributeValue("pause_between", dur(ft.PauseBetween))
		}
		if has("timeout") {
			b.SetAttributeValue("timeout", dur(ft.Timeout))
		}
	}

	e := s.Expect
	if e != (Expect{}) {
		body.AppendNewline()
		b := body.AppendNewBlock("expect", nil).Body()
		optDur := func(n string, d *time.Duration) {
			if d != nil {
				b.SetAttributeValue(n, dur(*d))
			}
		}
		optDur("max_unavailability", e.MaxUnavailability)
		optDur("max_read_unavailability", e.MaxReadUnavailability)
		if e.LostWrites != nil {
			b.SetAttributeValue("lost_writes", cty.NumberIntVal(int64(*e.LostWrites)))
		}
		optDur("healed_within", e.HealedWithin)
		optDur("leader_within", e.LeaderWithin)
		if e.NewLeader != nil {
			b.SetAttributeValue("new_leader", cty.BoolVal(*e.NewLeader))
		}
		optDur("p99_during_fault", e.P99DuringFault)
		optDur("p99", e.P99)
		if e.MinVotersAfter != nil {
			b.SetAttributeValue("min_voters_after", cty.NumberIntVal(int64(*e.MinVotersAfter)))
		}
		if e.DeadPeersRemoved != nil {
			b.SetAttributeValue("dead_peers_removed", cty.BoolVal(*e.DeadPeersRemoved))
		}
		if e.MaxErrorRate != nil {
			b.SetAttributeValue("max_error_rate", cty.NumberFloatVal(*e.MaxErrorRate))
		}
		optDur("unavailable_after", e.UnavailableAfter)
		if e.GeneratorLateSends != nil {
			b.SetAttributeValue("generator_late_sends", cty.NumberFloatVal(*e.GeneratorLateSends))
		}
		optDur("generator_max_lag", e.GeneratorMaxLag)
		if e.Linearizable != nil {
			b.SetAttributeValue("linearizable", cty.BoolVal(*e.Linearizable))
		}
		if e.RPOWrites != nil {
			b.SetAttributeValue("rpo_writes", cty.NumberIntVal(int64(*e.RPOWrites)))
		}
		optDur("rpo_seconds", e.RPOSeconds)
		optDur("rto", e.RTO)
		optDur("snapshot_p99", e.SnapshotP99)
		if e.VersionsAfter != nil {
			b.SetAttributeValue("versions_after", cty.StringVal(*e.VersionsAfter))
		}
		optDur("step_down_within", e.StepDownWithin)
		if e.ReadsThroughStandbys != nil {
			b.SetAttributeValue("reads_through_standbys", cty.BoolVal(*e.ReadsThroughStandbys))
		}
		if e.SealRestart != nil {
			b.SetAttributeValue("seal_restart", cty.BoolVal(*e.SealRestart))
		}
	}
	return hclwrite.Format(f.Bytes())
}

func comment(b *hclwrite.Body, text string) {
	b.AppendUnstructuredTokens(hclwrite.Tokens{{
		Type:  hclsyntax.TokenComment,
		Bytes: []byte("# " + strings.ReplaceAll(text, "\n", " ") + "\n"),
	}})
}

func dur(d time.Duration) cty.Value { return cty.StringVal(d.String()) }
