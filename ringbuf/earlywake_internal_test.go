package ringbuf

import (
	"context"
	"testing"
	"time"

	"github.com/framering/framering/clock"
)

// The cadence learns a steady period, ignores a lone outlier, adopts a new
// rate after cadenceOutliers intervals in a row, and predicts nothing it
// has no basis for.
func TestCadence(t *testing.T) {
	var c cadence
	if c.due(0) != 0 {
		t.Fatal("prediction with no frames seen")
	}
	const ms = int64(1e6)
	c.observe(1, 10*ms)
	if c.due(1) != 0 {
		t.Fatal("prediction from one frame")
	}
	for s := uint64(2); s <= 10; s++ {
		c.observe(s, 10*ms+int64(s-1)*ms)
	}
	if per := c.period.Load(); per != ms {
		t.Fatalf("period %d, want %d", per, ms)
	}
	if got, want := c.due(10), 10*ms+10*ms; got != want {
		t.Fatalf("due(10) = %d, want %d", got, want)
	}
	// A lossy consumer that skipped frames: the prediction steps by the
	// period per frame still to come, and a skip counts per frame.
	if got, want := c.due(12), 10*ms+12*ms; got != want {
		t.Fatalf("due(12) = %d, want %d", got, want)
	}
	c.observe(13, 10*ms+12*ms) // 3 frames, 3 ms: still 1 ms each
	if per := c.period.Load(); per != ms {
		t.Fatalf("after a skip: period %d, want %d", per, ms)
	}
	// Older frames (a random Borrow) change nothing.
	c.observe(5, 99*ms)
	if c.lastSeq.Load() != 13 {
		t.Fatal("an older frame moved the cadence")
	}
	// One late frame is an outlier: the period holds.
	last := 22 * ms
	last += 5 * ms
	c.observe(14, last)
	if per := c.period.Load(); per != ms {
		t.Fatalf("one outlier moved the period to %d", per)
	}
	// The source slowed to 4 ms: adopted after cadenceOutliers intervals.
	for s := uint64(15); s < 15+cadenceOutliers; s++ {
		last += 4 * ms
		c.observe(s, last)
	}
	if per := c.period.Load(); per != 4*ms {
		t.Fatalf("new rate: period %d, want %d", per, 4*ms)
	}
	// Beyond cadenceMaxGap frames ahead, no prediction.
	if c.due(c.lastSeq.Load()+cadenceMaxGap+1) != 0 {
		t.Fatal("prediction too far ahead")
	}
	// Lateness is smoothed, each sample capped at the window given (a
	// stall is not lateness), and decays.
	const window = 200_000
	for range 40 {
		c.noteLate(100*ms, window)
	}
	if l := c.late.Load(); l > window || l < window/2 {
		t.Fatalf("lateness %d, want about the %d ns cap", l, window)
	}
	c.noteLate(-5, window)
	if l := c.late.Load(); l >= window {
		t.Fatalf("lateness %d did not come down", l)
	}
	for range 40 {
		c.decayLate()
	}
	if l := c.late.Load(); l > window/100 {
		t.Fatalf("lateness %d did not decay", l)
	}
}

// The timed sleep before a frame is due keeps the waiter bit set, so a
// frame published long before the prediction wakes the consumer: here the
// prediction is an hour away, so without the bit Next would not return
// until then.
func TestEarlyWakeSleepIsWokenByPublish(t *testing.T) {
	p := internalRing(t, Config{Slots: 4})
	// Sleeps that only a wake-up ends (no 100 ms re-check).
	r := internalAttach(t, p, Options{Consumer: "early", Mode: Lossless, Spin: time.Nanosecond, EarlyWake: time.Millisecond,
		sleepTimeout: time.Hour})
	const hour = int64(time.Hour)
	r.mu.Lock()
	r.cad.observe(1, clock.Nanos()+hour) // frame 2 "due" in an hour
	r.cad.period.Store(int64(time.Millisecond))
	r.mu.Unlock()
	got := make(chan error, 1)
	go func() {
		_, err := r.Wait(context.Background(), 1)
		got <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for p.ctl.waiters().Load()&r.bit == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the early-waking consumer never set its waiter bit")
		}
		time.Sleep(100 * time.Microsecond)
	}
	for i := 0; i < 2; i++ { // frames 1 and 2
		s, err := p.Acquire()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Publish(s, Meta{Length: 64}); err != nil {
			t.Fatal(err)
		}
	}
	hangGuard(t, "Wait woken by a frame published before its prediction", func() {
		if err := <-got; err != nil {
			t.Error(err)
		}
	})
}
