package consumers

import (
	"errors"

	"github.com/framering/framering/ringbuf"
)

// The errors of the package. Errors returned by the package wrap one of
// these, a ringbuf sentinel (which these alias), or a context error; test
// them with errors.Is.
var (
	// ErrClosed is returned when the producer closed the ring (and
	// Options.Reattach is off), or the Consumer was used after Close.
	ErrClosed = ringbuf.ErrClosed
	// ErrProducerGone is returned when the producer exited or dropped
	// the connection (and Options.Reattach is off), or when there is no
	// producer to attach to (and Options.Wait is off).
	ErrProducerGone = ringbuf.ErrProducerGone
	// ErrEvicted is returned when the producer evicted this consumer (and
	// Options.Reattach is off): it fell behind as a lossless consumer, held
	// more slots than the ring's quota, or its holds kept the producer from
	// every slot.
	ErrEvicted = ringbuf.ErrEvicted
	// ErrRevoked is returned by Frame.Check and Frame.Release when the
	// producer revoked the frame's hold (an eviction); wrapped with
	// ringbuf.ErrOverwritten when the bytes changed while it was held.
	ErrRevoked = ringbuf.ErrRevoked
	// ErrNoSuchRing is returned by Attach (without Options.Wait) when no
	// ring of that name exists.
	ErrNoSuchRing = ringbuf.ErrNoSuchRing
	// ErrReleased is returned by Frame.Release when the frame was
	// already released.
	ErrReleased = ringbuf.ErrReleased
	// ErrBusy is returned (by Err) when Frames is ranged over while
	// another range over the same Consumer is in progress.
	ErrBusy = errors.New("consumer already iterating")
)
