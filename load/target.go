package load

// Target is the Vault the load is sent to: the nodes' API addresses (in
// order, with their names), the CA bundle that verifies them, and a token.
// The CLI builds it from the cluster state of `vaultstorm up`, or from
// VAULT_ADDR / VAULT_CACERT / VAULT_TOKEN for any other cluster.
type Target struct {
	Names  []string // node names, parallel to Addrs ("" when unknown)
	Addrs  []string // e.g. https://127.0.0.11:8200
	CACert string   // PEM file; TLS is always verified against it
	Token  string
	// Discover makes the node list follow the cluster's own (raft
	// configuration and sys/ha-status, read with Token) while the load
	// runs: for a cluster the harness did not make, where a replacement
	// appears without it. A token that may not read them keeps Addrs.
	Discover bool
}
