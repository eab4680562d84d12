package scenarios

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Defaults of fields a scenario may leave out.
const (
	DefaultNodes        = 5
	DefaultZones        = 3
	DefaultDiskSize     = 256 << 20
	DefaultDisksPerNode = 2
	DefaultRate         = 200
	DefaultKeys         = 1000
	DefaultValueSize    = 256
	DefaultMount        = "vaultstorm"
	DefaultLoadTarget   = "active"
	DefaultSpotNotice   = 2 * time.Minute // what AWS gives
	DefaultReplaceAfter = 30 * time.Second
	DefaultZoneReplace  = time.Minute
	DefaultNodeTimeout  = 2 * time.Minute
	DefaultHistoryKeys  = 16

	// The verdict's defaults (see Expect).
	DefaultUnavailableAfter   = time.Second
	DefaultGeneratorLateSends = 1.0 // percent of requests
	DefaultGeneratorMaxLag    = 100 * time.Millisecond
)

// Limits on what a scenario may ask for.
const (
	maxNodes        = 99 // node N is 127.0.0.(10+N); raft past 9 voters is already unusual
	maxDisksPerNode = 16
	maxValueSize    = 16 << 20 // well under Vault's 32 MiB max_request_size
	maxKeys         = 100_000_000
	maxRate         = 1_000_000
	maxWorkers      = 10_000
)

var (
	topSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "name"}, {Name: "description"}, {Name: "seed"}},
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "cluster"}, {Type: "load"}, {Type: "fault", LabelNames: []string{"kind"}}, {Type: "expect"},
		},
	}
	clusterAttrs = []string{"nodes", "provider", "storage", "disk_size", "disks_per_node",
		"vault_version", "vault_bin", "zones", "performance_multiplier"}
	loadAttrs = []string{"rate", "ramp_from", "ramp", "workers", "duration", "mix", "keys",
		"distribution", "value_size", "target", "mount", "tick", "history_keys"}
	expectAttrs = []string{"max_unavailability", "max_read_unavailability", "lost_writes",
		"healed_within", "leader_within", "new_leader", "p99_during_fault", "p99",
		"min_voters_after", "dead_peers_removed", "max_error_rate",
		"unavailable_after", "generator_late_sends", "generator_max_lag", "linearizable"}

	// faultAttrs lists what each kind takes; required ones are marked "!".
	faultAttrs = map[Kind][]string{
		KindKill:           {"!at", "!target", "count", "restart_after"},
		KindStop:           {"!at", "!target", "count", "restart_after"},
		KindPause:          {"!at", "!target", "count", "!duration"},
		KindSpotReclaim:    {"!at", "!target", "count", "notice", "replace", "replace_after"},
		KindZoneOutage:     {"!at", "!zone", "replace", "replace_after"},
		KindDiskLoss:       {"!at", "!target", "disk", "replace", "replace_after"},
		KindPartition:      {"!at", "!target", "!duration"},
		KindLatency:        {"!at", "!target", "delay", "jitter", "loss", "!duration"},
		KindRollingRestart: {"!at", "wait_healthy", "leader_last", "timeout", "signal"},
		KindRecoverQuorum:  {"!at", "timeout"},
	}

	nameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	versionRE = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$`)
	mountRE   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$`)
)

func schemaOf(names []string) *hcl.BodySchema {
	s := &hcl.BodySchema{}
	for _, n := range names {
		req := strings.HasPrefix(n, "!")
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: strings.TrimPrefix(n, "!"), Required: req})
	}
	return s
}

func plainNames(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.TrimPrefix(n, "!")
	}
	return out
}

// Parse reads a scenario from src; filename is used in diagnostics and, when
// the file sets no name, for the scenario's name. A rejected file gives an
// *Error listing every problem found, each with file:line:col.
func Parse(filename string, src []byte) (*Scenario, error) {
	p := &parser{}
	sc := p.parse(filename, src)
	files := map[string]*hcl.File{}
	if p.file != nil {
		files[filename] = p.file
	}
	// Report in file order, as a reader goes through the file.
	sort.SliceStable(p.diags, func(i, j int) bool {
		a, b := p.diags[i].Subject, p.diags[j].Subject
		if a == nil || b == nil {
			return a != nil
		}
		if a.Start.Line != b.Start.Line {
			return a.Start.Line < b.Start.Line
		}
		return a.Start.Column < b.Start.Column
	})
	if p.diags.HasErrors() {
		return nil, &Error{Diags: p.diags, Files: files}
	}
	for _, d := range p.diags {
		sc.Warnings = append(sc.Warnings, formatDiag(d))
	}
	sc.File = filename
	return sc, nil
}

type parser struct {
	diags hcl.Diagnostics
	file  *hcl.File
}

func (p *parser) errAt(r hcl.Range, summary, format string, a ...any) {
	rr := r
	p.diags = append(p.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, a...), Subject: &rr})
}

func (p *parser) warnAt(r hcl.Range, summary, format string, a ...any) {
	rr := r
	p.diags = append(p.diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: summary, Detail: fmt.Sprintf(format, a...), Subject: &rr})
}

// content checks a block body against the attribute names it takes and
// returns a decoder over them. Unknown attributes and nested blocks are
// reported by hcl itself, with a did-you-mean; we add the list of valid names.
func (p *parser) content(body hcl.Body, names []string, what string, def hcl.Range) *block {
	c, diags := body.Content(schemaOf(names))
	for _, d := range diags {
		switch d.Summary {
		case "Unsupported argument", "Unsupported block type":
			d.Detail += fmt.Sprintf(" %s takes: %s.", what, strings.Join(plainNames(names), ", "))
		case "Missing required argument":
			d.Detail = fmt.Sprintf("%s %s", what, strings.TrimPrefix(d.Detail, "The "))
		}
	}
	p.diags = append(p.diags, diags...)
	attrs := hcl.Attributes{}
	if c != nil {
		attrs = c.Attributes
	}
	return &block{diags: &p.diags, attrs: attrs, what: what, def: def}
}

func (p *parser) parse(filename string, src []byte) *Scenario {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	p.diags = append(p.diags, diags...)
	p.file = f
	if diags.HasErrors() || f == nil {
		return nil
	}
	c, diags := f.Body.Content(topSchema)
	p.diags = append(p.diags, diags...)
	if c == nil {
		return nil
	}
	fileStart := hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos}
	top := &block{diags: &p.diags, attrs: c.Attributes, what: "the scenario", def: fileStart}

	sc := &Scenario{TimeScale: 1}
	sc.Name = top.str("name", "")
	if sc.Name == "" && !top.has("name") {
		sc.Name = strings.TrimSuffix(filepath.Base(filename), filepath.Ext(filename))
	}
	if !nameRE.MatchString(sc.Name) {
		top.errf("name", "must be 1-64 letters, digits, '.', '_' or '-' starting with a letter or digit (it names the run directory), got %q", sc.Name)
	}
	sc.Description = top.str("description", "")
	sc.Seed = int64(top.integer("seed", 1, 0, 1<<53))

	byType := map[string][]*hcl.Block{}
	for _, b := range c.Blocks {
		byType[b.Type] = append(byType[b.Type], b)
	}
	for _, t := range []string{"cluster", "load", "expect"} {
		if bs := byType[t]; len(bs) > 1 {
			p.errAt(bs[1].DefRange, fmt.Sprintf("Duplicate %s block", t),
				"a scenario has one %s block; the first is at %s:%d:%d", t, bs[0].DefRange.Filename, bs[0].DefRange.Start.Line, bs[0].DefRange.Start.Column)
		}
	}

	p.cluster(sc, byType["cluster"])
	if len(byType["load"]) == 0 {
		p.errAt(fileStart, "Missing load block", "a scenario needs a load block with at least a duration, e.g. load { duration = \"2m\" }")
	} else {
		p.load(sc, byType["load"][0])
	}
	p.faults(sc, byType["fault"])
	if len(byType["expect"]) > 0 {
		p.expect(sc, byType["expect"][0])
	}
	return sc
}

func (p *parser) cluster(sc *Scenario, bs []*hcl.Block) {
	cl := &sc.Cluster
	*cl = Cluster{Nodes: DefaultNodes, Provider: ProviderProcess, Storage: StorageRAID0,
		DiskSize: DefaultDiskSize, DisksPerNode: DefaultDisksPerNode, Zones: DefaultZones}
	if len(bs) == 0 {
		return
	}
	b := p.content(bs[0].Body, clusterAttrs, "cluster", bs[0].DefRange)
	cl.Nodes = b.integer("nodes", DefaultNodes, 1, maxNodes)
	if cl.Nodes%2 == 0 {
		b.errf("nodes", "must be odd, got %d: raft needs a majority, and an even count adds a node to lose without adding a failure the cluster survives", cl.Nodes)
	}
	cl.Provider = b.enum("provider", ProviderProcess, ProviderProcess, ProviderDocker, ProviderExternal)
	cl.Storage = b.enum("storage", StorageRAID0, StorageRAID0, StorageDir)
	cl.DiskSize = b.size("disk_size", DefaultDiskSize, 16<<20, 1<<40)
	cl.DisksPerNode = b.integer("disks_per_node", DefaultDisksPerNode, 1, maxDisksPerNode)
	if cl.Storage == StorageRAID0 && cl.DisksPerNode < 2 {
		b.errf("disks_per_node", "must be at least 2 with storage = \"raid0\" (a one-disk stripe is not RAID0), got %d", cl.DisksPerNode)
	}
	cl.VaultVersion = b.str("vault_version", "")
	if cl.VaultVersion != "" && !versionRE.MatchString(cl.VaultVersion) {
		b.errf("vault_version", "must be a Vault release such as \"1.21.0\", got %q", cl.VaultVersion)
	}
	cl.VaultBin = b.str("vault_bin", "")
	if b.has("vault_bin") && cl.VaultBin == "" {
		b.errf("vault_bin", "must be a path to a vault binary, got an empty string")
	}
	if b.has("vault_version") && b.has("vault_bin") {
		b.errf("vault_bin", "give vault_version or vault_bin, not both")
	}
	zonesDef := min(DefaultZones, cl.Nodes)
	cl.Zones = b.integer("zones", zonesDef, 1, 26)
	if cl.Zones > cl.Nodes {
		b.errf("zones", "must not exceed nodes (%d), got %d: a zone with no node is not a zone of this cluster", cl.Nodes, cl.Zones)
		cl.Zones = zonesDef
	}
	cl.PerformanceMultiplier = b.integer("performance_multiplier", 0, 0, 10)
}

func (p *parser) load(sc *Scenario, hb *hcl.Block) {
	b := p.content(hb.Body, loadAttrs, "load", hb.DefRange)
	// Content reports a missing duration only if marked required; we do it
	// here so the message says what the duration is for.
	l := &sc.Load
	l.Workers = b.integer("workers", 0, 0, maxWorkers)
	l.Rate = b.float("rate", DefaultRate, 0, maxRate)
	if b.has("rate") && l.Rate <= 0 {
		b.errf("rate", "must be above 0 requests per second, got %g", l.Rate)
	}
	l.RampFrom = b.float("ramp_from", l.Rate, 0, maxRate)
	l.Ramp = b.duration("ramp", 0)
	if b.has("ramp_from") && !b.has("ramp") {
		b.errf("ramp_from", "needs ramp, the time to go from ramp_from to rate, e.g. ramp = \"30s\"")
	}
	if l.Workers > 0 && (b.has("rate") || b.has("ramp")) {
		b.errf("workers", "workers makes the load closed-loop (as fast as it goes); it cannot be combined with rate or ramp")
	}
	if !b.has("duration") {
		p.errAt(hb.DefRange, "Missing required argument", `load needs "duration", how long the load runs, e.g. duration = "2m"`)
	}
	l.Duration = b.duration("duration", time.Minute)
	if b.has("duration") && l.Duration < time.Second {
		b.errf("duration", "must be at least 1s, got %s", l.Duration)
		l.Duration = time.Minute
	}
	if l.Ramp > l.Duration {
		b.errf("ramp", "must not be longer than the load duration (%s), got %s", l.Duration, l.Ramp)
	}
	l.Mix = Mix{Read: 80, Write: 20}
	if s := b.str("mix", "\x00"); s != "\x00" {
		if m, err := parseMix(s); err != nil {
			b.errf("mix", "%v", err)
		} else {
			l.Mix = m
		}
	}
	l.Keys = b.integer("keys", DefaultKeys, 1, maxKeys)
	l.Distribution = b.enum("distribution", "uniform", "uniform", "zipfian")
	l.ValueSize = int(b.size("value_size", DefaultValueSize, 1, maxValueSize))
	l.Target = b.str("target", DefaultLoadTarget)
	if l.Target != "active" && l.Target != "all" && !slices.Contains(sc.Cluster.NodeNames(), l.Target) {
		b.errf("target", "must be \"active\", \"all\" or a node name (%s), got %q.%s", nodeRange(sc.Cluster), l.Target,
			suggest(l.Target, append([]string{"active", "all"}, sc.Cluster.NodeNames()...)))
	}
	l.Tick = b.duration("tick", 0)
	if l.Tick > time.Second {
		b.errf("tick", "must be at most 1s (0: each request at its own time), got %s", l.Tick)
		l.Tick = 0
	}
	l.HistoryKeys = b.integer("history_keys", min(DefaultHistoryKeys, l.Keys), 0, l.Keys)
	l.Mount = b.str("mount", DefaultMount)
	if !mountRE.MatchString(l.Mount) || strings.Contains(l.Mount, "..") || strings.HasPrefix(l.Mount, "sys") {
		b.errf("mount", "must be a mount path such as \"kv\" or \"team/kv\" (no leading or trailing slash, not under sys/), got %q", l.Mount)
	}
}

func nodeRange(c Cluster) string {
	if c.Nodes == 1 {
		return "node1"
	}
	return fmt.Sprintf("node1…node%d", c.Nodes)
}

func zoneRange(c Cluster) string {
	if c.Zones == 1 {
		return "zone-a"
	}
	return fmt.Sprintf("zone-a…%s", zoneName(c.Zones-1))
}

// faultPos keeps what cross-fault checks need to point at.
type faultPos struct {
	b  *block
	at hcl.Range
	// lostForGood: nodes this fault removes for good (data gone, or killed
	// with no restart); more than nodes-quorum means quorum is gone.
	lostForGood int
}

func (p *parser) faults(sc *Scenario, bs []*hcl.Block) {
	kinds := make([]string, len(Kinds))
	for i, k := range Kinds {
		kinds[i] = string(k)
	}
	var pos []faultPos
	for _, hb := range bs {
		if len(hb.Labels) != 1 {
			continue // hcl has reported the label count
		}
		kind := Kind(hb.Labels[0])
		names, ok := faultAttrs[kind]
		if !ok {
			p.errAt(hb.LabelRanges[0], "Unknown fault kind",
				"%q is not a fault kind; use one of %s.%s", hb.Labels[0], strings.Join(kinds, ", "), suggest(hb.Labels[0], kinds))
			continue
		}
		b := p.content(hb.Body, names, fmt.Sprintf("fault %q", kind), hb.DefRange)
		f := p.fault(sc, kind, b)
		f.Index = len(sc.Faults) + 1
		sc.Faults = append(sc.Faults, f)
		pos = append(pos, faultPos{b: b, at: b.rng("at"), lostForGood: lostForGood(sc.Cluster, f)})
	}

	tolerable := sc.Cluster.Nodes - sc.Cluster.Quorum()
	for i, f := range sc.Faults {
		b := pos[i].b
		if f.At >= sc.Load.Duration {
			b.errf("at", "%s is not before the end of the load (duration %s): the fault would happen with nothing measuring it", f.At, sc.Load.Duration)
		} else if f.End() > sc.Load.Duration {
			b.warnf("at", "the fault lasts until %s, after the load ends at %s: its end is not measured under load", f.End(), sc.Load.Duration)
		}
		if i > 0 && f.At < sc.Faults[i-1].At {
			b.errf("at", "faults must be listed in the order they happen: %s is before the previous fault's at (%s)", f.At, sc.Faults[i-1].At)
		}
		if pos[i].lostForGood > tolerable && f.Kind != KindRecoverQuorum {
			recovered := false
			for _, g := range sc.Faults[i+1:] {
				recovered = recovered || g.Kind == KindRecoverQuorum
			}
			if !recovered {
				p.warnAt(pos[i].b.def, "Quorum lost for good",
					"this %s removes %d of %d voters for good (quorum is %d): the cluster cannot elect a leader or admit replacements until a fault \"recover_quorum\" performs the peers.json outage recovery",
					f.Kind, pos[i].lostForGood, sc.Cluster.Nodes, sc.Cluster.Quorum())
			}
		}
		if f.Kind == KindRecoverQuorum {
			var loser *Fault
			for j := i - 1; j >= 0 && loser == nil; j-- {
				if pos[j].lostForGood > tolerable {
					loser = &sc.Faults[j]
				}
			}
			if loser == nil {
				b.warnf("at", "no earlier fault loses quorum (more than %d of %d nodes for good): there is nothing to recover, and peers.json recovery of a healthy cluster only restarts it", tolerable, sc.Cluster.Nodes)
			} else if f.At < loser.End() {
				b.errf("at", "%s is before fault %d (%s) has taken its nodes (at %s): recovery must come after the loss", f.At, loser.Index, loser.Kind, loser.End())
			}
		}
	}
}

func lostForGood(c Cluster, f Fault) int {
	switch f.Kind {
	case KindKill, KindStop:
		if !f.Restart {
			return f.Count
		}
	case KindSpotReclaim, KindDiskLoss:
		return f.Count
	case KindZoneOutage:
		if f.Zone == "leader" || f.Zone == "random" {
			most := 0
			for _, z := range c.ZoneNames() {
				most = max(most, len(c.ZoneNodes(z)))
			}
			return most
		}
		return len(c.ZoneNodes(f.Zone))
	}
	return 0
}

func (p *parser) fault(sc *Scenario, kind Kind, b *block) Fault {
	cl := sc.Cluster
	f := Fault{Kind: kind, Count: 1}
	f.At = b.duration("at", 0)
	if b.has("target") {
		f.Target = p.target(cl, b)
		if f.Target.Kind == TargetZone {
			f.Count = len(cl.ZoneNodes(f.Target.Name))
		}
	}
	if b.has("count") {
		max := cl.Nodes
		switch f.Target.Kind {
		case TargetFollower:
			max = cl.Nodes - 1
		case TargetLeader, TargetNode, TargetZone:
			b.errf("count", "only a follower or random target picks several nodes; target %q is %s", f.Target.String(),
				map[TargetKind]string{TargetLeader: "one node", TargetNode: "one node", TargetZone: "every node of the zone"}[f.Target.Kind])
		}
		if max < 1 {
			b.errf("count", "a 1-node cluster has no follower to pick")
			max = 1
		}
		f.Count = b.integer("count", 1, 1, max)
	}
	if f.Target.Kind == TargetFollower && cl.Nodes == 1 {
		b.errf("target", "a 1-node cluster has no follower")
	}

	switch kind {
	case KindKill, KindStop:
		if b.has("restart_after") {
			f.Restart = true
			f.RestartAfter = b.duration("restart_after", 0)
		}
	case KindPause, KindPartition:
		f.Duration = b.duration("duration", 0)
		if b.has("duration") && f.Duration == 0 {
			b.errf("duration", "must be above 0s")
		}
		if kind == KindPartition && cl.Nodes == 1 {
			b.errf("target", "a 1-node cluster has no peer to be partitioned from")
		}
		if kind == KindPartition && f.Target.Kind == TargetZone && cl.Zones == 1 {
			b.errf("target", "with one zone, a zone has no peers outside it to be cut off from")
		}
	case KindSpotReclaim:
		f.Notice = b.duration("notice", DefaultSpotNotice)
		f.Replace = b.boolean("replace", true)
		f.ReplaceAfter = b.duration("replace_after", DefaultReplaceAfter)
	case KindZoneOutage:
		f.Zone = b.str("zone", "")
		if b.has("zone") && f.Zone != "leader" && f.Zone != "random" && !slices.Contains(cl.ZoneNames(), f.Zone) {
			b.errf("zone", "must be a zone of the cluster (%s), \"leader\" (the active node's zone) or \"random\", got %q.%s",
				zoneRange(cl), f.Zone, suggest(f.Zone, append([]string{"leader", "random"}, cl.ZoneNames()...)))
		}
		f.Count = lostForGood(cl, f)
		f.Replace = b.boolean("replace", true)
		f.ReplaceAfter = b.duration("replace_after", DefaultZoneReplace)
	case KindDiskLoss:
		if cl.Storage != StorageRAID0 {
			b.errf("at", "disk_loss needs cluster storage = \"raid0\"; this cluster's storage is %q, which has no member disks", cl.Storage)
		}
		f.Disk = b.integer("disk", 0, 0, maxDisksPerNode-1)
		if f.Disk >= cl.DisksPerNode {
			b.errf("disk", "must be a member index from 0 to %d (disks_per_node = %d), got %d", cl.DisksPerNode-1, cl.DisksPerNode, f.Disk)
		}
		f.Replace = b.boolean("replace", true)
		f.ReplaceAfter = b.duration("replace_after", DefaultReplaceAfter)
	case KindLatency:
		f.Duration = b.duration("duration", 0)
		f.Delay = b.duration("delay", 0)
		f.Jitter = b.duration("jitter", 0)
		f.Loss = b.float("loss", 0, 0, 100)
		if b.has("duration") && f.Duration == 0 {
			b.errf("duration", "must be above 0s")
		}
		if f.Jitter > f.Delay {
			b.errf("jitter", "must not exceed delay (%s), got %s: jitter is ± around the delay", f.Delay, f.Jitter)
		}
		if f.Delay > time.Minute {
			b.errf("delay", "must be at most 1m, got %s", f.Delay)
		}
		if f.Delay == 0 && f.Loss == 0 && !b.has("delay") && !b.has("loss") {
			b.errf("delay", "a latency fault needs a delay, a loss or both, e.g. delay = \"200ms\"")
		}
	case KindRollingRestart:
		f.WaitHealthy = b.boolean("wait_healthy", true)
		f.LeaderLast = b.boolean("leader_last", true)
		f.Timeout = b.duration("timeout", DefaultNodeTimeout)
		f.Signal = Kind(b.enum("signal", string(KindStop), string(KindStop), string(KindKill)))
		f.Count = cl.Nodes
	case KindRecoverQuorum:
		f.Timeout = b.duration("timeout", DefaultNodeTimeout)
	}
	if (f.Kind == KindRollingRestart || f.Kind == KindRecoverQuorum) && f.Timeout == 0 && b.has("timeout") {
		b.errf("timeout", "must be above 0s")
	}
	return f
}

// target parses `target`: leader | follower | random | nodeN | zone-x.
func (p *parser) target(cl Cluster, b *block) Target {
	s := b.str("target", "")
	switch s {
	case "leader", "follower", "random":
		return Target{Kind: TargetKind(s)}
	}
	if slices.Contains(cl.ZoneNames(), s) {
		return Target{Kind: TargetZone, Name: s}
	}
	if n, ok := strings.CutPrefix(s, "node"); ok {
		if i, err := strconv.Atoi(n); err == nil && i >= 1 {
			if i > cl.Nodes {
				b.errf("target", "there is no %q in a %d-node cluster (%s)", s, cl.Nodes, nodeRange(cl))
				return Target{Kind: TargetRandom}
			}
			return Target{Kind: TargetNode, Name: NodeName(i)}
		}
	}
	if strings.HasPrefix(s, "zone-") {
		b.errf("target", "there is no %q in a cluster with %d zones (%s)", s, cl.Zones, zoneRange(cl))
		return Target{Kind: TargetRandom}
	}
	opts := append([]string{"leader", "follower", "random"}, cl.NodeNames()...)
	b.errf("target", "must be \"leader\", \"follower\", \"random\", a node name (%s) or a zone (%s), got %q.%s",
		nodeRange(cl), zoneRange(cl), s, suggest(s, append(opts, cl.ZoneNames()...)))
	return Target{Kind: TargetRandom}
}

func (p *parser) expect(sc *Scenario, hb *hcl.Block) {
	b := p.content(hb.Body, expectAttrs, "expect", hb.DefRange)
	e := &sc.Expect
	e.MaxUnavailability = b.optDuration("max_unavailability")
	e.MaxReadUnavailability = b.optDuration("max_read_unavailability")
	e.HealedWithin = b.optDuration("healed_within")
	e.LeaderWithin = b.optDuration("leader_within")
	e.P99DuringFault = b.optDuration("p99_during_fault")
	e.P99 = b.optDuration("p99")
	for _, n := range []string{"healed_within", "leader_within", "p99_during_fault", "p99"} {
		if d := b.optDuration0(n); d != nil && *d == 0 {
			b.errf(n, "must be above 0s: nothing happens in no time")
		}
	}
	if b.has("lost_writes") {
		n := b.integer("lost_writes", 0, 0, 1<<53)
		e.LostWrites = &n
	}
	if b.has("new_leader") {
		v := b.boolean("new_leader", false)
		e.NewLeader = &v
	}
	if b.has("min_voters_after") {
		n := b.integer("min_voters_after", 1, 1, sc.Cluster.Nodes)
		e.MinVotersAfter = &n
	}
	if b.has("dead_peers_removed") {
		v := b.boolean("dead_peers_removed", false)
		e.DeadPeersRemoved = &v
	}
	if b.has("max_error_rate") {
		v := b.float("max_error_rate", 0, 0, 100)
		e.MaxErrorRate = &v
	}
	e.UnavailableAfter = b.optDuration("unavailable_after")
	e.GeneratorMaxLag = b.optDuration("generator_max_lag")
	for _, n := range []string{"unavailable_after", "generator_max_lag"} {
		if d := b.optDuration0(n); d != nil && *d <= 0 {
			b.errf(n, "must be above 0s")
		}
	}
	if b.has("generator_late_sends") {
		v := b.float("generator_late_sends", DefaultGeneratorLateSends, 0, 100)
		e.GeneratorLateSends = &v
	}
	if b.has("linearizable") {
		v := b.boolean("linearizable", true)
		e.Linearizable = &v
		if v && sc.Load.HistoryKeys == 0 {
			b.errf("linearizable", "needs a history to check: history_keys in the load block is 0")
		}
	}
	if len(sc.Faults) == 0 {
		for _, n := range []string{"healed_within", "leader_within", "p99_during_fault", "new_leader", "max_read_unavailability"} {
			if b.has(n) {
				b.warnf(n, "this scenario has no fault, so %s has nothing to measure", n)
			}
		}
	}
}

// optDuration0 re-reads a duration without reporting again (it was reported
// by optDuration); used for follow-up checks on valid values.
func (b *block) optDuration0(name string) *time.Duration {
	a, ok := b.attrs[name]
	if !ok {
		return nil
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() || v.IsNull() || !v.IsWhollyKnown() || v.Type().FriendlyName() != "string" {
		return nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(v.AsString()))
	if err != nil {
		return nil
	}
	return &d
}
