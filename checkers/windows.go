package checkers

import (
	"slices"
	"time"
)

// Outcome is one finished request as the availability checker sees it.
type Outcome struct {
	Seq      uint64    // schedule order: breaks ties of Intended (a burst shares one)
	Intended time.Time // when the schedule meant it to go
	End      time.Time // when its answer (or error) came
	OK       bool
}

// Window is a run of consecutive unavailable requests in schedule order:
// from the first one's intended time to the intended time of the first
// available request after it (or the last unavailable one when none came).
type Window struct {
	From, To time.Time
	Count    int // unavailable requests in it
}

// Windows finds every run of unavailable requests in outs (any order). A
// request is unavailable when it failed, or, unless errorsOnly, when it
// did not complete within after of its intended time: a request held for
// 9 s that then succeeds was not served, whatever its status.
func Windows(outs []Outcome, after time.Duration, errorsOnly bool) []Window {
	s := slices.Clone(outs)
	slices.SortStableFunc(s, func(a, b Outcome) int {
		if c := a.Intended.Compare(b.Intended); c != 0 {
			return c
		}
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	var res []Window
	open := false
	for _, o := range s {
		bad := !o.OK || (!errorsOnly && o.End.Sub(o.Intended) > after)
		switch {
		case bad && !open:
			res = append(res, Window{From: o.Intended, To: o.Intended, Count: 1})
			open = true
		case bad:
			res[len(res)-1].To = o.Intended
			res[len(res)-1].Count++
		case open:
			res[len(res)-1].To = o.Intended
			open = false
		}
	}
	return res
}

// Longest is the longest window clipped to [from, to]: an outage that
// began before a fault, or goes on after the next one began, is charged
// to each only for its own part.
func Longest(ws []Window, from, to time.Time) time.Duration {
	var best time.Duration
	for _, w := range ws {
		a, b := w.From, w.To
		if a.Before(from) {
			a = from
		}
		if b.After(to) {
			b = to
		}
		if b.After(a) {
			best = max(best, b.Sub(a))
		}
	}
	return best
}

// FirstAvailableAfter is t_write_ok: the end of the first window that
// starts at or after t (zero when none).
func FirstAvailableAfter(ws []Window, t time.Time) time.Time {
	for _, w := range ws {
		if !w.From.Before(t) {
			return w.To
		}
	}
	return time.Time{}
}
