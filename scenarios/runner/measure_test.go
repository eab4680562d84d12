package runner

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestOutages(t *testing.T) {
	// 10 ms apart, out of order, two outages: 30-60 (ok at 70) and 100-110 (never recovered).
	var outs []outcome
	for i := 0; i <= 11; i++ {
		ok := !(i >= 3 && i <= 6) && i < 10
		outs = append(outs, outcome{intended: at(i * 10), ok: ok})
	}
	outs[0], outs[5] = outs[5], outs[0]
	all := outages(outs)
	if len(all) != 2 {
		t.Fatalf("%d outages, want 2: %+v", len(all), all)
	}
	if all[0].from != at(30) || all[0].to != at(70) || all[0].fails != 4 {
		t.Errorf("first outage %+v, want 30ms-70ms with 4 failures", all[0])
	}
	if all[1].from != at(100) || all[1].to != at(110) {
		t.Errorf("second outage %+v, want 100ms-110ms", all[1])
	}
	if d := longestOverlapping(all, at(0), at(200)); d != 40*time.Millisecond {
		t.Errorf("longest = %v, want 40ms", d)
	}
	if d := longestOverlapping(all, at(80), at(200)); d != 10*time.Millisecond {
		t.Errorf("longest after 80ms = %v, want 10ms (the first outage is over)", d)
	}
	if ok := firstOKAfterFailure(all, at(25)); ok != at(70) {
		t.Errorf("t_write_ok = %v, want 70ms", ok)
	}
}

func TestLeaderElected(t *testing.T) {
	obs := []leaderObs{{at(0), []string{"node1"}}, {at(100), nil}, {at(150), []string{"node1"}}, {at(900), []string{"node1", "node3"}}}
	if got := leaderElected(obs, at(50), []string{"node1"}); got != at(900) {
		t.Errorf("got %v, want 900ms: node1 was the target and must not count", got)
	}
	if got := leaderElected(obs, at(50), nil); got != at(150) {
		t.Errorf("got %v, want 150ms", got)
	}
	if got := leaderElected(obs, at(1000), []string{"node3"}); !got.IsZero() {
		t.Errorf("got %v, want none", got)
	}
}

func TestHealedAt(t *testing.T) {
	obs := []healthObs{{at(0), true}, {at(100), false}, {at(200), false}, {at(500), true}, {at(600), true}}
	if got := healedAt(obs, at(50)); got != at(500) {
		t.Errorf("healed = %v, want 500ms", got)
	}
	if got := healedAt(obs, at(550)); got != at(600) {
		t.Errorf("healed = %v, want 600ms: the first probe that started after 550ms", got)
	}
	if got := healedAt(obs[:3], at(50)); !got.IsZero() {
		t.Errorf("healed = %v, want never", got)
	}
}
