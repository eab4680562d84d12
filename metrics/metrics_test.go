package metrics

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// vaultText is what Vault 1.21's sys/metrics?format=prometheus returns, cut
// down: go-metrics summaries with a NaN quantile when the window is empty.
const vaultText = `# HELP vault_raft_commitTime vault_raft_commitTime
# TYPE vault_raft_commitTime summary
vault_raft_commitTime{quantile="0.5"} 1.25
vault_raft_commitTime{quantile="0.9"} 2.5
vault_raft_commitTime{quantile="0.99"} NaN
vault_raft_commitTime_sum 123.5
vault_raft_commitTime_count 77
# HELP vault_raft_leader_lastContact vault_raft_leader_lastContact
# TYPE vault_raft_leader_lastContact summary
vault_raft_leader_lastContact{peer_id="vault-2",quantile="0.5"} 12
vault_raft_leader_lastContact_sum{peer_id="vault-2"} 400
vault_raft_leader_lastContact_count{peer_id="vault-2"} 30
# HELP vault_core_handle_request vault_core_handle_request
# TYPE vault_core_handle_request summary
vault_core_handle_request{quantile="0.99"} 4.75
vault_core_handle_request_sum 1000
vault_core_handle_request_count 500
# HELP vault_core_unsealed vault_core_unsealed
# TYPE vault_core_unsealed gauge
vault_core_unsealed{cluster="vault-cluster-1"} 1
# HELP vault_route_read_secret_ vault_route_read_secret_
# TYPE vault_route_read_secret_ summary
vault_route_read_secret_{quantile="0.5"} 0.3
vault_route_read_secret__sum 3
vault_route_read_secret__count 10
`

func writeCA(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestParse(t *testing.T) {
	v, err := Parse(strings.NewReader(vaultText), DefaultPrefixes)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		Quantile(RaftCommitTime, 0.5):                                     1.25,
		Quantile(RaftCommitTime, 0.9):                                     2.5,
		RaftCommitTime + "_sum":                                           123.5,
		RaftCommitTime + "_count":                                         77,
		`vault_raft_leader_lastContact{peer_id="vault-2",quantile="0.5"}`: 12,
		`vault_raft_leader_lastContact_count{peer_id="vault-2"}`:          30,
		Quantile(HandleRequest, 0.99):                                     4.75,
		`vault_core_unsealed{cluster="vault-cluster-1"}`:                  1,
	}
	for k, w := range want {
		if got, ok := v[k]; !ok || got != w {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, w)
		}
	}
	if _, ok := v[Quantile(RaftCommitTime, 0.99)]; ok {
		t.Error("NaN quantile kept; JSON cannot encode it")
	}
	for k := range v {
		if strings.HasPrefix(k, "vault_route_") {
			t.Errorf("%s kept though not in the prefixes", k)
		}
	}
}

// rounds is how many complete scrape rounds TestScrapeTLSStub waits for.
const rounds = 4

// TestScrapeTLSStub scrapes three stub nodes (good, sealed, wrong name)
// until good has been scraped `rounds` times. The scraper stops when good
// sees its next request (counted, not timed: a slow machine only makes the
// test longer), so every round but possibly that last one is complete.
func TestScrapeTLSStub(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // only if it hangs
	defer cancel()
	var hits atomic.Int64
	good := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Load() >= rounds {
			// Round rounds+1 has begun, so round `rounds` is on disk.
			cancel()
		}
		if r.URL.Path != "/v1/sys/metrics" || r.URL.Query().Get("format") != "prometheus" {
			http.Error(w, "bad path "+r.URL.String(), http.StatusNotFound)
			return
		}
		if r.Header.Get("X-Vault-Token") != "s.test" {
			http.Error(w, `{"errors":["permission denied"]}`, http.StatusForbidden)
			return
		}
		hits.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Write([]byte(vaultText))
	}))
	defer good.Close()
	sealed := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"errors":["Vault is sealed"]}`, http.StatusServiceUnavailable)
	}))
	defer sealed.Close()
	// Signed by a CA the scraper was not given: must fail verification,
	// never be read.
	stranger := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(vaultText))
	}))
	defer stranger.Close()

	// The three stub servers share httptest's one certificate, so trust
	// only good's by giving a CA file with it, and reach "stranger" through
	// a name the certificate does not cover.
	ca := writeCA(t, good)
	run := t.TempDir()
	strangerAddr := strings.Replace(stranger.URL, "127.0.0.1", "localhost", 1)
	err := ScrapeWith(ctx,
		[]string{good.URL, sealed.URL, strangerAddr},
		[]string{"vault-1", "vault-2", "vault-3"},
		ca, "s.test", run, Options{Interval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("scraper stopped by the 1m guard: good was scraped %d times, want %d", hits.Load(), rounds+1)
	}
	all, err := ReadDir(run)
	if err != nil {
		t.Fatal(err)
	}
	// Points of the rounds after the first `rounds` may be cut short by
	// the cancellation; all others must be what each node gives.
	check := func(name string, ok func(Point) bool, what string) {
		pts := all[name]
		if len(pts) < rounds {
			t.Fatalf("%s: %d points, want at least %d (one per round)", name, len(pts), rounds)
		}
		for i, p := range pts {
			if !ok(p) && (i < rounds || !strings.Contains(p.Err, "context canceled")) {
				t.Fatalf("%s point %d of %d: %+v, want %s", name, i+1, len(pts), p, what)
			}
		}
	}
	check("vault-1", func(p Point) bool { return p.Err == "" && p.V[Quantile(RaftCommitTime, 0.5)] == 1.25 }, "the parsed metrics")
	check("vault-2", func(p Point) bool { return strings.Contains(p.Err, "503") && strings.Contains(p.Err, "sealed") }, "a sealed 503")
	check("vault-3", func(p Point) bool { return strings.Contains(p.Err, "certificate") }, "a TLS verification failure (name not in the certificate)")
	if _, err := os.Stat(filepath.Join(run, "metrics", "vault-1"+Suffix)); err != nil {
		t.Fatal(err)
	}
}

func TestScrapeBadCA(t *testing.T) {
	f := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(f, []byte("not a pem"), 0o600)
	err := Scrape(context.Background(), []string{"127.0.0.1:8200"}, nil, f, "", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), f) {
		t.Fatalf("want an error naming %s, got %v", f, err)
	}
}

func TestPerSecondMean(t *testing.T) {
	t0 := time.Unix(1000, 0)
	pts := []Point{
		{T: t0, V: map[string]float64{"x_sum": 10, "x_count": 5}},
		{T: t0.Add(time.Second), V: map[string]float64{"x_sum": 30, "x_count": 10}}, // 20/5 = 4
		{T: t0.Add(2 * time.Second), Err: "connection refused"},
		{T: t0.Add(3 * time.Second), V: map[string]float64{"x_sum": 2, "x_count": 1}}, // restarted
		{T: t0.Add(4 * time.Second), V: map[string]float64{"x_sum": 8, "x_count": 3}}, // 6/2 = 3
	}
	ts, m := PerSecondMean(pts, "x")
	if len(m) != 2 || m[0] != 4 || m[1] != 3 || !ts[1].Equal(t0.Add(4*time.Second)) {
		t.Fatalf("got %v %v", ts, m)
	}
}

// Dropping the families nobody keeps before parsing changes nothing in
// what is kept: the filtered parse equals the whole parse, filtered after.
func TestParseFilterEquivalent(t *testing.T) {
	// Unkept families around and between the kept ones, with and without
	// HELP/TYPE lines.
	text := "# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 12\n" + vaultText +
		"# TYPE vault_secret_kv_count gauge\nvault_secret_kv_count{mount_point=\"kv\"} 3\nvault_unkept_total 4\n"
	whole, err := Parse(strings.NewReader(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := Parse(strings.NewReader(text), DefaultPrefixes)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{}
	for k, v := range whole {
		name, _, _ := strings.Cut(k, "{")
		if keep(strings.TrimSuffix(strings.TrimSuffix(name, "_sum"), "_count"), DefaultPrefixes) {
			want[k] = v
		}
	}
	if len(want) == 0 || len(kept) != len(want) {
		t.Fatalf("kept %d series, want %d", len(kept), len(want))
	}
	for k, v := range want {
		if kept[k] != v {
			t.Errorf("%s = %v, want %v", k, kept[k], v)
		}
	}
	if _, ok := kept["go_goroutines"]; ok {
		t.Errorf("an unkept family was parsed")
	}
}
