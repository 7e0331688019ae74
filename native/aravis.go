//go:build aravis && cgo

package native

// The Aravis backend: a Grabber over a GenICam camera (GigE Vision, USB3
// Vision) driven through libaravis-0.8 and the C shim arvshim.c. The
// package documentation (doc.go, "The Aravis camera backend") has the
// ownership table, the timestamp conversion and the callback-or-polling
// decision.
//
// A buffer's states and their legal moves are the shared buffer table's
// (buftable.go); this file adds where a QUEUED buffer is (in a stream, or
// pending) and keeps the invariants below.
//
// Invariants kept by this file:
//
//  1. Aravis owns a buffer exactly while inStream is set: from frarv_push
//     (Queue, Requeue, or a (re)start pushing the pending ones) until a pop
//     returns it or the stream that held it has been freed. Nothing else
//     changes a buffer whose inStream is set, and its memory is never
//     handed to anyone (lease, caller) while it is set.
//  2. A stream is freed (frarv_stream_free joins its receive thread) only
//     after d.stream was cleared under mu and every Dequeue that had taken
//     it (inPop) has come back; so no pop runs on a freed stream, and once
//     teardown returns, no Aravis thread holds any buffer. Stop and Close
//     return only after that, so the caller may then unmap announced
//     memory.
//  3. A buffer is bufQueued iff it is in a stream (inStream) or in pending,
//     never both; pending buffers are pushed, in order, when a stream
//     exists again (Start, reconnect).
//  4. Lock order: ctlMu (camera control: every call that talks to the
//     camera or creates or frees a stream), then leases.mu, then mu. No
//     blocking C call runs with mu held; frarv_push (a queue push) and
//     frarv_buffer_free of an idle buffer do.
//  5. The per-frame path (Dequeue's pop, Requeue, Counters) allocates
//     nothing: the pop fills a C struct on the Go stack (#cgo noescape),
//     errors are built only on failure.

/*
#cgo pkg-config: aravis-0.8
#cgo CFLAGS: -O2 -Wall -Wextra
#cgo noescape frarv_open
#cgo noescape frarv_set_feature
#cgo noescape frarv_packet_size
#cgo noescape frarv_get_geometry
#cgo noescape frarv_stream_new
#cgo noescape frarv_buffer_alloc
#cgo noescape frarv_pop
#cgo noescape frarv_queues
#cgo noescape frarv_stream_stat
#cgo nocallback frarv_open
#cgo nocallback frarv_close
#cgo nocallback frarv_control_lost
#cgo nocallback frarv_probe
#cgo nocallback frarv_set_feature
#cgo nocallback frarv_packet_size
#cgo nocallback frarv_get_geometry
#cgo nocallback frarv_start
#cgo nocallback frarv_stop
#cgo nocallback frarv_buffer_new
#cgo nocallback frarv_buffer_alloc
#cgo nocallback frarv_buffer_free
#cgo nocallback frarv_push
#cgo nocallback frarv_pop
#cgo nocallback frarv_queues
#cgo nocallback frarv_stream_stat
#cgo nocallback frarv_stream_n_stats
#cgo nocallback frarv_free
#include <stdlib.h>
#include "arvshim.h"

extern void framering_arv_notify(uintptr_t handle);
*/
import "C"

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/cgo"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/framering/framering/clock"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/loss"
)

// AravisAvailable reports whether this build has the Aravis backend.
const AravisAvailable = true

// Defaults of CameraOptions' periods.
const (
	defaultProbeAfter  = time.Second
	defaultReopenEvery = 500 * time.Millisecond
	// lostReport bounds how long Dequeue waits while the camera is lost
	// before it returns ErrSourceLost, when its own timeout is longer.
	lostReport = time.Second
)

// arvOpenMu serializes opening cameras and listing them: both go through
// Aravis's process-wide interface and device lists.
var arvOpenMu sync.Mutex

// arvBuf is the backend's own part of a buffer (bufSlot.x), whose states
// are bufAnnounced, bufQueued and bufDelivered (buftable.go).
type arvBuf struct {
	arv      *C.ArvBuffer // our reference, held from Announce/Allocate to Revoke/Close
	inStream bool         // invariant 1
}

// arvNotifier is what the callback mode's cgo.Handle names: only the
// channel the exported callback pokes.
type arvNotifier struct{ ch chan struct{} }

type aravisDevice struct {
	l   leases
	log *slog.Logger

	notifier *arvNotifier // callback mode; nil when polling
	handle   cgo.Handle   // names notifier; deleted at Close
	timers   timers       // Dequeue's wait timers

	closeOnce sync.Once
	ctlMu     sync.Mutex // invariant 4

	mu      sync.Mutex
	cond    sync.Cond     // inPop back to 0; acquisition left acqStopping
	changed chan struct{} // closed (and replaced) at every state change Dequeue waits on
	opts    CameraOptions
	cfg     Config
	desc    string
	cam     *C.frarv_camera // nil while lost, and after Close
	stream  *C.ArvStream    // nil while stopped or lost
	acq     acqState
	epoch   uint64 // grows at every stream change: a pop of an older stream is stale
	inPop   int
	supStop chan struct{}
	supDone chan struct{}
	bufs    bufTable[arvBuf] // bufs.closed: Close has begun
	pending []int32          // queued buffers not in a stream, in queue order

	// Counters.
	delivered, underruns, discarded uint64
	lostCounts                      loss.Counts // finalized; CameraLost grows while lost (Counters)
	lost                            bool
	lostAt                          int64 // clock.Nanos
	lostWhy                         string
	disconnects, reconnects         uint64
	statsBase                       []SourceStat // statistics of freed streams
	arvUnderruns                    uint64       // the stream's n_underruns when last read (underran)
	underranAt                      int64        // clock.Nanos of the last read that saw it move, 0: none
	lastStart                       int64        // Timestamp of the last complete frame, 0: none

	// Frame identity: the camera's block id, unwrapped.
	wrap16        bool // GigE Vision 16-bit block ids (1..65535)
	haveBlock     bool
	lastBlock     uint64
	haveID        bool
	lastID        uint64
	rebase        uint64 // frames lost while the camera was gone, added to the next id
	failedSince   uint64 // frames handed out failed since the last complete one
	lastFrameAt   int64  // clock.Nanos of the last pop, or of (re)start
	lastProbeAt   int64
	lastReopenTry int64
}

// OpenAravis opens the camera cfg.Camera selects, applies its settings and
// reads back the geometry it will send. The geometry and frame rate in cfg
// are ignored: Config reports the camera's. It starts stopped.
func OpenAravis(cfg Config) (Grabber, error) {
	var o CameraOptions
	if cfg.Camera != nil {
		o = *cfg.Camera
		o.Settings = append([]FeatureSetting(nil), o.Settings...)
	}
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("open aravis grabber: %w", err)
	}
	if o.ProbeAfter == 0 {
		o.ProbeAfter = defaultProbeAfter
	}
	if o.ReopenEvery == 0 {
		o.ReopenEvery = defaultReopenEvery
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	d := &aravisDevice{bufs: newBufTable[arvBuf](), log: log.With("component", "aravis"), opts: o, changed: make(chan struct{})}
	d.l.owner = d
	d.cond.L = &d.mu
	cam, c, desc, err := d.openCamera()
	if err != nil {
		return nil, fmt.Errorf("open aravis grabber: %w", err)
	}
	d.cam, d.cfg, d.desc = cam, c, desc
	d.wrap16 = C.frarv_is_gv(cam) != 0
	if o.Notify == NotifyCallback {
		d.notifier = &arvNotifier{ch: make(chan struct{}, 1)}
		d.handle = cgo.NewHandle(d.notifier)
	}
	d.log.Info("camera open", "camera", desc, "width", c.Geometry.Width, "height", c.Geometry.Height,
		"format", c.Geometry.Format.String(), "payload", c.PayloadSize, "fps", c.Rate, "notify", d.notifyMode())
	return d, nil
}

func (d *aravisDevice) notifyMode() string {
	if d.notifier != nil {
		return NotifyCallback
	}
	return NotifyPoll
}

// takeMsg converts a string the shim returned and frees it.
func takeMsg(m *C.char) string {
	s := C.GoString(m)
	C.frarv_free(m)
	return s
}

// openCamera opens and configures the camera the options select: packet
// size, then the settings in order, then reads the geometry back. Needs
// ctlMu (or a device nobody else can reach yet).
func (d *aravisDevice) openCamera() (*C.frarv_camera, Config, string, error) {
	o := d.opts
	name := C.CString(o.Camera)
	defer C.free(unsafe.Pointer(name))
	var cam *C.frarv_camera
	arvOpenMu.Lock()
	msg := C.frarv_open(name, &cam)
	arvOpenMu.Unlock()
	if msg != nil {
		return nil, Config{}, "", fmt.Errorf("%w: %s", ErrCamera, takeMsg(msg))
	}
	c, desc, err := d.configure(cam, o.Settings)
	if err != nil {
		C.frarv_close(cam)
		return nil, Config{}, "", err
	}
	return cam, c, desc, nil
}

// configure applies the packet size and settings to an open camera and
// reads back what it will send.
func (d *aravisDevice) configure(cam *C.frarv_camera, settings []FeatureSetting) (Config, string, error) {
	o := d.opts
	desc := takeMsg(C.frarv_describe(cam))
	var ps C.uint
	if msg := C.frarv_packet_size(cam, C.int(o.PacketSize), &ps); msg != nil {
		return Config{}, "", fmt.Errorf("%w: %s: %s", ErrCamera, desc, takeMsg(msg))
	}
	if ps != 0 {
		desc += fmt.Sprintf(", packet size %d", uint(ps))
	}
	for _, s := range settings {
		n, v := C.CString(s.Name), C.CString(s.Value)
		var eff *C.char
		msg := C.frarv_set_feature(cam, n, v, &eff)
		C.free(unsafe.Pointer(n))
		C.free(unsafe.Pointer(v))
		if msg != nil {
			return Config{}, "", fmt.Errorf("%w: %s", ErrCamera, takeMsg(msg))
		}
		d.log.Info("feature set", "feature", s.Name, "asked", s.Value, "value", takeMsg(eff))
	}
	var g C.frarv_geometry
	if msg := C.frarv_get_geometry(cam, &g); msg != nil {
		return Config{}, "", fmt.Errorf("%w: %s", ErrCamera, takeMsg(msg))
	}
	f := frame.Format(g.pixel_format)
	pfName := C.GoString(&g.pixel_format_name[0])
	if !f.Valid() {
		return Config{}, "", fmt.Errorf("%w: the camera sends %s (PFNC %#08x), a pixel format framering's frame table does not know: choose another with -set PixelFormat=NAME",
			frame.ErrFormat, pfName, uint32(g.pixel_format))
	}
	if g.width <= 0 || g.height <= 0 || g.width > frame.MaxDimension || g.height > frame.MaxDimension {
		return Config{}, "", fmt.Errorf("%w: camera region %dx%d", frame.ErrGeometry, int64(g.width), int64(g.height))
	}
	geo := frame.Packed(int(g.width), int(g.height), f)
	if err := geo.Validate(); err != nil {
		return Config{}, "", err
	}
	if geo.Size() < frame.StampSize {
		return Config{}, "", fmt.Errorf("%w: a %d-byte frame is smaller than framering's %d-byte minimum", frame.ErrGeometry, geo.Size(), frame.StampSize)
	}
	payload := int(g.payload)
	if payload < geo.Size() {
		// A camera whose payload cannot hold its own image (a GenICam file
		// that lies): buffers are sized for the image.
		payload = geo.Size()
	}
	return Config{Geometry: geo, Rate: float64(g.frame_rate), PayloadSize: payload}, desc, nil
}

// bufferSize is the least size a buffer must have. Needs mu.
func (d *aravisDevice) bufferSize() int { return max(d.cfg.PayloadSize, d.cfg.Geometry.Size()) }

// signal wakes every Dequeue waiting on a state change. Needs mu.
func (d *aravisDevice) signal() {
	close(d.changed)
	d.changed = make(chan struct{})
	d.cond.Broadcast()
}

// Config returns the camera's configuration as last read, with a copy of
// the options it was opened with.
func (d *aravisDevice) Config() Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.cfg
	o := d.opts
	o.Settings = append([]FeatureSetting(nil), o.Settings...)
	c.Camera = &o
	return c
}

// SetConfig applies cfg.Camera.Settings to the open camera while stopped
// and reads the geometry back. cfg.Camera.Camera must name the same camera
// (or be empty); the geometry and rate in cfg are ignored. If an announced
// buffer cannot hold the new payload it fails with ErrBufferSize, and the
// camera keeps the settings.
func (d *aravisDevice) SetConfig(cfg Config) error {
	var o CameraOptions
	if cfg.Camera != nil {
		o = *cfg.Camera
	}
	if err := o.validate(); err != nil {
		return fmt.Errorf("set config: %w", err)
	}
	d.ctlMu.Lock()
	defer d.ctlMu.Unlock()
	d.mu.Lock()
	switch {
	case d.bufs.closed:
		d.mu.Unlock()
		return fmt.Errorf("set config: %w", ErrClosed)
	case d.acq != acqStopped:
		d.mu.Unlock()
		return fmt.Errorf("set config: %w", ErrBusy)
	case o.Camera != "" && o.Camera != d.opts.Camera:
		d.mu.Unlock()
		return fmt.Errorf("set config: %w: another camera (%q): open it instead", ErrInvalid, o.Camera)
	case d.cam == nil:
		d.mu.Unlock()
		return fmt.Errorf("set config: %w: %s", ErrSourceLost, d.lostWhy)
	}
	cam := d.cam
	d.mu.Unlock()
	c, _, err := d.configure(cam, o.Settings)
	if err != nil {
		return fmt.Errorf("set config: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	// The camera now has these settings on top of the earlier ones: a
	// reopen after a loss applies them all, in order.
	d.opts.Settings = append(d.opts.Settings[:len(d.opts.Settings):len(d.opts.Settings)], o.Settings...)
	if !d.bufs.fits(max(c.PayloadSize, c.Geometry.Size())) {
		return fmt.Errorf("set config: %w", ErrBufferSize)
	}
	d.cfg = c
	return nil
}

// Announce lends buf, which must lie in a writable shared mapping and hold
// the camera's payload, to the camera: it becomes an ArvBuffer whose data
// is buf itself.
func (d *aravisDevice) Announce(buf []byte) (BufferID, error) {
	if err := checkAnnounce(buf); err != nil {
		return 0, err
	}
	d.l.mu.Lock()
	defer d.l.mu.Unlock()
	id, _, st := d.add(buf, len(buf))
	if st != StatusOK {
		return 0, fmt.Errorf("announce buffer: %w", st)
	}
	d.l.setBuffer(id, buf)
	return id, nil
}

// Allocate makes a buffer whose memory Aravis allocates (safe-copy mode).
func (d *aravisDevice) Allocate(size int) (BufferID, error) {
	if size <= 0 {
		return 0, fmt.Errorf("allocate buffer: %w", ErrBufferSize)
	}
	d.l.mu.Lock()
	defer d.l.mu.Unlock()
	id, mem, st := d.add(nil, size)
	if st != StatusOK {
		return 0, fmt.Errorf("allocate buffer: %w", st)
	}
	d.l.setBuffer(id, mem)
	return id, nil
}

// add claims a buffer slot and makes its ArvBuffer: over mem (Announce),
// or over size bytes Aravis allocates (Allocate, mem nil). It returns the
// buffer's memory. The slot gets its memory before mu is released, so no
// one ever sees a live buffer without it. Needs l.mu.
func (d *aravisDevice) add(mem []byte, size int) (BufferID, []byte, Status) {
	d.mu.Lock()
	defer d.mu.Unlock()
	i, st := d.bufs.claim(mem, size, d.bufferSize())
	if st != StatusOK {
		return 0, nil, st
	}
	b := &d.bufs.slots[i]
	if mem == nil {
		var data unsafe.Pointer
		b.x.arv = C.frarv_buffer_alloc(C.size_t(size), C.uint64_t(i), &data)
		b.mem = unsafe.Slice((*byte)(data), size)
	} else {
		b.x.arv = C.frarv_buffer_new(unsafe.Pointer(unsafe.SliceData(mem)), C.size_t(len(mem)), C.uint64_t(i))
	}
	return d.bufs.id(i), b.mem, StatusOK
}

// Revoke takes back an idle buffer and drops its ArvBuffer (an allocated
// buffer's memory is freed).
func (d *aravisDevice) Revoke(id BufferID) error {
	d.l.mu.Lock()
	defer d.l.mu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	old, st := d.bufs.revoke(id)
	if st != StatusOK {
		return fmt.Errorf("revoke buffer: %w", st)
	}
	d.l.clearBuffer(id)
	C.frarv_buffer_free(old.x.arv)
	return nil
}

// Queue puts an idle buffer into the input pool: straight into the
// stream while one exists, else pending until one does.
func (d *aravisDevice) Queue(id BufferID) error {
	if st := d.transition(id, bufAnnounced, bufQueued); st != StatusOK {
		return fmt.Errorf("queue buffer: %w", st)
	}
	return nil
}

func (d *aravisDevice) requeueBuffer(id BufferID) Status {
	return d.transition(id, bufDelivered, bufQueued)
}

func (d *aravisDevice) detachBuffer(id BufferID) Status {
	return d.transition(id, bufDelivered, bufAnnounced)
}

// transition moves buffer id from state from to state to for the caller,
// handing a queued buffer to the stream (or pending).
func (d *aravisDevice) transition(id BufferID, from, to bufState) Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	i, st := d.bufs.apply(id, from, to)
	if st == StatusOK && to == bufQueued {
		d.enqueue(i)
	}
	return st
}

// enqueue hands queued buffer i to the stream, or keeps it pending.
// Needs mu.
func (d *aravisDevice) enqueue(i int) {
	if d.stream != nil {
		b := &d.bufs.slots[i].x
		b.inStream = true
		C.frarv_push(d.stream, b.arv)
		return
	}
	d.pending = append(d.pending, int32(i))
}

// Start creates the stream, gives it every queued buffer and starts the
// camera. With the camera lost (it went away and was not back at Stop),
// acquisition starts in the lost state and the camera is reopened when it
// answers.
func (d *aravisDevice) Start() error {
	d.ctlMu.Lock()
	defer d.ctlMu.Unlock()
	d.mu.Lock()
	switch {
	case d.bufs.closed:
		d.mu.Unlock()
		return fmt.Errorf("start acquisition: %w", ErrClosed)
	case d.acq != acqStopped:
		d.mu.Unlock()
		return fmt.Errorf("start acquisition: %w", ErrBusy)
	}
	cam := d.cam
	d.acq = acqRunning
	if d.lost {
		d.lostAt, d.lastReopenTry = clock.Nanos(), 0 // frames are due again; reopen at once
	}
	d.haveBlock = false // a camera may restart its block ids with acquisition
	d.lastFrameAt, d.lastProbeAt = clock.Nanos(), clock.Nanos()
	d.supStop, d.supDone = make(chan struct{}), make(chan struct{})
	stop, done := d.supStop, d.supDone
	d.mu.Unlock()
	if cam != nil {
		if err := d.startStream(cam); err != nil {
			d.mu.Lock()
			d.acq = acqStopped
			d.returnPending(false)
			d.signal()
			d.mu.Unlock()
			close(done)
			return fmt.Errorf("start acquisition: %w", err)
		}
	}
	go d.supervise(stop, done)
	return nil
}

// startStream creates a stream on cam, pushes the pending buffers into it
// and starts acquisition. Needs ctlMu.
func (d *aravisDevice) startStream(cam *C.frarv_camera) error {
	var s *C.ArvStream
	resend := C.int(1)
	if d.opts.NoResend {
		resend = 0
	}
	var fn C.frarv_notify_fn
	var h C.uintptr_t
	if d.notifier != nil {
		fn, h = C.frarv_notify_fn(C.framering_arv_notify), C.uintptr_t(d.handle)
	}
	if msg := C.frarv_stream_new(cam, resend, fn, h, &s); msg != nil {
		return fmt.Errorf("%w: %s", ErrCamera, takeMsg(msg))
	}
	d.mu.Lock()
	d.stream = s
	d.epoch++
	d.arvUnderruns, d.underranAt, d.lastStart = 0, 0, 0
	for _, i := range d.pending {
		b := &d.bufs.slots[i].x
		b.inStream = true
		C.frarv_push(s, b.arv)
	}
	d.pending = d.pending[:0]
	d.signal()
	d.mu.Unlock()
	if msg := C.frarv_start(cam); msg != nil {
		err := fmt.Errorf("%w: %s", ErrCamera, takeMsg(msg))
		d.teardown(true)
		return err
	}
	return nil
}

// teardown frees the current stream (invariant 2) after taking back every
// buffer in it: filled ones not yet dequeued are discarded. keepQueued
// keeps the buffers queued (pending, for the next stream: a camera lost
// while acquisition goes on); otherwise they go back to the caller, idle
// (Stop). Needs ctlMu.
func (d *aravisDevice) teardown(keepQueued bool) {
	d.mu.Lock()
	s := d.stream
	if s == nil {
		d.returnPending(keepQueued)
		d.mu.Unlock()
		return
	}
	d.stream = nil
	d.epoch++
	d.signal()
	for d.inPop > 0 {
		d.cond.Wait()
	}
	d.mu.Unlock()

	var info C.frarv_info
	for C.frarv_pop(s, 0, &info) != 0 {
		d.mu.Lock()
		d.returnStale(int(info.index), keepQueued)
		d.mu.Unlock()
	}
	d.mu.Lock()
	d.addStreamStats(s, &d.statsBase)
	d.mu.Unlock()
	C.frarv_stream_free(s) // joins the receive thread: Aravis holds no buffer any more
	d.mu.Lock()
	for i := range d.bufs.slots {
		if b := &d.bufs.slots[i].x; b.inStream {
			b.inStream = false
			d.pending = append(d.pending, int32(i))
		}
	}
	d.returnPending(keepQueued)
	d.mu.Unlock()
}

// returnStale takes back buffer i, popped from a stream being torn down:
// a filled frame nobody dequeued, discarded. Needs mu.
func (d *aravisDevice) returnStale(i int, keepQueued bool) {
	if i < 0 || i >= len(d.bufs.slots) || !d.bufs.slots[i].x.inStream {
		return
	}
	d.bufs.slots[i].x.inStream = false
	d.delivered++
	d.discarded++
	if keepQueued {
		d.pending = append(d.pending, int32(i))
	} else {
		d.bufs.move(i, bufQueued, bufAnnounced)
	}
}

// returnPending gives the pending buffers back to the caller, idle, unless
// keepQueued. Needs mu.
func (d *aravisDevice) returnPending(keepQueued bool) {
	if keepQueued {
		return
	}
	for _, i := range d.pending {
		d.bufs.move(int(i), bufQueued, bufAnnounced)
	}
	d.pending = d.pending[:0]
}

// Stop stops the camera, frees the stream (joining its thread) and gives
// every queued and every filled but not dequeued buffer back, idle.
func (d *aravisDevice) Stop() error {
	d.mu.Lock()
	if d.bufs.closed {
		d.mu.Unlock()
		return fmt.Errorf("stop acquisition: %w", ErrClosed)
	}
	d.mu.Unlock()
	return d.halt()
}

func (d *aravisDevice) halt() error {
	d.mu.Lock()
	for d.acq == acqStopping {
		d.cond.Wait()
	}
	if d.acq == acqStopped {
		d.mu.Unlock()
		return nil
	}
	d.acq = acqStopping
	stop, done := d.supStop, d.supDone
	d.signal()
	d.mu.Unlock()
	close(stop)
	<-done // the supervisor holds ctlMu while it probes or reopens

	d.ctlMu.Lock()
	var err error
	d.mu.Lock()
	cam := d.cam
	d.mu.Unlock()
	if cam != nil {
		if msg := C.frarv_stop(cam); msg != nil {
			err = fmt.Errorf("stop acquisition: %w: %s", ErrCamera, takeMsg(msg))
		}
	}
	d.teardown(false)
	d.ctlMu.Unlock()

	d.mu.Lock()
	if d.lost {
		// Still gone: count what was due until now and stop the clock;
		// no frame is due while stopped. Start resumes it, and the
		// supervisor goes on trying to reopen the camera.
		now := clock.Nanos()
		n := d.lostEstimate(now)
		d.lostCounts[loss.CameraLost] += n
		d.rebase += n
		d.lostAt = now
	}
	d.acq = acqStopped
	d.signal()
	d.mu.Unlock()
	return err
}

// supervise runs while acquisition runs: it notices a camera that went
// away (Aravis's control-lost, or no answer to a probe after ProbeAfter
// without frames) and reopens it when it is back.
func (d *aravisDevice) supervise(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := min(d.opts.ProbeAfter, d.opts.ReopenEvery) / 4
	t := time.NewTicker(max(tick, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		d.mu.Lock()
		lost, cam, now := d.lost, d.cam, clock.Nanos()
		quiet := now-d.lastFrameAt >= int64(d.opts.ProbeAfter) && now-d.lastProbeAt >= int64(d.opts.ProbeAfter)
		reopen := now-d.lastReopenTry >= int64(d.opts.ReopenEvery)
		d.mu.Unlock()
		switch {
		case !lost && cam != nil && C.frarv_control_lost(cam) != 0:
			d.loseCamera("Aravis reported the control of the camera lost")
		case !lost && cam != nil && quiet:
			d.ctlMu.Lock()
			r := C.frarv_probe(cam)
			d.ctlMu.Unlock()
			d.mu.Lock()
			d.lastProbeAt = clock.Nanos()
			d.mu.Unlock()
			switch r {
			case -1:
				d.loseCamera("the camera does not answer")
			case 1:
				d.loseCamera("the camera answers but is no longer ours (restarted, or taken by another application)")
			}
		case lost && reopen:
			d.reopen(stop)
		}
	}
}

// loseCamera tears the camera down and enters the lost state: Dequeue
// reports ErrSourceLost, queued buffers wait for the next stream, frames
// due meanwhile are counted (Counters.Lost, loss.CameraLost).
func (d *aravisDevice) loseCamera(why string) {
	d.ctlMu.Lock()
	defer d.ctlMu.Unlock()
	d.mu.Lock()
	cam := d.cam
	d.lost, d.lostAt, d.lostWhy = true, clock.Nanos(), why
	d.lastReopenTry = d.lostAt
	d.disconnects++
	d.signal()
	d.mu.Unlock()
	d.log.Warn("camera lost", "camera", d.desc, "why", why)
	d.teardown(true)
	C.frarv_close(cam) // on a dead camera this waits out Aravis's GVCP retries
	d.mu.Lock()
	d.cam = nil
	d.mu.Unlock()
}

// reopen tries once to open the lost camera again, with the same settings;
// it must deliver the geometry the buffers were sized for.
func (d *aravisDevice) reopen(stop <-chan struct{}) {
	d.ctlMu.Lock()
	defer d.ctlMu.Unlock()
	d.mu.Lock()
	d.lastReopenTry = clock.Nanos()
	want := d.cfg
	d.mu.Unlock()
	select {
	case <-stop:
		return
	default:
	}
	cam, c, desc, err := d.openCamera()
	if err == nil && (c.Geometry != want.Geometry || c.PayloadSize > want.PayloadSize) {
		C.frarv_close(cam)
		err = fmt.Errorf("%w: the camera came back sending %dx%d %v (%d bytes), the buffers hold %dx%d %v (%d bytes)",
			ErrCamera, c.Geometry.Width, c.Geometry.Height, c.Geometry.Format, c.PayloadSize,
			want.Geometry.Width, want.Geometry.Height, want.Geometry.Format, want.PayloadSize)
	}
	if err != nil {
		d.mu.Lock()
		why := d.lostWhy
		if i := strings.Index(why, "; reopen: "); i >= 0 {
			why = why[:i]
		}
		d.lostWhy = why + "; reopen: " + err.Error()
		d.mu.Unlock()
		d.log.Debug("camera still lost", "err", err)
		return
	}
	d.mu.Lock()
	d.cam, d.desc = cam, desc
	d.cfg.Rate = c.Rate
	d.finishLost(clock.Nanos())
	d.haveBlock = false
	d.lastFrameAt, d.lastProbeAt = clock.Nanos(), clock.Nanos()
	d.reconnects++
	d.mu.Unlock()
	if err := d.startStream(cam); err != nil {
		d.log.Warn("camera back but acquisition failed", "err", err)
		d.mu.Lock()
		d.lost, d.lostAt, d.lostWhy = true, clock.Nanos(), err.Error()
		d.cam = nil
		d.signal()
		d.mu.Unlock()
		C.frarv_close(cam)
		return
	}
	d.log.Info("camera back", "camera", desc)
}

// lostEstimate is the number of frames due at the camera's frame rate
// from lostAt to now (0 when the rate is unknown: a triggered camera).
// Needs mu.
func (d *aravisDevice) lostEstimate(now int64) uint64 {
	if !d.lost || d.acq == acqStopped || d.cfg.Rate <= 0 || now <= d.lostAt {
		return 0
	}
	return uint64(float64(now-d.lostAt) / 1e9 * d.cfg.Rate)
}

// finishLost leaves the lost state, counting the frames due meanwhile.
// Needs mu.
func (d *aravisDevice) finishLost(now int64) {
	n := d.lostEstimate(now)
	d.lostCounts[loss.CameraLost] += n
	d.rebase += n
	d.lost, d.lostWhy = false, ""
	d.signal()
}

// Dequeue leases the oldest completed buffer (see Grabber). While the
// camera is lost it waits up to min(timeout, 1s) for it to come back and
// then returns an error wrapping ErrSourceLost.
func (d *aravisDevice) Dequeue(ctx context.Context, timeout time.Duration) (Frame, error) {
	var deadline int64 // clock.Nanos, 0: none
	if timeout > 0 {
		deadline = clock.Nanos() + int64(timeout)
	}
	var info C.frarv_info
	for {
		if err := ctx.Err(); err != nil {
			return Frame{}, fmt.Errorf("dequeue frame: %w", err)
		}
		d.mu.Lock()
		switch {
		case d.bufs.closed:
			d.mu.Unlock()
			return Frame{}, fmt.Errorf("dequeue frame: %w", ErrClosed)
		case d.acq != acqRunning:
			d.mu.Unlock()
			return Frame{}, fmt.Errorf("dequeue frame: %w", ErrStopped)
		case d.lost:
			if err := d.waitLost(ctx, deadline); err != nil {
				return Frame{}, err // unlocked
			}
			continue
		case d.stream == nil:
			// Start is creating the stream (or a reopened camera's is
			// on its way): not a loss, just no frame yet.
			changed := d.changed
			d.mu.Unlock()
			if err := d.waitChange(ctx, changed, deadline); err != nil {
				return Frame{}, err
			}
			continue
		}
		s, cur := d.stream, d.epoch
		d.inPop++
		d.mu.Unlock()

		wait := C.uint64_t(0)
		if d.notifier == nil {
			w := dequeuePoll
			if deadline != 0 {
				w = min(w, time.Duration(deadline-clock.Nanos()))
			}
			if dl, ok := ctx.Deadline(); ok {
				w = min(w, time.Until(dl))
			}
			wait = C.uint64_t(max(w/time.Microsecond, 1))
		}
		got := C.frarv_pop(s, wait, &info) != 0

		d.mu.Lock()
		var fi FrameInfo
		ok := false
		if got {
			if d.epoch != cur {
				d.returnStale(int(info.index), d.acq == acqRunning)
			} else {
				fi, ok = d.take(&info, s)
			}
		}
		d.inPop--
		if d.inPop == 0 {
			d.cond.Broadcast()
		}
		var changed chan struct{}
		if !got && d.notifier != nil {
			changed = d.changed
		}
		d.mu.Unlock()

		if ok {
			f, err := d.l.begin(fi)
			if err != nil {
				return Frame{}, fmt.Errorf("dequeue frame: %w", err)
			}
			return f, nil
		}
		if got {
			continue // stale: loop to see the new state
		}
		if deadline != 0 && clock.Nanos() >= deadline {
			return Frame{}, ErrNoFrame
		}
		if changed != nil {
			if err := d.waitNotify(ctx, changed, deadline); err != nil {
				return Frame{}, err
			}
		}
	}
}

// waitNotify waits, in the callback mode, for the receive thread's
// notification, a state change, ctx or the deadline.
func (d *aravisDevice) waitNotify(ctx context.Context, changed <-chan struct{}, deadline int64) error {
	var expired <-chan time.Time
	if deadline != 0 {
		t := d.timers.get()
		t.Reset(time.Duration(deadline - clock.Nanos()))
		defer d.timers.put(t)
		expired = t.C
	}
	select {
	case <-d.notifier.ch:
	case <-changed:
	case <-ctx.Done():
	case <-expired:
		return ErrNoFrame
	}
	return nil
}

// waitChange waits for a state change, ctx or the deadline (ErrNoFrame).
func (d *aravisDevice) waitChange(ctx context.Context, changed <-chan struct{}, deadline int64) error {
	var expired <-chan time.Time
	if deadline != 0 {
		t := d.timers.get()
		t.Reset(time.Duration(deadline - clock.Nanos()))
		defer d.timers.put(t)
		expired = t.C
	}
	select {
	case <-changed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("dequeue frame: %w", ctx.Err())
	case <-expired:
		return ErrNoFrame
	}
}

// waitLost waits while the camera is lost, for it to come back, for
// min(the deadline, lostReport), or for ctx. Called with mu held; returns
// with it released. A nil error means the state changed: look again.
func (d *aravisDevice) waitLost(ctx context.Context, deadline int64) error {
	changed := d.changed
	d.mu.Unlock()
	wait := lostReport
	if deadline != 0 {
		wait = min(wait, time.Duration(deadline-clock.Nanos()))
	}
	if wait > 0 {
		t := d.timers.get()
		t.Reset(wait)
		defer d.timers.put(t)
		select {
		case <-changed:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("dequeue frame: %w", ctx.Err())
		case <-t.C:
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.lost || d.acq != acqRunning || d.bufs.closed {
		return nil
	}
	why := d.lostWhy
	if why == "" {
		why = "reopening the camera"
	}
	return fmt.Errorf("dequeue frame: %w: %s: %s", ErrSourceLost, d.desc, why)
}

// take turns a buffer popped from the current stream into the lease's
// FrameInfo and moves it to bufDelivered. Needs mu; allocates nothing.
func (d *aravisDevice) take(info *C.frarv_info, s *C.ArvStream) (FrameInfo, bool) {
	i := int(info.index)
	if i < 0 || i >= len(d.bufs.slots) || !d.bufs.slots[i].x.inStream ||
		d.bufs.move(i, bufQueued, bufDelivered) != StatusOK {
		// Not a buffer we pushed: nothing to hand out.
		return FrameInfo{}, false
	}
	b := &d.bufs.slots[i]
	b.x.inStream = false
	d.delivered++
	now := clock.Nanos()
	d.lastFrameAt = now

	g := d.cfg.Geometry
	fi := FrameInfo{
		Buffer:          d.bufs.id(i),
		Status:          arvFrameStatus(info.status),
		Geometry:        g,
		Length:          g.Size(),
		DeviceTimestamp: uint64(info.timestamp),
		Timestamp:       realtimeToMono(int64(info.system_timestamp)),
		// The low 16 bits of the camera's block id, for matching a frame
		// with the camera's own logs (FrameID is the unwrapped count).
		Flags: uint32(info.frame_id&0xFFFF) << AravisBlockIDShift,
	}
	if fi.Status == FrameComplete {
		switch {
		case info.has_image == 0:
			fi.Status = FrameFailed // not an image payload
		case frame.Format(info.pixel_format) != g.Format || int(info.width) != g.Width || int(info.height) != g.Height ||
			info.x_padding != 0 || int(info.size) < g.Size():
			fi.Status = FrameSizeMismatch // the camera changed its mind; the slot holds another shape
		case uintptr(info.data) != uintptr(unsafe.Pointer(unsafe.SliceData(b.mem))):
			// Aravis wrote elsewhere than the buffer it was given: never
			// publish it (the zero-copy claim would be false).
			fi.Status = FrameFailed
		}
	}
	if (fi.Status == FrameTimeout || fi.Status == FrameIncomplete) && info.system_timestamp == 0 && d.underran(s) {
		// Filled without its leader (packet 0: frarv_push cleared the
		// timestamp only the leader sets), and the stream counted
		// packets without a buffer: the frame's first packets came
		// while no buffer was queued, an underrun. A frame with its
		// leader that lost later packets stays a camera's or network's
		// loss even when underruns happened meanwhile (while Aravis held
		// it back for resends, the frames after it had no buffer).
		fi.Status = FrameUnderrun
	}
	fi.FrameID = d.frameID(uint64(info.frame_id), fi.Status == FrameComplete, s)
	if fi.Status == FrameComplete {
		d.lastStart = fi.Timestamp
	}
	return fi, true
}

// underran reports whether the stream counted packets without a buffer
// (Aravis's n_underruns: one per packet of a new frame that found no
// buffer queued) after the last complete frame began. A read that sees
// the count move notes when (underranAt). Packets of the frames after the
// last complete one in block-id order (a frame cut short, frames lost
// whole) arrive after it began, so the read that first saw them came
// after that too: the one take makes for a frame handed out not complete
// and without its leader (yes: FrameUnderrun), the one frameID makes for
// a gap in the block ids (yes: underruns), or an earlier one, for another
// frame, made while Aravis still held the last complete frame back
// (resend on: behind a frame waiting for its lost packets). Both readers
// go through here, so a movement is neither missed nor read twice. The
// count cannot say whose packets it counted: a read after the last
// complete frame began may have seen only packets of frames before it.
// Needs mu.
func (d *aravisDevice) underran(s *C.ArvStream) bool {
	if u := streamStat(s, "n_underruns"); u > d.arvUnderruns {
		d.arvUnderruns, d.underranAt = u, clock.Nanos()
	}
	return d.underranAt != 0 && d.underranAt > d.lastStart
}

// frameID unwraps the camera's block id into the device's frame count and
// counts the frames the ids skipped. Only a complete frame's block id is
// trusted (a frame whose leader was lost carries its buffer's previous
// id): a failed frame gets a provisional id, is counted in failedSince,
// and the next complete frame's id accounts for it. Needs mu.
func (d *aravisDevice) frameID(block uint64, complete bool, s *C.ArvStream) uint64 {
	if !complete {
		d.failedSince++
		return d.lastID + d.failedSince // never published: only for logs
	}
	if block > 0xFFFF {
		d.wrap16 = false
	}
	var id uint64
	switch {
	case d.haveBlock:
		var delta uint64 // frames from the last complete one to this one, 0: unknown
		if d.wrap16 {
			delta = (block + 65535 - d.lastBlock%65535) % 65535
			if block == 0 || delta >= 1<<15 {
				delta = 0 // not a GigE id sequence we can follow
			}
		} else if block > d.lastBlock && block-d.lastBlock < 1<<32 {
			delta = block - d.lastBlock
		}
		// The ids cannot claim fewer frames than were handed out (a
		// repeated or older id: the camera restarted its count).
		delta = max(delta, d.failedSince+1)
		if gap := delta - 1 - d.failedSince; gap > 0 {
			// Frames the camera numbered and never delivered into a
			// buffer: the stream had no buffer for them (underran), or
			// their packets never arrived.
			if d.underran(s) {
				d.underruns += gap
			} else {
				d.lostCounts[loss.Incomplete] += gap
			}
		}
		id = d.lastID + delta
	case d.haveID:
		id = d.lastID + 1 + d.rebase + d.failedSince
		d.rebase = 0
	default:
		id = block // the first frame: the ids are the camera's until they wrap
	}
	d.failedSince = 0
	d.haveBlock, d.lastBlock, d.haveID, d.lastID = true, block, true, id
	return id
}

// realtimeToMono converts an Aravis system timestamp (CLOCK_REALTIME
// nanoseconds, taken when the frame's first packet arrived) to
// CLOCK_MONOTONIC: minus the offset between the two clocks, sampled now
// between two monotonic reads. The result is clamped to now: a frame is
// never stamped in the future (a realtime step between capture and now
// would otherwise show through). 0 (no timestamp) becomes now.
func realtimeToMono(sys int64) int64 {
	if sys <= 0 {
		return clock.Nanos()
	}
	m1 := clock.Nanos()
	r := time.Now().UnixNano()
	m2 := clock.Nanos()
	ts := sys - (r - (m1 + (m2-m1)/2))
	return min(ts, m2)
}

func arvFrameStatus(st C.int32_t) FrameStatus {
	switch st {
	case C.ARV_BUFFER_STATUS_SUCCESS:
		return FrameComplete
	case C.ARV_BUFFER_STATUS_MISSING_PACKETS, C.ARV_BUFFER_STATUS_WRONG_PACKET_ID:
		return FrameIncomplete
	case C.ARV_BUFFER_STATUS_TIMEOUT:
		return FrameTimeout
	case C.ARV_BUFFER_STATUS_SIZE_MISMATCH:
		return FrameSizeMismatch
	case C.ARV_BUFFER_STATUS_ABORTED:
		return FrameAborted
	}
	return FrameFailed
}

// streamStat reads one of the stream's statistics by name (0 if absent).
func streamStat(s *C.ArvStream, name string) uint64 {
	n := uint(C.frarv_stream_n_stats(s))
	for i := range n {
		var cname *C.char
		var v C.uint64_t
		if C.frarv_stream_stat(s, C.uint(i), &cname, &v) != 0 && cStrEq(cname, name) {
			return uint64(v)
		}
	}
	return 0
}

// cStrEq compares a C string with a Go string without allocating.
func cStrEq(c *C.char, s string) bool {
	p := unsafe.Pointer(c)
	for i := 0; i < len(s); i++ {
		if *(*byte)(unsafe.Add(p, i)) != s[i] {
			return false
		}
	}
	return *(*byte)(unsafe.Add(p, len(s))) == 0
}

// addStreamStats adds the stream's statistics to dst. Needs mu.
func (d *aravisDevice) addStreamStats(s *C.ArvStream, dst *[]SourceStat) {
	n := uint(C.frarv_stream_n_stats(s))
	for i := range n {
		var cname *C.char
		var v C.uint64_t
		if C.frarv_stream_stat(s, C.uint(i), &cname, &v) == 0 {
			continue
		}
		name := strings.TrimPrefix(C.GoString(cname), "n_")
		addStat(dst, name, uint64(v))
	}
}

func addStat(dst *[]SourceStat, name string, v uint64) {
	for i := range *dst {
		if (*dst)[i].Name == name {
			(*dst)[i].Value += v
			return
		}
	}
	*dst = append(*dst, SourceStat{Name: name, Value: v})
}

// SourceStats appends Aravis's stream statistics (every stream since Open
// added up: completed_buffers, failures, underruns, timeouts, aborted,
// missing_frames, size_mismatch_errors, received_packets,
// missing_packets, error_packets, ignored_packets, resend_requests,
// resent_packets, duplicated_packets, transferred_bytes, ...), then
// disconnects and reconnects of the camera.
func (d *aravisDevice) SourceStats(dst []SourceStat) []SourceStat {
	d.mu.Lock()
	defer d.mu.Unlock()
	all := append([]SourceStat(nil), d.statsBase...)
	if d.stream != nil {
		d.addStreamStats(d.stream, &all)
	}
	dst = append(dst, all...)
	return append(dst, SourceStat{"disconnects", d.disconnects}, SourceStat{"reconnects", d.reconnects})
}

// Counters returns the device's counters. NextFrameID is
// Delivered + Underruns + Lost.Total(): the frames the camera numbered
// that the backend has accounted for (a camera's own ids start anywhere).
func (d *aravisDevice) Counters() Counters {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bufs.closed {
		return Counters{}
	}
	c := Counters{
		Delivered: d.delivered,
		Underruns: d.underruns,
		Lost:      d.lostCounts,
		Discarded: d.discarded,
		Held:      d.bufs.held,
		Announced: d.bufs.announced,
	}
	c.Lost[loss.CameraLost] += d.lostEstimate(clock.Nanos())
	c.NextFrameID = c.Delivered + c.Underruns + c.Lost.Total()
	queued := d.bufs.count(bufQueued)
	if d.stream != nil {
		var in, out C.int
		C.frarv_queues(d.stream, &in, &out)
		c.Awaiting = int(out)
	}
	c.Queued = max(queued-c.Awaiting, 0)
	return c
}

// Close stops acquisition, frees the stream, ends every lease, drops every
// buffer and closes the camera. After it returns no Aravis thread touches
// any announced memory and no callback can arrive.
func (d *aravisDevice) Close() error {
	var err error
	d.closeOnce.Do(func() {
		d.mu.Lock()
		d.bufs.closed = true // from here Start fails with ErrClosed: halt is the last stop
		d.signal()
		d.mu.Unlock()
		err = d.halt()
		d.l.close()
		d.ctlMu.Lock()
		d.mu.Lock()
		for i := range d.bufs.slots {
			if arv := d.bufs.slots[i].x.arv; arv != nil {
				C.frarv_buffer_free(arv)
			}
		}
		d.bufs.reset()
		d.pending = nil
		cam := d.cam
		d.cam = nil
		d.mu.Unlock()
		if cam != nil {
			C.frarv_close(cam)
		}
		d.ctlMu.Unlock()
		if d.notifier != nil {
			d.handle.Delete() // every stream is freed: no callback can come
		}
	})
	return err
}

// ListCameras discovers the cameras Aravis can reach (GigE Vision on every
// interface, USB3 Vision on every bus).
func ListCameras() ([]CameraInfo, error) {
	arvOpenMu.Lock()
	defer arvOpenMu.Unlock()
	n := uint(C.frarv_update_list())
	out := make([]CameraInfo, 0, n)
	for i := range n {
		f := func(k int) string { return takeMsg(C.frarv_list_field(C.uint(i), C.int(k))) }
		out = append(out, CameraInfo{ID: f(0), PhysicalID: f(1), Address: f(2), Vendor: f(3), Model: f(4), Serial: f(5), Protocol: f(6)})
	}
	return out, nil
}

// AravisBufferData is the address Aravis itself holds as the data of the
// ArvBuffer behind buffer id of g: where its receive thread writes that
// buffer's frames. Tests use it to prove that frames land in the memory
// that was announced (a ring slot), with no copy between. 0 if g is not
// an Aravis grabber or id not one of its buffers.
func AravisBufferData(g Grabber, id BufferID) uintptr {
	d, ok := g.(*aravisDevice)
	if !ok {
		return 0
	}
	return d.bufferData(id)
}

func (d *aravisDevice) bufferData(id BufferID) uintptr {
	d.mu.Lock()
	defer d.mu.Unlock()
	i := d.bufs.find(id)
	if i < 0 || d.bufs.slots[i].x.arv == nil {
		return 0
	}
	var n C.size_t
	return uintptr(C.arv_buffer_get_data(d.bufs.slots[i].x.arv, &n))
}
