package cluster_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/chaos"
	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/cluster/clustertest"
	"github.com/vaultstorm/vaultstorm/cluster/storage"
)

// TestDockerCluster is the seed architecture on the docker provider: every
// node a container, a host of its own (its own address on the cluster's
// private network, its own network stack, its own cgroup), with the same
// TLS, transit auto-unseal and loop-device RAID0 as processes. A partition
// of the leader's container leaves the other four electing a leader; a
// paused (frozen) leader is replaced as a SIGSTOPped process is, and steps
// down when it thaws; down leaves no container, network, mount or loop
// device.
func TestDockerCluster(t *testing.T) {
	spec := cluster.DefaultSpec()
	spec.Provider = "docker"
	c := clustertest.Start(t, &spec)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	st := mustStatus(t, c)
	if !st.Healthy || st.Voters != 5 || st.Leader == "" {
		t.Fatalf("after up: healthy=%v voters=%d leader=%q, want a healthy cluster of 5 voters with a leader", st.Healthy, st.Voters, st.Leader)
	}

	t.Run("each node is a host of its own", func(t *testing.T) {
		ips, netns := map[string]string{}, map[string]string{}
		for _, n := range append(c.State.Nodes, c.State.Seal) {
			if n.ContainerID == "" {
				t.Fatalf("%s has no container", n.Name)
			}
			ip := dockerInspect(t, n.ContainerID, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
			if ip != n.IP {
				t.Errorf("%s: container address %q, want %s", n.Name, ip, n.IP)
			}
			if other, dup := ips[ip]; dup {
				t.Errorf("%s and %s share address %s", n.Name, other, ip)
			}
			ips[ip] = n.Name
			ns, err := c.NetNS(ctx, n)
			if err != nil {
				t.Fatal(err)
			}
			link, err := os.Readlink(ns)
			if err != nil {
				t.Fatal(err)
			}
			if other, dup := netns[link]; dup {
				t.Errorf("%s and %s share network namespace %s", n.Name, other, link)
			}
			netns[link] = n.Name
			if user := dockerInspect(t, n.ContainerID, "{{.Config.User}}"); strings.HasPrefix(user, "0") || user == "" {
				t.Errorf("%s runs as user %q, want a numeric non-root user", n.Name, user)
			}
		}
		self, _ := os.Readlink("/proc/self/ns/net")
		if _, shared := netns[self]; shared {
			t.Errorf("a node shares this host's network namespace")
		}
		for _, n := range c.State.Nodes {
			if n.Array.Kind != storage.BtrfsRAID0 && n.Array.Kind != storage.MDRAID0 {
				t.Errorf("%s: storage %q, want RAID0", n.Name, n.Array.Kind)
			}
			if _, err := os.Stat(n.Array.Mount + "/raft/raft.db"); err != nil {
				t.Errorf("%s: raft data is not on its array (bind-mounted into the container): %v", n.Name, err)
			}
		}
	})

	waitNewLeader := func(t *testing.T, old *cluster.Node, since time.Time) string {
		t.Helper()
		for time.Since(since) < time.Minute {
			for _, n := range c.State.Nodes {
				if n == old {
					continue
				}
				cl, err := c.Client(n)
				if err != nil {
					continue
				}
				hctx, hcancel := context.WithTimeout(ctx, time.Second)
				h, err := cl.Sys().HealthWithContext(hctx)
				hcancel()
				if err == nil && !h.Standby && !h.Sealed {
					return n.Name
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("no node but %s became active within a minute", old.Name)
		return ""
	}

	t.Run("partitioned leader: the other four elect one", func(t *testing.T) {
		st := mustStatus(t, c)
		old, _ := c.Node(st.Leader)
		lift, err := chaos.Partition{}.Inject(ctx, c, []*cluster.Node{old})
		if err != nil {
			t.Fatal(err)
		}
		cut := time.Now()
		nl := waitNewLeader(t, old, cut)
		t.Logf("%s partitioned: %s active after %s", old.Name, nl, time.Since(cut).Round(time.Millisecond))
		// The cut node still answers this host (the load's side of the cut).
		oc, _ := c.Client(old)
		hctx, hcancel := context.WithTimeout(ctx, 2*time.Second)
		_, herr := oc.Sys().HealthWithContext(hctx)
		hcancel()
		if herr != nil {
			t.Errorf("the partitioned node stopped answering this host: %v", herr)
		}
		if _, err := lift(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitHealthy(ctx, 5, 2*time.Minute, nil); err != nil {
			t.Fatalf("after healing the partition: %v", err)
		}
		if out, _ := exec.Command("nsenter", "--net=/proc/"+fmt.Sprint(old.PID)+"/ns/net", "nft", "list", "ruleset").CombinedOutput(); strings.Contains(string(out), "vaultstorm") && strings.Contains(string(out), "drop") {
			t.Errorf("partition rules left in %s's network namespace after heal:\n%s", old.Name, out)
		}
	})

	t.Run("isolated leader: cut from everyone, clients too", func(t *testing.T) {
		st := mustStatus(t, c)
		old, _ := c.Node(st.Leader)
		f := chaos.Partition{Isolate: true}
		if err := f.Available(c); err != nil {
			t.Fatal(err)
		}
		lift, err := f.Inject(ctx, c, []*cluster.Node{old})
		if err != nil {
			t.Fatal(err)
		}
		cut := time.Now()
		nl := waitNewLeader(t, old, cut)
		t.Logf("%s isolated: %s active after %s", old.Name, nl, time.Since(cut).Round(time.Millisecond))
		oc, _ := c.Client(old)
		hctx, hcancel := context.WithTimeout(ctx, 2*time.Second)
		_, herr := oc.Sys().HealthWithContext(hctx)
		hcancel()
		if herr == nil {
			t.Errorf("the isolated node still answers this host")
		}
		if _, err := lift(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitHealthy(ctx, 5, 2*time.Minute, nil); err != nil {
			t.Fatalf("after reconnecting %s: %v", old.Name, err)
		}
		if ip := dockerInspect(t, old.ContainerID, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"); ip != old.IP {
			t.Errorf("%s reconnected on %q, want its address %s", old.Name, ip, old.IP)
		}
	})

	t.Run("paused leader behaves like SIGSTOP", func(t *testing.T) {
		st := mustStatus(t, c)
		old, _ := c.Node(st.Leader)
		if err := c.Pause(ctx, old); err != nil {
			t.Fatal(err)
		}
		paused := time.Now()
		if state := dockerInspect(t, old.ContainerID, "{{.State.Status}}"); state != "paused" {
			t.Errorf("container of %s is %q, want paused", old.Name, state)
		}
		if ns := mustStatus(t, c); nodeState(ns, old.Name) != cluster.StatePaused {
			t.Errorf("status says %s is %q, want %q", old.Name, nodeState(ns, old.Name), cluster.StatePaused)
		}
		nl := waitNewLeader(t, old, paused)
		t.Logf("%s paused: %s active after %s", old.Name, nl, time.Since(paused).Round(time.Millisecond))
		if err := c.Resume(ctx, old); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitHealthy(ctx, 5, 2*time.Minute, nil); err != nil {
			t.Fatalf("after resuming %s: %v", old.Name, err)
		}
		if ns := mustStatus(t, c); nodeState(ns, old.Name) != cluster.StateFollower {
			t.Errorf("%s after it thawed: %q, want a follower (a new term was elected without it)", old.Name, nodeState(ns, old.Name))
		}
	})

	t.Run("down leaves nothing behind", func(t *testing.T) {
		var files []string
		for _, n := range c.State.Nodes {
			files = append(files, n.Array.Files...)
		}
		if err := c.Down(ctx); err != nil {
			t.Fatal(err)
		}
		if out := dockerList(t, "ps", "-aq", "--filter", "label="+cluster.LabelCluster+"="+c.Dir); out != "" {
			t.Errorf("containers left: %s", out)
		}
		if out := dockerList(t, "network", "ls", "-q", "--filter", "label="+cluster.LabelCluster+"="+c.Dir); out != "" {
			t.Errorf("networks left: %s", out)
		}
		out, _ := exec.Command("losetup", "--list", "--noheadings", "--output", "BACK-FILE").Output()
		for _, f := range files {
			if strings.Contains(string(out), f) {
				t.Errorf("loop device still attached to %s", f)
			}
		}
		if b, _ := os.ReadFile("/proc/self/mounts"); strings.Contains(string(b), c.Dir) {
			t.Errorf("mounts under %s left", c.Dir)
		}
	})
}

func nodeState(st *cluster.Status, name string) string {
	for _, n := range st.Nodes {
		if n.Name == name {
			return n.State
		}
	}
	return ""
}

func dockerInspect(t *testing.T, id, format string) string {
	t.Helper()
	out, err := exec.Command("docker", "inspect", "-f", format, id).CombinedOutput()
	if err != nil {
		t.Fatalf("docker inspect %s: %v\n%s", id, err, out)
	}
	return strings.TrimSpace(string(out))
}

func dockerList(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}
