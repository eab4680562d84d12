package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vaultstorm/vaultstorm/cluster/storage"
)

// Files and folders inside a cluster directory.
const (
	StateFile     = "state.json"
	TLSDir        = ".tls"
	SecretsDir    = "secrets"
	RootTokenFile = "root-token"         // under SecretsDir, 0600
	RecoveryFile  = "recovery-keys.json" // under SecretsDir, 0600
	SealKeysFile  = "seal-init.json"     // under SecretsDir, 0600
	NodesDir      = "nodes"              // per node: config, log
	DisksDir      = "disks"              // sparse backing files of the arrays
)

// Phase of the cluster's life recorded in the state.
const (
	PhaseStarting = "starting"
	PhaseUp       = "up"
)

// Node roles.
const (
	RoleSeal  = "seal"  // the transit Vault that stands in for the cloud KMS
	RoleVoter = "voter" // a raft node of the cluster under test
)

// Node is one Vault server: identity, where it listens, its process and its
// data disk. It is plain data, saved in state.json.
type Node struct {
	Name        string        `json:"name"`
	Role        string        `json:"role"`
	NodeID      string        `json:"node_id"`
	IP          string        `json:"ip"`
	Addr        string        `json:"api_addr,omitempty"` // a node vaultstorm did not make: its API address as Vault gives it
	Zone        string        `json:"zone,omitempty"`
	Generation  int           `json:"generation"` // bumped by each replace
	PID         int           `json:"pid,omitempty"`
	PIDStart    uint64        `json:"pid_start,omitempty"` // /proc start time, guards against PID reuse
	ContainerID string        `json:"container_id,omitempty"`
	Cgroup      string        `json:"cgroup,omitempty"`  // cgroup v2 directory naming its sockets
	Started     time.Time     `json:"started,omitempty"` // first start of this generation
	LostAt      time.Time     `json:"lost_at,omitempty"`
	Array       storage.Array `json:"storage"`
	// VaultBin is the binary this node runs; "" is the cluster's
	// (State.VaultBin). An upgrade sets it node by node (see UpgradeNode).
	VaultBin string `json:"vault_bin,omitempty"`
}

// APIAddr is the node's HTTPS API address.
func (n *Node) APIAddr() string {
	if n.Addr != "" {
		return n.Addr
	}
	return fmt.Sprintf("https://%s:%d", n.IP, APIPort)
}

// ClusterAddr is the node's raft/cluster address.
func (n *Node) ClusterAddr() string { return fmt.Sprintf("https://%s:%d", n.IP, ClusterPort) }

// Ports, the same on every node like on real hosts.
const (
	APIPort     = 8200
	ClusterPort = 8201
)

// State is state.json: everything needed to find and remove what a cluster
// made, even when the process that made it is gone.
type State struct {
	Provider     string    `json:"provider"`
	Phase        string    `json:"phase"`
	Created      time.Time `json:"created"`
	VaultBin     string    `json:"vault_bin"`
	VaultVersion string    `json:"vault_version"`
	Spec         Spec      `json:"spec"`
	Seal         *Node     `json:"seal,omitempty"`
	Nodes        []*Node   `json:"nodes"`
	// Lost nodes are gone for good (reclaimed); their raft peers linger
	// until autopilot removes them.
	Lost []*Node `json:"lost,omitempty"`
	// Retired arrays are being destroyed; kept until they are.
	Retired []storage.Array `json:"retired,omitempty"`
	// SealKey is the transit key the nodes' seal uses; "" is the one the
	// seal Vault was set up with (see UseNewSealKey).
	SealKey string `json:"seal_key,omitempty"`
	// DockerNetwork is the docker provider's network for the cluster.
	DockerNetwork string `json:"docker_network,omitempty"`
}

// stateFile guards writes of state.json within one process; the file is
// replaced atomically so a reader never sees half of it.
type stateFile struct {
	mu   sync.Mutex
	path string
}

func (f *stateFile) save(s *State) error { return f.update(s, nil) }

// update makes change (if not nil) and writes s, both under the file's
// lock: goroutines that record their own node's progress at once (the
// disks are made in parallel) must not change s while another marshals it.
func (f *stateFile) update(s *State, change func()) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if change != nil {
		change()
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := f.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save cluster state: %w", err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		return fmt.Errorf("save cluster state: %w", err)
	}
	return nil
}

// ErrNoCluster means the directory holds no cluster state.
var ErrNoCluster = errors.New("no cluster")

func loadState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s: run `vaultstorm up` first", ErrNoCluster, dir)
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, StateFile), err)
	}
	return &s, nil
}
