package load

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Segment is a stretch of an open-loop schedule whose arrival rate goes
// linearly from From to To requests per second over Dur (From == To is a
// constant rate, a step).
type Segment struct {
	From, To float64
	Dur      time.Duration
}

// Schedule is the open-loop arrival schedule: segments played one after the
// other. Request i (from 0) is intended to be sent at the instant the
// integral of the rate reaches i, so the first request goes at once and a
// constant rate R gives requests at 0, 1/R, 2/R, …
type Schedule struct {
	Segs []Segment
}

// Constant is rate requests per second for d.
func Constant(rate float64, d time.Duration) Schedule {
	return Schedule{Segs: []Segment{{From: rate, To: rate, Dur: d}}}
}

// Ramp goes linearly from one rate to another over `over`, then holds the
// end rate until total.
func Ramp(from, to float64, over, total time.Duration) Schedule {
	s := Schedule{Segs: []Segment{{From: from, To: to, Dur: over}}}
	if total > over {
		s.Segs = append(s.Segs, Segment{From: to, To: to, Dur: total - over})
	}
	return s
}

// Steps holds each rate for total/len(rates).
func Steps(rates []float64, total time.Duration) Schedule {
	var s Schedule
	each := total / time.Duration(len(rates))
	for i, r := range rates {
		d := each
		if i == len(rates)-1 {
			d = total - each*time.Duration(len(rates)-1)
		}
		s.Segs = append(s.Segs, Segment{From: r, To: r, Dur: d})
	}
	return s
}

// ParseRamp parses "FROM:TO" or "FROM:TO@OVER" (e.g. "100:1000@30s") into a
// schedule lasting total.
func ParseRamp(s string, total time.Duration) (Schedule, error) {
	spec, overS, hasOver := strings.Cut(s, "@")
	a, b, ok := strings.Cut(spec, ":")
	if !ok {
		return Schedule{}, fmt.Errorf("ramp %q: want FROM:TO or FROM:TO@DURATION, e.g. 100:1000@30s", s)
	}
	from, err1 := parseRate(a)
	to, err2 := parseRate(b)
	if err := errors.Join(err1, err2); err != nil {
		return Schedule{}, fmt.Errorf("ramp %q: %w", s, err)
	}
	over := total
	if hasOver {
		d, err := time.ParseDuration(strings.TrimSpace(overS))
		if err != nil || d <= 0 {
			return Schedule{}, fmt.Errorf("ramp %q: %q is not a positive duration", s, overS)
		}
		if d > total {
			return Schedule{}, fmt.Errorf("ramp %q: ramp lasts %s, longer than the run (%s)", s, d, total)
		}
		over = d
	}
	if from == 0 && to == 0 {
		return Schedule{}, fmt.Errorf("ramp %q: both rates are zero", s)
	}
	return Ramp(from, to, over, total), nil
}

// ParseSteps parses "100,200,400": each rate held for an equal share of total.
func ParseSteps(s string, total time.Duration) (Schedule, error) {
	var rates []float64
	for _, p := range strings.Split(s, ",") {
		r, err := parseRate(p)
		if err != nil {
			return Schedule{}, fmt.Errorf("steps %q: %w", s, err)
		}
		if r == 0 {
			return Schedule{}, fmt.Errorf("steps %q: a step rate must be positive", s)
		}
		rates = append(rates, r)
	}
	if total < time.Duration(len(rates))*time.Second {
		return Schedule{}, fmt.Errorf("steps %q: %d steps need a duration of at least %ds", s, len(rates), len(rates))
	}
	return Steps(rates, total), nil
}

func parseRate(s string) (float64, error) {
	r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || r < 0 || math.IsInf(r, 0) || math.IsNaN(r) || r > 10_000_000 {
		return 0, fmt.Errorf("%q is not a rate (requests per second, 0 to 10000000)", strings.TrimSpace(s))
	}
	return r, nil
}

// Validate rejects schedules that cannot be run.
func (s Schedule) Validate() error {
	if len(s.Segs) == 0 {
		return errors.New("empty schedule")
	}
	for _, g := range s.Segs {
		if g.Dur <= 0 {
			return fmt.Errorf("schedule segment of %s: duration must be positive", g.Dur)
		}
		if g.From < 0 || g.To < 0 || math.IsNaN(g.From) || math.IsNaN(g.To) {
			return fmt.Errorf("schedule segment %g→%g/s: rates must be non-negative", g.From, g.To)
		}
	}
	if s.Count() < 1 {
		return errors.New("schedule sends no request")
	}
	return nil
}

// Duration is the length of the whole schedule.
func (s Schedule) Duration() time.Duration {
	var d time.Duration
	for _, g := range s.Segs {
		d += g.Dur
	}
	return d
}

// Count is how many requests the schedule sends.
func (s Schedule) Count() int64 {
	n := 0.0
	for _, g := range s.Segs {
		n += (g.From + g.To) / 2 * g.Dur.Seconds()
	}
	// Requests go at integral = 0, 1, 2, …, strictly before the end.
	return int64(math.Ceil(n - 1e-9))
}

// MeanRate is Count over Duration.
func (s Schedule) MeanRate() float64 {
	return float64(s.Count()) / s.Duration().Seconds()
}

// String describes the schedule for humans ("200/s for 10s", …).
func (s Schedule) String() string {
	var parts []string
	for _, g := range s.Segs {
		if g.From == g.To {
			parts = append(parts, fmt.Sprintf("%g/s for %s", g.From, g.Dur))
		} else {
			parts = append(parts, fmt.Sprintf("%g→%g/s over %s", g.From, g.To, g.Dur))
		}
	}
	return strings.Join(parts, ", then ")
}

// cursor walks the schedule's intended send times in order. It keeps the
// running count so each step is O(1) and allocation-free.
type cursor struct {
	s     Schedule
	seg   int
	start float64 // seconds at the start of seg
	base  float64 // requests scheduled before seg
	i     int64
	end   int64 // Count()
}

func newCursor(s Schedule) *cursor { return &cursor{s: s, end: s.Count()} }

// next returns the intended offset of the next request from the schedule's
// start, or false when the schedule is over.
func (c *cursor) next() (time.Duration, bool) {
	if c.i >= c.end {
		return 0, false
	}
	for c.seg < len(c.s.Segs) {
		g := c.s.Segs[c.seg]
		d := g.Dur.Seconds()
		m := float64(c.i) - c.base // requests into this segment
		segCount := (g.From + g.To) / 2 * d
		if m < segCount-1e-9 {
			var tau float64
			if g.From == g.To {
				tau = m / g.From
			} else {
				// Solve From·τ + k·τ² = m with k = (To−From)/(2·Dur), in the
				// form that stays accurate when k is tiny or negative.
				k := (g.To - g.From) / (2 * d)
				tau = 2 * m / (g.From + math.Sqrt(g.From*g.From+4*k*m))
			}
			c.i++
			return time.Duration((c.start + tau) * float64(time.Second)), true
		}
		c.base += segCount
		c.start += d
		c.seg++
	}
	return 0, false
}
