package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/spf13/cobra"

	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/internal/vaultenv"
	"github.com/vaultstorm/vaultstorm/reports"
	"github.com/vaultstorm/vaultstorm/snapshots"
)

func init() {
	rootCmd.AddCommand(snapshotCmd())
}

const snapshotWhere = `Where snapshots go (FILE or URL):
  s3://BUCKET?region=R&endpoint=http://HOST:PORT&use_path_style=true
                      a store in any S3-compatible server (AWS S3, MinIO,
                      SeaweedFS, Ceph); credentials the AWS SDK's usual way:
                      AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE,
                      ~/.aws/credentials. Other query parameters of
                      gocloud.dev's s3blob work too (prefix=, disable_https=…).
  file:///ABS/DIR     a store in a folder (made when missing)
  DIR                 the same, for a path that is not a .snap file
  FILE.snap           one snapshot file (or any existing file), its metadata
                      beside it in FILE.snap.json

A store holds snapshots named after the time they were taken,
vaultstorm-20261205T153000.123Z.snap, each with NAME.json: when the request
started and the response ended, size, sha256, raft index and term, the node
that served it and its Vault version. The default store of the cluster
` + "`up`" + ` made is DIR/snapshots (--dir); with VAULT_ADDR set, say where.

Which Vault: with VAULT_ADDR set, that one (VAULT_ADDR may list several
addresses, comma-separated: the active one is used; VAULT_CACERT,
VAULT_TOKEN or VAULT_TOKEN_FILE); otherwise the cluster ` + "`vaultstorm up`" + ` made
in --dir, with its root token. Snapshots are taken from, and restored
through, the active node.`

func snapshotCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot save|restore|list",
		Short: "Save, restore and list raft snapshots in a folder or an S3 bucket",
		Long: `snapshot saves a raft snapshot of the cluster (GET sys/storage/raft/snapshot on
the active node), restores one (POST sys/storage/raft/snapshot), and lists a
store's snapshots - what a snapshot agent does for open-source Vault.

` + snapshotWhere,
	}
	cmd.AddCommand(snapshotSaveCmd(), snapshotRestoreCmd(), snapshotListCmd())
	return cmd
}

// snapshotTarget returns a client per node of the Vault to act on, and the
// default store (the cluster's DIR/snapshots; "" for a VAULT_ADDR target).
func snapshotTarget() ([]*api.Client, string, error) {
	if addr := vaultenv.Get("VAULT_ADDR"); addr != "" {
		t, err := envTarget(addr)
		if err != nil {
			return nil, "", err
		}
		var cls []*api.Client
		for _, a := range t.Addrs {
			c, err := snapshots.NewClient(a, t.CACert, t.Token)
			if err != nil {
				return nil, "", fmt.Errorf("VAULT_ADDR: %w", err)
			}
			cls = append(cls, c)
		}
		return cls, "", nil
	}
	c, err := cluster.Open(clusterDir)
	if err != nil {
		return nil, "", fmt.Errorf("%w (or set VAULT_ADDR, VAULT_CACERT and VAULT_TOKEN for another cluster)", err)
	}
	var cls []*api.Client
	for _, n := range c.State.Nodes {
		cl, err := c.Client(n)
		if err != nil {
			return nil, "", err
		}
		cls = append(cls, cl)
	}
	return cls, filepath.Join(c.Dir, "snapshots"), nil
}

// isSnapshotFile tells a single snapshot file from a store: a path (not a
// URL) ending in .snap, or naming an existing file.
func isSnapshotFile(arg string) bool {
	if strings.Contains(arg, "://") || strings.HasSuffix(arg, "/") {
		return false
	}
	if st, err := os.Stat(arg); err == nil {
		return !st.IsDir()
	}
	return strings.HasSuffix(arg, snapshots.Ext)
}

func snapshotSaveCmd() *cobra.Command {
	var retain int
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "save [FILE|URL]",
		Short: "Take a raft snapshot from the active node and store it",
		Long: `save takes a raft snapshot from the active node and writes it, streaming, to a
store or a file, with its metadata. A snapshot that breaks off (or whose
SHA256SUMS.sealed is missing) is discarded: nothing is left in the store.

` + snapshotWhere,
		Example: `  vaultstorm snapshot save                       # into DIR/snapshots of the cluster up made
  vaultstorm snapshot save backup.snap           # one file, and backup.snap.json
  AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… \
    vaultstorm snapshot save --retain 10 's3://backups?region=us-east-1&endpoint=http://127.0.0.1:9000&use_path_style=true'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cls, def, err := snapshotTarget()
			if err != nil {
				return err
			}
			dest := def
			if len(args) == 1 {
				dest = args[0]
			}
			if dest == "" {
				return errors.New("VAULT_ADDR is set: say where the snapshot goes: vaultstorm snapshot save FILE|URL")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			active, err := snapshots.Active(ctx, cls...)
			if err != nil {
				return err
			}
			var info snapshots.Info
			var where string
			if isSnapshotFile(dest) {
				if retain > 0 {
					return fmt.Errorf("--retain is for a store, and %s is a file", dest)
				}
				info, err = saveFile(ctx, active, dest)
				where = dest
			} else {
				store, err := snapshots.OpenStore(ctx, dest)
				if err != nil {
					return err
				}
				defer store.Close()
				if info, err = snapshots.Save(ctx, active, store); err != nil {
					return fmt.Errorf("%w (store %s)", err, store.URL())
				}
				where = store.URL()
				if retain > 0 {
					deleted, err := store.Retain(ctx, retain)
					for _, d := range deleted {
						fmt.Fprintf(os.Stderr, "deleted %s (keeping %d)\n", d, retain)
					}
					if err != nil {
						return err
					}
				}
			}
			if err != nil {
				return err
			}
			fmt.Printf("saved %s to %s: %s in %s, raft index %d term %d, from %s (Vault %s)\n",
				info.Name, where, reports.HumanBytes(info.Size), info.Duration().Round(time.Millisecond), info.Index, info.Term, info.Node, info.VaultVersion)
			return nil
		},
	}
	cmd.Flags().IntVar(&retain, "retain", 0, "after saving into a store, keep only the N newest snapshots there (0: keep all)")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Minute, "give up after this long")
	return cmd
}

// saveFile writes a snapshot to path (through a temporary file beside it,
// renamed when complete) and its metadata to path.json.
func saveFile(ctx context.Context, active *api.Client, path string) (snapshots.Info, error) {
	var info snapshots.Info
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return info, fmt.Errorf("snapshot file %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	info, err = snapshots.Take(ctx, active, f)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return info, fmt.Errorf("%w (snapshot file %s)", err, path)
	}
	info.Name = filepath.Base(path)
	b, _ := json.MarshalIndent(info, "", "  ")
	if err := os.WriteFile(path+snapshots.MetaExt, append(b, '\n'), 0o600); err != nil {
		return info, fmt.Errorf("snapshot file %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return info, fmt.Errorf("snapshot file %s: %w", path, err)
	}
	return info, nil
}

func snapshotRestoreCmd() *cobra.Command {
	var force bool
	var name string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "restore FILE|URL",
		Short: "Restore a raft snapshot (the newest of a store, or --name) through the active node",
		Long: `restore sends a snapshot to the active node, which replaces ALL of the
cluster's data with it: every write since the snapshot is gone. From a store
it takes the newest snapshot, or --name; the snapshot is checked against its
recorded size and sha256 first (for a FILE, when FILE.json is beside it).

Vault accepts the snapshot, answers, and applies it in the background (it
seals and unseals the active node's barrier): the cluster serves the restored
data a moment after this command returns.

--force restores a snapshot that was taken by ANOTHER cluster (or by this one
before its seal changed). Without it, Vault checks that the snapshot's
SHA256SUMS.sealed decrypts with this cluster's seal, i.e. that the snapshot
was made under the same unseal keys (Shamir) or auto-unseal key, and refuses
it otherwise ("use the snapshot-force API to bypass this check"). With it
(POST sys/storage/raft/snapshot-force) that check is skipped; the content's
SHA256SUMS is still checked. A forced restore brings the other cluster's
keyring and root key along: afterwards the cluster unseals only with that
cluster's unseal keys, or through that cluster's auto-unseal key (a transit
seal with a different key cannot decrypt it, and the nodes stay sealed), and
that cluster's tokens are the ones that work: this command's token may not.

` + snapshotWhere,
		Example: `  vaultstorm snapshot restore                          # the newest in DIR/snapshots
  vaultstorm snapshot restore backup.snap
  vaultstorm snapshot restore --name vaultstorm-20261205T153000.123Z.snap 's3://backups?region=us-east-1'
  vaultstorm snapshot restore --force other-cluster.snap`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cls, def, err := snapshotTarget()
			if err != nil {
				return err
			}
			src := def
			if len(args) == 1 {
				src = args[0]
			}
			if src == "" {
				return errors.New("VAULT_ADDR is set: say which snapshot: vaultstorm snapshot restore FILE|URL")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			var info snapshots.Info
			var where string
			if isSnapshotFile(src) {
				if name != "" {
					return fmt.Errorf("--name picks a snapshot in a store, and %s is a file", src)
				}
				f, inf, err := openSnapshotFile(src)
				if err != nil {
					return err
				}
				defer f.Close()
				active, err := snapshots.Active(ctx, cls...)
				if err != nil {
					return err
				}
				if err := snapshots.RestoreFrom(ctx, active, f, force); err != nil {
					return fmt.Errorf("%w (snapshot file %s)", err, src)
				}
				info, where = inf, src+" through "+active.Address()
			} else {
				if err := storeExists(src); err != nil {
					return err
				}
				store, err := snapshots.OpenStore(ctx, src)
				if err != nil {
					return err
				}
				defer store.Close()
				active, err := snapshots.Active(ctx, cls...)
				if err != nil {
					return err
				}
				if info, err = snapshots.Restore(ctx, active, store, name, force); err != nil {
					return fmt.Errorf("%w (store %s)", err, store.URL())
				}
				where = store.URL() + " through " + active.Address()
			}
			taken := "time unknown"
			if !info.Started.IsZero() {
				taken = "taken " + info.Started.UTC().Format(time.RFC3339)
			}
			fmt.Printf("restore of %s (%s, raft index %d term %d) from %s accepted; Vault applies it in the background\n",
				info.Name, taken, info.Index, info.Term, where)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "restore a snapshot taken by another cluster or under other unseal/auto-unseal keys (sys/storage/raft/snapshot-force; see above)")
	cmd.Flags().StringVar(&name, "name", "", "the snapshot to restore from a store (default: the newest)")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Minute, "give up after this long")
	return cmd
}

// openSnapshotFile opens a snapshot file, checked against FILE.json when
// there is one (then the returned file is at its start again).
func openSnapshotFile(path string) (*os.File, snapshots.Info, error) {
	info := snapshots.Info{Name: filepath.Base(path)}
	f, err := os.Open(path)
	if err != nil {
		return nil, info, fmt.Errorf("snapshot file %s: %w", path, err)
	}
	b, err := os.ReadFile(path + snapshots.MetaExt)
	switch {
	case errors.Is(err, os.ErrNotExist):
		m, err := snapshots.ParseMeta(f)
		if err != nil {
			f.Close()
			return nil, info, fmt.Errorf("snapshot file %s: %w", path, err)
		}
		info.Index, info.Term = m.Index, m.Term
	case err != nil:
		f.Close()
		return nil, info, fmt.Errorf("snapshot file %s: %w", path, err)
	default:
		if err := json.Unmarshal(b, &info); err != nil {
			f.Close()
			return nil, info, fmt.Errorf("snapshot file %s%s: %w", path, snapshots.MetaExt, err)
		}
		sum, n, err := snapshots.SHA256File(f)
		if err != nil {
			f.Close()
			return nil, info, fmt.Errorf("snapshot file %s: %w", path, err)
		}
		if sum != info.SHA256 || n != info.Size {
			f.Close()
			return nil, info, fmt.Errorf("snapshot file %s: %w: %d bytes sha256 %s, %s%s says %d bytes sha256 %s",
				path, snapshots.ErrChecksum, n, sum, path, snapshots.MetaExt, info.Size, info.SHA256)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, info, err
	}
	return f, info, nil
}

func snapshotListCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "list [URL]",
		Short: "List a store's snapshots, newest first",
		Long: `list prints the snapshots of a store, newest first: name, when the request
started (UTC), how long it took, size, raft index and term, and the node that
served it. Without URL, the store of the cluster ` + "`up`" + ` made (DIR/snapshots).

` + snapshotWhere,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src := ""
			if len(args) == 1 {
				src = args[0]
			} else {
				c, err := cluster.Open(clusterDir)
				if err != nil {
					return fmt.Errorf("which store? vaultstorm snapshot list URL (no cluster in --dir: %v)", err)
				}
				src = filepath.Join(c.Dir, "snapshots")
			}
			if isSnapshotFile(src) {
				return fmt.Errorf("%s is a snapshot file, not a store (a folder or a URL)", src)
			}
			if err := storeExists(src); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute)
			defer cancel()
			store, err := snapshots.OpenStore(ctx, src)
			if err != nil {
				return err
			}
			defer store.Close()
			l, err := store.List(ctx)
			if err != nil {
				return err
			}
			if jsonOut {
				if l == nil {
					l = []snapshots.Info{}
				}
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(l)
			}
			if len(l) == 0 {
				fmt.Fprintf(os.Stderr, "no snapshots in %s\n", store.URL())
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tTAKEN (UTC)\tDURATION\tSIZE\tINDEX\tTERM\tNODE")
			for _, i := range l {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", i.Name, i.Started.UTC().Format("2006-01-02 15:04:05.000"),
					i.Duration().Round(time.Millisecond), reports.HumanBytes(i.Size), i.Index, i.Term, i.Node)
			}
			tw.Flush()
			fmt.Fprintf(os.Stderr, "%d snapshot(s) in %s\n", len(l), store.URL())
			return nil
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the metadata as a JSON array")
	return cmd
}

// storeExists refuses a store folder that is not there (opening it would
// make it), for the commands that only read.
func storeExists(src string) error {
	path := src
	if u, ok := strings.CutPrefix(src, "file://"); ok {
		path, _, _ = strings.Cut(u, "?")
	} else if strings.Contains(src, "://") {
		return nil
	}
	if st, err := os.Stat(path); err != nil || !st.IsDir() {
		return fmt.Errorf("snapshot store %s: no such folder", src)
	}
	return nil
}
