package consumers

// Invariants kept by this file:
//
//  1. c.r is written only by the goroutine ranging over Frames (or by
//     Attach, before the Consumer is shared), and always under c.mu; other
//     goroutines (Close, Snapshot, Info) read it under c.mu. The Frames
//     goroutine may read it without the lock: it is the only writer.
//  2. At most one range over Frames runs at a time (c.iterating, a CAS).
//     Reader.Next and Reader.Stats are called only from it, so the counters
//     it folds into the atomics below are never read concurrently.
//  3. The loop's Frame object (c.frame) carries a lease only between
//     deliver and done; a kept frame's lease is carried by a separate
//     handle from then on, and done never releases it.
//  4. Once c.life is cancelled (Close), no new Reader is installed: one
//     attached concurrently with Close is closed at once.

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/framering/framering/loss"
	"github.com/framering/framering/ringbuf"
)

// Mode is a consumer's delivery policy.
type Mode = ringbuf.Mode

// The delivery policies.
const (
	// Lossy consumers get the newest frame; frames published while they
	// were busy are skipped and counted.
	Lossy = ringbuf.Lossy
	// Lossless consumers get every frame in order: the producer drops new
	// frames rather than reuse a slot they have not passed.
	Lossless = ringbuf.Lossless
)

// Meta is a frame's metadata: sequence number, source frame id, capture
// timestamp (CLOCK_MONOTONIC ns), geometry, format, length.
type Meta = ringbuf.Meta

// Options describe the consumer to attach.
type Options struct {
	// Ring is the ring's name (default "default"); SocketPath, when set,
	// overrides it.
	Ring       string
	SocketPath string
	// Name is the consumer's name in the ring's consumer table (at most
	// 32 printable ASCII bytes), as ringctl shows it.
	Name string
	// Mode is Lossy (default) or Lossless.
	Mode Mode
	// Copy selects safe-copy mode: each frame is copied into private memory
	// and its slot released before the frame is yielded (see the package
	// documentation). The default is zero-copy.
	Copy bool
	// Wait makes Attach retry while there is no producer (no such ring, a
	// stale socket, a producer that is closing or not answering) until its
	// context ends.
	Wait bool
	// Reattach makes Frames, after the producer closed the ring or died,
	// wait for a new producer of the same ring and continue with it; and
	// after the producer evicted this consumer (docs/LAYOUT.md 11.4),
	// attach again at once as a new consumer. Frames lost meanwhile are
	// counted (Stats.LostToEviction).
	Reattach bool
	// Spin is passed to ringbuf.Options.Spin: how long to poll for a frame
	// before sleeping on the ring's futex (0: ringbuf's default; negative:
	// busy-poll and never sleep).
	Spin time.Duration
	// Latency is passed to ringbuf.Options.Latency: sleep in a raw futex
	// wait holding the Go processor (for a process run with GOMAXPROCS=1
	// whose one job is this consumer; see ringbuf.Options.Latency). Every
	// thread of the process then has a short scheduler slice
	// (ringbuf.LatencyProcess) for the duration of the loop.
	Latency bool
	// EarlyWake is passed to ringbuf.Options.EarlyWake: for a periodic
	// source, wake this long before the next frame is due and poll for it
	// (0: off).
	EarlyWake time.Duration
	// From is the first sequence number wanted on the first attach
	// (ringbuf.Options.From): 0 starts with the next frame published, 1
	// with the oldest frame the ring still has. An archiver starting a new
	// archive wants 1; frames already overwritten count as missed.
	From uint64
	// Logger receives attach, re-attach and eviction events (default
	// slog.Default()).
	Logger *slog.Logger
}

// retryDelay bounds the pause between two attach attempts while waiting
// for a producer.
const (
	minRetryDelay = 5 * time.Millisecond
	maxRetryDelay = 250 * time.Millisecond
)

// Consumer is an attached consumer of one ring. Frames is for one
// goroutine at a time; Stats, Snapshot, Info, Err and Close may be called
// from any goroutine.
type Consumer struct {
	opts  Options
	ropts ringbuf.Options
	log   *slog.Logger

	life   context.Context // cancelled by Close
	cancel context.CancelFunc

	mu     sync.Mutex
	r      *ringbuf.Reader // invariant 1
	closed bool
	err    error

	iterating atomic.Bool // invariant 2

	// Counters over every Reader this Consumer had: base holds the closed
	// Readers' sums, the atomics the totals including the current Reader.
	base                       ringbuf.Stats
	delivered, skipped, missed atomic.Uint64
	reattaches                 atomic.Uint64
	evictions, lostToEviction  atomic.Uint64
	revoked, torn              atomic.Uint64
	epoch, lastSeq             atomic.Uint64
	kept                       atomic.Int64
	// After an eviction: the epoch and last sequence number delivered, to
	// count what the re-attached consumer never sees (Frames goroutine).
	evictedEpoch, evictedSeq uint64
	// ringDrops sums the drop tables of the rings this consumer left
	// (under mu); RingDrops adds the current one's.
	ringDrops loss.Counts

	frame Frame // the loop's reused Frame (zero-copy), invariant 3
}

// Attach attaches a consumer to a ring. With Options.Wait it waits for a
// producer until ctx ends; otherwise a missing producer is ErrProducerGone.
// ctx bounds attaching only, not the Consumer's life.
func Attach(ctx context.Context, opts Options) (*Consumer, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Mode == 0 {
		opts.Mode = Lossy
	}
	ring := opts.SocketPath
	if ring == "" {
		if opts.Ring == "" {
			opts.Ring = "default"
		}
		ring = opts.Ring
	}
	c := &Consumer{
		opts: opts,
		ropts: ringbuf.Options{Name: opts.Ring, SocketPath: opts.SocketPath, Consumer: opts.Name,
			Role: ringbuf.RoleConsumer, Mode: opts.Mode, Spin: opts.Spin, Latency: opts.Latency, EarlyWake: opts.EarlyWake, From: opts.From, Logger: opts.Logger},
		log: opts.Logger.With("ring", ring, "consumer", opts.Name),
	}
	c.life, c.cancel = context.WithCancel(context.Background())
	c.frame.c = c
	r, err := c.dial(ctx, opts.Wait)
	if err != nil {
		c.cancel()
		return nil, fmt.Errorf("attach consumer to %s: %w", ring, err)
	}
	c.install(r)
	return c, nil
}

// dial attaches a Reader, retrying while the producer is absent if wait.
func (c *Consumer) dial(ctx context.Context, wait bool) (*ringbuf.Reader, error) {
	delay := minRetryDelay
	logged := false
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		r, err := ringbuf.Attach(ctx, c.ropts)
		if err == nil {
			return r, nil
		}
		if !wait || !absent(err) {
			return nil, err
		}
		if !logged {
			c.log.Info("no producer yet; waiting for one", "err", err)
			logged = true
		}
		if timer == nil {
			timer = time.NewTimer(delay)
		} else {
			timer.Reset(delay)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.life.Done():
			return nil, ErrClosed
		case <-timer.C:
		}
		delay = min(2*delay, maxRetryDelay)
	}
}

// absent reports whether err means there is no live producer to talk to
// (yet or any more), as opposed to one that refuses us.
func absent(err error) bool {
	return errors.Is(err, ringbuf.ErrProducerGone) || errors.Is(err, ringbuf.ErrClosed) ||
		errors.Is(err, ringbuf.ErrNoSuchRing) || errors.Is(err, ringbuf.ErrNotResponding)
}

// install makes r the current Reader (invariant 4: unless Close came first).
func (c *Consumer) install(r *ringbuf.Reader) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		r.Close()
		return false
	}
	c.r = r
	c.mu.Unlock()
	info := r.Info()
	c.epoch.Store(info.Epoch)
	c.log.Info("attached", "epoch", fmt.Sprintf("%016x", info.Epoch), "producer_pid", info.ProducerPid,
		"mode", c.opts.Mode.String(), "copy", c.opts.Copy)
	return true
}

// drop closes the current Reader after its producer left, folding its
// counters into base.
func (c *Consumer) drop(r *ringbuf.Reader) {
	c.fold(r)
	if s, err := r.Snapshot(); err == nil {
		c.mu.Lock()
		for i, n := range s.Drops {
			c.ringDrops[i] += n
		}
		c.mu.Unlock()
	}
	st := r.Stats()
	c.base.Delivered += st.Delivered
	c.base.Skipped += st.Skipped
	c.base.Missed += st.Missed
	c.mu.Lock()
	c.r = nil
	c.mu.Unlock()
	c.epoch.Store(0)
	r.Close() // kept frames stay valid until released
}

// fold publishes r's counters (Frames goroutine only, invariant 2).
func (c *Consumer) fold(r *ringbuf.Reader) {
	st := r.Stats()
	c.delivered.Store(c.base.Delivered + st.Delivered)
	c.skipped.Store(c.base.Skipped + st.Skipped)
	c.missed.Store(c.base.Missed + st.Missed)
}

// Frames returns an iterator over the ring's frames, in the consumer's
// mode. Each frame is valid until the loop moves on (see Frame.Keep). The
// iteration ends when ctx ends (Err returns nil), when the loop breaks, on
// Close (Err: ErrClosed), or on a terminal error (Err says which).
// Ranging over Frames again continues where the last range stopped.
func (c *Consumer) Frames(ctx context.Context) iter.Seq[*Frame] {
	return func(yield func(*Frame) bool) {
		if !c.iterating.CompareAndSwap(false, true) {
			c.setErr(fmt.Errorf("range over frames: %w", ErrBusy))
			return
		}
		defer c.iterating.Store(false)
		if c.opts.Latency {
			// The latency mode's scheduler setting: a short slice for
			// every thread (not a locked thread: ringbuf/latency.go).
			if undo, err := ringbuf.LatencyProcess(); err != nil {
				c.log.Warn("latency mode without its thread settings", "err", err)
			} else {
				defer undo()
			}
		}
		c.setErr(nil)
		outer := ctx
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(c.life, cancel)
		defer stop()
		var cur *Frame
		defer func() {
			// A panic or a Goexit in the loop body: release its frame.
			if cur != nil {
				c.done(cur)
			}
		}()
		for {
			f, err := c.next(ctx)
			if err != nil {
				switch {
				case c.life.Err() != nil:
					err = fmt.Errorf("next frame: %w", ErrClosed)
				case outer.Err() != nil:
					err = nil
				}
				c.setErr(err)
				return
			}
			cur = f
			more := yield(f)
			cur = nil
			c.done(f)
			if !more {
				return
			}
		}
	}
}

// next returns the next frame, re-attaching as Options.Reattach says. It
// is Frames' step, split out so that its allocations can be measured.
func (c *Consumer) next(ctx context.Context) (*Frame, error) {
	for {
		r := c.r // invariant 1: we are the writer
		if r == nil {
			if err := c.reattach(ctx); err != nil {
				return nil, err
			}
			continue
		}
		l, err := r.Next(ctx)
		if err == nil {
			c.fold(r)
			return c.deliver(l)
		}
		c.fold(r)
		if c.life.Err() != nil || ctx.Err() != nil {
			return nil, err
		}
		if c.opts.Reattach && errors.Is(err, ringbuf.ErrEvicted) {
			c.evictions.Add(1)
			c.evictedEpoch, c.evictedSeq = r.Info().Epoch, c.lastSeq.Load()
			c.log.Warn("evicted by the producer; attaching again", "epoch", ringbuf.Epoch(r.Info().Epoch),
				"last_seq", c.evictedSeq, "evictions", c.evictions.Load())
			c.drop(r)
			continue
		}
		if c.opts.Reattach && absent(err) {
			c.log.Warn("producer left; waiting for a new one", "epoch", ringbuf.Epoch(r.Info().Epoch),
				"last_seq", c.lastSeq.Load(), "err", err)
			c.drop(r)
			continue
		}
		return nil, fmt.Errorf("next frame: %w", err)
	}
}

func (c *Consumer) reattach(ctx context.Context) error {
	if c.opts.Mode == Lossless {
		// The new producer may have published before we found it (or, after
		// an eviction, the ring still holds frames we have not read): a
		// lossless consumer wants those frames too, from the oldest.
		c.ropts.From = 1
	}
	r, err := c.dial(ctx, true)
	if err != nil {
		return err
	}
	if !c.install(r) {
		return ErrClosed
	}
	c.reattaches.Add(1)
	c.lastSeq.Store(0)
	if c.evictedEpoch != 0 {
		// Back on the ring that evicted us: what was published between our
		// last frame and where we start again, we never see.
		if r.Info().Epoch == c.evictedEpoch {
			if start := r.Stats().Cursor; start > c.evictedSeq+1 {
				c.lostToEviction.Add(start - c.evictedSeq - 1)
			}
		}
		c.evictedEpoch, c.evictedSeq = 0, 0
	}
	c.log.Info("re-attached", "epoch", ringbuf.Epoch(r.Info().Epoch), "reattaches", c.reattaches.Load())
	return nil
}

// deliver turns a lease into the frame to yield.
func (c *Consumer) deliver(l ringbuf.Lease) (*Frame, error) {
	m := l.Meta()
	c.lastSeq.Store(m.Seq)
	e := c.epoch.Load()
	if !c.opts.Copy {
		f := &c.frame
		*f = Frame{c: c, lease: l, meta: m, epoch: e}
		return f, nil
	}
	// Safe-copy: the lease keeps the slot from being reused while we copy.
	src := l.Bytes()
	buf := make([]byte, len(src))
	copy(buf, src)
	if err := l.Release(); err != nil {
		return nil, fmt.Errorf("release copied frame %d: %w", m.Seq, err)
	}
	return &Frame{c: c, meta: m, epoch: e, copied: true, data: buf}, nil
}

// done ends the loop's hold on f, unless f was kept.
func (c *Consumer) done(f *Frame) {
	if f.copied {
		if !f.kept {
			f.released.Store(true)
		}
		return
	}
	if f.keptAs == nil {
		// ErrReleased if the body released it early: fine. A revoked lease
		// is counted (Stats.Revoked, Stats.Torn): the loop body should
		// have asked Frame.Check before acting on what it read.
		c.noteRelease(f.lease.Release())
	}
	f.lease = ringbuf.Lease{}
	f.keptAs = nil
}

func (c *Consumer) setErr(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

// Err returns the error that ended the last range over Frames: nil if its
// context ended it or the loop broke out, ErrClosed after Close, otherwise
// a wrapped ErrClosed or ErrProducerGone (producer left, no Reattach),
// ErrEvicted, ErrBusy, or what else went wrong.
func (c *Consumer) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Stats are a Consumer's counts, over every producer it was attached to.
type Stats struct {
	// Delivered counts the frames yielded.
	Delivered uint64 `json:"delivered"`
	// Skipped counts the frames a lossy consumer passed over for a newer one.
	Skipped uint64 `json:"skipped"`
	// Missed counts the frames that were overwritten before they could be
	// borrowed.
	Missed uint64 `json:"missed"`
	// Reattaches counts the producers attached to after the first.
	Reattaches uint64 `json:"reattaches"`
	// Epoch is the current producer's epoch, 0 while waiting for one.
	Epoch uint64 `json:"epoch"`
	// LastSeq is the sequence number of the last frame yielded in Epoch.
	LastSeq uint64 `json:"last_seq"`
	// Kept counts the kept frames not yet released.
	Kept int64 `json:"kept"`
	// Evictions counts the times the producer evicted this consumer (with
	// Reattach it attached again each time); LostToEviction the frames
	// published meanwhile that it never saw.
	Evictions      uint64 `json:"evictions"`
	LostToEviction uint64 `json:"lost_to_eviction"`
	// Revoked counts frames whose hold the producer revoked before they
	// were released (an eviction); Torn those of them whose bytes changed
	// while held: whatever was computed from them without a Frame.Check
	// is void.
	Revoked uint64 `json:"revoked"`
	Torn    uint64 `json:"torn"`
}

// RingDrops returns the frames the producers of the rings this consumer
// attached to dropped before publishing them, by cause (their drop tables,
// docs/LAYOUT.md 12): the same counts the ring, ringctl and the producer
// show, summed over producer restarts.
func (c *Consumer) RingDrops() loss.Counts {
	c.mu.Lock()
	sum, r := c.ringDrops, c.r
	c.mu.Unlock()
	if r != nil {
		if s, err := r.Snapshot(); err == nil {
			for i, n := range s.Drops {
				sum[i] += n
			}
		}
	}
	return sum
}

// noteRelease counts a release that reported a revoked lease.
func (c *Consumer) noteRelease(err error) {
	if errors.Is(err, ringbuf.ErrRevoked) {
		c.revoked.Add(1)
		if errors.Is(err, ringbuf.ErrOverwritten) {
			c.torn.Add(1)
		}
	}
}

// Health is the producer's condition as this consumer sees it: running,
// waiting for its source, stalled (its heartbeat stopped), closed or gone.
func (c *Consumer) Health() (ringbuf.Health, error) {
	return withReader(c, "producer health", func(r *ringbuf.Reader) (ringbuf.Health, error) { return r.Health(), nil })
}

// Stats returns the consumer's counters. Counts lag the frame being
// processed by nothing: they are updated before each frame is yielded.
func (c *Consumer) Stats() Stats {
	return Stats{Delivered: c.delivered.Load(), Skipped: c.skipped.Load(), Missed: c.missed.Load(),
		Reattaches: c.reattaches.Load(), Epoch: c.epoch.Load(), LastSeq: c.lastSeq.Load(), Kept: c.kept.Load(),
		Evictions: c.evictions.Load(), LostToEviction: c.lostToEviction.Load(), Revoked: c.revoked.Load(), Torn: c.torn.Load()}
}

func (c *Consumer) reader(verb string) (*ringbuf.Reader, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("%s: %w", verb, ErrClosed)
	}
	if c.r == nil {
		return nil, fmt.Errorf("%s: %w: waiting for a new producer", verb, ErrProducerGone)
	}
	return c.r, nil
}

// withReader asks the current Reader fn, or says why there is none.
func withReader[T any](c *Consumer, verb string, fn func(*ringbuf.Reader) (T, error)) (T, error) {
	r, err := c.reader(verb)
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := fn(r)
	if err != nil {
		return v, fmt.Errorf("%s: %w", verb, err)
	}
	return v, nil
}

// Snapshot returns the ring's state (producer, slots, consumer table) as
// this consumer sees it.
func (c *Consumer) Snapshot() (ringbuf.Snapshot, error) {
	return withReader(c, "snapshot ring", (*ringbuf.Reader).Snapshot)
}

// Info returns the current producer's identity and the ring's geometry.
func (c *Consumer) Info() (ringbuf.Info, error) {
	return withReader(c, "ring info", func(r *ringbuf.Reader) (ringbuf.Info, error) { return r.Info(), nil })
}

// Close detaches the consumer and ends a range over Frames in progress
// (its Err is then ErrClosed). Kept frames stay valid until released, and
// until the last of them is, the consumer keeps its entry in the ring's
// consumer table (a lossless one still keeps the producer from reusing the
// slots it has not passed). Close is idempotent.
func (c *Consumer) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	r := c.r
	c.mu.Unlock()
	c.cancel()
	if r != nil {
		return r.Close()
	}
	return nil
}
