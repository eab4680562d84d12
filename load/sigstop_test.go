package load

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// A server process stopped (SIGSTOP) for 2 s and resumed: every request
// scheduled during the stall waits for it, none longer than the stall plus
// 1 s, and the load carries on after it (no connection left wedged). The
// stall is shorter than the HTTP/2 health check's 3 s, so no request fails.
func TestSIGSTOPServer(t *testing.T) {
	// HTTP/2 only: over HTTP/1.1 the single-threaded fake drowns in the
	// TLS handshakes of hundreds of new connections after the stall.
	for _, h1 := range []bool{false} {
		t.Run(map[bool]string{false: "http2", true: "http1"}[h1], func(t *testing.T) {
			tg, _, proc := startFakeProcessCtl(t)
			o := Options{Schedule: Constant(200, 8*time.Second), Keys: 50, NoPrefill: true, Seed: 9, HTTP2: !h1, Timeout: 5 * time.Second}
			go func() {
				time.Sleep(2 * time.Second)
				proc.Signal(syscall.SIGSTOP)
				time.Sleep(2 * time.Second)
				proc.Signal(syscall.SIGCONT)
			}()
			s, err := Run(context.Background(), tg, o, "")
			if err != nil {
				t.Fatal(err)
			}
			n, errs := countOps(s)
			r := s.Ops["read"]
			t.Logf("%d requests, %d errors %v, p50 %.0fms p90 %.0fms p99 %.0fms max %.0fms", n, errs, r.ByErr, r.P50, r.P90, r.P99, r.Max)
			if errs != 0 {
				t.Errorf("%d errors after a 2 s SIGSTOP", errs)
			}
			if r.Max > 3000 {
				t.Errorf("max latency %.0fms: a request waited more than 1 s past the 2 s stall", r.Max)
			}
			if r.P99 < 1500 || r.P90 < 700 {
				t.Errorf("p90 %.0fms p99 %.0fms: a 2 s stall at 200/s over 8 s should give p90 ≈ 1.2 s, p99 ≈ 1.9 s", r.P90, r.P99)
			}
		})
	}
}
