package reports

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
)

func (c *Comparison) header() string {
	n := func(d []string) string {
		if len(d) == 1 {
			return d[0]
		}
		return fmt.Sprintf("%d runs (%s, …)", len(d), d[0])
	}
	return fmt.Sprintf("A (baseline): %s\nB (candidate): %s", n(c.A), n(c.B))
}

func (c *Comparison) verdictLine() string {
	if c.Regressed() {
		var ks []string
		for _, r := range c.Regressions {
			ks = append(ks, fmt.Sprintf("%s %s", r.Key, r.deltaString()))
		}
		return fmt.Sprintf("REGRESSION: B is worse than A beyond the threshold in %d figure(s): %s", len(c.Regressions), strings.Join(ks, ", "))
	}
	return fmt.Sprintf("OK: no figure of B is worse than A beyond its threshold (default %g%%)", c.Opts.MaxRegression*100)
}

func side(v float64, spread string, row Row) string {
	s := row.fmtVal(v)
	if spread != "" {
		s += " " + spread
	}
	return s
}

// WriteTable writes the comparison as an aligned console table.
func (c *Comparison) WriteTable(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintln(&b, c.header())
	for _, x := range c.Warnings {
		fmt.Fprintln(&b, "warning:", x)
	}
	fmt.Fprintln(&b)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\tA\tB\tchange\tthreshold\tnoise test\tverdict\t")
	for _, r := range c.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Key, side(r.CenterA, r.SpreadA, r), side(r.CenterB, r.SpreadB, r),
			r.deltaString(), r.thresholdString(), r.pString(), joinNote(r.verdict(), r.Note))
	}
	tw.Flush()
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, c.verdictLine())
	_, err := w.Write(b.Bytes())
	return err
}

// WriteMarkdown writes the comparison as a Markdown table (for a CI job
// summary or a pull request comment).
func (c *Comparison) WriteMarkdown(w io.Writer) error {
	var b bytes.Buffer
	icon := "✅"
	if c.Regressed() {
		icon = "❌"
	}
	fmt.Fprintf(&b, "## %s vaultstorm compare\n\n%s\n\n", icon, c.verdictLine())
	for _, l := range strings.Split(c.header(), "\n") {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	for _, x := range c.Warnings {
		fmt.Fprintf(&b, "- ⚠️ %s\n", x)
	}
	b.WriteString("\n| metric | A | B | change | threshold | noise test | verdict |\n|---|---:|---:|---:|---:|---|---|\n")
	for _, r := range c.Rows {
		v := joinNote(r.verdict(), r.Note)
		if r.Regressed {
			v = "**" + v + "**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", mdCell(r.Key), side(r.CenterA, r.SpreadA, r), side(r.CenterB, r.SpreadB, r),
			r.deltaString(), r.thresholdString(), r.pString(), v)
	}
	_, err := w.Write(b.Bytes())
	return err
}

var compareTmpl = template.Must(template.New("compare").Funcs(funcs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>vaultstorm compare — {{if .C.Regressed}}REGRESSION{{else}}OK{{end}}</title>
<style>{{css}}</style></head>
<body><main>
<header class="top" id="header"><div><h1>{{.Scenario}} <small>vaultstorm compare</small></h1>
<p class="lead">A (baseline, blue): {{range $i, $d := .C.A}}{{if $i}}, {{end}}<code>{{$d}}</code>{{end}}<br>B (candidate, orange): {{range $i, $d := .C.B}}{{if $i}}, {{end}}<code>{{$d}}</code>{{end}}</p></div>
<div class="verdict {{if .C.Regressed}}fail{{else}}pass{{end}}" id="verdict">{{if .C.Regressed}}REGRESSION{{else}}OK{{end}}</div></header>
<div class="banner {{if .C.Regressed}}failed{{else}}ok{{end}}">{{.Verdict}}{{range .C.Warnings}}<br>warning: {{.}}{{end}}</div>
<section id="overlay"><h2>Latency over time, A and B overlaid</h2>
<p class="caption">p99 per second (solid) and p50 (dashed), time since the start of each run; bands are A's faults.</p>
{{range .Charts}}{{.}}{{end}}</section>
<section id="distribution"><h2>Latency distribution, A and B</h2><div class="grid2">{{range .Dists}}<div>{{.}}</div>{{end}}</div></section>
<section id="table"><h2>All figures</h2>
<table><tr><th class="l">metric</th><th>A</th><th>B</th><th>change</th><th>threshold</th><th class="l">noise test</th><th class="l">verdict</th></tr>
{{range .Rows}}<tr><td class="l">{{.Key}}</td><td>{{.CellA}}</td><td>{{.CellB}}</td><td{{if .Regressed}} class="bad"{{else if .Improved}} class="good"{{end}}>{{.Delta}}</td><td>{{.Thr}}</td><td class="l muted">{{.PStr}}</td><td class="l{{if .Regressed}} bad{{end}}">{{.Verdict}}</td></tr>
{{end}}</table></section>
</main></body></html>
`))

type cmpRow struct {
	Row
	CellA, CellB, Delta, Thr, PStr, Verdict string
}

// WriteHTML writes a self-contained HTML page: the table, and both sides'
// latency charts overlaid (every repetition drawn, A in blue, B in orange).
func (c *Comparison) WriteHTML(w io.Writer, a, b []*Run) error {
	var rows []cmpRow
	for _, r := range c.Rows {
		rows = append(rows, cmpRow{r, side(r.CenterA, r.SpreadA, r), side(r.CenterB, r.SpreadB, r), r.deltaString(),
			r.thresholdString(), r.pString(), joinNote(r.verdict(), r.Note)})
	}
	var ops []string
	seen := map[string]bool{}
	for _, r := range append(append([]*Run(nil), a...), b...) {
		for _, op := range r.Ops {
			if !seen[op] {
				seen[op] = true
				ops = append(ops, op)
			}
		}
	}
	opOrder(ops)
	var charts []timeChart
	for _, op := range ops {
		charts = append(charts, overlayChart(op, a, b))
	}
	var svgs []template.HTML
	if len(charts) > 0 {
		timeAxis(charts[len(charts)-1].p, charts[len(charts)-1].p.X.Max, true)
		var err error
		if svgs, err = renderAligned(charts); err != nil {
			return err
		}
	}
	var dists []template.HTML
	for _, op := range ops {
		s, err := overlayDist(op, a, b)
		if err != nil {
			return err
		}
		dists = append(dists, s)
	}
	data := struct {
		C        *Comparison
		Rows     []cmpRow
		Charts   []template.HTML
		Dists    []template.HTML
		Verdict  string
		Scenario string
	}{c, rows, svgs, dists, c.verdictLine(), orDash(scenarioOf(a[0]))}
	var buf bytes.Buffer
	if err := compareTmpl.Execute(&buf, data); err != nil {
		return fmt.Errorf("compare html: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

func overlayChart(op string, a, b []*Run) timeChart {
	p := newPlot(op+" latency per second: A (blue) vs B (orange)", "latency (log)")
	msLogAxis(&p.Y)
	dur := 0.0
	for _, r := range append(append([]*Run(nil), a...), b...) {
		dur = math.Max(dur, secs(r.End, r.Start))
	}
	timeAxis(p, dur, false)
	p.Add(faultBands(a[0].Faults, a[0].Start, a[0].End, true))
	var all [][]float64
	for si, runs := range [][]*Run{a, b} {
		col := colA
		name := "A"
		if si == 1 {
			col, name = colB, "B"
		}
		for i, r := range runs {
			var xs, p50, p99 []float64
			for _, s := range r.Samples {
				st := s.Ops[op]
				xs = append(xs, secs(s.T, r.Start)+interval(s)/2)
				if st.Count-st.Errors <= 0 {
					p50, p99 = append(p50, math.NaN()), append(p99, math.NaN())
					continue
				}
				p50, p99 = append(p50, st.P50), append(p99, st.P99)
			}
			dx, d99, _ := downsample(xs, p99, true)
			_, d50, _ := downsample(xs, p50, true)
			all = append(all, d99, d50)
			n99, n50 := "", ""
			if i == 0 {
				n99, n50 = name+" p99", name+" p50"
			}
			addSeries(p, series{name: n99, color: col, width: 1.2, xs: dx, ys: d99}, true)
			addSeries(p, series{name: n50, color: col, width: 0.9, dash: []vg.Length{3, 2}, xs: dx, ys: d50}, true)
		}
	}
	lo, hi := minMaxPositive(all...)
	logRange(&p.Y, lo, hi)
	return timeChart{p, 230}
}

func overlayDist(op string, a, b []*Run) (template.HTML, error) {
	p := newPlot(op+" latency by percentile, whole run", "latency (log)")
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = pctTicks{}
	p.X.Label.Text = "percentile"
	p.X.Label.TextStyle.Font.Size = labelFont
	msLogAxis(&p.Y)
	p.Legend.Left = true
	xmax := 100.0
	var all [][]float64
	for si, runs := range [][]*Run{a, b} {
		col, name := colA, "A"
		if si == 1 {
			col, name = colB, "B"
		}
		for i, r := range runs {
			h := r.Hist[op]
			if h == nil {
				continue
			}
			xs, ys := distribution(h, r.PerMs)
			if len(xs) == 0 {
				continue
			}
			xmax = math.Max(xmax, xs[len(xs)-1])
			all = append(all, ys)
			n := ""
			if i == 0 {
				n = name
			}
			addSeries(p, series{name: n, color: col, width: 1.4, xs: xs, ys: ys}, true)
		}
	}
	p.X.Min, p.X.Max = 1, xmax
	lo, hi := minMaxPositive(all...)
	logRange(&p.Y, lo, hi)
	return renderPlot(p, 490, 300)
}
