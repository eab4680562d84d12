package capacity

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/cluster/storage"
	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/load"
)

// Shape is a cluster the plan stands up for its series: a node count and a
// storage kind ("raid0", "single" or "dir").
type Shape struct {
	Nodes   int
	Storage string
}

// StorageKind maps the names the CLI and scenario files use onto storage
// kinds: raid0 (the best RAID0 this machine has), single (one disk, no
// RAID), dir (a plain directory on the host's filesystem).
func StorageKind(name string) (storage.Kind, error) {
	switch name {
	case "raid0":
		return "", nil
	case "single":
		return storage.BtrfsSingle, nil
	case "dir":
		return storage.Dir, nil
	}
	return "", fmt.Errorf("storage %q: want raid0, single or dir", name)
}

// Existing describes a cluster the plan did not make.
type Existing struct {
	Target load.Target
	// PIDs of the node processes, for their CPU; nil when they are not on
	// this machine.
	PIDs                                    map[string]int
	Nodes                                   int
	Storage, Provider, VaultVersion, Source string
}

// Plan is a whole capacity run: every series (shape × mix × value size ×
// key space), each searched the same way.
type Plan struct {
	SLO        rundir.SLO
	Warmup     time.Duration
	Hold       time.Duration
	Search     Search
	ExpectRate float64

	Mixes      []load.Mix
	ValueSizes []int
	Keys       []int
	// Load is the base of every step (target mode, timeout, mount, key
	// distribution, HTTP/2).
	Load load.Options

	// Shapes, when given, are stood up in turn from Spec with VaultBin,
	// measured and torn down; else Existing is measured.
	Shapes   []Shape
	Spec     cluster.Spec
	VaultBin string
	Existing *Existing

	OutDir string
	Logf   func(format string, args ...any)
	// OnStep is told of each step as it is judged.
	OnStep   func(ser *rundir.CapacitySeries, st rundir.CapacityStep)
	OnSample func(rundir.Sample)
}

// Validate checks the plan before anything runs.
func (p *Plan) Validate() error {
	if err := p.ValidateSettings(); err != nil {
		return err
	}
	if len(p.Shapes) == 0 && p.Existing == nil {
		return errors.New("no cluster: give node counts to stand up, or a cluster to measure")
	}
	return nil
}

// ValidateSettings checks everything but which cluster: bad input is
// reported before a missing cluster.
func (p *Plan) ValidateSettings() error {
	if len(p.Mixes) == 0 || len(p.ValueSizes) == 0 || len(p.Keys) == 0 {
		return errors.New("at least one mix, value size and key space")
	}
	for _, sh := range p.Shapes {
		if _, err := StorageKind(sh.Storage); err != nil {
			return err
		}
		s := p.Spec
		s.Nodes = sh.Nodes
		if err := s.Validate(); err != nil {
			return err
		}
	}
	if p.ExpectRate < 0 {
		return fmt.Errorf("expected rate %g: must not be negative", p.ExpectRate)
	}
	return Config{SLO: p.SLO, Warmup: p.Warmup, Hold: p.Hold, Search: p.Search}.validate()
}

// Run measures every series, writing capacity.json in OutDir after every
// step. The returned document is complete unless the error says otherwise;
// a series that ended generator-bound or below its first rate is a result,
// not an error.
func (p *Plan) Run(ctx context.Context) (*rundir.Capacity, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	doc := &rundir.Capacity{
		SLO: p.SLO, WarmupS: p.Warmup.Seconds(), HoldS: p.Hold.Seconds(),
		StartRate: p.Search.Start, Factor: p.Search.Factor, MaxRate: p.Search.Max, Precision: p.Search.Precision,
		ExpectRate: p.ExpectRate, Started: time.Now().UTC(),
	}
	save := func() error { return rundir.WriteJSON(p.OutDir, rundir.CapacityFile, doc) }
	if err := save(); err != nil {
		return nil, err
	}
	runID := doc.Started.Format("20060102T150405Z")
	var errs []error
	measure := func(ex Existing, shape string) error {
		for _, mix := range p.Mixes {
			for _, vs := range p.ValueSizes {
				for _, keys := range p.Keys {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					idx := len(doc.Series) + 1
					doc.Series = append(doc.Series, rundir.CapacitySeries{
						Nodes: ex.Nodes, Storage: ex.Storage, Provider: ex.Provider, VaultVersion: ex.VaultVersion,
						Mix: mix.String(), ValueSize: vs, Keys: keys, Target: targetOr(p.Load.Target),
					})
					ser := &doc.Series[len(doc.Series)-1]
					ser.Name = p.seriesName(*ser)
					o := p.Load
					o.Mix, o.ValueSize, o.Keys = mix, vs, keys
					o.KeyPrefix = fmt.Sprintf("capacity/%s/%d/", runID, idx)
					o.HistoryKeys = -1 // linearizability is the scenarios' job
					c := Config{
						Target: ex.Target, PIDs: ex.PIDs, Load: o, SLO: p.SLO, Warmup: p.Warmup, Hold: p.Hold, Search: p.Search,
						Dir: filepath.Join(p.OutDir, "steps", fmt.Sprintf("%02d-%s", idx, slug(shape, mix, vs, keys))), RunDir: p.OutDir,
						OnSample: p.OnSample,
						OnStep: func(st rundir.CapacityStep) {
							if p.OnStep != nil {
								p.OnStep(ser, st)
							}
							if err := save(); err != nil {
								p.logf("save %s: %v", rundir.CapacityFile, err)
							}
						},
					}
					p.logf("series %d: %s", idx, ser.Name)
					err := RunSeries(ctx, c, ser)
					if err := save(); err != nil {
						return err
					}
					if err != nil {
						if ctx.Err() != nil {
							return ctx.Err()
						}
						// The next series may still run (a failed step is
						// recorded in its own series).
						errs = append(errs, fmt.Errorf("series %d (%s): %w", idx, ser.Name, err))
					}
				}
			}
		}
		return nil
	}
	if len(p.Shapes) == 0 {
		if err := measure(*p.Existing, ""); err != nil {
			errs = append(errs, err)
		}
	}
	for _, sh := range p.Shapes {
		if err := p.withCluster(ctx, sh, measure); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
	}
	if ctx.Err() == nil {
		doc.Ended = time.Now().UTC()
	}
	if err := save(); err != nil {
		errs = append(errs, err)
	}
	return doc, errors.Join(errs...)
}

// withCluster stands a shape up, measures it and tears it down (also when
// ctx is cancelled).
func (p *Plan) withCluster(ctx context.Context, sh Shape, measure func(Existing, string) error) error {
	spec := p.Spec
	spec.Nodes = sh.Nodes
	spec.Storage, _ = StorageKind(sh.Storage)
	if spec.Storage == storage.BtrfsSingle {
		spec.Disks = 1
	}
	name := fmt.Sprintf("%dn-%s", sh.Nodes, sh.Storage)
	p.logf("cluster %s: %d nodes, storage %s, Vault %s", name, sh.Nodes, sh.Storage, p.VaultBin)
	t0 := time.Now()
	c, err := cluster.Up(ctx, cluster.Options{Dir: filepath.Join(p.OutDir, "clusters", name), Spec: spec, VaultBin: p.VaultBin})
	if err != nil {
		return fmt.Errorf("cluster %s up: %w", name, err)
	}
	defer func() {
		if err := c.Down(context.WithoutCancel(ctx)); err != nil {
			p.logf("cluster %s down: %v", name, err)
		}
	}()
	p.logf("cluster %s up in %.1fs", name, time.Since(t0).Seconds())
	names, addrs, ca, token, err := c.Endpoints()
	if err != nil {
		return err
	}
	pids := map[string]int{}
	for _, n := range c.State.Nodes {
		pids[n.Name] = n.PID
	}
	return measure(Existing{
		Target: load.Target{Names: names, Addrs: addrs, CACert: ca, Token: token}, PIDs: pids,
		Nodes: sh.Nodes, Storage: string(c.State.Spec.Storage), Provider: c.State.Provider, VaultVersion: c.State.VaultVersion,
	}, name)
}

func (p *Plan) seriesName(s rundir.CapacitySeries) string {
	parts := []string{fmt.Sprintf("%d nodes", s.Nodes)}
	switch {
	case s.Provider == "external":
		parts[0] = fmt.Sprintf("external (%d address%s)", s.Nodes, map[bool]string{true: "es"}[s.Nodes != 1])
	case s.Nodes == 1:
		parts[0] = "1 node"
	}
	if s.Storage != "" {
		parts = append(parts, s.Storage)
	}
	parts = append(parts, s.Mix)
	if len(p.ValueSizes) > 1 {
		parts = append(parts, fmt.Sprintf("%d B values", s.ValueSize))
	}
	if len(p.Keys) > 1 {
		parts = append(parts, fmt.Sprintf("%d keys", s.Keys))
	}
	return strings.Join(parts, ", ")
}

func (p *Plan) logf(format string, args ...any) {
	if p.Logf != nil {
		p.Logf(format, args...)
	}
}

func targetOr(t string) string {
	if t == "" {
		return "active"
	}
	return t
}

// slug names a series' directory: shape, mix, value size, keys.
func slug(shape string, mix load.Mix, vs, keys int) string {
	m := strings.NewReplacer("=", "", ",", "-").Replace(mix.String())
	s := fmt.Sprintf("%s-%dB-%dk", m, vs, keys)
	if shape != "" {
		s = shape + "-" + s
	}
	return s
}
