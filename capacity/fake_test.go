package capacity

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/load"
	"github.com/vaultstorm/vaultstorm/load/fakevault/fvtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	fvtest.RemoveBin()
	os.Exit(code)
}

// fake runs the fake Vault (cmd/fakevault) in a process of its own, behind
// verified TLS, its KV API serving at most capacity requests per second (a
// single-server queue; 0: no limit). Its own process, so that starving the
// generator of CPU does not starve the server too.
func fake(t *testing.T, capacity float64) load.Target {
	t.Helper()
	env := fvtest.Env(fvtest.Start(t, "--token", "s.capacitytest", "--capacity", fmt.Sprint(capacity), "--for", "10m"))
	return load.Target{Names: []string{"node1"}, Addrs: []string{env["VAULT_ADDR"]}, CACert: env["VAULT_CACERT"], Token: env["VAULT_TOKEN"]}
}

func fakeConfig(t *testing.T, target load.Target) (Config, *rundir.CapacitySeries) {
	dir := t.TempDir()
	slo := DefaultSLO()
	slo.P99Ms, slo.LateMs = 50, LateMs(50)
	c := Config{
		Target: target,
		Load:   load.Options{Keys: 100, KeyPrefix: "capacity/test/", HistoryKeys: -1},
		SLO:    slo, Warmup: time.Second, Hold: 3 * time.Second,
		Search: Search{Start: 100, Factor: 2, Max: 5000, Precision: 0.05, MaxSteps: 12},
		Dir:    filepath.Join(dir, "series-1"), RunDir: dir,
	}
	c.Load.Mix, _ = load.ParseMix("read=80,write=20")
	return c, &rundir.CapacitySeries{Name: "fake"}
}

// The fake's knee is known (400 req/s): the search must find it within 10 %.
func TestFindsTheFakesKnee(t *testing.T) {
	const knee = 400.0
	c, ser := fakeConfig(t, fake(t, knee))
	if err := RunSeries(context.Background(), c, ser); err != nil {
		t.Fatal(err)
	}
	for _, st := range ser.Steps {
		t.Logf("step %d %-9s %6g req/s: achieved %7.1f p50 %6.1fms p99 %7.1fms late %.2f%% gen CPU %v → %s %v",
			st.Index, st.Phase, st.Rate, st.Achieved, st.P50Ms, st.P99Ms, st.LatePct, deref(st.GeneratorCPU), st.Verdict, st.Why)
	}
	if ser.Status != rundir.SeriesKnee || ser.Capacity == nil {
		t.Fatalf("status %s, capacity %v: %s", ser.Status, ser.Capacity, ser.Reason)
	}
	if got := *ser.Capacity; got < 0.9*knee || got > 1.1*knee {
		t.Errorf("capacity %g req/s, want within 10%% of the fake's %g", got, knee)
	}
	if !ser.Verified || ser.LostWrites != 0 || ser.AckedWrites == 0 {
		t.Errorf("ledger: verified %v, %d acked, %d lost (%s)", ser.Verified, ser.AckedWrites, ser.LostWrites, ser.VerifyError)
	}
	// Each step is a load run directory of its own, warm-up left out of
	// the window, and its CPU measured over the same seconds.
	first := ser.Steps[0]
	if _, err := os.Stat(filepath.Join(c.RunDir, first.Dir, rundir.HistogramsFile)); err != nil {
		t.Errorf("step directory: %v", err)
	}
	if w := first.End.Sub(first.Start); w < 2900*time.Millisecond || w > 3100*time.Millisecond {
		t.Errorf("first step window %s, want the 3 s hold", w)
	}
	if first.GeneratorCPU == nil || *first.GeneratorCPU <= 0 {
		t.Errorf("generator CPU not measured: %v", first.GeneratorCPU)
	}
}

// A generator starved of CPU (one OS thread, shared with busy goroutines)
// must say so, not report its own limit as the cluster's.
func TestStarvedGeneratorIsGeneratorBound(t *testing.T) {
	c, ser := fakeConfig(t, fake(t, 0))
	c.Search = Search{Start: 200, Factor: 2, Max: 5000, Precision: 0.05, MaxSteps: 6}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var stop atomic.Bool
	defer stop.Store(true)
	for range 3 {
		go func() {
			for !stop.Load() {
				spin()
			}
		}()
	}
	if err := RunSeries(context.Background(), c, ser); err != nil {
		t.Fatal(err)
	}
	for _, st := range ser.Steps {
		t.Logf("step %d %6g req/s: p99 %.1fms late %.2f%% lag %.1fms → %s %v", st.Index, st.Rate, st.P99Ms, st.LatePct, st.MaxSendLagMs, st.Verdict, st.Why)
	}
	if ser.Status != rundir.SeriesGeneratorBound {
		t.Fatalf("status %s (%s), want generator-bound", ser.Status, ser.Reason)
	}
	if ser.Capacity != nil {
		t.Errorf("capacity %g reported for a generator-bound search", *ser.Capacity)
	}
}

//go:noinline
func spin() {
	x := 0
	for i := range 1_000_000 {
		x += i
	}
	_ = x
}

func deref(p *float64) any {
	if p == nil {
		return "not measured"
	}
	return *p
}
