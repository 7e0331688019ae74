package archive

// The Writer: appends records to the last segment with plain positioned
// writes (pwrite), rotates by size, fsyncs by policy without holding the lock
// that appends need.
//
// Locks, and the order they are taken in: Writer.syncMu, then Writer.mu.
//   - mu guards the writer's state: offsets, sequence numbers, the index
//     buffer, counters, the closed flag. It is held while a record is
//     compressed and written (pwrite), never while the open segment is
//     fsynced by policy, by the interval goroutine, by Sync or by Close;
//     only a rotation fsyncs under it (see sealed segments below).
//   - syncMu serializes fsyncs: at most one is in flight. It is held for the
//     whole of an fsync (mu is released around the fsync itself), of a
//     rotation and of Close.
//   - Order: syncMu before mu. A goroutine holding mu never blocks on
//     syncMu: it may TryLock it (which cannot wait, so cannot deadlock);
//     otherwise it releases mu, locks syncMu, locks mu again and re-checks
//     what it saw before (lockForRecord, finishAppend).
//   - The open files (seg, idx, segIndex) are replaced and closed only with
//     both locks held: by a rotation, by Close, and by Open before the Writer
//     is shared. So either lock keeps them open: an appender uses them under
//     mu, an fsync under syncMu alone. No fsync ever runs on a closed (or
//     reused) descriptor; a rotation waits for the fsync in flight instead.
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
//     completed fsync of its segment. An fsync (syncHeld) takes its target
//     under mu (the buffered index entries written, the file, w.nextSeq),
//     fsyncs with mu released, then raises w.durableSeq to that target under
//     mu, never lowering it: records appended during the fsync are not
//     claimed. w.unsyncedRecs and w.unsyncedBytes count what was appended
//     since the last target was taken; a failed fsync adds its share back,
//     so the policy retries at its next trigger.
//   - Index entries are buffered and written only after an fsync covered
//     the records they point to (syncHeld, rotate), so the index lists only
//     durable records: one it lists that the data no longer holds was lost
//     after it was written (Verify: missing). The index may lag or be broken
//     (disk full); it is derived data and is rebuilt at the next Open, or at
//     rotation or Close if it broke. The index file, idxOff and idxBroken
//     belong to syncMu; the buffer idxBuf to mu.
//   - Sealed segments (all but the last) were fsynced at rotation, whatever
//     the policy, so after power loss only the last segment needs recovery.
//     The seal (and the new segment's header and directory fsyncs) run
//     under mu, with syncMu, so after the fsync in flight: no record may go
//     to the next segment before the seal completes, nor to the sealed one
//     after it started, so appenders have to wait for it in any case. An append that may rotate takes syncMu
//     before it writes (lockForRecord), judging by its uncompressed size, an
//     upper bound of what it stores.

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

// idxBufEntries is how many index entries the writer's buffer holds before
// it grows (entries wait for the next fsync, whatever their number).
const idxBufEntries = 256

// SyncPolicy says when the Writer fsyncs the open segment on its own. Any
// trigger that is set fires; the zero value never fsyncs on its own, but Sync,
// Close and rotation always do.
type SyncPolicy struct {
	// Records fsyncs once this many records were appended since the last
	// fsync; 1 fsyncs every record.
	Records int
	// Bytes fsyncs once this many bytes were appended since the last fsync.
	Bytes int64
	// Interval fsyncs pending records from a background goroutine every
	// Interval, so an idle writer does not keep data unsynced longer than that.
	// Appends do not wait for these fsyncs.
	Interval time.Duration
}

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
	Fsyncs     uint64 // completed fsyncs of segments
	SyncErrors uint64 // failed fsyncs
	Segments   uint64 // segments created (the first one included, if Open created it)
	DiskFull   uint64 // Append and AppendGap calls refused with ErrDiskFull
	NextSeq    uint64 // the sequence number of the next record
	DurableSeq uint64 // every record with a smaller seq is covered by a completed fsync
}

// Writer appends records to an archive directory. Its methods are safe for
// concurrent use. Only one Writer may have a directory open at a time: Open
// locks it (ErrLocked).
//
// fsyncs run without blocking Append: an Append waits for an fsync only when
// its own policy asks for one, or when its record starts a new segment (the
// old one is sealed first).
type Writer struct {
	syncMu sync.Mutex // held across an fsync; taken before mu (lock order at the top of the file)
	mu     sync.Mutex
	dir    string
	opts   Options
	log    *slog.Logger

	closed bool

	seg       *os.File
	segIndex  uint64
	segVer    uint16 // format version of the open segment
	off       uint64
	recStart  uint64 // where records start in the open segment
	dirtyTail bool

	idx       *os.File // syncMu
	idxOff    uint64   // syncMu
	idxBroken bool     // syncMu
	idxBuf    []byte   // mu: entries of records not yet covered by an fsync
	idxSpare  []byte   // syncMu: the other buffer, swapped in by syncHeld

	manifest Manifest // syncMu (and Open)

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

	stop chan struct{}
	done chan struct{}

	lock *shm.FileLock // dir/.lock, held from Open to Close

	// Test hooks (writer_internal_test.go), nil otherwise, set with both
	// locks held. syncHook runs in every fsync but a rotation's seal, with
	// mu released, just before the fsync of the given target seq.
	// rotateWaitHook runs when an append that may rotate finds an fsync in
	// flight and is about to wait for it, with mu released.
	syncHook       func(target uint64)
	rotateWaitHook func()
}

// Open opens the archive in dir for appending, creating dir and the first
// segment if needed. If the archive exists, Open recovers its last segment
// first: it cuts a torn tail (a partial or damaged record after which no
// valid record follows), rebuilds the segment's index if it does not match,
// fsyncs, and logs what it did; Recovery reports it. Damage followed by valid
// records is not a torn tail: it is kept (and logged) for Verify to report.
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
	}
	segs, err := w.openManifest()
	if err != nil {
		cp.close()
		lock.Close()
		return nil, fmt.Errorf("open archive %s: %w", dir, err)
	}
	if len(segs) == 0 {
		err = w.createSegment(w.manifest.FirstSegment, w.manifest.FirstRecord)
		if err == nil {
			err = writeManifest(dir, w.manifest)
		}
		if isDiskFull(err) && !errors.Is(err, ErrDiskFull) {
			err = fmt.Errorf("%w: %w", ErrDiskFull, err)
		}
		w.recovery = Recovery{Created: true, CutOffset: -1}
	} else {
		err = w.recoverLast(segs)
		if err == nil && w.segVer < FormatVersion {
			// Records of the current version never go into a segment of an
			// older one: start a new segment (the old one was fsynced by
			// recovery, so it is sealed).
			w.log.Info("the archive's last segment has an older format version; continuing in a new segment", "segment", w.segIndex, "version", w.segVer)
			err = w.rotate()
		}
	}
	if err != nil {
		w.closeFiles()
		cp.close()
		lock.Close()
		return nil, fmt.Errorf("open archive %s: %w", dir, err)
	}
	w.recovery.Segment = w.segIndex
	w.recovery.NextSeq = w.nextSeq
	w.durableSeq = w.nextSeq // the recovered (or new) segment was fsynced
	if iv := opts.Sync.Interval; iv > 0 {
		w.stop = make(chan struct{})
		w.done = make(chan struct{})
		go w.syncLoop(iv, w.stop)
	}
	return w, nil
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
	return r
}

// Append stores a frame and returns its sequence number. payload is the
// frame's bytes, exactly m.Stride*m.Height of them; Append does not keep it.
// The uncompressed path allocates nothing.
//
// Errors: ErrInvalid or ErrTooLarge for metadata that does not describe the
// payload (nothing written); ErrDiskFull when the filesystem is full (nothing
// kept, see ErrDiskFull); ErrSync when the record was written but the fsync
// the policy asked for failed (the seq is valid); ErrClosed.
func (w *Writer) Append(m Meta, payload []byte) (uint64, error) {
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
	seq, err := w.appendRecord(&h, stored, holdSync)
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
	seq, err := w.appendRecord(&h, w.gapBuf[:], holdSync)
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

// Sync writes the buffered index entries and fsyncs the open segment. It
// returns once every record appended before the call is durable, or with the
// fsync's error (ErrSync). An fsync in flight is waited for, then Sync runs
// its own; appends go on meanwhile.
func (w *Writer) Sync() error {
	w.syncMu.Lock()
	w.mu.Lock()
	defer w.unlock(true)
	if w.closed {
		return fmt.Errorf("sync archive: %w", ErrClosed)
	}
	return w.syncHeld()
}

// Close fsyncs and closes the archive. It is safe to call more than once.
func (w *Writer) Close() error {
	w.mu.Lock()
	stop := w.stop
	w.stop = nil
	w.mu.Unlock()
	if stop != nil {
		close(stop)
		<-w.done // the interval goroutine has returned and will not sync again
	}
	w.syncMu.Lock() // after the fsync in flight, if any: it uses the files closed below
	w.mu.Lock()
	defer w.unlock(true)
	if w.closed {
		return nil
	}
	w.closed = true // appends fail from here on, also while syncHeld releases mu
	var errs []error
	if w.dirtyTail {
		if err := w.cutBack(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := w.syncHeld(); err != nil {
		errs = append(errs, err)
	}
	broken := w.idxBroken
	errs = append(errs, w.closeFiles())
	if broken {
		w.repairIndex(w.segIndex)
	}
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

// needsRotation reports whether a record of size bytes (header, payload,
// padding) must go to a new segment. It grows with size.
func (w *Writer) needsRotation(size uint64) bool {
	return w.off > w.recStart && w.off+size > uint64(w.opts.MaxSegmentSize)
}

// lockForRecord is called with w.mu held before a record of at most n
// payload bytes is appended. If the record may not fit in the open segment,
// the append may rotate, and a rotation needs w.syncMu: lockForRecord then
// takes it too (holdSync), with TryLock while w.mu is held, or else by
// releasing w.mu, waiting for the fsync in flight and taking both locks in
// order. It returns with w.mu held, and with w.syncMu held if holdSync.
func (w *Writer) lockForRecord(n int) (holdSync bool, err error) {
	if w.closed {
		return false, ErrClosed
	}
	if !w.needsRotation(align8(recHeaderSize + uint64(n))) {
		return false, nil
	}
	if w.syncMu.TryLock() {
		return true, nil
	}
	hook := w.rotateWaitHook
	w.mu.Unlock()
	if hook != nil {
		hook()
	}
	w.syncMu.Lock()
	w.mu.Lock()
	if w.closed { // Close ran meanwhile
		w.syncMu.Unlock()
		return false, ErrClosed
	}
	return true, nil
}

// appendRecord writes h and payload at w.off, rotating first if the record
// does not fit (which needs holdSync: see lockForRecord). On success it
// consumes a seq and queues an index entry.
func (w *Writer) appendRecord(h *recHeader, payload []byte, holdSync bool) (uint64, error) {
	if w.dirtyTail {
		if err := w.cutBack(); err != nil {
			return 0, err
		}
	}
	size := align8(recHeaderSize + uint64(len(payload)))
	if w.needsRotation(size) {
		if !holdSync {
			// Unreachable: lockForRecord judged a record at least this large.
			return 0, fmt.Errorf("rotate segment %s: internal error: fsync lock not held", segName(w.segIndex))
		}
		if err := w.rotate(); err != nil {
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
	w.off += size
	w.nextSeq++
	w.stats.Records++
	w.stats.Bytes += size
	w.unsyncedRecs++
	w.unsyncedBytes += int64(size)
	w.addIndexEntry(entryOf(off, h))
	return h.seq, nil
}

func (w *Writer) writeAt(b []byte, off uint64) error {
	if off > math.MaxInt64 {
		return fmt.Errorf("write segment: %w: offset %d", ErrTooLarge, off)
	}
	_, err := w.seg.WriteAt(b, int64(off))
	return err
}

// failWrite cuts a failed record back and classifies the error.
func (w *Writer) failWrite(err error) error {
	w.dirtyTail = true
	if cerr := w.cutBack(); cerr != nil {
		w.log.Error("cannot cut back a failed write; will retry before the next write", "segment", w.segIndex, "offset", w.off, "err", cerr)
	}
	name := segName(w.segIndex)
	if isDiskFull(err) {
		w.stats.DiskFull++
		return fmt.Errorf("write segment %s: %w: %w", name, ErrDiskFull, err)
	}
	return fmt.Errorf("write segment %s: %w", name, err)
}

// cutBack truncates the open segment to w.off.
func (w *Writer) cutBack() error {
	if err := w.seg.Truncate(int64(w.off)); err != nil {
		return fmt.Errorf("cut back segment %s to %d: %w", segName(w.segIndex), w.off, err)
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

// writeIndexEntries writes entries of durable records to the open
// segment's index. A failure breaks the index of this segment (it is
// repaired at rotation, Close or the next Open); it never fails an append,
// because the records themselves are stored. The caller holds w.syncMu.
func (w *Writer) writeIndexEntries(b []byte) {
	if w.idxBroken || len(b) == 0 {
		return
	}
	_, err := w.idx.WriteAt(b, int64(w.idxOff))
	if err != nil {
		w.idxBroken = true
		_ = w.idx.Truncate(int64(w.idxOff))
		w.log.Warn("index write failed; the index of this segment will be rebuilt", "segment", w.segIndex, "err", err)
		return
	}
	w.idxOff += uint64(len(b))
}

// finishAppend is called after the record seq was appended, with w.mu held
// (and w.syncMu if holdSync). It runs the fsync that the policy asks for, if
// any, and returns with both locks released. The fsync runs with w.mu
// released; to take w.syncMu it releases w.mu first (lock order), so by then
// another fsync may have covered seq, and Close may have run.
func (w *Writer) finishAppend(seq uint64, holdSync bool) error {
	p := w.opts.Sync
	if !(p.Records > 0 && w.unsyncedRecs >= p.Records) && !(p.Bytes > 0 && w.unsyncedBytes >= p.Bytes) {
		w.unlock(holdSync)
		return nil
	}
	if !holdSync {
		w.mu.Unlock()
		w.syncMu.Lock()
		w.mu.Lock()
	}
	var err error
	switch {
	case w.durableSeq > seq: // covered by an fsync that took its target meanwhile
	case w.closed: // and the fsync of Close failed
		err = fmt.Errorf("sync archive: %w: %w", ErrSync, ErrClosed)
	default:
		err = w.syncHeld()
	}
	w.unlock(true)
	return err
}

// syncHeld writes the buffered index entries and fsyncs the open segment up
// to the records appended so far. The caller holds w.syncMu and w.mu; w.mu
// is released during the fsync (appends go on) and held again on return.
// The file stays open meanwhile because w.syncMu is held (see the top of the
// file). Only the records before the target taken here become durable.
func (w *Writer) syncHeld() error {
	// The entries of the records the fsync will cover; those appended
	// meanwhile go to the other buffer.
	pending := w.idxBuf
	w.idxBuf = w.idxSpare[:0]
	f, seg, target := w.seg, w.segIndex, w.nextSeq
	recs, bytes := w.unsyncedRecs, w.unsyncedBytes
	w.unsyncedRecs, w.unsyncedBytes = 0, 0
	hook := w.syncHook
	w.mu.Unlock()
	if hook != nil {
		hook(target)
	}
	err := f.Sync()
	if err == nil {
		w.writeIndexEntries(pending) // durable now: the index may list them
	}
	w.mu.Lock()
	if err != nil {
		w.stats.SyncErrors++
		w.unsyncedRecs += recs
		w.unsyncedBytes += bytes
		// Their entries wait for the next fsync, before the newer ones.
		w.idxBuf = append(pending, w.idxBuf...)
		w.idxSpare = w.idxSpare[:0]
		return fmt.Errorf("sync segment %s: %w: %w", segName(seg), ErrSync, err)
	}
	w.idxSpare = pending[:0]
	w.stats.Fsyncs++
	w.durableSeq = max(w.durableSeq, target)
	return nil
}

// syncLoop fsyncs pending records every iv until stop is closed. An fsync
// still in flight at a tick (of Sync or of a policy) delays that tick's.
func (w *Writer) syncLoop(iv time.Duration, stop <-chan struct{}) {
	defer close(w.done)
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		w.syncMu.Lock()
		w.mu.Lock()
		var err error
		if !w.closed && w.unsyncedRecs > 0 {
			err = w.syncHeld()
		}
		w.unlock(true)
		if err != nil {
			w.log.Error("interval fsync failed", "err", err)
		}
	}
}

// rotate seals the open segment (index flushed, fsynced) and opens the next.
// On failure the writer stays on the old segment. The caller holds both
// locks: the seal runs under w.mu (see the top of the file), and the old
// files are closed with no fsync in flight.
func (w *Writer) rotate() error {
	if err := w.seg.Sync(); err != nil {
		w.stats.SyncErrors++
		if isDiskFull(err) {
			w.stats.DiskFull++
			return fmt.Errorf("seal segment %s: %w: %w", segName(w.segIndex), ErrDiskFull, err)
		}
		return fmt.Errorf("seal segment %s: %w", segName(w.segIndex), err)
	}
	w.stats.Fsyncs++
	w.durableSeq = w.nextSeq
	w.unsyncedRecs, w.unsyncedBytes = 0, 0
	w.writeIndexEntries(w.idxBuf)
	w.idxBuf = w.idxBuf[:0]

	old, oldSeg, oldIdx, broken, oldVer := w.segIndex, w.seg, w.idx, w.idxBroken, w.segVer
	if err := w.createSegment(old+1, w.nextSeq); err != nil {
		w.seg, w.idx, w.segIndex, w.idxBroken, w.segVer = oldSeg, oldIdx, old, broken, oldVer
		if isDiskFull(err) {
			w.stats.DiskFull++
			return fmt.Errorf("rotate to segment %s: %w: %w", segName(old+1), ErrDiskFull, err)
		}
		return fmt.Errorf("rotate to segment %s: %w", segName(old+1), err)
	}
	oldSeg.Close()
	if oldIdx != nil {
		oldIdx.Close()
	}
	if broken {
		w.repairIndex(old)
	}
	return nil
}

// createSegment creates segment index with its header and an empty index,
// fsyncs both and the directory, and makes it the open segment. On failure
// it removes what it created and leaves the writer's fields untouched. The
// caller holds both locks, or is Open.
func (w *Writer) createSegment(index, firstSeq uint64) error {
	path := filepath.Join(w.dir, segName(index))
	ipath := filepath.Join(w.dir, idxName(index))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	var hdr [segHeaderSize]byte
	encodeSegHeader(hdr[:], index, time.Now().UnixNano(), firstSeq)
	fail := func(err error) error {
		f.Close()
		os.Remove(path)
		os.Remove(ipath)
		return err
	}
	if _, err := f.WriteAt(hdr[:], 0); err != nil {
		return fail(fmt.Errorf("write segment header: %w", err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("sync segment header: %w", err))
	}
	if err := writeIndexFile(ipath, index, FormatVersion, 0, nil, false); err != nil {
		return fail(err)
	}
	idx, err := os.OpenFile(ipath, os.O_RDWR, 0)
	if err != nil {
		return fail(fmt.Errorf("open index: %w", err))
	}
	if err := syncDir(w.dir); err != nil {
		idx.Close()
		return fail(err)
	}
	w.seg, w.idx, w.segIndex, w.segVer = f, idx, index, FormatVersion
	w.off, w.recStart, w.dirtyTail = segHeaderSize, segHeaderSize, false
	w.idxOff, w.idxBroken = idxHeaderSize, false
	w.idxBuf = w.idxBuf[:0]
	w.nextSeq = firstSeq
	w.stats.Segments++
	w.log.Info("created segment", "segment", index, "first_seq", firstSeq)
	return nil
}

// repairIndex rebuilds the index of a closed segment from its records.
func (w *Writer) repairIndex(index uint64) {
	ents, ver, err := scanIndexEntries(filepath.Join(w.dir, segName(index)))
	if err == nil {
		err = writeIndexFile(filepath.Join(w.dir, idxName(index)), index, ver, 0, ents, false)
	}
	if err != nil {
		w.log.Warn("cannot rebuild index; readers will scan the segment", "segment", index, "err", err)
		return
	}
	w.log.Info("rebuilt index", "segment", index, "entries", len(ents))
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

func (w *Writer) closeFiles() error {
	var errs []error
	if w.seg != nil {
		errs = append(errs, w.seg.Close())
		w.seg = nil
	}
	if w.idx != nil {
		errs = append(errs, w.idx.Close())
		w.idx = nil
	}
	return errors.Join(errs...)
}
