package archive

// Walking the records of a segment held in memory (a read-only mapping).
//
// Invariant: scanRecords reports every byte of data[start:] exactly once,
// either inside a record that passed parseRecord or inside a bad span, in
// increasing offset order. A bad span ends where the next record that passes
// parseRecord begins (a resynchronisation on the record magic at an 8-byte
// aligned offset), or at the end of data; a bad span that reaches the end of
// data is the segment's tail.

// badSpan is a region of a segment that holds no valid record.
type badSpan struct {
	off, end uint64
	err      error // why the record at off was refused
}

// scanRecords walks data[start:], a segment of format version ver; it calls
// rec for each valid record and bad for each bad span. Either callback may
// be nil.
func scanRecords(data []byte, start uint64, ver uint16, rec func(off uint64, h *recHeader), bad func(badSpan)) {
	n := uint64(len(data))
	off := start
	for off < n {
		h, err := parseRecord(data, off, ver)
		if err == nil {
			if rec != nil {
				rec(off, &h)
			}
			off += h.size()
			continue
		}
		next := resync(data, off+recAlign, ver)
		if bad != nil {
			bad(badSpan{off: off, end: next, err: err})
		}
		off = next
	}
}

// resync returns the first offset >= from, 8-aligned, holding a valid
// record of a version ver segment, or len(data).
//
// Cost: a candidate is any aligned occurrence of the record magic; each is
// checked with parseRecord, whose CRC pass reads the candidate's payload. A
// hostile file full of magic numbers can make this quadratic in the file
// size; it cannot make it read out of bounds.
func resync(data []byte, from uint64, ver uint16) uint64 {
	n := uint64(len(data))
	p := align8(from)
	for p < n {
		p = findMagic(data, p)
		if p >= n {
			return n
		}
		if _, err := parseRecord(data, p, ver); err == nil {
			return p
		}
		p += recAlign
	}
	return n
}

// resyncAny is resync for a segment whose header (so version) is unknown:
// the first offset holding a record valid in any version this package reads.
func resyncAny(data []byte, from uint64) uint64 {
	p := uint64(len(data))
	for v := uint16(MinFormatVersion); v <= FormatVersion; v++ {
		p = min(p, resync(data, from, v))
	}
	return p
}

// recordStart returns where records begin in a segment with header h.
func recordStart(h segHeader) uint64 { return uint64(h.hdrSize) }
