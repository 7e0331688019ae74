package ringbuf

// The producer side of the ring.
//
// Invariants kept by this file (docs/LAYOUT.md argues each one):
//
//  1. A slot's generation is odd from the moment the producer decides to
//     reuse it until the moment it publishes the next frame in it; every
//     payload or descriptor write happens while it is odd. Readers accept
//     only data read between two loads of the same even generation.
//  2. A slot is reused only if (a) its holder mask was zero after its
//     generation became odd, and (b) every active lossless consumer's cursor
//     is past the slot's sequence. (a) is a Dekker handshake with Borrow:
//     the producer stores gen then loads holders; a consumer stores its
//     holder bit then loads gen; both sequentially consistent, so at least
//     one side sees the other.
//  3. If (a) fails after the generation was made odd, nothing has been
//     written, and the generation is restored to its old even value: the
//     frame was never touched, so readers that saw the old value before and
//     after read a good frame.
//  4. Publish stores, in order: descriptor fields, descriptor seq, index
//     entry, generation (even), published. A reader that loads published >= s
//     therefore finds the index entry and descriptor of s complete.
//  5. The producer never blocks on a consumer: Acquire fails with
//     ErrNoFreeSlot instead, and the caller counts the dropped frame.
//     Eviction, which Acquire may trigger, only flips atomics under mu (held
//     briefly by attach and reclaim, never across I/O) and sends its note
//     from another goroutine.
//  6. A consumer's table entry and holder bit are reused only after every
//     hold of the previous owner has been cleared (reclaim runs under mu and
//     frees the entry last).
//
// Acquire, Publish, Abort and RecordDrops belong to one goroutine (the
// acquisition loop). Attach handling, supervision and Snapshot run on other
// goroutines and touch only atomics and state guarded by mu.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/framering/framering/clock"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/loss"
	"github.com/framering/framering/shm"
)

// Config describes a ring to create.
type Config struct {
	// Name is the ring's name; its socket is SocketPath(Name) unless
	// SocketPath is set.
	Name       string
	SocketPath string
	// Slots is the number of frame slots (default 8).
	Slots int
	// SlotSize is the payload capacity of a slot in bytes, rounded up to
	// the page size (required).
	SlotSize int
	// IndexSize is the number of sequence-index entries, rounded up to a
	// power of two (default max(64, 4*Slots)).
	IndexSize int
	// SocketMode is the attach socket's permission bits (default 0660).
	SocketMode os.FileMode
	// AllowUIDs and AllowGIDs restrict attach to peers whose uid or gid is
	// listed (SO_PEERCRED). Both empty: any peer that can open the socket.
	AllowUIDs, AllowGIDs []int
	// EvictAfter is how long a lossless consumer may keep the producer
	// without a free slot before it is evicted (default 2s).
	EvictAfter time.Duration
	// HugePages and Prefault tune the data segment (see shm.SegmentOptions).
	HugePages, Prefault bool
	// Logger receives attach, eviction and reclaim events (default slog.Default()).
	Logger *slog.Logger
}

// Meta is a frame's metadata as stored in its slot descriptor.
type Meta struct {
	// Seq is the ring sequence number, assigned by Publish: 1, 2, 3, ...
	// with no gaps (frames dropped before publishing get none).
	Seq uint64
	// FrameID is the source's frame counter; gaps in it are frames lost
	// upstream (grabber underruns).
	FrameID uint64
	// Timestamp is the capture time, CLOCK_MONOTONIC nanoseconds.
	Timestamp int64
	Width     uint32
	Height    uint32
	Stride    uint32
	Format    frame.Format
	// Length is the number of payload bytes.
	Length uint64
	// Flags are FlagPattern, FlagDefects, FlagReplayed (docs/LAYOUT.md 3.2)
	// and, in bits 16-31, the source's own.
	Flags uint32
	// DeviceTimestamp is the camera's own timestamp, unconverted; 0 if none.
	DeviceTimestamp uint64
	// OriginEpoch and OriginSeq identify a replayed frame in the ring it was
	// first published in (FlagReplayed); 0 otherwise.
	OriginEpoch, OriginSeq uint64
	// PublishNs is when the producer published the frame (CLOCK_MONOTONIC);
	// set by Publish, ignored in its argument.
	PublishNs int64
	// DropsBefore are the frames lost between the previous published frame
	// and this one, by cause (docs/LAYOUT.md 8.5); set by Publish from what
	// RecordDrops counted, ignored in its argument. Unused entries are zero.
	DropsBefore [4]Drop
}

// Drop is a count of frames lost for one cause.
type Drop struct {
	Cause loss.Cause
	Count uint64
}

// Descriptor flags (docs/LAYOUT.md 3.2).
const (
	// FlagPattern: the payload is the test pattern of docs/LAYOUT.md Appendix A.
	FlagPattern uint32 = 1 << 0
	// FlagDefects: that pattern carries injected defects.
	FlagDefects uint32 = 1 << 1
	// FlagReplayed: the frame comes from an archive; OriginEpoch/OriginSeq are set.
	FlagReplayed uint32 = 1 << 2
)

// DropCause says why a frame never reached the ring.
type DropCause int

const (
	// DropNoSlot: the producer had a frame and no free slot for it.
	DropNoSlot DropCause = iota
	// DropUnderrun: the grabber had no buffer queued when a frame was due.
	DropUnderrun
	// DropSource: the source delivered an incomplete or failed frame.
	DropSource
)

// Local slot states (the producer's own bookkeeping, never shared).
const (
	slotFree = iota
	slotLent
	slotPublished
)

// Producer owns a ring: its two segments, its socket and its consumers.
type Producer struct {
	cfg Config
	log *slog.Logger
	geo geometry

	dataSeg, ctlSeg *shm.Segment
	data, ctl       *shm.Mapping
	dataBytes       []byte
	dw              []atomic.Uint64 // data segment header+descriptors+index, as words
	dw32            []atomic.Uint32 // data segment header, as 32-bit words
	cw              []atomic.Uint64 // control segment, as words
	cw32            []atomic.Uint32

	// Acquisition-goroutine state.
	state   []uint8
	seqOf   []uint64
	tok     []uint32
	free    []uint32
	fifo    []uint32 // published slots, oldest first
	next    uint64
	blocked struct {
		entry int
		since int64
		who   uint64 // the entry's attach time: a new owner of the entry is not the one blamed
	}

	lossless  atomic.Uint64 // bit per active lossless entry (Go memory; the table is authoritative for consumers)
	closed    atomic.Bool
	closeMu   sync.RWMutex // Close holds it to unmap; Snapshot and Published read under it
	final     Snapshot     // taken by Close, returned by Snapshot afterwards
	closeOnce sync.Once
	closeErr  error

	mu        sync.Mutex
	entries   [MaxConsumers]*peer
	observers map[*peer]struct{}
	conns     map[*shm.Conn]struct{} // every accepted connection still open; Close closes them all
	incarn    uint64

	ln      *shm.Listener
	watcher *shm.Watcher
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// peer is one attached process.
type peer struct {
	conn  *shm.Conn
	pidfd *shm.Pidfd
	entry int
	key   uint64
	cred  shm.PeerCred
	name  string
	mode  Mode
	start uint64 // from the hello: first sequence wanted, 0 = next
	// welcomed is set under mu once the welcome was sent: notes (closing,
	// evicted) go only to welcomed peers, or a note could arrive first and
	// be read as the welcome.
	welcomed bool
}

// Slot is a slot lent to the caller by Acquire, to fill and Publish (or
// Abort). Its Bytes stay valid until then.
type Slot struct {
	p   *Producer
	k   uint32
	tok uint32
	buf []byte
}

// Index is the slot's index in the ring (stable for the ring's lifetime).
func (s Slot) Index() int { return int(s.k) }

// Bytes is the slot's payload area (capacity bytes). The caller, or the
// frame grabber it lends the slot to, writes the frame here.
func (s Slot) Bytes() []byte { return s.buf }

// Create makes a ring, starts serving attaches on its socket and returns
// the owning Producer. Close it to end the ring.
func Create(cfg Config) (*Producer, error) {
	if cfg.Slots == 0 {
		cfg.Slots = 8
	}
	if cfg.SocketMode == 0 {
		cfg.SocketMode = 0o660
	}
	if cfg.EvictAfter == 0 {
		cfg.EvictAfter = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SlotSize <= 0 {
		return nil, fmt.Errorf("create ring: %w: slot size %d", ErrConfig, cfg.SlotSize)
	}
	path, err := resolvePath(cfg.Name, cfg.SocketPath)
	if err != nil {
		return nil, fmt.Errorf("create ring: %w", err)
	}
	geo, err := newGeometry(cfg.Slots, uint64(cfg.SlotSize), cfg.IndexSize)
	if err != nil {
		return nil, fmt.Errorf("create ring: %w", err)
	}
	var eb [8]byte
	if _, err := rand.Read(eb[:]); err != nil {
		return nil, fmt.Errorf("create ring: epoch: %w", err)
	}
	geo.epoch = binary.LittleEndian.Uint64(eb[:]) | 1 // never 0
	geo.producerPid = uint32(os.Getpid())

	p := &Producer{cfg: cfg, log: cfg.Logger.With("ring", path), observers: map[*peer]struct{}{}, conns: map[*shm.Conn]struct{}{}}
	ok := false
	defer func() {
		if !ok {
			p.release()
		}
	}()
	// Hold the socket first: a second producer on the same name fails
	// before it allocates anything.
	if p.ln, err = shm.Listen(path, cfg.SocketMode); err != nil {
		if errors.Is(err, shm.ErrInUse) {
			return nil, fmt.Errorf("create ring %s: %w", path, ErrExists)
		}
		return nil, fmt.Errorf("create ring: %w", err)
	}
	segOpts := shm.SegmentOptions{HugePages: cfg.HugePages, Prefault: cfg.Prefault, Logger: cfg.Logger}
	if p.dataSeg, err = shm.CreateSegment("framering-data", geo.dataSize, segOpts); err != nil {
		return nil, fmt.Errorf("create ring: %w", err)
	}
	if p.dataSeg.HugePages() {
		geo.flags |= flagHugePages
	}
	if p.ctlSeg, err = shm.CreateSegment("framering-control", geo.controlSize, shm.SegmentOptions{Prefault: true}); err != nil {
		return nil, fmt.Errorf("create ring: %w", err)
	}
	if p.data, err = p.dataSeg.Map(true); err != nil {
		return nil, fmt.Errorf("create ring: %w", err)
	}
	if p.ctl, err = p.ctlSeg.Map(true); err != nil {
		return nil, fmt.Errorf("create ring: %w", err)
	}
	// Seal the data segment against writes by anyone else: our mapping
	// stays writable, every later writable mapping and write(2) fails. The
	// control segment stays writable: consumers record holds there.
	if err := p.dataSeg.AddSeals(shm.SealFutureWrite | shm.SealSeal); err != nil {
		return nil, fmt.Errorf("create ring: %w", err)
	}
	if err := p.ctlSeg.AddSeals(shm.SealSeal); err != nil {
		return nil, fmt.Errorf("create ring: %w", err)
	}
	p.geo = geo
	p.dataBytes = p.data.Bytes()
	if p.dw, err = p.data.Uint64s(0, geo.payloadOffset/8); err != nil {
		return nil, fmt.Errorf("create ring: %w", err)
	}
	if p.dw32, err = p.data.Uint32s(0, headerSize/4); err != nil {
		return nil, fmt.Errorf("create ring: %w", err)
	}
	if p.cw, err = p.ctl.Uint64s(0, geo.controlSize/8); err != nil {
		return nil, fmt.Errorf("create ring: %w", err)
	}
	if p.cw32, err = p.ctl.Uint32s(0, geo.controlSize/4); err != nil {
		return nil, fmt.Errorf("create ring: %w", err)
	}
	geo.encodeData(p.dataBytes, uint64(time.Now().UnixNano()))
	geo.encodeControl(p.ctl.Bytes())
	n := int(geo.slots)
	p.state, p.seqOf, p.tok = make([]uint8, n), make([]uint64, n), make([]uint32, n)
	p.free, p.fifo = make([]uint32, 0, n), make([]uint32, 0, n)
	for k := n - 1; k >= 0; k-- {
		p.dw[geo.desc(uint32(k))/8+dGen/8].Store(1) // odd: no frame yet
		p.free = append(p.free, uint32(k))
	}
	p.next = 1
	p.blocked.entry = -1
	now := clock.Nanos()
	p.dw[offStartMonoNs/8].Store(uint64(now))
	p.dw[offHeartbeatNs/8].Store(uint64(now))
	// Running is stored last: an attaching consumer is only ever handed
	// the segments after this point anyway (the server starts below).
	p.dw32[offState/4].Store(stateRunning)

	if p.watcher, err = shm.NewWatcher(); err != nil {
		return nil, fmt.Errorf("create ring: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Add(3)
	go p.serve()
	go p.watch(ctx)
	go p.heartbeat(ctx)
	ok = true
	p.log.Info("ring created", "slots", geo.slots, "slot_capacity", geo.capacity, "epoch", fmt.Sprintf("%016x", geo.epoch),
		"data_bytes", geo.dataSize, "huge_pages", p.dataSeg.HugePages())
	return p, nil
}

// Path is the ring's socket path.
func (p *Producer) Path() string { return p.ln.Path() }

// Epoch is the random identity of this producer run.
func (p *Producer) Epoch() uint64 { return p.geo.epoch }

// Slots is the number of slots.
func (p *Producer) Slots() int { return int(p.geo.slots) }

// SlotCapacity is the payload capacity of one slot in bytes.
func (p *Producer) SlotCapacity() int { return int(p.geo.capacity) }

// SlotBytes returns the payload area of slot k, for announcing every slot
// to a frame grabber once. The view is valid until Close; the grabber may
// write it only while the slot is lent to it (between Acquire and Publish).
func (p *Producer) SlotBytes(k int) []byte {
	if p.closed.Load() || k < 0 || k >= int(p.geo.slots) {
		return nil
	}
	off := p.geo.payload(uint32(k))
	return p.dataBytes[off : off+p.geo.capacity : off+p.geo.capacity]
}

func (p *Producer) gen(k uint32) *atomic.Uint64  { return &p.dw[p.geo.desc(k)/8+dGen/8] }
func (p *Producer) hold(k uint32) *atomic.Uint64 { return &p.cw[p.geo.hold(k)/8] }

// Acquire lends a slot for the next frame: a never-used one, else the
// oldest published slot that no consumer holds and every lossless consumer
// has passed. It never waits: with no such slot it returns ErrNoFreeSlot.
func (p *Producer) Acquire() (Slot, error) {
	if p.closed.Load() {
		return Slot{}, ErrClosed
	}
	if n := len(p.free); n > 0 {
		k := p.free[n-1]
		p.free = p.free[:n-1]
		p.blocked.entry = -1
		return p.lend(k), nil
	}
	minCursor, blocker := p.losslessMin()
	pinned := false
	for i, k := range p.fifo {
		if p.seqOf[k] >= minCursor {
			// This and every later frame is still wanted by a lossless
			// consumer. Its cursor is to blame only if, without it, a
			// slot would have been free of holds.
			for _, k2 := range p.fifo[i:] {
				if p.hold(k2).Load() == 0 {
					pinned = true
					break
				}
			}
			break
		}
		h := p.hold(k)
		if h.Load() != 0 {
			continue // held: a long hold never stalls us, try the next oldest
		}
		g := p.gen(k)
		old := g.Load()
		// Odd: readers stop trusting the slot. Ordered before the holder
		// load below (invariant 2). Swap, not Store: an RMW is a full
		// fence everywhere, while the race detector's runtime does not
		// fence a plain atomic store to memory outside the Go heap (our
		// mapping), which let the load overtake it in -race builds.
		g.Swap(old + 1)
		if h.Load() != 0 {
			// A consumer took a hold between our two loads. Nothing was
			// written: restore the generation (invariant 3).
			g.Store(old)
			continue
		}
		// Committed. Clearing seq tells a reader that saw the odd
		// generation that the frame is gone (not just being decided on).
		p.dw[p.geo.desc(k)/8+dSeq/8].Store(0)
		p.fifo = slices.Delete(p.fifo, i, i+1)
		p.blocked.entry = -1
		return p.lend(k), nil
	}
	// Blame a lossless consumer only if its cursor stopped the scan: a
	// caught-up one is not at fault for other consumers' holds, nor for
	// slots that are all lent out.
	if pinned && blocker >= 0 {
		p.noteBlocked(blocker)
	} else {
		p.blocked.entry = -1
	}
	return Slot{}, ErrNoFreeSlot
}

func (p *Producer) lend(k uint32) Slot {
	p.state[k] = slotLent
	p.tok[k]++
	return Slot{p: p, k: k, tok: p.tok[k], buf: p.SlotBytes(int(k))}
}

// losslessMin returns the smallest cursor among active lossless consumers
// and the entry that has it (-1 and MaxUint64 when there are none).
func (p *Producer) losslessMin() (uint64, int) {
	m := p.lossless.Load()
	minCursor, who := ^uint64(0), -1
	for m != 0 {
		i := bits.TrailingZeros64(m)
		m &= m - 1
		// Consumer-written; only compared, never used as an index.
		// Pairs with the consumer's store of its cursor after its hold.
		if c := p.cw[(p.geo.entry(i)+eCursor)/8].Load(); c < minCursor {
			minCursor, who = c, i
		}
	}
	return minCursor, who
}

// noteBlocked records that lossless consumer entry kept Acquire from
// finding a slot, and evicts it once that has lasted EvictAfter.
func (p *Producer) noteBlocked(entry int) {
	now := clock.Nanos()
	who := p.cw[(p.geo.entry(entry)+eAttachNs)/8].Load()
	if p.blocked.entry != entry || p.blocked.who != who {
		p.blocked.entry, p.blocked.since, p.blocked.who = entry, now, who
		return
	}
	if time.Duration(now-p.blocked.since) >= p.cfg.EvictAfter {
		p.blocked.entry = -1
		p.evict(entry, who)
	}
}

func (p *Producer) checkSlot(s Slot) error {
	if s.p != p || s.k >= p.geo.slots || p.state[s.k] != slotLent || p.tok[s.k] != s.tok {
		return ErrSlotState
	}
	return nil
}

// Publish makes the frame in slot s visible as the next sequence number and
// returns it. m.Seq is ignored. The slot must not be written after this.
func (p *Producer) Publish(s Slot, m Meta) (uint64, error) {
	if p.closed.Load() {
		return 0, fmt.Errorf("publish slot %d: %w", s.k, ErrClosed)
	}
	if err := p.checkSlot(s); err != nil {
		return 0, fmt.Errorf("publish slot %d: %w", s.k, err)
	}
	if m.Length > p.geo.capacity {
		return 0, fmt.Errorf("publish slot %d: %w: %d-byte frame in a %d-byte slot", s.k, ErrConfig, m.Length, p.geo.capacity)
	}
	if p.next > maxSeq {
		return 0, fmt.Errorf("publish slot %d: %w: sequence space exhausted", s.k, ErrClosed)
	}
	k, seq := s.k, p.next
	base := p.geo.desc(k)
	d := p.dataBytes[base : base+descSize]
	le := binary.LittleEndian
	// Plain stores: the generation is odd, no reader trusts them yet.
	le.PutUint64(d[dFrameID:], m.FrameID)
	le.PutUint64(d[dTimestamp:], uint64(m.Timestamp))
	le.PutUint32(d[dWidth:], m.Width)
	le.PutUint32(d[dHeight:], m.Height)
	le.PutUint32(d[dStride:], m.Stride)
	le.PutUint32(d[dFormat:], uint32(m.Format))
	le.PutUint64(d[dLength:], m.Length)
	le.PutUint32(d[dFlags:], m.Flags)
	p.dw[base/8+dSeq/8].Store(seq)
	// Index entry before the generation and published (invariant 4).
	p.dw[p.geo.index(seq&uint64(p.geo.indexCount-1))/8].Store(seq<<16 | uint64(k))
	g := p.gen(k)
	// Even: releases the descriptor and every payload byte written before
	// it; pairs with a reader's load of the generation before and after.
	g.Store(g.Load() + 1)
	// Pairs with Reader loads of published (Wait, Borrow): a reader that
	// sees seq here sees the index entry and descriptor above. Swap: this
	// store and the waiters load below are a Dekker pair (see above).
	p.dw[offPublished/8].Swap(seq)
	p.next++
	p.seqOf[k] = seq
	p.state[k] = slotPublished
	p.fifo = append(p.fifo, k)
	// Dekker with Reader.Wait: we stored published, then load waiters; a
	// waiter stores its bit, then loads published. Wake only if someone sleeps.
	if p.cw[cWaiters/8].Load() != 0 {
		p.dw32[offWake/4].Add(1)
		shm.FutexWake(&p.dw32[offWake/4], 0)
	}
	return seq, nil
}

// Abort returns an acquired slot unpublished.
func (p *Producer) Abort(s Slot) error {
	if err := p.checkSlot(s); err != nil {
		return fmt.Errorf("abort slot %d: %w", s.k, err)
	}
	p.state[s.k] = slotFree
	p.tok[s.k]++
	p.free = append(p.free, s.k)
	return nil
}

// RecordDrops counts n frames lost for cause in the ring's header, where
// every consumer and ringctl can see them. While a lossless consumer is
// pinning the ring (the last Acquire failed because of its cursor), the
// drops are also charged to it (ConsumerInfo.BlockedDrops).
func (p *Producer) RecordDrops(cause DropCause, n uint64) {
	if p.closed.Load() {
		return
	}
	if e := p.blocked.entry; e >= 0 && cause != DropSource {
		p.cw[(p.geo.entry(e)+eBlockDrops)/8].Add(n)
	}
	off := offDropNoSlot
	switch cause {
	case DropUnderrun:
		off = offDropUnderrun
	case DropSource:
		off = offDropSource
	}
	p.dw[off/8].Add(n)
}

// Published is the last published sequence number (0 before the first).
func (p *Producer) Published() uint64 {
	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.closed.Load() {
		return p.final.Published
	}
	return p.dw[offPublished/8].Load()
}

// Close marks the ring closed, wakes every waiter, disconnects every
// consumer and releases the producer's segments. Consumers keep their own
// mappings until they close; nothing of the ring survives the last one.
// The caller must have stopped lending slots (a frame grabber must no
// longer write them) before calling Close, and Close must not run
// concurrently with Acquire or Publish (they belong to one goroutine; stop
// it first). After Close, Published and Snapshot report the final state.
func (p *Producer) Close() error {
	p.closeOnce.Do(func() { p.closeErr = p.close() })
	return p.closeErr
}

func (p *Producer) close() error {
	p.closeMu.Lock()
	p.final = p.snapshotLocked()
	p.closed.Store(true)
	p.closeMu.Unlock()
	p.dw32[offState/4].Store(stateClosed)
	p.dw32[offWake/4].Add(1)
	shm.FutexWake(&p.dw32[offWake/4], 0)
	p.ln.Close()
	p.cancel()
	p.watcher.Close()
	var note [msgSize]byte
	encodeNote(note[:], noteClosing)
	p.mu.Lock()
	for _, c := range p.entries {
		if c != nil && c.welcomed {
			c.conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			c.conn.Send(note[:])
		}
	}
	// Every connection, including ones still in their handshake: their
	// handlers return, and wg.Wait below cannot hang on them.
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	p.log.Info("ring closed", "published", p.final.Published)
	// Readers of the mapping (Snapshot, Published) hold closeMu for
	// reading and check closed first: none is inside the mapping now.
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	return p.release()
}

func (p *Producer) release() error {
	var errs []error
	for _, c := range []io.Closer{p.data, p.ctl, p.dataSeg, p.ctlSeg} {
		if c != nil && !isNil(c) {
			errs = append(errs, c.Close())
		}
	}
	if p.ln != nil && !p.closed.Load() {
		p.ln.Close()
	}
	return errors.Join(errs...)
}

func isNil(c io.Closer) bool {
	switch v := c.(type) {
	case *shm.Mapping:
		return v == nil
	case *shm.Segment:
		return v == nil
	}
	return false
}

func (p *Producer) heartbeat(ctx context.Context) {
	defer p.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.dw[offHeartbeatNs/8].Store(uint64(clock.Nanos()))
		}
	}
}
