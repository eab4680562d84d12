// Package fakevault is a stand-in for Vault's HTTP API, just enough of it
// for the load generator: KV v2 (data and metadata, soft delete, list),
// sys/health, sys/leader, sys/mounts, sys/capabilities-self. Tests drive
// faults through it (stalls, sealing, losing data behind the client's back)
// and it is cheap enough per request to benchmark the generator against.
package fakevault

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type version struct {
	value   string
	deleted bool
	purged  bool // forgotten, as KV v2 forgets versions beyond max_versions
}

type secret struct {
	versions []version // versions[i] is version i+1
}

// Server is the fake. Use it as an http.Handler.
type Server struct {
	Token string

	mu      sync.Mutex
	mounts  map[string]bool // KV v2 mounts
	kv      map[string]*secret
	stallTo atomic.Int64 // unix ns: requests arriving before it wait until it
	sealed  atomic.Bool
	// Caps, when set, is what capabilities-self answers for every path.
	Caps []string

	Requests atomic.Int64
	leader   atomic.Pointer[string]

	// The capacity model (SetCapacity): service time per request, and
	// when the single server is next free.
	service atomic.Int64
	qmu     sync.Mutex
	free    time.Time
}

// SetCapacity makes the KV API serve at most n requests per second: one at
// a time in arrival order, each taking 1/n (a single-server queue with a
// fixed service time). Below n a request waits at most for the ones that
// arrived with it; above n the queue, and every latency, grow without
// bound: a known knee at n for capacity tests. 0 removes the limit.
func (s *Server) SetCapacity(n float64) {
	if n <= 0 {
		s.service.Store(0)
		return
	}
	s.service.Store(int64(float64(time.Second) / n))
}

// queue waits for this request's turn in the capacity model.
func (s *Server) queue(r *http.Request) bool {
	svc := s.service.Load()
	if svc == 0 {
		return true
	}
	s.qmu.Lock()
	now := time.Now()
	if s.free.Before(now) {
		s.free = now
	}
	s.free = s.free.Add(time.Duration(svc))
	done := s.free
	s.qmu.Unlock()
	t := time.NewTimer(time.Until(done))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// SetLeader is what sys/leader reports as leader_address from now on
// ("" = this server is the active node, the default).
func (s *Server) SetLeader(addr string) { s.leader.Store(&addr) }

// New returns a fake with no mounts.
func New(token string) *Server {
	return &Server{Token: token, mounts: map[string]bool{}, kv: map[string]*secret{}}
}

// Stall makes every request that arrives in the next d wait until d is
// over, like a SIGSTOPped node whose kernel still accepts connections.
func (s *Server) Stall(d time.Duration) { s.stallTo.Store(time.Now().Add(d).UnixNano()) }

// Seal makes the server answer 503 "Vault is sealed".
func (s *Server) Seal(b bool) { s.sealed.Store(b) }

// Mount creates a KV v2 mount.
func (s *Server) Mount(path string) {
	s.mu.Lock()
	s.mounts[strings.Trim(path, "/")] = true
	s.mu.Unlock()
}

// Destroy removes a key entirely (metadata delete), behind the client's back.
func (s *Server) Destroy(mount, key string) {
	s.mu.Lock()
	delete(s.kv, mount+"/"+key)
	s.mu.Unlock()
}

// SoftDelete deletes the latest version, as `vault kv delete` would.
func (s *Server) SoftDelete(mount, key string) {
	s.mu.Lock()
	if sec := s.kv[mount+"/"+key]; sec != nil && len(sec.versions) > 0 {
		sec.versions[len(sec.versions)-1].deleted = true
	}
	s.mu.Unlock()
}

// Rollback drops the latest version, as a node restored from an old
// snapshot would.
func (s *Server) Rollback(mount, key string) {
	s.mu.Lock()
	if sec := s.kv[mount+"/"+key]; sec != nil && len(sec.versions) > 0 {
		sec.versions = sec.versions[:len(sec.versions)-1]
	}
	s.mu.Unlock()
}

// Corrupt replaces the latest version's value.
func (s *Server) Corrupt(mount, key string) {
	s.mu.Lock()
	if sec := s.kv[mount+"/"+key]; sec != nil && len(sec.versions) > 0 {
		sec.versions[len(sec.versions)-1].value = "corrupted"
	}
	s.mu.Unlock()
}

// CorruptVersion replaces the value of version v (1-based) in place.
func (s *Server) CorruptVersion(mount, key string, v int) {
	s.mu.Lock()
	if sec := s.kv[mount+"/"+key]; sec != nil && v >= 1 && v <= len(sec.versions) {
		sec.versions[v-1].value = "corrupted"
	}
	s.mu.Unlock()
}

// Purge forgets versions 1..v of a key, as KV v2 does with versions beyond
// max_versions: reading them by ?version=N finds nothing.
func (s *Server) Purge(mount, key string, v int) {
	s.mu.Lock()
	if sec := s.kv[mount+"/"+key]; sec != nil {
		for i := 0; i < v && i < len(sec.versions); i++ {
			sec.versions[i].purged = true
		}
	}
	s.mu.Unlock()
}

// Put writes a version as another client would.
func (s *Server) Put(mount, key, value string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.kv[mount+"/"+key]
	if sec == nil {
		sec = &secret{}
		s.kv[mount+"/"+key] = sec
	}
	sec.versions = append(sec.versions, version{value: value})
	return len(sec.versions)
}

// Latest returns a key's latest version number (0 when absent).
func (s *Server) Latest(mount, key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec := s.kv[mount+"/"+key]; sec != nil {
		return len(sec.versions)
	}
	return 0
}

// Keys lists the keys under a mount.
func (s *Server) Keys(mount string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.kv {
		if rest, ok := strings.CutPrefix(k, mount+"/"); ok {
			out = append(out, rest)
		}
	}
	sort.Strings(out)
	return out
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"errors":[%q]}`+"\n", msg)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.Requests.Add(1)
	if until := s.stallTo.Load(); until != 0 {
		if d := time.Until(time.Unix(0, until)); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
	}
	p := strings.TrimPrefix(r.URL.Path, "/v1/")
	if p == "sys/health" {
		if s.sealed.Load() {
			w.WriteHeader(503)
			w.Write([]byte(`{"initialized":true,"sealed":true,"standby":true}`))
			return
		}
		if l := s.leader.Load(); l != nil && *l != "" {
			// A standby: SetLeader named another node as active.
			w.WriteHeader(429)
			w.Write([]byte(`{"initialized":true,"sealed":false,"standby":true}`))
			return
		}
		w.Write([]byte(`{"initialized":true,"sealed":false,"standby":false}`))
		return
	}
	if s.sealed.Load() {
		writeErr(w, 503, "Vault is sealed")
		return
	}
	if strings.Contains(p, "/data/") && !s.queue(r) {
		return
	}
	if p == "sys/leader" { // unauthenticated, as in Vault
		leader := ""
		if l := s.leader.Load(); l != nil {
			leader = *l
		}
		if leader == "" {
			w.Write([]byte(`{"ha_enabled":true,"is_self":true,"leader_address":""}`))
		} else {
			fmt.Fprintf(w, `{"ha_enabled":true,"is_self":false,"leader_address":%q}`, leader)
		}
		return
	}
	if r.Header.Get("X-Vault-Token") != s.Token {
		writeErr(w, 403, "permission denied")
		return
	}
	switch {
	case p == "sys/capabilities-self":
		var req struct{ Paths []string }
		json.NewDecoder(r.Body).Decode(&req)
		caps := s.Caps
		if caps == nil {
			caps = []string{"root"}
		}
		out := map[string]any{"capabilities": caps}
		for _, q := range req.Paths {
			out[q] = caps
		}
		json.NewEncoder(w).Encode(out)
		return
	case strings.HasPrefix(p, "sys/mounts/"):
		m := strings.Trim(strings.TrimPrefix(p, "sys/mounts/"), "/")
		switch r.Method {
		case http.MethodGet:
			s.mu.Lock()
			ok := s.mounts[m]
			s.mu.Unlock()
			if !ok {
				writeErr(w, 400, "No secret engine mount at "+m+"/")
				return
			}
			w.Write([]byte(`{"type":"kv","options":{"version":"2"}}`))
		case http.MethodPost:
			s.Mount(m)
			w.WriteHeader(204)
		}
		return
	}
	// KV v2: <mount>/data/<key>, <mount>/metadata/<prefix>, <mount>/config.
	s.mu.Lock()
	var mount, kind, key string
	for m := range s.mounts {
		if rest, ok := strings.CutPrefix(p, m+"/"); ok {
			mount = m
			kind, key, _ = strings.Cut(rest, "/")
			break
		}
	}
	s.mu.Unlock()
	if mount == "" {
		writeErr(w, 404, "no handler for route \""+p+"\". route entry not found.")
		return
	}
	switch kind {
	case "config":
		w.Write([]byte(`{"data":{"max_versions":0}}`))
	case "data":
		s.data(w, r, mount, key)
	case "metadata":
		s.list(w, r, mount, key)
	default:
		writeErr(w, 404, "unsupported path")
	}
}

func (s *Server) data(w http.ResponseWriter, r *http.Request, mount, key string) {
	full := mount + "/" + key
	switch r.Method {
	case http.MethodPost, http.MethodPut:
		var req struct {
			Data map[string]string `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeErr(w, 400, "bad body: "+err.Error())
			return
		}
		s.mu.Lock()
		sec := s.kv[full]
		if sec == nil {
			sec = &secret{}
			s.kv[full] = sec
		}
		sec.versions = append(sec.versions, version{value: req.Data["v"]})
		v := len(sec.versions)
		s.mu.Unlock()
		var b bytes.Buffer
		b.WriteString(`{"request_id":"x","lease_id":"","renewable":false,"lease_duration":0,"data":{"created_time":"2026-01-01T00:00:00Z","custom_metadata":null,"deletion_time":"","destroyed":false,"version":`)
		b.WriteString(strconv.Itoa(v))
		b.WriteString(`},"wrap_info":null,"warnings":null,"auth":null,"mount_type":"kv"}`)
		w.Header().Set("Content-Type", "application/json")
		w.Write(b.Bytes())
	case http.MethodGet:
		// ?version=N reads that version; without it, the latest.
		want, _ := strconv.Atoi(r.URL.Query().Get("version"))
		s.mu.Lock()
		sec := s.kv[full]
		var ver version
		n := 0
		if sec != nil {
			n = len(sec.versions)
			if want > 0 && want <= n {
				n = want
			}
			if n > 0 {
				ver = sec.versions[n-1]
			}
			if want > len(sec.versions) {
				n = 0
			}
		}
		s.mu.Unlock()
		if n == 0 || ver.purged {
			// No metadata: the key does not exist, or KV v2 no longer keeps
			// that version (beyond max_versions).
			w.WriteHeader(404)
			w.Write([]byte(`{"errors":[]}`))
			return
		}
		md := fmt.Sprintf(`{"created_time":"2026-01-01T00:00:00Z","deletion_time":%q,"destroyed":false,"version":%d}`, map[bool]string{true: "2026-01-01T00:00:01Z"}[ver.deleted], n)
		w.Header().Set("Content-Type", "application/json")
		if ver.deleted {
			w.WriteHeader(404)
			fmt.Fprintf(w, `{"data":{"data":null,"metadata":%s}}`, md)
			return
		}
		vb, _ := json.Marshal(ver.value)
		fmt.Fprintf(w, `{"data":{"data":{"v":%s},"metadata":%s}}`, vb, md)
	case http.MethodDelete:
		s.mu.Lock()
		if sec := s.kv[full]; sec != nil && len(sec.versions) > 0 {
			sec.versions[len(sec.versions)-1].deleted = true
		}
		s.mu.Unlock()
		w.WriteHeader(204)
	default:
		writeErr(w, 405, "unsupported method")
	}
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, mount, prefix string) {
	if r.Method != "LIST" && r.URL.Query().Get("list") != "true" {
		writeErr(w, 405, "only list is supported on metadata")
		return
	}
	seen := map[string]bool{}
	s.mu.Lock()
	for k := range s.kv {
		rest, ok := strings.CutPrefix(k, mount+"/"+prefix)
		if !ok {
			continue
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i+1]
		}
		seen[rest] = true
	}
	s.mu.Unlock()
	if len(seen) == 0 {
		w.WriteHeader(404)
		w.Write([]byte(`{"errors":[]}`))
		return
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"keys": keys}})
}
