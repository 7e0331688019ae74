package archiver

// The archive loop: attach as a lossless consumer, store each frame straight
// from its lease, account for every loss, re-attach after an eviction or a
// producer restart.
//
// Invariants:
//   - Only the goroutine running loop touches the accountant, the pending
//     gaps and the Writer's append path; the stats goroutine reads counters
//     under a.mu and calls only goroutine-safe methods (Writer.Stats,
//     Consumer.Snapshot).
//   - A loss is counted (a.sum.Lost) when it is found and recorded
//     (a.sum.Recorded) when its gap record is appended; pending holds the
//     difference, in the order found. Pending gaps are appended before the
//     next frame, so the archive's records keep the ring's order.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/consumers"
	"github.com/framering/framering/loss"
	"github.com/framering/framering/ringbuf"
)

// Config is what Run needs; cmd/archiver fills it from flags.
type Config struct {
	// Ring or SocketPath says which ring; Name is the consumer's name in
	// its table.
	Ring, SocketPath, Name string
	// Dir is the archive directory.
	Dir string
	// SegmentSize is the rotation size (0: the archive's default).
	SegmentSize int64
	// Sync is the fsync policy.
	Sync archive.SyncPolicy
	// Compress stores frames S2-compressed when that makes them smaller.
	Compress bool
	// Retention deletes the oldest segments by size, age and free space
	// (archive.Retention; zero: keep everything).
	Retention archive.Retention
	// Copy attaches in safe-copy mode (frames copied out of shared memory
	// before they are written) instead of zero-copy.
	Copy bool
	// Reattach attaches again after an eviction or the end of the producer.
	Reattach bool
	// Wait waits for the producer at the first attach.
	Wait bool
	// Duration and Frames end the run after that long or that many frames
	// received from the ring (0: no limit).
	Duration time.Duration
	Frames   uint64
	// StatsInterval is the period of the stats log line (0: none).
	StatsInterval time.Duration
	// Spin is passed to the consumer (0: ringbuf's default).
	Spin time.Duration
	// Latency is passed to the consumer (ringbuf.Options.Latency).
	Latency bool
	// EarlyWake is passed to the consumer (ringbuf.Options.EarlyWake).
	EarlyWake time.Duration
	// Logger receives everything (default slog.Default()).
	Logger *slog.Logger
	// Metrics, if not nil, exports the run's counters to Prometheus (see
	// NewMetrics).
	Metrics *Metrics
	// Events, if not nil, records only the frames around events
	// (-record events; see events.go) instead of every frame.
	Events *EventsConfig
}

// Summary is what a run did.
type Summary struct {
	Dir      string `json:"dir"`
	Received uint64 `json:"received"` // frames the ring delivered
	Stored   uint64 `json:"stored"`   // frames appended to the archive
	Bytes    uint64 `json:"bytes"`    // frame bytes stored, uncompressed
	// Lost counts frames lost, by cause name (package loss), found during
	// this run; Recorded says how many of them are in gap records,
	// Pending how many are not (the disk was still full at exit).
	Lost        map[string]uint64 `json:"lost"`
	LostTotal   uint64            `json:"lost_total"`
	Recorded    uint64            `json:"recorded"`
	Pending     uint64            `json:"pending"`
	GapRecords  uint64            `json:"gap_records"`
	ArchiveSize uint64            `json:"archive_bytes"` // bytes appended to segments
	Fsyncs      uint64            `json:"fsyncs"`
	SyncErrors  uint64            `json:"sync_errors"`
	Segments    uint64            `json:"segments_created"`
	DiskFull    uint64            `json:"disk_full_refusals"` // appends refused with ErrDiskFull
	Evictions   uint64            `json:"evictions"`
	Attaches    uint64            `json:"attaches"`
	Restarts    uint64            `json:"producer_restarts"` // epoch changes seen
	// Unexplained counts frame ids skipped that neither the ring's drop
	// accounting nor its sequence numbers explain: not losses the pipeline
	// knows of (a source whose ids skip), so not recorded.
	Unexplained uint64 `json:"unexplained_id_gaps"`
	// Deleted is what retention deleted during this run (cause
	// "retention": deliberate, not a loss).
	Deleted    archive.Deleted `json:"retention_deleted"`
	NextSeq    uint64          `json:"next_seq"`
	DurableSeq uint64          `json:"durable_seq"`
	Elapsed    time.Duration   `json:"elapsed_ns"`
	Recovery   RecoveryInfo    `json:"recovery"`
	// Events is what event recording did (-record events only).
	Events *EventStats `json:"events,omitempty"`
}

// RecoveryInfo is what archive.Open repaired at start.
type RecoveryInfo struct {
	Created   bool   `json:"created"`
	NextSeq   uint64 `json:"next_seq"`
	CutOffset int64  `json:"cut_offset"` // -1: nothing cut
	CutBytes  int64  `json:"cut_bytes"`
	Corrupt   int    `json:"corrupt_regions"`
}

type archiver struct {
	cfg  Config
	log  *slog.Logger
	w    *archive.Writer
	acct *accountant

	pending []archive.Gap

	full      bool // the last append met a full disk
	fullSince time.Time
	fullLost  uint64
	fullLog   rateLimit
	errLog    rateLimit
	lossLog   rateLimit

	cons atomic.Pointer[consumers.Consumer]
	ev   *recorder // -record events; nil: every frame

	mu  sync.Mutex // guards sum and lost
	sum Summary
	// lost is sum.Lost by cause, as codes.
	lost map[archive.Cause]uint64
}

// rateLimit lets a message through at most once per period.
type rateLimit struct {
	last       time.Time
	suppressed uint64
}

func (r *rateLimit) allow(now time.Time) (bool, uint64) {
	if !r.last.IsZero() && now.Sub(r.last) < time.Second {
		r.suppressed++
		return false, 0
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	return true, n
}

// Run archives the ring's frames into cfg.Dir until ctx ends, the limits of
// cfg are reached, or the ring ends (without Reattach). It always closes the
// archive (fsync) before returning, and returns what it did even with an
// error.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Name == "" {
		cfg.Name = "archiver"
	}
	log := cfg.Logger
	codec := archive.CodecNone
	if cfg.Compress {
		codec = archive.CodecS2
	}
	start := time.Now()
	w, err := archive.Open(cfg.Dir, archive.Options{MaxSegmentSize: cfg.SegmentSize, Sync: cfg.Sync, Codec: codec, Retention: cfg.Retention,
		Logger: log})
	if err != nil {
		return nil, fmt.Errorf("run archiver: %w", err)
	}
	rec := w.Recovery()
	a := &archiver{cfg: cfg, log: log, w: w, lost: map[archive.Cause]uint64{}}
	cfg.Metrics.bind(a)
	a.sum.Dir = cfg.Dir
	a.sum.Recovery = RecoveryInfo{Created: rec.Created, NextSeq: rec.NextSeq, CutOffset: rec.CutOffset, CutBytes: rec.CutBytes, Corrupt: len(rec.Corrupt)}
	log.Info("archive opened", "dir", cfg.Dir, "created", rec.Created, "next_seq", rec.NextSeq,
		"segment", rec.Segment, "cut_offset", rec.CutOffset, "cut_bytes", rec.CutBytes, "corrupt_regions", len(rec.Corrupt),
		"fsync", FormatSyncPolicy(cfg.Sync), "codec", codec.String())
	var pos position
	if cfg.Events != nil {
		if a.ev, err = a.startEvents(ctx, *cfg.Events); err != nil {
			w.Close()
			return nil, fmt.Errorf("run archiver: %w", err)
		}
	} else if pos, err = lastPosition(cfg.Dir, rec.NextSeq); err != nil {
		log.Warn("cannot tell which frame the archive ends with; no gap will be recorded before the first frame", "err", err)
	}
	a.acct = newAccountant(pos)
	if pos.known {
		log.Info("archive ends", "frame_id", pos.lastID, "epoch", fmt.Sprintf("%016x", pos.epoch))
	}

	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	statsDone := make(chan struct{})
	statsStop := make(chan struct{})
	go a.statsLoop(statsStop, statsDone)

	runErr := a.loop(ctx)
	if a.ev != nil {
		// An events archive records no gaps: frames outside events are
		// not kept on purpose.
		runErr = errors.Join(runErr, a.ev.finish())
	} else {
		for _, g := range a.acct.endGaps() {
			a.lose(g)
		}
	}

	close(statsStop)
	<-statsDone
	var pendErr error
	if err := a.flush(); err != nil || len(a.pending) > 0 {
		log.Error("losses left unrecorded at exit: the archive could not take their gap records", "frames", a.pendingCount(), "err", err)
		pendErr = fmt.Errorf("run archiver: %w: %d frames", ErrUnrecorded, a.pendingCount())
	}
	closeErr := w.Close()
	if closeErr != nil {
		log.Error("close archive", "err", closeErr)
	}
	sum := a.summary()
	sum.Elapsed = time.Since(start)
	return sum, errors.Join(runErr, pendErr, closeErr)
}

func (a *archiver) limitReached() bool {
	return a.cfg.Frames > 0 && a.sum.Received >= a.cfg.Frames
}

func (a *archiver) loop(ctx context.Context) error {
	first := true
	for {
		c, err := consumers.Attach(ctx, consumers.Options{
			Ring: a.cfg.Ring, SocketPath: a.cfg.SocketPath, Name: a.cfg.Name,
			Mode: consumers.Lossless, Copy: a.cfg.Copy, Wait: a.cfg.Wait || !first,
			Spin: a.cfg.Spin, Latency: a.cfg.Latency, EarlyWake: a.cfg.EarlyWake, Logger: a.log,
			// Every frame the ring still holds: a new archive starts with
			// the oldest, a restarted archiver catches up on what was
			// published while it was down (handle skips what it already has).
			From: 1,
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("run archiver: %w", err)
		}
		first = false
		a.cons.Store(c)
		s, serr := c.Snapshot()
		a.acct.attached(dropsOf(s), s.Epoch, serr == nil)
		if serr == nil {
			a.acct.catchUp(s.Epoch, s.Published)
		}
		a.mu.Lock()
		a.sum.Attaches++
		a.mu.Unlock()
		var fatal error
		for f := range c.Frames(ctx) {
			if fatal = a.handle(c, f); fatal != nil || a.limitReached() {
				break
			}
		}
		err = c.Err()
		if fatal != nil || a.limitReached() || ctx.Err() != nil {
			c.Close()
			return fatal
		}
		switch {
		case err == nil: // the range ended without a cause: treat as the end
			c.Close()
			return nil
		case errors.Is(err, consumers.ErrEvicted):
			a.mu.Lock()
			a.sum.Evictions++
			a.mu.Unlock()
			a.acct.evicted()
			c.Close()
			if !a.cfg.Reattach {
				a.log.Error("evicted by the producer; not re-attaching (-reattach=false)", "err", err)
				return fmt.Errorf("run archiver: %w: %w", ErrEvicted, err)
			}
			a.log.Warn("evicted by the producer; re-attaching as a new consumer", "err", err)
		case errors.Is(err, consumers.ErrClosed) || errors.Is(err, consumers.ErrProducerGone):
			s, serr := c.Snapshot()
			a.acct.ringEnded(dropsOf(s), s.Epoch, serr == nil)
			c.Close()
			if !a.cfg.Reattach {
				a.log.Info("the ring ended; not re-attaching (-reattach=false)", "err", err)
				return nil
			}
			a.log.Info("the ring ended; waiting for a new producer", "err", err)
		default:
			c.Close()
			return fmt.Errorf("run archiver: %w", err)
		}
	}
}

// handle archives one frame straight from its lease and releases it. It
// returns an error only when the archive cannot go on at all (closed).
func (a *archiver) handle(c *consumers.Consumer, f *consumers.Frame) error {
	if a.ev != nil {
		a.mu.Lock()
		a.sum.Received++
		a.mu.Unlock()
		err := a.ev.frame(f.Epoch(), f.Meta(), f.Bytes())
		f.Release()
		return err
	}
	if p := a.acct.pos; p.known && p.epoch == f.Epoch() && alreadyHave(p, f.Meta()) {
		// Already archived (we asked the ring for every frame it holds).
		f.Release()
		return nil
	}
	err := a.archiveFrame(f.Epoch(), f.Meta(), f.Bytes(), f.Check, func() (counts, uint64, bool) {
		s, err := c.Snapshot()
		if err != nil {
			a.log.Debug("snapshot for loss attribution", "err", err)
			return counts{}, 0, false
		}
		return dropsOf(s), s.Epoch, true
	})
	f.Release() // the one copy is done: give the slot back now
	return err
}

// alreadyHave reports whether frame m of the position's epoch is at or
// before the position: by ring seq where the position has one, else by
// frame id.
func alreadyHave(p position, m ringbuf.Meta) bool {
	if p.ringSeq != 0 {
		return m.Seq <= p.ringSeq
	}
	return m.FrameID <= p.lastID
}

// archiveFrame accounts for frame m of epoch e, records the losses before
// it, and stores it. snap reads the ring's drop counters, when needed. The
// path of a frame without losses allocates nothing.
// check (if not nil) says whether b was still intact after it was written
// (a revoked lease may change under the writer): see archive.AppendChecked.
func (a *archiver) archiveFrame(e uint64, m ringbuf.Meta, b []byte, check func() error, snap snapFunc) error {
	a.mu.Lock()
	a.sum.Received++
	a.mu.Unlock()
	prevEpoch := a.acct.pos.epoch
	gaps := a.acct.frame(e, m, snap)
	if prevEpoch != 0 && prevEpoch != e {
		a.mu.Lock()
		a.sum.Restarts++
		a.mu.Unlock()
		a.log.Warn("producer restarted", "old_epoch", fmt.Sprintf("%016x", prevEpoch), "epoch", fmt.Sprintf("%016x", e),
			"first_seq", m.Seq, "first_id", m.FrameID)
	}
	for _, g := range gaps {
		a.lose(g)
	}
	return a.store(e, m, b, check)
}

// store appends frame m of epoch e, after the pending gaps. check (if not
// nil) says whether b was intact after it was written.
func (a *archiver) store(e uint64, m ringbuf.Meta, b []byte, check func() error) error {
	id := m.FrameID
	lost := archive.Gap{FirstID: id, LastID: id, Count: 1, Epoch: e, FirstSeq: m.Seq, LastSeq: m.Seq}
	err := a.flush()
	if err == nil {
		am := archive.Meta{Epoch: e, RingSeq: m.Seq, FrameID: id, Timestamp: m.Timestamp, Width: int(m.Width), Height: int(m.Height), Stride: int(m.Stride), Format: m.Format}
		_, err = a.w.AppendChecked(am, b, check)
		if errors.Is(err, archive.ErrSync) {
			// The record is stored; its durability waits for the next fsync.
			if ok, n := a.errLog.allow(time.Now()); ok {
				a.log.Error("fsync failed; the writer retries at the next trigger", "err", err, "suppressed", n)
			}
			err = nil
		}
	}
	now := time.Now()
	switch {
	case err == nil:
		a.mu.Lock()
		a.sum.Stored++
		a.sum.Bytes += uint64(len(b))
		a.mu.Unlock()
		if a.full {
			a.full = false
			a.log.Warn("disk space returned; losses recorded", "lost_while_full", a.fullLost, "full_for", now.Sub(a.fullSince).Round(time.Millisecond).String())
		}
		return nil
	case errors.Is(err, archive.ErrPayloadChanged):
		// We were evicted while writing it and the producer reused the
		// slot: the frame is lost (its torn record was taken back).
		lost.Cause = loss.Evicted
		a.lose(lost)
		a.log.Warn("frame changed while it was written (evicted, its lease revoked); recorded as lost", "frame_id", id, "seq", m.Seq)
		return nil
	case errors.Is(err, archive.ErrDiskFull):
		lost.Cause = loss.DiskFull
		a.lose(lost)
		if !a.full {
			a.full, a.fullSince, a.fullLost = true, now, 0
		}
		a.fullLost++
		if ok, n := a.fullLog.allow(now); ok {
			a.log.Error("archive disk full: frames are counted lost until space returns", "frame_id", id,
				"lost_while_full", a.fullLost, "pending_gap_frames", a.pendingCount(), "suppressed", n, "err", err)
		}
		return nil
	case errors.Is(err, archive.ErrInvalid) || errors.Is(err, archive.ErrTooLarge):
		lost.Cause = loss.Rejected
		a.lose(lost)
		a.log.Error("frame rejected by the archive", "frame_id", id, "seq", m.Seq, "err", err)
		return nil
	case errors.Is(err, archive.ErrClosed):
		return fmt.Errorf("store frame %d: %w", id, err)
	default:
		lost.Cause = loss.WriteError
		a.lose(lost)
		if ok, n := a.errLog.allow(now); ok {
			a.log.Error("archive write failed; frames are counted lost", "frame_id", id, "suppressed", n, "err", err)
		}
		return nil
	}
}

// maxPending bounds the pending gap list; beyond it, gaps merge per cause.
const maxPending = 64

// lose counts a loss and queues its gap record. Losses are logged at most
// once per second (the gap records and the summary have them all).
func (a *archiver) lose(g archive.Gap) {
	a.mu.Lock()
	a.lost[g.Cause] += g.Count
	a.sum.LostTotal += g.Count
	total := a.sum.LostTotal
	a.mu.Unlock()
	if g.Cause != loss.DiskFull { // logged by store, with its own limit
		if ok, n := a.lossLog.allow(time.Now()); ok {
			a.log.Warn("frames lost", "cause", g.Cause.String(), "count", g.Count, "first_id", g.FirstID, "last_id", g.LastID,
				"lost_total", total, "events_suppressed", n)
		}
	}
	if n := len(a.pending); n > 0 && adjacent(a.pending[n-1], g) {
		last := &a.pending[n-1]
		last.LastID, last.LastSeq = g.LastID, g.LastSeq
		last.Count += g.Count
		return
	}
	if len(a.pending) >= maxPending {
		for i := range a.pending {
			if p := &a.pending[i]; p.Cause == g.Cause {
				*p = union(*p, g)
				return
			}
		}
	}
	a.pending = append(a.pending, g)
}

// adjacent reports whether gap g continues gap p exactly: same cause and
// epoch, the next frame ids, and the next ring seqs if both have them.
func adjacent(p, g archive.Gap) bool {
	wide := func(x archive.Gap) bool { return x.FirstID == 0 && x.LastID == math.MaxUint64 }
	if p.Cause != g.Cause || p.Epoch != g.Epoch || wide(p) || wide(g) || p.LastID == math.MaxUint64 || p.LastID+1 != g.FirstID {
		return false
	}
	if (p.FirstSeq == 0) != (g.FirstSeq == 0) {
		return false
	}
	return p.FirstSeq == 0 || p.LastSeq+1 == g.FirstSeq
}

// union is one gap for the losses of p and g (same cause): the range of
// ids (and ring seqs, if both have them) that holds both sets.
func union(p, g archive.Gap) archive.Gap {
	u := archive.Gap{FirstID: min(p.FirstID, g.FirstID), LastID: max(p.LastID, g.LastID), Count: p.Count + g.Count, Cause: p.Cause}
	if p.Epoch == g.Epoch {
		u.Epoch = p.Epoch
		if p.FirstSeq != 0 && g.FirstSeq != 0 {
			u.FirstSeq, u.LastSeq = min(p.FirstSeq, g.FirstSeq), max(p.LastSeq, g.LastSeq)
		}
	}
	return u
}

func (a *archiver) pendingCount() uint64 {
	var n uint64
	for _, g := range a.pending {
		n += g.Count
	}
	return n
}

// flush appends the pending gap records, in order, until one fails.
func (a *archiver) flush() error {
	for len(a.pending) > 0 {
		g := a.pending[0]
		_, err := a.w.AppendGap(g)
		if err != nil && !errors.Is(err, archive.ErrSync) {
			if errors.Is(err, archive.ErrInvalid) {
				// Cannot happen for gaps built here; do not block the queue on it.
				a.log.Error("gap refused by the archive; its loss stays counted but unrecorded", "gap", g, "err", err)
				a.pending = a.pending[1:]
				continue
			}
			return err
		}
		a.pending = a.pending[1:]
		a.mu.Lock()
		a.sum.Recorded += g.Count
		a.mu.Unlock()
	}
	a.pending = a.pending[:0:0]
	return nil
}

// summary returns the counters so far.
func (a *archiver) summary() *Summary {
	ws := a.w.Stats()
	a.mu.Lock()
	s := a.sum
	s.Lost = map[string]uint64{}
	for c, n := range a.lost {
		s.Lost[c.String()] = n
	}
	a.mu.Unlock()
	s.Pending = s.LostTotal - s.Recorded
	s.GapRecords, s.ArchiveSize, s.Fsyncs, s.SyncErrors = ws.GapRecords, ws.Bytes, ws.Fsyncs, ws.SyncErrors
	s.Segments, s.DiskFull, s.NextSeq, s.DurableSeq = ws.Segments, ws.DiskFull, ws.NextSeq, ws.DurableSeq
	s.Unexplained = a.acct.unexplained
	s.Deleted = ws.Deleted
	if a.ev != nil {
		es := a.ev.Stats()
		s.Events = &es
	}
	return &s
}

// statsLoop logs a stats line every StatsInterval.
func (a *archiver) statsLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	if a.cfg.StatsInterval <= 0 {
		<-stop
		return
	}
	t := time.NewTicker(a.cfg.StatsInterval)
	defer t.Stop()
	var prevStored, prevBytes uint64
	prev := time.Now()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			ws := a.w.Stats()
			a.mu.Lock()
			s := a.sum
			a.mu.Unlock()
			dt := now.Sub(prev).Seconds()
			attrs := []any{
				"received", s.Received, "stored", s.Stored, "bytes", s.Bytes,
				"fps", round1(float64(s.Stored-prevStored) / dt), "mb_per_s", round1(float64(s.Bytes-prevBytes) / dt / 1e6),
				"lost", s.LostTotal, "unrecorded", s.LostTotal - s.Recorded,
				"fsyncs", ws.Fsyncs, "durable_seq", ws.DurableSeq, "next_seq", ws.NextSeq,
			}
			if ws.Deleted.Segments > 0 {
				attrs = append(attrs, "retention_deleted_segments", ws.Deleted.Segments, "retention_deleted_frames", ws.Deleted.Frames)
			}
			if c := a.cons.Load(); c != nil {
				if snap, err := c.Snapshot(); err == nil {
					for _, ci := range snap.Consumers {
						if ci.Pid == os.Getpid() && ci.Name == a.cfg.Name {
							attrs = append(attrs, "lag", ci.Lag)
						}
					}
					attrs = append(attrs, "ring_published", snap.Published, "ring_drops", snap.Drops.Total())
				}
			}
			a.log.Info("stats", attrs...)
			prevStored, prevBytes, prev = s.Stored, s.Bytes, now
		}
	}
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }
