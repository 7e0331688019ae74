package archive

// Retention: the Writer deletes its oldest whole segments by size, age and
// free disk space, in the maintainer goroutine (never on an Append).
//
// Rules (FORMAT.md, "Retention"):
//   - Only sealed segments are deleted, oldest first: never the open
//     segment, never one waiting for its seal, never the pre-created one.
//   - Never a segment a reader has pinned: a reader holds a shared flock on
//     the oldest segment it may still read (reader.go); retention takes an
//     exclusive flock, without waiting, on each segment it deletes, and
//     stops at the first it cannot lock (a pinned segment protects every
//     later one, since deletion is oldest-first).
//   - The manifest's low-water mark moves first (atomically, durably), then
//     the files go: a crash between the two leaves retired files, which the
//     next Open deletes and Verify skips; never a hole the manifest does not
//     explain.
//   - Every deletion is counted (Stats.Deleted, the manifest's Deleted)
//     and logged, with cause "retention".

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/framering/framering/loss"
	"github.com/framering/framering/shm"
)

// Retention says which old segments the Writer deletes. The zero value
// deletes nothing. Any limit that is set applies.
type Retention struct {
	// MaxBytes caps the archive's size (segments and indexes): the oldest
	// segments are deleted while it is above, and a rotation that finds it
	// above deletes before the new segment gets a record, so it stays
	// within MaxBytes plus one segment (the one being written) while no
	// reader pins the oldest segments.
	MaxBytes int64
	// MaxAge deletes segments whose last record is older than this.
	MaxAge time.Duration
	// MinFree deletes the oldest segments while the filesystem has less
	// free space than this (before a full disk refuses appends). With
	// MaxBytes or MaxAge set and MinFree 0, Open uses two segments' size.
	MinFree int64
	// CheckEvery is how often age and free space are checked besides at
	// each rotation (0: one second).
	CheckEvery time.Duration
}

func (r Retention) enabled() bool { return r.MaxBytes > 0 || r.MaxAge > 0 || r.MinFree > 0 }

func (r Retention) checkEvery() time.Duration {
	if r.CheckEvery > 0 {
		return r.CheckEvery
	}
	return time.Second
}

// victim is a segment retention deletes.
type victim struct {
	index uint64
	size  int64    // segment and index bytes
	lock  *os.File // the exclusive flock held while it is deleted
}

// retentionHook, when set by a test, runs after the manifest moved and
// before the files of the victims are deleted.
var retentionHook func()

// applyRetention deletes what the policy asks for. Called by the
// maintainer only (so never concurrently with itself); it takes syncMu
// while it moves the low-water mark and deletes, and mu only to read the
// open segment's bounds.
func (w *Writer) applyRetention() {
	pol := w.opts.Retention
	if !pol.enabled() {
		return
	}
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	limit := w.cur.index // segments below it are sealed and closed...
	if len(w.sealing) > 0 {
		limit = w.sealing[0].index // ...except those waiting for their seal
	}
	w.mu.Unlock()

	del, err := w.retain(pol, limit)
	w.mu.Lock()
	w.countDeleted(del)
	w.mu.Unlock()
	if err != nil {
		w.log.Error("retention: deletion failed; retried at the next check", "err", err)
	}
}

// retain runs one retention pass over the segments below limit and
// returns what it deleted. The caller holds syncMu; mu may be held or not
// (retain does not take it).
func (w *Writer) retain(pol Retention, limit uint64) (Deleted, error) {
	victims, err := w.pickVictims(pol, limit)
	if err != nil {
		return Deleted{}, fmt.Errorf("retention: list the archive: %w", err)
	}
	if len(victims) == 0 {
		return Deleted{}, nil
	}
	defer func() {
		for _, v := range victims {
			v.lock.Close()
		}
	}()
	return w.deleteVictims(victims)
}

// countDeleted adds a retention pass's deletions to the writer's counters
// (under mu).
func (w *Writer) countDeleted(del Deleted) {
	w.stats.Deleted.Segments += del.Segments
	w.stats.Deleted.Records += del.Records
	w.stats.Deleted.Frames += del.Frames
	w.stats.Deleted.GapRecords += del.GapRecords
	w.stats.Deleted.Bytes += del.Bytes
	if del.Segments > 0 {
		w.stats.Deleted.LastUnixNs = del.LastUnixNs
	}
	w.archBytes -= int64(del.Bytes)
}

// pickVictims returns the oldest sealed segments below limit that the
// policy deletes, each locked exclusively; it stops at the first a reader
// has pinned.
func (w *Writer) pickVictims(pol Retention, limit uint64) ([]victim, error) {
	segs, err := listSegments(w.dir)
	if err != nil {
		return nil, err
	}
	type seg struct {
		index uint64
		size  int64
		mtime time.Time
	}
	var all []seg
	var total int64
	for _, s := range segs {
		if s < w.manifest.FirstSegment {
			continue
		}
		st, err := os.Stat(filepath.Join(w.dir, segName(s)))
		if err != nil {
			continue // the pre-created segment removed, or a race with Close
		}
		size := st.Size()
		if ist, err := os.Stat(filepath.Join(w.dir, idxName(s))); err == nil {
			size += ist.Size()
		}
		all = append(all, seg{s, size, st.ModTime()})
		total += size
	}
	free := int64(-1)
	minFree := pol.MinFree
	if minFree == 0 && (pol.MaxBytes > 0 || pol.MaxAge > 0) {
		minFree = 2 * w.opts.MaxSegmentSize
	}
	if minFree > 0 {
		free = freeBytes(w.dir)
	}
	now := time.Now()
	var out []victim
	for _, s := range all {
		if s.index >= limit {
			break
		}
		why := ""
		switch {
		case pol.MaxBytes > 0 && total > pol.MaxBytes:
			why = "size"
		case pol.MaxAge > 0 && now.Sub(s.mtime) > pol.MaxAge:
			why = "age"
		case minFree > 0 && free >= 0 && free < minFree:
			why = "free space"
		}
		if why == "" {
			break
		}
		lock, err := lockSegment(filepath.Join(w.dir, segName(s.index)), true)
		if err != nil {
			if errors.Is(err, errPinned) {
				w.log.Info("retention: a reader has the oldest segment open; deleting nothing before it", "segment", s.index)
			}
			break
		}
		out = append(out, victim{index: s.index, size: s.size, lock: lock})
		total -= s.size
		if free >= 0 {
			free += s.size
		}
		w.log.Debug("retention: deleting", "segment", s.index, "why", why)
	}
	return out, nil
}

// deleteVictims moves the low-water mark past the victims, durably, then
// deletes their files, and returns what it deleted. The caller holds
// syncMu.
func (w *Writer) deleteVictims(victims []victim) (Deleted, error) {
	last := victims[len(victims)-1].index
	next := last + 1
	nextFirst := firstSeqOf(filepath.Join(w.dir, segName(next)))
	var del Deleted
	for _, v := range victims {
		recs, frames := countRecords(filepath.Join(w.dir, segName(v.index)))
		del.Segments++
		del.Records += recs
		del.Frames += frames
		del.GapRecords += recs - frames
		del.Bytes += uint64(v.size)
	}
	m := w.manifest
	m.FirstSegment = next
	m.FirstRecord = max(m.FirstRecord, nextFirst)
	m.Deleted.Segments += del.Segments
	m.Deleted.Records += del.Records
	m.Deleted.Frames += del.Frames
	m.Deleted.GapRecords += del.GapRecords
	m.Deleted.Bytes += del.Bytes
	m.Deleted.LastUnixNs = time.Now().UnixNano()
	del.LastUnixNs = m.Deleted.LastUnixNs
	if err := writeManifest(w.dir, m); err != nil {
		return Deleted{}, err
	}
	w.manifest = m
	if retentionHook != nil {
		retentionHook()
	}
	var errs []error
	for _, v := range victims {
		if err := removeSegment(w.dir, v.index); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, syncDir(w.dir))
	w.log.Info("retention deleted segments", "cause", loss.Retention.String(), "segments", del.Segments, "first_segment", victims[0].index,
		"last_segment", last, "records", del.Records, "frames", del.Frames, "bytes", del.Bytes, "low_water_record", m.FirstRecord)
	if err := errors.Join(errs...); err != nil {
		return del, fmt.Errorf("delete retired segments (the next Open finishes it): %w", err)
	}
	return del, nil
}

// overCap reports whether the archive is larger than the retention cap
// (under mu) when a rotation is due: the maintainer fell behind, so the
// rotation deletes itself (rotateSlow) before the archive grows by another
// segment. The archive then stays within the cap plus the segment being
// written, unless a reader's pin holds the oldest segments.
func (w *Writer) overCap() bool {
	pol := w.opts.Retention
	return pol.MaxBytes > 0 && w.archBytes > pol.MaxBytes
}

// archiveSize is the size of the archive's segments and indexes at or
// above the low-water mark.
func archiveSize(dir string, first uint64) int64 {
	segs, err := listSegments(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, s := range segs {
		if s < first {
			continue
		}
		for _, name := range []string{segName(s), idxName(s)} {
			if st, err := os.Stat(filepath.Join(dir, name)); err == nil {
				n += st.Size()
			}
		}
	}
	return n
}

// countRecords counts the valid records of a sealed segment and how many
// are frames, from its index and record headers (no payload is read).
func countRecords(path string) (records, frames uint64) {
	m, err := shm.OpenFile(path)
	if err != nil {
		return 0, 0
	}
	defer m.Close()
	data := m.Bytes()
	h, err := decodeSegHeader(data)
	if err != nil {
		return 0, 0
	}
	off := recordStart(h)
	for off < uint64(len(data)) {
		rh, err := decodeRecHeader(data[off:], h.version)
		if err != nil || rh.size() > uint64(len(data))-off {
			break
		}
		records++
		if rh.kind == KindFrame {
			frames++
		}
		off += rh.size()
	}
	return records, frames
}

// freeBytes is the space the filesystem of dir has for this user, or -1.
func freeBytes(dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// errPinned says a segment is locked by another open file: a reader.
var errPinned = errors.New("segment pinned by a reader")

// lockSegment opens the segment at path and takes a flock on it:
// exclusive without waiting (retention: errPinned if a reader holds it), or
// shared, waiting for retention to let go (a reader's pin). The lock lives
// as long as the returned file.
func lockSegment(path string, exclusive bool) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	// Retention never waits (a reader may hold its pin for long); a reader
	// waits for retention, which holds its lock only to move the manifest
	// and unlink.
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX | syscall.LOCK_NB
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", filepath.Base(path), errPinned)
		}
		return nil, fmt.Errorf("lock %s: %w", filepath.Base(path), err)
	}
	return f, nil
}

// pinOldest takes a reader's pin: a shared flock on the oldest of segs (in
// order) that retention has not retired, so that retention deletes nothing
// from it on. Segments retention deleted, or is deleting, are skipped. It
// returns the pin (nil if no segment is left) and the segments from the
// pinned one on.
func pinOldest(dir string, segs []uint64) (*os.File, []uint64, error) {
	for len(segs) > 0 {
		// Waits while retention holds the segment (it moves the manifest,
		// deletes, then lets go): the manifest read below then says so.
		f, err := lockSegment(filepath.Join(dir, segName(segs[0])), false)
		if errors.Is(err, os.ErrNotExist) {
			segs = segs[1:] // deleted
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		// Retention moves the low-water mark before it deletes: a segment
		// below it is retired even if its file is still there.
		if m, ok, err := ReadManifest(dir); err == nil && ok && segs[0] < m.FirstSegment {
			f.Close()
			segs = segs[1:]
			continue
		}
		return f, segs, nil
	}
	return nil, nil, nil
}
