package watch

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// raftConfig is sys/storage/raft/configuration.
type raftConfig struct {
	Data struct {
		Config struct {
			Servers []struct {
				NodeID  string `json:"node_id"`
				Address string `json:"address"`
				Leader  bool   `json:"leader"`
				Voter   bool   `json:"voter"`
			} `json:"servers"`
		} `json:"config"`
	} `json:"data"`
}

// Final is the one explicit check of the cluster's end state, which every
// end-of-run expectation reads: each node's own sys/health (state and
// version), then the raft configuration and autopilot's state from the
// active node. With no active node it says so in Error and nothing else
// is claimed. A brief election is waited out (up to tries × 1 s).
func (w *Watcher) Final(ctx context.Context, tries int) rundir.FinalState {
	var fs rundir.FinalState
	for i := 0; i < max(tries, 1); i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				fs.Error = "interrupted: " + ctx.Err().Error()
				return fs
			case <-time.After(time.Second):
			}
		}
		fs = w.finalOnce(ctx)
		if fs.Error == "" {
			return fs
		}
	}
	return fs
}

func (w *Watcher) finalOnce(ctx context.Context) rundir.FinalState {
	nodes := w.Nodes()
	intended := w.o.Intended
	if intended == 0 {
		intended = len(nodes)
	}
	fs := rundir.FinalState{T: time.Now().UTC(), IntendedVoters: intended, Nodes: make([]rundir.FinalNode, len(nodes))}
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := w.health(ctx, n.Addr, KindFinal)
			fs.Nodes[i] = rundir.FinalNode{Name: n.Name, NodeID: n.NodeID, State: h.State(err)}
			if h != nil {
				fs.Nodes[i].Version = h.Version
			}
		}()
	}
	wg.Wait()
	var leader *Node
	for i, fn := range fs.Nodes {
		if fn.State == StateLeader {
			if leader != nil {
				fs.Error = fmt.Sprintf("two nodes say they are active: %s and %s", leader.Name, fn.Name)
				return fs
			}
			leader = &nodes[i]
		}
	}
	if leader == nil {
		fs.Error = "no leader: no node answers as the active node"
		return fs
	}
	fs.Leader = leader.Name
	body, code, err := w.get(ctx, leader.Addr, "/v1/sys/storage/raft/configuration", w.o.Token, KindFinal)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("HTTP %d", code)
	}
	if err != nil {
		fs.Error = "raft configuration from " + leader.Name + ": " + err.Error()
		return fs
	}
	var rc raftConfig
	if err := json.Unmarshal(body, &rc); err != nil {
		fs.Error = "raft configuration from " + leader.Name + ": " + err.Error()
		return fs
	}
	byID := map[string]string{}
	for _, n := range nodes {
		if n.NodeID != "" {
			byID[n.NodeID] = n.Name
		}
	}
	voterIDs := map[string]bool{}
	for _, s := range rc.Data.Config.Servers {
		fs.Peers = append(fs.Peers, s.NodeID)
		if s.Voter {
			voterIDs[s.NodeID] = true
			name := byID[s.NodeID]
			if name == "" {
				name = s.NodeID
			}
			fs.Voters = append(fs.Voters, name)
		}
	}
	sort.Strings(fs.Peers)
	sort.Strings(fs.Voters)
	for i := range fs.Nodes {
		fs.Nodes[i].Voter = voterIDs[fs.Nodes[i].NodeID]
	}
	body, code, err = w.get(ctx, leader.Addr, "/v1/sys/storage/raft/autopilot/state", w.o.Token, KindFinal)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("HTTP %d", code)
	}
	if err != nil {
		fs.Error = "autopilot state from " + leader.Name + ": " + err.Error()
		return fs
	}
	ap, err := ParseAutopilot(body)
	if err != nil {
		fs.Error = err.Error()
		return fs
	}
	fs.AutopilotHealthy = ap.Healthy
	return fs
}
