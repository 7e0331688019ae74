// Package native is framering's frame-grabber boundary: the only package
// that imports "C". It contains a simulated frame-grabber SDK written in C
// (frsdk.h, modelled on GenICam GenTL data streams, V4L2 streaming
// I/O and Aravis buffers), its Go wrapper, and a pure-Go synthetic source
// with the same semantics, both behind the Grabber interface, which a real
// SDK or a V4L2 backend can implement too; and, with build tags, real
// sources: GStreamer pipelines (gst) and GenICam cameras through Aravis
// (aravis).
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
// only once data flows); its first frame waits in the sink until Start
// (the streaming thread blocks, later data waits upstream: a network
// source's socket buffer, a driver's queue), so a stream whose first frame
// brought the caps loses nothing while the application sizes its buffers.
// The sink never waits for the clock (sync=false) and never drops late
// frames.
//
// Frames: ids count every buffer that reached the sink after Start, and
// one for each discontinuity upstream (below). A buffer too small for the
// negotiated frame is lost as loss.SizeMismatch, one flagged CORRUPTED as
// loss.Incomplete, a GAP buffer or one that cannot be mapped as
// loss.SourceError (Counters.Lost); with acquisition stopped NextFrameID ==
// Delivered + Underruns + Lost.Total(). Losses upstream of the sink (a
// driver's or the network's) cannot be counted exactly there: the first
// buffer after them carries DISCONT, passed on as FlagGstDiscont, and every
// DISCONT but the stream's first consumes one id, counted as
// loss.Incomplete (at least one frame lost upstream; rtpgstdepay, for one,
// drops a frame with a lost packet). DeviceTimestamp is the buffer's PTS in
// nanoseconds (0 when it has none). Timestamp (CLOCK_MONOTONIC): for a live pipeline, the
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
// # The Aravis camera backend (build tag aravis)
//
// Open(KindAravis, cfg) drives a GenICam camera (GigE Vision or USB3
// Vision) through libaravis-0.8, in builds with the "aravis" tag and cgo
// (aravis.go, the C shim arvshim.c); elsewhere it returns ErrNoAravis,
// whose text says how to get it. Config.Camera selects the camera and
// lists GenICam features to set; Open negotiates the GigE packet size,
// applies the settings in order, and reads back what the camera will send:
// Config().Geometry (width, height, PFNC pixel format, packed stride) and
// PayloadSize are what buffers (ring slots) must hold, and Config().Rate is
// the camera's AcquisitionFrameRate. The cfg's own Geometry and Rate are
// ignored: a camera decides its own.
//
// Zero-copy: Announce wraps the caller's memory (a ring slot) in an
// ArvBuffer whose data is that memory (arv_buffer_new_full with
// preallocated data); Queue pushes it to the stream; Aravis's receive
// thread writes each packet's payload straight into it; Dequeue pops it
// and leases the same memory. Dequeue checks that the data Aravis reports
// is the buffer's own (a frame anywhere else is FrameFailed, never
// published), and a test checks every frame against Aravis's own pointer.
// Allocate (safe-copy mode) makes an ArvBuffer whose memory Aravis
// allocates; Frame.CopyTo copies it out.
//
// Ownership across the boundary:
//
//	| buffer state                 | allocated by        | owned by (may write it)             | valid until                  | released by                              |
//	|------------------------------|---------------------|-------------------------------------|------------------------------|------------------------------------------|
//	| announced memory (ring slot) | the caller          | the caller                          | the caller unmaps it         | the caller, after Revoke or Close        |
//	| its ArvBuffer                | Announce            | this package (one GObject ref)      | Revoke or Close              | Revoke, Close (the memory is not freed)  |
//	| queued, pending (no stream)  | -                   | this package                        | Start or reconnect pushes it | Stop (back idle)                         |
//	| pushed to the stream         | -                   | Aravis's receive thread             | popped, or the stream freed  | Dequeue's pop; Stop, Close and a lost    |
//	|                              |                     |                                     |                              | camera free the stream, joining the thread|
//	| completed, in Aravis's queue | -                   | Aravis (nobody writes it)           | popped, or the stream freed  | Dequeue; Stop discards it (Discarded)    |
//	| leased Frame                 | -                   | the lease holder                    | Requeue, Detach, Close       | Requeue or Detach, exactly once          |
//	| allocated (safe-copy) memory | Aravis (g_malloc)   | Aravis while pushed, else the lease | Revoke or Close              | Revoke, Close (the ArvBuffer's last ref) |
//
// The rule behind the table: memory lent to Aravis is never handed to
// anyone else, and Stop and Close free the stream — which joins its
// receive thread and drops Aravis's references to every buffer it held —
// before they return, so a caller that unmaps a slot after Stop+Revoke or
// Close can never be written by a camera thread. A camera that goes away
// mid-run gets the same treatment before it is reopened; its queued
// buffers wait, still queued, for the new stream.
//
// Frame identity and metadata. FrameInfo.FrameID is the camera's block id
// unwrapped into a rising 64-bit count: GigE Vision block ids are 16 bits
// (1..65535, 0 skipped) and wrap, and a camera that restarts starts over;
// FrameID equals the block id until the first wrap, then keeps counting
// (after a reconnect it continues past the frames counted lost). The low
// 16 bits of the block id itself are in FrameInfo.Flags bits 16-31. The
// ring's sequence number remains a frame's identity downstream.
// DeviceTimestamp is the camera's timestamp in nanoseconds (Aravis converts
// its ticks with the camera's tick frequency). Timestamp is the capture
// time on CLOCK_MONOTONIC: Aravis stamps a frame with CLOCK_REALTIME
// (g_get_real_time, microseconds, when its first packet arrives), and
// Dequeue subtracts the realtime-minus-monotonic offset sampled at that
// moment between two monotonic reads (error: the clock's slew since the
// first packet, well under a microsecond per millisecond), clamping the
// result to now so that a realtime step between capture and Dequeue can
// never date a frame in the future. Geometry is checked per frame: a
// complete frame whose size, pixel format or padding differs from
// Config's comes out as FrameSizeMismatch.
//
// Losses. A buffer Aravis returns with another status than success is
// handed out with the matching FrameStatus (missing packets or a wrong
// packet id: FrameIncomplete; timeout: FrameTimeout; size mismatch:
// FrameSizeMismatch; aborted: FrameAborted; anything else: FrameFailed),
// so the producer counts it under FrameStatus.Cause() and never publishes
// it. A frame whose first packets arrive while no buffer is queued is
// filled from the packet that finds one (queued meanwhile) on: Aravis
// returns it as a timeout (resend on: it asks for the missing packets and,
// until its frame retention runs out, 100 ms by default, holds back the
// frames completed after it) or with missing packets (resend off), with
// the block id and the bytes the buffer had before; hence only a complete
// frame's block id is trusted (frameID in aravis.go). Such a frame is
// handed out as FrameUnderrun (cause loss.Underrun) instead: its leader
// (packet 0, which alone sets the buffer's system timestamp, cleared at
// every push) never came, and the stream's own underrun counter moved
// since the last complete frame began. A frame that got its leader and
// lost later packets keeps Aravis's status, even when the stream underran
// meanwhile (the frames behind one held back for resends find no buffer);
// one whose leader was lost on the way while the stream also underran is
// counted as an underrun: the counter cannot tell them apart. Frames lost
// without a buffer show as gaps in the block ids: counted as Underruns
// when the stream's underrun counter moved since the last complete frame
// began (the same reading as above, so frames lost whole around a frame
// handed out as FrameUnderrun are underruns too), else in Counters.Lost
// under loss.Incomplete (every packet of the frame was lost). A frame
// handed out, whatever its status, is in Delivered and counted once, by
// the producer, under its status's cause; Underruns and Lost hold only
// frames never handed out. Frames due while the camera is gone are
// counted in Counters.Lost under loss.CameraLost, estimated from the
// camera's frame rate and the time it was gone (0 for a triggered camera).
// NextFrameID is Delivered + Underruns + Lost.Total(). Aravis's stream
// statistics (completed buffers, failures, underruns, missing and resent
// packets, resend requests, ...; every stream since Open added up) and the
// camera's disconnects and reconnects are reachable through StatsReporter.
//
// Camera lost. The backend's supervisor goroutine runs while acquisition
// does. It takes the camera as lost when Aravis's heartbeat reports the
// control lost, or when no frame came for CameraOptions.ProbeAfter and a
// register read (the GigE control-privilege register) fails or shows the
// camera no longer ours (it restarted). It then frees the stream, closes
// the camera and tries every ReopenEvery to open it again with the same
// settings; the camera must come back with the geometry the buffers were
// sized for. Meanwhile Dequeue returns an error wrapping ErrSourceLost
// (after waiting up to its timeout, at most a second, for the camera), so
// the producer's loop reports it and goes on; once reopened, frames flow
// into the same buffers, without the ring or its consumers restarting.
// Aravis's own control-lost signal is not enough on its own: when a GigE
// camera stops answering, Aravis 0.8 keeps the last privilege value it read
// and never emits it; the probe covers that case.
//
// Callback or polling. Dequeue can learn of a completed buffer by waiting
// in arv_stream_timeout_pop_buffer (NotifyPoll, the default: the calling
// thread sleeps on Aravis's queue, woken directly by the receive thread,
// in slices of 20 ms so that Stop and a context are noticed), or by
// Aravis's receive thread calling into Go for every buffer (NotifyCallback:
// the stream callback, a cgo.Handle passed as an integer through an
// //export function that pokes a one-slot channel — it never blocks or
// allocates, the handle is deleted only after every stream is freed, so no
// callback can follow Close; then Dequeue pops without waiting). Measured
// with BenchmarkAravisNotify (the simulator at its maximum rate, 64x64
// Mono8, on a loaded 2-core VM, several runs): polling cost 31-73 µs of
// CPU per frame and 28-40 µs p50 latency from first packet to Dequeue;
// the callback 117-146 µs and 64-77 µs. A call from a thread Go did not create into Go, then a
// goroutine wake-up, costs more than the one futex wake the queue does, so
// polling is the default; the callback stays available, tested under
// -race and GOEXPERIMENT=cgocheck2 like the rest. The GObject "new-buffer"
// signal was not used for the callback: it runs the same code path plus a
// signal emission under the stream's recursive mutex.
//
// Threads: Aravis's receive thread per stream (writes buffers, may call
// the callback), its GigE heartbeat thread per camera (may set the
// control-lost flag, C only), the supervisor goroutine, and the callers'.
// Every camera control call (features, start, stop, probe, reopen) is
// serialized by one mutex; GenICam access in Aravis is not thread-safe.
//
// # Errors
//
// Every error wraps either an SDK Status (errors.Is against the ErrX
// sentinels in errors.go, which are Status values) or one of the Go-side
// sentinels (ErrLeaseEnded, ErrNotShared, ErrNoCgo, ErrUnknownKind,
// ErrNoAravis, ErrCamera, ErrSourceLost, ErrNoFrame), or a context's error
// from Dequeue. Nothing here panics on bad input.
//
// # Testing the C code
//
// TestCSanitizers compiles frsdk.c with testdata/sdk_test.c under
// -fsanitize=address,undefined and -fsanitize=thread and runs the driver;
// TestAravis/CSanitizers does the same for the Aravis shim (arvshim.c with
// testdata/arvshim_test.c, ASan and UBSan, against the camera simulator);
// the Go tests run under -race and GOEXPERIMENT=cgocheck2 as well.
package native
