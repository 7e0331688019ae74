package producer

// The acquisition loop: one goroutine moving buffers between the ring and
// the grabber. Everything in loopState belongs to it.
//
// Invariants kept by this file (doc.go has the ownership table):
//
//  1. Zero-copy: the grabber may write ring slot k only while the ring has
//     lent k to the producer. Every Queue(ids[k]) follows an Acquire that
//     returned k (lent[k] is that Slot, queued[k] is true) and every
//     Publish or Abort of lent[k] follows the grabber's giving the buffer
//     back (Dequeue, or Stop). No other path queues a ring slot.
//  2. Zero-copy: a published slot's buffer is detached (idle with the
//     producer, not writable by the grabber) before this goroutine calls
//     Acquire again, so when the ring hands the slot out for reuse its
//     buffer can be queued. Detach follows Publish directly; a Detach that
//     fails ends the loop.
//  3. inGrabber == the number of true entries of queued <= QueueDepth.
//  4. Accounting: every frame id the grabber consumes ends either
//     published or in exactly one cause of the ring's drop table (one
//     source of truth: Stats reads the ring): an incomplete frame under its
//     status's cause, a wrong-sized one as size_mismatch, the grabber's
//     underruns (added by delta) and a frame it cut short for want of a
//     buffer (FrameUnderrun) as blocked while the ring blamed a consumer
//     for the missing slots and as underrun otherwise, its
//     Counters.Lost by their causes, and Stop's discards as discarded.
//     Once the grabber is stopped, frames == published + drops. Every drop
//     is recorded before the next Publish (docs/LAYOUT.md 8.5).
//  5. The per-frame path (step and what it calls) allocates nothing:
//     errors are built only on failure.
//  6. Progress: the loop never waits for the grabber longer than the
//     ring's heartbeat period, and beats the ring's heartbeat each time a
//     wait ends (docs/LAYOUT.md 8.4), so a hung grabber call shows as a
//     stalled producer, an idle source as "waiting".

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/framering/framering/loss"
	"github.com/framering/framering/native"
	"github.com/framering/framering/ringbuf"
)

// Starved-wait bounds: how long the loop sleeps when it has no buffer in
// the grabber (every slot held or pinned by consumers), before it tries to
// acquire again.
const (
	minStarvedWait = 100 * time.Microsecond
	maxStarvedWait = 2 * time.Millisecond
)

type loopState struct {
	p    *Producer
	ring *ringbuf.Producer
	grab native.Grabber
	cp   bool // safe-copy mode
	want int  // buffers to keep queued (QueueDepth)

	// Zero-copy: ring slot k is grabber buffer ids[k].
	ids       []native.BufferID
	slotOf    map[native.BufferID]int
	lent      []ringbuf.Slot // lent[k] is valid while queued[k]
	queued    []bool
	inGrabber int

	// Safe-copy: the grabber's private buffers.
	private []native.BufferID

	lastUnderruns uint64
	lastLost      loss.Counts
	lastCopies    uint64
	lastDiscarded uint64
	// blocked is set while refills fail because the ring blames a
	// consumer for keeping every slot: the grabber's underruns meanwhile
	// are that consumer's doing (loss.Blocked), not the source's.
	blocked     bool
	starvedWait time.Duration
	timer       *time.Timer
	heartbeat   time.Duration // the ring's heartbeat period: the longest a Dequeue waits
}

// init lends the grabber its buffers: every ring slot announced once
// (zero-copy), or want private buffers allocated (safe-copy).
func (l *loopState) init(p *Producer) error {
	*l = loopState{p: p, ring: p.ring, grab: p.grab, cp: p.cfg.Copy, want: p.cfg.QueueDepth, heartbeat: p.cfg.heartbeat()}
	l.starvedWait = maxStarvedWait
	if r := p.cfg.FrameRate; r > 0 {
		l.starvedWait = min(maxStarvedWait, max(minStarvedWait, time.Duration(float64(time.Second)/r/4)))
	}
	l.timer = time.NewTimer(time.Hour)
	l.timer.Stop()
	if l.cp {
		size := max(p.cfg.Geometry.Size(), p.grab.Config().PayloadSize) // a camera's payload may carry more than the image
		for range l.want {
			id, err := l.grab.Allocate(size)
			if err != nil {
				return fmt.Errorf("allocate buffer: %w: %w", ErrGrabber, err)
			}
			l.private = append(l.private, id)
		}
		return nil
	}
	n := l.ring.Slots()
	l.ids = make([]native.BufferID, n)
	l.slotOf = make(map[native.BufferID]int, n)
	l.lent = make([]ringbuf.Slot, n)
	l.queued = make([]bool, n)
	for k := range n {
		id, err := l.grab.Announce(l.ring.SlotBytes(k))
		if err != nil {
			return fmt.Errorf("announce slot %d: %w: %w", k, ErrGrabber, err)
		}
		l.ids[k] = id
		l.slotOf[id] = k
	}
	return nil
}

// prime queues the first buffers, before the grabber starts.
func (l *loopState) prime() error {
	if l.cp {
		for _, id := range l.private {
			if err := l.grab.Queue(id); err != nil {
				return fmt.Errorf("queue buffer: %w: %w", ErrGrabber, err)
			}
		}
		return nil
	}
	return l.refill()
}

// step handles one frame (or, with nothing queued, one short wait).
func (p *Producer) step(ctx context.Context) error {
	if p.loop.cp {
		return p.loop.stepCopy(ctx)
	}
	return p.loop.stepZeroCopy(ctx)
}

// refill tops the grabber's input pool up to want ring slots (zero-copy).
// A slot the ring cannot give (every one held by a consumer, or not yet
// passed by a lossless one) is simply not queued: the grabber underruns
// and the loss is counted; the producer never waits for a consumer.
func (l *loopState) refill() error {
	for l.inGrabber < l.want {
		s, err := l.ring.Acquire()
		if errors.Is(err, ringbuf.ErrNoFreeSlot) {
			_, l.blocked = l.ring.Blamed()
			return nil
		}
		if err != nil {
			return fmt.Errorf("acquire slot: %w: %w", ErrRing, err)
		}
		k := s.Index()
		if err := l.grab.Queue(l.ids[k]); err != nil {
			l.ring.Abort(s)
			return fmt.Errorf("queue slot %d: %w: %w", k, ErrGrabber, err)
		}
		l.lent[k], l.queued[k] = s, true
		l.inGrabber++
	}
	l.blocked = false
	return nil
}

// stepZeroCopy: dequeue a filled ring slot, publish it in place, detach
// its buffer, queue a free slot instead.
func (l *loopState) stepZeroCopy(ctx context.Context) error {
	if err := l.refill(); err != nil {
		return err
	}
	if l.inGrabber == 0 {
		// Starved: consumers hold or pin every slot. No frame can come;
		// the grabber counts the ones it loses. Look again shortly. The
		// loop itself is healthy: it beats.
		l.account(l.grab.Counters())
		l.ring.Beat(ringbuf.SourceAcquiring)
		return l.wait(ctx)
	}
	f, info, ok, err := l.dequeue(ctx)
	if !ok {
		return err
	}
	k, ok := l.slotOf[info.Buffer]
	if !ok || !l.queued[k] {
		// The grabber filled a buffer it was not lent (invariant 1 of the
		// grabber, broken). Do not publish it.
		f.Detach()
		return fmt.Errorf("dequeue frame %d: %w: buffer %#x is not a slot lent to the grabber", info.FrameID, ErrGrabber, uint64(info.Buffer))
	}
	if cause, ok := l.incomplete(info); ok {
		// The slot stays lent; the grabber fills it again.
		l.ring.RecordDrops(cause, 1)
		if err := f.Requeue(); err != nil {
			return fmt.Errorf("requeue slot %d: %w: %w", k, ErrGrabber, err)
		}
		l.account(l.grab.Counters())
		return nil
	}
	// Drops that happened before this frame are in the ring before it is
	// published (invariant 4).
	l.account(l.grab.Counters())
	if _, err := l.ring.Publish(l.lent[k], meta(info)); err != nil {
		return fmt.Errorf("publish slot %d: %w: %w", k, ErrRing, err)
	}
	l.lent[k], l.queued[k] = ringbuf.Slot{}, false
	l.inGrabber--
	// Invariant 2: back to us, idle, before the next Acquire.
	if _, err := f.Detach(); err != nil {
		return fmt.Errorf("detach slot %d: %w: %w", k, ErrGrabber, err)
	}
	l.p.published.Add(1)
	return nil // the next step queues a free slot in its place
}

// dequeue waits for the grabber's next frame, for at most the heartbeat
// period, and beats the ring's heartbeat with what it found: a frame (the
// publish beats), nothing (waiting), or a lost source. ok is false when
// there is no frame this time; err then says whether that is a failure
// (nil: come round again).
func (l *loopState) dequeue(ctx context.Context) (f native.Frame, info native.FrameInfo, ok bool, err error) {
	f, err = l.grab.Dequeue(ctx, l.heartbeat)
	switch {
	case err == nil:
		if info, err = f.Info(); err != nil {
			return f, info, false, fmt.Errorf("acquire frame: %w: %w", ErrGrabber, err)
		}
		return f, info, true, nil
	case err == native.ErrNoFrame:
		l.account(l.grab.Counters())
		l.ring.Beat(ringbuf.SourceWaiting)
		return f, info, false, nil
	case errors.Is(err, native.ErrSourceLost):
		// The backend is reopening its source; frames due meanwhile are in
		// its Counters.Lost. Beat, and look again shortly.
		l.account(l.grab.Counters())
		l.ring.Beat(ringbuf.SourceLost)
		return f, info, false, l.wait(ctx)
	}
	return f, info, false, fmt.Errorf("acquire frame: %w: %w", ErrGrabber, err)
}

// stepCopy: dequeue a frame from a private buffer, copy it into a free
// ring slot, requeue the buffer, publish the slot. No free slot: the frame
// is dropped and counted.
func (l *loopState) stepCopy(ctx context.Context) error {
	f, info, ok, err := l.dequeue(ctx)
	if !ok {
		return err
	}
	if cause, ok := l.incomplete(info); ok {
		l.ring.RecordDrops(cause, 1)
		return l.requeue(f)
	}
	s, err := l.ring.Acquire()
	if errors.Is(err, ringbuf.ErrNoFreeSlot) {
		// In safe-copy mode no slot is ever lent out for long: a failed
		// Acquire means consumers' holds or a lossless cursor kept every
		// slot.
		l.ring.RecordDrops(loss.Blocked, 1)
		return l.requeue(f)
	}
	if err != nil {
		f.Requeue()
		return fmt.Errorf("acquire slot: %w: %w", ErrRing, err)
	}
	n, err := f.CopyTo(s.Bytes())
	if err != nil {
		l.ring.Abort(s)
		f.Requeue()
		return fmt.Errorf("copy frame %d: %w: %w", info.FrameID, ErrGrabber, err)
	}
	// The copy is done: give the buffer back before publishing, so the
	// grabber has it for the next frame as early as possible.
	if err := f.Requeue(); err != nil {
		l.ring.Abort(s)
		return fmt.Errorf("requeue frame %d: %w: %w", info.FrameID, ErrGrabber, err)
	}
	l.account(l.grab.Counters()) // drops before this frame, before it is published
	if _, err := l.ring.Publish(s, meta(info)); err != nil {
		return fmt.Errorf("publish slot %d: %w: %w", s.Index(), ErrRing, err)
	}
	l.ring.RecordCopies(1)
	l.p.published.Add(1)
	l.p.copied.Add(uint64(n))
	return nil
}

func (l *loopState) requeue(f native.Frame) error {
	if err := f.Requeue(); err != nil {
		return fmt.Errorf("requeue frame: %w: %w", ErrGrabber, err)
	}
	l.account(l.grab.Counters())
	return nil
}

// incomplete says whether a dequeued frame cannot be published, and why:
// not fully written (its status's cause), or not of the configured
// geometry (a slot holds exactly one frame of it).
func (l *loopState) incomplete(info native.FrameInfo) (loss.Cause, bool) {
	if info.Status != native.FrameComplete {
		c := info.Status.Cause()
		if c == loss.Underrun {
			c = l.underrunCause() // cut short for want of a slot
		}
		return c, true
	}
	if info.Geometry != l.p.cfg.Geometry || info.Length != info.Geometry.Size() {
		return loss.SizeMismatch, true
	}
	return 0, false
}

// meta is the ring descriptor of a frame.
func meta(info native.FrameInfo) ringbuf.Meta {
	g := info.Geometry
	return ringbuf.Meta{
		FrameID: info.FrameID, Timestamp: info.Timestamp,
		Width: uint32(g.Width), Height: uint32(g.Height), Stride: uint32(g.Stride), Format: g.Format,
		Length: uint64(info.Length), Flags: info.Flags, DeviceTimestamp: info.DeviceTimestamp,
		OriginEpoch: info.OriginEpoch, OriginSeq: info.OriginSeq,
	}
}

// underrunCause is the cause of a frame lost for want of a buffer (a
// slot): blocked while the ring blames a consumer for the missing slots,
// underrun otherwise (invariant 4).
func (l *loopState) underrunCause() loss.Cause {
	if l.blocked {
		return loss.Blocked
	}
	return loss.Underrun
}

// account moves the grabber's new losses into the ring's drop table
// (invariant 4), by cause, and notes how many frame ids it has consumed
// and how many frames it had to copy.
func (l *loopState) account(c native.Counters) {
	if c.Underruns > l.lastUnderruns {
		d := c.Underruns - l.lastUnderruns
		l.lastUnderruns = c.Underruns
		l.ring.RecordDrops(l.underrunCause(), d)
	}
	for i, n := range c.Lost {
		if n > l.lastLost[i] {
			l.ring.RecordDrops(loss.Cause(i), n-l.lastLost[i])
			l.lastLost[i] = n
		}
	}
	// Filled frames a backend threw away (at Stop, or while its camera
	// was lost and reopened): counted when they happen, not only at the end.
	if c.Discarded > l.lastDiscarded {
		l.ring.RecordDrops(loss.Discarded, c.Discarded-l.lastDiscarded)
		l.lastDiscarded = c.Discarded
	}
	if c.Copies > l.lastCopies {
		l.ring.RecordCopies(c.Copies - l.lastCopies)
		l.lastCopies = c.Copies
	}
	if c.NextFrameID > l.p.frames.Load() {
		l.p.frames.Store(c.NextFrameID)
	}
}

// wait sleeps for the starved-wait period, or until ctx ends.
func (l *loopState) wait(ctx context.Context) error {
	l.timer.Reset(l.starvedWait)
	select {
	case <-ctx.Done():
		l.timer.Stop()
		return fmt.Errorf("wait for a free slot: %w", ctx.Err())
	case <-l.timer.C:
		return nil
	}
}

// reclaim returns to the ring the slots still lent to the stopped grabber
// (Stop gave their buffers back idle), so the ring's books are even before
// it closes.
func (l *loopState) reclaim() error {
	var errs []error
	for k, q := range l.queued {
		if !q {
			continue
		}
		if err := l.ring.Abort(l.lent[k]); err != nil {
			errs = append(errs, fmt.Errorf("return slot %d: %w: %w", k, ErrRing, err))
		}
		l.lent[k], l.queued[k] = ringbuf.Slot{}, false
		l.inGrabber--
	}
	return errors.Join(errs...)
}
