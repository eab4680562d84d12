package load

import (
	"bytes"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// DefaultHistoryKeys is how many keys have their every operation recorded
// in history.jsonl when Options.HistoryKeys is 0.
const DefaultHistoryKeys = 16

// valueIDLen is how much of a value identifies it: the run nonce (8 bytes)
// and the hex sequence number (16), see newBody.
const valueIDLen = 24

// history records every operation on a deterministic sample of keys in
// history.jsonl, for the linearizability checker (checkers.CheckDir): key
// indexes 0, stride, 2×stride, … below end, spread over the whole key space
// so that a skewed distribution's hot keys are not all of the sample.
//
// The hot path asks sampled(key) for every request: one comparison for
// keys past the sample and one modulo below it, no memory touched. A nil
// app (no run directory, or HistoryKeys < 0) samples nothing.
type history struct {
	stride int32
	end    int32 // 0: nothing sampled
	keys   int   // number of sampled keys
	base   time.Time
	app    *rundir.Appender

	ops     atomic.Int64 // lines written
	clients atomic.Int64 // client ids handed out to workers

	mu  sync.Mutex
	err error
}

// newHistory lays out the sample for o (Keys and HistoryKeys resolved);
// open starts recording it.
func newHistory(o Options) *history {
	k := o.HistoryKeys
	if k <= 0 || o.Keys <= 0 {
		return &history{}
	}
	k = min(k, o.Keys)
	stride := o.Keys / k
	return &history{stride: int32(stride), end: int32(stride * k), keys: k}
}

// open starts recording into dir/history.jsonl, with times counted from
// base. With dir "" nothing is recorded.
func (h *history) open(dir string, base time.Time) error {
	if dir == "" || h.end == 0 {
		h.end, h.keys = 0, 0
		return nil
	}
	app, err := rundir.OpenAppender(dir, rundir.HistoryFile)
	if err != nil {
		return fmt.Errorf("open history: %w", err)
	}
	h.app, h.base = app, base
	return nil
}

// sampled reports whether key index k is one of the recorded keys.
func (h *history) sampled(k int32) bool { return k < h.end && k%h.stride == 0 }

// sampledKeys lists the recorded key indexes (for tests and load.json).
func (h *history) sampledKeys() []int {
	var ks []int
	for k := int32(0); k < h.end; k += h.stride {
		ks = append(ks, int(k))
	}
	return ks
}

func (h *history) at(t time.Time) int64 { return int64(t.Sub(h.base)) }

func (h *history) add(op rundir.HistoryOp) {
	if h.app == nil {
		return
	}
	h.ops.Add(1)
	if err := h.app.Append(op); err != nil {
		h.mu.Lock()
		if h.err == nil {
			h.err = fmt.Errorf("append to history: %w", err)
		}
		h.mu.Unlock()
	}
}

// write records a write: acknowledged as version ver (ok), or, when
// unknown, with no return time.
func (h *history) write(client int, key string, call, ret time.Time, value string, ver int, unknown bool) {
	op := rundir.HistoryOp{Key: key, Op: "write", Client: client, Call: h.at(call), Value: value}
	if unknown {
		op.Ret, op.Outcome = -1, OutcomeUnknown
	} else {
		op.Ret, op.Version, op.Outcome = h.at(ret), ver, OutcomeOK
	}
	h.add(op)
}

// del records a delete of the latest version (acknowledged or unknown).
func (h *history) del(client int, key string, call, ret time.Time, unknown bool) {
	op := rundir.HistoryOp{Key: key, Op: "delete", Client: client, Call: h.at(call), Ret: h.at(ret), Outcome: OutcomeOK}
	if unknown {
		op.Ret, op.Outcome = -1, OutcomeUnknown
	}
	h.add(op)
}

// read records an answered read (200 or 404) from its body. An answer it
// cannot read a version from (a 200 cut at the size limit) is left out:
// it says nothing the checker could use.
func (h *history) read(client int, key string, call, ret time.Time, status int, body []byte) {
	ver, val, deleted, ok := parseRead(status, body)
	if !ok {
		return
	}
	h.add(rundir.HistoryOp{Key: key, Op: "read", Client: client, Call: h.at(call), Ret: h.at(ret),
		Value: val, Version: ver, Deleted: deleted, Outcome: OutcomeOK})
}

// readSecret records a read answered through vault/api: a nil secret is an
// absent key, a secret without data but with metadata a deleted version.
func (h *history) readSecret(client int, key string, call, ret time.Time, sec *vault.Secret) {
	op := rundir.HistoryOp{Key: key, Op: "read", Client: client, Call: h.at(call), Ret: h.at(ret), Outcome: OutcomeOK}
	if sec != nil {
		md, _ := sec.Data["metadata"].(map[string]any)
		v, err := strconv.Atoi(fmt.Sprint(md["version"]))
		if err != nil {
			return
		}
		op.Version = v
		data, _ := sec.Data["data"].(map[string]any)
		if data == nil {
			op.Deleted = true
		} else {
			s, _ := data["v"].(string)
			op.Value = valueID([]byte(s))
		}
	}
	h.add(op)
}

func (h *history) close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.app != nil {
		if err := h.app.Close(); err != nil && h.err == nil {
			h.err = err
		}
		h.app = nil
	}
	return h.err
}

// parseRead reads a KV v2 read answer without decoding the JSON document:
// the latest version from the metadata, the first valueIDLen bytes of the
// value ("v"), and whether the latest version is deleted (404 with
// metadata). A 404 without metadata is an absent key: version 0.
//
// Vault encodes the answer's maps with sorted keys, so the secret's own
// data comes before "metadata": the last "metadata" object is the real
// one, whatever the data holds.
func parseRead(status int, b []byte) (ver int, val string, deleted, ok bool) {
	i := bytes.LastIndex(b, []byte(`"metadata":{`))
	switch {
	case status == 404 && i < 0:
		return 0, "", false, true
	case i < 0:
		return 0, "", false, false
	}
	ver, ok = scanVersion(b[i:])
	if !ok {
		return 0, "", false, false
	}
	if status == 404 {
		return ver, "", true, true
	}
	if status != 200 {
		return 0, "", false, false
	}
	return ver, scanValueID(b[:i]), false, true
}

// scanValueID finds "v":"…" and returns its first valueIDLen bytes ("" when
// the data has no "v"). Our values are alphanumeric; another writer's value
// is cut at its first quote or backslash, which is enough to tell it apart.
func scanValueID(b []byte) string {
	i := bytes.Index(b, []byte(`"v":"`))
	if i < 0 {
		return ""
	}
	b = b[i+len(`"v":"`):]
	n := 0
	for n < len(b) && n < valueIDLen && b[n] != '"' && b[n] != '\\' {
		n++
	}
	return string(b[:n])
}

// valueID is the id of a value this run writes: its first valueIDLen bytes.
func valueID(v []byte) string { return string(v[:min(len(v), valueIDLen)]) }

// client is this worker's id in the history, handed out on first use.
func (w *worker) client() int {
	if w.id == 0 {
		w.id = int(w.e.hist.clients.Add(1))
	}
	return w.id - 1
}
