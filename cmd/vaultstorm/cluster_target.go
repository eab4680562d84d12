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
	names, addrs, ca, token, err := c.Endpoints()
	if err != nil {
		return load.Target{}, err
	}
	return load.Target{Names: names, Addrs: addrs, CACert: ca, Token: token}, nil
}
