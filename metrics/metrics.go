// Package metrics scrapes each Vault node's own telemetry (sys/metrics in
// Prometheus format) once a second into the run directory, so a report can
// put Vault's view (raft commit time, leader contact, request handling) next
// to the client's latency and show whether slowness came from raft, disk or
// the network.
//
// Vault only serves format=prometheus when its telemetry stanza sets
// prometheus_retention_time, and (unless unauthenticated_metrics_access is
// set on the listener) the request needs a token.
package metrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/internal/tlsconf"
)

// Suffix is the file name suffix of a node's metric lines inside
// rundir.MetricsDir: metrics/<node>.prom.jsonl.
const Suffix = ".prom.jsonl"

// Series names the reports chart. Summaries are stored as
// name{quantile="q"}, name_sum and name_count, as Prometheus spells them.
const (
	RaftCommitTime    = "vault_raft_commitTime"
	LeaderLastContact = "vault_raft_leader_lastContact"
	HandleRequest     = "vault_core_handle_request"
	HandleLogin       = "vault_core_handle_login_request"
)

// DefaultPrefixes is what Scrape keeps: the series the reports chart plus a
// few that cost nothing and explain them (fsm/storage latencies point at the
// disk, heartbeat/appendEntries at the network, runtime at the process).
// A prefix keeps every family whose name starts with it.
var DefaultPrefixes = []string{
	RaftCommitTime,
	LeaderLastContact,
	"vault_raft_leader_dispatchLog",
	"vault_raft_apply",
	"vault_raft_fsm_apply",
	"vault_raft_storage_put",
	"vault_raft_storage_get",
	"vault_raft_replication_appendEntries_rpc",
	"vault_raft_replication_heartbeat",
	"vault_raft_state_",
	HandleRequest,
	HandleLogin,
	"vault_core_unsealed",
	"vault_core_active",
	"vault_autopilot_healthy",
	"vault_autopilot_failure_tolerance",
	"vault_runtime_num_goroutines",
	"vault_runtime_alloc_bytes",
	"vault_runtime_gc_pause_ns",
}

// Point is one line of metrics/<node>.prom.jsonl: one scrape of one node.
// A failed scrape (node down, sealed, TLS error) is a Point with Err set, so
// a report can tell "no data" from "node unreachable".
type Point struct {
	T    time.Time          `json:"t"`
	Node string             `json:"node"`
	Err  string             `json:"err,omitempty"`
	V    map[string]float64 `json:"v,omitempty"`
}

// Quantile returns the series key of a summary quantile, e.g.
// vault_raft_commitTime{quantile="0.99"}.
func Quantile(name string, q float64) string {
	return name + `{quantile="` + strconv.FormatFloat(q, 'g', -1, 64) + `"}`
}

// Options tunes a Scraper beyond what Scrape takes.
type Options struct {
	Interval time.Duration // default 1s
	Timeout  time.Duration // per request; default 900ms, so one slow node cannot delay the next tick
	Prefixes []string      // default DefaultPrefixes
	Client   *http.Client  // overrides the TLS client built from the CA file (tests)
	// Nodes, when set, is asked before every scrape which nodes there are
	// now (name and address), so a replacement node is scraped from the
	// moment it exists; it overrides the fixed list Scrape was given.
	Nodes func() (names, addrs []string)
	// Every, when set, is asked after every scrape how long to wait for
	// the next one (e.g. 1 s while a fault acts, 5 s otherwise); it
	// overrides Interval.
	Every func() time.Duration
	// OnRequest is called once per request sent (the observer counts
	// what it costs the cluster).
	OnRequest func()
}

// Scrape polls https://<addr>/v1/sys/metrics?format=prometheus on every node
// each second until ctx is done, appending one Point per node and scrape to
// runDir/metrics/<name>.prom.jsonl. addrs[i] is the base URL (or host:port)
// of the node called names[i]. names may also be nil, then each node's name is
// its address. prefixes selects the metric families kept; nil means
// DefaultPrefixes.
//
// Server certificates are verified against caFile (PEM); an empty caFile
// means the system roots. It returns nil when ctx ends, and an error only
// when it cannot start (bad CA file, run directory not writable).
func Scrape(ctx context.Context, addrs, names []string, caFile, token, runDir string) error {
	return ScrapeWith(ctx, addrs, names, caFile, token, runDir, Options{})
}

// ScrapeWith is Scrape with Options.
func ScrapeWith(ctx context.Context, addrs, names []string, caFile, token, runDir string, o Options) error {
	if names != nil && len(names) != len(addrs) {
		return fmt.Errorf("metrics: %d addresses but %d node names", len(addrs), len(names))
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 900 * time.Millisecond
	}
	if o.Prefixes == nil {
		o.Prefixes = DefaultPrefixes
	}
	if o.Nodes == nil {
		o.Nodes = func() ([]string, []string) { return names, addrs }
	}
	if o.Every == nil {
		o.Every = func() time.Duration { return o.Interval }
	}
	client := o.Client
	if client == nil {
		var err error
		if client, err = tlsClient(caFile); err != nil {
			return err
		}
	}
	dir := filepath.Join(runDir, rundir.MetricsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	open := map[string]*node{}
	defer func() {
		for _, n := range open {
			n.out.Close()
		}
	}()
	// current opens a file for every node not seen before; a node that
	// is gone keeps its file (its history) but is not scraped.
	current := func() ([]*node, error) {
		ns, as := o.Nodes()
		var out []*node
		for i, a := range as {
			name := a
			if ns != nil {
				name = ns[i]
			}
			n := open[name]
			if n == nil {
				app, err := rundir.OpenAppender(dir, name+Suffix)
				if err != nil {
					return nil, fmt.Errorf("metrics: %w", err)
				}
				n = &node{name: name, out: app}
				open[name] = n
			}
			n.url = metricsURL(a)
			out = append(out, n)
		}
		return out, nil
	}
	if _, err := current(); err != nil {
		return err
	}
	for {
		nodes, err := current()
		if err != nil {
			return err
		}
		now := time.Now()
		// One node at a time: a scrape's parse takes CPU, and doing all
		// of them at once took both cores of a small machine away from
		// the load generator. Each node's timeout still bounds a round.
		for _, n := range nodes {
			if o.OnRequest != nil {
				o.OnRequest()
			}
			p := n.scrape(ctx, client, token, o.Timeout, o.Prefixes)
			p.T = now
			// A write error (disk full) must not end the run; the report
			// will simply have a gap.
			_ = n.out.Append(p)
			if ctx.Err() != nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Until(now.Add(o.Every()))):
		}
	}
}

type node struct {
	name string
	url  string
	out  *rundir.Appender
}

func metricsURL(addr string) string {
	addr = strings.TrimRight(addr, "/")
	if !strings.Contains(addr, "://") {
		addr = "https://" + addr
	}
	return addr + "/v1/sys/metrics?format=prometheus"
}

func tlsClient(caFile string) (*http.Client, error) {
	cfg, err := tlsconf.Client(caFile)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:     cfg,
		MaxIdleConnsPerHost: 1,
		// Keep-alive across scrapes, but a node that was killed and
		// replaced must get a fresh handshake quickly.
		IdleConnTimeout: 5 * time.Second,
	}}, nil
}

func (n *node) scrape(ctx context.Context, c *http.Client, token string, timeout time.Duration, prefixes []string) Point {
	p := Point{Node: n.name}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.url, nil)
	if err != nil {
		p.Err = err.Error()
		return p
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	resp, err := c.Do(req)
	if err != nil {
		p.Err = err.Error()
		return p
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		p.Err = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
		return p
	}
	v, err := Parse(resp.Body, prefixes)
	if err != nil {
		p.Err = err.Error()
		return p
	}
	p.V = v
	return p
}

// Parse reads Prometheus text exposition and returns the samples of every
// family whose name starts with one of prefixes (nil keeps all), keyed as
// Prometheus prints them: name{labels}, with summaries split into quantile,
// _sum and _count series. NaN and infinite values are dropped: Vault reports
// a summary quantile as NaN when nothing was observed in its window, and JSON
// cannot carry NaN.
func Parse(r io.Reader, prefixes []string) (map[string]float64, error) {
	if prefixes != nil {
		// Vault exposes hundreds of families and the harness keeps a
		// few: dropping the other lines before the parser sees them makes
		// a scrape cheap enough not to delay the load generator sharing
		// the machine (a whole parse of five nodes at once made sends
		// late by tens of ms).
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, fmt.Errorf("read prometheus text: %w", err)
		}
		r = bytes.NewReader(keepLines(b, prefixes))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse prometheus text: %w", err)
	}
	out := make(map[string]float64)
	put := func(key string, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		out[key] = v
	}
	for name, f := range fams {
		if !keep(name, prefixes) {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := labelString(m.GetLabel(), "")
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				put(name+labels, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				put(name+labels, m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				put(name+labels, m.GetUntyped().GetValue())
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				for _, q := range s.GetQuantile() {
					put(name+labelString(m.GetLabel(), strconv.FormatFloat(q.GetQuantile(), 'g', -1, 64)), q.GetValue())
				}
				put(name+"_sum"+labels, s.GetSampleSum())
				put(name+"_count"+labels, float64(s.GetSampleCount()))
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				put(name+"_sum"+labels, h.GetSampleSum())
				put(name+"_count"+labels, float64(h.GetSampleCount()))
			}
		}
	}
	return out, nil
}

// keepLines returns the lines of a Prometheus text exposition that belong
// to families kept by prefixes: samples whose name starts with one, and
// their # HELP and # TYPE lines.
func keepLines(b []byte, prefixes []string) []byte {
	out := make([]byte, 0, len(b)/8)
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i+1], b[i+1:]
		} else {
			b = nil
		}
		name := line
		if bytes.HasPrefix(name, []byte("# HELP ")) || bytes.HasPrefix(name, []byte("# TYPE ")) {
			name = name[7:]
		} else if len(name) > 0 && name[0] == '#' {
			continue
		}
		for _, p := range prefixes {
			if bytes.HasPrefix(name, []byte(p)) {
				out = append(out, line...)
				if line[len(line)-1] != '\n' {
					out = append(out, '\n')
				}
				break
			}
		}
	}
	return out
}

func keep(name string, prefixes []string) bool {
	if prefixes == nil {
		return true
	}
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// labelString renders labels sorted by name, with quantile last when given,
// so one series always gets the same key.
func labelString(ls []*dto.LabelPair, quantile string) string {
	if len(ls) == 0 && quantile == "" {
		return ""
	}
	pairs := make([]string, 0, len(ls)+1)
	for _, l := range ls {
		pairs = append(pairs, l.GetName()+"="+strconv.Quote(l.GetValue()))
	}
	sort.Strings(pairs)
	if quantile != "" {
		pairs = append(pairs, `quantile="`+quantile+`"`)
	}
	return "{" + strings.Join(pairs, ",") + "}"
}

// ReadDir reads every node's metric lines from runDir/metrics. A missing
// directory is no metrics. Files named <node>.jsonl are read too, so the
// reader does not depend on the suffix.
func ReadDir(runDir string) (map[string][]Point, error) {
	dir := filepath.Join(runDir, rundir.MetricsDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	out := make(map[string][]Point)
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".jsonl") {
			continue
		}
		node := strings.TrimSuffix(strings.TrimSuffix(name, ".jsonl"), ".prom")
		var pts []Point
		if err := rundir.ReadLines(dir, name, func(p Point) error {
			pts = append(pts, p)
			return nil
		}); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		sort.SliceStable(pts, func(i, j int) bool { return pts[i].T.Before(pts[j].T) })
		out[node] = pts
	}
	return out, nil
}

// PerSecondMean turns a summary's cumulative _sum and _count into the mean
// of what was observed between consecutive scrapes. That is sharper than
// the summary's own quantiles, which Vault computes over a sliding window of
// several seconds and so smear a fault across the window. Series of the
// same name with labels (one per raft peer, say) are added up first. A
// counter that went down (the node restarted) starts over rather than
// yielding a negative mean.
func PerSecondMean(pts []Point, name string) (ts []time.Time, means []float64) {
	sumKey, cntKey := name+"_sum", name+"_count"
	var prevSum, prevCnt float64
	have := false
	for _, p := range pts {
		s, ok1 := total(p.V, sumKey)
		c, ok2 := total(p.V, cntKey)
		if !ok1 || !ok2 {
			have = false
			continue
		}
		if have && c > prevCnt && s >= prevSum {
			ts = append(ts, p.T)
			means = append(means, (s-prevSum)/(c-prevCnt))
		}
		prevSum, prevCnt, have = s, c, true
	}
	return ts, means
}

// total adds the series key and key{…}.
func total(v map[string]float64, key string) (float64, bool) {
	sum, ok := v[key]
	for k, x := range v {
		if len(k) > len(key) && k[len(key)] == '{' && strings.HasPrefix(k, key) {
			sum += x
			ok = true
		}
	}
	return sum, ok
}
