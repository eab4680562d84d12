package main

import (
	"runtime"
	"testing"
)

func TestSetProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	if n, err := setProcs(0); err != nil || n != runtime.NumCPU() || runtime.GOMAXPROCS(0) != n {
		t.Errorf("automatic: %d, %v; GOMAXPROCS %d; want every core (%d)", n, err, runtime.GOMAXPROCS(0), runtime.NumCPU())
	}
	if n, _ := setProcs(1); n != 1 || runtime.GOMAXPROCS(0) != 1 {
		t.Errorf("explicit 1: %d, GOMAXPROCS %d", n, runtime.GOMAXPROCS(0))
	}
	if _, err := setProcs(-1); err == nil {
		t.Error("--procs -1 accepted")
	}
}
