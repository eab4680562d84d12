package snapshots

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vaultstorm/vaultstorm/internal/tlsconf"
)

// NewClient returns a vault/api client for addr that verifies the server's
// certificate against the PEM CA file caFile (the system's roots when
// caFile is empty), with token. It never turns verification off. It has
// no overall request timeout: bound calls with their context.
func NewClient(addr, caFile, token string) (*api.Client, error) {
	tc, err := tlsconf.Client(caFile)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     tc,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	c, err := api.NewClient(&api.Config{Address: addr, HttpClient: &http.Client{Transport: tr}, MaxRetries: 0})
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", addr, err)
	}
	// NewClient reads VAULT_TOKEN, VAULT_NAMESPACE and VAULT_HEADERS: this
	// client is what the caller says, no more.
	c.ClearNamespace()
	c.SetHeaders(http.Header{api.RequestHeaderName: {"true"}})
	c.SetToken(token)
	return c, nil
}

// WithToken returns a new client for the same node as c (same transport,
// TLS settings and headers) that sends token instead of c's ("" keeps c's)
// and has no overall request timeout, so that a snapshot of any size can
// stream: the context bounds it. c itself is not changed, so a shared
// client (cluster.Cluster.Client) can be given.
func WithToken(c *api.Client, token string) (*api.Client, error) {
	cfg := c.CloneConfig()
	cfg.HttpClient.Timeout = 0
	cfg.Timeout = 0 // vault/api's own per-request deadline (60s by default)
	cfg.MaxRetries = 0
	nc, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", c.Address(), err)
	}
	nc.SetHeaders(c.Headers())
	if token == "" {
		token = c.Token()
	}
	nc.SetToken(token)
	return nc, nil
}

// Active returns the client, among clients, whose node is the active one
// (sys/leader answers is_self), asking each in turn.
func Active(ctx context.Context, clients ...*api.Client) (*api.Client, error) {
	var why []string
	for _, c := range clients {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		l, err := c.Sys().LeaderWithContext(lctx)
		cancel()
		switch {
		case err != nil:
			why = append(why, fmt.Sprintf("%s: %v", c.Address(), firstLine(err)))
		case l.IsSelf:
			return c, nil
		case l.LeaderAddress == "":
			why = append(why, c.Address()+": no leader known")
		default:
			why = append(why, c.Address()+": standby of "+l.LeaderAddress)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("no active Vault node among %d: %s", len(clients), strings.Join(why, "; "))
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(strings.TrimSpace(err.Error()), "\n")
	return s
}

// Take streams a raft snapshot from the Vault that client points at (its
// token needs read on sys/storage/raft/snapshot) into w, and returns what
// it learned: start and end times, size, sha256, raft index and term, the
// node that served it and its Vault version. Info.Name is left empty.
//
// vault/api's RaftSnapshotWithContext fails with api.ErrIncompleteSnapshot
// when the archive lacks a non-empty SHA256SUMS.sealed, its last member:
// what a snapshot that broke off midway, or whose seal could not encrypt
// the hashes, looks like. w then holds a partial snapshot; Save discards it.
func Take(ctx context.Context, client *api.Client, w io.Writer) (Info, error) {
	var info Info
	mr, sum := newMetaReader(), newSummer()
	if err := take(ctx, client, io.MultiWriter(w, sum, mr), &info); err != nil {
		return info, err
	}
	info.Size, info.SHA256 = sum.n, sum.hex()
	if m, err := mr.finish(); err == nil {
		info.Index, info.Term = m.Index, m.Term
	}
	return info, nil
}

// describe fills in the node that will serve a snapshot asked of client
// (a standby forwards the request to the active node) and its version.
func describe(ctx context.Context, client *api.Client, info *Info) error {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	l, err := client.Sys().LeaderWithContext(lctx)
	if err != nil {
		return fmt.Errorf("snapshot from %s: sys/leader: %w", client.Address(), err)
	}
	info.Node = client.Address()
	if !l.IsSelf && l.LeaderAddress != "" {
		info.Node, info.Via = l.LeaderAddress, client.Address()
	}
	if st, err := client.Sys().SealStatusWithContext(lctx); err == nil {
		info.VaultVersion = st.Version
	}
	return nil
}

func take(ctx context.Context, client *api.Client, w io.Writer, info *Info) error {
	if info.Node == "" {
		if err := describe(ctx, client, info); err != nil {
			return err
		}
	}
	sc, err := WithToken(client, "")
	if err != nil {
		return err
	}
	info.Started = time.Now()
	err = stream(ctx, sc, w)
	info.Ended = time.Now()
	if errors.Is(err, api.ErrIncompleteSnapshot) {
		return fmt.Errorf("snapshot from %s: %w (the snapshot broke off, or the seal could not sign its hashes)", info.Node, err)
	}
	if err != nil {
		return fmt.Errorf("snapshot from %s: %w", info.Node, err)
	}
	return nil
}

// stream GETs sys/storage/raft/snapshot into w and checks, as vault/api's
// RaftSnapshotWithContext does, that the archive holds a non-empty
// SHA256SUMS.sealed (api.ErrIncompleteSnapshot otherwise). Unlike that
// call it reads, decompresses and checks on the caller's goroutine only,
// so all of a snapshot's cost in this process runs on the thread the agent
// lowered (Agent.Nice): vault/api checks in a goroutine of its own at the
// process's priority, fed 32 KiB at a time through a pipe, beside a load
// generator that shares the process.
func stream(ctx context.Context, c *api.Client, w io.Writer) error {
	resp, err := c.Logical().ReadRawWithContext(ctx, "sys/storage/raft/snapshot")
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return err
	}
	body := io.TeeReader(resp.Body, w)
	sealed := false
	if zr, err := gzip.NewReader(body); err == nil {
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if h.Name == "SHA256SUMS.sealed" {
				n, err := io.Copy(io.Discard, tr)
				sealed = err == nil && n > 0
			}
		}
	}
	// The rest of the body (or all of it, when it was not an archive) still
	// goes to w: what Vault sent is what is stored or refused whole.
	if _, err := io.Copy(io.Discard, body); err != nil {
		return err
	}
	if !sealed {
		return api.ErrIncompleteSnapshot
	}
	return nil
}

// Save takes a snapshot from the Vault client points at (normally the
// active node: a standby forwards the request, and Info records both) and
// stores it, streaming: nothing is held in memory or on local disk. The
// object is named after the time just before the request started
// (Info.Started is the exact time). When the snapshot fails, nothing is
// left in the store.
func Save(ctx context.Context, client *api.Client, store *Store) (Info, error) {
	var info Info
	if err := describe(ctx, client, &info); err != nil {
		return info, err
	}
	name, err := store.NewName(ctx, time.Now())
	if err != nil {
		return info, err
	}
	info.Name = name
	err = store.Put(ctx, &info, func(w io.Writer) error { return take(ctx, client, w, &info) })
	return info, err
}

// Restore reads the snapshot name ("" for the newest) from store, checks it
// against its recorded size and sha256 (into a temporary file, so that
// Vault is never sent a snapshot that fails the check), and installs it
// through the Vault client points at (the active node; its token needs
// update and sudo on sys/storage/raft/snapshot, or sys/storage/raft/
// snapshot-force with force).
//
// force: vault/api's RaftSnapshotRestoreWithContext does nothing with it but
// choose the path: POST sys/storage/raft/snapshot-force instead of
// sys/storage/raft/snapshot. Vault (vault/logical_system_raft.go) then
// skips the one check the plain path makes with the seal: that
// SHA256SUMS.sealed decrypts, i.e. that the snapshot was taken by a cluster
// with the same unseal keys (Shamir) or auto-unseal key. The plain SHA256SUMS
// of the archive's content is still checked. Force is what restoring
// another cluster's snapshot (a new cluster after a total loss) needs; the
// restored data brings that cluster's keyring and root key with it, so
// afterwards the cluster unseals with the old cluster's unseal keys, or
// through the old cluster's auto-unseal key (a different transit key cannot
// decrypt it: hashicorp/vault#15448), and the old cluster's tokens are the
// ones that work.
//
// Vault answers once it has the whole snapshot in a temporary file and
// applies it afterwards, in the background: when Restore returns, the
// restore has been accepted, not finished.
func Restore(ctx context.Context, client *api.Client, store *Store, name string, force bool) (Info, error) {
	var info Info
	var err error
	if name == "" {
		if info, err = store.Latest(ctx); err != nil {
			return info, err
		}
		name = info.Name
	}
	r, info, err := store.Open(ctx, name)
	if err != nil {
		return info, err
	}
	defer r.Close()
	tmp, err := os.CreateTemp("", "vaultstorm-restore-*.snap")
	if err != nil {
		return info, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := io.Copy(tmp, r); err != nil {
		return info, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return info, err
	}
	return info, RestoreFrom(ctx, client, tmp, force)
}

// RestoreFrom sends the snapshot read from r to Vault (see Restore for
// force and for when it returns).
func RestoreFrom(ctx context.Context, client *api.Client, r io.Reader, force bool) error {
	sc, err := WithToken(client, "")
	if err != nil {
		return err
	}
	if err := sc.Sys().RaftSnapshotRestoreWithContext(ctx, r, force); err != nil {
		path := "sys/storage/raft/snapshot"
		if force {
			path += "-force"
		}
		return fmt.Errorf("restore through %s (%s): %w", client.Address(), path, err)
	}
	return nil
}
