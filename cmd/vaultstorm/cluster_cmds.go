package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/cluster/storage"
)

var clusterDir string

func init() {
	def := os.Getenv("VAULTSTORM_DIR")
	if def == "" {
		def = ".vaultstorm"
	}
	rootCmd.PersistentFlags().StringVar(&clusterDir, "dir", def, "cluster directory: state, TLS, secrets, node logs and disk images (env VAULTSTORM_DIR)")
	rootCmd.AddCommand(upCmd(), downCmd(), statusCmd(), envCmd(), nodeCmd())
}

// defaultVaultBin is the vault next to the vaultstorm binary (make puts
// both in bin/), else the one in PATH.
func defaultVaultBin() string {
	if v := os.Getenv("VAULTSTORM_VAULT_BIN"); v != "" {
		return v
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "vault")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if _, err := os.Stat("bin/vault"); err == nil {
		return "bin/vault"
	}
	return ""
}

var releaseRE = regexp.MustCompile(`^\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$`)

// versionBin is the binary of a Vault release: bin/vault-VERSION next to
// the default binary (where `make vault VAULT_VERSION=VERSION` puts it),
// checked to be that release.
func versionBin(ctx context.Context, v string) (string, error) {
	if !releaseRE.MatchString(v) {
		return "", fmt.Errorf("--vault-version %q: want a Vault release such as 1.19.5", v)
	}
	dir := "bin"
	if d := defaultVaultBin(); d != "" {
		dir = filepath.Dir(d)
	}
	bin := filepath.Join(dir, "vault-"+v)
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("--vault-version %s: %s not found: build it with `make vault VAULT_VERSION=%s`", v, bin, v)
	}
	got, err := cluster.VaultVersion(ctx, bin)
	if err != nil {
		return "", fmt.Errorf("--vault-version %s: %w", v, err)
	}
	if !cluster.SameVersion(got, v) {
		return "", fmt.Errorf("--vault-version %s: %s is Vault %s: rebuild it with `make vault VAULT_VERSION=%s`", v, bin, got, v)
	}
	return bin, nil
}

// pickVaultBin applies --vault-version (exclusive with --vault-bin).
func pickVaultBin(cmd *cobra.Command, vaultBin *string, vaultVersion string) error {
	if !cmd.Flags().Changed("vault-version") {
		return nil
	}
	if cmd.Flags().Changed("vault-bin") {
		return errors.New("give --vault-version or --vault-bin, not both")
	}
	bin, err := versionBin(cmd.Context(), vaultVersion)
	if err != nil {
		return err
	}
	*vaultBin = bin
	return nil
}

// clusterFlags registers the flags that shape a cluster on cmd.
func clusterFlags(cmd *cobra.Command, spec *cluster.Spec, vaultBin *string, storageKind *string, diskSize *string) {
	f := cmd.Flags()
	f.StringVar(vaultBin, "vault-bin", defaultVaultBin(), "Vault binary to run (default: bin/vault from `make vault`; env VAULTSTORM_VAULT_BIN)")
	f.IntVar(&spec.Nodes, "nodes", spec.Nodes, "raft voters (odd: 1, 3, 5, 7, 9)")
	f.StringVar(&spec.Provider, "provider", spec.Provider, "where nodes run: process (local vault processes on 127.0.SUBNET.11…) or docker (a container per node on a private network 10.213.SUBNET.0/24, image built locally from the static Vault binary; needs the Docker engine)")
	f.StringVar(storageKind, "storage", "raid0", "data disk per node: raid0 (md if the kernel has it, else btrfs raid0, over loop devices; needs root) single (one loop disk, no RAID: what RAID0 buys, measured) or dir (plain folder)")
	f.IntVar(&spec.Disks, "disks", spec.Disks, "RAID0 members per node")
	f.StringVar(diskSize, "disk-size", "256MiB", "size of each RAID0 member (sparse), e.g. 256MiB, 1GiB")
	f.IntVar(&spec.Zones, "zones", spec.Zones, "availability zones the nodes are spread over (node labels for zone faults)")
	f.IntVar(&spec.PerformanceMultiplier, "performance-multiplier", spec.PerformanceMultiplier, "raft timing scale; 1 is HashiCorp's production recommendation (Vault's default 5 is for dev)")
	f.DurationVar(&spec.StabilizationTime, "stabilization-time", spec.StabilizationTime, "autopilot server_stabilization_time before a new node is promoted to voter (Vault's default is 10s)")
	f.BoolVar(&spec.FastBringUp, "fast-bring-up", spec.FastBringUp, "at bring-up, unseal each joined node with the recovery keys instead of waiting for Vault's own auto-unseal retry (every 5 s), and promote joiners after 1s of stability (--stabilization-time applies once the cluster is up); false: bring-up as Vault does it by itself. Replaced and restarted nodes always unseal themselves")
	f.DurationVar(&spec.DeadServerThreshold, "dead-server-threshold", spec.DeadServerThreshold, "autopilot removes a peer unreachable this long (Vault's minimum is 1m)")
	f.DurationVar(&spec.AutopilotReconcile, "autopilot-reconcile-interval", spec.AutopilotReconcile, "how often autopilot promotes and removes servers (Vault's default is 10s)")
	f.DurationVar(&spec.AutopilotUpdate, "autopilot-update-interval", spec.AutopilotUpdate, "how often autopilot refreshes its view of the servers (Vault's default is 2s)")
	f.IntVar(&spec.Subnet, "subnet", spec.Subnet, "third octet of the nodes' addresses: 127.0.SUBNET.11… (process) or 10.213.SUBNET.11… (docker), so that clusters can live side by side")
	f.IntVar(&spec.NodeNice, "node-nice", spec.NodeNice, "scheduling niceness of the Vault nodes (0-19): above 0 they yield the CPU to the load generator and the watcher on this machine, as nodes on their own hosts would (0: same priority)")
	f.StringVar(&spec.PKIDir, "pki-dir", "", "folder with ca-config.json, ca-csr.json, intermediate-ca-csr.json, vault-csr.json (default: the seed's, built in)")
}

func resolveSpec(spec *cluster.Spec, storageKind, diskSize string) error {
	switch storageKind {
	case "raid0":
		spec.Storage = ""
	case "dir":
		spec.Storage = storage.Dir
	case "single":
		spec.Storage, spec.Disks = storage.BtrfsSingle, 1
	case "btrfs", "btrfs-raid0":
		spec.Storage = storage.BtrfsRAID0
	case "md", "md-raid0":
		spec.Storage = storage.MDRAID0
	default:
		return fmt.Errorf("--storage %q: use raid0, single (one disk, no RAID) or dir", storageKind)
	}
	n, err := parseSize(diskSize)
	if err != nil {
		return fmt.Errorf("--disk-size %q: %w", diskSize, err)
	}
	spec.DiskSize = n
	return nil
}

// parseSize reads 256MiB, 1GiB, 300M, 1G or a byte count.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil || n <= 0 {
		return 0, errors.New("want a size such as 256MiB or 1GiB")
	}
	return n * mult, nil
}

func upCmd() *cobra.Command {
	spec := cluster.DefaultSpec()
	var vaultBin, vaultVersion, storageKind, diskSize string
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Stand up the cluster: PKI, RAID0 disks, transit seal, N raft voters",
		Long: `up builds the seed architecture on this machine and waits until it is healthy:

  1. PKI with cfssl: root CA -> intermediate CA (path length 0) -> one ECDSA
     P-256 certificate per node, under DIR/.tls (keys 0600).
  2. A RAID0 data disk per node: two sparse loop devices as md RAID0 where the
     kernel has md, else btrfs raid0 (data and metadata). Needs root.
  3. A transit "seal" Vault on 127.0.0.10 standing in for the cloud KMS, with
     a token that may only encrypt/decrypt with its one key.
  4. node1..N on 127.0.0.11..: raft storage, TLS, retry_join, auto-unseal;
     node1 is initialized with recovery keys, the others join, and autopilot
     (cleanup_dead_servers, min_quorum 3) promotes them to voters. To save
     Vault's 5 s auto-unseal retry, the harness unseals each joined node with
     the recovery keys, and autopilot promotes joiners after 1s of stability
     until the cluster is up (--fast-bring-up=false: as Vault does it alone).

The root token and recovery keys are written 0600 under DIR/secrets and never
printed. It refuses when a cluster is already up in DIR, and removes the
remains of one a crash left behind.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := resolveSpec(&spec, storageKind, diskSize); err != nil {
				return err
			}
			if err := pickVaultBin(cmd, &vaultBin, vaultVersion); err != nil {
				return err
			}
			prog := newStageBars(!jsonOut)
			start := time.Now()
			c, err := cluster.Up(cmd.Context(), cluster.Options{
				Dir: clusterDir, Spec: spec, VaultBin: vaultBin, Progress: prog,
				Cleaned: func(err error) {
					if err == nil {
						prog.Log("removed the remains of a cluster a crash left in %s", clusterDir)
					}
				},
			})
			prog.Wait()
			if err != nil {
				return err
			}
			elapsed := time.Since(start)
			st, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if jsonOut {
				return printJSON(st)
			}
			fmt.Printf("cluster up in %.1fs: Vault %s, %d voters, storage %s, leader %s\n", elapsed.Seconds(), st.VaultVersion, st.Voters, st.Storage, st.Leader)
			printStatus(st)
			fmt.Printf("\n  eval \"$(%s env)\"    # point the vault CLI at it\n", os.Args[0])
			return nil
		},
	}
	clusterFlags(cmd, &spec, &vaultBin, &storageKind, &diskSize)
	cmd.Flags().StringVar(&vaultVersion, "vault-version", "", "run Vault release `VERSION` (e.g. 1.19.5): bin/vault-VERSION next to the default binary, built by 'make vault VAULT_VERSION=VERSION'; excludes --vault-bin")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the resulting status as JSON (no progress bars)")
	return cmd
}

func downCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Remove the cluster: every process, mount, loop device and file it made",
		Long: `down kills every Vault server of the cluster in DIR, unmounts and removes its
RAID0 arrays and loop devices, removes firewall rules and traffic shaping that
faults installed, and deletes DIR. It works from the recorded state, also when
the vaultstorm that made the cluster was killed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cluster.Open(clusterDir)
			if errors.Is(err, cluster.ErrNoCluster) {
				fmt.Println("no cluster in", clusterDir)
				return nil
			}
			if err != nil {
				return err
			}
			if err := c.Down(context.WithoutCancel(cmd.Context())); err != nil {
				return fmt.Errorf("down: %w", err)
			}
			fmt.Println("cluster removed:", c.Dir)
			return nil
		},
	}
}

func statusCmd() *cobra.Command {
	var jsonOut bool
	var inventory string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each node's state, voter status and storage",
		Long:  "status asks every node's API for its health and autopilot for the raft view. Exit 0 when a cluster is recorded in DIR (healthy or not), 2 when none is.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if inventory != "" {
				return externalStatus(cmd.Context(), inventory, jsonOut)
			}
			c, err := cluster.Open(clusterDir)
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if jsonOut {
				return printJSON(st)
			}
			health := "HEALTHY"
			if !st.Healthy {
				health = "NOT HEALTHY"
			}
			fmt.Printf("%s: Vault %s, %d/%d voters, leader %q, failure tolerance %d, storage %s, provider %s\n",
				health, st.VaultVersion, st.Voters, len(st.Nodes), st.Leader, st.FailureTolerance, st.Storage, st.Provider)
			printStatus(st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print one JSON object")
	cmd.Flags().StringVar(&inventory, "inventory", "", "list the cluster this inventory describes (its raft peers, as Vault gives them) instead")
	return cmd
}

func printStatus(st *cluster.Status) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	head, row := "  NODE\tADDRESS\tZONE\tPID\tSTATE\tVOTER\tSTORAGE\tMOUNT", "  %s\t%s\t%s\t%d\t%s\t%v\t%s x%d\t%s"
	if st.Provider == "docker" {
		head, row = head+"\tCONTAINER", row+"\t%s"
	}
	fmt.Fprintln(w, head)
	for _, n := range st.Nodes {
		args := []any{n.Name, n.APIAddr, n.Zone, n.PID, n.State, n.Voter, n.Storage.Kind, n.Storage.Devices, n.Storage.Mount}
		if st.Provider == "docker" {
			args = append(args, n.Container)
		}
		fmt.Fprintf(w, row+"\n", args...)
	}
	w.Flush()
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func envCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "env",
		Short: "Print export lines for VAULT_ADDR, VAULT_CACERT and VAULT_TOKEN",
		Long: `env prints shell export lines so the vault CLI and other tools talk to the
cluster: eval "$(vaultstorm env)". The token is read from its 0600 file by the
shell when the line is evaluated; its value is never printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cluster.Open(clusterDir)
			if err != nil {
				return err
			}
			addr := c.State.Nodes[0].APIAddr()
			if st, err := c.Status(cmd.Context()); err == nil && st.Leader != "" {
				if n, err := c.Node(st.Leader); err == nil {
					addr = n.APIAddr()
				}
			}
			fmt.Printf("export VAULT_ADDR=%s\n", shellQuote(addr))
			fmt.Printf("export VAULT_CACERT=%s\n", shellQuote(c.CAFile()))
			fmt.Printf("export VAULT_TOKEN=\"$(cat %s)\"\n", shellQuote(c.TokenFile()))
			return nil
		},
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func nodeCmd() *cobra.Command {
	var inventory string
	var dryRun, yes bool
	cmd := &cobra.Command{
		Use:   "node ACTION NAME",
		Short: "Manual faults on one node",
		Long: `node acts on one node of the cluster ` + "`vaultstorm up`" + ` made (in --dir):

  kill     SIGKILL: a crash, or the instance vanishing (disk kept)
  stop     SIGTERM: a graceful shutdown (disk kept)
  start    start a killed or stopped node on its disk
  pause    SIGSTOP: a stalled VM or a long GC pause
  resume   SIGCONT
  replace  the instance is gone with its RAID0 disks; a new one with an empty
           array, the same name and address starts, rejoins by retry_join and
           auto-unseals
  reclaim  a spot reclaim: the instance is gone with its disks, and a new one
           (the next free name and address, a new raft node ID) is launched in
           its zone, as an autoscaling group would; autopilot removes the dead
           peer

With --inventory FILE it acts on a cluster vaultstorm did not make, through
the inventory's command templates (kill, stop, start, pause, resume,
partition, heal, notice, reclaim), NAME being the node's raft node ID. The
cluster must answer with the inventory's cluster_name; its nodes are read
from Vault (raft configuration and sys/ha-status). Acting needs --yes (or
CI=true); --dry-run prints the command, with the node's values filled in,
and runs nothing.`,
		Example: `  vaultstorm node kill node2
  vaultstorm node reclaim node3
  vaultstorm node kill vault-2 --inventory staging.hcl --dry-run
  vaultstorm node reclaim vault-2 --inventory staging.hcl --yes`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if inventory != "" {
				return externalNodeOp(cmd.Context(), inventory, args[0], args[1], dryRun, yes)
			}
			if dryRun || yes {
				return fmt.Errorf("--dry-run and --yes go with --inventory (a cluster vaultstorm did not make)")
			}
			c, err := cluster.Open(clusterDir)
			if err != nil {
				return err
			}
			n, err := c.Node(args[1])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			ops := map[string]func(context.Context, *cluster.Node) error{
				"kill": c.Kill, "stop": c.Stop, "start": c.Start, "pause": c.Pause, "resume": c.Resume, "replace": c.Replace,
				"reclaim": func(ctx context.Context, n *cluster.Node) error {
					if err := c.Lose(ctx, n); err != nil {
						return err
					}
					added, err := c.AddNode(ctx, n.Zone)
					if err != nil {
						return fmt.Errorf("replacement in %s: %w", n.Zone, err)
					}
					fmt.Printf("reclaim %s: replaced by %s (%s) in %s\n", n.Name, added.Name, added.APIAddr(), added.Zone)
					return nil
				},
			}
			op, ok := ops[args[0]]
			if !ok {
				return fmt.Errorf("unknown node action %q: kill, stop, start, pause, resume, replace or reclaim", args[0])
			}
			start := time.Now()
			if err := op(ctx, n); err != nil {
				return fmt.Errorf("%s %s: %w", args[0], n.Name, err)
			}
			fmt.Printf("%s %s: done in %s\n", args[0], n.Name, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	cmd.Flags().StringVar(&inventory, "inventory", "", "act on the cluster this inventory describes, through its command templates")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "with --inventory: print the command and run nothing")
	cmd.Flags().BoolVar(&yes, "yes", false, "with --inventory: act on that cluster (CI=true counts as yes)")
	return cmd
}
