package checkers

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestWindowsErrors(t *testing.T) {
	// 10 ms apart, shuffled, two outages: 30-60 (ok at 70) and 100-110 (never recovered).
	var outs []Outcome
	for i := 0; i <= 11; i++ {
		ok := !(i >= 3 && i <= 6) && i < 10
		outs = append(outs, Outcome{Seq: uint64(i), Intended: at(i * 10), End: at(i*10 + 5), OK: ok})
	}
	outs[0], outs[5] = outs[5], outs[0]
	all := Windows(outs, time.Second, true)
	if len(all) != 2 {
		t.Fatalf("%d windows, want 2: %+v", len(all), all)
	}
	if all[0].From != at(30) || all[0].To != at(70) || all[0].Count != 4 {
		t.Errorf("first window %+v, want 30ms-70ms with 4 failures", all[0])
	}
	if all[1].From != at(100) || all[1].To != at(110) {
		t.Errorf("second window %+v, want 100ms-110ms", all[1])
	}
	if d := Longest(all, at(0), at(200)); d != 40*time.Millisecond {
		t.Errorf("longest = %v, want 40ms", d)
	}
	if d := Longest(all, at(80), at(200)); d != 10*time.Millisecond {
		t.Errorf("longest after 80ms = %v, want 10ms (the first window is over)", d)
	}
	if d := Longest(all, at(50), at(200)); d != 20*time.Millisecond {
		t.Errorf("longest from 50ms = %v, want 20ms: clipped to the fault's own window", d)
	}
	if ok := FirstAvailableAfter(all, at(25)); ok != at(70) {
		t.Errorf("t_write_ok = %v, want 70ms", ok)
	}
}

// A stall: every request sent during a 5 s stall succeeds when it ends.
// Errors see nothing; the stall window sees the requests that waited
// longer than unavailable_after, i.e. from the stall's start to 1 s
// before its end.
func TestWindowsStall(t *testing.T) {
	var outs []Outcome
	stallFrom, stallTo := at(1000), at(6000)
	for i := 0; i < 800; i++ {
		in := at(i * 10)
		end := in.Add(5 * time.Millisecond)
		if !in.Before(stallFrom) && in.Before(stallTo) {
			end = stallTo.Add(5 * time.Millisecond)
		}
		outs = append(outs, Outcome{Seq: uint64(i), Intended: in, End: end, OK: true})
	}
	if ws := Windows(outs, time.Second, true); len(ws) != 0 {
		t.Errorf("error windows %+v, want none: nothing failed", ws)
	}
	d := Longest(Windows(outs, time.Second, false), at(0), at(8000))
	if d < 3900*time.Millisecond || d > 4100*time.Millisecond {
		t.Errorf("stall window %v, want ≈4s (5s stall less the 1s allowance)", d)
	}
}

// Requests of one burst share an intended time: the schedule order (Seq)
// decides, not the order their answers arrived in.
func TestWindowsTiesBySeq(t *testing.T) {
	outs := []Outcome{
		{Seq: 3, Intended: at(10), End: at(11), OK: true},
		{Seq: 1, Intended: at(10), End: at(11), OK: false},
		{Seq: 2, Intended: at(10), End: at(11), OK: false},
		{Seq: 4, Intended: at(20), End: at(21), OK: true},
	}
	ws := Windows(outs, time.Second, true)
	if len(ws) != 1 || ws[0].Count != 2 {
		t.Fatalf("windows %+v, want one of 2 failures (seq 1, 2) closed by seq 3", ws)
	}
}
