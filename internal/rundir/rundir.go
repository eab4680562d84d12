// Package rundir defines the run directory: the files a live run writes and
// the only input reports read. It belongs to no one stage of the pipeline
// (load, chaos and scenarios write it, reports read it), hence internal/.
//
// Every file is append-only JSON lines or a whole-file JSON document written
// by rename, so a run cut short at any instant leaves files that parse up to
// their last complete line.
package rundir

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// File names inside a run directory.
const (
	MetaFile       = "meta.json"       // Meta, written at start, rewritten at end
	ScenarioFile   = "scenario.hcl"    // the scenario as run (after --time-scale)
	EventsFile     = "events.jsonl"    // Event lines
	SamplesFile    = "samples.jsonl"   // Sample lines, one per second of load
	HistogramsFile = "histograms.hlog" // HdrHistogram interval log, one tag per op
	LedgerFile     = "ledger.jsonl"    // LedgerEntry lines
	SummaryFile    = "summary.json"    // Summary, written at the end
	NodesDir       = "nodes"           // <node>.log: each node's Vault log
	MetricsDir     = "metrics"         // <node>.prom.jsonl: scraped sys/metrics
	HistoryFile    = "history.jsonl"   // HistoryOp lines: every operation on the sampled keys
	// LinearizabilityFile is porcupine's visualisation of the sampled
	// keys' histories, written when a check found a violation.
	LinearizabilityFile = "linearizability.html"
)

// Meta describes what was run. A run without Ended is partial.
type Meta struct {
	Tool         string    `json:"tool"` // "vaultstorm <version>"
	Command      string    `json:"command"`
	Scenario     string    `json:"scenario,omitempty"`
	VaultVersion string    `json:"vault_version,omitempty"`
	Nodes        int       `json:"nodes,omitempty"`
	Provider     string    `json:"provider,omitempty"`
	Storage      string    `json:"storage,omitempty"` // btrfs-raid0 | md-raid0 | dir
	Seal         string    `json:"seal,omitempty"`    // e.g. "transit"
	Load         string    `json:"load,omitempty"`    // human description of the load profile
	Seed         int64     `json:"seed,omitempty"`
	TimeScale    float64   `json:"time_scale,omitempty"`
	Started      time.Time `json:"started"`
	Ended        time.Time `json:"ended,omitempty"`
	// Shard is set on a load run that was one generator of a sharded run
	// ('load --shard I/N'); Merged on the run 'merge' made of such shards.
	Shard  *Shard        `json:"shard,omitempty"`
	Merged []MergedShard `json:"merged_shards,omitempty"`
}

// Shard names one generator of a sharded load run. Index is 0-based (0 to
// Count-1), as Kubernetes' JOB_COMPLETION_INDEX and Nomad's
// NOMAD_ALLOC_INDEX are, so a job passes its index through unchanged.
type Shard struct {
	Index int    `json:"index"`
	Count int    `json:"count"`
	RunID string `json:"run_id,omitempty"` // the same on every shard of one run
}

// MergedShard is one shard run directory a merged run was made of.
type MergedShard struct {
	Index   int       `json:"index"`
	Dir     string    `json:"dir"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
}

// Partial reports whether the run never reached its end.
func (m Meta) Partial() bool { return m.Ended.IsZero() }

// Event is one line of events.jsonl: a fault action, a probe transition, a
// phase change or a node state change.
type Event struct {
	T     time.Time `json:"t"`
	Kind  string    `json:"kind"`            // see the Ev* constants
	Fault int       `json:"fault,omitempty"` // 1-based fault index; 0 = none
	Node  string    `json:"node,omitempty"`
	State string    `json:"state,omitempty"` // for EvNodeState: leader|follower|sealed|down|replaced|standby
	Phase string    `json:"phase,omitempty"` // for EvPhase: before|during|recovery|after
	Msg   string    `json:"msg,omitempty"`
}

// Event kinds.
const (
	EvRunStart    = "run_start"
	EvRunEnd      = "run_end"
	EvPhase       = "phase"
	EvFaultNotice = "fault_notice" // e.g. spot interruption notice
	EvFaultStart  = "fault_start"  // t_fault: the fault action returned
	EvFaultEnd    = "fault_end"    // the fault was lifted (heal, restart, replace)
	EvLeader      = "leader"       // Node is the new leader (t_leader)
	EvWriteOK     = "write_ok"     // first good write after failures (t_write_ok)
	EvHealed      = "healed"       // t_healed
	EvNodeState   = "node_state"
	EvSnapshot    = "snapshot" // a snapshot stored: T its request start, Msg its name (Summary.Snapshots has the rest)
	EvNote        = "note"
)

// OpStats is one operation's figures over some interval.
type OpStats struct {
	Count  int64            `json:"count"`
	Errors int64            `json:"errors"`
	ByErr  map[string]int64 `json:"errors_by_class,omitempty"`
	Rate   float64          `json:"rate,omitempty"` // successful+failed ops per second
	P50    float64          `json:"p50_ms"`
	P90    float64          `json:"p90_ms"`
	P99    float64          `json:"p99_ms"`
	P999   float64          `json:"p999_ms"`
	Max    float64          `json:"max_ms"`
}

// Sample is one line of samples.jsonl: one second of load.
type Sample struct {
	T         time.Time          `json:"t"` // start of the second
	Ops       map[string]OpStats `json:"ops"`
	LateSends int64              `json:"late_sends"`
	Interval  float64            `json:"interval_s,omitempty"` // length of this sample; 1 except a run's last, partial one
}

// LedgerEntry is one line of ledger.jsonl. Outcome "ok" is an acknowledged
// write; "unknown" is a write whose outcome could not be known (timeout,
// connection reset after send); "deleted" an acknowledged delete.
type LedgerEntry struct {
	T       time.Time `json:"t"`
	Key     string    `json:"key"`
	Version int       `json:"version,omitempty"`
	Digest  string    `json:"digest,omitempty"` // hex sha256 of the value
	Outcome string    `json:"outcome"`
	Op      string    `json:"op,omitempty"`  // "write" or "delete"; empty means write
	Sent    time.Time `json:"sent,omitzero"` // when the request left; T is when it was answered
}

// Expectation is one checked threshold of a scenario.
type Expectation struct {
	Name   string `json:"name"`
	Want   string `json:"want"`
	Got    string `json:"got"`
	Passed bool   `json:"passed"`
}

// FaultResult is the measured recovery of one fault. Nil pointers mean the
// event never happened (no leader was elected, the cluster never healed).
type FaultResult struct {
	Kind               string    `json:"kind"`
	Nodes              []string  `json:"nodes"`
	At                 time.Time `json:"at"`
	End                time.Time `json:"end,omitempty"`
	LeaderElectedMs    *float64  `json:"leader_elected_ms"`
	WriteUnavailableMs float64   `json:"write_unavailable_ms"`
	ReadUnavailableMs  float64   `json:"read_unavailable_ms"`
	HealedMs           *float64  `json:"healed_ms"`
	// WriteUnavailableMs and ReadUnavailableMs are the stall windows: the
	// longest run of requests that failed or took longer than
	// unavailable_after, clipped to the fault's own window. The error
	// windows count failed requests only.
	WriteErrorWindowMs float64 `json:"write_error_window_ms"`
	ReadErrorWindowMs  float64 `json:"read_error_window_ms"`
	// Degraded is set when the cluster never became whole again (its
	// intended number of voters, all unsealed, autopilot healthy), e.g.
	// "degraded (4/5 voters)"; HealedMs is then nil.
	Degraded string `json:"degraded,omitempty"`
}

// FinalState is the one explicit check of the cluster after the load, taken
// through the active node: what every end-of-run expectation reads.
type FinalState struct {
	T      time.Time `json:"t"`
	Leader string    `json:"leader,omitempty"` // node name of the active node
	// Error says why there is no state (no leader, no node answered): every
	// expectation on the end state then fails with it.
	Error            string      `json:"error,omitempty"`
	IntendedVoters   int         `json:"intended_voters"`
	Voters           []string    `json:"voters"` // node names (node IDs when not ours)
	Peers            []string    `json:"peers"`  // node IDs in the raft configuration
	AutopilotHealthy bool        `json:"autopilot_healthy"`
	Nodes            []FinalNode `json:"nodes"`
}

// FinalNode is one node in the final check: its own answer to sys/health.
type FinalNode struct {
	Name    string `json:"name"`
	NodeID  string `json:"node_id"`
	State   string `json:"state"` // leader | follower | sealed | down | …
	Version string `json:"version,omitempty"`
	Voter   bool   `json:"voter"`
}

// Snapshot is one raft snapshot the run's agent stored (or failed to).
type Snapshot struct {
	Name    string    `json:"name,omitempty"`
	Started time.Time `json:"request_started"` // writes acknowledged before are in it
	Ended   time.Time `json:"response_ended"`  // writes acknowledged after are not
	Size    int64     `json:"size,omitempty"`
	SHA256  string    `json:"sha256,omitempty"`
	Index   uint64    `json:"raft_index,omitempty"`
	Term    uint64    `json:"raft_term,omitempty"`
	Node    string    `json:"node,omitempty"` // API address of the node that served it
	Error   string    `json:"error,omitempty"`
}

// SnapshotCost compares the load's latency while a snapshot was being taken
// with the rest of the run: p99 over every operation whose intended time
// fell inside (outside) a snapshot's request-to-response window.
type SnapshotCost struct {
	DuringP99Ms    float64 `json:"during_p99_ms"`
	OutsideP99Ms   float64 `json:"outside_p99_ms"`
	DuringCount    int64   `json:"during_requests"`
	OutsideCount   int64   `json:"outside_requests"`
	MeanDurationMs float64 `json:"mean_snapshot_ms"`
	MeanSize       int64   `json:"mean_snapshot_bytes"`
}

// RestoreResult is a restore after a total loss, measured.
type RestoreResult struct {
	Snapshot Snapshot  `json:"snapshot"` // the one restored
	LossAt   time.Time `json:"loss_at"`  // the total loss began
	// LossDone is when every node was dead and its array gone: a write
	// acknowledged until then went to the old cluster (the RPO side).
	LossDone time.Time `json:"loss_done_at,omitzero"`
	// Phases of the rebuild, each with when it ended (ms after LossAt):
	// provision, init, restore, unsealed, healthy.
	Phases []RestorePhase `json:"phases"`
	// RTO: from the loss to the first successful write and read; nil when
	// none came (never served again within the run).
	FirstWriteMs *float64 `json:"rto_write_ms"`
	FirstReadMs  *float64 `json:"rto_read_ms"`
	// RPO, from the ledger, by when a write was acknowledged: before the
	// snapshot's request started (must all survive: a missing one is a
	// lost write, counted in Summary.LostWrites), while it was taken (either
	// way), after its response ended and before the loss was complete
	// (LossComplete: the RPO, gone).
	BeforeSnapshot  int64 `json:"acked_before_snapshot"`
	InFlight        int64 `json:"acked_during_snapshot"`
	InFlightPresent int64 `json:"acked_during_snapshot_present"`
	AfterSnapshot   int64 `json:"acked_after_snapshot"`
	AfterPresent    int64 `json:"acked_after_snapshot_present"`
	RPOWrites       int64 `json:"rpo_writes"` // acknowledged after the snapshot and gone
	// RPOSeconds spans the snapshot's request start to the last lost
	// write's acknowledgement (0 when none was lost).
	RPOSeconds float64 `json:"rpo_seconds"`
	Error      string  `json:"error,omitempty"` // the restore failed: why
}

// LossComplete is when the total loss was complete; LossAt in a run
// directory that did not record it.
func (r *RestoreResult) LossComplete() time.Time {
	if r.LossDone.IsZero() {
		return r.LossAt
	}
	return r.LossDone
}

// UpgradeResult is one upgrade fault: each node's step measured.
type UpgradeResult struct {
	Fault   int           `json:"fault"` // 1-based index of the fault
	From    []string      `json:"from_versions"`
	To      string        `json:"to_version"`
	Steps   []UpgradeStep `json:"steps"`
	TotalMs float64       `json:"total_ms"` // first step's start to the last one's end
	Error   string        `json:"error,omitempty"`
}

// UpgradeStep is one node's turn: stopped, its binary swapped, started,
// back as an unsealed healthy voter; for the active node, the step-down
// before it.
type UpgradeStep struct {
	Node  string    `json:"node"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Active: the node was the active one when its step began.
	Active bool `json:"active"`
	// Stall windows (failed or slower than unavailable_after) and error
	// windows of the step, clipped to it.
	WriteUnavailableMs float64 `json:"write_unavailable_ms"`
	ReadUnavailableMs  float64 `json:"read_unavailable_ms"`
	WriteErrorWindowMs float64 `json:"write_error_window_ms"`
	ReadErrorWindowMs  float64 `json:"read_error_window_ms"`
	// Leaders seen active during the step (other than the one before it).
	NewLeaders []string `json:"new_leaders,omitempty"`
	// Latency of the requests sent during the step.
	P99Ms float64 `json:"p99_ms"`
}

// RestorePhase is one phase of a restore.
type RestorePhase struct {
	Name string  `json:"name"`
	Ms   float64 `json:"ms"` // after the loss
}

// HistoryOp is one line of history.jsonl: one operation on one of the
// sampled keys, as the linearizability checker reads it. Call and Ret are
// nanoseconds from the load's start (Call when the request was sent, Ret
// when its answer arrived); Ret is -1 when the outcome is unknown: the
// request may have taken effect at any later time, or never.
type HistoryOp struct {
	Key     string `json:"key"`
	Op      string `json:"op"`     // read | write | delete
	Client  int    `json:"client"` // the worker that sent it
	Call    int64  `json:"call"`
	Ret     int64  `json:"ret"`
	Value   string `json:"value,omitempty"`   // write: the value id written; read: the id seen ("" none)
	Version int    `json:"version,omitempty"` // write: acknowledged version; read: version seen (0 absent)
	Deleted bool   `json:"deleted,omitempty"` // read: the latest version is deleted
	Outcome string `json:"outcome"`           // ok | unknown
}

// PhaseStats is the load figures of one phase (before, during, recovery, after).
type PhaseStats struct {
	Phase string             `json:"phase"`
	Start time.Time          `json:"start"`
	End   time.Time          `json:"end"`
	Ops   map[string]OpStats `json:"ops"`
}

// Summary is summary.json.
type Summary struct {
	Ops           map[string]OpStats `json:"ops"`
	AckedWrites   int64              `json:"acked_writes"`
	LostWrites    int64              `json:"lost_writes"`
	UnknownWrites int64              `json:"unknown_writes"`
	LostKeys      []string           `json:"lost_keys,omitempty"`
	LateSends     int64              `json:"late_sends"`
	TargetRate    float64            `json:"target_rate,omitempty"`
	Duration      float64            `json:"duration_s,omitempty"`

	// Load generator figures (see load's package doc).
	AchievedRate    float64 `json:"achieved_rate,omitempty"`     // requests answered per second, all ops
	RateReached     *bool   `json:"rate_reached,omitempty"`      // open loop: achieved ≥ 98 % of the target
	LateThresholdMs float64 `json:"late_threshold_ms,omitempty"` // a send later than this after its intended time is late
	MaxSendLagMs    float64 `json:"max_send_lag_ms,omitempty"`
	PoolWaits       int64   `json:"pool_waits,omitempty"` // sends that waited for a free worker
	PeakWorkers     int     `json:"peak_workers,omitempty"`
	// ConnsOpened counts the connections the generator opened, each a TLS
	// handshake: far more than workers means churn, which costs CPU on
	// both sides and is not the load the user asked for.
	ConnsOpened int64 `json:"conns_opened,omitempty"`
	// Verified is true only when every key of the ledger was read back:
	// otherwise LostWrites is not known, and a lost_writes expectation fails.
	Verified    bool   `json:"verified"`
	VerifyError string `json:"verify_error,omitempty"` // why the read-back failed or stopped
	KeysRead    int64  `json:"keys_read,omitempty"`    // keys read back
	KeysToRead  int64  `json:"keys_to_read,omitempty"` // keys with an acknowledged write
	PresentKeys int64  `json:"present_keys,omitempty"` // keys whose last acknowledged write is readable
	DeletedKeys int64  `json:"deleted_keys,omitempty"` // keys legitimately absent after an acknowledged delete
	// DuplicateVersions counts (key, version) pairs acknowledged twice with
	// different values: one of the two writes was lost (counted in LostWrites).
	DuplicateVersions int64 `json:"duplicate_versions,omitempty"`

	// Linearizable is the porcupine check of the sampled keys' histories:
	// true, false, or null when it was not checked or timed out
	// (Linearizability says which, and why).
	Linearizable    *bool  `json:"linearizable"`
	Linearizability string `json:"linearizability,omitempty"`
	HistoryKeys     int    `json:"history_keys,omitempty"`
	HistoryOps      int    `json:"history_ops,omitempty"`

	// The observer: requests the harness itself sent to the cluster
	// (health and autopilot probes, leader lookups, metric scrapes, the
	// final check), over the run and outside fault windows ("quiet"),
	// and the quiet rate as a percentage of the load's rate.
	HarnessRequests     int64            `json:"harness_requests"`
	HarnessRequestsPerS float64          `json:"harness_requests_per_s"`
	HarnessQuietPerS    float64          `json:"harness_quiet_requests_per_s"`
	HarnessSharePct     float64          `json:"harness_share_pct"`
	HarnessByKind       map[string]int64 `json:"harness_requests_by_kind,omitempty"`
	UnavailableAfterMs  float64          `json:"unavailable_after_ms,omitempty"`
	GeneratorLatePct    float64          `json:"generator_late_pct"`
	// Invalid lists why the run cannot be trusted (the generator fell
	// behind its schedule): non-empty means INVALID, exit status 3.
	Invalid []string `json:"invalid,omitempty"`

	Final *FinalState `json:"final_state,omitempty"`

	// Snapshots the run's agent took, in order, and what a restore from
	// one of them gave back.
	Snapshots   []Snapshot     `json:"snapshots,omitempty"`
	SnapshotP99 *SnapshotCost  `json:"snapshot_cost,omitempty"`
	Restore     *RestoreResult `json:"restore,omitempty"`
	// Upgrade is a rolling upgrade (or rollback), step by step.
	Upgrades []UpgradeResult `json:"upgrades,omitempty"`

	Scenario     string        `json:"scenario,omitempty"`
	Passed       *bool         `json:"passed,omitempty"`
	Expectations []Expectation `json:"expectations,omitempty"`
	Faults       []FaultResult `json:"faults,omitempty"`
	Phases       []PhaseStats  `json:"phases,omitempty"`
}

// WriteJSON writes v to dir/name atomically (temp file + rename), so a crash
// leaves either the old or the new document, never half of one.
func WriteJSON(dir, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	// CreateTemp makes 0600; a run directory's documents are for readers
	// (CI artefacts), and hold no secret.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// ReadJSON reads dir/name into v.
func ReadJSON(dir, name string, v any) error {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

// Appender appends JSON lines to one file. Each line is written with a single
// write call so a crash loses at most the line being written.
type Appender struct {
	mu sync.Mutex
	f  *os.File
	b  bytes.Buffer
}

// OpenAppender opens (creating) dir/name for appending.
func OpenAppender(dir, name string) (*Appender, error) {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &Appender{f: f}, nil
}

// Append writes v as one line.
func (a *Appender) Append(v any) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.b.Reset()
	if err := json.NewEncoder(&a.b).Encode(v); err != nil {
		return err
	}
	_, err := a.f.Write(a.b.Bytes())
	return err
}

// Close closes the file.
func (a *Appender) Close() error { return a.f.Close() }

// ReadLines decodes every complete line of dir/name, calling fn for each.
// A missing file is no lines. A torn last line (a run killed mid-write) is
// ignored; a bad line elsewhere is an error naming file and line.
func ReadLines[T any](dir, name string, fn func(T) error) error {
	path := filepath.Join(dir, name)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<16)
	for line := 1; ; line++ {
		b, err := r.ReadBytes('\n')
		if err == io.EOF {
			return nil // a line without '\n' is torn: the writer died mid-line
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
}
