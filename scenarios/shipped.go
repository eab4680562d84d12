package scenarios

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

// shipped holds the scenarios built into the binary, so `vaultstorm run
// spot-reclaim` works with no file at hand.
//
//go:embed *.hcl
var shipped embed.FS

// Info is one shipped scenario for listings.
type Info struct {
	Name        string
	Description string
}

// Shipped lists the built-in scenarios, sorted by name.
func Shipped() []Info {
	var out []Info
	for _, n := range shippedNames() {
		sc, err := LoadShipped(n)
		if err != nil {
			// A broken shipped file is a build defect that TestShippedScenarios
			// catches; listing it with the error beats hiding it.
			out = append(out, Info{Name: n, Description: "BROKEN: " + err.Error()})
			continue
		}
		out = append(out, Info{Name: sc.Name, Description: sc.Description})
	}
	return out
}

func shippedNames() []string {
	entries, _ := fs.ReadDir(shipped, ".")
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".hcl"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Source returns the HCL text of a shipped scenario.
func Source(name string) ([]byte, error) {
	b, err := shipped.ReadFile(name + ".hcl")
	if err != nil {
		return nil, fmt.Errorf("no shipped scenario %q (have: %s)", name, strings.Join(shippedNames(), ", "))
	}
	return b, nil
}

// LoadShipped parses a built-in scenario by name.
func LoadShipped(name string) (*Scenario, error) {
	src, err := Source(name)
	if err != nil {
		return nil, err
	}
	sc, err := Parse(path.Join("scenarios", name+".hcl"), src)
	if err != nil {
		return nil, err
	}
	sc.File = "shipped:" + name
	return sc, nil
}

// Load resolves nameOrPath: an existing file, or anything that looks like a
// path (has a slash or ends in .hcl), is read from disk; otherwise it is the
// name of a shipped scenario.
func Load(nameOrPath string) (*Scenario, error) {
	looksLikePath := strings.ContainsRune(nameOrPath, os.PathSeparator) || strings.ContainsRune(nameOrPath, '/') ||
		strings.HasSuffix(nameOrPath, ".hcl")
	if st, err := os.Stat(nameOrPath); err == nil && !st.IsDir() {
		looksLikePath = true
	}
	if !looksLikePath {
		return LoadShipped(nameOrPath)
	}
	src, err := os.ReadFile(nameOrPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("scenario file %s does not exist (shipped scenarios: %s)", nameOrPath, strings.Join(shippedNames(), ", "))
		}
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	return Parse(nameOrPath, src)
}
