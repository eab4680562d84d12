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
// sends, the rate verdict, the ledger verdict and, when the run recorded
// them, the linearizability check, the harness's own requests and why the
// run is INVALID. An unverified ledger never reads as "0 lost".
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
	fmt.Fprintf(w, "late sends (> %gms after intended time): %d (%.2f %% of requests), max send lag %.2fms, waits for a worker: %d, peak workers: %d, connections opened: %d\n",
		s.LateThresholdMs, s.LateSends, s.GeneratorLatePct, s.MaxSendLagMs, s.PoolWaits, s.PeakWorkers, s.ConnsOpened)
	fmt.Fprintln(w, ledgerLine(s))
	if s.Linearizable != nil || s.Linearizability != "" || s.HistoryOps > 0 {
		fmt.Fprintln(w, linearizableLine(s))
	}
	if s.HarnessRequests > 0 || s.HarnessRequestsPerS > 0 {
		fmt.Fprintln(w, harnessLine(s))
	}
	if len(s.Invalid) > 0 {
		fmt.Fprintf(w, "INVALID: the harness, not Vault, fell behind: %s\n", strings.Join(s.Invalid, "; "))
	}
}

// ledgerLine is the ledger's verdict on one line. Only Verified says every
// acknowledged write was read back; without it the loss is unknown, and the
// line says how far the read-back got and why it stopped.
func ledgerLine(s rundir.Summary) string {
	head := fmt.Sprintf("ledger: %d acknowledged writes, %d unknown outcomes", s.AckedWrites, s.UnknownWrites)
	dup := ""
	if s.DuplicateVersions > 0 {
		dup = fmt.Sprintf("; DUPLICATE VERSIONS: %d", s.DuplicateVersions)
	}
	if !s.Verified {
		nv := "NOT VERIFIED"
		if s.KeysToRead > 0 {
			nv += fmt.Sprintf(": %d of %d keys read back", s.KeysRead, s.KeysToRead)
		}
		if s.VerifyError != "" {
			nv += ": " + s.VerifyError
		}
		return head + "; " + nv + dup
	}
	return fmt.Sprintf("%s; keys present %d, deleted by this run %d; LOST WRITES: %d%s",
		head, s.PresentKeys, s.DeletedKeys, s.LostWrites, dup)
}

func linearizableLine(s rundir.Summary) string {
	detail := ""
	if s.Linearizability != "" {
		detail = " (" + s.Linearizability + ")"
	}
	ops := ""
	if s.HistoryOps > 0 {
		ops = fmt.Sprintf(" %d keys, %d operations;", s.HistoryKeys, s.HistoryOps)
	}
	switch {
	case s.Linearizable == nil:
		return "linearizable: not checked" + detail
	case *s.Linearizable:
		return "linearizable: yes;" + ops + detail
	}
	return "linearizable: NO;" + ops + detail + " see " + rundir.LinearizabilityFile
}

func harnessLine(s rundir.Summary) string {
	t := fmt.Sprintf("harness requests: %d (%.1f req/s; quiet %.1f req/s = %.1f %% of the load)",
		s.HarnessRequests, s.HarnessRequestsPerS, s.HarnessQuietPerS, s.HarnessSharePct)
	if len(s.HarnessByKind) > 0 {
		ks := make([]string, 0, len(s.HarnessByKind))
		for k := range s.HarnessByKind {
			ks = append(ks, k)
		}
		sort.Slice(ks, func(i, j int) bool {
			a, b := s.HarnessByKind[ks[i]], s.HarnessByKind[ks[j]]
			return a > b || a == b && ks[i] < ks[j]
		})
		parts := make([]string, len(ks))
		for i, k := range ks {
			parts[i] = fmt.Sprintf("%s=%d", k, s.HarnessByKind[k])
		}
		t += ": " + strings.Join(parts, " ")
	}
	return t
}

func opOrder(name string) int {
	for i, n := range opNames {
		if n == name {
			return i
		}
	}
	return len(opNames)
}
