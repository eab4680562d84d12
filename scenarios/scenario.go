// Package scenarios reads, validates and scales vaultstorm scenario files.
//
// A scenario is HCL (the format of Vault's own configuration):
//
//	name        = "leader-kill"
//	description = "SIGKILL the active node under load; restart it 20s later."
//
//	cluster {
//	  nodes                  = 5
//	  performance_multiplier = 1
//	}
//
//	load {
//	  rate     = 200
//	  duration = "2m"
//	  mix      = "read=80,write=20"
//	}
//
//	fault "kill" {
//	  at            = "30s"
//	  target        = "leader"
//	  restart_after = "20s"
//	}
//
//	expect {
//	  leader_within = "10s"
//	  lost_writes   = 0
//	}
//
// A `snapshots` block runs a raft snapshot agent during the load; the
// fault kinds total_loss, restore and upgrade test backups and rolling
// upgrades:
//
//	snapshots {
//	  interval = "30s"
//	  retain   = 5
//	  store    = "file://" # the run directory; or file:///DIR, s3://BUCKET?…
//	}
//
//	fault "upgrade" {
//	  at            = "30s"
//	  to_version    = "1.21.0"
//	  pause_between = "10s"
//	}
//
//	fault "total_loss" { at = "3m" }
//
//	fault "restore" {
//	  at       = "3m20s"
//	  snapshot = 0 # the latest
//	}
//
//	expect {
//	  rpo_seconds    = "45s"
//	  rto            = "2m"
//	  versions_after = "1.21.0"
//	}
//
// scenarios/README.md is the reference of every block and attribute.
//
// Parse returns a *Scenario whose every field is typed and defaulted (durations
// as time.Duration, sizes in bytes), so the runner never re-parses strings.
// Every problem in a file is reported with its file:line:column.
package scenarios

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/vaultstorm/vaultstorm/load"
)

// Scenario is one parsed, validated scenario file.
type Scenario struct {
	Name        string `hcl:"name,optional"`
	Description string `hcl:"description,optional"`
	// Seed feeds every random choice of the run (random targets, the zone of
	// `zone = "random"`, latency jitter). The file may set it; the runner's
	// --seed overrides it by assigning this field before the run.
	Seed int64 `hcl:"seed,optional"`

	Cluster Cluster
	Load    LoadSpec
	// Snapshots is the `snapshots` block: a raft snapshot agent running
	// during the load. Nil: no snapshots are taken.
	Snapshots *SnapshotSpec
	Faults    []Fault // in file order, which is also the order of At (validated)
	Expect    Expect
	// Capacity is the `capacity` block: the file is a capacity search
	// (vaultstorm capacity FILE), not a fault run. Nil: none.
	Capacity *CapacitySpec

	// TimeScale is 1 for a scenario as written and f after Scale(f).
	TimeScale float64
	// ScaleNotes says which durations Scale could not shrink fully because
	// Vault or the measurement has a hard minimum (see scale.go). The runner
	// should log them as events.
	ScaleNotes []string

	// File is where the scenario came from: a path, or "shipped:NAME".
	File string
	// Warnings are diagnostics that do not stop a run (e.g. a fault that
	// loses quorum with no recover_quorum after it), each "file:line:col: text".
	Warnings []string
}

// Rand returns a generator seeded from Seed: the same seed gives the same
// sequence of choices in every run, so a failing CI run can be repeated.
func (s *Scenario) Rand() *rand.Rand {
	return rand.New(rand.NewPCG(uint64(s.Seed), 0x7661756c7473746d)) // "vaultstm"
}

// Provider names.
const (
	ProviderProcess  = "process"
	ProviderDocker   = "docker"
	ProviderExternal = "external"
)

// Storage names.
const (
	StorageRAID0 = "raid0"
	StorageDir   = "dir"
)

// Cluster is the `cluster` block. The hcl tags name each field's
// attribute (see decode.go).
type Cluster struct {
	Nodes        int    `hcl:"nodes,optional"`                  // odd; default 5
	Provider     string `hcl:"provider,optional"`               // ProviderProcess (default) | ProviderDocker | ProviderExternal
	Storage      string `hcl:"storage,optional"`                // StorageRAID0 (default) | StorageDir
	DiskSize     int64  `hcl:"disk_size,optional" unit:"bytes"` // bytes per member disk; default 256 MiB
	DisksPerNode int    `hcl:"disks_per_node,optional"`         // RAID0 members per node; default 2
	VaultVersion string `hcl:"vault_version,optional"`          // e.g. "1.21.0"; "" = the harness's pinned build
	VaultBin     string `hcl:"vault_bin,optional"`              // path of a vault binary; excludes VaultVersion
	Zones        int    `hcl:"zones,optional"`                  // default 3 (capped at Nodes)
	// Inventory is the inventory file of an external cluster (provider
	// "external"), relative to the scenario file.
	Inventory string `hcl:"inventory,optional"`
	// PerformanceMultiplier is Vault's raft performance_multiplier
	// (0 = Vault's default, 5; 1 = the value Vault recommends for production).
	PerformanceMultiplier int `hcl:"performance_multiplier,optional"`
}

// NodeNames returns the nodes' names, node1…nodeN, in address order
// (node N listens on 127.0.0.(10+N) with the process provider).
func (c Cluster) NodeNames() []string {
	names := make([]string, c.Nodes)
	for i := range names {
		names[i] = NodeName(i + 1)
	}
	return names
}

// NodeName is the name of the i-th node (1-based).
func NodeName(i int) string { return "node" + strconv.Itoa(i) }

// ZoneNames returns zone-a, zone-b, … for the cluster's zone count.
func (c Cluster) ZoneNames() []string {
	names := make([]string, c.Zones)
	for i := range names {
		names[i] = zoneName(i)
	}
	return names
}

func zoneName(i int) string {
	if i < 26 {
		return "zone-" + string(rune('a'+i))
	}
	return "zone-" + strconv.Itoa(i+1)
}

// ZoneOf returns the zone label of the i-th node (1-based). Nodes are dealt
// round-robin, as an autoscaling group balances instances over zones: five
// nodes over three zones are a,b,c,a,b (2/2/1), so no zone holds a quorum.
func (c Cluster) ZoneOf(i int) string {
	if c.Zones <= 0 {
		return zoneName(0)
	}
	return zoneName((i - 1) % c.Zones)
}

// ZoneNodes returns the names of the nodes in a zone, in address order.
func (c Cluster) ZoneNodes(zone string) []string {
	var out []string
	for i := 1; i <= c.Nodes; i++ {
		if c.ZoneOf(i) == zone {
			out = append(out, NodeName(i))
		}
	}
	return out
}

// Quorum is the number of voters raft needs to elect a leader and commit.
func (c Cluster) Quorum() int { return c.Nodes/2 + 1 }

// Multiplier is the effective raft performance multiplier (Vault treats 0 as 5).
func (c Cluster) Multiplier() int {
	if c.PerformanceMultiplier <= 0 {
		return 5
	}
	return c.PerformanceMultiplier
}

// ElectionTimeout is raft's heartbeat/election timeout in Vault: 1 s times
// the performance multiplier. A follower calls an election after 1–2 of
// these without hearing from the leader, so a new leader is normally there
// within about 2–3 × ElectionTimeout of a leader's death.
func (c Cluster) ElectionTimeout() time.Duration {
	return time.Duration(c.Multiplier()) * time.Second
}

// LoadSpec is the `load` block: the options of `vaultstorm load`, the mix
// and key distribution as the load package's own types.
type LoadSpec struct {
	Rate         float64       `hcl:"rate,optional"`                    // requests/s (open loop); default 200
	RampFrom     float64       `hcl:"ramp_from,optional"`               // start rate of the ramp; = Rate when no ramp
	Ramp         time.Duration `hcl:"ramp,optional"`                    // ramp from RampFrom to Rate over this; 0 = none
	Workers      int           `hcl:"workers,optional"`                 // > 0: closed loop with this many workers (Rate ignored)
	Duration     time.Duration `hcl:"duration,optional"`                // required
	Mix          load.Mix      `hcl:"mix,optional"`                     // load.ParseMix; default load.DefaultMix (read=80,write=20)
	Keys         int           `hcl:"keys,optional"`                    // key space; default 1000
	Distribution load.KeyDist  `hcl:"distribution,optional"`            // load.ParseKeyDist; default load.Uniform
	ValueSize    int           `hcl:"value_size,optional" unit:"bytes"` // bytes; default 256
	Target       string        `hcl:"target,optional"`                  // "active" (default) | "all" | a node name
	Mount        string        `hcl:"mount,optional"`                   // KV v2 mount; default "vaultstorm"
	// Tick > 0 sends the requests due in each tick in one burst (see
	// load.Options.Tick); a generator setting, not scaled by --time-scale.
	Tick time.Duration `hcl:"tick,optional"`
	// LateThreshold: a request sent later than this after its intended
	// time is a late send, which the run's validity counts (see
	// Expect.GeneratorLateSends); default DefaultLateThreshold. A
	// generator setting, not scaled by --time-scale.
	LateThreshold time.Duration `hcl:"late_threshold,optional"`
	// HistoryKeys is how many keys have every operation recorded for the
	// linearizability check (default DefaultHistoryKeys; 0 none).
	HistoryKeys int `hcl:"history_keys,optional"`
}

// CapacitySpec is the `capacity` block: the settings of `vaultstorm
// capacity`, so a nightly job keeps its capacity gate in a file. Lists are
// series dimensions; each defaults to the cluster or load block's single
// value. Percentages are written as numbers (slo_errors = 0.1 is 0.1 %).
type CapacitySpec struct {
	SLOP99      time.Duration `hcl:"slo_p99,optional"`      // default 100ms
	SLOErrors   float64       `hcl:"slo_errors,optional"`   // percent; default 0.1
	SLOAchieved float64       `hcl:"slo_achieved,optional"` // percent; default 98
	MaxLate     float64       `hcl:"max_late,optional"`     // percent; default 1
	Warmup      time.Duration `hcl:"warmup,optional"`       // default 5s
	Hold        time.Duration `hcl:"hold,optional"`         // default 15s
	StartRate   float64       `hcl:"start_rate,optional"`   // default 50
	Factor      float64       `hcl:"factor,optional"`       // default 2
	MaxRate     float64       `hcl:"max_rate,optional"`     // default 100000
	Precision   float64       `hcl:"precision,optional"`    // percent; default 5
	MaxSteps    int           `hcl:"max_steps,optional"`    // default 24
	ExpectRate  float64       `hcl:"expect_rate,optional"`  // 0: no gate
	Mixes       []load.Mix    `hcl:"mixes,optional"`
	Nodes       []int         `hcl:"nodes,optional"`
	Storage     []string      `hcl:"storage,optional"` // raid0 | single | dir
	ValueSizes  []int         `hcl:"value_sizes,optional" unit:"bytes"`
	Keys        []int         `hcl:"keys,optional"`
}

// SnapshotSpec is the `snapshots` block: the active node's raft snapshot
// taken every Interval (from load start), the newest Retain kept in Store.
type SnapshotSpec struct {
	Interval time.Duration `hcl:"interval"`        // required; >= 1s
	Retain   int           `hcl:"retain,optional"` // default DefaultSnapshotRetain
	// Store is a gocloud.dev/blob URL: "file:///ABSOLUTE/DIR" or
	// "s3://BUCKET?region=…&endpoint=…". "" (the default; `store =
	// "file://"` in a file) is a directory under the run directory.
	Store string `hcl:"store,optional"`
}

// Kind is a fault kind, the label of a `fault "KIND"` block.
type Kind string

// Fault kinds.
const (
	KindKill           Kind = "kill"            // SIGKILL, optional restart
	KindStop           Kind = "stop"            // SIGTERM, optional restart
	KindPause          Kind = "pause"           // SIGSTOP for Duration, then SIGCONT
	KindSpotReclaim    Kind = "spot_reclaim"    // notice, then instance and its disks gone, replacement
	KindZoneOutage     Kind = "zone_outage"     // every node of one zone lost at once
	KindDiskLoss       Kind = "disk_loss"       // one RAID0 member fails: node's data gone, node replaced
	KindPartition      Kind = "partition"       // node cut off from its peers for Duration
	KindLatency        Kind = "latency"         // delay/jitter/loss on the node's traffic for Duration
	KindRollingRestart Kind = "rolling_restart" // every node restarted in turn
	KindRecoverQuorum  Kind = "recover_quorum"  // peers.json outage recovery on the survivors
	KindTotalLoss      Kind = "total_loss"      // every node killed, every RAID0 array destroyed; the transit seal survives
	KindRestore        Kind = "restore"         // a brand-new cluster restored from a snapshot
	KindUpgrade        Kind = "upgrade"         // rolling binary swap, standbys first, the active node last
)

// Kinds lists every fault kind in documentation order.
var Kinds = []Kind{KindKill, KindStop, KindPause, KindSpotReclaim, KindZoneOutage,
	KindDiskLoss, KindPartition, KindLatency, KindRollingRestart, KindRecoverQuorum,
	KindTotalLoss, KindRestore, KindUpgrade}

// TargetKind says how a fault picks its node(s).
type TargetKind string

// Target kinds.
const (
	TargetLeader   TargetKind = "leader"   // the active node at fault time
	TargetFollower TargetKind = "follower" // standby node(s), chosen with the seeded Rand
	TargetRandom   TargetKind = "random"   // any node(s), chosen with the seeded Rand
	TargetNode     TargetKind = "node"     // the node named Name
	TargetZone     TargetKind = "zone"     // every node of zone Name
)

// Target is a fault's `target`.
type Target struct {
	Kind TargetKind
	Name string // node name for TargetNode, zone name for TargetZone
}

// String renders the target as it is written in a scenario file.
func (t Target) String() string {
	if t.Kind == TargetNode || t.Kind == TargetZone {
		return t.Name
	}
	return string(t.Kind)
}

// Fault is one `fault "KIND"` block. Fields a kind does not take are zero.
// The hcl tags name each field's attribute; which ones a kind takes is
// faultAttrs (parse.go).
type Fault struct {
	Index int           // 1-based position in the file, as in rundir.Event.Fault
	Kind  Kind          // label of the block
	At    time.Duration `hcl:"at,optional"`
	// Target: kill, stop, pause, spot_reclaim, disk_loss, partition, latency.
	// Zero for zone_outage (see Zone) and the kinds that act on every node.
	Target Target
	// Count is how many nodes Target picks (follower and random targets);
	// 1 otherwise. For a zone target it is the zone's size; for
	// rolling_restart, total_loss and restore the cluster's size. For
	// upgrade it is as written: 0 = every node not already on the new
	// version; fewer than the cluster's nodes = that many standbys, never
	// the active node.
	Count int `hcl:"count,optional"`

	// kill, stop: restart the same node (same data) RestartAfter after the fault.
	Restart      bool
	RestartAfter time.Duration `hcl:"restart_after,optional"`

	// spot_reclaim, zone_outage, disk_loss: start a replacement node (new,
	// empty disks) ReplaceAfter after the node was lost.
	Replace      bool          `hcl:"replace,optional"`
	ReplaceAfter time.Duration `hcl:"replace_after,optional"`

	// spot_reclaim: interruption notice; At is when the notice is given and
	// the instance disappears At+Notice later (AWS gives 2 minutes).
	Notice time.Duration `hcl:"notice,optional"`

	// zone_outage: "zone-a"…, or "leader" (the active node's zone) or
	// "random" (seeded).
	Zone string `hcl:"zone,optional"`

	// disk_loss: index (0-based) of the RAID0 member that fails.
	Disk int `hcl:"disk,optional"`

	// pause, partition, latency: how long the fault lasts.
	Duration time.Duration `hcl:"duration,optional"`

	// partition: cut the node off from everyone, clients included (its
	// container disconnected from the network), not only from its peers.
	// Containers only (provider = "docker").
	Isolate bool `hcl:"isolate,optional"`

	// latency: added one-way delay on packets the node sends, uniform jitter
	// of ± Jitter, and the percentage of those packets dropped.
	Delay  time.Duration `hcl:"delay,optional"`
	Jitter time.Duration `hcl:"jitter,optional"`
	Loss   float64       `hcl:"loss,optional"`

	// rolling_restart: wait for the cluster to heal between nodes (and give
	// up after Timeout per node); restart the active node last, as an
	// upgrade does. Signal is "stop" (SIGTERM, default) or "kill".
	WaitHealthy bool          `hcl:"wait_healthy,optional"`
	LeaderLast  bool          `hcl:"leader_last,optional"`
	Timeout     time.Duration `hcl:"timeout,optional"`
	Signal      Kind          `hcl:"signal,optional"`

	// recover_quorum: Timeout bounds the wait for the recovered cluster to
	// elect a leader.

	// restore: which snapshot a brand-new cluster is restored from, counted
	// from the newest (0 = the latest taken before the total loss, N = the
	// Nth before it); Timeout bounds the whole restore (default
	// DefaultRestoreTimeout).
	Snapshot int `hcl:"snapshot,optional"`

	// upgrade: the new binary, as a Vault release (bin/vault-VERSION) or a
	// path (exactly one is set); each standby in turn is stopped, swapped,
	// started and waited for (Timeout per node, default
	// DefaultNodeTimeout), PauseBetween between nodes; then the active
	// node, stepped down first when StepDown (default true), else SIGTERM.
	ToVersion    string        `hcl:"to_version,optional"`
	ToBin        string        `hcl:"to_bin,optional"`
	StepDown     bool          `hcl:"step_down,optional"`
	PauseBetween time.Duration `hcl:"pause_between,optional"`
}

// End is when the fault's own action is over, relative to load start:
// At+Duration for timed faults, At+Notice for spot_reclaim, At otherwise.
// Recovery (restart, replacement, healing) comes after it.
func (f Fault) End() time.Duration {
	switch f.Kind {
	case KindPause, KindPartition, KindLatency:
		return f.At + f.Duration
	case KindSpotReclaim:
		return f.At + f.Notice
	}
	return f.At
}

// Expect is the `expect` block. A nil field is not checked.
type Expect struct {
	// Longest run of failed writes (reads) overlapping any fault.
	MaxUnavailability     *time.Duration `hcl:"max_unavailability,optional"`
	MaxReadUnavailability *time.Duration `hcl:"max_read_unavailability,optional"`
	// Acknowledged writes not readable after the run.
	LostWrites *int `hcl:"lost_writes,optional"`
	// From t_fault until all expected nodes are unsealed voters and
	// autopilot is healthy.
	HealedWithin *time.Duration `hcl:"healed_within,optional"`
	// From t_fault until a leader other than a dead node (faults on the leader).
	LeaderWithin *time.Duration `hcl:"leader_within,optional"`
	// Whether leadership moves to another node during the fault: true for
	// faults on the leader, false to assert a follower fault leaves it alone.
	NewLeader *bool `hcl:"new_leader,optional"`
	// p99 of all operations while a fault is active, and over the whole run.
	P99DuringFault *time.Duration `hcl:"p99_during_fault,optional"`
	P99            *time.Duration `hcl:"p99,optional"`
	// Voters in the raft configuration when the run ends.
	MinVotersAfter *int `hcl:"min_voters_after,optional"`
	// Every node lost for good is gone from the raft configuration at the end.
	DeadPeersRemoved *bool `hcl:"dead_peers_removed,optional"`
	// Most failed operations allowed over the whole run, in percent.
	MaxErrorRate *float64 `hcl:"max_error_rate,optional"`
	// A request is unavailable when it failed or took longer than this
	// from its intended time (default DefaultUnavailableAfter): what the
	// unavailability windows count.
	UnavailableAfter *time.Duration `hcl:"unavailable_after,optional"`
	// The generator's own validity: at most this percentage of requests
	// sent late (default 1) and no send later than GeneratorMaxLag
	// (default 100ms). A run that breaks either is INVALID: the harness,
	// not Vault, fell behind.
	GeneratorLateSends *float64       `hcl:"generator_late_sends,optional"`
	GeneratorMaxLag    *time.Duration `hcl:"generator_max_lag,optional"`
	// The sampled keys' histories are linearizable (porcupine).
	Linearizable *bool `hcl:"linearizable,optional"`

	// After a restore (each one): acknowledged writes lost because they
	// came after the restored snapshot (RPO, a count, and the span from
	// the snapshot to the last lost write), and the time from the total
	// loss to the first successful write (RTO). Writes acknowledged before
	// the snapshot was requested and missing are lost_writes, not RPO.
	RPOWrites  *int           `hcl:"rpo_writes,optional"`
	RPOSeconds *time.Duration `hcl:"rpo_seconds,optional"`
	RTO        *time.Duration `hcl:"rto,optional"`
	// p99 of the load while a snapshot is being taken.
	SnapshotP99 *time.Duration `hcl:"snapshot_p99,optional"`

	// The checks after an upgrade (Vault's enos upgrade scenario): every
	// node reports this version at the end; a leader step-down elects a
	// new leader within StepDownWithin; data written before the upgrade
	// reads back through each standby; the seal still unseals a restarted
	// node.
	VersionsAfter        *string        `hcl:"versions_after,optional"`
	StepDownWithin       *time.Duration `hcl:"step_down_within,optional"`
	ReadsThroughStandbys *bool          `hcl:"reads_through_standbys,optional"`
	SealRestart          *bool          `hcl:"seal_restart,optional"`
}
