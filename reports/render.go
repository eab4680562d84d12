package reports

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// Files Render writes into the run directory.
const (
	HTMLFile     = "report.html"
	JUnitFile    = "junit.xml"
	MarkdownFile = "summary.md"
	HgrmFile     = "latency.hgrm"
)

// Render writes report.html, junit.xml, summary.md and latency.hgrm into
// runDir, from the files in runDir alone. When GITHUB_STEP_SUMMARY names a
// file, summary.md is appended to it too, so a CI job shows the verdict on
// its page. It does not decide the exit code: a failed run renders fine. A
// capacity run (capacity.json) gets its own report.html, junit.xml and
// summary.md.
func Render(runDir string) error {
	var doc rundir.Capacity
	switch err := rundir.ReadJSON(runDir, rundir.CapacityFile, &doc); {
	case err == nil:
		var meta rundir.Meta
		if err := rundir.ReadJSON(runDir, rundir.MetaFile, &meta); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		md, err := renderCapacity(runDir, &doc, meta)
		if err != nil {
			return err
		}
		return stepSummary(md)
	case !errors.Is(err, os.ErrNotExist):
		return err
	}
	r, err := Load(runDir)
	if err != nil {
		return err
	}
	pg, err := buildPage(r)
	if err != nil {
		return fmt.Errorf("%s: %w", runDir, err)
	}
	html, err := renderHTML(pg)
	if err != nil {
		return err
	}
	junit, err := JUnit(r)
	if err != nil {
		return err
	}
	md := Markdown(r)
	var hgrm bytes.Buffer
	if err := Hgrm(&hgrm, r); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{{HTMLFile, html}, {JUnitFile, junit}, {MarkdownFile, []byte(md)}, {HgrmFile, hgrm.Bytes()}} {
		if err := writeAtomic(runDir, f.name, f.b); err != nil {
			return err
		}
	}
	return stepSummary(md)
}

// stepSummary appends summary.md to the file GITHUB_STEP_SUMMARY names, if
// any, so a CI job shows the verdict on its page.
func stepSummary(md string) error {
	if p := os.Getenv("GITHUB_STEP_SUMMARY"); p != "" {
		f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("GITHUB_STEP_SUMMARY %s: %w", p, err)
		}
		_, werr := f.WriteString(md + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("GITHUB_STEP_SUMMARY %s: %w", p, werr)
		}
	}
	return nil
}

// writeAtomic replaces dir/name through a temporary file, so a report being
// regenerated is never seen half written.
func writeAtomic(dir, name string, b []byte) error {
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	_, werr := tmp.Write(b)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp.Name(), 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), filepath.Join(dir, name))
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), werr)
	}
	return nil
}
