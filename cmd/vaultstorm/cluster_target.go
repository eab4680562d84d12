package main

import (
	"fmt"

	"github.com/vaultstorm/vaultstorm/cluster"
	"github.com/vaultstorm/vaultstorm/load"
)

// clusterTarget is the cluster `vaultstorm up` made in --dir.
func clusterTarget() (load.Target, error) {
	c, err := cluster.Open(clusterDir)
	if err != nil {
		return load.Target{}, fmt.Errorf("%w (or set VAULT_ADDR, VAULT_CACERT and VAULT_TOKEN for another cluster)", err)
	}
	return targetOf(c)
}

func targetOf(c *cluster.Cluster) (load.Target, error) {
	tok, err := c.RootToken()
	if err != nil {
		return load.Target{}, err
	}
	t := load.Target{CACert: c.CAFile(), Token: tok}
	for _, n := range c.State.Nodes {
		t.Names = append(t.Names, n.Name)
		t.Addrs = append(t.Addrs, n.APIAddr())
	}
	return t, nil
}
