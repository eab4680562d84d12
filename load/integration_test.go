package load_test

// Integration tests against a real Vault cluster (clustertest: TLS, RAID0
// storage, transit auto-unseal). They need root and bin/vault; -short
// skips them.

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/cluster/clustertest"
	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/load"
)

// startCluster brings up a three-node cluster (production raft timing,
// performance_multiplier 1) and returns it with a load target for it.
func startCluster(t testing.TB) (*cluster.Cluster, load.Target) {
	t.Helper()
	spec := cluster.DefaultSpec()
	spec.Nodes = 3
	c := clustertest.Start(t, &spec)
	names, addrs, ca, token, err := c.Endpoints()
	if err != nil {
		t.Fatal(err)
	}
	return c, load.Target{Names: names, Addrs: addrs, CACert: ca, Token: token}
}

// leaderName waits until the cluster reports a leader.
func leaderName(t testing.TB, c *cluster.Cluster, not string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := c.Status(ctx)
		cancel()
		if err == nil && st.Leader != "" && st.Leader != not {
			return st.Leader
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader (other than %q) after 60s: %v", not, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// results collects every request's outcome (OnResult).
type results struct {
	mu   sync.Mutex
	lat  []time.Duration
	errs map[load.Class]int
	node map[int]int
	// byNodeAfter counts requests per node intended after `after`.
	after       time.Time
	byNodeAfter map[int]int
}

func newResults() *results {
	return &results{errs: map[load.Class]int{}, node: map[int]int{}, byNodeAfter: map[int]int{}}
}

func (r *results) add(res load.Result) {
	r.mu.Lock()
	r.lat = append(r.lat, res.Latency())
	if res.Class.IsError() {
		r.errs[res.Class]++
	}
	r.node[res.Node]++
	if !r.after.IsZero() && res.Intended.After(r.after) {
		r.byNodeAfter[res.Node]++
	}
	r.mu.Unlock()
}

// timeline logs every second of a run in one short line.
func timeline(t testing.TB) func(rundir.Sample) {
	i := 0
	return func(s rundir.Sample) {
		i++
		var n, errs int64
		var p99, mx float64
		for _, st := range s.Ops {
			n += st.Count
			errs += st.Errors
			p99, mx = max(p99, st.P99), max(mx, st.Max)
		}
		t.Logf("  second %2d: %4d answers, %4d errors, p99 %7.1fms, max %7.1fms, late %d", i, n, errs, p99, mx, s.LateSends)
	}
}

func (r *results) setAfter(t time.Time) { r.mu.Lock(); r.after = t; r.mu.Unlock() }

// quantile of the recorded latencies (q in [0,1]); sorts in place.
func (r *results) quantile(q float64) time.Duration {
	slices.Sort(r.lat)
	if len(r.lat) == 0 {
		return 0
	}
	i := int(q*float64(len(r.lat))+0.5) - 1
	return r.lat[max(0, min(i, len(r.lat)-1))]
}

func (r *results) above(d time.Duration) int {
	n := 0
	for _, l := range r.lat {
		if l > d {
			n++
		}
	}
	return n
}

func (r *results) errors() int {
	n := 0
	for _, v := range r.errs {
		n += v
	}
	return n
}

func total(s map[string]load.OpStats) (n, errs int64) {
	for _, st := range s {
		n += st.Count
		errs += st.Errors
	}
	return
}

// stallAt pauses node n (SIGSTOP) once the run has sent for `at`, keeps
// it stopped for d, then resumes it. It returns when the node is resumed,
// with the measured stall (pause returned → resume returned).
// runWithStall runs o against target and stops node n for d, 4 s after
// the first request's intended time; it returns the summary, every
// result, and when n was really paused and resumed.
func runWithStall(t *testing.T, c *cluster.Cluster, target load.Target, n *cluster.Node, o load.Options, d time.Duration) (rundir.Summary, *results, time.Time, time.Time) {
	t.Helper()
	res := newResults()
	started := make(chan time.Time, 1)
	var once sync.Once
	o.Logf, o.OnSample = t.Logf, timeline(t)
	o.OnResult = func(r load.Result) {
		once.Do(func() { started <- r.Intended })
		res.add(r)
	}
	var paused, resumed time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		paused, resumed = stallAt(t, c, n, started, 4*time.Second, d)
	}()
	s, err := load.Run(context.Background(), target, o, "")
	<-done
	if err != nil {
		t.Fatal(err)
	}
	return s, res, paused, resumed
}

func stallAt(t *testing.T, c *cluster.Cluster, n *cluster.Node, started <-chan time.Time, at, d time.Duration) (paused, resumed time.Time) {
	t.Helper()
	start := <-started
	time.Sleep(time.Until(start.Add(at)))
	ctx := context.Background()
	if err := c.Pause(ctx, n); err != nil {
		t.Errorf("pause %s: %v", n.Name, err)
		return
	}
	paused = time.Now()
	defer func() {
		if err := c.Resume(ctx, n); err != nil {
			t.Errorf("resume %s: %v", n.Name, err)
		}
		resumed = time.Now()
	}()
	time.Sleep(d)
	return
}

func TestIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs a real Vault cluster")
	}
	c, target := startCluster(t)
	leader := leaderName(t, c, "")
	t.Logf("cluster up, leader %s; load average %s", leader, loadavg())
	// What this machine's cluster carries right now, for reading the
	// figures below (the machine is shared).
	{
		m, _ := load.ParseMix("read=80,write=20")
		s, err := load.Run(context.Background(), target, load.Options{Closed: 16, Duration: 3 * time.Second, Mix: m, Keys: 100, KeyPrefix: "capacity/"}, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("capacity (closed loop, 16 workers, active node): %.0f req/s, read p50 %.1fms p99 %.1fms; load average %s",
			s.AchievedRate, s.Ops["read"].P50, s.Ops["read"].P99, loadavg())
	}

	t.Run("FixedRateNoLoss", func(t *testing.T) {
		dir := t.TempDir()
		const rate = 200
		o := load.Options{Schedule: load.Constant(rate, 10*time.Second), Keys: 500, Seed: 11, Logf: t.Logf}
		s, err := load.Run(context.Background(), target, o, dir)
		if err != nil {
			t.Fatal(err)
		}
		n, errs := total(s.Ops)
		t.Logf("achieved %.1f/s of %d/s, %d requests, %d errors, late %d (max lag %.1fms), p99 %.1fms, peak workers %d",
			s.AchievedRate, rate, n, errs, s.LateSends, s.MaxSendLagMs, s.Ops["read"].P99, s.PeakWorkers)
		if n != 10*rate {
			t.Errorf("%d requests, want exactly %d", n, 10*rate)
		}
		if d := s.AchievedRate/rate - 1; d < -0.02 || d > 0.02 || s.RateReached == nil || !*s.RateReached {
			t.Errorf("achieved %.1f/s, want %d/s within 2%%", s.AchievedRate, rate)
		}
		if errs != 0 {
			t.Errorf("%d errors on a healthy cluster: %+v", errs, s.Ops)
		}
		if s.AckedWrites != 500+s.Ops["write"].Count {
			t.Errorf("acked %d writes, want 500 prefill + %d", s.AckedWrites, s.Ops["write"].Count)
		}
		v, err := load.Verify(context.Background(), target, dir)
		if err != nil {
			t.Fatal(err)
		}
		if v.LostWrites != 0 || v.Present+v.Later != 500 || v.AckedWrites != s.AckedWrites {
			t.Errorf("verify: %+v", v)
		}
	})

	t.Run("KeyDeletedBehindOurBackIsLost", func(t *testing.T) {
		dir := t.TempDir()
		const mount = "vaultstorm"
		o := load.Options{Schedule: load.Constant(100, 2*time.Second), Keys: 50, Seed: 12, Mount: mount, KeyPrefix: "deltest/"}
		if _, err := load.Run(context.Background(), target, o, dir); err != nil {
			t.Fatal(err)
		}
		ln, err := c.Node(leaderName(t, c, ""))
		if err != nil {
			t.Fatal(err)
		}
		api, err := c.Client(ln)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		kv := api.KVv2(mount)
		// One key destroyed with all its versions, one soft-deleted.
		if err := kv.DeleteMetadata(ctx, "deltest/k07"); err != nil {
			t.Fatal(err)
		}
		if err := kv.Delete(ctx, "deltest/k31"); err != nil {
			t.Fatal(err)
		}
		v, err := load.Verify(ctx, target, dir)
		if err != nil {
			t.Fatal(err)
		}
		var lost []string
		for _, k := range v.Lost {
			lost = append(lost, k.Key)
		}
		slices.Sort(lost)
		t.Logf("verify: %d acked, %d lost writes, lost keys %v", v.AckedWrites, v.LostWrites, lost)
		if !slices.Equal(lost, []string{"deltest/k07", "deltest/k31"}) || v.LostWrites < 2 {
			t.Errorf("lost keys %v (%d writes), want exactly deltest/k07 and deltest/k31", lost, v.LostWrites)
		}
		if v.Present+v.Later != 48 {
			t.Errorf("%d keys present, want 48", v.Present+v.Later)
		}
	})

	// A standby that stops for 2 s: nothing fails (the other two nodes keep
	// quorum), but every request scheduled during the stall waits for it.
	// At 200/s for 12 s (2400 requests), a request scheduled x into a stall
	// of S waits ≈ S−x, so ≈ (S−0.5 s)×200 requests take more than 500 ms,
	// p90 (240th slowest) ≈ S−1.2 s ≈ 0.8 s and p99 (24th slowest) ≈
	// S−0.12 s ≈ 1.9 s. A generator with coordinated omission would show a
	// handful of slow requests and a p99 of a few ms. On this shared
	// machine the cluster carries little more than 200/s, so the backlog
	// drains slowly and the tail sits above that ideal: the bounds are
	// the lower ones that prove every scheduled request waited.
	//
	// Over HTTP/1.1, the default: over HTTP/2 (one connection, Vault's
	// 250-stream limit) Vault 1.21 answered the 250 streams open across the
	// stall and then nothing more on that connection until the requests
	// timed out (10 s), while a fresh connection to the same node was
	// answered in ms; the same stall of a Go server (TestSIGSTOPServer)
	// does not wedge it.
	t.Run("StandbyStallShowsInLatencies", func(t *testing.T) {
		leader := leaderName(t, c, "")
		var follower string
		for _, n := range c.State.Nodes {
			if n.Name != leader {
				follower = n.Name
				break
			}
		}
		fn, err := c.Node(follower)
		if err != nil {
			t.Fatal(err)
		}
		// 100/s rather than the 200/s: the percentiles expected are
		// the same (the k-th slowest waits S−k/rate, and k scales with the
		// rate), and the backlog drains on a machine whose cluster carries
		// ~200/s in all.
		const rate, secs = 100, 12
		s, res, paused, resumed := runWithStall(t, c, target, fn, load.Options{Schedule: load.Constant(rate, secs*time.Second), Keys: 200, Seed: 13, Target: follower}, 2*time.Second)
		stall := resumed.Sub(paused)
		n, errs := total(s.Ops)
		p50, p90, p99, mx := res.quantile(0.50), res.quantile(0.90), res.quantile(0.99), res.quantile(1)
		slow := res.above(500 * time.Millisecond)
		t.Logf("stalled %s for %s: %d requests, %d errors %v, %d above 500ms, p50 %s p90 %s p99 %s max %s (summary read p90 %.0fms p99 %.0fms), late %d",
			follower, stall.Round(time.Millisecond), n, errs, res.errs, slow, p50.Round(time.Millisecond), p90.Round(time.Millisecond),
			p99.Round(time.Millisecond), mx.Round(time.Millisecond), s.Ops["read"].P90, s.Ops["read"].P99, s.LateSends)
		if n != rate*secs {
			t.Errorf("%d requests, want every one of the %d scheduled", n, rate*secs)
		}
		wantSlow := int(0.8 * (stall - 500*time.Millisecond).Seconds() * rate)
		if slow < wantSlow {
			t.Errorf("%d requests above 500ms, want ≥ %d for a %s stall at %d/s (coordinated omission?)", slow, wantSlow, stall, rate)
		}
		if p99 < 1200*time.Millisecond || p99 > 5*time.Second {
			t.Errorf("p99 %s, want between 1.2s and 5s (stall %s)", p99, stall)
		}
		if p90 < 400*time.Millisecond || p90 > stall+2*time.Second {
			t.Errorf("p90 %s, want between 400ms and the stall (%s) + 2s", p90, stall)
		}
		if mx < stall*9/10 {
			t.Errorf("max %s, want about the stall (%s)", mx, stall)
		}
		if p50 > time.Second {
			t.Errorf("p50 %s: most requests were outside the stall, a collapse rather than a stall?", p50)
		}
		if errs != 0 {
			t.Errorf("%d errors from a stalled standby: %v", errs, res.errs)
		}
	})

	// The active node stops for 3 s: with performance_multiplier 1 the
	// followers elect a new leader within ~1–2 s, the old one steps down
	// when it wakes, and requests sent to it fail instead of just waiting;
	// --target active follows the new leader.
	t.Run("ActiveStallStepsDown", func(t *testing.T) {
		old := leaderName(t, c, "")
		on, err := c.Node(old)
		if err != nil {
			t.Fatal(err)
		}
		oldIdx := slices.Index(target.Names, old)
		const rate, secs = 200, 15
		s, res, paused, resumed := runWithStall(t, c, target, on, load.Options{Schedule: load.Constant(rate, secs*time.Second), Keys: 200, Seed: 14, Target: "active"}, 3*time.Second)
		res.setAfter(resumed.Add(2 * time.Second))
		newLeader := leaderName(t, c, "")
		n, errs := total(s.Ops)
		byClass := map[string]int64{}
		for _, st := range s.Ops {
			for k, v := range st.ByErr {
				byClass[k] += v
			}
		}
		t.Logf("stalled leader %s for %s: leader now %s; %d requests, %d errors %v, p99 %s, max %s, per node %v",
			old, resumed.Sub(paused).Round(time.Millisecond), newLeader, n, errs, byClass,
			res.quantile(0.99).Round(time.Millisecond), res.quantile(1).Round(time.Millisecond), res.node)
		if newLeader == old {
			t.Errorf("leader is still %s after a 3s stall: raft did not step it down", old)
		}
		if errs == 0 {
			t.Errorf("no errors: a stalled leader that steps down should fail the requests it held")
		}
		if n != rate*secs {
			t.Errorf("%d requests, want every one of the %d scheduled", n, rate*secs)
		}
		// The load followed the new leader.
		moved := 0
		for i, k := range res.node {
			if i != oldIdx {
				moved += k
			}
		}
		if moved == 0 {
			t.Errorf("no request went to another node than %s: --target active did not follow the leader", old)
		}
	})
}

// BenchmarkRealClusterCPUPerRequest is the generator's CPU time per request
// (getrusage of this process: the Vault nodes are other processes) at a
// fixed rate of reads against a real three-node cluster.
//
//	go test -run '^$' -bench RealClusterCPU -benchtime 1x ./load/
func BenchmarkRealClusterCPUPerRequest(b *testing.B) {
	_, target := startCluster(b)
	for _, tc := range []struct {
		rate   float64
		target string
		tick   time.Duration
	}{{500, "all", 0}, {2000, "all", 0}, {500, "active", 0}, {2000, "active", 0},
		{500, "active", 5 * time.Millisecond}, {2000, "active", 5 * time.Millisecond}, {2000, "active", 10 * time.Millisecond}} {
		b.Run(fmt.Sprintf("%s/%.0f/tick=%s", tc.target, tc.rate, tc.tick), func(b *testing.B) {
			for range b.N {
				m, _ := load.ParseMix("read=100")
				o := load.Options{Schedule: load.Constant(tc.rate, 10*time.Second), Mix: m, Keys: 1000, Target: tc.target, Seed: 1,
					KeyPrefix: "cpubench/", Tick: tc.tick}
				// Prefill outside the measurement: a first short run writes the keys.
				if _, err := load.Run(context.Background(), target, load.Options{Schedule: load.Constant(1, time.Second), Keys: 1000, KeyPrefix: "cpubench/", Target: tc.target}, ""); err != nil {
					b.Fatal(err)
				}
				o.NoPrefill = true
				c0 := cpuTime()
				s, err := load.Run(context.Background(), target, o, "")
				if err != nil {
					b.Fatal(err)
				}
				cpu := cpuTime() - c0
				n, errs := total(s.Ops)
				per := float64(cpu) / float64(n) / 1e3
				b.ReportMetric(per, "cpu-µs/req")
				b.ReportMetric(s.AchievedRate, "req/s")
				b.ReportMetric(float64(errs), "errors")
				b.ReportMetric(float64(s.LateSends), "late")
				b.ReportMetric(per*tc.rate/1e4, "%core")
				b.Logf("%s %.0f/s tick %s: %.1f µs/req (%.1f%% of a core), achieved %.1f/s, %d errors, %d late, p99 %.1fms, %d connections opened, peak %d workers; loadavg %s",
					tc.target, tc.rate, tc.tick, per, per*tc.rate/1e4, s.AchievedRate, errs, s.LateSends, s.Ops["read"].P99, s.ConnsOpened, s.PeakWorkers, loadavg())
			}
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
