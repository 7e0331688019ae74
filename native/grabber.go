package native

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/loss"
)

// Grabber is a frame source that fills buffers it was lent, with the
// buffer semantics of GenTL data streams and V4L2 streaming I/O (see the
// package documentation for the ownership rules). Both backends in this
// package implement it; a real SDK or a V4L2 device would too.
//
// All methods are safe for concurrent use.
//
// A new backend (a real SDK, V4L2 streaming I/O) lives in this package,
// keeps its buffers' states in the shared buffer table (buftable.go)
// unless its C side keeps them beside its threads (frsdk.c, frgst.c), and
// hands out Frames through the shared lease table (lease.go): it
// implements leaseOwner and calls leases.begin on each dequeued buffer.
type Grabber interface {
	// Config returns the current configuration.
	Config() Config
	// SetConfig replaces the configuration. Only while stopped (ErrBusy
	// otherwise); fails with ErrBufferSize if an announced buffer cannot
	// hold a frame of the new geometry.
	SetConfig(cfg Config) error

	// Announce lends buf to the device. buf must lie inside writable
	// MAP_SHARED mappings (a ring slot), never the Go heap (ErrNotShared),
	// hold a frame of the current geometry (ErrBufferSize) and not overlap
	// another buffer (ErrOverlap). The caller keeps buf mapped until the
	// buffer is revoked or the device closed.
	Announce(buf []byte) (BufferID, error)
	// Allocate makes a device-private buffer of size bytes (safe-copy
	// mode). Its bytes are reachable only through the leases of the frames
	// it carries; the device frees it at Revoke or Close.
	Allocate(size int) (BufferID, error)
	// Revoke takes back a buffer that is idle with the caller (announced
	// or detached, not queued nor leased: ErrBufferState).
	Revoke(id BufferID) error
	// Queue puts an idle buffer into the input pool.
	Queue(id BufferID) error

	// Start starts acquisition (ErrBusy if running).
	Start() error
	// Stop stops acquisition and gives every queued and every filled but
	// not dequeued buffer back to the caller, idle; frames already
	// dequeued stay leased. Stopping a stopped device does nothing.
	Stop() error

	// Dequeue waits for the oldest filled frame and leases it to the
	// caller. It returns ErrStopped when acquisition is not running and
	// nothing awaits (or stops while it waits), ErrClosed when the device
	// closes, ctx.Err() wrapped when ctx ends first, and ErrNoFrame (bare,
	// so that it allocates nothing) when timeout > 0 passes with no frame:
	// the producer's loop waits in slices of its heartbeat period, so a
	// source that is legitimately idle (a camera waiting for its trigger)
	// is told apart from a hung one. timeout <= 0 waits without a bound. A
	// backend whose source is unreachable (a camera unplugged) returns an
	// error wrapping ErrSourceLost while it tries to reopen it. Dequeue
	// allocates nothing.
	Dequeue(ctx context.Context, timeout time.Duration) (Frame, error)

	// Counters returns the device's counters.
	Counters() Counters

	// Close stops acquisition, ends every lease, revokes every buffer and
	// releases the device. After Close returns the device touches no
	// announced memory, which the caller may unmap. Close is safe to call
	// more than once; every other method then returns ErrClosed.
	Close() error
}

// Backend kinds for Open.
const (
	// KindSDK is the simulated C SDK driven through cgo.
	KindSDK = "sdk"
	// KindSynthetic is the pure-Go source with the same semantics.
	KindSynthetic = "synthetic"
)

// Open opens a grabber of the given kind: KindSDK (ErrNoCgo in a build
// without cgo), KindSynthetic, KindGst (ErrNoGst in a build without the
// gst tag) or KindAravis (ErrNoAravis in a build without the aravis tag).
func Open(kind string, cfg Config) (Grabber, error) {
	switch kind {
	case KindSDK:
		return OpenSDK(cfg)
	case KindGst:
		return OpenGst(cfg)
	case KindAravis:
		return OpenAravis(cfg)
	case KindSynthetic, KindArchive:
		if (kind == KindArchive) != (cfg.Replay != nil) {
			return nil, fmt.Errorf("open grabber %q: %w: a replay source needs Config.Replay, and only it", kind, ErrInvalid)
		}
		s, err := OpenSynthetic(cfg)
		if err != nil {
			return nil, err // not a nil *Synthetic in a non-nil interface
		}
		return s, nil
	}
	return nil, fmt.Errorf("open grabber %q: %w", kind, ErrUnknownKind)
}

// MaxFrameRate is the highest frame rate a Config may ask for.
const MaxFrameRate = 1e6

// MaxBuffers is the most buffers one device holds announced at once.
const MaxBuffers = 4096

// Config is what a device produces: frame geometry and pixel format, the
// frame rate, and whether the pattern carries defects. A GStreamer source
// (KindGst) takes only Pipeline: its geometry and rate are what the
// pipeline negotiates, and its Config reports them.
type Config struct {
	Geometry frame.Geometry
	// Rate is in frames per second. At a positive rate a frame is due every
	// 1/Rate seconds whether or not a buffer is queued (a frame due with an
	// empty input pool is lost: an underrun). At 0 the device is paced by
	// its input pool: a frame is due as soon as a buffer is queued, so it
	// runs as fast as buffers come back and never underruns.
	Rate float64
	// Defects injects the pattern's defects (frame.Defects).
	Defects bool
	// DefectEvery, with Defects, injects them only into frames whose id is
	// a multiple of it (sparse defects, so that tests can place events
	// exactly); 0 or 1: into every frame. The synthetic source only.
	DefectEvery uint64
	// Replay makes a synthetic source (KindArchive) deliver recorded
	// frames instead of the pattern; Speed paces them: the original
	// spacing divided by Speed, 0 as fast as buffers come back (Rate is
	// ignored). A replay never underruns: it waits for a buffer.
	Replay Replayer
	Speed  float64
	// Pipeline is a GStreamer source description ending in raw video
	// (KindGst only): "videotestsrc ! video/x-raw,format=GRAY8", "v4l2src",
	// "filesrc location=x.mkv ! decodebin ! videoconvert". The source adds
	// its own sink.
	Pipeline string
	// Faults make the synthetic source lose frames on purpose, for tests
	// of every loss path (the C SDK refuses them). Each fault hits the
	// frames whose id is Every-1 modulo Every: a cause a camera reports
	// with a buffer (incomplete, timeout, size_mismatch, source_error, and
	// underrun: a frame cut short, FrameUnderrun) is delivered with that
	// FrameStatus; one without a buffer (camera_lost, replay_gap) is
	// counted in Counters.Lost and takes none. The first fault that
	// matches a frame wins; entries with Every 0 are unused (an array, so
	// that a Config stays comparable).
	Faults [MaxFaults]Fault

	// Camera selects and configures a camera (KindAravis; nil: the first
	// camera found, as it is; the other kinds ignore it). A camera decides
	// its own geometry and rate: Open applies the settings and Config
	// reports what the camera will send, which is what buffers (ring slots)
	// must be sized for. A pointer, so that Config stays comparable.
	Camera *CameraOptions
	// PayloadSize, as Config reports it, is the least size a buffer must
	// have when that is more than Geometry.Size() (a camera appending chunk
	// data to the image); 0 otherwise. Ignored by Open.
	PayloadSize int
}

// MaxFaults is the number of fault kinds one Config can inject.
const MaxFaults = 4

// Fault is one kind of frame the synthetic source loses on purpose.
type Fault struct {
	Cause loss.Cause
	Every uint64
}

// faultStatus says how a fault of cause reaches the producer: with a
// buffer and this status, or (ok false) without one.
func faultStatus(c loss.Cause) (FrameStatus, bool) {
	switch c {
	case loss.Incomplete:
		return FrameIncomplete, true
	case loss.Timeout:
		return FrameTimeout, true
	case loss.SizeMismatch:
		return FrameSizeMismatch, true
	case loss.SourceError:
		return FrameFailed, true
	case loss.Underrun:
		return FrameUnderrun, true
	}
	return FrameComplete, false
}

// validFaults checks that every fault is one the synthetic source can make.
func validFaults(fs [MaxFaults]Fault) bool {
	for _, f := range fs {
		if f.Every == 0 {
			continue
		}
		if _, withBuffer := faultStatus(f.Cause); f.Every < 2 || !withBuffer && f.Cause != loss.CameraLost && f.Cause != loss.ReplayGap {
			return false
		}
	}
	return true
}

// HasFaults reports whether cfg injects any fault.
func (cfg Config) HasFaults() bool { return cfg.Faults != [MaxFaults]Fault{} }

// validate checks cfg as the C SDK's validate_config does, in the same
// order, returning the same Status.
func (cfg Config) validate() Status {
	g := cfg.Geometry
	if !g.Format.Valid() {
		return StatusFormat
	}
	if g.Validate() != nil || g.Size() < frame.StampSize {
		return StatusGeometry
	}
	if math.IsNaN(cfg.Rate) || cfg.Rate < 0 || cfg.Rate > MaxFrameRate || !validFaults(cfg.Faults) {
		return StatusInvalidArgument
	}
	return StatusOK
}

// BufferID names a buffer announced on (or allocated by) one device. It is
// opaque: it carries the device's tag and a generation, so an id of another
// device or of a revoked buffer is refused with ErrUnknownBuffer.
type BufferID uint64

// buffer id layout, shared by both backends (frsdk.c make_id):
//
//	63      48 47             24 23              0
//	+---------+-----------------+----------------+
//	| dev tag |   generation    |  buffer index  |
//	+---------+-----------------+----------------+
const (
	idIndexBits = 24
	idGenBits   = 24
	idIndexMask = 1<<idIndexBits - 1
	idGenMask   = 1<<idGenBits - 1
)

func (id BufferID) index() int { return int(id & idIndexMask) }

// FrameStatus says how completely the device wrote a frame.
type FrameStatus int32

const (
	// FrameComplete means every byte of the frame was written.
	FrameComplete FrameStatus = 0
	// FrameIncomplete means part of the frame is missing (a camera that
	// lost packets); the simulated sources never report it.
	FrameIncomplete FrameStatus = 1
	// FrameTimeout means the frame did not complete in time.
	FrameTimeout FrameStatus = 2
	// FrameSizeMismatch means the frame's size or geometry is not the
	// configured one.
	FrameSizeMismatch FrameStatus = 3
	// FrameFailed is any other failure of the source for this frame.
	FrameFailed FrameStatus = 4
	// FrameAborted means acquisition stopped while the frame was filled.
	FrameAborted FrameStatus = 5
	// FrameUnderrun means the frame's first packets came while no buffer
	// was queued (an underrun): the buffer queued meanwhile holds only its
	// later part. A camera backend reports it where the device would say
	// timeout or missing packets (the Aravis backend: when the stream's
	// own underrun count moved). The value is the last one: statuses cross
	// the C boundary (frsdk.h FR_FRAME_*, frgst.h FRG_FRAME_*).
	FrameUnderrun FrameStatus = 6
)

var frameStatusNames = [...]string{
	FrameComplete:     "complete",
	FrameIncomplete:   "incomplete",
	FrameTimeout:      "timeout",
	FrameSizeMismatch: "size_mismatch",
	FrameFailed:       "failed",
	FrameAborted:      "aborted",
	FrameUnderrun:     "underrun",
}

// String names the status ("complete", "timeout", ...; FrameStatus(N) for
// a value without a name), so that logs and test failures say which it is.
func (s FrameStatus) String() string {
	if s >= 0 && int(s) < len(frameStatusNames) {
		return frameStatusNames[s]
	}
	return fmt.Sprintf("FrameStatus(%d)", int32(s))
}

// Cause is the loss cause of a frame that is not complete: the producer
// never publishes such a frame and counts it under this cause.
func (s FrameStatus) Cause() loss.Cause {
	switch s {
	case FrameIncomplete:
		return loss.Incomplete
	case FrameTimeout:
		return loss.Timeout
	case FrameSizeMismatch:
		return loss.SizeMismatch
	case FrameAborted:
		return loss.Discarded
	case FrameUnderrun:
		return loss.Underrun
	}
	return loss.SourceError
}

// Frame flags a source sets in FrameInfo.Flags. They travel unchanged into
// the ring's descriptor (docs/LAYOUT.md 3.2).
const (
	// FlagPattern: the frame is the test pattern of docs/LAYOUT.md Appendix A.
	FlagPattern uint32 = 1 << 0
	// FlagDefects: that pattern carries injected defects.
	FlagDefects uint32 = 1 << 1
	// FlagReplayed: the frame comes from an archive; Origin is set.
	FlagReplayed uint32 = 1 << 2
)

// FrameInfo is the typed metadata of a filled frame.
type FrameInfo struct {
	Buffer    BufferID    // the buffer the frame is in
	FrameID   uint64      // counts every due frame, delivered or lost: gaps are losses
	Timestamp int64       // CLOCK_MONOTONIC nanoseconds when the frame was taken
	Status    FrameStatus // FrameComplete unless the device says otherwise
	Geometry  frame.Geometry
	Length    int // bytes of the frame at the start of the buffer: Stride*Height
	// DeviceTimestamp is the camera's own timestamp, unconverted (GenICam:
	// nanoseconds of the device clock); 0 when the source has none.
	DeviceTimestamp uint64
	// Flags are FlagPattern, FlagDefects, FlagReplayed, and in bits 16-31
	// the source's own.
	Flags uint32
	// OriginEpoch and OriginSeq are a replayed frame's identity in the ring
	// it was first published in (FlagReplayed); 0 otherwise.
	OriginEpoch, OriginSeq uint64
}

// Counters are a device's counters. The first four count since Open; the
// others are gauges. With acquisition stopped,
// NextFrameID == Delivered+Underruns+Lost.Total(), and every frame id below
// NextFrameID was either dequeued, discarded by Stop, lost to an underrun
// or lost under a cause in Lost: each exactly once.
type Counters struct {
	Delivered uint64 // frames filled and moved to the output queue, whatever their FrameStatus
	// Underruns counts frames lost whole because no buffer was queued when
	// they were due. A frame that got a buffer only part way (FrameUnderrun)
	// was handed out: it is in Delivered, not here.
	Underruns uint64
	// Lost counts, by cause, frames the device lost without ever handing
	// out a buffer for them, other than underruns and Stop's discards
	// (a camera's frames due while it was unreachable: loss.CameraLost; a
	// replayed archive's gaps: loss.ReplayGap). The simulated sources
	// leave it zero. Frames handed out incomplete are not here: Dequeue
	// returns them with their FrameStatus.
	Lost loss.Counts
	// Copies counts frames the backend copied into a lent buffer because
	// its upstream would not write there directly (a GStreamer element
	// that ignores the offered pool); 0 for a zero-copy source.
	Copies      uint64
	Discarded   uint64 // filled frames dropped from the output queue by Stop
	NextFrameID uint64 // the id the next due frame will carry
	Queued      int    // buffers in the input pool
	Awaiting    int    // filled buffers waiting for Dequeue
	Held        int    // buffers leased to the caller by Dequeue
	Announced   int    // buffers announced or allocated, in any state
}

// checkAnnounce is the part of Announce both backends do in Go: a
// non-empty buffer in a shared mapping.
func checkAnnounce(buf []byte) error {
	if len(buf) == 0 {
		return fmt.Errorf("announce buffer: %w", ErrBufferSize)
	}
	if err := checkShared(buf); err != nil {
		return fmt.Errorf("announce buffer: %w", err)
	}
	return nil
}
