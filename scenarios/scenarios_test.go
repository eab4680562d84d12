package scenarios

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/load"
)

var wantShipped = []string{"baseline", "disk-loss", "follower-kill", "leader-kill", "partition-leader",
	"pause-leader", "quorum-loss", "rollback", "rolling-restart", "slow-follower", "snapshot-under-load", "spot-reclaim", "spot-wave",
	"total-loss-restore", "upgrade", "zone-outage"}

func TestShippedScenarios(t *testing.T) {
	if got := shippedNames(); !reflect.DeepEqual(got, wantShipped) {
		t.Fatalf("shipped = %v, want %v", got, wantShipped)
	}
	for _, name := range wantShipped {
		t.Run(name, func(t *testing.T) {
			sc, err := LoadShipped(name)
			if err != nil {
				t.Fatal(err)
			}
			if sc.Name != name {
				t.Errorf("name = %q, want the file's name %q", sc.Name, name)
			}
			if len(sc.Description) < 40 || strings.Contains(sc.Description, "\n") {
				t.Errorf("description should be one informative line, got %q", sc.Description)
			}
			if name != "quorum-loss" && len(sc.Warnings) > 0 {
				t.Errorf("warnings: %v", sc.Warnings)
			}
			lw := sc.Expect.LostWrites
			switch {
			case name == "quorum-loss" && lw != nil:
				t.Errorf("quorum-loss must report lost writes, not bound them")
			case name != "quorum-loss" && (lw == nil || *lw != 0):
				t.Errorf("every scenario but quorum-loss expects lost_writes = 0")
			}
			if name != "baseline" && len(sc.Faults) == 0 && sc.Snapshots == nil {
				t.Errorf("no fault and no snapshots: nothing but the baseline")
			}
			if sc.Cluster.Nodes != 5 || sc.Cluster.Zones != 3 {
				t.Errorf("cluster = %+v", sc.Cluster)
			}
			if e := sc.Expect.LeaderWithin; e != nil && *e < 2*sc.Cluster.ElectionTimeout() {
				t.Errorf("leader_within %s is below two election timeouts (%s): raft cannot do it", *e, 2*sc.Cluster.ElectionTimeout())
			}
			roundTrip(t, sc)
			for _, f := range []float64{0.5, 0.1, 0.05, 0.01} {
				s2, err := sc.Scale(f)
				if err != nil {
					t.Fatal(err)
				}
				roundTrip(t, s2)
			}
		})
	}
	sc, _ := LoadShipped("quorum-loss")
	if len(sc.Faults) != 2 || sc.Faults[1].Kind != KindRecoverQuorum || sc.Faults[0].Count != 3 {
		t.Errorf("quorum-loss faults = %+v", sc.Faults)
	}
}

// roundTrip checks that HCL() writes a file Parse reads back to the same
// scenario: scenario.hcl in a run directory must be re-runnable.
func roundTrip(t *testing.T, sc *Scenario) {
	t.Helper()
	src := sc.HCL()
	back, err := Parse("roundtrip.hcl", src)
	if err != nil {
		t.Fatalf("written scenario does not parse: %v\n%s", err, src)
	}
	a, b := *sc, *back
	for _, s := range []*Scenario{&a, &b} {
		s.File, s.Warnings, s.TimeScale, s.ScaleNotes = "", nil, 0, nil
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("round trip differs:\n%+v\n%+v\n%s", a, b, src)
	}
}

func TestLoad(t *testing.T) {
	sc, err := Load("leader-kill")
	if err != nil || sc.File != "shipped:leader-kill" {
		t.Fatalf("Load(leader-kill) = %v, %v", sc, err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "mine.hcl")
	src, _ := Source("pause-leader")
	if err := os.WriteFile(p, []byte(strings.Replace(string(src), `name        = "pause-leader"`, "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, err = Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Name != "mine" || sc.File != p {
		t.Errorf("name %q file %q: the name defaults to the file's stem", sc.Name, sc.File)
	}
	if _, err := Load("no-such-scenario"); err == nil || !strings.Contains(err.Error(), "leader-kill") {
		t.Errorf("unknown name should list the shipped ones: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.hcl")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file: %v", err)
	}
}

func TestDefaultsAndZones(t *testing.T) {
	sc, err := Parse("t.hcl", []byte(`load { duration = "1m" }`))
	if err != nil {
		t.Fatal(err)
	}
	c := sc.Cluster
	if c.Nodes != 5 || c.Provider != "process" || c.Storage != "raid0" || c.DisksPerNode != 2 || c.Zones != 3 || c.DiskSize != 256<<20 {
		t.Errorf("cluster defaults: %+v", c)
	}
	l := sc.Load
	if l.Rate != 100 || l.Mix != load.DefaultMix || l.Distribution != load.Uniform || l.Keys != 1000 || l.Target != "active" || l.Duration != time.Minute || l.RampFrom != 100 || l.LateThreshold != 10*time.Millisecond {
		t.Errorf("load defaults: %+v", l)
	}
	if sc.Name != "t" {
		t.Errorf("name = %q", sc.Name)
	}
	var spread []int
	for _, z := range c.ZoneNames() {
		spread = append(spread, len(c.ZoneNodes(z)))
	}
	if !reflect.DeepEqual(spread, []int{2, 2, 1}) {
		t.Errorf("5 nodes over 3 zones = %v, want 2/2/1", spread)
	}
	if c.ZoneOf(1) != "zone-a" || c.ZoneOf(3) != "zone-c" || c.ZoneOf(4) != "zone-a" {
		t.Errorf("zones are dealt round-robin")
	}
	if c.Quorum() != 3 || c.ElectionTimeout() != 5*time.Second {
		t.Errorf("quorum %d, election timeout %s", c.Quorum(), c.ElectionTimeout())
	}
}

func TestFaultFields(t *testing.T) {
	src := `
cluster { nodes = 5 }
load {
  duration = "10m"
  mix = "read=60, write=30, delete=10"
  value_size = "1KiB"
  rate = 50
  ramp_from = 10
  ramp = "1m"
  tick = "5ms"
}
fault "kill" {
  at = "10s"
  target = "follower"
  count = 2
  restart_after = "5s"
}
fault "spot_reclaim" {
  at = "20s"
  target = "node3"
}
fault "latency" {
  at = "1m"
  target = "zone-b"
  delay = "100ms"
  jitter = "10ms"
  loss = 0.5
  duration = "30s"
}
fault "zone_outage" {
  at = "2m"
  zone = "zone-c"
  replace = false
}
fault "partition" {
  at = "3m"
  target = "leader"
  duration = "20s"
  isolate = true
}
`
	sc, err := Parse("f.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	f := sc.Faults
	if len(f) != 5 {
		t.Fatalf("faults: %+v", f)
	}
	if f[0].Index != 1 || f[0].Target.Kind != TargetFollower || f[0].Count != 2 || !f[0].Restart || f[0].RestartAfter != 5*time.Second {
		t.Errorf("kill: %+v", f[0])
	}
	if f[1].Target != (Target{Kind: TargetNode, Name: "node3"}) || f[1].Notice != 2*time.Minute || !f[1].Replace || f[1].ReplaceAfter != 30*time.Second {
		t.Errorf("spot: %+v", f[1])
	}
	if f[1].End() != 20*time.Second+2*time.Minute {
		t.Errorf("spot end %s", f[1].End())
	}
	if f[2].Target != (Target{Kind: TargetZone, Name: "zone-b"}) || f[2].Count != 2 || f[2].Loss != 0.5 || f[2].Delay != 100*time.Millisecond {
		t.Errorf("latency: %+v", f[2])
	}
	if f[3].Zone != "zone-c" || f[3].Count != 1 || f[3].Replace {
		t.Errorf("zone: %+v", f[3])
	}
	if !f[4].Isolate || f[4].Duration != 20*time.Second {
		t.Errorf("partition isolate: %+v", f[4])
	}
	if sc.Load.Mix.String() != "read=60,write=30,delete=10" || sc.Load.ValueSize != 1024 || sc.Load.RampFrom != 10 || sc.Load.Tick != 5*time.Millisecond {
		t.Errorf("load: %+v", sc.Load)
	}
	roundTrip(t, sc)
}

func TestScale(t *testing.T) {
	sc, err := LoadShipped("spot-reclaim")
	if err != nil {
		t.Fatal(err)
	}
	s2, err := sc.Scale(0.1)
	if err != nil {
		t.Fatal(err)
	}
	f := s2.Faults[0]
	if s2.Load.Duration != 36*time.Second || f.At != 6*time.Second || f.Notice != 12*time.Second || f.ReplaceAfter != 3*time.Second {
		t.Errorf("scaled: load %s, at %s notice %s replace %s", s2.Load.Duration, f.At, f.Notice, f.ReplaceAfter)
	}
	if *s2.Expect.HealedWithin != MinHealedReplace {
		t.Errorf("healed_within %s should stop at the autopilot floor %s", *s2.Expect.HealedWithin, MinHealedReplace)
	}
	if *s2.Expect.LeaderWithin != 10*time.Second {
		t.Errorf("leader_within is bound by raft timers and must not scale")
	}
	if sc.Faults[0].At != time.Minute || *sc.Expect.HealedWithin != 150*time.Second {
		t.Errorf("Scale changed the original")
	}
	if s2.TimeScale != 0.1 || len(s2.ScaleNotes) == 0 {
		t.Errorf("scale %g notes %v", s2.TimeScale, s2.ScaleNotes)
	}

	pl, _ := LoadShipped("pause-leader")
	p2, _ := pl.Scale(0.01)
	// 3 × election timeout + promotion is 8s; the file expects a leader
	// within 10s, so the pause must last that long for a slow election to
	// land inside it.
	if d, want := p2.Faults[0].Duration, 10*time.Second; d != want {
		t.Errorf("pause duration scaled to %s, want leader_within %s (above the 3 × election timeout + promotion floor %s)", d, want, 3*time.Second+PromotionSlack)
	}
	pl.Expect.LeaderWithin = nil
	if p3, _ := pl.Scale(0.01); p3.Faults[0].Duration != 3*time.Second+PromotionSlack {
		t.Errorf("without leader_within the pause scaled to %s, want %s", p3.Faults[0].Duration, 3*time.Second+PromotionSlack)
	}
	if p2.Faults[0].At != MinFaultAt {
		t.Errorf("at %s, want floor %s", p2.Faults[0].At, MinFaultAt)
	}
	// The floored pause would end 1s before the 10s load floor; the load
	// is lengthened so the recovery after it is measured under load too.
	if want := p2.Faults[0].At + p2.Faults[0].Duration + MinFaultAt; p2.Load.Duration != want {
		t.Errorf("load %s, want %s (pause end + %s)", p2.Load.Duration, want, MinFaultAt)
	}

	// A floor never raises a duration above what the file says.
	short, err := Parse("s.hcl", []byte(`
cluster { performance_multiplier = 1 }
load { duration = "1m" }
fault "pause" {
  at = "1s"
  target = "leader"
  duration = "500ms"
}`))
	if err != nil {
		t.Fatal(err)
	}
	s3, _ := short.Scale(0.1)
	if s3.Faults[0].Duration != 500*time.Millisecond || s3.Faults[0].At != time.Second {
		t.Errorf("short pause: %+v", s3.Faults[0])
	}
	for _, bad := range []float64{0, -1, 1000} {
		if _, err := sc.Scale(bad); err == nil {
			t.Errorf("Scale(%g) accepted", bad)
		}
	}
}

func TestSeed(t *testing.T) {
	sc, _ := Parse("s.hcl", []byte(`
seed = 42
load { duration = "1m" }`))
	if sc.Seed != 42 {
		t.Fatalf("seed %d", sc.Seed)
	}
	a, b := sc.Rand().IntN(1000000), sc.Rand().IntN(1000000)
	if a != b {
		t.Errorf("same seed, different choices")
	}
	sc.Seed = 43
	if sc.Rand().IntN(1000000) == a {
		t.Errorf("seed ignored")
	}
}

func TestWarnings(t *testing.T) {
	sc, err := Parse("w.hcl", []byte(`
load { duration = "5m" }
fault "spot_reclaim" {
  at = "1m"
  target = "random"
  count = 3
}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Warnings) != 1 || !strings.Contains(sc.Warnings[0], "w.hcl:3:1:") || !strings.Contains(sc.Warnings[0], "recover_quorum") {
		t.Errorf("warnings: %q", sc.Warnings)
	}
}

var posRE = regexp.MustCompile(`^([^:\s]+):(\d+):(\d+): `)

// TestMalformed feeds broken scenarios and checks each error names the
// file:line:col of the offending value and the field.
const okLoad = "load { duration = \"2m\" }\n"

var malformed = []struct {
	name, src string
	pos       string // "line:col" of the first error
	want      []string
}{
	{"syntax", "load {\n  duration = \n}", "2:14", []string{"Invalid expression"}},
	{"unclosed", "load {\n duration = \"1m\"\n", "", []string{"Unclosed"}},
	{"unknown top attr", okLoad + "nmae = \"x\"\n", "2:1", []string{`"nmae"`, `Did you mean "name"?`}},
	{"unknown block", okLoad + "clster {}\n", "2:1", []string{`clster`, `cluster`}},
	{"unknown cluster attr", "cluster {\n  node = 5\n}\n" + okLoad, "2:3", []string{`"node"`, "nodes"}},
	{"even nodes", "cluster {\n  nodes = 4\n}\n" + okLoad, "2:11", []string{`"nodes"`, "odd"}},
	{"zero nodes", "cluster {\n  nodes = 0\n}\n" + okLoad, "2:11", []string{`"nodes"`, "between 1"}},
	{"fractional nodes", "cluster {\n  nodes = 2.5\n}\n" + okLoad, "2:11", []string{`"nodes"`, "whole number"}},
	{"string nodes", "cluster {\n  nodes = \"five\"\n}\n" + okLoad, "2:11", []string{`"nodes"`, "number is required, got string"}},
	{"provider", "cluster {\n  provider = \"dokcer\"\n}\n" + okLoad, "2:14", []string{`"provider"`, `Did you mean "docker"?`}},
	{"storage", "cluster {\n  storage = \"raid1\"\n}\n" + okLoad, "2:13", []string{`"storage"`, "raid0"}},
	{"raid0 one disk", "cluster {\n  disks_per_node = 1\n}\n" + okLoad, "2:20", []string{`"disks_per_node"`}},
	{"disk_size unit", "cluster {\n  disk_size = \"10 parsecs\"\n}\n" + okLoad, "2:15", []string{`"disk_size"`, "not a size"}},
	{"disk_size tiny", "cluster {\n  disk_size = \"1MiB\"\n}\n" + okLoad, "2:15", []string{`"disk_size"`, "between 16MiB"}},
	{"zones > nodes", "cluster {\n  nodes = 3\n  zones = 5\n}\n" + okLoad, "3:11", []string{`"zones"`, "exceed"}},
	{"version", "cluster {\n  vault_version = \"latest\"\n}\n" + okLoad, "2:19", []string{`"vault_version"`}},
	{"version and bin", "cluster {\n  vault_version = \"1.21.0\"\n  vault_bin = \"/bin/vault\"\n}\n" + okLoad, "3:15", []string{`"vault_bin"`, "not both"}},
	{"perf multiplier", "cluster {\n  performance_multiplier = 11\n}\n" + okLoad, "2:28", []string{`"performance_multiplier"`}},
	{"nested block", "cluster {\n  disk {\n  }\n}\n" + okLoad, "2:3", []string{`"disk"`}},
	{"duplicate cluster", "cluster {}\ncluster {}\n" + okLoad, "2:1", []string{"Duplicate cluster block", "1:1"}},
	{"no load", "name = \"x\"\n", "1:1", []string{"load", "duration"}},
	{"load no duration", "load {\n  rate = 5\n}\n", "1:1", []string{`"duration"`}},
	{"duration number", "load {\n  duration = 30\n}\n", "2:14", []string{`"duration"`, `"30s"`}},
	{"duration negative", "load {\n  duration = \"-5s\"\n}\n", "2:14", []string{`"duration"`, "negative"}},
	{"duration garbage", "load {\n  duration = \"soon\"\n}\n", "2:14", []string{`"duration"`, "not a duration"}},
	{"duration huge", "load {\n  duration = \"9999h\"\n}\n", "2:14", []string{`"duration"`, "at most"}},
	{"rate zero", "load {\n  duration = \"1m\"\n  rate = 0\n}\n", "3:10", []string{`"rate"`, "above 0"}},
	{"rate string", "load {\n  duration = \"1m\"\n  rate = \"fast\"\n}\n", "3:10", []string{`"rate"`, "number"}},
	{"mix op", "load {\n  duration = \"1m\"\n  mix = \"raed=80,write=20\"\n}\n", "3:9", []string{`"mix"`, `"read"`}},
	{"mix zero", "load {\n  duration = \"1m\"\n  mix = \"read=0\"\n}\n", "3:9", []string{`"mix"`, "all weights are zero"}},
	{"mix dup", "load {\n  duration = \"1m\"\n  mix = \"read=1,read=2\"\n}\n", "3:9", []string{`"mix"`, "twice"}},
	{"load target", "load {\n  duration = \"1m\"\n  target = \"node9\"\n}\n", "3:12", []string{`"target"`, "node1…node5"}},
	{"ramp too long", "load {\n  duration = \"1m\"\n  ramp = \"2m\"\n}\n", "3:10", []string{`"ramp"`}},
	{"ramp_from alone", "load {\n  duration = \"1m\"\n  ramp_from = 1\n}\n", "3:15", []string{`"ramp_from"`, "ramp"}},
	{"workers and rate", "load {\n  duration = \"1m\"\n  workers = 4\n  rate = 10\n}\n", "3:13", []string{`"workers"`}},
	{"mount", "load {\n  duration = \"1m\"\n  mount = \"/kv/\"\n}\n", "3:11", []string{`"mount"`}},
	{"value_size", "load {\n  duration = \"1m\"\n  value_size = \"1GiB\"\n}\n", "3:16", []string{`"value_size"`}},
	{"tick", "load {\n  duration = \"1m\"\n  tick = \"2s\"\n}\n", "3:10", []string{`"tick"`, "at most 1s"}},
	{"distribution", "load {\n  duration = \"1m\"\n  distribution = \"zipfain\"\n}\n", "3:18", []string{`"distribution"`, "zipfian"}},
	{"unknown kind", okLoad + "fault \"kil\" {\n  at = \"1s\"\n}\n", "2:7", []string{"kil", `Did you mean "kill"?`}},
	{"no kind label", okLoad + "fault {\n  at = \"1s\"\n}\n", "2:7", []string{"label"}},
	{"fault missing at", okLoad + "fault \"kill\" {\n  target = \"leader\"\n}\n", "2:14", []string{`"at"`, `fault "kill"`}},
	{"fault missing target", okLoad + "fault \"kill\" {\n  at = \"1s\"\n}\n", "2:14", []string{`"target"`}},
	{"field of other kind", okLoad + "fault \"kill\" {\n  at = \"1s\"\n  target = \"leader\"\n  duration = \"5s\"\n}\n", "5:3", []string{`"duration"`, "restart_after"}},
	{"at beyond load", okLoad + "fault \"kill\" {\n  at = \"5m\"\n  target = \"leader\"\n}\n", "3:8", []string{`"at"`, "before the end of the load"}},
	{"at negative", okLoad + "fault \"kill\" {\n  at = \"-1s\"\n  target = \"leader\"\n}\n", "3:8", []string{`"at"`, "negative"}},
	{"target missing node", okLoad + "fault \"kill\" {\n  at = \"1s\"\n  target = \"node6\"\n}\n", "4:12", []string{`"target"`, `"node6"`, "5-node"}},
	{"target missing zone", okLoad + "fault \"kill\" {\n  at = \"1s\"\n  target = \"zone-d\"\n}\n", "4:12", []string{`"target"`, "zone-a…zone-c"}},
	{"target typo", okLoad + "fault \"kill\" {\n  at = \"1s\"\n  target = \"leadr\"\n}\n", "4:12", []string{`"target"`, `Did you mean "leader"?`}},
	{"target number", okLoad + "fault \"kill\" {\n  at = \"1s\"\n  target = 3\n}\n", "4:12", []string{`"target"`, "string is required"}},
	{"count leader", okLoad + "fault \"kill\" {\n  at = \"1s\"\n  target = \"leader\"\n  count = 2\n}\n", "5:11", []string{`"count"`}},
	{"count followers", okLoad + "fault \"kill\" {\n  at = \"1s\"\n  target = \"follower\"\n  count = 5\n}\n", "5:11", []string{`"count"`, "between 1 and 4"}},
	{"pause no duration", okLoad + "fault \"pause\" {\n  at = \"1s\"\n  target = \"leader\"\n}\n", "2:15", []string{`"duration"`}},
	{"pause zero", okLoad + "fault \"pause\" {\n  at = \"1s\"\n  target = \"leader\"\n  duration = \"0s\"\n}\n", "5:14", []string{`"duration"`}},
	{"restart_after neg", okLoad + "fault \"stop\" {\n  at = \"1s\"\n  target = \"leader\"\n  restart_after = \"-2s\"\n}\n", "5:19", []string{`"restart_after"`}},
	{"zone bad", okLoad + "fault \"zone_outage\" {\n  at = \"1s\"\n  zone = \"zone-z\"\n}\n", "4:10", []string{`"zone"`}},
	{"zone missing", okLoad + "fault \"zone_outage\" {\n  at = \"1s\"\n}\n", "2:21", []string{`"zone"`}},
	{"disk index", okLoad + "fault \"disk_loss\" {\n  at = \"1s\"\n  target = \"node1\"\n  disk = 2\n}\n", "5:10", []string{`"disk"`, "0 to 1"}},
	{"disk_loss on dir", "cluster {\n  storage = \"dir\"\n}\n" + okLoad + "fault \"disk_loss\" {\n  at = \"1s\"\n  target = \"node1\"\n}\n", "6:8", []string{"raid0"}},
	{"latency jitter", okLoad + "fault \"latency\" {\n  at = \"1s\"\n  target = \"node1\"\n  delay = \"10ms\"\n  jitter = \"20ms\"\n  duration = \"5s\"\n}\n", "6:12", []string{`"jitter"`}},
	{"latency loss", okLoad + "fault \"latency\" {\n  at = \"1s\"\n  target = \"node1\"\n  loss = 120\n  duration = \"5s\"\n}\n", "5:10", []string{`"loss"`}},
	{"latency nothing", okLoad + "fault \"latency\" {\n  at = \"1s\"\n  target = \"node1\"\n  duration = \"5s\"\n}\n", "2:1", []string{`"delay"`}},
	{"rolling signal", okLoad + "fault \"rolling_restart\" {\n  at = \"1s\"\n  signal = \"hup\"\n}\n", "4:12", []string{`"signal"`}},
	{"wait_healthy type", okLoad + "fault \"rolling_restart\" {\n  at = \"1s\"\n  wait_healthy = \"yes\"\n}\n", "4:18", []string{`"wait_healthy"`, "true or false"}},
	{"order", okLoad + "fault \"kill\" {\n  at = \"30s\"\n  target = \"leader\"\n}\nfault \"kill\" {\n  at = \"10s\"\n  target = \"leader\"\n}\n", "7:8", []string{`"at"`, "order"}},
	{"recover too early", "load {\n  duration = \"5m\"\n}\nfault \"spot_reclaim\" {\n  at = \"10s\"\n  target = \"random\"\n  count = 3\n  notice = \"1m\"\n}\nfault \"recover_quorum\" {\n  at = \"20s\"\n}\n", "11:8", []string{`"at"`, "before fault 1"}},
	{"expect unknown", okLoad + "expect {\n  lost_write = 0\n}\n", "3:3", []string{`"lost_write"`, "lost_writes"}},
	{"expect negative", okLoad + "expect {\n  lost_writes = -1\n}\n", "3:17", []string{`"lost_writes"`}},
	{"expect voters", okLoad + "expect {\n  min_voters_after = 7\n}\n", "3:22", []string{`"min_voters_after"`, "between 1 and 5"}},
	{"expect duration", okLoad + "expect {\n  healed_within = 60\n}\n", "3:19", []string{`"healed_within"`}},
	{"expect zero", okLoad + "expect {\n  leader_within = \"0s\"\n}\n", "3:19", []string{`"leader_within"`}},
	{"variable", "load {\n  duration = var.d\n}\n", "2:14", []string{"Variables not allowed"}},
	{"function", "load {\n  duration = upper(\"1m\")\n}\n", "2:14", []string{"Function calls not allowed"}},
	{"null", "load {\n  duration = null\n}\n", "2:14", []string{`"duration"`, "null"}},
	{"name", "name = \"../../etc\"\n" + okLoad, "1:8", []string{`"name"`}},
	{"seed", "seed = -1\n" + okLoad, "1:8", []string{`"seed"`}},
	{"list value", "load {\n  duration = [\"1m\"]\n}\n", "2:14", []string{`"duration"`, "tuple"}},

	// snapshots
	{"snapshots no interval", okLoad + "snapshots {\n  retain = 3\n}\n", "2:11", []string{`"interval"`, "snapshots"}},
	{"snapshots interval short", okLoad + "snapshots {\n  interval = \"500ms\"\n}\n", "3:14", []string{`"interval"`, "at least 1s"}},
	{"snapshots interval number", okLoad + "snapshots {\n  interval = 30\n}\n", "3:14", []string{`"interval"`, `"30s"`}},
	{"snapshots misspelt", okLoad + "snapshots {\n  interval = \"30s\"\n  retian = 3\n}\n", "4:3", []string{`"retian"`, `Did you mean "retain"?`, "snapshots takes: interval, retain, store"}},
	{"snapshots retain", okLoad + "snapshots {\n  interval = \"30s\"\n  retain = 0\n}\n", "4:12", []string{`"retain"`, "between 1 and 1000"}},
	{"snapshots twice", okLoad + "snapshots {\n  interval = \"30s\"\n}\nsnapshots {\n  interval = \"30s\"\n}\n", "5:1", []string{"Duplicate snapshots block"}},
	{"store gs", okLoad + "snapshots {\n  interval = \"30s\"\n  store = \"gs://b\"\n}\n", "4:11", []string{`"store"`, "not supported"}},
	{"store relative", okLoad + "snapshots {\n  interval = \"30s\"\n  store = \"file://backups\"\n}\n", "4:11", []string{`"store"`, "absolute path"}},
	{"store no bucket", okLoad + "snapshots {\n  interval = \"30s\"\n  store = \"s3://?region=x\"\n}\n", "4:11", []string{`"store"`, "bucket"}},
	{"store s3 path", okLoad + "snapshots {\n  interval = \"30s\"\n  store = \"s3://bkt/dir\"\n}\n", "4:11", []string{`"store"`, `"/dir"`}},
	{"store path", okLoad + "snapshots {\n  interval = \"30s\"\n  store = \"/var/backups\"\n}\n", "4:11", []string{`"store"`, `Did you mean "file:///var/backups"?`}},
	{"store scheme typo", okLoad + "snapshots {\n  interval = \"30s\"\n  store = \"s4://bkt\"\n}\n", "4:11", []string{`"store"`, `Did you mean "s3://"?`}},

	// total_loss, restore
	{"total_loss target", "load {\n  duration = \"5m\"\n}\nfault \"total_loss\" {\n  at = \"1m\"\n  target = \"leader\"\n}\n", "6:3", []string{`"target"`, `fault "total_loss" takes: at.`}},
	{"restore no snapshots", "load {\n  duration = \"5m\"\n}\nfault \"total_loss\" {\n  at = \"1m\"\n}\nfault \"restore\" {\n  at = \"2m\"\n}\n", "7:1", []string{"Restore without snapshots"}},
	{"restore no loss", "load {\n  duration = \"5m\"\n}\nsnapshots {\n  interval = \"10s\"\n}\nfault \"restore\" {\n  at = \"2m\"\n}\n", "7:1", []string{"Restore without a total loss", "total_loss"}},
	{"restore twice", "load {\n  duration = \"5m\"\n}\nsnapshots {\n  interval = \"10s\"\n}\nfault \"total_loss\" {\n  at = \"1m\"\n}\nfault \"restore\" {\n  at = \"2m\"\n}\nfault \"restore\" {\n  at = \"3m\"\n}\n", "13:1", []string{"Restore without a total loss"}},
	{"restore snapshot retain", "load {\n  duration = \"5m\"\n}\nsnapshots {\n  interval = \"10s\"\n  retain = 3\n}\nfault \"total_loss\" {\n  at = \"1m\"\n}\nfault \"restore\" {\n  at = \"2m\"\n  snapshot = 3\n}\n", "13:14", []string{`"snapshot"`, "retain = 3"}},
	{"restore snapshot negative", "load {\n  duration = \"5m\"\n}\nsnapshots {\n  interval = \"10s\"\n}\nfault \"total_loss\" {\n  at = \"1m\"\n}\nfault \"restore\" {\n  at = \"2m\"\n  snapshot = -1\n}\n", "12:14", []string{`"snapshot"`, "between 0 and"}},
	{"restore timeout zero", "load {\n  duration = \"5m\"\n}\nsnapshots {\n  interval = \"10s\"\n}\nfault \"total_loss\" {\n  at = \"1m\"\n}\nfault \"restore\" {\n  at = \"2m\"\n  timeout = \"0s\"\n}\n", "12:13", []string{`"timeout"`, "above 0s"}},
	{"fault while all gone", "load {\n  duration = \"5m\"\n}\nsnapshots {\n  interval = \"10s\"\n}\nfault \"total_loss\" {\n  at = \"1m\"\n}\nfault \"kill\" {\n  at = \"90s\"\n  target = \"leader\"\n}\nfault \"restore\" {\n  at = \"2m\"\n}\n", "11:8", []string{`"at"`, "every node is gone since fault 1"}},

	// upgrade
	{"upgrade no version", okLoad + "fault \"upgrade\" {\n  at = \"10s\"\n}\n", "2:17", []string{`"to_version"`, `"to_bin"`}},
	{"upgrade both", okLoad + "fault \"upgrade\" {\n  at = \"10s\"\n  to_version = \"1.21.0\"\n  to_bin = \"/bin/vault\"\n}\n", "5:12", []string{`"to_bin"`, "not both"}},
	{"upgrade version", okLoad + "fault \"upgrade\" {\n  at = \"10s\"\n  to_version = \"next\"\n}\n", "4:16", []string{`"to_version"`, "Vault release"}},
	{"upgrade empty bin", okLoad + "fault \"upgrade\" {\n  at = \"10s\"\n  to_bin = \"\"\n}\n", "4:12", []string{`"to_bin"`, "empty"}},
	{"upgrade count", okLoad + "fault \"upgrade\" {\n  at = \"10s\"\n  to_version = \"1.21.0\"\n  count = 6\n}\n", "5:11", []string{`"count"`, "between 0 and 5"}},
	{"upgrade step_down", okLoad + "fault \"upgrade\" {\n  at = \"10s\"\n  to_version = \"1.21.0\"\n  step_down = \"yes\"\n}\n", "5:15", []string{`"step_down"`, "true or false"}},
	{"upgrade target", okLoad + "fault \"upgrade\" {\n  at = \"10s\"\n  to_version = \"1.21.0\"\n  target = \"leader\"\n}\n", "5:3", []string{`"target"`, "to_version, to_bin, count, step_down, pause_between, timeout"}},
	{"full rollback", "cluster {\n  vault_version = \"1.21.0\"\n}\n" + okLoad + "fault \"upgrade\" {\n  at = \"10s\"\n  to_version = \"1.19.5\"\n}\n", "7:16", []string{`"to_version"`, "newer version to an older one", "count below 5"}},
	{"full rollback count", "cluster {\n  vault_version = \"1.19.5\"\n}\n" + okLoad + "fault \"upgrade\" {\n  at = \"10s\"\n  to_version = \"1.21.0\"\n}\nfault \"upgrade\" {\n  at = \"1m\"\n  to_version = \"1.19.5\"\n  count = 5\n}\n", "12:11", []string{`"count"`, "from 1.21.0 back to 1.19.5"}},

	// expect
	{"rpo without restore", okLoad + "expect {\n  rpo_writes = 10\n}\n", "3:16", []string{`"rpo_writes"`, `fault "restore"`}},
	{"rpo negative", okLoad + "expect {\n  rpo_writes = -1\n}\n", "3:16", []string{`"rpo_writes"`, "between 0"}},
	{"rto without restore", okLoad + "expect {\n  rto = \"1m\"\n}\n", "3:9", []string{`"rto"`, `fault "restore"`}},
	{"rto within gap", "load {\n  duration = \"5m\"\n}\nsnapshots {\n  interval = \"10s\"\n}\nfault \"total_loss\" {\n  at = \"1m\"\n}\nfault \"restore\" {\n  at = \"2m\"\n}\nexpect {\n  rto = \"30s\"\n}\n", "14:9", []string{`"rto"`, "longer than the 1m0s from the total loss"}},
	{"snapshot_p99 no snapshots", okLoad + "expect {\n  snapshot_p99 = \"1s\"\n}\n", "3:18", []string{`"snapshot_p99"`, "snapshots block"}},
	{"step_down_within no upgrade", okLoad + "expect {\n  step_down_within = \"10s\"\n}\n", "3:22", []string{`"step_down_within"`, `fault "upgrade"`}},
	{"seal_restart no upgrade", okLoad + "expect {\n  seal_restart = true\n}\n", "3:18", []string{`"seal_restart"`, `fault "upgrade"`}},
	{"reads_through_standbys type", okLoad + "fault \"upgrade\" {\n  at = \"10s\"\n  to_version = \"1.21.0\"\n}\nexpect {\n  reads_through_standbys = 1\n}\n", "7:28", []string{`"reads_through_standbys"`, "true or false"}},
	{"versions_after", okLoad + "expect {\n  versions_after = \"new\"\n}\n", "3:20", []string{`"versions_after"`, "Vault release"}},
}

func TestMalformed(t *testing.T) {
	for _, tc := range malformed {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.hcl", []byte(tc.src))
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.src)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error is %T, want *Error: %v", err, err)
			}
			msg := err.Error()
			for _, line := range strings.Split(msg, "\n") {
				if !posRE.MatchString(line) {
					t.Errorf("line without file:line:col: %q", line)
				}
			}
			if tc.pos != "" && !strings.HasPrefix(msg, "bad.hcl:"+tc.pos+":") {
				t.Errorf("want position bad.hcl:%s, got:\n%s", tc.pos, msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
			var sb strings.Builder
			if err := pe.Pretty(&sb, 100, false); err != nil || !strings.Contains(sb.String(), "bad.hcl") {
				t.Errorf("Pretty: %v %q", err, sb.String())
			}
		})
	}
}

func TestManyErrorsAtOnce(t *testing.T) {
	_, err := Parse("m.hcl", []byte(`
cluster {
  nodes = 4
  storage = "tape"
}
load {
  duration = "1m"
  rate = -3
}
`))
	if err == nil {
		t.Fatal("accepted")
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 3 {
		t.Errorf("want 3 errors reported together, got %d:\n%s", n, err)
	}
}

func TestSetRate(t *testing.T) {
	sc, err := Parse("r.hcl", []byte(`
load {
  rate      = 200
  ramp_from = 50
  ramp      = "10s"
  duration  = "1m"
}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.SetRate(100); err != nil {
		t.Fatal(err)
	}
	if sc.Load.Rate != 100 || sc.Load.RampFrom != 25 {
		t.Errorf("rate %g from %g, want 100 from 25 (the ramp keeps its shape)", sc.Load.Rate, sc.Load.RampFrom)
	}
	if err := sc.SetRate(0); err == nil {
		t.Errorf("a zero rate was accepted")
	}
	closed, err := Parse("c.hcl", []byte("load {\n  workers = 4\n  duration = \"1m\"\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := closed.SetRate(10); err == nil || !strings.Contains(err.Error(), "closed-loop") {
		t.Errorf("closed loop: %v", err)
	}
}
