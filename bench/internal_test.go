package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"log/slog"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDims(t *testing.T) {
	for _, n := range []int{64, 4 * KiB, 64 * KiB, MiB, 3 * MiB, 8 * MiB, 32 * MiB, 4096 * 3 * 5} {
		w, h := dims(n)
		if w*h != n || bits.OnesCount(uint(w)) != 1 || w > h*2 {
			t.Errorf("dims(%d) = %d×%d", n, w, h)
		}
	}
}

func TestFillWritesEveryByte(t *testing.T) {
	f := newFiller()
	for _, n := range []int{64, 4 * KiB, 100 * KiB} {
		a, b := make([]byte, n), bytes.Repeat([]byte{0xA5}, n)
		f.fill(a, 7)
		f.fill(b, 7)
		if !bytes.Equal(a, b) {
			t.Fatalf("%d bytes: fill depends on what the buffer held", n)
		}
		if !stampOK(a, 7) || stampOK(a, 8) {
			t.Fatalf("%d bytes: stamp", n)
		}
		f.fill(b, 8)
		if bytes.Equal(a[16:n-8], b[16:n-8]) {
			t.Fatalf("%d bytes: frames 7 and 8 have the same pattern", n)
		}
	}
}

// TestMeasuredPathsAllocateNothing: what the harness itself does per frame
// must not allocate, or it would be charged to the ring.
func TestMeasuredPathsAllocateNothing(t *testing.T) {
	f := newFiller()
	b := make([]byte, 64*KiB)
	h := newHist()
	var id uint64
	if n := testing.AllocsPerRun(100, func() {
		id++
		f.fill(b, id)
		if !stampOK(b, id) {
			t.Fatal("stamp")
		}
		record(h, now()-int64(id))
	}); n != 0 {
		t.Fatalf("%v allocations per frame", n)
	}
}

func TestResultRoundTrip(t *testing.T) {
	h := newHist()
	for i := int64(1); i <= 1000; i++ {
		record(h, i*100)
	}
	enc, err := encodeHist(h)
	if err != nil {
		t.Fatal(err)
	}
	in := &result{Role: roleRingConsumer, Frames: 1000, Lat: enc}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	err = emitResult(in)
	os.Stdout = stdout
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(r)
	r.Close()
	out, err := parseResult(append([]byte("noise\n"), buf.Bytes()...))
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeHist(out.Lat)
	if err != nil {
		t.Fatal(err)
	}
	if p := percentiles(got); p.Count != 1000 || p.P50 < 49_900 || p.P50 > 50_100 || p.Max < 99_900 {
		t.Fatalf("percentiles after the round trip: %+v", p)
	}
	if _, err := parseResult([]byte("no result here\n")); err == nil {
		t.Fatal("parseResult accepted output without a result line")
	}
}

func TestUsage(t *testing.T) {
	u0 := startUsage()
	for end := now() + int64(20*time.Millisecond); now() < end; {
	}
	c := u0.until(endUsage())
	// No timing beyond "some": on a shared machine the spin may get
	// little of the 20 ms.
	if c.WindowNs < int64(20*time.Millisecond) || c.CPUNs <= 0 {
		t.Fatalf("20 ms of spinning measured as %+v", c)
	}
}

func sampleReport() *Report {
	pr := cacheKnee(curve(24.6, 23.3, 22.8, 22.5, 11.9, 6.3, 4.8, 5.6), cacheFraction)
	rep := &Report{Machine: Machine{CPUModel: "test CPU", Cores: 2, Kernel: "6.0", GoVersion: "go1.26", LLCBytes: 260 * MiB, LLCProbe: &pr},
		Config: QuickConfig()}
	rep.Ping = &PingRow{OneWay: Percentiles{Count: 100, P50: 150, P99: 500}}
	rep.FutexPing = &FutexPingRow{OneWay: Percentiles{Count: 100, P50: 4000, P99: 30000}, Sent: 100}
	for _, p := range []int{4 * KiB, 32 * MiB} {
		rep.Latency = append(rep.Latency,
			LatencyRow{Payload: p, Wait: WaitPoll, Latency: Percentiles{Count: 10, P50: 250, P99: 900}, Publish: Percentiles{Count: 10, P50: 50}},
			LatencyRow{Payload: p, Wait: WaitFutex, Latency: Percentiles{Count: 10, P50: 7000, P99: 20000}, Publish: Percentiles{Count: 10, P50: 2000}},
			LatencyRow{Payload: p, Wait: WaitLatency, Latency: Percentiles{Count: 10, P50: 5000, P99: 20000}, Publish: Percentiles{Count: 10, P50: 2000}},
			LatencyRow{Payload: p, Wait: WaitEarly, Latency: Percentiles{Count: 10, P50: 800, P99: 20000}, Publish: Percentiles{Count: 10, P50: 300},
				Consumers: []ProcStat{{CPUPerFrameNs: 250_000}}})
		rep.Iceoryx = append(rep.Iceoryx, IceoryxRow{Kind: "latency", Payload: p, Wait: IoxWaitSet, Buffers: 4,
			Latency: Percentiles{Count: 10, P50: 6000}, RingWait: WaitFutex, RingP50: 7000})
	}
	rep.Throughput = []ThroughputRow{{Payload: 8 * MiB, Consumers: 1, Mode: "lossless", Read: ReadLease, Sent: 10, Received: []uint64{10},
		FPS: 3000, SocketFPS: 300, VsSocket: 10, ConsumerStat: []ProcStat{{Role: roleRingConsumer}}}}
	rep.Scale = []ScaleRow{{Consumers: 1, Wait: WaitFutex, Publish: Percentiles{P50: 1000}, Producer: ProcStat{CPUPerFrameNs: 10_000}},
		{Consumers: 16, Wait: WaitFutex, Publish: Percentiles{P50: 5000}, Producer: ProcStat{CPUPerFrameNs: 15_000}}}
	return rep
}

func TestTargets(t *testing.T) {
	rep := sampleReport()
	want := map[string]bool{
		"busy-poll handoff 4KiB":              true,
		"busy-poll handoff 32MiB":             true,
		"flat":                                true,
		"futex wake-up":                       false, // 7 µs: 1.75× the C futex ping
		"futex-latency wake-up":               true,  // 5 µs: 1.25× the C futex ping, under iceoryx's 6 µs
		"futex wake-up handoff p50 ≤ iceoryx": false, // 7 µs against 6 µs
		"early-wake handoff":                  true,  // 800 ns
		"Unix-socket":                         false,
		"zero allocations":                    true,
		"with 16 futex consumers":             true, // CPU 1.5×, though Publish's wall time is 5×
	}
	got := evaluateTargets(rep)
	for prefix, met := range want {
		found := false
		for _, tg := range got {
			if strings.Contains(tg.Name, prefix) {
				found = true
				if tg.Met == nil || *tg.Met != met {
					t.Errorf("%s: met %v, want %v (%s)", tg.Name, tg.Met, met, tg.Detail)
				}
			}
		}
		if !found {
			t.Errorf("no target %q in %+v", prefix, got)
		}
	}
	rep.Latency[4].Latency.P50 = 400  // 32 MiB busy-poll
	rep.Latency[0].Latency.P99 = 1001 // 4 KiB busy-poll: above twice the ping's p99
	rep.Latency[6].Latency.P50 = 6001 // 32 MiB latency mode: above 1.5× the C futex ping and iceoryx's p50
	rep.Latency[7].Latency.P50 = 1001 // 32 MiB early wake-up: above 1 µs
	rep.Throughput[0].ConsumerStat[0].Mallocs, rep.Throughput[0].ConsumerStat[0].AllocsPerFrame = 3, 0.3
	for _, tg := range evaluateTargets(rep) {
		if (strings.Contains(tg.Name, "handoff 32MiB") || strings.Contains(tg.Name, "handoff 4KiB") || strings.HasPrefix(tg.Name, "flat") ||
			strings.Contains(tg.Name, "zero allocations") || strings.HasPrefix(tg.Name, WaitLatency) || strings.HasPrefix(tg.Name, WaitEarly)) && *tg.Met {
			t.Errorf("%s: met after the numbers got worse (%s)", tg.Name, tg.Detail)
		}
	}
}

func TestMarkdownAndPlot(t *testing.T) {
	rep := sampleReport()
	rep.Targets = evaluateTargets(rep)
	md := Markdown(rep)
	for _, s := range []string{"# framering bench", "## Targets", "NOT MET", "## Handoff latency", "## Throughput", "test CPU", "10.00×",
		"| LLC (sysfs) | 260MiB |\n",
		"| LLC (measured) | 32MiB: the largest working set the producer's fill writes at ≥ 67% of its small-set 24.6 GB/s |\n",
		"| LLC working sets are judged against | measured 32MiB |\n",
		"| fill GB/s by working set | 4MiB 24.6, 8MiB 23.3, 16MiB 22.8, 32MiB 22.5, 64MiB 11.9, 128MiB 6.3, 256MiB 4.8, 512MiB 5.6 |\n"} {
		if !strings.Contains(md, s) {
			t.Errorf("markdown lacks %q", s)
		}
	}
	path := filepath.Join(t.TempDir(), "latency.png")
	if err := writePlot(rep, path); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() < 100 {
		t.Fatalf("plot of %v", img.Bounds())
	}
}

func TestFormat(t *testing.T) {
	for v, want := range map[int64]string{999: "999 ns", 1500: "1.50 µs", 25_000: "25.0 µs", 2_500_000: "2.50 ms", 30_000_000: "30 ms"} {
		if got := ns(v); got != want {
			t.Errorf("ns(%d) = %q, want %q", v, got, want)
		}
	}
	for n, want := range map[int]string{4 * KiB: "4KiB", 32 * MiB: "32MiB", 100: "100B"} {
		if got := sizeName(n); got != want {
			t.Errorf("sizeName(%d) = %q, want %q", n, got, want)
		}
	}
}

// wordSum adds every byte's word, tail included: flipping any byte of the
// payload changes it.
func TestWordSumReadsEveryByte(t *testing.T) {
	for _, n := range []int{0, 7, 64, 65, 200, 4096 + 13} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + 3)
		}
		base := wordSum(b)
		for i := range b {
			b[i]++
			if wordSum(b) == base {
				t.Fatalf("len %d: byte %d changed, sum did not", n, i)
			}
			b[i]--
		}
	}
}

// The lease-only row is planned again at a slot count whose working set
// fits the LLC when the default one does not, and not otherwise.
func TestThroughputPlanLLCRows(t *testing.T) {
	cfg := FullConfig()
	h := &harness{cfg: cfg, rep: &Report{Machine: Machine{LLCBytes: 32 * MiB}}}
	var fit []tputItem
	for _, it := range h.throughputPlan() {
		if it.slots > 0 {
			fit = append(fit, it)
			if ws := it.slotCount() * it.payload; ws > 32*MiB || it.read != ReadLease {
				t.Errorf("LLC row %+v: working set %d", it, ws)
			}
		}
	}
	// 8 MiB × 8 slots and 32 MiB × 8 slots exceed 32 MiB; 32 MiB × 3 cannot fit.
	if len(fit) != 1 || fit[0].payload != 8*MiB || fit[0].slots != 3 {
		t.Errorf("LLC-fitting rows: %+v", fit)
	}
	if got := workingSet(3*8*MiB, Machine{LLCBytes: 32 * MiB}); got != "24MiB, fits sysfs LLC 32MiB" {
		t.Errorf("working set label %q", got)
	}
}

// curve builds a probe curve doubling from 4 MiB with these bandwidths.
func curve(gbps ...float64) []CachePoint {
	c := make([]CachePoint, len(gbps))
	for i, g := range gbps {
		c[i] = CachePoint{Bytes: int64(4*MiB) << i, FillGBps: g}
	}
	return c
}

// cacheKnee finds the largest working set that keeps half the small-set
// plateau before the curve falls for good.
func TestCacheKnee(t *testing.T) {
	for _, tc := range []struct {
		name    string
		curve   []CachePoint
		plateau float64
		eff     int64
		atLeast bool
	}{
		// The README's VM: 260 MiB reported, ~20 GB/s up to 32 MiB, ~6 from 64.
		{"vm", curve(21.4, 22.0, 18.5, 13.9, 6.1, 4.7, 5.8, 6.3), 22.0, 32 * MiB, false},
		{"flat", curve(20, 19, 21, 20), 21, 32 * MiB, true},
		{"empty", nil, 0, 0, false},
		// One size below, then back: a lost round, not the end.
		{"dip", curve(20, 20, 8, 19, 18, 5, 5), 20, 64 * MiB, false},
		// The last size alone below: the drop is there.
		{"drop at the end", curve(20, 20, 19, 4), 20, 16 * MiB, false},
		// Exactly half the plateau still fits.
		{"at the threshold", curve(20, 18, 10, 9.9, 9.9), 20, 16 * MiB, false},
		// The first points low (a neighbour): the plateau is the third.
		{"low first points", curve(6, 17, 20, 19, 5, 5), 20, 32 * MiB, false},
		// The plateau is the small sets': a later point cannot raise it.
		{"plateau from the first three", curve(20, 19, 20, 12, 30, 5, 5), 20, 64 * MiB, false},
		{"one point", curve(20), 20, 4 * MiB, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr := cacheKnee(tc.curve, 0.5)
			if pr.PlateauGBps != tc.plateau || pr.EffectiveBytes != tc.eff || pr.AtLeast != tc.atLeast || pr.Fraction != 0.5 {
				t.Errorf("plateau %v effective %s at least %v (fraction %v), want %v %s %v",
					pr.PlateauGBps, sizeName(int(pr.EffectiveBytes)), pr.AtLeast, pr.Fraction, tc.plateau, sizeName(int(tc.eff)), tc.atLeast)
			}
		})
	}
}

// The probe starts above the inner cache and ends near twice the LLC.
func TestCacheSizes(t *testing.T) {
	pow := func(lo, hi int) []int {
		var s []int
		for v := lo; v <= hi; v *= 2 {
			s = append(s, v)
		}
		return s
	}
	for _, tc := range []struct {
		inner, llc int64
		want       []int
	}{
		{2 * MiB, 260 * MiB, pow(4*MiB, 512*MiB)}, // the README's VM
		{0, 0, pow(1*MiB, 512*MiB)},               // sysfs says nothing: up to cacheCap
		{1 * MiB, 32 * MiB, pow(2*MiB, 64*MiB)},
		{2 * MiB, 8 * MiB, pow(4*MiB, 16*MiB)},
		{32 * MiB, 32 * MiB, pow(16*MiB, 64*MiB)}, // at least three sizes
		{2 * MiB, 2048 * MiB, pow(4*MiB, 1024*MiB)},
	} {
		if got := cacheSizes(tc.inner, tc.llc); !slices.Equal(got, tc.want) {
			t.Errorf("cacheSizes(%d, %d) = %v, want %v", tc.inner, tc.llc, got, tc.want)
		}
	}
}

// Working sets are judged against the smaller of the sysfs and the
// measured LLC, and the label says which; a fitting lease-only row is
// planned against it.
func TestEffectiveLLC(t *testing.T) {
	vm := Machine{LLCBytes: 260 * MiB}
	// The README's VM, a probe at a load average of 7 on its 2 cores.
	pr := cacheKnee(curve(24.6, 23.3, 22.8, 22.5, 11.9, 6.3, 4.8, 5.6), cacheFraction)
	vm.LLCProbe = &pr
	for _, tc := range []struct {
		name  string
		m     Machine
		bytes int
		want  string
	}{
		{"measured, exceeds", vm, 8 * 8 * MiB, "64MiB, exceeds measured LLC 32MiB"},
		{"measured, fits", vm, 3 * 8 * MiB, "24MiB, fits measured LLC 32MiB"},
		{"no probe", Machine{LLCBytes: 260 * MiB}, 8 * 8 * MiB, "64MiB, fits sysfs LLC 260MiB"},
		{"measured above sysfs", Machine{LLCBytes: 16 * MiB, LLCProbe: &pr}, 3 * 8 * MiB, "24MiB, exceeds sysfs LLC 16MiB"},
		{"no drop, sysfs stands", Machine{LLCBytes: 260 * MiB, LLCProbe: &CacheProbe{EffectiveBytes: 128 * MiB, AtLeast: true}}, 8 * 8 * MiB, "64MiB, fits sysfs LLC 260MiB"},
		{"no drop, no sysfs", Machine{LLCProbe: &CacheProbe{EffectiveBytes: 512 * MiB, AtLeast: true}}, 8 * 8 * MiB, "64MiB, fits measured LLC ≥512MiB"},
		{"no drop, no sysfs, beyond", Machine{LLCProbe: &CacheProbe{EffectiveBytes: 512 * MiB, AtLeast: true}}, 8 * 128 * MiB, "1024MiB, beyond the largest set the LLC probe filled (512MiB)"},
		{"nothing known", Machine{}, 8 * 8 * MiB, "64MiB"},
	} {
		if got := workingSet(tc.bytes, tc.m); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}

	cfg := FullConfig()
	h := &harness{cfg: cfg, rep: &Report{Machine: vm}}
	var fit []tputItem
	for _, it := range h.throughputPlan() {
		if it.slots > 0 {
			fit = append(fit, it)
		}
	}
	// 8 MiB × 8 slots exceeds the measured 32 MiB: 3 slots (24 MiB) fit.
	if len(fit) != 1 || fit[0].payload != 8*MiB || fit[0].slots != 3 {
		t.Errorf("LLC-fitting rows against the measured LLC: %+v", fit)
	}
	h.rep.Machine.LLCProbe = nil
	for _, it := range h.throughputPlan() {
		if it.slots > 0 {
			t.Errorf("a fitting row %+v although every default one fits the sysfs LLC", it)
		}
	}
}

// Compare pairs the metrics both runs have and marks which way they moved.
func TestCompare(t *testing.T) {
	old, cur := sampleReport(), sampleReport()
	cur.Latency[0].Latency.P50 = 500 // 4 KiB busy-poll: twice as slow
	cur.Throughput[0].FPS = 6000     // twice as fast
	cur.Scale = nil                  // not in the new run: left out
	rows := Compare(old, cur)
	byName := map[string]CompareRow{}
	for _, r := range rows {
		byName[r.Metric] = r
	}
	if r := byName["latency 4KiB busy-poll p50"]; r.Ratio != 2 || r.HigherBetter {
		t.Errorf("latency row: %+v", r)
	}
	if r := byName["throughput 8MiB x1 lossless lease 0 slots fps"]; r.Ratio != 2 || !r.HigherBetter {
		t.Errorf("throughput row: %+v", r)
	}
	for n := range byName {
		if strings.HasPrefix(n, "scale") {
			t.Errorf("%s compared though the new run has no scale rows", n)
		}
	}
	md := CompareMarkdown("old/results.json", rows)
	for _, s := range []string{"| latency 4KiB busy-poll p50 | 250 ns | 500 ns | 2.00× | worse |", "| 3000 | 6000 | 2.00× | better |"} {
		if !strings.Contains(md, s) {
			t.Errorf("comparison lacks %q:\n%s", s, md)
		}
	}
	dir := t.TempDir()
	b, _ := json.Marshal(old)
	if err := os.WriteFile(filepath.Join(dir, "results.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadReport(dir); err != nil || len(got.Latency) != len(old.Latency) {
		t.Fatalf("LoadReport(dir): %v, %v", got, err)
	}
	if _, err := LoadReport(filepath.Join(dir, "missing.json")); err == nil {
		t.Fatal("LoadReport of a missing file: no error")
	}
}

// lastAwake takes, per frame all consumers took, the slowest consumer's
// latency, and ignores frames some consumer skipped.
func TestLastAwake(t *testing.T) {
	cs := []result{
		{FrameLat: [][2]int64{{1, 100}, {2, 500}, {3, 100}}},
		{FrameLat: [][2]int64{{1, 300}, {3, 900}}}, // skipped frame 2
	}
	p, n := lastAwake(cs)
	if n != 2 || p.Count != 2 || p.Max < 899 || p.Max > 901 {
		t.Fatalf("last awake %+v over %d frames, want frames 1 and 3, max 900", p, n)
	}
}

// latency.png labels every measured payload and every latency decade, in
// µs with the same precision.
func TestPlotTicks(t *testing.T) {
	var labels []string
	for _, tk := range sizeTicks([]float64{4 * KiB, 64 * KiB, 32 * MiB}).Ticks(0, 0) {
		labels = append(labels, tk.Label)
	}
	if got := strings.Join(labels, " "); got != "4KiB 64KiB 32MiB" {
		t.Errorf("payload ticks %q", got)
	}
	labels = labels[:0]
	for _, tk := range (decadeTicks{}).Ticks(0.1, 1000) {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if got := strings.Join(labels, " "); got != "0.1 1 10 100 1000" {
		t.Errorf("latency ticks %q", got)
	}
}

// deadShmAreas lists the shmsink areas in /dev/shm whose process is gone.
func deadShmAreas(t *testing.T) map[string]bool {
	t.Helper()
	left := map[string]bool{}
	files, _ := filepath.Glob("/dev/shm/shmpipe.*")
	for _, f := range files {
		var pid, n int
		if _, err := fmt.Sscanf(filepath.Base(f), "shmpipe.%d.%d", &pid, &n); err != nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			left[f] = true
		}
	}
	return left
}

// The GStreamer baseline leaves no shared memory behind: its sender's area
// is gone once the row is measured.
func TestGStreamerBaselineLeavesNothing(t *testing.T) {
	gst, err := exec.LookPath("gst-launch-1.0")
	if err != nil {
		t.Fatalf("gst-launch-1.0: %v (scripts/setup.sh installs it)", err)
	}
	before := deadShmAreas(t)
	h := &harness{cfg: Config{GStreamerFrames: 50, GStreamerCap: time.Minute}, dir: t.TempDir(), log: slog.New(slog.DiscardHandler), rep: &Report{}}
	row, err := h.gstRun(context.Background(), gst, 64, 64)
	if err != nil {
		t.Fatal(err)
	}
	if row.Received != 50 {
		t.Errorf("received %d of 50 buffers", row.Received)
	}
	for f := range deadShmAreas(t) {
		if !before[f] {
			t.Errorf("left behind: %s", f)
		}
	}
}
