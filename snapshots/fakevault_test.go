package snapshots

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// fakeVault answers the few paths Save and Restore use, over TLS with its
// own certificate (the client trusts it; nothing turns verification off).
type fakeVault struct {
	srv      *httptest.Server
	active   atomic.Bool
	leader   string
	snapshot atomic.Value // []byte served by GET sys/storage/raft/snapshot
	status   int          // non-zero: the snapshot GET fails with it
	mu       sync.Mutex
	restored []byte
	path     string
	tokens   []string
}

func newFakeVault(t *testing.T, snap []byte) *fakeVault {
	f := &fakeVault{}
	f.active.Store(true)
	f.snapshot.Store(snap)
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.tokens = append(f.tokens, r.Header.Get("X-Vault-Token"))
		f.mu.Unlock()
		switch r.URL.Path {
		case "/v1/sys/leader":
			io.WriteString(w, `{"ha_enabled":true,"is_self":`+map[bool]string{true: "true", false: "false"}[f.active.Load()]+`,"leader_address":"`+f.leader+`"}`)
		case "/v1/sys/seal-status":
			io.WriteString(w, `{"type":"transit","sealed":false,"version":"1.21.0"}`)
		case "/v1/sys/storage/raft/snapshot", "/v1/sys/storage/raft/snapshot-force":
			if r.Method == http.MethodGet {
				if f.status != 0 {
					w.WriteHeader(f.status)
					io.WriteString(w, `{"errors":["permission denied"]}`)
					return
				}
				w.Header().Set("Content-Type", "application/gzip")
				w.Write(f.snapshot.Load().([]byte))
				return
			}
			b, _ := io.ReadAll(r.Body)
			f.mu.Lock()
			f.restored, f.path = b, r.URL.Path
			f.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		default:
			http.NotFound(w, r)
		}
	}))
	f.leader = f.srv.URL
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeVault) client(t *testing.T, token string) *api.Client {
	c, err := api.NewClient(&api.Config{Address: f.srv.URL, HttpClient: f.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

func TestSaveRestoreFake(t *testing.T) {
	ctx := context.Background()
	snap := fakeSnapshot(t, 4242, 3, 200<<10, true)
	fv := newFakeVault(t, snap)
	store, err := OpenStore(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	before := time.Now()
	info, err := Save(ctx, fv.client(t, "tok"), store)
	if err != nil {
		t.Fatal(err)
	}
	if info.Index != 4242 || info.Term != 3 || info.Size != int64(len(snap)) || info.SHA256 != sha(snap) ||
		info.Node != fv.srv.URL || info.Via != "" || info.VaultVersion != "1.21.0" {
		t.Errorf("Save: %+v", info)
	}
	if info.Started.Before(before) || info.Ended.Before(info.Started) || info.Ended.After(time.Now()) {
		t.Errorf("times: started %s ended %s (test began %s)", info.Started, info.Ended, before)
	}
	if got, _ := store.Stat(ctx, info.Name); got.SHA256 != info.SHA256 || !got.Started.Equal(info.Started) {
		t.Errorf("stored metadata %+v", got)
	}

	// Restore sends exactly the stored bytes, to the path force chooses.
	for _, force := range []bool{false, true} {
		rinfo, err := Restore(ctx, fv.client(t, "tok"), store, "", force)
		if err != nil {
			t.Fatal(err)
		}
		fv.mu.Lock()
		got, path := fv.restored, fv.path
		fv.mu.Unlock()
		want := "/v1/sys/storage/raft/snapshot"
		if force {
			want += "-force"
		}
		if rinfo.Name != info.Name || string(got) != string(snap) || path != want {
			t.Errorf("force=%v: restored %s, %d bytes to %s", force, rinfo.Name, len(got), path)
		}
	}

	// Asked of a standby: the node recorded is the active one, via the standby.
	fv.active.Store(false)
	fv.leader = "https://127.0.64.13:8200"
	info2, err := Save(ctx, fv.client(t, "tok"), store)
	if err != nil {
		t.Fatal(err)
	}
	if info2.Node != "https://127.0.64.13:8200" || info2.Via != fv.srv.URL {
		t.Errorf("through a standby: node %q via %q", info2.Node, info2.Via)
	}
	fv.active.Store(true)
	fv.leader = fv.srv.URL

	// Incomplete (no SHA256SUMS.sealed) and refused snapshots leave nothing.
	fv.snapshot.Store(fakeSnapshot(t, 5000, 3, 10<<10, false))
	if _, err := Save(ctx, fv.client(t, "tok"), store); !errors.Is(err, api.ErrIncompleteSnapshot) || !strings.Contains(err.Error(), fv.srv.URL) {
		t.Errorf("incomplete snapshot: %v", err)
	}
	fv.status = http.StatusForbidden
	if _, err := Save(ctx, fv.client(t, "tok"), store); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("refused snapshot: %v", err)
	}
	fv.status = 0
	if l, _ := store.List(ctx); len(l) != 2 {
		t.Errorf("store holds %d snapshots after two failures, want the 2 good ones", len(l))
	}

	// A snapshot that no longer matches its sha256 is never sent.
	fv.mu.Lock()
	fv.restored = nil
	fv.mu.Unlock()
	bucket := store.bucket
	bucket.WriteAll(ctx, info.Name, snap[:len(snap)-10], nil)
	if _, err := Restore(ctx, fv.client(t, "tok"), store, info.Name, false); !errors.Is(err, ErrChecksum) {
		t.Errorf("restore of a changed snapshot: %v", err)
	}
	if fv.restored != nil {
		t.Error("a snapshot that failed its check was sent to Vault")
	}
}

func TestAgentFake(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a1 := newFakeVault(t, fakeSnapshot(t, 10, 1, 1000, true))
	a2 := newFakeVault(t, fakeSnapshot(t, 20, 2, 1000, true))
	store, err := OpenStore(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// The active node changes after the second snapshot: the agent
	// follows, and sends its own token, not the client's.
	var calls atomic.Int32
	var mu sync.Mutex
	var got []Info
	var errs []error
	agent := &Agent{
		Store: store, Interval: 30 * time.Millisecond, Retain: 2, Token: "least-privilege",
		// On a niced thread of its own, as the runner runs it.
		Nice: 10,
		Active: func(ctx context.Context) (*api.Client, error) {
			switch n := calls.Add(1); {
			case n == 3:
				return nil, errors.New("no leader")
			case n < 3:
				return a1.client(t, "root"), nil
			default:
				return a2.client(t, "root"), nil
			}
		},
		OnSnapshot: func(i Info) {
			mu.Lock()
			got = append(got, i)
			if len(got) == 5 {
				cancel()
			}
			mu.Unlock()
		},
		OnError: func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() },
	}
	if err := agent.Run(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 5 || got[0].Index != 10 || got[1].Index != 10 || got[2].Index != 20 || got[2].Node != a2.srv.URL {
		t.Fatalf("agent took %+v", got)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "no leader") {
		t.Errorf("errors reported: %v", errs)
	}
	l, err := store.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 2 || l[0].Name != got[4].Name || l[1].Name != got[3].Name {
		t.Errorf("retained %v, want the last two of %v", l, got)
	}
	for _, f := range []*fakeVault{a1, a2} {
		f.mu.Lock()
		for _, tok := range f.tokens {
			if tok != "" && tok != "least-privilege" {
				t.Errorf("the agent sent token %q", tok)
			}
		}
		f.mu.Unlock()
	}
	if err := (&Agent{}).Run(ctx); err == nil {
		t.Error("an agent with nothing set runs")
	}
}
