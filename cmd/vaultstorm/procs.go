package main

import (
	"fmt"
	"net"
	"net/url"
	"runtime"

	"github.com/spf13/pflag"
)

// procsUsage is the --procs help shared by load and run.
const procsUsage = "OS threads for the harness's Go code (GOMAXPROCS); 0: 1 when every target is on this machine " +
	"(a core the harness takes is taken from the Vault nodes under test), else all cores"

func addProcsFlag(fl *pflag.FlagSet, p *int) { fl.IntVar(p, "procs", 0, procsUsage) }

// setProcs applies --procs for a run whose targets are all on this machine
// or not, and returns the value in force, which the caller reports.
func setProcs(n int, local bool) (int, error) {
	if n < 0 {
		return 0, fmt.Errorf("--procs %d: want 0 (automatic) or a positive number", n)
	}
	if n == 0 {
		n = runtime.NumCPU()
		if local {
			n = 1
		}
	}
	runtime.GOMAXPROCS(n)
	return n, nil
}

func allLoopback(addrs []string) bool {
	if len(addrs) == 0 {
		return false
	}
	for _, a := range addrs {
		u, err := url.Parse(a)
		if err != nil {
			return false
		}
		h := u.Hostname()
		if h == "localhost" {
			continue
		}
		ip := net.ParseIP(h)
		if ip == nil || !ip.IsLoopback() {
			return false
		}
	}
	return true
}
