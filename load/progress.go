package load

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// Progress is the live bar: elapsed/total, achieved rate, last second's
// p99 and errors. Feed it samples through Sample (Options.OnSample).
type Progress struct {
	p     *mpb.Progress
	bar   *mpb.Bar
	total time.Duration
	start time.Time

	mu      sync.Mutex
	rate    float64
	p99     float64
	errs    int64
	errsAll int64
}

// NewProgress shows a bar on f when f is a terminal, and returns nil (a
// valid, silent Progress) otherwise, so logs in CI stay clean.
func NewProgress(f *os.File, total time.Duration) *Progress {
	if f == nil || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	pr := &Progress{total: total, start: time.Now()}
	pr.p = mpb.New(mpb.WithOutput(f), mpb.WithWidth(30), mpb.WithRefreshRate(200*time.Millisecond))
	pr.bar = pr.p.AddBar(int64(total/time.Millisecond),
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
			el := min(time.Since(pr.start), pr.total).Truncate(time.Second)
			return fmt.Sprintf("%s / %s", el, pr.total.Truncate(time.Second))
		}, decor.WCSyncWidth)),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
			pr.mu.Lock()
			defer pr.mu.Unlock()
			return fmt.Sprintf("%8.1f req/s  p99 %8.2f ms  errors %d (total %d)", pr.rate, pr.p99, pr.errs, pr.errsAll)
		})),
	)
	return pr
}

// Sample updates the bar with one second's figures.
func (pr *Progress) Sample(s rundir.Sample) {
	if pr == nil {
		return
	}
	pr.mu.Lock()
	pr.rate, pr.p99, pr.errs = 0, 0, 0
	for _, st := range s.Ops {
		pr.rate += st.Rate
		pr.p99 = max(pr.p99, st.P99)
		pr.errs += st.Errors
	}
	pr.errsAll += pr.errs
	pr.mu.Unlock()
	pr.bar.SetCurrent(min(int64(time.Since(pr.start)/time.Millisecond), int64(pr.total/time.Millisecond)))
}

// Done completes the bar and waits for its last render.
func (pr *Progress) Done() {
	if pr == nil {
		return
	}
	pr.bar.SetCurrent(int64(pr.total / time.Millisecond))
	pr.p.Wait()
}

// WriteTable prints the summary as a table per operation, then the late
// sends, the rate verdict and the ledger verdict.
func WriteTable(w io.Writer, s rundir.Summary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tcount\trate/s\terrors\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\t")
	names := make([]string, 0, len(s.Ops))
	for n := range s.Ops {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return opOrder(names[i]) < opOrder(names[j]) })
	for _, n := range names {
		st := s.Ops[n]
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", n, st.Count, st.Rate, st.Errors, st.P50, st.P90, st.P99, st.P999, st.Max)
	}
	tw.Flush()
	for _, n := range names {
		if by := s.Ops[n].ByErr; len(by) > 0 {
			var parts []string
			for c, k := range by {
				parts = append(parts, fmt.Sprintf("%s=%d", c, k))
			}
			sort.Strings(parts)
			fmt.Fprintf(w, "%s errors: %s\n", n, strings.Join(parts, " "))
		}
	}
	if s.TargetRate > 0 {
		verdict := "reached"
		if s.RateReached != nil && !*s.RateReached {
			verdict = "NOT REACHED"
		}
		fmt.Fprintf(w, "rate: %.1f req/s of %.1f scheduled (%s)\n", s.AchievedRate, s.TargetRate, verdict)
	} else {
		fmt.Fprintf(w, "rate: %.1f req/s (closed loop)\n", s.AchievedRate)
	}
	fmt.Fprintf(w, "late sends (> %gms after intended time): %d, max send lag %.2fms, waits for a worker: %d, peak workers: %d, connections opened: %d\n",
		s.LateThresholdMs, s.LateSends, s.MaxSendLagMs, s.PoolWaits, s.PeakWorkers, s.ConnsOpened)
	if !s.Verified {
		fmt.Fprintf(w, "ledger: %d acknowledged writes, %d unknown outcomes, NOT VERIFIED\n", s.AckedWrites, s.UnknownWrites)
		return
	}
	fmt.Fprintf(w, "ledger: %d acknowledged writes, %d unknown outcomes; keys present %d, deleted by this run %d; LOST WRITES: %d\n",
		s.AckedWrites, s.UnknownWrites, s.PresentKeys, s.DeletedKeys, s.LostWrites)
}

func opOrder(name string) int {
	for i, n := range opNames {
		if n == name {
			return i
		}
	}
	return len(opNames)
}
