package load

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// After a stall made the pool grow to hundreds of workers, the workers
// that are no longer needed are retired, and the run still sends every
// request on time.
func TestIdleWorkersRetire(t *testing.T) {
	prev := idleRetireAfter
	idleRetireAfter = time.Second
	defer func() { idleRetireAfter = prev }()
	s := newStub(t)
	s.Mount("vaultstorm")
	var mu sync.Mutex
	var gor []int
	// HTTP/2: one connection, so the goroutine count is the workers'
	// (HTTP/1.1 keeps two goroutines per idle pooled connection).
	o := Options{Schedule: Constant(200, 10*time.Second), Keys: 50, NoPrefill: true, Seed: 3, HTTP2: true,
		OnSample: func(rundir.Sample) {
			mu.Lock()
			gor = append(gor, runtime.NumGoroutine())
			mu.Unlock()
		}}
	go func() {
		time.Sleep(800 * time.Millisecond)
		s.Stall(time.Second)
	}()
	sum, err := Run(context.Background(), s.target, o, "")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := countOps(sum)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("peak workers %d, goroutines per second %v", sum.PeakWorkers, gor)
	if n != 2000 {
		t.Errorf("%d requests, want 2000", n)
	}
	if sum.PeakWorkers < 150 {
		t.Fatalf("peak %d workers: the stall should have grown the pool to ~200", sum.PeakWorkers)
	}
	// The second half of the run comes several retire windows after the
	// stall ended. Its median, not one sample: on a busy machine a slow
	// second briefly needs more workers (seen: 55 of a 214 peak, between
	// 32 and 10), but unretired workers would keep every sample near the peak.
	peak := 0
	for _, g := range gor {
		peak = max(peak, g)
	}
	late := slices.Clone(gor[len(gor)/2:])
	slices.Sort(late)
	if med := late[len(late)/2]; med > peak/4 {
		t.Errorf("median %d goroutines in the second half %v after a peak of %d: idle workers were not retired", med, gor[len(gor)/2:], peak)
	}
}

func countOps(s rundir.Summary) (n, errs int64) {
	for _, st := range s.Ops {
		n += st.Count
		errs += st.Errors
	}
	return
}

// --target active through a failover in which the last active node is
// lost (sealed here; reclaimed in a scenario) before another is elected:
// requests are not sent at all, to the sealed node or to a standby that
// would forward them, and count as no_active; the load says so once, and
// follows the new leader when there is one.
func TestActiveHoldsWithNoActiveNode(t *testing.T) {
	a, b := newStub(t), newStub(t)
	ca := t.TempDir() + "/ca.pem"
	pa, _ := os.ReadFile(a.target.CACert)
	pb, _ := os.ReadFile(b.target.CACert)
	os.WriteFile(ca, append(pa, pb...), 0o600)
	a.Mount("vaultstorm")
	b.Mount("vaultstorm")
	b.SetLeader(a.srv.URL)
	tg := Target{Names: []string{"n1", "n2"}, Addrs: []string{a.srv.URL, b.srv.URL}, CACert: ca, Token: testToken}

	var mu sync.Mutex
	var logs logLines
	var aAt, bAt []int64
	sec := 0
	o := Options{Schedule: Constant(200, 6*time.Second), Keys: 20, NoPrefill: true, Seed: 5, Logf: logs.Logf,
		OnSample: func(rundir.Sample) {
			sec++
			switch sec {
			case 1: // the leader is lost; b, a standby, knows no leader
				a.Seal(true)
				b.SetLeader("https://127.0.0.1:1")
			case 4: // b is elected
				b.SetLeader("")
			}
			mu.Lock()
			aAt, bAt = append(aAt, a.Requests.Load()), append(bAt, b.Requests.Load())
			mu.Unlock()
		}}
	sum, err := Run(context.Background(), tg, o, "")
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	n, errs := countOps(sum)
	noActive := sum.Ops["read"].ByErr["no_active"] + sum.Ops["write"].ByErr["no_active"]
	joined := logs.String()
	t.Logf("%d requests, %d errors (%d no_active); requests seen by a %v, by b %v; log:\n%s", n, errs, noActive, aAt, bAt, joined)
	// Second 3: nothing is active. The watcher's own probes (a kick at
	// most every 100 ms) are all either node may see.
	if d := bAt[2] - bAt[1]; d > 30 {
		t.Errorf("second 3: %d requests to the standby, want only probes (it would forward them to the lost leader)", d)
	}
	if d := aAt[2] - aAt[1]; d > 30 {
		t.Errorf("second 3: %d requests to the sealed node", d)
	}
	// Seconds 2–4 are ≈600 requests with no active node; noticing the seal
	// takes one failed request and a probe, noticing b a probe.
	if noActive < 300 {
		t.Errorf("%d no_active errors, want most of the ≈600 requests sent while no node was active", noActive)
	}
	if d := bAt[5] - bAt[4]; d < 180 {
		t.Errorf("second 6: %d requests to the new leader, want ≈200", d)
	}
	if strings.Count(joined, "no node is active, and n1, the last active one, is sealed or gone") != 1 {
		t.Errorf("want exactly one no-active message naming n1, log:\n%s", joined)
	}
	if strings.Contains(joined, "sending to standby") {
		t.Errorf("fell back to a standby, log:\n%s", joined)
	}
	if !strings.Contains(joined, "the active node is n2 ("+b.srv.URL+"): sending there") {
		t.Errorf("want the new leader named, log:\n%s", joined)
	}
}

// --target active when no listed node has ever been active (the address
// given is a standby, and the active node is not among the target's): the
// load goes to the standby, which forwards, and says so once.
func TestActiveFallsBackToStandby(t *testing.T) {
	a := newStub(t)
	a.Mount("vaultstorm")
	a.SetLeader("https://127.0.0.1:1")
	tg := a.target
	tg.Names = []string{"n1"}
	var logs logLines
	o := Options{Schedule: Constant(200, 2*time.Second), Keys: 20, NoPrefill: true, Seed: 5, Logf: logs.Logf}
	sum, err := Run(context.Background(), tg, o, "")
	if err != nil {
		t.Fatal(err)
	}
	n, errs := countOps(sum)
	joined := logs.String()
	t.Logf("%d requests, %d errors %v; a saw %d; log:\n%s", n, errs, sum.Ops["read"].ByErr, a.Requests.Load(), joined)
	if errs > 0 || n < 380 {
		t.Errorf("%d requests, %d errors: want ≈400 served by the standby", n, errs)
	}
	if strings.Count(joined, "no known node is active: sending to standby n1 ("+a.srv.URL+")") != 1 {
		t.Errorf("want exactly one fallback message naming n1, log:\n%s", joined)
	}
}

// logLines collects what a run logs (Options.Logf), safe for concurrent use.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Logf(f string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(f, args...))
	l.mu.Unlock()
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
