package watch

import (
	"encoding/json"
	"fmt"
)

// Node states, as a node answers sys/health (or fails to).
const (
	StateLeader   = "leader"
	StateFollower = "follower"
	StateSealed   = "sealed"
	StateUninit   = "uninitialized"
	StateDown     = "down"
)

// Health is the part of a sys/health answer the harness reads. Vault
// answers with this body whatever the status code (200 active, 429
// standby, 472/473 DR/performance standby, 501 uninitialised, 503 sealed).
type Health struct {
	Initialized bool   `json:"initialized"`
	Sealed      bool   `json:"sealed"`
	Standby     bool   `json:"standby"`
	Version     string `json:"version"`
	ClusterID   string `json:"cluster_id"`
	ClusterName string `json:"cluster_name"`
}

// ParseHealth decodes a sys/health body.
func ParseHealth(body []byte) (Health, error) {
	var h Health
	if err := json.Unmarshal(body, &h); err != nil {
		return h, fmt.Errorf("sys/health: %w", err)
	}
	return h, nil
}

// State maps a sys/health answer (or the error of asking) to a node state.
// It is the one mapping every part of the harness uses.
func (h *Health) State(err error) string {
	switch {
	case err != nil || h == nil:
		return StateDown
	case !h.Initialized:
		return StateUninit
	case h.Sealed:
		return StateSealed
	case h.Standby:
		return StateFollower
	default:
		return StateLeader
	}
}

// version is the answer's version, "" when there was no answer.
func (h *Health) version() string {
	if h == nil {
		return ""
	}
	return h.Version
}

// Unsealed reports whether a state is a serving member (active or standby).
func Unsealed(state string) bool { return state == StateLeader || state == StateFollower }

// Autopilot is sys/storage/raft/autopilot/state, as the harness reads it.
type Autopilot struct {
	Healthy          bool                       `json:"healthy"`
	FailureTolerance int                        `json:"failure_tolerance"`
	Leader           string                     `json:"leader"`
	Voters           []string                   `json:"voters"`
	Servers          map[string]AutopilotServer `json:"servers"`
}

// AutopilotServer is one raft peer in autopilot's view.
type AutopilotServer struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Address string `json:"address"`
	Status  string `json:"status"` // leader | voter | non-voter
	Healthy bool   `json:"healthy"`
	Version string `json:"version"`
}

// Voter reports whether the peer votes (the leader does).
func (s AutopilotServer) Voter() bool { return s.Status == "voter" || s.Status == "leader" }

// ParseAutopilot decodes the API answer ({"data": {...}}).
func ParseAutopilot(body []byte) (*Autopilot, error) {
	var r struct {
		Data *Autopilot `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("autopilot state: %w", err)
	}
	if r.Data == nil {
		return nil, fmt.Errorf("autopilot state: no data in the answer")
	}
	return r.Data, nil
}

// Expected is a node a whole cluster has as a healthy voter.
type Expected struct{ Name, NodeID string }

// Unhealthy says why ap is not a whole, healthy cluster, or "" when it is:
// autopilot healthy, exactly the intended number of voters, every expected
// node among them and healthy, and no other raft peer (a dead one not yet
// removed). A cluster running fewer voters than intended is degraded, not
// healthy, even when autopilot is content with it.
func Unhealthy(ap *Autopilot, expected []Expected, intended int) string {
	if intended <= 0 {
		intended = len(expected)
	}
	if !ap.Healthy {
		return "autopilot reports unhealthy"
	}
	if len(ap.Voters) != intended {
		return fmt.Sprintf("%d voters of %d intended", len(ap.Voters), intended)
	}
	if len(expected) < intended {
		return fmt.Sprintf("%d nodes of %d intended", len(expected), intended)
	}
	if len(ap.Servers) != len(expected) {
		return fmt.Sprintf("%d raft peers, want %d (a dead peer not yet removed, or a node not yet joined)", len(ap.Servers), len(expected))
	}
	for _, n := range expected {
		s, ok := ap.Servers[n.NodeID]
		if !ok {
			return n.Name + " is not a raft peer"
		}
		if !s.Voter() {
			return n.Name + " is " + s.Status
		}
		if !s.Healthy {
			return n.Name + " is not healthy"
		}
	}
	return ""
}
