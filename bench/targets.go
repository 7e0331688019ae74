package bench

import (
	"fmt"
	"strings"
)

// The targets framering holds itself to. They are printed as met or not
// met; a bench never fails because of one.
const (
	targetPollP50      = 300  // ns, busy-poll handoff p50, every payload
	targetPollP99Floor = 2.0  // busy-poll handoff p99 / the same run's cache-line ping p99, every payload
	targetFlat         = 1.5  // largest payload's p50 within this of the smallest's
	targetFutexFloor   = 1.5  // futex wake-up p50 / the same run's C futex ping p50
	targetEarlyP50     = 1000 // ns, early-wake handoff p50 (periodic source), every payload
	targetVsSocket     = 20.0 // ring frame rate / Unix socket frame rate
	targetVsSocketSize = 8 * MiB
	targetPublishScale = 2.0 // publish p50 with the most consumers / with one
)

func verdict(ok bool) *bool { return &ok }

func evaluateTargets(rep *Report) []Target {
	var ts []Target
	floor := ""
	if rep.Ping != nil {
		floor = fmt.Sprintf("; cache-line ping floor p50 %s p99 %s", ns(rep.Ping.OneWay.P50), ns(rep.Ping.OneWay.P99))
	}
	// Busy-poll handoff at every payload, and flatness.
	var poll []LatencyRow
	for _, r := range rep.Latency {
		if r.Wait == WaitPoll {
			poll = append(poll, r)
		}
	}
	for _, r := range poll {
		t := Target{Name: fmt.Sprintf("busy-poll handoff %s: p50 ≤ 300 ns and p99 ≤ %.0f× the same run's ping p99", sizeName(r.Payload), targetPollP99Floor),
			Detail: fmt.Sprintf("p50 %s p99 %s%s", ns(r.Latency.P50), ns(r.Latency.P99), floor)}
		if rep.Ping != nil && rep.Ping.OneWay.P99 > 0 {
			t.Met = verdict(r.Latency.P50 <= targetPollP50 && float64(r.Latency.P99) <= targetPollP99Floor*float64(rep.Ping.OneWay.P99))
		}
		ts = append(ts, t)
	}
	if len(poll) >= 2 {
		lo, hi := poll[0], poll[0]
		for _, r := range poll {
			if r.Payload < lo.Payload {
				lo = r
			}
			if r.Payload > hi.Payload {
				hi = r
			}
		}
		if lo.Latency.P50 > 0 {
			f := float64(hi.Latency.P50) / float64(lo.Latency.P50)
			f99 := float64(hi.Latency.P99) / float64(max(lo.Latency.P99, 1))
			ts = append(ts, Target{Name: fmt.Sprintf("flat: busy-poll p50 at %s within %.1f× of %s", sizeName(hi.Payload), targetFlat, sizeName(lo.Payload)),
				Met: verdict(f <= targetFlat), Detail: fmt.Sprintf("p50 %s vs %s (%.2f×); p99 %.2f×", ns(hi.Latency.P50), ns(lo.Latency.P50), f, f99)})
		}
	}
	// Futex wake-up, against the same run's C futex ping.
	for _, wait := range []string{WaitFutex, WaitLatency} {
		var worst *LatencyRow
		var all []string
		for i, r := range rep.Latency {
			if r.Wait != wait {
				continue
			}
			all = append(all, fmt.Sprintf("%s %s", sizeName(r.Payload), ns(r.Latency.P50)))
			if worst == nil || r.Latency.P50 > worst.Latency.P50 {
				worst = &rep.Latency[i]
			}
		}
		if worst == nil {
			continue
		}
		t := Target{Name: fmt.Sprintf("%s wake-up handoff p50 ≤ %.1f× the same run's C futex ping p50 (every payload)", wait, targetFutexFloor),
			Detail: "p50 " + strings.Join(all, ", ")}
		if fp := rep.FutexPing; fp != nil && fp.OneWay.P50 > 0 {
			t.Met = verdict(float64(worst.Latency.P50) <= targetFutexFloor*float64(fp.OneWay.P50))
			t.Detail += fmt.Sprintf("; C futex ping p50 %s (worst %.2f×)", ns(fp.OneWay.P50), float64(worst.Latency.P50)/float64(fp.OneWay.P50))
		} else {
			t.Detail += "; no C futex ping in this run (needs cc)"
		}
		ts = append(ts, t)
	}
	ts = append(ts, earlyTarget(rep)...)
	ts = append(ts, iceoryxTargets(rep)...)
	// Ring vs Unix socket at 8 MiB.
	ts = append(ts, vsSocketTarget(rep))
	// Zero allocations.
	ts = append(ts, allocTarget(rep))
	// Publish cost with many consumers.
	for _, wait := range []string{WaitFutex, WaitLatency, WaitPoll, WaitSpin} {
		var one, most *ScaleRow
		for i, r := range rep.Scale {
			if r.Wait != wait {
				continue
			}
			if r.Consumers == 1 {
				one = &rep.Scale[i]
			}
			if most == nil || r.Consumers > most.Consumers {
				most = &rep.Scale[i]
			}
		}
		if one == nil || most == nil || most.Consumers == 1 || one.Publish.P50 == 0 {
			continue
		}
		// The cost is the producer process's CPU per frame, all threads
		// (so wakes moved to another thread still count); Publish's wall
		// time, which includes being preempted by the consumers it woke on
		// a machine with fewer cores than processes, is shown beside it.
		t := Target{Name: fmt.Sprintf("publish cost (producer CPU per frame, all threads) with %d %s consumers within 2× of one", most.Consumers, wait)}
		wall := float64(most.Publish.P50) / float64(one.Publish.P50)
		t.Detail = fmt.Sprintf("Publish wall time p50 %s vs %s (%.2f×), p99 %s vs %s",
			ns(most.Publish.P50), ns(one.Publish.P50), wall, ns(most.Publish.P99), ns(one.Publish.P99))
		if one.Producer.CPUPerFrameNs > 0 && most.Producer.CPUPerFrameNs > 0 {
			f := most.Producer.CPUPerFrameNs / one.Producer.CPUPerFrameNs
			t.Met = verdict(f <= targetPublishScale)
			t.Detail = fmt.Sprintf("producer CPU/frame %s vs %s (%.2f×; includes writing every byte); ", nsf(most.Producer.CPUPerFrameNs), nsf(one.Producer.CPUPerFrameNs), f) + t.Detail
		}
		ts = append(ts, t)
		if wait != WaitPoll && one.LastAwake.P50 > 0 && most.LastAwake.P50 > 0 {
			g := float64(most.LastAwake.P50) / float64(one.LastAwake.P50)
			ts = append(ts, Target{Name: fmt.Sprintf("last of %d %s consumers awake within 2× of one consumer's wake-up", most.Consumers, wait),
				Met: verdict(g <= targetPublishScale), Detail: fmt.Sprintf("last awake p50 %s vs %s (%.2f×); p99 %s vs %s",
					ns(most.LastAwake.P50), ns(one.LastAwake.P50), g, ns(most.LastAwake.P99), ns(one.LastAwake.P99))})
		}
	}
	return ts
}

func vsSocketTarget(rep *Report) Target {
	t := Target{Name: fmt.Sprintf("≥ %.0f× the Unix-socket frame rate at %s, producer writing every byte", targetVsSocket, sizeName(targetVsSocketSize))}
	var lease, sum *ThroughputRow
	for i, r := range rep.Throughput {
		if r.Payload != targetVsSocketSize || r.Consumers != 1 || r.Mode != "lossless" || r.VsSocket == 0 {
			continue
		}
		switch {
		case r.Read == ReadLease && lease == nil: // the first: the default slot count
			lease = &rep.Throughput[i]
		case r.Read == ReadSum && sum == nil:
			sum = &rep.Throughput[i]
		}
	}
	if lease == nil {
		t.Detail = "not measured (needs the 1-consumer lossless lease row and its socket baseline)"
		return t
	}
	t.Met = verdict(lease.VsSocket >= targetVsSocket)
	t.Detail = fmt.Sprintf("lease-only consumer %s fps vs socket read() %s fps = %.2f×", fps(lease.FPS), fps(lease.SocketFPS), lease.VsSocket)
	if sum != nil {
		t.Detail += fmt.Sprintf("; checksumming both sides %s vs %s = %.2f×", fps(sum.FPS), fps(sum.SocketFPS), sum.VsSocket)
	}
	for _, m := range rep.Memcpy {
		if m.Payload == targetVsSocketSize {
			t.Detail += fmt.Sprintf("; the producer's own fill allows at most %s fps (%.1f GB/s)", fps(m.FillFPS), m.FillGBps)
		}
	}
	return t
}

func allocTarget(rep *Report) Target {
	t := Target{Name: "zero allocations per frame on the ring's paths (producer and consumers)"}
	var bad []string
	n := 0
	check := func(scenario string, s ProcStat) {
		n++
		if s.Mallocs > 0 {
			w := fmt.Sprintf("%s %s[%d] %.3g/frame (%d)", scenario, s.Role, s.Index, s.AllocsPerFrame, s.Mallocs)
			if s.Missed > 0 {
				// Borrow wraps ErrOverwritten with fmt.Errorf: 2 allocations
				// per missed frame, on Next's retry path.
				w += fmt.Sprintf(" with %d missed frames (Next's overwritten path allocates its error)", s.Missed)
			}
			bad = append(bad, w)
		}
	}
	for _, r := range rep.Latency {
		sc := fmt.Sprintf("latency %s %s", sizeName(r.Payload), r.Wait)
		check(sc, r.Producer)
		for _, c := range r.Consumers {
			check(sc, c)
		}
	}
	for _, r := range rep.Throughput {
		sc := fmt.Sprintf("throughput %s x%d %s %s", sizeName(r.Payload), r.Consumers, r.Mode, r.Read)
		check(sc, r.Producer)
		for _, c := range r.ConsumerStat {
			check(sc, c)
		}
	}
	for _, r := range rep.Scale {
		sc := fmt.Sprintf("scale x%d %s", r.Consumers, r.Wait)
		check(sc, r.Producer)
		for _, c := range r.ConsumerStats {
			check(sc, c)
		}
	}
	if n == 0 {
		t.Detail = "no ring scenario ran"
		return t
	}
	t.Met = verdict(len(bad) == 0)
	if len(bad) == 0 {
		t.Detail = fmt.Sprintf("0 mallocs in %d ring processes' measured windows", n)
	} else {
		if len(bad) > 8 {
			bad = append(bad[:8], fmt.Sprintf("and %d more", len(bad)-8))
		}
		t.Detail = strings.Join(bad, "; ")
	}
	return t
}

// iceoryxTargets: the futex wake-up p50 at no payload worse than
// iceoryx's WaitSet at the same payload, and the every-byte read at 8 MiB
// at least iceoryx's subscriber's frame rate.
func iceoryxTargets(rep *Report) []Target {
	if len(rep.Iceoryx) == 0 {
		return nil
	}
	wake, _ := vsWaitSet(rep, WaitFutex, func(r IceoryxRow) int64 { return r.RingP50 })
	if wake.Met == nil {
		wake.Detail = "not measured (needs the ring's futex rows and iceoryx's WaitSet rows)"
	}
	ts := []Target{wake}
	// The latency mode against the same WaitSet rows.
	if lwake, judged := vsWaitSet(rep, WaitLatency, func(r IceoryxRow) int64 {
		for _, l := range rep.Latency {
			if l.Wait == WaitLatency && l.Payload == r.Payload && r.Latency.P50 > 0 {
				return l.Latency.P50
			}
		}
		return 0
	}); judged {
		ts = append(ts, lwake)
	}
	read := Target{Name: fmt.Sprintf("every-byte read at %s ≥ iceoryx's subscriber (word sum, one lossless consumer)", sizeName(targetVsSocketSize)),
		Detail: "not measured (needs the ring's and iceoryx's words rows at " + sizeName(targetVsSocketSize) + ")"}
	for _, r := range rep.Iceoryx {
		if r.Kind == "throughput" && r.Read == ReadWords && r.Payload == targetVsSocketSize && r.RingFPS > 0 {
			read.Met = verdict(r.RingFPS >= r.FPS)
			read.Detail = fmt.Sprintf("ring %s fps vs iceoryx %s fps (%.2f×), %d buffers each", fps(r.RingFPS), fps(r.FPS), r.Ratio, r.Buffers)
		}
	}
	return append(ts, read)
}

// vsWaitSet judges the ring's wait p50 against iceoryx's WaitSet p50 at
// every payload both measured; ringP50 gives the ring's p50 beside an
// iceoryx row (0: none). judged is false when no payload had both.
func vsWaitSet(rep *Report, wait string, ringP50 func(IceoryxRow) int64) (t Target, judged bool) {
	t.Name = fmt.Sprintf("%s wake-up handoff p50 ≤ iceoryx WaitSet p50 (every payload, same run)", wait)
	var parts []string
	met := true
	for _, r := range rep.Iceoryx {
		p50 := ringP50(r)
		if r.Kind != "latency" || r.Wait != IoxWaitSet || p50 == 0 {
			continue
		}
		judged = true
		met = met && p50 <= r.Latency.P50
		parts = append(parts, fmt.Sprintf("%s %s vs %s", sizeName(r.Payload), ns(p50), ns(r.Latency.P50)))
	}
	if judged {
		t.Met = verdict(met)
		t.Detail = "ring vs iceoryx p50: " + strings.Join(parts, ", ")
	}
	return t, judged
}

// earlyTarget is the early wake-up's line: p50 under a microsecond for a
// periodic source, at the consumer CPU per frame it states.
func earlyTarget(rep *Report) []Target {
	var all []string
	met := true
	for _, r := range rep.Latency {
		if r.Wait != WaitEarly || r.Latency.Count == 0 {
			continue
		}
		cpu := 0.0
		if len(r.Consumers) > 0 {
			cpu = r.Consumers[0].CPUPerFrameNs
		}
		all = append(all, fmt.Sprintf("%s %s (consumer CPU/frame %s)", sizeName(r.Payload), ns(r.Latency.P50), ns(int64(cpu))))
		met = met && r.Latency.P50 <= targetEarlyP50
	}
	if len(all) == 0 {
		return nil
	}
	return []Target{{Name: fmt.Sprintf("%s handoff p50 ≤ 1 µs (periodic source, waking %s before the frame is due; every payload)", WaitEarly, earlyWakeWindow),
		Met: verdict(met), Detail: "p50 " + strings.Join(all, ", ")}}
}
