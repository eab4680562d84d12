package runner

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// Probe timing: DESIGN.md asks for probes every 50 ms or less.
const (
	nodeProbeEvery   = 50 * time.Millisecond
	healthProbeEvery = 50 * time.Millisecond
	probeTimeout     = 400 * time.Millisecond
)

// probeNode is what the prober knows of a node: names and address only,
// so it never shares mutable cluster state with the fault actions.
type probeNode struct {
	Name, NodeID, Addr string
}

// prober watches the cluster from outside, the way a monitoring system
// would: every node's sys/health and autopilot's view, recording state
// changes as events and keeping the observations the measurements need.
type prober struct {
	tr    *http.Transport
	token string
	event func(rundir.Event)

	mu       sync.Mutex
	expected []probeNode
	loops    map[string]context.CancelFunc
	state    map[string]string // node -> last state
	active   []string          // nodes reporting active, sorted
	leaders  []leaderObs
	health   []healthObs
	lastAP   *api.AutopilotState
	wg       sync.WaitGroup
	ctx      context.Context
	stopAll  context.CancelFunc
	healthy  bool
	apReason string
}

func newProber(caFile, token string, event func(rundir.Event)) (*prober, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("probe: no certificate in %s", caFile)
	}
	p := &prober{
		tr:    &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: 4},
		token: token, event: event,
		loops: map[string]context.CancelFunc{}, state: map[string]string{},
	}
	p.ctx, p.stopAll = context.WithCancel(context.Background())
	return p, nil
}

func (p *prober) client(addr string) (*api.Client, error) {
	cl, err := api.NewClient(&api.Config{Address: addr, HttpClient: &http.Client{Transport: p.tr}, MaxRetries: 0, Timeout: probeTimeout})
	if err != nil {
		return nil, err
	}
	cl.SetToken(p.token)
	return cl, nil
}

// setNodes replaces the set of nodes the cluster is expected to have:
// new ones get a probe loop, removed ones lose theirs.
func (p *prober) setNodes(nodes []probeNode) {
	var removed []string
	defer func() {
		// setState takes p.mu itself.
		for _, name := range removed {
			p.setState(name, "removed")
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expected = slices.Clone(nodes)
	keep := map[string]bool{}
	for _, n := range nodes {
		keep[n.Name] = true
		if _, ok := p.loops[n.Name]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(p.ctx)
		p.loops[n.Name] = cancel
		p.wg.Add(1)
		go p.nodeLoop(ctx, n)
	}
	for name, cancel := range p.loops {
		if !keep[name] {
			cancel()
			delete(p.loops, name)
			removed = append(removed, name)
		}
	}
}

func (p *prober) start() {
	p.wg.Add(1)
	go p.healthLoop()
}

func (p *prober) stop() {
	p.stopAll()
	p.wg.Wait()
}

func (p *prober) nodeLoop(ctx context.Context, n probeNode) {
	defer p.wg.Done()
	cl, err := p.client(n.Addr)
	if err != nil {
		p.event(rundir.Event{T: time.Now(), Kind: rundir.EvNote, Node: n.Name, Msg: "probe: " + err.Error()})
		return
	}
	tick := time.NewTicker(nodeProbeEvery)
	defer tick.Stop()
	for {
		hctx, cancel := context.WithTimeout(ctx, probeTimeout)
		h, err := cl.Sys().HealthWithContext(hctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		p.setState(n.Name, cluster.HealthState(h, err))
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// setState records a node's state change and the active set it implies.
func (p *prober) setState(name, state string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state[name] == state {
		return
	}
	now := time.Now()
	p.state[name] = state
	p.event(rundir.Event{T: now, Kind: rundir.EvNodeState, Node: name, State: state})
	var active []string
	for n, s := range p.state {
		if s == "leader" {
			active = append(active, n)
		}
	}
	sort.Strings(active)
	if !slices.Equal(active, p.active) {
		for _, a := range active {
			if !slices.Contains(p.active, a) {
				p.event(rundir.Event{T: now, Kind: rundir.EvLeader, Node: a})
			}
		}
		p.active = active
		p.leaders = append(p.leaders, leaderObs{t: now, leaders: active})
	}
}

// healthLoop asks autopilot, through a node that answers, whether the
// cluster is healthy with exactly the expected nodes as voters.
func (p *prober) healthLoop() {
	defer p.wg.Done()
	tick := time.NewTicker(healthProbeEvery)
	defer tick.Stop()
	clients := map[string]*api.Client{}
	for {
		start := time.Now()
		p.mu.Lock()
		expected := slices.Clone(p.expected)
		order := slices.Clone(p.active)
		p.mu.Unlock()
		for _, n := range expected {
			if !slices.Contains(order, n.Name) {
				order = append(order, n.Name)
			}
		}
		var ap *api.AutopilotState
		for _, name := range order {
			var addr string
			for _, n := range expected {
				if n.Name == name {
					addr = n.Addr
				}
			}
			if addr == "" {
				continue
			}
			cl := clients[addr]
			if cl == nil {
				var err error
				if cl, err = p.client(addr); err != nil {
					continue
				}
				clients[addr] = cl
			}
			ctx, cancel := context.WithTimeout(p.ctx, probeTimeout)
			got, err := cl.Sys().RaftAutopilotStateWithContext(ctx)
			cancel()
			if err == nil && got != nil && got.Leader != "" {
				ap = got
				break
			}
			if p.ctx.Err() != nil {
				return
			}
		}
		reason := "no node answered with a leader"
		if ap != nil {
			ids := make([]cluster.ExpectedNode, len(expected))
			for i, n := range expected {
				ids[i] = cluster.ExpectedNode{Name: n.Name, NodeID: n.NodeID}
			}
			reason = cluster.Unhealthy(ap, ids)
		}
		if reason == "" {
			// Autopilot trusts a peer it heard from recently; each node
			// must also answer for itself, unsealed.
			p.mu.Lock()
			for _, n := range expected {
				if s := p.state[n.Name]; s != "leader" && s != "follower" {
					if s == "" {
						s = "not probed yet"
					}
					reason = n.Name + " is " + s
					break
				}
			}
			p.mu.Unlock()
		}
		healthy := reason == ""
		p.mu.Lock()
		p.health = append(p.health, healthObs{t: start, healthy: healthy})
		if ap != nil {
			p.lastAP = ap
		}
		if healthy != p.healthy || (!healthy && reason != p.apReason && len(p.health) == 1) {
			msg := "cluster healthy"
			if !healthy {
				msg = "cluster unhealthy: " + reason
			}
			p.event(rundir.Event{T: start, Kind: rundir.EvNote, Msg: msg})
		}
		p.healthy, p.apReason = healthy, reason
		p.mu.Unlock()
		select {
		case <-p.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// observations returns copies of what the probes saw.
func (p *prober) observations() ([]leaderObs, []healthObs, *api.AutopilotState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.leaders), slices.Clone(p.health), p.lastAP
}

// leaderNow returns the active nodes as last seen.
func (p *prober) leaderNow() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.active)
}
