package archive

// Verify: a full read of an archive that checks every record, cross-checks
// the indexes and the manifest against the data, and reports, rather than
// stops at, what it finds.
//
// Invariants:
//   - Verify reads through the same parseRecord and decodePayload as the
//     Reader, so a record Verify counts as valid is one a Reader returns.
//   - The archive must hold every record seq from the manifest's low-water
//     mark (FirstRecord) to the last one any record or index names. A seq in
//     that range with no valid record is missing: damage. Records below the
//     mark were deleted on purpose (retention) and are not missing.
//   - An index lists only records that were fsynced (the writer writes an
//     entry after the fsync that covers its record). So a listed record the
//     data no longer holds was lost after it was written: missing, never a
//     torn tail. A torn tail is only a damaged span at the end of the last
//     segment that no index entry reaches into: what a crash during an
//     append leaves.
//   - Each segment's index is read before the segment is mapped: on a live
//     archive the index can then only list records the mapping holds.

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
type SeqRange struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// MissingRange is a range of record seqs the archive should hold and does
// not, with what is known of the frames they held.
type MissingRange struct {
	From uint64 `json:"from"` // record seqs, inclusive
	To   uint64 `json:"to"`
	// Listed is how many of them an index listed (durable records that were
	// lost afterwards); Epoch and FirstSeq..LastSeq are the ring identity of
	// the frames among them, where an index or the manifest named one
	// epoch (0 otherwise).
	Listed   uint64 `json:"listed"`
	Epoch    Epoch  `json:"epoch,omitempty"`
	FirstSeq uint64 `json:"first_seq,omitempty"`
	LastSeq  uint64 `json:"last_seq,omitempty"`
	mixed    bool
}

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
	Version  uint16 // format version, from the header
	FirstSeq uint64 // from the header
	Records  uint64 // valid records
	LastSeq  uint64 // seq of the last valid record, if Records > 0
	Sealed   bool   // the index says the segment was sealed (complete)
	Err      error  // header refused: the segment's records were not read
	IndexErr error  // the index is missing, damaged, short or inconsistent (derived data: not a loss)
}

// Report is the result of Verify.
type Report struct {
	// Manifest is the archive's manifest, nil if it has none (an archive
	// older than manifests: then nothing can be said about segments
	// removed before the first one); ManifestErr says why it could not be
	// read, which is damage.
	Manifest    *Manifest
	ManifestErr error
	// LowWater is the first record seq the archive holds (the manifest's
	// FirstRecord, else the first segment's first seq).
	LowWater uint64
	// Retired lists segments below the manifest's low-water mark still on
	// disk: a deletion that a crash interrupted, finished by the next
	// writer. Not damage, not read.
	Retired    []uint64
	Segments   []SegmentReport
	Records    uint64 // valid records
	Frames     uint64
	GapRecords uint64
	FramesLost uint64 // sum of Count over the gap records
	RawBytes   uint64 // frame bytes, uncompressed
	FirstSeq   uint64 // valid when Records > 0
	LastSeq    uint64 // valid when Records > 0
	// Epochs are the producer runs whose frames the archive holds, with
	// their ring seqs (version 2 records).
	Epochs []EpochInfo
	Gaps   []GapInfo
	// Corrupt lists damaged regions: bad CRC, bad fields, undecodable
	// payloads, records out of sequence order, the tail of any segment
	// but the last, and a damaged tail of the last one that an index
	// reaches into.
	Corrupt []Region
	// TornTail is a damaged region at the end of the last segment that no
	// index entry reaches into, or a last segment whose header is damaged
	// and which holds no record: what a crash leaves and the next Open cuts
	// or rewrites. It is not counted as corruption.
	TornTail *Region
	// Missing lists the record seqs from LowWater to the last one known
	// for which no valid record exists.
	Missing []MissingRange
}

// OK reports whether every record from the low-water mark to the last is
// present and valid, every segment header is good and the manifest reads.
// A torn tail, index problems and retired segments do not count.
func (rep *Report) OK() bool {
	if len(rep.Corrupt) > 0 || len(rep.Missing) > 0 || rep.ManifestErr != nil {
		return false
	}
	for _, s := range rep.Segments {
		if s.Err != nil {
			return false
		}
	}
	return true
}

// MissingRecords is the number of record seqs in Missing.
func (rep *Report) MissingRecords() uint64 {
	var n uint64
	for _, m := range rep.Missing {
		n += m.To - m.From + 1
	}
	return n
}

// verifier is the state of one Verify.
type verifier struct {
	dir     string
	rep     *Report
	dec     decompressor
	have    bool   // a valid record was seen
	prev    uint64 // seq of the last valid record
	present []SeqRange
	listed  map[uint64]idxEntry // index entries whose records are gone
	maxSeq  uint64              // the largest seq a record or an index names
	anySeq  bool
}

// Verify checks every record of the archive in dir: header and record CRCs,
// field sanity, payload decompression, sequence order and continuity from
// the manifest's low-water mark, and each segment's index against its
// records. Damage goes into the report; the error is for an archive that
// cannot be read at all.
func Verify(dir string) (*Report, error) {
	segs, err := listSegments(dir)
	if err != nil {
		return nil, fmt.Errorf("verify archive: %w", err)
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("verify archive %s: %w: no segments", dir, ErrNotFound)
	}
	v := &verifier{dir: dir, rep: &Report{}, listed: map[uint64]idxEntry{}}
	defer v.dec.close()
	all := dropSpare(dir, segs)
	// Pin first, then read the manifest: retention cannot move the
	// low-water mark past a pinned segment, so the mark read now holds for
	// the whole check.
	pin, pinned, err := pinOldest(dir, all)
	if err != nil {
		return nil, fmt.Errorf("verify archive: %w", err)
	}
	if pin == nil {
		return nil, fmt.Errorf("verify archive %s: %w: no segments", dir, ErrNotFound)
	}
	defer func() { pin.Close() }() // retention deletes nothing from the segment being read on
	v.readManifest(all)
	segs = v.readManifest(pinned)
	v.rep.Retired = v.rep.Retired[:0:0]
	if m := v.rep.Manifest; m != nil {
		for _, s := range all {
			if s < m.FirstSegment {
				if _, err := os.Stat(filepath.Join(dir, segName(s))); err == nil {
					v.rep.Retired = append(v.rep.Retired, s)
				}
			}
		}
	}
	for i, idx := range segs {
		if i > 0 {
			// Walk the pin forward: retention may delete what was read.
			if next, err := lockSegment(filepath.Join(dir, segName(idx)), false); err == nil {
				pin.Close()
				pin = next
			}
		}
		sr, err := v.segment(idx, i == len(segs)-1)
		if errors.Is(err, os.ErrNotExist) && (i == 0 || i == len(segs)-1) {
			// A live archive: retention deleted the oldest segment, or the
			// writer removed its pre-created one, since the listing.
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("verify archive %s: %w", dir, err)
		}
		if sr.Size == 0 && i == len(segs)-1 {
			continue // a pre-created segment, made after the listing
		}
		v.rep.Segments = append(v.rep.Segments, sr)
	}
	v.lowWater(segs)
	v.missing()
	slices.SortFunc(v.rep.Corrupt, func(a, b Region) int {
		if a.Segment != b.Segment {
			return cmpU64(a.Segment, b.Segment)
		}
		return cmpU64(uint64(a.Offset), uint64(b.Offset))
	})
	return v.rep, nil
}

// readManifest reads the manifest and returns the segments it does not
// retire.
func (v *verifier) readManifest(segs []uint64) []uint64 {
	m, ok, err := ReadManifest(v.dir)
	if err != nil {
		v.rep.ManifestErr = err
		return segs
	}
	if !ok {
		return segs
	}
	v.rep.Manifest = &m
	kept := segs[:0:0]
	for _, s := range segs {
		if s < m.FirstSegment {
			v.rep.Retired = append(v.rep.Retired, s)
			continue
		}
		kept = append(kept, s)
	}
	return kept
}

// lowWater sets the first record seq the archive must hold.
func (v *verifier) lowWater(segs []uint64) {
	rep := v.rep
	switch {
	case rep.Manifest != nil:
		rep.LowWater = rep.Manifest.FirstRecord
	case len(rep.Segments) > 0 && rep.Segments[0].Err == nil && !(len(segs) == 1 && rep.TornTail != nil):
		rep.LowWater = rep.Segments[0].FirstSeq
	case len(v.present) > 0:
		rep.LowWater = v.present[0].From
	}
}

// segment verifies one segment.
func (v *verifier) segment(idx uint64, last bool) (SegmentReport, error) {
	path := filepath.Join(v.dir, segName(idx))
	sr := SegmentReport{Index: idx, Path: path}
	// The index first: on a live archive it then lists nothing the mapping
	// below does not hold.
	ib, ierr := os.ReadFile(filepath.Join(v.dir, idxName(idx)))
	m, err := shm.OpenFile(path)
	if err != nil {
		return sr, err
	}
	defer m.Close()
	data := m.Bytes()
	sr.Size = int64(len(data))
	if len(data) == 0 && last {
		return sr, nil // a pre-created segment (the caller skips it)
	}
	h, err := decodeSegHeader(data)
	if err == nil && h.index != idx {
		err = corruptf("header says segment %d", h.index)
	}
	if err != nil {
		if last && !errors.Is(err, ErrVersion) && resyncAny(data, recAlign) == uint64(len(data)) && !v.listsAny(ib, idx) {
			// A crash while the segment was being created: no record was
			// ever written to it. Open rewrites its header.
			v.rep.TornTail = &Region{Segment: idx, Offset: 0, Length: int64(len(data)), Err: err}
			return sr, nil
		}
		sr.Err = fmt.Errorf("segment %s: %w", segName(idx), err)
		v.listAll(ib, idx) // whatever its index listed is missing
		return sr, nil
	}
	sr.FirstSeq, sr.Version = h.firstSeq, h.version
	var ix indexFile
	if ierr == nil {
		ix, ierr = decodeIndex(ib, idx, h.version)
	}
	sr.Sealed = ix.sealed
	ents, spans := v.records(data, h, idx, &sr)
	sr.IndexErr = v.crossCheck(ix.ents, ierr, ents, idx)
	var reach uint64 // the end of the furthest record an index entry names
	for _, e := range ix.ents {
		reach = max(reach, e.off+1)
	}
	for i, b := range spans {
		r := Region{Segment: idx, Offset: int64(b.off), Length: int64(b.end - b.off), Err: b.err}
		if last && i == len(spans)-1 && b.end == uint64(len(data)) && reach <= b.off {
			v.rep.TornTail = &r
			continue
		}
		v.rep.Corrupt = append(v.rep.Corrupt, r)
	}
	return sr, nil
}

// records walks the records of a segment with header h, counts the valid
// ones into the report and returns their index entries and the bad spans.
func (v *verifier) records(data []byte, h segHeader, idx uint64, sr *SegmentReport) ([]idxEntry, []badSpan) {
	rep := v.rep
	var ents []idxEntry
	var spans []badSpan
	scanRecords(data, recordStart(h), h.version, func(off uint64, rh *recHeader) {
		ents = append(ents, entryOf(off, rh))
		size := rh.size()
		region := func(err error) {
			rep.Corrupt = append(rep.Corrupt, Region{Segment: idx, Offset: int64(off), Length: int64(size), Err: err})
		}
		if v.have && rh.seq <= v.prev {
			region(corruptf("record at %d: seq %d after seq %d", off, rh.seq, v.prev))
			return
		}
		p := off + uint64(rh.hdrLen)
		stored := data[p : p+rh.stored]
		switch rh.kind {
		case KindFrame:
			if _, err := v.dec.decodePayload(rh.codec(), stored, rh.raw); err != nil {
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
		if !v.have {
			rep.FirstSeq = rh.seq
		}
		v.have, v.prev = true, rh.seq
		v.addPresent(rh.seq)
		v.addEpoch(rh)
		rep.LastSeq = rh.seq
		rep.Records++
		sr.Records++
		sr.LastSeq = rh.seq
	}, func(b badSpan) { spans = append(spans, b) })
	return ents, spans
}

// crossCheck compares a segment's index (decoded, or its error) with the
// records a scan found. Entries whose record seq no valid record has are
// listed as gone; other disagreements are index problems (derived data).
func (v *verifier) crossCheck(have []idxEntry, ierr error, ents []idxEntry, idx uint64) error {
	for _, e := range listedButGoneEntries(have, ents) {
		v.listed[e.seq] = e
		v.note(e.seq)
	}
	if ierr != nil {
		return fmt.Errorf("index of segment %d: %w", idx, ierr)
	}
	valid := make(map[uint64]idxEntry, len(ents))
	for _, e := range ents {
		valid[e.seq] = e
	}
	for i, e := range have {
		if r, ok := valid[e.seq]; ok && r != e {
			return fmt.Errorf("check index %s: %w: entry %d (seq %d at %d) does not match its record", idxName(idx), ErrCorrupt, i, e.seq, e.off)
		}
	}
	if len(have) < len(ents) {
		return fmt.Errorf("check index %s: short: %d of %d entries (records not yet fsynced, or an index being rebuilt)", idxName(idx), len(have), len(ents))
	}
	return nil
}

// listedButGoneEntries returns the entries of listed whose seq no entry of
// valid has (both in seq order).
func listedButGoneEntries(listed, valid []idxEntry) []idxEntry {
	var out []idxEntry
	j := 0
	for _, e := range listed {
		for j < len(valid) && valid[j].seq < e.seq {
			j++
		}
		if j < len(valid) && valid[j].seq == e.seq {
			continue
		}
		out = append(out, e)
	}
	return out
}

// listsAny reports whether the index bytes ib of segment idx, in any
// version, list a record.
func (v *verifier) listsAny(ib []byte, idx uint64) bool {
	for ver := uint16(MinFormatVersion); ver <= FormatVersion; ver++ {
		if ix, err := decodeIndex(ib, idx, ver); err == nil && len(ix.ents) > 0 {
			return true
		}
	}
	return false
}

// listAll takes every entry of the index bytes ib of segment idx (a segment
// whose header was refused) as a listed record that is gone.
func (v *verifier) listAll(ib []byte, idx uint64) {
	for ver := uint16(MinFormatVersion); ver <= FormatVersion; ver++ {
		if ix, err := decodeIndex(ib, idx, ver); err == nil {
			for _, e := range ix.ents {
				v.listed[e.seq] = e
				v.note(e.seq)
			}
			return
		}
	}
}

// note records that seq exists or existed.
func (v *verifier) note(seq uint64) {
	if !v.anySeq || seq > v.maxSeq {
		v.maxSeq, v.anySeq = seq, true
	}
}

// addPresent records a valid record's seq (seqs arrive increasing).
func (v *verifier) addPresent(seq uint64) {
	v.note(seq)
	if n := len(v.present); n > 0 && v.present[n-1].To+1 == seq {
		v.present[n-1].To = seq
		return
	}
	v.present = append(v.present, SeqRange{From: seq, To: seq})
}

// addEpoch counts a valid record into its epoch's summary.
func (v *verifier) addEpoch(rh *recHeader) {
	if rh.epoch == 0 {
		return
	}
	eps := v.rep.Epochs
	i := slices.IndexFunc(eps, func(x EpochInfo) bool { return x.Epoch == rh.epoch })
	if i < 0 {
		v.rep.Epochs = append(eps, EpochInfo{Epoch: rh.epoch, FirstRecord: rh.seq})
		i = len(v.rep.Epochs) - 1
	}
	x := &v.rep.Epochs[i]
	x.Records++
	x.LastRecord = rh.seq
	if rh.ringSeq != 0 {
		if x.FirstSeq == 0 || rh.ringSeq < x.FirstSeq {
			x.FirstSeq = rh.ringSeq
		}
		x.LastSeq = max(x.LastSeq, rh.ringSeq)
	}
}

// missing computes the record seqs from the low-water mark to the largest
// known one that no valid record has, and what the indexes and the
// manifest say of them.
func (v *verifier) missing() {
	rep := v.rep
	if !v.anySeq {
		return
	}
	next := rep.LowWater
	add := func(from, to uint64) {
		if from > to {
			return
		}
		m := MissingRange{From: from, To: to}
		for s := from; s <= to && s-from < 1<<20; s++ {
			if e, ok := v.listed[s]; ok {
				m.Listed++
				widen(&m, Epoch(e.epoch), e.ringSeq, e.ringSeq)
			}
		}
		if rep.Manifest != nil {
			for _, l := range rep.Manifest.Lost {
				if l.From <= to && l.To >= from && l.Epoch != 0 {
					widen(&m, l.Epoch, l.FirstSeq, l.LastSeq)
				}
			}
		}
		rep.Missing = append(rep.Missing, m)
	}
	for _, p := range v.present {
		if p.To < next {
			continue
		}
		if p.From > next {
			add(next, p.From-1)
		}
		next = p.To + 1
	}
	if v.maxSeq >= next {
		add(next, v.maxSeq)
	}
}

// widen adds frames of epoch e with ring seqs first..last to m's identity;
// several epochs leave it unsaid.
func widen(m *MissingRange, e Epoch, first, last uint64) {
	if e == 0 || first == 0 || m.mixed {
		return
	}
	switch m.Epoch {
	case 0:
		m.Epoch, m.FirstSeq, m.LastSeq = e, first, last
	case e:
		m.FirstSeq, m.LastSeq = min(m.FirstSeq, first), max(m.LastSeq, last)
	default:
		m.Epoch, m.FirstSeq, m.LastSeq, m.mixed = 0, 0, 0, true
	}
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
