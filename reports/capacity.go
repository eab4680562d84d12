package reports

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// CapacityVerdict judges a capacity run: never a pass for what it could
// not measure.
type CapacityVerdict struct {
	Text    string   // PASS, FAIL, INVALID, PARTIAL
	Failed  []string // the gate missed, writes lost or unverified
	Invalid []string // series stopped generator-bound
}

// Class is the verdict's CSS class.
func (v CapacityVerdict) Class() string { return Verdict{Text: v.Text}.Class() }

// JudgeCapacity is the verdict of capacity.json. A series that stopped
// generator-bound makes the run INVALID (it says nothing of the cluster);
// --expect-rate fails a series whose highest rate within the SLO is below
// it, or that has none; lost or unverified writes fail.
func JudgeCapacity(doc *rundir.Capacity) CapacityVerdict {
	var v CapacityVerdict
	for _, s := range doc.Series {
		switch s.Status {
		case rundir.SeriesGeneratorBound:
			v.Invalid = append(v.Invalid, fmt.Sprintf("%s: %s", s.Name, s.Reason))
		case rundir.SeriesError, rundir.SeriesInterrupted, "":
			v.Failed = append(v.Failed, fmt.Sprintf("%s: not measured (%s)", s.Name, orDash(s.Reason)))
		}
		if ok, why := expectRate(doc, s); !ok {
			v.Failed = append(v.Failed, fmt.Sprintf("%s: %s", s.Name, why))
		}
		if s.LostWrites > 0 {
			v.Failed = append(v.Failed, fmt.Sprintf("%s: %d acknowledged writes LOST", s.Name, s.LostWrites))
		} else if !s.Verified && s.AckedWrites > 0 {
			v.Failed = append(v.Failed, fmt.Sprintf("%s: writes unverified (%s)", s.Name, s.VerifyError))
		}
	}
	switch {
	case len(v.Invalid) > 0:
		v.Text = "INVALID"
	case doc.Ended.IsZero():
		v.Text = "PARTIAL"
	case len(v.Failed) > 0:
		v.Text = "FAIL"
	default:
		v.Text = "PASS"
	}
	return v
}

// expectRate judges "sustains ≥ ExpectRate at the SLO" for one series.
func expectRate(doc *rundir.Capacity, s rundir.CapacitySeries) (bool, string) {
	if doc.ExpectRate <= 0 {
		return true, ""
	}
	met, ok := s.Met()
	switch {
	case !ok:
		return false, fmt.Sprintf("sustains no measured rate within the SLO (%s), want ≥ %g req/s", s.Status, doc.ExpectRate)
	case met < doc.ExpectRate:
		return false, fmt.Sprintf("sustains %g req/s, want ≥ %g req/s", met, doc.ExpectRate)
	}
	return true, ""
}

// CapacityText is a series' answer in words: a number only when it was
// measured.
func CapacityText(s rundir.CapacitySeries) string {
	lower := ""
	if s.LowerBound != nil {
		lower = fmt.Sprintf("; ≥ %g req/s met", *s.LowerBound)
	}
	switch {
	case s.Status == rundir.SeriesKnee && s.Capacity != nil:
		return fmt.Sprintf("%g req/s", *s.Capacity)
	case s.Status == rundir.SeriesCeiling && s.Capacity != nil:
		return fmt.Sprintf("≥ %g req/s (no knee below the max rate)", *s.Capacity)
	case s.Status == rundir.SeriesBelowStart && len(s.Steps) > 0:
		return fmt.Sprintf("< %g req/s", s.Steps[0].Rate)
	}
	return "not measured (" + orDash(s.Status) + lower + ")"
}

// renderCapacity writes the reports of a capacity run directory and
// returns summary.md.
func renderCapacity(dir string, doc *rundir.Capacity, meta rundir.Meta) (string, error) {
	v := JudgeCapacity(doc)
	chart, err := capacityChart(doc)
	if err != nil {
		return "", err
	}
	var html bytes.Buffer
	if err := capacityTmpl.Execute(&html, struct {
		Doc   *rundir.Capacity
		Meta  rundir.Meta
		V     CapacityVerdict
		Chart template.HTML
	}{doc, meta, v, chart}); err != nil {
		return "", fmt.Errorf("render capacity report: %w", err)
	}
	junit, err := capacityJUnit(doc, v)
	if err != nil {
		return "", err
	}
	md := capacityMarkdown(doc, v)
	for _, f := range []struct {
		name string
		b    []byte
	}{{HTMLFile, html.Bytes()}, {JUnitFile, junit}, {MarkdownFile, []byte(md)}} {
		if err := writeAtomic(dir, f.name, f.b); err != nil {
			return "", err
		}
	}
	return md, nil
}

// capacityChart is target rate against p50 (dashed) and p99 (solid) per
// series, the SLO as a horizontal line, each series' capacity marked.
func capacityChart(doc *rundir.Capacity) (template.HTML, error) {
	return renderPlot(capacityPlot(doc), 26*vg.Centimeter, 11*vg.Centimeter)
}

// capacityPlot draws both axes on log scales: steps grow geometrically,
// and one chart holds read knees in the thousands beside write knees in
// the tens.
func capacityPlot(doc *rundir.Capacity) *plot.Plot {
	p := newPlot("latency by offered rate", "latency (ms, log)")
	p.X.Label.Text = "offered rate (req/s, log)"
	p.X.Label.TextStyle.Font.Size = labelFont
	var all []float64
	xmin, xmax := math.Inf(1), 0.0
	for i, s := range doc.Series {
		steps := append([]rundir.CapacityStep(nil), s.Steps...)
		sort.Slice(steps, func(a, b int) bool { return steps[a].Rate < steps[b].Rate })
		var xs, p50, p99 []float64
		for _, st := range steps {
			if st.Verdict == rundir.StepError || !(st.Rate > 0) {
				continue
			}
			xs = append(xs, st.Rate)
			p50 = append(p50, finite(st.P50Ms))
			p99 = append(p99, finite(st.P99Ms))
			xmin, xmax = math.Min(xmin, st.Rate), math.Max(xmax, st.Rate)
		}
		all = append(all, p50...)
		all = append(all, p99...)
		col := seriesColor(i)
		addSeries(p, series{color: col, xs: xs, ys: p99}, true)
		addSeries(p, series{color: col, width: 0.8, dash: []vg.Length{3, 2}, xs: xs, ys: p50}, true)
		if s.Capacity != nil {
			// The knee: a ring at the capacity's p99.
			for _, st := range steps {
				if st.Rate == *s.Capacity && st.P99Ms > 0 {
					sc, _ := plotter.NewScatter(plotter.XYs{{X: st.Rate, Y: st.P99Ms}})
					sc.GlyphStyle = draw.GlyphStyle{Color: col, Radius: 4, Shape: draw.RingGlyph{}}
					p.Add(sc)
				}
			}
		}
	}
	slo := doc.SLO.P99Ms
	all = append(all, slo)
	lo, hi := minMaxPositive(all)
	logRange(&p.Y, lo, hi)
	// Series are named by colour in the answers table, not in a legend
	// that would cover the data; the legend says how to read the lines.
	p.Legend.Left = true
	p.Y.Scale = plot.LogScale{}
	msLogAxis(&p.Y)
	if xmax == 0 {
		xmin, xmax = 1, 10
	}
	p.X.Min, p.X.Max = xmin/1.25, xmax*1.25
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	addSeries(p, series{name: fmt.Sprintf("SLO p99 %gms", slo), color: colText, width: 1, dash: []vg.Length{6, 3}, xs: []float64{p.X.Min, p.X.Max}, ys: []float64{slo, slo}}, true)
	p.Legend.Add("solid p99, dashed p50, ring: capacity", legendThumb{draw.LineStyle{Color: colText, Width: 0.8, Dashes: []vg.Length{3, 2}}})
	return p
}

func seriesColor(i int) color.Color { return nodePalette[i%len(nodePalette)] }

func capacityJUnit(doc *rundir.Capacity, v CapacityVerdict) ([]byte, error) {
	s := junitSuite{Name: "vaultstorm.capacity"}
	if !doc.Started.IsZero() {
		s.Timestamp = doc.Started.UTC().Format("2006-01-02T15:04:05")
		if !doc.Ended.IsZero() {
			s.Time = secStr(doc.Ended.Sub(doc.Started).Seconds())
		}
	}
	add := func(name, fail string) {
		c := junitCase{Name: name, Classname: s.Name, Time: "0.000"}
		if fail != "" {
			c.Failure = &junitFailure{Message: fail, Type: "capacity"}
			s.Failures++
		}
		s.Tests++
		s.Cases = append(s.Cases, c)
	}
	for _, ser := range doc.Series {
		measured := ""
		switch ser.Status {
		case rundir.SeriesKnee, rundir.SeriesCeiling, rundir.SeriesBelowStart:
		default:
			measured = fmt.Sprintf("not measured: %s", orDash(ser.Reason))
		}
		add(fmt.Sprintf("%s: capacity measured at p99 ≤ %gms", ser.Name, doc.SLO.P99Ms), measured)
		if doc.ExpectRate > 0 {
			ok, why := expectRate(doc, ser)
			if ok {
				why = ""
			}
			add(fmt.Sprintf("%s: sustains ≥ %g req/s at p99 ≤ %gms", ser.Name, doc.ExpectRate, doc.SLO.P99Ms), why)
		}
		lost := ""
		if ser.LostWrites > 0 {
			lost = fmt.Sprintf("%d acknowledged writes LOST", ser.LostWrites)
		} else if !ser.Verified && ser.AckedWrites > 0 {
			lost = "unverified: " + ser.VerifyError
		}
		add(fmt.Sprintf("%s: no acknowledged write lost", ser.Name), lost)
	}
	if doc.Ended.IsZero() {
		add("capacity run completed", "cut short: capacity.json has no end time")
	}
	out := junitSuites{Name: "vaultstorm", Tests: s.Tests, Failures: s.Failures, Time: s.Time, Suites: []junitSuite{s}}
	b, err := xml.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), append(b, '\n')...), nil
}

func capacityMarkdown(doc *rundir.Capacity, v CapacityVerdict) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## vaultstorm capacity: %s\n\nSLO: p99 ≤ %g ms, errors ≤ %g %%, achieved ≥ %g %% of the target; steps of %g s warm-up + %g s measured.\n\n",
		v.Text, doc.SLO.P99Ms, doc.SLO.ErrorPct, doc.SLO.AchievedPct, doc.WarmupS, doc.HoldS)
	b.WriteString("| series | capacity | status | steps | lost writes |\n|---|---|---|---|---|\n")
	for _, s := range doc.Series {
		lost := fmt.Sprint(s.LostWrites)
		if !s.Verified && s.AckedWrites > 0 {
			lost = "unverified"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %s |\n", mdCell(s.Name), mdCell(CapacityText(s)), s.Status, len(s.Steps), lost)
	}
	for _, f := range append(v.Invalid, v.Failed...) {
		fmt.Fprintf(&b, "\n- %s", mdText(f))
	}
	b.WriteString("\n")
	return b.String()
}

var capacityTmpl = template.Must(template.New("capacity").Funcs(funcs).Funcs(capacityFuncs).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="vaultstorm report">
<title>capacity — vaultstorm report — {{.V.Text}}</title>
<style>{{css}}</style>
</head>
<body>
<main>
<header class="top" id="header">
  <div>
    <h1>capacity <small>vaultstorm report</small></h1>
    <p class="lead">{{if not .Doc.Started.IsZero}}{{utc .Doc.Started}} · {{end}}SLO p99 ≤ {{.Doc.SLO.P99Ms}} ms, errors ≤ {{.Doc.SLO.ErrorPct}} %, achieved ≥ {{.Doc.SLO.AchievedPct}} %{{with .Meta.Command}} · <code>{{.}}</code>{{end}}</p>
  </div>
  <div class="verdict {{.V.Class}}" id="verdict">{{.V.Text}}</div>
</header>
{{if .V.Invalid}}<div class="banner failed" id="invalid-banner">INVALID — the generator fell behind before the cluster broke the SLO; no capacity is reported for:<ul>{{range .V.Invalid}}<li>{{.}}</li>{{end}}</ul></div>{{end}}
{{if .Doc.Ended.IsZero}}<div class="banner" id="partial-banner">PARTIAL RUN — the search was cut short; the steps below are those measured.</div>{{end}}
{{if .V.Failed}}<div class="banner failed" id="failed">{{range .V.Failed}}{{.}}<br>{{end}}</div>{{end}}
<section id="capacity">
  <h2>Capacity</h2>
  <table id="answers"><tr><th class="l">series</th><th class="l">capacity</th><th class="l">status</th><th>steps</th><th>acked writes</th><th>lost</th><th class="l">how it ended</th></tr>
  {{range $i, $s := .Doc.Series}}{{with $s}}<tr><td class="l"><span style="{{swatch $i}}"></span>{{.Name}}</td><td class="l"><b>{{captext .}}</b></td><td class="l">{{.Status}}</td><td>{{len .Steps}}</td><td>{{num .AckedWrites}}</td><td{{if gt .LostWrites 0}} class="bad"{{end}}>{{if or .Verified (eq .AckedWrites 0)}}{{num .LostWrites}}{{else}}<span class="bad">unverified</span>{{end}}</td><td class="l">{{.Reason}}</td></tr>
  {{end}}{{end}}</table>
  <p class="caption">Capacity: the highest offered rate that met the SLO below every rate that broke it. Steps of {{.Doc.WarmupS}} s warm-up (discarded) + {{.Doc.HoldS}} s measured, from {{.Doc.StartRate}} req/s ×{{.Doc.Factor}}, then bisection to {{pct .Doc.Precision}}.</p>
  <div class="chart">{{.Chart}}</div>
  <p class="caption">One colour per series, as in the table above. Solid: p99; dashed: p50 (latency from each request's intended send time); ring: the capacity; dashed grey: the SLO. Both axes are logarithmic.</p>
</section>
{{range .Doc.Series}}
<section class="series">
  <h2>{{.Name}}</h2>
  <table><tr><th>#</th><th class="l">phase</th><th>target</th><th>achieved</th><th>p50 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>errors</th><th>late sends</th><th>generator CPU</th><th class="l">Vault CPU by node (cores)</th><th class="l">verdict</th></tr>
  {{range .Steps}}<tr><td>{{.Index}}</td><td class="l">{{.Phase}}</td><td>{{.Rate}}</td><td>{{printf "%.1f" .Achieved}}</td><td>{{printf "%.1f" .P50Ms}}</td><td>{{printf "%.1f" .P99Ms}}</td><td>{{printf "%.1f" .P999Ms}}</td><td>{{printf "%.3f" .ErrorPct}} %</td><td>{{printf "%.2f" .LatePct}} %</td><td>{{cores .GeneratorCPU}}</td><td class="l">{{nodecpu .NodeCPU}}</td><td class="l{{if ne .Verdict "met"}} bad{{end}}">{{.Verdict}}{{range .Why}}<br><span class="muted">{{.}}</span>{{end}}{{with .Error}}<br><span class="muted">{{.}}</span>{{end}}</td></tr>
  {{end}}</table>
</section>
{{end}}
</main>
</body>
</html>
`))

var capacityFuncs = template.FuncMap{
	"swatch": func(i int) template.CSS {
		r, g, b, _ := seriesColor(i).RGBA()
		return template.CSS(fmt.Sprintf("display:inline-block;width:10px;height:10px;margin-right:6px;background:#%02x%02x%02x", r>>8, g>>8, b>>8))
	},
	"captext": CapacityText,
	"pct":     func(f float64) string { return fmt.Sprintf("%g %%", f*100) },
	"cores": func(p *float64) string {
		if p == nil {
			return "not measured"
		}
		return fmt.Sprintf("%.2f", *p)
	},
	"nodecpu": func(m map[string]float64) string {
		if len(m) == 0 {
			return "not measured"
		}
		names := make([]string, 0, len(m))
		total := 0.0
		for n, c := range m {
			names = append(names, n)
			total += c
		}
		sort.Slice(names, func(i, j int) bool { return naturalLess(names[i], names[j]) })
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = fmt.Sprintf("%s %.2f", n, m[n])
		}
		return fmt.Sprintf("%.2f total: %s", total, strings.Join(parts, ", "))
	},
}
