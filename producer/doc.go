// Package producer is framering's producer process as a library: it creates
// a ring (ringbuf), opens a frame grabber (native) and moves every frame the
// grabber takes into a ring slot, where consumers in other processes attach
// by the ring's name at any time. cmd/producer is only its flags, signals
// and summary line.
//
// # Use
//
//	st, err := producer.Run(ctx, producer.Config{Name: "cam0"})
//
// runs until ctx ends (a cancelled ctx is a normal end) and returns the
// final Stats. New, Producer.Run and Producer.Close do the same in steps,
// for callers that want the ring's socket path or live Stats and Snapshots
// while it runs.
//
// # Modes
//
// Zero-copy (the default): every ring slot's payload is announced to the
// grabber once, at New. The loop keeps QueueDepth slots lent to the grabber:
// it Acquires free slots from the ring and Queues their buffers. When the
// grabber has filled one, Dequeue hands it back, and the filled buffer is the
// ring slot: the loop Publishes it in place with the frame's metadata (frame
// id, capture timestamp, geometry, format, length) and Detaches the lease,
// which gives the buffer back to the producer as idle, not to the grabber's
// input pool. The published slot is not requeued; a different free slot is
// queued in its place. Nothing is copied between the grabber and the
// consumers.
//
// Safe-copy (Config.Copy): the grabber fills QueueDepth buffers of its own
// (Allocate). For each frame the loop Acquires a ring slot, copies the frame
// into it (Frame.CopyTo), Requeues the private buffer and Publishes the slot.
// It costs one copy per frame and never lends ring memory to the grabber.
// With no free slot the frame is dropped (ringbuf.DropNoSlot) and the buffer
// requeued.
//
// Both modes publish byte-identical frames for the same frame ids.
//
// # GStreamer sources
//
// With Config.Source native.KindGst the grabber is a GStreamer pipeline
// (Config.Pipeline). New opens it before creating the ring: the geometry,
// format and, for a live pipeline, the frame rate are what its caps
// negotiated (Config returns them), and the slots are sized for that. In
// zero-copy mode GStreamer's elements write into the lent slots through the
// sink's buffer pool (see package native); a non-live pipeline (a file) is
// paced by the slots and loses nothing while consumers keep up, a live one
// (a camera) underruns like any camera. In safe-copy mode the pipeline
// fills private buffers and a frame with no free ring slot is dropped. The
// end of the stream ends Run after the last frame, with a nil error.
//
// # Slot ownership, zero-copy
//
//	| state                 | entered by                  | who may write the payload    | left by                               |
//	|-----------------------|-----------------------------|------------------------------|---------------------------------------|
//	| free (in the ring)    | Abort, or a reuse decision  | nobody                       | Acquire                               |
//	| lent, queued          | Acquire + Grabber.Queue     | the grabber (its C thread)   | the grabber fills it                  |
//	| lent, filled          | the grabber's fill          | nobody (the grabber is done) | Dequeue                               |
//	| lent, leased          | Dequeue (a native.Frame)    | nobody (the producer reads)  | Publish + Detach; Requeue if the      |
//	|                       |                             |                              | frame was incomplete (stays lent)     |
//	| published             | Publish, then Detach        | nobody: consumers read it,   | Acquire, once no consumer holds it    |
//	|                       |                             | lossless ones pin it         | and every lossless one passed it      |
//	| reused                | Acquire (generation odd)    | -> lent, queued              | Grabber.Queue                         |
//	| lent, at shutdown     | Grabber.Stop gives it back  | nobody                       | Abort, then Grabber.Close revokes all |
//
// The ring lends a slot (Acquire makes its generation odd, so no reader
// trusts its bytes) before the grabber may write it, and takes it back
// (Publish makes the generation even) only after the grabber gave the
// buffer back. A published slot is never queued: its buffer is detached,
// idle with the producer, until the ring hands the slot out again.
//
// In safe-copy mode the ring slot goes free -> lent (Acquire) -> written by
// the producer's copy -> published, and the grabber only ever writes its
// private buffers (queued -> filled -> leased -> Requeue).
//
// # Never blocking on a consumer
//
// The producer never waits for a consumer. A consumer that holds leases on
// every slot, or a lossless consumer that has not passed them, leaves
// Acquire without a slot: in zero-copy mode the grabber's input pool runs
// dry and the frames that fall due are lost as grabber underruns; in
// safe-copy mode the dequeued frame is dropped for want of a slot. A
// lossless consumer that keeps this up for Config.EvictAfter is evicted by
// the ring and frames flow again.
//
// # Accounting
//
// Every frame id the grabber consumes is counted once: published,
// ringbuf.DropNoSlot, ringbuf.DropSource (incomplete frames),
// ringbuf.DropUnderrun (the grabber's Counters.Underruns, moved into the
// ring by delta as the loop sees them), or discarded (filled but not yet
// dequeued when the grabber is stopped at shutdown; counted in Stats only,
// as the ring is closing). The drops are in the ring's header, where every
// consumer and ringctl sees them. After Run returns,
// Stats.Frames == Stats.Accounted().
//
// # Shutdown
//
// When Run's context ends (or the source's stream ends: the grabber's
// Dequeue returns native.ErrStopped, which only the source's end can cause
// while Run runs) the loop finishes the frame in hand, and then, in
// this order: the stats goroutine ends; the grabber is stopped (queued and
// filled buffers come back idle; the slots still lent are Aborted); the
// grabber is closed, which revokes every announced buffer, so that from here
// no grabber thread touches a slot; and only then is the ring closed, which
// marks it closed in shared memory and wakes every waiting consumer.
// Consumers keep their own mappings: a lease they hold stays readable. A
// producer that crashed leaves a stale socket, which the next producer on
// the same name replaces (ringbuf.Create); no manual cleanup is needed.
//
// # Logging
//
// Every Config.StatsInterval, a "producer stats" line (frame rate,
// published, drops by cause, consumers, evictions, reclaims) and a
// "consumer stats" line per consumer (name, pid, mode, state, lag,
// delivered, skipped, missed, held) are written to Config.Logger.
//
// # Supervision
//
// The ring notices a consumer's death by its socket closing and by its
// pidfd (epoll), and reclaims its holds. With Config.ExitWatch the producer
// also loads an eBPF program (package exitwatch, written with
// cilium/ebpf/asm, no C compiler) on the sched_process_exit tracepoint,
// keeps it watching the pids of the consumer table, and logs and counts
// (Stats.KernelExits) each consumer exit the kernel reports, and tells the
// ring (ringbuf.Producer.ConsumerExited), which reclaims the consumer at
// once if the process's own pidfd confirms it is exiting; the socket and
// pidfd paths stay authoritative. When the program cannot load (no
// privilege, an old kernel), the reason is logged and the producer runs
// without it.
//
// # Errors
//
// Errors wrap one of the sentinels in errors.go (ErrConfig, ErrRing,
// ErrGrabber, ErrClosed) and, where the ring or the grabber failed, that
// package's own error as well.
package producer
