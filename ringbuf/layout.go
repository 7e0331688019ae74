package ringbuf

// Layout v2 of the two ring segments. docs/LAYOUT.md is the normative,
// language-neutral specification; this file is its Go transcription (the
// offsets, the geometry derivation of section 5, the header codecs), and
// layout_access.go is the only code that turns an offset into a mapped
// word. layout_test.go checks the two against the spec on every offset.
//
// Data segment (producer read-write; consumers read-only, sealed with
// F_SEAL_FUTURE_WRITE):
//
//	0x0000 +------------------------------+  header, one page
//	       | line 0: geometry (immutable)  |
//	       | line 1: identity, quota, ...  |
//	0x0080 | line 2: published seq         |  producer writes, consumers poll
//	0x00C0 | line 3: ring + source state   |
//	0x0100 | line 4: wake (futex word)     |
//	0x0140 | line 5: counters, heartbeat   |
//	0x0200 | drop table: 64 x u64          |  one counter per loss cause
//	0x1000 +------------------------------+  descriptors: slot_count x 128
//	       | gen seq frame_id ts w h ...   |  line 0: what every reader needs
//	       | device ts, origin, drops      |  line 1: origin, drops before
//	       +------------------------------+  index: index_count x 8
//	       | seq<<16 | slot                |
//	(page) +------------------------------+  payloads: slot_count x capacity
//	       | slot 0 ... slot n-1           |
//	       +------------------------------+
//
// Control segment (read-write for the producer and every consumer):
//
//	0x0000 header (one page): geometry, epoch, waiters mask (line 1),
//	       attached mask (line 2)
//	0x1000 holds: slot_count x 64 bytes, a holder bitmask per slot
//	       table: max_consumers x 256 bytes, one entry per consumer
//
// All fields are little-endian; every 64-bit word is 8-byte aligned and
// every word that more than one party writes sits on its own cache line.

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"time"

	"github.com/framering/framering/loss"
)

// Version is the layout version this package reads and writes. A reader
// refuses any other (see docs/LAYOUT.md, "Versioning").
const Version = 2

// Magics, as little-endian uint64 of the ASCII strings "FRMRDATA",
// "FRMRCTRL", "FRMRHELO", "FRMRWELC", "FRMRNOTE", "FRMRBYE!".
var (
	magicData    = binary.LittleEndian.Uint64([]byte("FRMRDATA"))
	magicControl = binary.LittleEndian.Uint64([]byte("FRMRCTRL"))
	magicHello   = binary.LittleEndian.Uint64([]byte("FRMRHELO"))
	magicWelcome = binary.LittleEndian.Uint64([]byte("FRMRWELC"))
	magicNote    = binary.LittleEndian.Uint64([]byte("FRMRNOTE"))
	magicBye     = binary.LittleEndian.Uint64([]byte("FRMRBYE!"))
)

// Sizes.
const (
	cacheLine      = 64
	pageSize       = 4096
	headerSize     = pageSize
	descSize       = 128
	indexEntrySize = 8
	holdSize       = 64
	entrySize      = 256
	// MaxConsumers is the size of the consumer table: one bit of a 64-bit
	// holder mask per consumer.
	MaxConsumers = 64
	// MaxSlots bounds the slot count (an index entry has 16 bits of slot).
	MaxSlots = 1<<16 - 1
	// maxSeq is the largest sequence number an index entry can carry.
	maxSeq = 1<<48 - 1
	// MaxSlotCapacity bounds one slot's payload (1 GiB).
	MaxSlotCapacity = 1 << 30
	maxNameLen      = 32
	// dropsBeforeWords is the number of drops_before words per descriptor.
	dropsBeforeWords = 4
)

// Data segment header offsets (docs/LAYOUT.md 3.1).
const (
	offMagic          = 0x00 // u64
	offVersion        = 0x08 // u32
	offHeaderSize     = 0x0C // u32
	offSlotCount      = 0x10 // u32
	offIndexCount     = 0x14 // u32
	offSlotCapacity   = 0x18 // u64
	offDescOffset     = 0x20 // u64
	offIndexOffset    = 0x28 // u64
	offPayloadOffset  = 0x30 // u64
	offDataSize       = 0x38 // u64
	offEpoch          = 0x40 // u64
	offProducerPid    = 0x48 // u32
	offMaxConsumers   = 0x4C // u32
	offControlSize    = 0x50 // u64
	offCreatedUnixNs  = 0x58 // u64
	offFlags          = 0x60 // u32
	offHoldQuota      = 0x64 // u32
	offHeartbeatEvery = 0x68 // u64 heartbeat_period_ns
	offEvictAfter     = 0x70 // u64 evict_after_ns
	offPublished      = 0x80 // u64, line 2
	offState          = 0xC0 // u32, line 3: the ring state
	offSourceState    = 0xC4 // u32, line 3: the acquisition loop's state
	offWake           = 0x100
	offEvictions      = 0x140 // u64 counters, line 5
	offDetaches       = 0x148
	offReclaims       = 0x150
	offReclaimedHold  = 0x158
	offRevokedHold    = 0x160
	offStartMonoNs    = 0x168
	offHeartbeatNs    = 0x170
	offCopies         = 0x178
	offDrops          = 0x200 // u64[loss.Max]
)

// Descriptor field offsets, relative to the descriptor (docs/LAYOUT.md 3.2).
const (
	dGen             = 0x00 // u64 generation: odd = not readable, even = published
	dSeq             = 0x08 // u64
	dFrameID         = 0x10 // u64
	dTimestamp       = 0x18 // i64 CLOCK_MONOTONIC ns
	dWidth           = 0x20 // u32
	dHeight          = 0x24 // u32
	dStride          = 0x28 // u32
	dFormat          = 0x2C // u32 PFNC
	dLength          = 0x30 // u64
	dFlags           = 0x38 // u32
	dDeviceTimestamp = 0x40 // u64, line 1
	dOriginEpoch     = 0x48 // u64
	dOriginSeq       = 0x50 // u64
	dPublishNs       = 0x58 // u64
	dDropsBefore     = 0x60 // u64[4]: count<<8 | cause
)

// Control segment header offsets (docs/LAYOUT.md 4.1).
const (
	cMagic        = 0x00 // u64
	cVersion      = 0x08 // u32
	cHeaderSize   = 0x0C // u32
	cSlotCount    = 0x10 // u32
	cMaxConsumers = 0x14 // u32
	cHoldsOffset  = 0x18 // u64
	cTableOffset  = 0x20 // u64
	cControlSize  = 0x28 // u64
	cEpoch        = 0x30 // u64
	cWaiters      = 0x40 // u64, line 1: bit per consumer sleeping on wake
	cAttached     = 0x80 // u64, line 2: bit per table entry in use (producer)
)

// Consumer table entry offsets, relative to the entry (docs/LAYOUT.md 4.3).
const (
	eState        = 0x00 // u32 entryFree/entryActive/entryEvicted (producer)
	eMode         = 0x04 // u32 Mode (producer)
	ePid          = 0x08 // u32 (producer)
	eUID          = 0x0C // u32 (producer)
	ePidfdIno     = 0x10 // u64 (producer)
	eAttachNs     = 0x18 // u64 unix ns (producer)
	eName         = 0x20 // [32]byte (producer)
	eCursor       = 0x40 // u64, line 1 (consumer): next sequence it wants
	eDelivered    = 0x48 // u64 (consumer)
	eSkipped      = 0x50 // u64 (consumer): published, never attempted (lossy)
	eMissed       = 0x58 // u64 (consumer): attempted, overwritten first
	eHeld         = 0x60 // u64 (consumer): leases held now
	eLastSeq      = 0x68 // u64 (consumer): last sequence delivered
	eLatencyNs    = 0x70 // u64 (consumer): last capture-to-delivery latency
	eRevokedSeen  = 0x78 // u64 (consumer): leases it found revoked
	eBlockDrops   = 0x80 // u64, line 2 (producer): frames dropped while it was blamed
	eEvictReason  = 0x88 // u32 (producer)
	eRevokedHolds = 0x90 // u64 (producer): its hold bits cleared at eviction
)

// Ring states (the data header's state word).
const (
	stateInit    = 0
	stateRunning = 1
	stateClosed  = 2
)

// Table entry states.
const (
	entryFree    = 0
	entryActive  = 1
	entryEvicted = 2
)

// Header flags.
const flagHugePages = 1

// Compile-time layout assertions: a wrong constant fails the build.
var (
	_ = [1]struct{}{}[offPublished%cacheLine]
	_ = [1]struct{}{}[offState%cacheLine]
	_ = [1]struct{}{}[offWake%cacheLine]
	_ = [1]struct{}{}[offEvictions%cacheLine]
	_ = [1]struct{}{}[(offCopies+7)/(offEvictions+cacheLine)]
	_ = [1]struct{}{}[offDrops%cacheLine]
	_ = [1]struct{}{}[(offDrops+8*loss.Max)/(headerSize+1)]
	_ = [1]struct{}{}[(dFlags+4)/(cacheLine+1)]
	_ = [1]struct{}{}[dDeviceTimestamp%cacheLine]
	_ = [1]struct{}{}[(dDropsBefore+8*dropsBeforeWords)/(descSize+1)]
	_ = [1]struct{}{}[cWaiters%cacheLine]
	_ = [1]struct{}{}[cAttached%cacheLine]
	_ = [1]struct{}{}[eCursor%cacheLine]
	_ = [1]struct{}{}[eBlockDrops%cacheLine]
	_ = [1]struct{}{}[(eName+maxNameLen)/(eCursor+1)]
	_ = [1]struct{}{}[(eRevokedSeen+8)/(eBlockDrops+1)]
)

// geometry is the validated shape of a ring, shared by both segments, and
// the producer's other init-time promises. Every offset in it has been
// checked against the segment sizes.
type geometry struct {
	slots         uint32
	indexCount    uint32
	capacity      uint64
	descOffset    uint64
	indexOffset   uint64
	payloadOffset uint64
	dataSize      uint64
	holdsOffset   uint64
	tableOffset   uint64
	controlSize   uint64
	epoch         uint64
	producerPid   uint32
	flags         uint32
	holdQuota     uint32
	heartbeat     time.Duration // heartbeat_period_ns
	evictAfter    time.Duration // evict_after_ns (informative)
}

func alignUp(n, to uint64) uint64 { return (n + to - 1) / to * to }

// newGeometry computes the layout for a ring of slots slots of capacity
// bytes each (capacity is rounded up to the page size). The init-time
// promises (quota, periods, epoch) are the caller's to fill in.
func newGeometry(slots int, capacity uint64, indexCount int) (geometry, error) {
	if slots < 1 || slots > MaxSlots {
		return geometry{}, fmt.Errorf("layout: %w: %d slots (1..%d)", ErrConfig, slots, MaxSlots)
	}
	if capacity == 0 || capacity > MaxSlotCapacity {
		return geometry{}, fmt.Errorf("layout: %w: slot capacity %d (1..%d)", ErrConfig, capacity, MaxSlotCapacity)
	}
	if indexCount == 0 {
		indexCount = max(64, 4*slots)
	}
	if indexCount < slots || indexCount > 1<<24 {
		return geometry{}, fmt.Errorf("layout: %w: index of %d entries for %d slots (%d..%d)", ErrConfig, indexCount, slots, slots, 1<<24)
	}
	ic := uint64(1) << bits.Len64(uint64(indexCount-1)) // next power of two
	g := geometry{slots: uint32(slots), indexCount: uint32(ic), capacity: alignUp(capacity, pageSize), holdQuota: uint32(slots)}
	g.descOffset = headerSize
	g.indexOffset = g.descOffset + uint64(slots)*descSize
	g.payloadOffset = alignUp(g.indexOffset+ic*indexEntrySize, pageSize)
	g.dataSize = g.payloadOffset + uint64(slots)*g.capacity
	g.holdsOffset = headerSize
	g.tableOffset = g.holdsOffset + uint64(slots)*holdSize
	g.controlSize = alignUp(g.tableOffset+MaxConsumers*entrySize, pageSize)
	return g, nil
}

func (g *geometry) desc(k uint32) uint64    { return g.descOffset + uint64(k)*descSize }
func (g *geometry) index(i uint64) uint64   { return g.indexOffset + i*indexEntrySize }
func (g *geometry) payload(k uint32) uint64 { return g.payloadOffset + uint64(k)*g.capacity }
func (g *geometry) hold(k uint32) uint64    { return g.holdsOffset + uint64(k)*holdSize }
func (g *geometry) entry(i int) uint64      { return g.tableOffset + uint64(i)*entrySize }

// encodeData writes the immutable part of the data segment header.
func (g *geometry) encodeData(b []byte, createdUnixNs uint64) {
	le := binary.LittleEndian
	le.PutUint64(b[offMagic:], magicData)
	le.PutUint32(b[offVersion:], Version)
	le.PutUint32(b[offHeaderSize:], headerSize)
	le.PutUint32(b[offSlotCount:], g.slots)
	le.PutUint32(b[offIndexCount:], g.indexCount)
	le.PutUint64(b[offSlotCapacity:], g.capacity)
	le.PutUint64(b[offDescOffset:], g.descOffset)
	le.PutUint64(b[offIndexOffset:], g.indexOffset)
	le.PutUint64(b[offPayloadOffset:], g.payloadOffset)
	le.PutUint64(b[offDataSize:], g.dataSize)
	le.PutUint64(b[offEpoch:], g.epoch)
	le.PutUint32(b[offProducerPid:], g.producerPid)
	le.PutUint32(b[offMaxConsumers:], MaxConsumers)
	le.PutUint64(b[offControlSize:], g.controlSize)
	le.PutUint64(b[offCreatedUnixNs:], createdUnixNs)
	le.PutUint32(b[offFlags:], g.flags)
	le.PutUint32(b[offHoldQuota:], g.holdQuota)
	le.PutUint64(b[offHeartbeatEvery:], uint64(g.heartbeat))
	le.PutUint64(b[offEvictAfter:], uint64(g.evictAfter))
}

// encodeControl writes the immutable part of the control segment header.
func (g *geometry) encodeControl(b []byte) {
	le := binary.LittleEndian
	le.PutUint64(b[cMagic:], magicControl)
	le.PutUint32(b[cVersion:], Version)
	le.PutUint32(b[cHeaderSize:], headerSize)
	le.PutUint32(b[cSlotCount:], g.slots)
	le.PutUint32(b[cMaxConsumers:], MaxConsumers)
	le.PutUint64(b[cHoldsOffset:], g.holdsOffset)
	le.PutUint64(b[cTableOffset:], g.tableOffset)
	le.PutUint64(b[cControlSize:], g.controlSize)
	le.PutUint64(b[cEpoch:], g.epoch)
}

// decodeDataHeader validates a data segment header and returns its
// geometry. dataLen is the real size of the segment; every region must fit
// inside it. It checks magic, then version, then header size, then every
// count and bound (docs/LAYOUT.md 6.3 step 7), computed in uint64 so that
// no sum can wrap. It reads only b, so it can be fuzzed on plain bytes.
func decodeDataHeader(b []byte, dataLen uint64) (geometry, error) {
	le := binary.LittleEndian
	if len(b) < headerSize || dataLen < headerSize {
		return geometry{}, fmt.Errorf("decode data header: %w: %d bytes", ErrCorrupt, min(uint64(len(b)), dataLen))
	}
	if m := le.Uint64(b[offMagic:]); m != magicData {
		return geometry{}, fmt.Errorf("decode data header: %w: magic %#016x", ErrIncompatible, m)
	}
	if v := le.Uint32(b[offVersion:]); v != Version {
		return geometry{}, fmt.Errorf("decode data header: %w: version %d, want %d", ErrIncompatible, v, Version)
	}
	if hs := le.Uint32(b[offHeaderSize:]); hs != headerSize {
		return geometry{}, fmt.Errorf("decode data header: %w: header size %d", ErrIncompatible, hs)
	}
	if mc := le.Uint32(b[offMaxConsumers:]); mc != MaxConsumers {
		return geometry{}, fmt.Errorf("decode data header: %w: %d consumers", ErrIncompatible, mc)
	}
	g := geometry{
		slots:         le.Uint32(b[offSlotCount:]),
		indexCount:    le.Uint32(b[offIndexCount:]),
		capacity:      le.Uint64(b[offSlotCapacity:]),
		descOffset:    le.Uint64(b[offDescOffset:]),
		indexOffset:   le.Uint64(b[offIndexOffset:]),
		payloadOffset: le.Uint64(b[offPayloadOffset:]),
		dataSize:      le.Uint64(b[offDataSize:]),
		epoch:         le.Uint64(b[offEpoch:]),
		producerPid:   le.Uint32(b[offProducerPid:]),
		controlSize:   le.Uint64(b[offControlSize:]),
		flags:         le.Uint32(b[offFlags:]),
		holdQuota:     le.Uint32(b[offHoldQuota:]),
	}
	hb, ev := le.Uint64(b[offHeartbeatEvery:]), le.Uint64(b[offEvictAfter:])
	// Recompute the layout from the counts and require the header to agree
	// exactly: a producer has no freedom in where regions go.
	want, err := newGeometry(int(min(g.slots, MaxSlots+1)), g.capacity, int(min(g.indexCount, 1<<25)))
	if err != nil || g.slots == 0 || g.indexCount&(g.indexCount-1) != 0 || g.capacity%pageSize != 0 {
		return geometry{}, fmt.Errorf("decode data header: %w: %d slots of %d bytes, index %d", ErrCorrupt, g.slots, g.capacity, g.indexCount)
	}
	if g.holdQuota < 1 || g.holdQuota > g.slots {
		return geometry{}, fmt.Errorf("decode data header: %w: hold quota %d for %d slots", ErrCorrupt, g.holdQuota, g.slots)
	}
	if hb == 0 || hb > uint64(time.Hour) {
		return geometry{}, fmt.Errorf("decode data header: %w: heartbeat period %d ns", ErrCorrupt, hb)
	}
	g.heartbeat, g.evictAfter = time.Duration(hb), time.Duration(min(ev, 1<<62))
	if want.indexCount != g.indexCount || want.descOffset != g.descOffset || want.indexOffset != g.indexOffset ||
		want.payloadOffset != g.payloadOffset || want.dataSize != g.dataSize || want.controlSize != g.controlSize {
		return geometry{}, fmt.Errorf("decode data header: %w: region offsets disagree with the counts", ErrCorrupt)
	}
	if g.dataSize > dataLen {
		return geometry{}, fmt.Errorf("decode data header: %w: layout needs %d bytes, segment has %d", ErrCorrupt, g.dataSize, dataLen)
	}
	g.holdsOffset, g.tableOffset = want.holdsOffset, want.tableOffset
	return g, nil
}

// decodeControlHeader validates a control segment header against the data
// segment's geometry (which must already be valid).
func decodeControlHeader(b []byte, ctlLen uint64, g geometry) error {
	le := binary.LittleEndian
	if len(b) < headerSize || ctlLen < headerSize {
		return fmt.Errorf("decode control header: %w: %d bytes", ErrCorrupt, min(uint64(len(b)), ctlLen))
	}
	if m := le.Uint64(b[cMagic:]); m != magicControl {
		return fmt.Errorf("decode control header: %w: magic %#016x", ErrIncompatible, m)
	}
	if v := le.Uint32(b[cVersion:]); v != Version {
		return fmt.Errorf("decode control header: %w: version %d", ErrIncompatible, v)
	}
	if le.Uint32(b[cHeaderSize:]) != headerSize || le.Uint32(b[cSlotCount:]) != g.slots ||
		le.Uint32(b[cMaxConsumers:]) != MaxConsumers || le.Uint64(b[cHoldsOffset:]) != g.holdsOffset ||
		le.Uint64(b[cTableOffset:]) != g.tableOffset || le.Uint64(b[cControlSize:]) != g.controlSize {
		return fmt.Errorf("decode control header: %w: does not match the data segment", ErrCorrupt)
	}
	if e := le.Uint64(b[cEpoch:]); e != g.epoch {
		return fmt.Errorf("decode control header: %w: epoch %#x, data segment %#x", ErrCorrupt, e, g.epoch)
	}
	if g.controlSize > ctlLen {
		return fmt.Errorf("decode control header: %w: layout needs %d bytes, segment has %d", ErrCorrupt, g.controlSize, ctlLen)
	}
	return nil
}

// encodeDrop packs one drops_before word: count << 8 | cause.
func encodeDrop(d Drop) uint64 { return min(d.Count, 1<<56-1)<<8 | uint64(d.Cause) }

// decodeDrop unpacks a drops_before word (zero: unused).
func decodeDrop(w uint64) Drop { return Drop{Cause: loss.Cause(w & 0xff), Count: w >> 8} }
