package chaos

import (
	"strings"
	"testing"

	"github.com/vaultstorm/vaultstorm/cluster"
)

// TestIsolateNeedsContainers: isolation disconnects a container from its
// network; on processes it is refused, saying what to do.
func TestIsolateNeedsContainers(t *testing.T) {
	c := &cluster.Cluster{State: &cluster.State{Provider: "process"}}
	err := Partition{Isolate: true}.Available(c)
	if err == nil || !strings.Contains(err.Error(), "--provider docker") {
		t.Errorf("isolate on processes: %v, want a refusal naming --provider docker", err)
	}
	c.State.Provider = "docker"
	if err := (Partition{Isolate: true}).Available(c); err != nil {
		t.Errorf("isolate on docker: %v", err)
	}
}
