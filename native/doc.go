// Package native is framering's frame-grabber boundary: the only package
// that imports "C". It contains a simulated frame-grabber SDK written in C
// (frsdk.h, modelled on GenICam GenTL data streams, V4L2 streaming
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
// # The GStreamer source (build tag gst)
//
// Open(KindGst, Config{Pipeline: "..."}) parses the description with
// framering's own sink appended ("DESC ! frameringsink", frgst.c: a
// GstBaseSink and a GstBufferPool written for this), sets it to PAUSED (a
// live pipeline to PLAYING) and waits up to GstOpenTimeout for caps. The
// caps make the geometry: video/x-raw GRAY8, GRAY16_LE, RGB, BGR, YUY2,
// UYVY and video/x-bayer (the table is gst_common.go), single plane,
// GStreamer's default stride (rows 4-byte aligned). Config then reports them; the producer sizes its ring
// from it. Once negotiated, the sink offers only that geometry, so a
// flexible upstream (videoconvert, videoscale) keeps producing it; caps of
// another geometry later fail the source with ErrPipeline and a message
// that says so ("a geometry change needs a new producer"): the buffers
// were sized for the first one.
//
// Zero-copy: the sink answers the allocation query with its pool, whose
// buffers wrap the queued buffers themselves (gst_memory_new_wrapped with
// a destroy notify). Elements that allocate from the downstream pool
// (videotestsrc, videoconvert and other GstVideoFilters, decoders built on
// GstVideoDecoder, v4l2src io-mode=userptr) write frames straight into the
// ring's slots. A buffer that reaches the sink in other memory (an element
// that ignored the pool, a sub-buffer, a stride of its own in a
// GstVideoMeta) is copied once, row by row, into a queued buffer: counted
// in Counters.Copies and flagged FlagGstCopied in the frame's flags.
//
// Pacing: a non-live pipeline (a file, videotestsrc) waits for a queued
// buffer (in the pool, or in the sink before a copy): it runs as fast as
// buffers are queued and never underruns, like Rate 0. A live pipeline
// (NO_PREROLL: v4l2src, rtspsrc, videotestsrc is-live=true) never waits: a
// frame with no queued buffer is an underrun (its id consumed); Config.Rate
// is its caps' frame rate. A live pipeline plays from Open (many negotiate
// only once data flows); its frames before Start are dropped and not
// counted. The sink never waits for the clock (sync=false) and never drops
// late frames.
//
// Frames: ids count every buffer that reached the sink after Start, dense.
// A buffer too small for the negotiated frame is lost as
// loss.SizeMismatch, one flagged CORRUPTED as loss.Incomplete, a GAP buffer
// or one that cannot be mapped as loss.SourceError (Counters.Lost); with
// acquisition stopped NextFrameID == Delivered + Underruns + Lost.Total().
// Losses upstream of the sink (a driver's or the network's) are not
// countable there; the first buffer after them carries DISCONT, passed on
// as FlagGstDiscont. DeviceTimestamp is the buffer's PTS in nanoseconds (0
// when it has none). Timestamp (CLOCK_MONOTONIC): for a live pipeline, the
// PTS as a running time plus the pipeline's base time, converted from the
// pipeline clock to CLOCK_MONOTONIC by the two clocks' offset at arrival
// (exact for GStreamer's default monotonic system clock), never later than
// the arrival; for a non-live pipeline, which runs ahead of its PTS, and
// for a buffer without PTS, the time the frame reached the sink.
//
// End of stream: Dequeue returns the frames still filled, then ErrStopped,
// as after Stop. A pipeline error (an element's, or refused caps): the
// frames still filled, then an error wrapping ErrPipeline with GStreamer's
// text.
//
// Buffer ownership with GStreamer, on top of the table above. A buffer is
// "at home" when no GstMemory over it exists; the sink's pool lends
// upstream only queued buffers at home, and the sink copies only into
// queued buffers at home:
//
//	| buffer state            | who may write it             | GStreamer holds                  | left by                                   |
//	|-------------------------|------------------------------|----------------------------------|-------------------------------------------|
//	| queued                  | nobody                       | nothing, or read-only references | lent (pool, at home only); the sink       |
//	|                         |                              | left from an earlier frame       | copies into it (at home only)             |
//	| lent upstream           | the element that acquired it | the GstMemory over it            | reaches the sink (filled); freed unfilled |
//	|                         |                              |                                  | (queued again); Stop                      |
//	| filling (sink's copy)   | the sink's streaming thread  | nothing                          | filled                                    |
//	| filled, leased          | nobody (read)                | the sink's reference; the memory | Requeue or Detach drop the sink's         |
//	|                         |                              | is READONLY from here            | reference; Stop discards unleased ones    |
//	| detached (published)    | nobody (read)                | read-only references elements    | queued again: lent only once at home      |
//	|                         |                              | kept (a tee branch, a queue)     |                                           |
//
// Rules that follow:
//   - GStreamer writes a buffer only between the pool lending it and the
//     frame reaching the sink; from there the memory is read-only
//     (GST_MEMORY_FLAG_READONLY), so an element that kept a reference can
//     no longer write the published slot in place (GStreamer copies).
//   - Stop sets the pipeline to NULL (every streaming thread joined) and
//     waits until no buffer but the leased ones is referenced; Close
//     destroys the pipeline and waits for the rest. Both bound the wait
//     (5 s): an element that leaks a reference makes them return ErrBusy,
//     the buffer is never lent again, and allocated memory it points into
//     is never unmapped. After Close returns nil, GStreamer holds no
//     reference to announced memory.
//   - The device (C) lives while anything can reach it: the handle, the
//     sink, the pool, the bus handler and every GstMemory over a buffer
//     hold a reference.
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
// TestCSanitizers compiles frsdk.c with testdata/sdk_test.c under
// -fsanitize=address,undefined and -fsanitize=thread and runs the driver;
// the Go tests run under -race and GOEXPERIMENT=cgocheck2 as well.
package native
