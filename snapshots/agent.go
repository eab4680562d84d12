package snapshots

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"
)

// PolicyName is the policy EnsurePolicy writes, Policy its rules: reading a
// raft snapshot and nothing else (no secret, no restore, not even the
// token's own renewal or lookup).
const (
	PolicyName = "vaultstorm-snapshot"
	Policy     = `path "sys/storage/raft/snapshot" {
  capabilities = ["read"]
}
`
	// TokenPeriod is the period of the agent's token. It has no default
	// policy, so it cannot renew itself: it lives one period from its
	// creation (longer than any run), unless a privileged client renews it.
	TokenPeriod = 24 * time.Hour
)

// EnsurePolicy writes the policy PolicyName (Policy) with root (a client
// with a root or otherwise sufficiently privileged token: it needs
// sys/policies/acl and sudo on auth/token/create-orphan) and returns a new
// orphan periodic service token that has that policy only (not even
// "default"): what an Agent should take snapshots with. Orphan, so that
// revoking the token that made it does not revoke it.
func EnsurePolicy(ctx context.Context, root *api.Client) (string, error) {
	if err := root.Sys().PutPolicyWithContext(ctx, PolicyName, Policy); err != nil {
		return "", fmt.Errorf("write policy %s: %w", PolicyName, err)
	}
	sec, err := root.Auth().Token().CreateOrphanWithContext(ctx, &api.TokenCreateRequest{
		Policies:        []string{PolicyName},
		NoDefaultPolicy: true,
		Period:          TokenPeriod.String(),
		DisplayName:     "vaultstorm-snapshot-agent",
		Metadata:        map[string]string{"created_by": "vaultstorm", "purpose": "raft snapshots"},
	})
	if err != nil {
		return "", fmt.Errorf("create snapshot token: %w", err)
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return "", errors.New("create snapshot token: Vault returned no token")
	}
	return sec.Auth.ClientToken, nil
}

// Agent takes a snapshot every Interval from the active node, writes it to
// Store and keeps the Retain newest: a snapshot agent for open-source
// Vault, run inside the harness.
type Agent struct {
	Store    *Store
	Interval time.Duration
	// Retain is how many snapshots to keep (older ones are deleted after
	// each new one); 0 keeps all.
	Retain int
	// Active returns a client of the active node. It is called before each
	// snapshot, so the agent follows leader changes (see Active).
	Active func(ctx context.Context) (*api.Client, error)
	// Token, when set, is sent instead of the client's own token (the
	// least-privilege token from EnsurePolicy); the client Active returns is
	// never changed.
	Token string
	// Timeout bounds one snapshot (default: twice Interval, at least 1m).
	Timeout time.Duration
	// OnSnapshot is told of each snapshot stored, OnError of each failure
	// (a snapshot that failed, or old ones that could not be deleted).
	// Both are called from Run's goroutine.
	OnSnapshot func(Info)
	OnError    func(error)
	// Nice, when above 0, runs each snapshot on an OS thread of its own at
	// that scheduling niceness (Linux), the thread discarded afterwards:
	// streaming, hashing and storing megabytes of snapshot must not delay
	// a load generator that shares the process and the CPU.
	Nice int
}

// Run takes a snapshot one Interval after it starts, and every Interval
// after that (a snapshot that takes longer than Interval delays the next
// one: they never overlap), until ctx ends; then it returns nil. A snapshot
// under way when ctx ends is abandoned and leaves nothing in the store.
func (a *Agent) Run(ctx context.Context) error {
	if a.Store == nil || a.Active == nil || a.Interval <= 0 {
		return errors.New("snapshot agent: needs a Store, an Active function and an Interval above 0")
	}
	tick := time.NewTicker(a.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		info, err := a.saveNiced(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			a.report(err)
			continue
		}
		if a.OnSnapshot != nil {
			a.OnSnapshot(info)
		}
		if _, err := a.Store.Retain(ctx, a.Retain); err != nil && ctx.Err() == nil {
			a.report(fmt.Errorf("retain %d: %w", a.Retain, err))
		}
	}
}

// saveNiced is SaveOnce, on a thread of its own at a.Nice when set.
func (a *Agent) saveNiced(ctx context.Context) (Info, error) {
	if a.Nice <= 0 {
		return a.SaveOnce(ctx)
	}
	type result struct {
		info Info
		err  error
	}
	done := make(chan result, 1)
	go func() {
		// Locked and never unlocked: the thread ends with this goroutine,
		// so its niceness never reaches another one.
		runtime.LockOSThread()
		_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), a.Nice)
		info, err := a.SaveOnce(ctx)
		done <- result{info, err}
	}()
	r := <-done
	return r.info, r.err
}

// SaveOnce takes one snapshot from the active node into the store (no
// retention, no callbacks).
func (a *Agent) SaveOnce(ctx context.Context) (Info, error) {
	timeout := a.Timeout
	if timeout <= 0 {
		timeout = max(2*a.Interval, time.Minute)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := a.Active(ctx)
	if err != nil {
		return Info{}, fmt.Errorf("snapshot: find the active node: %w", err)
	}
	if a.Token != "" {
		if c, err = WithToken(c, a.Token); err != nil {
			return Info{}, err
		}
	}
	return Save(ctx, c, a.Store)
}

func (a *Agent) report(err error) {
	if a.OnError != nil {
		a.OnError(err)
	}
}
