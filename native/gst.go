//go:build gst && cgo

package native

// The GStreamer backend: a Grabber over a pipeline that ends in the C
// library's own sink (frgst.h and frgst.c, where the zero-copy mechanics and the
// C side's buffer states are described; the package documentation has
// the ownership table).
//
// Invariants kept by this file:
//
//  1. Every call into C holds mu for reading and checks closed; Close sets
//     closed with mu held for writing, after C has woken every waiter
//     (frg_shutdown), and only then frees the device (frg_close). So no C
//     call ever runs on a freed device.
//  2. Lock order: leases.mu, then mu (lease.go invariant 4). Close takes
//     them one after the other, never nested.
//  3. Announce, Allocate and Revoke call C with the lease table locked, so
//     the table's view of a buffer index changes together with C's.
//  4. No Go pointer is kept by C: the pointers passed (ids, infos, caps,
//     the error buffer) are used only during the call ("#cgo noescape");
//     announced memory is a shared mapping (checkShared), allocated memory
//     C's own. No C function calls back into Go ("#cgo nocallback").

/*
#cgo pkg-config: gstreamer-1.0 gstreamer-base-1.0 gstreamer-video-1.0
#cgo noescape frg_open
#cgo noescape frg_announce
#cgo noescape frg_allocate
#cgo noescape frg_dequeue
#cgo noescape frg_get_counters
#cgo noescape frg_last_error
#cgo nocallback frg_open
#cgo nocallback frg_announce
#cgo nocallback frg_allocate
#cgo nocallback frg_revoke
#cgo nocallback frg_queue
#cgo nocallback frg_requeue
#cgo nocallback frg_detach
#cgo nocallback frg_start
#cgo nocallback frg_stop
#cgo nocallback frg_dequeue
#cgo nocallback frg_get_counters
#cgo nocallback frg_last_error
#cgo nocallback frg_shutdown
#cgo nocallback frg_close
#include <stdlib.h>
#include "frgst.h"
*/
import "C"

import (
	"context"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/framering/framering/clock"
	"github.com/framering/framering/loss"
)

// GstAvailable reports whether this build includes the GStreamer backend.
const GstAvailable = true

// The C status codes are the Go Status values (frgst.h).
const (
	_ = uint(C.FRG_OK - StatusOK)
	_ = uint(StatusOK - C.FRG_OK)
	_ = uint(C.FRG_ERR_RESOURCE - StatusResource)
	_ = uint(StatusResource - C.FRG_ERR_RESOURCE)
	_ = uint(C.FRG_ERR_NOT_STARTED - StatusNotStarted)
	_ = uint(StatusNotStarted - C.FRG_ERR_NOT_STARTED)
	_ = uint(C.FRG_ERR_TIMEOUT - StatusTimeout)
	_ = uint(StatusTimeout - C.FRG_ERR_TIMEOUT)
	_ = uint(C.FRG_FLAG_DISCONT - FlagGstDiscont)
	_ = uint(FlagGstDiscont - C.FRG_FLAG_DISCONT)
	_ = uint(C.FRG_FLAG_COPIED - FlagGstCopied)
	_ = uint(FlagGstCopied - C.FRG_FLAG_COPIED)
	_ = uint(C.FRG_MAX_BUFFERS - MaxBuffers)
	_ = uint(MaxBuffers - C.FRG_MAX_BUFFERS)
)

type gstDevice struct {
	l         leases
	cfg       Config // what the pipeline negotiated; immutable
	closeOnce sync.Once

	mu     sync.RWMutex // invariant 1
	h      *C.frg_dev
	closed bool
}

// OpenGst runs cfg.Pipeline, terminated by framering's sink, until its caps
// are negotiated (at most GstOpenTimeout), and returns it stopped: the
// geometry, format and (for a live pipeline) frame rate it negotiated are
// in Config. Frames flow from Start. Errors wrap ErrPipeline (with
// GStreamer's text), ErrInvalid (no description) or frame.ErrFormat and
// frame.ErrGeometry (caps this package cannot describe).
func OpenGst(cfg Config) (Grabber, error) {
	if cfg.Pipeline == "" {
		return nil, fmt.Errorf("open gst source: %w: no pipeline description", ErrInvalid)
	}
	if cfg.HasFaults() {
		return nil, fmt.Errorf("open gst source: %w: injected faults are the synthetic source's", ErrInvalid)
	}
	desc := C.CString(cfg.Pipeline)
	defer C.free(unsafe.Pointer(desc))
	allowed := C.CString(gstAllowedCaps())
	defer C.free(unsafe.Pointer(allowed))
	var (
		h      *C.frg_dev
		caps   C.frg_caps
		errbuf [1024]C.char
	)
	st := C.frg_open(desc, allowed, C.int64_t(GstOpenTimeout), &h, &caps, &errbuf[0], C.size_t(len(errbuf)))
	if st != C.FRG_OK {
		msg := C.GoString(&errbuf[0])
		if st == C.FRG_ERR_PIPELINE {
			return nil, fmt.Errorf("open gst source: %w: %s", ErrPipeline, msg)
		}
		return nil, fmt.Errorf("open gst source: %w: %s", Status(st), msg)
	}
	d := &gstDevice{h: h}
	d.l.owner = d
	g, err := gstGeometry(C.GoString(&caps.media[0]), C.GoString(&caps.format[0]),
		int(caps.width), int(caps.height), int(caps.stride), uint64(caps.size))
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("open gst source: %w", err)
	}
	d.cfg = Config{Geometry: g, Pipeline: cfg.Pipeline}
	if caps.live != 0 && caps.fps_n > 0 && caps.fps_d > 0 {
		d.cfg.Rate = min(float64(caps.fps_n)/float64(caps.fps_d), MaxFrameRate)
	}
	return d, nil
}

// Config returns what the pipeline negotiated: Rate is the caps' frame
// rate for a live pipeline, 0 for one paced by the queued buffers.
func (d *gstDevice) Config() Config { return d.cfg }

// SetConfig accepts only the configuration in effect: a GStreamer
// source's geometry is its caps'.
func (d *gstDevice) SetConfig(cfg Config) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return fmt.Errorf("set config: %w", ErrClosed)
	}
	if cfg != d.cfg {
		return fmt.Errorf("set config: %w: a GStreamer source produces what its pipeline negotiates (%dx%d %v); change the pipeline's caps instead",
			ErrInvalid, d.cfg.Geometry.Width, d.cfg.Geometry.Height, d.cfg.Geometry.Format)
	}
	return nil
}

// status turns a C status into a Status (FRG_ERR_PIPELINE has its own
// error, built by pipelineErr).
func gstStatus(st C.int) Status { return Status(st) }

// pipelineErr is the pipeline's failure, with GStreamer's text.
func (d *gstDevice) pipelineErr(verb string) error {
	var buf [1024]C.char
	d.mu.RLock()
	if !d.closed {
		C.frg_last_error(d.h, &buf[0], C.size_t(len(buf)))
	}
	d.mu.RUnlock()
	return fmt.Errorf("%s: %w: %s", verb, ErrPipeline, C.GoString(&buf[0]))
}

func (d *gstDevice) Announce(buf []byte) (BufferID, error) {
	if err := checkAnnounce(buf); err != nil {
		return 0, err
	}
	d.l.mu.Lock()
	defer d.l.mu.Unlock()
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.l.closed || d.closed {
		return 0, fmt.Errorf("announce buffer: %w", ErrClosed)
	}
	var id C.uint64_t
	if st := C.frg_announce(d.h, unsafe.Pointer(unsafe.SliceData(buf)), C.uint64_t(len(buf)), &id); st != C.FRG_OK {
		return 0, fmt.Errorf("announce buffer: %w", gstStatus(st))
	}
	d.l.setBuffer(BufferID(id), buf)
	return BufferID(id), nil
}

func (d *gstDevice) Allocate(size int) (BufferID, error) {
	if size <= 0 {
		return 0, fmt.Errorf("allocate buffer: %w", ErrBufferSize)
	}
	d.l.mu.Lock()
	defer d.l.mu.Unlock()
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.l.closed || d.closed {
		return 0, fmt.Errorf("allocate buffer: %w", ErrClosed)
	}
	var (
		id   C.uint64_t
		base unsafe.Pointer
	)
	if st := C.frg_allocate(d.h, C.uint64_t(size), &id, &base); st != C.FRG_OK {
		return 0, fmt.Errorf("allocate buffer: %w", gstStatus(st))
	}
	d.l.setBuffer(BufferID(id), unsafe.Slice((*byte)(base), size))
	return BufferID(id), nil
}

func (d *gstDevice) Revoke(id BufferID) error {
	d.l.mu.Lock()
	defer d.l.mu.Unlock()
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.l.closed || d.closed {
		return fmt.Errorf("revoke buffer: %w", ErrClosed)
	}
	if st := C.frg_revoke(d.h, C.uint64_t(id)); st != C.FRG_OK {
		return fmt.Errorf("revoke buffer: %w", gstStatus(st))
	}
	d.l.clearBuffer(id)
	return nil
}

func (d *gstDevice) Queue(id BufferID) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return fmt.Errorf("queue buffer: %w", ErrClosed)
	}
	if st := C.frg_queue(d.h, C.uint64_t(id)); st != C.FRG_OK {
		return fmt.Errorf("queue buffer: %w", gstStatus(st))
	}
	return nil
}

func (d *gstDevice) requeueBuffer(id BufferID) Status {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return StatusInvalidHandle
	}
	return gstStatus(C.frg_requeue(d.h, C.uint64_t(id)))
}

func (d *gstDevice) detachBuffer(id BufferID) Status {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return StatusInvalidHandle
	}
	return gstStatus(C.frg_detach(d.h, C.uint64_t(id)))
}

func (d *gstDevice) Start() error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return fmt.Errorf("start acquisition: %w", ErrClosed)
	}
	switch st := C.frg_start(d.h); st {
	case C.FRG_OK:
		return nil
	case C.FRG_ERR_PIPELINE:
		var buf [1024]C.char
		C.frg_last_error(d.h, &buf[0], C.size_t(len(buf)))
		return fmt.Errorf("start acquisition: %w: %s", ErrPipeline, C.GoString(&buf[0]))
	default:
		return fmt.Errorf("start acquisition: %w", gstStatus(st))
	}
}

// Stop sets the pipeline to NULL and takes back every buffer GStreamer
// had (see frg_stop). An element that keeps a reference to one past the
// bound is reported as ErrBusy; that buffer is never lent again before
// GStreamer lets it go.
func (d *gstDevice) Stop() error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return fmt.Errorf("stop acquisition: %w", ErrClosed)
	}
	if st := C.frg_stop(d.h); st != C.FRG_OK {
		return fmt.Errorf("stop acquisition: %w: GStreamer still references some buffers", gstStatus(st))
	}
	return nil
}

func (d *gstDevice) Dequeue(ctx context.Context, timeout time.Duration) (Frame, error) {
	var info C.frg_frame_info
	var end int64 // CLOCK_MONOTONIC end of the timeout, 0: none
	if timeout > 0 {
		end = clock.Nanos() + int64(timeout)
	}
	for {
		wait, err := dequeueWait(ctx, end)
		if err != nil {
			return Frame{}, err
		}
		d.mu.RLock()
		st := C.int(C.FRG_ERR_INVALID_HANDLE)
		if !d.closed {
			st = C.frg_dequeue(d.h, C.int64_t(wait), &info)
		}
		d.mu.RUnlock()
		switch st {
		case C.FRG_OK:
			f, err := d.l.begin(FrameInfo{
				Buffer:          BufferID(info.buffer),
				FrameID:         uint64(info.frame_id),
				Timestamp:       int64(info.timestamp_ns),
				Status:          FrameStatus(info.status),
				Geometry:        d.cfg.Geometry,
				Length:          int(info.length),
				DeviceTimestamp: uint64(info.pts),
				Flags:           uint32(info.flags),
			})
			if err != nil {
				return Frame{}, fmt.Errorf("dequeue frame: %w", err)
			}
			return f, nil
		case C.FRG_ERR_TIMEOUT:
		case C.FRG_ERR_PIPELINE:
			return Frame{}, d.pipelineErr("dequeue frame")
		default:
			return Frame{}, fmt.Errorf("dequeue frame: %w", gstStatus(st))
		}
	}
}

// Counters returns the device's counters; the zero value after Close.
// Lost counts, by cause, buffers that reached the sink but could not be
// frames: too small for the negotiated geometry (loss.SizeMismatch),
// flagged corrupted upstream (loss.Incomplete), gap buffers or buffers
// that could not be read (loss.SourceError); and, under loss.Incomplete,
// one for each discontinuity upstream (a DISCONT buffer after the first:
// at least one frame lost before the sink). With acquisition stopped,
// NextFrameID == Delivered + Underruns + Lost.Total().
func (d *gstDevice) Counters() Counters {
	var c C.frg_counters
	d.mu.RLock()
	closed := d.closed
	if !closed {
		C.frg_get_counters(d.h, &c)
	}
	d.mu.RUnlock()
	if closed {
		return Counters{}
	}
	out := Counters{
		Delivered:   uint64(c.delivered),
		Underruns:   uint64(c.underruns),
		Copies:      uint64(c.copies),
		Discarded:   uint64(c.discarded),
		NextFrameID: uint64(c.next_frame_id),
		Queued:      int(c.queued),
		Awaiting:    int(c.awaiting),
		Held:        int(c.held),
		Announced:   int(c.announced),
	}
	out.Lost[loss.SizeMismatch] = uint64(c.size_mismatch)
	out.Lost[loss.Incomplete] = uint64(c.incomplete) + uint64(c.discont_gaps)
	out.Lost[loss.SourceError] = uint64(c.source_errors)
	return out
}

// Close stops the pipeline, ends every lease, destroys the pipeline and
// waits until GStreamer references none of the buffers (ErrBusy if an
// element leaked one: its memory is then never unmapped by the device,
// and the caller should not unmap announced memory either). A second
// Close returns nil.
func (d *gstDevice) Close() error {
	var err error
	d.closeOnce.Do(func() {
		d.mu.RLock()
		C.frg_shutdown(d.h) // wakes every waiter in C; later calls fail
		d.mu.RUnlock()
		d.l.close()
		d.mu.Lock()
		d.closed = true
		h := d.h
		d.h = nil
		d.mu.Unlock()
		if st := C.frg_close(h); st != C.FRG_OK {
			err = fmt.Errorf("close gst source: %w: GStreamer still references some buffers after the pipeline was destroyed", gstStatus(st))
		}
	})
	return err
}
