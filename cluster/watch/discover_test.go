package watch

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeCluster serves sys/ha-status and the raft configuration of a
// changing set of peers, each with its own TLS server as its API address;
// every peer answers both (a standby forwards them to the active node).
type fakeCluster struct {
	mu    sync.Mutex
	peers []string // node IDs in the raft configuration
	echo  map[string]bool
	srv   map[string]*httptest.Server
}

func (c *fakeCluster) add(t *testing.T, id string, echo bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv == nil {
		c.srv, c.echo = map[string]*httptest.Server{}, map[string]bool{}
	}
	s := httptest.NewTLSServer(http.HandlerFunc(c.serve))
	t.Cleanup(s.Close)
	c.srv[id], c.echo[id] = s, echo
	c.peers = append(c.peers, id)
}

func (c *fakeCluster) remove(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range c.peers {
		if p == id {
			c.peers = append(c.peers[:i], c.peers[i+1:]...)
		}
	}
}

// clusterAddr is the peer's made-up cluster address: discovery must join
// the two answers on it, not on the API address.
func clusterAddr(id string) string { return "10.9.0." + strings.TrimPrefix(id, "id") + ":8201" }

func (c *fakeCluster) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.URL.Path == "/v1/sys/health" {
		fmt.Fprint(w, `{"initialized":true,"sealed":false,"standby":false}`)
		return
	}
	if r.Header.Get("X-Vault-Token") != "disco" {
		w.WriteHeader(403)
		fmt.Fprint(w, `{"errors":["permission denied"]}`)
		return
	}
	var parts []string
	switch r.URL.Path {
	case "/v1/sys/storage/raft/configuration":
		for i, id := range c.peers {
			parts = append(parts, fmt.Sprintf(`{"node_id":%q,"address":%q,"voter":true,"leader":%v}`, id, clusterAddr(id), i == 0))
		}
		fmt.Fprintf(w, `{"data":{"config":{"servers":[%s]}}}`, strings.Join(parts, ","))
	case "/v1/sys/ha-status":
		for _, id := range c.peers {
			if c.echo[id] {
				parts = append(parts, fmt.Sprintf(`{"hostname":"h","api_address":%q,"cluster_address":"https://%s"}`, c.srv[id].URL, clusterAddr(id)))
			}
		}
		fmt.Fprintf(w, `{"data":{"nodes":[%s]}}`, strings.Join(parts, ","))
	default:
		w.WriteHeader(404)
	}
}

func (c *fakeCluster) ca(t *testing.T) string {
	var fs []*fakeNode
	for _, s := range c.srv {
		fs = append(fs, &fakeNode{srv: s})
	}
	return caFile(t, fs...)
}

func names(ns []Node) string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return strings.Join(out, ",")
}

// Given one address, discovery finds every peer with an API address, by
// its raft node ID; the list follows the cluster (a replacement joins, a
// removed peer leaves) while the watcher runs; a token that may not read
// the endpoints is an error that says so.
func TestDiscover(t *testing.T) {
	fc := &fakeCluster{}
	fc.add(t, "id1", true)
	fc.add(t, "id2", true)
	fc.add(t, "id3", false) // in raft, not echoing yet: nowhere to probe it
	fc.add(t, "id4", true)  // launched later: not in raft yet
	fc.remove("id4")
	ca := fc.ca(t)

	w, err := New([]Node{{Name: "seed", Addr: fc.srv["id2"].URL}}, Options{CACert: ca, Discover: "disco", Coarse: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns, err := w.Discover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if names(ns) != "id1,id2" || ns[0].Addr != fc.srv["id1"].URL || ns[0].NodeID != "id1" {
		t.Fatalf("discovered %+v, want id1 and id2 at their API addresses", ns)
	}

	w.Start()
	defer w.Stop()
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for names(w.Nodes()) != want {
			if time.Now().After(deadline) {
				t.Fatalf("nodes %s, want %s", names(w.Nodes()), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("id1,id2")
	fc.mu.Lock()
	fc.peers = append(fc.peers, "id4") // the autoscaling group's replacement joined
	fc.mu.Unlock()
	waitFor("id1,id2,id4")
	fc.remove("id1") // autopilot removed the dead peer
	waitFor("id2,id4")
	if w.Requests().ByKind[KindDiscover] == 0 {
		t.Errorf("discovery requests not counted: %+v", w.Requests())
	}

	bad, err := New([]Node{{Name: "seed", Addr: fc.srv["id2"].URL}}, Options{CACert: ca, Discover: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Discover(ctx); err == nil || !strings.Contains(err.Error(), "HTTP 403") || !strings.Contains(err.Error(), "raft/configuration") {
		t.Errorf("a token that may not read the raft configuration: %v, want the 403 named", err)
	}
}
