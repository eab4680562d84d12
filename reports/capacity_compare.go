package reports

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// CapacityRow is one series of two capacity runs side by side.
type CapacityRow struct {
	Series    string
	A, B      string   // each side's answer in words
	Change    *float64 // (B−A)/A of the capacity; nil when either side has none
	Regressed bool
	Why       string
}

// CapacityComparison is `compare` of two capacity runs: how far each knee
// moved.
type CapacityComparison struct {
	MaxRegression float64
	Rows          []CapacityRow
}

// Regressed: some series lost more capacity than allowed, or lost its
// answer.
func (c *CapacityComparison) Regressed() bool {
	for _, r := range c.Rows {
		if r.Regressed {
			return true
		}
	}
	return false
}

// CompareCapacity matches the series of a and b by name. A series
// regresses when B's capacity is below A's by more than maxReg (a
// fraction; negative: never), or when A measured one and B did not. Runs
// judged against different SLOs are not comparable.
func CompareCapacity(a, b *rundir.Capacity, maxReg float64) (*CapacityComparison, error) {
	if a.SLO.P99Ms != b.SLO.P99Ms || a.SLO.ErrorPct != b.SLO.ErrorPct || a.SLO.AchievedPct != b.SLO.AchievedPct {
		return nil, fmt.Errorf("the runs were judged against different SLOs (A: p99 ≤ %gms, errors ≤ %g%%, achieved ≥ %g%%; B: p99 ≤ %gms, errors ≤ %g%%, achieved ≥ %g%%): their capacities are not comparable",
			a.SLO.P99Ms, a.SLO.ErrorPct, a.SLO.AchievedPct, b.SLO.P99Ms, b.SLO.ErrorPct, b.SLO.AchievedPct)
	}
	c := &CapacityComparison{MaxRegression: maxReg}
	inB := map[string]rundir.CapacitySeries{}
	for _, s := range b.Series {
		inB[s.Name] = s
	}
	seen := map[string]bool{}
	for _, sa := range a.Series {
		seen[sa.Name] = true
		row := CapacityRow{Series: sa.Name, A: CapacityText(sa), B: "—"}
		sb, ok := inB[sa.Name]
		switch {
		case !ok:
			row.Regressed, row.Why = sa.Capacity != nil, "not in B"
		default:
			row.B = CapacityText(sb)
			switch {
			case sa.Capacity != nil && sb.Capacity != nil:
				ch := (*sb.Capacity - *sa.Capacity) / *sa.Capacity
				row.Change = &ch
				if maxReg >= 0 && -ch > maxReg {
					row.Regressed, row.Why = true, fmt.Sprintf("knee moved down %.1f%% (allowed %.0f%%)", -100*ch, 100*maxReg)
				}
				if sa.Status == rundir.SeriesCeiling || sb.Status == rundir.SeriesCeiling {
					row.Why = strings.TrimPrefix(row.Why+"; a ceiling is a lower bound, not a knee", "; ")
				}
			case sa.Capacity != nil:
				row.Regressed, row.Why = true, "B has no capacity: "+sb.Status
			case sb.Capacity == nil:
				row.Why = "neither side measured one"
			}
		}
		c.Rows = append(c.Rows, row)
	}
	for _, sb := range b.Series {
		if !seen[sb.Name] {
			c.Rows = append(c.Rows, CapacityRow{Series: sb.Name, A: "—", B: CapacityText(sb), Why: "not in A"})
		}
	}
	return c, nil
}

func (r CapacityRow) ChangeText() string {
	if r.Change == nil {
		return "—"
	}
	return fmt.Sprintf("%+.1f%%", 100**r.Change)
}

func (r CapacityRow) Verdict() string {
	if r.Regressed {
		return "REGRESSED"
	}
	return "ok"
}

// WriteTable writes the comparison as an aligned text table.
func (c *CapacityComparison) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIES\tA\tB\tCHANGE\tVERDICT\tNOTE")
	for _, r := range c.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Series, r.A, r.B, r.ChangeText(), r.Verdict(), r.Why)
	}
	return tw.Flush()
}

// WriteMarkdown writes the comparison as a Markdown table.
func (c *CapacityComparison) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| series | A | B | change | verdict | note |\n|---|---|---|---|---|---|\n")
	for _, r := range c.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", mdCell(r.Series), mdCell(r.A), mdCell(r.B), r.ChangeText(), r.Verdict(), mdCell(r.Why))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteHTML writes the comparison as a page in the report's style.
func (c *CapacityComparison) WriteHTML(w io.Writer) error {
	return capacityCompareTmpl.Execute(w, c)
}

var capacityCompareTmpl = template.Must(template.New("capcmp").Funcs(funcs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>vaultstorm capacity comparison</title><style>{{css}}</style></head>
<body><main>
<header class="top"><div><h1>capacity: B against A <small>vaultstorm compare</small></h1></div>
<div class="verdict {{if .Regressed}}fail{{else}}pass{{end}}">{{if .Regressed}}REGRESSED{{else}}OK{{end}}</div></header>
<section><table><tr><th class="l">series</th><th class="l">A</th><th class="l">B</th><th>change</th><th class="l">verdict</th><th class="l">note</th></tr>
{{range .Rows}}<tr><td class="l">{{.Series}}</td><td class="l">{{.A}}</td><td class="l">{{.B}}</td><td>{{.ChangeText}}</td><td class="l{{if .Regressed}} bad{{end}}">{{.Verdict}}</td><td class="l">{{.Why}}</td></tr>
{{end}}</table></section>
</main></body></html>
`))
