package reports

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/metrics"
)

//go:embed report.html.tmpl
var reportTmpl string

//go:embed style.css
var styleCSS string

var funcs = template.FuncMap{
	"ms":    fmtMs,
	"msp":   fmtMsPtr,
	"clock": clock,
	"num":   fmtNum,
	"rate":  func(v float64) string { return fmt.Sprintf("%.1f", finite(v)) },
	"utc":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 MST") },
	"rfc":   func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
	"css":   func() template.CSS { return template.CSS(styleCSS) }, //nolint:gosec // our own file
	"join":  strings.Join,
	"lower": strings.ToLower,
	"sub":   func(a, b int64) int64 { return a - b },
}

var tmpl = template.Must(template.New("report").Funcs(funcs).Parse(reportTmpl))

func fmtMsPtr(v *float64) string {
	if v == nil {
		return "—"
	}
	return fmtMs(*v)
}

// fmtNum groups thousands: 1 234 567 reads at a glance.
func fmtNum(v int64) string {
	s := fmt.Sprint(v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

type page struct {
	R        *Run
	V        Verdict
	Duration string
	Info     [][2]string
	Notes    []string

	LatencyCharts []template.HTML
	Throughput    template.HTML
	VaultCharts   []template.HTML
	NodeChart     template.HTML
	HasLanes      bool
	DistCharts    []template.HTML

	Recovery []recoveryRow
	Phases   []phaseRow
	OpTotals []opRow
	Files    []fileRow
	Ledger   LedgerVerdict

	Checks           []checkLine
	Final            finalView
	UnavailableAfter string
	NotLinearizable  bool

	DR           *drView
	SnapshotCost string
	SnapshotWarn bool
	HasRTO       bool // a restore row in the recovery table
}

type recoveryRow struct {
	F      Fault
	At     string // offset from start
	T      string // RFC 3339, for tests and tooltips
	Notice string
	recoveryCells
}

// checkLine is one line of the checks section.
type checkLine struct {
	ID, Text  string
	Bad, Warn bool
	Link      string // a file of the run directory the line refers to
	Detail    string
}

type phaseRow struct {
	Phase    string
	T        string
	At, Dur  string
	Op       string
	St       rundir.OpStats
	First    bool
	Rows     int
	ErrClass string
}

type opRow struct {
	Op       string
	St       rundir.OpStats
	ErrClass string
}

type fileRow struct {
	Name string
	Size string
}

func buildPage(r *Run) (*page, error) {
	pg := &page{R: r, V: r.Verdict(), Ledger: r.Ledger}
	pg.Duration = clock(secs(r.End, r.Start))
	m := r.Meta
	storage := m.Storage
	if storage == "dir" {
		storage = "dir (plain directory, not RAID0: disk-loss figures do not apply)"
	}
	for _, kv := range [][2]string{
		{"Scenario", orDash(firstNonEmpty(m.Scenario, r.Summary.Scenario))},
		{"Vault version", orDash(m.VaultVersion)},
		{"Nodes", orDash(nonZero(m.Nodes))},
		{"Provider", orDash(m.Provider)},
		{"Storage", orDash(storage)},
		{"Seal", orDash(m.Seal)},
		{"Load profile", orDash(m.Load)},
		{"Started", utcOrDash(m.Started)},
		{"Duration", pg.Duration},
		{"Seed / time scale", fmt.Sprintf("%s / %s", orDash(nonZero(int(m.Seed))), orDash(scale(m.TimeScale)))},
		{"Command", orDash(m.Command)},
		{"Tool", orDash(m.Tool)},
	} {
		pg.Info = append(pg.Info, kv)
	}
	pg.Notes = append(pg.Notes, r.Notes...)
	if !r.HasSummary {
		pg.Notes = append(pg.Notes, "summary.json is missing, so the figures below were derived: "+strings.Join(r.Derived, "; ")+
			". Recovery windows derived from per-second samples have 1 s resolution.")
	}

	var charts []timeChart
	for _, op := range r.Ops {
		charts = append(charts, latencyChart(r, op))
	}
	charts = append(charts, throughputChart(r))
	nLat := len(r.Ops)
	var vcs []timeChart
	for _, vm := range vaultCharts {
		if c, ok := metricChart(r, vm); ok {
			vcs = append(vcs, c)
		}
	}
	charts = append(charts, vcs...)
	pg.HasLanes = len(r.Lanes) > 0
	if pg.HasLanes {
		charts = append(charts, nodeChart(r))
	}
	// The last chart of the page carries the axis label.
	timeAxis(charts[len(charts)-1].p, secs(r.End, r.Start), true)
	svgs, err := renderAligned(charts)
	if err != nil {
		return nil, err
	}
	pg.LatencyCharts = svgs[:nLat]
	pg.Throughput = svgs[nLat]
	pg.VaultCharts = svgs[nLat+1 : nLat+1+len(vcs)]
	if pg.HasLanes {
		pg.NodeChart = svgs[len(svgs)-1]
	}
	for _, op := range r.Ops {
		if r.Hist[op] == nil {
			continue
		}
		s, err := distChart(r, op)
		if err != nil {
			return nil, err
		}
		pg.DistCharts = append(pg.DistCharts, s)
	}

	for _, f := range r.Faults {
		row := recoveryRow{F: f, At: clock(secs(f.Start, r.Start)), T: f.Start.UTC().Format(time.RFC3339Nano), recoveryCells: recoveryOf(r, f)}
		if !f.Notice.IsZero() {
			row.Notice = fmtMs(durMs(f.Start.Sub(f.Notice))) + " before"
		}
		pg.Recovery = append(pg.Recovery, row)
	}
	pg.UnavailableAfter = fmtMs(r.unavailableAfterMs())
	pg.DR = drOf(r)
	pg.SnapshotCost, pg.SnapshotWarn = snapshotCostText(r)
	pg.HasRTO = lastRestore(r) > 0 && r.Restore != nil
	pg.Checks = checkLines(r)
	pg.Final = finalOf(r)
	pg.NotLinearizable = r.Summary.Linearizable != nil && !*r.Summary.Linearizable
	for _, p := range r.Summary.Phases {
		ops := sortedOps(p.Ops)
		for i, op := range ops {
			pg.Phases = append(pg.Phases, phaseRow{
				Phase: p.Phase, T: p.Start.UTC().Format(time.RFC3339Nano),
				At: clock(secs(p.Start, r.Start)), Dur: fmtMs(durMs(p.End.Sub(p.Start))),
				Op: op, St: p.Ops[op], First: i == 0, Rows: len(ops), ErrClass: errClasses(p.Ops[op].ByErr),
			})
		}
	}
	for _, op := range sortedOps(r.Summary.Ops) {
		st := r.Summary.Ops[op]
		pg.OpTotals = append(pg.OpTotals, opRow{Op: op, St: st, ErrClass: errClasses(st.ByErr)})
	}
	pg.Files = listFiles(r.Dir)
	return pg, nil
}

func sortedOps(m map[string]rundir.OpStats) []string {
	var ops []string
	for op := range m {
		ops = append(ops, op)
	}
	opOrder(ops)
	return ops
}

func errClasses(m map[string]int64) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return m[ks[i]] > m[ks[j]] || m[ks[i]] == m[ks[j]] && ks[i] < ks[j] })
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s %s", k, fmtNum(m[k])))
	}
	return strings.Join(parts, ", ")
}

func listFiles(dir string) []fileRow {
	var out []fileRow
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasPrefix(filepath.Base(rel), ".") || outputs[rel] {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		out = append(out, fileRow{Name: rel, Size: HumanBytes(info.Size())})
		return nil
	})
	return out
}

var outputs = map[string]bool{HTMLFile: true, JUnitFile: true, MarkdownFile: true, HgrmFile: true}

// HumanBytes renders a size in B, KiB, MiB or GiB.
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func nonZero(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprint(n)
}

func scale(f float64) string {
	if f == 0 || math.IsNaN(f) {
		return ""
	}
	return fmt.Sprintf("%g", f)
}

func utcOrDash(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 MST")
}

func metricNodes(r *Run) []string {
	var ns []string
	for n := range r.Metrics {
		ns = append(ns, n)
	}
	sort.Slice(ns, func(i, j int) bool { return naturalLess(ns[i], ns[j]) })
	return ns
}

func perSecondMean(r *Run, node, name string) ([]time.Time, []float64) {
	return metrics.PerSecondMean(r.Metrics[node], name)
}

func renderHTML(pg *page) ([]byte, error) {
	var b bytes.Buffer
	if err := tmpl.Execute(&b, pg); err != nil {
		return nil, fmt.Errorf("report.html: %w", err)
	}
	return b.Bytes(), nil
}

// checkLines are the run's checks beyond latency: the ledger, the
// linearizability of the sampled keys, the generator, the observer.
func checkLines(r *Run) []checkLine {
	ledt, lbad0 := ledgerText(r)
	led := checkLine{ID: "check-ledger", Text: ledt, Bad: lbad0}
	lt, lbad, link := linearizableText(r)
	lin := checkLine{ID: "check-linearizable", Text: lt, Bad: lbad, Link: link}
	gen := checkLine{ID: "check-generator", Text: generatorText(r), Bad: len(r.Summary.Invalid) > 0}
	ht, hwarn := harnessText(r)
	har := checkLine{ID: "check-harness", Text: ht, Warn: hwarn, Detail: harnessByKind(r)}
	out := []checkLine{led, lin, gen, har}
	if st, warn := snapshotCostText(r); st != "" {
		out = append(out, checkLine{ID: "check-snapshots", Text: st, Warn: warn})
	}
	return out
}
