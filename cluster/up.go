package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/vault/api"
	"golang.org/x/sync/errgroup"

	"github.com/vaultstorm/vaultstorm/cluster/pki"
	"github.com/vaultstorm/vaultstorm/cluster/storage"
)

const (
	sealKeyName       = "autounseal"
	sealPolicy        = "autounseal"
	sealTokenFile     = "seal-token"      // under SecretsDir: the transit token the nodes use
	sealRootTokenFile = "seal-root-token" // under SecretsDir: the seal Vault's own root token
)

// ErrAlreadyUp means a live cluster is recorded in the directory.
var ErrAlreadyUp = errors.New("a cluster is already up")

// Leftovers is returned (wrapped) by Up when it had to remove a dead
// cluster's remains first; Up carries on.
type Options struct {
	Dir      string
	Spec     Spec
	VaultBin string
	Progress Progress
	// Cleaned is told when Up removed a half-dead cluster left by a crash.
	Cleaned func(error)
}

// Up builds and starts a cluster. On failure (or cancellation) everything
// made so far is removed again.
func Up(ctx context.Context, o Options) (*Cluster, error) {
	if o.Progress == nil {
		o.Progress = noProgress{}
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if old, err := Open(dir); err == nil {
		if old.Alive(ctx) {
			return nil, fmt.Errorf("%w in %s (%d nodes): run `vaultstorm down` first", ErrAlreadyUp, dir, len(old.State.Nodes))
		}
		derr := old.Down(context.WithoutCancel(ctx))
		if o.Cleaned != nil {
			o.Cleaned(derr)
		}
		if derr != nil {
			return nil, fmt.Errorf("remove the dead cluster left in %s: %w", dir, derr)
		}
	} else if !errors.Is(err, ErrNoCluster) {
		return nil, err
	}
	spec := o.Spec
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	p, err := newProvider(spec.Provider)
	if err != nil {
		return nil, err
	}
	if spec.Storage == "" {
		if spec.Storage, err = storage.Detect(); err != nil {
			return nil, err
		}
	}
	version, err := VaultVersion(ctx, o.VaultBin)
	if err != nil {
		return nil, err
	}
	var inputs *pki.Inputs
	if spec.PKIDir == "" {
		inputs, err = pki.SeedInputs()
	} else {
		inputs, err = pki.LoadInputs(spec.PKIDir)
	}
	if err != nil {
		return nil, err
	}
	bin, _ := filepath.Abs(o.VaultBin)
	// Loopback addresses in use answer; a docker subnet in use is refused
	// when the network is created (and before it exists, its addresses
	// route off this host, where no probe may go).
	for i := 0; i <= spec.Nodes && spec.Provider != "docker"; i++ {
		addr := net.JoinHostPort(ipFor(spec, i), fmt.Sprint(APIPort))
		if conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			conn.Close()
			return nil, fmt.Errorf("%s is already in use: another cluster is up (vaultstorm down --dir DIR), or use --subnet to pick other addresses", addr)
		}
	}

	if err := os.MkdirAll(filepath.Join(dir, SecretsDir), 0o700); err != nil {
		return nil, fmt.Errorf("create cluster directory: %w", err)
	}
	c := &Cluster{
		Dir:      dir,
		provider: p,
		file:     &stateFile{path: filepath.Join(dir, StateFile)},
		State: &State{
			Provider: p.Name(), Phase: PhaseStarting, Created: time.Now().UTC(),
			VaultBin: bin, VaultVersion: version, Spec: spec,
		},
	}
	c.clients = newClients(c)
	c.State.Seal = &Node{Name: "seal", Role: RoleSeal, NodeID: "seal", IP: ipFor(spec, 0)}
	for i := 1; i <= spec.Nodes; i++ {
		name := fmt.Sprintf("node%d", i)
		c.State.Nodes = append(c.State.Nodes, &Node{Name: name, Role: RoleVoter, NodeID: name, IP: ipFor(spec, i), Zone: zoneFor(i, spec.Zones), Generation: 1})
	}
	if err := c.Save(); err != nil {
		return nil, err
	}
	if err := c.bringUp(ctx, inputs, o.Progress); err != nil {
		if derr := c.Down(context.WithoutCancel(ctx)); derr != nil {
			err = fmt.Errorf("%w (and cleaning up failed: %v)", err, derr)
		}
		return nil, err
	}
	return c, nil
}

func (c *Cluster) bringUp(ctx context.Context, inputs *pki.Inputs, prog Progress) error {
	spec := c.State.Spec
	if err := c.provider.Prepare(ctx, c); err != nil {
		return fmt.Errorf("prepare %s provider: %w", c.provider.Name(), err)
	}

	// The disks do not depend on the PKI or the seal Vault; the seal Vault
	// needs its certificate.
	g, gctx := errgroup.WithContext(ctx)
	prog.Stage("storage", len(c.State.Nodes))
	for _, n := range c.State.Nodes {
		g.Go(func() error {
			if err := c.makeDisk(gctx, n); err != nil {
				return err
			}
			prog.Step("storage")
			return nil
		})
	}
	prog.Stage("pki", 1)
	prog.Stage("seal", 1)
	g.Go(func() error {
		hosts := []pki.Host{{Name: c.State.Seal.Name, Addr: c.State.Seal.IP}}
		for _, n := range c.State.Nodes {
			hosts = append(hosts, pki.Host{Name: n.Name, Addr: n.IP})
		}
		if err := pki.Generate(inputs, c.TLSDir(), hosts); err != nil {
			return fmt.Errorf("pki: %w", err)
		}
		prog.Done("pki")
		if err := c.startSeal(gctx); err != nil {
			return fmt.Errorf("seal vault: %w", err)
		}
		prog.Done("seal")
		return nil
	})
	if err := g.Wait(); err != nil {
		return err
	}
	prog.Done("storage")

	for _, n := range c.State.Nodes {
		if err := c.writeConfig(n); err != nil {
			return err
		}
	}
	prog.Stage("init", 1)
	first := c.State.Nodes[0]
	if err := c.startNode(ctx, first); err != nil {
		return err
	}
	if err := c.waitAPI(ctx, first, 60*time.Second); err != nil {
		return err
	}
	stab := spec.StabilizationTime
	if spec.FastBringUp {
		stab = BringUpStabilization
	}
	if err := c.initCluster(ctx, first, stab); err != nil {
		return err
	}
	prog.Done("init")

	prog.Stage("join", len(c.State.Nodes))
	prog.Step("join")
	uctx, stopUnseal := context.WithCancel(ctx)
	defer stopUnseal()
	var keys []string
	if spec.FastBringUp {
		var err error
		if keys, err = c.unsealKeys(); err != nil {
			return err
		}
	}
	// Started only now so their first retry_join attempt finds an
	// initialized leader instead of waiting out Vault's 2 s retry sleep;
	// all at once, as a container takes about 0.8 s to start.
	g, gctx = errgroup.WithContext(ctx)
	for _, n := range c.State.Nodes[1:] {
		g.Go(func() error {
			if err := c.startNode(gctx, n); err != nil {
				return err
			}
			if keys != nil {
				cl, err := c.clients.get(n)
				if err != nil {
					return err
				}
				go unsealWhenJoined(uctx, cl, keys)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := c.WaitHealthy(ctx, spec.Nodes, 3*time.Minute, func(voters int) { prog.Step("join") }); err != nil {
		return err
	}
	if spec.FastBringUp && spec.StabilizationTime != BringUpStabilization {
		if err := c.configureAutopilot(ctx, spec.StabilizationTime); err != nil {
			return err
		}
	}
	prog.Done("join")
	c.State.Phase = PhaseUp
	return c.Save()
}

// recoveryKeys is the RecoveryFile's content.
type recoveryKeys struct {
	Keys      []string `json:"recovery_keys_b64"`
	Threshold int      `json:"recovery_threshold"`
}

// unsealKeys returns as many recovery keys as unseal a node.
func (c *Cluster) unsealKeys() ([]string, error) {
	var rec recoveryKeys
	b, err := os.ReadFile(c.secret(RecoveryFile))
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err == nil && (rec.Threshold < 1 || len(rec.Keys) < rec.Threshold) {
		err = fmt.Errorf("%d keys for a threshold of %d", len(rec.Keys), rec.Threshold)
	}
	if err != nil {
		return nil, fmt.Errorf("recovery keys (%s): %w", c.secret(RecoveryFile), err)
	}
	return rec.Keys[:rec.Threshold], nil
}

// unsealWhenJoined unseals the node behind cl with the recovery keys as
// soon as it has joined and its data has arrived (seal-status says
// initialized). Left to itself a joining node unseals through the transit
// seal only on Vault's next auto-unseal attempt: its first one, at start,
// finds no keys (it has not joined yet) and the next comes 5 s later
// (runUnseal in command/server.go, not configurable). That wait was most
// of bring-up. It runs until the node is unsealed or ctx ends; a node it
// cannot unseal still unseals itself on Vault's retry, and WaitHealthy
// judges the result either way.
func unsealWhenJoined(ctx context.Context, cl *api.Client, keys []string) {
	for ctx.Err() == nil {
		st, err := cl.Sys().SealStatusWithContext(ctx)
		if err == nil && !st.Sealed {
			return
		}
		if err == nil && st.Initialized {
			for _, k := range keys {
				if st, err = cl.Sys().UnsealWithContext(ctx, k); err != nil || !st.Sealed {
					break
				}
			}
			if err == nil && !st.Sealed {
				// A new standby looks for the active node on its own only
				// every 2.5 s (Vault's leader check); asking it who leads
				// makes it look now, connect, and send the heartbeat that
				// autopilot judges its health by.
				cl.Sys().LeaderWithContext(ctx)
				return
			}
			// A part-way unseal must not leave shares behind for the
			// next attempt to trip over.
			cl.Sys().ResetUnsealProcessWithContext(ctx)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// makeDisk gives n a fresh data disk, recording each step in the state.
func (c *Cluster) makeDisk(ctx context.Context, n *Node) error {
	spec := storage.Spec{Kind: c.State.Spec.Storage, Disks: c.State.Spec.Disks, Size: c.State.Spec.DiskSize}
	name := fmt.Sprintf("%s-g%d", n.Name, n.Generation)
	mount := filepath.Join(c.NodeDir(n.Name), "data")
	_, err := storage.Create(ctx, spec, name, filepath.Join(c.Dir, DisksDir), mount, func(a storage.Array) error {
		return c.update(func() { n.Array = a })
	})
	if err != nil {
		return fmt.Errorf("storage for %s: %w", n.Name, err)
	}
	return nil
}

func (c *Cluster) startNode(ctx context.Context, n *Node) error {
	if err := c.provider.Start(ctx, c, n); err != nil {
		return err
	}
	return c.update(func() {
		if n.Started.IsZero() {
			n.Started = time.Now()
		}
	})
}

// startSeal brings up the transit Vault: init with one Shamir share,
// unseal, a transit key, and a token that may only encrypt and decrypt
// with that key.
func (c *Cluster) startSeal(ctx context.Context) error {
	s := c.State.Seal
	c.change(func() { s.Array = storage.Array{Kind: storage.Dir, Mount: filepath.Join(c.NodeDir(s.Name), "data")} })
	if err := os.MkdirAll(s.Array.Mount, 0o700); err != nil {
		return err
	}
	if err := c.writeConfig(s); err != nil {
		return err
	}
	if err := c.startNode(ctx, s); err != nil {
		return err
	}
	if err := c.waitAPI(ctx, s, 60*time.Second); err != nil {
		return err
	}
	cl, err := c.clients.get(s)
	if err != nil {
		return err
	}
	resp, err := cl.Sys().InitWithContext(ctx, &api.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if err := writeSecretJSON(c.secret(SealKeysFile), resp); err != nil {
		return err
	}
	if err := writeSecret(c.secret(sealRootTokenFile), resp.RootToken); err != nil {
		return err
	}
	cl.SetToken(resp.RootToken)
	if _, err := cl.Sys().UnsealWithContext(ctx, resp.KeysB64[0]); err != nil {
		return fmt.Errorf("unseal: %w", err)
	}
	if err := waitActive(ctx, cl, 30*time.Second); err != nil {
		return err
	}
	if err := cl.Sys().MountWithContext(ctx, "transit", &api.MountInput{Type: "transit"}); err != nil {
		return fmt.Errorf("enable transit: %w", err)
	}
	if _, err := cl.Logical().WriteWithContext(ctx, "transit/keys/"+sealKeyName, nil); err != nil {
		return fmt.Errorf("create transit key: %w", err)
	}
	if err := cl.Sys().PutPolicyWithContext(ctx, sealPolicy, sealPolicyFor(sealKeyName)); err != nil {
		return fmt.Errorf("write seal policy: %w", err)
	}
	// Orphan and periodic: it outlives no parent and is renewed by the
	// nodes' seals for as long as they run.
	tok, err := cl.Auth().Token().CreateOrphanWithContext(ctx, &api.TokenCreateRequest{
		Policies: []string{sealPolicy}, Period: "24h", NoDefaultPolicy: true, DisplayName: "vaultstorm-autounseal",
	})
	if err != nil {
		return fmt.Errorf("create seal token: %w", err)
	}
	return writeSecret(c.secret(sealTokenFile), tok.Auth.ClientToken)
}

// sealPolicyFor lets the nodes' seal token encrypt and decrypt with one
// transit key, and nothing else.
func sealPolicyFor(key string) string {
	return fmt.Sprintf(`path "transit/encrypt/%[1]s" { capabilities = ["update"] }
path "transit/decrypt/%[1]s" { capabilities = ["update"] }
`, key)
}

func (c *Cluster) sealKey() string {
	if c.State.SealKey != "" {
		return c.State.SealKey
	}
	return sealKeyName
}

// UseNewSealKey makes nodes started from now on seal with a new transit
// key, name (the cloud KMS key replaced): the seal token may use only it.
// A node restored from a snapshot taken under the old key cannot decrypt
// that snapshot's keys, and Vault seals it (hashicorp/vault#15448).
func (c *Cluster) UseNewSealKey(ctx context.Context, name string) error {
	cl, err := c.clients.get(c.State.Seal)
	if err != nil {
		return err
	}
	if _, err := cl.Logical().WriteWithContext(ctx, "transit/keys/"+name, nil); err != nil {
		return fmt.Errorf("create transit key %s: %w", name, err)
	}
	if err := cl.Sys().PutPolicyWithContext(ctx, sealPolicy, sealPolicyFor(name)); err != nil {
		return fmt.Errorf("write seal policy: %w", err)
	}
	c.State.SealKey = name
	return c.Save()
}

// initCluster initializes the raft cluster on n with recovery keys (the
// transit seal unseals it) and sets autopilot so dead servers are removed
// and new servers promoted after stabilization.
func (c *Cluster) initCluster(ctx context.Context, n *Node, stabilization time.Duration) error {
	cl, err := c.clients.get(n)
	if err != nil {
		return err
	}
	// Init generates the keys and seals them through the transit seal: on
	// a busy machine (a node started from a binary not yet in the page
	// cache) it outlasted the clients' 10 s timeout; the context bounds it.
	icl, err := cl.Clone()
	if err != nil {
		return err
	}
	icl.SetClientTimeout(2 * time.Minute)
	const shares, threshold = 5, 3
	resp, err := icl.Sys().InitWithContext(ctx, &api.InitRequest{RecoveryShares: shares, RecoveryThreshold: threshold})
	if err != nil {
		return fmt.Errorf("init %s: %w", n.Name, err)
	}
	if err := writeSecretJSON(c.secret(RecoveryFile), recoveryKeys{Keys: resp.RecoveryKeysB64, Threshold: threshold}); err != nil {
		return err
	}
	if err := writeSecret(c.TokenFile(), resp.RootToken); err != nil {
		return err
	}
	c.clients.reset()
	cl, err = c.clients.get(n)
	if err != nil {
		return err
	}
	if err := waitActive(ctx, cl, 60*time.Second); err != nil {
		return fmt.Errorf("%s after init: %w", n.Name, err)
	}
	return c.configureAutopilot(ctx, stabilization)
}

// configureAutopilot sets autopilot to remove dead servers and to promote
// a new server once it has been healthy for stabilization.
func (c *Cluster) configureAutopilot(ctx context.Context, stabilization time.Duration) error {
	cl, err := c.clients.get(c.State.Nodes[0])
	if err != nil {
		return err
	}
	spec := c.State.Spec
	_, err = cl.Logical().WriteWithContext(ctx, "sys/storage/raft/autopilot/configuration", map[string]any{
		"cleanup_dead_servers":               true,
		"dead_server_last_contact_threshold": spec.DeadServerThreshold.String(),
		"min_quorum":                         max(3, spec.Nodes/2+1),
		"server_stabilization_time":          stabilization.String(),
	})
	if err != nil {
		return fmt.Errorf("autopilot configuration: %w", err)
	}
	return nil
}

// waitActive waits until the node behind cl is unsealed and active.
func waitActive(ctx context.Context, cl *api.Client, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		h, err := cl.Sys().HealthWithContext(ctx)
		if last = HealthState(h, err); last == StateLeader {
			return nil
		}
		if err != nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not active within %s (last: %s)", timeout, last)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func writeSecret(path, s string) error {
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

func writeSecretJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeSecret(path, string(b))
}
