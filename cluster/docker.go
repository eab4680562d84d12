package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"

	"github.com/vaultstorm/vaultstorm/cluster/pki"
)

// dockerProvider runs each node in a container of its own, a host with its
// own address on a private bridge network the cluster owns, its own network
// stack (what partitions and latency act on) and its own cgroup (what
// pause freezes), the way Vault's own Docker test clusters run. The image
// is built here FROM scratch around the node's static Vault binary; no
// registry is involved. The RAID0 arrays stay real: made on this host by
// cluster/storage and bind-mounted as each container's node directory.
//
// Everything made carries the cluster's label (its directory), so `down`
// finds and removes it even when state.json missed it (the harness was
// killed between a create and the save); the node image is kept, as a
// cache keyed by the binary's digest.
type dockerProvider struct{}

// Labels on every container, network and image vaultstorm makes.
const (
	LabelCluster    = "io.vaultstorm.cluster"    // the cluster directory
	LabelNode       = "io.vaultstorm.node"       // the node's name
	LabelGeneration = "io.vaultstorm.generation" // the node's generation
	LabelImage      = "io.vaultstorm.image"      // on node images: the binary's sha256
	// NodeImageRepo is the repository of the node images, tagged by the
	// first 16 hex digits of the Vault binary's sha256.
	NodeImageRepo = "vaultstorm-vault"
)

// containerUID owns the node's files and runs Vault in the container: a
// numeric non-root user, as the official image's "vault" user is.
const containerUID = 10001

// containerNodeDir is where a node's directory (its configuration, TLS
// files, log and data array) appears inside its container.
const containerNodeDir = "/vault/node"

func (dockerProvider) Name() string { return "docker" }

// dockerSubnet is the private network of the cluster with the given
// subnet number: 10.213.SUBNET.0/24, gateway (this host) .1, seal .10,
// node1 .11, … as on loopback.
func dockerSubnet(subnet int) netip.Prefix {
	return netip.MustParsePrefix(fmt.Sprintf("10.213.%d.0/24", subnet))
}

func dockerIP(subnet, i int) string { return fmt.Sprintf("10.213.%d.%d", subnet, 10+i) }

var dockerClient struct {
	sync.Mutex
	c *testcontainers.DockerClient
}

// dockerAPI returns the one Docker client of this process. The two
// testcontainers settings are forced here, not left to the caller's
// environment: the reaper container needs an image this machine cannot
// pull, and without the host override testcontainers talks to the VM's
// gateway address.
func dockerAPI(ctx context.Context) (*testcontainers.DockerClient, error) {
	dockerClient.Lock()
	defer dockerClient.Unlock()
	if dockerClient.c != nil {
		return dockerClient.c, nil
	}
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	// Its progress lines ("🐳 Creating container") are not ours to print.
	tclog.SetDefault(tclog.NewNoopLogger())
	c, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("docker: %w (is the Docker engine running, and may this user use /var/run/docker.sock?)", err)
	}
	if _, err := c.Ping(ctx, client.PingOptions{}); err != nil {
		c.Close()
		return nil, fmt.Errorf("docker engine does not answer: %w", err)
	}
	dockerClient.c = c
	return c, nil
}

func networkName(c *Cluster) string {
	return fmt.Sprintf("vaultstorm-%d-%s", c.State.Spec.Subnet, shortHash(c.Dir))
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:4])
}

func (p dockerProvider) Prepare(ctx context.Context, c *Cluster) error {
	if _, err := dockerAPI(ctx); err != nil {
		return err
	}
	sub := dockerSubnet(c.State.Spec.Subnet)
	gw := sub.Addr().Next()
	nw, err := tcnetwork.New(ctx,
		tcnetwork.WithDriver("bridge"),
		tcnetwork.WithLabels(map[string]string{LabelCluster: c.Dir}),
		tcnetwork.WithIPAM(&network.IPAM{Driver: "default", Config: []network.IPAMConfig{{Subnet: sub, Gateway: gw}}}),
		tcnetwork.CustomizeNetworkOption(func(o *client.NetworkCreateOptions) error {
			// The bridge gets the cluster's name, so `ip addr` says whose it is.
			o.Options = map[string]string{"com.docker.network.bridge.name": "vs" + strconv.Itoa(c.State.Spec.Subnet) + "-" + shortHash(c.Dir)}
			return nil
		}),
	)
	if err != nil {
		return fmt.Errorf("create network %s: %w (another network may use it: pick another --subnet)", sub, err)
	}
	c.State.DockerNetwork = nw.Name
	return c.Save()
}

// paths are the node's files as its container sees them: its whole
// directory is bind-mounted at containerNodeDir.
func (dockerProvider) paths(c *Cluster, n *Node) nodePaths {
	tls := filepath.Join(containerNodeDir, "tls")
	return nodePaths{
		Cert: pki.CertFile(tls, n.Name), Key: pki.KeyFile(tls, n.Name), CA: pki.CAFile(tls),
		Data: filepath.Join(containerNodeDir, "data"),
		Log:  filepath.Join(containerNodeDir, "vault.log"),
	}
}

// stage gives the node's container what it reads, owned by its user: its
// own certificate, key and the CA certificate (never the CA keys), the
// configuration, the log file and the data directory's root.
func (dockerProvider) stage(c *Cluster, n *Node) error {
	dir := c.NodeDir(n.Name)
	tls := filepath.Join(dir, "tls")
	if err := os.MkdirAll(tls, 0o700); err != nil {
		return err
	}
	src := c.TLSDir()
	for _, f := range [][2]string{
		{pki.CertFile(src, n.Name), pki.CertFile(tls, n.Name)},
		{pki.KeyFile(src, n.Name), pki.KeyFile(tls, n.Name)},
		{pki.CAFile(src), pki.CAFile(tls)},
	} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			return fmt.Errorf("stage %s for its container: %w", n.Name, err)
		}
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			return fmt.Errorf("stage %s for its container: %w", n.Name, err)
		}
	}
	logf, err := os.OpenFile(c.LogFile(n.Name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	logf.Close()
	for _, path := range []string{dir, tls, pki.CertFile(tls, n.Name), pki.KeyFile(tls, n.Name), pki.CAFile(tls),
		c.ConfigFile(n.Name), c.LogFile(n.Name), filepath.Join(dir, "data")} {
		if err := os.Chown(path, containerUID, containerUID); err != nil {
			return fmt.Errorf("stage %s for its container: %w", n.Name, err)
		}
	}
	return os.Chmod(filepath.Join(dir, "data"), 0o700)
}

// chownForNode hands a file the harness wrote into a node's data (a
// peers.json) to the user the node runs as.
func (dockerProvider) chownForNode(path string) error {
	return os.Chown(path, containerUID, containerUID)
}

func (p dockerProvider) Start(ctx context.Context, c *Cluster, n *Node) error {
	api, err := dockerAPI(ctx)
	if err != nil {
		return err
	}
	bin := c.NodeBin(n)
	image, err := NodeImage(ctx, bin)
	if err != nil {
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	if err := p.stage(c, n); err != nil {
		return err
	}
	logf, err := os.OpenFile(c.LogFile(n.Name), os.O_WRONLY|os.O_APPEND, 0o600)
	if err == nil {
		fmt.Fprintf(logf, "==> vaultstorm: starting %s generation %d (%s, image %s) at %s\n", n.Name, n.Generation, bin, image, time.Now().UTC().Format(time.RFC3339Nano))
		logf.Close()
	}
	if n.ContainerID != "" {
		// The same instance again (a restart on its own disk) runs its
		// container again; a new binary (an upgrade) or a new generation
		// (a replacement) gets a new container.
		res, err := api.ContainerInspect(ctx, n.ContainerID, client.ContainerInspectOptions{})
		switch {
		case err == nil && res.Container.Config != nil && res.Container.Config.Image == image &&
			res.Container.Config.Labels[LabelGeneration] == strconv.Itoa(n.Generation):
			if res.Container.State != nil && res.Container.State.Running {
				return fmt.Errorf("%s is already running (container %s)", n.Name, short(n.ContainerID))
			}
			if _, err := api.ContainerStart(ctx, n.ContainerID, client.ContainerStartOptions{}); err != nil {
				return fmt.Errorf("start %s (container %s): %w", n.Name, short(n.ContainerID), err)
			}
			return p.recordPID(ctx, c, n)
		case err == nil:
			if err := p.Discard(ctx, c, n); err != nil {
				return err
			}
		}
		c.change(func() { n.ContainerID = "" })
	}
	// A container of this name left by a crash before its ID was saved.
	name := fmt.Sprintf("vaultstorm-%d-%s-%s-g%d", c.State.Spec.Subnet, shortHash(c.Dir), n.Name, n.Generation)
	if err := removeLabelled(ctx, api, client.Filters{}.Add("name", name).Add("label", LabelCluster+"="+c.Dir)); err != nil {
		return err
	}
	nw := c.State.DockerNetwork
	ip, err := netip.ParseAddr(n.IP)
	if err != nil {
		return fmt.Errorf("start %s: address %q: %w", n.Name, n.IP, err)
	}
	req := testcontainers.ContainerRequest{
		Image:          image,
		Name:           name,
		Cmd:            []string{"server", "-config", filepath.Join(containerNodeDir, filepath.Base(c.ConfigFile(n.Name)))},
		Networks:       []string{nw},
		NetworkAliases: map[string][]string{nw: {n.Name}},
		Labels: map[string]string{
			LabelCluster: c.Dir, LabelNode: n.Name, LabelGeneration: strconv.Itoa(n.Generation),
		},
		ConfigModifier: func(cfg *container.Config) {
			cfg.User = fmt.Sprintf("%d:%d", containerUID, containerUID)
			cfg.Hostname = n.Name
			cfg.Env = []string{"HOME=/tmp"}
		},
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.Mounts = []mount.Mount{{Type: mount.TypeBind, Source: c.NodeDir(n.Name), Target: containerNodeDir}}
			// Vault logs to its file; what it prints before it read its
			// configuration stays in a small Docker log.
			hc.LogConfig = container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1m", "max-file": "1"}}
			hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyDisabled}
		},
		EndpointSettingsModifier: func(eps map[string]*network.EndpointSettings) {
			if ep := eps[nw]; ep != nil {
				ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ip}
			}
		},
	}
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: false})
	if ctr != nil {
		// Saved before it starts: a crash from here on leaves a container
		// state.json knows.
		if err := c.update(func() { n.ContainerID = ctr.GetContainerID() }); err != nil {
			return err
		}
	}
	if err != nil {
		return fmt.Errorf("create container for %s: %w", n.Name, err)
	}
	if err := ctr.Start(ctx); err != nil {
		return fmt.Errorf("start container for %s: %w", n.Name, err)
	}
	return p.recordPID(ctx, c, n)
}

func (dockerProvider) recordPID(ctx context.Context, c *Cluster, n *Node) error {
	st, err := containerState(ctx, n)
	if err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	c.change(func() { n.PID, n.PIDStart = st.Pid, 0 })
	return nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// containerState inspects n's container; nil state when it has none.
func containerState(ctx context.Context, n *Node) (*container.State, error) {
	if n.ContainerID == "" {
		return nil, errors.New("no container")
	}
	api, err := dockerAPI(ctx)
	if err != nil {
		return nil, err
	}
	res, err := api.ContainerInspect(ctx, n.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("inspect container %s: %w", short(n.ContainerID), err)
	}
	if res.Container.State == nil {
		return nil, fmt.Errorf("container %s has no state", short(n.ContainerID))
	}
	return res.Container.State, nil
}

func (p dockerProvider) Signal(ctx context.Context, c *Cluster, n *Node, sig syscall.Signal) error {
	api, err := dockerAPI(ctx)
	if err != nil {
		return err
	}
	st, err := containerState(ctx, n)
	if err != nil || !st.Running {
		if sig == syscall.SIGCONT {
			return nil
		}
		return fmt.Errorf("%s is not running", n.Name)
	}
	id := n.ContainerID
	switch sig {
	case syscall.SIGSTOP:
		// docker pause: the cgroup freezer, every thread at once.
		if _, err := api.ContainerPause(ctx, id, client.ContainerPauseOptions{}); err != nil {
			return fmt.Errorf("pause %s: %w", n.Name, err)
		}
		return nil
	case syscall.SIGCONT:
		if !st.Paused {
			return nil
		}
		if _, err := api.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{}); err != nil {
			return fmt.Errorf("unpause %s: %w", n.Name, err)
		}
		return nil
	case syscall.SIGTERM:
		if st.Paused {
			// A frozen process cannot act on SIGTERM.
			if _, err := api.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{}); err != nil {
				return fmt.Errorf("unpause %s before stopping it: %w", n.Name, err)
			}
		}
		grace := 30
		if _, err := api.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &grace}); err != nil {
			return fmt.Errorf("stop %s: %w", n.Name, err)
		}
	case syscall.SIGKILL:
		// A paused container is killed too: the kill thaws it.
		if _, err := api.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
			return fmt.Errorf("kill %s: %w", n.Name, err)
		}
	default:
		if _, err := api.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: strconv.Itoa(int(sig))}); err != nil {
			return fmt.Errorf("signal %s: %w", n.Name, err)
		}
		return nil
	}
	for {
		st, err := containerState(ctx, n)
		if err != nil || !st.Running {
			n.PID, n.PIDStart = 0, 0
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (dockerProvider) Alive(ctx context.Context, c *Cluster, n *Node) bool {
	st, err := containerState(ctx, n)
	return err == nil && st.Running
}

func (dockerProvider) Paused(ctx context.Context, c *Cluster, n *Node) bool {
	st, err := containerState(ctx, n)
	return err == nil && st.Paused
}

// NetNS is the path of n's network namespace, where network faults on it
// are made.
func (dockerProvider) netNS(ctx context.Context, c *Cluster, n *Node) (string, error) {
	st, err := containerState(ctx, n)
	if err != nil {
		return "", fmt.Errorf("%s: %w", n.Name, err)
	}
	if !st.Running || st.Pid <= 0 {
		return "", fmt.Errorf("%s is not running: it has no network stack to act on", n.Name)
	}
	return fmt.Sprintf("/proc/%d/ns/net", st.Pid), nil
}

// Discard removes n's container: its instance is gone.
func (dockerProvider) Discard(ctx context.Context, c *Cluster, n *Node) error {
	if n.ContainerID == "" {
		return nil
	}
	api, err := dockerAPI(ctx)
	if err != nil {
		return err
	}
	if _, err := api.ContainerRemove(ctx, n.ContainerID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isNotFound(err) {
		return fmt.Errorf("remove container of %s: %w", n.Name, err)
	}
	n.ContainerID, n.PID, n.PIDStart = "", 0, 0
	return c.Save()
}

func isNotFound(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "No such container") || strings.Contains(err.Error(), "not found"))
}

// Teardown removes every container and network labelled with the cluster,
// whatever state.json says.
func (dockerProvider) Teardown(ctx context.Context, c *Cluster) error {
	api, err := dockerAPI(ctx)
	if err != nil {
		return err
	}
	mine := client.Filters{}.Add("label", LabelCluster+"="+c.Dir)
	var errs []error
	if err := removeLabelled(ctx, api, mine); err != nil {
		errs = append(errs, err)
	}
	for _, n := range c.all() {
		n.ContainerID, n.PID, n.PIDStart = "", 0, 0
	}
	nets, err := api.NetworkList(ctx, client.NetworkListOptions{Filters: mine})
	if err != nil {
		errs = append(errs, fmt.Errorf("list networks: %w", err))
	}
	for _, nw := range nets.Items {
		if _, err := api.NetworkRemove(ctx, nw.ID, client.NetworkRemoveOptions{}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", nw.Name, err))
		}
	}
	if len(errs) == 0 {
		c.State.DockerNetwork = ""
	}
	return errors.Join(errs...)
}

func removeLabelled(ctx context.Context, api *testcontainers.DockerClient, f client.Filters) error {
	res, err := api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	var errs []error
	for _, ct := range res.Items {
		if _, err := api.ContainerRemove(ctx, ct.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", short(ct.ID), err))
		}
	}
	return errors.Join(errs...)
}

// logTail is the end of n's log, or of what its container printed before
// Vault opened its log file (a configuration it could not read).
func (dockerProvider) logTail(ctx context.Context, c *Cluster, n *Node, lines int) string {
	t := tail(c.LogFile(n.Name), lines)
	if n.ContainerID == "" {
		return t
	}
	api, err := dockerAPI(ctx)
	if err != nil {
		return t
	}
	res, err := api.ContainerLogs(ctx, n.ContainerID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(lines)})
	if err != nil {
		return t
	}
	defer res.Close()
	var out bytes.Buffer
	b, _ := io.ReadAll(io.LimitReader(res, 64<<10))
	// The multiplexed stream: 8-byte frame headers before each chunk.
	for len(b) >= 8 {
		size := int(b[4])<<24 | int(b[5])<<16 | int(b[6])<<8 | int(b[7])
		if size > len(b)-8 {
			size = len(b) - 8
		}
		out.Write(b[8 : 8+size])
		b = b[8+size:]
	}
	if out.Len() == 0 {
		return t
	}
	return t + "\ncontainer output:\n" + strings.TrimRight(out.String(), "\n")
}

// Node images: one per Vault binary, tagged by its digest, built once.

var imageCache struct {
	sync.Mutex
	byFile map[string]string // path|size|mtime → image reference
}

// NodeImage returns the image that runs bin, building it when this engine
// does not have it yet. The binary must be static: the image has no libc.
func NodeImage(ctx context.Context, bin string) (string, error) {
	st, err := os.Stat(bin)
	if err != nil {
		return "", fmt.Errorf("vault binary: %w", err)
	}
	key := fmt.Sprintf("%s|%d|%d", bin, st.Size(), st.ModTime().UnixNano())
	imageCache.Lock()
	defer imageCache.Unlock()
	if ref, ok := imageCache.byFile[key]; ok {
		return ref, nil
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		return "", fmt.Errorf("vault binary: %w", err)
	}
	if err := checkStatic(bin, b); err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	digest := hex.EncodeToString(sum[:])
	ref := NodeImageRepo + ":" + digest[:16]
	api, err := dockerAPI(ctx)
	if err != nil {
		return "", err
	}
	if _, err := api.ImageInspect(ctx, ref); err != nil {
		if err := buildNodeImage(ctx, b, digest); err != nil {
			return "", err
		}
	}
	if imageCache.byFile == nil {
		imageCache.byFile = map[string]string{}
	}
	imageCache.byFile[key] = ref
	return ref, nil
}

// checkStatic refuses a dynamically linked binary, which would fail in a
// scratch image with only "no such file or directory" from the kernel.
func checkStatic(bin string, b []byte) error {
	if len(b) < 4 || string(b[:4]) != "\x7fELF" {
		return fmt.Errorf("%s is not an ELF binary", bin)
	}
	if bytes.Contains(b[:min(len(b), 64<<10)], []byte("/lib64/ld-linux")) || bytes.Contains(b[:min(len(b), 64<<10)], []byte("/lib/ld-linux")) {
		return fmt.Errorf("%s is dynamically linked: the docker provider's image has no libc; rebuild it static (`make vault` builds with CGO_ENABLED=0)", bin)
	}
	return nil
}

// nodeDockerfile: the binary, a writable /tmp and a passwd entry for the
// numeric user, nothing else.
const nodeDockerfile = `FROM scratch
ADD rootfs.tar /
USER 10001:10001
ENV HOME=/tmp
ENTRYPOINT ["/bin/vault"]
`

func buildNodeImage(ctx context.Context, bin []byte, digest string) error {
	var rootfs bytes.Buffer
	tw := tar.NewWriter(&rootfs)
	now := time.Unix(0, 0)
	for _, e := range []struct {
		name string
		mode int64
		body []byte
		dir  bool
	}{
		{name: "bin/", mode: 0o755, dir: true},
		{name: "bin/vault", mode: 0o755, body: bin},
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, body: []byte("root:x:0:0:root:/:/bin/vault\nvault:x:10001:10001:vault:/tmp:/bin/vault\n")},
		{name: "etc/group", mode: 0o644, body: []byte("root:x:0:\nvault:x:10001:\n")},
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: "vault/", mode: 0o755, dir: true},
	} {
		h := &tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.body)), ModTime: now, Typeflag: tar.TypeReg}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(e.body); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	var buildCtx bytes.Buffer
	bw := tar.NewWriter(&buildCtx)
	for _, f := range []struct {
		name string
		body []byte
	}{{"Dockerfile", []byte(nodeDockerfile)}, {"rootfs.tar", rootfs.Bytes()}} {
		if err := bw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), ModTime: now}); err != nil {
			return err
		}
		if _, err := bw.Write(f.body); err != nil {
			return err
		}
	}
	if err := bw.Close(); err != nil {
		return err
	}
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return fmt.Errorf("docker: %w", err)
	}
	defer p.Close()
	req := &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		ContextArchive: bytes.NewReader(buildCtx.Bytes()),
		Repo:           NodeImageRepo, Tag: digest[:16], KeepImage: true,
		BuildOptionsModifier: func(o *client.ImageBuildOptions) {
			o.Labels = map[string]string{LabelImage: digest}
			o.Remove, o.ForceRemove = true, true
		},
	}}
	if _, err := p.BuildImage(ctx, req); err != nil {
		return fmt.Errorf("build node image %s:%s: %w", NodeImageRepo, digest[:16], err)
	}
	return nil
}

// isolate is `docker network disconnect`: the container keeps running with
// no interface but lo. heal reconnects it with its address and DNS name;
// Vault's listeners, bound to that address, serve again. heal runs on a
// context of its own: it must happen even when the run was cancelled.
func (dockerProvider) isolate(ctx context.Context, c *Cluster, n *Node) (func() error, error) {
	api, err := dockerAPI(ctx)
	if err != nil {
		return nil, err
	}
	nw, id := c.State.DockerNetwork, n.ContainerID
	ip, err := netip.ParseAddr(n.IP)
	if err != nil {
		return nil, fmt.Errorf("isolate %s: address %q: %w", n.Name, n.IP, err)
	}
	if _, err := api.NetworkDisconnect(ctx, nw, client.NetworkDisconnectOptions{Container: id, Force: true}); err != nil {
		return nil, fmt.Errorf("isolate %s: disconnect from %s: %w", n.Name, nw, err)
	}
	var once sync.Once
	var herr error
	return func() error {
		once.Do(func() {
			hctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, herr = api.NetworkConnect(hctx, nw, client.NetworkConnectOptions{Container: id, EndpointConfig: &network.EndpointSettings{
				IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: ip}, Aliases: []string{n.Name},
			}})
			if herr != nil {
				herr = fmt.Errorf("reconnect %s to %s: %w", n.Name, nw, herr)
			}
		})
		return herr
	}, nil
}
