package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vaultstorm/vaultstorm/cluster/pki"
)

// processProvider runs each node as a local `vault server` process on its
// own loopback address.
type processProvider struct{}

func (processProvider) Name() string { return "process" }

func (processProvider) Prepare(ctx context.Context, c *Cluster) error { return nil }

func (processProvider) Teardown(ctx context.Context, c *Cluster) error { return nil }

func (processProvider) Discard(ctx context.Context, c *Cluster, n *Node) error { return nil }

// Paused reports whether n's process is stopped by SIGSTOP.
func (processProvider) Paused(ctx context.Context, c *Cluster, n *Node) bool {
	if n.PID <= 0 {
		return false
	}
	_, state := procStat(n.PID)
	return state == "T"
}

func (processProvider) paths(c *Cluster, n *Node) nodePaths {
	tls := c.TLSDir()
	return nodePaths{Cert: pki.CertFile(tls, n.Name), Key: pki.KeyFile(tls, n.Name), CA: pki.CAFile(tls), Data: n.Array.Mount}
}

func (processProvider) Start(ctx context.Context, c *Cluster, n *Node) error {
	if alive(n) {
		return fmt.Errorf("%s is already running (pid %d)", n.Name, n.PID)
	}
	logPath := c.LogFile(n.Name)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer logf.Close()
	bin := c.NodeBin(n)
	fmt.Fprintf(logf, "==> vaultstorm: starting %s generation %d (%s) at %s\n", n.Name, n.Generation, bin, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(bin, "server", "-config", c.ConfigFile(n.Name))
	if nice := c.State.Spec.NodeNice; nice > 0 && n.Role == RoleVoter {
		// Started through nice(1), which execs Vault in the same process:
		// every thread the server makes inherits the lower priority.
		if path, err := exec.LookPath("nice"); err == nil {
			cmd = exec.Command(path, "-n", strconv.Itoa(nice), bin, "server", "-config", c.ConfigFile(n.Name))
		}
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// No VAULT_* variables leak in from the harness's environment.
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + c.NodeDir(n.Name)}
	// A session of its own: a Ctrl-C to the harness's process group must
	// not take the cluster down with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if n.Role == RoleVoter {
		fd, err := c.cgroupFor(n)
		if err != nil {
			return err
		}
		if fd >= 0 {
			defer syscall.Close(fd)
			// Born in its cgroup: no socket of it ever exists outside.
			cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
		}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	pid := cmd.Process.Pid
	c.change(func() { n.PID, n.PIDStart = pid, procStart(pid) })
	// Reap it while this process lives, so a dead node is not a zombie
	// that still answers kill(0).
	go cmd.Wait()
	return nil
}

func (processProvider) Signal(ctx context.Context, c *Cluster, n *Node, sig syscall.Signal) error {
	if !alive(n) {
		if sig == syscall.SIGCONT {
			return nil
		}
		return fmt.Errorf("%s is not running", n.Name)
	}
	if err := syscall.Kill(n.PID, sig); err != nil {
		return fmt.Errorf("signal %s (pid %d): %w", n.Name, n.PID, err)
	}
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		if sig == syscall.SIGTERM {
			// A stopped process cannot act on SIGTERM.
			syscall.Kill(n.PID, syscall.SIGCONT)
		}
		return waitExit(ctx, n, sig)
	}
	return nil
}

func (processProvider) Alive(ctx context.Context, c *Cluster, n *Node) bool { return alive(n) }

// waitExit waits for n's process to go away; after a grace period a
// SIGTERM is followed by SIGKILL, as an init system would.
func waitExit(ctx context.Context, n *Node, sig syscall.Signal) error {
	grace := time.Now().Add(30 * time.Second)
	for alive(n) {
		if sig == syscall.SIGTERM && time.Now().After(grace) {
			syscall.Kill(n.PID, syscall.SIGKILL)
			sig = syscall.SIGKILL
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	n.PID, n.PIDStart = 0, 0
	return nil
}

// alive reports whether n's recorded process still runs: the PID exists,
// is not a zombie, and started when the recorded one did (PIDs are reused).
func alive(n *Node) bool {
	if n.PID <= 0 {
		return false
	}
	st, state := procStat(n.PID)
	if st == 0 || state == "Z" || state == "X" {
		return false
	}
	return n.PIDStart == 0 || st == n.PIDStart
}

func procStart(pid int) uint64 {
	st, _ := procStat(pid)
	return st
}

// procStat returns the start time (field 22) and state (field 3) from
// /proc/PID/stat, or 0 when there is no such process.
func procStat(pid int) (uint64, string) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, ""
	}
	// The command name (field 2) may hold spaces; fields after it follow ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, ""
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, ""
	}
	return start, f[0]
}
