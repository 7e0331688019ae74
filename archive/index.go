package archive

// The per-segment index (NNNNNNNN.fridx): derived data, never trusted.
//
// Invariants:
//   - An index is a cache of one entry per record of one segment. Nothing is
//     lost if it is missing, short or wrong: the writer rebuilds it from the
//     segment at Open, and the reader rebuilds it in memory when it does not
//     hold up.
//   - The writer writes an entry only once the record it points to is
//     covered by a completed fsync. So an entry whose record is gone names a
//     durable record that was lost afterwards: Verify reports it missing.
//   - decodeIndex checks structure only (header, entry alignment, strictly
//     increasing seqs and offsets); an entry is used only after the record
//     it points to has passed parseRecord and carries the entry's seq.
//   - The sealed flag is set only after the whole segment was fsynced at a
//     rotation or Close, and the index with it: the segment is complete.
//
// Layout (little-endian):
//
//	 0 magic "FRARCIDX"      8 version (u16)      10 header size (u16, 32)
//	12 entry size (u16)      14 flags (u16)       16 segment index (u64)
//	24 reserved (u32, 0)     28 CRC32C of [0,28) (u32)
//	32 entries. Version 1 (16 bytes): record seq, offset (u64 each).
//	   Version 2 (40 bytes): record seq, offset, epoch, ring seq (u64
//	   each), CRC32C of the entry's first 32 bytes (u32), reserved (u32, 0).
//
// A version 2 entry carries its own CRC because Verify believes what an
// index lists (a listed record the data lacks is a loss): a flipped bit
// must read as a damaged index, never as a lost record.
//
// An index has the version of its segment.

import (
	"encoding/binary"
	"hash/crc32"
)

const (
	idxMagic        = "FRARCIDX"
	idxHeaderSize   = 32
	idxEntrySize    = 40 // version 2
	offIdxEntryCRC  = 32 // version 2, in an entry
	idxEntrySizeV1  = 16
	offIdxVersion   = 8
	offIdxHdrSize   = 10
	offIdxEntrySize = 12
	offIdxFlags     = 14
	offIdxSegment   = 16
	offIdxReserved2 = 24
	offIdxCRC       = 28

	// idxSealed: the segment was fsynced whole and will not grow (version 2).
	idxSealed     uint16 = 1
	idxKnownFlags        = idxSealed
)

var (
	_ = [1]struct{}{}[idxHeaderSize-(offIdxCRC+4)]
	_ = [1]struct{}{}[len(idxMagic)-offIdxVersion]
)

// idxEntry is one index entry: the record with sequence seq is at off, and
// carries the frame identity (epoch, ringSeq) (0 in version 1; for a gap,
// its epoch and first ring seq).
type idxEntry struct {
	seq, off       uint64
	epoch, ringSeq uint64
}

func idxEntrySizeFor(ver uint16) int {
	if ver < 2 {
		return idxEntrySizeV1
	}
	return idxEntrySize
}

func encodeIndexHeader(dst []byte, segIndex uint64, ver, flags uint16) {
	b := dst[:idxHeaderSize]
	clear(b)
	copy(b, idxMagic)
	binary.LittleEndian.PutUint16(b[offIdxVersion:], ver)
	binary.LittleEndian.PutUint16(b[offIdxHdrSize:], idxHeaderSize)
	binary.LittleEndian.PutUint16(b[offIdxEntrySize:], uint16(idxEntrySizeFor(ver)))
	binary.LittleEndian.PutUint16(b[offIdxFlags:], flags)
	binary.LittleEndian.PutUint64(b[offIdxSegment:], segIndex)
	binary.LittleEndian.PutUint32(b[offIdxCRC:], crc32.Checksum(b[:offIdxCRC], castagnoli))
}

// encodeIndexEntry writes e in the entry format of version ver.
func encodeIndexEntry(dst []byte, e idxEntry, ver uint16) {
	binary.LittleEndian.PutUint64(dst[0:], e.seq)
	binary.LittleEndian.PutUint64(dst[8:], e.off)
	if ver >= 2 {
		binary.LittleEndian.PutUint64(dst[16:], e.epoch)
		binary.LittleEndian.PutUint64(dst[24:], e.ringSeq)
		binary.LittleEndian.PutUint32(dst[offIdxEntryCRC:], crc32.Checksum(dst[:offIdxEntryCRC], castagnoli))
		binary.LittleEndian.PutUint32(dst[offIdxEntryCRC+4:], 0)
	}
}

// indexFile is a decoded index.
type indexFile struct {
	version uint16
	sealed  bool
	ents    []idxEntry
}

// decodeIndex decodes the index file b of segment segIndex, whose segment
// has format version segVer. A trailing partial entry (a torn append) is
// ignored, and so is a last entry whose CRC does not match (version 2: a
// torn append too); any other entry with a bad CRC is ErrCorrupt. The
// entries must have strictly increasing seqs and offsets, 8-aligned
// offsets past the segment header.
func decodeIndex(b []byte, segIndex uint64, segVer uint16) (indexFile, error) {
	n := uint64(len(b))
	if n < idxHeaderSize {
		return indexFile{}, truncatedf("index header: %d bytes, need %d", n, idxHeaderSize)
	}
	if string(b[:len(idxMagic)]) != idxMagic {
		return indexFile{}, corruptf("index header: bad magic %q", b[:len(idxMagic)])
	}
	if crc, want := crc32.Checksum(b[:offIdxCRC], castagnoli), binary.LittleEndian.Uint32(b[offIdxCRC:]); crc != want {
		return indexFile{}, corruptf("index header: CRC32C %#08x, stored %#08x", crc, want)
	}
	v := binary.LittleEndian.Uint16(b[offIdxVersion:])
	if v < MinFormatVersion || v > FormatVersion {
		return indexFile{}, versionf("index header: version %d", v)
	}
	if v != segVer {
		return indexFile{}, corruptf("index header: version %d for a version %d segment", v, segVer)
	}
	es := idxEntrySizeFor(v)
	if hs, got := binary.LittleEndian.Uint16(b[offIdxHdrSize:]), binary.LittleEndian.Uint16(b[offIdxEntrySize:]); hs != idxHeaderSize || int(got) != es {
		return indexFile{}, versionf("index header: header size %d, entry size %d", hs, got)
	}
	flags := binary.LittleEndian.Uint16(b[offIdxFlags:])
	if binary.LittleEndian.Uint32(b[offIdxReserved2:]) != 0 || (v < 2 && flags != 0) {
		return indexFile{}, corruptf("index header: reserved bytes not zero")
	}
	if flags&^idxKnownFlags != 0 {
		return indexFile{}, versionf("index header: unknown flags %#04x", flags)
	}
	if s := binary.LittleEndian.Uint64(b[offIdxSegment:]); s != segIndex {
		return indexFile{}, corruptf("index header: segment %d, expected %d", s, segIndex)
	}
	count := (n - idxHeaderSize) / uint64(es)
	minHdr := minRecHeader(v)
	ents := make([]idxEntry, 0, count)
	for i := uint64(0); i < count; i++ {
		p := b[idxHeaderSize+i*uint64(es):]
		e := idxEntry{seq: binary.LittleEndian.Uint64(p), off: binary.LittleEndian.Uint64(p[8:])}
		if v >= 2 {
			e.epoch, e.ringSeq = binary.LittleEndian.Uint64(p[16:]), binary.LittleEndian.Uint64(p[24:])
			if crc32.Checksum(p[:offIdxEntryCRC], castagnoli) != binary.LittleEndian.Uint32(p[offIdxEntryCRC:]) {
				if i == count-1 {
					break // a torn last entry
				}
				return indexFile{}, corruptf("index entry %d: CRC32C mismatch", i)
			}
			if binary.LittleEndian.Uint32(p[offIdxEntryCRC+4:]) != 0 {
				return indexFile{}, corruptf("index entry %d: reserved bytes not zero", i)
			}
		}
		if e.off < segHeaderSize || e.off%recAlign != 0 {
			return indexFile{}, corruptf("index entry %d: offset %d", i, e.off)
		}
		if len(ents) > 0 {
			prev := ents[len(ents)-1]
			if e.seq <= prev.seq || e.off < prev.off+minHdr {
				return indexFile{}, corruptf("index entry %d: seq %d at %d after seq %d at %d", i, e.seq, e.off, prev.seq, prev.off)
			}
		}
		ents = append(ents, e)
	}
	return indexFile{version: v, sealed: flags&idxSealed != 0, ents: ents}, nil
}

// entryOf is the index entry of the record h at off.
func entryOf(off uint64, h *recHeader) idxEntry {
	return idxEntry{seq: h.seq, off: off, epoch: h.epoch, ringSeq: h.ringSeq}
}

// searchEntries returns the position of the first entry with seq >= target.
func searchEntries(ents []idxEntry, target uint64) int {
	lo, hi := 0, len(ents)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ents[m].seq < target {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}
