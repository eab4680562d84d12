package load

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

func TestParseMix(t *testing.T) {
	m, err := ParseMix("read=80,write=20")
	if err != nil || m.Weight(OpRead) != 80 || m.Weight(OpWrite) != 20 || m.Has(OpList) || m.String() != "read=80,write=20" {
		t.Fatalf("ParseMix = %v %v", m, err)
	}
	m, err = ParseMix(" get = 1 , put=1,list=0,delete=2")
	if err != nil || m.total != 4 || m.Has(OpList) || m.Weight(OpDelete) != 2 {
		t.Fatalf("aliases: %v %v", m, err)
	}
	for in, want := range map[string]string{
		"":                    "empty",
		"read":                "not op=weight",
		"read=80,wrte=20":     `unknown operation "wrte"`,
		"read=x":              "must be an integer",
		"read=-1":             "must be an integer",
		"read=0,write=0":      "all weights are zero",
		"read=1,get=2":        "read given twice",
		"read=99999999999999": "must be an integer",
	} {
		if _, err := ParseMix(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseMix(%q) = %v, want error containing %q", in, err, want)
		}
	}
	// pick honours the weights.
	m, _ = ParseMix("read=3,write=1")
	var n [numOps]int
	for r := 0; r < 4; r++ {
		n[m.pick(r)]++
	}
	if n[OpRead] != 3 || n[OpWrite] != 1 {
		t.Fatalf("pick over one cycle = %v", n)
	}
}

func TestKeyDist(t *testing.T) {
	for _, bad := range []string{"zipf:1", "zipf:0", "zipf:x", "gauss"} {
		if _, err := ParseKeyDist(bad); err == nil {
			t.Errorf("ParseKeyDist(%q) accepted", bad)
		}
	}
	d, err := ParseKeyDist("zipf")
	if err != nil {
		t.Fatal(err)
	}
	const keys, draws = 1000, 200000
	d = d.bind(keys)
	r := rand.New(rand.NewPCG(1, 2))
	var hits [keys]int
	for range draws {
		k := d.next(r, keys)
		if k < 0 || k >= keys {
			t.Fatalf("key %d out of range", k)
		}
		hits[k]++
	}
	// Zipf(0.99) over 1000 keys: key 0 gets ~1/zeta(1000) ≈ 13 % of draws,
	// the top 10 keys about 40 %; uniform would give 0.1 % and 1 %.
	top10 := 0
	for _, h := range hits[:10] {
		top10 += h
	}
	if f := float64(hits[0]) / draws; f < 0.10 || f > 0.17 {
		t.Errorf("zipf: key 0 got %.3f of draws, want ≈0.13", f)
	}
	if f := float64(top10) / draws; f < 0.3 || f > 0.5 {
		t.Errorf("zipf: top 10 keys got %.3f of draws, want ≈0.4", f)
	}
	u := Uniform.bind(keys)
	hits = [keys]int{}
	for range draws {
		hits[u.next(r, keys)]++
	}
	if f := float64(hits[0]) / draws; f > 0.003 {
		t.Errorf("uniform: key 0 got %.4f of draws", f)
	}
}

func offsets(s Schedule) []time.Duration {
	var out []time.Duration
	c := newCursor(s)
	for {
		d, ok := c.next()
		if !ok {
			return out
		}
		out = append(out, d)
	}
}

func TestScheduleConstant(t *testing.T) {
	s := Constant(200, 10*time.Second)
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	o := offsets(s)
	if len(o) != 2000 || s.Count() != 2000 {
		t.Fatalf("got %d requests (Count %d), want 2000", len(o), s.Count())
	}
	for i, d := range o {
		if want := time.Duration(i) * 5 * time.Millisecond; absDur(d-want) > time.Microsecond {
			t.Fatalf("request %d at %s, want %s", i, d, want)
		}
	}
}

func TestScheduleRampAndSteps(t *testing.T) {
	s, err := ParseRamp("100:300", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	o := offsets(s)
	// ∫ 100→300 over 10 s = 2000 requests.
	if len(o) != 2000 {
		t.Fatalf("ramp: %d requests, want 2000", len(o))
	}
	// Rate in each second: 100 + 20·(k+0.5) ± 1.
	perSec := make([]int, 10)
	for i, d := range o {
		if i > 0 && d <= o[i-1] {
			t.Fatalf("ramp: offsets not increasing at %d", i)
		}
		perSec[int(d/time.Second)]++
	}
	for k, n := range perSec {
		want := 100 + 20*(float64(k)+0.5)
		if math.Abs(float64(n)-want) > 1.5 {
			t.Errorf("ramp second %d: %d requests, want %.0f", k, n, want)
		}
	}
	// Ramp down, then hold.
	s, err = ParseRamp("300:100@5s", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(offsets(s)); n != 1000+500 {
		t.Errorf("ramp down and hold: %d requests, want 1500", n)
	}
	s, err = ParseSteps("100,200,400", 6*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	perSec = make([]int, 6)
	for _, d := range offsets(s) {
		perSec[int(d/time.Second)]++
	}
	if fmt.Sprint(perSec) != "[100 100 200 200 400 400]" {
		t.Errorf("steps per second = %v", perSec)
	}
	for _, bad := range []string{"100", "a:b", "100:200@0s", "100:200@20s", "0:0"} {
		if _, err := ParseRamp(bad, 10*time.Second); err == nil {
			t.Errorf("ParseRamp(%q) accepted", bad)
		}
	}
	if _, err := ParseSteps("100,0", 10*time.Second); err == nil {
		t.Error("ParseSteps accepted a zero step")
	}
	if err := Constant(0, time.Second).Validate(); err == nil {
		t.Error("a zero rate validated")
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func TestClassify(t *testing.T) {
	// Real errors from real sockets, not hand-made ones.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, err := http.Get("http://" + addr)
	if c := classifyErr(err); c != ConnRefused {
		t.Errorf("refused: %v classified %s", err, c)
	}

	// A server that resets the connection after reading the request.
	ln, _ = net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Read(make([]byte, 1024))
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	_, err = http.Get("http://" + ln.Addr().String())
	if c := classifyErr(err); c != ConnReset {
		t.Errorf("reset: %v classified %s", err, c)
	}

	s := newStub(t)
	_, err = (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{}}}).Get(s.srv.URL)
	if c := classifyErr(err); c != TLSError {
		t.Errorf("unknown CA: %v classified %s", err, c)
	}
	s.Stall(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.srv.URL+"/v1/sys/health", nil)
	_, err = s.srv.Client().Do(req)
	if c := classifyErr(err); c != Timeout {
		t.Errorf("timeout: %v classified %s", err, c)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	req, _ = http.NewRequestWithContext(cctx, "GET", s.srv.URL, nil)
	_, err = s.srv.Client().Do(req)
	if c := classifyErr(err); c != Canceled || c.IsError() {
		t.Errorf("canceled: %v classified %s", err, c)
	}
	if c := classifyErr(fmt.Errorf("wrapped: %w", syscall.ECONNRESET)); c != ConnReset {
		t.Errorf("wrapped ECONNRESET classified %s", c)
	}
	if c := classifyErr(io.ErrUnexpectedEOF); c != ConnReset {
		t.Errorf("unexpected EOF classified %s", c)
	}
	if c := classifyErr(errors.New("weird")); c != Other {
		t.Errorf("other classified %s", c)
	}

	for _, tc := range []struct {
		status int
		body   string
		want   string
	}{
		{503, `{"errors":["Vault is sealed"]}`, "sealed"},
		{500, `{"errors":["local node not active but active cluster node not found"]}`, "no_leader"},
		{503, `{"errors":["no active Vault instance found"]}`, "no_leader"},
		{503, `{"errors":["node is not active"]}`, "standby"},
		{429, `{"errors":["Vault is in standby mode"]}`, "standby"},
		{403, `{"errors":["permission denied"]}`, "http_403"},
		{500, `{"errors":["leadership lost while committing log"]}`, "http_500"},
		{999, ``, "other"},
	} {
		if got := classifyHTTP(tc.status, []byte(tc.body)).String(); got != tc.want {
			t.Errorf("classifyHTTP(%d, %s) = %s, want %s", tc.status, tc.body, got, tc.want)
		}
	}
	if !Class(500).outcomeUnknown() || !Timeout.outcomeUnknown() || ConnRefused.outcomeUnknown() || Sealed.outcomeUnknown() || Class(403).outcomeUnknown() {
		t.Error("outcomeUnknown: a write refused before reaching storage must be a known failure, a timeout or 5xx unknown")
	}
}

func TestScanVersion(t *testing.T) {
	for in, want := range map[string]int{
		`{"data":{"created_time":"x","version":17},"x":1}`: 17,
		`{"data":{"version": 3}}`:                          3,
	} {
		if v, ok := scanVersion([]byte(in)); !ok || v != want {
			t.Errorf("scanVersion(%s) = %d %v", in, v, ok)
		}
	}
	if _, ok := scanVersion([]byte(`{"data":{}}`)); ok {
		t.Error("scanVersion found a version in nothing")
	}
}

func TestRecorderIntervals(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	var got []rundir.Sample
	r, err := newRecorder(dir, []Op{OpRead, OpWrite}, start, func(s rundir.Sample) { got = append(got, s) })
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 100; i++ {
		r.record(OpRead, OK, time.Duration(i)*time.Millisecond, 0, false)
	}
	r.record(OpWrite, Class(503), 2*time.Second, 3*time.Millisecond, true)
	r.record(OpWrite, Canceled, time.Hour, 0, false)
	r.flush(start.Add(time.Second))
	r.record(OpRead, OK, 90*time.Second, 0, false) // beyond the range: clamped
	r.flush(start.Add(2 * time.Second))
	if err := r.close(); err != nil {
		t.Fatal(err)
	}
	s := got[0]
	rd := s.Ops["read"]
	if rd.Count != 100 || math.Abs(rd.P50-50) > 0.1 || math.Abs(rd.P99-99) > 0.1 || math.Abs(rd.Max-100) > 0.1 || rd.Rate != 100 {
		t.Errorf("read stats %+v", rd)
	}
	w := s.Ops["write"]
	if w.Count != 1 || w.Errors != 1 || w.ByErr["http_503"] != 1 || w.ByErr["canceled"] != 1 || math.Abs(w.Max-2000) > 2 || s.LateSends != 1 {
		t.Errorf("write stats %+v late %d", w, s.LateSends)
	}
	if m := got[1].Ops["read"].Max; math.Abs(m-60000) > 60 {
		t.Errorf("clamped max %v, want 60000", m)
	}
	tot := r.totals(2)
	if tot["read"].Count != 101 || r.total.late != 1 {
		t.Errorf("totals %+v", tot)
	}
	var lines []rundir.Sample
	if err := rundir.ReadLines(dir, rundir.SamplesFile, func(s rundir.Sample) error { lines = append(lines, s); return nil }); err != nil || len(lines) != 2 {
		t.Fatalf("samples.jsonl: %d lines, %v", len(lines), err)
	}
	tags := readHlog(t, dir)
	if tags["read"] != 2 || tags["write"] != 2 {
		t.Errorf("hlog intervals per tag %v", tags)
	}
}

// readHlog parses histograms.hlog with hdrhistogram-go's reader and counts
// intervals per tag.
func readHlog(t *testing.T, dir string) map[string]int {
	t.Helper()
	f, err := os.Open(dir + "/" + rundir.HistogramsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return countHlog(t, f)
}
