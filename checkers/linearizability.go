package checkers

import (
	"fmt"
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// LinResult is the linearizability verdict on the sampled keys' histories.
type LinResult struct {
	// Linearizable is true or false, or nil when it was not decided: the
	// check timed out, or there was no history to check.
	Linearizable *bool `json:"linearizable"`
	Keys         int   `json:"keys"` // keys in the history
	Ops          int   `json:"ops"`  // operations in the history
	// Detail says why, for a person: "yes: …", "no: key …: read saw
	// version 3 (value …) after version 4 was acknowledged …", "timed
	// out …", "no history …".
	Detail  string        `json:"detail"`
	Elapsed time.Duration `json:"elapsed_ns"` // time the check took
}

// Apply copies the verdict into a summary.
func (r LinResult) Apply(s *rundir.Summary) {
	s.Linearizable = r.Linearizable
	s.Linearizability = r.Detail
	s.HistoryKeys = r.Keys
	s.HistoryOps = r.Ops
}

// The model: each key is a KV v2 versioned register. Its state is the
// latest version, the value written at it and whether it is deleted. A
// write makes version+1 with its value (and, when acknowledged, must have
// been acknowledged as exactly that version); a delete marks the latest
// version deleted (nothing, on a key never written); a read must see
// exactly the state.

type kvState struct {
	Version int
	Value   string
	Deleted bool
	// How many of the chained unknown writes and deletes took effect (see
	// operations).
	NextW, NextD int
}

type kvInput struct {
	Op    string // read | write | delete
	Value string // write: the value id
	Chain int    // > 0: this unknown operation's place in its chain
	// Version, when > 0, is the version a chained write must make (see
	// operations).
	Version int
}

type kvOutput struct {
	Unknown bool // the outcome is unknown: nothing observed
	Version int
	Value   string
	Deleted bool
}

func kvStep(state, input, output any) (bool, any) {
	s, in, out := state.(kvState), input.(kvInput), output.(kvOutput)
	switch in.Op {
	case "write":
		if in.Chain > 0 {
			if in.Chain != s.NextW+1 {
				return false, s
			}
			s.NextW++
		}
		next := kvState{Version: s.Version + 1, Value: in.Value, NextW: s.NextW, NextD: s.NextD}
		if (!out.Unknown && out.Version != next.Version) || (in.Version > 0 && in.Version != next.Version) {
			return false, s
		}
		return true, next
	case "delete":
		if in.Chain > 0 {
			if in.Chain != s.NextD+1 {
				return false, s
			}
			s.NextD++
		}
		if s.Version > 0 {
			s.Deleted, s.Value = true, ""
		}
		return true, s
	}
	ok := out.Version == s.Version && out.Deleted == s.Deleted && (s.Deleted || out.Value == s.Value)
	return ok, s
}

func kvHash(state any) uint64 {
	s := state.(kvState)
	const prime = 1099511628211
	h := uint64(14695981039346656037) // FNV-1a
	for _, x := range [...]int{s.Version, s.NextW, s.NextD} {
		h = (h ^ uint64(x)) * prime
	}
	if s.Deleted {
		h = (h ^ 1) * prime
	}
	for i := 0; i < len(s.Value); i++ {
		h = (h ^ uint64(s.Value[i])) * prime
	}
	return h
}

func describeState(state any) string {
	s := state.(kvState)
	switch {
	case s.Version == 0:
		return "absent"
	case s.Deleted:
		return fmt.Sprintf("v%d deleted", s.Version)
	}
	return fmt.Sprintf("v%d %s", s.Version, s.Value)
}

func describeOp(input, output any) string {
	in, out := input.(kvInput), output.(kvOutput)
	switch {
	case in.Op == "write" && out.Unknown:
		return fmt.Sprintf("write(%s) -> unknown", in.Value)
	case in.Op == "write":
		return fmt.Sprintf("write(%s) -> v%d", in.Value, out.Version)
	case in.Op == "delete" && out.Unknown:
		return "delete -> unknown"
	case in.Op == "delete":
		return "delete -> ok"
	}
	return "read -> " + describeState(kvState{Version: out.Version, Value: out.Value, Deleted: out.Deleted})
}

// kvModel is the porcupine model, partitioned by key.
var kvModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Metadata.(opMeta).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init:              func() any { return kvState{} },
	Step:              kvStep,
	Hash:              kvHash,
	DescribeOperation: describeOp,
	DescribeState:     describeState,
	DescribeOperationMetadata: func(m any) string {
		if m == nil {
			return ""
		}
		md := m.(opMeta)
		return fmt.Sprintf("key %s, worker %d", md.key, md.client)
	},
}

type opMeta struct {
	key    string
	client int
}

// operations turns one key's history into porcupine operations: all of
// them, and a reduced set whose linearizability implies that of the whole
// (reduced is nil when it would be the whole).
//
// An operation whose outcome is unknown may have taken effect at any time
// after it was sent, or never: it returns after everything, its output
// unconstrained. Open until the end, such operations make porcupine's
// search exponential in how many are open at once. Sound reductions keep
// it small:
//
//   - an unknown write whose value a read saw was applied before that
//     read returned, and made the version the read saw: it returns there,
//     with that version;
//   - the unknown writes no read saw are interchangeable (each makes one
//     version whose value nobody reads), and so are the unknown deletes:
//     if some of them took effect in a valid order, the earliest-sent ones
//     can take their places in the order they were sent (a later-sent one
//     fits no place an earlier-sent one does not). So each set is a chain
//     the model lets take effect only in the order it was sent;
//   - versions count writes: every version up to the highest one seen was
//     made by one write. Those not made by a write known by its value (an
//     acknowledged one, or an unknown one whose value was read) were made
//     by the chain's first writes, in order: the chain's j-th write made
//     the j-th such version, and took effect before any operation that saw
//     (or made) that version or a later one answered; it returns there;
//   - reduced leaves out the chain's writes beyond the last one versions
//     need: a valid order of the rest, followed by them, is a valid order
//     of the whole.
//
// Workers are laid out on lanes so that each lane's operations do not
// overlap (the visualisation draws one row per ClientId).
func operations(ops []rundir.HistoryOp, end int64) (all, reduced []porcupine.Operation) {
	sorted := slices.Clone(ops)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Call < sorted[j].Call })
	acked := func(h rundir.HistoryOp) bool { return h.Outcome == OutcomeOK && h.Ret >= 0 }
	seen := map[string]int64{} // value id → earliest return of a read that saw it
	seenAt := map[string]int{} // value id → the version it was seen at
	for _, h := range sorted {
		if h.Op == "read" && acked(h) && !h.Deleted && h.Version > 0 {
			if r, ok := seen[h.Value]; !ok || h.Ret < r {
				seen[h.Value] = h.Ret
			}
			seenAt[h.Value] = h.Version
		}
	}
	// The versions made by writes known by their value.
	var known []int
	for _, h := range sorted {
		switch {
		case h.Op != "write":
		case acked(h):
			known = append(known, h.Version)
		default:
			if v, ok := seenAt[h.Value]; ok {
				known = append(known, v)
			}
		}
	}
	slices.Sort(known)
	known = slices.Compact(known)
	// gaps: the versions no known write made, in order; the chain's j-th
	// write made gaps[j-1]. byChain[j]: the earliest answer of an
	// operation that saw (or made) gaps[j-1] or a later version.
	maxSeen := 0
	for _, h := range sorted {
		if acked(h) && h.Op != "delete" {
			maxSeen = max(maxSeen, h.Version)
		}
	}
	var gaps []int
	for v, k := 1, 0; v <= maxSeen; v++ {
		for k < len(known) && known[k] < v {
			k++
		}
		if k == len(known) || known[k] != v {
			gaps = append(gaps, v)
		}
	}
	needMax := len(gaps)
	byChain := map[int]int64{}
	for _, h := range sorted {
		if !acked(h) || h.Op == "delete" || h.Version == 0 {
			continue
		}
		need, _ := slices.BinarySearch(gaps, h.Version+1) // gaps up to its version
		if need == 0 {
			continue
		}
		if r, ok := byChain[need]; !ok || h.Ret < r {
			byChain[need] = h.Ret
		}
	}
	chainRet := make([]int64, needMax+2) // chainRet[j]: min over need ≥ j
	chainRet[needMax+1] = end
	for j := needMax; j >= 1; j-- {
		chainRet[j] = chainRet[j+1]
		if r, ok := byChain[j]; ok {
			chainRet[j] = min(chainRet[j], r)
		}
	}

	var laneEnd []int64
	var chainW, chainD int
	dropped := false
	all = make([]porcupine.Operation, 0, len(sorted))
	reduced = make([]porcupine.Operation, 0, len(sorted))
	for _, h := range sorted {
		ret := h.Ret
		in := kvInput{Op: h.Op}
		var o kvOutput
		needed := true
		switch {
		case !acked(h):
			o.Unknown, ret = true, end
			switch r, ok := seen[h.Value]; {
			case h.Op != "write":
				chainD++
				in.Chain = chainD
			case ok && r >= h.Call:
				in.Value, in.Version, ret = h.Value, seenAt[h.Value], r
			default:
				chainW++
				in.Value, in.Chain = h.Value, chainW
				if chainW <= needMax {
					ret = max(chainRet[chainW], h.Call)
					in.Version = gaps[chainW-1]
				} else {
					needed = false
				}
			}
		case h.Op == "write":
			in.Value, o.Version = h.Value, h.Version
		case h.Op == "read":
			o = kvOutput{Version: h.Version, Value: h.Value, Deleted: h.Deleted}
		}
		lane := -1
		for i, e := range laneEnd {
			if e < h.Call {
				lane = i
				break
			}
		}
		if lane < 0 {
			lane = len(laneEnd)
			laneEnd = append(laneEnd, 0)
		}
		laneEnd[lane] = ret
		op := porcupine.Operation{ClientId: lane, Input: in, Output: o, Call: h.Call, Return: ret,
			Metadata: opMeta{key: h.Key, client: h.Client}}
		all = append(all, op)
		if needed {
			reduced = append(reduced, op)
		} else {
			dropped = true
		}
	}
	if !dropped {
		reduced = nil
	}
	return all, reduced
}

// historyEnd is a time after every call and return of the history.
func historyEnd(ops []rundir.HistoryOp) int64 {
	var end int64
	for _, op := range ops {
		end = max(end, op.Call, op.Ret)
	}
	return end + 1
}

func byKeyOps(ops []rundir.HistoryOp) (map[string][]rundir.HistoryOp, []string) {
	m := map[string][]rundir.HistoryOp{}
	for _, op := range ops {
		m[op.Key] = append(m[op.Key], op)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return m, keys
}

// CheckHistory checks the history of every key for linearizability against
// the KV v2 versioned-register model, with porcupine, key by key (keys are
// independent registers), within timeout in all (0: no limit).
// Operations whose outcome is unknown are handled as operations describes.
func CheckHistory(ops []rundir.HistoryOp, timeout time.Duration) LinResult {
	res, _ := checkHistory(ops, timeout)
	return res
}

// keyCheck is the verdict on one key, with the operations that decided it.
type keyCheck struct {
	result porcupine.CheckResult
	ops    []porcupine.Operation
	why    string // for Illegal
	at     int64  // time of the operation why names; -1 none
}

func checkKey(hist []rundir.HistoryOp, end int64, deadline time.Time) keyCheck {
	all, reduced := operations(hist, end)
	// A plain reason is a proof by itself, and far cheaper than
	// porcupine's proof that no order exists.
	if why, at := explain(hist); at >= 0 {
		return keyCheck{result: porcupine.Illegal, ops: all, why: why, at: at}
	}
	left := func() (time.Duration, bool) {
		if deadline.IsZero() {
			return 0, true
		}
		d := time.Until(deadline)
		return d, d > 0
	}
	d, ok := left()
	if !ok {
		return keyCheck{result: porcupine.Unknown, at: -1}
	}
	if reduced != nil {
		switch porcupine.CheckOperationsTimeout(kvModel, reduced, d) {
		case porcupine.Ok:
			return keyCheck{result: porcupine.Ok, ops: reduced, at: -1}
		case porcupine.Unknown:
			return keyCheck{result: porcupine.Unknown, at: -1}
		}
		if d, ok = left(); !ok {
			return keyCheck{result: porcupine.Unknown, at: -1}
		}
	}
	kc := keyCheck{result: porcupine.CheckOperationsTimeout(kvModel, all, d), ops: all, at: -1}
	if kc.result == porcupine.Illegal {
		kc.why = fallback(all, d)
	}
	return kc
}

// checkHistory also returns each key's check, by key.
func checkHistory(ops []rundir.HistoryOp, timeout time.Duration) (LinResult, map[string]keyCheck) {
	start := time.Now()
	perKey, keys := byKeyOps(ops)
	res := LinResult{Keys: len(keys), Ops: len(ops)}
	if len(ops) == 0 {
		res.Detail = "no history: no operation on a sampled key was recorded"
		return res, nil
	}
	end := historyEnd(ops)
	var deadline time.Time
	if timeout > 0 {
		deadline = start.Add(timeout)
	}
	results := make([]keyCheck, len(keys))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(keys)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := int(next.Add(1) - 1); k < len(keys); k = int(next.Add(1) - 1) {
				results[k] = checkKey(perKey[keys[k]], end, deadline)
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)

	checks := map[string]keyCheck{}
	var bad, undecided []string
	for k, r := range results {
		checks[keys[k]] = r
		switch r.result {
		case porcupine.Illegal:
			bad = append(bad, keys[k])
		case porcupine.Unknown:
			undecided = append(undecided, keys[k])
		}
	}
	switch {
	case len(bad) > 0:
		no := false
		res.Linearizable = &no
		res.Detail = fmt.Sprintf("no: key %s: %s", bad[0], checks[bad[0]].why)
		if len(bad) > 1 {
			res.Detail += fmt.Sprintf(" (and %d more keys: %s)", len(bad)-1, strings.Join(bad[1:], ", "))
		}
	case len(undecided) > 0:
		n := 0
		for _, k := range undecided {
			n += len(perKey[k])
		}
		res.Detail = fmt.Sprintf("timed out after %s: %d of %d keys not decided (%d operations; first %s)",
			timeout, len(undecided), len(keys), n, undecided[0])
	default:
		yes := true
		res.Linearizable = &yes
		res.Detail = fmt.Sprintf("yes: %d keys, %d operations, checked in %s", len(keys), len(ops), res.Elapsed.Round(time.Millisecond))
	}
	return res, checks
}

// CheckDir checks runDir's history.jsonl (see CheckHistory) and, when it
// finds a violation, writes porcupine's visualisation of the keys that
// broke it to linearizability.html in runDir (up to the operation the
// verdict names; drawing it may take up to timeout more).
func CheckDir(runDir string, timeout time.Duration) (LinResult, error) {
	var ops []rundir.HistoryOp
	if err := rundir.ReadLines(runDir, rundir.HistoryFile, func(op rundir.HistoryOp) error {
		ops = append(ops, op)
		return nil
	}); err != nil {
		return LinResult{Detail: "not checked: " + err.Error()}, fmt.Errorf("read history: %w", err)
	}
	res, checks := checkHistory(ops, timeout)
	if res.Linearizable == nil || *res.Linearizable {
		return res, nil
	}
	// The keys that broke it, as porcupine sees them.
	var pops []porcupine.Operation
	var notes []porcupine.Annotation
	for _, k := range slices.Sorted(maps.Keys(checks)) {
		c := checks[k]
		if c.result != porcupine.Illegal {
			continue
		}
		if c.at < 0 {
			pops = append(pops, c.ops...)
			continue
		}
		// Every reason explain gives still holds in the operations sent
		// up to the one it names: porcupine need not search past them.
		for _, op := range c.ops {
			if op.Call <= c.at {
				pops = append(pops, op)
			}
		}
		notes = append(notes, porcupine.Annotation{Tag: "violation " + k, Start: c.at, Description: "violation",
			Details: c.why, BackgroundColor: "#ffb3b3"})
	}
	_, info := porcupine.CheckOperationsVerbose(kvModel, pops, max(timeout, time.Second))
	info.AddAnnotations(notes)
	path := filepath.Join(runDir, rundir.LinearizabilityFile)
	if err := porcupine.VisualizePath(kvModel, info, path); err != nil {
		return res, fmt.Errorf("write %s: %w", path, err)
	}
	res.Detail += " (see " + rundir.LinearizabilityFile + ")"
	return res, nil
}

// explain finds, in one key's history that porcupine found not
// linearizable, a plain reason a person can check by reading the history,
// and the time of the operation it names (-1 when it found none). Each
// reason below is by itself a violation of the versioned-register model;
// when none applies, it says how far porcupine got.
func explain(ops []rundir.HistoryOp) (string, int64) {
	sorted := slices.Clone(ops)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Call < sorted[j].Call })
	acked := func(op rundir.HistoryOp) bool { return op.Outcome == OutcomeOK && op.Ret >= 0 }
	written := map[string]bool{}             // every value a write of ours may have written
	ackedAs := map[int]rundir.HistoryOp{}    // version → the write acknowledged as it
	ackedBy := map[string]rundir.HistoryOp{} // value → the write acknowledged with it
	for _, op := range sorted {
		if op.Op != "write" {
			continue
		}
		written[op.Value] = true
		if !acked(op) {
			continue
		}
		if prev, ok := ackedAs[op.Version]; ok && prev.Value != op.Value {
			return fmt.Sprintf("writes of %s (%s) and %s (%s) were both acknowledged as version %d",
				quoteVal(prev.Value), span(prev), quoteVal(op.Value), span(op), op.Version), op.Call
		}
		ackedAs[op.Version] = op
		ackedBy[op.Value] = op
	}
	for _, op := range sorted {
		if op.Op != "read" || op.Deleted || op.Version == 0 {
			continue
		}
		if !written[op.Value] {
			return fmt.Sprintf("read (%s) saw version %d with value %s, which no write of this run wrote: someone else wrote it",
				span(op), op.Version, quoteVal(op.Value)), op.Call
		}
		if w, ok := ackedBy[op.Value]; ok && w.Version != op.Version {
			return fmt.Sprintf("read (%s) saw value %s at version %d, but it was acknowledged as version %d (%s)",
				span(op), quoteVal(op.Value), op.Version, w.Version, span(w)), op.Call
		}
		if w, ok := ackedAs[op.Version]; ok && w.Value != op.Value {
			return fmt.Sprintf("read (%s) saw version %d with value %s, but version %d was acknowledged as %s (%s)",
				span(op), op.Version, quoteVal(op.Value), op.Version, quoteVal(w.Value), span(w)), op.Call
		}
	}
	// Versions only grow: an operation sent after another one answered
	// must see (or make) a later version than that one saw (or made).
	// Sweep the operations by call, with those answered before each call.
	byRet := slices.Clone(sorted)
	sort.SliceStable(byRet, func(i, j int) bool { return byRet[i].Ret < byRet[j].Ret })
	var floor *rundir.HistoryOp
	r := 0
	for _, op := range sorted {
		for ; r < len(byRet) && byRet[r].Ret < op.Call; r++ {
			if p := &byRet[r]; acked(*p) && p.Op != "delete" && (floor == nil || p.Version > floor.Version) {
				floor = p
			}
		}
		if floor == nil || !acked(op) || op.Op == "delete" {
			continue
		}
		what := "was acknowledged"
		if floor.Op == "read" {
			what = "was read"
		}
		switch {
		case op.Op == "read" && op.Version < floor.Version:
			return fmt.Sprintf("read (%s) saw %s after version %d %s (%s)",
				span(op), seen(op), floor.Version, what, span(*floor)), op.Call
		case op.Op == "write" && op.Version <= floor.Version:
			return fmt.Sprintf("write (%s) was acknowledged as version %d after version %d %s (%s)",
				span(op), op.Version, floor.Version, what, span(*floor)), op.Call
		}
	}
	// Each version is one write: a version higher than the number of
	// writes sent by the time it was seen (or made) was made by someone
	// else.
	var calls []int64
	for _, op := range sorted {
		if op.Op == "write" {
			calls = append(calls, op.Call)
		}
	}
	for _, op := range sorted {
		if !acked(op) || op.Op == "delete" {
			continue
		}
		n, _ := slices.BinarySearch(calls, op.Ret+1) // writes sent up to its answer, itself included
		if n >= op.Version {
			continue
		}
		what := "saw " + seen(op)
		if op.Op == "write" {
			what = fmt.Sprintf("was acknowledged as version %d", op.Version)
		}
		return fmt.Sprintf("%s (%s) %s, but this run had sent only %d writes to the key by then: someone else wrote it",
			op.Op, span(op), what, n), op.Call
	}
	return "", -1
}

// fallback describes porcupine's longest partial linearization of a key
// found not linearizable.
func fallback(ops []porcupine.Operation, timeout time.Duration) string {
	_, info := porcupine.CheckOperationsVerbose(kvModel, ops, max(timeout, time.Second))
	longest := 0
	for _, part := range info.PartialLinearizations() {
		for _, l := range part {
			longest = max(longest, len(l))
		}
	}
	return fmt.Sprintf("no order of its %d operations fits the model: at most %d of them can be put in an order the model allows", len(ops), longest)
}

func quoteVal(v string) string {
	if v == "" {
		return "(none)"
	}
	return fmt.Sprintf("%q", v)
}

func seen(op rundir.HistoryOp) string {
	switch {
	case op.Version == 0:
		return "no version (absent)"
	case op.Deleted:
		return fmt.Sprintf("version %d deleted", op.Version)
	}
	return fmt.Sprintf("version %d (value %s)", op.Version, quoteVal(op.Value))
}

// span is when an operation ran, in seconds from the load's start.
func span(op rundir.HistoryOp) string {
	if op.Ret < 0 {
		return fmt.Sprintf("sent %.3fs, outcome unknown", float64(op.Call)/1e9)
	}
	return fmt.Sprintf("sent %.3fs, answered %.3fs", float64(op.Call)/1e9, float64(op.Ret)/1e9)
}
