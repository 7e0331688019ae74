package bench

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"
)

// Sizes.
const (
	KiB = 1 << 10
	MiB = 1 << 20
)

// Sections of a run, in the order they run.
const (
	SectionMemcpy     = "memcpy"
	SectionPing       = "ping"
	SectionLatency    = "latency"
	SectionThroughput = "throughput" // with the socket and pipe baselines
	SectionIceoryx    = "iceoryx"
	SectionScale      = "scale"
	SectionGStreamer  = "gstreamer"
	SectionEBPF       = "ebpf"
)

// AllSections lists every section.
var AllSections = []string{SectionMemcpy, SectionPing, SectionLatency, SectionThroughput, SectionIceoryx, SectionScale, SectionGStreamer, SectionEBPF}

// Config is one harness run. QuickConfig and FullConfig fill it; a caller
// then sets Exe (and ExeArgs) and may override anything.
type Config struct {
	// Mode is "quick" or "full" (informational; the numbers below decide).
	Mode string `json:"mode"`
	// OutDir receives results.json, results.md and latency.png; created.
	OutDir string `json:"out_dir"`
	// Exe and ExeArgs re-execute this binary as a child (EnvRole set).
	Exe     string   `json:"-"`
	ExeArgs []string `json:"-"`
	// Sections to run (empty: all).
	Sections []string `json:"sections"`

	// Latency: one paced frame every LatencyInterval (plus the fill time),
	// at most LatencyFrames measured frames or LatencyDuration.
	Payloads        []int         `json:"payloads"`
	LatencyWaits    []string      `json:"latency_waits"`
	LatencyFrames   int           `json:"latency_frames"`
	LatencyWarmup   int           `json:"latency_warmup"`
	LatencyInterval time.Duration `json:"latency_interval_ns"`
	LatencyDuration time.Duration `json:"latency_duration_ns"`

	// Throughput: the matrix (ThroughputPayload × consumers × modes ×
	// reads) and the sweep (SweepPayloads, one lossless consumer, every
	// read), each run flat out for ThroughputDuration.
	ThroughputPayload   int           `json:"throughput_payload"`
	ThroughputConsumers []int         `json:"throughput_consumers"`
	ThroughputModes     []string      `json:"throughput_modes"`
	ThroughputReads     []string      `json:"throughput_reads"`
	SweepPayloads       []int         `json:"sweep_payloads"`
	ThroughputFrames    int           `json:"throughput_frames"`
	ThroughputWarmup    int           `json:"throughput_warmup"`
	ThroughputDuration  time.Duration `json:"throughput_duration_ns"`
	Baselines           []string      `json:"baselines"`

	// Scale: paced frames to 1..16 consumers.
	ScalePayload   int           `json:"scale_payload"`
	ScaleConsumers []int         `json:"scale_consumers"`
	ScaleWaits     []string      `json:"scale_waits"`
	ScaleFrames    int           `json:"scale_frames"`
	ScaleInterval  time.Duration `json:"scale_interval_ns"`
	ScaleDuration  time.Duration `json:"scale_duration_ns"`

	PingFrames   int           `json:"ping_frames"`
	PingInterval time.Duration `json:"ping_interval_ns"`

	MemcpyDuration time.Duration `json:"memcpy_duration_ns"`

	// The cache probe (cache.go, run by the throughput section): the
	// least time spent on each working set (after a few rounds), and the
	// working sets (nil: from sysfs, see cacheSizes).
	CacheDuration time.Duration `json:"cache_duration_ns"`
	CacheSizes    []int         `json:"cache_sizes,omitempty"`

	GStreamerPayloads []int         `json:"gstreamer_payloads"`
	GStreamerFrames   int           `json:"gstreamer_frames"`
	GStreamerCap      time.Duration `json:"gstreamer_cap_ns"`
	// GStreamer4K adds a 3840x2160 GRAY8 row to the GStreamer payloads.
	GStreamer4K bool `json:"gstreamer_4k"`
	// FramesrcPlugin (the directory holding libgstframering.so,
	// clients/gstreamer) gives each GStreamer row a framesrc run on the
	// same frame geometry (bench/run.sh builds it); empty: none.
	FramesrcPlugin string `json:"-"`

	// IceoryxWaits are the iceoryx latency rows' subscriber waits
	// (IoxWaitSet, IoxPoll); the iceoryx section also runs throughput rows
	// at SweepPayloads and ThroughputPayload.
	IceoryxWaits []string `json:"iceoryx_waits"`

	EBPFFrames int `json:"ebpf_frames"`

	// QuietWait is how long the harness may wait before each scenario for
	// the machine to go quiet (fewer than QuietBelow cores busy); 0: no wait.
	QuietWait  time.Duration `json:"quiet_wait_ns"`
	QuietBelow float64       `json:"quiet_below_cores"`

	// HugePages backs ring data segments with huge pages when possible.
	HugePages bool `json:"huge_pages"`
	// Setup is what a child may spend outside its measured loop (start,
	// attach, drain); Grace is what the harness waits past a child's cap
	// before it kills it.
	Setup time.Duration `json:"setup_ns"`
	Grace time.Duration `json:"grace_ns"`

	// ChildLogLevel is the children's slog level (default warn).
	ChildLogLevel string `json:"-"`
	// Log receives progress; Out receives the final markdown (nil: none).
	Log *slog.Logger `json:"-"`
	Out io.Writer    `json:"-"`
}

// FullConfig is the full run: a few minutes on a 2-core machine.
func FullConfig() Config {
	return Config{
		Mode:         "full",
		Payloads:     []int{4 * KiB, 64 * KiB, 1 * MiB, 8 * MiB, 32 * MiB},
		LatencyWaits: []string{WaitPoll, WaitFutex, WaitLatency, WaitEarly},
		// 20,000 samples a row: p99.9 is then the 20th-worst value.
		LatencyFrames: 20_000, LatencyWarmup: 50, LatencyInterval: time.Millisecond, LatencyDuration: 25 * time.Second,
		ThroughputPayload: 8 * MiB, ThroughputConsumers: []int{1, 2, 4, 8},
		ThroughputModes: []string{"lossless", "lossy"}, ThroughputReads: []string{ReadLease, ReadWords, ReadSum},
		SweepPayloads:    []int{4 * KiB, 64 * KiB, 1 * MiB, 8 * MiB, 32 * MiB},
		ThroughputFrames: 5_000_000, ThroughputWarmup: 20, ThroughputDuration: 1500 * time.Millisecond,
		Baselines:    []string{TransportSocket, TransportPipe},
		ScalePayload: 64 * KiB, ScaleConsumers: []int{1, 2, 4, 8, 16}, ScaleWaits: []string{WaitFutex, WaitLatency, WaitPoll},
		ScaleFrames: 1000, ScaleInterval: 2 * time.Millisecond, ScaleDuration: 2 * time.Second,
		PingFrames: 20_000, PingInterval: time.Millisecond,
		MemcpyDuration:    300 * time.Millisecond,
		CacheDuration:     60 * time.Millisecond,
		GStreamerPayloads: []int{64 * KiB, 1 * MiB, 8 * MiB}, GStreamerFrames: 400, GStreamerCap: 15 * time.Second,
		GStreamer4K:  true,
		IceoryxWaits: []string{IoxWaitSet, IoxPoll},
		EBPFFrames:   500,
		QuietBelow:   0.25,
		Setup:        20 * time.Second, Grace: 5 * time.Second,
	}
}

// QuickConfig is the smoke check: under a minute on a 2-core machine.
func QuickConfig() Config {
	c := FullConfig()
	c.Mode = "quick"
	c.LatencyFrames, c.LatencyWarmup, c.LatencyDuration = 300, 20, 700*time.Millisecond
	c.ThroughputConsumers = []int{1, 2}
	c.SweepPayloads = []int{64 * KiB, 8 * MiB}
	c.ThroughputFrames, c.ThroughputWarmup, c.ThroughputDuration = 1_000_000, 5, 350*time.Millisecond
	c.ScaleConsumers, c.ScaleWaits = []int{1, 4, 16}, []string{WaitFutex}
	c.ScaleFrames, c.ScaleDuration = 200, 600*time.Millisecond
	c.PingFrames = 500
	c.MemcpyDuration = 60 * time.Millisecond
	c.CacheDuration = 20 * time.Millisecond
	c.GStreamerPayloads, c.GStreamerFrames, c.GStreamerCap, c.GStreamer4K = []int{8 * MiB}, 150, 8*time.Second, false
	c.EBPFFrames = 200
	return c
}

func (c *Config) runs(section string) bool {
	return len(c.Sections) == 0 || slices.Contains(c.Sections, section)
}

func (c *Config) validate() error {
	if c.Exe == "" {
		return fmt.Errorf("validate config: %w: no executable to re-execute", errBadParams)
	}
	for _, s := range c.Sections {
		if !slices.Contains(AllSections, s) {
			return fmt.Errorf("validate config: %w: unknown section %q", errBadParams, s)
		}
	}
	for _, p := range append(append(append([]int{c.ThroughputPayload, c.ScalePayload}, c.Payloads...), c.SweepPayloads...), c.GStreamerPayloads...) {
		if p < 64 || p%64 != 0 {
			return fmt.Errorf("validate config: %w: payload %d (a multiple of 64 bytes, at least 64)", errBadParams, p)
		}
	}
	for i, s := range c.CacheSizes {
		if s < fillChunk || (i > 0 && s <= c.CacheSizes[i-1]) {
			return fmt.Errorf("validate config: %w: cache probe working sets %v (increasing, each at least %d bytes)", errBadParams, c.CacheSizes, fillChunk)
		}
	}
	for _, w := range append(append([]string{}, c.LatencyWaits...), c.ScaleWaits...) {
		if _, err := spinFor(w); err != nil {
			return fmt.Errorf("validate config: %w", err)
		}
	}
	for _, w := range c.IceoryxWaits {
		if w != IoxWaitSet && w != IoxPoll {
			return fmt.Errorf("validate config: %w: iceoryx wait %q", errBadParams, w)
		}
	}
	for _, m := range c.ThroughputModes {
		if _, err := modeFor(m); err != nil {
			return fmt.Errorf("validate config: %w", err)
		}
	}
	for _, r := range c.ThroughputReads {
		if r != ReadLease && r != ReadWords && r != ReadSum {
			return fmt.Errorf("validate config: %w: read mode %q", errBadParams, r)
		}
	}
	for _, b := range c.Baselines {
		if b != TransportSocket && b != TransportPipe {
			return fmt.Errorf("validate config: %w: baseline %q", errBadParams, b)
		}
	}
	if c.Setup <= 0 || c.Grace <= 0 {
		return fmt.Errorf("validate config: %w: setup and grace must be positive", errBadParams)
	}
	return nil
}
