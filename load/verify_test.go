package load

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// Verify reads the last acknowledged version by ?version=N when the store
// has a later one, and tells purged versions (unverifiable) from versions
// lost too early; a read-back that cannot run or finish is unverified.
func TestVerifyBehindLaterVersions(t *testing.T) {
	s := newStub(t)
	dir := t.TempDir()
	m, _ := ParseMix("write=1")
	if _, err := Run(context.Background(), s.target, Options{Schedule: Constant(100, time.Second), Mix: m, Keys: 10}, dir); err != nil {
		t.Fatal(err)
	}
	var cfg RunConfig
	if err := rundir.ReadJSON(dir, ConfigFile, &cfg); err != nil {
		t.Fatal(err)
	}
	keys := s.Keys(cfg.Mount)
	later := func(k string, n int) int {
		v := s.Latest(cfg.Mount, k)
		for range n {
			s.Put(cfg.Mount, k, "later")
		}
		return v
	}
	// keys[0]: acknowledged version overwritten in place, hidden under a later one.
	s.CorruptVersion(cfg.Mount, keys[0], later(keys[0], 1))
	// keys[1]: acknowledged version gone though only 1 version came after it.
	s.Purge(cfg.Mount, keys[1], later(keys[1], 1))
	// keys[2]: purged after 10 later versions, as KV v2's max_versions does.
	s.Purge(cfg.Mount, keys[2], later(keys[2], 10))
	// keys[3]: a later version, the acknowledged one intact.
	later(keys[3], 1)

	v, err := Verify(context.Background(), s.target, dir)
	if err != nil {
		t.Fatal(err)
	}
	lost := map[string]string{}
	for _, k := range v.Lost {
		lost[k.Key] = k.Reason
	}
	if len(lost) != 2 || !strings.Contains(lost[keys[0]], "holds a different value than was acknowledged (latest is") ||
		!strings.Contains(lost[keys[1]], "is gone though only 1 versions came after it (the store keeps 10)") {
		t.Errorf("lost %v", lost)
	}
	if v.Unverifiable != 1 || v.UnverifiableKeys[0].Key != keys[2] || v.Later != 1 || v.Present != 6 || !v.Verified {
		t.Errorf("unverifiable %d %+v, later %d, present %d, verified %v", v.Unverifiable, v.UnverifiableKeys, v.Later, v.Present, v.Verified)
	}

	// Cut short before it starts: unverified, with what there was to read.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	v, err = Verify(ctx, s.target, dir)
	var sum rundir.Summary
	v.Apply(&sum)
	if err == nil || sum.Verified || sum.KeysToRead != 10 || sum.KeysRead != 0 || sum.VerifyError == "" || sum.AckedWrites != v.AckedWrites || v.AckedWrites < 100 {
		t.Errorf("cancelled verify: err %v, summary verified %v, %d of %d keys, %q", err, sum.Verified, sum.KeysRead, sum.KeysToRead, sum.VerifyError)
	}
	// Not a run directory.
	v, err = Verify(context.Background(), s.target, t.TempDir())
	if err == nil || v.Verified || v.VerifyError == "" || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no run directory: err %v, %+v", err, v)
	}
}

// Verify against a cluster that does not answer returns an unverified
// result with what there was to read.
func TestVerifyUnreachable(t *testing.T) {
	s := newStub(t)
	dir := t.TempDir()
	if _, err := Run(context.Background(), s.target, Options{Schedule: Constant(50, time.Second), Keys: 10}, dir); err != nil {
		t.Fatal(err)
	}
	down := s.target
	down.Addrs = []string{"https://127.0.0.1:1"}
	v, err := Verify(context.Background(), down, dir)
	if err == nil || v.Verified || v.KeysToRead != 10 || v.VerifyError != err.Error() {
		t.Errorf("unreachable: err %v, %+v", err, v)
	}
}
