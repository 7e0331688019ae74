package bench

// Process cost, from /proc (no syscall package here, see doc.go).
//
// CPU time: the sum over the process's threads of the first field of
// /proc/self/task/TID/schedstat (nanoseconds on a CPU, exact), and the
// user/system split of /proc/self/stat (clock ticks of 10 ms, so the split
// is coarse while the total is not). A thread that exits inside a window
// takes its time with it; the Go runtime keeps its threads.
//
// Allocations: runtime.MemStats.Mallocs. A window's start reads the /proc
// files first and MemStats last, its end MemStats first and the files
// last, so the files' own allocations fall outside the window. Children
// run with the GC off and after primeRuntime (child.go), so that what a
// window counts is the steady state of the code under test, not a GC
// cycle's workers or finalizers, nor the runtime growing a thread pool or
// a timer heap.

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
)

// clockTick is USER_HZ, which Linux fixes at 100 for every architecture
// framering builds for (it is part of the /proc ABI, independent of HZ).
const clockTick = 10_000_000 // ns

type usage struct {
	mono    int64
	cpuNs   int64
	userNs  int64
	sysNs   int64
	mallocs uint64
}

func startUsage() usage {
	writeMemProfile("start")
	var u usage
	u.cpuNs, u.userNs, u.sysNs = readCPU()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	u.mallocs = ms.Mallocs
	u.mono = now()
	return u
}

func endUsage() usage {
	var u usage
	u.mono = now()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	u.mallocs = ms.Mallocs
	u.cpuNs, u.userNs, u.sysNs = readCPU()
	writeMemProfile("end")
	return u
}

func (a usage) until(b usage) cost {
	return cost{WindowNs: b.mono - a.mono, CPUNs: b.cpuNs - a.cpuNs, UserNs: b.userNs - a.userNs,
		SysNs: b.sysNs - a.sysNs, Mallocs: b.mallocs - a.mallocs}
}

// readCPU returns the process's CPU time (exact when schedstat exists,
// else from ticks) and its user and system parts (ticks).
func readCPU() (total, user, sys int64) {
	user, sys = readStatTicks()
	total = readSchedstat()
	if total == 0 {
		total = user + sys
	}
	return total, user, sys
}

func readStatTicks() (user, sys int64) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, 0
	}
	// The command name may contain spaces and parentheses: fields start
	// after the last ')'. Field 3 (state) is then index 0; utime (14) is
	// index 11 and stime (15) index 12.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, 0
	}
	u, _ := strconv.ParseInt(string(f[11]), 10, 64)
	s, _ := strconv.ParseInt(string(f[12]), 10, 64)
	return u * clockTick, s * clockTick
}

func readSchedstat() int64 {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0
	}
	var sum int64
	for _, e := range ents {
		b, err := os.ReadFile("/proc/self/task/" + e.Name() + "/schedstat")
		if err != nil {
			continue
		}
		f := bytes.Fields(b)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}
