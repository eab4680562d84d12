package capacity

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// cpuReading is CPU time used so far, by the generator's own process and by
// each node process, at one instant.
type cpuReading struct {
	at    time.Time
	self  time.Duration
	nodes map[string]time.Duration // absent: not readable
}

// readCPU reads this process's CPU time and each node's from /proc. A node
// process that is gone (or another PID now) is simply absent.
func readCPU(pids map[string]int) cpuReading {
	r := cpuReading{at: time.Now(), nodes: map[string]time.Duration{}}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		r.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	for name, pid := range pids {
		if d, ok := procCPU(pid); ok {
			r.nodes[name] = d
		}
	}
	return r
}

// procCPU is utime+stime of a process (its threads included), fields 14
// and 15 of /proc/PID/stat.
func procCPU(pid int) (time.Duration, bool) {
	if pid <= 0 {
		return 0, false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	k, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(u+k) * time.Second / clockTicks, true
}

// cores is the CPU used between two readings, in cores; nodes missing from
// either reading are left out.
func cores(a, b cpuReading) (self float64, nodes map[string]float64) {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return 0, nil
	}
	self = round3((b.self - a.self).Seconds() / wall)
	for name, d1 := range b.nodes {
		if d0, ok := a.nodes[name]; ok {
			if nodes == nil {
				nodes = map[string]float64{}
			}
			nodes[name] = round3((d1 - d0).Seconds() / wall)
		}
	}
	return self, nodes
}

func round3(f float64) float64 {
	return float64(int64(f*1000+0.5)) / 1000
}
