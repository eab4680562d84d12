package checkers

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// Hand-written histories: times are in ms (the checker reads ns; the
// scale does not matter to it).
func hw(key, value string, ver int, call, ret int64) rundir.HistoryOp {
	return rundir.HistoryOp{Key: key, Op: "write", Value: value, Version: ver, Call: call, Ret: ret, Outcome: OutcomeOK}
}

func hwUnknown(key, value string, call int64) rundir.HistoryOp {
	return rundir.HistoryOp{Key: key, Op: "write", Value: value, Call: call, Ret: -1, Outcome: OutcomeUnknown}
}

func hr(key, value string, ver int, call, ret int64) rundir.HistoryOp {
	return rundir.HistoryOp{Key: key, Op: "read", Value: value, Version: ver, Call: call, Ret: ret, Outcome: OutcomeOK}
}

func hrDeleted(key string, ver int, call, ret int64) rundir.HistoryOp {
	return rundir.HistoryOp{Key: key, Op: "read", Version: ver, Deleted: true, Call: call, Ret: ret, Outcome: OutcomeOK}
}

func hd(key string, call, ret int64) rundir.HistoryOp {
	return rundir.HistoryOp{Key: key, Op: "delete", Call: call, Ret: ret, Outcome: OutcomeOK}
}

func verdict(r LinResult) string {
	if r.Linearizable == nil {
		return "nil"
	}
	return fmt.Sprint(*r.Linearizable)
}

func TestLinearizableHistory(t *testing.T) {
	ops := []rundir.HistoryOp{
		hr("a", "", 0, 0, 1), // absent before the prefill write
		hw("a", "A", 1, 2, 10),
		// Concurrent with the write of B: the first read may come before
		// it, the second after it, though they overlap each other.
		hw("a", "B", 2, 20, 40),
		hr("a", "A", 1, 25, 35),
		hr("a", "B", 2, 30, 38),
		// An unknown-outcome write: not applied yet when read …
		hwUnknown("a", "C", 50),
		hr("a", "B", 2, 60, 70),
		// … but applied before the next write, acknowledged as version 4.
		hw("a", "D", 4, 80, 90),
		hr("a", "D", 4, 100, 110),
		hd("a", 120, 130),
		hrDeleted("a", 4, 140, 150),
		// A delete whose outcome is unknown, concurrent with a write.
		{Key: "a", Op: "delete", Call: 155, Ret: -1, Outcome: OutcomeUnknown},
		hw("a", "E", 5, 160, 170),
		hr("a", "E", 5, 180, 190),
		// Another key: an unknown-outcome write that never took effect.
		hw("b", "X", 1, 0, 10),
		hwUnknown("b", "Y", 20),
		hr("b", "X", 1, 30, 40),
		hr("b", "X", 1, 50, 60),
	}
	r := CheckHistory(ops, 10*time.Second)
	if r.Linearizable == nil || !*r.Linearizable {
		t.Fatalf("linearizable history judged %s: %s", verdict(r), r.Detail)
	}
	if r.Keys != 2 || r.Ops != len(ops) || !strings.HasPrefix(r.Detail, "yes: 2 keys") {
		t.Errorf("result %+v", r)
	}
	var s rundir.Summary
	r.Apply(&s)
	if s.Linearizable == nil || !*s.Linearizable || s.HistoryKeys != 2 || s.HistoryOps != len(ops) || s.Linearizability != r.Detail {
		t.Errorf("Apply: %+v", s)
	}

	// The same history with the unknown write made a known failure (left
	// out): version 4 can no longer be explained.
	var without []rundir.HistoryOp
	for _, op := range ops {
		if !(op.Key == "a" && op.Value == "C") {
			without = append(without, op)
		}
	}
	if r := CheckHistory(without, 10*time.Second); r.Linearizable == nil || *r.Linearizable {
		t.Errorf("version 4 with only 3 writes judged %s: %s", verdict(r), r.Detail)
	} else if !strings.Contains(r.Detail, "was acknowledged as version 4, but this run had sent only 3 writes") {
		t.Errorf("detail %q", r.Detail)
	}
}

// A read that started after version 2 was acknowledged sees version 1 (a
// lagging node served it), then version 2 again.
func TestStaleRead(t *testing.T) {
	ops := []rundir.HistoryOp{
		hw("k0042", "A", 1, 0, 10),
		hw("k0042", "B", 2, 20, 30),
		hr("k0042", "A", 1, 40, 50),
		hr("k0042", "B", 2, 60, 70),
	}
	r := CheckHistory(ops, 10*time.Second)
	if r.Linearizable == nil || *r.Linearizable {
		t.Fatalf("stale read judged %s: %s", verdict(r), r.Detail)
	}
	want := `no: key k0042: read (sent 0.000s, answered 0.000s) saw version 1 (value "A") after version 2 was acknowledged`
	if !strings.HasPrefix(r.Detail, want) {
		t.Errorf("detail %q, want it to start with %q", r.Detail, want)
	}
	// The same reads, concurrent with the write: linearizable.
	ops[2].Call = 25
	if r := CheckHistory(ops, 10*time.Second); r.Linearizable == nil || !*r.Linearizable {
		t.Errorf("read concurrent with the write judged %s: %s", verdict(r), r.Detail)
	}
}

// An acknowledged write lost: after its acknowledgement a read sees the
// older version, and the next write is acknowledged as the same version.
func TestLostAcknowledgedWrite(t *testing.T) {
	ops := []rundir.HistoryOp{
		hw("k", "A", 1, 0, 10),
		hw("k", "B", 2, 20, 30),
		hr("k", "A", 1, 40, 50),
		hw("k", "C", 2, 60, 70),
		hr("k", "C", 2, 80, 90),
	}
	r := CheckHistory(ops, 10*time.Second)
	if r.Linearizable == nil || *r.Linearizable {
		t.Fatalf("lost write judged %s: %s", verdict(r), r.Detail)
	}
	if !strings.Contains(r.Detail, `writes of "B" (sent 0.000s, answered 0.000s) and "C" (sent 0.000s, answered 0.000s) were both acknowledged as version 2`) {
		t.Errorf("detail %q", r.Detail)
	}
	// Without the second write, the read alone shows it.
	r = CheckHistory(ops[:3], 10*time.Second)
	if r.Linearizable == nil || *r.Linearizable || !strings.Contains(r.Detail, `saw version 1 (value "A") after version 2 was acknowledged`) {
		t.Errorf("lost write seen by a read: %s: %s", verdict(r), r.Detail)
	}
}

// A value changed behind the harness's back: a read sees a version no
// write of the run made.
func TestWriteBehindOurBack(t *testing.T) {
	ops := []rundir.HistoryOp{
		hw("k", "A", 1, 0, 10),
		hr("k", "evil", 2, 20, 30),
		hw("k", "B", 3, 40, 50),
	}
	r := CheckHistory(ops, 10*time.Second)
	if r.Linearizable == nil || *r.Linearizable || !strings.Contains(r.Detail, `saw version 2 with value "evil", which no write of this run wrote`) {
		t.Errorf("outside write: %s: %s", verdict(r), r.Detail)
	}
	// Not read: the next write's version gives it away.
	r = CheckHistory([]rundir.HistoryOp{ops[0], ops[2]}, 10*time.Second)
	if r.Linearizable == nil || *r.Linearizable || !strings.Contains(r.Detail, "was acknowledged as version 3, but this run had sent only 2 writes") {
		t.Errorf("outside write, not read: %s: %s", verdict(r), r.Detail)
	}
}

func TestCheckHistoryUndecided(t *testing.T) {
	if r := CheckHistory(nil, time.Second); r.Linearizable != nil || !strings.HasPrefix(r.Detail, "no history") {
		t.Errorf("empty history: %s %q", verdict(r), r.Detail)
	}
	ops := randomHistory(rand.New(rand.NewPCG(1, 2)), 4, 200)
	if r := CheckHistory(ops, time.Nanosecond); r.Linearizable != nil || !strings.HasPrefix(r.Detail, "timed out") {
		t.Errorf("1ns timeout: %s %q", verdict(r), r.Detail)
	}
}

func TestCheckDir(t *testing.T) {
	write := func(dir string, ops []rundir.HistoryOp) {
		app, err := rundir.OpenAppender(dir, rundir.HistoryFile)
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range ops {
			if err := app.Append(op); err != nil {
				t.Fatal(err)
			}
		}
		app.Close()
	}
	clean := t.TempDir()
	write(clean, []rundir.HistoryOp{hw("k", "A", 1, 0, 10), hr("k", "A", 1, 20, 30)})
	r, err := CheckDir(clean, time.Minute)
	if err != nil || r.Linearizable == nil || !*r.Linearizable || r.Ops != 2 {
		t.Errorf("clean: %s %+v %v", verdict(r), r, err)
	}
	if _, err := os.Stat(filepath.Join(clean, rundir.LinearizabilityFile)); err == nil {
		t.Error("visualisation written for a linearizable history")
	}

	bad := t.TempDir()
	write(bad, []rundir.HistoryOp{
		hw("k", "A", 1, 0, 10), hw("k", "B", 2, 20, 30), hr("k", "A", 1, 40, 50),
		hw("ok", "A", 1, 0, 10), hr("ok", "A", 1, 20, 30),
	})
	// A torn last line (a run killed mid-write) is ignored.
	f, _ := os.OpenFile(filepath.Join(bad, rundir.HistoryFile), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"key":"k","op":"re`)
	f.Close()
	r, err = CheckDir(bad, time.Minute)
	if err != nil || r.Linearizable == nil || *r.Linearizable || r.Keys != 2 || r.Ops != 5 {
		t.Fatalf("violation: %s %+v %v", verdict(r), r, err)
	}
	if !strings.HasPrefix(r.Detail, "no: key k: read") || !strings.HasSuffix(r.Detail, "(see linearizability.html)") {
		t.Errorf("detail %q", r.Detail)
	}
	html, err := os.ReadFile(filepath.Join(bad, rundir.LinearizabilityFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(html), "<html") || !strings.Contains(string(html), `read -\u003e v1 A`) {
		t.Errorf("visualisation (%d bytes) lacks the history", len(html))
	}

	none, err := CheckDir(t.TempDir(), time.Minute)
	if err != nil || none.Linearizable != nil {
		t.Errorf("no history.jsonl: %s %+v %v", verdict(none), none, err)
	}
}

// randomHistory simulates a linearizable store: each operation takes
// effect at a random point between its call and return, in that order, and
// the outputs are what the register held there. 5 % of writes have an
// unknown outcome, and 5 % of deletes, half of those never applied.
// Operations overlap (up to ~5 at once).
func randomHistory(rng *rand.Rand, keys, perKey int) []rundir.HistoryOp {
	return randomHistoryU(rng, keys, perKey, 20)
}

func randomHistoryU(rng *rand.Rand, keys, perKey, unknownOneIn int) []rundir.HistoryOp {
	type ev struct {
		op    *rundir.HistoryOp
		point int64
		apply bool
	}
	var out []rundir.HistoryOp
	seq := 0
	for k := range keys {
		key := fmt.Sprintf("k%04d", k)
		ops := make([]rundir.HistoryOp, perKey)
		evs := make([]ev, perKey)
		var t int64
		for i := range ops {
			t += rng.Int64N(40)
			call, dur := t, 1+rng.Int64N(100)
			op := rundir.HistoryOp{Key: key, Call: call, Ret: call + dur, Outcome: OutcomeOK, Client: i % 8}
			apply := true
			switch x := rng.IntN(10); {
			case i == 0 || x < 3:
				seq++
				op.Op, op.Value = "write", fmt.Sprintf("v%06d", seq)
				if i > 0 && rng.IntN(unknownOneIn) == 0 {
					op.Ret, op.Outcome = -1, OutcomeUnknown
					apply = rng.IntN(2) == 0
				}
			case x < 4:
				op.Op = "delete"
				if rng.IntN(unknownOneIn) == 0 {
					op.Ret, op.Outcome = -1, OutcomeUnknown
					apply = rng.IntN(2) == 0
				}
			default:
				op.Op = "read"
			}
			ops[i] = op
			evs[i] = ev{op: &ops[i], point: call + rng.Int64N(dur), apply: apply}
		}
		sort.SliceStable(evs, func(i, j int) bool { return evs[i].point < evs[j].point })
		var st kvState
		for _, e := range evs {
			switch e.op.Op {
			case "write":
				if e.apply {
					st = kvState{Version: st.Version + 1, Value: e.op.Value}
					if e.op.Ret >= 0 {
						e.op.Version = st.Version
					}
				}
			case "delete":
				if e.apply && st.Version > 0 {
					st = kvState{Version: st.Version, Deleted: true}
				}
			case "read":
				e.op.Version, e.op.Value, e.op.Deleted = st.Version, st.Value, st.Deleted
			}
		}
		out = append(out, ops...)
	}
	return out
}

// Simulated histories are linearizable; the same ones with a single read
// made stale are not. Logs porcupine's time for the sample size a default
// run records.
func TestCheckRandomHistories(t *testing.T) {
	for _, tc := range []struct{ keys, perKey int }{{16, 100}, {16, 1000}, {4, 5000}, {16, 5000}} {
		rng := rand.New(rand.NewPCG(uint64(tc.perKey), 7))
		ops := randomHistory(rng, tc.keys, tc.perKey)
		r := CheckHistory(ops, time.Minute)
		t.Logf("%d keys × %d ops: %s in %s", tc.keys, tc.perKey, verdict(r), r.Elapsed)
		if r.Linearizable == nil || !*r.Linearizable {
			t.Fatalf("simulated linearizable history judged %s: %s", verdict(r), r.Detail)
		}
		// Make one late read see version 1 again, long after later
		// versions were acknowledged.
		stale := -1
		for i := len(ops) - 1; i >= 0; i-- {
			if ops[i].Op == "read" && ops[i].Version > 3 && !ops[i].Deleted {
				stale = i
				break
			}
		}
		if stale < 0 {
			t.Fatal("no read to make stale")
		}
		key := ops[stale].Key
		for _, op := range ops {
			if op.Key == key && op.Op == "write" && op.Version == 1 {
				ops[stale].Version, ops[stale].Value = 1, op.Value
			}
		}
		r = CheckHistory(ops, time.Minute)
		if r.Linearizable == nil || *r.Linearizable || !strings.HasPrefix(r.Detail, "no: key "+key+": ") {
			t.Errorf("one stale read: %s: %s", verdict(r), r.Detail)
		}
		t.Logf("  with a stale read: %s in %s: %s", verdict(r), r.Elapsed, r.Detail)
	}
}

// Violations no plain reason names: porcupine alone finds them, and the
// reductions of unknown operations must not hide them.
func TestPorcupineOnlyViolations(t *testing.T) {
	// A read after an acknowledged delete sees the value undeleted.
	ops := []rundir.HistoryOp{hw("k", "A", 1, 0, 10), hd("k", 20, 30), hr("k", "A", 1, 40, 50)}
	r := CheckHistory(ops, 10*time.Second)
	if r.Linearizable == nil || *r.Linearizable || !strings.Contains(r.Detail, "no order of its 3 operations fits the model: at most 2") {
		t.Errorf("undeleted read: %s: %s", verdict(r), r.Detail)
	}

	// An unknown write nobody read must have taken effect (version 2 is
	// seen), but after the only delete; so version 2 cannot be seen
	// deleted.
	ops = []rundir.HistoryOp{
		hw("k", "A", 1, 0, 10),
		hwUnknown("k", "B", 20),
		hd("k", 30, 40),
		hrDeleted("k", 1, 50, 60),
		hrDeleted("k", 2, 70, 80),
	}
	r = CheckHistory(ops, 10*time.Second)
	if r.Linearizable == nil || *r.Linearizable || !strings.HasPrefix(r.Detail, "no: key k: no order of its 5 operations") {
		t.Errorf("version 2 deleted with no delete after it: %s: %s", verdict(r), r.Detail)
	}
	// An unknown delete sent before that read explains it.
	ops = append(ops, rundir.HistoryOp{Key: "k", Op: "delete", Call: 65, Ret: -1, Outcome: OutcomeUnknown})
	if r := CheckHistory(ops, 10*time.Second); r.Linearizable == nil || !*r.Linearizable {
		t.Errorf("with an unknown delete: %s: %s", verdict(r), r.Detail)
	}
	// Sent after the read returned, it does not.
	ops[len(ops)-1].Call = 85
	if r := CheckHistory(ops, 10*time.Second); r.Linearizable == nil || *r.Linearizable {
		t.Errorf("with a later unknown delete: %s: %s", verdict(r), r.Detail)
	}
}

// Histories recorded from the load generator against load/fakevault
// stalled for 1 s with a 300 ms request timeout: ~20 writes of unknown
// outcome at once on one key; in the first most never took effect, in the
// second most did, in an order of their own, and some were read. Open
// until the end and unconstrained, they made porcupine's search take from
// seconds to over a minute on these ~200 operations (it depends on its
// search order); with the versions operations gives them, ~0.1 s.
func TestStallBurstHistories(t *testing.T) {
	for _, file := range []string{"stall-burst.jsonl", "stall-burst-2.jsonl"} {
		var ops []rundir.HistoryOp
		if err := rundir.ReadLines("testdata", file, func(op rundir.HistoryOp) error {
			ops = append(ops, op)
			return nil
		}); err != nil || len(ops) < 200 {
			t.Fatalf("testdata/%s: %d operations, %v", file, len(ops), err)
		}
		r := CheckHistory(ops, time.Minute)
		t.Logf("%s: %s", file, r.Detail)
		if r.Linearizable == nil || !*r.Linearizable {
			t.Fatalf("%s: recorded history judged %s: %s", file, verdict(r), r.Detail)
		}
		// The last read before the burst answered again after it: not
		// linearizable.
		var last rundir.HistoryOp
		for _, op := range ops {
			if op.Op == "read" && op.Ret >= 0 && op.Ret < 1_000_000_000 && op.Ret > last.Ret {
				last = op
			}
		}
		stale := last
		stale.Call, stale.Ret = 4_000_000_000, 4_000_000_001
		if r := CheckHistory(append(ops, stale), time.Minute); r.Linearizable == nil || *r.Linearizable {
			t.Errorf("%s: a stale read after the burst judged %s: %s", file, verdict(r), r.Detail)
		}
	}
}
