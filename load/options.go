package load

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/vaultstorm/vaultstorm/cluster/watch"
	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// Options describe a load run. The zero value of every field but Schedule
// (or Closed+Duration) has a sensible default.
type Options struct {
	// Open loop: the arrival schedule. Ignored when Closed > 0.
	Schedule Schedule
	// Tick, when positive, rounds every intended send time up to the next
	// multiple of Tick from the start: the requests due in each tick go
	// out together. The rate is unchanged; arrivals come in bursts.
	// Latency still counts from the (rounded) intended time. It trades a
	// smooth arrival process for CPU: on a small VM most of the
	// generator's cost per request is waking the server's idle CPU and
	// being woken by it, which a burst pays once.
	Tick time.Duration
	// Closed loop: Closed workers send back to back for Duration.
	Closed   int
	Duration time.Duration

	Mix       Mix     // default read=80,write=20
	Keys      int     // key space size, default 1000
	KeyDist   KeyDist // default uniform
	ValueSize int     // bytes per written value, default 256
	Mount     string  // KV v2 mount, created if missing; default "vaultstorm"
	// KeyPrefix is prepended to every key; default "load/<run start, UTC>/"
	// so that runs never share keys and a run's ledger stays checkable.
	KeyPrefix string
	// Shard, when set, makes this run generator Shard.Index of Shard.Count:
	// ShardPrefix is appended to the key prefix (whose default is then
	// "load/<run id or start>/"), so shards never share a key. The
	// Schedule is this shard's own (see Schedule.Split).
	Shard *Shard
	// Target: "active" (default; follows leader changes), "all" (round-robin
	// over every node; standbys forward), or one node by name, nodeN or address.
	Target string

	Timeout       time.Duration // per request, default 10s
	MaxInFlight   int           // worker cap, default min(rate×timeout×1.25, 4096), at least 64
	LateThreshold time.Duration // default 2ms; see the package doc
	NoPrefill     bool          // skip writing every key once before the run
	// HistoryKeys is how many keys have every operation on them (reads with
	// what they saw, writes and deletes with their answers, prefill
	// included) recorded in history.jsonl for the linearizability checker:
	// key indexes 0, Keys/K, 2×Keys/K, …, spread over the key space.
	// Default DefaultHistoryKeys; negative records none.
	HistoryKeys int
	Seed        uint64 // op and key choices; 0 = from the clock
	// HTTP2 speaks HTTP/2 (one connection per node, as vault/api does)
	// instead of HTTP/1.1 (a connection per request in flight). Off by
	// default: on this 2-core machine HTTP/2 costs Vault 15-40 % more CPU
	// per request at a fixed rate, and an HTTP/2 connection to Vault 1.21
	// was once seen to stop answering for ~9 s after a 2 s stall of its
	// node. A connection that stops answering is closed by a ping health
	// check within 3 s and replaced (see h2Pool).
	HTTP2     bool
	APIClient bool // send through vault/api instead of raw requests (slower; for comparison)
	// Watcher is the cluster's observer, shared with the caller (the
	// scenario runner) so that the cluster is asked who leads once, not
	// once per consumer; it must be started and must know every target
	// node. Nil: the load watches the target itself.
	Watcher *watch.Watcher

	// OnResult, when set, is called from the worker goroutines after every
	// request, concurrently: keep it short and safe for concurrent use. When
	// nil it costs one comparison per request.
	OnResult func(Result)
	// OnSample is called after every 1 s sample is written (progress bars).
	OnSample func(rundir.Sample)
	// Logf receives warnings (rate not reached, …). Nil discards them.
	Logf func(format string, args ...any)
}

// Result is one finished request, as OnResult sees it.
type Result struct {
	Op       Op
	Class    Class     // OK or the error class
	Node     int       // index of the node it went to (Target.Addrs first, then nodes the watcher added); -1 when it was not sent (no_active)
	Seq      uint64    // position in the schedule: orders requests that share an intended time
	Intended time.Time // from the schedule (closed loop: when sent)
	Sent     time.Time
	End      time.Time
}

// Latency is measured from the intended send time.
func (r Result) Latency() time.Duration { return r.End.Sub(r.Intended) }

// defaultTimeout is how long one request may take before it is a timeout.
const defaultTimeout = 10 * time.Second

const (
	maxKeys      = 10_000_000
	maxValueSize = 1 << 20
	maxWorkers   = 65536
)

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9._/-]*$`)
var mountRE = regexp.MustCompile(`^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$`)

func (o Options) withDefaults(start time.Time) Options {
	if o.Mix.total == 0 {
		o.Mix = DefaultMix
	}
	if o.Keys == 0 {
		o.Keys = 1000
	}
	if o.ValueSize == 0 {
		o.ValueSize = 256
	}
	if o.Mount == "" {
		o.Mount = "vaultstorm"
	}
	if o.KeyPrefix == "" {
		id := start.UTC().Format("20060102T150405.000Z")
		if o.Shard != nil && o.Shard.RunID != "" {
			id = o.Shard.RunID
		}
		o.KeyPrefix = "load/" + id + "/"
	}
	if o.Shard != nil {
		if !strings.HasSuffix(o.KeyPrefix, "/") {
			o.KeyPrefix += "/"
		}
		o.KeyPrefix += ShardPrefix(*o.Shard)
	}
	if o.Target == "" {
		o.Target = "active"
	}
	if o.HistoryKeys == 0 {
		o.HistoryKeys = DefaultHistoryKeys
	}
	if o.Timeout == 0 {
		o.Timeout = defaultTimeout
	}
	if o.LateThreshold == 0 {
		o.LateThreshold = 2 * time.Millisecond
	}
	if o.Seed == 0 {
		o.Seed = uint64(start.UnixNano())
	}
	if o.Closed > 0 && o.MaxInFlight == 0 {
		o.MaxInFlight = o.Closed
	}
	if o.MaxInFlight == 0 {
		peak := 0.0
		for _, g := range o.Schedule.Segs {
			peak = max(peak, g.From, g.To)
		}
		o.MaxInFlight = int(min(max(peak*o.Timeout.Seconds()*1.25, 64), 4096))
	}
	return o
}

func (o Options) validate() error {
	if o.Closed > 0 {
		if o.Duration <= 0 {
			return errors.New("closed loop needs a positive duration")
		}
		if o.Closed > maxWorkers {
			return fmt.Errorf("closed loop: %d workers is more than %d", o.Closed, maxWorkers)
		}
	} else if err := o.Schedule.Validate(); err != nil {
		return fmt.Errorf("schedule: %w", err)
	}
	switch {
	case o.Closed < 0:
		return fmt.Errorf("closed loop: %d workers", o.Closed)
	case o.Keys < 1 || o.Keys > maxKeys:
		return fmt.Errorf("keys: %d is not between 1 and %d", o.Keys, maxKeys)
	case o.ValueSize < 1 || o.ValueSize > maxValueSize:
		return fmt.Errorf("value size: %d is not between 1 and %d bytes", o.ValueSize, maxValueSize)
	case !mountRE.MatchString(o.Mount):
		return fmt.Errorf("mount %q: use letters, digits, '.', '_', '-' and '/'", o.Mount)
	case !prefixRE.MatchString(o.KeyPrefix):
		return fmt.Errorf("key prefix %q: use letters, digits, '.', '_', '-' and '/'", o.KeyPrefix)
	case o.Timeout < time.Millisecond:
		return fmt.Errorf("timeout %s is too short", o.Timeout)
	case o.MaxInFlight < 1 || o.MaxInFlight > maxWorkers:
		return fmt.Errorf("max in flight: %d is not between 1 and %d", o.MaxInFlight, maxWorkers)
	case o.LateThreshold < 0:
		return fmt.Errorf("late threshold %s is negative", o.LateThreshold)
	case o.Shard != nil && (o.Shard.Count < 1 || o.Shard.Index < 0 || o.Shard.Index >= o.Shard.Count):
		return fmt.Errorf("shard %d/%d: want index 0 to count-1", o.Shard.Index, o.Shard.Count)
	case o.Tick < 0 || o.Tick > time.Second:
		return fmt.Errorf("tick %s: want 0 (no bursts) up to 1s", o.Tick)
	}
	return nil
}

// ConfigFile is the run directory file holding the load's RunConfig;
// Verify reads the mount from it.
const ConfigFile = "load.json"

// RunConfig is load.json: the resolved options of a load run (never the token).
type RunConfig struct {
	Mount           string    `json:"mount"`
	KeyPrefix       string    `json:"key_prefix"`
	Keys            int       `json:"keys"`
	KeyDist         string    `json:"key_dist"`
	ValueSize       int       `json:"value_size"`
	Mix             string    `json:"mix"`
	Target          string    `json:"target"`
	Addrs           []string  `json:"addrs"`
	Schedule        string    `json:"schedule,omitempty"`
	TargetRate      float64   `json:"target_rate,omitempty"`
	Closed          int       `json:"closed,omitempty"`
	DurationS       float64   `json:"duration_s"`
	TimeoutS        float64   `json:"timeout_s"`
	MaxInFlight     int       `json:"max_in_flight"`
	LateThresholdMs float64   `json:"late_threshold_ms"`
	Seed            uint64    `json:"seed"`
	Prefill         bool      `json:"prefill"`
	HistoryKeys     int       `json:"history_keys"` // keys recorded in history.jsonl (0: none)
	Client          string    `json:"client"`
	TickMs          float64   `json:"tick_ms,omitempty"`
	GoMaxProcs      int       `json:"gomaxprocs"` // OS threads running the generator's Go code
	Shard           *Shard    `json:"shard,omitempty"`
	Started         time.Time `json:"started"`
}

// Describe is a one-line human description of the load (for meta.json).
func (o Options) Describe() string {
	var s string
	if o.Closed > 0 {
		s = fmt.Sprintf("closed loop, %d workers for %s", o.Closed, o.Duration)
	} else {
		s = "open loop, " + o.Schedule.String()
		if o.Tick > 0 {
			s += fmt.Sprintf(" in bursts every %s", o.Tick)
		}
	}
	mix := o.Mix
	if mix.total == 0 {
		mix = DefaultMix
	}
	s += ", mix " + mix.String()
	if o.Shard != nil {
		s += fmt.Sprintf(", shard %d of %d (0-based)", o.Shard.Index, o.Shard.Count)
	}
	return s
}
