package ringbuf

// The consumer side of the ring.
//
// Invariants kept by this file (docs/LAYOUT.md argues each one):
//
//  1. A Reader writes to shared memory only: its own holder bit in slot
//     hold words, its own waiter bit, and its own table entry's consumer
//     line. Peek writes nothing at all.
//  2. Data is trusted only if it was read between two loads of the same
//     even generation of its slot, and the descriptor carried the requested
//     sequence number. Everything read from shared memory that is used as
//     an index or a length is bounds-checked against the geometry validated
//     at attach, which is kept in local memory and never re-read.
//  3. The holder bit of slot k is set exactly while this Reader has at
//     least one lease on k (local[k] > 0); transitions happen under mu.
//  4. The mappings are unmapped only after Close and after the last lease
//     was released: a live lease's bytes are always mapped.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/framering/framering/clock"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/shm"
)

// Options describe how to attach to a ring.
type Options struct {
	// Name (or SocketPath) says which ring.
	Name       string
	SocketPath string
	// Consumer is the name shown in the consumer table (at most 32 printable
	// ASCII bytes).
	Consumer string
	// Role is RoleConsumer (default) or RoleObserver.
	Role Role
	// Mode is Lossy (default) or Lossless.
	Mode Mode
	// MaxLeases bounds how many leases the Reader holds at once (default:
	// the slot count).
	MaxLeases int
	// Spin is how long Wait polls before it sleeps on the futex (default
	// 20µs). A negative Spin busy-polls and never sleeps.
	Spin time.Duration
	// From is the first sequence number wanted. 0 (default) starts with
	// the next frame published; 1 starts with the oldest frame the ring
	// still has (a lossless consumer re-attaching to a restarted producer
	// wants that). Frames already overwritten are counted as missed.
	From uint64
	// Prefault maps the segments with MAP_POPULATE.
	Prefault bool
	// Logger receives notes from the producer (default slog.Default()).
	Logger *slog.Logger
}

// Frame is a frame seen through Peek: metadata and a read-only view of the
// payload, valid only during the Peek callback.
type Frame struct {
	Meta
	Data []byte
}

// Reader is an attached consumer (or observer). Peek, Borrow, Lease methods
// and Wait are safe for concurrent use; Next is for one goroutine.
type Reader struct {
	opts Options
	log  *slog.Logger
	geo  geometry

	dataSeg, ctlSeg *shm.Segment
	data, ctl       *shm.Mapping
	dataBytes       []byte
	dw              shm.ReadUint64s // data header, descriptors, index
	wake            shm.ReadUint32
	state           shm.ReadUint32
	cw              []atomic.Uint64 // control segment
	cw32            []atomic.Uint32

	entry int    // table entry, -1 for observers
	bit   uint64 // 1<<entry

	conn      *shm.Conn
	gone      atomic.Bool // the producer's connection ended
	evicted   atomic.Bool
	closing   atomic.Bool
	inflight  atomic.Int64 // calls currently inside the mappings (enter/exit)
	connDone  chan struct{}
	closeOnce sync.Once

	mu          sync.Mutex
	local       []int32 // leases per slot
	leases      []leaseRec
	freeLeases  []int32
	outstanding int
	waiting     int
	closed      bool
	tokens      uint64

	// Wait's context registration, reused while callers pass contexts with
	// the same Done channel (so steady-state waiting allocates nothing).
	waitDone <-chan struct{}
	waitStop func() bool

	// Next's state (one goroutine).
	cursor                     uint64
	delivered, skipped, missed uint64
}

// leaseRec is the shared part of a lease: its token and slot. Everything a
// Lease value shows (metadata, the slice header) lives in the value itself,
// so a stale copy of a released lease never reads a record that a later
// Borrow is rewriting; it only loads the token, atomically, and sees it moved.
type leaseRec struct {
	tok  atomic.Uint64 // odd while the lease is live
	slot uint32
}

// Attach connects to a ring's producer, receives and validates its
// segments, and returns a Reader. ctx bounds the handshake.
func Attach(ctx context.Context, opts Options) (*Reader, error) {
	if opts.Role == 0 {
		opts.Role = RoleConsumer
	}
	if opts.Mode == 0 {
		opts.Mode = Lossy
	}
	if opts.Spin == 0 {
		opts.Spin = 20 * time.Microsecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if len(opts.Consumer) > maxNameLen {
		return nil, fmt.Errorf("attach: %w: consumer name longer than %d bytes", ErrConfig, maxNameLen)
	}
	path, err := resolvePath(opts.Name, opts.SocketPath)
	if err != nil {
		return nil, fmt.Errorf("attach: %w", err)
	}
	conn, err := shm.Dial(path)
	if err != nil {
		return nil, fmt.Errorf("attach %s: %w: %w", path, ErrProducerGone, err)
	}
	r := &Reader{opts: opts, log: opts.Logger.With("ring", path), conn: conn, entry: -1, connDone: make(chan struct{})}
	if err := r.handshake(ctx); err != nil {
		r.release()
		return nil, fmt.Errorf("attach %s: %w", path, err)
	}
	go r.watchConn()
	return r, nil
}

func (r *Reader) handshake(ctx context.Context) error {
	deadline := time.Now().Add(5 * time.Second)
	if d, ok := ctx.Deadline(); ok {
		deadline = d
	}
	r.conn.SetDeadline(deadline)
	// Cancelling ctx interrupts the handshake's I/O, and only that: once
	// handshakeDone is set, a late callback does nothing, and the deadline
	// is cleared after it is set (a past deadline left on the connection
	// would end watchConn's read and report a live producer gone).
	var hmu sync.Mutex
	handshakeDone := false
	stop := context.AfterFunc(ctx, func() {
		hmu.Lock()
		defer hmu.Unlock()
		if !handshakeDone {
			r.conn.SetDeadline(time.Unix(1, 0))
		}
	})
	defer stop()
	finish := func() {
		hmu.Lock()
		handshakeDone = true
		hmu.Unlock()
		r.conn.SetDeadline(time.Time{})
	}
	var b [msgSize]byte
	hello{version: Version, role: r.opts.Role, mode: r.opts.Mode, name: r.opts.Consumer, start: r.opts.From}.encode(b[:])
	// A failed send is not the end: a producer that refused us may have
	// answered and closed; its welcome says why.
	sendErr := r.conn.Send(b[:])
	n, files, err := r.conn.Recv(b[:], 2)
	if err == nil && n == 0 && sendErr != nil {
		err = sendErr
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %w", ErrProducerGone, err)
	}
	closeFiles := func() {
		for _, f := range files {
			f.Close()
		}
	}
	w, err := decodeWelcome(b[:n])
	if err != nil {
		closeFiles()
		return err
	}
	switch w.status {
	case statusOK:
	case statusIncompatible:
		closeFiles()
		return fmt.Errorf("%w: the producer refused our version", ErrIncompatible)
	case statusClosing:
		closeFiles()
		return ErrClosed
	default:
		closeFiles()
		return fmt.Errorf("%w: status %d", ErrRefused, w.status)
	}
	if len(files) != 2 {
		closeFiles()
		return fmt.Errorf("%w: welcome carried %d descriptors, want 2", ErrCorrupt, len(files))
	}
	if (r.opts.Role == RoleConsumer) != (w.entry != noEntry) {
		closeFiles()
		return fmt.Errorf("%w: entry %d for role %d", ErrCorrupt, w.entry, r.opts.Role)
	}
	finish()
	return r.mapSegments(files[0], files[1], w)
}

// mapSegments checks the seals, maps, and validates both segments before
// reading anything but their headers.
func (r *Reader) mapSegments(df, cf *os.File, w welcome) error {
	var err error
	if r.dataSeg, err = shm.OpenSegment(df, shm.SealShrink|shm.SealGrow|shm.SealFutureWrite|shm.SealSeal, headerSize, r.opts.Prefault); err != nil {
		cf.Close()
		return fmt.Errorf("data segment: %w: %w", ErrCorrupt, err)
	}
	if r.ctlSeg, err = shm.OpenSegment(cf, shm.SealShrink|shm.SealGrow|shm.SealSeal, headerSize, true); err != nil {
		return fmt.Errorf("control segment: %w: %w", ErrCorrupt, err)
	}
	if r.dataSeg.Size() != w.dataSize || r.ctlSeg.Size() != w.controlSize {
		return fmt.Errorf("%w: segments of %d and %d bytes, welcome says %d and %d", ErrCorrupt,
			r.dataSeg.Size(), r.ctlSeg.Size(), w.dataSize, w.controlSize)
	}
	if r.data, err = r.dataSeg.Map(false); err != nil {
		return err
	}
	if r.ctl, err = r.ctlSeg.Map(true); err != nil {
		return err
	}
	r.dataBytes = r.data.Bytes()
	if r.geo, err = decodeDataHeader(r.dataBytes, r.data.Len()); err != nil {
		return err
	}
	if r.geo.epoch != w.epoch {
		return fmt.Errorf("%w: data segment epoch %#x, welcome %#x", ErrCorrupt, r.geo.epoch, w.epoch)
	}
	if err := decodeControlHeader(r.ctl.Bytes(), r.ctl.Len(), r.geo); err != nil {
		return err
	}
	// Views over validated regions only.
	if r.dw, err = r.data.ReadUint64sAt(0, r.geo.payloadOffset/8); err != nil {
		return err
	}
	hdr32, err := r.data.ReadUint32sAt(0, headerSize/4)
	if err != nil {
		return err
	}
	r.wake, r.state = hdr32.Word(offWake/4), hdr32.Word(offState/4)
	if r.cw, err = r.ctl.Uint64s(0, r.geo.controlSize/8); err != nil {
		return err
	}
	if r.cw32, err = r.ctl.Uint32s(0, r.geo.controlSize/4); err != nil {
		return err
	}
	n := int(r.geo.slots)
	if r.opts.MaxLeases <= 0 {
		r.opts.MaxLeases = n
	}
	r.local = make([]int32, n)
	r.leases = make([]leaseRec, r.opts.MaxLeases)
	r.freeLeases = make([]int32, 0, r.opts.MaxLeases)
	for i := r.opts.MaxLeases - 1; i >= 0; i-- {
		r.freeLeases = append(r.freeLeases, int32(i))
	}
	if w.entry != noEntry {
		r.entry, r.bit = int(w.entry), 1<<w.entry
		r.cursor = r.cw[(r.geo.entry(r.entry)+eCursor)/8].Load()
		if r.opts.From != 0 && r.opts.Mode == Lossless {
			r.skipGone()
		}
	} else {
		r.cursor = r.published() + 1
	}
	return nil
}

// skipGone raises a lossless cursor that asked for old frames (Options.From)
// to the oldest frame the ring still holds: frames gone before we attached
// are not ours to count as missed. The scan is stable: our cursor, stored
// by the producer before the welcome, pins every frame at or after it, so
// no slot holding one can be reused until we raise it.
func (r *Reader) skipGone() {
	// If no slot holds a frame at or after the cursor (all lent out, or
	// none published yet), start with the next one published, not at 1.
	next := r.published() + 1
	oldest := uint64(0)
	for k := uint32(0); k < r.geo.slots; k++ {
		g, s := r.genAt(k), r.seqAt(k)
		if g&1 == 0 && s >= r.cursor && (oldest == 0 || s < oldest) && r.genAt(k) == g {
			oldest = s
		}
	}
	if oldest == 0 {
		oldest = next
	}
	if oldest > r.cursor {
		r.cursor = oldest
		r.cw[(r.geo.entry(r.entry)+eCursor)/8].Store(oldest)
	}
}

// watchConn learns of the producer's departure (EOF) and of notes.
func (r *Reader) watchConn() {
	defer close(r.connDone)
	var b [msgSize]byte
	for {
		if _, err := io.ReadFull(r.conn, b[:]); err != nil {
			break
		}
		switch kind, _ := decodeNote(b[:]); kind {
		case noteEvicted:
			r.evicted.Store(true)
			r.log.Warn("evicted by the producer: fell behind past its bound")
		case noteClosing:
		}
	}
	if r.closing.Load() {
		return // our own Close ended the connection
	}
	r.gone.Store(true)
	// Wake our sleepers (and, harmlessly, everyone's): FUTEX_WAKE only
	// reads the word, so the read-only mapping suffices.
	r.wake.Wake(0)
}

// Info describes the attached ring.
type Info struct {
	Epoch        uint64
	ProducerPid  int
	Slots        int
	SlotCapacity uint64
	IndexSize    int
	HugePages    bool
	Entry        int // table entry, -1 for an observer
}

// Info returns the ring's identity and geometry.
func (r *Reader) Info() Info {
	return Info{Epoch: r.geo.epoch, ProducerPid: int(r.geo.producerPid), Slots: int(r.geo.slots),
		SlotCapacity: r.geo.capacity, IndexSize: int(r.geo.indexCount), HugePages: r.geo.flags&flagHugePages != 0, Entry: r.entry}
}

// Published returns the last published sequence number (0 after Close).
func (r *Reader) Published() uint64 {
	if !r.enter() {
		return 0
	}
	defer r.exit()
	return r.published()
}

func (r *Reader) published() uint64 {
	// Pairs with the producer's store of published after the index entry
	// and the even generation.
	return r.dw.Load(offPublished / 8)
}

// status reports why the ring cannot deliver more: closed, producer gone,
// evicted, or nil.
func (r *Reader) status() error {
	if r.closing.Load() {
		return ErrClosed
	}
	if r.entry >= 0 && (r.evicted.Load() || r.cw32[(r.geo.entry(r.entry)+eState)/4].Load() == entryEvicted) {
		return ErrEvicted
	}
	if r.state.Load() == stateClosed {
		return ErrClosed
	}
	if r.gone.Load() {
		return ErrProducerGone
	}
	return nil
}

// enter marks a call as using the mappings; it fails once Close began.
// Dekker with Close: enter increments inflight, then loads closing; Close
// stores closing, then loads inflight. Either the call sees closing and
// touches nothing, or Close sees the call and leaves teardown to exit.
func (r *Reader) enter() bool {
	r.inflight.Add(1)
	if r.closing.Load() {
		r.exit()
		return false
	}
	return true
}

func (r *Reader) exit() {
	if r.inflight.Add(-1) == 0 && r.closing.Load() {
		r.maybeTeardown()
	}
}

func (r *Reader) maybeTeardown() {
	r.mu.Lock()
	ok := r.closed && r.outstanding == 0 && r.inflight.Load() == 0
	r.mu.Unlock()
	if ok {
		r.teardown()
	}
}

func (r *Reader) genAt(k uint32) uint64 { return r.dw.Load((r.geo.desc(k) + dGen) / 8) }
func (r *Reader) seqAt(k uint32) uint64 { return r.dw.Load((r.geo.desc(k) + dSeq) / 8) }

// locate finds the slot of seq and a stable even generation for it.
func (r *Reader) locate(seq uint64) (uint32, uint64, error) {
	if seq == 0 || seq > r.published() {
		return 0, 0, ErrNotPublished
	}
	e := r.dw.Load(r.geo.index(seq&uint64(r.geo.indexCount-1)) / 8)
	if e>>16 != seq {
		return 0, 0, ErrOverwritten
	}
	k := uint32(e & 0xffff)
	if k >= r.geo.slots {
		return 0, 0, fmt.Errorf("index entry for %d names slot %d of %d: %w", seq, k, r.geo.slots, ErrCorrupt)
	}
	g, ok := r.settle(k, seq)
	if !ok {
		return 0, 0, ErrOverwritten
	}
	return k, g, nil
}

// settle returns the slot's generation once it is even, provided the slot
// still carries seq. An odd generation with the descriptor still naming seq
// means the producer is deciding whether to reuse the slot (a few
// instructions, invariant 3 of producer.go): wait that out, bounded in case
// the producer died right there.
func (r *Reader) settle(k uint32, seq uint64) (uint64, bool) {
	var giveUp int64
	for i := 0; ; i++ {
		g := r.genAt(k)
		if r.seqAt(k) != seq {
			return 0, false
		}
		if g&1 == 0 {
			if r.genAt(k) == g {
				return g, true
			}
			continue
		}
		// The decision takes a few instructions; waiting longer means the
		// producer was descheduled or died inside it. Give up after 10ms:
		// the frame is reported overwritten (a lossy reader counts a miss;
		// a lossless one cannot get here, its cursor keeps the producer off
		// the slot).
		if i&63 == 63 {
			now := clock.Nanos()
			if giveUp == 0 {
				giveUp = now + int64(10*time.Millisecond)
			} else if now > giveUp || r.gone.Load() {
				return 0, false
			}
			runtime.Gosched()
		}
	}
}

// readMeta decodes slot k's descriptor. The caller validates it by the
// generation (Peek) or holds the slot (Borrow).
func (r *Reader) readMeta(k uint32) Meta {
	base := r.geo.desc(k)
	d := r.dataBytes[base : base+descSize]
	le := binary.LittleEndian
	return Meta{
		Seq:       le.Uint64(d[dSeq:]),
		FrameID:   le.Uint64(d[dFrameID:]),
		Timestamp: int64(le.Uint64(d[dTimestamp:])),
		Width:     le.Uint32(d[dWidth:]),
		Height:    le.Uint32(d[dHeight:]),
		Stride:    le.Uint32(d[dStride:]),
		Format:    frame.Format(le.Uint32(d[dFormat:])),
		Length:    le.Uint64(d[dLength:]),
		Flags:     le.Uint32(d[dFlags:]),
	}
}

func (r *Reader) payload(k uint32, n uint64) []byte {
	off := r.geo.payload(k)
	return r.dataBytes[off : off+n : off+n]
}

// Peek and Borrow return ErrNotPublished and ErrOverwritten unwrapped: they
// are the ordinary outcomes of reading a live ring, and wrapping them would
// allocate on every miss. Other errors are wrapped with the call and sequence.
//
// Peek runs fn on frame seq without taking a hold and without writing to
// shared memory. The frame's bytes may change while fn runs; Peek checks
// the slot's generation afterwards and returns ErrOverwritten if they did,
// in which case whatever fn computed must be discarded. frame.Data is valid
// only during fn.
func (r *Reader) Peek(seq uint64, fn func(Frame)) error {
	if !r.enter() {
		return ErrClosed
	}
	defer r.exit()
	k, g1, err := r.locate(seq)
	if err != nil {
		return err // bare sentinels on this hot path: a miss must not allocate
	}
	m := r.readMeta(k)
	if m.Seq != seq || m.Length > r.geo.capacity {
		shm.LoadFence()
		if r.genAt(k) != g1 {
			return fmt.Errorf("peek %d: %w", seq, ErrOverwritten)
		}
		return fmt.Errorf("peek %d: %w: length %d in a %d-byte slot", seq, ErrCorrupt, m.Length, r.geo.capacity)
	}
	fn(Frame{Meta: m, Data: r.payload(k, m.Length)})
	// Every load fn made happens before the generation is loaded again.
	shm.LoadFence()
	if r.genAt(k) != g1 {
		return ErrOverwritten
	}
	return nil
}

// ReadCopy copies frame seq into dst (grown if needed) and returns the
// metadata and the copy: the safe-copy path. It takes no hold; the copy is
// validated like Peek.
func (r *Reader) ReadCopy(seq uint64, dst []byte) (Meta, []byte, error) {
	var m Meta
	err := r.Peek(seq, func(f Frame) {
		m = f.Meta
		if uint64(cap(dst)) < f.Length {
			dst = make([]byte, f.Length)
		}
		dst = dst[:f.Length]
		copy(dst, f.Data)
	})
	if err != nil {
		return Meta{}, dst, err
	}
	return m, dst, nil
}

// Lease is a borrowed frame: a hold on its slot that keeps the producer
// from reusing it. Its bytes alias shared memory and are valid only until
// Release. A Lease is a small value; copies refer to the same lease, and
// only the first Release of any copy succeeds.
type Lease struct {
	r    *Reader
	i    int32
	tok  uint64
	meta Meta
	data []byte
}

// Valid reports whether the lease has not been released.
func (l Lease) Valid() bool {
	// Pairs with release1's store of the next (even) token.
	return l.r != nil && l.r.leases[l.i].tok.Load() == l.tok
}

// Meta returns the frame's metadata (zero after Release).
func (l Lease) Meta() Meta {
	if l.Valid() {
		return l.meta
	}
	return Meta{}
}

// Bytes returns the frame's payload, read-only shared memory, valid until
// Release (nil after it). Do not keep the slice past Release.
func (l Lease) Bytes() []byte {
	if l.Valid() {
		return l.data
	}
	return nil
}

// Release ends the lease. The slot may be reused by the producer as soon
// as no lease holds it. A second Release returns ErrReleased.
func (l Lease) Release() error {
	if l.r == nil {
		return ErrReleased
	}
	return l.r.release1(l)
}

// Borrow takes a lease on frame seq. It validates the slot's generation
// before and after recording the hold, so a frame that was overwritten is
// never returned.
func (r *Reader) Borrow(seq uint64) (Lease, error) {
	if r.entry < 0 {
		return Lease{}, fmt.Errorf("borrow %d: %w: observers cannot hold frames", seq, ErrRefused)
	}
	if !r.enter() {
		return Lease{}, fmt.Errorf("borrow %d: %w", seq, ErrClosed)
	}
	defer r.exit()
	if r.gone.Load() && r.state.Load() != stateClosed {
		// Our connection ended with the ring still running: the producer
		// reclaimed our entry (or died), and our holder bit may be another
		// consumer's now. After a clean close nothing is reused, and the
		// frames still published may be drained. Peek still works.
		return Lease{}, fmt.Errorf("borrow %d: %w", seq, ErrProducerGone)
	}
	k, g1, err := r.locate(seq)
	if err != nil {
		return Lease{}, err // ErrNotPublished, ErrOverwritten (bare: no allocation) or ErrCorrupt
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return Lease{}, fmt.Errorf("borrow %d: %w", seq, ErrClosed)
	}
	n := len(r.freeLeases)
	if n == 0 {
		return Lease{}, fmt.Errorf("borrow %d: %w (%d)", seq, ErrTooManyLeases, len(r.leases))
	}
	hold := &r.cw[r.geo.hold(k)/8]
	if r.local[k] == 0 {
		// Sequentially consistent RMW: our bit is visible before we load
		// the generation again. Pairs with Producer.Acquire, which stores
		// an odd generation and then loads the holder mask.
		hold.Or(r.bit)
		if g2, ok := r.settle(k, seq); !ok || g2 != g1 {
			hold.And(^r.bit)
			return Lease{}, ErrOverwritten
		}
	} else if r.seqAt(k) != seq {
		// We hold k now, so it is stable now; but between locate and our
		// lock another goroutine of ours may have released k (letting the
		// producer reuse it) and borrowed it again for a newer frame.
		return Lease{}, ErrOverwritten
	}
	m := r.readMeta(k)
	if m.Seq != seq || m.Length > r.geo.capacity {
		if r.local[k] == 0 {
			hold.And(^r.bit)
		}
		return Lease{}, fmt.Errorf("borrow %d: %w: descriptor seq %d length %d", seq, ErrCorrupt, m.Seq, m.Length)
	}
	r.local[k]++
	i := r.freeLeases[n-1]
	r.freeLeases = r.freeLeases[:n-1]
	rec := &r.leases[i]
	rec.slot = k
	r.tokens += 2
	tok := r.tokens | 1
	rec.tok.Store(tok)
	r.outstanding++
	// Informational, read by ringctl; we are its only writer.
	r.cw[(r.geo.entry(r.entry)+eHeld)/8].Store(uint64(r.outstanding))
	return Lease{r: r, i: i, tok: tok, meta: m, data: r.payload(k, m.Length)}, nil
}

func (r *Reader) release1(l Lease) error {
	r.mu.Lock()
	rec := &r.leases[l.i]
	if rec.tok.Load() != l.tok {
		r.mu.Unlock()
		return ErrReleased
	}
	rec.tok.Store(l.tok + 1) // even: dead; any copy of the Lease now fails
	k := rec.slot
	r.local[k]--
	if r.local[k] == 0 && !r.gone.Load() {
		// Our last lease on k: the producer may reuse it once it sees this.
		// Not once our connection has ended: the producer reclaimed our
		// holds then, and the bit may already be another consumer's.
		r.cw[r.geo.hold(k)/8].And(^r.bit)
	}
	r.freeLeases = append(r.freeLeases, l.i)
	r.outstanding--
	r.cw[(r.geo.entry(r.entry)+eHeld)/8].Store(uint64(r.outstanding))
	teardown := r.closed && r.outstanding == 0 && r.inflight.Load() == 0
	r.mu.Unlock()
	if teardown {
		r.teardown()
	}
	return nil
}

// Wait returns the newest published sequence number once it is greater
// than after. It polls for Options.Spin, then sleeps on the ring's futex.
// It returns early with ErrClosed, ErrProducerGone, ErrEvicted or the
// context's error.
func (r *Reader) Wait(ctx context.Context, after uint64) (uint64, error) {
	if !r.enter() {
		return 0, ErrClosed
	}
	defer r.exit()
	if p := r.published(); p > after {
		return p, nil
	}
	deadline := int64(0)
	if r.opts.Spin > 0 {
		deadline = clock.Nanos() + int64(r.opts.Spin)
	}
	for i := 0; ; i++ {
		if p := r.published(); p > after {
			return p, nil
		}
		if i&63 == 63 {
			if err := r.status(); err != nil {
				return 0, err
			}
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			if r.opts.Spin > 0 && clock.Nanos() > deadline {
				break
			}
		}
	}
	r.watchCtx(ctx)
	r.setWaiting(true)
	defer r.setWaiting(false)
	for {
		w := r.wake.Load()
		// Dekker with Publish: our waiter bit is stored (setWaiting), now
		// load published; the producer stores published, then loads waiters.
		if p := r.published(); p > after {
			return p, nil
		}
		if err := r.status(); err != nil {
			return 0, err
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		timeout := 100 * time.Millisecond
		if r.entry < 0 {
			timeout = time.Millisecond // observers have no waiter bit
		}
		if err := r.wake.Wait(w, timeout); err != nil {
			return 0, err
		}
	}
}

// watchCtx makes sure a cancellation of ctx wakes our futex sleepers. The
// registration is kept on the Reader and reused for every Wait whose
// context has the same Done channel; a different one replaces it (a waiter
// with an older context then notices its cancellation at its next 100 ms
// re-check). Close stops it.
func (r *Reader) watchCtx(ctx context.Context) {
	done := ctx.Done()
	if done == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.waitDone == done {
		return
	}
	if r.waitStop != nil {
		r.waitStop()
	}
	r.waitDone = done
	r.waitStop = context.AfterFunc(ctx, func() {
		// Only if one of our goroutines sleeps: a context cancelled after
		// its Wait returned (defer cancel()) must not wake the whole ring.
		r.mu.Lock()
		sleeping := r.waiting > 0
		r.mu.Unlock()
		if sleeping && r.enter() {
			r.wake.Wake(0)
			r.exit()
		}
	})
}

func (r *Reader) setWaiting(on bool) {
	if r.entry < 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if on {
		r.waiting++
		if r.waiting == 1 {
			r.cw[cWaiters/8].Or(r.bit)
		}
	} else {
		r.waiting--
		if r.waiting == 0 {
			r.cw[cWaiters/8].And(^r.bit)
		}
	}
}

// Next returns the next frame by the Reader's mode, as a lease the caller
// must Release. Lossless: every sequence number in order. Lossy: the
// newest frame, counting the ones skipped. Frames lost on the way are
// counted (Stats), never returned.
func (r *Reader) Next(ctx context.Context) (Lease, error) {
	for {
		p, err := r.Wait(ctx, r.cursor-1)
		if err != nil {
			return Lease{}, err
		}
		seq, skip := r.cursor, uint64(0)
		if r.opts.Mode == Lossy && p > seq {
			skip, seq = p-seq, p
		}
		l, err := r.Borrow(seq)
		// Counters move only with the cursor: a Borrow that failed for any
		// other reason (too many leases, closed) leaves both as they were,
		// and the next call counts the same frames once.
		switch {
		case err == nil:
			r.cursor = seq + 1
			r.skipped += skip
			r.delivered++
			r.publishCounters(l.Meta())
			return l, nil
		case errors.Is(err, ErrOverwritten):
			if err := r.status(); err != nil {
				return Lease{}, err
			}
			r.skipped += skip
			r.missed++
			r.cursor = seq + 1
			r.publishCounters(Meta{})
		default:
			return Lease{}, err
		}
	}
}

func (r *Reader) publishCounters(m Meta) {
	if r.entry < 0 {
		return
	}
	base := r.geo.entry(r.entry)
	// Cursor after the hold (Borrow set it): the producer that sees the
	// new cursor also sees our holder bit. Pairs with losslessMin.
	r.cw[(base+eCursor)/8].Store(r.cursor)
	r.cw[(base+eDelivered)/8].Store(r.delivered)
	r.cw[(base+eSkipped)/8].Store(r.skipped)
	r.cw[(base+eMissed)/8].Store(r.missed)
	if m.Seq != 0 {
		r.cw[(base+eLastSeq)/8].Store(m.Seq)
		if lat := clock.Nanos() - m.Timestamp; lat > 0 && m.Timestamp > 0 {
			r.cw[(base+eLatencyNs)/8].Store(uint64(lat))
		}
	}
}

// Stats are a Reader's own counts of what Next did.
type Stats struct {
	Delivered, Skipped, Missed uint64
	Cursor                     uint64
}

// Stats returns Next's counters.
func (r *Reader) Stats() Stats {
	return Stats{Delivered: r.delivered, Skipped: r.skipped, Missed: r.missed, Cursor: r.cursor}
}

// Close detaches. Outstanding leases stay valid; the mappings are released
// when the last of them is. Close is idempotent.
func (r *Reader) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.closing.Store(true)
	if r.waitStop != nil {
		r.waitStop()
		r.waitStop, r.waitDone = nil, nil
	}
	if r.entry >= 0 && r.waiting > 0 {
		r.cw[cWaiters/8].And(^r.bit)
	}
	// Our own sleepers return ErrClosed. Wake while we count as inflight
	// (taken before unlocking, so a concurrent last Release cannot tear
	// down first), so the mapping cannot go away under the call.
	r.inflight.Add(1)
	r.mu.Unlock()
	r.wake.Wake(0)
	r.exit()
	return nil
}

func (r *Reader) teardown() {
	r.closeOnce.Do(func() {
		r.conn.Close()
		<-r.connDone
		r.release()
	})
}

func (r *Reader) release() {
	if r.conn != nil {
		r.conn.Close()
	}
	for _, c := range []io.Closer{r.data, r.ctl, r.dataSeg, r.ctlSeg} {
		if c != nil && !isNil(c) {
			c.Close()
		}
	}
}
