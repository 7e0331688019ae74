package bench

// The futex wake-up, split with eBPF: one more paced run with a futex
// consumer whose goroutine is locked to one thread, while raw tracepoints
// on sched_waking, sched_wakeup and sched_switch time that thread's
// wake-ups (bench/internal/schedlat). Events are kept only for the
// consumer's thread and for switches inside its measured window (both
// clocks are CLOCK_MONOTONIC).

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/framering/framering/bench/internal/schedlat"
)

func (h *harness) ebpf(ctx context.Context) {
	if os.Geteuid() != 0 {
		h.skipEBPF("needs root (CAP_BPF and CAP_PERFMON) to load tracing programs")
		return
	}
	if len(h.cfg.Payloads) == 0 {
		h.skipEBPF("no payload sizes configured")
		return
	}
	tr, err := schedlat.New(4 * h.cfg.EBPFFrames)
	if err != nil {
		h.skipEBPF(fmt.Sprintf("cannot load the tracing programs: %v", err))
		return
	}
	defer tr.Close()
	payload := slices.Min(h.cfg.Payloads)
	label := "ebpf futex split " + sizeName(payload)
	h.log.Info("scenario", "name", label)
	d := h.cfg.LatencyDuration
	prod := params{Payload: payload, Slots: 4, Frames: h.cfg.EBPFFrames, Warmup: h.cfg.LatencyWarmup,
		DurationNs: int64(d), IntervalNs: int64(h.cfg.LatencyInterval), CapNs: h.capFor(d)}
	cons := params{Mode: "lossy", Wait: WaitFutex, Read: ReadLease, LockThread: true}
	var targetErr error
	_, cs, st, err := h.ringRunHook(ctx, label, prod, cons, 1, func(p params, pid int) {
		if p.Role == roleRingConsumer {
			targetErr = tr.SetTarget(pid)
		}
	})
	if err == nil {
		err = targetErr
	}
	if err != nil {
		h.fail(label, err)
		return
	}
	if err := tr.SetTarget(0); err != nil {
		h.log.Warn("stop tracing", "err", err)
	}
	evs, err := tr.Events()
	if err != nil {
		h.fail(label, err)
		return
	}
	c := cs[0]
	rq, wk := newHist(), newHist()
	var n int64
	for _, e := range evs {
		if int(e.Tid) != c.Tid || e.SwitchNs < c.FirstNs-int64(2*time.Millisecond) || e.SwitchNs > c.LastNs {
			continue
		}
		n++
		record(rq, int64(e.RunQueue))
		if e.WakingToWakeup > 0 {
			record(wk, int64(e.WakingToWakeup))
		}
	}
	total, err := decodeHist(c.Lat)
	if err != nil {
		h.fail(label, err)
		return
	}
	row := &EBPFRow{Payload: payload, Wakeups: n, RunQueue: percentiles(rq), WakingToWakeup: percentiles(wk),
		Total: percentiles(total), OtherLoad: st.otherCores}
	row.RestP50 = row.Total.P50 - row.RunQueue.P50 - row.WakingToWakeup.P50
	if n == 0 {
		row.Note = fmt.Sprintf("no wake-up of thread %d traced in the window (%d events in all)", c.Tid, len(evs))
	}
	h.rep.EBPF = row
}

func (h *harness) skipEBPF(why string) {
	h.rep.EBPF = &EBPFRow{Skipped: why}
	h.skip("ebpf: " + why)
}
