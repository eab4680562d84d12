package main

import (
	"errors"

	"github.com/vaultstorm/vaultstorm/load"
)

// clusterTarget is replaced by the cluster package's state once `up` exists.
func clusterTarget() (load.Target, error) {
	return load.Target{}, errors.New("no cluster: run `vaultstorm up` first, or set VAULT_ADDR, VAULT_CACERT and VAULT_TOKEN")
}
