package load

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaultstorm/vaultstorm/checkers"
	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// Ledger outcomes (rundir.LedgerEntry.Outcome).
const (
	OutcomeOK      = checkers.OutcomeOK      // an acknowledged write
	OutcomeUnknown = checkers.OutcomeUnknown // sent, answer lost: may or may not have been applied
	OutcomeDeleted = checkers.OutcomeDeleted // an acknowledged delete
)

// ledger appends every acknowledged (or unknown) write and delete to
// ledger.jsonl as it is answered, one write call per line, so a run killed
// at any instant leaves every acknowledgement it had received on disk.
type ledger struct {
	app     *rundir.Appender
	acked   atomic.Int64
	unknown atomic.Int64
	mu      sync.Mutex
	err     error
}

func openLedger(dir string) (*ledger, error) {
	if dir == "" {
		return &ledger{}, nil
	}
	app, err := rundir.OpenAppender(dir, rundir.LedgerFile)
	if err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	return &ledger{app: app}, nil
}

func (l *ledger) add(e rundir.LedgerEntry) {
	if e.Outcome == OutcomeOK {
		l.acked.Add(1)
	} else if e.Outcome == OutcomeUnknown && e.Op != "delete" {
		l.unknown.Add(1)
	}
	if l.app == nil {
		return
	}
	if err := l.app.Append(e); err != nil {
		l.mu.Lock()
		if l.err == nil {
			l.err = fmt.Errorf("append to ledger: %w", err)
		}
		l.mu.Unlock()
	}
}

func (l *ledger) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.app != nil {
		if err := l.app.Close(); err != nil && l.err == nil {
			l.err = err
		}
	}
	return l.err
}

// Digest is the ledger's digest of a value: hex SHA-256.
func Digest(value []byte) string {
	sum := sha256.Sum256(value)
	return hex.EncodeToString(sum[:])
}

// The ledger's verdict is checkers.CheckLedger's; these names keep load's
// API for its callers.
type (
	KeyState     = checkers.KeyState
	KeyVerdict   = checkers.KeyVerdict
	VerifyResult = checkers.LedgerResult
	ReadFunc     = checkers.ReadFunc
)

// Verdicts of one key (see checkers).
const (
	KeyPresent      = checkers.KeyPresent
	KeyLater        = checkers.KeyLater
	KeyDeleted      = checkers.KeyDeleted
	KeyLost         = checkers.KeyLost
	KeyUnverifiable = checkers.KeyUnverifiable
	KeyUnchecked    = checkers.KeyUnchecked
)

// Verify reads back every key of runDir's ledger from target and judges
// it (see checkers.CheckLedger). The mount comes from the run's load.json.
//
// The result is returned even with an error: a read-back that could not
// start or finish says how far it got (KeysRead of KeysToRead,
// VerifyError) and is not Verified; its Apply never records it as
// verified.
func Verify(ctx context.Context, t Target, runDir string) (VerifyResult, error) {
	return VerifyRestored(ctx, t, runDir, nil)
}

// VerifyRestored is Verify for a run whose cluster was rebuilt from a
// snapshot after a total loss (rp nil: none): the ledger is judged against
// the restore point and the RPO counted (checkers.RestorePoint).
func VerifyRestored(ctx context.Context, t Target, runDir string, rp *checkers.RestorePoint) (VerifyResult, error) {
	var cfg RunConfig
	if err := rundir.ReadJSON(runDir, ConfigFile, &cfg); err != nil {
		err = fmt.Errorf("verify %s: not a load run directory: %w", runDir, err)
		return checkers.Unverified(nil, err), err
	}
	var entries []rundir.LedgerEntry
	if err := rundir.ReadLines(runDir, rundir.LedgerFile, func(e rundir.LedgerEntry) error {
		entries = append(entries, e)
		return nil
	}); err != nil {
		err = fmt.Errorf("read ledger: %w", err)
		return checkers.Unverified(entries, err), err
	}
	unverified := func(err error) (VerifyResult, error) {
		err = fmt.Errorf("verify: %w", err)
		return checkers.Unverified(entries, err), err
	}
	c, err := newClient(t, clientConfig{maxConns: 16, timeout: 10 * time.Second})
	if err != nil {
		return unverified(err)
	}
	defer c.closeConns()
	if err := c.selectTarget("active"); err != nil {
		return unverified(err)
	}
	leader, _, err := c.findLeader(ctx)
	if err != nil {
		return unverified(err)
	}
	c.active.Store(leader)
	return checkers.CheckLedger(ctx, entries, c.readKeyState(cfg.Mount),
		checkers.LedgerOptions{Parallel: 16, MaxVersions: c.maxVersions(ctx, cfg.Mount), Restore: rp})
}

// maxVersions is the mount's KV v2 max_versions (10 when unset), or 0 when
// it cannot be read: then every purged version is called unverifiable.
func (c *client) maxVersions(ctx context.Context, mount string) int {
	var r struct {
		Data struct {
			MaxVersions int `json:"max_versions"`
		} `json:"data"`
	}
	st, _, err := c.getJSON(ctx, c.pick(), "/v1/"+mount+"/config", &r)
	if err != nil || st != http.StatusOK {
		return 0
	}
	if r.Data.MaxVersions == 0 {
		return 10 // KV v2's default
	}
	return r.Data.MaxVersions
}

// readKeyState reads a key (its latest version, or the version asked for)
// on the active node, retrying transient failures: a verification must not
// call a write lost because of a hiccup while reading it back.
func (c *client) readKeyState(mount string) ReadFunc {
	// A cluster that cannot serve at all (no leader) would otherwise cost
	// every key its five attempts: after giveUpAfter keys in a row failed,
	// the rest fail at once, and the read-back is reported unverified.
	const giveUpAfter = 32
	var failedInARow atomic.Int64
	var lastFailure atomic.Value
	return func(ctx context.Context, key string, version int) (KeyState, error) {
		if n := failedInARow.Load(); n >= giveUpAfter {
			return KeyState{}, fmt.Errorf("not tried: the last %d keys could not be read (%v)", n, lastFailure.Load())
		}
		st, err := c.readKeyRetrying(ctx, mount, key, version)
		if err != nil {
			failedInARow.Add(1)
			lastFailure.Store(err.Error())
			return st, err
		}
		failedInARow.Store(0)
		return st, nil
	}
}

// readKeyRetrying reads a key, retrying transient failures (and looking
// for the active node again between tries).
func (c *client) readKeyRetrying(ctx context.Context, mount, key string, version int) (KeyState, error) {
	var last error
	for attempt := range 5 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return KeyState{}, ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
			if n, _, err := c.findLeader(ctx); err == nil {
				c.active.Store(n)
			}
		}
		st, err := c.readKeyOnce(ctx, mount, key, version)
		if err == nil {
			return st, nil
		}
		last = err
	}
	return KeyState{}, last
}

func (c *client) readKeyOnce(ctx context.Context, mount, key string, version int) (KeyState, error) {
	n := c.pick()
	query := ""
	if version > 0 {
		query = "version=" + strconv.Itoa(version)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var body []byte
	st, err := c.request(ctx, n, http.MethodGet, "/v1/"+mount+"/data/"+key, query, nil, 0, &body, 16<<20)
	if err != nil {
		return KeyState{}, err
	}
	var r struct {
		Data *struct {
			Data     map[string]any `json:"data"`
			Metadata *struct {
				Version      int    `json:"version"`
				DeletionTime string `json:"deletion_time"`
				Destroyed    bool   `json:"destroyed"`
			} `json:"metadata"`
		} `json:"data"`
	}
	switch st {
	case http.StatusOK, http.StatusNotFound:
		if err := json.Unmarshal(body, &r); err != nil && st == http.StatusOK {
			return KeyState{}, fmt.Errorf("decode %s: %w", key, err)
		}
	default:
		return KeyState{}, fmt.Errorf("%s: %s", n.addr, vaultErr(st, body))
	}
	if r.Data == nil || r.Data.Metadata == nil {
		// KV v2 answers 404 with the metadata when the version is
		// deleted or destroyed; without metadata the key does not exist
		// at all, or (?version=N) that version was purged.
		return KeyState{Found: false}, nil
	}
	md := r.Data.Metadata
	ks := KeyState{Found: true, Version: md.Version, Destroyed: md.Destroyed,
		Deleted: md.DeletionTime != "" || md.Destroyed || st == http.StatusNotFound}
	if !ks.Deleted {
		v, _ := r.Data.Data["v"].(string)
		ks.Digest = Digest([]byte(v))
	}
	return ks, nil
}
