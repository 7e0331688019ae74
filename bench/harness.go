package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/framering/framering/shm"
)

type harness struct {
	cfg Config
	log *slog.Logger
	dir string // sockets of this run
	rep *Report
	n   int
	// baselines already measured, by key
	base map[baseKey]*BaselineRow
}

type baseKey struct {
	transport string
	payload   int
	receivers int
	read      string
}

// Run runs the harness: every section cfg selects, each scenario as
// separate processes. It writes results.json, results.md and latency.png
// into cfg.OutDir and the markdown to cfg.Out. A scenario that fails is
// recorded in Report.Errors and the run goes on; Run returns an error only
// when it cannot run or write at all, or ctx ends.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("run bench: %w", err)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.OutDir == "" {
		cfg.OutDir = filepath.Join("bench-results", time.Now().Format("20060102-150405"))
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("run bench: %w", err)
	}
	dir, err := os.MkdirTemp("", "frbench-")
	if err != nil {
		return nil, fmt.Errorf("run bench: %w", err)
	}
	defer os.RemoveAll(dir)
	h := &harness{cfg: cfg, log: cfg.Log, dir: dir, base: map[baseKey]*BaselineRow{},
		rep: &Report{Machine: describeMachine(), Config: cfg, Started: time.Now()}}
	m := h.rep.Machine
	h.log.Info("frbench", "mode", cfg.Mode, "cpu", m.CPUModel, "cores", m.Cores, "kernel", m.Kernel, "go", m.GoVersion, "out", cfg.OutDir)
	if m.Cores <= 2 {
		h.warn(fmt.Sprintf("this machine has %d cores: a producer and one busy-polling consumer already keep every core busy; scenarios with more busy processes than cores are marked, and their latency and throughput include time-sharing", m.Cores))
	}
	sections := []struct {
		name string
		run  func(context.Context)
	}{
		{SectionMemcpy, h.memcpy}, {SectionPing, h.ping}, {SectionLatency, h.latency},
		{SectionThroughput, h.throughput}, {SectionIceoryx, h.iceoryx}, {SectionScale, h.scale}, {SectionGStreamer, h.gstreamer}, {SectionEBPF, h.ebpf},
	}
	for _, s := range sections {
		if ctx.Err() != nil {
			break
		}
		if !cfg.runs(s.name) {
			continue
		}
		t := time.Now()
		h.log.Info("section", "name", s.name)
		s.run(ctx)
		h.log.Info("section done", "name", s.name, "took", time.Since(t).Round(time.Millisecond))
	}
	h.rep.Finished = time.Now()
	h.rep.Targets = evaluateTargets(h.rep)
	if err := h.write(); err != nil {
		return h.rep, err
	}
	if ctx.Err() != nil {
		return h.rep, fmt.Errorf("run bench: %w", ctx.Err())
	}
	return h.rep, nil
}

func (h *harness) write() error {
	b, err := json.MarshalIndent(h.rep, "", "  ")
	if err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(h.cfg.OutDir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	md := Markdown(h.rep)
	if err := os.WriteFile(filepath.Join(h.cfg.OutDir, "results.md"), []byte(md), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if len(h.rep.Latency) > 0 {
		if err := writePlot(h.rep, filepath.Join(h.cfg.OutDir, "latency.png")); err != nil {
			h.log.Warn("no latency plot", "err", err)
		}
	}
	if h.cfg.Out != nil {
		if _, err := fmt.Fprint(h.cfg.Out, md); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
	}
	return nil
}

func (h *harness) warn(s string) {
	h.rep.Warnings = append(h.rep.Warnings, s)
	h.log.Warn(s)
}

func (h *harness) fail(scenario string, err error) {
	h.rep.Errors = append(h.rep.Errors, fmt.Sprintf("%s: %v", scenario, err))
	h.log.Error("scenario failed", "scenario", scenario, "err", err)
}

func (h *harness) sockPath(kind string) string {
	h.n++
	return filepath.Join(h.dir, fmt.Sprintf("%s%d.sock", kind, h.n))
}

// capFor is a child's wall-clock cap for a measured loop of d.
func (h *harness) capFor(d time.Duration) int64 { return int64(d + h.cfg.Setup) }

func (h *harness) oversubscribed(busy int) string {
	if c := h.rep.Machine.Cores; busy > c {
		return fmt.Sprintf("oversubscribed: %d busy processes on %d cores", busy, c)
	}
	return ""
}

func (h *harness) memcpy(ctx context.Context) {
	var sizes []int
	for _, s := range slices.Concat(h.cfg.Payloads, h.cfg.SweepPayloads, []int{h.cfg.ThroughputPayload}) {
		if !slices.Contains(sizes, s) {
			sizes = append(sizes, s)
		}
	}
	slices.Sort(sizes)
	buf := max(4*h.rep.Machine.LLCBytes, 64*MiB)
	d := h.cfg.MemcpyDuration
	p := params{Role: roleMemcpy, Sizes: sizes, BufBytes: int(buf), DurationNs: int64(d),
		CapNs: h.capFor(time.Duration(2*len(sizes)) * d)}
	res, err := h.runGroup(ctx, group{label: "memcpy", procs: []proc{{p: p}}})
	if err != nil {
		h.fail("memcpy", err)
		return
	}
	for _, pt := range res[0].Memcpy {
		h.rep.Memcpy = append(h.rep.Memcpy, MemcpyRow{Payload: pt.Payload, CopyGBps: pt.CopyGBps, FillGBps: pt.FillGBps,
			CopyFPS: pt.CopyGBps * 1e9 / float64(pt.Payload), FillFPS: pt.FillGBps * 1e9 / float64(pt.Payload)})
	}
}

func (h *harness) ping(ctx context.Context) {
	seg, err := shm.CreateSegment("frbench-ping", pingSize, shm.SegmentOptions{Prefault: true, Logger: h.log})
	if err != nil {
		h.fail("ping", err)
		return
	}
	defer seg.Close()
	d := time.Duration(h.cfg.PingFrames) * (h.cfg.PingInterval + 500*time.Microsecond)
	common := params{Frames: h.cfg.PingFrames, Warmup: 50, DurationNs: int64(d), IntervalNs: int64(h.cfg.PingInterval), CapNs: h.capFor(d)}
	rx, tx := common, common
	rx.Role, tx.Role = rolePingReceiver, rolePingSender
	res, st, err := h.runGroupStat(ctx, group{label: "ping", procs: []proc{{p: rx, files: []*os.File{seg.File()}}, {p: tx, files: []*os.File{seg.File()}}}})
	if err != nil {
		h.fail("ping", err)
		return
	}
	lat, err1 := decodeHist(res[0].Lat)
	rtt, err2 := decodeHist(res[1].RTT)
	if err := errors.Join(err1, err2); err != nil {
		h.fail("ping", err)
		return
	}
	half := percentiles(rtt)
	half.Mean /= 2
	half.P50, half.P99, half.P999, half.Max = half.P50/2, half.P99/2, half.P999/2, half.Max/2
	h.rep.Ping = &PingRow{OneWay: percentiles(lat), HalfRTT: half, Receiver: procStat(res[0]), Sender: procStat(res[1]), OtherLoad: st.otherCores}
	if _, w := h.loadNote(st, ""); w != "" {
		h.warn("ping: " + w)
	}
	if slices.ContainsFunc(h.cfg.LatencyWaits, func(w string) bool { return w == WaitFutex || w == WaitLatency || w == WaitEarly }) {
		h.futexPing(ctx)
	}
}

// ringRun runs one ring scenario: a producer and n consumers.
func (h *harness) ringRun(ctx context.Context, label string, prod params, cons params, n int) (result, []result, groupStat, error) {
	return h.ringRunHook(ctx, label, prod, cons, n, nil)
}

func (h *harness) ringRunHook(ctx context.Context, label string, prod params, cons params, n int, onStart func(params, int)) (result, []result, groupStat, error) {
	path := h.sockPath("ring")
	prod.Role, prod.Path, prod.Consumers, prod.HugePages = roleRingProducer, path, n, h.cfg.HugePages
	cons.Role, cons.Path, cons.Payload = roleRingConsumer, path, prod.Payload
	// A consumer outlives its producer's cap: the producer's close ends it.
	cons.CapNs = prod.CapNs + int64(h.cfg.Grace)/2
	procs := []proc{{p: prod}}
	for i := 0; i < n; i++ {
		c := cons
		c.Index = i
		procs = append(procs, proc{p: c})
	}
	res, st, err := h.runGroupStat(ctx, group{label: label, procs: procs, onStart: onStart})
	if err != nil {
		return result{}, nil, st, err
	}
	return res[0], res[1:], st, nil
}

func (h *harness) latency(ctx context.Context) {
	for _, payload := range h.cfg.Payloads {
		for _, wait := range h.cfg.LatencyWaits {
			if ctx.Err() != nil {
				return
			}
			label := fmt.Sprintf("latency %s %s", sizeName(payload), wait)
			d := h.cfg.LatencyDuration
			prod := params{Payload: payload, Slots: 4, Frames: h.cfg.LatencyFrames, Warmup: h.cfg.LatencyWarmup,
				DurationNs: int64(d), IntervalNs: int64(h.cfg.LatencyInterval), CapNs: h.capFor(d)}
			cons := params{Mode: "lossy", Wait: wait, Read: ReadLease}
			h.log.Info("scenario", "name", label)
			pr, cs, st, err := h.ringRun(ctx, label, prod, cons, 1)
			if err != nil {
				h.fail(label, err)
				continue
			}
			row, err := latencyRow(payload, wait, pr, cs)
			if err != nil {
				h.fail(label, err)
				continue
			}
			switch {
			case wait != WaitPoll && h.rep.FutexPing != nil:
				// A sleeping consumer's floor is a futex wake-up.
				fp := h.rep.FutexPing.OneWay
				row.FloorP50, row.FloorP99, row.FloorP999, row.Floor = fp.P50, fp.P99, fp.P999, "C futex ping"
			case h.rep.Ping != nil:
				pg := h.rep.Ping.OneWay
				row.FloorP50, row.FloorP99, row.FloorP999, row.Floor = pg.P50, pg.P99, pg.P999, "cache-line ping"
			}
			if wait == WaitPoll {
				row.Warning = h.oversubscribed(2)
			}
			row.OtherLoad, row.Warning = h.loadNote(st, row.Warning)
			h.rep.Latency = append(h.rep.Latency, row)
		}
	}
	if slices.Contains(h.cfg.LatencyWaits, WaitPoll) {
		h.breakdown(ctx)
	}
}

// breakdown runs the busy-poll handoff at the smallest payload once more
// with Wait and Borrow timed apart.
func (h *harness) breakdown(ctx context.Context) {
	if len(h.cfg.Payloads) == 0 || ctx.Err() != nil {
		return
	}
	payload := slices.Min(h.cfg.Payloads)
	label := "latency breakdown " + sizeName(payload)
	h.log.Info("scenario", "name", label)
	d := h.cfg.LatencyDuration
	prod := params{Payload: payload, Slots: 4, Frames: h.cfg.LatencyFrames, Warmup: h.cfg.LatencyWarmup,
		DurationNs: int64(d), IntervalNs: int64(h.cfg.LatencyInterval), CapNs: h.capFor(d)}
	cons := params{Mode: "lossy", Wait: WaitPoll, Read: ReadLease, Split: true}
	_, cs, st, err := h.ringRun(ctx, label, prod, cons, 1)
	if err != nil {
		h.fail(label, err)
		return
	}
	seen, err1 := decodeHist(cs[0].Seen)
	borrow, err2 := decodeHist(cs[0].Borrow)
	lat, err3 := decodeHist(cs[0].Lat)
	if err := errors.Join(err1, err2, err3); err != nil {
		h.fail(label, err)
		return
	}
	h.rep.Breakdown = &BreakdownRow{Payload: payload, Seen: percentiles(seen), Borrow: percentiles(borrow),
		Leased: percentiles(lat), OtherLoad: st.otherCores}
}

func latencyRow(payload int, wait string, pr result, cs []result) (LatencyRow, error) {
	row := LatencyRow{Payload: payload, Wait: wait, Producer: procStat(pr)}
	pub, err1 := decodeHist(pr.Pub)
	acq, err2 := decodeHist(pr.Acq)
	if err := errors.Join(err1, err2); err != nil {
		return row, err
	}
	row.Publish, row.Acquire = percentiles(pub), percentiles(acq)
	lat, err := mergeLat(cs)
	if err != nil {
		return row, err
	}
	row.Latency = percentiles(lat)
	for _, c := range cs {
		row.Consumers = append(row.Consumers, procStat(c))
	}
	return row, nil
}

func mergeLat(rs []result) (*hdr.Histogram, error) {
	all := newHist()
	for _, r := range rs {
		h, err := decodeHist(r.Lat)
		if err != nil {
			return nil, err
		}
		all.Merge(h)
	}
	return all, nil
}

type tputItem struct {
	payload, consumers int
	mode, read         string
	slots              int // 0: the default, max(8, 2*consumers+2)
}

func (it tputItem) slotCount() int {
	if it.slots > 0 {
		return it.slots
	}
	return max(8, 2*it.consumers+2)
}

func (h *harness) throughputPlan() []tputItem {
	var plan []tputItem
	add := func(it tputItem) {
		if !slices.Contains(plan, it) {
			plan = append(plan, it)
		}
	}
	for _, n := range h.cfg.ThroughputConsumers {
		for _, m := range h.cfg.ThroughputModes {
			for _, r := range h.cfg.ThroughputReads {
				add(tputItem{h.cfg.ThroughputPayload, n, m, r, 0})
			}
		}
	}
	for _, p := range h.cfg.SweepPayloads {
		for _, r := range h.cfg.ThroughputReads {
			add(tputItem{p, 1, "lossless", r, 0})
		}
	}
	// Lease-only rows measure the producer's fill across every slot: at
	// the default slot count the working set of a large payload exceeds
	// the last-level cache, so add the same row at a slot count whose
	// working set fits it (labelled in the table). The cache is the
	// effective one: measured, when the probe found it smaller than sysfs
	// says.
	l, _, _ := h.rep.Machine.effectiveLLC()
	llc := int(l)
	if llc > 0 && slices.Contains(h.cfg.ThroughputReads, ReadLease) {
		for _, p := range slices.Concat([]int{h.cfg.ThroughputPayload}, h.cfg.SweepPayloads) {
			it := tputItem{p, 1, "lossless", ReadLease, 0}
			fit := max(3, llc*3/4/p)
			if it.slotCount()*p > llc && fit*p <= llc {
				it.slots = fit
				add(it)
			}
		}
	}
	return plan
}

// probeCache measures the effective last-level cache (cache.go) into the
// machine description, once.
func (h *harness) probeCache(ctx context.Context) {
	m := &h.rep.Machine
	if m.LLCProbe != nil {
		return
	}
	sizes := h.cfg.CacheSizes
	if sizes == nil {
		inner, llc := sysfsCaches()
		sizes = cacheSizes(inner, llc)
	}
	// Its cap: every set's time, and its passes (a warm-up per sweep and
	// the rounds) at 1 GB/s.
	var total int64
	for _, s := range sizes {
		total += int64(s)
	}
	d := time.Duration(len(sizes))*h.cfg.CacheDuration + time.Duration(total*(cacheSweeps+cacheRounds))
	p := params{Role: roleCache, Sizes: sizes, DurationNs: int64(h.cfg.CacheDuration), CapNs: h.capFor(d)}
	h.log.Info("scenario", "name", "cache probe")
	res, err := h.runGroup(ctx, group{label: "cache probe", procs: []proc{{p: p}}})
	if err != nil {
		h.fail("cache probe", err)
		return
	}
	pr := cacheKnee(res[0].Cache, cacheFraction)
	m.LLCProbe = &pr
	eff, src, _ := m.effectiveLLC()
	h.log.Info("effective LLC", "sysfs", sizeName(int(m.LLCBytes)), "measured", llcName(pr.EffectiveBytes, pr.AtLeast),
		"plateau_gbps", fmt.Sprintf("%.1f", pr.PlateauGBps), "judged_against", src+" "+sizeName(int(eff)))
}

func (h *harness) throughput(ctx context.Context) {
	h.probeCache(ctx)
	for _, it := range h.throughputPlan() {
		if ctx.Err() != nil {
			return
		}
		label := fmt.Sprintf("throughput %s x%d %s %s %d slots", sizeName(it.payload), it.consumers, it.mode, it.read, it.slotCount())
		h.log.Info("scenario", "name", label)
		d := h.cfg.ThroughputDuration
		prod := params{Payload: it.payload, Slots: it.slotCount(), Frames: h.cfg.ThroughputFrames,
			Warmup: h.cfg.ThroughputWarmup, DurationNs: int64(d), CapNs: h.capFor(d)}
		cons := params{Mode: it.mode, Wait: WaitSpin, Read: it.read}
		pr, cs, st, err := h.ringRun(ctx, label, prod, cons, it.consumers)
		if err != nil {
			h.fail(label, err)
			continue
		}
		row, err := throughputRow(it, pr, cs)
		if err != nil {
			h.fail(label, err)
			continue
		}
		row.WorkingSet = workingSet(it.slotCount()*it.payload, h.rep.Machine)
		row.OtherLoad, row.Warning = h.loadNote(st, h.oversubscribed(it.consumers+1))
		for _, mc := range h.rep.Memcpy {
			if mc.Payload == it.payload {
				row.FillLimitFPS = mc.FillFPS
			}
		}
		for _, tr := range h.cfg.Baselines {
			b := h.baseline(ctx, baseKey{tr, it.payload, it.consumers, it.read})
			if b == nil || b.FPS == 0 {
				continue
			}
			switch tr {
			case TransportSocket:
				row.SocketFPS, row.VsSocket = b.FPS, row.FPS/b.FPS
			case TransportPipe:
				row.PipeFPS, row.VsPipe = b.FPS, row.FPS/b.FPS
			}
		}
		h.rep.Throughput = append(h.rep.Throughput, row)
	}
}

// workingSet labels a ring's payload working set against the machine's
// effective LLC, saying which size that is (measured or sysfs).
func workingSet(bytes int, m Machine) string {
	llc, src, atLeast := m.effectiveLLC()
	switch {
	case llc <= 0:
		return sizeName(bytes)
	case int64(bytes) <= llc:
		return fmt.Sprintf("%s, fits %s LLC %s", sizeName(bytes), src, llcName(llc, atLeast))
	case atLeast:
		return fmt.Sprintf("%s, beyond the largest set the LLC probe filled (%s)", sizeName(bytes), sizeName(int(llc)))
	}
	return fmt.Sprintf("%s, exceeds %s LLC %s", sizeName(bytes), src, sizeName(int(llc)))
}

// llcName is a cache size, "≥" before it when it is a lower bound.
func llcName(bytes int64, atLeast bool) string {
	if atLeast {
		return "≥" + sizeName(int(bytes))
	}
	return sizeName(int(bytes))
}

func throughputRow(it tputItem, pr result, cs []result) (ThroughputRow, error) {
	row := ThroughputRow{Payload: it.payload, Consumers: it.consumers, Mode: it.mode, Read: it.read, Slots: it.slotCount(),
		Sent: pr.Frames, ProducerFPS: rate(pr), NoSlot: pr.NoSlot, Producer: procStat(pr)}
	pub, err := decodeHist(pr.Pub)
	if err != nil {
		return row, err
	}
	row.Publish = percentiles(pub)
	lat, err := mergeLat(cs)
	if err != nil {
		return row, err
	}
	row.Latency = percentiles(lat)
	for i, c := range cs {
		st := procStat(c)
		row.ConsumerStat = append(row.ConsumerStat, st)
		row.Received = append(row.Received, c.Frames)
		row.FPS += st.FPS
		if i == 0 || st.FPS < row.MinFPS {
			row.MinFPS = st.FPS
		}
		row.Lost += c.Skipped + c.Missed
		row.Corrupt += c.Corrupt
	}
	if len(cs) > 0 {
		row.FPS /= float64(len(cs))
	}
	row.GBps = row.FPS * float64(it.payload) / 1e9
	return row, nil
}

// baseline measures (once) a copying transport for a ring row.
func (h *harness) baseline(ctx context.Context, k baseKey) *BaselineRow {
	if b, ok := h.base[k]; ok {
		return b
	}
	h.base[k] = nil // measured once, even when it fails
	label := fmt.Sprintf("baseline %s %s x%d %s", k.transport, sizeName(k.payload), k.receivers, k.read)
	h.log.Info("scenario", "name", label)
	d := h.cfg.ThroughputDuration
	tx := params{Role: roleStreamSender, Transport: k.transport, Payload: k.payload, Consumers: k.receivers,
		Frames: h.cfg.ThroughputFrames, Warmup: h.cfg.ThroughputWarmup, DurationNs: int64(d), CapNs: h.capFor(d)}
	rx := params{Role: roleStreamReceiver, Transport: k.transport, Payload: k.payload, Read: k.read, CapNs: tx.CapNs + int64(h.cfg.Grace)/2}
	g := group{label: label}
	var readEnds, writeEnds []*os.File
	switch k.transport {
	case TransportSocket:
		tx.Path = h.sockPath("stream") // receiver i listens on Path.i
		rx.Path = tx.Path
	case TransportPipe:
		for i := 0; i < k.receivers; i++ {
			r, w, err := os.Pipe()
			if err != nil {
				h.fail(label, err)
				for _, f := range slices.Concat(readEnds, writeEnds) {
					f.Close()
				}
				return nil
			}
			readEnds, writeEnds = append(readEnds, r), append(writeEnds, w)
			g.closeAfterStart = append(g.closeAfterStart, r, w)
		}
	}
	for i := 0; i < k.receivers; i++ {
		p := rx
		p.Index = i
		pr := proc{p: p}
		if readEnds != nil {
			pr.files = []*os.File{readEnds[i]}
		}
		g.procs = append(g.procs, pr)
	}
	g.procs = append(g.procs, proc{p: tx, files: writeEnds})
	res, st, err := h.runGroupStat(ctx, g)
	if err != nil {
		h.fail(label, err)
		return nil
	}
	snd := res[len(res)-1]
	row := &BaselineRow{Transport: k.transport, Payload: k.payload, Receivers: k.receivers, Read: k.read,
		Sent: snd.Frames, Sender: procStat(snd), Warning: h.oversubscribed(k.receivers + 1)}
	for _, r := range res[:len(res)-1] {
		st := procStat(r)
		row.Receiver = append(row.Receiver, st)
		row.Received = append(row.Received, r.Frames)
		row.FPS += st.FPS
		row.Corrupt += r.Corrupt
	}
	row.FPS /= float64(k.receivers)
	row.OtherLoad, row.Warning = h.loadNote(st, row.Warning)
	row.GBps = row.FPS * float64(k.payload) / 1e9
	h.base[k] = row
	h.rep.Baselines = append(h.rep.Baselines, *row)
	return row
}

func (h *harness) scale(ctx context.Context) {
	for _, wait := range h.cfg.ScaleWaits {
		for _, n := range h.cfg.ScaleConsumers {
			if ctx.Err() != nil {
				return
			}
			label := fmt.Sprintf("scale x%d %s", n, wait)
			h.log.Info("scenario", "name", label)
			d := h.cfg.ScaleDuration
			prod := params{Payload: h.cfg.ScalePayload, Slots: 2*n + 4, Frames: h.cfg.ScaleFrames, Warmup: 20,
				DurationNs: int64(d), IntervalNs: int64(h.cfg.ScaleInterval), CapNs: h.capFor(d)}
			cons := params{Mode: "lossy", Wait: wait, Read: ReadLease, PerFrame: true, Frames: h.cfg.ScaleFrames}
			pr, cs, st, err := h.ringRun(ctx, label, prod, cons, n)
			if err != nil {
				h.fail(label, err)
				continue
			}
			row := ScaleRow{Consumers: n, Wait: wait, Payload: h.cfg.ScalePayload, Frames: pr.Frames, Producer: procStat(pr)}
			pub, err := decodeHist(pr.Pub)
			if err != nil {
				h.fail(label, err)
				continue
			}
			row.Publish = percentiles(pub)
			lat, err := mergeLat(cs)
			if err != nil {
				h.fail(label, err)
				continue
			}
			row.Latency = percentiles(lat)
			row.LastAwake, row.AllSaw = lastAwake(cs)
			row.MaxAllocs = row.Producer.AllocsPerFrame
			for _, c := range cs {
				st := procStat(c)
				row.ConsumerStats = append(row.ConsumerStats, st)
				row.ConsumerCPU += st.CPUPerFrameNs / float64(n)
				row.MaxAllocs = max(row.MaxAllocs, st.AllocsPerFrame)
				row.Lost += c.Skipped + c.Missed
				if l, err := decodeHist(c.Lat); err == nil {
					row.WorstP99 = max(row.WorstP99, l.ValueAtQuantile(99))
				}
			}
			switch {
			case wait == WaitPoll:
				row.Warning = h.oversubscribed(n + 1)
			case n+1 > h.rep.Machine.Cores:
				row.Warning = fmt.Sprintf("%d consumers woken at once share %d cores with the producer: later ones queue", n, h.rep.Machine.Cores)
			}
			row.OtherLoad, row.Warning = h.loadNote(st, row.Warning)
			h.rep.Scale = append(h.rep.Scale, row)
		}
	}
}

// lastAwake is, per frame every consumer took, the latency of the last
// consumer to take it (publish → the slowest consumer holds the lease),
// and how many frames that is.
func lastAwake(cs []result) (Percentiles, int) {
	type agg struct {
		n   int
		max int64
	}
	by := map[int64]agg{}
	for _, c := range cs {
		for _, fl := range c.FrameLat {
			a := by[fl[0]]
			a.n++
			a.max = max(a.max, fl[1])
			by[fl[0]] = a
		}
	}
	h := newHist()
	all := 0
	for _, a := range by {
		if a.n == len(cs) {
			record(h, a.max)
			all++
		}
	}
	return percentiles(h), all
}

// loadNote adds to a scenario's note when other processes were busy.
func (h *harness) loadNote(st groupStat, note string) (float64, string) {
	if st.otherCores >= h.cfg.QuietBelow || st.stealCores >= 0.05 {
		w := fmt.Sprintf("other load %.2f cores", st.otherCores)
		if st.stealCores >= 0.05 {
			w += fmt.Sprintf(", steal %.2f cores", st.stealCores)
		}
		if note != "" {
			note += "; "
		}
		note += w
	}
	return st.otherCores, note
}

func sizeName(n int) string {
	switch {
	case n >= MiB && n%MiB == 0:
		return fmt.Sprintf("%dMiB", n/MiB)
	case n >= KiB && n%KiB == 0:
		return fmt.Sprintf("%dKiB", n/KiB)
	}
	return fmt.Sprintf("%dB", n)
}
