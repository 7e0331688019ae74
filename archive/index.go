package archive

// The per-segment index (NNNNNNNN.fridx): derived data, never trusted.
//
// Invariants:
//   - An index is a cache of (seq, offset) pairs for one segment. Nothing is
//     lost if it is missing, short or wrong: the writer rebuilds it from the
//     segment at Open, and the reader rebuilds it in memory when it does not
//     hold up.
//   - decodeIndex checks structure only (header, entry alignment, strictly
//     increasing seqs and offsets); an entry is used only after the record
//     it points to has passed parseRecord and carries the entry's seq.
//
// Layout (little-endian):
//
//	 0 magic "FRARCIDX"      8 version (u16)      10 header size (u16, 32)
//	12 entry size (u16, 16)  14 reserved (u16, 0) 16 segment index (u64)
//	24 reserved (u32, 0)     28 CRC32C of [0,28) (u32)
//	32 entries: seq (u64), offset of the record in the segment (u64)

import (
	"encoding/binary"
	"hash/crc32"
)

const (
	idxMagic        = "FRARCIDX"
	idxHeaderSize   = 32
	idxEntrySize    = 16
	offIdxVersion   = 8
	offIdxHdrSize   = 10
	offIdxEntrySize = 12
	offIdxReserved1 = 14
	offIdxSegment   = 16
	offIdxReserved2 = 24
	offIdxCRC       = 28
)

var (
	_ = [1]struct{}{}[idxHeaderSize-(offIdxCRC+4)]
	_ = [1]struct{}{}[len(idxMagic)-offIdxVersion]
)

// idxEntry is one index entry: the record with sequence seq is at off.
type idxEntry struct {
	seq, off uint64
}

func encodeIndexHeader(dst []byte, segIndex uint64) {
	b := dst[:idxHeaderSize]
	clear(b)
	copy(b, idxMagic)
	binary.LittleEndian.PutUint16(b[offIdxVersion:], FormatVersion)
	binary.LittleEndian.PutUint16(b[offIdxHdrSize:], idxHeaderSize)
	binary.LittleEndian.PutUint16(b[offIdxEntrySize:], idxEntrySize)
	binary.LittleEndian.PutUint64(b[offIdxSegment:], segIndex)
	binary.LittleEndian.PutUint32(b[offIdxCRC:], crc32.Checksum(b[:offIdxCRC], castagnoli))
}

func encodeIndexEntry(dst []byte, e idxEntry) {
	binary.LittleEndian.PutUint64(dst[0:], e.seq)
	binary.LittleEndian.PutUint64(dst[8:], e.off)
}

// decodeIndex decodes the index file b of segment segIndex. A trailing
// partial entry (a torn append) is ignored. The entries must have strictly
// increasing seqs and offsets, 8-aligned offsets past the segment header.
func decodeIndex(b []byte, segIndex uint64) ([]idxEntry, error) {
	n := uint64(len(b))
	if n < idxHeaderSize {
		return nil, truncatedf("index header: %d bytes, need %d", n, idxHeaderSize)
	}
	if string(b[:len(idxMagic)]) != idxMagic {
		return nil, corruptf("index header: bad magic %q", b[:len(idxMagic)])
	}
	if crc, want := crc32.Checksum(b[:offIdxCRC], castagnoli), binary.LittleEndian.Uint32(b[offIdxCRC:]); crc != want {
		return nil, corruptf("index header: CRC32C %#08x, stored %#08x", crc, want)
	}
	if v := binary.LittleEndian.Uint16(b[offIdxVersion:]); v != FormatVersion {
		return nil, versionf("index header: version %d", v)
	}
	if hs, es := binary.LittleEndian.Uint16(b[offIdxHdrSize:]), binary.LittleEndian.Uint16(b[offIdxEntrySize:]); hs != idxHeaderSize || es != idxEntrySize {
		return nil, versionf("index header: header size %d, entry size %d", hs, es)
	}
	if binary.LittleEndian.Uint16(b[offIdxReserved1:]) != 0 || binary.LittleEndian.Uint32(b[offIdxReserved2:]) != 0 {
		return nil, corruptf("index header: reserved bytes not zero")
	}
	if s := binary.LittleEndian.Uint64(b[offIdxSegment:]); s != segIndex {
		return nil, corruptf("index header: segment %d, expected %d", s, segIndex)
	}
	count := (n - idxHeaderSize) / idxEntrySize
	ents := make([]idxEntry, 0, count)
	for i := uint64(0); i < count; i++ {
		p := b[idxHeaderSize+i*idxEntrySize:]
		e := idxEntry{seq: binary.LittleEndian.Uint64(p), off: binary.LittleEndian.Uint64(p[8:])}
		if e.off < segHeaderSize || e.off%recAlign != 0 {
			return nil, corruptf("index entry %d: offset %d", i, e.off)
		}
		if len(ents) > 0 {
			prev := ents[len(ents)-1]
			if e.seq <= prev.seq || e.off < prev.off+recHeaderSize {
				return nil, corruptf("index entry %d: seq %d at %d after seq %d at %d", i, e.seq, e.off, prev.seq, prev.off)
			}
		}
		ents = append(ents, e)
	}
	return ents, nil
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
