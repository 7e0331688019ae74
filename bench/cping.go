package bench

// The futex floor: a C program (cping/futex_ping.c) that wakes a sleeping
// process over a shared futex word at the latency rows' pacing, with no
// ring and no Go runtime. The harness builds it with the system C compiler
// (cc) into the run's temporary directory; without one the row is skipped
// and says so.

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

//go:embed cping/futex_ping.c
var futexPingSource []byte

// FutexPingRow is the C futex ping: one-way wake-up latency of a process
// sleeping in FUTEX_WAIT, paced like the latency rows.
type FutexPingRow struct {
	OneWay    Percentiles `json:"one_way"`
	Sent      int         `json:"sent"`
	OtherLoad float64     `json:"other_load_cores"`
}

func (h *harness) futexPing(ctx context.Context) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		h.rep.Skipped = append(h.rep.Skipped, "C futex ping: no C compiler (cc) on PATH")
		return
	}
	src := filepath.Join(h.dir, "futex_ping.c")
	bin := filepath.Join(h.dir, "futex_ping")
	if err := os.WriteFile(src, futexPingSource, 0o644); err != nil {
		h.fail("futex ping", err)
		return
	}
	if out, err := exec.CommandContext(ctx, cc, "-std=c11", "-O2", "-o", bin, src).CombinedOutput(); err != nil {
		h.fail("futex ping", fmt.Errorf("build: %w: %s", err, out))
		return
	}
	n := h.cfg.PingFrames
	d := time.Duration(n+50)*h.cfg.PingInterval + h.cfg.Setup
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	h.waitQuiet(ctx, "futex ping")
	sys0, self0, t0 := readCPUTimes(), readSchedstat(), time.Now()
	cmd := exec.CommandContext(cctx, bin, strconv.Itoa(n), "50", strconv.FormatInt(int64(h.cfg.PingInterval), 10))
	out, err := cmd.Output()
	other := 0.0
	if sys1, self1, wall := readCPUTimes(), readSchedstat(), time.Since(t0).Nanoseconds(); err == nil && sys0.ok && sys1.ok && wall > 0 {
		// The receiver (a child of the sender) is included in the
		// sender's children's times.
		child := int64(0)
		if ps := cmd.ProcessState; ps != nil {
			child = int64(ps.UserTime() + ps.SystemTime())
		}
		other = max(float64(sys1.busy-sys0.busy-child-(self1-self0))/float64(wall), 0)
	}
	if err != nil {
		h.fail("futex ping", err)
		return
	}
	lat := newHist()
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		v, err := strconv.ParseInt(sc.Text(), 10, 64)
		if err != nil {
			h.fail("futex ping", fmt.Errorf("parse %q: %w", sc.Text(), err))
			return
		}
		record(lat, v)
	}
	h.rep.FutexPing = &FutexPingRow{OneWay: percentiles(lat), Sent: n, OtherLoad: other}
}
