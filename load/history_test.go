package load

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/checkers"
	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

func TestHistorySample(t *testing.T) {
	for _, tc := range []struct {
		keys, k int
		want    []int
	}{
		{1000, 16, []int{0, 62, 124, 186, 248, 310, 372, 434, 496, 558, 620, 682, 744, 806, 868, 930}},
		{10, 4, []int{0, 2, 4, 6}},
		{3, 16, []int{0, 1, 2}},
		{1000, -1, nil},
	} {
		h := newHistory(Options{Keys: tc.keys, HistoryKeys: tc.k})
		got := h.sampledKeys()
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("keys %d, K %d: sampled %v, want %v", tc.keys, tc.k, got, tc.want)
		}
		n := 0
		for k := int32(0); k < int32(tc.keys); k++ {
			if h.sampled(k) {
				n++
			}
		}
		if n != len(tc.want) || h.keys != len(tc.want) {
			t.Errorf("keys %d, K %d: sampled() true for %d keys, h.keys %d, want %d", tc.keys, tc.k, n, h.keys, len(tc.want))
		}
	}
}

func TestParseRead(t *testing.T) {
	const id = "abcdEFGH0000000000000012"
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		ver     int
		val     string
		deleted bool
		ok      bool
	}{
		{"vault 200", 200, `{"request_id":"x","lease_id":"","renewable":false,"lease_duration":0,"data":{"data":{"v":"` + id + `filler"},"metadata":{"created_time":"2026","custom_metadata":null,"deletion_time":"","destroyed":false,"version":7}},"wrap_info":null,"warnings":null,"auth":null,"mount_type":"kv"}`, 7, id, false, true},
		{"short value", 200, `{"data":{"data":{"v":"abc"},"metadata":{"version":2}}}`, 2, "abc", false, true},
		{"another writer's data", 200, `{"data":{"data":{"metadata":{"version":99},"v":"x\"y","version":5},"metadata":{"deletion_time":"","version":3}}}`, 3, "x", false, true},
		{"no v", 200, `{"data":{"data":{"w":"z"},"metadata":{"version":4}}}`, 4, "", false, true},
		{"deleted", 404, `{"data":{"data":null,"metadata":{"created_time":"2026","deletion_time":"2026","destroyed":false,"version":9}}}`, 9, "", true, true},
		{"absent", 404, `{"errors":[]}`, 0, "", false, true},
		{"cut short", 200, `{"data":{"data":{"v":"` + id + `fillerfiller`, 0, "", false, false},
	} {
		ver, val, deleted, ok := parseRead(tc.status, []byte(tc.body))
		if ver != tc.ver || val != tc.val || deleted != tc.deleted || ok != tc.ok {
			t.Errorf("%s: got (%d, %q, %v, %v), want (%d, %q, %v, %v)", tc.name, ver, val, deleted, ok, tc.ver, tc.val, tc.deleted, tc.ok)
		}
	}
}

func readHistory(t *testing.T, dir string) []rundir.HistoryOp {
	t.Helper()
	var ops []rundir.HistoryOp
	if err := rundir.ReadLines(dir, rundir.HistoryFile, func(op rundir.HistoryOp) error { ops = append(ops, op); return nil }); err != nil {
		t.Fatal(err)
	}
	return ops
}

func readLedger(t *testing.T, dir string) []rundir.LedgerEntry {
	t.Helper()
	var es []rundir.LedgerEntry
	if err := rundir.ReadLines(dir, rundir.LedgerFile, func(e rundir.LedgerEntry) error { es = append(es, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return es
}

// checkHistoryFile asserts what every recorded history must hold: only the
// sampled keys, every write and delete the ledger has for them (no more),
// reads that see values the run wrote, times in order, and a verdict of
// linearizable from a store that is linearizable.
func checkHistoryFile(t *testing.T, dir string, sampled map[string]bool) []rundir.HistoryOp {
	t.Helper()
	ops := readHistory(t, dir)
	type count struct{ writes, unknownWrites, deletes int }
	fromHist, fromLedger := map[string]*count{}, map[string]*count{}
	get := func(m map[string]*count, k string) *count {
		if m[k] == nil {
			m[k] = &count{}
		}
		return m[k]
	}
	written := map[string]bool{}
	reads := 0
	for _, op := range ops {
		if !sampled[op.Key] {
			t.Fatalf("history has key %s, not a sampled one", op.Key)
		}
		if op.Call < 0 || (op.Ret >= 0 && op.Ret < op.Call) || (op.Ret < 0) != (op.Outcome == OutcomeUnknown) {
			t.Errorf("bad times or outcome: %+v", op)
		}
		c := get(fromHist, op.Key)
		switch op.Op {
		case "write":
			written[op.Value] = true
			if op.Outcome == OutcomeUnknown {
				c.unknownWrites++
			} else {
				c.writes++
				if op.Version < 1 || len(op.Value) != valueIDLen {
					t.Errorf("acknowledged write without version or value id: %+v", op)
				}
			}
		case "delete":
			c.deletes++
		case "read":
			reads++
		}
	}
	for _, op := range ops {
		if op.Op == "read" && !op.Deleted && op.Version > 0 && !written[op.Value] {
			t.Errorf("read saw value %q no recorded write wrote: %+v", op.Value, op)
		}
	}
	for _, e := range readLedger(t, dir) {
		if !sampled[e.Key] {
			continue
		}
		c := get(fromLedger, e.Key)
		switch {
		case e.Op == "delete":
			c.deletes++
		case e.Outcome == OutcomeOK:
			c.writes++
		default:
			c.unknownWrites++
		}
	}
	for k := range sampled {
		h, l := get(fromHist, k), get(fromLedger, k)
		if *h != *l {
			t.Errorf("%s: history has %+v, ledger %+v", k, *h, *l)
		}
		if h.writes == 0 {
			t.Errorf("%s: no acknowledged write recorded (the prefill's at least)", k)
		}
	}
	if reads == 0 {
		t.Error("no read recorded")
	}
	return ops
}

func sampledNames(t *testing.T, dir string, idx ...int) map[string]bool {
	var cfg RunConfig
	if err := rundir.ReadJSON(dir, ConfigFile, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.HistoryKeys != len(idx) {
		t.Errorf("load.json history_keys %d, want %d", cfg.HistoryKeys, len(idx))
	}
	width := len(strconv.Itoa(cfg.Keys - 1))
	m := map[string]bool{}
	for _, i := range idx {
		m[fmt.Sprintf("%sk%0*d", cfg.KeyPrefix, width, i)] = true
	}
	return m
}

func TestHistoryRecorded(t *testing.T) {
	for _, api := range []bool{false, true} {
		name := "raw"
		if api {
			name = "vault-api"
		}
		t.Run(name, func(t *testing.T) {
			s := newStub(t)
			dir := t.TempDir()
			m, _ := ParseMix("read=60,write=30,delete=10")
			o := Options{Schedule: Constant(300, 2*time.Second), Mix: m, Keys: 40, HistoryKeys: 4, Seed: 3, APIClient: api}
			sum, err := Run(context.Background(), s.target, o, dir)
			if err != nil {
				t.Fatal(err)
			}
			sampled := sampledNames(t, dir, 0, 10, 20, 30)
			ops := checkHistoryFile(t, dir, sampled)
			if sum.HistoryKeys != 4 || sum.HistoryOps != len(ops) {
				t.Errorf("summary history_keys %d, history_ops %d; want 4 and %d", sum.HistoryKeys, sum.HistoryOps, len(ops))
			}
			// 600 requests, 1/10 of them on the sample, plus 4 prefill writes.
			if len(ops) < 35 || len(ops) > 100 {
				t.Errorf("%d operations recorded, want ≈64", len(ops))
			}
			r, err := checkers.CheckDir(dir, time.Minute)
			if err != nil || r.Linearizable == nil || !*r.Linearizable {
				t.Errorf("a linearizable store judged %v: %s (%v)", r.Linearizable, r.Detail, err)
			}
			// The latest version of each sampled key is the last write's.
			for k := range sampled {
				last := 0
				for _, op := range ops {
					if op.Key == k && op.Op == "write" {
						last = max(last, op.Version)
					}
				}
				if got := s.Latest("vaultstorm", k); got != last {
					t.Errorf("%s: store at version %d, history's last write %d", k, got, last)
				}
			}
		})
	}
}

// Requests that time out are unknown outcomes (Ret -1); those Vault refused
// (sealed) are known failures and left out; the ledger and the history
// agree on both. A value written behind the harness's back makes the
// history not linearizable.
func TestHistoryFailuresAndOutsideWrite(t *testing.T) {
	s := newStub(t)
	dir := t.TempDir()
	m, _ := ParseMix("read=50,write=50")
	var samples int
	// Timeouts of 300 ms in a stall of 1 s; then 500 ms sealed. The target
	// is the node itself: "active" traffic would not be sent to a sealed
	// node at all once the watcher saw it (no_active).
	o := Options{Schedule: Constant(200, 5*time.Second), Mix: m, Keys: 4, HistoryKeys: 4, Seed: 5, Timeout: 300 * time.Millisecond, Target: "node1",
		OnSample: func(rundir.Sample) {
			switch samples++; samples {
			case 1:
				s.Stall(time.Second)
			case 3:
				s.Seal(true)
				time.AfterFunc(500*time.Millisecond, func() { s.Seal(false) })
			}
		}}
	sum, err := Run(context.Background(), s.target, o, dir)
	if err != nil {
		t.Fatal(err)
	}
	sampled := sampledNames(t, dir, 0, 1, 2, 3)
	ops := checkHistoryFile(t, dir, sampled)
	unknown := 0
	for _, op := range ops {
		if op.Ret < 0 {
			unknown++
		}
	}
	t.Logf("%d operations, %d unknown; summary: %d unknown writes, errors %+v", len(ops), unknown, sum.UnknownWrites, sum.Ops["write"].ByErr)
	if unknown == 0 || sum.Ops["write"].ByErr["sealed"] == 0 {
		t.Errorf("want both unknown outcomes (%d) and sealed refusals (%d) in this run", unknown, sum.Ops["write"].ByErr["sealed"])
	}
	r, err := checkers.CheckDir(dir, time.Minute)
	if err != nil || r.Linearizable == nil || !*r.Linearizable {
		t.Errorf("with unknown outcomes, judged %v: %s (%v)", r.Linearizable, r.Detail, err)
	}

	// Now the same with one value overwritten behind the harness's back.
	dir2 := t.TempDir()
	samples = 0
	var key string
	o.OnSample = func(rundir.Sample) {
		if samples++; samples == 2 {
			var cfg RunConfig
			rundir.ReadJSON(dir2, ConfigFile, &cfg)
			key = cfg.KeyPrefix + "k2"
			s.Put(cfg.Mount, key, "behind-the-back")
		}
	}
	if _, err := Run(context.Background(), s.target, o, dir2); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r, err = checkers.CheckDir(dir2, time.Minute)
	t.Logf("checked in %s (porcupine %s)", time.Since(start), r.Elapsed)
	if err != nil || r.Linearizable == nil || *r.Linearizable || !strings.HasPrefix(r.Detail, "no: key "+key+": ") {
		t.Fatalf("a write behind the harness's back judged %v: %s (%v)", r.Linearizable, r.Detail, err)
	}
	t.Logf("verdict: %s", r.Detail)
	if _, err := os.Stat(filepath.Join(dir2, rundir.LinearizabilityFile)); err != nil {
		t.Errorf("no visualisation: %v", err)
	}
}

func TestHistoryOff(t *testing.T) {
	s := newStub(t)
	dir := t.TempDir()
	sum, err := Run(context.Background(), s.target, Options{Schedule: Constant(50, time.Second), Keys: 10, HistoryKeys: -1}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, rundir.HistoryFile)); err == nil || sum.HistoryKeys != 0 || sum.HistoryOps != 0 {
		t.Errorf("HistoryKeys -1 recorded a history (%v, %d keys, %d ops)", err, sum.HistoryKeys, sum.HistoryOps)
	}
}
