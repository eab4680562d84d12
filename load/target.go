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
}
