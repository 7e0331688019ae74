package producer

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/native"
)

// Defaults applied by New to the zero fields of a Config.
const (
	DefaultWidth         = 1280
	DefaultHeight        = 1024
	DefaultFormat        = frame.Mono8
	DefaultFrameRate     = 100.0
	DefaultSlots         = 16
	DefaultQueueDepth    = 4
	DefaultStatsInterval = 10 * time.Second
	// DefaultHeartbeatPeriod is how often, at the least, the acquisition
	// loop beats the ring's heartbeat.
	DefaultHeartbeatPeriod = 100 * time.Millisecond
)

// FreeRun is the FrameRate that asks the grabber for no pacing at all:
// a frame is taken as soon as a buffer is queued (native.Config.Rate 0),
// so the producer runs as fast as slots come back and the grabber never
// underruns. Benchmarks and tests use it.
const FreeRun = -1.0

// MaxQueueDepth bounds Config.QueueDepth.
const MaxQueueDepth = 1024

// Config describes a producer: its ring, its frame source and how frames
// move from one to the other. The zero Config is usable: a ring called
// "default" of 16 slots fed at 100 frames per second with 1280x1024 Mono8
// frames from the C SDK (the synthetic source in a build without cgo),
// zero-copy.
type Config struct {
	// Name is the ring's name (ringbuf.SocketPath); SocketPath, if set,
	// places the socket explicitly instead.
	Name       string
	SocketPath string
	// Slots is the number of ring slots (default 16). Each slot holds one
	// frame of Geometry.
	Slots int
	// SocketMode is the attach socket's permission bits (default 0660).
	SocketMode os.FileMode
	// AllowUIDs and AllowGIDs restrict attaching consumers by uid or gid
	// (both empty: anyone who can open the socket).
	AllowUIDs, AllowGIDs []int
	// EvictAfter bounds how long a lossless consumer may keep the producer
	// without a free slot before the ring evicts it (default 2s, the
	// ring's). While it does, frames are lost and counted: underruns in
	// zero-copy mode, no-slot drops in safe-copy mode.
	EvictAfter time.Duration
	// HugePages and Prefault tune the ring's data segment.
	HugePages, Prefault bool

	// Source is the frame grabber kind: native.KindSDK ("sdk", the C SDK
	// through cgo), native.KindSynthetic ("synthetic", pure Go) or
	// native.KindGst ("gst", a GStreamer pipeline: Pipeline) or
	// native.KindAravis ("aravis", a GenICam camera: Camera; builds with
	// the aravis tag). Empty: the SDK when this build has cgo
	// (native.SDKAvailable), else synthetic.
	Source string
	// Camera selects and configures the camera of native.KindAravis: which
	// one, the GenICam features to set, packet size and resend. The
	// producer sizes the ring from what the camera reports once its
	// features are set: Geometry and FrameRate are then ignored.
	Camera native.CameraOptions
	// Pipeline is the GStreamer source description of native.KindGst
	// (required with it, refused with the others), e.g.
	// "v4l2src device=/dev/video0": anything ending in raw video. The
	// producer adds its own sink, and sizes the ring from what the
	// pipeline negotiates: Geometry and FrameRate are then ignored.
	Pipeline string
	// Geometry is the frames' shape. Zero width and height mean
	// 1280x1024, a zero format Mono8, a zero stride the packed stride.
	Geometry frame.Geometry
	// FrameRate is in frames per second (default 100). FreeRun (any
	// negative value) lets the grabber run as fast as slots come back.
	FrameRate float64
	// Defects injects the frame pattern's defects (frame.Defects).
	Defects bool
	// DefectEvery makes them sparse: only frames whose id is a multiple
	// of it (native.Config.DefectEvery; the synthetic source only).
	DefectEvery uint64
	// Replay is the recording a KindArchive source replays (see
	// OpenArchiveReplay), Speed its pacing (native.Config.Speed).
	Replay native.Replayer
	Speed  float64
	// WaitConsumers holds the source back until this many consumers are
	// attached (a replay into a lossless archiver or analyzer that must
	// see it from its first frame); the ring says "waiting for source"
	// meanwhile.
	WaitConsumers int
	// Faults make the synthetic source lose frames on purpose, by cause
	// (native.Config.Faults): for testing every loss path of a pipeline.
	Faults [native.MaxFaults]native.Fault

	// Copy selects safe-copy mode: the grabber fills private buffers and
	// the producer copies each frame into a ring slot. The default is
	// zero-copy: the grabber writes ring slots directly.
	Copy bool
	// QueueDepth is how many buffers the producer keeps queued in the
	// grabber (default 4; in zero-copy mode at most Slots, and by default
	// Slots/2 if that is fewer): ring slots
	// lent to the grabber in zero-copy mode, private buffers in safe-copy
	// mode. More absorbs longer scheduling hiccups; in zero-copy mode each
	// queued slot is one frame fewer that consumers can still read.
	QueueDepth int
	// HoldQuota is the most slots one consumer may hold at once; the ring
	// evicts a consumer holding more (docs/LAYOUT.md 11.4). Default: Slots
	// - QueueDepth - 2 (zero-copy) or Slots - 2 (safe-copy), at least 1:
	// one consumer at its quota leaves the grabber its queue and the ring
	// two slots to rotate through.
	HoldQuota int
	// HeartbeatPeriod is the longest the acquisition loop waits for the
	// grabber before it beats the ring's heartbeat again (default 100ms);
	// consumers call a producer whose heartbeat stops stalled.
	HeartbeatPeriod time.Duration

	// ExitWatch adds a kernel-side observer of consumer exits (an eBPF
	// program on the sched_process_exit tracepoint, package exitwatch),
	// beside the ring's socket and pidfd supervision. It needs CAP_BPF and
	// CAP_PERFMON (root); without them the producer logs why and runs
	// without it.
	ExitWatch bool

	// StatsInterval is the period of the stats log line (default 10s;
	// negative: never).
	StatsInterval time.Duration
	// Logger receives the producer's and the ring's events (default
	// slog.Default()).
	Logger *slog.Logger
}

// withDefaults returns cfg with its zero fields defaulted, checked.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Slots == 0 {
		cfg.Slots = DefaultSlots
	}
	if cfg.Source == "" {
		cfg.Source = native.KindSynthetic
		if native.SDKAvailable {
			cfg.Source = native.KindSDK
		}
	}
	g := &cfg.Geometry
	if g.Width == 0 && g.Height == 0 {
		g.Width, g.Height = DefaultWidth, DefaultHeight
	}
	if g.Format == 0 {
		g.Format = DefaultFormat
	}
	if g.Stride == 0 && g.Format.Valid() {
		g.Stride = g.Format.RowBytes(g.Width)
	}
	if cfg.FrameRate == 0 {
		cfg.FrameRate = DefaultFrameRate
	}
	if cfg.QueueDepth == 0 {
		cfg.QueueDepth = DefaultQueueDepth
		if !cfg.Copy {
			cfg.QueueDepth = max(1, min(DefaultQueueDepth, cfg.Slots/2))
		}
	}
	if cfg.HoldQuota == 0 {
		lent := 0
		if !cfg.Copy {
			lent = cfg.QueueDepth
		}
		cfg.HoldQuota = max(1, cfg.Slots-lent-2)
	}
	if cfg.HeartbeatPeriod == 0 {
		cfg.HeartbeatPeriod = DefaultHeartbeatPeriod
	}
	if cfg.StatsInterval == 0 {
		cfg.StatsInterval = DefaultStatsInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}

	switch {
	case cfg.Source != native.KindSDK && cfg.Source != native.KindSynthetic && cfg.Source != native.KindGst &&
		cfg.Source != native.KindAravis && cfg.Source != native.KindArchive:
		return cfg, fmt.Errorf("check config: %w: source %q (want %q, %q, %q, %q or %q)", ErrConfig, cfg.Source,
			native.KindSDK, native.KindSynthetic, native.KindGst, native.KindAravis, native.KindArchive)
	case (cfg.Source == native.KindArchive) != (cfg.Replay != nil):
		return cfg, fmt.Errorf("check config: %w: source %q needs a recording to replay (and only it takes one)", ErrConfig, native.KindArchive)
	case math.IsNaN(cfg.Speed) || cfg.Speed < 0:
		return cfg, fmt.Errorf("check config: %w: replay speed %v", ErrConfig, cfg.Speed)
	case cfg.Source == native.KindGst && cfg.Pipeline == "":
		return cfg, fmt.Errorf("check config: %w: source %q needs a pipeline description", ErrConfig, cfg.Source)
	case cfg.Source != native.KindGst && cfg.Pipeline != "":
		return cfg, fmt.Errorf("check config: %w: a pipeline description is for source %q, not %q", ErrConfig, native.KindGst, cfg.Source)
	case cfg.Slots < 0:
		return cfg, fmt.Errorf("check config: %w: %d slots", ErrConfig, cfg.Slots)
	case math.IsNaN(cfg.FrameRate) || cfg.FrameRate > native.MaxFrameRate:
		return cfg, fmt.Errorf("check config: %w: frame rate %v (at most %v)", ErrConfig, cfg.FrameRate, native.MaxFrameRate)
	case cfg.QueueDepth < 1 || cfg.QueueDepth > MaxQueueDepth:
		return cfg, fmt.Errorf("check config: %w: queue depth %d (1..%d)", ErrConfig, cfg.QueueDepth, MaxQueueDepth)
	case !cfg.Copy && cfg.QueueDepth > cfg.Slots:
		return cfg, fmt.Errorf("check config: %w: queue depth %d exceeds %d slots", ErrConfig, cfg.QueueDepth, cfg.Slots)
	case cfg.EvictAfter < 0:
		return cfg, fmt.Errorf("check config: %w: evict-after %v", ErrConfig, cfg.EvictAfter)
	case cfg.HoldQuota < 1 || cfg.HoldQuota > cfg.Slots:
		return cfg, fmt.Errorf("check config: %w: hold quota %d (1..%d slots)", ErrConfig, cfg.HoldQuota, cfg.Slots)
	case cfg.HeartbeatPeriod < time.Millisecond || cfg.HeartbeatPeriod > time.Minute:
		return cfg, fmt.Errorf("check config: %w: heartbeat period %v (1ms..1m)", ErrConfig, cfg.HeartbeatPeriod)
	}
	if err := cfg.Geometry.Validate(); err != nil {
		return cfg, fmt.Errorf("check config: %w: %w", ErrConfig, err)
	}
	if cfg.Geometry.Size() < frame.StampSize {
		return cfg, fmt.Errorf("check config: %w: a %d-byte frame cannot hold the %d-byte stamp", ErrConfig, cfg.Geometry.Size(), frame.StampSize)
	}
	return cfg, nil
}

// grabberConfig is what the grabber is asked to produce.
func (cfg Config) grabberConfig() native.Config {
	rate := cfg.FrameRate
	if rate < 0 {
		rate = 0 // FreeRun
	}
	c := native.Config{Geometry: cfg.Geometry, Rate: rate, Defects: cfg.Defects, DefectEvery: cfg.DefectEvery, Faults: cfg.Faults, Pipeline: cfg.Pipeline,
		Replay: cfg.Replay, Speed: cfg.Speed}
	if cfg.Source == native.KindAravis {
		o := cfg.Camera
		if o.Logger == nil {
			o.Logger = cfg.Logger
		}
		c.Camera = &o
	}
	return c
}

// adopt takes from an open grabber what only it knows: a GStreamer
// source's geometry and frame rate are what its pipeline negotiated (a
// live pipeline's caps rate; otherwise it is paced by the slots, FreeRun);
// a camera's are what it reports once its features are set (its
// AcquisitionFrameRate; FreeRun for a camera without one). The other
// sources produce exactly what cfg asked for.
func (cfg Config) adopt(g native.Config) (Config, error) {
	if cfg.Source != native.KindGst && cfg.Source != native.KindAravis {
		return cfg, nil
	}
	cfg.Geometry = g.Geometry
	cfg.FrameRate = FreeRun
	if g.Rate > 0 {
		cfg.FrameRate = g.Rate
	}
	if err := cfg.Geometry.Validate(); err != nil {
		if cfg.Source == native.KindAravis {
			return cfg, fmt.Errorf("check config: %w: the camera sends %w", ErrConfig, err)
		}
		return cfg, fmt.Errorf("check config: %w: the pipeline negotiated %w", ErrConfig, err)
	}
	return cfg, nil
}

// heartbeat is the ring's heartbeat period (DefaultHeartbeatPeriod until
// defaults are applied).
func (cfg Config) heartbeat() time.Duration {
	if cfg.HeartbeatPeriod > 0 {
		return cfg.HeartbeatPeriod
	}
	return DefaultHeartbeatPeriod
}

// mode names the copy mode for logs and stats.
func (cfg Config) mode() string {
	if cfg.Copy {
		return "safe-copy"
	}
	return "zero-copy"
}
