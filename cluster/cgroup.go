package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Each node process runs in a cgroup v2 of its own. Nothing is limited by
// it: it names the node's sockets, because on loopback every outgoing
// connection leaves from 127.0.0.1 and only the socket's cgroup tells the
// firewall which node sent a packet (what partitions and latency faults
// match on).

// cgroup2Root finds where the cgroup v2 hierarchy is mounted ("" when it
// is not: faults then fall back to matching addresses).
func cgroup2Root() string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ... mount-point ... - fstype source options
		l := sc.Text()
		i := strings.Index(l, " - ")
		if i < 0 {
			continue
		}
		after := strings.Fields(l[i+3:])
		before := strings.Fields(l[:i])
		if len(after) > 0 && after[0] == "cgroup2" && len(before) > 4 {
			return unescapeMountinfo(before[4])
		}
	}
	return ""
}

func unescapeMountinfo(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// cgroupFor makes (if needed) and opens node n's cgroup directory:
// ROOT/vaultstorm/<subnet>/<node>. It returns -1 when there is no cgroup
// v2 to use.
func (c *Cluster) cgroupFor(n *Node) (int, error) {
	root := cgroup2Root()
	if root == "" || os.Geteuid() != 0 {
		return -1, nil
	}
	dir := filepath.Join(root, "vaultstorm", fmt.Sprintf("subnet-%d", c.State.Spec.Subnet), n.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return -1, fmt.Errorf("cgroup for %s: %w", n.Name, err)
	}
	fd, err := syscall.Open(dir, syscall.O_DIRECTORY|syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("cgroup for %s: %w", n.Name, err)
	}
	c.change(func() { n.Cgroup = dir })
	return fd, nil
}

// NodeCgroup returns the id (the directory's inode) and depth of n's
// cgroup, as nftables' "socket cgroupv2 level L" matches it; ok is false
// when n runs in none.
func (c *Cluster) NodeCgroup(n *Node) (id uint64, level uint32, ok bool) {
	if n.Cgroup == "" {
		return 0, 0, false
	}
	root := cgroup2Root()
	rel, err := filepath.Rel(root, n.Cgroup)
	if root == "" || err != nil || strings.HasPrefix(rel, "..") {
		return 0, 0, false
	}
	var st syscall.Stat_t
	if err := syscall.Stat(n.Cgroup, &st); err != nil {
		return 0, 0, false
	}
	return st.Ino, uint32(len(strings.Split(rel, string(filepath.Separator)))), true
}

// removeCgroups removes the cgroups of the cluster's nodes (they must have
// no process left) and the folders above them when empty.
func (c *Cluster) removeCgroups() error {
	var errs []error
	parents := map[string]bool{}
	for _, n := range c.all() {
		if n.Cgroup == "" {
			continue
		}
		// A killed process leaves its cgroup a moment after it is gone.
		var err error
		for try := 0; try < 50; try++ {
			if err = os.Remove(n.Cgroup); err == nil || errors.Is(err, os.ErrNotExist) || !errors.Is(err, syscall.EBUSY) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", n.Cgroup, err))
		}
		parents[filepath.Dir(n.Cgroup)] = true
	}
	for p := range parents {
		os.Remove(p)               // subnet-N, when empty
		os.Remove(filepath.Dir(p)) // vaultstorm, when empty
	}
	return errors.Join(errs...)
}
