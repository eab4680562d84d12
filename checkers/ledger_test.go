package checkers

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

var ledgerT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ledgerAt(ms int) time.Time { return ledgerT0.Add(time.Duration(ms) * time.Millisecond) }

func wr(key string, ver int, digest string, sent, acked int) rundir.LedgerEntry {
	return rundir.LedgerEntry{Key: key, Version: ver, Digest: digest, Outcome: OutcomeOK, Sent: ledgerAt(sent), T: ledgerAt(acked)}
}

func del(key string, sent, acked int) rundir.LedgerEntry {
	return rundir.LedgerEntry{Key: key, Op: "delete", Outcome: OutcomeDeleted, Sent: ledgerAt(sent), T: ledgerAt(acked)}
}

// store is a fake KV v2 store: each key's latest state, and the versions
// it still keeps for ?version=N (a version not listed is purged).
type store struct {
	latest   map[string]KeyState
	versions map[string]map[int]KeyState
	reads    atomic.Int64
}

func (s *store) read(_ context.Context, key string, version int) (KeyState, error) {
	s.reads.Add(1)
	if version == 0 {
		return s.latest[key], nil
	}
	st, ok := s.versions[key][version]
	if !ok {
		return KeyState{}, nil
	}
	st.Found, st.Version = true, version
	return st, nil
}

func byKey(vs []KeyVerdict) map[string]KeyVerdict {
	m := map[string]KeyVerdict{}
	for _, v := range vs {
		m[v.Key] = v
	}
	return m
}

func TestCheckLedger(t *testing.T) {
	entries := []rundir.LedgerEntry{
		wr("ok", 1, "a", 0, 1), wr("ok", 2, "b", 2, 3),
		// Acks out of order: version 3 acked before version 2; 3 is last.
		wr("reorder", 3, "c", 0, 5), wr("reorder", 2, "b", 0, 9),
		wr("later", 1, "a", 0, 1), {Key: "later", Outcome: OutcomeUnknown, Digest: "z", T: ledgerAt(5)},
		wr("missing", 1, "a", 0, 1), wr("missing", 2, "b", 2, 3),
		wr("older", 1, "a", 0, 1), wr("older", 2, "b", 2, 3), wr("older", 3, "c", 4, 5),
		wr("corrupt", 1, "a", 0, 1),
		wr("deleted", 1, "a", 0, 1), del("deleted", 2, 3),
		// Delete answered before the write was sent: it cannot explain the absence.
		del("stale-delete", 0, 1), wr("stale-delete", 2, "b", 5, 6),
		// Delete overlapping the write: it may have been applied after it.
		wr("racy-delete", 1, "a", 10, 20), del("racy-delete", 5, 15),
		wr("behind-back", 1, "a", 0, 1),
		{Key: "only-unknown", Outcome: OutcomeUnknown, Digest: "x", T: ledgerAt(1)},
	}
	s := &store{latest: map[string]KeyState{
		"ok":           {Found: true, Version: 2, Digest: "b"},
		"reorder":      {Found: true, Version: 3, Digest: "c"},
		"later":        {Found: true, Version: 2, Digest: "z"},
		"older":        {Found: true, Version: 1, Digest: "a"},
		"corrupt":      {Found: true, Version: 1, Digest: "zzz"},
		"deleted":      {Found: true, Version: 1, Deleted: true},
		"stale-delete": {Found: true, Version: 2, Deleted: true},
		"racy-delete":  {Found: true, Version: 1, Deleted: true},
		"behind-back":  {Found: true, Version: 1, Deleted: true},
	}, versions: map[string]map[int]KeyState{"later": {1: {Digest: "a"}, 2: {Digest: "z"}}}}
	res, err := CheckLedger(context.Background(), entries, s.read, LedgerOptions{Parallel: 4, MaxVersions: 10})
	if err != nil {
		t.Fatal(err)
	}
	lost := byKey(res.Lost)
	wantLost := map[string]int{"missing": 2, "older": 2, "corrupt": 1, "stale-delete": 1, "behind-back": 1}
	for k, n := range wantLost {
		if lost[k].Lost != n {
			t.Errorf("%s: lost %d (%q), want %d", k, lost[k].Lost, lost[k].Reason, n)
		}
	}
	if len(lost) != len(wantLost) {
		t.Errorf("lost keys %v, want %v", lost, wantLost)
	}
	if res.LostWrites != 7 || res.AckedWrites != 15 || res.UnknownWrites != 2 {
		t.Errorf("lost %d acked %d unknown %d, want 7, 15, 2", res.LostWrites, res.AckedWrites, res.UnknownWrites)
	}
	if res.Present != 2 || res.Later != 1 || res.Deleted != 2 {
		t.Errorf("present %d later %d deleted %d, want 2, 1, 2", res.Present, res.Later, res.Deleted)
	}
	// 10 keys have an acknowledged write; only-unknown is not read.
	if !res.Verified || res.KeysToRead != 10 || res.KeysRead != 10 || res.VerifyError != "" {
		t.Errorf("complete read-back: verified %v, read %d of %d, %q", res.Verified, res.KeysRead, res.KeysToRead, res.VerifyError)
	}
	var sum rundir.Summary
	res.Apply(&sum)
	if !sum.Verified || sum.LostWrites != 7 || len(sum.LostKeys) != 5 || sum.KeysRead != 10 || sum.KeysToRead != 10 || sum.PresentKeys != 3 {
		t.Errorf("Apply: %+v", sum)
	}
}

// The same (key, version) acknowledged with two values: one of the two
// writes is lost, whatever the store holds now.
func TestCheckLedgerDuplicateVersions(t *testing.T) {
	entries := []rundir.LedgerEntry{
		// Two writes both acknowledged as version 2: the store holds one.
		wr("dup", 1, "a", 0, 1), wr("dup", 2, "b", 2, 3), wr("dup", 2, "c", 2, 4),
		// Twice at version 1, then version 2 on top: 1 lost.
		wr("dup-under", 1, "a", 0, 1), wr("dup-under", 1, "b", 0, 2), wr("dup-under", 2, "c", 3, 4),
		// The same digest twice (a line written twice) is no loss.
		wr("same", 1, "a", 0, 1), wr("same", 1, "a", 0, 1),
		// Duplicate and the last version overwritten: 2 lost.
		wr("dup-corrupt", 1, "a", 0, 1), wr("dup-corrupt", 1, "b", 0, 1),
	}
	s := &store{latest: map[string]KeyState{
		"dup":         {Found: true, Version: 2, Digest: "c"},
		"dup-under":   {Found: true, Version: 2, Digest: "c"},
		"same":        {Found: true, Version: 1, Digest: "a"},
		"dup-corrupt": {Found: true, Version: 1, Digest: "x"},
	}}
	res, err := CheckLedger(context.Background(), entries, s.read, LedgerOptions{Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	lost := byKey(res.Lost)
	for k, n := range map[string]int{"dup": 1, "dup-under": 1, "dup-corrupt": 2} {
		if lost[k].Lost != n || lost[k].Status != KeyLost || !strings.Contains(lost[k].Reason, "acknowledged 2 times with different values") {
			t.Errorf("%s: %+v, want %d lost for a duplicate version", k, lost[k], n)
		}
	}
	if _, ok := lost["same"]; ok {
		t.Errorf("same digest twice called lost: %+v", lost["same"])
	}
	if res.DuplicateVersions != 3 || res.LostWrites != 4 {
		t.Errorf("duplicate versions %d, lost %d, want 3 and 4", res.DuplicateVersions, res.LostWrites)
	}
	var sum rundir.Summary
	res.Apply(&sum)
	if sum.DuplicateVersions != 3 || sum.LostWrites != 4 || !sum.Verified {
		t.Errorf("Apply: duplicates %d lost %d verified %v", sum.DuplicateVersions, sum.LostWrites, sum.Verified)
	}
}

// A later version than the last acknowledged one (an unknown-outcome write
// landed) must not hide that the acknowledged version was overwritten in
// place, deleted behind our back, or purged too early; a version KV v2
// purged legitimately is unverifiable, neither lost nor verified.
func TestCheckLedgerLaterVersion(t *testing.T) {
	unknown := func(key string) rundir.LedgerEntry {
		return rundir.LedgerEntry{Key: key, Outcome: OutcomeUnknown, Digest: "u", T: ledgerAt(9)}
	}
	entries := []rundir.LedgerEntry{
		wr("intact", 3, "a", 0, 1), unknown("intact"),
		wr("overwritten", 3, "a", 0, 1), unknown("overwritten"),
		wr("deleted-behind", 3, "a", 0, 1), unknown("deleted-behind"),
		wr("deleted-by-us", 3, "a", 0, 1), del("deleted-by-us", 2, 3), unknown("deleted-by-us"),
		wr("destroyed", 3, "a", 0, 1), unknown("destroyed"),
		wr("purged-legit", 3, "a", 0, 1), unknown("purged-legit"),
		wr("purged-early", 3, "a", 0, 1), unknown("purged-early"),
	}
	latest := func(v int) KeyState { return KeyState{Found: true, Version: v, Digest: "u"} }
	s := &store{latest: map[string]KeyState{
		"intact": latest(4), "overwritten": latest(4), "deleted-behind": latest(4), "deleted-by-us": latest(4),
		"destroyed": latest(4), "purged-legit": latest(13), "purged-early": latest(12),
	}, versions: map[string]map[int]KeyState{
		"intact":         {3: {Digest: "a"}},
		"overwritten":    {3: {Digest: "evil"}},
		"deleted-behind": {3: {Deleted: true}},
		"deleted-by-us":  {3: {Deleted: true}},
		"destroyed":      {3: {Deleted: true, Destroyed: true}},
	}}
	res, err := CheckLedger(context.Background(), entries, s.read, LedgerOptions{Parallel: 3, MaxVersions: 10})
	if err != nil {
		t.Fatal(err)
	}
	lost := byKey(res.Lost)
	for _, k := range []string{"overwritten", "deleted-behind", "destroyed", "purged-early"} {
		if lost[k].Lost != 1 {
			t.Errorf("%s: %+v, want 1 lost", k, lost[k])
		}
	}
	if !strings.Contains(lost["overwritten"].Reason, "version 3 holds a different value") ||
		!strings.Contains(lost["purged-early"].Reason, "only 9 versions came after it") {
		t.Errorf("reasons: %q; %q", lost["overwritten"].Reason, lost["purged-early"].Reason)
	}
	if len(lost) != 4 || res.LostWrites != 4 {
		t.Errorf("lost %d writes on %v, want 4", res.LostWrites, lost)
	}
	if res.Later != 2 || res.Unverifiable != 1 || len(res.UnverifiableKeys) != 1 || res.UnverifiableKeys[0].Key != "purged-legit" {
		t.Errorf("later %d, unverifiable %d %+v; want 2 (intact, deleted-by-us), 1 (purged-legit)", res.Later, res.Unverifiable, res.UnverifiableKeys)
	}
	if !res.Verified {
		t.Errorf("a complete read-back with an unverifiable key is still complete: %+v", res)
	}

	// Without knowing max_versions, an early purge cannot be told from a
	// legitimate one: unverifiable, never "fine".
	res, err = CheckLedger(context.Background(), entries, s.read, LedgerOptions{Parallel: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Unverifiable != 2 || res.LostWrites != 3 {
		t.Errorf("max_versions unknown: unverifiable %d lost %d, want 2 and 3", res.Unverifiable, res.LostWrites)
	}
}

// A read-back that fails or is cut short returns what it read, says so,
// and is never applied as verified with 0 lost.
func TestCheckLedgerPartial(t *testing.T) {
	var entries []rundir.LedgerEntry
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		entries = append(entries, wr(k, 1, "x", 0, 1))
	}
	s := &store{latest: map[string]KeyState{}}
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		s.latest[k] = KeyState{Found: true, Version: 1, Digest: "x"}
	}

	// Two keys cannot be read (a node down): the four others are judged.
	failing := func(ctx context.Context, key string, version int) (KeyState, error) {
		if key == "c" || key == "e" {
			return KeyState{}, errors.New("connection refused")
		}
		return s.read(ctx, key, version)
	}
	res, err := CheckLedger(context.Background(), entries, failing, LedgerOptions{Parallel: 2})
	if err == nil || !strings.Contains(err.Error(), "2 keys could not be read back") {
		t.Fatalf("err %v, want 2 keys unread", err)
	}
	if res.Verified || res.KeysRead != 4 || res.KeysToRead != 6 || res.Present != 4 || res.VerifyError == "" {
		t.Errorf("partial: %+v", res)
	}
	var sum rundir.Summary
	sum.Verified = true // a stale verdict must be overwritten
	res.Apply(&sum)
	if sum.Verified || sum.KeysRead != 4 || sum.KeysToRead != 6 || !strings.Contains(sum.VerifyError, "could not be read back") {
		t.Errorf("Apply of a partial read-back: verified %v, %d of %d, %q", sum.Verified, sum.KeysRead, sum.KeysToRead, sum.VerifyError)
	}

	// Cut short: the context ends after the third read.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var n atomic.Int64
	cutting := func(ctx context.Context, key string, version int) (KeyState, error) {
		if n.Add(1) == 3 {
			cancel()
		}
		if ctx.Err() != nil {
			return KeyState{}, ctx.Err()
		}
		return s.read(ctx, key, version)
	}
	res, err = CheckLedger(ctx, entries, cutting, LedgerOptions{Parallel: 1})
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want canceled", err)
	}
	if res.Verified || res.KeysRead != 2 || res.KeysToRead != 6 || !strings.Contains(res.VerifyError, "stopped after 2 of 6 keys") {
		t.Errorf("cut short: %+v", res)
	}

	// A read-back that never started: the ledger's counts, nothing read.
	u := Unverified(entries, errors.New("no leader"))
	sum = rundir.Summary{}
	u.Apply(&sum)
	if sum.Verified || sum.KeysToRead != 6 || sum.KeysRead != 0 || sum.AckedWrites != 6 || sum.VerifyError != "no leader" {
		t.Errorf("Unverified: %+v", sum)
	}
	// Even a result that claims Verified with keys missing is not applied as verified.
	sum = rundir.Summary{}
	LedgerResult{Verified: true, KeysToRead: 6, KeysRead: 5}.Apply(&sum)
	if sum.Verified || sum.VerifyError != "read back 5 of 6 keys" {
		t.Errorf("inconsistent result applied as %+v", sum)
	}
}

// A restore from a snapshot taken from 100ms to 200ms, all lost at 500ms,
// the restored cluster writing again from 800ms: writes before the
// snapshot must survive, writes after it are the RPO (gone), writes during
// it may go either way, writes after the restore must survive.
func TestCheckLedgerRestored(t *testing.T) {
	rp := &RestorePoint{SnapshotStarted: ledgerAt(100), SnapshotEnded: ledgerAt(200), Loss: ledgerAt(500)}
	entries := []rundir.LedgerEntry{
		// In the snapshot, untouched since.
		wr("kept", 1, "a", 0, 10),
		// v2 acked after the snapshot: the RPO; the restored key is at v1.
		wr("rpo", 1, "a", 0, 10), wr("rpo", 2, "b", 290, 300),
		// v2 during the snapshot (it made it), v3 after it (gone).
		wr("inflight", 1, "a", 0, 10), wr("inflight", 2, "b", 140, 150), wr("inflight", 3, "c", 390, 400),
		// v2 after the snapshot (gone), then the restored cluster writes
		// v2 again with another value: not a duplicate, the RPO.
		wr("reused", 1, "a", 0, 10), wr("reused", 2, "b", 300, 310), wr("reused", 2, "z", 800, 810),
		// Acknowledged before the snapshot and missing: a lost write.
		wr("bug", 1, "a", 0, 10), wr("bug", 2, "b", 40, 50),
	}
	s := &store{
		latest: map[string]KeyState{
			"kept":     {Found: true, Version: 1, Digest: "a"},
			"rpo":      {Found: true, Version: 1, Digest: "a"},
			"inflight": {Found: true, Version: 2, Digest: "b"},
			"reused":   {Found: true, Version: 2, Digest: "z"},
			"bug":      {Found: true, Version: 1, Digest: "a"},
		},
		versions: map[string]map[int]KeyState{
			"rpo":      {1: {Digest: "a"}},
			"inflight": {1: {Digest: "a"}, 2: {Digest: "b"}},
			"reused":   {1: {Digest: "a"}, 2: {Digest: "z"}},
			"bug":      {1: {Digest: "a"}},
		},
	}
	res, err := CheckLedger(context.Background(), entries, s.read, LedgerOptions{Parallel: 2, MaxVersions: 10, Restore: rp})
	if err != nil {
		t.Fatal(err)
	}
	r := res.RPO
	if r == nil {
		t.Fatal("no RPO with a restore point")
	}
	if r.BeforeSnapshot != 6 || r.InFlight != 1 || r.InFlightPresent != 1 || r.AfterSnapshot != 3 || r.AfterPresent != 0 {
		t.Errorf("RPO %+v: want 6 before, 1 in flight (present), 3 after (none present)", *r)
	}
	if !r.LastLost.Equal(ledgerAt(400)) {
		t.Errorf("last lost write acknowledged at %v, want 400ms", r.LastLost)
	}
	if res.LostWrites != 1 || len(res.Lost) != 1 || res.Lost[0].Key != "bug" {
		t.Errorf("lost %d %+v: want only bug's v2 (acknowledged before the snapshot)", res.LostWrites, res.Lost)
	}
	if res.DuplicateVersions != 0 {
		t.Errorf("%d duplicate versions: a version reused after a restore is not one", res.DuplicateVersions)
	}
	if !res.Verified {
		t.Errorf("not verified: %s", res.VerifyError)
	}
	// The same ledger judged without the restore point calls the RPO lost.
	plain, _ := CheckLedger(context.Background(), entries, s.read, LedgerOptions{Parallel: 2, MaxVersions: 10})
	if plain.LostWrites <= res.LostWrites {
		t.Errorf("without the restore point %d lost, with it %d: the restore point changes nothing?", plain.LostWrites, res.LostWrites)
	}
}
