package bench

// Other load: this harness shares the machine with whatever else runs on
// it, and on 2 cores one other busy process changes every latency tail.
// Around every scenario the harness reads the system-wide busy time
// (/proc/stat) and subtracts what the scenario's own processes and the
// harness spent; the rest, per second of wall time, is the "other load"
// reported beside the scenario (in cores).

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"time"
)

// cpuTimes are the system-wide busy and steal times, in nanoseconds.
type cpuTimes struct {
	busy, steal int64
	ok          bool
}

func readCPUTimes() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return cpuTimes{}
	}
	var v [10]int64
	for i := 1; i < len(f) && i <= 10; i++ {
		v[i-1], _ = strconv.ParseInt(string(f[i]), 10, 64)
	}
	// user nice system idle iowait irq softirq steal (guest is in user).
	busy := v[0] + v[1] + v[2] + v[5] + v[6]
	return cpuTimes{busy: busy * clockTick, steal: v[7] * clockTick, ok: true}
}

// busyCores samples how many cores are busy over d.
func busyCores(d time.Duration) float64 {
	a := readCPUTimes()
	t := time.Now()
	time.Sleep(d)
	b := readCPUTimes()
	if !a.ok || !b.ok {
		return 0
	}
	return float64(b.busy-a.busy) / float64(time.Since(t).Nanoseconds())
}

// waitQuiet waits, at most max, until fewer than below cores are busy.
func (h *harness) waitQuiet(ctx context.Context, label string) {
	if h.cfg.QuietWait <= 0 {
		return
	}
	end := time.Now().Add(h.cfg.QuietWait)
	for {
		c := busyCores(200 * time.Millisecond)
		if c < h.cfg.QuietBelow {
			return
		}
		if ctx.Err() != nil || time.Now().After(end) {
			h.log.Warn("machine still busy, running anyway", "scenario", label, "busy_cores", c)
			return
		}
	}
}
