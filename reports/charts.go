package reports

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"regexp"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

func init() {
	// Sans reads better on screen than the library's serif default, and
	// the SVG names the family so the browser substitutes its own sans.
	plot.DefaultFont = font.Font{Typeface: "Liberation", Variant: "Sans"}
}

// Chart geometry in SVG user units; the page scales every chart to its
// column width, so only the proportions and the font sizes matter.
const (
	chartWidth  = 1000
	maxPoints   = 1500 // per series: more only adds bytes, not detail a screen can show
	legendFont  = 10
	tickFont    = 10
	titleFont   = 12
	labelFont   = 10.5
	bandLabelSz = 9.5
)

var (
	colRead   = rgb(0x1f, 0x77, 0xb4)
	colWrite  = rgb(0xe0, 0x6c, 0x00)
	colList   = rgb(0x2c, 0xa0, 0x2c)
	colDelete = rgb(0x94, 0x67, 0xbd)
	colP50    = rgb(0x2c, 0xa0, 0x2c)
	colP99    = rgb(0x1f, 0x5f, 0xc4)
	colMax    = rgb(0xb8, 0x2e, 0x2e)
	colErr    = rgb(0xd6, 0x27, 0x28)
	colBand   = color.NRGBA{0xd6, 0x27, 0x28, 0x22}
	colNotice = color.NRGBA{0xf0, 0xb0, 0x00, 0x2e}
	colGrid   = rgb(0xe4, 0xe4, 0xe4)
	colText   = rgb(0x33, 0x33, 0x33)
	colA      = rgb(0x1f, 0x77, 0xb4)
	colB      = rgb(0xe0, 0x6c, 0x00)
	// Snapshot ticks: colours no other mark of a chart uses, so a tick
	// is one stroke of its colour in the SVG.
	colSnap     = rgb(0x6a, 0x3d, 0x9a)
	colSnapFail = rgb(0xe7, 0x29, 0x8a)

	nodePalette = []color.Color{
		rgb(0x1f, 0x77, 0xb4), rgb(0xe0, 0x6c, 0x00), rgb(0x2c, 0xa0, 0x2c), rgb(0xd6, 0x27, 0x28),
		rgb(0x94, 0x67, 0xbd), rgb(0x8c, 0x56, 0x4b), rgb(0xe3, 0x77, 0xc2), rgb(0x7f, 0x7f, 0x7f),
		rgb(0xbc, 0xbd, 0x22), rgb(0x17, 0xbe, 0xcf),
	}
	// stateColor is the node timeline's legend; standby is how Vault names
	// a follower that is not the active node.
	stateColor = map[string]color.Color{
		"leader":   rgb(0x1b, 0x7a, 0x3a),
		"follower": rgb(0x8f, 0xd1, 0x9e),
		"standby":  rgb(0x8f, 0xd1, 0x9e),
		"sealed":   rgb(0xf2, 0xa9, 0x00),
		"down":     rgb(0xd6, 0x27, 0x28),
		"replaced": rgb(0x9e, 0x9e, 0x9e),
		// A new node before its cluster is initialised (a restore's), and
		// a node the cluster no longer has (dropped after a total loss).
		"uninitialized": rgb(0xb3, 0xcd, 0xe3),
		"removed":       rgb(0xd9, 0xd9, 0xd9),
	}
	stateOrder = []string{"leader", "follower", "sealed", "uninitialized", "down", "replaced", "removed"}
)

func rgb(r, g, b uint8) color.Color { return color.NRGBA{r, g, b, 0xff} }

func opColor(op string) color.Color {
	switch op {
	case "read":
		return colRead
	case "write":
		return colWrite
	case "list":
		return colList
	case "delete":
		return colDelete
	}
	return nodePalette[len(op)%len(nodePalette)]
}

// newPlot makes a plot in the house style: light grid, small sans text.
func newPlot(title, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = titleFont
	p.Title.TextStyle.Color = colText
	p.Title.Padding = 6
	p.Y.Label.Text = ylabel
	p.Y.Label.TextStyle.Font.Size = labelFont
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Tick.Label.Font.Size = tickFont
		a.Tick.Label.Color = colText
		a.Color = rgb(0x99, 0x99, 0x99)
		a.Tick.Color = rgb(0x99, 0x99, 0x99)
		a.Padding = 2
	}
	p.Legend.TextStyle.Font.Size = legendFont
	p.Legend.Top = true
	p.Legend.ThumbnailWidth = 18
	p.Legend.Padding = 1
	grid := plotter.NewGrid()
	grid.Vertical.Color = colGrid
	grid.Horizontal.Color = colGrid
	grid.Vertical.Width = 0.5
	grid.Horizontal.Width = 0.5
	p.Add(grid)
	return p
}

// timeAxis puts seconds since the start of the run on x, labelled as clock
// offsets (m:ss), identical on every time chart of a report.
func timeAxis(p *plot.Plot, dur float64, label bool) {
	p.X.Min, p.X.Max = 0, math.Max(dur, 1)
	p.X.Tick.Marker = timeTicks{}
	if label {
		p.X.Label.Text = "time since start of run"
		p.X.Label.TextStyle.Font.Size = labelFont
	}
}

type timeTicks struct{}

func (timeTicks) Ticks(min, max float64) []plot.Tick {
	span := max - min
	steps := []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if span/s <= 12 {
			step = s
			break
		}
	}
	minor := step / 5
	if step >= 60 && int(step)%60 == 0 && step <= 600 {
		minor = step / 4
	}
	var ticks []plot.Tick
	for v := math.Ceil(min/minor) * minor; v <= max+1e-9; v += minor {
		t := plot.Tick{Value: v}
		if r := math.Mod(v, step); r < 1e-6 || step-r < 1e-6 {
			t.Label = clock(v)
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// clock formats seconds as m:ss or h:mm:ss.
func clock(sec float64) string {
	s := int(math.Round(sec))
	neg := ""
	if s < 0 {
		neg, s = "-", -s
	}
	if s >= 3600 {
		return fmt.Sprintf("%s%d:%02d:%02d", neg, s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%s%d:%02d", neg, s/60, s%60)
}

// msLogAxis puts latency in milliseconds on a log scale with ticks named as
// durations (100µs, 1ms, 1s), the way people read latency.
func msLogAxis(a *plot.Axis) {
	a.Scale = plot.LogScale{}
	a.Tick.Marker = msLogTicks{}
}

type msLogTicks struct{}

func (msLogTicks) Ticks(min, max float64) []plot.Tick {
	if min <= 0 {
		min = 1e-3
	}
	var ticks []plot.Tick
	lo, hi := math.Floor(math.Log10(min)), math.Ceil(math.Log10(max))
	for e := lo; e <= hi; e++ {
		base := math.Pow(10, e)
		for m := 1.0; m < 10; m++ {
			v := m * base
			if v < min*(1-1e-9) || v > max*(1+1e-9) {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 {
				t.Label = fmtMs(v)
			}
			ticks = append(ticks, t)
		}
	}
	if countLabels(ticks) < 2 {
		// Less than a decade: label the multiples too, or the axis is blank.
		for i := range ticks {
			ticks[i].Label = fmtMs(ticks[i].Value)
		}
	}
	return ticks
}

func countLabels(ts []plot.Tick) int {
	n := 0
	for _, t := range ts {
		if t.Label != "" {
			n++
		}
	}
	return n
}

// fmtMs renders a millisecond figure with a unit a person would use.
func fmtMs(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 1:
		return trimZeros(fmt.Sprintf("%.3g", v*1000)) + "µs"
	case v < 1000:
		return trimZeros(fmt.Sprintf("%.3g", v)) + "ms"
	case v < 60000:
		return trimZeros(fmt.Sprintf("%.3g", v/1000)) + "s"
	default:
		return (time.Duration(v) * time.Millisecond).Round(time.Second).String()
	}
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") && !strings.Contains(s, "e") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// series is one line. Points with y <= 0 on a log axis, or NaN anywhere,
// are gaps rather than points: a second with no successful request has no
// latency, and drawing it as zero would lie.
type series struct {
	name  string
	color color.Color
	width vg.Length
	dash  []vg.Length
	xs    []float64
	ys    []float64
}

func addSeries(p *plot.Plot, s series, logY bool) {
	style := draw.LineStyle{Color: s.color, Width: s.width, Dashes: s.dash}
	if style.Width == 0 {
		style.Width = 1.2
	}
	var seg plotter.XYs
	flush := func() {
		if len(seg) == 0 {
			return
		}
		if len(seg) == 1 {
			// A lone point between gaps would be invisible as a line.
			sc, _ := plotter.NewScatter(seg)
			sc.GlyphStyle.Color = s.color
			sc.GlyphStyle.Radius = style.Width
			sc.GlyphStyle.Shape = draw.CircleGlyph{}
			p.Add(sc)
		} else {
			l, _ := plotter.NewLine(seg)
			l.LineStyle = style
			p.Add(l)
		}
		seg = nil
	}
	for i, x := range s.xs {
		y := s.ys[i]
		if math.IsNaN(y) || math.IsInf(y, 0) || (logY && y <= 0) {
			flush()
			continue
		}
		seg = append(seg, plotter.XY{X: x, Y: y})
	}
	flush()
	if s.name != "" {
		p.Legend.Add(s.name, legendThumb{style})
	}
}

type legendThumb struct{ draw.LineStyle }

func (t legendThumb) Thumbnail(c *draw.Canvas) {
	y := c.Center().Y
	c.StrokeLine2(t.LineStyle, c.Min.X, y, c.Max.X, y)
}

type boxThumb struct{ color.Color }

func (t boxThumb) Thumbnail(c *draw.Canvas) {
	pts := []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Min.X, Y: c.Max.Y}}
	c.FillPolygon(t.Color, pts)
}

// downsample keeps a long run's chart at maxPoints per series, taking the
// worst (agg=max) or the mean of each bucket, so spikes survive.
func downsample(xs, ys []float64, useMax bool) ([]float64, []float64, int) {
	n := len(xs)
	if n <= maxPoints {
		return xs, ys, 1
	}
	k := (n + maxPoints - 1) / maxPoints
	ox := make([]float64, 0, n/k+1)
	oy := make([]float64, 0, n/k+1)
	for i := 0; i < n; i += k {
		j := min(i+k, n)
		agg, cnt := 0.0, 0
		if useMax {
			agg = math.NaN()
		}
		for _, y := range ys[i:j] {
			if math.IsNaN(y) {
				continue
			}
			if useMax {
				if cnt == 0 || y > agg {
					agg = y
				}
			} else {
				agg += y
			}
			cnt++
		}
		if !useMax && cnt > 0 {
			agg /= float64(cnt)
		}
		if cnt == 0 {
			agg = math.NaN()
		}
		ox = append(ox, xs[i])
		oy = append(oy, agg)
	}
	return ox, oy, k
}

// band is a shaded stretch of the time axis: a fault from injection to heal.
type band struct {
	x0, x1 float64
	color  color.Color
	label  string
	open   bool // never healed: the band runs off the end
}

type bandPlotter struct{ bands []band }

func (b bandPlotter) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	sty := draw.TextStyle{Color: colText, Font: font.From(plot.DefaultFont, bandLabelSz), Handler: p.Title.TextStyle.Handler}
	sty.XAlign = draw.XLeft
	sty.YAlign = draw.YTop
	for i, bd := range b.bands {
		x0 := math.Max(bd.x0, p.X.Min)
		x1 := math.Min(bd.x1, p.X.Max)
		if x1 < x0 {
			continue
		}
		l, r := trX(x0), trX(x1)
		if r-l < 1.5 {
			r = l + 1.5 // a sub-pixel fault must still show
		}
		c.FillPolygon(bd.color, []vg.Point{{X: l, Y: c.Min.Y}, {X: r, Y: c.Min.Y}, {X: r, Y: c.Max.Y}, {X: l, Y: c.Max.Y}})
		if bd.label != "" {
			// Alternate label rows so neighbouring faults do not overprint.
			y := c.Max.Y - 2 - vg.Length(i%2)*(bandLabelSz+2)
			c.FillText(sty, vg.Point{X: l + 3, Y: y}, bd.label)
		}
	}
}

// faultBands turns faults into bands on a time axis starting at start.
func faultBands(faults []Fault, start, end time.Time, labels bool) bandPlotter {
	var bs []band
	for _, f := range faults {
		if !f.Notice.IsZero() && f.Notice.Before(f.Start) {
			bs = append(bs, band{x0: secs(f.Notice, start), x1: secs(f.Start, start), color: colNotice})
		}
		b := band{x0: secs(f.Start, start), x1: secs(f.BandEnd(end), start), color: colBand, open: f.Healed.IsZero()}
		if labels {
			b.label = f.Label()
			if b.open {
				b.label += " (not healed)"
			}
		}
		bs = append(bs, b)
	}
	return bandPlotter{bs}
}

func secs(t, start time.Time) float64 { return t.Sub(start).Seconds() }

// snapshotTicks marks each snapshot on the time axis: a short purple tick
// up from the axis at its request start, a magenta × for an attempt that
// failed. Each mark is one path, so the SVG has one stroke per snapshot.
type snapshotTicks struct {
	marks []SnapshotMark
	start time.Time
}

func (s snapshotTicks) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for _, m := range s.marks {
		x := secs(m.T, s.start)
		if x < p.X.Min || x > p.X.Max {
			continue
		}
		px, y := trX(x), c.Min.Y
		if m.Failed() {
			const d = 3.5
			c.SetLineStyle(draw.LineStyle{Color: colSnapFail, Width: 1.4})
			var path vg.Path
			path.Move(vg.Point{X: px - d, Y: y + 1})
			path.Line(vg.Point{X: px + d, Y: y + 1 + 2*d})
			path.Move(vg.Point{X: px - d, Y: y + 1 + 2*d})
			path.Line(vg.Point{X: px + d, Y: y + 1})
			c.Stroke(path)
			continue
		}
		c.StrokeLine2(draw.LineStyle{Color: colSnap, Width: 1.6}, px, y, px, y+9)
	}
}

// timeChart is a chart on the run's time axis; all of a report's time
// charts are drawn with the same plot area so their x axes line up.
type timeChart struct {
	p *plot.Plot
	h vg.Length
}

// renderAligned draws charts with equal left and right margins (the widest
// y-axis labels of any of them), so a moment is at the same x on every
// chart of the page.
func renderAligned(charts []timeChart) ([]template.HTML, error) {
	var left, right, gutter vg.Length
	for _, tc := range charts {
		c := draw.New(vgsvg.New(chartWidth, tc.h))
		dc := tc.p.DataCanvas(c)
		left = max(left, dc.Min.X-c.Min.X)
		right = max(right, c.Max.X-dc.Max.X)
		lr := tc.p.Legend.Rectangle(dc)
		gutter = max(gutter, lr.Max.X-lr.Min.X)
	}
	// Legends go in a gutter right of the plot area, where they cannot
	// cover a spike.
	gutter += 10
	out := make([]template.HTML, len(charts))
	for i, tc := range charts {
		cv := vgsvg.New(chartWidth, tc.h)
		c := draw.New(cv)
		dc := tc.p.DataCanvas(c)
		c = draw.Crop(c, left-(dc.Min.X-c.Min.X), -(right-(c.Max.X-dc.Max.X))-gutter, 0, 0)
		tc.p.Legend.Top, tc.p.Legend.Left = true, false
		tc.p.Legend.XOffs = gutter
		tc.p.Draw(c)
		s, err := svgString(cv)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

func renderPlot(p *plot.Plot, w, h vg.Length) (template.HTML, error) {
	cv := vgsvg.New(w, h)
	p.Draw(draw.New(cv))
	return svgString(cv)
}

var (
	svgSize   = regexp.MustCompile(`<svg width="[^"]*" height="[^"]*"`)
	fontFam   = regexp.MustCompile(`font-family:([^;"]*);`)
	xmlHeader = regexp.MustCompile(`^<\?xml[^>]*>\s*(<!--[^>]*-->\s*)?`)
)

// svgString makes the library's standalone SVG fit inline in HTML: no XML
// prolog, scaled to its container (the viewBox keeps proportions), and a
// font fallback chain for browsers without the Liberation fonts.
func svgString(cv *vgsvg.Canvas) (template.HTML, error) {
	var b bytes.Buffer
	if _, err := cv.WriteTo(&b); err != nil {
		return "", fmt.Errorf("render svg: %w", err)
	}
	s := xmlHeader.ReplaceAllString(b.String(), "")
	s = svgSize.ReplaceAllString(s, `<svg class="chart" preserveAspectRatio="xMinYMin meet"`)
	s = fontFam.ReplaceAllString(s, `font-family:'$1',Arial,Helvetica,sans-serif;`)
	if strings.Contains(s, "NaN") {
		return "", fmt.Errorf("render svg: chart has NaN coordinates")
	}
	return template.HTML(s), nil //nolint:gosec // generated by vgsvg from numbers, not user text
}

// logRange pads a log axis to whole decades around the data, so a flat
// line is not drawn against a sliver of an axis.
func logRange(a *plot.Axis, lo, hi float64) {
	if !(lo > 0) || !(hi > 0) || math.IsInf(hi, 0) {
		lo, hi = 0.1, 10
	}
	a.Min = math.Pow(10, math.Floor(math.Log10(lo)))
	a.Max = math.Pow(10, math.Ceil(math.Log10(hi)))
	if a.Max/a.Min < 100 {
		a.Max *= 10
	}
}

func minMaxPositive(ys ...[]float64) (lo, hi float64) {
	lo, hi = math.Inf(1), 0
	for _, y := range ys {
		for _, v := range y {
			if v > 0 && !math.IsInf(v, 0) {
				lo = math.Min(lo, v)
				hi = math.Max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 1) {
		return 0, 0
	}
	return lo, hi
}

// latencyChart is one operation's p50/p99/max per second.
func latencyChart(r *Run, op string) timeChart {
	n := len(r.Samples)
	xs := make([]float64, 0, n)
	p50 := make([]float64, 0, n)
	p99 := make([]float64, 0, n)
	mx := make([]float64, 0, n)
	for _, s := range r.Samples {
		st, ok := s.Ops[op]
		nan := math.NaN()
		xs = append(xs, secs(s.T, r.Start)+interval(s)/2)
		if !ok || st.Count-st.Errors <= 0 {
			p50, p99, mx = append(p50, nan), append(p99, nan), append(mx, nan)
			continue
		}
		p50 = append(p50, st.P50)
		p99 = append(p99, st.P99)
		mx = append(mx, st.Max)
	}
	title := op + " latency per second"
	_, p50d, k := downsample(xs, p50, true)
	dx, p99d, _ := downsample(xs, p99, true)
	_, mxd, _ := downsample(xs, mx, true)
	if k > 1 {
		title += fmt.Sprintf(" (each point the worst of %d s)", k)
	}
	p := newPlot(title, "latency (log)")
	msLogAxis(&p.Y)
	lo, hi := minMaxPositive(p50d, mxd)
	logRange(&p.Y, lo, hi)
	timeAxis(p, secs(r.End, r.Start), false)
	p.Add(faultBands(r.Faults, r.Start, r.End, true))
	addSeries(p, series{name: "max", color: colMax, width: 0.8, xs: dx, ys: mxd}, true)
	addSeries(p, series{name: "p99", color: colP99, width: 1.4, xs: dx, ys: p99d}, true)
	addSeries(p, series{name: "p50", color: colP50, width: 1.4, xs: dx, ys: p50d}, true)
	if len(r.Snapshots) > 0 {
		p.Add(snapshotTicks{r.Snapshots, r.Start})
	}
	return timeChart{p, 210}
}

// throughputChart draws successful and failed requests per second per op.
func throughputChart(r *Run) timeChart {
	p := newPlot("throughput and errors per second", "requests/s")
	timeAxis(p, secs(r.End, r.Start), false)
	p.Add(faultBands(r.Faults, r.Start, r.End, false))
	p.Y.Min = 0
	for _, op := range r.Ops {
		xs, ok, bad := rateSeries(r, op)
		dx, okd, _ := downsample(xs, ok, false)
		_, badd, _ := downsample(xs, bad, true)
		addSeries(p, series{name: op + " ok", color: opColor(op), width: 1.3, xs: dx, ys: okd}, false)
		addSeries(p, series{name: op + " errors", color: opColor(op), width: 1.3, dash: []vg.Length{3, 2}, xs: dx, ys: badd}, false)
	}
	if len(r.Snapshots) > 0 {
		p.Add(snapshotTicks{r.Snapshots, r.Start})
	}
	return timeChart{p, 190}
}

// rateSeries is op's successful and failed requests per second, one point
// in the middle of each sample: its counts over its own length (a tick the
// flusher took late is longer than a second). The load's last, partial
// sample is left out: see isDrain.
func rateSeries(r *Run, op string) (xs, ok, bad []float64) {
	xs = make([]float64, 0, len(r.Samples))
	ok = make([]float64, 0, len(r.Samples))
	bad = make([]float64, 0, len(r.Samples))
	for i, s := range r.Samples {
		if r.isDrain(i) {
			continue
		}
		st := s.Ops[op]
		per := interval(s)
		xs = append(xs, secs(s.T, r.Start)+per/2)
		ok = append(ok, float64(st.Count-st.Errors)/per)
		bad = append(bad, float64(st.Errors)/per)
	}
	return xs, ok, bad
}

// vaultMetric is one of Vault's own series charted per node.
type vaultMetric struct {
	name, title string
}

var vaultCharts = []vaultMetric{
	{"vault_raft_commitTime", "Vault raft commit time (leader; mean per scrape)"},
	{"vault_raft_leader_lastContact", "Vault leader last contact with followers (mean per scrape)"},
	{"vault_core_handle_request", "Vault request handling time (per node; mean per scrape)"},
}

// metricChart plots one Vault series for every node that reported it, or
// returns false when no node did.
func metricChart(r *Run, m vaultMetric) (timeChart, bool) {
	p := newPlot(m.title, "ms (log)")
	msLogAxis(&p.Y)
	timeAxis(p, secs(r.End, r.Start), false)
	p.Add(faultBands(r.Faults, r.Start, r.End, false))
	var all [][]float64
	var adds []series
	for _, l := range metricNodes(r) {
		ts, ys := perSecondMean(r, l, m.name)
		if len(ys) == 0 {
			continue
		}
		// A node that was down has no points; break the line there
		// rather than draw a straight line across the outage.
		xs := make([]float64, 0, len(ts))
		yg := make([]float64, 0, len(ys))
		for j, t := range ts {
			x := secs(t, r.Start)
			if j > 0 && x-xs[len(xs)-1] > 2.5 {
				xs = append(xs, x-1)
				yg = append(yg, math.NaN())
			}
			xs = append(xs, x)
			yg = append(yg, ys[j])
		}
		dx, dy, _ := downsample(xs, yg, true)
		all = append(all, dy)
		adds = append(adds, series{name: l, color: nodePalette[r.nodeColor(l)%len(nodePalette)], width: 1.1, xs: dx, ys: dy})
	}
	if len(adds) == 0 {
		return timeChart{}, false
	}
	lo, hi := minMaxPositive(all...)
	logRange(&p.Y, lo, hi)
	for _, s := range adds {
		addSeries(p, s, true)
	}
	return timeChart{p, 170}, true
}

// nodeChart is the node timeline: one lane per node, coloured by state.
func nodeChart(r *Run) timeChart {
	p := newPlot("node states", "")
	timeAxis(p, secs(r.End, r.Start), true)
	n := len(r.Lanes)
	p.Y.Min, p.Y.Max = -0.5, float64(n)-0.5
	var ticks []plot.Tick
	for i, l := range r.Lanes {
		ticks = append(ticks, plot.Tick{Value: float64(n - 1 - i), Label: l.Node})
	}
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Tick.Length = 0
	p.Add(faultBands(r.Faults, r.Start, r.End, false))
	p.Add(lanePlotter{r: r})
	seen := map[string]bool{}
	for _, l := range r.Lanes {
		for _, s := range l.Segs {
			seen[s.State] = true
		}
	}
	for _, st := range stateOrder {
		if seen[st] || (st == "follower" && seen["standby"]) {
			p.Legend.Add(st, boxThumb{stateColor[st]})
		}
	}
	return timeChart{p, vg.Length(70 + 24*max(n, 1))}
}

type lanePlotter struct{ r *Run }

func (lp lanePlotter) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	n := len(lp.r.Lanes)
	for i, l := range lp.r.Lanes {
		y := float64(n - 1 - i)
		y0, y1 := trY(y-0.34), trY(y+0.34)
		for _, s := range l.Segs {
			col, ok := stateColor[s.State]
			if !ok {
				col = rgb(0xcc, 0xcc, 0xcc)
			}
			x0 := math.Max(secs(s.Start, lp.r.Start), p.X.Min)
			x1 := math.Min(secs(s.End, lp.r.Start), p.X.Max)
			if x1 <= x0 {
				continue
			}
			l, rr := trX(x0), trX(x1)
			if rr-l < 1 {
				rr = l + 1
			}
			c.FillPolygon(col, []vg.Point{{X: l, Y: y0}, {X: rr, Y: y0}, {X: rr, Y: y1}, {X: l, Y: y1}})
		}
	}
}

// distribution is one HdrHistogram percentile curve: x is 1/(1-q) on a
// log axis, so 90 %, 99 %, 99.9 % … are evenly spaced, as in
// HdrHistogram's plotter.
func distribution(h *hdr.Histogram, perMs float64) (xs, ys []float64) {
	if h == nil || h.TotalCount() == 0 {
		return nil, nil
	}
	limit := distLimit(h.TotalCount())
	for _, b := range h.CumulativeDistributionWithTicks(5) {
		q := b.Quantile / 100
		x := 1 / (1 - q)
		if q >= 1 || x > limit {
			x = limit
		}
		xs = append(xs, x)
		ys = append(ys, float64(b.ValueAt)/perMs)
		if x >= limit {
			break
		}
	}
	return xs, ys
}

// distLimit is the last decade a histogram of n values can speak for: with
// 10 000 values, 99.99 % is the max.
func distLimit(n int64) float64 {
	return math.Pow(10, math.Max(2, math.Ceil(math.Log10(float64(n)))))
}

type pctTicks struct{}

func (pctTicks) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for x := 1.0; x <= max*1.0001; x *= 10 {
		ts = append(ts, plot.Tick{Value: x, Label: pctLabel(x)})
		for m := 2.0; m < 10 && x*m <= max; m++ {
			ts = append(ts, plot.Tick{Value: x * m})
		}
	}
	return ts
}

func pctLabel(x float64) string {
	q := 100 * (1 - 1/x)
	return trimZeros(fmt.Sprintf("%.6f", q)) + "%"
}

// distChart is the percentile distribution of one operation, for the whole
// run and for each kind of phase.
func distChart(r *Run, op string) (template.HTML, error) {
	p := newPlot(op+" latency by percentile", "latency (log)")
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = pctTicks{}
	p.X.Label.Text = "percentile"
	p.X.Label.TextStyle.Font.Size = labelFont
	msLogAxis(&p.Y)
	p.Legend.Left = true
	curves := []struct {
		name string
		h    *hdr.Histogram
		col  color.Color
		w    vg.Length
	}{{"whole run", r.Hist[op], rgb(0x22, 0x22, 0x22), 1.8}}
	phaseCol := map[string]color.Color{"before": colP50, "during": colErr, "recovery": colWrite, "after": colP99}
	for _, ph := range []string{"before", "during", "recovery", "after"} {
		if h := r.KindHist[ph][op]; h != nil && h.TotalCount() > 0 {
			curves = append(curves, struct {
				name string
				h    *hdr.Histogram
				col  color.Color
				w    vg.Length
			}{ph, h, phaseCol[ph], 1.1})
		}
	}
	var allY [][]float64
	xmax := 100.0
	for _, c := range curves {
		xs, ys := distribution(c.h, r.PerMs)
		if len(xs) == 0 {
			continue
		}
		xmax = math.Max(xmax, xs[len(xs)-1])
		allY = append(allY, ys)
		addSeries(p, series{name: c.name, color: c.col, width: c.w, xs: xs, ys: ys}, true)
	}
	p.X.Min, p.X.Max = 1, xmax
	lo, hi := minMaxPositive(allY...)
	logRange(&p.Y, lo, hi)
	return renderPlot(p, 490, 300)
}
