package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/pflag"
)

// procsUsage is the --procs help shared by load and run. The default stays
// at every core: with one thread, a burst of harness work (a metrics
// scrape, a second's histograms) queues the handling of answers and shows
// up as latency that Vault did not cause; capping it at 1 saved no CPU per
// request that could be told from noise on a 2-core machine.
const procsUsage = "OS threads running the harness's Go code (GOMAXPROCS); 0: every core. " +
	"Cap it to bound the CPU the harness can take from Vault nodes on the same machine"

func addProcsFlag(fl *pflag.FlagSet, p *int) { fl.IntVar(p, "procs", 0, procsUsage) }

// setProcs applies --procs and returns the value in force, which the
// caller reports.
func setProcs(n int) (int, error) {
	if n < 0 {
		return 0, fmt.Errorf("--procs %d: want 0 (every core) or a positive number", n)
	}
	if n == 0 {
		n = runtime.NumCPU()
	}
	runtime.GOMAXPROCS(n)
	return n, nil
}
