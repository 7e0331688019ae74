package ringbuf

// The producer side of the ring.
//
// Invariants kept by this file (docs/LAYOUT.md argues each one):
//
//  1. A slot's generation is odd from the moment the producer decides to
//     reuse it until the moment it publishes the next frame in it; every
//     payload or descriptor write happens while it is odd. Readers accept
//     only data read between two loads of the same even generation.
//  2. A slot is reused only if (a) no consumer that is not evicted had its
//     holder bit set after the generation became odd, and (b) every active
//     lossless consumer's cursor is past the slot's sequence. (a) is a
//     Dekker handshake with Borrow: the producer stores gen then loads
//     holders; a consumer stores its holder bit then loads gen; both
//     sequentially consistent, so at least one side sees the other.
//  3. If (a) fails after the generation was made odd, nothing has been
//     written, and the generation is restored to its old even value: the
//     frame was never touched, so readers that saw the old value before and
//     after read a good frame.
//  4. Publish stores, in order: descriptor fields, descriptor seq, index
//     entry, generation (even), published. A reader that loads published >= s
//     therefore finds the index entry and descriptor of s complete. Every
//     drop recorded before a Publish is in the drop table before published
//     is stored, and in that frame's DropsBefore.
//  5. The producer never blocks on a consumer: Acquire fails with
//     ErrNoFreeSlot instead, and the caller counts the dropped frame. A
//     consumer is evicted when it holds more than the quota, or when it has
//     been the one blamed for blocking every slot for EvictAfter. Eviction
//     runs on the acquisition goroutine: the evicted mask and the entry
//     state are stored before any later Acquire ignores the consumer's bits
//     (docs/LAYOUT.md 10.8), and it flips atomics under mu (held briefly by
//     attach and reclaim, never across I/O); its note goes from another
//     goroutine.
//  6. A consumer's table entry and holder bit are reused only after every
//     hold of the previous owner has been cleared (reclaim runs under mu and
//     frees the entry last); its bit leaves the evicted mask only then.
//
// Acquire, Publish, Abort, RecordDrops and Beat belong to one goroutine (the
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
	// HoldQuota is the most slots one consumer may hold at once (default
	// Slots-2, at least 1; at most Slots). The producer evicts a consumer
	// holding more. A producer that lends slots to a source should leave
	// it its queue: the producer package defaults to Slots-queue-2.
	HoldQuota int
	// HeartbeatPeriod is the longest the acquisition loop promises to go
	// between two heartbeats (Beat, Publish, RecordDrops) while it is
	// healthy (default 100ms); consumers judge a stall from it.
	HeartbeatPeriod time.Duration
	// SocketMode is the attach socket's permission bits (default 0660).
	SocketMode os.FileMode
	// AllowUIDs and AllowGIDs restrict attach to peers whose uid or gid is
	// listed (SO_PEERCRED). Both empty: any peer that can open the socket.
	AllowUIDs, AllowGIDs []int
	// EvictAfter is how long a consumer may be the one keeping the
	// producer from every slot — by its lossless cursor, or by holding the
	// oldest held frame — before it is evicted (default 2s).
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

// SourceState is what the acquisition loop is doing (docs/LAYOUT.md 8.4),
// shown to every observer so that an idle source is not taken for a stall.
type SourceState uint32

const (
	// SourceStarting: the ring exists; acquisition has not started.
	SourceStarting SourceState = 0
	// SourceAcquiring: frames are arriving.
	SourceAcquiring SourceState = 1
	// SourceWaiting: the last wait for the source ended without a frame (a
	// camera waiting for its trigger, a paused replay, a slow rate).
	SourceWaiting SourceState = 2
	// SourceLost: the source is unreachable; the producer tries to reopen it.
	SourceLost SourceState = 3
	// SourceStopped: acquisition has ended; the ring stays open until Close.
	SourceStopped SourceState = 4
)

var sourceStateNames = [...]string{"starting", "acquiring", "waiting", "source lost", "stopped"}

func (s SourceState) String() string {
	if int(s) < len(sourceStateNames) {
		return sourceStateNames[s]
	}
	return fmt.Sprintf("SourceState(%d)", uint32(s))
}

// EvictReason says why a consumer was evicted (docs/LAYOUT.md 11.4).
type EvictReason uint32

const (
	// EvictPinned: its lossless cursor kept every slot (it fell behind).
	EvictPinned EvictReason = 1
	// EvictQuota: it held more than the hold quota.
	EvictQuota EvictReason = 2
	// EvictHolds: its holds (it held the oldest frame) kept every slot.
	EvictHolds EvictReason = 3
)

var evictReasonNames = [...]string{"", "lossless cursor pinned the ring", "held more slots than its quota", "its holds kept every slot"}

func (r EvictReason) String() string {
	if r > 0 && int(r) < len(evictReasonNames) {
		return evictReasonNames[r]
	}
	return fmt.Sprintf("EvictReason(%d)", uint32(r))
}

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
	dataMap, ctlMap *shm.Mapping
	data            dataRW
	ro              dataRO // the same memory, for snapshots
	ctl             ctlWords

	// Acquisition-goroutine state.
	state   []uint8
	seqOf   []uint64
	lendTok []uint32 // bumped at every lend and abort: a stale Slot is refused
	free    []uint32
	fifo    []uint32 // published slots, oldest first
	next    uint64
	blame   struct {
		entry  int // -1: nobody
		since  int64
		who    uint64 // the entry's attach time: a new owner of the entry is not the one blamed
		reason EvictReason
	}
	holdCount [MaxConsumers]uint32 // scratch for quota counting
	pending   [dropsBeforeWords]Drop
	lastState SourceState

	lossless atomic.Uint64 // bit per active lossless entry not evicted (the table is authoritative for consumers)
	evicted  atomic.Uint64 // bit per evicted entry not yet released: its holds are ignored
	// noChain has a bit per entry whose consumer did not promise to pass
	// wakes on (hello flags), plainObs counts such observers: while a
	// sleeper might be one of them, Publish wakes every sleeper.
	noChain   atomic.Uint64
	plainObs  atomic.Int32
	closed    atomic.Bool  // set first by Close: the acquisition calls refuse from then on
	closeMu   sync.RWMutex // guards unmapped; Close holds it to unmap, Snapshot and friends read under it
	unmapped  bool
	final     Snapshot // taken by Close just before it unmaps, returned by Snapshot afterwards
	closeOnce sync.Once
	closeErr  error

	mu        sync.Mutex
	entries   [MaxConsumers]*peer
	observers map[*peer]struct{}
	conns     map[*shm.Conn]struct{} // every accepted connection still open; Close closes them all
	attaches  uint64                 // counts registrations: the high bits of a peer's watcher key

	ln      *shm.Listener
	watcher *shm.Watcher
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	// departWait bounds how long departed waits for a connection's handler
	// (defaultDepartWait; white-box tests change it before any departure).
	departWait time.Duration
	// hooks is nil but in white-box tests, which store it before the first
	// attach.
	hooks atomic.Pointer[testHooks]
}

// testHooks lets white-box tests stop the supervision at the points where
// its races are decided.
type testHooks struct {
	// read is called by a connection's handler after each read of a
	// message (err: how the connection ended), before acting on it.
	read func(pr *peer, msg []byte, err error)
	// departing is called by departed once the connection's reading side
	// is ended, before it waits for the handler.
	departing func(pr *peer)
}

// peer is one attached process.
type peer struct {
	conn  *shm.Conn
	pidfd *shm.Pidfd
	entry int
	key   uint64 // entry | attachment number << 8: what the pidfd watcher reports
	cred  shm.PeerCred
	name  string
	mode  Mode
	start uint64 // from the hello: first sequence wanted, 0 = next
	chain bool   // from the hello: it passes futex wake-ups on
	// welcomed is set under mu once the welcome was sent: notes (closing,
	// evicted) go only to welcomed peers, or a note could arrive first and
	// be read as the welcome.
	welcomed bool
	// bye is set when the consumer said goodbye before closing: its
	// release is a clean detach, not a reclaim. Only the goroutine that
	// reads the connection sets it: the handler, or departed when the
	// handler did not finish in time.
	bye atomic.Bool
	// handled is closed by the connection's handler when it returns: it
	// has read every byte it will ever read and has dropped the peer. Nil
	// for a peer without a handler (white-box tests).
	handled chan struct{}
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
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("create ring: %w", err)
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
	geo.holdQuota = uint32(cfg.HoldQuota)
	geo.heartbeat, geo.evictAfter = cfg.HeartbeatPeriod, cfg.EvictAfter

	p := &Producer{cfg: cfg, log: cfg.Logger.With("ring", path), observers: map[*peer]struct{}{}, conns: map[*shm.Conn]struct{}{},
		departWait: defaultDepartWait}
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
	if err := p.makeSegments(geo, memfdTag(path)); err != nil {
		return nil, fmt.Errorf("create ring: %w", err)
	}
	p.initWords()
	if p.watcher, err = shm.NewWatcher(); err != nil {
		return nil, fmt.Errorf("create ring: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Add(2)
	go p.serve()
	go p.watch(ctx)
	ok = true
	p.log.Info("ring created", "slots", p.geo.slots, "slot_capacity", p.geo.capacity, "epoch", Epoch(p.geo.epoch),
		"data_bytes", p.geo.dataSize, "huge_pages", p.dataSeg.HugePages(), "hold_quota", p.geo.holdQuota)
	return p, nil
}

// withDefaults fills cfg's zero fields and checks it.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Slots == 0 {
		cfg.Slots = 8
	}
	if cfg.SocketMode == 0 {
		cfg.SocketMode = 0o660
	}
	if cfg.EvictAfter == 0 {
		cfg.EvictAfter = 2 * time.Second
	}
	if cfg.HeartbeatPeriod == 0 {
		cfg.HeartbeatPeriod = 100 * time.Millisecond
	}
	if cfg.HoldQuota == 0 {
		cfg.HoldQuota = max(1, cfg.Slots-2)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	switch {
	case cfg.SlotSize <= 0:
		return cfg, fmt.Errorf("%w: slot size %d", ErrConfig, cfg.SlotSize)
	case cfg.HoldQuota < 1 || cfg.HoldQuota > cfg.Slots:
		return cfg, fmt.Errorf("%w: hold quota %d for %d slots (1..%d)", ErrConfig, cfg.HoldQuota, cfg.Slots, cfg.Slots)
	case cfg.HeartbeatPeriod < time.Millisecond || cfg.HeartbeatPeriod > time.Minute || cfg.EvictAfter < 0:
		return cfg, fmt.Errorf("%w: heartbeat period %v (1ms..1m), evict after %v", ErrConfig, cfg.HeartbeatPeriod, cfg.EvictAfter)
	}
	return cfg, nil
}

// makeSegments creates, maps and seals the two segments and writes their
// immutable headers. The memfds are named for the ring (tag), so that
// Inspect can find them in /proc/PID/fd when the producer does not answer
// (docs/LAYOUT.md Appendix B.4).
func (p *Producer) makeSegments(geo geometry, tag string) error {
	var err error
	segOpts := shm.SegmentOptions{HugePages: p.cfg.HugePages, Prefault: p.cfg.Prefault, Logger: p.cfg.Logger}
	if p.dataSeg, err = shm.CreateSegment("framering-data:"+tag, geo.dataSize, segOpts); err != nil {
		return err
	}
	if p.dataSeg.HugePages() {
		geo.flags |= flagHugePages
	}
	if p.ctlSeg, err = shm.CreateSegment("framering-control:"+tag, geo.controlSize, shm.SegmentOptions{Prefault: true}); err != nil {
		return err
	}
	if p.dataMap, err = p.dataSeg.Map(true); err != nil {
		return err
	}
	if p.ctlMap, err = p.ctlSeg.Map(true); err != nil {
		return err
	}
	// Seal the data segment against writes by anyone else: our mapping
	// stays writable, every later writable mapping and write(2) fails. The
	// control segment stays writable: consumers record holds there.
	if err := p.dataSeg.AddSeals(shm.SealFutureWrite | shm.SealSeal); err != nil {
		return err
	}
	if err := p.ctlSeg.AddSeals(shm.SealSeal); err != nil {
		return err
	}
	p.geo = geo
	if p.data, err = newDataRW(p.dataMap, &p.geo); err != nil {
		return err
	}
	if p.ro, err = newDataRO(p.dataMap, &p.geo); err != nil {
		return err
	}
	if p.ctl, err = newCtlWords(p.ctlMap, &p.geo); err != nil {
		return err
	}
	p.geo.encodeData(p.dataMap.Bytes(), uint64(time.Now().UnixNano()))
	p.geo.encodeControl(p.ctlMap.Bytes())
	return nil
}

// initWords gives every slot its first (odd) generation and the
// acquisition state its start, then says the ring runs.
func (p *Producer) initWords() {
	n := int(p.geo.slots)
	p.state, p.seqOf, p.lendTok = make([]uint8, n), make([]uint64, n), make([]uint32, n)
	p.free, p.fifo = make([]uint32, 0, n), make([]uint32, 0, n)
	for k := n - 1; k >= 0; k-- {
		p.data.gen(uint32(k)).Store(1) // odd: no frame yet
		p.free = append(p.free, uint32(k))
	}
	p.next = 1
	p.blame.entry = -1
	now := clock.Nanos()
	p.data.startMono().Store(uint64(now))
	p.data.heartbeat().Store(uint64(now))
	// Running is stored last: an attaching consumer is only ever handed
	// the segments after this point anyway (the server starts after us).
	p.data.ringState().Store(stateRunning)
}

// Path is the ring's socket path.
func (p *Producer) Path() string { return p.ln.Path() }

// Epoch is the random identity of this producer run.
func (p *Producer) Epoch() uint64 { return p.geo.epoch }

// Slots is the number of slots.
func (p *Producer) Slots() int { return int(p.geo.slots) }

// SlotCapacity is the payload capacity of one slot in bytes.
func (p *Producer) SlotCapacity() int { return int(p.geo.capacity) }

// HoldQuota is the most slots one consumer may hold at once.
func (p *Producer) HoldQuota() int { return int(p.geo.holdQuota) }

// SlotBytes returns the payload area of slot k, for announcing every slot
// to a frame grabber once. The view is valid until Close; the grabber may
// write it only while the slot is lent to it (between Acquire and Publish).
func (p *Producer) SlotBytes(k int) []byte {
	if p.closed.Load() || k < 0 || k >= int(p.geo.slots) {
		return nil
	}
	return p.data.payload(uint32(k))
}

// Acquire lends a slot for the next frame: a never-used one, else the
// oldest published slot that no consumer holds and every lossless consumer
// has passed. It never waits: with no such slot it returns ErrNoFreeSlot,
// after enforcing the hold quota and noting whom to blame (Blamed).
func (p *Producer) Acquire() (Slot, error) {
	if p.closed.Load() {
		return Slot{}, ErrClosed
	}
	if n := len(p.free); n > 0 {
		k := p.free[n-1]
		p.free = p.free[:n-1]
		p.blame.entry = -1
		return p.lend(k), nil
	}
	for attempt := 0; ; attempt++ {
		k, pinned, passed, ok := p.scan()
		if ok {
			// Passing over as many held slots as the quota allows one
			// consumer is when a hoarder shows: count (Appendix B.3).
			if passed >= int(p.geo.holdQuota) {
				p.enforceQuota()
			}
			p.blame.entry = -1
			return p.lend(k), nil
		}
		// No slot. Enforce the quota (a hoarder is evicted at once and
		// its slots are free on a second look), then name the blocker,
		// whose eviction, once due, frees slots too.
		if attempt == 0 && p.enforceQuota() {
			continue
		}
		if p.noteBlocked(pinned) && attempt < 2 {
			continue
		}
		return Slot{}, ErrNoFreeSlot
	}
}

// scan looks for a reusable published slot, oldest first (docs/LAYOUT.md
// 8.1). It reports whether a lossless cursor stopped it while some slot at
// or after that point was free of holds (pinned), and how many held slots
// it passed over.
func (p *Producer) scan() (k uint32, pinned bool, passed int, ok bool) {
	minCursor, _ := p.losslessMin()
	// Bits of evicted consumers are ignored (their holds are revoked).
	// Loaded once per scan: an eviction happens on this goroutine, so it
	// cannot change under us.
	live := ^p.evicted.Load()
	for i, k := range p.fifo {
		if p.seqOf[k] >= minCursor {
			// This and every later frame is still wanted by a lossless
			// consumer. Its cursor is to blame only if, without it, a
			// slot would have been free of holds.
			for _, k2 := range p.fifo[i:] {
				if p.ctl.hold(k2).Load()&live == 0 {
					pinned = true
					break
				}
			}
			return 0, pinned, passed, false
		}
		h := p.ctl.hold(k)
		if h.Load()&live != 0 {
			passed++
			continue // held: a long hold never stalls us, try the next oldest
		}
		g := p.data.gen(k)
		old := g.Load()
		// Odd: readers stop trusting the slot. Ordered before the holder
		// load below (invariant 2). Swap, not Store: an RMW is a full
		// fence everywhere, while the race detector's runtime does not
		// fence a plain atomic store to memory outside the Go heap (our
		// mapping), which let the load overtake it in -race builds.
		g.Swap(old + 1)
		if h.Load()&live != 0 {
			// A consumer took a hold between our two loads. Nothing was
			// written: restore the generation (invariant 3).
			g.Store(old)
			passed++
			continue
		}
		// Committed. Clearing seq tells a reader that saw the odd
		// generation that the frame is gone (not just being decided on).
		p.data.seq(k).Store(0)
		p.fifo = slices.Delete(p.fifo, i, i+1)
		return k, false, passed, true
	}
	return 0, false, passed, false
}

// countHolds fills holdCount with each live consumer's number of held
// slots, over every hold word, and returns the mask of consumers holding
// any. Consumer-written words are only counted, never used as indices.
func (p *Producer) countHolds() uint64 {
	clear(p.holdCount[:])
	live := ^p.evicted.Load()
	var any uint64
	for k := uint32(0); k < p.geo.slots; k++ {
		m := p.ctl.hold(k).Load() & live
		any |= m
		for m != 0 {
			p.holdCount[bits.TrailingZeros64(m)]++
			m &= m - 1
		}
	}
	return any
}

// enforceQuota evicts every consumer holding more than the quota and
// reports whether it evicted any (docs/LAYOUT.md 8.1, "Quota").
func (p *Producer) enforceQuota() bool {
	holders := p.countHolds()
	evicted := false
	for holders != 0 {
		i := bits.TrailingZeros64(holders)
		holders &= holders - 1
		if p.holdCount[i] > p.geo.holdQuota {
			if p.evict(i, p.ctl.attachNs(i).Load(), EvictQuota) {
				evicted = true
			}
		}
	}
	return evicted
}

func (p *Producer) lend(k uint32) Slot {
	p.state[k] = slotLent
	p.lendTok[k]++
	// Usually published next: take its lines now, while the slot fills.
	p.data.prefetchPublish(k, p.next)
	return Slot{p: p, k: k, tok: p.lendTok[k], buf: p.data.payload(k)}
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
		if c := p.ctl.cursor(i).Load(); c < minCursor {
			minCursor, who = c, i
		}
	}
	return minCursor, who
}

// noteBlocked names the consumer keeping Acquire from every slot
// (docs/LAYOUT.md 8.1, "Blame") and evicts it once that has lasted
// EvictAfter, reporting whether it did. pinned says the scan stopped at a
// lossless cursor.
func (p *Producer) noteBlocked(pinned bool) bool {
	entry, reason := -1, EvictReason(0)
	if pinned {
		_, entry = p.losslessMin()
		reason = EvictPinned
	} else if e := p.oldestHolder(); e >= 0 {
		entry, reason = e, EvictHolds
	}
	if entry < 0 {
		p.blame.entry = -1 // every slot is lent to the source: nobody's doing
		return false
	}
	now := clock.Nanos()
	who := p.ctl.attachNs(entry).Load()
	if p.blame.entry != entry || p.blame.who != who || p.blame.reason != reason {
		p.blame.entry, p.blame.since, p.blame.who, p.blame.reason = entry, now, who, reason
		return false
	}
	if time.Duration(now-p.blame.since) >= p.cfg.EvictAfter {
		p.blame.entry = -1
		return p.evict(entry, who, reason)
	}
	return false
}

// oldestHolder returns the consumer holding the oldest held published
// frame: if several hold it, the one holding the most slots, then the
// lowest entry. -1 if no published slot is held.
func (p *Producer) oldestHolder() int {
	live := ^p.evicted.Load()
	for _, k := range p.fifo { // oldest first
		h := p.ctl.hold(k).Load() & live
		if h == 0 {
			continue
		}
		if h&(h-1) == 0 {
			return bits.TrailingZeros64(h)
		}
		p.countHolds()
		best := -1
		for m := h; m != 0; m &= m - 1 {
			i := bits.TrailingZeros64(m)
			if best < 0 || p.holdCount[i] > p.holdCount[best] {
				best = i
			}
		}
		return best
	}
	return -1
}

// Blamed reports the consumer table entry the last failed Acquire blamed
// for keeping every slot (docs/LAYOUT.md 8.1), if any: frames the caller
// drops for want of a slot are then cause loss.Blocked; with nobody blamed
// (every slot lent to the source) they are what they are, usually underruns.
func (p *Producer) Blamed() (entry int, ok bool) {
	return p.blame.entry, p.blame.entry >= 0
}

func (p *Producer) checkSlot(s Slot) error {
	if s.p != p || s.k >= p.geo.slots || p.state[s.k] != slotLent || p.lendTok[s.k] != s.tok {
		return ErrSlotState
	}
	return nil
}

// Publish makes the frame in slot s visible as the next sequence number and
// returns it. m.Seq, m.PublishNs and m.DropsBefore are set by Publish (the
// latter from what RecordDrops counted since the previous Publish). The
// slot must not be written after this.
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
	now := clock.Nanos()
	m.PublishNs = now
	m.DropsBefore = p.pending
	p.pending = [dropsBeforeWords]Drop{}
	// Plain stores: the generation is odd, no reader trusts them yet.
	p.data.writeDesc(k, &m)
	p.data.seq(k).Store(seq)
	// Index entry before the generation and published (invariant 4).
	p.data.indexEntry(seq).Store(seq<<16 | uint64(k))
	g := p.data.gen(k)
	// Even: releases the descriptor and every payload byte written before
	// it; pairs with a reader's load of the generation before and after.
	g.Store(g.Load() + 1)
	// Swap: this store and the waiters load below are a Dekker pair.
	p.data.published().Swap(seq)
	p.next++
	p.seqOf[k] = seq
	p.state[k] = slotPublished
	p.fifo = append(p.fifo, k)
	p.data.heartbeat().Store(uint64(now))
	if p.lastState != SourceAcquiring {
		p.Beat(SourceAcquiring)
	}
	// Wake only if someone sleeps: one sleeper when every possible one
	// passes wakes on (it wakes more, docs/LAYOUT.md 8.2), else all.
	// noChain is loaded after waiters: a consumer whose bit we see was
	// registered (its noChain bit stored) before it was welcomed.
	if w := p.ctl.waiters().Load(); w != 0 {
		p.data.wake().Add(1)
		shm.FutexWake(p.data.wake(), p.wakeCount(w))
	}
	return seq, nil
}

// wakeCount is how many sleepers Publish wakes when the waiters mask is w:
// chainFirst if every consumer with a bit in w and every observer passes
// wakes on, else 0 (all).
func (p *Producer) wakeCount(w uint64) int {
	if w&p.noChain.Load() == 0 && p.plainObs.Load() == 0 {
		return chainFirst
	}
	return 0
}

// Abort returns an acquired slot unpublished.
func (p *Producer) Abort(s Slot) error {
	if err := p.checkSlot(s); err != nil {
		return fmt.Errorf("abort slot %d: %w", s.k, err)
	}
	p.state[s.k] = slotFree
	p.lendTok[s.k]++
	p.free = append(p.free, s.k)
	return nil
}

// RecordDrops counts n frames lost for cause in the ring's drop table,
// where every consumer and ringctl can see them, and in the next published
// frame's DropsBefore. Call it before publishing the frame that follows the
// loss (docs/LAYOUT.md 8.5). Frames lost to loss.Blocked are also charged
// to the consumer the last failed Acquire blamed (ConsumerInfo.BlockDrops).
func (p *Producer) RecordDrops(cause loss.Cause, n uint64) {
	if p.closed.Load() || n == 0 {
		return
	}
	if e := p.blame.entry; e >= 0 && cause == loss.Blocked {
		p.ctl.blockDrops(e).Add(n)
	}
	p.data.drops(cause).Add(n)
	p.addPending(cause, n)
	p.data.heartbeat().Store(uint64(clock.Nanos()))
}

func (p *Producer) addPending(cause loss.Cause, n uint64) {
	for i := range p.pending {
		switch {
		case p.pending[i].Count == 0:
			p.pending[i] = Drop{Cause: cause, Count: n}
			return
		case p.pending[i].Cause == cause:
			p.pending[i].Count += n
			return
		}
	}
	// More than four causes before one frame: the last word carries the
	// rest under loss.Several (the drop table keeps the split).
	last := &p.pending[len(p.pending)-1]
	last.Cause, last.Count = loss.Several, last.Count+n
}

// RecordCopies counts frames the producer copied into their slot (safe-copy
// mode, or a source that would not write into ring memory).
func (p *Producer) RecordCopies(n uint64) {
	if !p.closed.Load() {
		p.data.copies().Add(n)
	}
}

// Beat records that the acquisition loop made progress, and what it is
// doing (docs/LAYOUT.md 8.4). Call it whenever a wait for the source ends,
// with or without a frame, and never wait for the source longer than
// Config.HeartbeatPeriod between two calls (Publish and RecordDrops beat
// too). Never call it from a timer of its own: a hung loop must look hung.
func (p *Producer) Beat(s SourceState) {
	if p.closed.Load() {
		return
	}
	p.data.heartbeat().Store(uint64(clock.Nanos()))
	if s != p.lastState {
		p.lastState = s
		p.data.sourceState().Store(uint32(s))
	}
}

// Drops returns the ring's drop table: frames lost, by cause, before they
// got a sequence number.
func (p *Producer) Drops() loss.Counts {
	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.unmapped {
		return p.final.Drops
	}
	return p.ro.dropTable()
}

// Published is the last published sequence number (0 before the first).
func (p *Producer) Published() uint64 {
	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.unmapped {
		return p.final.Published
	}
	return p.data.published().Load()
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
	p.data.sourceState().Store(uint32(SourceStopped))
	p.closed.Store(true)
	p.data.ringState().Store(stateClosed)
	p.data.wake().Add(1)
	shm.FutexWake(p.data.wake(), 0)
	p.ln.Close()
	p.cancel()
	p.watcher.Close()
	var note [msgSize]byte
	encodeNote(note[:], noteClosing, 0)
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
	// Every consumer is released now: the final picture has them all
	// detached. Readers of the mapping (Snapshot, Published, Drops) hold
	// closeMu for reading and check unmapped first.
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	p.final = p.snapshotLocked()
	p.unmapped = true
	p.log.Info("ring closed", "published", p.final.Published)
	return p.release()
}

func (p *Producer) release() error {
	var errs []error
	for _, c := range []io.Closer{p.dataMap, p.ctlMap, p.dataSeg, p.ctlSeg} {
		if c != nil && !isNil(c) {
			errs = append(errs, c.Close())
		}
	}
	if p.ln != nil && !p.closed.Load() {
		p.ln.Close() // Create failed half-way
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
