package load

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

func TestRunFixedRateAndVerify(t *testing.T) {
	s := newStub(t)
	dir := t.TempDir()
	var mu sync.Mutex
	results := 0
	o := Options{Schedule: Constant(200, 5*time.Second), Keys: 200, Seed: 7,
		OnResult: func(Result) { mu.Lock(); results++; mu.Unlock() }}
	sum, err := Run(context.Background(), s.target, o, dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, st := range sum.Ops {
		n += st.Count
	}
	if n != 1000 || results != 1000 {
		t.Fatalf("sent %d requests (%d results), want exactly 1000", n, results)
	}
	if d := sum.AchievedRate/200 - 1; d < -0.02 || d > 0.02 || sum.RateReached == nil || !*sum.RateReached {
		t.Errorf("achieved %.1f/s of 200/s", sum.AchievedRate)
	}
	if r, w := sum.Ops["read"].Count, sum.Ops["write"].Count; r < 730 || r > 870 || r+w != 1000 {
		t.Errorf("mix: %d reads, %d writes, want ≈800/200", r, w)
	}
	// Every second is on disk, and the seconds add up to the run.
	var samples []rundir.Sample
	if err := rundir.ReadLines(dir, rundir.SamplesFile, func(s rundir.Sample) error { samples = append(samples, s); return nil }); err != nil {
		t.Fatal(err)
	}
	var fromSamples int64
	for _, sm := range samples {
		for _, st := range sm.Ops {
			fromSamples += st.Count
		}
	}
	if len(samples) < 5 || len(samples) > 7 || fromSamples != 1000 {
		t.Errorf("%d samples adding up to %d requests", len(samples), fromSamples)
	}
	if tags := readHlog(t, dir); tags["read"] != len(samples) || tags["write"] != len(samples) {
		t.Errorf("hlog intervals %v, want %d per op", tags, len(samples))
	}
	var stored rundir.Summary
	if err := rundir.ReadJSON(dir, rundir.SummaryFile, &stored); err != nil || stored.Ops["read"].Count != sum.Ops["read"].Count {
		t.Errorf("summary.json: %v %+v", err, stored.Ops)
	}
	// 200 prefill writes + the run's writes are all acknowledged.
	if sum.AckedWrites != 200+sum.Ops["write"].Count {
		t.Errorf("acked %d, want %d", sum.AckedWrites, 200+sum.Ops["write"].Count)
	}

	v, err := Verify(context.Background(), s.target, dir)
	if err != nil {
		t.Fatal(err)
	}
	if v.LostWrites != 0 || v.Present != 200 || v.AckedWrites != sum.AckedWrites {
		t.Fatalf("verify clean run: %+v", v)
	}

	// Now lose data behind the harness's back, four ways.
	var cfg RunConfig
	rundir.ReadJSON(dir, ConfigFile, &cfg)
	keys := s.Keys(cfg.Mount)
	s.Destroy(cfg.Mount, keys[0])
	s.SoftDelete(cfg.Mount, keys[1])
	s.Corrupt(cfg.Mount, keys[2])
	s.Rollback(cfg.Mount, keys[3])
	v, err = Verify(context.Background(), s.target, dir)
	if err != nil {
		t.Fatal(err)
	}
	var lostKeys []string
	for _, k := range v.Lost {
		lostKeys = append(lostKeys, k.Key)
	}
	sort.Strings(lostKeys)
	if strings.Join(lostKeys, ",") != strings.Join(keys[:4], ",") || v.LostWrites < 4 {
		t.Errorf("lost %v (%d writes), want %v", lostKeys, v.LostWrites, keys[:4])
	}
}

func TestRunDeletesAreNotLost(t *testing.T) {
	s := newStub(t)
	dir := t.TempDir()
	m, _ := ParseMix("read=20,write=40,delete=40")
	if _, err := Run(context.Background(), s.target, Options{Schedule: Constant(200, 2*time.Second), Mix: m, Keys: 20}, dir); err != nil {
		t.Fatal(err)
	}
	v, err := Verify(context.Background(), s.target, dir)
	if err != nil {
		t.Fatal(err)
	}
	if v.LostWrites != 0 || v.Deleted == 0 || v.Present+v.Later+v.Deleted != 20 {
		t.Errorf("verify with deletes: %+v", v)
	}
}

// TestStallNoCoordinatedOmission stalls the server for 1 s in the middle of
// a 200 req/s run. Every request scheduled during the stall must show the
// wait from its intended time: ~200 requests spread from 1000 ms down to
// 0 ms, so about 100 above 500 ms and p99 near 1 s. A closed-loop tool would
// record one slow request per worker instead.
func TestStallNoCoordinatedOmission(t *testing.T) {
	s := newStub(t)
	var mu sync.Mutex
	var lats []time.Duration
	o := Options{Schedule: Constant(200, 6*time.Second), Keys: 100,
		OnResult: func(r Result) {
			mu.Lock()
			lats = append(lats, r.Latency())
			mu.Unlock()
		},
	}
	var samples int
	o.OnSample = func(sm rundir.Sample) {
		// Stall once, at the second sample: well inside the run.
		if samples++; samples == 2 {
			s.Stall(time.Second)
		}
	}
	sum, err := Run(context.Background(), s.target, o, "")
	if err != nil {
		t.Fatal(err)
	}
	slow := 0
	for _, l := range lats {
		if l > 500*time.Millisecond {
			slow++
		}
	}
	rd := sum.Ops["read"]
	t.Logf("requests over 500 ms: %d; read p50 %.1f p90 %.1f p99 %.1f max %.1f ms", slow, rd.P50, rd.P90, rd.P99, rd.Max)
	// Lower bounds are what the stall itself guarantees; upper bounds
	// allow for the generator's own lateness on a busy machine, which it
	// measures (late sends, max send lag) and which adds to latency.
	if slow < 70 || slow > 160+int(sum.LateSends) {
		t.Errorf("%d requests over 500 ms (%d sent late), want ≈100 (the stall's half)", slow, sum.LateSends)
	}
	if rd.P99 < 850 || rd.Max < 950 || rd.Max > 1600+sum.MaxSendLagMs {
		t.Errorf("read p99 %.1f ms, max %.1f ms (max send lag %.1f ms): want the 1 s stall to show (p99 ≥ 850, max ≈ 1000)", rd.P99, rd.Max, sum.MaxSendLagMs)
	}
	if rd.P50 > 100+sum.MaxSendLagMs {
		t.Errorf("read p50 %.1f ms: the stall should not move the median", rd.P50)
	}
	if sum.AchievedRate < 196 {
		t.Errorf("achieved %.1f/s: a stall must not slow the schedule", sum.AchievedRate)
	}
}

func TestPreflightErrors(t *testing.T) {
	ctx := context.Background()
	o := Options{Schedule: Constant(10, time.Second)}
	check := func(name string, tg Target, o Options, want string) {
		t.Helper()
		_, err := Run(ctx, tg, o, t.TempDir())
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line containing %q", name, err, want)
		}
		if err != nil && strings.Contains(err.Error(), testToken) {
			t.Errorf("%s: the error prints the token", name)
		}
	}
	s := newStub(t)
	bad := s.target
	bad.Token = "nope"
	check("bad token", bad, o, "rejected the token")
	s.Caps = []string{"read"}
	check("no write permission", s.target, o, "lacks permission: create on")
	s.Caps = nil
	s.Seal(true)
	check("sealed", s.target, o, "is sealed")
	s.Seal(false)
	down := s.target
	down.Addrs = []string{"https://127.0.0.1:1"}
	check("unreachable", down, o, "connection refused")
	wrongCA := s.target
	wrongCA.CACert = ""
	check("wrong CA", wrongCA, o, "TLS")
	check("bad target", s.target, Options{Schedule: o.Schedule, Target: "node9"}, "want active, all, or one of node1")
	check("zero rate", s.target, Options{Schedule: Constant(0, time.Second)}, "schedule")
	check("bad mount", s.target, Options{Schedule: o.Schedule, Mount: "a b"}, "mount")
	// A missing mount is created.
	if _, err := Run(ctx, s.target, Options{Schedule: o.Schedule, Mount: "fresh", Keys: 5}, ""); err != nil {
		t.Fatal(err)
	}
	if len(s.Keys("fresh")) != 5 {
		t.Errorf("mount not created/prefilled: %v", s.Keys("fresh"))
	}
}

func TestTargets(t *testing.T) {
	a, b := newStub(t), newStub(t)
	// One CA file cannot hold both test servers' certificates unless we
	// concatenate them.
	ca := t.TempDir() + "/ca.pem"
	pa, _ := os.ReadFile(a.target.CACert)
	pb, _ := os.ReadFile(b.target.CACert)
	os.WriteFile(ca, append(pa, pb...), 0o600)
	for _, s := range []*stub{a, b} {
		s.Mount("vaultstorm")
	}
	tg := Target{Names: []string{"n1", "n2"}, Addrs: []string{a.srv.URL, b.srv.URL}, CACert: ca, Token: testToken}
	run := func(target string) (int64, int64) {
		t.Helper()
		a0, b0 := a.Requests.Load(), b.Requests.Load()
		if _, err := Run(context.Background(), tg, Options{Schedule: Constant(200, time.Second), Target: target, NoPrefill: true}, ""); err != nil {
			t.Fatal(err)
		}
		return a.Requests.Load() - a0, b.Requests.Load() - b0
	}
	if na, nb := run("all"); na < 90 || nb < 90 {
		t.Errorf("all: %d and %d requests, want ≈100 each", na, nb)
	}
	if na, nb := run("n2"); na > 10 || nb < 190 {
		t.Errorf("n2: %d and %d requests", na, nb)
	}
	if na, nb := run("node1"); nb > 10 || na < 190 {
		t.Errorf("node1: %d and %d requests", na, nb)
	}
	// a says b is the leader: "active" sends there.
	a.SetLeader(b.srv.URL)
	if na, nb := run("active"); na > 30 || nb < 190 {
		t.Errorf("active: %d to the standby, %d to the leader", na, nb)
	}
}

func TestClosedLoopAndCancel(t *testing.T) {
	s := newStub(t)
	sum, err := Run(context.Background(), s.target, Options{Closed: 4, Duration: time.Second, Keys: 10}, "")
	if err != nil {
		t.Fatal(err)
	}
	// Each of the 4 workers answered at least once: the loop ran (how
	// often depends on the machine, not on the code).
	if sum.Ops["read"].Count < 4 || sum.RateReached != nil || sum.PeakWorkers != 4 {
		t.Errorf("closed loop: %+v", sum)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	sum, err = Run(ctx, s.target, Options{Schedule: Constant(100, time.Minute), Keys: 10}, t.TempDir())
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled run: %v", err)
	}
	// A minute's schedule cut at 1.5 s: it stops once the requests in
	// flight are answered (their timeout bounds that), never runs on.
	if el := time.Since(start); el > 1500*time.Millisecond+defaultTimeout+time.Second {
		t.Errorf("cancelled run took %s to stop", el)
	}
	// At most what 1.5 s of the schedule holds; at least one answered.
	if n := sum.Ops["read"].Count + sum.Ops["write"].Count; n < 1 || n > 151 {
		t.Errorf("cancelled run recorded %d requests", n)
	}
}

// TestKilledRunLeavesSamples SIGKILLs a process in the middle of a run and
// reads what it left: every finished second, a parsable ledger and log.
func TestKilledRunLeavesSamples(t *testing.T) {
	s := newStub(t)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "VAULTSTORM_KILLTEST_DIR="+dir, "VAULTSTORM_KILLTEST_ADDR="+s.srv.URL, "VAULTSTORM_KILLTEST_CA="+s.target.CACert)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3500 * time.Millisecond)
	cmd.Process.Kill()
	cmd.Wait()
	var samples []rundir.Sample
	if err := rundir.ReadLines(dir, rundir.SamplesFile, func(s rundir.Sample) error { samples = append(samples, s); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(samples) < 2 {
		t.Fatalf("%d samples after ~3 s of load", len(samples))
	}
	var ledger int
	if err := rundir.ReadLines(dir, rundir.LedgerFile, func(rundir.LedgerEntry) error { ledger++; return nil }); err != nil || ledger < 20 {
		t.Fatalf("ledger: %d entries, %v", ledger, err)
	}
	if tags := readHlog(t, dir); tags["read"] < 2 {
		t.Errorf("hlog: %v", tags)
	}
	// And verify works on the partial run.
	v, err := Verify(context.Background(), s.target, dir)
	if err != nil || v.LostWrites != 0 || v.AckedWrites == 0 {
		t.Errorf("verify partial run: %+v %v", v, err)
	}
}

func killTestChild() {
	tg := Target{Addrs: []string{os.Getenv("VAULTSTORM_KILLTEST_ADDR")}, CACert: os.Getenv("VAULTSTORM_KILLTEST_CA"), Token: testToken}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // bounded even if never killed
	defer cancel()
	Run(ctx, tg, Options{Schedule: Constant(100, 60*time.Second), Keys: 50}, os.Getenv("VAULTSTORM_KILLTEST_DIR"))
}

// TestRunTick: with a tick, every intended send time is a whole number of
// ticks from the start, each tick carries rate×tick requests, and the rate
// is the same as without bursts.
func TestRunTick(t *testing.T) {
	s := newStub(t)
	const tick = 20 * time.Millisecond
	var mu sync.Mutex
	perTick := map[time.Time]int{}
	o := Options{Schedule: Constant(500, 2*time.Second), Keys: 50, Seed: 3, Tick: tick, NoPrefill: true,
		OnResult: func(r Result) { mu.Lock(); perTick[r.Intended]++; mu.Unlock() }}
	sum, err := Run(context.Background(), s.target, o, "")
	if err != nil {
		t.Fatal(err)
	}
	var first time.Time
	for at := range perTick {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	n := 0
	for at, k := range perTick {
		n += k
		if off := at.Sub(first); off%tick != 0 {
			t.Errorf("intended time %s after the first is not a whole number of ticks", off)
		}
		// 500/s × 20 ms = 10 per tick; the first holds only request 0
		// (due at 0) and the last what is left of the 1000.
		if !at.Equal(first) && at.Sub(first) < 2*time.Second && k != 10 {
			t.Errorf("tick at +%s carried %d requests, want 10", at.Sub(first), k)
		}
	}
	if n != 1000 || sum.RateReached == nil || !*sum.RateReached {
		t.Errorf("%d requests, rate %.1f/s: want 1000 at 500/s", n, sum.AchievedRate)
	}
	if err := (Options{Schedule: Constant(1, time.Second), Tick: -time.Millisecond}).withDefaults(time.Now()).validate(); err == nil {
		t.Error("negative tick accepted")
	}
}
