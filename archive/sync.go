package archive

// The fsync policy, and the maintainer: the Writer's background goroutine
// that seals rotated segments, fsyncs by interval, pre-creates the next
// segment and applies retention, so that none of it runs on an Append.

import (
	"fmt"
	"time"
)

// idxBufEntries is how many index entries the writer's buffer holds before
// it grows (entries wait for the next fsync, whatever their number).
const idxBufEntries = 256

// SyncPolicy says when the Writer fsyncs the open segment on its own. Any
// trigger that is set fires; the zero value never fsyncs on its own, but
// Sync, Close and every rotation's seal always do.
type SyncPolicy struct {
	// Records fsyncs once this many records were appended since the last
	// fsync; 1 fsyncs every record. The Append that reaches the count
	// waits for the fsync (so with 1, an Append returns a durable record).
	Records int
	// Bytes fsyncs once this many bytes were appended since the last
	// fsync; the Append that reaches it waits for the fsync.
	Bytes int64
	// Interval fsyncs pending records from the background goroutine every
	// Interval, so an idle writer does not keep data unsynced longer than
	// that. Appends never wait for these fsyncs: the policy that keeps
	// fsyncs off the appender entirely.
	Interval time.Duration
}

// Sync writes the buffered index entries and fsyncs the open segment (after
// sealing a segment rotated away from, if its seal is pending). It returns
// once every record appended before the call is durable, or with the
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

// needsRotation reports whether a record of size bytes (header, payload,
// padding) must go to a new segment. It grows with size.
func (w *Writer) needsRotation(size uint64) bool {
	return w.off > w.recStart && w.off+size > uint64(w.opts.MaxSegmentSize)
}

// lockForRecord is called with w.mu held before a record of at most n
// payload bytes is appended. A record that starts a new segment switches to
// the pre-created one under w.mu alone; if there is none, or the archive is
// over its retention cap by more than a segment (the maintainer fell
// behind), the rotation is the slow one (rotateSlow), which needs w.syncMu
// too: lockForRecord then
// takes it (holdSync), with TryLock while w.mu is held, or else by
// releasing w.mu, waiting for the fsync in flight and taking both locks in
// order. It returns with w.mu held, and with w.syncMu held if holdSync.
func (w *Writer) lockForRecord(n int) (holdSync bool, err error) {
	if w.closed {
		return false, ErrClosed
	}
	if !w.needsRotation(align8(recHeaderSize+uint64(n))) || (w.spare != nil && !w.overCap()) {
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

// finishAppend is called after the record seq was appended, with w.mu held
// (and w.syncMu if holdSync). It runs the fsync that the Records or Bytes
// policy asks for, if any, and returns with both locks released. The fsync
// runs with w.mu released; to take w.syncMu it releases w.mu first (lock
// order), so by then another fsync may have covered seq, and Close may have
// run.
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

// syncHeld seals the segments waiting for it, then fsyncs the open segment
// up to the records appended so far and writes their index entries. The
// caller holds w.syncMu and w.mu; w.mu is released during the I/O (appends
// go on) and held again on return. The open segment's files stay open
// meanwhile because w.syncMu is held: only a seal or Close closes them.
// Only the records before the target taken here become durable.
func (w *Writer) syncHeld() error {
	if err := w.sealPending(); err != nil {
		return err
	}
	// The entries of the records the fsync will cover; those appended
	// meanwhile go to the other buffer.
	pending := w.idxBuf
	w.idxBuf = w.idxSpare[:0]
	s, target := w.cur, w.nextSeq
	recs, bytes := w.unsyncedRecs, w.unsyncedBytes
	w.unsyncedRecs, w.unsyncedBytes = 0, 0
	hook := w.syncHook
	w.mu.Unlock()
	if hook != nil {
		hook(target)
	}
	err := s.f.Sync()
	if err == nil {
		s.writeEntries(pending, w.log) // durable now: the index may list them
	}
	w.mu.Lock()
	if err != nil {
		w.stats.SyncErrors++
		w.unsyncedRecs += recs
		w.unsyncedBytes += bytes
		if s == w.cur {
			// Their entries wait for the next fsync, before the newer ones.
			w.idxBuf = append(pending, w.idxBuf...)
		} else {
			// Rotated away meanwhile: the seal covers them.
			s.pending = append(pending, s.pending...)
		}
		w.idxSpare = w.idxSpare[:0]
		return fmt.Errorf("sync segment %s: %w: %w", segName(s.index), ErrSync, err)
	}
	w.idxSpare = pending[:0]
	w.stats.Fsyncs++
	w.durableSeq = max(w.durableSeq, target)
	return nil
}

// poke wakes the maintainer without waiting.
func (w *Writer) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// maintain is the maintainer goroutine: on each poke and each interval
// tick it seals the segments rotated away from, fsyncs by interval,
// applies retention and pre-creates the next segment, until stop is
// closed. Errors are logged and retried at the next wake-up.
func (w *Writer) maintain(stop <-chan struct{}) {
	defer close(w.done)
	var tick <-chan time.Time
	if iv := w.opts.Sync.Interval; iv > 0 {
		t := time.NewTicker(iv)
		defer t.Stop()
		tick = t.C
	}
	var retain <-chan time.Time
	if w.opts.Retention.enabled() {
		t := time.NewTicker(w.opts.Retention.checkEvery())
		defer t.Stop()
		retain = t.C
	}
	for {
		interval := false
		select {
		case <-stop:
			return
		case <-w.kick:
		case <-tick:
			interval = true
		case <-retain:
		}
		w.syncMu.Lock()
		w.mu.Lock()
		var err error
		if !w.closed {
			err = w.sealPending()
			if err == nil && interval && w.unsyncedRecs > 0 {
				err = w.syncHeld()
			}
		}
		w.unlock(true)
		if err != nil {
			w.log.Error("background fsync failed; retrying at the next wake-up", "err", err)
		}
		w.applyRetention()
		w.prepareSpare()
	}
}
