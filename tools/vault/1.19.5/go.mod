module github.com/vaultstorm/vaultstorm/tools/vault

go 1.25

require (
	github.com/hashicorp/vault v1.19.5
	// v1.19.5's own sdk is an in-repo replace; v0.17.0 is the published
	// release with the same API.
	github.com/hashicorp/vault/sdk v0.17.0
)

// Vault's own non-local replace lines; replaces in a dependency's go.mod are
// ignored, so they are repeated here.
replace github.com/99designs/keyring => github.com/Jeffail/keyring v1.2.3

replace github.com/ma314smith/signedxml v1.1.1 => github.com/moov-io/signedxml v1.1.1
