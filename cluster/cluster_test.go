package cluster_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/cluster/clustertest"
	"github.com/vaultstorm/vaultstorm/cluster/pki"
	"github.com/vaultstorm/vaultstorm/cluster/storage"
)

// TestFiveNodeCluster is the seed architecture end to end: five voters over
// TLS from the cfssl chain, RAID0 data disks, transit auto-unseal; a
// follower killed and replaced with an empty disk comes back with no human
// step and the data intact; a killed leader is replaced by a new one; down
// leaves nothing behind.
func TestFiveNodeCluster(t *testing.T) {
	c := clustertest.Start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	st := mustStatus(t, c)
	if !st.Healthy || st.Voters != 5 || st.Leader == "" {
		t.Fatalf("after up: healthy=%v voters=%d leader=%q, want a healthy cluster of 5 voters with a leader", st.Healthy, st.Voters, st.Leader)
	}
	leaders := 0
	for _, n := range st.Nodes {
		if n.State == cluster.StateLeader {
			leaders++
		}
		if !n.Voter {
			t.Errorf("%s is not a voter", n.Name)
		}
	}
	if leaders != 1 {
		t.Fatalf("%d nodes report themselves active, want exactly 1", leaders)
	}

	t.Run("tls verifies against the root alone", func(t *testing.T) {
		roots, err := pki.RootPool(c.TLSDir())
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range c.State.Nodes {
			conn, err := tls.Dial("tcp", fmt.Sprintf("%s:%d", n.IP, cluster.APIPort), &tls.Config{RootCAs: roots, ServerName: n.IP})
			if err != nil {
				t.Errorf("%s: TLS with only the root CA trusted: %v", n.Name, err)
				continue
			}
			chain := conn.ConnectionState().PeerCertificates
			conn.Close()
			if len(chain) != 2 || chain[1].Subject.CommonName != "Ogenki Intermediate CA" {
				t.Errorf("%s presents %d certificates, want leaf + intermediate", n.Name, len(chain))
			}
			// And it must not verify against anything else.
			if _, err := tls.Dial("tcp", fmt.Sprintf("%s:%d", n.IP, cluster.APIPort), &tls.Config{RootCAs: x509.NewCertPool(), ServerName: n.IP}); err == nil {
				t.Errorf("%s: handshake succeeded with an empty trust store", n.Name)
			}
		}
	})

	t.Run("data on RAID0 of two loop devices", func(t *testing.T) {
		for _, n := range c.State.Nodes {
			if n.Array.Kind != storage.BtrfsRAID0 && n.Array.Kind != storage.MDRAID0 {
				t.Errorf("%s: storage %q, want RAID0", n.Name, n.Array.Kind)
			}
			if len(n.Array.Devices) != 2 {
				t.Errorf("%s: %d devices, want 2", n.Name, len(n.Array.Devices))
			}
			src := mountSource(t, n.Array.Mount)
			if !strings.HasPrefix(src, "/dev/loop") && !strings.HasPrefix(src, "/dev/md") {
				t.Errorf("%s: %s is mounted from %q, want a loop or md device", n.Name, n.Array.Mount, src)
			}
			if n.Array.Kind == storage.BtrfsRAID0 {
				out, err := exec.Command("btrfs", "filesystem", "show", n.Array.Mount).CombinedOutput()
				if err != nil || strings.Count(string(out), "/dev/loop") != 2 {
					t.Errorf("%s: btrfs filesystem show: %v\n%s", n.Name, err, out)
				}
			}
			if _, err := os.Stat(n.Array.Mount + "/raft/raft.db"); err != nil {
				t.Errorf("%s: raft data is not on the array: %v", n.Name, err)
			}
		}
	})

	leader, _ := c.Node(st.Leader)
	lc, err := c.Client(leader)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("after a fast bring-up autopilot has the spec's stabilization time", func(t *testing.T) {
		if !c.State.Spec.FastBringUp {
			t.Fatal("the default spec no longer brings up fast: this checks nothing")
		}
		conf, err := lc.Logical().ReadWithContext(ctx, "sys/storage/raft/autopilot/configuration")
		if err != nil || conf == nil {
			t.Fatalf("autopilot configuration: %v, %v", conf, err)
		}
		got := fmt.Sprint(conf.Data["server_stabilization_time"])
		if want := c.State.Spec.StabilizationTime.String(); got != want {
			t.Errorf("server_stabilization_time %s, want the spec's %s (the bring-up's %s is for bring-up only)", got, want, cluster.BringUpStabilization)
		}
	})
	if err := lc.Sys().MountWithContext(ctx, "kv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.KVv2("kv").Put(ctx, "before", map[string]any{"v": "written before the faults"}); err != nil {
		t.Fatal(err)
	}

	t.Run("follower killed and replaced with an empty disk", func(t *testing.T) {
		var f *cluster.Node
		for _, n := range c.State.Nodes {
			if n.Name != st.Leader {
				f = n
				break
			}
		}
		oldDevices := strings.Join(f.Array.Devices, ",")
		if err := c.Kill(ctx, f); err != nil {
			t.Fatal(err)
		}
		if err := c.Replace(ctx, f); err != nil {
			t.Fatal(err)
		}
		if f.Generation != 2 || f.Array.Mount == "" {
			t.Fatalf("replacement: generation %d, mount %q", f.Generation, f.Array.Mount)
		}
		start := time.Now()
		if err := c.WaitHealthy(ctx, 5, 2*time.Minute, nil); err != nil {
			t.Fatalf("after replacing %s: %v", f.Name, err)
		}
		t.Logf("%s replaced (old disks %s, new %v): healthy again %s after start", f.Name, oldDevices, f.Array.Devices, time.Since(start).Round(time.Millisecond))
		fc, _ := c.Client(f)
		h, err := fc.Sys().HealthWithContext(ctx)
		if err != nil || h.Sealed || !h.Initialized {
			t.Fatalf("replacement %s: health %+v, %v: want unsealed with no human step", f.Name, h, err)
		}
		sec, err := fc.KVv2("kv").Get(ctx, "before")
		if err != nil || sec.Data["v"] != "written before the faults" {
			t.Fatalf("value written before the replacement: %v, %v", sec, err)
		}
	})

	t.Run("leader killed, new leader elected", func(t *testing.T) {
		old := leader
		killed := time.Now()
		if err := c.Kill(ctx, old); err != nil {
			t.Fatal(err)
		}
		var newLeader string
		for time.Since(killed) < time.Minute && newLeader == "" {
			if ap, err := c.Autopilot(ctx); err == nil && ap.Leader != "" && ap.Leader != old.NodeID {
				newLeader = ap.Leader
			}
			time.Sleep(50 * time.Millisecond)
		}
		if newLeader == "" {
			t.Fatalf("no new leader within a minute of killing %s", old.Name)
		}
		t.Logf("leader %s killed: %s elected after %s", old.Name, newLeader, time.Since(killed).Round(time.Millisecond))
		if err := c.Start(ctx, old); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitHealthy(ctx, 5, 2*time.Minute, nil); err != nil {
			t.Fatalf("after restarting %s: %v", old.Name, err)
		}
	})

	t.Run("down leaves nothing behind", func(t *testing.T) {
		var pids []int
		var files []string
		var mounts []string
		for _, n := range append(c.State.Nodes, c.State.Seal) {
			pids = append(pids, n.PID)
			files = append(files, n.Array.Files...)
			if n.Array.Kind != storage.Dir {
				mounts = append(mounts, n.Array.Mount)
			}
		}
		if err := c.Down(ctx); err != nil {
			t.Fatal(err)
		}
		for _, pid := range pids {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(b), ") Z ") {
				t.Errorf("process %d still runs", pid)
			}
		}
		for _, m := range mounts {
			if mountSource(t, m) != "" {
				t.Errorf("%s still mounted", m)
			}
		}
		out, _ := exec.Command("losetup", "--list", "--noheadings", "--output", "BACK-FILE").Output()
		for _, f := range files {
			if strings.Contains(string(out), f) {
				t.Errorf("loop device still attached to %s", f)
			}
		}
		if _, err := os.Stat(c.Dir); err == nil {
			t.Errorf("cluster directory %s still exists", c.Dir)
		}
	})
}

func mustStatus(t *testing.T, c *cluster.Cluster) *cluster.Status {
	t.Helper()
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func mountSource(t *testing.T, mount string) string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && f[1] == mount {
			return f[0]
		}
	}
	return ""
}
