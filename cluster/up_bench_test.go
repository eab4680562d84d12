package cluster_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/cluster/clustertest"
)

// BenchmarkUp measures `up` to a healthy five-voter cluster (PKI, RAID0
// arrays, seal, init, join, promotion), binary already built. Target: a
// median of 6 s or less on a 2-core machine (process provider). Reports
// the median of the iterations as s/up; run with -benchtime 5x for the
// median of five.
// Sub-benchmarks per provider: `-bench 'Up/docker'` for containers (the
// node image built before the first iteration, as a cache would hold it).
func BenchmarkUp(b *testing.B) {
	for _, p := range []string{"process", "docker"} {
		b.Run(p, func(b *testing.B) { benchUp(b, p) })
	}
}

func benchUp(b *testing.B, provider string) {
	bin := clustertest.VaultBin(b)
	if provider == "docker" {
		if _, err := cluster.NodeImage(context.Background(), bin); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
	}
	var secs []float64
	for i := 0; i < b.N; i++ {
		dir, err := os.MkdirTemp("", "vaultstorm-bench-")
		if err != nil {
			b.Fatal(err)
		}
		spec := cluster.DefaultSpec()
		spec.Provider = provider
		spec.Subnet = 99 // beside a cluster a user may have on 127.0.0.x
		start := time.Now()
		st := &stageTimes{start: start, at: map[string]time.Duration{}}
		c, err := cluster.Up(context.Background(), cluster.Options{Dir: dir, Spec: spec, VaultBin: bin, Progress: st})
		if err != nil {
			b.Fatal(err)
		}
		secs = append(secs, time.Since(start).Seconds())
		b.Logf("up in %.2fs: %s", secs[len(secs)-1], st)
		b.StopTimer()
		if err := c.Down(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	sort.Float64s(secs)
	b.ReportMetric(secs[len(secs)/2], "s/up(median)")
	b.ReportMetric(secs[len(secs)-1], "s/up(max)")
}

// stageTimes records when each bring-up stage ended, from the start of Up.
type stageTimes struct {
	start time.Time
	order []string
	at    map[string]time.Duration
}

func (s *stageTimes) Stage(name string, total int) {}
func (s *stageTimes) Step(name string)             {}
func (s *stageTimes) Done(name string) {
	s.order = append(s.order, name)
	s.at[name] = time.Since(s.start)
}

func (s *stageTimes) String() string {
	var b strings.Builder
	for _, n := range s.order {
		fmt.Fprintf(&b, "%s done at %.2fs, ", n, s.at[n].Seconds())
	}
	return strings.TrimSuffix(b.String(), ", ")
}
