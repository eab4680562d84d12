package cluster_test

import (
	"context"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/cluster/clustertest"
)

// BenchmarkUp measures `up` to a healthy five-voter cluster (PKI, RAID0
// arrays, seal, init, join, promotion), binary already built. Target: a
// median of 8 s or less on a 2-core machine. Reports the median of the
// iterations as s/up; run with -benchtime 5x for the median of five.
func BenchmarkUp(b *testing.B) {
	bin := clustertest.VaultBin(b)
	var secs []float64
	for i := 0; i < b.N; i++ {
		dir, err := os.MkdirTemp("", "vaultstorm-bench-")
		if err != nil {
			b.Fatal(err)
		}
		spec := cluster.DefaultSpec()
		spec.Subnet = 99 // beside a cluster a user may have on 127.0.0.x
		start := time.Now()
		c, err := cluster.Up(context.Background(), cluster.Options{Dir: dir, Spec: spec, VaultBin: bin})
		if err != nil {
			b.Fatal(err)
		}
		secs = append(secs, time.Since(start).Seconds())
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
