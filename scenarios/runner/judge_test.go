package runner

import (
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/scenarios"
)

func ptr[T any](v T) *T { return &v }

func TestJudge(t *testing.T) {
	sum := &rundir.Summary{
		LostWrites: 2,
		Ops:        map[string]rundir.OpStats{"read": {Count: 900, Errors: 9, P99: 12}, "write": {Count: 100, Errors: 1, P99: 40}},
		Faults: []rundir.FaultResult{
			{Kind: "kill", LeaderElectedMs: ptr(2500.0), WriteUnavailableMs: 3000, ReadUnavailableMs: 100, HealedMs: ptr(20000.0)},
			{Kind: "pause", WriteUnavailableMs: 0, HealedMs: nil},
		},
	}
	x := scenarios.Expect{
		LostWrites:        ptr(0),
		MaxUnavailability: ptr(5 * time.Second),
		HealedWithin:      ptr(30 * time.Second),
		LeaderWithin:      ptr(2 * time.Second),
		NewLeader:         ptr(true),
		P99:               ptr(50 * time.Millisecond),
		MaxErrorRate:      ptr(0.5),
		MinVotersAfter:    ptr(5),
		DeadPeersRemoved:  ptr(true),
		P99DuringFault:    ptr(time.Second),
	}
	ap := apView{&api.AutopilotState{Voters: []string{"a", "b", "c", "d", "e"}, Servers: map[string]*api.AutopilotServer{"a": {}, "gone": {}}}}
	got := map[string]bool{}
	for _, e := range judge(x, sum, 800, ap, []string{"gone"}) {
		got[e.Name] = e.Passed
	}
	want := map[string]bool{
		"lost_writes":                   false, // 2 > 0
		"max_unavailability":            true,  // 3s <= 5s
		"healed_within (fault 1 kill)":  true,
		"healed_within (fault 2 pause)": false, // never healed
		"leader_within (fault 1 kill)":  false, // 2.5s > 2s
		"new_leader (fault 1 kill)":     true,
		"new_leader (fault 2 pause)":    false, // leadership did not move
		"p99":                           true,  // 40ms <= 50ms
		"max_error_rate":                false, // 1% > 0.5%
		"min_voters_after":              true,
		"dead_peers_removed":            false, // "gone" is still a peer
		"p99_during_fault":              true,
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s: not judged", name)
			continue
		}
		if g != w {
			t.Errorf("%s: passed=%v, want %v", name, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("judged %d expectations, want %d: %v", len(got), len(want), got)
	}
}
