package main

import (
	"runtime"
	"testing"
)

func TestAllLoopback(t *testing.T) {
	for _, c := range []struct {
		addrs []string
		want  bool
	}{
		{[]string{"https://127.0.0.11:8200", "https://127.0.0.12:8200"}, true},
		{[]string{"https://localhost:8200"}, true},
		{[]string{"https://[::1]:8200"}, true},
		{[]string{"https://127.0.0.11:8200", "https://10.0.0.5:8200"}, false},
		{[]string{"https://vault.example.com:8200"}, false},
		{nil, false},
	} {
		if got := allLoopback(c.addrs); got != c.want {
			t.Errorf("allLoopback(%v) = %v, want %v", c.addrs, got, c.want)
		}
	}
}

func TestSetProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	if n, err := setProcs(0, true); err != nil || n != 1 || runtime.GOMAXPROCS(0) != 1 {
		t.Errorf("local automatic: %d, %v; GOMAXPROCS %d; want 1", n, err, runtime.GOMAXPROCS(0))
	}
	if n, _ := setProcs(0, false); n != runtime.NumCPU() {
		t.Errorf("remote automatic: %d, want every core (%d)", n, runtime.NumCPU())
	}
	if n, _ := setProcs(3, true); n != 3 || runtime.GOMAXPROCS(0) != 3 {
		t.Errorf("explicit 3: %d", n)
	}
	if _, err := setProcs(-1, true); err == nil {
		t.Error("--procs -1 accepted")
	}
}
