// Package fvtest runs the fake Vault (load/fakevault/cmd/fakevault) in a
// process of its own for tests: behind verified TLS, so that starving the
// generator of CPU does not starve the server too.
package fvtest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// bin builds the fake once per test binary: every test may use it, so its
// directory outlives each test (RemoveBin, from TestMain, removes it).
var bin = sync.OnceValues(func() (string, error) {
	var err error
	if binDir, err = os.MkdirTemp("", "fakevault-bin"); err != nil {
		return "", err
	}
	dir := binDir
	p := filepath.Join(dir, "fakevault")
	out, err := exec.Command("go", "build", "-o", p, "github.com/vaultstorm/vaultstorm/load/fakevault/cmd/fakevault").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("build the fake Vault: %v\n%s", err, out)
	}
	return p, nil
})

// RemoveBin removes the built fake, if any: call it from TestMain after
// m.Run.
func RemoveBin() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

var binDir string

// Start runs the fake with args (e.g. "--capacity", "300", "--for", "10m")
// on one thread, stops it with SIGTERM when the test ends (so that it
// removes its CA's directory), and returns the environment it prints:
// VAULT_ADDR, VAULT_CACERT, VAULT_TOKEN, as "KEY=value" strings.
func Start(t testing.TB, args ...string) []string {
	t.Helper()
	p, err := bin()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p, args...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("fake vault: %v", err)
	}
	return strings.Fields(strings.TrimPrefix(line, "export "))
}

// Env turns Start's "KEY=value" strings into a map.
func Env(kv []string) map[string]string {
	m := map[string]string{}
	for _, f := range kv {
		k, v, _ := strings.Cut(f, "=")
		m[k] = v
	}
	return m
}
