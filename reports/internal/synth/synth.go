// Package synth writes realistic run directories without a cluster: the
// checked-in testdata/runs, the one-hour directory of the render benchmark,
// and the "same scenario, made worse" pairs that compare is tested with.
//
// It simulates what load/ and chaos/ record, second by second, with an
// open-loop schedule: a request whose intended send time falls in a write
// outage either fails or waits for the new leader, and its latency counts
// from the intended time, so a stall shows as a ramp of slow requests, as
// it does in a real run.
//
// What it writes is what the runner writes, with the same writer types
// (rundir.Appender for every JSON-lines file, rundir.WriteJSON for meta.json
// and summary.json, HdrHistogram's log writer for histograms.hlog), and only
// the events the runner writes, with the fields it sets:
//
//   - run_start (msg: the scenario), then the watcher's first node_state of
//     every node and a leader event, before the load starts;
//   - phase before / during / recovery / after: one sequence per run (during
//     from the first fault's action until every fault's action and lift is
//     over, after once every fault has healed), not one per fault;
//   - fault_notice (fault index and msg: the targets are chosen when the
//     notice runs out), fault_start and fault_end (fault index, the targets
//     in node, msg); a replacement's node_state "replaced" when it is
//     launched;
//   - node_state and leader from the watcher: node and state only, never a
//     fault index;
//   - write_ok and healed (fault index) only at the end, when the runner
//     computes recovery, after everything else and with earlier times; a run
//     cut short has none of them, and no run_end;
//   - with a snapshot agent (Options.SnapshotEvery): a snapshot event per
//     stored snapshot (T its request start, msg "NAME: N bytes, raft index
//     I, DURATION", no fault index) and, for an attempt that failed, a note
//     "snapshot agent: …" (summary.json's snapshots list both);
//   - a total loss (Options.Restore): every node down, then "removed" once
//     the fault action returned (the watcher drops the nodes the cluster no
//     longer has); the restore's phases as notes "restore: NAME done" with
//     the restore's fault index; the new nodes' states from their
//     provisioning on; and the restore's fault_start only once the rebuild
//     returned (t_fault is when the action returned).
package synth

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/metrics"
)

// Fault is one simulated fault; durations are offsets from At.
type Fault struct {
	Kind        string
	Nodes       []string
	Notice      time.Duration // interruption notice before At (spot); 0 = none
	At          time.Duration // from the start of the load: t_fault
	Election    time.Duration // 0 = the leader was not hit
	NewLeader   string
	WriteOutage time.Duration
	ReadOutage  time.Duration
	ReadFailPct float64       // share of reads failing during ReadOutage (round-robin to a dead node)
	Restart     time.Duration // victim (or Replacement) boots, sealed; 0 = lost for good
	Replacement string        // a new node replaces the victim ("" = same node restarts)
	Unseal      time.Duration // sealed -> follower, after Restart
	Heal        time.Duration // t_healed; 0 = never (within the run)
	// Action is how long the fault action ran before it returned at At
	// (the runner's started → injected): requests fail from At-Action,
	// and the fault's windows are measured from there. A restore's action
	// is the whole rebuild.
	Action time.Duration
	// OutageClass makes every request of the outage fail fast with this
	// class (no node to answer: conn_refused), instead of waiting for a
	// new leader.
	OutageClass string
}

// Restore is a total loss and the restore after it, as Options.Restore:
// the run's faults must then be a total_loss and a restore, in that
// order. Times are after the loss (the total loss fault's At-Action).
type Restore struct {
	Provision, Init, Restored, Unsealed, Healthy time.Duration // when each phase ended
	FirstWrite, FirstRead                        time.Duration // the RTO
	NewNodes                                     []string      // the new cluster's nodes, its first the active one
	Snapshot                                     int           // restored: the Nth from last taken before the loss
}

// Options describes one run.
type Options struct {
	Dir          string
	Scenario     string
	VaultVersion string
	Start        time.Time     // meta.json's started: the harness started, the cluster is not up yet
	Setup        time.Duration // cluster bring-up: the load starts at Start+Setup
	Seconds      int           // length of the load's schedule
	// Tail is the load's last, partial sample: what completed between the
	// last full second and the end of the drain (0 = none).
	Tail         time.Duration
	Seed         uint64
	Nodes        []string
	Leader       string
	Rates        map[string]int     // requests per second per operation
	BaseMs       map[string]float64 // median latency per operation
	LatencyScale float64            // multiplies every latency (1 = as is)
	Faults       []Fault
	CutAt        int // > 0: the harness was SIGKILLed at this second of the load
	Metrics      bool
	LostKeys     []string
	NoLedger     bool // skip ledger.jsonl (big for long runs; reports read it only for partial runs)

	// VerifyError makes the read-back fail after VerifyKeysRead keys:
	// summary.json then says verified false, and lost_writes fails.
	VerifyError    string
	VerifyKeysRead int64
	// NoLeaderAtEnd makes the final check find no leader.
	NoLeaderAtEnd string
	// Linearizable is the porcupine check's outcome: "" (yes), "no", or
	// "timeout" (null; no linearizable expectation, as in quorum-loss).
	Linearizable string

	// SnapshotEvery runs a snapshot agent beside the load: a snapshot
	// every interval from the load's start (0 = no agent). An attempt
	// while no node leads fails, as the agent's does.
	SnapshotEvery time.Duration
	// Restore makes the run a total loss and a restore from a snapshot.
	Restore *Restore
}

// The geometry load/ records with: nanoseconds, 1 µs to 60 s, 3 digits.
const (
	lowest  = int64(time.Microsecond)
	highest = int64(60 * time.Second)
	sigfig  = 3

	unavailableAfter = time.Second
	probeDelay       = 40 * time.Millisecond // the watcher sees a change this long after it happens
)

func newHist() *hdr.Histogram { return hdr.New(lowest, highest, sigfig) }

// Generate writes the run directory o.Dir.
func Generate(o Options) error {
	if o.LatencyScale == 0 {
		o.LatencyScale = 1
	}
	g := &gen{o: o, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))}
	return g.run()
}

type gen struct {
	o   Options
	rng *rand.Rand
	t0  time.Time // the load's first intended send

	timeline []rundir.Event // written in time order
	finish   []rundir.Event // written at the end, as the runner's finish does
	phases   []phase

	whole   map[string]*hdr.Histogram
	counts  map[string]*rundir.OpStats
	acked   int64
	unknown int64
	late    int64
	maxLag  float64
	version map[string]int
	outs    map[string][]outcome // per op, in intended-time order
	ledger  *rundir.Appender

	// The snapshot agent and the restore.
	snaps    []snapPlan
	restored *rundir.Snapshot
	firstOK  map[string]time.Duration // per op: the answer of the first success sent after the loss
	acks     []ack                    // every acknowledged write, in intended-time order
	keysAt   []int                    // keys written by the end of each second
	during   *hdr.Histogram
	outside  *hdr.Histogram
}

// snapPlan is one attempt of the snapshot agent.
type snapPlan struct {
	at, dur time.Duration // request start (from t0) and length
	node    string        // the active node that served it
	err     string        // the attempt failed
	rec     rundir.Snapshot
}

// ack is one acknowledged write: sent at t, answered at t+lat.
type ack struct{ t, at time.Duration }

// outcome is one request as the runner's unavailability windows see it.
type outcome struct {
	t            time.Duration // intended, from t0
	failed, slow bool
}

type phase struct {
	name       string
	start, end time.Time
	hist       map[string]*hdr.Histogram
	stats      map[string]*rundir.OpStats
}

func (g *gen) at(d time.Duration) time.Time { return g.t0.Add(d) }

func (g *gen) loadEnd() time.Time { return g.at(time.Duration(g.o.Seconds)*time.Second + g.o.Tail) }

func (g *gen) run() error {
	o := g.o
	g.t0 = o.Start.Add(o.Setup)
	if err := os.MkdirAll(filepath.Join(o.Dir, rundir.NodesDir), 0o755); err != nil {
		return err
	}
	meta := rundir.Meta{
		Tool: "vaultstorm synth", Command: "vaultstorm run " + o.Scenario,
		Scenario: o.Scenario, VaultVersion: o.VaultVersion, Nodes: len(o.Nodes),
		Provider: "process", Storage: "btrfs-raid0", Seal: "transit",
		Load: g.loadDesc(), Seed: int64(o.Seed), Started: o.Start, TimeScale: 1,
	}
	if err := rundir.WriteJSON(o.Dir, rundir.MetaFile, meta); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.Dir, rundir.ScenarioFile), []byte(g.scenarioHCL()), 0o644); err != nil {
		return err
	}
	g.planEvents()
	g.planPhases()
	g.planSnapshots()
	if err := g.simulate(); err != nil {
		return err
	}
	g.snapshotEvents()
	if err := g.writeEvents(); err != nil {
		return err
	}
	if o.Metrics {
		if err := g.writeMetrics(); err != nil {
			return err
		}
	}
	if err := g.writeNodeLogs(); err != nil {
		return err
	}
	if o.CutAt > 0 {
		// SIGKILLed: meta.json keeps no end, there is no summary.json, and
		// the append-only files may end in a torn line.
		cut := g.at(time.Duration(o.CutAt) * time.Second).Format(time.RFC3339Nano)
		for name, torn := range map[string]string{
			rundir.SamplesFile:    `{"t":"` + cut + `","ops":{"read":{"cou`,
			rundir.HistogramsFile: "Tag=read,61.000000,1.000000,3.1,HISTFAAAAFl42pNpmSz",
			rundir.EventsFile:     `{"t":"` + cut + `","kind":"node_st`,
		} {
			if err := appendRaw(filepath.Join(o.Dir, name), torn); err != nil {
				return err
			}
		}
		return nil
	}
	sum := g.summary()
	if err := rundir.WriteJSON(o.Dir, rundir.SummaryFile, sum); err != nil {
		return err
	}
	meta.Ended = g.ended()
	if err := rundir.WriteJSON(o.Dir, rundir.MetaFile, meta); err != nil {
		return err
	}
	return g.appendEvents([]rundir.Event{{T: g.ended(), Kind: rundir.EvRunEnd}})
}

// ended is when the harness finished: after the drain, the read-back and
// the final check.
func (g *gen) ended() time.Time { return g.loadEnd().Add(2 * time.Second) }

func appendRaw(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (g *gen) ops() []string {
	var ops []string
	for op := range g.o.Rates {
		ops = append(ops, op)
	}
	order := map[string]int{"read": 0, "write": 1, "list": 2, "delete": 3}
	sort.Slice(ops, func(i, j int) bool { return order[ops[i]] < order[ops[j]] })
	return ops
}

func (g *gen) totalRate() int {
	n := 0
	for _, r := range g.o.Rates {
		n += r
	}
	return n
}

func (g *gen) loadDesc() string {
	var parts []string
	for _, op := range g.ops() {
		parts = append(parts, fmt.Sprintf("%s=%d", op, g.o.Rates[op]))
	}
	return fmt.Sprintf("%d req/s for %ds, %s, 5000 keys, 256 B values, target active", g.totalRate(), g.o.Seconds, strings.Join(parts, ","))
}

// simulate runs the schedule second by second, writing samples.jsonl,
// histograms.hlog and ledger.jsonl as the load does.
func (g *gen) simulate() error {
	o := g.o
	samples, err := rundir.OpenAppender(o.Dir, rundir.SamplesFile)
	if err != nil {
		return err
	}
	defer samples.Close()
	hf, err := os.Create(filepath.Join(o.Dir, rundir.HistogramsFile))
	if err != nil {
		return err
	}
	defer hf.Close()
	hbuf := bufio.NewWriterSize(hf, 1<<16)
	if !o.NoLedger {
		if g.ledger, err = rundir.OpenAppender(o.Dir, rundir.LedgerFile); err != nil {
			return err
		}
		defer g.ledger.Close()
	}
	startMs := g.t0.UnixMilli()
	lw := hdr.NewHistogramLogWriter(hbuf)
	lw.SetBaseTime(startMs)
	lw.OutputLogFormatVersion()
	lw.OutputComment("[vaultstorm load: latency from intended send time, values in ns, one tag per operation: read write list delete]")
	lw.OutputStartTime(startMs)
	lw.OutputBaseTime(startMs)
	lw.OutputLegend()

	g.whole = map[string]*hdr.Histogram{}
	g.counts = map[string]*rundir.OpStats{}
	g.version = map[string]int{}
	g.outs = map[string][]outcome{}
	ops := g.ops()
	for _, op := range ops {
		g.whole[op] = newHist()
		g.counts[op] = &rundir.OpStats{}
	}
	secs := o.Seconds
	if o.CutAt > 0 {
		secs = o.CutAt
	}
	end := time.Duration(o.Seconds) * time.Second
	// Requests of the last second still in flight when the schedule ends
	// complete in the tail: the load's last, partial sample.
	tail := map[string]*rundir.OpStats{}
	tailH := map[string]*hdr.Histogram{}
	for _, op := range ops {
		tail[op], tailH[op] = &rundir.OpStats{}, newHist()
	}
	add := func(st *rundir.OpStats, h *hdr.Histogram, lat time.Duration, class string) {
		st.Count++
		h.RecordValue(min(max(int64(lat), lowest), highest))
		if class != "" {
			st.Errors++
			if st.ByErr == nil {
				st.ByErr = map[string]int64{}
			}
			st.ByErr[class]++
		}
	}
	emit := func(t0 time.Time, length time.Duration, stats map[string]*rundir.OpStats, hs map[string]*hdr.Histogram, late int64) error {
		sec := length.Seconds()
		smp := rundir.Sample{T: t0.UTC(), Ops: map[string]rundir.OpStats{}, LateSends: late, Interval: math.Round(sec*1000) / 1000}
		ph := g.phaseAt(t0)
		for _, op := range ops {
			st, h := *stats[op], hs[op]
			st.Rate = math.Round(float64(st.Count)/sec*1000) / 1000
			fillPct(&st, h)
			smp.Ops[op] = st
			c := g.counts[op]
			c.Count += st.Count
			c.Errors += st.Errors
			for k, v := range st.ByErr {
				if c.ByErr == nil {
					c.ByErr = map[string]int64{}
				}
				c.ByErr[k] += v
			}
			g.whole[op].Merge(h)
			if ph != nil {
				ps := ph.stats[op]
				ps.Count += st.Count
				ps.Errors += st.Errors
				for k, v := range st.ByErr {
					if ps.ByErr == nil {
						ps.ByErr = map[string]int64{}
					}
					ps.ByErr[k] += v
				}
				ph.hist[op].Merge(h)
			}
			h.SetTag(op)
			h.SetStartTimeMs(t0.UnixMilli())
			h.SetEndTimeMs(t0.Add(length).UnixMilli())
			if err := lw.OutputIntervalHistogram(h); err != nil {
				return err
			}
		}
		return samples.Append(smp)
	}
	for s := 0; s < secs; s++ {
		t0 := g.at(time.Duration(s) * time.Second)
		var late int64
		if g.rng.Float64() < 0.02 {
			late = int64(g.rng.IntN(3))
			g.late += late
			g.maxLag = max(g.maxLag, 2+3*g.rng.Float64())
		}
		stats := map[string]*rundir.OpStats{}
		hs := map[string]*hdr.Histogram{}
		for _, op := range ops {
			stats[op], hs[op] = &rundir.OpStats{}, newHist()
			n := o.Rates[op]
			n += int(float64(n) * 0.02 * (g.rng.Float64()*2 - 1))
			for i := 0; i < n; i++ {
				t := time.Duration(s)*time.Second + time.Duration(i)*time.Second/time.Duration(n)
				lat, class := g.request(op, t)
				g.outs[op] = append(g.outs[op], outcome{t: t, failed: class != "", slow: lat > unavailableAfter})
				if o.Restore != nil && class == "" {
					g.served(op, t, lat)
				}
				if g.snaps != nil {
					h := g.outside
					if g.inSnapshot(t) {
						h = g.during
					}
					h.RecordValue(max(lat.Microseconds(), 1))
				}
				if o.Tail > 0 && s == o.Seconds-1 && t+lat > end {
					add(tail[op], tailH[op], lat, class)
				} else {
					add(stats[op], hs[op], lat, class)
				}
				if op != "write" {
					continue
				}
				key := fmt.Sprintf("vaultstorm/k%05d", g.rng.IntN(5000))
				switch class {
				case "":
					g.acked++
					g.version[key]++
					if g.snaps != nil || o.Restore != nil {
						g.acks = append(g.acks, ack{t, t + lat})
					}
					g.ledgerLine(t, lat, key, rundir.LedgerEntry{Version: g.version[key], Outcome: "ok"})
				case "timeout":
					g.unknown++
					g.ledgerLine(t, lat, key, rundir.LedgerEntry{Outcome: "unknown"})
				}
			}
		}
		if err := emit(t0, time.Second, stats, hs, late); err != nil {
			return err
		}
		g.keysAt = append(g.keysAt, len(g.version))
	}
	if o.Tail > 0 && o.CutAt == 0 {
		if err := emit(g.at(end), o.Tail, tail, tailH, 0); err != nil {
			return err
		}
	}
	return hbuf.Flush()
}

// request simulates one request scheduled at offset t: its latency from the
// intended send time, or its error class.
func (g *gen) request(op string, t time.Duration) (time.Duration, string) {
	base := g.o.BaseMs[op]
	if base == 0 {
		base = 2
	}
	ms := base * math.Exp(0.35*g.rng.NormFloat64())
	if g.rng.Float64() < 0.003 {
		ms *= 4 + 6*g.rng.Float64() // GC pauses, fsync stalls
	}
	if g.inSnapshot(t) {
		ms *= 1.8 // the active node streams its whole state out
	}
	for _, f := range g.o.Faults {
		if t < f.At-f.Action {
			continue
		}
		rel := t - (f.At - f.Action) // from the fault action's start
		if t >= f.At && (f.Heal == 0 || t-f.At < f.Heal) {
			ms *= 1.6 // replication catch-up, snapshot install
		}
		writeLike := op == "write" || op == "delete"
		if f.OutageClass != "" && (writeLike && rel < f.WriteOutage || !writeLike && rel < f.ReadOutage && g.rng.Float64()*100 < f.ReadFailPct) {
			return time.Duration(ms * float64(time.Millisecond)), f.OutageClass
		}
		if writeLike && (rel < f.WriteOutage || f.WriteOutage < 0) {
			// The first part of the outage fails fast (no leader, connection
			// refused); requests sent later wait for the new leader and count
			// their whole wait, as an open-loop client sees it. A negative
			// outage never ends (quorum lost).
			if f.WriteOutage < 0 || rel < f.WriteOutage*6/10 {
				if g.rng.Float64() < 0.08 {
					return 10 * time.Second, "timeout"
				}
				return time.Duration(ms * float64(time.Millisecond)), "no_leader"
			}
			ms += float64(f.WriteOutage-rel) / float64(time.Millisecond)
		}
		if !writeLike && (rel < f.ReadOutage || f.ReadOutage < 0) && g.rng.Float64()*100 < f.ReadFailPct {
			return time.Duration(ms * float64(time.Millisecond)), "conn_refused"
		}
	}
	return time.Duration(ms * g.o.LatencyScale * float64(time.Millisecond)), ""
}

func (g *gen) ledgerLine(t, lat time.Duration, key string, e rundir.LedgerEntry) {
	if g.ledger == nil {
		return
	}
	e.Key = key
	e.Sent = g.at(t).UTC()
	e.T = g.at(t + lat).UTC()
	sum := sha256.Sum256(fmt.Appendf(nil, "%s@%d@%d", key, g.version[key], t))
	e.Digest = hex.EncodeToString(sum[:])
	_ = g.ledger.Append(e)
}

func fillPct(st *rundir.OpStats, h *hdr.Histogram) {
	if h.TotalCount() == 0 {
		return
	}
	ms := func(q float64) float64 { return math.Round(float64(h.ValueAtQuantile(q))/1e3) / 1e3 }
	st.P50, st.P90, st.P99, st.P999 = ms(50), ms(90), ms(99), ms(99.9)
	st.Max = math.Round(float64(h.Max())/1e3) / 1e3
}

// planEvents lays out the run's events as the runner and its watcher
// write them.
func (g *gen) planEvents() {
	o := g.o
	ev := func(t time.Time, e rundir.Event) {
		e.T = t.UTC()
		g.timeline = append(g.timeline, e)
	}
	ev(o.Start, rundir.Event{Kind: rundir.EvRunStart, Msg: o.Scenario})
	watch := g.t0.Add(-time.Second) // the watcher starts once the cluster is up
	for _, n := range o.Nodes {
		st := "follower"
		if n == o.Leader {
			st = "leader"
		}
		ev(watch, rundir.Event{Kind: rundir.EvNodeState, Node: n, State: st})
	}
	ev(watch, rundir.Event{Kind: rundir.EvLeader, Node: o.Leader})
	ev(g.t0, rundir.Event{Kind: rundir.EvPhase, Phase: "before"})
	for i, f := range o.Faults {
		idx := i + 1
		targets := strings.Join(f.Nodes, ",")
		if f.Notice > 0 {
			ev(g.at(f.At-f.Notice), rundir.Event{Kind: rundir.EvFaultNotice, Fault: idx,
				Msg: fmt.Sprintf("spot interruption notice: gone in %s", f.Notice)})
		}
		ev(g.at(f.At), rundir.Event{Kind: rundir.EvFaultStart, Fault: idx, Node: targets, Msg: f.Kind})
		for _, n := range f.Nodes {
			ev(g.at(f.At-f.Action+probeDelay), rundir.Event{Kind: rundir.EvNodeState, Node: n, State: "down"})
		}
		switch {
		case f.Kind == "total_loss":
			// The cluster has no node left once the action returned: the
			// watcher drops them all. The new leader comes with the
			// restore.
			for _, n := range f.Nodes {
				ev(g.at(f.At), rundir.Event{Kind: rundir.EvNodeState, Node: n, State: "removed"})
			}
			g.finish = append(g.finish, rundir.Event{T: g.at(f.At - f.Action + f.WriteOutage).UTC(), Kind: rundir.EvWriteOK, Fault: idx})
			g.finish = append(g.finish, rundir.Event{T: g.at(f.At + f.Heal).UTC(), Kind: rundir.EvHealed, Fault: idx})
			continue
		case f.Kind == "restore" && o.Restore != nil:
			g.restoreEvents(idx, ev)
			if f.Heal > 0 {
				g.finish = append(g.finish, rundir.Event{T: g.at(f.At + f.Heal).UTC(), Kind: rundir.EvHealed, Fault: idx})
			}
			continue
		}
		if f.Election > 0 {
			ev(g.at(f.At+f.Election), rundir.Event{Kind: rundir.EvNodeState, Node: f.NewLeader, State: "leader"})
			ev(g.at(f.At+f.Election), rundir.Event{Kind: rundir.EvLeader, Node: f.NewLeader})
		}
		if f.Restart > 0 {
			lifted := g.at(f.At + f.Restart)
			boot := f.Nodes
			msg := "lifted"
			if f.Replacement != "" {
				boot = []string{f.Replacement}
				ev(lifted, rundir.Event{Kind: rundir.EvNodeState, Node: f.Replacement, State: "replaced",
					Msg: fmt.Sprintf("replacement for fault %d", idx)})
				msg = "replacement launched: " + f.Replacement
			}
			ev(lifted, rundir.Event{Kind: rundir.EvFaultEnd, Fault: idx, Node: targets, Msg: msg})
			for _, n := range boot {
				ev(lifted.Add(probeDelay), rundir.Event{Kind: rundir.EvNodeState, Node: n, State: "sealed"})
				ev(lifted.Add(f.Unseal), rundir.Event{Kind: rundir.EvNodeState, Node: n, State: "follower"})
			}
		}
		// write_ok and healed come from the runner's finish, at the end.
		if f.WriteOutage > 0 {
			g.finish = append(g.finish, rundir.Event{T: g.at(f.At + f.WriteOutage).UTC(), Kind: rundir.EvWriteOK, Fault: idx})
		}
		if f.Heal > 0 {
			g.finish = append(g.finish, rundir.Event{T: g.at(f.At + f.Heal).UTC(), Kind: rundir.EvHealed, Fault: idx})
		}
	}
	for _, p := range g.phaseBounds()[1:] {
		ev(p.start, rundir.Event{Kind: rundir.EvPhase, Phase: p.name})
	}
	sort.SliceStable(g.timeline, func(i, j int) bool { return g.timeline[i].T.Before(g.timeline[j].T) })
}

// phaseBounds is the runner's one sequence of phases: before until the
// first fault acts, during until every fault is lifted (or acted, for one
// that is never lifted), recovery until the cluster is healthy again,
// after from then to the end of the load.
func (g *gen) phaseBounds() []phase {
	o := g.o
	end := g.loadEnd()
	if len(o.Faults) == 0 {
		return []phase{{name: "before", start: g.t0, end: end}}
	}
	first, lifted, healed := o.Faults[0].At-o.Faults[0].Action, time.Duration(0), time.Duration(0)
	allHealed := true
	for _, f := range o.Faults {
		first = min(first, f.At-f.Action)
		lifted = max(lifted, f.At+f.Restart)
		if f.Heal == 0 {
			allHealed = false
		}
		healed = max(healed, f.At+f.Heal)
	}
	during := g.at(first - time.Millisecond)
	ps := []phase{{name: "before", start: g.t0, end: during}, {name: "during", start: during, end: g.at(lifted)}}
	if !allHealed {
		return append(ps, phase{name: "recovery", start: g.at(lifted), end: end})
	}
	healed = max(healed, lifted+100*time.Millisecond)
	return append(ps, phase{name: "recovery", start: g.at(lifted), end: g.at(healed)}, phase{name: "after", start: g.at(healed), end: end})
}

func (g *gen) planPhases() {
	for _, p := range g.phaseBounds() {
		if g.o.CutAt > 0 && !p.start.Before(g.at(time.Duration(g.o.CutAt)*time.Second)) {
			break
		}
		p.hist = map[string]*hdr.Histogram{}
		p.stats = map[string]*rundir.OpStats{}
		for _, op := range g.ops() {
			p.hist[op] = newHist()
			p.stats[op] = &rundir.OpStats{}
		}
		g.phases = append(g.phases, p)
	}
}

func (g *gen) phaseAt(t time.Time) *phase {
	for i := range g.phases {
		p := &g.phases[i]
		if !t.Before(p.start) && t.Before(p.end) {
			return p
		}
	}
	return nil
}

// writeEvents appends the timeline (up to the cut, for a killed run) and,
// for a run that reached its end, the finish events after it.
func (g *gen) writeEvents() error {
	var evs []rundir.Event
	cut := g.at(time.Duration(g.o.CutAt) * time.Second)
	for _, e := range g.timeline {
		if g.o.CutAt > 0 && !e.T.Before(cut) {
			break
		}
		evs = append(evs, e)
	}
	if g.o.CutAt == 0 {
		evs = append(evs, g.finish...)
	}
	return g.appendEvents(evs)
}

func (g *gen) appendEvents(evs []rundir.Event) error {
	a, err := rundir.OpenAppender(g.o.Dir, rundir.EventsFile)
	if err != nil {
		return err
	}
	for _, e := range evs {
		if err := a.Append(e); err != nil {
			a.Close()
			return err
		}
	}
	return a.Close()
}

// nodeStates replays the node_state events up to t.
func (g *gen) nodeStates(t time.Time) map[string]string {
	st := map[string]string{}
	for _, e := range g.timeline {
		if e.T.After(t) {
			break
		}
		if e.Kind == rundir.EvNodeState {
			if e.State == "leader" {
				for n, s := range st {
					if s == "leader" && n != e.Node {
						st[n] = "follower"
					}
				}
			}
			st[e.Node] = e.State
		}
	}
	return st
}

// scraped reports whether the scraper polls node at t: it follows the
// cluster's node list, so a replacement is scraped from its launch and a
// reclaimed node no more once its replacement is launched.
func (g *gen) scraped(node string, t time.Time) bool {
	if rs := g.o.Restore; rs != nil {
		// A total loss: the old nodes are dropped once it returned, the
		// new ones followed from their provisioning on.
		if slices.Contains(rs.NewNodes, node) {
			return !t.Before(g.at(g.loss() + rs.Provision))
		}
		for _, f := range g.o.Faults {
			if f.Kind == "total_loss" && slices.Contains(f.Nodes, node) && !t.Before(g.at(f.At)) {
				return false
			}
		}
	}
	for _, f := range g.o.Faults {
		if f.Replacement == "" || f.Restart == 0 {
			continue
		}
		launched := g.at(f.At + f.Restart)
		if node == f.Replacement && t.Before(launched) {
			return false
		}
		if slices.Contains(f.Nodes, node) && !t.Before(launched) {
			return false
		}
	}
	return true
}

func (g *gen) writeMetrics() error {
	dir := filepath.Join(g.o.Dir, rundir.MetricsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	type acc struct{ commitSum, commitCnt, lcSum, lcCnt, hrSum, hrCnt float64 }
	accs := map[string]*acc{}
	outs := map[string]*rundir.Appender{}
	names := slices.Clone(g.o.Nodes)
	for _, f := range g.o.Faults {
		if f.Replacement != "" && f.Restart > 0 {
			names = append(names, f.Replacement)
		}
	}
	if g.o.Restore != nil {
		names = append(names, g.o.Restore.NewNodes...)
	}
	defer func() {
		for _, a := range outs {
			a.Close()
		}
	}()
	secs := g.o.Seconds
	if g.o.CutAt > 0 {
		secs = g.o.CutAt
	}
	total := g.totalRate()
	for s := 0; s < secs; s++ {
		t := g.at(time.Duration(s)*time.Second + 300*time.Millisecond)
		st := g.nodeStates(t)
		stress := 1.0
		for _, f := range g.o.Faults {
			rel := t.Sub(g.at(f.At))
			if rel >= 0 && (f.Heal == 0 || rel < f.Heal) {
				stress = 2.5
				if rel < f.WriteOutage {
					stress = 12
				}
			}
		}
		up := 0
		for _, n := range names {
			if s := st[n]; s == "leader" || s == "follower" {
				up++
			}
		}
		for _, n := range names {
			if !g.scraped(n, t) {
				continue
			}
			if outs[n] == nil {
				a, err := rundir.OpenAppender(dir, n+metrics.Suffix)
				if err != nil {
					return err
				}
				outs[n], accs[n] = a, &acc{}
			}
			p := metrics.Point{T: t.UTC(), Node: n}
			switch st[n] {
			case "", "down", "replaced":
				p.Err = fmt.Sprintf("Get \"https://%s:8200/v1/sys/metrics?format=prometheus\": dial tcp: connect: connection refused", n)
			case "sealed":
				p.Err = `HTTP 503: {"errors":["Vault is sealed"]}`
			default:
				a := accs[n]
				j := 1 + 0.15*g.rng.NormFloat64()
				p.V = map[string]float64{}
				if st[n] == "leader" {
					c := float64(g.o.Rates["write"])
					mean := 1.1 * stress * j * g.o.LatencyScale
					a.commitSum += c * mean
					a.commitCnt += c
					p.V[metrics.Quantile(metrics.RaftCommitTime, 0.5)] = mean * 0.9
					p.V[metrics.Quantile(metrics.RaftCommitTime, 0.9)] = mean * 1.6
					p.V[metrics.Quantile(metrics.RaftCommitTime, 0.99)] = mean * 2.8
					p.V[metrics.RaftCommitTime+"_sum"] = a.commitSum
					p.V[metrics.RaftCommitTime+"_count"] = a.commitCnt
					lc := 18 * stress * j
					a.lcSum += 4 * lc
					a.lcCnt += 4
					p.V[metrics.Quantile(metrics.LeaderLastContact, 0.5)] = lc
					p.V[metrics.LeaderLastContact+"_sum"] = a.lcSum
					p.V[metrics.LeaderLastContact+"_count"] = a.lcCnt
					p.V["vault_core_active"] = 1
				}
				share := float64(total) / float64(max(up, 1))
				hr := 0.7 * g.o.BaseMs["read"] * j * min(stress, 3) * g.o.LatencyScale
				a.hrSum += share * hr
				a.hrCnt += share
				p.V[metrics.Quantile(metrics.HandleRequest, 0.99)] = hr * 3
				p.V[metrics.HandleRequest+"_sum"] = a.hrSum
				p.V[metrics.HandleRequest+"_count"] = a.hrCnt
				p.V["vault_core_unsealed"] = 1
				p.V["vault_runtime_num_goroutines"] = 310 + float64(g.rng.IntN(40))
			}
			if err := outs[n].Append(p); err != nil {
				return err
			}
		}
	}
	return nil
}

func (g *gen) writeNodeLogs() error {
	names := slices.Clone(g.o.Nodes)
	if g.o.Restore != nil {
		names = append(names, g.o.Restore.NewNodes...)
	}
	for _, f := range g.o.Faults {
		if f.Replacement != "" && f.Restart > 0 {
			names = append(names, f.Replacement)
		}
	}
	for _, n := range names {
		log := fmt.Sprintf("%s [INFO]  core: vault is unsealed\n%s [INFO]  storage.raft: entering follower state: follower=\"Node at %s:8201 [Follower]\"\n",
			g.t0.Format("2006-01-02T15:04:05.000Z"), g.t0.Add(time.Second).Format("2006-01-02T15:04:05.000Z"), n)
		if err := os.WriteFile(filepath.Join(g.o.Dir, rundir.NodesDir, n+".log"), []byte(log), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (g *gen) scenarioHCL() string {
	if g.o.Restore != nil {
		return g.drHCL()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s (synthetic)\nname = %q\n\ncluster {\n  nodes = %d\n}\n\n", g.o.Scenario, g.o.Scenario, len(g.o.Nodes))
	fmt.Fprintf(&b, "load {\n  rate     = %d\n  duration = \"%ds\"\n}\n", g.totalRate(), g.o.Seconds)
	for _, f := range g.o.Faults {
		fmt.Fprintf(&b, "\nfault %q {\n  at     = %q\n  target = %q\n}\n", f.Kind, f.At, strings.Join(f.Nodes, ","))
	}
	b.WriteString("\nexpect {\n  max_unavailability = \"10s\"\n  lost_writes        = 0\n  healed_within      = \"60s\"\n  leader_within      = \"10s\"\n  p99_during_fault   = \"5s\"\n")
	fmt.Fprintf(&b, "  min_voters_after   = %d\n  dead_peers_removed = true\n", len(g.o.Nodes))
	if g.o.Linearizable != "timeout" {
		b.WriteString("  linearizable       = true\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// window is the longest run of unavailable requests (failed, or with slow
// also slower than unavailable_after), in intended-time order, inside
// [from, to): from the first such request to the first available one
// after it (or to).
func window(outs []outcome, from, to time.Duration, slow bool) time.Duration {
	var best time.Duration
	start := time.Duration(-1)
	for _, o := range outs {
		if o.t < from {
			continue
		}
		if o.t >= to {
			break
		}
		down := o.failed || slow && o.slow
		switch {
		case down && start < 0:
			start = o.t
		case !down && start >= 0:
			best = max(best, o.t-start)
			start = -1
		}
	}
	if start >= 0 {
		best = max(best, to-start)
	}
	return best
}

func (g *gen) summary() rundir.Summary {
	o := g.o
	ops := g.ops()
	dur := float64(o.Seconds)
	var requests int64
	for _, op := range ops {
		requests += g.counts[op].Count
	}
	keys := int64(len(g.version))
	s := rundir.Summary{
		Ops: map[string]rundir.OpStats{}, AckedWrites: g.acked, UnknownWrites: g.unknown,
		LostWrites: int64(len(o.LostKeys)), LostKeys: o.LostKeys, LateSends: g.late,
		Duration: dur, Scenario: o.Scenario, AchievedRate: float64(requests) / dur,
		LateThresholdMs: 2, MaxSendLagMs: math.Round(g.maxLag*1000) / 1000, PeakWorkers: 12, ConnsOpened: 12,
		Verified: true, KeysRead: keys, KeysToRead: keys, PresentKeys: keys - int64(len(o.LostKeys)),
		UnavailableAfterMs: ms(unavailableAfter),
		GeneratorLatePct:   math.Round(100000*float64(g.late)/float64(max(requests, 1))) / 1000,
	}
	reached := true
	s.RateReached = &reached
	for _, op := range ops {
		st := *g.counts[op]
		st.Rate = float64(st.Count) / dur
		fillPct(&st, g.whole[op])
		s.Ops[op] = st
		s.TargetRate += float64(o.Rates[op])
	}
	if o.VerifyError != "" {
		s.Verified, s.VerifyError, s.KeysRead, s.PresentKeys = false, o.VerifyError, o.VerifyKeysRead, o.VerifyKeysRead
		s.LostWrites, s.LostKeys = 0, nil
	}
	for _, p := range g.phases {
		ps := rundir.PhaseStats{Phase: p.name, Start: p.start.UTC(), End: p.end.UTC(), Ops: map[string]rundir.OpStats{}}
		for _, op := range ops {
			st := *p.stats[op]
			st.Rate = float64(st.Count) / math.Max(1, math.Ceil(p.end.Sub(p.start).Seconds()))
			fillPct(&st, p.hist[op])
			ps.Ops[op] = st
		}
		s.Phases = append(s.Phases, ps)
	}

	// Recovery, as the runner measures it from the load's outcomes.
	s.Final = g.final()
	loadEnd := time.Duration(o.Seconds) * time.Second
	var faultSecs float64
	for _, f := range o.Faults {
		fr := rundir.FaultResult{Kind: f.Kind, Nodes: f.Nodes, At: g.at(f.At).UTC()}
		if f.Restart > 0 {
			fr.End = g.at(f.At + f.Restart).UTC()
		}
		if f.Election > 0 {
			v := ms(f.Election)
			fr.LeaderElectedMs = &v
		}
		to := loadEnd
		if f.Heal > 0 {
			v := ms(f.Heal)
			fr.HealedMs = &v
			to = min(to, f.At+f.Heal)
		} else {
			fr.Degraded = degraded(s.Final)
		}
		faultSecs += (to - f.At).Seconds()
		// The runner measures a fault's windows from its action's start.
		from := f.At - f.Action
		fr.WriteErrorWindowMs = ms(window(g.outs["write"], from, to, false))
		fr.WriteUnavailableMs = ms(window(g.outs["write"], from, to, true))
		fr.ReadErrorWindowMs = ms(window(g.outs["read"], from, to, false))
		fr.ReadUnavailableMs = ms(window(g.outs["read"], from, to, true))
		s.Faults = append(s.Faults, fr)
	}

	// The observer: a health probe of every node each second and autopilot
	// every other second outside faults, 50 ms on the nodes a fault
	// touches until it heals, a metrics scrape per node every 5 s.
	nodes := float64(len(o.Nodes))
	quiet := nodes + 0.5 + nodes/5
	s.HarnessByKind = map[string]int64{
		"health":    int64(dur*nodes + faultSecs*20),
		"autopilot": int64(dur/2 + faultSecs*20),
		"metrics":   int64(dur * nodes / 5),
		"final":     int64(len(o.Nodes) + 2),
	}
	for _, n := range s.HarnessByKind {
		s.HarnessRequests += n
	}
	s.HarnessRequestsPerS = math.Round(10*float64(s.HarnessRequests)/dur) / 10
	s.HarnessQuietPerS = quiet
	s.HarnessSharePct = math.Round(1000*quiet/float64(g.totalRate())) / 10

	// The snapshots, their cost, and what the restore gave back.
	if o.SnapshotEvery > 0 {
		for _, p := range g.snaps {
			s.Snapshots = append(s.Snapshots, p.rec)
		}
		s.SnapshotP99 = g.snapshotCost()
	}
	if o.Restore != nil {
		s.Restore = g.restoreResult()
	}

	// The sampled keys' history, checked by porcupine.
	s.HistoryKeys = 16
	s.HistoryOps = int(requests * 16 / 5000)
	yes := o.Linearizable == ""
	switch {
	case o.Restore != nil:
		// As the runner says it: not checked after a restore.
		s.HistoryKeys, s.HistoryOps = 0, 0
		s.Linearizability = "not checked: the cluster was restored from a snapshot, so the writes acknowledged after it are gone by design (the RPO): its history is not one register's"
	case o.Linearizable == "timeout":
		s.Linearizability = "timed out after 1m0s"
	case o.Linearizable == "no":
		s.Linearizability = "key vaultstorm/k00042: a read saw version 3 after version 4 was acknowledged"
		s.Linearizable = &yes
	default:
		s.Linearizable = &yes
	}

	s.Expectations = g.expectations(&s)
	passed := true
	for _, e := range s.Expectations {
		passed = passed && e.Passed
		if !e.Passed && strings.HasPrefix(e.Name, "generator_") {
			s.Invalid = append(s.Invalid, fmt.Sprintf("%s: want %s, got %s", e.Name, e.Want, e.Got))
		}
	}
	s.Passed = &passed
	return s
}

// degraded is how the runner names a fault the cluster never healed from.
func degraded(f *rundir.FinalState) string {
	if f.Error != "" {
		return "degraded (" + f.Error + ")"
	}
	return fmt.Sprintf("degraded (%d/%d voters)", len(f.Voters), f.IntendedVoters)
}

// final is the explicit end-of-run check, through the active node.
func (g *gen) final() *rundir.FinalState {
	o := g.o
	t := g.loadEnd().Add(time.Second).UTC()
	if o.NoLeaderAtEnd != "" {
		fs := &rundir.FinalState{T: t, Error: o.NoLeaderAtEnd, IntendedVoters: len(o.Nodes)}
		for n, st := range g.nodeStates(g.loadEnd()) {
			fn := rundir.FinalNode{Name: n, NodeID: n, State: st, Voter: true}
			if st != "down" {
				fn.Version = o.VaultVersion
			}
			fs.Nodes = append(fs.Nodes, fn)
		}
		sort.Slice(fs.Nodes, func(i, j int) bool { return fs.Nodes[i].Name < fs.Nodes[j].Name })
		return fs
	}
	fs := &rundir.FinalState{T: t, IntendedVoters: len(o.Nodes), AutopilotHealthy: true}
	states := g.nodeStates(g.loadEnd())
	var names []string
	for n := range states {
		if g.scraped(n, g.loadEnd()) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		st := states[n]
		voter := st == "leader" || st == "follower"
		fn := rundir.FinalNode{Name: n, NodeID: n, State: st, Voter: voter}
		if st != "down" {
			fn.Version = o.VaultVersion
		}
		fs.Nodes = append(fs.Nodes, fn)
		if voter {
			fs.Voters = append(fs.Voters, n)
			fs.Peers = append(fs.Peers, n)
		}
		if st == "leader" {
			fs.Leader = n
		}
	}
	return fs
}

// expectations judges the synthetic scenario's expect block the way the
// runner's judge does (scenarios/runner/results.go).
func (g *gen) expectations(s *rundir.Summary) []rundir.Expectation {
	var out []rundir.Expectation
	add := func(name, want, got string, ok bool) {
		out = append(out, rundir.Expectation{Name: name, Want: want, Got: got, Passed: ok})
	}
	if g.o.Restore != nil {
		g.drExpectations(s, add)
		return out
	}
	if !s.Verified {
		got := fmt.Sprintf("unverified (%d of %d keys read)", s.KeysRead, s.KeysToRead)
		if s.VerifyError != "" {
			got += ": " + s.VerifyError
		}
		add("lost_writes", "<= 0", got, false)
	} else {
		add("lost_writes", "<= 0", fmt.Sprint(s.LostWrites), s.LostWrites == 0)
	}
	worst := 0.0
	for _, f := range s.Faults {
		worst = max(worst, f.WriteUnavailableMs)
	}
	add("max_unavailability", "<= 10s", fmtMs(worst), worst <= 10000)
	for i, f := range s.Faults {
		name := fmt.Sprintf("healed_within (fault %d %s)", i+1, f.Kind)
		if f.HealedMs == nil {
			add(name, "<= 1m0s", f.Degraded, false)
			continue
		}
		add(name, "<= 1m0s", fmtMs(*f.HealedMs), *f.HealedMs <= 60000)
	}
	for i, f := range s.Faults {
		if f.LeaderElectedMs != nil {
			add(fmt.Sprintf("leader_within (fault %d %s)", i+1, f.Kind), "<= 10s", fmtMs(*f.LeaderElectedMs), *f.LeaderElectedMs <= 10000)
		}
	}
	if len(s.Faults) > 0 {
		p99, n := 0.0, int64(0)
		for _, p := range s.Phases {
			if p.Phase == "during" {
				for _, st := range p.Ops {
					p99 = max(p99, st.P99)
					n += st.Count
				}
			}
		}
		if n == 0 {
			add("p99_during_fault", "<= 5s", "not measured (no request during a fault)", false)
		} else {
			add("p99_during_fault", "<= 5s", fmtMs(p99), p99 <= 5000)
		}
	}
	fs := s.Final
	want := fmt.Sprintf(">= %d", len(g.o.Nodes))
	if fs.Error != "" {
		add("min_voters_after", want, "not measured: "+fs.Error, false)
		add("dead_peers_removed", "true", "not measured: "+fs.Error, false)
	} else {
		add("min_voters_after", want, fmt.Sprint(len(fs.Voters)), len(fs.Voters) >= len(g.o.Nodes))
		var left []string
		for _, f := range g.o.Faults {
			for _, n := range f.Nodes {
				if f.Replacement != "" && slices.Contains(fs.Peers, n) {
					left = append(left, n)
				}
			}
		}
		got := "all removed"
		if len(left) > 0 {
			got = "still peers: " + strings.Join(left, ",")
		}
		add("dead_peers_removed", "true", got, len(left) == 0)
	}
	if g.o.Linearizable != "timeout" {
		got := fmt.Sprint(*s.Linearizable)
		if s.Linearizability != "" {
			got += " (" + s.Linearizability + ")"
		}
		add("linearizable", "true", got, *s.Linearizable)
	}
	generatorExpectations(s, add)
	return out
}

// generatorExpectations are the two the runner judges in every run.
func generatorExpectations(s *rundir.Summary, add func(name, want, got string, ok bool)) {
	var n int64
	for _, st := range s.Ops {
		n += st.Count
	}
	pct := 100 * float64(s.LateSends) / float64(max(n, 1))
	add("generator_late_sends", "<= 1%", fmt.Sprintf("%.2f%% (%d of %d sent more than %gms late)", pct, s.LateSends, n, s.LateThresholdMs), pct <= 1)
	add("generator_max_lag", "<= 100ms", fmtMs(s.MaxSendLagMs), s.MaxSendLagMs <= 100)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fmtMs is how the runner prints a duration in an expectation.
func fmtMs(v float64) string {
	return (time.Duration(v * float64(time.Millisecond))).Round(time.Millisecond).String()
}

// SpotReclaim is the standard two-fault scenario of the checked-in test
// runs: a spot reclaim of a follower (replaced by a new node, node6), then
// a kill of the leader that restarts. seed varies the noise, not the shape.
func SpotReclaim(dir string, seed uint64, seconds int) Options {
	start := time.Date(2025, 6, 3, 2, 0, 0, 0, time.UTC)
	j := func(d time.Duration) time.Duration { // ±3 % run-to-run jitter
		r := rand.New(rand.NewPCG(seed, uint64(d)))
		return d + time.Duration(float64(d)*0.03*(r.Float64()*2-1))
	}
	scale := time.Duration(seconds) * time.Second / 120
	return Options{
		Dir: dir, Scenario: "spot-reclaim", VaultVersion: "1.21.0", Start: start,
		Setup: 6 * time.Second, Tail: 88 * time.Millisecond,
		Seconds: seconds, Seed: seed, Metrics: true,
		Nodes:  []string{"node1", "node2", "node3", "node4", "node5"},
		Leader: "node1",
		Rates:  map[string]int{"read": 160, "write": 40},
		BaseMs: map[string]float64{"read": 1.6, "write": 5.5},
		Faults: []Fault{
			{Kind: "spot_reclaim", Nodes: []string{"node3"}, Notice: 10 * time.Second, At: 30 * scale,
				ReadOutage: j(1200 * time.Millisecond), ReadFailPct: 20, WriteOutage: j(350 * time.Millisecond),
				Restart: j(8 * time.Second), Replacement: "node6", Unseal: j(2500 * time.Millisecond), Heal: j(16 * time.Second)},
			{Kind: "kill", Nodes: []string{"node1"}, At: 70 * scale, Election: j(2100 * time.Millisecond), NewLeader: "node2",
				WriteOutage: j(2600 * time.Millisecond), ReadOutage: j(2300 * time.Millisecond), ReadFailPct: 60,
				Restart: j(9 * time.Second), Unseal: j(2 * time.Second), Heal: j(15 * time.Second)},
		},
	}
}

// QuorumLoss kills three of five nodes, the leader among them, for good:
// writes never come back, the read-back finds no leader, the final check
// has no state, and the run is degraded, never healed.
func QuorumLoss(dir string, seed uint64, seconds int) Options {
	o := SpotReclaim(dir, seed, seconds)
	o.Scenario = "quorum-loss"
	o.Faults = []Fault{{Kind: "kill", Nodes: []string{"node1", "node2", "node3"}, At: time.Duration(seconds) * time.Second / 3,
		WriteOutage: -1, ReadOutage: -1, ReadFailPct: 100}}
	o.VerifyError = "no leader: every node answered 503 (no active node)"
	o.NoLeaderAtEnd = "no leader: node4 and node5 are standbys without quorum"
	o.Linearizable = "timeout"
	return o
}
