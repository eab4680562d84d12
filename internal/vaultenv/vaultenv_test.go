package vaultenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
)

// reset forgets the snapshot, so each test starts before Isolate.
func reset(t *testing.T) {
	t.Helper()
	mu.Lock()
	isolated, snapshot = false, nil
	mu.Unlock()
	t.Cleanup(func() {
		mu.Lock()
		isolated, snapshot = false, nil
		mu.Unlock()
	})
}

// A user's environment after `eval "$(vaultstorm env)"` for a cluster that
// is gone since, plus a namespace and headers.
var userEnv = map[string]string{
	"VAULT_ADDR":        "https://127.0.0.1:1",
	"VAULT_CACERT":      "/nonexistent/root-ca.pem",
	"VAULT_TOKEN":       "bogus-token",
	"VAULT_NAMESPACE":   "bogus-ns",
	"VAULT_HEADERS":     "not json",
	"VAULT_MAX_RETRIES": "many",
	"VAULT_EMPTY":       "",
}

func setUserEnv(t *testing.T) {
	for k, v := range userEnv {
		t.Setenv(k, v)
	}
}

func TestIsolateSnapshotsAndUnsets(t *testing.T) {
	reset(t)
	setUserEnv(t)
	t.Setenv("VAULTSTORM_VAULT_BIN", "/keep/me") // not VAULT_*: untouched
	if v := Get("VAULT_TOKEN"); v != "bogus-token" {
		t.Errorf("before Isolate, Get reads the live environment: got %q", v)
	}
	Isolate()
	for k, want := range userEnv {
		if v, ok := os.LookupEnv(k); ok {
			t.Errorf("%s still in the environment after Isolate: %q", k, v)
		}
		if v, ok := Lookup(k); !ok || v != want {
			t.Errorf("Lookup(%s) = %q, %v; want %q, true", k, v, ok, want)
		}
	}
	if _, ok := Lookup("VAULT_SKIP_VERIFY"); ok {
		t.Error("Lookup of an unset variable says it was set")
	}
	if os.Getenv("VAULTSTORM_VAULT_BIN") != "/keep/me" {
		t.Error("Isolate removed a variable that is not VAULT_*")
	}
	// A second call keeps the first snapshot and removes what was set since.
	os.Setenv("VAULT_TOKEN", "later")
	Isolate()
	if _, ok := os.LookupEnv("VAULT_TOKEN"); ok {
		t.Error("second Isolate left VAULT_TOKEN set")
	}
	if Get("VAULT_TOKEN") != "bogus-token" {
		t.Errorf("second Isolate replaced the snapshot: %q", Get("VAULT_TOKEN"))
	}
}

// TestChildrenAndClientsSeeNothing: after Isolate a child process inherits
// no VAULT_* variable, and vault/api builds a client with none of the
// user's settings (before, the bad VAULT_CACERT made NewClient fail).
func TestChildrenAndClientsSeeNothing(t *testing.T) {
	reset(t)
	setUserEnv(t)
	if _, err := api.NewClient(&api.Config{Address: "https://127.0.0.62:8200"}); err == nil {
		t.Fatal("precondition: with the user's VAULT_* set, api.NewClient should fail")
	}
	Isolate()
	out, err := exec.Command("env").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, Prefix) {
			t.Errorf("child process sees %s", line)
		}
	}
	cl, err := api.NewClient(&api.Config{Address: "https://127.0.0.62:8200"})
	if err != nil {
		t.Fatalf("api.NewClient after Isolate: %v", err)
	}
	if cl.Token() != "" || cl.Namespace() != "" || cl.Address() != "https://127.0.0.62:8200" {
		t.Errorf("client took settings from the environment: token %q, namespace %q, address %q", cl.Token(), cl.Namespace(), cl.Address())
	}
}
