// Package checkers holds the verdicts vaultstorm draws from a run's
// records: the write ledger read back against the store (CheckLedger),
// the linearizability of the sampled keys' histories (CheckHistory,
// CheckDir) and the unavailability windows of its requests (Windows).
// They are pure functions of their inputs (the store is a function
// argument), so hand-written ledgers and histories test them.
package checkers

import (
	"context"
	"fmt"
	"sort"
	"strings"
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

// KeyState is what the store holds for a key, or for one version of it.
type KeyState struct {
	// Found: the store has metadata for the key (reading the latest
	// version) or still keeps the version asked for (reading ?version=N;
	// KV v2 forgets versions beyond its max_versions).
	Found     bool
	Version   int    // the version read (the latest, when no version was asked for)
	Deleted   bool   // soft-deleted or destroyed
	Destroyed bool   // destroyed: the value is gone for good
	Digest    string // hex SHA-256 of the value (when not Deleted)
}

// ReadFunc reads a key back from the store: its latest version when version
// is 0, else that version (KV v2's ?version=N).
type ReadFunc func(ctx context.Context, key string, version int) (KeyState, error)

// Verdicts of one key.
const (
	KeyPresent = "present" // the last acknowledged write is readable
	// KeyLater: a later version is readable (an unknown-outcome write
	// landed) and the last acknowledged version still holds its value.
	KeyLater   = "later"
	KeyDeleted = "deleted" // absent, and one of our deletes explains it
	KeyLost    = "lost"    // an acknowledged write is not readable
	// KeyUnverifiable: a later version is readable, but the store no
	// longer keeps the last acknowledged version (KV v2 max_versions), so
	// its value cannot be checked. Neither lost nor verified.
	KeyUnverifiable = "unverifiable"
	KeyUnchecked    = "unchecked" // no acknowledged write to check (only unknown outcomes or deletes)
)

// KeyVerdict is the check of one key.
type KeyVerdict struct {
	Key    string `json:"key"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	Lost   int    `json:"lost,omitempty"` // acknowledged writes this key lost
	// Duplicates counts this key's versions acknowledged twice with
	// different values (each also counts in Lost).
	Duplicates int `json:"duplicate_versions,omitempty"`
}

// LedgerResult is the ledger's verdict. It is complete (Verified) only when
// every key with an acknowledged write was read back: otherwise the counts
// cover the keys read, and LostWrites is a lower bound, not a verdict.
type LedgerResult struct {
	Keys          int   `json:"keys"`
	AckedWrites   int64 `json:"acked_writes"`
	UnknownWrites int64 `json:"unknown_writes"`
	Present       int64 `json:"present_keys"`
	Later         int64 `json:"later_keys"`
	Deleted       int64 `json:"deleted_keys"`
	LostWrites    int64 `json:"lost_writes"`
	// DuplicateVersions counts (key, version) pairs acknowledged twice with
	// different values; each pair's extra writes are in LostWrites.
	DuplicateVersions int64 `json:"duplicate_versions"`
	// Unverifiable counts keys whose last acknowledged version the store
	// has purged (a later version is there): not lost, not verified.
	Unverifiable     int64        `json:"unverifiable_keys"`
	Lost             []KeyVerdict `json:"lost,omitempty"`
	UnverifiableKeys []KeyVerdict `json:"unverifiable,omitempty"`

	// RPO is set when the options named a restore point.
	RPO *RPO `json:"rpo,omitempty"`

	KeysToRead  int64  `json:"keys_to_read"` // keys with an acknowledged write
	KeysRead    int64  `json:"keys_read"`    // of those, read back and judged
	Verified    bool   `json:"verified"`     // every key to read was read
	VerifyError string `json:"verify_error,omitempty"`
}

// Apply copies the verdict into a summary. Summary.Verified is set only for
// a complete read-back; an incomplete one records how far it got and why
// it stopped, so that "0 lost" is never reported for data nobody read.
func (r LedgerResult) Apply(s *rundir.Summary) {
	s.Verified = r.Verified && r.KeysRead == r.KeysToRead && r.VerifyError == ""
	s.VerifyError = r.VerifyError
	if !s.Verified && s.VerifyError == "" {
		s.VerifyError = fmt.Sprintf("read back %d of %d keys", r.KeysRead, r.KeysToRead)
	}
	s.KeysRead, s.KeysToRead = r.KeysRead, r.KeysToRead
	s.AckedWrites = r.AckedWrites
	s.UnknownWrites = r.UnknownWrites
	s.LostWrites = r.LostWrites
	s.DuplicateVersions = r.DuplicateVersions
	s.PresentKeys = r.Present + r.Later
	s.DeletedKeys = r.Deleted
	s.LostKeys = nil
	for _, k := range r.Lost {
		s.LostKeys = append(s.LostKeys, k.Key)
	}
}

// LedgerOptions tune CheckLedger.
type LedgerOptions struct {
	Parallel int // reads in flight, at least 1
	// MaxVersions is how many versions the store keeps per key (KV v2's
	// max_versions: the mount's setting, 10 when unset). A last
	// acknowledged version missing though fewer than MaxVersions versions
	// came after it is lost; beyond that it is unverifiable. 0 = unknown:
	// every missing version is unverifiable.
	MaxVersions int
	// Restore, when set, says the cluster was rebuilt from a snapshot after
	// a total loss: every write is then judged by when it was acknowledged
	// (see RestorePoint), and the RPO counted.
	Restore *RestorePoint
}

// RestorePoint is a restore from a snapshot after a total loss. A write
// acknowledged before the snapshot's request started must survive (if it
// is missing it is lost: a bug); one acknowledged while the snapshot was
// taken may go either way; one acknowledged after its response ended and
// before the loss cannot be in it: it is the RPO. Writes acknowledged after
// the loss went to the restored cluster and must survive.
type RestorePoint struct {
	SnapshotStarted, SnapshotEnded time.Time
	Loss                           time.Time
}

// RPO is what a restore gave back, counted from the ledger.
type RPO struct {
	BeforeSnapshot  int64     // acknowledged before the snapshot's request started
	InFlight        int64     // acknowledged while it was taken
	InFlightPresent int64     // of those, readable after the restore
	AfterSnapshot   int64     // acknowledged after its response ended, before the loss
	AfterPresent    int64     // of those, readable (0, or the snapshot holds what it cannot)
	LastLost        time.Time // acknowledgement of the last write lost after the snapshot
}

// window says which side of a restore point an acknowledgement is on.
func (p *RestorePoint) window(t time.Time) string {
	switch {
	case t.Before(p.SnapshotStarted):
		return "before"
	case !t.After(p.SnapshotEnded):
		return "during"
	case t.Before(p.Loss):
		return "after"
	}
	return "restored"
}

// keyLedger is one key's ledger.
type keyLedger struct {
	acked   []rundir.LedgerEntry // acknowledged writes
	deletes []rundir.LedgerEntry // acknowledged or unknown deletes
	unknown int
}

// last is the acknowledged write with the highest version: KV v2 versions
// grow with every applied write, so it is the last one applied, whatever
// order the acknowledgements arrived in.
func (h *keyLedger) last() rundir.LedgerEntry {
	w := h.acked[0]
	for _, e := range h.acked[1:] {
		if e.Version > w.Version {
			w = e
		}
	}
	return w
}

// digests maps each acknowledged version to the distinct digests it was
// acknowledged with (normally one).
func (h *keyLedger) digests() map[int][]string {
	m := map[int][]string{}
	for _, e := range h.acked {
		d := m[e.Version]
		found := false
		for _, x := range d {
			found = found || x == e.Digest
		}
		if !found {
			m[e.Version] = append(d, e.Digest)
		}
	}
	return m
}

func ledgerByKey(entries []rundir.LedgerEntry) map[string]*keyLedger {
	m := map[string]*keyLedger{}
	for _, e := range entries {
		h := m[e.Key]
		if h == nil {
			h = &keyLedger{}
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

// judge decides one key. The rules:
//
//   - one version acknowledged with two different values: all but one of
//     those writes are lost (only one value can be that version);
//   - the last acknowledged write W must be readable at W's version with
//     W's digest;
//   - or be followed by a later version (a write whose acknowledgement was
//     lost but which was applied), W's version then read by ?version=N must
//     still hold W's digest: a later version must not hide that W was
//     overwritten in place. If the store has purged W's version (KV v2 keeps
//     max_versions), W is unverifiable;
//   - an absent or deleted key (or W's version deleted) is only fine if one
//     of our deletes may have been applied after W, i.e. was answered after
//     W was sent.
func judge(ctx context.Context, key string, h *keyLedger, read ReadFunc, maxVersions int) (KeyVerdict, error) {
	if len(h.acked) == 0 {
		return KeyVerdict{Key: key, Status: KeyUnchecked}, nil
	}
	digests := h.digests()
	v := KeyVerdict{Key: key}
	var reasons []string
	versions := make([]int, 0, len(digests))
	for ver, d := range digests {
		versions = append(versions, ver)
		if len(d) > 1 {
			v.Duplicates++
			v.Lost += len(d) - 1
		}
	}
	sort.Ints(versions)
	for _, ver := range versions {
		if d := digests[ver]; len(d) > 1 {
			reasons = append(reasons, fmt.Sprintf("version %d acknowledged %d times with different values", ver, len(d)))
		}
	}
	w := h.last()
	holds := func(ver int, digest string) bool {
		for _, d := range digests[ver] {
			if d == digest {
				return true
			}
		}
		return false
	}
	newer := func(ver int) int {
		n := 0
		for _, x := range versions {
			if x > ver {
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
	lose := func(n int, reason string) {
		v.Lost += n
		reasons = append(reasons, reason)
	}

	st, err := read(ctx, key, 0)
	if err != nil {
		return KeyVerdict{}, err
	}
	status := KeyPresent
	switch {
	case !st.Found:
		lose(len(versions), fmt.Sprintf("key missing; last acknowledged version %d", w.Version))
	case st.Version < w.Version:
		lose(newer(st.Version), fmt.Sprintf("at version %d, older than acknowledged version %d", st.Version, w.Version))
	case st.Deleted && deletedByUs:
		status = KeyDeleted
	case st.Deleted:
		lose(1, fmt.Sprintf("version %d deleted, and not by this run (last acknowledged version %d)", st.Version, w.Version))
	case st.Version > w.Version:
		status = KeyLater
		old, err := read(ctx, key, w.Version)
		if err != nil {
			return KeyVerdict{}, err
		}
		switch {
		case !old.Found && maxVersions > 0 && st.Version-w.Version < maxVersions:
			lose(1, fmt.Sprintf("acknowledged version %d is gone though only %d versions came after it (the store keeps %d)",
				w.Version, st.Version-w.Version, maxVersions))
		case !old.Found:
			status = KeyUnverifiable
			v.Reason = fmt.Sprintf("acknowledged version %d was purged (latest is %d): its value cannot be checked", w.Version, st.Version)
		case old.Destroyed:
			lose(1, fmt.Sprintf("acknowledged version %d destroyed, not by this run (latest is %d)", w.Version, st.Version))
		case old.Deleted && deletedByUs:
		case old.Deleted:
			lose(1, fmt.Sprintf("acknowledged version %d deleted, and not by this run (latest is %d)", w.Version, st.Version))
		case !holds(w.Version, old.Digest):
			lose(1, fmt.Sprintf("version %d holds a different value than was acknowledged (latest is %d)", w.Version, st.Version))
		}
	case !holds(w.Version, st.Digest):
		lose(1, fmt.Sprintf("version %d holds a different value than was acknowledged", w.Version))
	}
	if v.Lost > 0 {
		v.Status = KeyLost
		v.Reason = strings.Join(reasons, "; ")
		return v, nil
	}
	v.Status = status
	return v, nil
}

// judgeRestored decides one key of a run restored from a snapshot. The
// writes that must survive (acknowledged before the snapshot, or after the
// restore) are judged as judge does; each write acknowledged while or
// after the snapshot was taken is looked up at its own version to count
// what the restore gave back.
func judgeRestored(ctx context.Context, key string, h *keyLedger, read ReadFunc, maxVersions int, p *RestorePoint) (KeyVerdict, RPO, error) {
	var r RPO
	must := &keyLedger{deletes: h.deletes, unknown: h.unknown}
	var maybe []rundir.LedgerEntry
	for _, e := range h.acked {
		switch p.window(e.T) {
		case "before":
			r.BeforeSnapshot++
			must.acked = append(must.acked, e)
		case "restored":
			must.acked = append(must.acked, e)
		default:
			maybe = append(maybe, e)
		}
	}
	v, err := judge(ctx, key, must, read, maxVersions)
	if err != nil {
		return v, r, err
	}
	if v.Status == KeyUnchecked && len(maybe) > 0 {
		v.Status = KeyPresent // nothing had to survive; the rest is counted below
	}
	for _, e := range maybe {
		st, err := read(ctx, key, e.Version)
		if err != nil {
			return v, r, err
		}
		present := st.Found && !st.Deleted && !st.Destroyed && st.Digest == e.Digest
		switch p.window(e.T) {
		case "during":
			r.InFlight++
			if present {
				r.InFlightPresent++
			}
		case "after":
			r.AfterSnapshot++
			if present {
				r.AfterPresent++
			} else if e.T.After(r.LastLost) {
				r.LastLost = e.T
			}
		}
	}
	return v, r, nil
}

// CheckLedger verifies entries against the store through read, with
// o.Parallel reads in flight. It is the whole verification logic with the
// store abstracted, so hand-written ledgers and a fake store test it.
//
// When reads fail or ctx ends, it returns the partial result (the keys
// read so far, judged; Verified false, VerifyError set) with the error.
func CheckLedger(ctx context.Context, entries []rundir.LedgerEntry, read ReadFunc, o LedgerOptions) (LedgerResult, error) {
	hist := ledgerByKey(entries)
	res := tally(hist)
	keys := make([]string, 0, len(hist))
	for k := range hist {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	verdicts := make([]KeyVerdict, len(keys))
	errs := make([]error, len(keys))
	rpos := make([]RPO, len(keys))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(1, o.Parallel) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(keys) || ctx.Err() != nil {
					return
				}
				var v KeyVerdict
				var err error
				if o.Restore != nil {
					v, rpos[i], err = judgeRestored(ctx, keys[i], hist[keys[i]], read, o.MaxVersions, o.Restore)
				} else {
					v, err = judge(ctx, keys[i], hist[keys[i]], read, o.MaxVersions)
				}
				if err != nil {
					errs[i] = fmt.Errorf("read back %s: %w", keys[i], err)
					continue
				}
				verdicts[i] = v
			}
		}()
	}
	wg.Wait()
	if o.Restore != nil {
		res.RPO = &RPO{}
		for i, r := range rpos {
			if verdicts[i].Status == "" {
				continue // not read
			}
			res.RPO.BeforeSnapshot += r.BeforeSnapshot
			res.RPO.InFlight += r.InFlight
			res.RPO.InFlightPresent += r.InFlightPresent
			res.RPO.AfterSnapshot += r.AfterSnapshot
			res.RPO.AfterPresent += r.AfterPresent
			if r.LastLost.After(res.RPO.LastLost) {
				res.RPO.LastLost = r.LastLost
			}
		}
	}
	for _, v := range verdicts {
		switch v.Status {
		case "", KeyUnchecked:
			continue
		case KeyPresent:
			res.Present++
		case KeyLater:
			res.Later++
		case KeyDeleted:
			res.Deleted++
		case KeyUnverifiable:
			res.Unverifiable++
			res.UnverifiableKeys = append(res.UnverifiableKeys, v)
		case KeyLost:
			res.LostWrites += int64(v.Lost)
			res.DuplicateVersions += int64(v.Duplicates)
			res.Lost = append(res.Lost, v)
		}
		res.KeysRead++
	}
	var err error
	if cerr := ctx.Err(); cerr != nil {
		err = fmt.Errorf("verify: stopped after %d of %d keys: %w", res.KeysRead, res.KeysToRead, cerr)
	} else if n := countErrs(errs); n > 0 {
		err = fmt.Errorf("verify: %d keys could not be read back, first: %w", n, firstErr(errs))
	}
	if err != nil {
		res.VerifyError = err.Error()
		return res, err
	}
	res.Verified = res.KeysRead == res.KeysToRead
	return res, nil
}

// tally counts what the ledger holds, before any read.
func tally(hist map[string]*keyLedger) LedgerResult {
	var res LedgerResult
	res.Keys = len(hist)
	for _, h := range hist {
		res.AckedWrites += int64(len(h.acked))
		res.UnknownWrites += int64(h.unknown)
		if len(h.acked) > 0 {
			res.KeysToRead++
		}
	}
	return res
}

// Unverified is the result of a read-back that could not start (no
// leader, no ledger): the ledger's counts, nothing read, and why.
func Unverified(entries []rundir.LedgerEntry, err error) LedgerResult {
	res := tally(ledgerByKey(entries))
	if err != nil {
		res.VerifyError = err.Error()
	} else {
		res.VerifyError = "not read back"
	}
	return res
}

func countErrs(errs []error) int {
	n := 0
	for _, e := range errs {
		if e != nil {
			n++
		}
	}
	return n
}

func firstErr(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
