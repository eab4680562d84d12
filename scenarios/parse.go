package scenarios

import (
	"fmt"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/vaultstorm/vaultstorm/load"
)

// Defaults of fields a scenario may leave out.
const (
	DefaultNodes        = 5
	DefaultZones        = 3
	DefaultDiskSize     = 256 << 20
	DefaultDisksPerNode = 2
	// DefaultRate is what a 2-core machine running five nodes, the seal
	// and the generator sustains with a valid generator (see the README).
	DefaultRate = 100
	// DefaultLateThreshold is when a send counts as late in a scenario run:
	// with five Vault nodes on the same two cores, the generator's wake-ups
	// slip by 2-5 ms routinely (4-8 % of sends at 100/s were over 2 ms,
	// under 1 % over 10 ms), and a lag that small only ever adds to the
	// latency recorded, never hides it.
	DefaultLateThreshold = 10 * time.Millisecond
	DefaultKeys          = 1000
	DefaultValueSize     = 256
	DefaultMount         = "vaultstorm"
	DefaultLoadTarget    = "active"
	DefaultSpotNotice    = 2 * time.Minute // what AWS gives
	DefaultReplaceAfter  = 30 * time.Second
	DefaultZoneReplace   = time.Minute
	DefaultNodeTimeout   = 2 * time.Minute
	DefaultHistoryKeys   = 16

	DefaultSnapshotRetain = 5
	DefaultRestoreTimeout = 5 * time.Minute // provision, init, restore, unseal, join

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
	maxRetain       = 1000
)

var (
	topSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "name"}, {Name: "description"}, {Name: "seed"}},
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "cluster"}, {Type: "load"}, {Type: "snapshots"}, {Type: "fault", LabelNames: []string{"kind"}}, {Type: "expect"}, {Type: "capacity"},
		},
	}

	// faultAttrs lists what each kind takes; required ones are marked "!".
	faultAttrs = map[Kind][]string{
		KindKill:           {"!at", "!target", "count", "restart_after"},
		KindStop:           {"!at", "!target", "count", "restart_after"},
		KindPause:          {"!at", "!target", "count", "!duration"},
		KindSpotReclaim:    {"!at", "!target", "count", "notice", "replace", "replace_after"},
		KindZoneOutage:     {"!at", "!zone", "replace", "replace_after"},
		KindDiskLoss:       {"!at", "!target", "disk", "replace", "replace_after"},
		KindPartition:      {"!at", "!target", "!duration", "isolate"},
		KindLatency:        {"!at", "!target", "delay", "jitter", "loss", "!duration"},
		KindRollingRestart: {"!at", "wait_healthy", "leader_last", "timeout", "signal"},
		KindRecoverQuorum:  {"!at", "timeout"},
		KindTotalLoss:      {"!at"},
		KindRestore:        {"!at", "snapshot", "timeout"},
		KindUpgrade:        {"!at", "to_version", "to_bin", "count", "step_down", "pause_between", "timeout"},
	}

	nameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	versionRE = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$`)
	mountRE   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$`)
)

// faultSchema is the schema of a fault kind: the Fault fields it takes,
// marked required as faultAttrs says.
func faultSchema(kind Kind) *hcl.BodySchema {
	s := &hcl.BodySchema{}
	for _, n := range faultAttrs[kind] {
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: strings.TrimPrefix(n, "!"), Required: strings.HasPrefix(n, "!")})
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
	// versionAfter is the version every node runs once the faults are
	// over, as far as the file tells ("": unknown or mixed).
	versionAfter string
}

func (p *parser) errAt(r hcl.Range, summary, format string, a ...any) {
	rr := r
	p.diags = append(p.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, a...), Subject: &rr})
}

func (p *parser) warnAt(r hcl.Range, summary, format string, a ...any) {
	rr := r
	p.diags = append(p.diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: summary, Detail: fmt.Sprintf(format, a...), Subject: &rr})
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
	sc := &Scenario{TimeScale: 1, Seed: 1, Name: strings.TrimSuffix(filepath.Base(filename), filepath.Ext(filename))}
	top := &block{p: p, attrs: c.Attributes, what: "the scenario", def: fileStart, fields: map[string][2]reflect.Value{}}
	top.assign(sc)
	if !nameRE.MatchString(sc.Name) {
		top.reject("name", "must be 1-64 letters, digits, '.', '_' or '-' starting with a letter or digit (it names the run directory), got %q", sc.Name)
	}
	intIn(top, "seed", &sc.Seed, 0, 1<<53)

	byType := map[string][]*hcl.Block{}
	for _, b := range c.Blocks {
		byType[b.Type] = append(byType[b.Type], b)
	}
	for _, t := range []string{"cluster", "load", "snapshots", "expect", "capacity"} {
		if bs := byType[t]; len(bs) > 1 {
			p.errAt(bs[1].DefRange, fmt.Sprintf("Duplicate %s block", t),
				"a scenario has one %s block; the first is at %s:%d:%d", t, bs[0].DefRange.Filename, bs[0].DefRange.Start.Line, bs[0].DefRange.Start.Column)
		}
	}

	p.cluster(sc, byType["cluster"])
	capBlocks := byType["capacity"]
	switch {
	case len(byType["load"]) > 0:
		p.load(sc, byType["load"][0], len(capBlocks) > 0)
	case len(capBlocks) > 0:
		p.loadDefaults(sc)
	default:
		p.errAt(fileStart, "Missing load block", "a scenario needs a load block with at least a duration, e.g. load { duration = \"2m\" }")
	}
	if len(capBlocks) > 0 {
		p.capacity(sc, capBlocks[0], byType)
	}
	if len(byType["snapshots"]) > 0 {
		p.snapshots(sc, byType["snapshots"][0])
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
	b := p.decode(bs[0], "cluster", cl)
	if intIn(b, "nodes", &cl.Nodes, 1, maxNodes) && cl.Nodes%2 == 0 {
		b.reject("nodes", "must be odd, got %d: raft needs a majority, and an even count adds a node to lose without adding a failure the cluster survives", cl.Nodes)
	}
	oneOf(b, "provider", cl.Provider, ProviderProcess, ProviderDocker, ProviderExternal)
	oneOf(b, "storage", cl.Storage, StorageRAID0, StorageDir)
	b.sizeIn("disk_size", cl.DiskSize, 16<<20, 1<<40)
	if intIn(b, "disks_per_node", &cl.DisksPerNode, 1, maxDisksPerNode) && cl.Storage == StorageRAID0 && cl.DisksPerNode < 2 {
		b.reject("disks_per_node", "must be at least 2 with storage = \"raid0\" (a one-disk stripe is not RAID0), got %d", cl.DisksPerNode)
	}
	if cl.VaultVersion != "" && !versionRE.MatchString(cl.VaultVersion) {
		b.reject("vault_version", "must be a Vault release such as \"1.21.0\", got %q", cl.VaultVersion)
	}
	if b.ok("vault_bin") && cl.VaultBin == "" {
		b.errf("vault_bin", "must be a path to a vault binary, got an empty string")
	}
	if b.has("vault_version") && b.has("vault_bin") {
		b.errf("vault_bin", "give vault_version or vault_bin, not both")
	}
	if !b.has("zones") {
		cl.Zones = min(DefaultZones, cl.Nodes)
	}
	if intIn(b, "zones", &cl.Zones, 1, 26) && cl.Zones > cl.Nodes {
		b.reject("zones", "must not exceed nodes (%d), got %d: a zone with no node is not a zone of this cluster", cl.Nodes, cl.Zones)
	}
	intIn(b, "performance_multiplier", &cl.PerformanceMultiplier, 0, 10)
	if b.has("inventory") && cl.Provider != ProviderExternal {
		b.errf("inventory", "an inventory describes a cluster vaultstorm did not make: it goes with provider = \"external\"")
	}
	if cl.Inventory != "" && !filepath.IsAbs(cl.Inventory) {
		cl.Inventory = filepath.Join(filepath.Dir(b.def.Filename), cl.Inventory)
	}
	if cl.Provider == ProviderExternal {
		for _, a := range []string{"storage", "disk_size", "disks_per_node", "vault_version", "vault_bin"} {
			if b.has(a) {
				b.errf(a, "means nothing for an external cluster: vaultstorm neither makes its disks nor runs its binary")
			}
		}
	}
}

// loadDefaults is the load block a file without one gets (a capacity
// search sets its own rates and durations).
func (p *parser) loadDefaults(sc *Scenario) {
	sc.Load = LoadSpec{Rate: DefaultRate, Duration: time.Minute, Mix: load.DefaultMix, Keys: DefaultKeys,
		Distribution: load.Uniform, ValueSize: DefaultValueSize, Target: DefaultLoadTarget, Mount: DefaultMount,
		LateThreshold: DefaultLateThreshold, HistoryKeys: DefaultHistoryKeys, RampFrom: DefaultRate}
}

// load decodes the load block; in a capacity file its duration is not
// needed (each step has its own).
func (p *parser) load(sc *Scenario, hb *hcl.Block, capacity bool) {
	p.loadDefaults(sc)
	l := &sc.Load
	b := p.decode(hb, "load", l)
	intIn(b, "workers", &l.Workers, 0, maxWorkers)
	if b.floatIn("rate", &l.Rate, 0, maxRate) && b.has("rate") && l.Rate <= 0 {
		b.reject("rate", "must be above 0 requests per second, got %g", l.Rate)
	}
	if !b.has("ramp_from") || !b.floatIn("ramp_from", &l.RampFrom, 0, maxRate) {
		l.RampFrom = l.Rate
	}
	if b.has("ramp_from") && !b.has("ramp") {
		b.errf("ramp_from", "needs ramp, the time to go from ramp_from to rate, e.g. ramp = \"30s\"")
	}
	if l.Workers > 0 && (b.has("rate") || b.has("ramp")) {
		b.errf("workers", "workers makes the load closed-loop (as fast as it goes); it cannot be combined with rate or ramp")
	}
	// Not marked required in the schema, so the message can say what the
	// duration is for.
	if !b.has("duration") && !capacity {
		p.errAt(hb.DefRange, "Missing required argument", `load needs "duration", how long the load runs, e.g. duration = "2m"`)
	}
	if l.Duration < time.Second {
		b.reject("duration", "must be at least 1s, got %s", l.Duration)
	}
	if l.Ramp > l.Duration {
		b.errf("ramp", "must not be longer than the load duration (%s), got %s", l.Duration, l.Ramp)
	}
	intIn(b, "keys", &l.Keys, 1, maxKeys)
	b.sizeIn("value_size", int64(l.ValueSize), 1, maxValueSize)
	if l.Target != "active" && l.Target != "all" && !slices.Contains(sc.Cluster.NodeNames(), l.Target) {
		b.errf("target", "must be \"active\", \"all\" or a node name (%s), got %q.%s", nodeRange(sc.Cluster), l.Target,
			suggest(l.Target, append([]string{"active", "all"}, sc.Cluster.NodeNames()...)))
	}
	if l.Tick > time.Second {
		b.reject("tick", "must be at most 1s (0: each request at its own time), got %s", l.Tick)
	}
	if l.LateThreshold <= 0 || l.LateThreshold > time.Second {
		b.reject("late_threshold", "must be above 0 and at most 1s, got %s", l.LateThreshold)
	}
	if !b.has("history_keys") {
		l.HistoryKeys = min(DefaultHistoryKeys, l.Keys)
	}
	intIn(b, "history_keys", &l.HistoryKeys, 0, l.Keys)
	if !mountRE.MatchString(l.Mount) || strings.Contains(l.Mount, "..") || strings.HasPrefix(l.Mount, "sys") {
		b.errf("mount", "must be a mount path such as \"kv\" or \"team/kv\" (no leading or trailing slash, not under sys/), got %q", l.Mount)
	}
}

func (p *parser) snapshots(sc *Scenario, hb *hcl.Block) {
	s := &SnapshotSpec{Retain: DefaultSnapshotRetain}
	sc.Snapshots = s
	b := p.decode(hb, "snapshots", s)
	if b.ok("interval") && s.Interval < time.Second {
		b.reject("interval", "must be at least 1s, got %s", s.Interval)
	} else if s.Interval >= sc.Load.Duration {
		b.warnf("interval", "no snapshot is taken while the load runs (duration %s)", sc.Load.Duration)
	}
	intIn(b, "retain", &s.Retain, 1, maxRetain)
	if store, err := snapshotStore(s.Store); err != nil {
		b.reject("store", "%v", err)
	} else {
		s.Store = store
	}
}

var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// snapshotStore checks a snapshot store URL (see SnapshotSpec.Store) and
// returns it in canonical form: "file://" is "", the run directory.
func snapshotStore(s string) (string, error) {
	scheme, rest, isURL := strings.Cut(s, "://")
	switch {
	case s == "" || s == "file://":
		return "", nil
	case isURL && scheme == "file":
		if !strings.HasPrefix(rest, "/") {
			return "", fmt.Errorf("a file:// store needs an absolute path, like \"file:///var/backups/vault\" (three slashes), got %q; leave store out for a directory in the run directory", s)
		}
		if _, err := url.Parse(s); err != nil {
			return "", fmt.Errorf("%q is not a URL: %v", s, err)
		}
		return s, nil
	case isURL && scheme == "s3":
		u, err := url.Parse(s)
		switch {
		case err != nil:
			return "", fmt.Errorf("%q is not a URL: %v", s, err)
		case !bucketRE.MatchString(u.Host):
			return "", fmt.Errorf("an s3:// store starts with a bucket name (3-63 lowercase letters, digits, '.' or '-'), like \"s3://vault-snapshots?region=us-east-1\", got %q", s)
		case u.Path != "" && u.Path != "/":
			return "", fmt.Errorf("an s3:// store names a bucket only, with options after '?' (region, endpoint, …), got the path %q", u.Path)
		}
		return s, nil
	case isURL && (scheme == "gs" || scheme == "azblob" || scheme == "mem"):
		return "", fmt.Errorf("%s:// stores are not supported: use file:// or s3:// (any S3-compatible store, through its endpoint), got %q", scheme, s)
	case strings.HasPrefix(s, "/"):
		return "", fmt.Errorf("must be a URL, got the path %q. Did you mean %q?", s, "file://"+s)
	}
	hint := ""
	if isURL {
		hint = suggest(scheme+"://", []string{"file://", "s3://"})
	}
	return "", fmt.Errorf("must be \"file:///ABSOLUTE/DIR\" or \"s3://BUCKET?region=…&endpoint=…\" (or left out: a directory in the run directory), got %q.%s", s, hint)
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

func (p *parser) faults(sc *Scenario, bs []*hcl.Block) {
	kinds := make([]string, len(Kinds))
	for i, k := range Kinds {
		kinds[i] = string(k)
	}
	var blocks []*block // of each fault, for cross-fault checks
	for _, hb := range bs {
		if len(hb.Labels) != 1 {
			continue // hcl has reported the label count
		}
		kind := Kind(hb.Labels[0])
		if _, ok := faultAttrs[kind]; !ok {
			p.errAt(hb.LabelRanges[0], "Unknown fault kind",
				"%q is not a fault kind; use one of %s.%s", hb.Labels[0], strings.Join(kinds, ", "), suggest(hb.Labels[0], kinds))
			continue
		}
		f, b := p.fault(sc, kind, hb)
		f.Index = len(sc.Faults) + 1
		sc.Faults = append(sc.Faults, f)
		blocks = append(blocks, b)
	}

	tolerable := sc.Cluster.Nodes - sc.Cluster.Quorum()
	gone := -1 // index of the total_loss no restore has answered yet
	// The version every node runs (all; "" = unknown or mixed) and the
	// active node's, as far as the file tells.
	all, active := sc.Cluster.VaultVersion, sc.Cluster.VaultVersion
	for i, f := range sc.Faults {
		b := blocks[i]
		if f.At >= sc.Load.Duration {
			b.errf("at", "%s is not before the end of the load (duration %s): the fault would happen with nothing measuring it", f.At, sc.Load.Duration)
		} else if f.End() > sc.Load.Duration {
			b.warnf("at", "the fault lasts until %s, after the load ends at %s: its end is not measured under load", f.End(), sc.Load.Duration)
		}
		if i > 0 && f.At < sc.Faults[i-1].At {
			b.errf("at", "faults must be listed in the order they happen: %s is before the previous fault's at (%s)", f.At, sc.Faults[i-1].At)
		}
		later := func(k Kind) bool {
			return slices.ContainsFunc(sc.Faults[i+1:], func(g Fault) bool { return g.Kind == k })
		}
		switch {
		case f.Kind == KindRestore:
			if sc.Snapshots == nil {
				p.errAt(b.def, "Restore without snapshots", "a restore needs a snapshots block, which takes the snapshots it restores from")
			}
			if gone < 0 {
				p.errAt(b.def, "Restore without a total loss",
					"a restore brings up a brand-new cluster from a snapshot after a fault \"total_loss\" (earlier, with no restore since) has destroyed the old one")
				break
			}
			loss := sc.Faults[gone]
			gone = -1
			all, active = "", "" // which binary the new cluster runs is the runner's choice
			if sn := sc.Snapshots; sn != nil && sn.Interval > 0 {
				if f.Snapshot >= sn.Retain {
					b.reject("snapshot", "only the newest %d snapshots are kept (retain = %d), so snapshot %d (0 = the latest) is gone", sn.Retain, sn.Retain, f.Snapshot)
				} else if taken := int(loss.At / sn.Interval); f.Snapshot >= taken {
					b.warnf("snapshot", "by the total loss at %s, one snapshot every %s makes %d: there is no snapshot %d (0 = the latest)", loss.At, sn.Interval, taken, f.Snapshot)
				}
			}
		case gone >= 0:
			b.errf("at", "every node is gone since fault %d (total_loss at %s) and no restore has brought a cluster back: this %s has nothing to act on",
				gone+1, sc.Faults[gone].At, f.Kind)
		case f.Kind == KindTotalLoss:
			gone = i
			if !later(KindRestore) {
				p.warnAt(b.def, "Total loss without restore",
					"nothing brings a cluster back after this total_loss: the rest of the run measures a cluster that is not there; add a fault \"restore\" after it")
			}
		case f.Kind == KindUpgrade:
			all, active = p.upgrade(sc, f, b, all, active)
		}
		if lost := lostForGood(sc.Cluster, f); lost > tolerable && f.Kind != KindRecoverQuorum && f.Kind != KindTotalLoss && !later(KindRecoverQuorum) {
			p.warnAt(b.def, "Quorum lost for good",
				"this %s removes %d of %d voters for good (quorum is %d): the cluster cannot elect a leader or admit replacements until a fault \"recover_quorum\" performs the peers.json outage recovery",
				f.Kind, lost, sc.Cluster.Nodes, sc.Cluster.Quorum())
		}
		if f.Kind == KindRecoverQuorum && gone < 0 {
			var loser *Fault
			for j := i - 1; j >= 0 && loser == nil && sc.Faults[j].Kind != KindRestore; j-- {
				if lostForGood(sc.Cluster, sc.Faults[j]) > tolerable {
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
	p.versionAfter = all
}

// restores pairs each restore with the total_loss it answers, as indexes
// into faults (a valid file has a total_loss before each restore).
func restores(faults []Fault) [][2]int {
	var out [][2]int
	loss := -1
	for i, f := range faults {
		switch {
		case f.Kind == KindTotalLoss:
			loss = i
		case f.Kind == KindRestore && loss >= 0:
			out = append(out, [2]int{loss, i})
			loss = -1
		}
	}
	return out
}

// upgrade checks an upgrade against the versions the nodes run before it
// (all: every node's, "" unknown or mixed; active: the active node's) and
// returns the versions after it. An upgrade that would end with the active
// node failing over to an older standby is refused, as HashiCorp's
// upgrade guide never fails over from a newer version to an older one.
func (p *parser) upgrade(sc *Scenario, f Fault, b *block, all, active string) (string, string) {
	n := f.Count // nodes it upgrades
	if n == 0 {
		n = sc.Cluster.Nodes
	}
	if end := f.At + time.Duration(n-1)*f.PauseBetween; n > 1 && end >= sc.Load.Duration {
		b.warnf("pause_between", "the pauses alone last until %s, after the load ends at %s: the end of the upgrade is not measured under load", end, sc.Load.Duration)
	}
	whole := f.Count == 0 || f.Count >= sc.Cluster.Nodes // the active node too
	to := f.ToVersion
	same := func(a, b string) bool { return strings.TrimPrefix(a, "v") == strings.TrimPrefix(b, "v") }
	older := active != "" && to != "" && compareVersions(to, active) < 0
	switch {
	case to == "": // to_bin: which version is not known
		if whole {
			active = ""
		}
		return "", active
	case all != "" && same(to, all):
		b.warnf("to_version", "every node already runs %s: this upgrade has nothing to do", all)
		return all, active
	case older && whole:
		attr := "to_version"
		if f.Count != 0 {
			attr = "count"
		}
		b.errf(attr, "rolling every node from %s back to %s ends with the active node handing over to an older standby, and Vault never fails over from a newer version to an older one; roll back standbys only (count below %d) while the active node runs the older version",
			active, to, sc.Cluster.Nodes)
	case older:
		b.warnf("to_version", "standbys on %s behind an active node on %s: a failover would go from a newer version to an older one", to, active)
	}
	if whole {
		return to, to
	}
	return "", active
}

// compareVersions orders Vault releases ("1.19.5" < "1.21.0"; a
// pre-release before its release; build metadata ignored). Both match
// versionRE.
func compareVersions(a, b string) int {
	parse := func(v string) ([3]int, string) {
		v, _, _ = strings.Cut(strings.TrimPrefix(v, "v"), "+")
		core, pre, _ := strings.Cut(v, "-")
		var n [3]int
		for i, x := range strings.SplitN(core, ".", 3) {
			n[i], _ = strconv.Atoi(x)
		}
		return n, pre
	}
	na, pa := parse(a)
	nb, pb := parse(b)
	if c := slices.Compare(na[:], nb[:]); c != 0 || pa == pb {
		return c
	}
	switch {
	case pa == "":
		return 1
	case pb == "":
		return -1
	}
	return strings.Compare(pa, pb)
}

// lostForGood is how many nodes f removes for good (data gone, or killed
// with no restart); more than nodes-quorum means quorum is gone.
func lostForGood(c Cluster, f Fault) int {
	switch f.Kind {
	case KindKill, KindStop:
		if !f.Restart {
			return f.Count
		}
	case KindSpotReclaim, KindDiskLoss, KindTotalLoss:
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

func (p *parser) fault(sc *Scenario, kind Kind, hb *hcl.Block) (Fault, *block) {
	cl := sc.Cluster
	f := Fault{Kind: kind, Count: 1}
	switch kind { // defaults
	case KindSpotReclaim:
		f.Notice, f.Replace, f.ReplaceAfter = DefaultSpotNotice, true, DefaultReplaceAfter
	case KindZoneOutage:
		f.Replace, f.ReplaceAfter = true, DefaultZoneReplace
	case KindDiskLoss:
		f.Replace, f.ReplaceAfter = true, DefaultReplaceAfter
	case KindRollingRestart:
		f.WaitHealthy, f.LeaderLast, f.Timeout, f.Signal = true, true, DefaultNodeTimeout, KindStop
	case KindRecoverQuorum:
		f.Timeout = DefaultNodeTimeout
	case KindRestore:
		f.Timeout = DefaultRestoreTimeout
	case KindUpgrade:
		f.StepDown, f.Timeout, f.Count = true, DefaultNodeTimeout, 0
	}
	var target struct {
		Target *string `hcl:"target,optional"` // parsed by target
	}
	b := p.decodeBody(hb.Body, faultSchema(kind), plainNames(faultAttrs[kind]), fmt.Sprintf("fault %q", kind), hb.DefRange, &f, &target)
	if target.Target != nil {
		f.Target = p.target(cl, b, *target.Target)
		if f.Target.Kind == TargetZone {
			f.Count = len(cl.ZoneNodes(f.Target.Name))
		}
	}
	if b.has("count") && kind != KindUpgrade {
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
		intIn(b, "count", &f.Count, 1, max)
	}
	if f.Target.Kind == TargetFollower && cl.Nodes == 1 {
		b.errf("target", "a 1-node cluster has no follower")
	}

	switch kind {
	case KindKill, KindStop:
		f.Restart = b.has("restart_after")
	case KindPause, KindPartition:
		if b.ok("duration") && f.Duration == 0 {
			b.errf("duration", "must be above 0s")
		}
		if kind == KindPartition && cl.Nodes == 1 {
			b.errf("target", "a 1-node cluster has no peer to be partitioned from")
		}
		if kind == KindPartition && f.Target.Kind == TargetZone && cl.Zones == 1 {
			b.errf("target", "with one zone, a zone has no peers outside it to be cut off from")
		}
	case KindZoneOutage:
		if b.ok("zone") && f.Zone != "leader" && f.Zone != "random" && !slices.Contains(cl.ZoneNames(), f.Zone) {
			b.reject("zone", "must be a zone of the cluster (%s), \"leader\" (the active node's zone) or \"random\", got %q.%s",
				zoneRange(cl), f.Zone, suggest(f.Zone, append([]string{"leader", "random"}, cl.ZoneNames()...)))
		}
		f.Count = lostForGood(cl, f)
	case KindDiskLoss:
		if cl.Storage != StorageRAID0 {
			b.errf("at", "disk_loss needs cluster storage = \"raid0\"; this cluster's storage is %q, which has no member disks", cl.Storage)
		}
		if f.Disk < 0 || f.Disk >= cl.DisksPerNode {
			b.reject("disk", "must be a member index from 0 to %d (disks_per_node = %d), got %d", cl.DisksPerNode-1, cl.DisksPerNode, f.Disk)
		}
	case KindLatency:
		b.floatIn("loss", &f.Loss, 0, 100)
		if b.ok("duration") && f.Duration == 0 {
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
		oneOf(b, "signal", f.Signal, KindStop, KindKill)
		f.Count = cl.Nodes
	case KindTotalLoss, KindRestore:
		f.Count = cl.Nodes
		intIn(b, "snapshot", &f.Snapshot, 0, maxRetain-1)
	case KindUpgrade:
		intIn(b, "count", &f.Count, 0, cl.Nodes)
		switch {
		case b.has("to_version") && b.has("to_bin"):
			b.errf("to_bin", "give to_version or to_bin, not both")
		case !b.has("to_version") && !b.has("to_bin"):
			p.errAt(hb.Body.MissingItemRange(), "Missing required argument",
				`fault "upgrade" needs "to_version", a Vault release (bin/vault-VERSION, from make vault VAULT_VERSION=…), or "to_bin", the path of a vault binary`)
		case b.ok("to_version") && !versionRE.MatchString(f.ToVersion):
			b.reject("to_version", "must be a Vault release such as \"1.21.0\", got %q", f.ToVersion)
		case b.ok("to_bin") && f.ToBin == "":
			b.errf("to_bin", "must be a path to a vault binary, got an empty string")
		}
	}
	if b.ok("timeout") && f.Timeout == 0 {
		b.errf("timeout", "must be above 0s")
	}
	return f, b
}

// target parses `target`: leader | follower | random | nodeN | zone-x.
func (p *parser) target(cl Cluster, b *block, s string) Target {
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
	e := &sc.Expect
	b := p.decode(hb, "expect", e)
	for n, d := range map[string]*time.Duration{"healed_within": e.HealedWithin, "leader_within": e.LeaderWithin,
		"p99_during_fault": e.P99DuringFault, "p99": e.P99, "unavailable_after": e.UnavailableAfter, "generator_max_lag": e.GeneratorMaxLag} {
		b.positive(n, d)
	}
	intIn(b, "lost_writes", e.LostWrites, 0, 1<<53)
	intIn(b, "min_voters_after", e.MinVotersAfter, 1, sc.Cluster.Nodes)
	b.floatIn("max_error_rate", e.MaxErrorRate, 0, 100)
	b.floatIn("generator_late_sends", e.GeneratorLateSends, 0, 100)
	if e.Linearizable != nil && *e.Linearizable && sc.Load.HistoryKeys == 0 {
		b.errf("linearizable", "needs a history to check: history_keys in the load block is 0")
	}
	has := func(k Kind) bool { return slices.ContainsFunc(sc.Faults, func(f Fault) bool { return f.Kind == k }) }
	intIn(b, "rpo_writes", e.RPOWrites, 0, 1<<53)
	for _, n := range []string{"rpo_writes", "rpo_seconds", "rto"} {
		if b.has(n) && !has(KindRestore) {
			b.errf(n, "needs a fault \"restore\": %s is measured on a cluster restored from a snapshot after a total loss", n)
		}
	}
	b.positive("rto", e.RTO)
	for _, pair := range restores(sc.Faults) {
		loss, r := sc.Faults[pair[0]], sc.Faults[pair[1]]
		if e.RTO != nil && *e.RTO <= r.At-loss.At {
			b.reject("rto", "must be longer than the %s from the total loss (fault %d, at %s) to the restore (fault %d, at %s): the RTO counts from the loss",
				r.At-loss.At, loss.Index, loss.At, r.Index, r.At)
		}
	}
	b.positive("snapshot_p99", e.SnapshotP99)
	if b.has("snapshot_p99") && sc.Snapshots == nil {
		b.errf("snapshot_p99", "needs a snapshots block: no snapshot is taken")
	}
	if v := e.VersionsAfter; v != nil {
		switch {
		case !versionRE.MatchString(*v):
			b.reject("versions_after", "must be a Vault release such as \"1.21.0\", got %q", *v)
		case p.versionAfter != "" && strings.TrimPrefix(*v, "v") != strings.TrimPrefix(p.versionAfter, "v"):
			b.warnf("versions_after", "the scenario leaves every node on %s (cluster vault_version and the upgrades)", p.versionAfter)
		case !has(KindUpgrade):
			b.warnf("versions_after", "this scenario has no fault \"upgrade\": versions_after only checks the version the cluster started with")
		}
	}
	b.positive("step_down_within", e.StepDownWithin)
	if d := e.StepDownWithin; d != nil && *d < sc.Cluster.ElectionTimeout() {
		b.warnf("step_down_within", "raft does not elect a leader in less than an election timeout (%s at performance_multiplier %d)", sc.Cluster.ElectionTimeout(), sc.Cluster.Multiplier())
	}
	for _, n := range []string{"step_down_within", "reads_through_standbys", "seal_restart"} {
		if b.has(n) && !has(KindUpgrade) {
			b.errf(n, "is a check after an upgrade (as Vault's enos upgrade scenario runs it), and this scenario has no fault \"upgrade\"")
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

// capacity decodes the capacity block. Zero values mean the capacity
// command's defaults; lists are series dimensions.
func (p *parser) capacity(sc *Scenario, hb *hcl.Block, byType map[string][]*hcl.Block) {
	c := &CapacitySpec{}
	sc.Capacity = c
	b := p.decode(hb, "capacity", c)
	for _, t := range []string{"fault", "snapshots", "expect"} {
		for _, other := range byType[t] {
			p.errAt(other.DefRange, fmt.Sprintf("%s block in a capacity file", strings.ToUpper(t[:1])+t[1:]),
				"a file with a capacity block is a capacity search (vaultstorm capacity FILE): it takes no %s block; its gate is expect_rate in the capacity block", t)
		}
	}
	if b.has("slo_p99") && c.SLOP99 <= 0 {
		b.reject("slo_p99", "must be above 0, got %s", c.SLOP99)
	}
	pct := func(name string, v *float64, lo float64) {
		if b.has(name) && (*v < lo || *v > 100 || (lo == 0 && *v < 0)) {
			b.reject(name, "must be a percentage between %g and 100 (written as a number: 0.1 is 0.1 %%), got %g", lo, *v)
		}
	}
	pct("slo_errors", &c.SLOErrors, 0)
	pct("max_late", &c.MaxLate, 0)
	if b.has("slo_achieved") && (c.SLOAchieved < 1 || c.SLOAchieved > 100) {
		b.reject("slo_achieved", "must be a percentage between 1 and 100, got %g", c.SLOAchieved)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		min  time.Duration
	}{{"warmup", c.Warmup, time.Second}, {"hold", c.Hold, 2 * time.Second}} {
		if b.has(d.name) && (d.v < d.min || d.v%time.Second != 0) {
			b.reject(d.name, "must be whole seconds, at least %s, got %s", d.min, d.v)
		}
	}
	if b.has("start_rate") && (c.StartRate <= 0 || c.StartRate > maxRate) {
		b.reject("start_rate", "must be above 0 and at most %d, got %g", maxRate, c.StartRate)
	}
	if b.has("factor") && (c.Factor <= 1 || c.Factor > 100) {
		b.reject("factor", "must be above 1 (each step grows) and at most 100, got %g", c.Factor)
	}
	if b.has("max_rate") && (c.MaxRate <= 0 || c.MaxRate > maxRate || (c.StartRate > 0 && c.MaxRate < c.StartRate)) {
		b.reject("max_rate", "must be at least start_rate and at most %d, got %g", maxRate, c.MaxRate)
	}
	if b.has("precision") && (c.Precision < 0.1 || c.Precision > 50) {
		b.reject("precision", "must be a percentage between 0.1 and 50, got %g", c.Precision)
	}
	intIn(b, "max_steps", &c.MaxSteps, 0, 1000)
	if b.has("expect_rate") && (c.ExpectRate < 0 || c.ExpectRate > maxRate) {
		b.reject("expect_rate", "must be between 0 and %d requests per second, got %g", maxRate, c.ExpectRate)
	}
	for _, n := range c.Nodes {
		if n < 1 || n > 15 || n%2 == 0 {
			b.reject("nodes", "each node count must be odd, 1 to 15 (raft needs a majority), got %d", n)
			break
		}
	}
	for _, s := range c.Storage {
		if !oneOf(b, "storage", s, "raid0", "single", "dir") {
			break
		}
	}
	for _, v := range c.ValueSizes {
		if !b.sizeIn("value_sizes", int64(v), 1, maxValueSize) {
			break
		}
	}
	for _, k := range c.Keys {
		if k < 1 || k > maxKeys {
			b.reject("keys", "each key space must be between 1 and %d, got %d", maxKeys, k)
			break
		}
	}
	for name, n := range map[string]int{"mixes": len(c.Mixes), "nodes": len(c.Nodes), "storage": len(c.Storage), "value_sizes": len(c.ValueSizes), "keys": len(c.Keys)} {
		if b.has(name) && n == 0 {
			b.reject(name, "must not be empty: leave it out for the %s block's value", map[bool]string{true: "cluster", false: "load"}[name == "nodes" || name == "storage"])
		}
	}
	if sc.Cluster.Provider == ProviderExternal && (b.has("nodes") || b.has("storage")) {
		b.errf(map[bool]string{true: "nodes", false: "storage"}[b.has("nodes")], "shapes clusters capacity stands up; with provider = \"external\" it measures the Vault VAULT_ADDR points at")
	}
}
