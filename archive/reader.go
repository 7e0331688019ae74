package archive

// The Reader: iterates and seeks records through read-only mappings of the
// segments (shm.OpenFile).
//
// Invariants:
//   - At most one segment is mapped at a time (r.m, of r.segs[r.mapped]).
//     Moving to another segment, Seek and Close unmap it; a Record.Payload
//     that aliases the mapping is documented as valid only until then.
//   - Every record handed out passed parseRecord, so its bounds were checked
//     in uint64 against the mapping's length and its CRC matched.
//   - A segment index is used only entry by entry, after the record it points
//     to passed parseRecord and carries the entry's seq; an index that fails
//     is replaced by one rebuilt from a scan of the segment (in memory only).
//   - The set of segments is fixed at OpenReader, and each segment's length
//     at the moment it is mapped: a Reader sees a snapshot of a live archive.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/framering/framering/shm"
)

// Record is one record read back.
type Record struct {
	Seq     uint64
	Kind    Kind
	Meta    Meta  // frames: the frame's metadata; gaps: FrameID = Gap.FirstID and Timestamp = when it was recorded
	Gap     Gap   // gaps only
	Codec   Codec // how the payload was stored
	Stored  uint64
	Segment uint64 // index of the segment holding the record
	Offset  int64  // offset of the record in its segment file
	// Payload is the raw frame (nil for gaps). It aliases the segment mapping
	// or the Reader's decompression buffer and is valid only until the next
	// call to Next, Seek, ReadSeq or Close on the Reader; copy it to keep it.
	Payload []byte
}

// SegmentInfo describes a segment as OpenReader found it.
type SegmentInfo struct {
	Index    uint64
	Path     string
	Size     int64
	FirstSeq uint64    // from the header
	Created  time.Time // from the header
	Err      error     // why the header was refused, if it was
}

type rsegment struct {
	info    SegmentInfo
	hdr     segHeader
	ents    []idxEntry // nil until loaded
	loaded  bool
	rebuilt bool // ents came from a scan of the segment, not the index file
	checked bool // the first and last entry were checked against their records
}

// Reader reads an archive. It is not safe for concurrent use.
//
// Reading an archive while a Writer appends to it is fine: the Reader sees
// each segment as it was when mapped, and a record being written shows as a
// torn tail (ErrTruncated). A Reader (or Verify, or Export) must not run
// while Open recovers the same archive: recovery may truncate the last
// segment, and a mapped file that shrinks faults on access (shm.OpenFile).
type Reader struct {
	dir    string
	segs   []*rsegment
	m      *shm.FileMapping
	mapped int // position in segs of m, or -1

	cur    int    // position in segs of the next record
	off    uint64 // offset of the next record in segs[cur]; 0 = segment not entered yet
	dec    decompressor
	closed bool

	// pin is a shared flock on the oldest segment the reader may still
	// read (segs[pinned]): retention deletes nothing from it on
	// (retention.go). Next moves it forward as it goes; Close releases it.
	pin    *os.File
	pinned int
}

// OpenReader opens the archive in dir for reading. It reads every segment's
// header; a segment whose header is refused is kept in Segments with its
// error and skipped by Next (which reports it once) and Seek.
func OpenReader(dir string) (*Reader, error) {
	idx, err := listSegments(dir)
	if err != nil {
		return nil, fmt.Errorf("open archive reader: %w", err)
	}
	if len(idx) == 0 {
		return nil, fmt.Errorf("open archive reader %s: %w: no segments", dir, ErrNotFound)
	}
	pin, idx, err := pinOldest(dir, dropSpare(dir, idx))
	if err != nil {
		return nil, fmt.Errorf("open archive reader: %w", err)
	}
	if pin == nil {
		return nil, fmt.Errorf("open archive reader %s: %w: no segments", dir, ErrNotFound)
	}
	r := &Reader{dir: dir, mapped: -1, pin: pin}
	for k, i := range idx {
		s := &rsegment{info: SegmentInfo{Index: i, Path: filepath.Join(dir, segName(i))}}
		m, err := shm.OpenFile(s.info.Path)
		if errors.Is(err, os.ErrNotExist) && (k == 0 || k == len(idx)-1) {
			// A live archive: retention deleted the oldest segment, or the
			// writer removed its pre-created one, since the listing.
			continue
		}
		if err != nil {
			pin.Close()
			return nil, fmt.Errorf("open archive reader: %w", err)
		}
		data := m.Bytes()
		s.info.Size = int64(len(data))
		if s.info.Size == 0 && k == len(idx)-1 {
			m.Close() // a pre-created segment, made after the listing
			continue
		}
		s.hdr, s.info.Err = decodeSegHeader(data)
		m.Close()
		if s.info.Err == nil && s.hdr.index != i {
			s.info.Err = corruptf("segment header says segment %d", s.hdr.index)
		}
		if s.info.Err != nil {
			s.info.Err = fmt.Errorf("segment %s: %w", segName(i), s.info.Err)
		} else {
			s.info.FirstSeq = s.hdr.firstSeq
			s.info.Created = time.Unix(0, s.hdr.created)
		}
		r.segs = append(r.segs, s)
	}
	if len(r.segs) == 0 {
		pin.Close()
		return nil, fmt.Errorf("open archive reader %s: %w: no segments", dir, ErrNotFound)
	}
	return r, nil
}

// Segments describes the archive's segments, in order.
func (r *Reader) Segments() []SegmentInfo {
	out := make([]SegmentInfo, len(r.segs))
	for i, s := range r.segs {
		out[i] = s.info
	}
	return out
}

// Close unmaps the current segment. It is safe to call more than once.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.dec.close()
	err := r.unmap()
	if r.pin != nil {
		r.pin.Close()
		r.pin = nil
	}
	return err
}

func (r *Reader) unmap() error {
	if r.m == nil {
		return nil
	}
	err := r.m.Close()
	r.m, r.mapped = nil, -1
	if err != nil {
		return fmt.Errorf("unmap segment: %w", err)
	}
	return nil
}

// movePin moves the reader's pin forward to segs[i]: the new segment is
// locked before the old one is released, so retention, which deletes
// oldest first and stops at a pinned segment, never deletes it meanwhile.
// Segments before it may then be deleted; Seek back to them finds them gone.
func (r *Reader) movePin(i int) {
	if i <= r.pinned || i >= len(r.segs) {
		return
	}
	f, err := lockSegment(r.segs[i].info.Path, false)
	if err != nil {
		return // keep the old pin: it protects this one too
	}
	r.pin.Close()
	r.pin, r.pinned = f, i
}

// mapSeg maps segment i (unmapping any other) and returns its bytes.
func (r *Reader) mapSeg(i int) ([]byte, error) {
	if r.mapped == i {
		return r.m.Bytes(), nil
	}
	if err := r.unmap(); err != nil {
		return nil, err
	}
	m, err := shm.OpenFile(r.segs[i].info.Path)
	if errors.Is(err, os.ErrNotExist) && i < r.pinned {
		return nil, fmt.Errorf("map segment %s: %w: deleted by retention after the reader moved past it", segName(r.segs[i].info.Index), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("map segment: %w", err)
	}
	r.m, r.mapped = m, i
	return m.Bytes(), nil
}

// Next returns the next record, or io.EOF after the last. A damaged record
// or segment header is returned as an error (matching ErrCorrupt,
// ErrTruncated or ErrVersion, with segment and offset); the following call
// continues with the next valid record, so a caller may count and go on.
func (r *Reader) Next() (Record, error) {
	if r.closed {
		return Record{}, fmt.Errorf("read record: %w", ErrClosed)
	}
	for r.cur < len(r.segs) {
		s := r.segs[r.cur]
		if r.off == 0 {
			if s.info.Err != nil {
				r.cur++
				return Record{}, fmt.Errorf("read record: %w", s.info.Err)
			}
			r.off = recordStart(s.hdr)
		}
		data, err := r.mapSeg(r.cur)
		if err != nil {
			return Record{}, fmt.Errorf("read record: %w", err)
		}
		if r.off >= uint64(len(data)) {
			r.cur++
			r.off = 0
			r.movePin(r.cur)
			continue
		}
		off := r.off
		h, err := parseRecord(data, off, s.hdr.version)
		if err != nil {
			r.off = resync(data, off+recAlign, s.hdr.version)
			return Record{}, fmt.Errorf("read record in segment %s: %w", segName(s.info.Index), err)
		}
		r.off = off + h.size()
		rec, err := r.decode(data, off, &h)
		if err != nil {
			return Record{}, fmt.Errorf("read record %d in segment %s at %d: %w", h.seq, segName(s.info.Index), off, err)
		}
		return rec, nil
	}
	return Record{}, io.EOF
}

// decode builds a Record from a record that passed parseRecord.
func (r *Reader) decode(data []byte, off uint64, h *recHeader) (Record, error) {
	rec := Record{
		Seq:     h.seq,
		Kind:    h.kind,
		Codec:   h.codec(),
		Stored:  h.stored,
		Segment: r.segs[r.cur].info.Index,
		Offset:  int64(off),
		Meta:    Meta{Epoch: h.epoch, RingSeq: h.ringSeq, FrameID: h.frameID, Timestamp: h.timestamp},
	}
	p := off + uint64(h.hdrLen)
	stored := data[p : p+h.stored]
	switch h.kind {
	case KindGap:
		g, err := decodeGap(stored, r.segs[r.cur].hdr.version)
		if err != nil {
			return Record{}, err
		}
		g.Epoch = h.epoch
		rec.Gap = g
	case KindFrame:
		rec.Meta.Width, rec.Meta.Height, rec.Meta.Stride = int(h.width), int(h.height), int(h.stride)
		rec.Meta.Format = formatOf(h.format)
		raw, err := r.dec.decodePayload(h.codec(), stored, h.raw)
		if err != nil {
			return Record{}, err
		}
		rec.Payload = raw
	}
	return rec, nil
}

// Seek positions the reader so that Next returns the first valid record whose
// seq is at least seq. It returns ErrNotFound if there is none.
func (r *Reader) Seek(seq uint64) error {
	if r.closed {
		return fmt.Errorf("seek to %d: %w", seq, ErrClosed)
	}
	// The last segment whose header's first seq is <= seq; records before it
	// have smaller seqs (segments are written in seq order).
	start := 0
	for i, s := range r.segs {
		if s.info.Err == nil && s.hdr.firstSeq <= seq {
			start = i
		}
	}
	for i := start; i < len(r.segs); i++ {
		s := r.segs[i]
		if s.info.Err != nil {
			continue
		}
		off, found, err := r.seekInSegment(i, seq)
		if err != nil {
			return fmt.Errorf("seek to %d: %w", seq, err)
		}
		if found {
			r.cur, r.off = i, off
			return nil
		}
	}
	return fmt.Errorf("seek to %d in %s: %w", seq, r.dir, ErrNotFound)
}

// seekInSegment finds the first valid record with seq >= target in segment i.
func (r *Reader) seekInSegment(i int, target uint64) (uint64, bool, error) {
	s := r.segs[i]
	data, err := r.mapSeg(i)
	if err != nil {
		return 0, false, err
	}
	for attempt := 0; attempt < 2; attempt++ {
		if !s.loaded || attempt == 1 {
			if err := r.loadEntries(s, data, attempt == 1); err != nil {
				return 0, false, err
			}
		}
		k := searchEntries(s.ents, target)
		if k < len(s.ents) {
			e := s.ents[k]
			if h, err := parseRecord(data, e.off, s.hdr.version); err == nil && h.seq == e.seq {
				return e.off, true, nil
			}
		}
		if s.rebuilt {
			// The scan saw every valid record; a failed check means the
			// segment changed under us, or the target is past it.
			if k < len(s.ents) {
				continue
			}
			return 0, false, nil
		}
		// The index file is short (a live or crashed writer) or wrong: rebuild.
	}
	return 0, false, nil
}

// loadEntries loads segment s's index from its file, or, if force is set or
// the file is missing or damaged, rebuilds it by scanning the segment.
func (r *Reader) loadEntries(s *rsegment, data []byte, force bool) error {
	if !force {
		b, err := os.ReadFile(filepath.Join(r.dir, idxName(s.info.Index)))
		if err == nil {
			if ix, err := decodeIndex(b, s.info.Index, s.hdr.version); err == nil {
				s.ents, s.loaded, s.rebuilt = ix.ents, true, false
				return nil
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("read index: %w", err)
		}
	}
	var ents []idxEntry
	scanRecords(data, recordStart(s.hdr), s.hdr.version, func(off uint64, h *recHeader) {
		ents = append(ents, entryOf(off, h))
	}, nil)
	s.ents, s.loaded, s.rebuilt = ents, true, true
	return nil
}

// ReadSeq reads the record with sequence number seq, copying a frame's
// payload into dst (appended to dst[:0], grown if needed), so that the
// returned Record's Payload stays valid after other calls. It returns
// ErrNotFound if the archive has no valid record with that seq.
func (r *Reader) ReadSeq(seq uint64, dst []byte) (Record, error) {
	if err := r.Seek(seq); err != nil {
		return Record{}, err
	}
	rec, err := r.Next()
	if err != nil {
		return Record{}, err
	}
	if rec.Seq != seq {
		return Record{}, fmt.Errorf("read seq %d: %w (next is %d)", seq, ErrNotFound, rec.Seq)
	}
	if rec.Payload != nil {
		rec.Payload = append(dst[:0], rec.Payload...)
	}
	return rec, nil
}
