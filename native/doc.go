// Package native is framering's frame-grabber boundary: the only package
// that imports "C". It contains a simulated frame-grabber SDK written in C
// (csdk/frsdk.h, modelled on GenICam GenTL data streams, V4L2 streaming
// I/O and Aravis buffers), its Go wrapper, and a pure-Go synthetic source
// with the same semantics, both behind the Grabber interface, which a real
// SDK or a V4L2 backend can implement too.
//
// # Backends
//
// Open(KindSDK, cfg) drives the C SDK through cgo (ErrNoCgo in a build with
// CGO_ENABLED=0); Open(KindSynthetic, cfg) is pure Go. Both fill buffers
// with exactly the frame package's test pattern (frame.Generator.Fill's
// bytes), return the same Status errors, and keep the same counters.
//
// # Streaming model
//
// The caller lends buffers to the device (Announce, or Allocate for
// device-private ones) and queues them into the device's input pool
// (Queue). Once started, the device takes the oldest queued buffer when a
// frame is due, writes the frame, stamps FrameInfo (frame id, CLOCK_MONOTONIC
// timestamp, status) and moves the buffer to its output queue. A frame due
// while the input pool is empty is lost: Counters.Underruns grows and the
// frame id is consumed, so the ids the caller sees show the gap. Dequeue
// leases the oldest filled buffer to the caller as a Frame; the lease ends
// with Frame.Requeue (back to the input pool) or Frame.Detach (back to the
// caller, idle: the zero-copy producer publishes the filled memory in place
// and queues a different free buffer). Stop gives every queued and every
// filled but not dequeued buffer back to the caller; Close also ends every
// lease and revokes every buffer.
//
// # Buffer ownership
//
//	| buffer state           | allocated by            | owned by (may write it)      | valid until                 | released by                         |
//	|------------------------|-------------------------|------------------------------|-----------------------------|-------------------------------------|
//	| announced memory       | the caller (MAP_SHARED) | the caller                   | the caller unmaps it        | the caller, after Revoke or Close   |
//	| announced, idle        | -                       | the caller                   | Queue                       | Queue, Revoke, Close                |
//	| queued / being filled  | -                       | the device (its thread)      | dequeued, Stop, Close       | Dequeue; Stop and Close give it back|
//	| filled, awaiting       | -                       | the device                   | Dequeue, Stop, Close        | Dequeue; Stop discards it (idle)    |
//	| leased Frame           | -                       | the lease holder (read/write)| Requeue, Detach, Close      | Requeue or Detach, exactly once     |
//	| detached               | -                       | the caller                   | Queue                       | Queue, Revoke, Close                |
//	| allocated memory       | the device (C mmap)     | the device; the lease holder | Revoke or Close             | the device, at Revoke or Close      |
//	|                        |                         | while a Frame is leased      |                             |                                     |
//
// Rules that follow:
//   - Announced memory must be outside the Go heap, because C keeps the
//     pointer: Announce admits only memory inside writable MAP_SHARED
//     mappings (a memfd ring slot, a shared anonymous mapping) and refuses
//     anything else with ErrNotShared, checking /proc/self/maps.
//   - The caller must keep announced memory mapped until the buffer is
//     revoked or the device closed. Close revokes every buffer before it
//     returns; after that the device never touches the memory.
//   - Frame.Bytes aliases the buffer: it is valid only while the lease is
//     live. After Requeue, Detach or Close it returns nil, and a slice
//     obtained earlier must not be used (allocated memory is unmapped at
//     Close). Frame.CopyTo is the copying path (safe-copy mode: the device
//     fills its own allocated buffers and the producer copies each frame
//     into a ring slot).
//   - A BufferID names a buffer of one device only; ids of other devices
//     and of revoked buffers are refused with ErrUnknownBuffer.
//
// # Errors
//
// Every error wraps either an SDK Status (errors.Is against the ErrX
// sentinels in errors.go, which are Status values) or one of the Go-side
// sentinels (ErrLeaseEnded, ErrNotShared, ErrNoCgo, ErrUnknownKind), or a
// context's error from Dequeue. Nothing here panics on bad input.
//
// # Testing the C code
//
// TestCSanitizers compiles csdk/frsdk.c with testdata/sdk_test.c under
// -fsanitize=address,undefined and -fsanitize=thread and runs the driver;
// the Go tests run under -race and GOEXPERIMENT=cgocheck2 as well.
package native
