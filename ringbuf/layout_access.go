package ringbuf

// Typed access to the mapped words. This file and layout.go are the only
// code in the package that turns an offset into a mapped word (the
// architecture check enforces it): everything else asks for a word by its
// meaning — published(), gen(k), hold(k), cursor(i) — and each accessor
// states, once, what its atomic accesses order against. docs/LAYOUT.md
// section 10 argues every pairing named here.
//
// All atomics are Go's sync/atomic, sequentially consistent (SC). Several
// pairings below need only release/acquire; the ones marked "SC:" are
// Dekker handshakes that need the single total order.
//
// Invariant kept by this file: every index into a mapped word slice is
// derived from the validated geometry and a slot number < slots or an
// entry number < MaxConsumers that the caller has checked; the views were
// made over regions decodeDataHeader/decodeControlHeader validated.

import (
	"bytes"
	"encoding/binary"
	"sync/atomic"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/loss"
	"github.com/framering/framering/shm"
)

// dataRW is the data segment as its producer writes it.
type dataRW struct {
	geo *geometry
	w   []atomic.Uint64 // header, descriptors and index, as 64-bit words
	w32 []atomic.Uint32 // the header page, as 32-bit words
	b   []byte          // the whole mapping: descriptors' plain fields, payloads
}

// dataRO is the data segment as a consumer (or the producer's snapshot)
// reads it: loads only, from a mapping that may be read-only.
type dataRO struct {
	geo *geometry
	w   shm.ReadUint64s
	w32 shm.ReadUint32s
	b   []byte
}

func newDataRW(m *shm.Mapping, g *geometry) (dataRW, error) {
	w, err := m.Uint64s(0, g.payloadOffset/8)
	if err != nil {
		return dataRW{}, err
	}
	w32, err := m.Uint32s(0, headerSize/4)
	if err != nil {
		return dataRW{}, err
	}
	return dataRW{geo: g, w: w, w32: w32, b: m.Bytes()}, nil
}

func newDataRO(m *shm.Mapping, g *geometry) (dataRO, error) {
	w, err := m.ReadUint64sAt(0, g.payloadOffset/8)
	if err != nil {
		return dataRO{}, err
	}
	w32, err := m.ReadUint32sAt(0, headerSize/4)
	if err != nil {
		return dataRO{}, err
	}
	return dataRO{geo: g, w: w, w32: w32, b: m.Bytes()}, nil
}

// --- header words, producer side ---

// published is the highest published sequence number. Publish stores it
// after the index entry and the even generation (release: a reader that
// loads s here finds frame s's index entry and descriptor complete, 10.2).
// SC: with the waiters load after it, a Dekker pair against Wait (10.5).
func (d dataRW) published() *atomic.Uint64 { return &d.w[offPublished/8] }

// ringState is the ring state (init/running/closed). Close stores closed
// before it wakes every sleeper; readers load it on their slow paths.
func (d dataRW) ringState() *atomic.Uint32 { return &d.w32[offState/4] }

// sourceState is the acquisition loop's state (docs/LAYOUT.md 8.4),
// informative: stored by the loop, loaded by whoever judges a stall.
func (d dataRW) sourceState() *atomic.Uint32 { return &d.w32[offSourceState/4] }

// wake is the futex word. Incremented after published is stored and the
// waiters mask was seen nonzero; a sleeper loads it before published
// (10.5), so an increment in between makes its FUTEX_WAIT return at once.
func (d dataRW) wake() *atomic.Uint32 { return &d.w32[offWake/4] }

// heartbeat is CLOCK_MONOTONIC of the acquisition loop's last progress
// (8.4). Stored by that loop only; no ordering beyond atomicity.
func (d dataRW) heartbeat() *atomic.Uint64 { return &d.w[offHeartbeatNs/8] }

func (d dataRW) startMono() *atomic.Uint64 { return &d.w[offStartMonoNs/8] }

// The counters of line 5. Producer-written, informative: atomic for
// torn-free reads, ordered against nothing.
func (d dataRW) evictions() *atomic.Uint64      { return &d.w[offEvictions/8] }
func (d dataRW) detaches() *atomic.Uint64       { return &d.w[offDetaches/8] }
func (d dataRW) reclaims() *atomic.Uint64       { return &d.w[offReclaims/8] }
func (d dataRW) reclaimedHolds() *atomic.Uint64 { return &d.w[offReclaimedHold/8] }
func (d dataRW) revokedHolds() *atomic.Uint64   { return &d.w[offRevokedHold/8] }
func (d dataRW) copies() *atomic.Uint64         { return &d.w[offCopies/8] }

// drops is the drop table's counter for cause c. Added to before the
// publish that follows the drop (8.5): a reader that loads published >= s
// (SC, after this add in the total order) sees every drop before frame s.
func (d dataRW) drops(c loss.Cause) *atomic.Uint64 {
	return &d.w[offDrops/8+uint64(c)%loss.Max]
}

// --- descriptors and index, producer side ---

// gen is slot k's generation: odd while the slot is not readable, even
// while it carries published frame seq(k). The odd store that starts
// DECIDING is SC and pairs with a borrower's holder RMW (Dekker, 10.3); the
// even store at publish releases the descriptor and payload (10.2).
func (d dataRW) gen(k uint32) *atomic.Uint64 { return &d.w[(d.geo.desc(k)+dGen)/8] }

// seq is the sequence number slot k carries (0: none). Stored before the
// index entry at publish, and 0 at commit, while gen is odd; readers load it
// between two loads of the same even gen (settle, 9.1).
func (d dataRW) seq(k uint32) *atomic.Uint64 { return &d.w[(d.geo.desc(k)+dSeq)/8] }

// indexEntry is the index word that frame s is published through. Stored
// before gen turns even and before published (10.2), so a reader that
// loaded published >= s finds it written (or overwritten by a later frame).
func (d dataRW) indexEntry(s uint64) *atomic.Uint64 {
	return &d.w[d.geo.index(s&uint64(d.geo.indexCount-1))/8]
}

// writeDesc stores the plain descriptor fields of slot k: both lines but
// gen and seq. Plain stores: only while gen is odd, no reader trusts them
// until the even store publishes them (10.2).
func (d dataRW) writeDesc(k uint32, m *Meta) {
	base := d.geo.desc(k)
	b := d.b[base : base+descSize : base+descSize]
	le := binary.LittleEndian
	le.PutUint64(b[dFrameID:], m.FrameID)
	le.PutUint64(b[dTimestamp:], uint64(m.Timestamp))
	le.PutUint32(b[dWidth:], m.Width)
	le.PutUint32(b[dHeight:], m.Height)
	le.PutUint32(b[dStride:], m.Stride)
	le.PutUint32(b[dFormat:], uint32(m.Format))
	le.PutUint64(b[dLength:], m.Length)
	le.PutUint32(b[dFlags:], m.Flags)
	le.PutUint64(b[dDeviceTimestamp:], m.DeviceTimestamp)
	le.PutUint64(b[dOriginEpoch:], m.OriginEpoch)
	le.PutUint64(b[dOriginSeq:], m.OriginSeq)
	le.PutUint64(b[dPublishNs:], uint64(m.PublishNs))
	for i := range dropsBeforeWords {
		le.PutUint64(b[dDropsBefore+8*i:], encodeDrop(m.DropsBefore[i]))
	}
}

// prefetchPublish hints that Publish will soon write slot k's descriptor
// (both lines) and frame s's index entry: the producer takes the lines
// while it fills the slot, not while Publish stalls for them. A hint
// (shm/prefetch.go): it orders nothing.
func (d dataRW) prefetchPublish(k uint32, s uint64) {
	base := d.geo.desc(k) / 8
	shm.PrefetchWrite(&d.w[base])
	shm.PrefetchWrite(&d.w[base+cacheLine/8])
	shm.PrefetchWrite(d.indexEntry(s))
}

// payload is slot k's payload area (capacity bytes), capacity-capped.
func (d dataRW) payload(k uint32) []byte {
	off := d.geo.payload(k)
	return d.b[off : off+d.geo.capacity : off+d.geo.capacity]
}

// --- the data segment, reader side ---

// published: see dataRW.published. Loaded before the index entry (locate)
// and, in Wait, after the waiter bit and the wake word (SC, 10.5).
func (d dataRO) published() uint64 { return d.w.Load(offPublished / 8) }

// ringState, sourceState: see dataRW.
func (d dataRO) ringState() uint32   { return d.w32.Load(offState / 4) }
func (d dataRO) sourceState() uint32 { return d.w32.Load(offSourceState / 4) }

// wake is the futex word, for FUTEX_WAIT and FUTEX_WAKE (which only read
// it, so a read-only mapping suffices). Loaded before published (10.5).
func (d dataRO) wake() shm.ReadUint32 { return d.w32.Word(offWake / 4) }

func (d dataRO) heartbeat() int64       { return int64(d.w.Load(offHeartbeatNs / 8)) }
func (d dataRO) startMono() int64       { return int64(d.w.Load(offStartMonoNs / 8)) }
func (d dataRO) evictions() uint64      { return d.w.Load(offEvictions / 8) }
func (d dataRO) detaches() uint64       { return d.w.Load(offDetaches / 8) }
func (d dataRO) reclaims() uint64       { return d.w.Load(offReclaims / 8) }
func (d dataRO) reclaimedHolds() uint64 { return d.w.Load(offReclaimedHold / 8) }
func (d dataRO) revokedHolds() uint64   { return d.w.Load(offRevokedHold / 8) }
func (d dataRO) copies() uint64         { return d.w.Load(offCopies / 8) }

// dropTable loads every counter of the drop table (each atomically; the
// table as a whole is not a snapshot).
func (d dataRO) dropTable() loss.Counts {
	var c loss.Counts
	for i := range c {
		c[i] = d.w.Load(offDrops/8 + uint64(i))
	}
	return c
}

// gen, seq: see dataRW. Loaded in settle as gen, seq, gen (9.1); gen again
// after a peek's load fence (10.4).
func (d dataRO) gen(k uint32) uint64 { return d.w.Load((d.geo.desc(k) + dGen) / 8) }
func (d dataRO) seq(k uint32) uint64 { return d.w.Load((d.geo.desc(k) + dSeq) / 8) }

// indexEntry: see dataRW. Loaded after published (locate).
func (d dataRO) indexEntry(s uint64) uint64 {
	return d.w.Load(d.geo.index(s&uint64(d.geo.indexCount-1)) / 8)
}

// readDesc decodes slot k's descriptor with plain loads. The caller
// validates what it got by the generation (peek) or holds the slot
// (borrow); torn values are harmless: nothing here indexes memory.
func (d dataRO) readDesc(k uint32, m *Meta) {
	base := d.geo.desc(k)
	b := d.b[base : base+descSize : base+descSize]
	le := binary.LittleEndian
	m.Seq = le.Uint64(b[dSeq:])
	m.FrameID = le.Uint64(b[dFrameID:])
	m.Timestamp = int64(le.Uint64(b[dTimestamp:]))
	m.Width = le.Uint32(b[dWidth:])
	m.Height = le.Uint32(b[dHeight:])
	m.Stride = le.Uint32(b[dStride:])
	m.Format = frame.Format(le.Uint32(b[dFormat:]))
	m.Length = le.Uint64(b[dLength:])
	m.Flags = le.Uint32(b[dFlags:])
	m.DeviceTimestamp = le.Uint64(b[dDeviceTimestamp:])
	m.OriginEpoch = le.Uint64(b[dOriginEpoch:])
	m.OriginSeq = le.Uint64(b[dOriginSeq:])
	m.PublishNs = int64(le.Uint64(b[dPublishNs:]))
	for i := range dropsBeforeWords {
		m.DropsBefore[i] = decodeDrop(le.Uint64(b[dDropsBefore+8*i:]))
	}
}

// prefetchDesc hints that slot k's descriptor (both lines) is about to be
// read. A hint (shm/prefetch.go): it orders nothing, and Borrow loads
// every word it trusts as before.
func (d dataRO) prefetchDesc(k uint32) {
	base := d.geo.desc(k) / 8
	d.w.Prefetch(base)
	d.w.Prefetch(base + cacheLine/8)
}

// payload is the first n bytes of slot k's payload; n must be <= capacity
// (the caller checked the descriptor's length).
func (d dataRO) payload(k uint32, n uint64) []byte {
	off := d.geo.payload(k)
	return d.b[off : off+n : off+n]
}

// --- the control segment (written by the producer and every consumer) ---

type ctlWords struct {
	geo *geometry
	w   []atomic.Uint64
	w32 []atomic.Uint32
	b   []byte
}

func newCtlWords(m *shm.Mapping, g *geometry) (ctlWords, error) {
	w, err := m.Uint64s(0, g.controlSize/8)
	if err != nil {
		return ctlWords{}, err
	}
	w32, err := m.Uint32s(0, g.controlSize/4)
	if err != nil {
		return ctlWords{}, err
	}
	return ctlWords{geo: g, w: w, w32: w32, b: m.Bytes()}, nil
}

// copyCtlWords copies a read-only mapping of the control segment, word by
// word (each load atomic, the whole not a snapshot), into private memory
// that the accessors below can read: for Inspect, which may not write the
// segment and so maps it read-only.
func copyCtlWords(m *shm.Mapping, g *geometry) (ctlWords, error) {
	r64, err := m.ReadUint64sAt(0, g.controlSize/8)
	if err != nil {
		return ctlWords{}, err
	}
	r32, err := m.ReadUint32sAt(0, g.controlSize/4)
	if err != nil {
		return ctlWords{}, err
	}
	c := ctlWords{geo: g, w: make([]atomic.Uint64, r64.Len()), w32: make([]atomic.Uint32, g.controlSize/4),
		b: make([]byte, g.controlSize)}
	for i := range c.w {
		c.w[i].Store(r64.Load(uint64(i)))
	}
	for i := range c.w32 {
		c.w32[i].Store(r32.Load(uint64(i)))
	}
	copy(c.b, m.Bytes()[:g.controlSize])
	return c, nil
}

// waiters has bit i set while consumer i sleeps (or is about to) on wake.
// Consumers Or/And their own bit; the producer clears a released
// consumer's. SC: the consumer's Or before its published load, against the
// producer's published store before its load of this word (10.5).
func (c ctlWords) waiters() *atomic.Uint64 { return &c.w[cWaiters/8] }

// attached has bit i set while entry i is active or evicted. Producer-only,
// informative.
func (c ctlWords) attached() *atomic.Uint64 { return &c.w[cAttached/8] }

// hold is slot k's holder mask. A consumer Ors its bit before re-loading
// gen (SC, Dekker against the producer's odd gen store then load of this
// word, 10.3) and And-clears it at release (release ordering: its reads of
// the slot happen before the producer can see the slot free). The
// producer only clears bits (release, eviction).
func (c ctlWords) hold(k uint32) *atomic.Uint64 { return &c.w[c.geo.hold(k)/8] }

// prefetchHold hints that this consumer is about to Or its bit into slot
// k's hold word: the line is taken for writing while other misses are
// outstanding. A hint: the Or's ordering argument (10.3) is unchanged.
func (c ctlWords) prefetchHold(k uint32) { shm.PrefetchWrite(c.hold(k)) }

// The producer's words of entry i (line 0 and line 2). entryState is
// stored last at attach (the entry is complete before anyone reads it as
// active) and, at eviction, SC before any Acquire ignores the consumer's
// bits; a borrower loads it after its hold RMW, a releaser after a load
// fence (10.8). The rest is informative.
func (c ctlWords) entryState(i int) *atomic.Uint32 { return &c.w32[(c.geo.entry(i)+eState)/4] }
func (c ctlWords) entryMode(i int) *atomic.Uint32  { return &c.w32[(c.geo.entry(i)+eMode)/4] }
func (c ctlWords) entryPid(i int) *atomic.Uint32   { return &c.w32[(c.geo.entry(i)+ePid)/4] }
func (c ctlWords) entryUID(i int) *atomic.Uint32   { return &c.w32[(c.geo.entry(i)+eUID)/4] }
func (c ctlWords) pidfdIno(i int) *atomic.Uint64   { return &c.w[(c.geo.entry(i)+ePidfdIno)/8] }

// attachNs is the wall-clock attach time; with the entry number it names
// one attachment (the producer's blame and eviction check it).
func (c ctlWords) attachNs(i int) *atomic.Uint64     { return &c.w[(c.geo.entry(i)+eAttachNs)/8] }
func (c ctlWords) blockDrops(i int) *atomic.Uint64   { return &c.w[(c.geo.entry(i)+eBlockDrops)/8] }
func (c ctlWords) evictReason(i int) *atomic.Uint32  { return &c.w32[(c.geo.entry(i)+eEvictReason)/4] }
func (c ctlWords) revokedHolds(i int) *atomic.Uint64 { return &c.w[(c.geo.entry(i)+eRevokedHolds)/8] }

// name is entry i's name bytes (plain stores before the state store).
func (c ctlWords) name(i int) []byte {
	base := c.geo.entry(i) + eName
	return c.b[base : base+maxNameLen : base+maxNameLen]
}

// nameString is entry i's name up to its first NUL.
func (c ctlWords) nameString(i int) string {
	n := c.name(i)
	if j := bytes.IndexByte(n, 0); j >= 0 {
		n = n[:j]
	}
	return string(n)
}

// cursor is the next sequence number consumer i wants. Stored by the
// consumer after its hold RMW (release), loaded by the producer once per
// Acquire before its first odd store (acquire): the lossless cursor rule
// (10.6). The producer stores it only while setting the entry up.
func (c ctlWords) cursor(i int) *atomic.Uint64 { return &c.w[(c.geo.entry(i)+eCursor)/8] }

// The consumer's informative counters (line 1): stored by the owner only.
func (c ctlWords) delivered(i int) *atomic.Uint64   { return &c.w[(c.geo.entry(i)+eDelivered)/8] }
func (c ctlWords) skipped(i int) *atomic.Uint64     { return &c.w[(c.geo.entry(i)+eSkipped)/8] }
func (c ctlWords) missed(i int) *atomic.Uint64      { return &c.w[(c.geo.entry(i)+eMissed)/8] }
func (c ctlWords) held(i int) *atomic.Uint64        { return &c.w[(c.geo.entry(i)+eHeld)/8] }
func (c ctlWords) lastSeq(i int) *atomic.Uint64     { return &c.w[(c.geo.entry(i)+eLastSeq)/8] }
func (c ctlWords) latency(i int) *atomic.Uint64     { return &c.w[(c.geo.entry(i)+eLatencyNs)/8] }
func (c ctlWords) revokedSeen(i int) *atomic.Uint64 { return &c.w[(c.geo.entry(i)+eRevokedSeen)/8] }

// resetEntry zeroes entry i's consumer line and the producer's line 2 and
// 3 (everything from the cursor on), for a new owner.
func (c ctlWords) resetEntry(i int) {
	base := c.geo.entry(i)
	for off := uint64(eCursor); off < entrySize; off += 8 {
		c.w[(base+off)/8].Store(0)
	}
}
