package ringbuf

// The consumer side of the ring.
//
// Invariants kept by this file (docs/LAYOUT.md argues each one):
//
//  1. A Reader writes to shared memory only: its own holder bit in slot
//     hold words, its own waiter bit, and its own table entry's consumer
//     line. Peek writes nothing at all. It never has its bit set in more
//     than the ring's hold quota of hold words (Borrow checks first).
//  2. Data is trusted only if it was read between two loads of the same
//     even generation of its slot, and the descriptor carried the requested
//     sequence number. Everything read from shared memory that is used as
//     an index or a length is bounds-checked against the geometry validated
//     at attach, which is kept in local memory and never re-read.
//  3. The holder bit of slot k is set exactly while this Reader has at
//     least one lease on k (local[k] > 0); transitions happen under mu.
//  4. The mappings are unmapped only after Close and after the last lease
//     was released: a live lease's bytes are always mapped.
//  5. Once the producer has evicted this consumer (its entry state is
//     evicted), no lease is trusted: Borrow refuses, and Release and Check
//     report every lease revoked, telling by the slot's generation whether
//     the frame was still intact after the caller's reads (docs/LAYOUT.md
//     9.4 and 10.8).

import (
	"context"
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
	// 20µs). A negative Spin busy-polls and never sleeps. A polling Wait
	// yields to the Go scheduler (runtime.Gosched) every YieldEvery, so
	// that sysmon never has to preempt it with a signal.
	Spin time.Duration
	// Latency selects the latency mode of Wait's sleep: instead of a
	// futex wait the Go scheduler knows about (which, on every wake-up,
	// must find a P again and often wakes sysmon or another thread), the
	// thread sleeps in a raw FUTEX_WAIT holding its P, for at most
	// LatencyWaitTimeout at a time. While it sleeps, its P runs no other
	// goroutine until the runtime takes it back by signal: a garbage
	// collection's stop-the-world does so at once, sysmon after the
	// sleeper has held the P for 10-20 ms, so with GOMAXPROCS=1 the
	// process's other goroutines (timers, signal handling, an HTTP
	// server) may wait that long while no frame arrives. It suits a
	// consumer process whose one job is this ring, run with GOMAXPROCS=1
	// and a short scheduler slice on every thread (LatencyProcess; not a
	// locked thread, whose yields cost two thread wake-ups each: see
	// ringbuf/latency.go and README, "Performance"). It changes nothing else:
	// polling, the waiter bit, and the wake-up protocol are the same.
	Latency bool
	// EarlyWake, for a periodic source (a camera at a fixed frame rate),
	// makes Wait wake up this long before the next frame is due and poll
	// for it, instead of sleeping until Publish wakes it: the frame then
	// reaches a running consumer (about the busy-poll hand-off) and
	// Publish makes no system call. The due time is predicted from the
	// publish times of the frames Next and Borrow took; without a
	// prediction (the first frames, a source that paused or changed its
	// rate) Wait sleeps as usual. Cost: EarlyWake plus the timer's
	// lateness and the source's jitter of CPU per frame (earlywake.go).
	// The window must cover that lateness and jitter: on the KVM guest of
	// the README's numbers timed wake-ups ended 40-170 µs late, and 200 µs
	// caught most frames where 50 µs caught a third; on bare metal, less
	// does. Only frames taken with Next or Borrow feed the prediction, and
	// a busy-polling Reader (Spin < 0) never sleeps. 0 (default): off.
	EarlyWake time.Duration
	// From is the first sequence number wanted. 0 (default) starts with
	// the next frame published; 1 starts with the oldest frame the ring
	// still has (a lossless consumer re-attaching to a restarted producer
	// wants that). Frames already overwritten are counted as missed.
	From uint64
	// Prefault maps the segments with MAP_POPULATE.
	Prefault bool
	// StallAfter is how old the producer's heartbeat may grow, while the
	// ring runs and its source is not stopped, before Wait reports the
	// producer stalled (a log line and Health; it keeps waiting). Default
	// 1s, never less than twice the ring's heartbeat period.
	StallAfter time.Duration
	// Logger receives notes from the producer (default slog.Default()).
	Logger *slog.Logger

	// noChain makes the Reader attach as a client that does not pass
	// wakes on (tests: an older or other client).
	noChain bool
	// sleepTimeout replaces a consumer's 100 ms futex timeout (tests: a
	// sleeper that only a wake-up ends).
	sleepTimeout time.Duration
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
	dataMap, ctlMap *shm.Mapping
	data            dataRO
	ctl             ctlWords
	wake            shm.ReadUint32

	entry int    // table entry, -1 for observers
	bit   uint64 // 1<<entry

	conn      *shm.Conn
	gone      atomic.Bool // the producer's connection ended
	evicted   atomic.Bool // the producer's note said so (the entry state is authoritative)
	stalled   atomic.Bool // Wait reported the producer stalled and has not seen it move since
	closing   atomic.Bool
	inflight  atomic.Int64 // calls currently inside the mappings (enter/exit)
	lastYield atomic.Int64 // clock.Nanos() of Wait's last runtime.Gosched (local memory)
	sleepers  atomic.Int32 // this Reader's goroutines inside Wait's sleep loop (mirrors waiting)
	cad       cadence      // the source's frame period (Options.EarlyWake)
	// hint is seq<<16 | slot of the last frame borrowed (0: none yet), a
	// guess at where the next frames are (guess): local memory.
	hint      atomic.Uint64
	connDone  chan struct{}
	closeOnce sync.Once

	mu          sync.Mutex
	local       []int32 // leases per slot
	heldSlots   int     // slots with local[k] > 0: our bits set in hold words
	revokedSeen uint64  // leases found revoked at release
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
		switch {
		case errors.Is(err, shm.ErrNoListener):
			return nil, fmt.Errorf("attach %s: %w", path, ErrNoSuchRing)
		case errors.Is(err, shm.ErrRefused):
			return nil, fmt.Errorf("attach %s: %w: its socket is left over, nobody serves it", path, ErrProducerGone)
		}
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
	flags := uint32(helloChainWake)
	if r.opts.noChain {
		flags = 0
	}
	hello{version: Version, role: r.opts.Role, mode: r.opts.Mode, flags: flags, name: r.opts.Consumer, start: r.opts.From}.encode(b[:])
	// A failed send is not the end: a producer that refused us may have
	// answered and closed; its welcome says why.
	sendErr := r.conn.Send(b[:])
	n, files, err := r.conn.Recv(b[:], 2)
	if err == nil && n == 0 && sendErr != nil {
		err = sendErr
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return ctx.Err()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() != nil {
			// Connected (the kernel accepts for a listening socket) but no
			// answer in time: the producer is stopped or hung, not gone.
			return fmt.Errorf("%w: no welcome within the handshake deadline: %w", ErrNotResponding, context.DeadlineExceeded)
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
		return fmt.Errorf("%w: welcome carried %d descriptors, want 2", ErrProtocol, len(files))
	}
	if (r.opts.Role == RoleConsumer) != (w.entry != noEntry) {
		closeFiles()
		return fmt.Errorf("%w: entry %d for role %d", ErrProtocol, w.entry, r.opts.Role)
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
	if r.dataSeg.Size() != w.dataFileSize || r.ctlSeg.Size() != w.controlFileSize {
		return fmt.Errorf("%w: segments of %d and %d bytes, welcome says %d and %d", ErrProtocol,
			r.dataSeg.Size(), r.ctlSeg.Size(), w.dataFileSize, w.controlFileSize)
	}
	if r.dataMap, err = r.dataSeg.Map(false); err != nil {
		return err
	}
	if r.ctlMap, err = r.ctlSeg.Map(true); err != nil {
		return err
	}
	if r.geo, err = decodeDataHeader(r.dataMap.Bytes(), r.dataMap.Len()); err != nil {
		return err
	}
	if r.geo.epoch != w.epoch {
		return fmt.Errorf("%w: data segment epoch %#x, welcome %#x", ErrProtocol, r.geo.epoch, w.epoch)
	}
	if err := decodeControlHeader(r.ctlMap.Bytes(), r.ctlMap.Len(), r.geo); err != nil {
		return err
	}
	// Views over validated regions only.
	if r.data, err = newDataRO(r.dataMap, &r.geo); err != nil {
		return err
	}
	r.wake = r.data.wake()
	if r.ctl, err = newCtlWords(r.ctlMap, &r.geo); err != nil {
		return err
	}
	if r.opts.StallAfter <= 0 {
		r.opts.StallAfter = time.Second
	}
	r.opts.StallAfter = max(r.opts.StallAfter, 2*r.geo.heartbeat)
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
		r.cursor = r.ctl.cursor(r.entry).Load()
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
		g, s := r.data.gen(k), r.data.seq(k)
		if g&1 == 0 && s >= r.cursor && (oldest == 0 || s < oldest) && r.data.gen(k) == g {
			oldest = s
		}
	}
	if oldest == 0 {
		oldest = next
	}
	if oldest > r.cursor {
		r.cursor = oldest
		r.ctl.cursor(r.entry).Store(oldest)
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
		switch kind, reason, _ := decodeNote(b[:]); kind {
		case noteEvicted:
			r.evicted.Store(true)
			r.log.Warn("evicted by the producer", "reason", EvictReason(reason).String())
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

func (r *Reader) published() uint64 { return r.data.published() }

// status reports why the ring cannot deliver more: closed, producer gone,
// evicted, or nil.
func (r *Reader) status() error {
	if r.closing.Load() {
		return ErrClosed
	}
	if r.isEvicted() {
		return ErrEvicted
	}
	if r.data.ringState() == stateClosed {
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

// isEvicted reports whether the producer has evicted this consumer. The
// entry state is authoritative (the note only follows it).
func (r *Reader) isEvicted() bool {
	return r.entry >= 0 && (r.evicted.Load() || r.ctl.entryState(r.entry).Load() == entryEvicted)
}

// locate finds the slot of seq and a stable even generation for it
// (docs/LAYOUT.md 9.1), trying the slot guess names first. borrowing: the
// caller will take a hold on the slot.
func (r *Reader) locate(seq uint64, borrowing bool) (uint32, uint64, error) {
	p := r.published()
	if seq == 0 || seq > p {
		return 0, 0, ErrNotPublished
	}
	tried, guessed := r.guess(seq, p)
	if guessed {
		// Start the other misses Borrow takes on this slot (descriptor
		// line 1 and, for writing, the hold word) while glance waits for
		// line 0's. Hints: they order nothing (shm/prefetch.go).
		r.data.prefetchDesc(tried)
		if borrowing {
			r.ctl.prefetchHold(tried)
		}
		if g, ok := r.glance(tried, seq); ok {
			return tried, g, nil
		}
	}
	e := r.data.indexEntry(seq)
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

// guess names the slot frame seq is probably in (p is published), so
// that locate can skip the index entry: one cache miss fewer on the path
// from a frame's publication to its lease, where every miss is a transfer
// from the producer's core. The producer reuses slots oldest first, so
// while nobody holds a slot long they go round in order and frame seq
// sits (seq - last) slots after the last frame this Reader borrowed.
// Trusting the guess needs no more than the index does: glance accepts
// slot k only with seq in its descriptor under a stable even generation,
// which is the one slot carrying published frame seq; and only while
// frame seq's index entry cannot have been overwritten (p - seq <
// index_count - 1: Publish stores frame seq + index_count's entry before
// it stores published = seq + index_count, so with p = seq + index_count
// - 1 loaded the entry may already be gone), so a frame the index no
// longer addresses is still reported overwritten (docs/LAYOUT.md 9.1, "A
// guessed slot").
func (r *Reader) guess(seq, p uint64) (uint32, bool) {
	h := r.hint.Load()
	last := h >> 16
	if h == 0 || seq <= last || p-seq >= uint64(r.geo.indexCount)-1 {
		return 0, false
	}
	return uint32((h&0xffff + (seq - last)) % uint64(r.geo.slots)), true
}

// settle returns the slot's generation once it is even, provided the slot
// still carries seq. An odd generation with the descriptor still naming seq
// means the producer is deciding whether to reuse the slot (a few
// instructions, invariant 3 of producer.go): wait that out, bounded in case
// the producer died right there.
func (r *Reader) settle(k uint32, seq uint64) (uint64, bool) {
	var giveUp int64
	for i := 0; ; i++ {
		g := r.data.gen(k)
		if r.data.seq(k) != seq {
			return 0, false
		}
		if g&1 == 0 && r.data.gen(k) == g {
			return g, true
		}
		// The decision takes a few instructions; waiting longer means the
		// producer was descheduled or died inside it (or, hostile, keeps
		// changing the generation under the same seq). Give up after 10ms:
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

// glance is settle without its wait, for a guessed slot: slot k's
// generation if, read once (gen, seq, gen, as settle reads them), it is
// even and stable with seq in the descriptor. Anything else — another
// frame, a slot being decided on — locate leaves to the index and settle,
// so a guess never adds a wait of its own (not even against a hostile
// producer keeping two slots odd under the same seq).
func (r *Reader) glance(k uint32, seq uint64) (uint64, bool) {
	g := r.data.gen(k)
	if g&1 != 0 || r.data.seq(k) != seq || r.data.gen(k) != g {
		return 0, false
	}
	return g, true
}

// readMeta decodes slot k's descriptor. The caller validates it by the
// generation (Peek) or holds the slot (Borrow).
func (r *Reader) readMeta(k uint32) Meta {
	var m Meta
	r.data.readDesc(k, &m)
	return m
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
	k, g1, err := r.locate(seq, false)
	if err != nil {
		return err // bare sentinels on this hot path: a miss must not allocate
	}
	m := r.readMeta(k)
	if m.Seq != seq || m.Length > r.geo.capacity {
		shm.LoadFence()
		if r.data.gen(k) != g1 {
			return fmt.Errorf("peek %d: %w", seq, ErrOverwritten)
		}
		return fmt.Errorf("peek %d: %w: length %d in a %d-byte slot", seq, ErrCorrupt, m.Length, r.geo.capacity)
	}
	fn(Frame{Meta: m, Data: r.data.payload(k, m.Length)})
	// Every load fn made happens before the generation is loaded again.
	shm.LoadFence()
	if r.data.gen(k) != g1 {
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
// Release — or until the consumer is evicted, which revokes every lease it
// has (docs/LAYOUT.md 9.4): a caller that may be evicted (one that holds
// frames long, or many) validates what it read with Check, or by Release's
// result, before acting on it. A Lease is a small value; copies refer to
// the same lease, and only the first Release of any copy succeeds.
type Lease struct {
	r    *Reader
	i    int32
	tok  uint64
	gen  uint64 // the slot's generation when the lease was taken
	k    uint32
	meta Meta
	data []byte
}

// errRevokedOverwritten is the revocation of a lease whose frame was
// reused: prebuilt, so that reporting it allocates nothing.
var errRevokedOverwritten = fmt.Errorf("%w: %w: the frame changed while it was read", ErrRevoked, ErrOverwritten)

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

// Check tells whether everything read through the lease so far is good:
// nil while the lease holds; ErrReleased after Release; ErrRevoked if the
// consumer was evicted but the frame is still intact (what was read is
// good, but the frame may now change at any moment); ErrRevoked wrapping
// ErrOverwritten if the frame changed (what was read may be torn: discard
// it). It allocates nothing.
func (l Lease) Check() error {
	if !l.Valid() {
		return ErrReleased
	}
	return l.r.revoked(l)
}

// revoked is the check of docs/LAYOUT.md 9.4 (and 10.8): every read of the
// lease before the entry-state load, then the generation.
func (r *Reader) revoked(l Lease) error {
	shm.LoadFence() // every load of the lease's bytes before the state load
	if !r.isEvicted() {
		return nil
	}
	if r.data.gen(l.k) != l.gen {
		return errRevokedOverwritten
	}
	return ErrRevoked
}

// Release ends the lease. The slot may be reused by the producer as soon
// as no lease holds it. A second Release returns ErrReleased. If the
// consumer was evicted while it held the lease, the lease is released all
// the same and Release reports it as Check does (ErrRevoked, wrapping
// ErrOverwritten when the frame changed).
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
	if r.isEvicted() {
		return Lease{}, ErrEvicted // bare: an evicted Next loop must not allocate per call either
	}
	if r.gone.Load() && r.data.ringState() != stateClosed {
		// Our connection ended with the ring still running: the producer
		// reclaimed our entry (or died), and our holder bit may be another
		// consumer's now. After a clean close nothing is reused, and the
		// frames still published may be drained. Peek still works.
		return Lease{}, fmt.Errorf("borrow %d: %w", seq, ErrProducerGone)
	}
	k, g1, err := r.locate(seq, true)
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
	hold := r.ctl.hold(k)
	if r.local[k] == 0 {
		// A new slot for us: within the quota before we set the bit, so
		// our bit is never in more hold words than the quota, even for a
		// moment (the producer evicts a consumer it counts over it).
		if r.heldSlots >= int(r.geo.holdQuota) {
			return Lease{}, fmt.Errorf("borrow %d: %w (%d slots)", seq, ErrTooManyHeld, r.geo.holdQuota)
		}
		// Sequentially consistent RMW: our bit is visible before we load
		// the generation again. Pairs with Producer.Acquire, which stores
		// an odd generation and then loads the holder mask.
		hold.Or(r.bit)
		if g2, ok := r.settle(k, seq); !ok || g2 != g1 {
			hold.And(^r.bit)
			return Lease{}, ErrOverwritten
		}
		// Evicted: the producer no longer honours our bits. Checked after
		// the hold, so a borrow racing with the eviction either sees it
		// here or was taken before it (and is revoked, docs/LAYOUT.md 10.8).
		if r.ctl.entryState(r.entry).Load() == entryEvicted {
			hold.And(^r.bit)
			return Lease{}, ErrEvicted
		}
	} else if r.data.seq(k) != seq {
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
	if r.opts.EarlyWake > 0 {
		r.cad.observe(seq, m.PublishNs)
	}
	if r.local[k] == 0 {
		r.heldSlots++
	}
	r.local[k]++
	r.hint.Store(seq<<16 | uint64(k))
	i := r.freeLeases[n-1]
	r.freeLeases = r.freeLeases[:n-1]
	rec := &r.leases[i]
	rec.slot = k
	r.tokens += 2
	tok := r.tokens | 1
	rec.tok.Store(tok)
	r.outstanding++
	// Informational, read by ringctl; we are its only writer.
	r.ctl.held(r.entry).Store(uint64(r.outstanding))
	return Lease{r: r, i: i, tok: tok, gen: g1, k: k, meta: m, data: r.data.payload(k, m.Length)}, nil
}

func (r *Reader) release1(l Lease) error {
	r.mu.Lock()
	rec := &r.leases[l.i]
	if rec.tok.Load() != l.tok {
		r.mu.Unlock()
		return ErrReleased
	}
	// Revoked? Decided before our bit goes, after every read the caller
	// made (docs/LAYOUT.md 9.4).
	verdict := r.revoked(l)
	if verdict != nil {
		r.revokedSeen++
		r.ctl.revokedSeen(r.entry).Store(r.revokedSeen)
	}
	rec.tok.Store(l.tok + 1) // even: dead; any copy of the Lease now fails
	k := rec.slot
	r.local[k]--
	if r.local[k] == 0 {
		r.heldSlots--
		if !r.gone.Load() {
			// Our last lease on k: the producer may reuse it once it sees
			// this. Not once our connection has ended: the producer
			// reclaimed our holds then, and the bit may already be
			// another consumer's.
			r.ctl.hold(k).And(^r.bit)
		}
	}
	r.freeLeases = append(r.freeLeases, l.i)
	r.outstanding--
	r.ctl.held(r.entry).Store(uint64(r.outstanding))
	teardown := r.closed && r.outstanding == 0 && r.inflight.Load() == 0
	r.mu.Unlock()
	if teardown {
		r.teardown()
	}
	return verdict
}

// YieldEvery is how often a polling Wait yields the processor with
// runtime.Gosched (and how often a latency-mode Wait does before it
// sleeps). sysmon preempts a goroutine that has run for 10 ms without a
// scheduling event by sending its thread SIGURG; yielding twice as often
// keeps a busy-polling consumer clear of those signals, at the cost of one
// Gosched (about 100-300 ns on an unlocked thread) per YieldEvery.
const YieldEvery = 5 * time.Millisecond

// LatencyWaitTimeout is the longest a latency-mode Wait sleeps in one raw
// futex wait (Options.Latency) before it re-checks its conditions. The Go
// runtime's stop-the-world and sysmon's preemption end the sleep sooner,
// by signal (SIGURG; shm.ReadUint32.WaitRaw), and Wait then yields; the
// timeout bounds the hold-up only where that signal is not delivered
// (GODEBUG=asyncpreemptoff=1, or signal.Ignore(syscall.SIGURG)). It is
// longer than the kernel's scheduler tick on purpose: a shorter one makes
// every wake-up reprogram the CPU's timer (shm/futex_linux.go), which on a
// virtual machine costs more than the rest of the wake-up.
const LatencyWaitTimeout = 20 * time.Millisecond

// Wait returns the newest published sequence number once it is greater
// than after. It polls for Options.Spin, then sleeps on the ring's futex
// (a raw futex wait with Options.Latency).
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
	until := int64(0) // Spin < 0: busy-poll, never sleep
	if r.opts.Spin > 0 {
		until = clock.Nanos() + int64(r.opts.Spin)
	}
	if p, err := r.poll(ctx, after, until); p > after || err != nil {
		return p, err
	}
	if r.opts.EarlyWake > 0 && r.entry >= 0 {
		if p, err := r.waitEarly(ctx, after); p > after || err != nil {
			return p, err
		}
	}
	return r.sleep(ctx, after, 0)
}

// poll is Wait's polling: it returns the newest published sequence number
// once it is greater than after, or 0 and no error once the clock passes
// until (clock.Nanos; 0: never). Every 64 loads it checks the Reader and
// ctx and yields every YieldEvery; now and then it looks for a stall (a
// busy-poller never sleeps, where sleep would).
func (r *Reader) poll(ctx context.Context, after uint64, until int64) (uint64, error) {
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
			now := clock.Nanos()
			if until != 0 && now > until {
				return 0, nil
			}
			r.maybeYield(now)
			if i&(1<<16-1) == 1<<16-1 {
				r.checkStall()
			}
		}
	}
}

// sleep is Wait's futex sleep: it returns the newest published sequence
// number once it is greater than after, or 0 and no error once deadline
// (clock.Nanos; 0: none) has passed.
func (r *Reader) sleep(ctx context.Context, after uint64, deadline int64) (uint64, error) {
	r.watchCtx(ctx)
	r.setWaiting(true)
	defer r.setWaiting(false)
	for {
		if r.opts.Latency {
			// Yield before loading wake, never between that load and the
			// sleep: a raw wait is scheduling-silent, so without this a
			// sleeping consumer would be preempted by signal on a wake-up.
			r.maybeYield(clock.Nanos())
		}
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
		r.checkStall()
		timeout := 100 * time.Millisecond
		if r.opts.sleepTimeout > 0 {
			timeout = r.opts.sleepTimeout
		}
		if r.entry < 0 {
			timeout = time.Millisecond // observers have no waiter bit
		}
		if deadline != 0 {
			left := deadline - clock.Nanos()
			if left <= 0 {
				return 0, nil
			}
			timeout = min(timeout, time.Duration(left))
		}
		var err error
		if r.opts.Latency {
			var interrupted bool
			interrupted, err = r.wake.WaitRaw(w, min(timeout, LatencyWaitTimeout))
			if interrupted {
				// The runtime wants this P (a stop-the-world, or sysmon
				// preempting a goroutine that "ran" too long): give it.
				runtime.Gosched()
				r.lastYield.Store(clock.Nanos())
			}
		} else {
			err = r.wake.Wait(w, timeout)
		}
		if err != nil {
			return 0, err
		}
		r.passWake(w)
	}
}

// passWake keeps this Reader's promise (the hello's chain-wake flag,
// docs/LAYOUT.md 9.5): once its sleep ended and wake moved past w, it wakes
// chainFanout more sleepers, if any other consumer's waiter bit is set or
// another of this Reader's goroutines sleeps (they share one bit); a lone
// sleeper pays no system call. Extra wakes are harmless: a woken sleeper
// re-checks, as after any futex wait.
func (r *Reader) passWake(w uint32) {
	if r.opts.noChain || r.wake.Load() == w {
		return
	}
	if r.ctl.waiters().Load()&^r.bit == 0 && r.sleepers.Load() <= 1 {
		return
	}
	r.wake.Wake(chainFanout)
}

// maybeYield calls runtime.Gosched if YieldEvery has passed since the
// last yield of any of this Reader's waits (now is clock.Nanos()).
func (r *Reader) maybeYield(now int64) {
	last := r.lastYield.Load()
	if now-last < int64(YieldEvery) {
		return
	}
	r.lastYield.Store(now)
	runtime.Gosched()
}

// ProducerState is how the producer looks from a consumer.
type ProducerState int

const (
	// ProducerRunning: the ring runs and its acquisition loop makes progress.
	ProducerRunning ProducerState = iota
	// ProducerWaiting: the loop is alive but its source is idle (waiting for
	// a trigger, paused) or lost (being reopened): not a stall.
	ProducerWaiting
	// ProducerStalled: the heartbeat is older than Options.StallAfter while
	// the source is not idle: the producer is stopped or hung. It may move
	// again; the Reader keeps waiting.
	ProducerStalled
	// ProducerClosed: the ring was closed cleanly.
	ProducerClosed
	// ProducerGone: the producer's connection ended without a close.
	ProducerGone
)

var producerStateNames = [...]string{"running", "waiting for source", "stalled", "closed", "gone"}

func (s ProducerState) String() string {
	if int(s) < len(producerStateNames) {
		return producerStateNames[s]
	}
	return fmt.Sprintf("ProducerState(%d)", int(s))
}

// Health is the producer's condition as a consumer judges it from shared
// memory and its connection (docs/LAYOUT.md 8.4).
type Health struct {
	State        ProducerState
	Source       SourceState
	HeartbeatAge time.Duration
}

// Health returns the producer's condition now.
func (r *Reader) Health() Health {
	if !r.enter() {
		return Health{State: ProducerClosed, Source: SourceStopped}
	}
	defer r.exit()
	return r.health()
}

func (r *Reader) health() Health {
	h := Health{Source: SourceState(r.data.sourceState()), HeartbeatAge: time.Duration(clock.Nanos() - r.data.heartbeat())}
	switch {
	case r.data.ringState() == stateClosed:
		h.State = ProducerClosed
	case r.gone.Load():
		h.State = ProducerGone
	case h.Source == SourceWaiting || h.Source == SourceLost:
		h.State = ProducerWaiting
		// An idle loop still beats; one that stopped beating is stalled.
		if h.HeartbeatAge > r.opts.StallAfter {
			h.State = ProducerStalled
		}
	case h.Source != SourceStopped && h.HeartbeatAge > r.opts.StallAfter:
		h.State = ProducerStalled
	default:
		h.State = ProducerRunning
	}
	return h
}

// checkStall logs, once per episode, that the producer stalled and that it
// resumed (docs/LAYOUT.md 8.4: stalled is not gone; keep waiting).
func (r *Reader) checkStall() {
	h := r.health()
	stalled := h.State == ProducerStalled
	if stalled == r.stalled.Load() {
		return
	}
	r.stalled.Store(stalled)
	if stalled {
		r.log.Warn("producer stalled: its heartbeat stopped; waiting for it", "heartbeat_age", h.HeartbeatAge.String(),
			"source", h.Source.String(), "pid", r.geo.producerPid)
	} else {
		r.log.Info("producer resumed", "source", h.Source.String())
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
		r.sleepers.Add(1)
		r.waiting++
		if r.waiting == 1 && !r.gone.Load() {
			r.ctl.waiters().Or(r.bit)
		}
	} else {
		r.sleepers.Add(-1)
		r.waiting--
		// Once the connection ended the entry may already belong to
		// another consumer: its waiter bit is no longer ours to clear (the
		// producer cleared it when it freed the entry).
		if r.waiting == 0 && !r.gone.Load() {
			r.ctl.waiters().And(^r.bit)
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
	c, i := r.ctl, r.entry
	// Cursor after the hold (Borrow set it): the producer that sees the
	// new cursor also sees our holder bit. Pairs with losslessMin.
	c.cursor(i).Store(r.cursor)
	c.delivered(i).Store(r.delivered)
	c.skipped(i).Store(r.skipped)
	c.missed(i).Store(r.missed)
	if m.Seq != 0 {
		c.lastSeq(i).Store(m.Seq)
		if lat := clock.Nanos() - m.Timestamp; lat > 0 && m.Timestamp > 0 {
			c.latency(i).Store(uint64(lat))
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
		r.ctl.waiters().And(^r.bit)
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
		if r.entry >= 0 && !r.gone.Load() {
			// A clean detach: every lease is released; say so, so the
			// producer counts a detach, not a reclaim (docs/LAYOUT.md 6.2).
			var b [msgSize]byte
			encodeBye(b[:])
			r.conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			r.conn.Send(b[:])
		}
		r.conn.Close()
		<-r.connDone
		r.release()
	})
}

func (r *Reader) release() {
	if r.conn != nil {
		r.conn.Close()
	}
	for _, c := range []io.Closer{r.dataMap, r.ctlMap, r.dataSeg, r.ctlSeg} {
		if c != nil && !isNil(c) {
			c.Close()
		}
	}
}
