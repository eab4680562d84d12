package runner

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/vaultstorm/vaultstorm/chaos"
	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/cluster/storage"
	"github.com/vaultstorm/vaultstorm/load"
	"github.com/vaultstorm/vaultstorm/scenarios"
)

// buildFaults turns the scenario's fault blocks into chaos faults.
// Restore and upgrade faults report back to the run (the snapshot store,
// the steps of the roll).
func (r *run) buildFaults() ([]chaos.Fault, error) {
	sc := r.sc
	var out []chaos.Fault
	for _, f := range sc.Faults {
		var cf chaos.Fault
		switch f.Kind {
		case scenarios.KindKill, scenarios.KindStop:
			cf = chaos.Signal{Name: string(f.Kind)}
		case scenarios.KindPause:
			cf = chaos.Pause{}
		case scenarios.KindSpotReclaim, scenarios.KindZoneOutage:
			cf = chaos.Reclaim{Name: string(f.Kind)}
		case scenarios.KindDiskLoss:
			cf = chaos.DiskLoss{Disk: f.Disk}
		case scenarios.KindRollingRestart:
			cf = chaos.RollingRestart{Kill: f.Signal == scenarios.KindKill, WaitHealthy: f.WaitHealthy, Timeout: f.Timeout}
		case scenarios.KindRecoverQuorum:
			cf = chaos.RecoverQuorum{}
		case scenarios.KindPartition:
			cf = chaos.Partition{Isolate: f.Isolate}
		case scenarios.KindTotalLoss:
			cf = chaos.TotalLoss{}
		case scenarios.KindRestore:
			cf = r.restoreFault(f)
		case scenarios.KindUpgrade:
			var err error
			if cf, err = r.upgradeFault(f); err != nil {
				return nil, err
			}
		case scenarios.KindLatency:
			cf = chaos.Latency{Delay: f.Delay, Jitter: f.Jitter, Loss: f.Loss}
		default:
			return nil, fmt.Errorf("fault %d: kind %q is not implemented", f.Index, f.Kind)
		}
		out = append(out, cf)
	}
	return out, nil
}

// clusterSpec maps the scenario's cluster block onto a cluster spec and
// picks the Vault binary: the scenario's vault_bin, else bin/vault-VERSION
// next to the default binary for vault_version, else the default.
func clusterSpec(sc *scenarios.Scenario, defaultBin string) (cluster.Spec, string, error) {
	spec := cluster.DefaultSpec()
	cl := sc.Cluster
	spec.Nodes = cl.Nodes
	spec.Provider = cl.Provider
	spec.Zones = min(cl.Zones, cl.Nodes)
	spec.PerformanceMultiplier = cl.Multiplier()
	if cl.DisksPerNode > 0 {
		spec.Disks = cl.DisksPerNode
	}
	if cl.DiskSize > 0 {
		spec.DiskSize = cl.DiskSize
	}
	if cl.Storage == scenarios.StorageDir {
		spec.Storage = storage.Dir
	}
	bin := defaultBin
	switch {
	case cl.VaultBin != "":
		bin = cl.VaultBin
	case cl.VaultVersion != "":
		bin = filepath.Join(filepath.Dir(defaultBin), "vault-"+cl.VaultVersion)
		if _, err := os.Stat(bin); err != nil {
			return spec, "", fmt.Errorf("scenario wants Vault %s: %s not found (build it with `make vault VAULT_VERSION=%s`)", cl.VaultVersion, bin, cl.VaultVersion)
		}
	}
	return spec, bin, nil
}

// loadOptions maps the scenario's load block onto load options.
func loadOptions(sc *scenarios.Scenario, r *run) (load.Options, error) {
	l := sc.Load
	o := load.Options{
		Duration:      l.Duration,
		Keys:          l.Keys,
		ValueSize:     l.ValueSize,
		Mount:         l.Mount,
		Target:        l.Target,
		Tick:          l.Tick,
		LateThreshold: l.LateThreshold,
		Seed:          uint64(sc.Seed),
		OnResult:      r.onResult,
		Watcher:       r.w,
		// The scenario's 0 means none; load's 0 means its default.
		HistoryKeys: historyKeys(l.HistoryKeys),
		OnSample:    r.o.OnSample,
		Logf:        r.logf,
	}
	if l.Workers > 0 {
		o.Closed = l.Workers
	} else if l.Ramp > 0 {
		o.Schedule = load.Ramp(l.RampFrom, l.Rate, l.Ramp, l.Duration)
	} else {
		o.Schedule = load.Constant(l.Rate, l.Duration)
	}
	o.Mix, o.KeyDist = l.Mix, l.Distribution
	return o, nil
}

func describeLoad(l scenarios.LoadSpec) string {
	rate := fmt.Sprintf("%g req/s", l.Rate)
	if l.Workers > 0 {
		rate = fmt.Sprintf("closed loop, %d workers", l.Workers)
	} else if l.Ramp > 0 {
		rate = fmt.Sprintf("%g→%g req/s over %s", l.RampFrom, l.Rate, l.Ramp)
	}
	return fmt.Sprintf("%s for %s, %s, %d keys, %d B values, target %s", rate, l.Duration, l.Mix, l.Keys, l.ValueSize, l.Target)
}

// historyKeys maps the scenario's history_keys (0: none) onto load's
// option (0: its default, negative: none).
func historyKeys(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
