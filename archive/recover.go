package archive

// Crash recovery, run by Open before anything else touches the archive, in
// phases: drop the pre-created segment a crash left (dropEmptyTail); check
// the segment before the last if its seal may not have completed
// (recoverUnsealed); then recover the last segment: its header
// (recoverHeader), its records (scanSegment), its torn tail (cutTail), its
// index (reconcileIndex), and open it for appending.
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
//   - The only segments that can hold records no fsync covered are the last
//     and, if its seal did not complete, the one before (segments.go). If
//     that one lost records at its end, the last one's records were never
//     durable (they follow the loss) and it is removed.
//   - The read-only mapping used to scan is closed before the file is
//     truncated (shm.FileMapping: a mapped file must not shrink).
//   - After recovery every surviving record is fsynced before the first new
//     one is written.
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
	// PrevCutBytes is what was cut from the end of the segment before the
	// last, whose seal a crash interrupted; DroppedLast says the last
	// segment, which held nothing durable after that, was removed.
	PrevCutBytes int64
	DroppedLast  bool
}

// scanned is a segment as a scan found it.
type scanned struct {
	hdr     segHeader
	size    uint64
	ents    []idxEntry // valid records
	spans   []badSpan  // damaged spans before the tail
	tail    *badSpan   // a damaged span reaching the end of the file
	nextSeq uint64     // one past the largest valid seq, or the header's first seq
}

// dropEmptyTail removes empty segment files at the end of the archive: the
// next segment a writer pre-creates (segments.go) stays empty until the
// writer rotates into it.
func (w *Writer) dropEmptyTail(segs []uint64) ([]uint64, error) {
	removed := false
	for len(segs) > 0 {
		last := segs[len(segs)-1]
		st, err := os.Stat(filepath.Join(w.dir, segName(last)))
		if err != nil {
			return nil, fmt.Errorf("recover: %w", err)
		}
		if st.Size() != 0 {
			break
		}
		if err := removeSegment(w.dir, last); err != nil {
			return nil, fmt.Errorf("recover: %w", err)
		}
		w.log.Info("removed the empty pre-created segment", "segment", last)
		segs, removed = segs[:len(segs)-1], true
	}
	if removed {
		if err := syncDir(w.dir); err != nil {
			return nil, err
		}
	}
	return segs, nil
}

// scanSegment maps the segment at path, decodes its header and scans its
// records. The mapping is closed on return.
func scanSegment(path string) (scanned, error) {
	m, err := shm.OpenFile(path)
	if err != nil {
		return scanned{}, fmt.Errorf("recover segment: %w", err)
	}
	defer m.Close()
	data := m.Bytes()
	h, err := decodeSegHeader(data)
	if err != nil {
		return scanned{}, err
	}
	sc := scanned{hdr: h, size: uint64(len(data)), nextSeq: h.firstSeq}
	scanRecords(data, recordStart(h), h.version, func(off uint64, rh *recHeader) {
		sc.ents = append(sc.ents, entryOf(off, rh))
		sc.nextSeq = max(sc.nextSeq, rh.seq+1)
	}, func(b badSpan) { sc.spans = append(sc.spans, b) })
	if n := len(sc.spans); n > 0 && sc.spans[n-1].end == sc.size {
		sc.tail = &sc.spans[n-1]
		sc.spans = sc.spans[:n-1]
	}
	return sc, nil
}

// recoverUnsealed checks the segment before the last when its index does
// not say it was sealed: a crash may have interrupted its seal, so its end
// may hold records no fsync covered. It recovers it like a last segment
// and seals it; if it lost records at its end, or the last segment's header
// is torn, the last segment held nothing durable and is removed. It
// returns the segments left.
func (w *Writer) recoverUnsealed(segs []uint64) ([]uint64, error) {
	n := len(segs)
	if n < 2 {
		return segs, nil
	}
	prev, last := segs[n-2], segs[n-1]
	ppath := filepath.Join(w.dir, segName(prev))
	sc, err := scanSegment(ppath)
	if err != nil || indexSealed(w.dir, prev, sc.hdr.version) {
		return segs, nil // a damaged header is Verify's to report
	}
	cut := sc.tail != nil
	if err := w.cutTail(ppath, prev, &sc, false); err != nil {
		return nil, err
	}
	if err := w.reconcileIndex(prev, &sc, idxSealed); err != nil {
		return nil, err
	}
	if err := fsyncFile(ppath); err != nil {
		return nil, err
	}
	_, lerr := decodeSegHeaderFile(filepath.Join(w.dir, segName(last)))
	if !cut && lerr == nil {
		w.log.Info("sealed the segment before the last, whose seal a crash interrupted", "segment", prev)
		return segs, nil
	}
	if cut {
		w.recovery.PrevCutBytes = int64(sc.size) - int64(sc.tail.off)
	}
	w.log.Warn("the last segment followed records a crash lost before they were fsynced; it held nothing durable and is removed",
		"segment", last, "previous", prev, "previous_cut_bytes", w.recovery.PrevCutBytes, "header", lerr)
	if err := removeSegment(w.dir, last); err != nil {
		return nil, err
	}
	if err := syncDir(w.dir); err != nil {
		return nil, err
	}
	w.recovery.DroppedLast = true
	return segs[:n-1], nil
}

// recoverLast recovers the last segment and opens it for appending.
func (w *Writer) recoverLast(segs []uint64) error {
	w.recovery.CutOffset = -1
	last := segs[len(segs)-1]
	path := filepath.Join(w.dir, segName(last))
	sc, err := w.recoverHeader(segs, path)
	if err != nil {
		return err
	}
	if sc.hdr.index != last {
		return fmt.Errorf("recover segment %s: %w: header says segment %d", segName(last), ErrCorrupt, sc.hdr.index)
	}
	for _, b := range sc.spans {
		r := Region{Segment: last, Offset: int64(b.off), Length: int64(b.end - b.off), Err: b.err}
		w.recovery.Corrupt = append(w.recovery.Corrupt, r)
		w.log.Error("damaged region inside the last segment kept for inspection", "segment", last, "offset", b.off, "length", b.end-b.off, "err", b.err)
	}
	if err := w.cutTail(path, last, &sc, true); err != nil {
		return err
	}
	w.recovery.Records = uint64(len(sc.ents))
	if err := w.reconcileIndex(last, &sc, 0); err != nil {
		return err
	}
	w.nextSeq = sc.nextSeq
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("recover segment: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync recovered segment %s: %w", segName(last), err)
	}
	s := &segFile{index: last, ver: sc.hdr.version, created: sc.hdr.created, f: f}
	w.cur = s
	w.off, w.recStart = sc.size, recordStart(sc.hdr)
	if sc.tail != nil {
		w.off = sc.tail.off
	}
	idx, err := os.OpenFile(filepath.Join(w.dir, idxName(last)), os.O_RDWR, 0)
	if err != nil {
		s.idxBroken = true
		w.log.Warn("cannot open index; it will be rebuilt at the seal or the next Open", "segment", last, "err", err)
		return nil
	}
	s.idx = idx
	s.idxOff = idxHeaderSize + uint64(len(sc.ents))*uint64(idxEntrySizeFor(sc.hdr.version))
	return nil
}

// recoverHeader decodes the last segment's header, rewriting it if a crash
// tore it while the segment was being created (no valid record in the
// file), and scans the segment.
func (w *Writer) recoverHeader(segs []uint64, path string) (scanned, error) {
	last := segs[len(segs)-1]
	sc, herr := scanSegment(path)
	if herr == nil {
		return sc, nil
	}
	if errors.Is(herr, ErrVersion) {
		return scanned{}, fmt.Errorf("recover segment %s: %w", segName(last), herr)
	}
	m, err := shm.OpenFile(path)
	if err != nil {
		return scanned{}, fmt.Errorf("recover segment: %w", err)
	}
	data := m.Bytes()
	p, size := resyncAny(data, recAlign), len(data)
	m.Close()
	if p < uint64(size) {
		return scanned{}, fmt.Errorf("recover segment %s: %w: header damaged (%v) but a valid record follows at %d; refusing to rewrite it", segName(last), ErrCorrupt, herr, p)
	}
	firstSeq := w.manifest.FirstRecord
	if len(segs) > 1 {
		prev := filepath.Join(w.dir, segName(segs[len(segs)-2]))
		psc, err := scanSegment(prev)
		if err != nil {
			return scanned{}, fmt.Errorf("recover segment %s: header torn (%v), previous segment unreadable: %w", segName(last), herr, err)
		}
		firstSeq = psc.nextSeq
	}
	w.log.Warn("segment header torn by a crash during creation; rewriting it", "segment", last, "first_seq", firstSeq, "reason", herr)
	if err := reinitSegment(path, last, firstSeq); err != nil {
		return scanned{}, fmt.Errorf("recover segment %s: %w", segName(last), err)
	}
	w.recovery.Reinitialized = true
	w.recovery.CutOffset, w.recovery.CutBytes, w.recovery.CutReason = 0, int64(size), herr
	sc, err = scanSegment(path)
	if err != nil {
		return scanned{}, fmt.Errorf("recover segment %s: %w", segName(last), err)
	}
	return sc, nil
}

// cutTail truncates a torn tail of segment index at path, if sc has one,
// and fsyncs the file then; last says it is the last segment, whose cut
// Recovery reports.
func (w *Writer) cutTail(path string, index uint64, sc *scanned, last bool) error {
	if sc.tail == nil {
		return nil
	}
	end := sc.tail.off
	if err := os.Truncate(path, int64(end)); err != nil {
		return fmt.Errorf("cut torn tail of segment %s at %d: %w", segName(index), end, err)
	}
	if last && !w.recovery.Reinitialized {
		w.recovery.CutOffset = int64(end)
		w.recovery.CutBytes = int64(sc.size - end)
		w.recovery.CutReason = sc.tail.err
	}
	w.log.Warn("cut torn tail", "segment", index, "offset", end, "bytes", sc.size-end, "reason", sc.tail.err)
	return fsyncFile(path)
}

// reconcileIndex compares the index of segment index with the records sc
// found: records it lists that are gone are recorded in the manifest (and
// their seqs kept unused), and the index is rewritten, with flags and
// fsynced, if it does not list exactly the valid records with those flags.
func (w *Writer) reconcileIndex(index uint64, sc *scanned, flags uint16) error {
	ipath := filepath.Join(w.dir, idxName(index))
	old, rerr := os.ReadFile(ipath)
	var ix indexFile
	if rerr == nil {
		ix, rerr = decodeIndex(old, index, sc.hdr.version)
	}
	if lost := listedButGone(ix.ents, sc.ents); len(lost) > 0 {
		now := nowNano()
		for i := range lost {
			lost[i].FoundUnixNs = now
			sc.nextSeq = max(sc.nextSeq, lost[i].To+1)
			w.log.Error("records the index lists as durable are gone from the segment: damage, not a torn tail; their seqs stay unused",
				"segment", index, "from", lost[i].From, "to", lost[i].To, "epoch", lost[i].Epoch, "first_ring_seq", lost[i].FirstSeq, "last_ring_seq", lost[i].LastSeq)
		}
		w.recovery.Lost = append(w.recovery.Lost, lost...)
		w.manifest.Lost = append(w.manifest.Lost, lost...)
		if err := writeManifest(w.dir, w.manifest); err != nil {
			return fmt.Errorf("recover segment %s: record lost records: %w", segName(index), err)
		}
	}
	if sc.hdr.version < 2 {
		flags = 0
	}
	wantSealed := flags&idxSealed != 0
	if rerr == nil && slices.Equal(ix.ents, sc.ents) && ix.sealed == wantSealed {
		return nil
	}
	if rerr != nil || !slices.Equal(ix.ents, sc.ents) {
		w.recovery.IndexRebuilt = true
		w.log.Info("rebuilding index", "segment", index, "entries", len(sc.ents), "had", len(ix.ents), "reason", rerr)
	}
	if err := writeIndexFile(ipath, index, sc.hdr.version, flags, sc.ents, true); err != nil {
		// Derived data: a reader scans instead. Not sealed, so a later
		// recovery checks the segment again.
		w.log.Warn("cannot rewrite index; it will be rebuilt at the seal or the next Open", "segment", index, "err", err)
	}
	return nil
}

// listedButGone returns, as ranges of consecutive listed entries, the
// entries of listed (an index) whose record seq no valid record in valid
// has. Both are in seq order.
func listedButGone(listed, valid []idxEntry) []LostRange {
	var out []LostRange
	var cur *LostRange
	for _, e := range listedButGoneEntries(listed, valid) {
		if cur == nil || e.seq != cur.To+1 {
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
	switch l.Epoch {
	case 0:
		l.Epoch, l.FirstSeq, l.LastSeq = Epoch(e.epoch), e.ringSeq, e.ringSeq
	case Epoch(e.epoch):
		l.FirstSeq, l.LastSeq = min(l.FirstSeq, e.ringSeq), max(l.LastSeq, e.ringSeq)
	default:
		l.Epoch, l.FirstSeq, l.LastSeq, l.mixed = 0, 0, 0, true
	}
}

// decodeSegHeaderFile reads and decodes the header of the segment at path.
func decodeSegHeaderFile(path string) (segHeader, error) {
	f, err := os.Open(path)
	if err != nil {
		return segHeader{}, err
	}
	defer f.Close()
	b := make([]byte, maxSegHeader)
	n, err := f.ReadAt(b, 0)
	if err != nil && n == 0 {
		return segHeader{}, truncatedf("segment header: %v", err)
	}
	return decodeSegHeader(b[:n])
}

// fsyncFile fsyncs the file at path.
func fsyncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("sync %s: %w", filepath.Base(path), err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", filepath.Base(path), err)
	}
	return nil
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
