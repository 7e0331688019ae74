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
	var w mdWriter
	for _, section := range []func(*mdWriter, *Report){mdMachine, mdTargets, mdFloor, mdLatency, mdThroughput, mdBaselines,
		mdMemcpy, mdScale, mdIceoryx, mdGStreamer, mdEBPF, mdNotes} {
		section(&w, rep)
	}
	return w.String()
}

// mdWriter collects results.md; p appends formatted text.
type mdWriter struct{ strings.Builder }

func (w *mdWriter) p(format string, a ...any) { fmt.Fprintf(&w.Builder, format, a...) }

// mdMachine writes the machine the run measured.
func mdMachine(w *mdWriter, rep *Report) {
	m := rep.Machine
	w.p("# framering bench (%s)\n\n", rep.Config.Mode)
	w.p("| machine | |\n|---|---|\n")
	w.p("| CPU | %s |\n| cores | %d (GOMAXPROCS %d) |\n| kernel | %s |\n| Go | %s %s |\n| LLC (sysfs) | %s |\n",
		m.CPUModel, m.Cores, m.GOMAXPROCS, m.Kernel, m.GoVersion, m.GOARCH, sizeName(int(m.LLCBytes)))
	if pr := m.LLCProbe; pr != nil {
		eff, src, atLeast := m.effectiveLLC()
		w.p("| LLC (measured) | %s: the largest working set the producer's fill writes at ≥ %.0f%% of its small-set %.1f GB/s |\n",
			llcName(pr.EffectiveBytes, pr.AtLeast), 100*pr.Fraction, pr.PlateauGBps)
		w.p("| LLC working sets are judged against | %s %s |\n", src, llcName(eff, atLeast))
		pts := make([]string, len(pr.Curve))
		for i, pt := range pr.Curve {
			pts[i] = fmt.Sprintf("%s %.1f", sizeName(int(pt.Bytes)), pt.FillGBps)
		}
		w.p("| fill GB/s by working set | %s |\n", strings.Join(pts, ", "))
	}
	w.p("| memory | %.1f GiB |\n| date | %s |\n| took | %s |\n\n",
		float64(m.MemBytes)/(1<<30), m.Date.Format("2006-01-02 15:04:05 MST"), rep.Finished.Sub(rep.Started).Round(1e8))
}

// mdTargets writes each target, met or not.
func mdTargets(w *mdWriter, rep *Report) {
	w.p("## Targets\n\n")
	for _, t := range rep.Targets {
		v := "NOT EVALUATED"
		if t.Met != nil && *t.Met {
			v = "met"
		} else if t.Met != nil {
			v = "NOT MET"
		}
		w.p("- **%s**: %s — %s\n", v, t.Name, t.Detail)
	}
	w.p("\n")
}

// mdFloor writes the cache-line and futex ping floors.
func mdFloor(w *mdWriter, rep *Report) {
	if rep.Ping != nil {
		pg := rep.Ping
		w.p("## Floor: two-process cache-line ping (no ring)\n\n")
		w.p("| | samples | p50 | p99 | p99.9 | max |\n|---|---|---|---|---|---|\n")
		w.p("| one-way (clock to clock) | %d | %s | %s | %s | %s |\n", pg.OneWay.Count, ns(pg.OneWay.P50), ns(pg.OneWay.P99), ns(pg.OneWay.P999), ns(pg.OneWay.Max))
		w.p("| round trip / 2 | %d | %s | %s | %s | %s |\n", pg.HalfRTT.Count, ns(pg.HalfRTT.P50), ns(pg.HalfRTT.P99), ns(pg.HalfRTT.P999), ns(pg.HalfRTT.Max))
		if fp := rep.FutexPing; fp != nil {
			w.p("| C futex ping: FUTEX_WAKE → woken process's clock, same pacing (%d of %d delivered; other load %.2f cores) | %d | %s | %s | %s | %s |\n",
				fp.OneWay.Count, fp.Sent, fp.OtherLoad, fp.OneWay.Count, ns(fp.OneWay.P50), ns(fp.OneWay.P99), ns(fp.OneWay.P999), ns(fp.OneWay.Max))
		}
		w.p("\n")
	}
}

// mdLatency writes the handoff latency rows.
func mdLatency(w *mdWriter, rep *Report) {
	if len(rep.Latency) > 0 {
		w.p("## Handoff latency (publish → consumer sees the lease, one consumer, paced)\n\n")
		w.p("Floor: the same run's limit probe for the wait — the cache-line ping for busy-poll, the C futex ping (same pacing) for the futex waits.\n\n")
		w.p("| payload | consumer wait | frames | p50 | p99 | p99.9 | max | floor | floor p50 / p99 / p99.9 | p50/floor | p99/floor | publish p50 | producer CPU/frame | consumer CPU/frame | allocs/frame P/C | note |\n")
		w.p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
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
			w.p("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s |\n", sizeName(r.Payload), r.Wait, r.Latency.Count,
				ns(r.Latency.P50), ns(r.Latency.P99), ns(r.Latency.P999), ns(r.Latency.Max), fname, fl, rel, rel99, ns(r.Publish.P50),
				nsf(r.Producer.CPUPerFrameNs), nsf(cc), allocs(r.Producer.AllocsPerFrame), allocs(ca), r.Warning)
		}
		if bd := rep.Breakdown; bd != nil {
			w.p("\nBusy-poll handoff at %s with Next taken apart (Wait, then Borrow; no counters published): visible to Wait p50 %s p99 %s; Borrow p50 %s p99 %s; leased p50 %s p99 %s (other load %.2f cores).\n",
				sizeName(bd.Payload), ns(bd.Seen.P50), ns(bd.Seen.P99), ns(bd.Borrow.P50), ns(bd.Borrow.P99), ns(bd.Leased.P50), ns(bd.Leased.P99), bd.OtherLoad)
		}
		w.p("\nProducer CPU per frame includes writing every byte of the frame; a busy-polling consumer's CPU per frame is a whole core divided by the frame rate.\n\n")
	}
}

// mdThroughput writes the throughput rows.
func mdThroughput(w *mdWriter, rep *Report) {
	if len(rep.Throughput) > 0 {
		w.p("## Throughput (producer writes every byte, flat out)\n\n")
		w.p("Rates are frames per second delivered to each consumer (mean; lossless: equal to the producer's). Ratios compare with the same frames over a Unix stream socket and a pipe to as many receivers, whose receivers do read() only (`lease` rows) or read() and checksum (`sum` rows). Fill limit: the producer's fill bandwidth on one core divided by the frame size.\n\n")
		w.p("Producer waits: share of the window the producer spent waiting for a free slot (lossless backpressure; the ring has no blocking wait for it, so the producer spins 1 ms, then sleeps).\n\n")
		w.p("Read: `lease` takes the lease only; `words` reads every byte with a memory-bound word sum (eight independent accumulators); `sum` checksums every byte with frame.Sum64 and checks the stamp (integrity, a serial chain). Slots: the ring's slot count and its payload working set against the last-level cache: the measured one when the probe found it smaller than sysfs reports (machine table), the label says which.\n\n")
		w.p("| payload | consumers | mode | read | slots | fps | GB/s | producer fps | socket fps | ring/socket | pipe fps | ring/pipe | fill limit fps | producer CPU/frame | producer waits | consumer CPU/frame | allocs/frame P/C | sent / received | lost | note |\n")
		w.p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
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
			w.p("| %s | %d | %s | %s | %d (%s) | %s | %.2f | %s | %s | %s | %s | %s | %s | %s | %.0f%% | %s | %s / %s | %d / %s | %d | %s |\n",
				sizeName(r.Payload), r.Consumers, r.Mode, r.Read, r.Slots, r.WorkingSet, fps(r.FPS), r.GBps, fps(r.ProducerFPS),
				fps(r.SocketFPS), ratio(r.VsSocket), fps(r.PipeFPS), ratio(r.VsPipe), fps(r.FillLimitFPS),
				nsf(r.Producer.CPUPerFrameNs), 100*r.Producer.Blocked, nsf(cc), allocs(r.Producer.AllocsPerFrame), allocs(ca),
				r.Sent, strings.Join(rcv, ","), r.Lost, note)
		}
		w.p("\n")
	}
}

// mdBaselines writes the copying transports.
func mdBaselines(w *mdWriter, rep *Report) {
	if len(rep.Baselines) > 0 {
		w.p("## Baselines (copying transports; sender fills every byte, receivers read every byte)\n\n")
		w.p("| transport | payload | receivers | receiver | fps | GB/s | sender CPU/frame | receiver CPU/frame | allocs/frame S/R | sent / received | note |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
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
			w.p("| %s | %s | %d | %s | %s | %.2f | %s | %s | %s / %s | %d / %s | %s |\n", r.Transport, sizeName(r.Payload), r.Receivers, read,
				fps(r.FPS), r.GBps, nsf(r.Sender.CPUPerFrameNs), nsf(rc), allocs(r.Sender.AllocsPerFrame), allocs(ra), r.Sent, strings.Join(rcv, ","), note)
		}
		w.p("\n")
	}
}

// mdMemcpy writes the memory bandwidth limit.
func mdMemcpy(w *mdWriter, rep *Report) {
	if len(rep.Memcpy) > 0 {
		w.p("## Physical limit: single-core memory bandwidth (buffers larger than the LLC)\n\n")
		w.p("| payload | copy GB/s | copy-limited fps | fill GB/s | fill-limited fps |\n|---|---|---|---|---|\n")
		for _, r := range rep.Memcpy {
			w.p("| %s | %.2f | %s | %.2f | %s |\n", sizeName(r.Payload), r.CopyGBps, fps(r.CopyFPS), r.FillGBps, fps(r.FillFPS))
		}
		w.p("\n")
	}
}

// mdScale writes the many-consumer rows.
func mdScale(w *mdWriter, rep *Report) {
	if len(rep.Scale) > 0 {
		w.p("## Scale (paced frames, lossy consumers)\n\n")
		w.p("Last awake: per frame every consumer took, publish → the last consumer holds the lease (frames counted in brackets). Producer CPU/frame: all threads of the producer process.\n\n")
		w.p("| consumers | wait | payload | frames | publish p50 | publish p99 | latency p50 | p99 | p99.9 | max | last awake p50 | last awake p99 | worst consumer p99 | producer CPU/frame | consumer CPU/frame | max allocs/frame | lost | note |\n")
		w.p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range rep.Scale {
			w.p("| %d | %s | %s | %d | %s | %s | %s | %s | %s | %s | %s (%d) | %s | %s | %s | %s | %s | %d | %s |\n", r.Consumers, r.Wait, sizeName(r.Payload), r.Frames,
				ns(r.Publish.P50), ns(r.Publish.P99), ns(r.Latency.P50), ns(r.Latency.P99), ns(r.Latency.P999), ns(r.Latency.Max),
				ns(r.LastAwake.P50), r.AllSaw, ns(r.LastAwake.P99),
				ns(r.WorstP99), nsf(r.Producer.CPUPerFrameNs), nsf(r.ConsumerCPU), allocs(r.MaxAllocs), r.Lost, r.Warning)
		}
		w.p("\n")
	}
}

// mdIceoryx writes the iceoryx baseline.
func mdIceoryx(w *mdWriter, rep *Report) {
	if len(rep.Iceoryx) > 0 {
		w.p("## Eclipse iceoryx 2.0.3 (C binding, loaned chunks, RouDi started by the bench), beside the ring\n\n")
		w.p("| latency | payload | buffers | samples | lost | iceoryx p50 | p99 | p99.9 | ring (same run) | ring p50 | ring p99 | ring/iceoryx p50 |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range rep.Iceoryx {
			if r.Kind == "latency" {
				w.p("| %s | %s | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s |\n", r.Wait, sizeName(r.Payload), r.Buffers, r.Latency.Count, r.Lost,
					ns(r.Latency.P50), ns(r.Latency.P99), ns(r.Latency.P999), orDash(r.RingWait), nsOrDash(r.RingP50), nsOrDash(r.RingP99), ratio(r.Ratio))
			}
		}
		w.p("\n| throughput (1 busy-polling subscriber, lossless) | payload | buffers | frames | fps | GB/s | ring fps (same read, slots) | ring/iceoryx |\n|---|---|---|---|---|---|---|---|\n")
		for _, r := range rep.Iceoryx {
			if r.Kind == "throughput" {
				w.p("| %s | %s | %d | %d | %s | %.2f | %s | %s |\n", r.Read, sizeName(r.Payload), r.Buffers, r.Received, fps(r.FPS), r.GBps, orDash(fpsOrEmpty(r.RingFPS)), ratio(r.Ratio))
			}
		}
		w.p("\n")
	}
}

// mdGStreamer writes the GStreamer rows.
func mdGStreamer(w *mdWriter, rep *Report) {
	if len(rep.GStreamer) > 0 {
		w.p("## GStreamer shmsink → shmsrc (videotestsrc frames, fakesink consumer), and framesrc\n\n")
		w.p("| payload | geometry | shmsrc buffers | shmsrc fps | GB/s | shmsrc CPU/frame | framesrc buffers | framesrc fps | framesrc/shmsrc | framesrc CPU/frame | ring fps (1 lossless lease consumer) | ring/shmsrc | note |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
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
			w.p("| %s | %dx%d | %d / %d | %s | %.2f | %s | %s | %s | %s | %s | %s | %s | %s |\n", sizeName(r.Payload), r.Width, r.Height,
				r.Received, r.Sent, fps(r.FPS), r.GBps, ns(int64(r.CPUPerFrameNs)), fr, ffps, ratio(r.VsShm), fcpu, ring, ratio(r.VsRing), note)
		}
		w.p("\n")
	}
}

// mdEBPF writes the eBPF split of a wake-up.
func mdEBPF(w *mdWriter, rep *Report) {
	if e := rep.EBPF; e != nil && e.Skipped == "" {
		w.p("## Futex wake-up, split with eBPF (%s, one futex consumer locked to its thread; %d wake-ups traced; other load %.2f cores)\n\n", sizeName(e.Payload), e.Wakeups, e.OtherLoad)
		w.p("| part | count | p50 | p99 | max |\n|---|---|---|---|---|\n")
		w.p("| sched_waking → sched_wakeup (wake reaches the run queue) | %d | %s | %s | %s |\n", e.WakingToWakeup.Count, ns(e.WakingToWakeup.P50), ns(e.WakingToWakeup.P99), ns(e.WakingToWakeup.Max))
		w.p("| sched_wakeup → sched_switch (run-queue delay) | %d | %s | %s | %s |\n", e.RunQueue.Count, ns(e.RunQueue.P50), ns(e.RunQueue.P99), ns(e.RunQueue.Max))
		w.p("| whole handoff (publish timestamp → lease) | %d | %s | %s | %s |\n", e.Total.Count, ns(e.Total.P50), ns(e.Total.P99), ns(e.Total.Max))
		w.p("| rest (p50 difference: Publish and FUTEX_WAKE up to the wake, syscall return, Wait, Borrow) | | %s | | |\n\n", ns(e.RestP50))
		if e.Note != "" {
			w.p("%s\n\n", e.Note)
		}
	}
}

// mdNotes writes what was skipped, warned about or failed.
func mdNotes(w *mdWriter, rep *Report) {
	if len(rep.Skipped) > 0 {
		w.p("## Skipped\n\n")
		for _, s := range rep.Skipped {
			w.p("- %s\n", s)
		}
		w.p("\n")
	}
	if len(rep.Warnings) > 0 {
		w.p("## Warnings\n\n")
		for _, s := range rep.Warnings {
			w.p("- %s\n", s)
		}
		w.p("\n")
	}
	if len(rep.Errors) > 0 {
		w.p("## Failed scenarios\n\n")
		for _, s := range rep.Errors {
			w.p("- %s\n", s)
		}
		w.p("\n")
	}
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
