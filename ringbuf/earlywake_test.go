package ringbuf_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/framering/framering/clock"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/ringbuf"
	"github.com/framering/framering/shm"
)

// pacedProducer publishes n frames, the i-th gap[i%len(gap)] after the
// previous one (clock_nanosleep pacing, as a camera's), recording before
// each publish whether any consumer's waiter bit was set. It reports an
// error or nil on errc once done.
func pacedProducer(p *ringbuf.Producer, n int, gap []time.Duration, sleeping []bool, errc chan<- error) {
	next := clock.Nanos()
	for i := 0; i < n; i++ {
		next += int64(gap[i%len(gap)])
		for clock.Nanos() < next {
			shm.SleepUntil(next)
		}
		s, err := p.Acquire()
		for errors.Is(err, ringbuf.ErrNoFreeSlot) { // a lossless consumer behind
			time.Sleep(100 * time.Microsecond)
			s, err = p.Acquire()
		}
		if err != nil {
			errc <- err
			return
		}
		if sleeping != nil {
			sleeping[i] = ringbuf.WaitersForTest(p) != 0
		}
		if _, err := p.Publish(s, ringbuf.Meta{Length: 64, FrameID: uint64(i), Width: 8, Height: 8, Stride: 8, Format: frame.Mono8}); err != nil {
			errc <- err
			return
		}
	}
	errc <- nil
}

// consumeAll takes n frames with Next and checks they come in order.
func consumeAll(t *testing.T, ctx context.Context, r *ringbuf.Reader, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		l, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("frame %d of %d: %v", i, n, err)
		}
		if s := l.Meta().Seq; s != uint64(i) {
			t.Fatalf("got seq %d, want %d", s, i)
		}
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
	}
}

// With a periodic source, an early-waking consumer is polling, not
// asleep, when frames arrive: Publish finds no waiter bit for many of
// them. Without the early wake-up it would find one before nearly every
// frame (the consumer does nothing between frames but sleep). On a loaded
// machine a timed wake-up can come late, so the run is tried up to three
// times; a broken early wake-up fails all three.
func TestEarlyWakePollsForDueFrames(t *testing.T) {
	const n, warm, want = 60, 10, 10
	best := 0
	for attempt := 0; attempt < 3 && best < want; attempt++ {
		p := newRing(t, ringbuf.Config{Slots: 8})
		r := attach(t, p, ringbuf.Options{Consumer: "early", Mode: ringbuf.Lossless,
			Spin: time.Nanosecond, EarlyWake: time.Millisecond})
		sleeping := make([]bool, n)
		errc := make(chan error, 1)
		go pacedProducer(p, n, []time.Duration{3 * time.Millisecond}, sleeping, errc)
		consumeAll(t, testCtx(t), r, n)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		polling := 0
		for _, s := range sleeping[warm:] {
			if !s {
				polling++
			}
		}
		t.Logf("attempt %d: polling for %d of %d frames", attempt+1, polling, n-warm)
		best = max(best, polling)
		r.Close()
		p.Close()
	}
	if best < want {
		t.Fatalf("the consumer was polling for at most %d of %d frames after warm-up (want %d)", best, n-warm, want)
	}
}

// The prediction is only advice: frames earlier, later and far later than
// due (a source that changes its rate and pauses) all arrive, in order,
// with sleeps that only a wake-up ends; a closed ring still ends the wait.
func TestEarlyWakeIrregularSource(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 8})
	r := attach(t, p, ringbuf.LongSleepForTest(ringbuf.Options{Consumer: "early", Mode: ringbuf.Lossless,
		Spin: time.Nanosecond, EarlyWake: 300 * time.Microsecond}))
	gaps := []time.Duration{2 * time.Millisecond, 2 * time.Millisecond, 2 * time.Millisecond, 2 * time.Millisecond,
		200 * time.Microsecond, 2 * time.Millisecond, 7 * time.Millisecond, 50 * time.Microsecond,
		2 * time.Millisecond, 150 * time.Millisecond}
	const n = 40
	errc := make(chan error, 1)
	go pacedProducer(p, n, gaps, nil, errc)
	ctx := testCtx(t)
	consumeAll(t, ctx, r, n)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// Due soon by the cadence, but the ring closes instead.
	done := make(chan error, 1)
	go func() { _, err := r.Next(ctx); done <- err }()
	time.Sleep(5 * time.Millisecond)
	p.Close()
	if err := <-done; !errors.Is(err, ringbuf.ErrClosed) && !errors.Is(err, ringbuf.ErrProducerGone) {
		t.Fatalf("after close: %v", err)
	}
}

// The early wake-up allocates nothing per frame either.
func TestEarlyWakeAllocatesNothing(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 8})
	r := attach(t, p, ringbuf.Options{Consumer: "early", Mode: ringbuf.Lossless, Spin: time.Nanosecond,
		Latency: true, EarlyWake: 500 * time.Microsecond})
	const runs = 50
	errc := make(chan error, 1)
	// AllocsPerRun makes one extra warm-up call.
	go pacedProducer(p, runs+1+10, []time.Duration{time.Millisecond}, nil, errc)
	// A context with a Done channel: Wait registers it once and reuses it.
	ctx := testCtx(t)
	for range 10 { // learn the cadence
		l, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		l.Release()
	}
	if n := testing.AllocsPerRun(runs, func() {
		l, err := r.Next(ctx)
		if err != nil {
			t.Error(err)
			return
		}
		l.Release()
	}); n != 0 {
		t.Errorf("early-wake next: %v allocs per frame", n)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
