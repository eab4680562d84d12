package scenarios

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// parseExample parses a file of testdata/parse: examples of the snapshot,
// restore and upgrade syntax (not shipped scenarios).
func parseExample(t *testing.T, name string) *Scenario {
	t.Helper()
	p := filepath.Join("testdata", "parse", name)
	src, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := Parse(p, src)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	if len(sc.Warnings) > 0 {
		t.Errorf("%s: warnings %q", p, sc.Warnings)
	}
	roundTrip(t, sc)
	return sc
}

func TestTotalLossRestoreExample(t *testing.T) {
	sc := parseExample(t, "total-loss-restore.hcl")
	if sn := sc.Snapshots; sn == nil || *sn != (SnapshotSpec{Interval: 30 * time.Second, Retain: 5}) {
		t.Errorf("snapshots = %+v, want every 30s, 5 kept, store \"\" (the run directory)", sn)
	}
	f := sc.Faults
	if len(f) != 2 || f[0].Kind != KindTotalLoss || f[0].At != 3*time.Minute || f[0].Count != 5 {
		t.Fatalf("total_loss: %+v", f)
	}
	if f[1].Kind != KindRestore || f[1].At != 200*time.Second || f[1].Snapshot != 0 || f[1].Timeout != 5*time.Minute || f[1].Count != 5 {
		t.Errorf("restore: %+v", f[1])
	}
	e := sc.Expect
	if *e.RPOWrites != 2000 || *e.RPOSeconds != 45*time.Second || *e.RTO != 2*time.Minute || *e.SnapshotP99 != 500*time.Millisecond {
		t.Errorf("expect: rpo %d %s rto %s snapshot p99 %s", *e.RPOWrites, *e.RPOSeconds, *e.RTO, *e.SnapshotP99)
	}
	if !strings.Contains(string(sc.HCL()), "store    = \"file://\"") {
		t.Errorf("the default store is written as file://:\n%s", sc.HCL())
	}

	// Scale: the interval scales (floor 2s), RPO follows it, the RTO
	// moves with the loss-to-restore gap, timeouts stay.
	s2, err := sc.Scale(0.1)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, s2)
	if s2.Snapshots.Interval != 3*time.Second || *s2.Expect.RPOSeconds != 4500*time.Millisecond || *s2.Expect.RPOWrites != 200 {
		t.Errorf("scaled: interval %s, rpo %s / %d writes", s2.Snapshots.Interval, *s2.Expect.RPOSeconds, *s2.Expect.RPOWrites)
	}
	if gap := s2.Faults[1].At - s2.Faults[0].At; gap != 2*time.Second || *s2.Expect.RTO != 2*time.Minute-18*time.Second {
		t.Errorf("scaled: gap %s, rto %s; want rto moved by as much as the gap (20s -> 2s)", gap, *s2.Expect.RTO)
	}
	if s2.Faults[1].Timeout != 5*time.Minute || *s2.Expect.SnapshotP99 != 500*time.Millisecond {
		t.Errorf("scaled: a timeout or latency bound changed")
	}
	if sc.Snapshots.Interval != 30*time.Second || *sc.Expect.RTO != 2*time.Minute || *sc.Expect.RPOWrites != 2000 {
		t.Errorf("Scale changed the original")
	}
	s3, _ := sc.Scale(0.01)
	if s3.Snapshots.Interval != MinSnapshotInterval || *s3.Expect.RPOSeconds != 3*time.Second {
		t.Errorf("at 0.01: interval %s (floor %s), rpo %s (follows the interval: 45s x 2/30)", s3.Snapshots.Interval, MinSnapshotInterval, *s3.Expect.RPOSeconds)
	}
	roundTrip(t, s3)
}

func TestSnapshotsExample(t *testing.T) {
	sc := parseExample(t, "snapshots-s3.hcl")
	if sn := sc.Snapshots; sn.Interval != 10*time.Second || sn.Retain != 3 || !strings.HasPrefix(sn.Store, "s3://vault-snapshots?") {
		t.Errorf("snapshots = %+v", sn)
	}
}

func TestUpgradeExample(t *testing.T) {
	sc := parseExample(t, "upgrade.hcl")
	f := sc.Faults[0]
	if f.Kind != KindUpgrade || f.ToVersion != "1.21.0" || f.ToBin != "" || !f.StepDown || f.PauseBetween != 10*time.Second ||
		f.Count != 0 || f.Timeout != 2*time.Minute || f.Target != (Target{}) {
		t.Errorf("upgrade: %+v", f)
	}
	e := sc.Expect
	if *e.VersionsAfter != "1.21.0" || *e.StepDownWithin != 10*time.Second || !*e.ReadsThroughStandbys || !*e.SealRestart {
		t.Errorf("expect: %+v", e)
	}
	s2, _ := sc.Scale(0.1)
	roundTrip(t, s2)
	if g := s2.Faults[0]; g.PauseBetween != time.Second || g.Timeout != 2*time.Minute || *s2.Expect.StepDownWithin != 10*time.Second {
		t.Errorf("scaled: pause_between %s (scales), timeout %s and step_down_within %s (do not)", g.PauseBetween, g.Timeout, *s2.Expect.StepDownWithin)
	}

	// Defaults: step_down true, timeout per node, count 0 (every node).
	d, err := Parse("d.hcl", []byte("load { duration = \"5m\" }\nfault \"upgrade\" {\n  at = \"1m\"\n  to_bin = \"/opt/vault-new\"\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if g := d.Faults[0]; !g.StepDown || g.Timeout != DefaultNodeTimeout || g.Count != 0 || g.ToBin != "/opt/vault-new" || g.PauseBetween != 0 {
		t.Errorf("defaults: %+v", g)
	}
	roundTrip(t, d)
}

func TestRollbackExample(t *testing.T) {
	sc := parseExample(t, "rollback.hcl") // no warning: standbys go back while the active node is old
	if f := sc.Faults; len(f) != 2 || f[0].Count != 2 || f[1].ToVersion != "1.19.5" || f[1].Count != 0 || f[1].PauseBetween != 5*time.Second {
		t.Errorf("faults: %+v", f)
	}
}

func TestRestoreUpgradeWarnings(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"total loss, no restore", "load { duration = \"5m\" }\nfault \"total_loss\" {\n  at = \"1m\"\n}\n", "w.hcl:2:1: Total loss without restore"},
		{"no such snapshot yet", "load { duration = \"5m\" }\nsnapshots {\n  interval = \"1m\"\n}\nfault \"total_loss\" {\n  at = \"90s\"\n}\nfault \"restore\" {\n  at = \"2m\"\n  snapshot = 1\n}\n", "w.hcl:10:14:"},
		{"interval beyond load", "load { duration = \"1m\" }\nsnapshots {\n  interval = \"2m\"\n}\n", "no snapshot is taken while the load runs"},
		{"nothing to upgrade", "cluster {\n  vault_version = \"1.21.0\"\n}\nload { duration = \"5m\" }\nfault \"upgrade\" {\n  at = \"1m\"\n  to_version = \"1.21.0\"\n}\n", "already runs 1.21.0"},
		{"standbys behind", "cluster {\n  vault_version = \"1.21.0\"\n}\nload { duration = \"5m\" }\nfault \"upgrade\" {\n  at = \"1m\"\n  to_version = \"1.19.5\"\n  count = 2\n}\n", "a failover would go from a newer version to an older one"},
		{"pauses outlast load", "load { duration = \"1m\" }\nfault \"upgrade\" {\n  at = \"10s\"\n  to_version = \"1.21.0\"\n  pause_between = \"20s\"\n}\n", "the pauses alone last until 1m30s"},
		{"versions_after no upgrade", "load { duration = \"1m\" }\nexpect {\n  versions_after = \"1.21.0\"\n}\n", "no fault \"upgrade\""},
		{"versions_after differs", "load { duration = \"5m\" }\nfault \"upgrade\" {\n  at = \"10s\"\n  to_version = \"1.21.0\"\n}\nexpect {\n  versions_after = \"1.21.1\"\n}\n", "leaves every node on 1.21.0"},
		{"step down faster than raft", "cluster {\n  performance_multiplier = 5\n}\nload { duration = \"5m\" }\nfault \"upgrade\" {\n  at = \"10s\"\n  to_version = \"1.21.0\"\n}\nexpect {\n  step_down_within = \"2s\"\n}\n", "less than an election timeout (5s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := Parse("w.hcl", []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if len(sc.Warnings) != 1 || !strings.Contains(sc.Warnings[0], tc.want) || !posRE.MatchString(sc.Warnings[0]) {
				t.Errorf("warnings %q, want one with %q", sc.Warnings, tc.want)
			}
			roundTrip(t, sc)
		})
	}
}

func TestSnapshotStore(t *testing.T) {
	for in, want := range map[string]string{
		"":                    "",
		"file://":             "",
		"file:///var/backups": "file:///var/backups",
		"s3://bkt":            "s3://bkt",
		"s3://my.bucket-1?region=eu-west-1&endpoint=http://127.0.0.1:9000": "s3://my.bucket-1?region=eu-west-1&endpoint=http://127.0.0.1:9000",
	} {
		if got, err := snapshotStore(in); err != nil || got != want {
			t.Errorf("snapshotStore(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"file:relative":   "file:///ABSOLUTE/DIR",
		"file://host/dir": "absolute path",
		"s3://Bucket":     "bucket name",
		"s3://b":          "bucket name",
		"azblob://c":      "not supported",
		"ftp://x/y":       "s3://BUCKET",
		"backups":         "file:///ABSOLUTE/DIR",
	} {
		if _, err := snapshotStore(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("snapshotStore(%q) = %v, want an error with %q", in, err, want)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"1.19.5", "1.21.0", -1}, {"1.21.0", "1.19.5", 1}, {"v1.21.0", "1.21.0", 0}, {"1.9.0", "1.10.0", -1},
		{"1.21.0-rc1", "1.21.0", -1}, {"1.21.0", "1.21.0-rc1", 1}, {"1.21.0-rc1", "1.21.0-rc2", -1}, {"1.21.0+ent", "1.21.0", 0},
	} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compareVersions(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
