package reports

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// fakeShard is a hand-written shard run directory: per second, per op,
// the latencies (ns) it recorded.
type fakeShard struct {
	index, count int
	runID        string
	start        time.Time
	secs         []map[string][]int64
	hi           int64  // histogram's highest trackable value; 0: load's 60 s
	keyPrefix    string // default load/run/shard-I-of-N/
	mount        string
	partial      bool
}

func writeShard(t *testing.T, dir string, s fakeShard) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	hi := s.hi
	if hi == 0 {
		hi = int64(60 * time.Second)
	}
	if s.keyPrefix == "" {
		s.keyPrefix = fmt.Sprintf("load/run/shard-%d-of-%d/", s.index, s.count)
	}
	if s.mount == "" {
		s.mount = "vaultstorm"
	}
	end := s.start.Add(time.Duration(len(s.secs)) * time.Second)
	meta := rundir.Meta{Tool: "vaultstorm test", Started: s.start, Shard: &rundir.Shard{Index: s.index, Count: s.count, RunID: s.runID}}
	if !s.partial {
		meta.Ended = end
	}
	var buf bytes.Buffer
	w := hdr.NewHistogramLogWriter(&buf)
	ms := s.start.UnixMilli()
	w.SetBaseTime(ms)
	w.OutputLogFormatVersion()
	w.OutputComment("[test shard, values in ns]")
	w.OutputStartTime(ms)
	w.OutputBaseTime(ms)
	w.OutputLegend()
	samples, err := rundir.OpenAppender(dir, rundir.SamplesFile)
	if err != nil {
		t.Fatal(err)
	}
	defer samples.Close()
	sum := rundir.Summary{Ops: map[string]rundir.OpStats{}, Duration: float64(len(s.secs)), TargetRate: 10}
	ledger, err := rundir.OpenAppender(dir, rundir.LedgerFile)
	if err != nil {
		t.Fatal(err)
	}
	defer ledger.Close()
	for i, ops := range s.secs {
		at := s.start.Add(time.Duration(i) * time.Second)
		smp := rundir.Sample{T: at, Ops: map[string]rundir.OpStats{}}
		for _, op := range []string{"read", "write"} {
			h := hdr.New(int64(time.Microsecond), hi, 3)
			for _, v := range ops[op] {
				if err := h.RecordValue(v); err != nil {
					t.Fatal(err)
				}
			}
			h.SetTag(op)
			h.SetStartTimeMs(at.UnixMilli())
			h.SetEndTimeMs(at.UnixMilli() + 1000)
			if err := w.OutputIntervalHistogram(h); err != nil {
				t.Fatal(err)
			}
			n := int64(len(ops[op]))
			errs := n / 10
			st := rundir.OpStats{Count: n, Errors: errs, Rate: float64(n)}
			if errs > 0 {
				st.ByErr = map[string]int64{"timeout": errs}
			}
			smp.Ops[op] = st
			tot := sum.Ops[op]
			addCounts(&tot, st)
			tot.Rate = float64(tot.Count) / sum.Duration
			sum.Ops[op] = tot
			if op == "write" {
				for k := range n {
					e := rundir.LedgerEntry{T: at, Key: fmt.Sprintf("%sk%02d", s.keyPrefix, k), Version: i + 1, Digest: "d", Outcome: "ok"}
					if err := ledger.Append(e); err != nil {
						t.Fatal(err)
					}
					sum.AckedWrites++
				}
			}
		}
		if err := samples.Append(smp); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, rundir.HistogramsFile), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{"mount": s.mount, "key_prefix": s.keyPrefix, "shard": meta.Shard, "target_rate": 10}
	for name, v := range map[string]any{rundir.MetaFile: meta, rundir.SummaryFile: sum, loadConfigFile: cfg} {
		if err := rundir.WriteJSON(dir, name, v); err != nil {
			t.Fatal(err)
		}
	}
}

// randomSecs draws n seconds of latencies: reads mostly fast with a slow
// tail, writes slower; counts differ per second.
func randomSecs(r *rand.Rand, n int, slow int64) []map[string][]int64 {
	out := make([]map[string][]int64, n)
	for i := range out {
		out[i] = map[string][]int64{}
		for range 20 + r.IntN(30) {
			v := int64(200_000 + r.IntN(3_000_000))
			if r.IntN(50) == 0 {
				v = slow + int64(r.IntN(100_000_000))
			}
			out[i]["read"] = append(out[i]["read"], v)
		}
		for range 5 + r.IntN(10) {
			out[i]["write"] = append(out[i]["write"], int64(5_000_000+r.IntN(80_000_000)))
		}
	}
	return out
}

func TestMergeShardsExact(t *testing.T) {
	root := t.TempDir()
	r := rand.New(rand.NewPCG(7, 8))
	base := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
	union := map[string]*hdr.Histogram{"read": hdr.New(1000, int64(60*time.Second), 3), "write": hdr.New(1000, int64(60*time.Second), 3)}
	all := hdr.New(1000, int64(60*time.Second), 3)
	var dirs []string
	wantCount := map[string]int64{}
	wantErrs := map[string]int64{}
	var wantAcked int64
	// Four shards started 0, 250, 600 and 900 ms apart (and one a second
	// late): their seconds must line up by wall clock.
	offsets := []time.Duration{0, 250 * time.Millisecond, 600 * time.Millisecond, 1900 * time.Millisecond}
	for i, off := range offsets {
		secs := randomSecs(r, 5, int64(200+100*i)*int64(time.Millisecond))
		dir := filepath.Join(root, fmt.Sprintf("shard%d", i))
		writeShard(t, dir, fakeShard{index: i, count: len(offsets), runID: "nightly", start: base.Add(off), secs: secs})
		dirs = append(dirs, dir)
		var sum rundir.Summary
		if err := rundir.ReadJSON(dir, rundir.SummaryFile, &sum); err != nil {
			t.Fatal(err)
		}
		for op, st := range sum.Ops {
			wantCount[op] += st.Count
			wantErrs[op] += st.Errors
		}
		wantAcked += sum.AckedWrites
		for _, ops := range secs {
			for op, vs := range ops {
				for _, v := range vs {
					union[op].RecordValue(v)
					all.RecordValue(v)
				}
			}
		}
	}
	out := filepath.Join(root, "merged")
	// Shards given in any order.
	res, err := MergeShards(out, []string{dirs[2], dirs[0], dirs[3], dirs[1]})
	if err != nil {
		t.Fatal(err)
	}
	var sum rundir.Summary
	if err := rundir.ReadJSON(out, rundir.SummaryFile, &sum); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"read", "write"} {
		got := sum.Ops[op]
		if got.Count != wantCount[op] || got.Errors != wantErrs[op] || got.ByErr["timeout"] != wantErrs[op] {
			t.Errorf("%s: count %d errors %d (%v), want the shards' sum %d, %d", op, got.Count, got.Errors, got.ByErr, wantCount[op], wantErrs[op])
		}
		for _, q := range []struct {
			name string
			got  float64
			p    float64
		}{{"p50", got.P50, 50}, {"p99", got.P99, 99}, {"p99.9", got.P999, 99.9}} {
			if want := float64(union[op].ValueAtQuantile(q.p)) / 1e6; q.got != want {
				t.Errorf("%s %s = %v ms, want %v ms (the union of every recorded value)", op, q.name, q.got, want)
			}
		}
		if want := float64(union[op].Max()) / 1e6; got.Max != want {
			t.Errorf("%s max = %v, want %v", op, got.Max, want)
		}
	}
	if res.All.Count != wantCount["read"]+wantCount["write"] || res.All.P99 != float64(all.ValueAtQuantile(99))/1e6 {
		t.Errorf("all: count %d p99 %v, want %d and %v", res.All.Count, res.All.P99, wantCount["read"]+wantCount["write"], float64(all.ValueAtQuantile(99))/1e6)
	}
	if sum.AckedWrites != wantAcked || sum.Verified || sum.LostWrites != 0 {
		t.Errorf("acked %d (want %d), verified %v: a merge must not call its ledger verified", sum.AckedWrites, wantAcked, sum.Verified)
	}
	if sum.TargetRate != 40 {
		t.Errorf("target rate %v, want 4 × 10", sum.TargetRate)
	}

	// The merged directory reads as a run: its histograms hold every value
	// once, its samples are whole seconds summing to the totals.
	run, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"read", "write"} {
		if run.Hist[op] == nil || run.Hist[op].TotalCount() != union[op].TotalCount() || run.Hist[op].ValueAtQuantile(99) != union[op].ValueAtQuantile(99) {
			t.Errorf("%s: report's histogram does not hold the union", op)
		}
		var n int64
		for _, s := range run.Samples {
			if s.T.Nanosecond() != 0 {
				t.Fatalf("sample at %s: not a whole second", s.T)
			}
			n += s.Ops[op].Count
		}
		if n != wantCount[op] {
			t.Errorf("%s: samples sum to %d, want %d", op, n, wantCount[op])
		}
	}
	// Samples starting at 0-4, 0.25-4.25, 0.6-4.6 and 1.9-5.9 s: in wall-clock seconds 0 to 5.
	if len(run.Samples) != 6 || res.Seconds != 6 {
		t.Errorf("%d merged seconds, want 6 (wall-clock seconds 0-5)", len(run.Samples))
	}
	if v := run.Verdict(); v.Text != "FAIL" || !strings.Contains(strings.Join(v.Reasons, " "), "NOT VERIFIED") {
		t.Errorf("verdict of an unverified merge: %s %v, want FAIL with NOT VERIFIED", v.Text, v.Reasons)
	}
	if err := Render(out); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{HTMLFile, MarkdownFile, JUnitFile, rundir.LedgerFile, MergeFile} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	var lines int
	rundir.ReadLines(out, rundir.LedgerFile, func(rundir.LedgerEntry) error { lines++; return nil })
	if int64(lines) != wantAcked {
		t.Errorf("merged ledger has %d lines, want %d", lines, wantAcked)
	}
	// A second merge into the same directory is refused.
	if _, err := MergeShards(out, dirs); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("merge into a full directory: %v", err)
	}
}

// TestMergeShardsDropped: a shard whose histogram holds a value the merged
// histogram cannot (a wider range) fails the merge, naming it.
func TestMergeShardsDropped(t *testing.T) {
	root := t.TempDir()
	base := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	writeShard(t, a, fakeShard{index: 0, count: 2, start: base, secs: []map[string][]int64{{"read": {1e6}, "write": {2e6}}}})
	writeShard(t, b, fakeShard{index: 1, count: 2, start: base, hi: int64(time.Hour),
		secs: []map[string][]int64{{"read": {int64(100 * time.Second)}, "write": {2e6}}}})
	_, err := MergeShards(filepath.Join(root, "out"), []string{a, b})
	if err == nil || !strings.Contains(err.Error(), "dropped") || !strings.Contains(err.Error(), b) {
		t.Fatalf("err %v: want the dropped value named, with %s", err, b)
	}
}

// TestMergeShardsRefused: shards that are not all of one sharded run.
func TestMergeShardsRefused(t *testing.T) {
	base := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
	one := []map[string][]int64{{"read": {1e6}, "write": {2e6}}, {"read": {1e6}, "write": {2e6}}}
	cases := []struct {
		name   string
		shards []fakeShard
		plain  bool // the second directory is not a shard
		want   string
		names  int // which directory the error must name
	}{
		{"different N", []fakeShard{{index: 0, count: 2}, {index: 1, count: 3}}, false, "shard of 2", 1},
		{"duplicate index", []fakeShard{{index: 0, count: 2}, {index: 0, count: 2, keyPrefix: "other/"}}, false, "shard 0/2 again", 1},
		{"missing shard", []fakeShard{{index: 0, count: 3}, {index: 2, count: 3}}, false, "shard(s) 1 of 3", 0},
		{"other run id", []fakeShard{{index: 0, count: 2, runID: "a"}, {index: 1, count: 2, runID: "b"}}, false, "run id", 1},
		{"other mount", []fakeShard{{index: 0, count: 2}, {index: 1, count: 2, mount: "kv2"}}, false, "mount", 1},
		{"shared keys", []fakeShard{{index: 0, count: 2, keyPrefix: "same/"}, {index: 1, count: 2, keyPrefix: "same/"}}, false, "overlap", 1},
		{"unfinished", []fakeShard{{index: 0, count: 2}, {index: 1, count: 2, partial: true}}, false, "did not finish", 1},
		{"not together", []fakeShard{{index: 0, count: 2}, {index: 1, count: 2, start: base.Add(time.Hour)}}, false, "did not run together", 1},
		{"not a shard", []fakeShard{{index: 0, count: 2}, {index: 1, count: 2}}, true, "not a shard", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			var dirs []string
			for i, s := range c.shards {
				if s.start.IsZero() {
					s.start = base
				}
				s.secs = one
				dir := filepath.Join(root, fmt.Sprintf("dir%d", i))
				writeShard(t, dir, s)
				if c.plain && i == 1 {
					var m rundir.Meta
					rundir.ReadJSON(dir, rundir.MetaFile, &m)
					m.Shard = nil
					rundir.WriteJSON(dir, rundir.MetaFile, m)
				}
				dirs = append(dirs, dir)
			}
			out := filepath.Join(root, "out")
			_, err := MergeShards(out, dirs)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), dirs[c.names]) {
				t.Fatalf("err %v: want %q naming %s", err, c.want, dirs[c.names])
			}
		})
	}
}
