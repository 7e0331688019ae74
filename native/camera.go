package native

// Camera options and the optional-statistics interface: plain Go, in every
// build, so that flags parse and configurations check the same way whether
// or not this binary carries the Aravis backend (aravis.go, build tag
// "aravis"); without it Open(KindAravis, ...) returns ErrNoAravis.

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// KindAravis is a GenICam camera (GigE Vision, USB3 Vision) driven through
// Aravis, in builds with the "aravis" tag (AravisAvailable).
const KindAravis = "aravis"

// ErrNoAravis is returned by Open(KindAravis, ...) and ListCameras in a
// build without the Aravis backend. Its text says how to get one.
var ErrNoAravis = errors.New("this build has no Aravis camera backend: install libaravis-dev (Debian/Ubuntu: apt-get install libaravis-dev aravis-tools aravis-tools-cli libusb-1.0-0-dev; scripts/setup.sh does it) and build with -tags aravis, cgo on")

// ErrCamera is wrapped by the errors of the Aravis backend that come from
// the camera or from Aravis (no camera found, a feature it refused, a
// stream it could not open); the text carries Aravis's own message.
var ErrCamera = errors.New("camera error")

// FeatureSetting is one GenICam feature to set before acquisition, as
// "Name=Value". The value is typed by the camera's feature node: an
// integer (decimal or 0x hex), a float, an enumeration entry's name, a
// boolean (true/false/1/0) or a string.
type FeatureSetting struct {
	Name, Value string
}

// String returns "Name=Value".
func (s FeatureSetting) String() string { return s.Name + "=" + s.Value }

// ParseFeatureSetting parses "Name=Value". The name is a GenICam feature
// name (letters, digits, underscores); the value is everything after the
// first '=' and may be empty only for a string feature.
func ParseFeatureSetting(s string) (FeatureSetting, error) {
	name, value, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return FeatureSetting{}, fmt.Errorf("parse feature setting %q: %w: want Feature=Value", s, ErrInvalid)
	}
	for _, r := range name {
		if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return FeatureSetting{}, fmt.Errorf("parse feature setting %q: %w: %q is not a GenICam feature name", s, ErrInvalid, name)
		}
	}
	return FeatureSetting{Name: name, Value: value}, nil
}

// AravisBlockIDShift places the low 16 bits of the camera's own block id
// (GigE Vision's frame counter) in bits 16-31 of an Aravis frame's
// FrameInfo.Flags, the bits the layout leaves to the source
// (docs/LAYOUT.md 3.2): flags>>AravisBlockIDShift is the block id, for
// matching a frame with the camera's own logs. FrameID is the unwrapped
// count. (Other sources use those bits differently: the GStreamer source
// for FlagGstDiscont and FlagGstCopied.)
const AravisBlockIDShift = 16

// Ways Dequeue learns that Aravis completed a buffer (CameraOptions.Notify).
const (
	// NotifyPoll: Dequeue waits in arv_stream_timeout_pop_buffer, woken by
	// the stream's own queue. The default: see the package documentation
	// for the measurements behind it.
	NotifyPoll = "poll"
	// NotifyCallback: Aravis's stream thread calls into Go (a cgo.Handle
	// through an exported function) for every completed buffer, which wakes
	// Dequeue; Dequeue then pops without waiting in C.
	NotifyCallback = "callback"
)

// CameraOptions select and configure a camera (KindAravis). The zero value
// opens the first camera found, applies nothing, negotiates the GigE packet
// size and keeps packet resend on.
type CameraOptions struct {
	// Camera selects the camera: its id as ListCameras prints it
	// (vendor-model-serial, or its user-defined name), its physical id
	// (MAC), or its IP address or host name. Empty: the first camera found.
	Camera string
	// Settings are applied in order, after the packet size and before
	// acquisition; the frame geometry is read back after them, so a ring is
	// sized for what the camera will really send.
	Settings []FeatureSetting
	// PacketSize is the GigE Vision stream packet size in bytes: 0
	// negotiates the largest size the path carries (Aravis's
	// auto_packet_size, test packets with don't-fragment), a positive value
	// is set as is, -1 leaves the camera's own. Not used on USB3 Vision.
	PacketSize int
	// NoResend turns GigE Vision packet resend requests off: a frame with a
	// lost packet is then delivered incomplete at once instead of waiting
	// for a resend (and counted as such). Default: resend on.
	NoResend bool
	// Notify is NotifyPoll ("" too) or NotifyCallback.
	Notify string
	// ProbeAfter is how long acquisition may see no frame before the
	// backend checks that the camera still answers (default 1s). A camera
	// that does not answer, or that has lost our control (restarted), is
	// reported lost (Dequeue wraps ErrSourceLost) and reopened.
	ProbeAfter time.Duration
	// ReopenEvery is the period of reopen attempts while the camera is
	// lost (default 500ms).
	ReopenEvery time.Duration
	// Logger receives the backend's events: the camera opened, each
	// feature's value as the camera took it, the camera lost and back
	// (default slog.Default()).
	Logger *slog.Logger
}

// validate checks the options that do not need a camera.
func (o CameraOptions) validate() error {
	switch {
	case o.PacketSize < -1:
		return fmt.Errorf("check camera options: %w: packet size %d (0: negotiate, -1: the camera's)", ErrInvalid, o.PacketSize)
	case o.Notify != "" && o.Notify != NotifyPoll && o.Notify != NotifyCallback:
		return fmt.Errorf("check camera options: %w: notify %q (want %q or %q)", ErrInvalid, o.Notify, NotifyPoll, NotifyCallback)
	case o.ProbeAfter < 0 || o.ReopenEvery < 0:
		return fmt.Errorf("check camera options: %w: negative probe or reopen period", ErrInvalid)
	}
	for _, s := range o.Settings {
		if _, err := ParseFeatureSetting(s.String()); err != nil {
			return fmt.Errorf("check camera options: %w", err)
		}
	}
	return nil
}

// CameraInfo describes a camera ListCameras found.
type CameraInfo struct {
	ID         string // what CameraOptions.Camera takes: vendor-model-serial or the user-defined name
	PhysicalID string // MAC address (GigE Vision) or the USB path
	Address    string // IP address (GigE Vision), empty for USB3 Vision
	Vendor     string
	Model      string
	Serial     string
	Protocol   string // "GigEVision" or "USB3Vision" (Aravis's names)
}

// SourceStat is one of a backend's own counters.
type SourceStat struct {
	Name  string // snake_case, for logs, JSON and metrics
	Value uint64
}

// StatsReporter is implemented by a Grabber with counters of its own
// beyond Counters: the Aravis backend reports its stream statistics
// (completed buffers, failures, missing and resent packets, resend
// requests...) and its reconnects. The producer adds them to its stats
// line and summary.
type StatsReporter interface {
	// SourceStats appends the backend's counters to dst and returns it.
	SourceStats(dst []SourceStat) []SourceStat
}
