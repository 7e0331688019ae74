package consumers

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/framering/framering/ringbuf"
)

// Frame is one frame yielded by Consumer.Frames: its metadata and its
// bytes. It is valid until the loop moves on, unless Keep was called; see
// the package documentation for the two modes.
//
// In zero-copy mode the *Frame the loop yields is reused for the next
// frame: never keep the pointer past the iteration, keep the handle Keep
// returns.
type Frame struct {
	c     *Consumer
	meta  Meta
	epoch uint64

	// Zero-copy.
	lease  ringbuf.Lease
	keptAs *Frame // the handle Keep returned, on the loop's Frame
	handle bool   // this is a handle returned by Keep

	// Safe-copy.
	copied   bool
	kept     bool
	data     []byte
	released atomic.Bool
}

// Meta returns the frame's metadata. It is a copy in private memory and
// stays readable after Release.
func (f *Frame) Meta() Meta { return f.meta }

// Epoch returns the epoch of the producer the frame came from. Sequence
// numbers restart at 1 when the producer does; the epoch tells the runs
// apart.
func (f *Frame) Epoch() uint64 { return f.epoch }

// Bytes returns the frame's payload (Meta().Length bytes).
//
// Zero-copy: read-only shared memory (writing it faults), valid while the
// frame is (until the loop moves on, or until Release of a kept frame);
// nil after that. Safe-copy: a private, writable copy that belongs to the
// caller and stays valid as long as it is referenced, even after Release.
func (f *Frame) Bytes() []byte {
	if f.copied {
		return f.data
	}
	return f.lease.Bytes()
}

// Keep keeps the frame past its loop iteration and returns the handle to
// use from then on; the caller must call Release on it. In zero-copy mode
// the handle is a new object (one small allocation) holding the frame's
// slot, so that the producer cannot reuse it, until Release; the loop's own
// *Frame goes on to be reused. Calling Keep again returns the same handle.
// In safe-copy mode Keep returns f itself.
//
// A kept frame holds its slot, so the producer has one slot fewer to
// publish into. Keep as many frames as the ring has slots and the producer
// has nowhere to publish: it drops every new frame (ringctl shows them as
// "no slot" drops) and the loop waits until a kept frame is released.
// Keep frames for as short a time as the work allows.
func (f *Frame) Keep() *Frame {
	if f.copied {
		if !f.kept && !f.released.Load() {
			f.kept = true
			f.c.kept.Add(1)
		}
		return f
	}
	if f.handle {
		return f
	}
	if f.keptAs != nil {
		return f.keptAs
	}
	if !f.lease.Valid() {
		// Released already: a handle that is released too.
		return &Frame{c: f.c, meta: f.meta, epoch: f.epoch, handle: true}
	}
	k := &Frame{c: f.c, lease: f.lease, meta: f.meta, epoch: f.epoch, handle: true}
	f.keptAs = k
	f.c.kept.Add(1)
	return k
}

// Release ends the frame's hold: in zero-copy mode its slot may be reused
// by the producer as soon as no lease holds it, and Bytes returns nil from
// then on. Calling it inside the loop on a frame that is not kept releases
// the frame early (the loop's own release then does nothing). A second
// Release returns ErrReleased. Release is safe to call from any goroutine.
func (f *Frame) Release() error {
	if f.copied {
		if f.released.Swap(true) {
			return fmt.Errorf("release frame %d: %w", f.meta.Seq, ErrReleased)
		}
		if f.kept {
			f.c.kept.Add(-1)
		}
		return nil
	}
	err := f.lease.Release()
	if errors.Is(err, ErrReleased) {
		return fmt.Errorf("release frame %d: %w", f.meta.Seq, err)
	}
	if f.handle || f.keptAs != nil {
		f.c.kept.Add(-1)
	}
	if err != nil {
		// Released, but revoked first (an eviction): say whether the bytes
		// the caller read were intact.
		f.c.noteRelease(err)
		return fmt.Errorf("release frame %d: %w", f.meta.Seq, err)
	}
	return nil
}

// Check tells whether what was read from the frame so far is good (see
// ringbuf.Lease.Check): nil while the frame holds its slot (always, in
// safe-copy mode); ErrRevoked if the producer evicted this consumer but
// the bytes are still intact; ErrRevoked wrapping ringbuf.ErrOverwritten
// if they changed — discard what was computed from them. A consumer that
// holds frames long (or many) calls it before acting on a result.
func (f *Frame) Check() error {
	if f.copied {
		return nil
	}
	return f.lease.Check()
}
