package bench_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/framering/framering/bench"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(envRouDiChild); dir != "" {
		// TestRouDiDiesWithHarness's harness: a RouDi, then wait to be killed.
		err := bench.RouDiForTest(context.Background(), dir, func() { fmt.Println("ready") })
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if bench.IsChild() {
		go func() {
			io.Copy(io.Discard, os.Stdin) // EOF: the harness (this test) is gone
			os.Exit(2)
		}()
		if err := bench.RunChild(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	// Under -race every child would sleep a second at exit (the race
	// runtime's atexit_sleep_ms); children inherit this.
	if g := os.Getenv("GORACE"); !strings.Contains(g, "atexit_sleep_ms") {
		os.Setenv("GORACE", strings.TrimSpace(g+" atexit_sleep_ms=0"))
	}
	os.Exit(m.Run())
}

// tinyConfig is the quick path on tiny sizes: a few hundred frames, two
// payload sizes, one and two consumers.
func tinyConfig(t *testing.T) bench.Config {
	cfg := bench.QuickConfig()
	cfg.Exe, cfg.ExeArgs = os.Args[0], []string{"-test.run=^$"}
	cfg.OutDir = filepath.Join(t.TempDir(), "out")
	cfg.Sections = []string{bench.SectionMemcpy, bench.SectionPing, bench.SectionLatency, bench.SectionThroughput, bench.SectionScale}
	cfg.Payloads = []int{4 * bench.KiB, 64 * bench.KiB}
	cfg.LatencyFrames, cfg.LatencyWarmup, cfg.LatencyInterval, cfg.LatencyDuration = 100, 5, 100*time.Microsecond, 2*time.Second
	cfg.ThroughputPayload, cfg.ThroughputConsumers = 4*bench.KiB, []int{1, 2}
	cfg.ThroughputReads = []string{bench.ReadSum}
	cfg.SweepPayloads = []int{64 * bench.KiB}
	cfg.ThroughputFrames, cfg.ThroughputWarmup, cfg.ThroughputDuration = 200, 5, 2*time.Second
	cfg.ScalePayload, cfg.ScaleConsumers, cfg.ScaleWaits = 4*bench.KiB, []int{1, 2}, []string{bench.WaitFutex}
	cfg.ScaleFrames, cfg.ScaleInterval, cfg.ScaleDuration = 100, 100*time.Microsecond, 2*time.Second
	cfg.PingFrames, cfg.PingInterval = 200, 50*time.Microsecond
	cfg.MemcpyDuration = 10 * time.Millisecond
	cfg.CacheSizes, cfg.CacheDuration = []int{64 * bench.KiB, 128 * bench.KiB, 256 * bench.KiB}, 2*time.Millisecond
	cfg.Setup, cfg.Grace = 20*time.Second, 5*time.Second
	cfg.Log = slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg
}

// TestQuickEndToEnd runs the harness for real, as processes, on tiny
// sizes, and checks what it wrote. It asserts no timing.
func TestQuickEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts about 40 processes")
	}
	cfg := tinyConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := bench.Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"results.json", "results.md", "latency.png"} {
		if st, err := os.Stat(filepath.Join(cfg.OutDir, name)); err != nil || st.Size() == 0 {
			t.Fatalf("%s: missing or empty (%v)", name, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(cfg.OutDir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	if len(rep.Errors) > 0 {
		t.Fatalf("failed scenarios: %q", rep.Errors)
	}
	if rep.Machine.Cores == 0 || rep.Machine.Kernel == "" || rep.Machine.GoVersion == "" {
		t.Errorf("machine description incomplete: %+v", rep.Machine)
	}

	if len(rep.Memcpy) != 2 { // the union of 4 KiB and 64 KiB
		t.Errorf("memcpy rows: %d", len(rep.Memcpy))
	}
	for _, r := range rep.Memcpy {
		if r.CopyGBps <= 0 || r.FillGBps <= 0 {
			t.Errorf("memcpy %d: %+v", r.Payload, r)
		}
	}
	if rep.Ping == nil || rep.Ping.OneWay.Count == 0 || rep.Ping.HalfRTT.Count == 0 {
		t.Errorf("ping: %+v", rep.Ping)
	}
	// The C futex ping (cc is installed by scripts/setup.sh).
	if rep.FutexPing == nil || rep.FutexPing.OneWay.Count == 0 {
		t.Errorf("C futex ping: %+v (skipped: %q)", rep.FutexPing, rep.Skipped)
	}

	if want := len(cfg.Payloads) * len(cfg.LatencyWaits); len(rep.Latency) != want {
		t.Errorf("latency rows: %d, want %d", len(rep.Latency), want)
	}
	for _, r := range rep.Latency {
		if r.Latency.Count == 0 || r.Producer.Frames == 0 || r.Publish.Count == 0 {
			t.Errorf("latency %d %s: no frames: %+v", r.Payload, r.Wait, r)
		}
	}
	if rep.Breakdown == nil || rep.Breakdown.Leased.Count == 0 {
		t.Errorf("latency breakdown: %+v", rep.Breakdown)
	}

	// The cache probe (run by the throughput section): a point per working
	// set, and an effective size among them.
	pr := rep.Machine.LLCProbe
	if pr == nil || len(pr.Curve) != len(cfg.CacheSizes) {
		t.Fatalf("cache probe: %+v", pr)
	}
	for i, pt := range pr.Curve {
		if pt.Bytes != int64(cfg.CacheSizes[i]) || pt.FillGBps <= 0 {
			t.Errorf("cache probe point %d: %+v", i, pt)
		}
	}
	if !slices.Contains(cfg.CacheSizes, int(pr.EffectiveBytes)) || pr.PlateauGBps <= 0 {
		t.Errorf("cache probe: effective %d, plateau %v", pr.EffectiveBytes, pr.PlateauGBps)
	}
	if md, err := os.ReadFile(filepath.Join(cfg.OutDir, "results.md")); err != nil || !strings.Contains(string(md), "| LLC (measured) | ") {
		t.Errorf("results.md has no measured LLC (%v)", err)
	}

	// Matrix: 4 KiB × {1,2} × {lossless, lossy} × {sum}; sweep: 64 KiB × 1 × lossless × {sum}.
	if len(rep.Throughput) != 5 {
		t.Errorf("throughput rows: %d, want 5", len(rep.Throughput))
	}
	for _, r := range rep.Throughput {
		name := fmt.Sprintf("throughput %d x%d %s %s", r.Payload, r.Consumers, r.Mode, r.Read)
		if r.Sent == 0 || len(r.Received) != r.Consumers {
			t.Errorf("%s: sent %d, received %v", name, r.Sent, r.Received)
		}
		for _, n := range r.Received {
			if n == 0 || n > r.Sent {
				t.Errorf("%s: sent %d, a consumer received %d", name, r.Sent, n)
			}
			if r.Mode == "lossless" && n != r.Sent {
				t.Errorf("%s: lossless consumer received %d of %d", name, n, r.Sent)
			}
		}
		if r.Corrupt != 0 {
			t.Errorf("%s: %d corrupt frames", name, r.Corrupt)
		}
		if r.SocketFPS == 0 || r.PipeFPS == 0 {
			t.Errorf("%s: no baseline beside it (socket %v, pipe %v)", name, r.SocketFPS, r.PipeFPS)
		}
	}
	// Baselines: {socket, pipe} × {4 KiB ×1, 4 KiB ×2, 64 KiB ×1}.
	if len(rep.Baselines) != 6 {
		t.Errorf("baseline rows: %d, want 6", len(rep.Baselines))
	}
	for _, r := range rep.Baselines {
		name := fmt.Sprintf("baseline %s %d x%d", r.Transport, r.Payload, r.Receivers)
		if r.Sent == 0 || len(r.Received) != r.Receivers {
			t.Errorf("%s: sent %d, received %v", name, r.Sent, r.Received)
		}
		for _, n := range r.Received {
			if n != r.Sent {
				t.Errorf("%s: received %d of %d", name, n, r.Sent)
			}
		}
		if r.Corrupt != 0 {
			t.Errorf("%s: %d corrupt frames", name, r.Corrupt)
		}
	}

	if len(rep.Scale) != 2 {
		t.Errorf("scale rows: %d, want 2", len(rep.Scale))
	}
	for _, r := range rep.Scale {
		if r.Frames == 0 || r.Latency.Count == 0 || r.Publish.Count == 0 {
			t.Errorf("scale x%d: no frames: %+v", r.Consumers, r)
		}
	}
	if len(rep.Targets) == 0 {
		t.Error("no targets evaluated")
	}
}

// TestRunRejectsBadConfig checks validation before anything starts.
func TestRunRejectsBadConfig(t *testing.T) {
	for name, mod := range map[string]func(*bench.Config){
		"no exe":   func(c *bench.Config) { c.Exe = "" },
		"section":  func(c *bench.Config) { c.Sections = []string{"nope"} },
		"payload":  func(c *bench.Config) { c.Payloads = []int{100} },
		"wait":     func(c *bench.Config) { c.LatencyWaits = []string{"nap"} },
		"mode":     func(c *bench.Config) { c.ThroughputModes = []string{"maybe"} },
		"read":     func(c *bench.Config) { c.ThroughputReads = []string{"skim"} },
		"baseline": func(c *bench.Config) { c.Baselines = []string{"carrier-pigeon"} },
		"no grace": func(c *bench.Config) { c.Grace = 0 },
		"cache":    func(c *bench.Config) { c.CacheSizes = []int{1 * bench.MiB, 1 * bench.MiB} },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := tinyConfig(t)
			mod(&cfg)
			if _, err := bench.Run(context.Background(), cfg); err == nil {
				t.Fatal("Run accepted a bad config")
			}
		})
	}
}
