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

// --target active when the active node is not among the target's
// addresses (a replacement after a spot reclaim): the load goes to a live
// standby (which forwards) instead of the dead node, says so once, and
// follows the leader again when it is back in the list.
func TestActiveFallsBackToStandby(t *testing.T) {
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
	var logs []string
	var aAt, bAt []int64
	sec := 0
	o := Options{Schedule: Constant(200, 6*time.Second), Keys: 20, NoPrefill: true, Seed: 5,
		Logf: func(f string, args ...any) { mu.Lock(); logs = append(logs, fmt.Sprintf(f, args...)); mu.Unlock() },
		OnSample: func(rundir.Sample) {
			sec++
			switch sec {
			case 1: // a dies; the new leader is a node the target does not list
				a.Seal(true)
				b.SetLeader("https://127.0.0.1:1")
			case 4: // b becomes the leader
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
	t.Logf("%d requests, %d errors %v; requests seen by a %v, by b %v; log %q", n, errs, sum.Ops["read"].ByErr, aAt, bAt, logs)
	// Seconds 2–3 (fallback) and 5–6 (b leads) go to b: ≈200 each.
	if d := bAt[2] - bAt[1]; d < 180 {
		t.Errorf("second 3: %d requests to the standby, want ≈200 (fell back?)", d)
	}
	if d := aAt[2] - aAt[1]; d > 20 {
		t.Errorf("second 3: %d requests to the sealed node", d)
	}
	// Staying on the dead node would fail ~1000 of the 1200; noticing
	// takes one failed request plus a leader poll, longer on a busy machine.
	if errs > 150 {
		t.Errorf("%d errors: the load kept going to the dead node", errs)
	}
	joined := strings.Join(logs, "\n")
	if strings.Count(joined, "the last active one is gone or sealed") != 1 {
		t.Errorf("want exactly one fallback message, log:\n%s", joined)
	}
	if !strings.Contains(joined, "n2 ("+b.srv.URL+")") || !strings.Contains(joined, "again") {
		t.Errorf("want the standby named and the return to the leader logged, log:\n%s", joined)
	}
}
