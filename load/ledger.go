package load

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// Ledger outcomes (rundir.LedgerEntry.Outcome).
const (
	OutcomeOK      = "ok"      // an acknowledged write
	OutcomeUnknown = "unknown" // sent, answer lost: may or may not have been applied
	OutcomeDeleted = "deleted" // an acknowledged delete
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

// KeyState is what the store holds for a key, read back after the run: its
// latest version and whether that version is deleted.
type KeyState struct {
	Found   bool   // the key has metadata (any version, even deleted)
	Version int    // latest version
	Deleted bool   // the latest version is soft-deleted or destroyed
	Digest  string // Digest of the latest version's value (when not Deleted)
}

// Verdicts of one key.
const (
	KeyPresent   = "present"   // the last acknowledged write is readable
	KeyLater     = "later"     // a later version is readable (an unknown-outcome write landed)
	KeyDeleted   = "deleted"   // absent, and one of our deletes explains it
	KeyLost      = "lost"      // an acknowledged write is not readable
	KeyUnchecked = "unchecked" // no acknowledged write to check (only unknown outcomes or deletes)
)

// KeyVerdict is the check of one key.
type KeyVerdict struct {
	Key    string `json:"key"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	Lost   int    `json:"lost,omitempty"` // acknowledged writes this key lost
}

// VerifyResult is the ledger's verdict.
type VerifyResult struct {
	Keys          int          `json:"keys"`
	AckedWrites   int64        `json:"acked_writes"`
	UnknownWrites int64        `json:"unknown_writes"`
	Present       int64        `json:"present_keys"`
	Later         int64        `json:"later_keys"`
	Deleted       int64        `json:"deleted_keys"`
	LostWrites    int64        `json:"lost_writes"`
	Lost          []KeyVerdict `json:"lost,omitempty"`
}

// Apply copies the verdict into a summary.
func (v VerifyResult) Apply(s *rundir.Summary) {
	s.Verified = true
	s.AckedWrites = v.AckedWrites
	s.UnknownWrites = v.UnknownWrites
	s.LostWrites = v.LostWrites
	s.PresentKeys = v.Present + v.Later
	s.DeletedKeys = v.Deleted
	s.LostKeys = nil
	for _, k := range v.Lost {
		s.LostKeys = append(s.LostKeys, k.Key)
	}
}

// keyHistory is one key's ledger.
type keyHistory struct {
	acked   []rundir.LedgerEntry // acknowledged writes
	deletes []rundir.LedgerEntry // acknowledged or unknown deletes
	unknown int
}

// last is the acknowledged write with the highest version: KV v2 versions
// grow with every applied write, so it is the last one applied, whatever
// order the acknowledgements arrived in.
func (h *keyHistory) last() rundir.LedgerEntry {
	w := h.acked[0]
	for _, e := range h.acked[1:] {
		if e.Version > w.Version {
			w = e
		}
	}
	return w
}

// historyOf groups a ledger by key.
func historyOf(entries []rundir.LedgerEntry) map[string]*keyHistory {
	m := map[string]*keyHistory{}
	for _, e := range entries {
		h := m[e.Key]
		if h == nil {
			h = &keyHistory{}
			m[e.Key] = h
		}
		switch {
		case e.Op == "delete":
			h.deletes = append(h.deletes, e)
		case e.Outcome == OutcomeOK:
			h.acked = append(h.acked, e)
		case e.Outcome == OutcomeUnknown:
			h.unknown++
		}
	}
	return m
}

// judge decides one key. The rule: the last acknowledged write W must be
// readable at W's version with W's digest, or be superseded by a later
// version (a write whose acknowledgement was lost but which was applied);
// an absent or deleted key is only fine if one of our deletes may have been
// applied after W, i.e. was answered after W was sent.
func judge(key string, h *keyHistory, st KeyState) KeyVerdict {
	if len(h.acked) == 0 {
		return KeyVerdict{Key: key, Status: KeyUnchecked}
	}
	w := h.last()
	newer := func(v int) int {
		n := 0
		for _, e := range h.acked {
			if e.Version > v {
				n++
			}
		}
		return n
	}
	deletedByUs := false
	for _, d := range h.deletes {
		if w.Sent.IsZero() || d.T.After(w.Sent) {
			deletedByUs = true
		}
	}
	switch {
	case !st.Found:
		return KeyVerdict{Key: key, Status: KeyLost, Lost: len(h.acked),
			Reason: fmt.Sprintf("key missing; last acknowledged version %d", w.Version)}
	case st.Version < w.Version:
		return KeyVerdict{Key: key, Status: KeyLost, Lost: newer(st.Version),
			Reason: fmt.Sprintf("at version %d, older than acknowledged version %d", st.Version, w.Version)}
	case st.Deleted && deletedByUs:
		return KeyVerdict{Key: key, Status: KeyDeleted}
	case st.Deleted:
		return KeyVerdict{Key: key, Status: KeyLost, Lost: 1,
			Reason: fmt.Sprintf("version %d deleted, and not by this run (last acknowledged version %d)", st.Version, w.Version)}
	case st.Version > w.Version:
		return KeyVerdict{Key: key, Status: KeyLater}
	case st.Digest != w.Digest:
		return KeyVerdict{Key: key, Status: KeyLost, Lost: 1,
			Reason: fmt.Sprintf("version %d holds a different value than was acknowledged", w.Version)}
	}
	return KeyVerdict{Key: key, Status: KeyPresent}
}

// ReadFunc reads a key's current state from the store.
type ReadFunc func(ctx context.Context, key string) (KeyState, error)

// CheckLedger verifies entries against the store through read, with
// `parallel` reads in flight. It is the whole verification logic with the
// store abstracted, so hand-written ledgers and a fake store test it.
func CheckLedger(ctx context.Context, entries []rundir.LedgerEntry, read ReadFunc, parallel int) (VerifyResult, error) {
	hist := historyOf(entries)
	var res VerifyResult
	keys := make([]string, 0, len(hist))
	for k, h := range hist {
		keys = append(keys, k)
		res.AckedWrites += int64(len(h.acked))
		res.UnknownWrites += int64(h.unknown)
	}
	sort.Strings(keys)
	res.Keys = len(keys)
	verdicts := make([]KeyVerdict, len(keys))
	errs := make([]error, len(keys))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(1, parallel) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(keys) || ctx.Err() != nil {
					return
				}
				h := hist[keys[i]]
				if len(h.acked) == 0 {
					verdicts[i] = KeyVerdict{Key: keys[i], Status: KeyUnchecked}
					continue
				}
				st, err := read(ctx, keys[i])
				if err != nil {
					errs[i] = fmt.Errorf("read back %s: %w", keys[i], err)
					continue
				}
				verdicts[i] = judge(keys[i], h, st)
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("verify: %w", err)
	}
	if err := errors.Join(errs...); err != nil {
		n := 0
		for _, e := range errs {
			if e != nil {
				n++
			}
		}
		return res, fmt.Errorf("verify: %d keys could not be read back, first: %w", n, firstErr(errs))
	}
	for _, v := range verdicts {
		switch v.Status {
		case KeyPresent:
			res.Present++
		case KeyLater:
			res.Later++
		case KeyDeleted:
			res.Deleted++
		case KeyLost:
			res.LostWrites += int64(v.Lost)
			res.Lost = append(res.Lost, v)
		}
	}
	return res, nil
}

func firstErr(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// Verify reads back every key of runDir's ledger from target and judges
// it (see CheckLedger). The mount comes from the run's load.json.
func Verify(ctx context.Context, t Target, runDir string) (VerifyResult, error) {
	var cfg RunConfig
	if err := rundir.ReadJSON(runDir, ConfigFile, &cfg); err != nil {
		return VerifyResult{}, fmt.Errorf("verify %s: not a load run directory: %w", runDir, err)
	}
	var entries []rundir.LedgerEntry
	if err := rundir.ReadLines(runDir, rundir.LedgerFile, func(e rundir.LedgerEntry) error {
		entries = append(entries, e)
		return nil
	}); err != nil {
		return VerifyResult{}, fmt.Errorf("read ledger: %w", err)
	}
	c, err := newClient(t, clientConfig{maxConns: 16, timeout: 10 * time.Second})
	if err != nil {
		return VerifyResult{}, err
	}
	defer c.tr.CloseIdleConnections()
	if err := c.selectTarget("active"); err != nil {
		return VerifyResult{}, err
	}
	leader, _, err := c.findLeader(ctx)
	if err != nil {
		return VerifyResult{}, err
	}
	c.active.Store(leader)
	return CheckLedger(ctx, entries, c.readKeyState(cfg.Mount), 16)
}

// readKeyState reads a key's latest version on the active node, retrying
// transient failures: a verification must not call a write lost because
// of a hiccup while reading it back.
func (c *client) readKeyState(mount string) ReadFunc {
	return func(ctx context.Context, key string) (KeyState, error) {
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
			st, err := c.readKeyOnce(ctx, mount, key)
			if err == nil {
				return st, nil
			}
			last = err
		}
		return KeyState{}, last
	}
}

func (c *client) readKeyOnce(ctx context.Context, mount, key string) (KeyState, error) {
	n := c.pick()
	st, body, err := c.getJSON(ctx, n, "/v1/"+mount+"/data/"+key, nil)
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
		// KV v2 answers 404 with the metadata when the latest version is
		// deleted; without metadata the key does not exist at all.
		return KeyState{Found: false}, nil
	}
	md := r.Data.Metadata
	ks := KeyState{Found: true, Version: md.Version, Deleted: md.DeletionTime != "" || md.Destroyed || st == http.StatusNotFound}
	if !ks.Deleted {
		v, _ := r.Data.Data["v"].(string)
		ks.Digest = Digest([]byte(v))
	}
	return ks, nil
}
