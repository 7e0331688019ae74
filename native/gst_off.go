//go:build !gst || !cgo

package native

import "fmt"

// GstAvailable reports whether this build includes the GStreamer backend
// (it needs the gst build tag and cgo; this build has not both).
const GstAvailable = false

// OpenGst would run a GStreamer pipeline as a frame source; this build has
// no GStreamer backend, so it returns ErrNoGst, which says how to get one.
func OpenGst(cfg Config) (Grabber, error) {
	return nil, fmt.Errorf("open gst source: %w", ErrNoGst)
}
