package runner

import (
	"slices"
	"sort"
	"time"
)

// outcome is one finished request as the runner keeps it: when the
// schedule meant it to go and whether it succeeded.
type outcome struct {
	intended time.Time
	ok       bool
}

// outage is a run of consecutive failed requests (in schedule order):
// from the first failure's intended time to the intended time of the
// first success after it (or the last failure when none followed).
type outage struct {
	from, to time.Time
	fails    int
}

func (o outage) dur() time.Duration { return o.to.Sub(o.from) }

// outages finds every run of failures in outs, which need not be sorted.
func outages(outs []outcome) []outage {
	s := slices.Clone(outs)
	sort.Slice(s, func(i, j int) bool { return s[i].intended.Before(s[j].intended) })
	var res []outage
	var cur *outage
	for _, o := range s {
		switch {
		case !o.ok && cur == nil:
			res = append(res, outage{from: o.intended, to: o.intended, fails: 1})
			cur = &res[len(res)-1]
		case !o.ok:
			cur.to = o.intended
			cur.fails++
		case cur != nil:
			cur.to = o.intended
			cur = nil
		}
	}
	return res
}

// longestOverlapping is the longest outage that overlaps [from, to].
func longestOverlapping(all []outage, from, to time.Time) time.Duration {
	var best time.Duration
	for _, o := range all {
		if o.from.After(to) || o.to.Before(from) {
			continue
		}
		best = max(best, o.dur())
	}
	return best
}

// firstOKAfterFailure is t_write_ok: the end of the first outage that
// starts at or after t (zero when none).
func firstOKAfterFailure(all []outage, t time.Time) time.Time {
	for _, o := range all {
		if !o.from.Before(t) {
			return o.to
		}
	}
	return time.Time{}
}

// leaderObs is a change in which nodes report themselves active. During a
// partition the cut-off old leader may still say it is active while the
// majority elects another, so it is a set.
type leaderObs struct {
	t       time.Time
	leaders []string
}

// leaderElected is when, after t, a node not in excluded was first seen
// active (zero when never).
func leaderElected(obs []leaderObs, t time.Time, excluded []string) time.Time {
	for _, o := range obs {
		if o.t.Before(t) {
			continue
		}
		for _, l := range o.leaders {
			if !slices.Contains(excluded, l) {
				return o.t
			}
		}
	}
	return time.Time{}
}

// healthObs is one probe of the cluster's health, timed when the probe
// started, so a healthy answer always postdates the time it is judged from.
type healthObs struct {
	t       time.Time
	healthy bool
}

// healedAt is the first probe started at or after t that found the cluster
// healthy (zero when none did).
func healedAt(obs []healthObs, t time.Time) time.Time {
	for _, o := range obs {
		if !o.t.Before(t) && o.healthy {
			return o.t
		}
	}
	return time.Time{}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func msPtr(from, to time.Time) *float64 {
	if to.IsZero() {
		return nil
	}
	v := ms(to.Sub(from))
	return &v
}
