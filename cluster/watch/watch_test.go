package watch

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// fakeNode answers sys/health as a node in a given state, and autopilot
// and raft configuration as the active node of a fixed cluster.
type fakeNode struct {
	srv   *httptest.Server
	state atomic.Value // string: leader | follower | sealed
	hits  atomic.Int64
	ap    atomic.Value // string: autopilot body
	cfg   atomic.Value // string: raft configuration body
}

func newFake(t *testing.T, state string) *fakeNode {
	f := &fakeNode{}
	f.state.Store(state)
	f.ap.Store(`{"data":{"healthy":true,"leader":"id1","voters":["id1","id2","id3"],"servers":{"id1":{"status":"leader","healthy":true},"id2":{"status":"voter","healthy":true},"id3":{"status":"voter","healthy":true}}}}`)
	f.cfg.Store(`{"data":{"config":{"servers":[{"node_id":"id1","voter":true,"leader":true},{"node_id":"id2","voter":true},{"node_id":"id3","voter":true}]}}}`)
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		st := f.state.Load().(string)
		switch r.URL.Path {
		case "/v1/sys/health":
			switch st {
			case "leader":
				fmt.Fprint(w, `{"initialized":true,"sealed":false,"standby":false,"version":"1.21.0"}`)
			case "follower":
				w.WriteHeader(429)
				fmt.Fprint(w, `{"initialized":true,"sealed":false,"standby":true,"version":"1.21.0"}`)
			default:
				w.WriteHeader(503)
				fmt.Fprint(w, `{"initialized":true,"sealed":true,"standby":true,"version":"1.21.0"}`)
			}
		case "/v1/sys/storage/raft/autopilot/state":
			if r.Header.Get("X-Vault-Token") != "tok" {
				w.WriteHeader(403)
				return
			}
			fmt.Fprint(w, f.ap.Load().(string))
		case "/v1/sys/storage/raft/configuration":
			fmt.Fprint(w, f.cfg.Load().(string))
		default:
			w.WriteHeader(404)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// caFile writes the fakes' certificates as one CA bundle: the watcher
// verifies TLS like every client of the harness.
func caFile(t *testing.T, fs ...*fakeNode) string {
	var b []byte
	for _, f := range fs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})...)
	}
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func threeFakes(t *testing.T) ([]*fakeNode, []Node, string) {
	fs := []*fakeNode{newFake(t, "leader"), newFake(t, "follower"), newFake(t, "follower")}
	var nodes []Node
	for i, f := range fs {
		nodes = append(nodes, Node{Name: fmt.Sprintf("node%d", i+1), NodeID: fmt.Sprintf("id%d", i+1), Addr: f.srv.URL})
	}
	return fs, nodes, caFile(t, fs...)
}

func eventually(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The watcher follows the active node, a kick makes it look at once; with
// no active node it holds on the last active one while that is unsealed
// (a standby would forward to it and hold its own promotion back), and
// sends nowhere once the last active node is sealed, never to a standby.
// A standby is the route only while no node has ever been active.
func TestFollowsLeader(t *testing.T) {
	fs, nodes, ca := threeFakes(t)
	var mu sync.Mutex
	var evs []rundir.Event
	w, err := New(nodes, Options{CACert: ca, Token: "tok", Coarse: time.Hour, Event: func(e rundir.Event) {
		mu.Lock()
		evs = append(evs, e)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	changes := atomic.Int64{}
	defer w.OnChange(func() { changes.Add(1) })()
	w.Start()
	defer w.Stop()
	target := func(name string, want Route) func() bool {
		return func() bool { n, r := w.Target(); return r == want && n.Name == name }
	}
	eventually(t, "node1 active", 5*time.Second, target("node1", RouteActive))
	// The coarse interval is an hour: only a kick makes it look again.
	fs[0].state.Store("follower")
	fs[2].state.Store("leader")
	w.Kick()
	eventually(t, "node3 active after a kick", 5*time.Second, target("node3", RouteActive))
	// Stepped down or cut off, with no other leader yet: stay on node3,
	// not on the first standby.
	fs[2].state.Store("follower")
	w.Kick()
	eventually(t, "held on node3, the last active node", 5*time.Second, target("node3", RouteLastActive))
	fs[2].state.Store("sealed")
	w.Kick()
	eventually(t, "no route once node3 is sealed", 5*time.Second, target("", RouteNoActive))
	fs[1].state.Store("leader")
	w.Kick()
	eventually(t, "node2 active", 5*time.Second, target("node2", RouteActive))
	if changes.Load() == 0 {
		t.Errorf("subscribers were never told of a change")
	}
	mu.Lock()
	defer mu.Unlock()
	var leaders []string
	for _, e := range evs {
		if e.Kind == rundir.EvLeader {
			leaders = append(leaders, e.Node)
		}
	}
	if !slices.Equal(leaders, []string{"node1", "node3", "node2"}) {
		t.Errorf("leader events %v, want node1, node3, node2", leaders)
	}
	if got := LeaderElected(w.Leaders(), time.Time{}, []string{"node1"}); got.IsZero() {
		t.Errorf("LeaderElected found no leader other than node1 in %+v", w.Leaders())
	}
}

// Until a node has said it is active, the active node is one the watcher
// was not told of: a live standby, which forwards, is the route.
func TestStandbyRouteWhileNoneEverActive(t *testing.T) {
	fs, nodes, ca := threeFakes(t)
	fs[0].state.Store("follower")
	w, err := New(nodes[:2], Options{CACert: ca, Token: "tok", Coarse: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	w.Start()
	defer w.Stop()
	eventually(t, "standby route", 5*time.Second, func() bool { n, r := w.Target(); return r == RouteStandby && n.Name != "" })
	if got := w.LastActive(); got != "" {
		t.Errorf("LastActive %q, want none", got)
	}
}

// Quiet probing is coarse; a focus window probes its nodes finely, and
// the requests are counted apart.
func TestFocusAndCounts(t *testing.T) {
	fs, nodes, ca := threeFakes(t)
	w, err := New(nodes, Options{CACert: ca, Fine: 20 * time.Millisecond, Coarse: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w.Start()
	defer w.Stop()
	time.Sleep(time.Second)
	quiet := fs[2].hits.Load()
	// At most one probe per 500ms, plus the first one: a bound the code
	// guarantees however slow the machine is.
	if quiet > 4 {
		t.Errorf("node3 probed %d times in 1s of quiet at a 500ms interval", quiet)
	}
	release := w.Focus([]string{"node3"})
	time.Sleep(time.Second)
	steady := fs[2].hits.Load() - quiet
	// A fault's node that stays a standby is probed every 250 ms.
	if steady > 6 {
		t.Errorf("steady standby node3 probed %d times in 1s of focus, want at most every 250ms", steady)
	}
	// Once it changes (sealed), every 20 ms: 50 probes if the machine
	// keeps up; 10 leaves room for a loaded one and is still far above
	// the steady rate.
	fs[2].state.Store("sealed")
	w.Kick()
	time.Sleep(time.Second)
	release()
	focused := fs[2].hits.Load() - quiet - steady
	if focused < 10 {
		t.Errorf("changing node3 probed %d times in 1s of focus at 20ms", focused)
	}
	// The active node is probed finely in focus whatever it does.
	if n := fs[0].hits.Load(); n < 10 {
		t.Errorf("the active node was probed %d times in 2s of focus", n)
	}
	r := w.Requests()
	if r.ByKind[KindHealth] != r.Total || r.Total < quiet+steady+focused {
		t.Errorf("requests %+v: want every health probe counted (≥ %d)", r, quiet+steady+focused)
	}
	if r.Quiet >= r.Total || r.QuietFor <= 0 || r.QuietFor >= r.Duration {
		t.Errorf("requests %+v: quiet and focused time not told apart", r)
	}
}

// The health of a whole cluster, and the ways it is not whole.
func TestUnhealthy(t *testing.T) {
	srv := func(status string) AutopilotServer { return AutopilotServer{Status: status, Healthy: true} }
	exp := []Expected{{"node1", "id1"}, {"node2", "id2"}, {"node3", "id3"}}
	whole := &Autopilot{Healthy: true, Voters: []string{"id1", "id2", "id3"},
		Servers: map[string]AutopilotServer{"id1": srv("leader"), "id2": srv("voter"), "id3": srv("voter")}}
	if r := Unhealthy(whole, exp, 3); r != "" {
		t.Errorf("whole cluster: %q", r)
	}
	// Two of three intended: autopilot may be content, the cluster is degraded.
	two := &Autopilot{Healthy: true, Voters: []string{"id1", "id2"},
		Servers: map[string]AutopilotServer{"id1": srv("leader"), "id2": srv("voter")}}
	if r := Unhealthy(two, exp[:2], 3); !strings.Contains(r, "2 voters of 3") {
		t.Errorf("two of three: %q", r)
	}
	dead := &Autopilot{Healthy: true, Voters: []string{"id1", "id2", "id3"},
		Servers: map[string]AutopilotServer{"id1": srv("leader"), "id2": srv("voter"), "id3": srv("voter"), "gone": srv("non-voter")}}
	if r := Unhealthy(dead, exp, 3); !strings.Contains(r, "4 raft peers") {
		t.Errorf("dead peer: %q", r)
	}
	nonvoter := &Autopilot{Healthy: true, Voters: []string{"id1", "id2", "id4"},
		Servers: map[string]AutopilotServer{"id1": srv("leader"), "id2": srv("voter"), "id3": srv("non-voter")}}
	if r := Unhealthy(nonvoter, exp, 3); !strings.Contains(r, "node3 is non-voter") {
		t.Errorf("non-voter: %q", r)
	}
	if r := Unhealthy(&Autopilot{Healthy: false}, exp, 3); r == "" {
		t.Errorf("autopilot unhealthy judged healthy")
	}
}

// The final check reads the end state from the active node, and claims
// nothing when there is none.
func TestFinal(t *testing.T) {
	fs, nodes, ca := threeFakes(t)
	w, err := New(nodes, Options{CACert: ca, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	f := w.Final(ctx, 1)
	if f.Error != "" || f.Leader != "node1" || len(f.Voters) != 3 || !f.AutopilotHealthy || f.IntendedVoters != 3 {
		t.Fatalf("final %+v, want node1 leading 3 voters", f)
	}
	if f.Nodes[1].State != StateFollower || f.Nodes[1].Version != "1.21.0" || !f.Nodes[1].Voter {
		t.Errorf("node2 in the final check: %+v", f.Nodes[1])
	}
	fs[0].state.Store("sealed")
	f = w.Final(ctx, 2)
	if f.Error == "" || f.Leader != "" || len(f.Voters) != 0 {
		t.Errorf("final with no active node %+v, want an error and no claim", f)
	}
	if r := w.Requests(); r.ByKind[KindFinal] == 0 {
		t.Errorf("final requests not counted: %+v", r)
	}
}
