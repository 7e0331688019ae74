package ringbuf

// Early wake-up for periodic sources (Options.EarlyWake): Wait predicts
// when the next frame is due from the producer's publish times and, rather
// than sleep until Publish wakes it, sleeps until EarlyWake before it is
// due and polls from there. The frame then reaches a running, polling
// consumer (the busy-poll hand-off, a microsecond or two) instead of a
// sleeping one (a futex wake-up: tens of microseconds, more on a virtual
// machine), and Publish, finding no waiter bit set, makes no system call.
// The price is the polling: EarlyWake plus the timer's lateness and the
// source's jitter of CPU per frame (up to twice EarlyWake plus the
// lateness when the window ends with no frame). Only frames taken with
// Next or Borrow feed the prediction (Wait followed by Peek does not), and
// a busy-polling Reader (Spin < 0) never sleeps, so never wakes early.
//
// Invariant: the prediction is advice, never trusted for correctness.
// Wait returns only a sequence number it loaded from published; the timed
// sleep keeps the waiter bit set, so a frame published early wakes it as
// usual; a window that ends with no frame falls back to the ordinary
// sleep. A wrong prediction costs CPU (a window polled in vain) or latency
// (the ordinary wake-up), nothing else. The cadence is fed from Borrow
// under r.mu (one writer at a time) and read by Wait through atomics (this
// process's memory only; nothing here is in shared memory).

import (
	"context"
	"sync/atomic"

	"github.com/framering/framering/clock"
)

const (
	// cadenceOutliers is how many intervals in a row outside [period/2,
	// 3·period/2] replace the period estimate (the source changed rate).
	cadenceOutliers = 4
	// cadenceMaxGap is the most frames between two observations that still
	// give an interval sample (a consumer that skips more learns nothing).
	cadenceMaxGap = 64
)

// cadence estimates the source's frame period from the publish times of
// the frames this Reader borrows.
type cadence struct {
	lastSeq  atomic.Uint64
	lastPub  atomic.Int64 // Meta.PublishNs of lastSeq (CLOCK_MONOTONIC)
	period   atomic.Int64 // estimated ns between frames, 0: unknown
	late     atomic.Int64 // how late a timed sleep ends, smoothed (ns)
	outliers int          // consecutive outlying intervals (under r.mu)
}

// observe records that frame seq was published at pub. Called with r.mu
// held (Borrow); frames older than the last observed are ignored.
func (c *cadence) observe(seq uint64, pub int64) {
	last, lastPub := c.lastSeq.Load(), c.lastPub.Load()
	if seq <= last {
		return
	}
	c.lastSeq.Store(seq)
	c.lastPub.Store(pub)
	if last == 0 || pub <= lastPub || seq-last > cadenceMaxGap {
		return
	}
	sample := (pub - lastPub) / int64(seq-last)
	per := c.period.Load()
	switch {
	case per == 0:
		per = sample
	case sample > per/2 && sample < per+per/2:
		per += (sample - per) / 8
		c.outliers = 0
	default:
		if c.outliers++; c.outliers >= cadenceOutliers {
			per, c.outliers = sample, 0
		}
	}
	c.period.Store(per)
}

// due is when frame after+1 is expected (clock.Nanos), or 0 if unknown.
func (c *cadence) due(after uint64) int64 {
	per, last := c.period.Load(), c.lastSeq.Load()
	if per <= 0 || last == 0 || after+1 <= last || after+1-last > cadenceMaxGap {
		return 0
	}
	return c.lastPub.Load() + per*int64(after+1-last)
}

// noteLate records that a timed sleep ended late ns after its deadline.
// A sample is capped at limit (the early wake-up's window): a sleep that
// ended later than that was a stall (a collection, a loaded machine), not
// the timer's usual lateness, and must not teach Wait to stop sleeping.
func (c *cadence) noteLate(late, limit int64) {
	late = max(0, min(late, limit))
	old := c.late.Load()
	c.late.Store(old + (late-old)/4)
}

// decayLate shrinks the lateness estimate: called when it alone kept Wait
// from sleeping, so that an estimate grown too large comes back down.
func (c *cadence) decayLate() {
	old := c.late.Load()
	c.late.Store(old - old/4)
}

// waitEarly is Wait's early wake-up: it sleeps until the next frame is
// nearly due, then polls until it is published or the window (EarlyWake
// after the due time) ends. It returns 0 and no error when it has no
// prediction or the window ended without a frame: the caller then sleeps
// as usual.
func (r *Reader) waitEarly(ctx context.Context, after uint64) (uint64, error) {
	due := r.cad.due(after)
	if due == 0 {
		return 0, nil
	}
	window := int64(r.opts.EarlyWake)
	now := clock.Nanos()
	if now > due+window {
		return 0, nil // overdue: the source paused or slowed down
	}
	if wakeAt := due - window - r.cad.late.Load(); wakeAt > now {
		p, err := r.sleep(ctx, after, wakeAt)
		if p > after || err != nil {
			return p, err
		}
		r.cad.noteLate(clock.Nanos()-wakeAt, window)
	} else if due-window > now {
		r.cad.decayLate()
	}
	return r.poll(ctx, after, due+window)
}
