package load

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// job is one scheduled request, passed by value from the pacer to a worker.
type job struct {
	intended time.Time
	seq      uint64
	key      int32
	op       Op
}

type engine struct {
	o    Options
	c    *client
	rec  *recorder
	led  *ledger
	hist *history // the sampled keys' operations, for the linearizability checker
	keys []string // "/v1/<mount>/data/<prefix>k0000042"; the ledger key is keys[i][keyOff:]
	// keyOff is where the ledger key starts in keys[i].
	keyOff   int
	listPath string
	filler   []byte
	nonce    [8]byte

	reqCtx  context.Context // outlives the run's ctx by a drain period
	jobs    chan job
	quit    chan struct{} // one token retires one idle worker
	wg      sync.WaitGroup
	workers int          // owned by the pacer: started and not told to quit
	busy    atomic.Int64 // jobs handed to workers and not finished
	idle    idleTracker  // owned by the pacer
	peak    atomic.Int64
	waits   atomic.Int64
	seq     atomic.Uint64 // closed loop
	bodies  sync.Pool
}

// Run sends load to t as o says and records it in runDir (samples.jsonl,
// histograms.hlog, ledger.jsonl, load.json, summary.json); runDir "" keeps
// everything in memory. It returns when the schedule is over or ctx is
// cancelled, after the requests in flight have finished (or been cut at
// their timeout). The summary's ledger verdict is left for Verify.
func Run(ctx context.Context, t Target, o Options, runDir string) (rundir.Summary, error) {
	started := time.Now()
	o = o.withDefaults(started)
	if err := o.validate(); err != nil {
		return rundir.Summary{}, err
	}
	c, err := newClient(t, clientConfig{maxConns: o.MaxInFlight, timeout: o.Timeout, http2: o.HTTP2, watcher: o.Watcher})
	if err != nil {
		return rundir.Summary{}, err
	}
	defer c.closeConns()
	c.logf = o.Logf
	if err := c.selectTarget(o.Target); err != nil {
		return rundir.Summary{}, err
	}
	if err := c.preflight(ctx, o); err != nil {
		return rundir.Summary{}, err
	}
	e := newEngine(o, c)
	if runDir != "" {
		if err := rundir.WriteJSON(runDir, ConfigFile, e.config(t, started)); err != nil {
			return rundir.Summary{}, err
		}
	}
	if e.led, err = openLedger(runDir); err != nil {
		return rundir.Summary{}, err
	}
	defer e.led.close()
	if err := e.hist.open(runDir, started); err != nil {
		return rundir.Summary{}, err
	}
	defer e.hist.close()

	if !o.NoPrefill {
		// A large key space takes minutes (100,000 keys: ~8 min on 2 cores):
		// say so, or the run looks stuck before its first request.
		t0 := time.Now()
		if o.Logf != nil {
			o.Logf("prefill: writing each of the %d keys once before the load starts", o.Keys)
		}
		if err := e.prefill(ctx); err != nil {
			return rundir.Summary{}, err
		}
		if o.Logf != nil {
			o.Logf("prefill: %d keys in %s", o.Keys, time.Since(t0).Round(100*time.Millisecond))
		}
	}
	return e.run(ctx, runDir)
}

func newEngine(o Options, c *client) *engine {
	e := &engine{o: o, c: c}
	o.KeyDist = o.KeyDist.bind(o.Keys)
	e.o.KeyDist = o.KeyDist
	base := "/v1/" + o.Mount + "/data/"
	e.keyOff = len(base)
	e.keys = make([]string, o.Keys)
	width := len(strconv.Itoa(o.Keys - 1))
	for i := range e.keys {
		e.keys[i] = fmt.Sprintf("%s%sk%0*d", base, o.KeyPrefix, width, i)
	}
	e.listPath = "/v1/" + o.Mount + "/metadata/" + o.KeyPrefix
	r := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	e.filler = make([]byte, o.ValueSize)
	for i := range e.filler {
		e.filler[i] = alnum[r.IntN(len(alnum))]
	}
	for i := range e.nonce {
		e.nonce[i] = alnum[r.IntN(len(alnum))]
	}
	e.bodies.New = func() any { return &body{pool: &e.bodies} }
	e.hist = newHistory(e.o)
	return e
}

func (e *engine) config(t Target, started time.Time) RunConfig {
	o := e.o
	cfg := RunConfig{
		Mount: o.Mount, KeyPrefix: o.KeyPrefix, Keys: o.Keys, KeyDist: o.KeyDist.String(),
		ValueSize: o.ValueSize, Mix: o.Mix.String(), Target: o.Target, Addrs: t.Addrs,
		TimeoutS: o.Timeout.Seconds(), MaxInFlight: o.MaxInFlight,
		LateThresholdMs: float64(o.LateThreshold) / 1e6, Seed: o.Seed, Prefill: !o.NoPrefill, HistoryKeys: e.hist.keys,
		TickMs: float64(o.Tick) / 1e6, Client: "raw", GoMaxProcs: runtime.GOMAXPROCS(0), Started: started.UTC(),
		Shard: o.Shard,
	}
	if o.APIClient {
		cfg.Client = "vault/api"
	}
	if o.Closed > 0 {
		cfg.Closed, cfg.DurationS = o.Closed, o.Duration.Seconds()
	} else {
		cfg.Schedule, cfg.TargetRate, cfg.DurationS = o.Schedule.String(), round3(o.Schedule.MeanRate()), o.Schedule.Duration().Seconds()
	}
	return cfg
}

// run is the timed part: pacer or closed-loop workers, the 1 s flusher,
// the leader watcher.
func (e *engine) run(ctx context.Context, runDir string) (rundir.Summary, error) {
	o := e.o
	start := time.Now()
	rec, err := newRecorder(runDir, o.Mix.Ops(), start, o.OnSample)
	if err != nil {
		return rundir.Summary{}, err
	}
	e.rec = rec
	defer rec.close()

	// Requests in flight when ctx is cancelled get up to their timeout to
	// finish, so that their writes are acknowledged (and ledgered) or not.
	reqCtx, cancelReqs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReqs()
	e.reqCtx = reqCtx
	defer e.c.w.OnChange(e.c.follow)()
	e.c.follow()
	if e.c.ownW && e.c.mode == "active" {
		// Standalone: the load watches the cluster itself (coarsely, and
		// at once when requests fail). In a scenario the runner's watcher
		// is shared and already running.
		e.c.w.Start()
		defer e.c.w.Stop()
	}

	flushDone := make(chan struct{})
	stopFlush := make(chan struct{})
	go func() {
		defer close(flushDone)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopFlush:
				return
			case now := <-tick.C:
				rec.flush(now)
			}
		}
	}()

	var dur time.Duration
	if o.Closed > 0 {
		dur = o.Duration
		e.closedLoop(ctx, start)
	} else {
		dur = o.Schedule.Duration()
		e.jobs = make(chan job)
		e.quit = make(chan struct{}, o.MaxInFlight)
		e.idle = idleTracker{window: idleRetireAfter, min: -1}
		e.pace(ctx, start)
		close(e.jobs)
	}
	if ctx.Err() != nil {
		dur = min(dur, time.Since(start))
	}
	drained := make(chan struct{})
	go func() { e.wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(o.Timeout + time.Second):
		cancelReqs()
		<-drained
	}
	close(stopFlush)
	<-flushDone
	rec.flush(time.Now())

	s := e.summary(dur)
	if runDir != "" {
		if err := rundir.WriteJSON(runDir, rundir.SummaryFile, s); err != nil {
			return s, err
		}
	}
	if err := errors.Join(rec.err, e.led.close(), e.hist.close()); err != nil {
		return s, fmt.Errorf("record run: %w", err)
	}
	e.warn(s)
	if err := ctx.Err(); err != nil {
		return s, fmt.Errorf("load stopped early: %w", context.Cause(ctx))
	}
	return s, nil
}

func (e *engine) summary(dur time.Duration) rundir.Summary {
	secs := dur.Seconds()
	s := rundir.Summary{
		Ops:             e.rec.totals(secs),
		AckedWrites:     e.led.acked.Load(),
		UnknownWrites:   e.led.unknown.Load(),
		LateSends:       e.rec.total.late,
		Duration:        round3(secs),
		LateThresholdMs: float64(e.o.LateThreshold) / 1e6,
		MaxSendLagMs:    ms(int64(e.rec.total.lag)),
		PoolWaits:       e.waits.Load(),
		PeakWorkers:     int(e.peak.Load()),
		ConnsOpened:     e.c.dials.Load(),
		HistoryKeys:     e.hist.keys,
		HistoryOps:      int(e.hist.ops.Load()),
	}
	var n int64
	for _, st := range s.Ops {
		n += st.Count
	}
	if secs > 0 {
		s.AchievedRate = round3(float64(n) / secs)
	}
	if n > 0 {
		s.GeneratorLatePct = round3(100 * float64(s.LateSends) / float64(n))
	}
	if e.o.Closed == 0 {
		s.TargetRate = round3(e.o.Schedule.MeanRate())
		ok := s.AchievedRate >= 0.98*s.TargetRate
		s.RateReached = &ok
	}
	return s
}

func (e *engine) warn(s rundir.Summary) {
	if e.o.Logf == nil {
		return
	}
	if s.RateReached != nil && !*s.RateReached {
		e.o.Logf("RATE NOT REACHED: %.1f req/s achieved of %.1f req/s scheduled (%d late sends, %d waits for a free worker, peak %d workers)",
			s.AchievedRate, s.TargetRate, s.LateSends, s.PoolWaits, s.PeakWorkers)
	}
	if s.LateSends > 0 {
		e.o.Logf("%d requests were sent more than %gms after their intended time (max lag %.1fms): the generator fell behind, latencies include that lag",
			s.LateSends, s.LateThresholdMs, s.MaxSendLagMs)
	}
}

// pace is the open-loop pacer: it sleeps until each request's intended time
// and hands it to a free worker. It never waits for an answer, so a stalled
// server cannot slow the schedule down: requests scheduled during a stall
// are sent (or wait for a worker) and their latency counts from the
// schedule.
func (e *engine) pace(ctx context.Context, start time.Time) {
	cur := newCursor(e.o.Schedule)
	r := rand.New(rand.NewPCG(e.o.Seed, e.o.Seed+1))
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for seq := uint64(0); ; seq++ {
		off, ok := cur.next()
		if !ok {
			return
		}
		if q := e.o.Tick; q > 0 {
			off = (off + q - 1) / q * q
		}
		at := start.Add(off)
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		j := job{intended: at, seq: seq, op: e.o.Mix.pick(r.IntN(e.o.Mix.total)), key: int32(e.o.KeyDist.next(r, e.o.Keys))}
		e.dispatch(ctx, j)
	}
}

// idleRetireAfter: workers that stayed idle that long are retired, so the
// pool (goroutine stacks, buffers, and the memory they hold) shrinks back
// after a slowdown made it grow. A variable for tests.
var idleRetireAfter = 5 * time.Second

// retireSlack is how many never-used workers a window leaves in the pool,
// so a steady load does not retire and restart workers all the time.
const retireSlack = 4

// idleTracker finds the workers the pacer never needed: the fewest idle
// workers seen at any dispatch during a window. That many workers were
// idle during the whole window, whichever ones they were.
type idleTracker struct {
	window time.Duration
	from   time.Time // window start
	min    int       // fewest idle workers seen in the window; -1: none yet
}

// dispatch gives j to an idle worker, starts a new one while under the cap,
// or else waits for one (counted: the send will be late). Every
// idleRetireAfter it retires the workers that were idle all along.
func (e *engine) dispatch(ctx context.Context, j job) {
	idle := max(e.workers-int(e.busy.Add(1))+1, 0)
	e.noteIdle(j.intended, idle)
	select {
	case e.jobs <- j:
		return
	default:
	}
	if e.workers < e.o.MaxInFlight {
		e.workers++
		if int64(e.workers) > e.peak.Load() {
			e.peak.Store(int64(e.workers))
		}
		e.wg.Add(1)
		go e.worker(j)
		return
	}
	e.waits.Add(1)
	select {
	case e.jobs <- j:
	case <-ctx.Done():
		e.busy.Add(-1)
	}
}

// noteIdle records the idle workers at a dispatch and, at the end of a
// window, retires those that were never needed in it (minus a slack).
func (e *engine) noteIdle(now time.Time, idle int) {
	t := &e.idle
	if t.min < 0 || idle < t.min {
		t.min = idle
	}
	if t.from.IsZero() {
		t.from = now
		return
	}
	if now.Sub(t.from) < t.window {
		return
	}
	for k := t.min - retireSlack; k > 0 && e.workers > 0; k-- {
		select {
		case e.quit <- struct{}{}:
			e.workers--
		default:
			k = 0 // tokens not taken yet: retire the rest next window
		}
	}
	t.from, t.min = now, -1
}

func (e *engine) worker(first job) {
	defer e.wg.Done()
	w := &worker{e: e, buf: make([]byte, 0, 4096)}
	w.do(first)
	e.busy.Add(-1)
	for {
		select {
		case j, ok := <-e.jobs:
			if !ok {
				return
			}
			w.do(j)
			e.busy.Add(-1)
		case <-e.quit:
			return
		}
	}
}

// closedLoop runs o.Closed workers back to back until the duration is over.
func (e *engine) closedLoop(ctx context.Context, start time.Time) {
	end := start.Add(e.o.Duration)
	ctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	e.peak.Store(int64(e.o.Closed))
	for i := range e.o.Closed {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			w := &worker{e: e, buf: make([]byte, 0, 4096)}
			r := rand.New(rand.NewPCG(e.o.Seed+uint64(i), uint64(i)))
			for ctx.Err() == nil {
				j := job{intended: time.Now(), seq: e.seq.Add(1), op: e.o.Mix.pick(r.IntN(e.o.Mix.total)), key: int32(e.o.KeyDist.next(r, e.o.Keys))}
				w.do(j)
			}
		}()
	}
	<-ctx.Done()
}

// prefill writes every key once, so that reads find data from the first
// second. Its writes go to the ledger but not to the histograms.
func (e *engine) prefill(ctx context.Context) error {
	e.reqCtx = ctx
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range min(32, e.o.Keys) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{e: e, buf: make([]byte, 0, 4096)}
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(e.o.Keys) {
					return
				}
				j := job{intended: time.Now(), seq: uint64(1<<62 | i), key: int32(i), op: OpWrite}
				cl, body := w.exec(j, e.c.pick())
				if cl != OK {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("write %s: %s", e.keys[i][e.keyOff:], describeClass(cl, body)))
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("prefill: %w", err)
	}
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("prefill: %d of %d writes failed, first: %v", n, e.o.Keys, firstErr.Load())
	}
	return nil
}

func describeClass(cl Class, body []byte) string {
	if cl >= 100 && len(body) > 0 {
		return vaultErr(int(cl), body)
	}
	return cl.String()
}

// worker holds per-goroutine buffers so a request allocates nothing big.
type worker struct {
	e   *engine
	buf []byte
	id  int // 1 + its client id in the history; 0 until it records one
}

func (w *worker) do(j job) {
	e := w.e
	n := e.c.pick()
	sent := time.Now()
	cl, node := NoActive, -1
	if !e.c.holding() {
		cl, _ = w.exec(j, n)
		node = n.idx
	}
	end := time.Now()
	lag := sent.Sub(j.intended)
	e.rec.record(j.op, cl, end.Sub(j.intended), lag, lag > e.o.LateThreshold)
	if cl.IsError() {
		e.c.noteFailure(cl)
	}
	if e.o.OnResult != nil {
		e.o.OnResult(Result{Op: j.op, Class: cl, Node: node, Seq: j.seq, Intended: j.intended, Sent: sent, End: end})
	}
}

// exec performs one request and ledgers writes and deletes; operations on
// the sampled keys also go to the history. It returns the class and, for
// an HTTP error, the start of the body.
func (w *worker) exec(j job, n *node) (Class, []byte) {
	e := w.e
	ctx, cancel := context.WithTimeout(e.reqCtx, e.o.Timeout)
	defer cancel()
	path := e.keys[j.key]
	key := path[e.keyOff:]
	hs := e.hist.sampled(j.key)
	if e.o.APIClient {
		return w.execAPI(ctx, j, n, key, hs)
	}
	const limit = 64 << 10
	switch j.op {
	case OpRead:
		if hs {
			// The answer is parsed for the history: read it whole.
			sent := time.Now()
			st, err := e.c.request(ctx, n, http.MethodGet, path, "", nil, 0, &w.buf, limit+2*e.o.ValueSize)
			cl, b := answer(st, err, w.buf, 200, 404)
			if cl == OK {
				e.hist.read(w.client(), key, sent, time.Now(), st, w.buf)
			}
			return cl, b
		}
		st, err := e.c.request(ctx, n, http.MethodGet, path, "", nil, 0, &w.buf, limit)
		// A miss (404) is an answer, not a failure: keys may be deleted.
		return answer(st, err, w.buf, 200, 404)
	case OpList:
		st, err := e.c.request(ctx, n, http.MethodGet, e.listPath, "list=true", nil, 0, &w.buf, limit)
		return answer(st, err, w.buf, 200, 404)
	case OpDelete:
		sent := time.Now()
		st, err := e.c.request(ctx, n, http.MethodDelete, path, "", nil, 0, &w.buf, limit)
		cl, b := answer(st, err, w.buf, 204, 200)
		now := time.Now()
		switch {
		case cl == OK:
			e.led.add(rundir.LedgerEntry{T: now, Sent: sent, Key: key, Outcome: OutcomeDeleted, Op: "delete"})
		case cl.outcomeUnknown():
			e.led.add(rundir.LedgerEntry{T: now, Sent: sent, Key: key, Outcome: OutcomeUnknown, Op: "delete"})
		default:
			return cl, b
		}
		if hs {
			e.hist.del(w.client(), key, sent, now, cl != OK)
		}
		return cl, b
	}
	b := e.newBody(j.seq)
	digest := b.digest()
	var vid string
	if hs {
		vid = valueID(b.value())
	}
	sent := time.Now()
	st, err := e.c.request(ctx, n, http.MethodPost, path, "", b, int64(len(b.b)), &w.buf, limit)
	cl, rb := answer(st, err, w.buf, 200, 204)
	if cl == OK {
		if v, ok := scanVersion(w.buf); ok {
			now := time.Now()
			e.led.add(rundir.LedgerEntry{T: now, Sent: sent, Key: key, Version: v, Digest: digest, Outcome: OutcomeOK})
			if hs {
				e.hist.write(w.client(), key, sent, now, vid, v, false)
			}
			return OK, nil
		}
		// 200 without a version: not something we can check later.
		cl = Other
	}
	if cl.outcomeUnknown() {
		e.led.add(rundir.LedgerEntry{T: time.Now(), Sent: sent, Key: key, Digest: digest, Outcome: OutcomeUnknown})
		if hs {
			e.hist.write(w.client(), key, sent, time.Time{}, vid, 0, true)
		}
	}
	return cl, rb
}

func answer(st int, err error, body []byte, okStatus ...int) (Class, []byte) {
	if err != nil {
		return classifyErr(err), nil
	}
	for _, s := range okStatus {
		if st == s {
			return OK, nil
		}
	}
	return classifyHTTP(st, body), body
}

// scanVersion finds "version":N in a KV v2 write answer without decoding
// the whole JSON document: this runs once per write on the hot path.
func scanVersion(b []byte) (int, bool) {
	i := bytes.Index(b, []byte(`"version":`))
	if i < 0 {
		return 0, false
	}
	b = b[i+len(`"version":`):]
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	v, k := 0, 0
	for k < len(b) && b[k] >= '0' && b[k] <= '9' && k < 10 {
		v = v*10 + int(b[k]-'0')
		k++
	}
	return v, k > 0
}

// body is a pooled request body: {"data":{"v":"<value>"}}. It returns
// itself to the pool when the transport closes it, which is the moment the
// transport is done reading it (possibly after RoundTrip returned).
type body struct {
	b      []byte
	off    int
	v0, v1 int // value bounds in b
	pool   *sync.Pool
	closed atomic.Bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.off >= len(b.b) {
		return 0, io.EOF
	}
	k := copy(p, b.b[b.off:])
	b.off += k
	return k, nil
}

func (b *body) Close() error {
	if b.closed.CompareAndSwap(false, true) {
		b.pool.Put(b)
	}
	return nil
}

func (b *body) value() []byte { return b.b[b.v0:b.v1] }

func (b *body) digest() string {
	sum := sha256.Sum256(b.value())
	return hex.EncodeToString(sum[:])
}

// newBody builds a unique value: run nonce and sequence number up front
// (so a stale version never has the digest of a newer one), then filler.
func (e *engine) newBody(seq uint64) *body {
	b := e.bodies.Get().(*body)
	b.closed.Store(false)
	b.off = 0
	b.b = append(b.b[:0], `{"data":{"v":"`...)
	b.v0 = len(b.b)
	var id [24]byte
	copy(id[:8], e.nonce[:])
	hex.Encode(id[8:], binaryBE(seq))
	size := e.o.ValueSize
	if size >= len(id) {
		b.b = append(b.b, id[:]...)
		b.b = append(b.b, e.filler[len(id):size]...)
	} else {
		b.b = append(b.b, id[len(id)-size:]...)
	}
	b.v1 = len(b.b)
	b.b = append(b.b, `"}}`...)
	return b
}

func binaryBE(v uint64) []byte {
	var b [8]byte
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	return b[:]
}

// execAPI is the same request through vault/api, kept to measure what the
// official client costs per request (see the benchmarks).
func (w *worker) execAPI(ctx context.Context, j job, n *node, key string, hs bool) (Class, []byte) {
	e := w.e
	lg := n.api.Logical()
	p := e.o.Mount + "/data/" + key
	switch j.op {
	case OpRead:
		sent := time.Now()
		sec, err := lg.ReadWithContext(ctx, p)
		cl := apiClass(err)
		if hs && cl == OK {
			e.hist.readSecret(w.client(), key, sent, time.Now(), sec)
		}
		return cl, nil
	case OpList:
		_, err := lg.ListWithContext(ctx, e.o.Mount+"/metadata/"+e.o.KeyPrefix)
		return apiClass(err), nil
	case OpDelete:
		sent := time.Now()
		_, err := lg.DeleteWithContext(ctx, p)
		cl := apiClass(err)
		now := time.Now()
		if cl == OK {
			e.led.add(rundir.LedgerEntry{T: now, Sent: sent, Key: key, Outcome: OutcomeDeleted, Op: "delete"})
		} else if cl.outcomeUnknown() {
			e.led.add(rundir.LedgerEntry{T: now, Sent: sent, Key: key, Outcome: OutcomeUnknown, Op: "delete"})
		} else {
			return cl, nil
		}
		if hs {
			e.hist.del(w.client(), key, sent, now, cl != OK)
		}
		return cl, nil
	}
	b := e.newBody(j.seq)
	val := string(b.value())
	digest := b.digest()
	b.Close()
	sent := time.Now()
	sec, err := lg.WriteWithContext(ctx, p, map[string]any{"data": map[string]any{"v": val}})
	cl := apiClass(err)
	if cl == OK {
		if sec != nil {
			if v, err := strconv.Atoi(fmt.Sprint(sec.Data["version"])); err == nil {
				now := time.Now()
				e.led.add(rundir.LedgerEntry{T: now, Sent: sent, Key: key, Version: v, Digest: digest, Outcome: OutcomeOK})
				if hs {
					e.hist.write(w.client(), key, sent, now, valueID([]byte(val)), v, false)
				}
				return OK, nil
			}
		}
		cl = Other
	}
	if cl.outcomeUnknown() {
		e.led.add(rundir.LedgerEntry{T: time.Now(), Sent: sent, Key: key, Digest: digest, Outcome: OutcomeUnknown})
		if hs {
			e.hist.write(w.client(), key, sent, time.Time{}, valueID([]byte(val)), 0, true)
		}
	}
	return cl, nil
}

func apiClass(err error) Class {
	if err == nil {
		return OK
	}
	var re *vault.ResponseError
	if errors.As(err, &re) {
		return classifyHTTP(re.StatusCode, []byte(fmt.Sprint(re.Errors)))
	}
	return classifyErr(err)
}
