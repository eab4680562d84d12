package rundir

import "time"

// CapacityFile is capacity.json: a capacity search's settings, every step
// measured and the answers. It is rewritten after every step, so a search
// cut short still leaves what it measured.
const CapacityFile = "capacity.json"

// SLO is what a step must meet to count as sustained.
type SLO struct {
	P99Ms       float64 `json:"p99_ms"`        // p99 of every operation, from intended send time
	ErrorPct    float64 `json:"error_pct"`     // failed requests, % of answered ones
	AchievedPct float64 `json:"achieved_pct"`  // achieved rate, % of the step's target (98)
	MaxLatePct  float64 `json:"max_late_pct"`  // more late sends than this: generator-bound
	LateMs      float64 `json:"late_after_ms"` // a send this late is a late send
}

// Step verdicts.
const (
	StepMet            = "met"             // the SLO held
	StepBroken         = "slo-broken"      // the cluster missed the SLO: its limit
	StepGeneratorBound = "generator-bound" // the harness fell behind: nothing known
	StepError          = "error"           // the step could not run
)

// Series statuses: how a search over one configuration ended.
const (
	// SeriesKnee: a rate met the SLO and a rate above it did not, and
	// bisection narrowed the gap to the precision asked for.
	SeriesKnee = "knee"
	// SeriesCeiling: every step up to the highest allowed rate met the
	// SLO; the capacity is at least that (not a knee).
	SeriesCeiling = "ceiling"
	// SeriesBelowStart: even the first (lowest) rate broke the SLO.
	SeriesBelowStart = "below-start"
	// SeriesGeneratorBound: the generator fell behind before the cluster
	// broke the SLO: the capacity is not known, only a lower bound.
	SeriesGeneratorBound = "generator-bound"
	SeriesError          = "error"
	SeriesInterrupted    = "interrupted"
)

// Capacity is capacity.json.
type Capacity struct {
	SLO       SLO     `json:"slo"`
	WarmupS   float64 `json:"warmup_s"` // each step's first seconds, discarded
	HoldS     float64 `json:"hold_s"`   // each step's measured seconds
	StartRate float64 `json:"start_rate"`
	Factor    float64 `json:"factor"`    // geometric growth between steps
	MaxRate   float64 `json:"max_rate"`  // no step above it
	Precision float64 `json:"precision"` // bisection stops when (bad-good)/good ≤ this
	// ExpectRate: the JUnit gate "sustains ≥ ExpectRate within the SLO"
	// for every series (0: none).
	ExpectRate float64          `json:"expect_rate,omitempty"`
	Series     []CapacitySeries `json:"series"`
	Started    time.Time        `json:"started"`
	Ended      time.Time        `json:"ended,omitzero"` // zero: cut short
}

// CapacitySeries is one search: one cluster shape, storage, mix, value
// size and key space.
type CapacitySeries struct {
	Name         string `json:"name"`
	Nodes        int    `json:"nodes"`
	Storage      string `json:"storage"`
	Provider     string `json:"provider,omitempty"`
	VaultVersion string `json:"vault_version,omitempty"`
	Mix          string `json:"mix"`
	ValueSize    int    `json:"value_size"`
	Keys         int    `json:"keys"`
	Target       string `json:"target"`
	Status       string `json:"status"`
	Reason       string `json:"reason,omitempty"`
	// Capacity: the highest rate that met the SLO below every rate that
	// broke it; nil when not measured (no step met it, or the search
	// stopped generator-bound: then LowerBound is all that is known).
	Capacity   *float64 `json:"capacity_rate"`
	LowerBound *float64 `json:"lower_bound_rate,omitempty"`
	FirstBad   *float64 `json:"first_broken_rate,omitempty"`
	// The ledger of every step, read back once the search was over.
	AckedWrites int64          `json:"acked_writes"`
	LostWrites  int64          `json:"lost_writes"`
	Verified    bool           `json:"verified"`
	VerifyError string         `json:"verify_error,omitempty"`
	Steps       []CapacityStep `json:"steps"`
}

// Met is the highest rate that met the SLO below every rate that broke it
// (whatever the status): what "sustains ≥ R" is judged on.
func (s CapacitySeries) Met() (float64, bool) {
	bad := 0.0
	for _, st := range s.Steps {
		if st.Verdict == StepBroken && (bad == 0 || st.Rate < bad) {
			bad = st.Rate
		}
	}
	best, ok := 0.0, false
	for _, st := range s.Steps {
		if st.Verdict == StepMet && (bad == 0 || st.Rate < bad) && st.Rate > best {
			best, ok = st.Rate, true
		}
	}
	return best, ok
}

// CapacityStep is one rate held: figures over its measured window (the
// warm-up discarded).
type CapacityStep struct {
	Index   int     `json:"index"`
	Phase   string  `json:"phase"` // geometric | bisect
	Dir     string  `json:"dir"`   // the step's load run directory, relative to the run's
	Rate    float64 `json:"rate"`  // target, req/s
	Verdict string  `json:"verdict"`
	// Why lists each part of the SLO (or of the generator's own check)
	// the step failed.
	Why          []string `json:"why,omitempty"`
	Achieved     float64  `json:"achieved_rate"`
	Count        int64    `json:"count"`
	Errors       int64    `json:"errors"`
	ErrorPct     float64  `json:"error_pct"`
	P50Ms        float64  `json:"p50_ms"`
	P99Ms        float64  `json:"p99_ms"`
	P999Ms       float64  `json:"p999_ms"`
	MaxMs        float64  `json:"max_ms"`
	LateSends    int64    `json:"late_sends"`
	LatePct      float64  `json:"late_pct"`
	MaxSendLagMs float64  `json:"max_send_lag_ms"`
	PoolWaits    int64    `json:"pool_waits"`
	// CPU in cores over the measured window: the generator's own process,
	// and each Vault node's (from /proc, local providers only; nil: not
	// measured).
	GeneratorCPU *float64           `json:"generator_cpu"`
	NodeCPU      map[string]float64 `json:"node_cpu,omitempty"`
	Start        time.Time          `json:"window_start"`
	End          time.Time          `json:"window_end"`
	Error        string             `json:"error,omitempty"`
}
