package scenarios

import (
	"fmt"
	"io"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
)

// Error is what Parse returns for a file it rejects. Its Error() is one line
// per problem, each "file:line:col: summary: detail", so a CI log points at the
// exact spot; Pretty renders the same problems with source snippets.
type Error struct {
	Diags hcl.Diagnostics // errors and warnings, in file order of discovery
	Files map[string]*hcl.File
}

func (e *Error) Error() string {
	var lines []string
	for _, d := range e.Diags {
		if d.Severity == hcl.DiagError {
			lines = append(lines, formatDiag(d))
		}
	}
	if len(lines) == 0 {
		return "invalid scenario"
	}
	return strings.Join(lines, "\n")
}

// Pretty writes every diagnostic with the source lines it points at, as
// Vault and Terraform print configuration errors.
func (e *Error) Pretty(w io.Writer, width uint, color bool) error {
	return hcl.NewDiagnosticTextWriter(w, e.Files, width, color).WriteDiagnostics(e.Diags)
}

// formatDiag renders "file:line:col: summary: detail". hcl's own Error()
// prints "file:line,col-col", which editors and CI annotators do not link.
func formatDiag(d *hcl.Diagnostic) string {
	var b strings.Builder
	if d.Subject != nil {
		fmt.Fprintf(&b, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
	}
	b.WriteString(d.Summary)
	if d.Detail != "" {
		b.WriteString(": ")
		b.WriteString(d.Detail)
	}
	return b.String()
}

// suggest returns ` Did you mean "x"?` when one of options is close to given.
func suggest(given string, options []string) string {
	best, bestDist := "", 3
	for _, o := range options {
		if d := levenshtein.Distance(given, o, nil); d < bestDist {
			best, bestDist = o, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}
