package reports

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"syscall"
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
// budget is < 2 s and < 200 MB. Besides wall time (ns/op) it reports
// cpu-ms/op, which a busy machine does not inflate, peak-heap-MB (the
// largest heap seen while rendering, sampled every 2 ms) and peak-RSS-MB
// (VmHWM after resetting it, so the generator's memory is not counted).
func BenchmarkRenderHour(b *testing.B) {
	dir := hourRun(b)
	runtime.GC()
	resetHWM()
	var peak uint64
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		peak = max(peak, peakHeap(func() {
			if err := Render(dir); err != nil {
				b.Fatal(err)
			}
		}))
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(vmHWM())/(1<<20), "peak-RSS-MB")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// resetHWM resets the RSS high-water mark (writing 5 to clear_refs).
func resetHWM() {
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	debug.FreeOSMemory()
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

func BenchmarkLoadHour(b *testing.B) {
	dir := hourRun(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if hourDir != "" {
		os.RemoveAll(hourDir)
	}
	os.Exit(code)
}

// TestRenderHourBudget holds the budget for a one-hour run: under
// 2 s and 200 MB. It measures CPU time rather than wall time, which other
// work on a shared machine would inflate.
func TestRenderHourBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a one-hour run")
	}
	dir := hourRun(t)
	runtime.GC()
	cpu0, t0 := cpuTime(), time.Now()
	peak := peakHeap(func() {
		if err := Render(dir); err != nil {
			t.Fatal(err)
		}
	})
	cpu, wall := cpuTime()-cpu0, time.Since(t0)
	t.Logf("one-hour run: wall %v, cpu %v, peak heap %d MB", wall.Round(time.Millisecond), cpu.Round(time.Millisecond), peak>>20)
	if cpu > 2*time.Second || peak > 200<<20 {
		t.Errorf("over budget: cpu %v (< 2s), peak heap %d MB (< 200 MB)", cpu, peak>>20)
	}
	if os.Getenv("VAULTSTORM_KEEP_HOUR") != "" {
		os.CopyFS(os.Getenv("VAULTSTORM_KEEP_HOUR"), os.DirFS(dir))
	}
}
