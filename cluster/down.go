package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Cleaner removes machine-wide state a fault may have left (firewall rules,
// queueing disciplines). Down runs every registered cleaner.
type Cleaner func(c *Cluster) error

var cleaners []Cleaner

// RegisterCleaner adds a cleaner run by every Down. Fault packages register
// theirs at init, so `down` undoes a fault that a crash left in place.
func RegisterCleaner(f Cleaner) { cleaners = append(cleaners, f) }

// Down kills every server, removes every data disk, mount and loop device,
// runs the registered cleaners and deletes the cluster directory. It keeps
// going past errors and returns them all.
func (c *Cluster) Down(ctx context.Context) error {
	if c.ext != nil {
		// Not ours to tear down: only the run's record of it goes.
		return os.RemoveAll(c.Dir)
	}
	var errs []error
	for _, n := range c.all() {
		if c.provider.Alive(ctx, c, n) {
			if err := c.provider.Signal(ctx, c, n, syscall.SIGKILL); err != nil {
				errs = append(errs, fmt.Errorf("kill %s: %w", n.Name, err))
			}
		}
	}
	// Containers go before the arrays they bind-mount.
	if err := c.provider.Teardown(ctx, c); err != nil {
		errs = append(errs, err)
	}
	for _, n := range c.all() {
		if err := n.Array.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("storage of %s: %w", n.Name, err))
		}
	}
	// Arrays of replaced generations are destroyed on replace, but a crash
	// in between leaves their backing files behind.
	for _, a := range c.State.Retired {
		if err := a.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("retired storage %s: %w", a.Mount, err))
		}
	}
	if err := c.removeCgroups(); err != nil {
		errs = append(errs, err)
	}
	for _, f := range cleaners {
		if err := f(c); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		// Keep the state so the next down (or up) can finish the job.
		_ = c.Save()
		return errors.Join(errs...)
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		return fmt.Errorf("remove %s: %w", c.Dir, err)
	}
	return nil
}
