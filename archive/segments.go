package archive

// Segments of a live Writer: creation, the pre-created next segment,
// rotation, and sealing.
//
// A rotation normally costs one 64-byte pwrite under the writer's lock: the
// maintainer (sync.go) created the next segment's file and index, and
// fsynced the directory, in advance (the "spare": an empty file, which
// readers skip and recovery removes), and it seals the segment rotated away
// from afterwards. Sealing a segment: fsync it, write the index entries of
// its records still buffered, set the index's sealed flag, fsync the index,
// close both files.
//
// Invariants:
//   - At most one segment waits for its seal while the writer appends to
//     the next: a spare is made only when no seal is pending, and a
//     rotation without a spare seals everything first (rotateSlow).
//   - Every fsync of the open segment (syncHeld) seals the pending segments
//     first, so no record of a segment is durable before every record of
//     the one before it: after a power loss, a segment whose predecessor is
//     not sealed holds nothing that was promised durable (recover.go).
//   - A segment's header is written when it becomes the open segment, with
//     the first seq it will get; it becomes durable with the segment's
//     first fsync.
//   - A segFile's index fields (idx, idxOff, idxBroken, pending) belong to
//     syncMu once the segment was shared; its data file f is written under
//     mu (appends) and fsynced and closed under syncMu.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/framering/framering/shm"
)

// segFile is a segment the writer has open.
type segFile struct {
	index   uint64
	ver     uint16
	created int64 // Unix ns, from the header
	f       *os.File

	idx       *os.File
	idxOff    uint64
	idxBroken bool

	// Set when the writer rotates away from the segment: the seq after its
	// last record, and the index entries its seal must still write.
	endSeq  uint64
	pending []byte
}

func (s *segFile) close() error {
	var errs []error
	if s.f != nil {
		errs = append(errs, s.f.Close())
		s.f = nil
	}
	if s.idx != nil {
		errs = append(errs, s.idx.Close())
		s.idx = nil
	}
	return errors.Join(errs...)
}

// writeEntries writes entries of durable records to the segment's index. A
// failure breaks the index (it is rebuilt at the seal, Close or the next
// Open); it never fails an append, because the records themselves are
// stored. The caller holds syncMu.
func (s *segFile) writeEntries(b []byte, log *slog.Logger) {
	if s.idxBroken || len(b) == 0 || s.idx == nil {
		s.idxBroken = s.idxBroken || (len(b) > 0 && s.idx == nil)
		return
	}
	if _, err := s.idx.WriteAt(b, int64(s.idxOff)); err != nil {
		s.idxBroken = true
		_ = s.idx.Truncate(int64(s.idxOff))
		log.Warn("index write failed; the index of this segment will be rebuilt", "segment", s.index, "err", err)
		return
	}
	s.idxOff += uint64(len(b))
}

// sealFiles makes the segment complete on disk: fsync, the remaining index
// entries, the sealed flag, an fsync of the index. Only the data fsync can
// fail it; the index is derived data, rebuilt from the segment if it broke.
func (s *segFile) sealFiles(dir string, log *slog.Logger) error {
	if err := s.f.Sync(); err != nil {
		if isDiskFull(err) {
			return fmt.Errorf("seal segment %s: %w: %w: %w", segName(s.index), ErrSync, ErrDiskFull, err)
		}
		return fmt.Errorf("seal segment %s: %w: %w", segName(s.index), ErrSync, err)
	}
	s.writeEntries(s.pending, log)
	if s.ver < 2 {
		return nil // version 1 indexes have no sealed flag
	}
	if s.idxBroken {
		ents, ver, err := scanIndexEntries(filepath.Join(dir, segName(s.index)))
		if err == nil {
			err = writeIndexFile(filepath.Join(dir, idxName(s.index)), s.index, ver, idxSealed, ents, true)
		}
		if err != nil {
			log.Warn("cannot rebuild the index of a sealed segment; readers will scan it", "segment", s.index, "err", err)
		}
		return nil
	}
	var hdr [idxHeaderSize]byte
	encodeIndexHeader(hdr[:], s.index, s.ver, idxSealed)
	_, err := s.idx.WriteAt(hdr[:], 0)
	if err == nil {
		err = s.idx.Sync()
	}
	if err != nil {
		log.Warn("cannot mark the index sealed; recovery will check the segment", "segment", s.index, "err", err)
	}
	return nil
}

// takeFree returns an empty index buffer.
func (w *Writer) takeFree() []byte {
	if n := len(w.idxFree); n > 0 {
		b := w.idxFree[n-1]
		w.idxFree = w.idxFree[:n-1]
		return b[:0]
	}
	return make([]byte, 0, idxBufEntries*idxEntrySize)
}

// rotate makes the next segment the open one, the fast way when the
// maintainer has one ready, else the slow way (which needs holdSync: see
// lockForRecord). On failure the writer stays on the old segment.
func (w *Writer) rotate(holdSync bool) error {
	sp := w.spare
	if sp == nil || (holdSync && w.overCap()) {
		if !holdSync {
			// Unreachable: lockForRecord takes syncMu when there is no spare.
			return fmt.Errorf("rotate segment %s: internal error: fsync lock not held", segName(w.cur.index))
		}
		return w.rotateSlow()
	}
	now := time.Now().UnixNano()
	var hdr [segHeaderSize]byte
	encodeSegHeader(hdr[:], sp.index, now, w.nextSeq)
	if _, err := sp.f.WriteAt(hdr[:], 0); err != nil {
		_ = sp.f.Truncate(0) // stays a spare
		if isDiskFull(err) {
			w.stats.DiskFull++
			w.poke()
			return fmt.Errorf("rotate to segment %s: %w: %w", segName(sp.index), ErrDiskFull, err)
		}
		return fmt.Errorf("rotate to segment %s: %w", segName(sp.index), err)
	}
	sp.created = now
	old := w.cur
	old.endSeq = w.nextSeq
	old.pending = w.idxBuf
	w.idxBuf = w.takeFree()
	w.sealing = append(w.sealing, old)
	w.spare = nil
	w.switchTo(sp)
	w.log.Debug("rotated", "segment", sp.index, "first_seq", w.nextSeq)
	w.poke() // seal the old segment, make the next spare
	return nil
}

// switchTo makes s, just created, the open segment.
func (w *Writer) switchTo(s *segFile) {
	w.cur = s
	// Its header and its index's header are on disk now; retention
	// subtracts them (from the files' sizes) when it deletes the segment,
	// so archBytes must count them too or it would drift below the
	// archive's real size by 96 bytes per deleted segment, and the cap at
	// rotation (overCap) would slip.
	w.archBytes += segHeaderSize + idxHeaderSize
	w.off, w.recStart, w.dirtyTail = segHeaderSize, segHeaderSize, false
	// The seal of the old segment covers what was unsynced.
	w.unsyncedRecs, w.unsyncedBytes = 0, 0
	w.stats.Segments++
}

// rotateSlow rotates without a pre-created segment: it seals the pending
// segments, creates the next segment, seals the open one and switches, all
// with both locks held (the segment's own seal and the creation under mu).
// On failure the writer stays on the old segment, unsealed.
func (w *Writer) rotateSlow() error {
	if err := w.sealPending(); err != nil {
		return err
	}
	old := w.cur
	next, err := w.nextSegment(old.index+1, w.nextSeq)
	if err != nil {
		if isDiskFull(err) {
			w.stats.DiskFull++
			w.poke()
			return fmt.Errorf("rotate to segment %s: %w: %w", segName(old.index+1), ErrDiskFull, err)
		}
		return fmt.Errorf("rotate to segment %s: %w", segName(old.index+1), err)
	}
	old.endSeq = w.nextSeq
	old.pending = w.idxBuf
	if err := old.sealFiles(w.dir, w.log); err != nil {
		w.stats.SyncErrors++
		w.idxBuf, old.pending = old.pending, nil
		_ = next.f.Truncate(0) // an empty next segment: the spare again
		w.spare = next
		if errors.Is(err, ErrDiskFull) {
			w.stats.DiskFull++
		}
		return err
	}
	w.stats.Fsyncs++
	w.stats.SlowRotations++
	w.durableSeq = max(w.durableSeq, old.endSeq)
	w.idxBuf = old.pending[:0]
	old.pending = nil
	old.close()
	w.switchTo(next)
	w.log.Info("rotated without a pre-created segment", "segment", next.index, "first_seq", w.nextSeq)
	if w.overCap() {
		// The maintainer fell behind the cap: delete now, before the
		// archive grows by another segment (readers' pins still hold).
		del, err := w.retain(w.opts.Retention, next.index)
		w.countDeleted(del)
		if err != nil {
			w.log.Error("retention at rotation failed", "err", err)
		}
	}
	return nil
}

// nextSegment returns segment index, its header written (first seq
// firstSeq) and fsynced: the pre-created one if the maintainer made it,
// else a new one (createSegment).
func (w *Writer) nextSegment(index, firstSeq uint64) (*segFile, error) {
	sp := w.spare
	if sp == nil || sp.index != index {
		return w.createSegment(index, firstSeq)
	}
	now := time.Now().UnixNano()
	var hdr [segHeaderSize]byte
	encodeSegHeader(hdr[:], index, now, firstSeq)
	_, err := sp.f.WriteAt(hdr[:], 0)
	if err == nil {
		err = sp.f.Sync()
	}
	if err != nil {
		_ = sp.f.Truncate(0) // stays a spare
		return nil, fmt.Errorf("write segment header: %w", err)
	}
	sp.created = now
	w.spare = nil
	return sp, nil
}

// sealPending seals the segments rotated away from, oldest first, and
// stops at the first that fails (it stays pending: the next call retries).
// The caller holds syncMu and mu; mu is released during the I/O.
func (w *Writer) sealPending() error {
	for len(w.sealing) > 0 {
		if err := w.seal(w.sealing[0]); err != nil {
			return err
		}
		w.sealing = w.sealing[1:]
	}
	return nil
}

// seal seals s (a pending segment, or the open one at Close) and closes
// its files. The caller holds syncMu and mu; mu is released during the I/O.
func (w *Writer) seal(s *segFile) error {
	if s == w.cur {
		s.endSeq = w.nextSeq
		s.pending = append(s.pending, w.idxBuf...)
		w.idxBuf = w.idxBuf[:0]
	}
	hook := w.sealHook
	w.mu.Unlock()
	if hook != nil {
		hook(s.index)
	}
	err := s.sealFiles(w.dir, w.log)
	w.mu.Lock()
	if err != nil {
		w.stats.SyncErrors++
		return err
	}
	w.stats.Fsyncs++
	w.durableSeq = max(w.durableSeq, s.endSeq)
	if s.pending != nil && s != w.cur {
		w.idxFree = append(w.idxFree, s.pending[:0])
	}
	s.pending = nil
	return s.close()
}

// prepareSpare pre-creates the next segment if the writer has none and no
// seal is pending. It holds syncMu while it creates the files, so that a
// slow rotation does not create the same segment meanwhile; mu only to
// look and to publish.
func (w *Writer) prepareSpare() {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	w.mu.Lock()
	need := !w.closed && w.spare == nil && len(w.sealing) == 0 && w.cur != nil
	var next uint64
	if need {
		next = w.cur.index + 1
	}
	w.mu.Unlock()
	if !need {
		return
	}
	sp, err := makeSpare(w.dir, next)
	if err != nil {
		w.log.Warn("cannot pre-create the next segment; the next rotation will create it under the writer's lock", "segment", next, "err", err)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.spare != nil || w.cur.index+1 != next {
		sp.close()
		_ = removeSegment(w.dir, next)
		return
	}
	w.spare = sp
}

// makeSpare creates segment index as an empty file with an index holding
// its header only, and makes both names durable.
func makeSpare(dir string, index uint64) (*segFile, error) {
	path := filepath.Join(dir, segName(index))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	s := &segFile{index: index, ver: FormatVersion, f: f}
	fail := func(err error) (*segFile, error) {
		s.close()
		_ = removeSegment(dir, index)
		return nil, err
	}
	if err := s.openIndex(dir); err != nil {
		return fail(err)
	}
	if err := syncDir(dir); err != nil {
		return fail(err)
	}
	return s, nil
}

// openIndex creates the segment's index with a header and no entries, and
// opens it for the writer.
func (s *segFile) openIndex(dir string) error {
	ipath := filepath.Join(dir, idxName(s.index))
	if err := writeIndexFile(ipath, s.index, s.ver, 0, nil, false); err != nil {
		return err
	}
	idx, err := os.OpenFile(ipath, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open index: %w", err)
	}
	s.idx, s.idxOff = idx, idxHeaderSize
	return nil
}

// createSegment creates segment index with its header (fsynced) and an
// empty index, and fsyncs the directory. On failure it removes what it
// created. It does not make the segment the open one (switchTo does).
func (w *Writer) createSegment(index, firstSeq uint64) (*segFile, error) {
	s, err := makeSpare(w.dir, index)
	if err != nil {
		return nil, err
	}
	now := time.Now().UnixNano()
	var hdr [segHeaderSize]byte
	encodeSegHeader(hdr[:], index, now, firstSeq)
	_, err = s.f.WriteAt(hdr[:], 0)
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		s.close()
		_ = removeSegment(w.dir, index)
		return nil, fmt.Errorf("write segment header: %w", err)
	}
	s.created = now
	w.log.Info("created segment", "segment", index, "first_seq", firstSeq)
	return s, nil
}

// createFirst creates the first segment of an empty archive and opens it.
func (w *Writer) createFirst(index, firstSeq uint64) error {
	s, err := w.createSegment(index, firstSeq)
	if err != nil {
		return err
	}
	w.switchTo(s)
	w.nextSeq = firstSeq
	return nil
}

// scanIndexEntries maps a segment and returns the index entries of its
// valid records and the segment's format version.
func scanIndexEntries(path string) ([]idxEntry, uint16, error) {
	m, err := shm.OpenFile(path)
	if err != nil {
		return nil, 0, fmt.Errorf("scan segment: %w", err)
	}
	defer m.Close()
	data := m.Bytes()
	h, err := decodeSegHeader(data)
	if err != nil {
		return nil, 0, fmt.Errorf("scan segment %s: %w", filepath.Base(path), err)
	}
	var ents []idxEntry
	scanRecords(data, recordStart(h), h.version, func(off uint64, rh *recHeader) {
		ents = append(ents, entryOf(off, rh))
	}, nil)
	return ents, h.version, nil
}

// indexSealed reports whether the index file of segment index (a segment
// of version ver) is intact and says the segment was sealed.
func indexSealed(dir string, index uint64, ver uint16) bool {
	if ver < 2 {
		return true // a version 1 writer sealed synchronously at rotation
	}
	f, err := os.Open(filepath.Join(dir, idxName(index)))
	if err != nil {
		return false
	}
	defer f.Close()
	var b [idxHeaderSize]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return false
	}
	if string(b[:len(idxMagic)]) != idxMagic || crc32.Checksum(b[:offIdxCRC], castagnoli) != binary.LittleEndian.Uint32(b[offIdxCRC:]) {
		return false
	}
	return binary.LittleEndian.Uint16(b[offIdxVersion:]) == ver && binary.LittleEndian.Uint64(b[offIdxSegment:]) == index &&
		binary.LittleEndian.Uint16(b[offIdxFlags:])&idxSealed != 0
}
