package ringbuf

import "errors"

// The errors of the ring. Callers test them with errors.Is; every error the
// package returns wraps one of these or an operating-system error.
var (
	// ErrNotPublished is returned when a sequence number has not been
	// published yet (or is 0, which is never published).
	ErrNotPublished = errors.New("frame not yet published")
	// ErrOverwritten is returned when the frame with the requested sequence
	// number is gone: its slot was reused, or it changed during a read.
	// The reader fell behind; whatever it computed from the frame is void.
	ErrOverwritten = errors.New("frame overwritten")
	// ErrProducerGone is returned when the producer process exited or
	// dropped the connection without closing the ring, or when a socket
	// left by a crashed producer refuses connections.
	ErrProducerGone = errors.New("producer gone")
	// ErrClosed is returned when the ring was closed by its producer, or a
	// Producer, Reader or Lease is used after Close/Release.
	ErrClosed = errors.New("ring closed")
	// ErrIncompatible is returned when a segment or message has another
	// magic, layout version or geometry than this build understands.
	ErrIncompatible = errors.New("incompatible ring layout")
	// ErrCorrupt is returned when a segment is inconsistent: sizes or
	// offsets out of bounds, values that cannot be.
	ErrCorrupt = errors.New("corrupt ring segment")
	// ErrProtocol is returned when the peer breaks the attach protocol:
	// a malformed or unexpected message, a wrong number of descriptors.
	ErrProtocol = errors.New("protocol error")
	// ErrNoSuchRing is returned by Attach when no ring of that name
	// exists: no socket at its path (docs/LAYOUT.md 6.1).
	ErrNoSuchRing = errors.New("no such ring")
	// ErrNotResponding is returned by Attach when the producer accepted
	// the connection but did not answer in time: it is stopped or hung
	// (ringbuf.Inspect can still read its state from shared memory).
	ErrNotResponding = errors.New("producer not responding")
	// ErrEvicted is returned to a consumer that the producer evicted
	// (docs/LAYOUT.md 11.4): it fell behind as a lossless consumer, held
	// more slots than its quota, or its holds kept the producer from every
	// slot. Its leases are revoked; it should detach (and may re-attach).
	ErrEvicted = errors.New("consumer evicted")
	// ErrRevoked is returned by Lease.Release and Lease.Check for a lease
	// whose consumer was evicted while it held it: the producer no longer
	// honours the hold. Alone it means the frame was still intact; wrapped
	// together with ErrOverwritten it means the slot was reused and what
	// was read through the lease may be torn.
	ErrRevoked = errors.New("lease revoked")
	// ErrTooManyHeld is returned by Borrow when the consumer already holds
	// as many slots as the ring's hold quota allows.
	ErrTooManyHeld = errors.New("hold quota reached")
	// ErrNoFreeSlot is returned by Producer.Acquire when every slot is
	// published and either held by a consumer or not yet passed by a
	// lossless consumer. The frame that needed a slot is dropped.
	ErrNoFreeSlot = errors.New("no free slot")
	// ErrSlotState is returned when a slot is published or aborted twice,
	// or was never acquired.
	ErrSlotState = errors.New("slot not acquired")
	// ErrReleased is returned when a lease is used after Release.
	ErrReleased = errors.New("lease released")
	// ErrTooManyLeases is returned when a Reader already holds its maximum
	// number of leases.
	ErrTooManyLeases = errors.New("too many leases")
	// ErrRefused is returned when the producer refuses an attach: the peer
	// is not allowed, the consumer table is full, or the request is bad.
	ErrRefused = errors.New("attach refused")
	// ErrConfig is returned when a configuration value is impossible.
	ErrConfig = errors.New("invalid ring configuration")
	// ErrExists is returned when a live producer already serves the ring name.
	ErrExists = errors.New("ring already exists")
)
