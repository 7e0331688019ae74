package archive

// The on-disk layout: segment header, record header, gap payload. This file
// is the only place that knows byte offsets; FORMAT.md is its specification
// for readers in other languages, and layout_test.go pins every offset.
//
// Invariants kept here:
//   - Every decoder takes plain bytes, checks lengths in uint64 before it
//     reads a field, and returns the zero value with any error (an error
//     means no result), so the decoders can be fuzzed.
//   - parseRecord accepts a record only if all of it lies inside the given
//     bytes, its CRC32C matches, its padding and reserved bytes are zero and
//     its fields are consistent (see checkRecordFields). Everything a reader
//     or the recovery scan trusts about a record has passed parseRecord.
//   - Structural damage (magic, lengths, CRC) is ErrCorrupt or ErrTruncated;
//     ErrVersion is only returned for bytes whose checksum matched, so a
//     flipped bit is never mistaken for a newer format (except in the segment
//     header's version field itself, which is checked before its CRC because
//     the CRC's extent depends on the version).
//
// Segment header (64 bytes in versions 1 and 2, little-endian):
//
//	 0                   8       10      12              16
//	+-------------------+-------+-------+---------------+
//	| magic "FRARCSEG"  | vers  | hsize | flags         |
//	+-------------------+-------+-------+---------------+
//	16 segment index (u64)       24 created, Unix ns (i64)
//	32 first seq (u64)           40 reserved, 20 zero bytes
//	60 CRC32C of [0,60) ‖ [64,hsize) (u32)
//
// Record header (96 bytes in version 2, 80 in version 1), then the stored
// payload, then zero padding to the next multiple of 8:
//
//	 0 magic "FRRC" (u32 0x43525246)   4 header length (u16)   6 kind (u16)
//	 8 seq (u64)                       16 frame id (u64)
//	24 capture timestamp ns (i64)      32 width (u32)          36 height (u32)
//	40 stride (u32)                    44 pixel format, PFNC (u32)
//	48 flags (u32, bits 0-7 codec)     52 reserved (u32, zero)
//	56 stored payload length (u64)     64 raw payload length (u64)
//	72 reserved (u32, zero)            76 CRC32C (u32) of
//	   header[0,76) ‖ header[80,hlen) ‖ stored payload
//	80 epoch (u64, version 2)          88 ring seq (u64, version 2)
//
// The record's "seq" (offset 8) is its place in the archive (the record
// sequence number); a frame's identity is the ring's (epoch, ring seq),
// which version 2 stores in every record.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/loss"
)

// FormatVersion is the segment and index format version this package
// writes. It reads every version from MinFormatVersion up.
const FormatVersion = 2

// MinFormatVersion is the oldest format version this package reads. A
// version 1 segment has 80-byte record headers without the frame identity
// (Meta.Epoch and Meta.RingSeq read back as 0) and 32-byte gap payloads.
const MinFormatVersion = 1

// MaxPayload is the largest raw or stored payload a record may carry (1 GiB).
// It bounds what a reader allocates for a hostile file.
const MaxPayload = 1 << 30

// castagnoli is the CRC32C table used for every checksum in the format.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Segment header layout.
const (
	segMagic        = "FRARCSEG"
	segHeaderSize   = 64 // in versions 1 and 2
	maxSegHeader    = 4096
	offSegMagic     = 0
	offSegVersion   = 8
	offSegHdrSize   = 10
	offSegFlags     = 12
	offSegIndex     = 16
	offSegCreated   = 24
	offSegFirstSeq  = 32
	offSegReserved  = 40
	offSegCRC       = 60
	segKnownFlags   = 0 // versions 1 and 2 define no segment flags
	segReservedSize = offSegCRC - offSegReserved
)

// Record header layout.
const (
	recMagic        uint32 = 0x43525246 // "FRRC" in little-endian byte order
	recHeaderSize          = 96         // written by version 2
	recHeaderSizeV1        = 80         // the smallest header a version 1 segment may hold
	maxRecHeader           = 4096
	offRecMagic            = 0
	offRecHdrLen           = 4
	offRecKind             = 6
	offRecSeq              = 8
	offRecFrameID          = 16
	offRecTime             = 24
	offRecWidth            = 32
	offRecHeight           = 36
	offRecStride           = 40
	offRecFormat           = 44
	offRecFlags            = 48
	offRecReserved1        = 52
	offRecStored           = 56
	offRecRaw              = 64
	offRecReserved2        = 72
	offRecCRC              = 76
	offRecEpoch            = 80 // version 2
	offRecRingSeq          = 88 // version 2
	recAlign               = 8
	flagCodecMask   uint32 = 0xFF
)

// Gap payload layout (48 bytes in version 2, the first 32 in version 1).
const (
	gapPayloadSize   = 48
	gapPayloadSizeV1 = 32
	offGapFirst      = 0
	offGapLast       = 8
	offGapCount      = 16
	offGapCause      = 24
	offGapReserved   = 28
	offGapFirstSeq   = 32 // version 2
	offGapLastSeq    = 40 // version 2
)

// Compile-time layout checks: each index below is a constant that must be
// exactly zero, or the array index is out of range and the build fails.
var (
	_ = [1]struct{}{}[segHeaderSize-(offSegCRC+4)]
	_ = [1]struct{}{}[recHeaderSizeV1-(offRecCRC+4)]
	_ = [1]struct{}{}[recHeaderSize-(offRecRingSeq+8)]
	_ = [1]struct{}{}[gapPayloadSizeV1-(offGapReserved+4)]
	_ = [1]struct{}{}[gapPayloadSize-(offGapLastSeq+8)]
	_ = [1]struct{}{}[len(segMagic)-offSegVersion]
	_ = [1]struct{}{}[recHeaderSize%recAlign]
	_ = [1]struct{}{}[segHeaderSize%recAlign]
	_ = [1]struct{}{}[offRecStored%8+offRecRaw%8+offRecSeq%8+offSegIndex%8+offRecEpoch%8+offRecRingSeq%8]
)

// Kind is the type of a record.
type Kind uint16

const (
	// KindFrame is a stored frame.
	KindFrame Kind = 1
	// KindGap records frames that were lost before they could be stored.
	KindGap Kind = 2
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindFrame:
		return "frame"
	case KindGap:
		return "gap"
	}
	return "kind(" + itoa(uint64(k)) + ")"
}

// Codec is how a record's payload is stored.
type Codec uint8

const (
	// CodecNone stores the payload as is.
	CodecNone Codec = 0
	// CodecS2 stores an S2 block (github.com/klauspost/compress/s2, block format).
	CodecS2 Codec = 1
	// CodecZstd stores one zstd frame, written at the fastest level.
	CodecZstd Codec = 2
)

// String names the codec.
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecS2:
		return "s2"
	case CodecZstd:
		return "zstd"
	}
	return "codec(" + itoa(uint64(c)) + ")"
}

func (c Codec) known() bool { return c <= CodecZstd }

// Cause says why frames were lost: a code of the one table of loss causes
// (package loss, FORMAT.md "Loss causes"), shared by the ring, the
// consumers and the archive. A gap record stores it as a u32; codes this
// build does not know read back unchanged and print as "cause_N".
type Cause = loss.Cause

// Meta is what the archive keeps about a frame beside its bytes.
type Meta struct {
	// Epoch and RingSeq are the frame's identity: the producer run (the
	// ring's epoch) and the ring sequence number it was published under.
	// 0 means not known (a frame that did not come from a ring, or a
	// record of a version 1 archive).
	Epoch     uint64
	RingSeq   uint64
	FrameID   uint64       // the producer's frame id (a camera's block id: may wrap, not an identity)
	Timestamp int64        // capture time, nanoseconds (the producer's clock)
	Width     int          // pixels per row
	Height    int          // rows
	Stride    int          // bytes per row, padding included
	Format    frame.Format // PFNC pixel format code
}

// Geometry returns the frame geometry the metadata describes.
func (m Meta) Geometry() frame.Geometry {
	return frame.Geometry{Width: m.Width, Height: m.Height, Stride: m.Stride, Format: m.Format}
}

// Gap says that Count frames with ids in [FirstID, LastID] were lost for
// Cause. Count is at most LastID-FirstID+1 (the lost ids need not be
// contiguous). Epoch is the producer run they belong to, FirstSeq..LastSeq
// the ring sequence numbers they had if they were published (frames a
// consumer did not get or the archive did not keep); 0 when they never
// were (the ring's own drops) or it is not known.
type Gap struct {
	FirstID  uint64
	LastID   uint64
	Count    uint64
	Cause    Cause
	Epoch    uint64
	FirstSeq uint64
	LastSeq  uint64
}

func (g Gap) validate() bool {
	if g.Count == 0 || g.LastID < g.FirstID {
		return false
	}
	if g.LastSeq < g.FirstSeq || (g.FirstSeq == 0) != (g.LastSeq == 0) {
		return false
	}
	span := g.LastID - g.FirstID // count <= span+1, written so it cannot overflow
	return g.Count-1 <= span
}

// segHeader is a decoded segment header.
type segHeader struct {
	version  uint16
	hdrSize  uint16
	flags    uint32
	index    uint64
	created  int64
	firstSeq uint64
}

// encodeSegHeader writes a header of the current version into
// dst[:segHeaderSize].
func encodeSegHeader(dst []byte, index uint64, created int64, firstSeq uint64) {
	b := dst[:segHeaderSize]
	clear(b)
	copy(b[offSegMagic:], segMagic)
	binary.LittleEndian.PutUint16(b[offSegVersion:], FormatVersion)
	binary.LittleEndian.PutUint16(b[offSegHdrSize:], segHeaderSize)
	binary.LittleEndian.PutUint32(b[offSegFlags:], 0)
	binary.LittleEndian.PutUint64(b[offSegIndex:], index)
	binary.LittleEndian.PutUint64(b[offSegCreated:], uint64(created))
	binary.LittleEndian.PutUint64(b[offSegFirstSeq:], firstSeq)
	binary.LittleEndian.PutUint32(b[offSegCRC:], crc32.Checksum(b[:offSegCRC], castagnoli))
}

// decodeSegHeader validates and decodes the header at the start of b (the
// whole segment file, or at least its header). Checks, in order: length,
// magic, version, header size, CRC, flags, reserved bytes.
func decodeSegHeader(b []byte) (segHeader, error) {
	n := uint64(len(b))
	if n < segHeaderSize {
		return segHeader{}, truncatedf("segment header: %d bytes, need %d", n, segHeaderSize)
	}
	if string(b[offSegMagic:offSegMagic+len(segMagic)]) != segMagic {
		return segHeader{}, corruptf("segment header: bad magic %q", b[offSegMagic:offSegMagic+len(segMagic)])
	}
	h := segHeader{
		version:  binary.LittleEndian.Uint16(b[offSegVersion:]),
		hdrSize:  binary.LittleEndian.Uint16(b[offSegHdrSize:]),
		flags:    binary.LittleEndian.Uint32(b[offSegFlags:]),
		index:    binary.LittleEndian.Uint64(b[offSegIndex:]),
		created:  int64(binary.LittleEndian.Uint64(b[offSegCreated:])),
		firstSeq: binary.LittleEndian.Uint64(b[offSegFirstSeq:]),
	}
	if h.version < MinFormatVersion || h.version > FormatVersion {
		return segHeader{}, versionf("segment header: version %d, this reader knows %d..%d", h.version, MinFormatVersion, FormatVersion)
	}
	hs := uint64(h.hdrSize)
	if hs < segHeaderSize || hs > maxSegHeader || hs%recAlign != 0 {
		return segHeader{}, corruptf("segment header: header size %d", hs)
	}
	if n < hs {
		return segHeader{}, truncatedf("segment header: %d bytes, header size %d", n, hs)
	}
	crc := crc32.Update(0, castagnoli, b[:offSegCRC])
	crc = crc32.Update(crc, castagnoli, b[segHeaderSize:hs])
	if want := binary.LittleEndian.Uint32(b[offSegCRC:]); crc != want {
		return segHeader{}, corruptf("segment header: CRC32C %#08x, stored %#08x", crc, want)
	}
	if !allZero(b[offSegReserved:offSegCRC]) {
		return segHeader{}, corruptf("segment header: reserved bytes not zero")
	}
	if h.flags&^segKnownFlags != 0 {
		return segHeader{}, versionf("segment header: unknown flags %#08x", h.flags)
	}
	return h, nil
}

// recHeader is a decoded record header.
type recHeader struct {
	hdrLen    uint16
	kind      Kind
	seq       uint64
	frameID   uint64
	timestamp int64
	width     uint32
	height    uint32
	stride    uint32
	format    uint32
	flags     uint32
	stored    uint64
	raw       uint64
	crc       uint32
	epoch     uint64 // version 2
	ringSeq   uint64 // version 2
}

func (h *recHeader) codec() Codec { return Codec(h.flags & flagCodecMask) }

// size is the record's total length on disk: header, payload, padding.
// decodeRecHeader bounds hdrLen and stored, so this cannot overflow.
func (h *recHeader) size() uint64 { return align8(uint64(h.hdrLen) + h.stored) }

func align8(n uint64) uint64 { return (n + recAlign - 1) &^ (recAlign - 1) }

// encodeRecHeader writes a record header of the current version into
// dst[:recHeaderSize], CRC field included: crc must already cover
// header[0,76) ‖ header[80,96) and the payload (see sealRecHeader).
func encodeRecHeader(dst []byte, h *recHeader) {
	b := dst[:recHeaderSize]
	binary.LittleEndian.PutUint32(b[offRecMagic:], recMagic)
	binary.LittleEndian.PutUint16(b[offRecHdrLen:], recHeaderSize)
	binary.LittleEndian.PutUint16(b[offRecKind:], uint16(h.kind))
	binary.LittleEndian.PutUint64(b[offRecSeq:], h.seq)
	binary.LittleEndian.PutUint64(b[offRecFrameID:], h.frameID)
	binary.LittleEndian.PutUint64(b[offRecTime:], uint64(h.timestamp))
	binary.LittleEndian.PutUint32(b[offRecWidth:], h.width)
	binary.LittleEndian.PutUint32(b[offRecHeight:], h.height)
	binary.LittleEndian.PutUint32(b[offRecStride:], h.stride)
	binary.LittleEndian.PutUint32(b[offRecFormat:], h.format)
	binary.LittleEndian.PutUint32(b[offRecFlags:], h.flags)
	binary.LittleEndian.PutUint32(b[offRecReserved1:], 0)
	binary.LittleEndian.PutUint64(b[offRecStored:], h.stored)
	binary.LittleEndian.PutUint64(b[offRecRaw:], h.raw)
	binary.LittleEndian.PutUint32(b[offRecReserved2:], 0)
	binary.LittleEndian.PutUint32(b[offRecCRC:], h.crc)
	binary.LittleEndian.PutUint64(b[offRecEpoch:], h.epoch)
	binary.LittleEndian.PutUint64(b[offRecRingSeq:], h.ringSeq)
}

// sealRecHeader encodes h into dst with its CRC computed over the header and
// payload; h.crc is set.
func sealRecHeader(dst []byte, h *recHeader, payload []byte) {
	h.hdrLen = recHeaderSize
	h.crc = 0
	encodeRecHeader(dst, h)
	crc := crc32.Update(0, castagnoli, dst[:offRecCRC])
	crc = crc32.Update(crc, castagnoli, dst[recHeaderSizeV1:recHeaderSize])
	h.crc = crc32.Update(crc, castagnoli, payload)
	binary.LittleEndian.PutUint32(dst[offRecCRC:], h.crc)
}

// minRecHeader is the smallest record header a segment of version ver holds.
func minRecHeader(ver uint16) uint64 {
	if ver < 2 {
		return recHeaderSizeV1
	}
	return recHeaderSize
}

// decodeRecHeader decodes the structural fields of the record header at the
// start of b, in a segment of version ver: magic, header length and payload
// lengths. It does not check the CRC or the meaning of the fields;
// parseRecord does.
func decodeRecHeader(b []byte, ver uint16) (recHeader, error) {
	minHdr := minRecHeader(ver)
	if uint64(len(b)) < minHdr {
		return recHeader{}, truncatedf("record header: %d bytes, need %d", len(b), minHdr)
	}
	if m := binary.LittleEndian.Uint32(b[offRecMagic:]); m != recMagic {
		return recHeader{}, corruptf("record header: bad magic %#08x", m)
	}
	h := recHeader{
		hdrLen:    binary.LittleEndian.Uint16(b[offRecHdrLen:]),
		kind:      Kind(binary.LittleEndian.Uint16(b[offRecKind:])),
		seq:       binary.LittleEndian.Uint64(b[offRecSeq:]),
		frameID:   binary.LittleEndian.Uint64(b[offRecFrameID:]),
		timestamp: int64(binary.LittleEndian.Uint64(b[offRecTime:])),
		width:     binary.LittleEndian.Uint32(b[offRecWidth:]),
		height:    binary.LittleEndian.Uint32(b[offRecHeight:]),
		stride:    binary.LittleEndian.Uint32(b[offRecStride:]),
		format:    binary.LittleEndian.Uint32(b[offRecFormat:]),
		flags:     binary.LittleEndian.Uint32(b[offRecFlags:]),
		stored:    binary.LittleEndian.Uint64(b[offRecStored:]),
		raw:       binary.LittleEndian.Uint64(b[offRecRaw:]),
		crc:       binary.LittleEndian.Uint32(b[offRecCRC:]),
	}
	if hl := uint64(h.hdrLen); hl < minHdr || hl > maxRecHeader || hl%recAlign != 0 {
		return recHeader{}, corruptf("record header: header length %d", hl)
	}
	if ver >= 2 {
		h.epoch = binary.LittleEndian.Uint64(b[offRecEpoch:])
		h.ringSeq = binary.LittleEndian.Uint64(b[offRecRingSeq:])
	}
	if h.stored > MaxPayload || h.raw > MaxPayload {
		return recHeader{}, corruptf("record header: payload %d stored, %d raw, limit %d", h.stored, h.raw, MaxPayload)
	}
	return h, nil
}

// recordCRC computes the CRC32C of the record of header length hl at rec
// (rec holds at least hl+stored bytes).
func recordCRC(rec []byte, hl, stored uint64) uint32 {
	crc := crc32.Update(0, castagnoli, rec[:offRecCRC])
	crc = crc32.Update(crc, castagnoli, rec[recHeaderSizeV1:hl])
	return crc32.Update(crc, castagnoli, rec[hl:hl+stored])
}

// parseRecord validates the record at data[off:] completely and returns its
// header. data is a whole segment (from byte 0) of format version ver, so
// offsets in errors are file offsets. See the file comment for what
// "completely" means.
func parseRecord(data []byte, off uint64, ver uint16) (recHeader, error) {
	n := uint64(len(data))
	if off%recAlign != 0 {
		return recHeader{}, corruptf("record at %d: misaligned", off)
	}
	if minHdr := minRecHeader(ver); off > n || n-off < minHdr {
		return recHeader{}, truncatedf("record at %d: %d bytes left, need a %d-byte header", off, n-min(off, n), minHdr)
	}
	h, err := decodeRecHeader(data[off:], ver)
	if err != nil {
		return recHeader{}, wrapAt(off, err)
	}
	size := h.size()
	if size > n-off {
		return recHeader{}, truncatedf("record at %d: %d bytes long, %d left in file", off, size, n-off)
	}
	rec := data[off : off+size]
	hl := uint64(h.hdrLen)
	if got := recordCRC(rec, hl, h.stored); got != h.crc {
		return recHeader{}, corruptf("record at %d: CRC32C %#08x, stored %#08x", off, got, h.crc)
	}
	if !allZero(rec[hl+h.stored:]) {
		return recHeader{}, corruptf("record at %d: padding not zero", off)
	}
	if err := checkRecordFields(&h, rec[offRecReserved1:offRecReserved1+4], rec[offRecReserved2:offRecReserved2+4], rec[hl:hl+h.stored], ver); err != nil {
		return recHeader{}, wrapAt(off, err)
	}
	return h, nil
}

// checkRecordFields checks the meaning of a record whose CRC matched, in a
// segment of version ver.
func checkRecordFields(h *recHeader, res1, res2, payload []byte, ver uint16) error {
	if !allZero(res1) || !allZero(res2) {
		return corruptf("reserved bytes not zero")
	}
	if h.flags&^flagCodecMask != 0 {
		return versionf("unknown record flags %#08x", h.flags)
	}
	c := h.codec()
	if !c.known() {
		return versionf("unknown codec %d", c)
	}
	switch h.kind {
	case KindFrame:
		if err := checkFrameFields(ErrCorrupt, uint64(h.width), uint64(h.height), uint64(h.stride), frame.Format(h.format), h.raw); err != nil {
			return err
		}
		if c == CodecNone && h.stored != h.raw {
			return corruptf("uncompressed payload of %d bytes, raw length %d", h.stored, h.raw)
		}
		if c != CodecNone && h.stored == 0 {
			return corruptf("empty compressed payload")
		}
	case KindGap:
		gs := gapSize(ver)
		if h.width|h.height|h.stride|h.format != 0 || c != CodecNone || h.stored != gs || h.raw != gs {
			return corruptf("gap record with frame fields")
		}
		g, err := decodeGap(payload, ver)
		if err != nil {
			return err
		}
		if g.FirstID != h.frameID {
			return corruptf("gap first id %d, header frame id %d", g.FirstID, h.frameID)
		}
		if g.FirstSeq != h.ringSeq {
			return corruptf("gap first ring seq %d, header ring seq %d", g.FirstSeq, h.ringSeq)
		}
	default:
		return versionf("unknown record kind %d", h.kind)
	}
	return nil
}

// checkFrameFields checks that a geometry describes raw bytes exactly. The
// writer applies it to Meta before writing and the reader after the CRC.
// The error matches sentinel (ErrInvalid for the writer, ErrCorrupt for the
// reader).
func checkFrameFields(sentinel error, width, height, stride uint64, f frame.Format, raw uint64) error {
	if width == 0 || height == 0 || stride == 0 || width > math.MaxUint32 || height > math.MaxUint32 || stride > math.MaxUint32 {
		return fmt.Errorf("%w: frame geometry %dx%d stride %d", sentinel, width, height, stride)
	}
	if stride*height != raw { // both < 2^32: no overflow
		return fmt.Errorf("%w: frame geometry %dx%d stride %d does not describe %d bytes", sentinel, width, height, stride, raw)
	}
	if f.Valid() {
		g := frame.Geometry{Width: int(width), Height: int(height), Stride: int(stride), Format: f}
		if err := g.Validate(); err != nil {
			return fmt.Errorf("%w: %w", sentinel, err)
		}
	}
	return nil
}

// gapSize is the gap payload size in a segment of version ver.
func gapSize(ver uint16) uint64 {
	if ver < 2 {
		return gapPayloadSizeV1
	}
	return gapPayloadSize
}

// encodeGap writes g into dst[:gapPayloadSize] (the current version; the
// epoch goes into the record header).
func encodeGap(dst []byte, g Gap) {
	b := dst[:gapPayloadSize]
	binary.LittleEndian.PutUint64(b[offGapFirst:], g.FirstID)
	binary.LittleEndian.PutUint64(b[offGapLast:], g.LastID)
	binary.LittleEndian.PutUint64(b[offGapCount:], g.Count)
	binary.LittleEndian.PutUint32(b[offGapCause:], uint32(g.Cause))
	binary.LittleEndian.PutUint32(b[offGapReserved:], 0)
	binary.LittleEndian.PutUint64(b[offGapFirstSeq:], g.FirstSeq)
	binary.LittleEndian.PutUint64(b[offGapLastSeq:], g.LastSeq)
}

// decodeGap decodes and checks the gap payload of a segment of version
// ver. Epoch is not in the payload: the caller sets it from the header.
func decodeGap(b []byte, ver uint16) (Gap, error) {
	if uint64(len(b)) != gapSize(ver) {
		return Gap{}, corruptf("gap payload of %d bytes, want %d", len(b), gapSize(ver))
	}
	g := Gap{
		FirstID: binary.LittleEndian.Uint64(b[offGapFirst:]),
		LastID:  binary.LittleEndian.Uint64(b[offGapLast:]),
		Count:   binary.LittleEndian.Uint64(b[offGapCount:]),
	}
	if ver >= 2 {
		g.FirstSeq = binary.LittleEndian.Uint64(b[offGapFirstSeq:])
		g.LastSeq = binary.LittleEndian.Uint64(b[offGapLastSeq:])
	}
	if !allZero(b[offGapReserved : offGapReserved+4]) {
		return Gap{}, corruptf("gap reserved bytes not zero")
	}
	if !g.validate() {
		return Gap{}, corruptf("gap of %d frames in ids %d..%d, ring seqs %d..%d", g.Count, g.FirstID, g.LastID, g.FirstSeq, g.LastSeq)
	}
	// Cause codes are one byte everywhere else (the ring's drops_before,
	// package loss): a larger value is a code space this reader does not
	// know.
	c := binary.LittleEndian.Uint32(b[offGapCause:])
	if c > math.MaxUint8 {
		return Gap{}, versionf("gap cause %d beyond the one-byte code space", c)
	}
	g.Cause = Cause(c)
	return g, nil
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// findMagic returns the first offset >= from, 8-aligned, where data holds the
// record magic, or len(data) if there is none.
func findMagic(data []byte, from uint64) uint64 {
	var m [4]byte
	binary.LittleEndian.PutUint32(m[:], recMagic)
	n := uint64(len(data))
	from = align8(from)
	for from < n {
		i := bytes.Index(data[from:], m[:])
		if i < 0 {
			return n
		}
		p := from + uint64(i)
		if p%recAlign == 0 {
			return p
		}
		from = align8(p + 1)
	}
	return n
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

func formatOf(v uint32) frame.Format { return frame.Format(v) }
