package reports

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/reports/internal/synth"
)

var (
	hourOnce sync.Once
	hourDir  string
	hourErr  error
)

// hourRun generates, once per test binary, a one-hour run: 3600 samples,
// two faults, an interval log of 7200 histograms and per-node metrics.
func hourRun(tb testing.TB) string {
	tb.Helper()
	hourOnce.Do(func() {
		hourDir, hourErr = os.MkdirTemp("", "vaultstorm-hour-")
		if hourErr != nil {
			return
		}
		o := synth.SpotReclaim(filepath.Join(hourDir, "run"), 7, 3600)
		o.NoLedger = true // summary.json carries the verdict; reports read the ledger only without it
		hourErr = synth.Generate(o)
	})
	if hourErr != nil {
		tb.Fatal(hourErr)
	}
	return filepath.Join(hourDir, "run")
}

// peakHeap samples the live heap while fn runs: runtime.MemStats alone
// would only give the figure at the end.
func peakHeap(fn func()) (peak uint64) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	fn()
	close(done)
	wg.Wait()
	return peak
}

// BenchmarkRenderHour renders the report of a one-hour run; the issue's
// budget is < 2 s and < 200 MB. peak-heap-MB is the largest live heap seen
// while rendering, peak-RSS-MB the process's high-water mark (VmHWM), which
// includes the generator's and the test binary's own memory.
func BenchmarkRenderHour(b *testing.B) {
	dir := hourRun(b)
	runtime.GC()
	var peak uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		peak = max(peak, peakHeap(func() {
			if err := Render(dir); err != nil {
				b.Fatal(err)
			}
		}))
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(vmHWM())/(1<<20), "peak-RSS-MB")
}

func vmHWM() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	var kb uint64
	for _, line := range strings.Split(string(b), "\n") {
		if n, _ := fmt.Sscanf(line, "VmHWM: %d kB", &kb); n == 1 {
			return kb << 10
		}
	}
	return 0
}

func TestLoadHourTiming(t *testing.T) {
	dir := hourRun(t)
	t0 := time.Now()
	var r *Run
	peak := peakHeap(func() {
		var err error
		if r, err = Load(dir); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("load: %v, peak heap %d MB, ops %v, faults %d, phases %d", time.Since(t0), peak>>20, r.Ops, len(r.Faults), len(r.Summary.Phases))
}

func BenchmarkLoadHour(b *testing.B) {
	dir := hourRun(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}
