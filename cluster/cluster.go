// Package cluster stands up, inspects, breaks and removes a Vault cluster on
// integrated (raft) storage built like the seed architecture: PKI from a
// cfssl root and intermediate CA, RAID0 data disks, transit auto-unseal,
// retry_join, and autopilot that removes dead servers.
//
// A Cluster is its directory: state.json records every process, loop
// device and mount it made, so `down` works after the harness was killed.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/vaultstorm/vaultstorm/cluster/external"
	"github.com/vaultstorm/vaultstorm/cluster/storage"
)

// Spec is what `up` builds.
type Spec struct {
	Nodes                 int           `json:"nodes"`
	Provider              string        `json:"provider"`
	Storage               storage.Kind  `json:"storage"` // "" = best RAID0 available
	Disks                 int           `json:"disks"`
	DiskSize              int64         `json:"disk_size"`
	Zones                 int           `json:"zones"`
	PerformanceMultiplier int           `json:"performance_multiplier"`
	StabilizationTime     time.Duration `json:"server_stabilization_time"`
	DeadServerThreshold   time.Duration `json:"dead_server_last_contact_threshold"`
	// How often autopilot promotes, demotes and removes servers, and how
	// often it refreshes its view (Vault's defaults: 10s and 2s).
	AutopilotReconcile time.Duration `json:"autopilot_reconcile_interval"`
	AutopilotUpdate    time.Duration `json:"autopilot_update_interval"`
	PKIDir             string        `json:"pki_dir"`
	// NodeNice is the scheduling niceness the Vault nodes run at (0: the
	// harness's own). On one machine the nodes share the CPU with the load
	// generator and the watcher, the harness's clock: when the nodes are
	// busy (starting, replaying raft, a disk rebuilt) a generator at the
	// same priority sends late, and a run whose clock slipped measures the
	// harness, not Vault. Real clusters run on other hosts than their
	// clients; a lower priority for the nodes is the nearest thing here.
	NodeNice int `json:"node_nice"`
	// FastBringUp: at bring-up the harness unseals each joining node with
	// the recovery keys once it has joined, instead of leaving it to
	// Vault's own auto-unseal retry (every 5 s), and autopilot promotes
	// joiners after BringUpStabilization; StabilizationTime applies once
	// the cluster is up. Only bring-up: replaced and restarted nodes
	// always unseal themselves, as in production, and their recovery is
	// measured that way.
	FastBringUp bool `json:"fast_bring_up"`
	// Subnet is the third octet of the nodes' loopback addresses
	// (127.0.SUBNET.10 is the seal, .11 node1, …), so that several
	// clusters (parallel tests) can live on one machine.
	Subnet int `json:"subnet"`
}

// BringUpStabilization is autopilot's server_stabilization_time while a
// fast bring-up (Spec.FastBringUp) waits for its joiners: Vault's minimum
// (it takes whole seconds, and ignores 0).
const BringUpStabilization = time.Second

// DefaultSpec is a five-voter cluster on btrfs or md RAID0 of two 256 MiB
// loop devices per node, three zones, and HashiCorp's production raft
// timing (performance_multiplier 1). Autopilot acts faster than Vault's
// defaults (stabilization 2s instead of 10s, reconcile every 1s instead of
// 10s) so that bring-up and healing take seconds; the flags restore
// Vault's values for production-like heal times.
func DefaultSpec() Spec {
	return Spec{
		Nodes:                 5,
		Provider:              "process",
		Disks:                 2,
		DiskSize:              256 << 20,
		Zones:                 3,
		PerformanceMultiplier: 1,
		StabilizationTime:     2 * time.Second,
		DeadServerThreshold:   time.Minute,
		AutopilotReconcile:    time.Second,
		AutopilotUpdate:       500 * time.Millisecond,
		NodeNice:              10,
		FastBringUp:           true,
	}
}

// Validate checks the spec before anything is made.
func (s Spec) Validate() error {
	if s.Nodes < 1 || s.Nodes%2 == 0 {
		return fmt.Errorf("--nodes %d: raft needs an odd number of voters (1, 3, 5, 7, 9)", s.Nodes)
	}
	if s.Nodes > 15 {
		return fmt.Errorf("--nodes %d: at most 15 nodes", s.Nodes)
	}
	if s.PerformanceMultiplier < 1 || s.PerformanceMultiplier > 10 {
		return fmt.Errorf("--performance-multiplier %d: must be 1-10 (1 is HashiCorp's production recommendation)", s.PerformanceMultiplier)
	}
	if s.NodeNice < 0 || s.NodeNice > 19 {
		return fmt.Errorf("node niceness %d: must be 0-19", s.NodeNice)
	}
	if s.Subnet < 0 || s.Subnet > 255 {
		return fmt.Errorf("subnet %d: must be 0-255 (the third octet of 127.0.X.Y, or of 10.213.X.Y for docker)", s.Subnet)
	}
	switch s.Provider {
	case "", "process", "docker":
	case "external":
		return fmt.Errorf("--provider external: there is nothing to stand up; describe the cluster in an inventory and use `vaultstorm run SCENARIO --inventory FILE` or `vaultstorm node ACTION NAME --inventory FILE` (process, docker)")
	default:
		return fmt.Errorf("--provider %q: unknown (process, docker)", s.Provider)
	}
	if s.Zones < 1 {
		return fmt.Errorf("--zones %d: need at least one zone", s.Zones)
	}
	if s.DeadServerThreshold < time.Minute {
		return fmt.Errorf("dead server threshold %s: Vault refuses less than 1m", s.DeadServerThreshold)
	}
	if s.AutopilotUpdate <= 0 || s.AutopilotReconcile < s.AutopilotUpdate {
		return fmt.Errorf("autopilot reconcile interval %s must be at least the update interval %s (both above 0)", s.AutopilotReconcile, s.AutopilotUpdate)
	}
	if s.StabilizationTime < time.Second {
		return fmt.Errorf("server stabilization time %s: must be at least 1s", s.StabilizationTime)
	}
	if s.Storage != storage.Dir {
		kind := s.Storage
		if kind == "" {
			kind = storage.BtrfsRAID0 // whichever RAID0 is picked, the same limits
		}
		return storage.Spec{Kind: kind, Disks: s.Disks, Size: s.DiskSize}.Validate()
	}
	return nil
}

// Provider runs nodes somewhere: local processes, containers, or an
// existing fleet driven by commands.
type Provider interface {
	Name() string
	// Prepare makes what all nodes share (a network, an image).
	Prepare(ctx context.Context, c *Cluster) error
	// Start runs n's server with its configuration and data disk.
	Start(ctx context.Context, c *Cluster, n *Node) error
	// Signal sends sig to n's server; SIGTERM and SIGKILL wait until it is gone.
	Signal(ctx context.Context, c *Cluster, n *Node, sig syscall.Signal) error
	// Alive reports whether n's server is running (a paused one is).
	Alive(ctx context.Context, c *Cluster, n *Node) bool
	// Paused reports whether n's server is frozen (SIGSTOP, docker pause).
	Paused(ctx context.Context, c *Cluster, n *Node) bool
	// Discard removes what Start made for n (its container) once its
	// instance is gone for good; n is not running.
	Discard(ctx context.Context, c *Cluster, n *Node) error
	// Teardown removes what Prepare made, and anything of the cluster's
	// that Discard did not get to.
	Teardown(ctx context.Context, c *Cluster) error

	// paths says where n's server finds its files.
	paths(c *Cluster, n *Node) nodePaths
}

// nodePaths are a node's files as its server sees them.
type nodePaths struct {
	Cert, Key, CA string
	Data          string // raft (or the seal's file storage) directory
	Log           string // log_file; "" logs to standard error only
}

func newProvider(name string) (Provider, error) {
	switch name {
	case "", "process":
		return processProvider{}, nil
	case "docker":
		return dockerProvider{}, nil
	case "external":
		return nil, fmt.Errorf("provider %q: an external cluster is attached from its inventory (cluster.Attach), not opened from a directory", name)
	default:
		return nil, fmt.Errorf("unknown provider %q (process, docker, external)", name)
	}
}

// Cluster is a live cluster and its directory.
type Cluster struct {
	Dir      string
	State    *State
	provider Provider
	file     *stateFile
	clients  *clients
	ext      *external.Fleet // a fleet vaultstorm did not make (Attach)
}

// Progress is told when a bring-up stage starts and ends.
type Progress interface {
	Stage(name string, total int)
	Step(name string)
	Done(name string)
}

type noProgress struct{}

func (noProgress) Stage(string, int) {}
func (noProgress) Step(string)       {}
func (noProgress) Done(string)       {}

// Open loads the cluster recorded in dir.
func Open(dir string) (*Cluster, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	st, err := loadState(abs)
	if err != nil {
		return nil, err
	}
	if st.Provider == ProviderExternal {
		return nil, fmt.Errorf("%s records a run on a cluster vaultstorm did not make: there is nothing of it to act on from here (use `vaultstorm node ACTION NAME --inventory FILE`)", dir)
	}
	p, err := newProvider(st.Provider)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: abs, State: st, provider: p, file: &stateFile{path: filepath.Join(abs, StateFile)}}
	c.clients = newClients(c)
	return c, nil
}

// Save writes the state file.
func (c *Cluster) Save() error { return c.file.save(c.State) }

// update changes the state and writes it. The bring-up starts nodes and
// makes disks in parallel, each goroutine recording its own node's
// progress: such changes go through update (or change, when a save
// follows anyway) so that no goroutine marshals the state while another
// changes it.
func (c *Cluster) update(change func()) error { return c.file.update(c.State, change) }

// change changes the state under the lock Save takes, without saving.
func (c *Cluster) change(f func()) {
	c.file.mu.Lock()
	defer c.file.mu.Unlock()
	f()
}

// Provider returns the provider the cluster runs on.
func (c *Cluster) Provider() Provider { return c.provider }

// Node returns the named node of the cluster under test.
func (c *Cluster) Node(name string) (*Node, error) {
	for _, n := range c.State.Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	names := make([]string, len(c.State.Nodes))
	for i, n := range c.State.Nodes {
		names[i] = n.Name
	}
	return nil, fmt.Errorf("no node %q (nodes: %v)", name, names)
}

// Alive reports whether any recorded server still runs.
func (c *Cluster) Alive(ctx context.Context) bool {
	for _, n := range c.all() {
		if c.provider.Alive(ctx, c, n) {
			return true
		}
	}
	return false
}

func (c *Cluster) all() []*Node {
	out := append(append([]*Node(nil), c.State.Nodes...), c.State.Lost...)
	if c.State.Seal != nil {
		out = append(out, c.State.Seal)
	}
	return out
}

var versionRE = regexp.MustCompile(`Vault v(\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)`)

// VaultVersion runs `bin version` and returns e.g. "1.21.0", or an error
// that says the binary is missing or not Vault.
func VaultVersion(ctx context.Context, bin string) (string, error) {
	if bin == "" {
		return "", errors.New("no Vault binary: run `make vault` or pass --vault-bin PATH")
	}
	st, err := os.Stat(bin)
	if err != nil {
		return "", fmt.Errorf("--vault-bin %s: %w (run `make vault` or pass the path of a vault binary)", bin, errors.Unwrap(err))
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("--vault-bin %s: not an executable file", bin)
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput()
	m := versionRE.FindSubmatch(out)
	if err != nil || m == nil {
		return "", fmt.Errorf("--vault-bin %s: `version` did not print a Vault version; is this a vault binary?", bin)
	}
	return string(m[1]), nil
}

// maxNodeIndex bounds node addresses to x.x.x.11-250.
const maxNodeIndex = 240

// ipFor is node i's address: the seal is .10, node1 .11, … on loopback
// (127.0.SUBNET.0/24) for processes, on the cluster's private network for
// containers.
func ipFor(spec Spec, i int) string {
	if spec.Provider == "docker" {
		return dockerIP(spec.Subnet, i)
	}
	return fmt.Sprintf("127.0.%d.%d", spec.Subnet, 10+i)
}

func zoneFor(i, zones int) string { return fmt.Sprintf("zone-%c", 'a'+(i-1)%zones) }
