// Package watch is the one observer of a cluster under test: it knows who
// leads, which nodes answer and in what state, and whether the cluster is
// whole and healthy. The scenario runner, the load generator (which node
// is active) and the metrics scraper (which nodes exist) all read it, so
// the harness asks the cluster each question once.
//
// The observer is part of the experiment: every request it sends takes CPU
// from the nodes it measures. So it probes coarsely (every 3 s per node)
// except where and when a fault acts: from just before a fault until the
// cluster is whole again, the fault's nodes and the leader (all nodes while
// no leader is known outside the fault) are probed every 50 ms. Every
// request is counted, split between focused and quiet time, so a run can
// report what its observer cost.
package watch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/internal/tlsconf"
)

// Node is one node the watcher probes.
type Node struct {
	Name   string
	NodeID string // raft node ID; "" when not known (a cluster not ours)
	Addr   string // API base URL, e.g. https://127.0.0.11:8200
}

// Request kinds, as counted.
const (
	KindHealth    = "health"
	KindAutopilot = "autopilot"
	KindFinal     = "final"
	KindMetrics   = "metrics"
	KindDiscover  = "discover"
)

// Options tune a Watcher.
type Options struct {
	CACert string // PEM file the servers' chains verify against; "" = system roots
	// Token reads autopilot state (sys/storage/raft/autopilot/state); ""
	// turns the autopilot loop off (health is then unknown).
	Token string
	// Intended is how many voters a whole cluster has (replacements
	// count); 0 means the number of nodes given.
	Intended int
	Fine     time.Duration // probe interval in focus; default 50 ms
	Coarse   time.Duration // probe interval elsewhere; default 3 s
	Timeout  time.Duration // per request; default 400 ms
	// Event receives node state, leader and health changes; nil drops them.
	Event func(rundir.Event)
	// Discover is a token that may read sys/ha-status and
	// sys/storage/raft/configuration. With it the node list follows the
	// cluster's own, every Coarse interval: a node an autoscaling group
	// launched joins it, a peer autopilot removed leaves it (see
	// Discover). "" keeps the nodes given.
	Discover string
}

// LeaderObs is a change in the set of nodes that say they are active.
// During a partition the cut-off old leader may still say so while the
// majority has elected another, so it is a set.
type LeaderObs struct {
	T       time.Time
	Leaders []string
}

// HealthObs is one autopilot probe, timed when it started, so a healthy
// answer always postdates the time it is judged from.
type HealthObs struct {
	T       time.Time
	Healthy bool
	Reason  string // why not healthy
}

// Watcher probes a cluster. Create it with New, Start it, Stop it.
type Watcher struct {
	o      Options
	hc     *http.Client
	tr     *http.Transport
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	nodes      []Node
	loops      map[string]context.CancelFunc
	state      map[string]string
	version    map[string]string
	lastAt     map[string]time.Time // last probe start per node
	since      map[string]time.Time // when each node's state last changed
	active     []string             // nodes reporting active, sorted
	lastActive string               // the node that most recently became active
	leaders    []LeaderObs
	healthLog  []HealthObs
	healthy    bool
	reason     string
	focus      map[int][]string // open focus windows: nodes of each
	nextF      int
	wake       chan struct{} // closed and replaced to wake every loop
	subs       map[int]func()
	nextSub    int
	started    time.Time
	stopped    time.Time
	quietFor   time.Duration // time with no focus window open
	quietAt    time.Time     // start of the current quiet stretch (zero in focus)

	counts [2]map[string]*atomic.Int64 // [quiet, focused] by kind
}

// New makes a watcher of nodes; it probes nothing until Start.
func New(nodes []Node, o Options) (*Watcher, error) {
	if o.Fine <= 0 {
		o.Fine = 50 * time.Millisecond
	}
	if o.Coarse <= 0 {
		o.Coarse = 3 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 400 * time.Millisecond
	}
	cfg, err := tlsconf.Client(o.CACert)
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	tr := &http.Transport{
		TLSClientConfig:     cfg,
		MaxIdleConnsPerHost: 2,
		// A killed and replaced node must get a fresh connection soon.
		IdleConnTimeout:    10 * time.Second,
		DisableCompression: true,
		// HTTP/1.1: a probe must not share the fate of a wedged stream.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	w := &Watcher{
		o: o, tr: tr, hc: &http.Client{Transport: tr},
		loops: map[string]context.CancelFunc{}, state: map[string]string{}, version: map[string]string{},
		lastAt: map[string]time.Time{}, since: map[string]time.Time{}, subs: map[int]func(){}, focus: map[int][]string{}, wake: make(chan struct{}),
	}
	for i := range w.counts {
		w.counts[i] = map[string]*atomic.Int64{}
		for _, k := range []string{KindHealth, KindAutopilot, KindFinal, KindMetrics, KindDiscover} {
			w.counts[i][k] = &atomic.Int64{}
		}
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.nodes = slices.Clone(nodes)
	return w, nil
}

// Start begins probing.
func (w *Watcher) Start() {
	w.mu.Lock()
	w.started = time.Now()
	w.quietAt = w.started
	nodes := slices.Clone(w.nodes)
	w.mu.Unlock()
	w.SetNodes(nodes)
	if w.o.Token != "" {
		w.wg.Add(1)
		go w.autopilotLoop()
	}
	if w.o.Discover != "" {
		w.wg.Add(1)
		go w.discoverLoop()
	}
}

// Stop ends probing and waits for every probe to return.
func (w *Watcher) Stop() {
	w.cancel()
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped.IsZero() {
		w.stopped = time.Now()
		if !w.quietAt.IsZero() {
			w.quietFor += w.stopped.Sub(w.quietAt)
			w.quietAt = time.Time{}
		}
	}
	w.tr.CloseIdleConnections()
}

// SetNodes replaces the nodes the cluster should have: new ones get a
// probe loop, removed ones lose theirs (and are reported "removed").
func (w *Watcher) SetNodes(nodes []Node) {
	w.mu.Lock()
	w.nodes = slices.Clone(nodes)
	keep := map[string]bool{}
	for _, n := range nodes {
		keep[n.Name] = true
		if _, ok := w.loops[n.Name]; ok || w.started.IsZero() {
			continue
		}
		ctx, cancel := context.WithCancel(w.ctx)
		w.loops[n.Name] = cancel
		w.wg.Add(1)
		go w.nodeLoop(ctx, n)
	}
	var removed []string
	for name, cancel := range w.loops {
		if !keep[name] {
			cancel()
			delete(w.loops, name)
			removed = append(removed, name)
		}
	}
	w.mu.Unlock()
	for _, name := range removed {
		w.setState(name, "removed", "")
	}
	w.notify()
}

// Nodes returns the nodes the cluster should have now.
func (w *Watcher) Nodes() []Node {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.nodes)
}

// Focus opens a window of fine-grained probing on nodes (and on the
// leader, and on every node while no leader is known outside them) until
// the returned function is called.
func (w *Watcher) Focus(nodes []string) (release func()) {
	w.mu.Lock()
	id := w.nextF
	w.nextF++
	if len(w.focus) == 0 && !w.quietAt.IsZero() {
		w.quietFor += time.Since(w.quietAt)
		w.quietAt = time.Time{}
	}
	w.focus[id] = slices.Clone(nodes)
	w.mu.Unlock()
	w.Kick()
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			delete(w.focus, id)
			if len(w.focus) == 0 && w.stopped.IsZero() {
				w.quietAt = time.Now()
			}
			w.mu.Unlock()
		})
	}
}

// Focused reports whether a focus window is open.
func (w *Watcher) Focused() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.focus) > 0
}

// Kick asks every loop to probe now (a request failed the way a dead or
// demoted leader fails). A node probed less than kickGap ago is not asked
// again, so a storm of failures cannot become a storm of probes.
func (w *Watcher) Kick() {
	w.mu.Lock()
	close(w.wake)
	w.wake = make(chan struct{})
	w.mu.Unlock()
}

const kickGap = 100 * time.Millisecond

// OnChange registers f, called (from a probe goroutine) whenever the set
// of active nodes or of nodes changes, until the returned function is
// called. f must be quick.
func (w *Watcher) OnChange(f func()) (cancel func()) {
	w.mu.Lock()
	id := w.nextSub
	w.nextSub++
	w.subs[id] = f
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		delete(w.subs, id)
		w.mu.Unlock()
	}
}

func (w *Watcher) notify() {
	w.mu.Lock()
	subs := make([]func(), 0, len(w.subs))
	for _, f := range w.subs {
		subs = append(subs, f)
	}
	w.mu.Unlock()
	for _, f := range subs {
		f()
	}
}

// Active returns the nodes that last said they are active, sorted.
func (w *Watcher) Active() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.active)
}

// Route says what the node Target returns is to the cluster.
type Route int

const (
	NoRoute Route = iota
	// RouteActive: the node said it is active.
	RouteActive
	// RouteLastActive: no node is active now; this one was the last, and
	// requests stay on it until another is. A standby would forward them to
	// it, and Vault does not let a standby become active while requests it
	// forwarded are still in flight (startForwarding takes the lock every
	// forwarded request holds for its whole length): against a partitioned
	// or paused leader, the harness's own forwarded requests would hold
	// the election back by up to their timeout (11.1 s seen in CI).
	RouteLastActive
	// RouteStandby: a live standby, which forwards to the active node. Only
	// while no watched node has ever said it is active: the active node is
	// one the harness was not told of (a single VAULT_ADDR on a standby).
	RouteStandby
	// RouteNoActive: no node is active, and the one that was last is sealed
	// or gone: an election is under way, or quorum is lost. "active"
	// traffic should not be sent anywhere until a node says it is active. A
	// standby would forward it to the lost leader (whose container address
	// swallows packets) and, as above, hold back its own promotion until
	// those requests time out: in CI's Docker spot-wave the leader came
	// 10.8 s after a reclaim, the client's 10 s timeout after the harness
	// fell back to the standby that won the election.
	RouteNoActive
)

// Target is where "send to the active node" traffic should go: the active
// node (the one most recently confirmed when a partition leaves two); else
// the node that was active last, while it is still a member and not
// sealed; else, once a node has been seen active, nowhere (RouteNoActive);
// else a live standby. The route is NoRoute when there is none.
func (w *Watcher) Target() (Node, Route) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var best Node
	var bestAt time.Time
	for _, nd := range w.nodes {
		if w.state[nd.Name] == StateLeader && (bestAt.IsZero() || w.lastAt[nd.Name].After(bestAt)) {
			best, bestAt = nd, w.lastAt[nd.Name]
		}
	}
	if !bestAt.IsZero() {
		return best, RouteActive
	}
	if w.lastActive != "" {
		for _, nd := range w.nodes {
			if nd.Name == w.lastActive && w.state[nd.Name] != StateSealed && w.state[nd.Name] != StateUninit {
				return nd, RouteLastActive
			}
		}
		return Node{}, RouteNoActive
	}
	for _, nd := range w.nodes {
		if w.state[nd.Name] == StateFollower {
			return nd, RouteStandby
		}
	}
	return Node{}, NoRoute
}

// LastActive is the node that most recently said it is active ("" when
// none has).
func (w *Watcher) LastActive() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastActive
}

// State is a node's last observed state ("" before its first probe).
func (w *Watcher) State(name string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state[name]
}

// Versions returns the version each node last reported (sys/health).
func (w *Watcher) Versions() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]string, len(w.version))
	for k, v := range w.version {
		out[k] = v
	}
	return out
}

// Leaders returns every change of the active set so far.
func (w *Watcher) Leaders() []LeaderObs {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.leaders)
}

// HealthLog returns every autopilot probe so far.
func (w *Watcher) HealthLog() []HealthObs {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.healthLog)
}

// Count records one request of the harness's own (e.g. a metrics scrape),
// in focused or quiet time.
func (w *Watcher) Count(kind string) {
	i := 0
	if w.Focused() {
		i = 1
	}
	if c := w.counts[i][kind]; c != nil {
		c.Add(1)
	}
}

// Requests is what the observer sent.
type Requests struct {
	Total, Quiet int64
	ByKind       map[string]int64
	Duration     time.Duration // watcher lifetime
	QuietFor     time.Duration // of which no focus window was open
}

// Requests counts the observer's requests so far.
func (w *Watcher) Requests() Requests {
	w.mu.Lock()
	r := Requests{ByKind: map[string]int64{}, QuietFor: w.quietFor}
	end := w.stopped
	if end.IsZero() {
		end = time.Now()
		if !w.quietAt.IsZero() {
			r.QuietFor += end.Sub(w.quietAt)
		}
	}
	if !w.started.IsZero() {
		r.Duration = end.Sub(w.started)
	}
	w.mu.Unlock()
	for i, m := range w.counts {
		for k, c := range m {
			v := c.Load()
			if v == 0 {
				continue
			}
			r.ByKind[k] += v
			r.Total += v
			if i == 0 {
				r.Quiet += v
			}
		}
	}
	return r
}

// steadyAfter is how long a node must hold one unsealed state before a
// focus window probes it less often.
const steadyAfter = time.Second

// interval is how long node name waits between probes now. Outside focus
// windows: Coarse. In one: Fine for the active node, for a node of the
// fault that is changing (or down, sealed), and for every node while no
// active node is known to be elected among them; a fault's node that has
// stayed a standby for steadyAfter is probed every 250 ms, other nodes
// every Coarse/4. A rolling restart focuses on every node: probing all of
// them at 50 ms sent the cluster more requests than the load did.
func (w *Watcher) interval(name string) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.focus) == 0 {
		return w.o.Coarse
	}
	if slices.Contains(w.active, name) {
		return w.o.Fine
	}
	var focused []string
	for _, ns := range w.focus {
		focused = append(focused, ns...)
	}
	if slices.Contains(focused, name) {
		steady := Unsealed(w.state[name]) && time.Since(w.since[name]) >= steadyAfter
		if !steady || len(w.active) == 0 {
			return w.o.Fine
		}
		return max(w.o.Fine, 250*time.Millisecond)
	}
	for _, a := range w.active {
		if !slices.Contains(focused, a) {
			return w.o.Coarse / 4 // a leader is known: the others matter less
		}
	}
	return w.o.Fine // no leader outside the fault: any node may become it
}

func (w *Watcher) nodeLoop(ctx context.Context, n Node) {
	defer w.wg.Done()
	for {
		w.mu.Lock()
		w.lastAt[n.Name] = time.Now()
		wake := w.wake
		w.mu.Unlock()
		h, err := w.health(ctx, n.Addr, KindHealth)
		if ctx.Err() != nil {
			return
		}
		w.setState(n.Name, h.State(err), h.version())
		tm := time.NewTimer(w.interval(n.Name))
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				tm.Stop()
				return
			case <-tm.C:
				waiting = false
			case <-wake:
				w.mu.Lock()
				recent := time.Since(w.lastAt[n.Name]) < kickGap
				wake = w.wake
				w.mu.Unlock()
				if !recent {
					tm.Stop()
					waiting = false
				} else {
					// Probed just now: probe again once the gap is over,
					// at the interval the kick may have changed.
					tm.Reset(kickGap)
				}
			}
		}
	}
}

// health asks one node's sys/health.
func (w *Watcher) health(ctx context.Context, addr, kind string) (*Health, error) {
	body, _, err := w.get(ctx, addr, "/v1/sys/health", "", kind)
	if err != nil {
		return nil, err
	}
	h, err := ParseHealth(body)
	if err != nil {
		return nil, err
	}
	return &h, nil
}

// get sends one GET and returns the body and status. Every status is an
// answer (sys/health encodes state in it).
func (w *Watcher) get(ctx context.Context, addr, path, token, kind string) ([]byte, int, error) {
	ctx, cancel := context.WithTimeout(ctx, w.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(addr, "/")+path, nil)
	if err != nil {
		return nil, 0, err
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	w.Count(kind)
	resp, err := w.hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return b, resp.StatusCode, err
}

// setState records a node's state and the active set it implies, and
// tells subscribers when either changed.
func (w *Watcher) setState(name, state, version string) {
	changed := false
	w.mu.Lock()
	if version != "" {
		if old := w.version[name]; old != version && old != "" {
			w.emit(rundir.Event{Kind: rundir.EvNodeState, Node: name, State: w.state[name], Msg: "version " + version})
		}
		w.version[name] = version
	}
	if w.state[name] != state {
		changed = true
		now := time.Now()
		w.state[name] = state
		w.since[name] = now
		w.emit(rundir.Event{T: now, Kind: rundir.EvNodeState, Node: name, State: state})
		if state == StateLeader {
			w.lastActive = name
		}
		var active []string
		for n, s := range w.state {
			if s == StateLeader {
				active = append(active, n)
			}
		}
		sort.Strings(active)
		if !slices.Equal(active, w.active) {
			for _, a := range active {
				if !slices.Contains(w.active, a) {
					w.emit(rundir.Event{T: now, Kind: rundir.EvLeader, Node: a})
				}
			}
			w.active = active
			w.leaders = append(w.leaders, LeaderObs{T: now, Leaders: active})
		}
	}
	w.mu.Unlock()
	if changed {
		w.notify()
	}
}

// emit sends an event; called with w.mu held, so events keep their order.
func (w *Watcher) emit(e rundir.Event) {
	if w.o.Event == nil {
		return
	}
	if e.T.IsZero() {
		e.T = time.Now()
	}
	w.o.Event(e)
}

// autopilotLoop asks autopilot, through the active node when one is known,
// whether the cluster is whole and healthy.
func (w *Watcher) autopilotLoop() {
	defer w.wg.Done()
	for {
		start := time.Now()
		ap, reason := w.autopilot(w.ctx)
		if w.ctx.Err() != nil {
			return
		}
		if ap != nil {
			reason = w.judge(ap)
		}
		healthy := reason == ""
		w.mu.Lock()
		w.healthLog = append(w.healthLog, HealthObs{T: start, Healthy: healthy, Reason: reason})
		if healthy != w.healthy || len(w.healthLog) == 1 {
			msg := "cluster healthy"
			if !healthy {
				msg = "cluster unhealthy: " + reason
			}
			w.emit(rundir.Event{T: start, Kind: rundir.EvNote, Msg: msg})
		}
		w.healthy, w.reason = healthy, reason
		// Healing is timed at twice the fine resolution: every answer
		// costs the active node a full autopilot state.
		d := w.o.Coarse
		if len(w.focus) > 0 {
			d = 2 * w.o.Fine
		}
		w.mu.Unlock()
		select {
		case <-w.ctx.Done():
			return
		case <-time.After(time.Until(start.Add(d))):
		}
	}
}

// autopilot reads autopilot's state from the first node that answers with
// a leader, the active node first.
func (w *Watcher) autopilot(ctx context.Context) (*Autopilot, string) {
	w.mu.Lock()
	order := slices.Clone(w.nodes)
	active := slices.Clone(w.active)
	w.mu.Unlock()
	sort.SliceStable(order, func(i, j int) bool {
		return slices.Contains(active, order[i].Name) && !slices.Contains(active, order[j].Name)
	})
	var errs []string
	for _, n := range order {
		if st := w.State(n.Name); st != "" && !Unsealed(st) {
			continue // it cannot answer; do not spend a timeout on it
		}
		body, code, err := w.get(ctx, n.Addr, "/v1/sys/storage/raft/autopilot/state", w.o.Token, KindAutopilot)
		if ctx.Err() != nil {
			return nil, "stopped"
		}
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("HTTP %d", code)
		}
		if err == nil {
			ap, perr := ParseAutopilot(body)
			if perr == nil && ap.Leader != "" {
				return ap, ""
			}
			err = errors.Join(perr, errors.New("no leader"))
		}
		errs = append(errs, n.Name+": "+err.Error())
	}
	if len(errs) == 0 {
		return nil, "no node answers unsealed"
	}
	return nil, "no autopilot state with a leader (" + strings.Join(errs, "; ") + ")"
}

// judge says why ap is not a whole cluster, or "" when it is: autopilot
// healthy with exactly the intended voters, and every node answering for
// itself unsealed (autopilot trusts a peer it heard from recently).
func (w *Watcher) judge(ap *Autopilot) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	exp := make([]Expected, len(w.nodes))
	for i, n := range w.nodes {
		exp[i] = Expected{Name: n.Name, NodeID: n.NodeID}
	}
	intended := w.o.Intended
	if intended == 0 {
		intended = len(w.nodes)
	}
	if r := Unhealthy(ap, exp, intended); r != "" {
		return r
	}
	for _, n := range w.nodes {
		if s := w.state[n.Name]; !Unsealed(s) {
			if s == "" {
				s = "not probed yet"
			}
			return n.Name + " is " + s
		}
	}
	return ""
}

// HealedAt is the start of the first autopilot probe at or after t that
// found the cluster whole and healthy (zero when none did).
func HealedAt(obs []HealthObs, t time.Time) time.Time {
	for _, o := range obs {
		if !o.T.Before(t) && o.Healthy {
			return o.T
		}
	}
	return time.Time{}
}

// LeaderElected is when, at or after t, a node not in excluded was first
// seen active (zero when never).
func LeaderElected(obs []LeaderObs, t time.Time, excluded []string) time.Time {
	for _, o := range obs {
		if o.T.Before(t) {
			continue
		}
		for _, l := range o.Leaders {
			if !slices.Contains(excluded, l) {
				return o.T
			}
		}
	}
	return time.Time{}
}

// Sweep probes every node once, now, and returns when all have answered
// or timed out: for one-shot questions (who is active before a load
// starts, before a read-back) without waiting for the loops.
func (w *Watcher) Sweep(ctx context.Context) {
	var wg sync.WaitGroup
	for _, n := range w.Nodes() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.mu.Lock()
			w.lastAt[n.Name] = time.Now()
			w.mu.Unlock()
			h, err := w.health(ctx, n.Addr, KindHealth)
			if ctx.Err() == nil {
				w.setState(n.Name, h.State(err), h.version())
			}
		}()
	}
	wg.Wait()
}
