package bench

import (
	"fmt"
	"strings"
)

// ns formats nanoseconds for people.
func ns(v int64) string {
	switch {
	case v >= 10_000_000:
		return fmt.Sprintf("%.0f ms", float64(v)/1e6)
	case v >= 1_000_000:
		return fmt.Sprintf("%.2f ms", float64(v)/1e6)
	case v >= 10_000:
		return fmt.Sprintf("%.1f µs", float64(v)/1e3)
	case v >= 1_000:
		return fmt.Sprintf("%.2f µs", float64(v)/1e3)
	}
	return fmt.Sprintf("%d ns", v)
}

func nsf(v float64) string { return ns(int64(v + 0.5)) }

func fps(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func ratio(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", v)
}

func allocs(v float64) string {
	if v == 0 {
		return "0"
	}
	return fmt.Sprintf("%.3g", v)
}

// Markdown renders a report as the tables results.md holds.
func Markdown(rep *Report) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	m := rep.Machine
	p("# framering bench (%s)\n\n", rep.Config.Mode)
	p("| machine | |\n|---|---|\n")
	p("| CPU | %s |\n| cores | %d (GOMAXPROCS %d) |\n| kernel | %s |\n| Go | %s %s |\n| LLC | %s |\n| memory | %.1f GiB |\n| date | %s |\n| took | %s |\n\n",
		m.CPUModel, m.Cores, m.GOMAXPROCS, m.Kernel, m.GoVersion, m.GOARCH, sizeName(int(m.LLCBytes)),
		float64(m.MemBytes)/(1<<30), m.Date.Format("2006-01-02 15:04:05 MST"), rep.Finished.Sub(rep.Started).Round(1e8))

	p("## Targets\n\n")
	for _, t := range rep.Targets {
		v := "NOT EVALUATED"
		if t.Met != nil && *t.Met {
			v = "met"
		} else if t.Met != nil {
			v = "NOT MET"
		}
		p("- **%s**: %s — %s\n", v, t.Name, t.Detail)
	}
	p("\n")

	if rep.Ping != nil {
		pg := rep.Ping
		p("## Floor: two-process cache-line ping (no ring)\n\n")
		p("| | samples | p50 | p99 | p99.9 | max |\n|---|---|---|---|---|---|\n")
		p("| one-way (clock to clock) | %d | %s | %s | %s | %s |\n", pg.OneWay.Count, ns(pg.OneWay.P50), ns(pg.OneWay.P99), ns(pg.OneWay.P999), ns(pg.OneWay.Max))
		p("| round trip / 2 | %d | %s | %s | %s | %s |\n", pg.HalfRTT.Count, ns(pg.HalfRTT.P50), ns(pg.HalfRTT.P99), ns(pg.HalfRTT.P999), ns(pg.HalfRTT.Max))
		if fp := rep.FutexPing; fp != nil {
			p("| C futex ping: FUTEX_WAKE → woken process's clock, same pacing (%d of %d delivered; other load %.2f cores) | %d | %s | %s | %s | %s |\n",
				fp.OneWay.Count, fp.Sent, fp.OtherLoad, fp.OneWay.Count, ns(fp.OneWay.P50), ns(fp.OneWay.P99), ns(fp.OneWay.P999), ns(fp.OneWay.Max))
		}
		p("\n")
	}

	if len(rep.Latency) > 0 {
		p("## Handoff latency (publish → consumer sees the lease, one consumer, paced)\n\n")
		p("Floor: the same run's limit probe for the wait — the cache-line ping for busy-poll, the C futex ping (same pacing) for the futex waits.\n\n")
		p("| payload | consumer wait | frames | p50 | p99 | p99.9 | max | floor | floor p50 / p99 / p99.9 | p50/floor | p99/floor | publish p50 | producer CPU/frame | consumer CPU/frame | allocs/frame P/C | note |\n")
		p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range rep.Latency {
			fname, fl, rel, rel99 := "–", "–", "–", "–"
			if r.FloorP50 > 0 {
				fname = r.Floor
				fl = fmt.Sprintf("%s / %s / %s", ns(r.FloorP50), ns(r.FloorP99), ns(r.FloorP999))
				rel = fmt.Sprintf("%.1f×", float64(r.Latency.P50)/float64(r.FloorP50))
				rel99 = fmt.Sprintf("%.1f×", float64(r.Latency.P99)/float64(max(r.FloorP99, 1)))
			}
			cc, ca := 0.0, 0.0
			for _, c := range r.Consumers {
				cc, ca = max(cc, c.CPUPerFrameNs), max(ca, c.AllocsPerFrame)
			}
			p("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s |\n", sizeName(r.Payload), r.Wait, r.Latency.Count,
				ns(r.Latency.P50), ns(r.Latency.P99), ns(r.Latency.P999), ns(r.Latency.Max), fname, fl, rel, rel99, ns(r.Publish.P50),
				nsf(r.Producer.CPUPerFrameNs), nsf(cc), allocs(r.Producer.AllocsPerFrame), allocs(ca), r.Warning)
		}
		if bd := rep.Breakdown; bd != nil {
			p("\nBusy-poll handoff at %s with Next taken apart (Wait, then Borrow; no counters published): visible to Wait p50 %s p99 %s; Borrow p50 %s p99 %s; leased p50 %s p99 %s (other load %.2f cores).\n",
				sizeName(bd.Payload), ns(bd.Seen.P50), ns(bd.Seen.P99), ns(bd.Borrow.P50), ns(bd.Borrow.P99), ns(bd.Leased.P50), ns(bd.Leased.P99), bd.OtherLoad)
		}
		p("\nProducer CPU per frame includes writing every byte of the frame; a busy-polling consumer's CPU per frame is a whole core divided by the frame rate.\n\n")
	}

	if len(rep.Throughput) > 0 {
		p("## Throughput (producer writes every byte, flat out)\n\n")
		p("Rates are frames per second delivered to each consumer (mean; lossless: equal to the producer's). Ratios compare with the same frames over a Unix stream socket and a pipe to as many receivers, whose receivers do read() only (`lease` rows) or read() and checksum (`sum` rows). Fill limit: the producer's fill bandwidth on one core divided by the frame size.\n\n")
		p("Producer waits: share of the window the producer spent waiting for a free slot (lossless backpressure; the ring has no blocking wait for it, so the producer spins 1 ms, then sleeps).\n\n")
		p("Read: `lease` takes the lease only; `words` reads every byte with a memory-bound word sum (eight independent accumulators); `sum` checksums every byte with frame.Sum64 and checks the stamp (integrity, a serial chain). Slots: the ring's slot count and its payload working set against the last-level cache.\n\n")
		p("| payload | consumers | mode | read | slots | fps | GB/s | producer fps | socket fps | ring/socket | pipe fps | ring/pipe | fill limit fps | producer CPU/frame | producer waits | consumer CPU/frame | allocs/frame P/C | sent / received | lost | note |\n")
		p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range rep.Throughput {
			cc, ca := 0.0, 0.0
			for _, c := range r.ConsumerStat {
				cc += c.CPUPerFrameNs / float64(len(r.ConsumerStat))
				ca = max(ca, c.AllocsPerFrame)
			}
			rcv := make([]string, len(r.Received))
			for i, v := range r.Received {
				rcv[i] = fmt.Sprint(v)
			}
			note := r.Warning
			if r.Corrupt > 0 {
				note = strings.TrimPrefix(note+fmt.Sprintf("; %d CORRUPT frames", r.Corrupt), "; ")
			}
			p("| %s | %d | %s | %s | %d (%s) | %s | %.2f | %s | %s | %s | %s | %s | %s | %s | %.0f%% | %s | %s / %s | %d / %s | %d | %s |\n",
				sizeName(r.Payload), r.Consumers, r.Mode, r.Read, r.Slots, r.WorkingSet, fps(r.FPS), r.GBps, fps(r.ProducerFPS),
				fps(r.SocketFPS), ratio(r.VsSocket), fps(r.PipeFPS), ratio(r.VsPipe), fps(r.FillLimitFPS),
				nsf(r.Producer.CPUPerFrameNs), 100*r.Producer.Blocked, nsf(cc), allocs(r.Producer.AllocsPerFrame), allocs(ca),
				r.Sent, strings.Join(rcv, ","), r.Lost, note)
		}
		p("\n")
	}

	if len(rep.Baselines) > 0 {
		p("## Baselines (copying transports; sender fills every byte, receivers read every byte)\n\n")
		p("| transport | payload | receivers | receiver | fps | GB/s | sender CPU/frame | receiver CPU/frame | allocs/frame S/R | sent / received | note |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range rep.Baselines {
			rc, ra := 0.0, 0.0
			for _, c := range r.Receiver {
				rc += c.CPUPerFrameNs / float64(len(r.Receiver))
				ra = max(ra, c.AllocsPerFrame)
			}
			read := "read()"
			switch r.Read {
			case ReadSum:
				read = "read()+sum"
			case ReadWords:
				read = "read()+words"
			}
			rcv := make([]string, len(r.Received))
			for i, v := range r.Received {
				rcv[i] = fmt.Sprint(v)
			}
			note := r.Warning
			if r.Corrupt > 0 {
				note = strings.TrimPrefix(note+fmt.Sprintf("; %d CORRUPT frames", r.Corrupt), "; ")
			}
			p("| %s | %s | %d | %s | %s | %.2f | %s | %s | %s / %s | %d / %s | %s |\n", r.Transport, sizeName(r.Payload), r.Receivers, read,
				fps(r.FPS), r.GBps, nsf(r.Sender.CPUPerFrameNs), nsf(rc), allocs(r.Sender.AllocsPerFrame), allocs(ra), r.Sent, strings.Join(rcv, ","), note)
		}
		p("\n")
	}

	if len(rep.Memcpy) > 0 {
		p("## Physical limit: single-core memory bandwidth (buffers larger than the LLC)\n\n")
		p("| payload | copy GB/s | copy-limited fps | fill GB/s | fill-limited fps |\n|---|---|---|---|---|\n")
		for _, r := range rep.Memcpy {
			p("| %s | %.2f | %s | %.2f | %s |\n", sizeName(r.Payload), r.CopyGBps, fps(r.CopyFPS), r.FillGBps, fps(r.FillFPS))
		}
		p("\n")
	}

	if len(rep.Scale) > 0 {
		p("## Scale (paced frames, lossy consumers)\n\n")
		p("Last awake: per frame every consumer took, publish → the last consumer holds the lease (frames counted in brackets). Producer CPU/frame: all threads of the producer process.\n\n")
		p("| consumers | wait | payload | frames | publish p50 | publish p99 | latency p50 | p99 | p99.9 | max | last awake p50 | last awake p99 | worst consumer p99 | producer CPU/frame | consumer CPU/frame | max allocs/frame | lost | note |\n")
		p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range rep.Scale {
			p("| %d | %s | %s | %d | %s | %s | %s | %s | %s | %s | %s (%d) | %s | %s | %s | %s | %s | %d | %s |\n", r.Consumers, r.Wait, sizeName(r.Payload), r.Frames,
				ns(r.Publish.P50), ns(r.Publish.P99), ns(r.Latency.P50), ns(r.Latency.P99), ns(r.Latency.P999), ns(r.Latency.Max),
				ns(r.LastAwake.P50), r.AllSaw, ns(r.LastAwake.P99),
				ns(r.WorstP99), nsf(r.Producer.CPUPerFrameNs), nsf(r.ConsumerCPU), allocs(r.MaxAllocs), r.Lost, r.Warning)
		}
		p("\n")
	}

	if len(rep.Iceoryx) > 0 {
		p("## Eclipse iceoryx 2.0.3 (C binding, loaned chunks, RouDi started by the bench), beside the ring\n\n")
		p("| latency | payload | buffers | samples | lost | iceoryx p50 | p99 | p99.9 | ring (same run) | ring p50 | ring p99 | ring/iceoryx p50 |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range rep.Iceoryx {
			if r.Kind == "latency" {
				p("| %s | %s | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s |\n", r.Wait, sizeName(r.Payload), r.Buffers, r.Latency.Count, r.Lost,
					ns(r.Latency.P50), ns(r.Latency.P99), ns(r.Latency.P999), orDash(r.RingWait), nsOrDash(r.RingP50), nsOrDash(r.RingP99), ratio(r.Ratio))
			}
		}
		p("\n| throughput (1 busy-polling subscriber, lossless) | payload | buffers | frames | fps | GB/s | ring fps (same read, slots) | ring/iceoryx |\n|---|---|---|---|---|---|---|---|\n")
		for _, r := range rep.Iceoryx {
			if r.Kind == "throughput" {
				p("| %s | %s | %d | %d | %s | %.2f | %s | %s |\n", r.Read, sizeName(r.Payload), r.Buffers, r.Received, fps(r.FPS), r.GBps, orDash(fpsOrEmpty(r.RingFPS)), ratio(r.Ratio))
			}
		}
		p("\n")
	}

	if len(rep.GStreamer) > 0 {
		p("## GStreamer shmsink → shmsrc (videotestsrc frames, fakesink consumer), and framesrc\n\n")
		p("| payload | geometry | shmsrc buffers | shmsrc fps | GB/s | shmsrc CPU/frame | framesrc buffers | framesrc fps | framesrc/shmsrc | framesrc CPU/frame | ring fps (1 lossless lease consumer) | ring/shmsrc | note |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range rep.GStreamer {
			fr, ffps, fcpu, note := "-", "-", "-", r.Note
			if f := r.Framesrc; f != nil {
				fr, ffps, fcpu = fmt.Sprintf("%d / %d", f.Received, r.Sent), fps(f.FPS), ns(int64(f.CPUPerFrameNs))
				if f.Note != "" {
					note = strings.TrimPrefix(note+"; framesrc: "+f.Note, "; ")
				}
			}
			ring := "–"
			if r.RingFPS > 0 {
				ring = fps(r.RingFPS)
			}
			p("| %s | %dx%d | %d / %d | %s | %.2f | %s | %s | %s | %s | %s | %s | %s | %s |\n", sizeName(r.Payload), r.Width, r.Height,
				r.Received, r.Sent, fps(r.FPS), r.GBps, ns(int64(r.CPUPerFrameNs)), fr, ffps, ratio(r.VsShm), fcpu, ring, ratio(r.VsRing), note)
		}
		p("\n")
	}

	if e := rep.EBPF; e != nil && e.Skipped == "" {
		p("## Futex wake-up, split with eBPF (%s, one futex consumer locked to its thread; %d wake-ups traced; other load %.2f cores)\n\n", sizeName(e.Payload), e.Wakeups, e.OtherLoad)
		p("| part | count | p50 | p99 | max |\n|---|---|---|---|---|\n")
		p("| sched_waking → sched_wakeup (wake reaches the run queue) | %d | %s | %s | %s |\n", e.WakingToWakeup.Count, ns(e.WakingToWakeup.P50), ns(e.WakingToWakeup.P99), ns(e.WakingToWakeup.Max))
		p("| sched_wakeup → sched_switch (run-queue delay) | %d | %s | %s | %s |\n", e.RunQueue.Count, ns(e.RunQueue.P50), ns(e.RunQueue.P99), ns(e.RunQueue.Max))
		p("| whole handoff (publish timestamp → lease) | %d | %s | %s | %s |\n", e.Total.Count, ns(e.Total.P50), ns(e.Total.P99), ns(e.Total.Max))
		p("| rest (p50 difference: Publish and FUTEX_WAKE up to the wake, syscall return, Wait, Borrow) | | %s | | |\n\n", ns(e.RestP50))
		if e.Note != "" {
			p("%s\n\n", e.Note)
		}
	}

	if len(rep.Skipped) > 0 {
		p("## Skipped\n\n")
		for _, s := range rep.Skipped {
			p("- %s\n", s)
		}
		p("\n")
	}
	if len(rep.Warnings) > 0 {
		p("## Warnings\n\n")
		for _, s := range rep.Warnings {
			p("- %s\n", s)
		}
		p("\n")
	}
	if len(rep.Errors) > 0 {
		p("## Failed scenarios\n\n")
		for _, s := range rep.Errors {
			p("- %s\n", s)
		}
		p("\n")
	}
	return b.String()
}

// orDash, nsOrDash and fpsOrEmpty print a value the run did not measure
// (the ring's matching row did not run) as a dash.
func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func nsOrDash(v int64) string {
	if v == 0 {
		return "–"
	}
	return ns(v)
}

func fpsOrEmpty(v float64) string {
	if v == 0 {
		return ""
	}
	return fps(v)
}
