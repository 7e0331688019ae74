package archive

// The Writer: appends records to the open segment with plain positioned
// writes (pwrite). Its fsync policy is in sync.go, rotation, sealing and
// segment creation in segments.go, crash recovery in recover.go.
//
// The write path is kept off its callers' critical path: Append holds the
// writer's lock (mu) only to compress and pwrite a record into the page
// cache, and to switch to the next segment, which a background goroutine
// (the maintainer) created in advance. No fsync, no file creation, no
// index write and no directory fsync runs under mu, except on the slow
// path of a rotation that finds no pre-created segment (the maintainer
// failed or fell behind).
//
// Locks, and the order they are taken in: Writer.syncMu, then Writer.mu.
//   - mu guards the writer's state: the open segment and its offsets, the
//     sequence numbers, the index buffer, the segments waiting for their
//     seal, the pre-created segment, counters, the closed flag.
//   - syncMu serializes fsyncs and everything that writes the index files
//     of shared segments: seals (segments.go), policy and interval fsyncs,
//     Sync and Close. It is held for the whole of each; mu is released
//     around the I/O itself.
//   - A goroutine holding mu never blocks on syncMu: it may TryLock it
//     (which cannot wait, so cannot deadlock); otherwise it releases mu,
//     locks syncMu, locks mu again and re-checks what it saw before
//     (lockForRecord, finishAppend).
//   - A segment's files are closed only by its seal or by Close, both under
//     syncMu: an fsync in flight never runs on a closed (or reused)
//     descriptor.
//
// Invariants (under Writer.mu unless said otherwise):
//   - w.off is the end of the last complete record of the open segment. The
//     file holds exactly w.off bytes unless w.dirtyTail is set, in which case
//     a cut back failed and bytes past w.off are garbage that is cut before
//     the next write. No byte is ever written at an offset other than w.off.
//   - A record's sequence number is consumed only when all of its bytes were
//     written; a failed write is cut back, so the file never keeps a partial
//     record of a live writer (a crash can leave one; Open cuts it).
//   - w.durableSeq: every record with a smaller seq was covered by a
//     completed fsync of its segment, never lowered. Records appended during
//     an fsync are not claimed by it.
//   - The index lists only durable records (index.go): entries are buffered
//     (w.idxBuf) and written only after an fsync covered their records.
//   - A segment is sealed (fsynced whole, its full index written with the
//     sealed flag and fsynced) after it was rotated away from, and before
//     any fsync of a later segment: so at most the last two segments hold
//     records that no fsync covered, and only the last if the one before is
//     sealed (recover.go relies on it).

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/framering/framering/shm"
)

// DefaultMaxSegmentSize is the rotation size used when Options.MaxSegmentSize is 0.
const DefaultMaxSegmentSize = 1 << 30

// minSegmentSize is the smallest MaxSegmentSize Open accepts.
const minSegmentSize = 4096

// Options configure a Writer.
type Options struct {
	// MaxSegmentSize is the size a segment may reach before the next record
	// goes into a new one (0 means DefaultMaxSegmentSize). A record larger
	// than it gets a segment of its own.
	MaxSegmentSize int64
	// Sync is the fsync policy.
	Sync SyncPolicy
	// Codec compresses frame payloads (CodecNone, CodecS2 or CodecZstd). A
	// frame that does not shrink is stored uncompressed.
	Codec Codec
	// Retention deletes the oldest segments (retention.go); the zero value
	// keeps everything.
	Retention Retention
	// Logger receives recovery and error reports; nil discards them.
	Logger *slog.Logger
}

// Stats are a Writer's counters since Open.
type Stats struct {
	Records    uint64 // records appended (frames and gaps)
	Frames     uint64 // frame records appended
	GapRecords uint64 // gap records appended: losses recorded
	FramesLost uint64 // sum of Count over the gap records appended
	Bytes      uint64 // bytes appended to segments (headers, payload, padding)
	RawBytes   uint64 // frame bytes before compression
	Fsyncs     uint64 // completed fsyncs of segments (seals included)
	SyncErrors uint64 // failed fsyncs
	Segments   uint64 // segments created (the first one included, if Open created it)
	// SlowRotations counts rotations that found no pre-created segment and
	// created one under the writer's lock.
	SlowRotations uint64
	DiskFull      uint64 // Append and AppendGap calls refused with ErrDiskFull
	NextSeq       uint64 // the sequence number of the next record
	DurableSeq    uint64 // every record with a smaller seq is covered by a completed fsync
	// Deleted counts what retention deleted since Open.
	Deleted Deleted
}

// Writer appends records to an archive directory. Its methods are safe for
// concurrent use. Only one Writer may have a directory open at a time: Open
// locks it (ErrLocked).
//
// Appends never wait for a background fsync, a seal or a retention
// deletion; an Append waits for an fsync only when its own policy asks for
// one (Records, Bytes).
type Writer struct {
	syncMu sync.Mutex // held across an fsync; taken before mu (lock order at the top of the file)
	mu     sync.Mutex
	dir    string
	opts   Options
	log    *slog.Logger

	closed bool

	cur       *segFile // the open segment
	off       uint64
	recStart  uint64 // where records start in the open segment
	dirtyTail bool

	sealing []*segFile // rotated away from, not yet sealed, oldest first
	spare   *segFile   // the next segment, pre-created by the maintainer; nil if none yet

	idxBuf   []byte   // entries of records not yet covered by an fsync
	idxSpare []byte   // syncMu: the other buffer, swapped in by syncHeld
	idxFree  [][]byte // buffers a seal returned, for the next rotation

	manifest Manifest // syncMu (and Open)

	archBytes     int64 // the archive's size, segments and indexes, kept up to date for retention
	nextSeq       uint64
	durableSeq    uint64
	unsyncedRecs  int
	unsyncedBytes int64

	stats    Stats
	recovery Recovery

	cp     *compressor
	hdr    [recHeaderSize]byte
	pad    [recAlign]byte
	gapBuf [gapPayloadSize]byte

	kick chan struct{} // wakes the maintainer (buffered, 1)
	stop chan struct{}
	done chan struct{}

	lock *shm.FileLock // dir/.lock, held from Open to Close

	// Test hooks (writer_internal_test.go), nil otherwise, set with both
	// locks held. syncHook runs in every fsync but a seal, with mu
	// released, just before the fsync of the given target seq. sealHook
	// runs before a seal's fsync, with mu released. rotateWaitHook runs
	// when an append that must rotate the slow way finds an fsync in flight
	// and is about to wait for it, with mu released.
	syncHook       func(target uint64)
	sealHook       func(segment uint64)
	rotateWaitHook func()
}

// Open opens the archive in dir for appending, creating dir and the first
// segment if needed. If the archive exists, Open recovers it first
// (recover.go): it cuts a torn tail (a partial or damaged record after
// which no valid record follows), rebuilds the last segment's index if it
// does not match, fsyncs, and logs what it did; Recovery reports it.
// Damage followed by valid records is not a torn tail: it is kept (and
// logged) for Verify to report.
func Open(dir string, opts Options) (*Writer, error) {
	if opts.MaxSegmentSize == 0 {
		opts.MaxSegmentSize = DefaultMaxSegmentSize
	}
	switch {
	case opts.MaxSegmentSize < minSegmentSize:
		return nil, fmt.Errorf("open archive %s: %w: segment size %d below %d", dir, ErrInvalid, opts.MaxSegmentSize, minSegmentSize)
	case opts.Sync.Records < 0 || opts.Sync.Bytes < 0 || opts.Sync.Interval < 0:
		return nil, fmt.Errorf("open archive %s: %w: negative sync policy %+v", dir, ErrInvalid, opts.Sync)
	case !opts.Codec.known():
		return nil, fmt.Errorf("open archive %s: %w: codec %v", dir, ErrInvalid, opts.Codec)
	case opts.Retention.MaxBytes < 0 || opts.Retention.MaxAge < 0 || opts.Retention.MinFree < 0:
		return nil, fmt.Errorf("open archive %s: %w: negative retention %+v", dir, ErrInvalid, opts.Retention)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open archive: %w", err)
	}
	// One writer per directory: recovery truncates files that a second
	// writer would be appending to.
	lock, err := shm.LockFile(filepath.Join(dir, ".lock"))
	if err != nil {
		if errors.Is(err, shm.ErrInUse) {
			return nil, fmt.Errorf("open archive %s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("open archive %s: %w", dir, err)
	}
	cp, err := newCompressor(opts.Codec)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open archive %s: %w", dir, err)
	}
	w := &Writer{
		dir:      dir,
		opts:     opts,
		log:      log.With("archive", dir),
		cp:       cp,
		idxBuf:   make([]byte, 0, idxBufEntries*idxEntrySize),
		idxSpare: make([]byte, 0, idxBufEntries*idxEntrySize),
		lock:     lock,
		kick:     make(chan struct{}, 1),
	}
	if err := w.openSegments(); err != nil {
		w.closeFiles()
		cp.close()
		lock.Close()
		return nil, fmt.Errorf("open archive %s: %w", dir, err)
	}
	w.recovery.Segment = w.cur.index
	w.recovery.NextSeq = w.nextSeq
	if opts.Retention.MaxBytes > 0 {
		w.archBytes = archiveSize(dir, w.manifest.FirstSegment)
	}
	w.durableSeq = w.nextSeq // the recovered (or new) segment was fsynced
	w.stop = make(chan struct{})
	w.done = make(chan struct{})
	go w.maintain(w.stop)
	w.poke() // pre-create the next segment now
	return w, nil
}

// openSegments recovers the archive's segments, or creates the first.
func (w *Writer) openSegments() error {
	segs, err := w.openManifest()
	if err != nil {
		return err
	}
	segs, err = w.dropEmptyTail(segs)
	if err != nil {
		return err
	}
	if len(segs) == 0 {
		err = w.createFirst(w.manifest.FirstSegment, w.manifest.FirstRecord)
		if err == nil {
			err = writeManifest(w.dir, w.manifest)
		}
		if isDiskFull(err) && !errors.Is(err, ErrDiskFull) {
			err = fmt.Errorf("%w: %w", ErrDiskFull, err)
		}
		w.recovery = Recovery{Created: true, CutOffset: -1}
		return err
	}
	if segs, err = w.recoverUnsealed(segs); err != nil {
		return err
	}
	if err := w.recoverLast(segs); err != nil {
		return err
	}
	if w.cur.ver < FormatVersion {
		// Records of the current version never go into a segment of an
		// older one: start a new segment (recovery fsynced the old one,
		// and an old segment counts as sealed).
		w.log.Info("the archive's last segment has an older format version; continuing in a new segment", "segment", w.cur.index, "version", w.cur.ver)
		return w.rotateSlow()
	}
	return nil
}

// Dir returns the archive directory.
func (w *Writer) Dir() string { return w.dir }

// Stats returns the writer's counters.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stats
	s.NextSeq = w.nextSeq
	s.DurableSeq = w.durableSeq
	return s
}

// Recovery reports what Open found and repaired.
func (w *Writer) Recovery() Recovery {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.recovery
	r.Corrupt = append([]Region(nil), r.Corrupt...)
	r.Lost = append([]LostRange(nil), r.Lost...)
	return r
}

// Append stores a frame and returns its record sequence number. payload is
// the frame's bytes, exactly m.Stride*m.Height of them; Append does not
// keep it. The uncompressed path allocates nothing.
//
// Errors: ErrInvalid or ErrTooLarge for metadata that does not describe the
// payload (nothing written); ErrDiskFull when the filesystem is full (nothing
// kept, see ErrDiskFull); ErrSync when the record was written but the fsync
// the policy asked for failed (the seq is valid); ErrClosed.
func (w *Writer) Append(m Meta, payload []byte) (uint64, error) {
	return w.AppendChecked(m, payload, nil)
}

// AppendChecked is Append for a payload that may change while it is being
// written (a ring lease the producer can revoke): after the record is
// written, and before it counts as stored, check (if not nil) says whether
// the payload the writer read — for its checksum and for the file — was
// intact. If check fails, the record is cut off the segment again, nothing
// is stored, and the error wraps ErrPayloadChanged and check's error.
func (w *Writer) AppendChecked(m Meta, payload []byte, check func() error) (uint64, error) {
	if err := checkMeta(&m, len(payload)); err != nil {
		return 0, fmt.Errorf("append frame %d: %w", m.FrameID, err)
	}
	w.mu.Lock()
	holdSync, err := w.lockForRecord(len(payload))
	if err != nil {
		w.mu.Unlock()
		return 0, fmt.Errorf("append frame %d: %w", m.FrameID, err)
	}
	stored, codec := w.cp.compress(payload)
	h := recHeader{
		kind:      KindFrame,
		epoch:     m.Epoch,
		ringSeq:   m.RingSeq,
		frameID:   m.FrameID,
		timestamp: m.Timestamp,
		width:     uint32(m.Width),
		height:    uint32(m.Height),
		stride:    uint32(m.Stride),
		format:    uint32(m.Format),
		flags:     uint32(codec),
		stored:    uint64(len(stored)),
		raw:       uint64(len(payload)),
	}
	seq, err := w.appendRecord(&h, stored, holdSync, check)
	if err != nil {
		w.unlock(holdSync)
		return 0, fmt.Errorf("append frame %d: %w", m.FrameID, err)
	}
	w.stats.Frames++
	w.stats.RawBytes += uint64(len(payload))
	if err := w.finishAppend(seq, holdSync); err != nil {
		return seq, fmt.Errorf("append frame %d: %w", m.FrameID, err)
	}
	return seq, nil
}

// AppendGap records that frames were lost and returns the gap record's
// sequence number. Errors are those of Append. Each gap record is logged at
// Debug only: under sustained losses there is one per drop, and the caller
// knows better how to summarize them.
func (w *Writer) AppendGap(g Gap) (uint64, error) {
	if !g.validate() {
		return 0, fmt.Errorf("append gap: %w: %d frames in ids %d..%d, ring seqs %d..%d", ErrInvalid, g.Count, g.FirstID, g.LastID, g.FirstSeq, g.LastSeq)
	}
	w.mu.Lock()
	holdSync, err := w.lockForRecord(gapPayloadSize)
	if err != nil {
		w.mu.Unlock()
		return 0, fmt.Errorf("append gap: %w", err)
	}
	encodeGap(w.gapBuf[:], g)
	h := recHeader{
		kind:      KindGap,
		epoch:     g.Epoch,
		ringSeq:   g.FirstSeq,
		frameID:   g.FirstID,
		timestamp: time.Now().UnixNano(),
		stored:    gapPayloadSize,
		raw:       gapPayloadSize,
	}
	seq, err := w.appendRecord(&h, w.gapBuf[:], holdSync, nil)
	if err != nil {
		w.unlock(holdSync)
		return 0, fmt.Errorf("append gap of %d frames (%v): %w", g.Count, g.Cause, err)
	}
	w.stats.GapRecords++
	w.stats.FramesLost += g.Count
	err = w.finishAppend(seq, holdSync)
	w.log.Debug("recorded frame loss", "seq", seq, "first_id", g.FirstID, "last_id", g.LastID, "count", g.Count, "cause", g.Cause.String())
	if err != nil {
		return seq, fmt.Errorf("append gap: %w", err)
	}
	return seq, nil
}

// Close seals and closes the archive: every record is fsynced, every
// segment's index complete and marked sealed. It is safe to call more than
// once.
func (w *Writer) Close() error {
	w.mu.Lock()
	stop := w.stop
	w.stop = nil
	w.mu.Unlock()
	if stop != nil {
		close(stop)
		<-w.done // the maintainer has returned and will not sync again
	}
	w.syncMu.Lock() // after the fsync in flight, if any: it uses the files closed below
	w.mu.Lock()
	defer w.unlock(true)
	if w.closed {
		return nil
	}
	w.closed = true // appends fail from here on, also while mu is released below
	var errs []error
	if w.dirtyTail {
		if err := w.cutBack(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := w.syncHeld(); err != nil {
		errs = append(errs, err)
	} else if err := w.seal(w.cur); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, w.closeFiles())
	w.cp.close()
	errs = append(errs, w.lock.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close archive %s: %w", w.dir, err)
	}
	return nil
}

// checkMeta checks that m describes a payload of n bytes.
func checkMeta(m *Meta, n int) error {
	if uint64(n) > MaxPayload {
		return fmt.Errorf("%w: %d-byte payload, limit %d", ErrTooLarge, n, MaxPayload)
	}
	if m.Width < 0 || m.Height < 0 || m.Stride < 0 {
		return fmt.Errorf("%w: geometry %dx%d stride %d", ErrInvalid, m.Width, m.Height, m.Stride)
	}
	return checkFrameFields(ErrInvalid, uint64(m.Width), uint64(m.Height), uint64(m.Stride), m.Format, uint64(n))
}

// unlock releases w.mu, and w.syncMu if holdSync.
func (w *Writer) unlock(holdSync bool) {
	w.mu.Unlock()
	if holdSync {
		w.syncMu.Unlock()
	}
}

// appendRecord writes h and payload at w.off, rotating first if the record
// does not fit (see lockForRecord for when that needs holdSync). If check
// is set and fails after the write, the record is cut back off. On success
// it consumes a seq and queues an index entry.
func (w *Writer) appendRecord(h *recHeader, payload []byte, holdSync bool, check func() error) (uint64, error) {
	if w.dirtyTail {
		if err := w.cutBack(); err != nil {
			return 0, err
		}
	}
	size := align8(recHeaderSize + uint64(len(payload)))
	if w.needsRotation(size) {
		if err := w.rotate(holdSync); err != nil {
			return 0, err
		}
	}
	h.seq = w.nextSeq
	sealRecHeader(w.hdr[:], h, payload)
	off := w.off
	err := w.writeAt(w.hdr[:], off)
	if err == nil {
		err = w.writeAt(payload, off+recHeaderSize)
	}
	if pad := size - recHeaderSize - uint64(len(payload)); err == nil && pad > 0 {
		err = w.writeAt(w.pad[:pad], off+size-pad)
	}
	if err != nil {
		return 0, w.failWrite(err)
	}
	if check != nil {
		if cerr := check(); cerr != nil {
			// What we checksummed and wrote may be torn: take it back.
			w.dirtyTail = true
			if err := w.cutBack(); err != nil {
				w.log.Error("cannot cut back a changed record; will retry before the next write", "segment", w.cur.index, "offset", w.off, "err", err)
			}
			return 0, fmt.Errorf("write segment %s: %w: %w", segName(w.cur.index), ErrPayloadChanged, cerr)
		}
	}
	w.off += size
	w.nextSeq++
	w.stats.Records++
	w.stats.Bytes += size
	w.unsyncedRecs++
	w.unsyncedBytes += int64(size)
	w.archBytes += int64(size + idxEntrySize)
	w.addIndexEntry(entryOf(off, h))
	return h.seq, nil
}

func (w *Writer) writeAt(b []byte, off uint64) error {
	if off > math.MaxInt64 {
		return fmt.Errorf("write segment: %w: offset %d", ErrTooLarge, off)
	}
	_, err := w.cur.f.WriteAt(b, int64(off))
	return err
}

// failWrite cuts a failed record back and classifies the error.
func (w *Writer) failWrite(err error) error {
	w.dirtyTail = true
	if cerr := w.cutBack(); cerr != nil {
		w.log.Error("cannot cut back a failed write; will retry before the next write", "segment", w.cur.index, "offset", w.off, "err", cerr)
	}
	name := segName(w.cur.index)
	if isDiskFull(err) {
		w.stats.DiskFull++
		w.poke() // retention may free space
		return fmt.Errorf("write segment %s: %w: %w", name, ErrDiskFull, err)
	}
	return fmt.Errorf("write segment %s: %w", name, err)
}

// cutBack truncates the open segment to w.off.
func (w *Writer) cutBack() error {
	if err := w.cur.f.Truncate(int64(w.off)); err != nil {
		return fmt.Errorf("cut back segment %s to %d: %w", segName(w.cur.index), w.off, err)
	}
	w.dirtyTail = false
	return nil
}

// addIndexEntry buffers the entry of a record just written; it is written
// to the index once an fsync covers the record. Under w.mu.
func (w *Writer) addIndexEntry(e idxEntry) {
	n := len(w.idxBuf)
	if n+idxEntrySize > cap(w.idxBuf) {
		w.idxBuf = append(w.idxBuf, make([]byte, idxEntrySize)...) // grows: entries wait for the fsync
	} else {
		w.idxBuf = w.idxBuf[:n+idxEntrySize]
	}
	encodeIndexEntry(w.idxBuf[n:], e, FormatVersion)
}

// closeFiles closes every file the writer has open, and removes the
// pre-created segment (a later Open would drop it anyway).
func (w *Writer) closeFiles() error {
	var errs []error
	for _, s := range w.sealing {
		errs = append(errs, s.close())
	}
	w.sealing = nil
	if w.cur != nil {
		errs = append(errs, w.cur.close())
	}
	if sp := w.spare; sp != nil {
		sp.close()
		if err := removeSegment(w.dir, sp.index); err != nil {
			w.log.Warn("cannot remove the pre-created segment", "segment", sp.index, "err", err)
		}
		w.spare = nil
	}
	return errors.Join(errs...)
}
