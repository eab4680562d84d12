package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/hashicorp/vault/api"

	"github.com/vaultstorm/vaultstorm/chaos"
	"github.com/vaultstorm/vaultstorm/checkers"
	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/cluster/watch"
	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/scenarios"
	"github.com/vaultstorm/vaultstorm/snapshots"
)

// SnapshotsDir is where a run's snapshots go when the scenario names no
// store: under the run directory, off the RAID0 arrays (the "redundant
// storage" of the seed).
const SnapshotsDir = "snapshots"

// backups is the run's snapshot agent and what it and a restore did.
type backups struct {
	store *snapshots.Store

	mu       sync.Mutex
	taken    []rundir.Snapshot
	restored *snapshots.Info // the snapshot a restore used
	phases   []rundir.RestorePhase
	restErr  string
	phaseAt  map[string]time.Time
}

// startSnapshots opens the scenario's store and runs the snapshot agent
// beside the load until ctx ends, taking snapshots from the active node
// with a token that may do nothing else.
func (r *run) startSnapshots(ctx context.Context, caFile string, bg *sync.WaitGroup) error {
	spec := r.sc.Snapshots
	url := spec.Store
	if url == "" {
		abs, err := filepath.Abs(filepath.Join(r.o.OutDir, SnapshotsDir))
		if err != nil {
			return err
		}
		url = "file://" + abs
	}
	store, err := snapshots.OpenStore(ctx, url)
	if err != nil {
		return err
	}
	r.backups = &backups{store: store, phaseAt: map[string]time.Time{}}
	root, err := r.c.Client(r.c.State.Nodes[0])
	if err != nil {
		return err
	}
	token, err := snapshots.EnsurePolicy(ctx, root)
	if err != nil {
		return fmt.Errorf("snapshot agent: %w", err)
	}
	clients := map[string]*api.Client{}
	agent := &snapshots.Agent{
		Store: store, Interval: spec.Interval, Retain: spec.Retain,
		// Yields to the generator as the nodes do (up --node-nice).
		Nice: r.c.State.Spec.NodeNice,
		Active: func(ctx context.Context) (*api.Client, error) {
			n, route := r.w.Target()
			if route != watch.RouteActive {
				return nil, errors.New("no active node")
			}
			if cl := clients[n.Addr]; cl != nil {
				return cl, nil
			}
			cl, err := snapshots.NewClient(n.Addr, caFile, token)
			if err != nil {
				return nil, err
			}
			clients[n.Addr] = cl
			return cl, nil
		},
		OnSnapshot: func(i snapshots.Info) {
			r.backups.mu.Lock()
			r.backups.taken = append(r.backups.taken, record(i))
			r.backups.mu.Unlock()
			r.event(rundir.Event{T: i.Started, Kind: rundir.EvSnapshot, Msg: fmt.Sprintf("%s: %d bytes, raft index %d, %s", i.Name, i.Size, i.Index, i.Duration().Round(time.Millisecond))})
		},
		OnError: func(err error) {
			r.backups.mu.Lock()
			r.backups.taken = append(r.backups.taken, rundir.Snapshot{Started: time.Now(), Error: err.Error()})
			r.backups.mu.Unlock()
			r.event(rundir.Event{Kind: rundir.EvNote, Msg: "snapshot agent: " + err.Error()})
		},
	}
	r.logf("snapshot agent: every %s into %s, keeping %d", spec.Interval, store.URL(), spec.Retain)
	bg.Add(1)
	go func() {
		defer bg.Done()
		defer store.Close()
		_ = agent.Run(ctx)
	}()
	return nil
}

// record is a snapshot as the run directory keeps it.
func record(i snapshots.Info) rundir.Snapshot {
	return rundir.Snapshot{Name: i.Name, Started: i.Started, Ended: i.Ended, Size: i.Size, SHA256: i.SHA256, Index: i.Index, Term: i.Term, Node: i.Node}
}

// restoreFault is the restore fault of the scenario's i-th fault: it opens
// the chosen snapshot taken before the total loss it follows, and hands
// the watcher the new nodes as soon as they run, so the load follows them.
func (r *run) restoreFault(f scenarios.Fault) chaos.Fault {
	return chaos.Restore{
		Nodes: r.sc.Cluster.Nodes, Timeout: f.Timeout,
		Open: func(ctx context.Context) (io.ReadCloser, string, error) {
			if r.backups == nil {
				return nil, "", errors.New("no snapshot agent ran (the scenario has no snapshots block)")
			}
			loss, _ := r.lossAt(f.Index)
			infos, err := r.backups.store.List(ctx)
			if err != nil {
				return nil, "", err
			}
			var before []snapshots.Info
			for _, i := range infos { // newest first
				if i.Ended.Before(loss) {
					before = append(before, i)
				}
			}
			if f.Snapshot >= len(before) {
				return nil, "", fmt.Errorf("snapshot %d from last wanted, %d taken before the loss", f.Snapshot, len(before))
			}
			rc, info, err := r.backups.store.Open(ctx, before[f.Snapshot].Name)
			if err != nil {
				return nil, "", err
			}
			r.backups.mu.Lock()
			r.backups.restored = &info
			r.backups.mu.Unlock()
			r.logf("fault %d: restoring %s (taken %s, raft index %d)", f.Index, info.Name, info.Started.Local().Format("15:04:05.000"), info.Index)
			return rc, info.Name, nil
		},
		// Called from within the fault action (opMu held, on its goroutine).
		Phase: func(name string) {
			now := time.Now()
			r.backups.mu.Lock()
			r.backups.phaseAt[name] = now
			r.backups.mu.Unlock()
			r.event(rundir.Event{T: now, Kind: rundir.EvNote, Fault: f.Index, Msg: "restore: " + name + " done"})
			if name == cluster.RestoreProvisioned || name == cluster.RestoreInitialized {
				r.w.SetNodes(watchNodes(r.c))
			}
		},
	}
}

// lossAt is when the last total loss before fault index began, and when
// it was complete (every node dead). A snapshot must have ended before the
// loss began to be one taken "before" it; a write acknowledged until the
// loss was complete went to the old cluster (the kills take a moment, the
// leader may still answer), so only later ones must be in the restored one.
func (r *run) lossAt(index int) (began, done time.Time) {
	r.frMu.Lock()
	defer r.frMu.Unlock()
	for _, fr := range r.faults {
		if fr.spec.Index < index && fr.spec.Kind == scenarios.KindTotalLoss && !fr.started.IsZero() {
			began, done = fr.started, fr.injected
		}
	}
	return began, done
}

// restorePoint is the restore the run made, for the ledger (nil: none).
func (r *run) restorePoint() *checkers.RestorePoint {
	if r.backups == nil {
		return nil
	}
	r.backups.mu.Lock()
	defer r.backups.mu.Unlock()
	if r.backups.restored == nil {
		return nil
	}
	for _, fr := range r.faults {
		if fr.spec.Kind == scenarios.KindRestore && !fr.injected.IsZero() && fr.err == nil {
			i := r.backups.restored
			_, lost := r.lossAt(fr.spec.Index)
			return &checkers.RestorePoint{SnapshotStarted: i.Started, SnapshotEnded: i.Ended, Loss: lost}
		}
	}
	return nil
}

// backupResults puts the snapshots, their cost and the restore into the
// summary. rpo is the ledger's count against the restore point.
func (r *run) backupResults(sum *rundir.Summary, rpo *checkers.RPO) {
	b := r.backups
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	sum.Snapshots = append([]rundir.Snapshot(nil), b.taken...)
	sum.SnapshotP99 = r.snapshotCost(b.taken)
	for _, fr := range r.faults {
		if fr.spec.Kind != scenarios.KindRestore || fr.started.IsZero() {
			continue
		}
		res := &rundir.RestoreResult{}
		loss, done := r.lossAt(fr.spec.Index)
		res.LossAt, res.LossDone = loss.UTC(), done.UTC()
		if fr.err != nil {
			res.Error = fr.err.Error()
		}
		if i := b.restored; i != nil {
			res.Snapshot = record(*i)
		}
		for _, name := range []string{cluster.RestoreProvisioned, cluster.RestoreInitialized, cluster.RestoreRestored, cluster.RestoreUnsealed, cluster.RestoreHealthy} {
			if t, ok := b.phaseAt[name]; ok {
				res.Phases = append(res.Phases, rundir.RestorePhase{Name: name, Ms: ms(t.Sub(loss))})
			}
		}
		r.outMu.Lock()
		res.FirstWriteMs = firstServed(r.writes, loss, done)
		res.FirstReadMs = firstServed(r.reads, loss, done)
		r.outMu.Unlock()
		if rpo != nil {
			res.BeforeSnapshot, res.InFlight, res.InFlightPresent = rpo.BeforeSnapshot, rpo.InFlight, rpo.InFlightPresent
			res.AfterSnapshot, res.AfterPresent = rpo.AfterSnapshot, rpo.AfterPresent
			res.RPOWrites = rpo.AfterSnapshot - rpo.AfterPresent
			if res.RPOWrites > 0 && b.restored != nil {
				res.RPOSeconds = round3(rpo.LastLost.Sub(b.restored.Started).Seconds())
			}
		}
		sum.Restore = res
	}
}

// firstServed is the RTO of one operation: from the loss to the answer of
// the first request that succeeded among those sent once the loss was
// complete (nil: none did). A request sent while the nodes were still being
// killed may be answered by one that is not dead yet: that is no recovery
// (containers take a few hundred milliseconds to die; it once made a
// 211 ms "RTO").
func firstServed(outs []checkers.Outcome, loss, done time.Time) *float64 {
	from := loss
	if done.After(loss) {
		from = done
	}
	var first time.Time
	for _, o := range outs {
		if o.OK && !o.Intended.Before(from) && (first.IsZero() || o.End.Before(first)) {
			first = o.End
		}
	}
	return msPtr(loss, first)
}

// snapshotCost compares the p99 of requests sent while a snapshot was being
// taken with the rest (nil when no snapshot was taken).
func (r *run) snapshotCost(taken []rundir.Snapshot) *rundir.SnapshotCost {
	var ok []rundir.Snapshot
	var dur time.Duration
	var size int64
	for _, s := range taken {
		if s.Error == "" {
			ok = append(ok, s)
			dur += s.Ended.Sub(s.Started)
			size += s.Size
		}
	}
	if len(ok) == 0 {
		return nil
	}
	during, outside := hdr.New(1, 60_000_000, 3), hdr.New(1, 60_000_000, 3)
	r.outMu.Lock()
	for _, outs := range [][]checkers.Outcome{r.writes, r.reads} {
		for _, o := range outs {
			h := outside
			for _, s := range ok {
				if !o.Intended.Before(s.Started) && !o.Intended.After(s.Ended) {
					h = during
					break
				}
			}
			_ = h.RecordValue(max(o.End.Sub(o.Intended).Microseconds(), 1))
		}
	}
	r.outMu.Unlock()
	c := &rundir.SnapshotCost{DuringCount: during.TotalCount(), OutsideCount: outside.TotalCount(),
		MeanDurationMs: ms(dur / time.Duration(len(ok))), MeanSize: size / int64(len(ok))}
	if c.DuringCount > 0 {
		c.DuringP99Ms = float64(during.ValueAtQuantile(99)) / 1000
	}
	if c.OutsideCount > 0 {
		c.OutsideP99Ms = float64(outside.ValueAtQuantile(99)) / 1000
	}
	return c
}
