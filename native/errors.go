package native

import (
	"errors"
	"strconv"

	"github.com/framering/framering/frame"
)

// Status is an SDK status code: the C library's fr_status, which both
// backends return so that callers see the same errors from either. Zero is
// success and is never returned as an error; every error is negative.
//
// A Status is an error. The common ones are also listed below as ErrX
// sentinels; errors.Is(err, ErrBusy) is true for any error that wraps
// StatusBusy. StatusFormat and StatusGeometry also match frame.ErrFormat
// and frame.ErrGeometry.
type Status int32

// The status codes, equal to the C enum in frsdk.h (a compile-time
// assertion in abi_cgo.go keeps them equal).
const (
	StatusOK              Status = 0
	StatusInvalidHandle   Status = -1
	StatusInvalidArgument Status = -2
	StatusBusy            Status = -3
	StatusNotStarted      Status = -4
	StatusTimeout         Status = -5
	StatusUnknownBuffer   Status = -6
	StatusBufferState     Status = -7
	StatusOverlap         Status = -8
	StatusBufferSize      Status = -9
	StatusFormat          Status = -10
	StatusGeometry        Status = -11
	StatusNoMemory        Status = -12
	StatusResource        Status = -13
)

// statusText is fr_status_string, in Go (a test asserts they agree).
var statusText = [...]string{
	"ok",
	"invalid or closed device handle",
	"invalid argument",
	"acquisition running",
	"acquisition not running",
	"timeout",
	"unknown buffer",
	"buffer in wrong state",
	"buffer overlaps an announced buffer",
	"buffer too small for a frame",
	"unknown pixel format",
	"invalid frame geometry",
	"out of memory",
	"out of device resources",
}

// Error returns the SDK's description of the status.
func (s Status) Error() string {
	if s <= 0 && int(-s) < len(statusText) {
		return statusText[-s]
	}
	return "unknown status " + strconv.Itoa(int(s))
}

// Is makes StatusFormat and StatusGeometry match the frame package's
// sentinels, so that a geometry refused by the SDK and one refused by
// frame.Geometry.Validate test the same way.
func (s Status) Is(target error) bool {
	switch s {
	case StatusFormat:
		return target == frame.ErrFormat
	case StatusGeometry:
		return target == frame.ErrGeometry
	}
	return false
}

// ErrNoFrame is returned, bare, by Dequeue when its timeout passed with no
// frame: not a failure, the source is idle.
var ErrNoFrame = errors.New("no frame within the timeout")

// ErrSourceLost is wrapped by Dequeue's error while the source is
// unreachable (a camera that went away) and the backend tries to reopen
// it; frames due meanwhile are counted in Counters.Lost.
var ErrSourceLost = errors.New("source lost")

// ErrClosed is returned when a device is used after Close, or a frame lease
// is used after its device closed.
var ErrClosed error = StatusInvalidHandle

// ErrInvalid is returned when an argument is impossible: a negative, NaN or
// too large frame rate, an unknown flag.
var ErrInvalid error = StatusInvalidArgument

// ErrBusy is returned when a call needs acquisition stopped (SetConfig), or
// Start is called while acquisition runs or is stopping.
var ErrBusy error = StatusBusy

// ErrStopped is returned by Dequeue when acquisition is not running and no
// filled frame awaits, or when Stop is called while Dequeue waits.
var ErrStopped error = StatusNotStarted

// ErrUnknownBuffer is returned when a BufferID was never announced on this
// device, was revoked, or belongs to another device.
var ErrUnknownBuffer error = StatusUnknownBuffer

// ErrBufferState is returned when a buffer is not in the state a call
// needs: Queue of a buffer that is queued, being filled or leased; Revoke of
// a buffer that is not idle with the caller.
var ErrBufferState error = StatusBufferState

// ErrOverlap is returned when Announce is given memory that overlaps a
// buffer already announced on the device.
var ErrOverlap error = StatusOverlap

// ErrBufferSize is returned when a buffer is empty or smaller than a frame
// of the current geometry, or SetConfig would make an announced buffer too
// small.
var ErrBufferSize error = StatusBufferSize

// ErrResource is returned when the device cannot take another buffer
// (MaxBuffers), the process another device, or the SDK another thread.
var ErrResource error = StatusResource

// ErrLeaseEnded is returned when a Frame is used after Requeue or Detach
// ended its lease, or when it is the zero Frame.
var ErrLeaseEnded = errors.New("frame lease ended")

// ErrNotShared is returned when Announce is given memory the device must not
// keep: Go heap memory, or anything that is not inside writable MAP_SHARED
// mappings (a memfd, a shared anonymous or file mapping).
var ErrNotShared = errors.New("memory is not a writable shared mapping")

// ErrNoCgo is returned by Open for the "sdk" kind when the package was built
// without cgo (CGO_ENABLED=0).
var ErrNoCgo = errors.New("sdk backend needs cgo, and this build has none")

// ErrUnknownKind is returned by Open for a kind it does not know.
var ErrUnknownKind = errors.New("unknown grabber kind")

// ErrNoGst is returned by Open for the "gst" kind in a build without the
// GStreamer backend: it needs the gst build tag, cgo and GStreamer's
// development files.
var ErrNoGst = errors.New("the gst source is not in this build: build with -tags gst (needs cgo and pkg-config gstreamer-1.0 gstreamer-base-1.0 gstreamer-video-1.0)")

// ErrPipeline is wrapped by the GStreamer source's errors when its
// pipeline fails: a description that does not parse, an element's error
// (a device gone, a file that ends in garbage), caps that cannot be
// negotiated or that change geometry mid-stream. The error's text is
// GStreamer's.
var ErrPipeline = errors.New("gstreamer pipeline failed")
