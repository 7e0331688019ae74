package archive

// Crash recovery of the last segment, run by Open before anything else
// touches the archive.
//
// Invariants:
//   - Recovery removes only a torn tail: the bytes from the first invalid
//     record to the end of the file, when no valid record follows them. A
//     valid record after damage proves the damage is not a torn append, so
//     it is kept for Verify to report and appending continues after the last
//     valid record.
//   - A segment header that does not decode is rewritten only if the file
//     holds no valid record at all (a crash while a segment was being
//     created); otherwise Open refuses to guess and returns ErrCorrupt. A
//     header of an unknown version is never touched.
//   - The read-only mapping used to scan is closed before the file is
//     truncated (shm.FileMapping: a mapped file must not shrink).
//   - After recovery the segment is fsynced, so every record that survived
//     is durable before the first new one is written.
//   - Records the index lists (durable ones: the writer lists only those)
//     that the segment no longer holds are not a torn tail but a loss: their
//     seqs are never reused (the next seq is past them, so the hole stays
//     visible to Verify), and the manifest records the range, with the
//     identity the index gave, before the index is rewritten.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/framering/framering/shm"
)

// Recovery is what Open found in the last segment and what it did about it.
type Recovery struct {
	Segment       uint64   // index of the open segment after recovery
	Created       bool     // the directory held no segment; Open created the first
	Reinitialized bool     // the last segment's header was torn and it held no record; it was rewritten (CutOffset 0)
	Records       uint64   // valid records found in the last segment
	NextSeq       uint64   // sequence number of the next record
	CutOffset     int64    // offset the torn tail was cut at, -1 if nothing was cut
	CutBytes      int64    // bytes cut
	CutReason     error    // why the first byte cut was refused, nil if nothing was cut
	Corrupt       []Region // damaged regions before the tail, kept
	IndexRebuilt  bool     // the segment's index did not match its records and was rewritten
	// Lost lists records the index listed (so they had been fsynced) that
	// the segment no longer holds: damage, kept visible as a hole in the
	// record seqs and in the manifest.
	Lost []LostRange
}

func (w *Writer) recoverLast(segs []uint64) error {
	w.recovery.CutOffset = -1
	last := segs[len(segs)-1]
	path := filepath.Join(w.dir, segName(last))
	ipath := filepath.Join(w.dir, idxName(last))
	m, err := shm.OpenFile(path)
	if err != nil {
		return fmt.Errorf("recover segment: %w", err)
	}
	data := m.Bytes()
	hdr, herr := decodeSegHeader(data)
	if herr != nil {
		if errors.Is(herr, ErrVersion) {
			m.Close()
			return fmt.Errorf("recover segment %s: %w", segName(last), herr)
		}
		if p := resyncAny(data, recAlign); p < uint64(len(data)) {
			m.Close()
			return fmt.Errorf("recover segment %s: %w: header damaged (%v) but a valid record follows at %d; refusing to rewrite it", segName(last), ErrCorrupt, herr, p)
		}
		tornSize := len(data)
		m.Close()
		firstSeq := uint64(0)
		if len(segs) > 1 {
			firstSeq, err = nextSeqAfter(filepath.Join(w.dir, segName(segs[len(segs)-2])))
			if err != nil {
				return fmt.Errorf("recover segment %s: header torn (%v), previous segment unreadable: %w", segName(last), herr, err)
			}
		}
		w.log.Warn("segment header torn by a crash during creation; rewriting it", "segment", last, "first_seq", firstSeq, "reason", herr)
		if err := reinitSegment(path, last, firstSeq); err != nil {
			return fmt.Errorf("recover segment %s: %w", segName(last), err)
		}
		w.recovery.Reinitialized = true
		w.recovery.CutOffset, w.recovery.CutBytes, w.recovery.CutReason = 0, int64(tornSize), herr
		if m, err = shm.OpenFile(path); err != nil {
			return fmt.Errorf("recover segment: %w", err)
		}
		data = m.Bytes()
		if hdr, err = decodeSegHeader(data); err != nil {
			m.Close()
			return fmt.Errorf("recover segment %s: %w", segName(last), err)
		}
	}
	if hdr.index != last {
		m.Close()
		return fmt.Errorf("recover segment %s: %w: header says segment %d", segName(last), ErrCorrupt, hdr.index)
	}

	start := recordStart(hdr)
	var ents []idxEntry
	var spans []badSpan
	nextSeq := hdr.firstSeq
	scanRecords(data, start, hdr.version, func(off uint64, h *recHeader) {
		ents = append(ents, entryOf(off, h))
		if h.seq >= nextSeq {
			nextSeq = h.seq + 1
		}
	}, func(b badSpan) { spans = append(spans, b) })
	size := uint64(len(data))
	end := size
	var tail *badSpan
	if n := len(spans); n > 0 && spans[n-1].end == size {
		tail = &spans[n-1]
		end = tail.off
		spans = spans[:n-1]
	}
	m.Close() // before any truncation

	for _, b := range spans {
		r := Region{Segment: last, Offset: int64(b.off), Length: int64(b.end - b.off), Err: b.err}
		w.recovery.Corrupt = append(w.recovery.Corrupt, r)
		w.log.Error("damaged region inside the last segment kept for inspection", "segment", last, "offset", b.off, "length", b.end-b.off, "err", b.err)
	}

	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("recover segment: %w", err)
	}
	if tail != nil {
		if err := f.Truncate(int64(end)); err != nil {
			f.Close()
			return fmt.Errorf("cut torn tail of segment %s at %d: %w", segName(last), end, err)
		}
		w.recovery.CutOffset = int64(end)
		w.recovery.CutBytes = int64(size - end)
		w.recovery.CutReason = tail.err
		w.log.Warn("cut torn tail", "segment", last, "offset", end, "bytes", size-end, "reason", tail.err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync recovered segment %s: %w", segName(last), err)
	}
	w.seg, w.segIndex, w.segVer = f, last, hdr.version
	w.off, w.recStart = end, start
	w.nextSeq = nextSeq
	w.recovery.Records = uint64(len(ents))

	old, rerr := os.ReadFile(ipath)
	var have []idxEntry
	if rerr == nil {
		var ix indexFile
		ix, rerr = decodeIndex(old, last, hdr.version)
		have = ix.ents
	}
	if lost := listedButGone(have, ents); len(lost) > 0 {
		now := nowNano()
		for i := range lost {
			lost[i].FoundUnixNs = now
			w.nextSeq = max(w.nextSeq, lost[i].To+1)
			w.log.Error("records the index lists as durable are gone from the segment: damage, not a torn tail; their seqs stay unused",
				"segment", last, "from", lost[i].From, "to", lost[i].To, "epoch", lost[i].Epoch, "first_ring_seq", lost[i].FirstSeq, "last_ring_seq", lost[i].LastSeq)
		}
		w.recovery.Lost = lost
		w.manifest.Lost = append(w.manifest.Lost, lost...)
		if err := writeManifest(w.dir, w.manifest); err != nil {
			return fmt.Errorf("recover segment %s: record lost records: %w", segName(last), err)
		}
	}
	if rerr != nil || !slices.Equal(have, ents) {
		w.recovery.IndexRebuilt = true
		w.log.Info("rebuilding index of the last segment", "segment", last, "entries", len(ents), "had", len(have), "reason", rerr)
		if err := writeIndexFile(ipath, last, hdr.version, 0, ents, false); err != nil {
			w.idxBroken = true
			w.log.Warn("cannot rewrite index; it will be rebuilt at Close or the next Open", "segment", last, "err", err)
			return nil
		}
	}
	idx, err := os.OpenFile(ipath, os.O_RDWR, 0)
	if err != nil {
		w.idxBroken = true
		w.log.Warn("cannot open index; it will be rebuilt at Close or the next Open", "segment", last, "err", err)
		return nil
	}
	w.idx = idx
	w.idxOff = idxHeaderSize + uint64(len(ents))*uint64(idxEntrySizeFor(hdr.version))
	return nil
}

// nextSeqAfter returns the sequence number that follows the last valid
// record of a (sealed) segment.
func nextSeqAfter(path string) (uint64, error) {
	m, err := shm.OpenFile(path)
	if err != nil {
		return 0, err
	}
	defer m.Close()
	data := m.Bytes()
	h, err := decodeSegHeader(data)
	if err != nil {
		return 0, fmt.Errorf("read segment %s: %w", filepath.Base(path), err)
	}
	next := h.firstSeq
	scanRecords(data, recordStart(h), h.version, func(_ uint64, rh *recHeader) {
		if rh.seq >= next {
			next = rh.seq + 1
		}
	}, nil)
	return next, nil
}

// reinitSegment rewrites a segment that holds no record with a fresh header.
func reinitSegment(path string, index, firstSeq uint64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("reinitialize segment: %w", err)
	}
	var hdr [segHeaderSize]byte
	encodeSegHeader(hdr[:], index, nowNano(), firstSeq)
	_, err = f.WriteAt(hdr[:], 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("reinitialize segment %s: %w", filepath.Base(path), err)
	}
	return nil
}

// listedButGone returns, as ranges of consecutive listed entries, the
// entries of listed (an index) whose record seq no valid record in valid
// has. Both are in seq order.
func listedButGone(listed, valid []idxEntry) []LostRange {
	var out []LostRange
	var cur *LostRange
	j := 0
	for i, e := range listed {
		for j < len(valid) && valid[j].seq < e.seq {
			j++
		}
		if j < len(valid) && valid[j].seq == e.seq {
			cur = nil
			continue
		}
		if cur == nil || listed[i-1].seq != cur.To {
			out = append(out, LostRange{From: e.seq, To: e.seq})
			cur = &out[len(out)-1]
		}
		cur.To = e.seq
		addIdentity(cur, e)
	}
	return out
}

// addIdentity widens the ring identity of l by entry e: one epoch, the
// range of ring seqs; several epochs leave it unsaid (0).
func addIdentity(l *LostRange, e idxEntry) {
	if e.epoch == 0 || e.ringSeq == 0 || l.mixed {
		return
	}
	switch {
	case l.Epoch == 0:
		l.Epoch, l.FirstSeq, l.LastSeq = Epoch(e.epoch), e.ringSeq, e.ringSeq
	case l.Epoch == Epoch(e.epoch):
		l.FirstSeq, l.LastSeq = min(l.FirstSeq, e.ringSeq), max(l.LastSeq, e.ringSeq)
	default:
		l.Epoch, l.FirstSeq, l.LastSeq, l.mixed = 0, 0, 0, true
	}
}
