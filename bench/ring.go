package bench

// The ring roles. The producer writes every byte of every frame (filler),
// stamps CLOCK_MONOTONIC immediately before Publish, and times Publish;
// consumers take each frame with Next, read their clock at once, and
// optionally checksum every byte before Release. Nothing in the measured
// loops allocates on purpose: what MemStats counts there is the ring's.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/ringbuf"
)

func spinFor(wait string) (time.Duration, error) {
	switch wait {
	case WaitPoll:
		return -1, nil
	case WaitFutex, WaitLatency, WaitEarly:
		return time.Nanosecond, nil
	case WaitSpin, "":
		return 0, nil
	}
	return 0, fmt.Errorf("wait strategy %q: %w", wait, errBadParams)
}

func modeFor(mode string) (ringbuf.Mode, error) {
	switch mode {
	case "lossy", "":
		return ringbuf.Lossy, nil
	case "lossless":
		return ringbuf.Lossless, nil
	}
	return 0, fmt.Errorf("mode %q: %w", mode, errBadParams)
}

// waitConsumers polls the producer's snapshot until n consumers are
// attached, or the deadline passes.
func waitConsumers(p *ringbuf.Producer, n int, deadline int64) error {
	for {
		if c := len(p.Snapshot().Consumers); c >= n {
			return nil
		} else if now() > deadline {
			return fmt.Errorf("wait for consumers: %w: %d of %d attached", errTimeout, c, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitDrained waits until every consumer has detached or passed seq.
func waitDrained(p *ringbuf.Producer, seq uint64, deadline int64) bool {
	for now() < deadline {
		done := true
		for _, c := range p.Snapshot().Consumers {
			if c.State == "active" && c.Cursor <= seq {
				done = false
			}
		}
		if done {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

func runRingProducer(ctx context.Context, p params, log *slog.Logger) (*result, error) {
	start := now()
	capAt := start + p.CapNs
	prod, err := ringbuf.Create(ringbuf.Config{
		SocketPath: p.Path, Slots: p.Slots, SlotSize: p.Payload, EvictAfter: time.Hour,
		Prefault: true, HugePages: p.HugePages, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("run ring producer: %w", err)
	}
	defer prod.Close()
	if err := waitConsumers(prod, p.Consumers, min(capAt, now()+int64(20*time.Second))); err != nil {
		return nil, fmt.Errorf("run ring producer: %w", err)
	}
	w, h := dims(p.Payload)
	if p.Width > 0 && p.Height > 0 && p.Width*p.Height == p.Payload {
		w, h = p.Width, p.Height
	}
	pp := &ringPublisher{prod: prod, f: newFiller(), capAt: capAt, payload: p.Payload, pub: newHist(), acq: newHist(),
		meta: ringbuf.Meta{Width: uint32(w), Height: uint32(h), Stride: uint32(w), Format: frame.Mono8, Length: uint64(p.Payload)}}
	res := &result{Role: p.Role}
	pp.res = res
	// Settle: warm-up frames until every consumer has taken one and this
	// process has stopped allocating. A consumer is in the table before
	// its attach completes, and the producer's goroutine for each
	// handshake allocates until a while after (it logs "consumer
	// attached" after sending the segments, and boxing the log's
	// arguments allocates even when the level is filtered out).
	for quiet, last := 0, ^uint64(0); quiet < 3; {
		if ctx.Err() != nil || now() > capAt {
			return nil, fmt.Errorf("run ring producer: %w: consumers take no frames", errTimeout)
		}
		if _, err := pp.publish(flagWarm, false); err != nil {
			return nil, err
		}
		time.Sleep(2 * time.Millisecond)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if allDelivered(prod) && ms.Mallocs == last {
			quiet++
		} else {
			quiet = 0
		}
		// allDelivered allocates (a snapshot): read the count after it.
		runtime.ReadMemStats(&ms)
		last = ms.Mallocs
	}
	var u0 usage
	var deadline int64
	var lastSeq uint64
	pace := newPacer(p.IntervalNs)
	total := p.Warmup + p.Frames
	for i := 0; i < total; i++ {
		measuring := i >= p.Warmup
		if i == p.Warmup {
			u0 = startUsage()
			deadline = u0.mono + p.DurationNs
		}
		if ctx.Err() != nil || now() > capAt {
			return nil, fmt.Errorf("run ring producer: %w after %d frames", errTimeout, i)
		}
		flags, last := uint32(0), false
		if !measuring {
			flags = flagWarm
		} else if i == total-1 || now() >= deadline {
			flags, last = flagLast, true
		}
		seq, err := pp.publish(flags, measuring)
		if err != nil {
			return nil, err
		}
		lastSeq = seq
		if last {
			break
		}
		if p.IntervalNs > 0 {
			pace.wait()
		}
	}
	u1 := endUsage()
	res.Cost = u0.until(u1)
	res.Bytes = res.Frames * uint64(p.Payload)
	if !waitDrained(prod, lastSeq, min(capAt, now()+int64(10*time.Second))) {
		log.Warn("consumers did not drain before the cap", "last_seq", lastSeq)
	}
	if res.Pub, err = encodeHist(pp.pub); err != nil {
		return nil, err
	}
	if res.Acq, err = encodeHist(pp.acq); err != nil {
		return nil, err
	}
	return res, nil
}

// ringPublisher is the producer's per-frame work: acquire a slot (waiting
// for one if need be), write every byte, stamp the clock, publish.
type ringPublisher struct {
	prod     *ringbuf.Producer
	f        *filler
	meta     ringbuf.Meta
	payload  int
	capAt    int64
	next     uint64
	pub, acq *hdr.Histogram
	res      *result
}

func (pp *ringPublisher) publish(flags uint32, measuring bool) (uint64, error) {
	t0 := now()
	var s ringbuf.Slot
	var err error
	for tries := 0; ; tries++ {
		s, err = pp.prod.Acquire()
		if err == nil {
			break
		}
		if !errors.Is(err, ringbuf.ErrNoFreeSlot) {
			return 0, fmt.Errorf("run ring producer: %w", err)
		}
		if tries == 0 && measuring {
			pp.res.NoSlot++
		}
		t := now()
		if t > pp.capAt {
			return 0, fmt.Errorf("run ring producer: %w: no free slot", errTimeout)
		}
		backoff(t - t0)
	}
	if measuring {
		t1 := now()
		record(pp.acq, t1-t0)
		if t1-t0 > 2000 {
			pp.res.BlockedNs += t1 - t0
		}
	}
	id := pp.next
	pp.next++
	pp.f.fill(s.Bytes()[:pp.payload], id)
	pp.meta.FrameID, pp.meta.Flags = id, flags
	// The timestamp is the last thing before Publish.
	pp.meta.Timestamp = now()
	seq, err := pp.prod.Publish(s, pp.meta)
	t1 := now()
	if err != nil {
		return 0, fmt.Errorf("run ring producer: %w", err)
	}
	if measuring {
		record(pp.pub, t1-pp.meta.Timestamp)
		pp.res.Frames++
		if pp.res.FirstNs == 0 {
			pp.res.FirstNs = pp.meta.Timestamp
		}
		pp.res.LastNs = t1
	} else {
		pp.res.Warmup++
	}
	return seq, nil
}

// allDelivered reports whether every attached consumer has taken a frame
// (the table's delivered counter, which Next publishes).
func allDelivered(p *ringbuf.Producer) bool {
	for _, c := range p.Snapshot().Consumers {
		if c.Delivered == 0 {
			return false
		}
	}
	return true
}

// backoff waits for a consumer to free a slot, waited ns so far: it
// yields (spinning) for a millisecond, then sleeps. The ring has no way to
// wait for a free slot (by design the producer never blocks on a
// consumer), and a Go sleep is coarse (often 0.5-1 ms on a loaded VM),
// long enough to drain a lossless pipeline.
func backoff(waited int64) {
	if waited < int64(time.Millisecond) {
		runtime.Gosched()
		return
	}
	time.Sleep(50 * time.Microsecond)
}

func attachRetry(ctx context.Context, opts ringbuf.Options, deadline int64) (*ringbuf.Reader, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		r, err := ringbuf.Attach(actx, opts)
		cancel()
		if err == nil {
			return r, nil
		}
		if ctx.Err() != nil || now() > deadline {
			return nil, fmt.Errorf("attach %s: %w", opts.SocketPath, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func runRingConsumer(ctx context.Context, p params, log *slog.Logger) (*result, error) {
	start := now()
	tid := 0
	if p.LockThread {
		// One thread for the whole run, so that a tracer can follow its
		// futex sleeps and wake-ups by thread id.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		self, err := os.Readlink("/proc/thread-self") // "PID/task/TID"
		if err != nil {
			return nil, fmt.Errorf("run ring consumer: %w", err)
		}
		if tid, err = strconv.Atoi(self[strings.LastIndexByte(self, '/')+1:]); err != nil {
			return nil, fmt.Errorf("run ring consumer: thread id %q: %w", self, err)
		}
	}
	spin, err := spinFor(p.Wait)
	if err != nil {
		return nil, fmt.Errorf("run ring consumer: %w", err)
	}
	mode, err := modeFor(p.Mode)
	if err != nil {
		return nil, fmt.Errorf("run ring consumer: %w", err)
	}
	latency := p.Wait == WaitLatency || p.Wait == WaitEarly
	if latency {
		// The latency mode's recipe (ringbuf/latency.go): one P, and a
		// short slice for every thread.
		runtime.GOMAXPROCS(1)
		undo, err := ringbuf.LatencyProcess()
		if err != nil {
			return nil, fmt.Errorf("run ring consumer: %w", err)
		}
		defer undo()
	}
	var early time.Duration
	if p.Wait == WaitEarly {
		early = earlyWakeWindow
	}
	r, err := attachRetry(ctx, ringbuf.Options{
		SocketPath: p.Path, Consumer: fmt.Sprintf("frbench-%d", p.Index), Mode: mode,
		Spin: spin, Latency: latency, EarlyWake: early, Prefault: true, MaxLeases: 2, Logger: log,
	}, start+int64(20*time.Second))
	if err != nil {
		return nil, fmt.Errorf("run ring consumer: %w", err)
	}
	defer r.Close()
	// The wall-clock cap: Close wakes Next, which returns ErrClosed.
	var capped atomic.Bool
	stop := time.AfterFunc(time.Duration(p.CapNs)-time.Duration(now()-start), func() { capped.Store(true); r.Close() })
	defer stop.Stop()
	stopCtx := context.AfterFunc(ctx, func() { r.Close() })
	defer stopCtx()

	if p.Split {
		return splitConsumer(r, p, &capped)
	}
	lat := newHist()
	res := &result{Role: p.Role, Index: p.Index, Tid: tid}
	if p.PerFrame {
		// Allocated here, appended to within capacity in the loop.
		res.FrameLat = make([][2]int64, 0, p.Frames+1)
	}
	sum, words := p.Read == ReadSum, p.Read == ReadWords
	var u0 usage
	measuring := false
	// Next gets a context without a Done channel: with one, Wait arms a
	// context.AfterFunc (which allocates) every time it goes to sleep. The
	// cap and cancellation close the Reader instead.
	bg := context.Background()
	for {
		l, err := r.Next(bg)
		t := now()
		if err != nil {
			if errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, ringbuf.ErrProducerGone) {
				break
			}
			return nil, fmt.Errorf("run ring consumer: %w", err)
		}
		m := l.Meta()
		if m.Flags&flagWarm != 0 {
			res.Warmup++
			if err := l.Release(); err != nil {
				return nil, fmt.Errorf("run ring consumer: release: %w", err)
			}
			continue
		}
		if !measuring {
			// Sample after reading the clock: the first frame's latency is
			// already taken, its processing falls inside the window.
			u0 = startUsage()
			measuring = true
			res.FirstNs = t
		}
		record(lat, t-m.Timestamp)
		if p.PerFrame && len(res.FrameLat) < cap(res.FrameLat) {
			res.FrameLat = append(res.FrameLat, [2]int64{int64(m.FrameID), t - m.Timestamp})
		}
		switch {
		case sum:
			b := l.Bytes()
			res.Sum ^= frame.Sum64(m.Seq, b)
			if !stampOK(b, m.FrameID) {
				res.Corrupt++
			}
		case words:
			res.Sum ^= wordSum(l.Bytes())
		}
		if err := l.Release(); err != nil {
			return nil, fmt.Errorf("run ring consumer: release: %w", err)
		}
		res.Frames++
		res.LastNs = t
		if m.Flags&flagLast != 0 {
			break
		}
	}
	if !measuring {
		if capped.Load() {
			return nil, fmt.Errorf("run ring consumer: %w before the first frame", errTimeout)
		}
		return res, nil
	}
	u1 := endUsage()
	waitClosed(r)
	res.Cost = u0.until(u1)
	res.Bytes = res.Frames * uint64(p.Payload)
	st := r.Stats()
	res.Skipped, res.Missed = st.Skipped, st.Missed
	if res.Lat, err = encodeHist(lat); err != nil {
		return nil, err
	}
	return res, nil
}

// waitClosed keeps a consumer attached until the producer closes the ring
// (or the cap closes the Reader): detaching at once would make the
// producer's connection goroutine run (and allocate) while the producer
// may still be inside its measured window, preempted in its last Publish.
func waitClosed(r *ringbuf.Reader) {
	for {
		l, err := r.Next(context.Background())
		if err != nil {
			return
		}
		if l.Release() != nil {
			return
		}
	}
}

// splitConsumer is the latency consumer with Next taken apart: Wait (the
// frame becomes visible) and Borrow (the lease) timed separately. It skips
// to the newest frame like a lossy Next, and does not publish the
// consumer's counters to the table as Next does.
func splitConsumer(r *ringbuf.Reader, p params, capped *atomic.Bool) (*result, error) {
	lat, seen, borrow := newHist(), newHist(), newHist()
	res := &result{Role: p.Role, Index: p.Index}
	bg := context.Background()
	// One frame through Next first: it publishes the delivered counter the
	// producer waits for before it starts measuring.
	l, err := r.Next(bg)
	if err != nil {
		return nil, fmt.Errorf("run split consumer: %w", err)
	}
	after := l.Meta().Seq
	if err := l.Release(); err != nil {
		return nil, fmt.Errorf("run split consumer: release: %w", err)
	}
	res.Warmup++
	var u0 usage
	for {
		seq, err := r.Wait(bg, after)
		t1 := now()
		if err != nil {
			if errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, ringbuf.ErrProducerGone) {
				break
			}
			return nil, fmt.Errorf("run split consumer: %w", err)
		}
		after = seq
		l, err := r.Borrow(seq)
		t2 := now()
		if errors.Is(err, ringbuf.ErrOverwritten) {
			res.Missed++
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("run split consumer: %w", err)
		}
		m := l.Meta()
		if err := l.Release(); err != nil {
			return nil, fmt.Errorf("run split consumer: release: %w", err)
		}
		if m.Flags&flagWarm != 0 {
			res.Warmup++
			continue
		}
		if res.Frames == 0 {
			u0 = startUsage()
			res.FirstNs = t2
		}
		record(seen, t1-m.Timestamp)
		record(borrow, t2-t1)
		record(lat, t2-m.Timestamp)
		res.Frames++
		res.LastNs = t2
		if m.Flags&flagLast != 0 {
			break
		}
	}
	if res.Frames == 0 {
		if capped.Load() {
			return nil, fmt.Errorf("run split consumer: %w before the first frame", errTimeout)
		}
		return res, nil
	}
	res.Cost = u0.until(endUsage())
	waitClosed(r)
	if res.Lat, err = encodeHist(lat); err != nil {
		return nil, err
	}
	if res.Seen, err = encodeHist(seen); err != nil {
		return nil, err
	}
	if res.Borrow, err = encodeHist(borrow); err != nil {
		return nil, err
	}
	return res, nil
}
