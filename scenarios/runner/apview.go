package runner

import "github.com/hashicorp/vault/api"

// apView is the last autopilot state the probes saw (s nil when none):
// what the end-of-run expectations about voters and peers read.
type apView struct{ s *api.AutopilotState }

func (a apView) known() bool { return a.s != nil }

func (a apView) voters() int {
	if a.s == nil {
		return 0
	}
	return len(a.s.Voters)
}

func (a apView) hasPeer(id string) bool {
	if a.s == nil {
		return false
	}
	_, ok := a.s.Servers[id]
	return ok
}
