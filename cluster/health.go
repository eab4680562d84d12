package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vaultstorm/vaultstorm/cluster/storage"
	"github.com/vaultstorm/vaultstorm/cluster/watch"
)

// Node states as reported by Status.
const (
	StateLeader   = watch.StateLeader
	StateFollower = watch.StateFollower
	StateSealed   = watch.StateSealed
	StateUninit   = watch.StateUninit
	StateDown     = watch.StateDown
	StatePaused   = "paused"
)

// StorageStatus says what a node's data directory is on.
type StorageStatus struct {
	Kind    storage.Kind `json:"kind"`
	Devices int          `json:"devices"`
	Mount   string       `json:"mount"`
}

// NodeStatus is one node as seen from the API.
type NodeStatus struct {
	Name       string        `json:"name"`
	NodeID     string        `json:"node_id"`
	APIAddr    string        `json:"api_addr"`
	Zone       string        `json:"zone,omitempty"`
	PID        int           `json:"pid"`
	Container  string        `json:"container,omitempty"` // docker: the container's short ID
	Generation int           `json:"generation"`
	State      string        `json:"state"`
	Voter      bool          `json:"voter"`
	Healthy    bool          `json:"healthy"` // autopilot's view
	Storage    StorageStatus `json:"storage"`
	Error      string        `json:"error,omitempty"`
}

// Status is the whole cluster, as `vaultstorm status --json` prints it.
type Status struct {
	Healthy          bool         `json:"healthy"`
	Leader           string       `json:"leader"`
	Voters           int          `json:"voters"`
	FailureTolerance int          `json:"failure_tolerance"`
	VaultVersion     string       `json:"vault_version"`
	Provider         string       `json:"provider"`
	Storage          storage.Kind `json:"storage"`
	Seal             string       `json:"seal"`
	Nodes            []NodeStatus `json:"nodes"`
	Peers            []string     `json:"raft_peers"` // node IDs in the raft configuration
}

// Status asks every node for its health and the cluster for autopilot's
// view. It never fails for a down node: that is what it reports.
func (c *Cluster) Status(ctx context.Context) (*Status, error) {
	st := &Status{
		VaultVersion: c.State.VaultVersion, Provider: c.State.Provider,
		Storage: c.State.Spec.Storage, Seal: "transit (" + c.State.Seal.APIAddr() + ")",
	}
	st.Nodes = make([]NodeStatus, len(c.State.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.State.Nodes {
		st.Nodes[i] = NodeStatus{
			Name: n.Name, NodeID: n.NodeID, APIAddr: n.APIAddr(), Zone: n.Zone, PID: n.PID, Container: short(n.ContainerID), Generation: n.Generation,
			Storage: StorageStatus{Kind: n.Array.Kind, Devices: len(n.Array.Devices), Mount: n.Array.Mount},
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.Nodes[i].State, st.Nodes[i].Error = c.nodeState(ctx, n)
		}()
	}
	wg.Wait()
	ap, err := c.autopilot(ctx)
	if err != nil {
		return st, nil // no leader: nothing healthy, nothing voting that we can see
	}
	st.FailureTolerance = ap.FailureTolerance
	st.Voters = len(ap.Voters)
	for id := range ap.Servers {
		st.Peers = append(st.Peers, id)
	}
	sort.Strings(st.Peers)
	for i := range st.Nodes {
		ns := &st.Nodes[i]
		if s, ok := ap.Servers[ns.NodeID]; ok {
			ns.Voter = s.Status == "voter" || s.Status == "leader"
			ns.Healthy = s.Healthy
			if s.Status == "leader" {
				st.Leader = ns.Name
			}
		}
	}
	st.Healthy = ap.Healthy && st.Voters == len(c.State.Nodes) && len(ap.Servers) == len(c.State.Nodes)
	for _, ns := range st.Nodes {
		if !ns.Voter || !ns.Healthy || (ns.State != StateLeader && ns.State != StateFollower) {
			st.Healthy = false
		}
	}
	return st, nil
}

func (c *Cluster) nodeState(ctx context.Context, n *Node) (string, string) {
	if !c.provider.Alive(ctx, c, n) {
		return StateDown, ""
	}
	if c.provider.Paused(ctx, c, n) {
		return StatePaused, ""
	}
	cl, err := c.clients.get(n)
	if err != nil {
		return StateDown, err.Error()
	}
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	h, err := cl.Sys().HealthWithContext(hctx)
	if err != nil {
		return StateDown, err.Error()
	}
	return HealthState(h, nil), ""
}

// HealthState maps a sys/health answer (or the error of asking) to a node
// state, the way the watcher does (watch.Health.State).
func HealthState(h *api.HealthResponse, err error) string {
	if h == nil {
		return (*watch.Health)(nil).State(err)
	}
	return (&watch.Health{Initialized: h.Initialized, Sealed: h.Sealed, Standby: h.Standby, Version: h.Version}).State(err)
}

// autopilot reads sys/storage/raft/autopilot/state from the first node
// that answers (standbys forward it to the active node).
func (c *Cluster) autopilot(ctx context.Context) (*api.AutopilotState, error) {
	var errs []string
	for _, n := range c.State.Nodes {
		if !c.provider.Alive(ctx, c, n) || c.provider.Paused(ctx, c, n) {
			continue
		}
		cl, err := c.clients.get(n)
		if err != nil {
			return nil, err
		}
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ap, err := cl.Sys().RaftAutopilotStateWithContext(actx)
		cancel()
		if err == nil && ap != nil && ap.Leader != "" {
			return ap, nil
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", n.Name, err))
		}
	}
	if len(errs) == 0 {
		return nil, errors.New("no node answered with a leader")
	}
	return nil, fmt.Errorf("no autopilot state: %s", strings.Join(errs, "; "))
}

// Autopilot returns autopilot's view of the cluster, from any live node.
func (c *Cluster) Autopilot(ctx context.Context) (*api.AutopilotState, error) {
	return c.autopilot(ctx)
}

// WaitHealthy polls every 200 ms until the cluster has want healthy voters,
// every recorded node among them, no other peer in the raft configuration,
// and autopilot says healthy. progress is called when the voter count changes.
func (c *Cluster) WaitHealthy(ctx context.Context, want int, timeout time.Duration, progress func(voters int)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	lastVoters := -1
	var last string
	for {
		ap, err := c.autopilot(ctx)
		if err != nil {
			last = err.Error()
		} else {
			if len(ap.Voters) != lastVoters && progress != nil {
				lastVoters = len(ap.Voters)
				progress(lastVoters)
			}
			last = c.unhealthyReason(ap, want)
			if last == "" {
				// Autopilot still trusts a peer it heard from recently;
				// every node must also answer for itself, unsealed.
				last = c.unsealedReason(ctx)
			}
			if last == "" {
				return nil
			}
		}
		for _, n := range c.State.Nodes {
			if n.PID > 0 && !c.provider.Alive(ctx, c, n) {
				return fmt.Errorf("%s exited; end of %s:\n%s", n.Name, c.LogFile(n.Name), c.logTail(ctx, n, 8))
			}
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("cluster not healthy within %s: %s", timeout, last)
			}
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// unsealedReason names a node that does not answer as an unsealed member,
// or returns "".
func (c *Cluster) unsealedReason(ctx context.Context) string {
	for _, n := range c.State.Nodes {
		state, _ := c.nodeState(ctx, n)
		if state != StateLeader && state != StateFollower {
			return n.Name + " is " + state
		}
	}
	return ""
}

// unhealthyReason says why ap is not a whole, healthy cluster of want
// voters made of the recorded nodes, or "" when it is (watch.Unhealthy).
func (c *Cluster) unhealthyReason(ap *api.AutopilotState, want int) string {
	exp := make([]watch.Expected, len(c.State.Nodes))
	for i, n := range c.State.Nodes {
		exp[i] = watch.Expected{Name: n.Name, NodeID: n.NodeID}
	}
	return watch.Unhealthy(autopilotView(ap), exp, want)
}

// autopilotView converts vault/api's autopilot state to the watcher's.
func autopilotView(ap *api.AutopilotState) *watch.Autopilot {
	v := &watch.Autopilot{Healthy: ap.Healthy, FailureTolerance: ap.FailureTolerance, Leader: ap.Leader,
		Voters: ap.Voters, Servers: map[string]watch.AutopilotServer{}}
	for id, s := range ap.Servers {
		if s != nil {
			v.Servers[id] = watch.AutopilotServer{ID: s.ID, Name: s.Name, Address: s.Address, Status: s.Status, Healthy: s.Healthy, Version: s.Version}
		}
	}
	return v
}
