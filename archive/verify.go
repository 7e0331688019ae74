package archive

// Verify: a full read of an archive that checks every record and reports,
// rather than stops at, what it finds.
//
// Invariant: Verify reads through the same parseRecord and decodePayload as
// the Reader, so a record Verify counts as valid is one a Reader returns.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/framering/framering/shm"
)

// Region is a damaged span of a segment file.
type Region struct {
	Segment uint64
	Offset  int64
	Length  int64
	Err     error // what was wrong with the first record of the span
}

// SeqRange is an inclusive range of sequence numbers.
type SeqRange struct{ From, To uint64 }

// GapInfo is a gap record found by Verify.
type GapInfo struct {
	Seq       uint64
	Timestamp int64 // when the loss was recorded, Unix ns
	Gap       Gap
}

// SegmentReport is what Verify found in one segment.
type SegmentReport struct {
	Index    uint64
	Path     string
	Size     int64
	FirstSeq uint64 // from the header
	Records  uint64 // valid records
	LastSeq  uint64 // seq of the last valid record, if Records > 0
	Err      error  // header refused: the segment's records were not read
	IndexErr error  // the index is missing, damaged, short or inconsistent (derived data: not a loss)
}

// Report is the result of Verify.
type Report struct {
	Segments   []SegmentReport
	Records    uint64 // valid records
	Frames     uint64
	GapRecords uint64
	FramesLost uint64 // sum of Count over the gap records
	RawBytes   uint64 // frame bytes, uncompressed
	FirstSeq   uint64 // valid when Records > 0
	LastSeq    uint64 // valid when Records > 0
	Gaps       []GapInfo
	// Corrupt lists damaged regions: bad CRC, bad fields, undecodable
	// payloads, records out of sequence order, and the tail of any segment
	// but the last.
	Corrupt []Region
	// TornTail is a damaged region at the end of the last segment, or a
	// last segment whose header is damaged and which holds no record: what a
	// crash leaves and the next Open cuts or rewrites. It is not counted as
	// corruption.
	TornTail *Region
	// Missing lists sequence numbers for which no valid record exists
	// between FirstSeq and LastSeq.
	Missing []SeqRange
}

// OK reports whether every record between FirstSeq and LastSeq is present
// and valid and every segment header is good. A torn tail and index problems
// do not count.
func (rep *Report) OK() bool {
	if len(rep.Corrupt) > 0 || len(rep.Missing) > 0 {
		return false
	}
	for _, s := range rep.Segments {
		if s.Err != nil {
			return false
		}
	}
	return true
}

// Verify checks every record of the archive in dir: header and record CRCs,
// field sanity, payload decompression, sequence order and continuity, and
// each segment's index against its records. Damage goes into the report;
// the error is for an archive that cannot be read at all.
func Verify(dir string) (*Report, error) {
	segs, err := listSegments(dir)
	if err != nil {
		return nil, fmt.Errorf("verify archive: %w", err)
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("verify archive %s: %w: no segments", dir, ErrNotFound)
	}
	rep := &Report{}
	var dec decompressor
	defer dec.close()
	have := false
	var prev uint64
	for i, idx := range segs {
		last := i == len(segs)-1
		sr, err := verifySegment(dir, idx, last, rep, &dec, &have, &prev)
		if err != nil {
			return nil, fmt.Errorf("verify archive %s: %w", dir, err)
		}
		rep.Segments = append(rep.Segments, sr)
	}
	return rep, nil
}

func verifySegment(dir string, idx uint64, last bool, rep *Report, dec *decompressor, have *bool, prev *uint64) (SegmentReport, error) {
	path := filepath.Join(dir, segName(idx))
	sr := SegmentReport{Index: idx, Path: path}
	m, err := shm.OpenFile(path)
	if err != nil {
		return sr, err
	}
	defer m.Close()
	data := m.Bytes()
	sr.Size = int64(len(data))
	h, err := decodeSegHeader(data)
	if err == nil && h.index != idx {
		err = corruptf("header says segment %d", h.index)
	}
	if err != nil {
		if last && !errors.Is(err, ErrVersion) && resyncAny(data, recAlign) == uint64(len(data)) {
			// A crash while the segment was being created: no record was
			// ever written to it. Open rewrites its header.
			rep.TornTail = &Region{Segment: idx, Offset: 0, Length: int64(len(data)), Err: err}
			return sr, nil
		}
		sr.Err = fmt.Errorf("segment %s: %w", segName(idx), err)
		return sr, nil
	}
	sr.FirstSeq = h.firstSeq
	var ents []idxEntry
	var spans []badSpan
	scanRecords(data, recordStart(h), h.version, func(off uint64, rh *recHeader) {
		ents = append(ents, entryOf(off, rh))
		size := rh.size()
		region := func(err error) {
			rep.Corrupt = append(rep.Corrupt, Region{Segment: idx, Offset: int64(off), Length: int64(size), Err: err})
		}
		if *have && rh.seq <= *prev {
			region(corruptf("record at %d: seq %d after seq %d", off, rh.seq, *prev))
			return
		}
		p := off + uint64(rh.hdrLen)
		stored := data[p : p+rh.stored]
		switch rh.kind {
		case KindFrame:
			if _, err := dec.decodePayload(rh.codec(), stored, rh.raw); err != nil {
				region(wrapAt(off, err))
				return
			}
			rep.Frames++
			rep.RawBytes += rh.raw
		case KindGap:
			g, err := decodeGap(stored, h.version)
			if err != nil {
				region(wrapAt(off, err))
				return
			}
			g.Epoch = rh.epoch
			rep.GapRecords++
			rep.FramesLost += g.Count
			rep.Gaps = append(rep.Gaps, GapInfo{Seq: rh.seq, Timestamp: rh.timestamp, Gap: g})
		}
		if !*have {
			rep.FirstSeq = rh.seq
		} else if rh.seq != *prev+1 {
			rep.Missing = append(rep.Missing, SeqRange{From: *prev + 1, To: rh.seq - 1})
		}
		*have, *prev = true, rh.seq
		rep.LastSeq = rh.seq
		rep.Records++
		sr.Records++
		sr.LastSeq = rh.seq
	}, func(b badSpan) { spans = append(spans, b) })
	for i, b := range spans {
		r := Region{Segment: idx, Offset: int64(b.off), Length: int64(b.end - b.off), Err: b.err}
		if last && i == len(spans)-1 && b.end == uint64(len(data)) {
			rep.TornTail = &r
			continue
		}
		rep.Corrupt = append(rep.Corrupt, r)
	}
	slices.SortFunc(rep.Corrupt, func(a, b Region) int {
		if a.Segment != b.Segment {
			return cmpU64(a.Segment, b.Segment)
		}
		return cmpU64(uint64(a.Offset), uint64(b.Offset))
	})
	sr.IndexErr = checkIndex(filepath.Join(dir, idxName(idx)), idx, h.version, ents)
	return sr, nil
}

// checkIndex compares an index file with the records a scan found.
func checkIndex(path string, idx uint64, ver uint16, ents []idxEntry) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read index: %w", err)
	}
	ix, err := decodeIndex(b, idx, ver)
	if err != nil {
		return fmt.Errorf("decode index %s: %w", filepath.Base(path), err)
	}
	have := ix.ents
	for i, e := range have {
		if i >= len(ents) || e != ents[i] {
			return fmt.Errorf("check index %s: %w: entry %d (seq %d at %d) matches no record", filepath.Base(path), ErrCorrupt, i, e.seq, e.off)
		}
	}
	if len(have) < len(ents) {
		return fmt.Errorf("check index %s: short: %d of %d entries", filepath.Base(path), len(have), len(ents))
	}
	return nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
