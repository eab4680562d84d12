// Package storage gives each Vault node its data disk: RAID0 over loop
// devices, as the seed architecture puts raft data on RAID0. Linux md is
// used where the kernel has it; otherwise btrfs's raid0 data and metadata
// profiles over the same loop devices (this is what kernels without md or
// device-mapper can do); a plain directory only when asked for.
//
// An array lives and dies with its node: losing one member loses the whole
// data set, and a replaced node gets a fresh array.
package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Kind is how a node's data directory is backed.
type Kind string

const (
	BtrfsRAID0 Kind = "btrfs-raid0"
	MDRAID0    Kind = "md-raid0"
	Dir        Kind = "dir"
	// BtrfsSingle is one loop disk, no RAID: what RAID0 is measured
	// against (capacity --storage single).
	BtrfsSingle Kind = "btrfs-single"
)

// MinDiskSize is the smallest member disk accepted: mkfs.btrfs refuses
// devices much under 110 MiB, and raft needs room for its log and snapshots.
const MinDiskSize = 128 << 20

// Array is one node's data disk, as recorded in the cluster state so that a
// later process (vaultstorm down after a crash) can remove it.
type Array struct {
	Kind    Kind     `json:"kind"`
	Files   []string `json:"files,omitempty"`   // sparse backing files
	Devices []string `json:"devices,omitempty"` // /dev/loopN, parallel to Files
	MD      string   `json:"md,omitempty"`      // /dev/md/NAME for md-raid0
	Mount   string   `json:"mount"`             // the node's raft data directory
	Mounted bool     `json:"mounted,omitempty"`
}

// Spec says what array to build.
type Spec struct {
	Kind  Kind  // BtrfsRAID0, MDRAID0, Dir; "" picks the best available RAID0
	Disks int   // member count (>= 2 for RAID0)
	Size  int64 // bytes per member
}

// Detect returns the RAID0 kind this machine supports, or an error that says
// why none is available and what to do instead.
func Detect() (Kind, error) {
	if os.Geteuid() != 0 {
		return "", errors.New("RAID0 storage needs root (loop devices and mounts): run as root, or pass --storage dir for a plain directory")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		return "", errors.New("no loop device support (/dev/loop-control missing): pass --storage dir")
	}
	if mdAvailable() {
		return MDRAID0, nil
	}
	fs, _ := os.ReadFile("/proc/filesystems")
	if !bytes.Contains(fs, []byte("btrfs")) {
		// The module may simply not be loaded yet.
		_ = exec.Command("modprobe", "btrfs").Run()
		fs, _ = os.ReadFile("/proc/filesystems")
	}
	if !bytes.Contains(fs, []byte("btrfs")) {
		return "", errors.New("kernel has neither md nor btrfs: no RAID0 possible, pass --storage dir")
	}
	if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
		return "", errors.New("mkfs.btrfs not found: install btrfs-progs (apt-get install btrfs-progs), or pass --storage dir")
	}
	return BtrfsRAID0, nil
}

func mdAvailable() bool {
	if _, err := os.Stat("/proc/mdstat"); err != nil {
		return false
	}
	_, err := exec.LookPath("mdadm")
	return err == nil
}

// Validate checks a spec before anything is made.
func (s Spec) Validate() error {
	if s.Kind == Dir {
		return nil
	}
	if s.Kind == BtrfsSingle {
		if s.Disks != 1 {
			return fmt.Errorf("single-disk storage takes 1 disk per node, got %d", s.Disks)
		}
		if s.Size < MinDiskSize {
			return fmt.Errorf("disk size %d MiB is too small: at least %d MiB", s.Size>>20, MinDiskSize>>20)
		}
		return nil
	}
	if s.Disks < 2 {
		return fmt.Errorf("RAID0 needs at least 2 disks per node, got %d", s.Disks)
	}
	if s.Size < MinDiskSize {
		return fmt.Errorf("disk size %d MiB is too small: each RAID0 member needs at least %d MiB", s.Size>>20, MinDiskSize>>20)
	}
	return nil
}

// Create builds an array named name: backing files under imgDir, mounted at
// mount. record is called after every step that leaves something on the
// machine, so a crash part-way is still cleaned up by Destroy of the
// recorded array.
func Create(ctx context.Context, spec Spec, name, imgDir, mount string, record func(Array) error) (Array, error) {
	a := Array{Kind: spec.Kind, Mount: mount}
	if err := spec.Validate(); err != nil {
		return a, err
	}
	if err := os.MkdirAll(mount, 0o700); err != nil {
		return a, fmt.Errorf("create %s: %w", mount, err)
	}
	if spec.Kind == Dir {
		return a, record(a)
	}
	if err := os.MkdirAll(imgDir, 0o700); err != nil {
		return a, fmt.Errorf("create %s: %w", imgDir, err)
	}
	for i := 0; i < spec.Disks; i++ {
		f := filepath.Join(imgDir, fmt.Sprintf("%s-disk%d.img", name, i))
		if err := sparseFile(f, spec.Size); err != nil {
			return a, err
		}
		a.Files = append(a.Files, f)
		if err := record(a); err != nil {
			return a, err
		}
		dev, err := run(ctx, "losetup", "--find", "--show", f)
		if err != nil {
			return a, fmt.Errorf("attach %s: %w", f, err)
		}
		a.Devices = append(a.Devices, dev)
		if err := record(a); err != nil {
			return a, err
		}
	}
	var err error
	switch spec.Kind {
	case BtrfsRAID0, BtrfsSingle:
		err = mkBtrfs(ctx, &a, name)
	case MDRAID0:
		err = mkMD(ctx, &a, name, record)
	default:
		err = fmt.Errorf("unknown storage kind %q", spec.Kind)
	}
	if err != nil {
		return a, err
	}
	a.Mounted = true
	return a, record(a)
}

func mkBtrfs(ctx context.Context, a *Array, label string) error {
	profile := "raid0"
	if a.Kind == BtrfsSingle {
		profile = "single"
	}
	args := append([]string{"-q", "-f", "-L", "vs-" + label, "-d", profile, "-m", profile}, a.Devices...)
	if _, err := run(ctx, "mkfs.btrfs", args...); err != nil {
		return fmt.Errorf("mkfs.btrfs: %w", err)
	}
	opts := make([]string, len(a.Devices))
	for i, d := range a.Devices {
		opts[i] = "device=" + d
	}
	if err := unix.Mount(a.Devices[0], a.Mount, "btrfs", 0, strings.Join(opts, ",")); err != nil {
		return fmt.Errorf("mount btrfs %s on %s: %w", profile, a.Mount, err)
	}
	return nil
}

func mkMD(ctx context.Context, a *Array, name string, record func(Array) error) error {
	a.MD = "/dev/md/vaultstorm-" + name
	if err := record(*a); err != nil {
		return err
	}
	args := append([]string{"--create", a.MD, "--run", "--quiet", "--level=0", fmt.Sprintf("--raid-devices=%d", len(a.Devices))}, a.Devices...)
	if _, err := run(ctx, "mdadm", args...); err != nil {
		return fmt.Errorf("mdadm --create: %w", err)
	}
	if _, err := run(ctx, "mkfs.ext4", "-q", "-F", a.MD); err != nil {
		return fmt.Errorf("mkfs.ext4 %s: %w", a.MD, err)
	}
	if err := unix.Mount(a.MD, a.Mount, "ext4", 0, ""); err != nil {
		return fmt.Errorf("mount %s on %s: %w", a.MD, a.Mount, err)
	}
	return nil
}

// Destroy unmounts the array, detaches its loop devices and deletes its
// backing files. It is idempotent and tolerates a half-made array: every
// step checks what is really there, since loop device numbers are reused.
func (a Array) Destroy() error {
	var errs []error
	if a.Kind != Dir && a.Mount != "" && isMountPoint(a.Mount) {
		if err := unix.Unmount(a.Mount, 0); err != nil {
			// A process that survived (or a dead disk) can hold it busy;
			// detach lazily so the devices can go.
			if err2 := unix.Unmount(a.Mount, unix.MNT_DETACH); err2 != nil {
				errs = append(errs, fmt.Errorf("unmount %s: %w", a.Mount, err2))
			}
		}
	}
	if a.MD != "" {
		if _, err := os.Stat(a.MD); err == nil {
			if _, err := run(context.Background(), "mdadm", "--stop", a.MD); err != nil {
				errs = append(errs, fmt.Errorf("mdadm --stop %s: %w", a.MD, err))
			}
		}
	}
	for _, f := range a.Files {
		for _, dev := range loopsBackedBy(f) {
			if a.Kind == BtrfsRAID0 {
				// The kernel keeps multi-device btrfs members registered;
				// forget them so a reused loop number starts clean.
				_, _ = run(context.Background(), "btrfs", "device", "scan", "--forget", dev)
			}
			if a.MD != "" {
				_, _ = run(context.Background(), "mdadm", "--zero-superblock", dev)
			}
			if _, err := run(context.Background(), "losetup", "-d", dev); err != nil {
				errs = append(errs, fmt.Errorf("detach %s: %w", dev, err))
			}
		}
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if a.Mount != "" && !isMountPoint(a.Mount) {
		if err := os.RemoveAll(a.Mount); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// FailMember makes member i of the array fail the way a dead disk does:
// the backing file is emptied and the loop device's capacity drops to zero,
// so every read and write to it returns an I/O error. With no redundancy in
// RAID0, the file system on top is lost.
func (a Array) FailMember(i int) error {
	if a.Kind == Dir {
		return errors.New("storage is a plain directory: there is no disk to fail")
	}
	if i < 0 || i >= len(a.Files) {
		return fmt.Errorf("disk %d does not exist (array has %d)", i, len(a.Files))
	}
	if err := os.Truncate(a.Files[i], 0); err != nil {
		return fmt.Errorf("fail disk %d: %w", i, err)
	}
	for _, dev := range loopsBackedBy(a.Files[i]) {
		if _, err := run(context.Background(), "losetup", "--set-capacity", dev); err != nil {
			return fmt.Errorf("fail disk %d (%s): %w", i, dev, err)
		}
	}
	return nil
}

// loopsBackedBy lists the loop devices whose backing file is f.
func loopsBackedBy(f string) []string {
	out, err := run(context.Background(), "losetup", "--noheadings", "--output", "NAME", "--associated", f)
	if err != nil || out == "" {
		return nil
	}
	return strings.Fields(out)
}

func isMountPoint(p string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	abs, _ := filepath.Abs(p)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && unescapeMount(f[4]) == abs {
			return true
		}
	}
	return false
}

// unescapeMount undoes the octal escapes of /proc/self/mountinfo.
func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

func sparseFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create disk image: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("size disk image %s: %w", path, err)
	}
	return nil
}

func run(ctx context.Context, name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("%s %s: %s", name, strings.Join(args, " "), msg)
	}
	return strings.TrimSpace(stdout.String()), nil
}
