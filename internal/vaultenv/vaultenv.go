// Package vaultenv keeps the user's VAULT_* environment away from the
// harness's own Vault clients.
//
// vault/api reads the environment in every api.NewClient: VAULT_CACERT,
// VAULT_ADDR, VAULT_MAX_RETRIES, … through DefaultConfig (and fails when one
// is bad, e.g. a VAULT_CACERT that no longer exists), then the token from
// VAULT_TOKEN, the namespace from VAULT_NAMESPACE and headers from
// VAULT_HEADERS. A user who ran `eval "$(vaultstorm env)"` for one cluster
// would otherwise have those sent to, or break, every cluster the harness
// makes later. So the CLI calls Isolate first thing: it keeps a snapshot of
// every VAULT_* variable and removes them from the process, and so from
// every vault/api client and every child process. Code that points the
// harness at a user's Vault on purpose (load and verify with VAULT_ADDR)
// reads the snapshot through Lookup.
package vaultenv

import (
	"os"
	"strings"
	"sync"
)

// Prefix is what the variables Isolate takes begin with.
const Prefix = "VAULT_"

var (
	mu       sync.Mutex
	isolated bool
	snapshot map[string]string
)

// Isolate takes a snapshot of every VAULT_* variable and unsets them all.
// Call it at the very start of main, before any goroutine or client
// exists. A second call keeps the first snapshot and unsets any VAULT_*
// variable set since.
func Isolate() {
	mu.Lock()
	defer mu.Unlock()
	if !isolated {
		snapshot = map[string]string{}
	}
	for _, kv := range os.Environ() {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, Prefix) {
			continue
		}
		if !isolated {
			snapshot[k] = v
		}
		os.Unsetenv(k)
	}
	isolated = true
}

// Lookup returns a VAULT_* variable as it was when Isolate ran. Before
// Isolate (a test calling code directly) it reads the live environment.
func Lookup(name string) (string, bool) {
	mu.Lock()
	defer mu.Unlock()
	if !isolated {
		return os.LookupEnv(name)
	}
	v, ok := snapshot[name]
	return v, ok
}

// Get is Lookup without the flag: "" when unset.
func Get(name string) string {
	v, _ := Lookup(name)
	return v
}
