package producer

import "errors"

// The errors of the producer. Callers test them with errors.Is. Errors
// that come from the ring or the frame grabber wrap both the sentinel below
// that says which side failed and the ring's or grabber's own error, so
// that errors.Is(err, ringbuf.ErrExists) or errors.Is(err, native.ErrNoCgo)
// work as well.
var (
	// ErrConfig is returned when a configuration value is impossible: an
	// unknown source or pixel format, a geometry that does not validate,
	// a negative slot count or queue depth.
	ErrConfig = errors.New("invalid producer configuration")
	// ErrRing is returned when the ring cannot be created or refuses an
	// operation the acquisition loop needs (it wraps the ringbuf error).
	ErrRing = errors.New("ring failed")
	// ErrGrabber is returned when the frame grabber cannot be opened, is
	// refused a buffer, or fails while acquiring (it wraps the native
	// error).
	ErrGrabber = errors.New("frame grabber failed")
	// ErrClosed is returned when a Producer is run after Close, or run a
	// second time: a Producer runs once.
	ErrClosed = errors.New("producer closed")
)
