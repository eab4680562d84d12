package chaos

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/cluster/external"
)

// externalOps are the inventory commands each fault needs on a cluster
// vaultstorm did not make. A fault not listed cannot run there: it acts on
// what only the harness's own clusters expose (disks, peers.json, the
// seal, the binary).
var externalOps = map[string][]string{
	"kill":         {external.OpKill},
	"stop":         {external.OpStop},
	"pause":        {external.OpPause, external.OpResume},
	"partition":    {external.OpPartition, external.OpHeal},
	"spot_reclaim": {external.OpReclaim},
}

// Available says why f cannot run on c, or nil: on a cluster driven by an
// inventory, whether the inventory has the commands f needs; otherwise
// f's own answer. restart says a kill or stop is followed by a start.
func Available(f Fault, c *cluster.Cluster, restart bool) error {
	fl := c.External()
	if fl == nil {
		return f.Available(c)
	}
	ops, ok := externalOps[f.Kind()]
	if !ok {
		return fmt.Errorf("%s cannot run on a cluster vaultstorm did not make (there: %s)", f.Kind(), strings.Join(slices.Sorted(maps.Keys(externalOps)), ", "))
	}
	if p, ok := f.(Partition); ok && p.Isolate {
		return errors.New("partition with isolate = true disconnects a container: on an inventory's cluster, write the partition command to do what you mean")
	}
	if restart && (f.Kind() == "kill" || f.Kind() == "stop") {
		ops = append(ops, external.OpStart)
	}
	var errs []error
	for _, op := range ops {
		errs = append(errs, fl.Inv.Commands.Missing(op))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %w", fl.Inv.File, err)
	}
	return nil
}

// partitionCommand cuts n off through the inventory's partition command;
// the returned heal runs its heal command.
func partitionCommand(ctx context.Context, c *cluster.Cluster, n *cluster.Node) (func() error, error) {
	if err := c.RunCommand(ctx, external.OpPartition, n); err != nil {
		return nil, err
	}
	return func() error { return c.RunCommand(context.WithoutCancel(ctx), external.OpHeal, n) }, nil
}
