package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeVaultDir is a folder with a default "vault" (never run) and a
// vault-1.19.5 that says it is 1.21.0: --vault-version looks next to
// VAULTSTORM_VAULT_BIN.
func fakeVaultDir(t *testing.T) string {
	dir := t.TempDir()
	script := "#!/bin/sh\necho \"Vault v1.21.0 ('0000000000000000000000000000000000000000'), built 2025-01-01T00:00:00Z\"\n"
	if err := os.WriteFile(filepath.Join(dir, "vault-1.19.5"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestVaultVersionBadInput: up and run refuse a bad --vault-version, a
// missing or mislabelled binary, --vault-version with --vault-bin, and a
// bad --repeat, each in one line that says what to do, exit 2, nothing made.
func TestVaultVersionBadInput(t *testing.T) {
	env := []string{"VAULTSTORM_VAULT_BIN=" + filepath.Join(fakeVaultDir(t), "vault")}
	tiny := filepath.Join("testdata", "repeat-tiny.hcl")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"up: not a release", []string{"up", "--vault-version", "1.19"}, "want a Vault release such as 1.19.5"},
		{"up: not built", []string{"up", "--vault-version", "9.9.9"}, "build it with `make vault VAULT_VERSION=9.9.9`"},
		{"up: another version", []string{"up", "--vault-version", "1.19.5"}, "is Vault 1.21.0: rebuild it with `make vault VAULT_VERSION=1.19.5`"},
		{"up: both flags", []string{"up", "--vault-version", "1.19.5", "--vault-bin", "/bin/true"}, "give --vault-version or --vault-bin, not both"},
		{"run: not a release", []string{"run", tiny, "--vault-version", "latest"}, "want a Vault release such as 1.19.5"},
		{"run: not built", []string{"run", tiny, "--vault-version", "9.9.9"}, "build it with `make vault VAULT_VERSION=9.9.9`"},
		{"run: both flags", []string{"run", tiny, "--vault-version", "1.19.5", "--vault-bin", "/bin/true"}, "not both"},
		{"run: repeat 0", []string{"run", tiny, "--repeat", "0"}, "--repeat 0: want 1-100"},
		{"run: repeat with keep", []string{"run", tiny, "--repeat", "2", "--keep"}, "--keep with --repeat"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "made")
			args := append(c.args, "--dir", dir)
			if c.args[0] == "run" {
				args = append(c.args, "--out", dir)
			}
			r := runEnv(t, nil, env, args...)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if r.code != 2 || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
				t.Errorf("exit %d, stderr %q: want exit 2 and one line containing %q", r.code, r.stderr, c.want)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("%s was made", dir)
			}
		})
	}
}

// TestRepeatSeverity: --repeat exits with the worst repetition's status:
// a harness error over INVALID over FAILED over PASSED.
func TestRepeatSeverity(t *testing.T) {
	harness := errors.New("cluster up: no loop device")
	invalid := &exitError{code: 3, err: errors.New("INVALID")}
	fail := failed("FAILED")
	order := []error{nil, fail, invalid, harness}
	for i := 1; i < len(order); i++ {
		if severity(order[i]) <= severity(order[i-1]) {
			t.Errorf("severity(%v) = %d, not above severity(%v) = %d", order[i], severity(order[i]), order[i-1], severity(order[i-1]))
		}
	}
	for err, want := range map[error]string{fail: "FAILED", invalid: "INVALID", harness: "ERROR (cluster up: no loop device)"} {
		if got := verdictOf(err); got != want {
			t.Errorf("verdictOf(%v) = %q, want %q", err, got, want)
		}
	}
	if verdictOf(nil) != "PASSED" {
		t.Errorf("verdictOf(nil) = %q", verdictOf(nil))
	}
}

// versionsDir links the default Vault and the old one side by side, as
// `make vault` and `make vault VAULT_VERSION=1.19.5` leave them in bin/.
func versionsDir(t *testing.T) string {
	t.Helper()
	old := os.Getenv("VAULTSTORM_VAULT_BIN_OLD")
	if old == "" {
		old = filepath.Join(filepath.Dir(vaultBin(t)), "vault-1.19.5")
	}
	if _, err := os.Stat(old); err != nil {
		t.Fatalf("no Vault 1.19.5 at %s: run `make vault VAULT_VERSION=1.19.5` or set VAULTSTORM_VAULT_BIN_OLD", old)
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	for name, target := range map[string]string{"vault": vaultBin(t), "vault-1.19.5": old} {
		abs, err := filepath.Abs(target)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(abs, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestUpVaultVersion: up --vault-version 1.19.5 runs bin/vault-1.19.5.
func TestUpVaultVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a real cluster")
	}
	needRoot(t, "starts Vault nodes in cgroups")
	env := []string{"VAULTSTORM_VAULT_BIN=" + filepath.Join(versionsDir(t), "vault")}
	dir := filepath.Join(t.TempDir(), "cluster")
	t.Cleanup(func() { run(t, nil, "down", "--dir", dir) })
	r := runEnv(t, nil, env, "up", "--dir", dir, "--vault-version", "1.19.5", "--nodes", "1", "--storage", "dir", "--subnet", "76", "--json")
	if r.code != 0 {
		t.Fatalf("up --vault-version 1.19.5: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var st struct {
		Healthy      bool   `json:"healthy"`
		VaultVersion string `json:"vault_version"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || !st.Healthy || st.VaultVersion != "1.19.5" {
		t.Errorf("up --vault-version 1.19.5: healthy %v, version %q (%v)\n%s", st.Healthy, st.VaultVersion, err, r.stdout)
	}
}

// TestRunRepeatCompare: run --repeat 2 --vault-version 1.19.5 makes RUN/1
// and RUN/2, each a whole run on 1.19.5 with its own verdict line, and
// compare takes them as 'RUN/*'.
func TestRunRepeatCompare(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts real clusters")
	}
	needRoot(t, "starts Vault nodes in cgroups")
	env := []string{"VAULTSTORM_VAULT_BIN=" + filepath.Join(versionsDir(t), "vault")}
	out := filepath.Join(t.TempDir(), "repeat")
	r := runEnv(t, nil, env, "run", filepath.Join("testdata", "repeat-tiny.hcl"), "--out", out, "--repeat", "2",
		"--vault-version", "1.19.5", "--subnet", "76", "--seed", "7")
	if r.code != 0 {
		t.Fatalf("run --repeat 2: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for i, d := range []string{"1", "2"} {
		dir := filepath.Join(out, d)
		if want := "repetition " + d + "/2: PASSED " + dir; !strings.Contains(r.stdout, want) {
			t.Errorf("stdout has no line %q:\n%s", want, r.stdout)
		}
		var meta struct {
			Scenario     string `json:"scenario"`
			VaultVersion string `json:"vault_version"`
		}
		b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
		if err != nil || json.Unmarshal(b, &meta) != nil || meta.VaultVersion != "1.19.5" || meta.Scenario != "repeat-tiny" {
			t.Errorf("repetition %d: meta.json %s (%v): want scenario repeat-tiny on Vault 1.19.5", i+1, b, err)
		}
		if hcl, _ := os.ReadFile(filepath.Join(dir, "scenario.hcl")); !strings.Contains(string(hcl), `vault_version`) || !strings.Contains(string(hcl), `"1.19.5"`) {
			t.Errorf("repetition %d: scenario.hcl does not name vault_version 1.19.5:\n%s", i+1, hcl)
		}
	}
	if strings.Count(r.stdout, "run directory: ") != 2 {
		t.Errorf("want two runs' output:\n%s", r.stdout)
	}

	pattern := filepath.Join(out, "*")
	c := run(t, nil, "compare", pattern, pattern)
	if c.code != 0 {
		t.Fatalf("compare '%s' '%s': exit %d\n%s%s", pattern, pattern, c.code, c.stdout, c.stderr)
	}
	for _, side := range []string{"A (baseline): 2 runs (", "B (candidate): 2 runs ("} {
		if !strings.Contains(c.stdout, side) {
			t.Errorf("compare output has no %q: the glob did not take both repetitions\n%s", side, c.stdout)
		}
	}
}
