// Command vault is HashiCorp Vault's own CLI and server, built from the Go
// module at the version pinned in the folder's go.mod. It lives in its own
// module so that vaultstorm's go.mod does not carry Vault's dependency tree.
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
