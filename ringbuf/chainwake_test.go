package ringbuf_test

import (
	"context"
	"fmt"
	"math/bits"
	"testing"
	"time"

	"github.com/framering/framering/ringbuf"
)

// sleepers attaches n consumers (legacy: without the chain-wake promise)
// and starts a Wait on each; it returns when every one has its waiter bit
// set, and a channel that receives each Wait's outcome.
func sleepers(t *testing.T, p *ringbuf.Producer, n int, legacy bool, after uint64) <-chan error {
	t.Helper()
	out := make(chan error, n)
	ctx := testCtx(t)
	before := bits.OnesCount64(ringbuf.WaitersForTest(p))
	for i := range n {
		// Hour-long sleeps: only a wake-up (not the usual 100 ms re-check)
		// ends them, so a sleeper nobody wakes fails the test.
		opts := ringbuf.LongSleepForTest(ringbuf.Options{Consumer: fmt.Sprintf("s%d-%v", i, legacy), Spin: time.Nanosecond})
		if legacy {
			opts = ringbuf.NoChainForTest(opts)
		}
		r := attach(t, p, opts)
		go func() {
			_, err := r.Wait(ctx, after)
			out <- err
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for bits.OnesCount64(ringbuf.WaitersForTest(p)) < before+n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d consumers went to sleep", bits.OnesCount64(ringbuf.WaitersForTest(p))-before, n)
		}
		time.Sleep(200 * time.Microsecond)
	}
	return out
}

func collect(t *testing.T, out <-chan error, n int) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for i := range n {
		select {
		case err := <-out:
			if err != nil {
				t.Fatal(err)
			}
		case <-timeout:
			t.Fatalf("%d of %d sleepers woke", i, n)
		}
	}
}

// Sixteen sleepers that all pass wakes on: the producer wakes one, and
// every one of them returns from Wait (docs/LAYOUT.md 8.2, 9.5).
func TestChainedWakeReachesEverySleeper(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 40})
	out := sleepers(t, p, 16, false, 0)
	if n := ringbuf.WakeCountForTest(p); n != 1 {
		t.Fatalf("16 chaining sleepers: the producer would wake %d (0: all), want 1", n)
	}
	publish(t, p, 1)
	collect(t, out, 16)
}

// A sleeper that does not pass wakes on (an older or other client, such as
// the C library) makes the producer wake every sleeper, and all of them,
// chaining or not, wake.
func TestLegacySleeperGetsEveryoneWoken(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 16})
	out := sleepers(t, p, 4, false, 0)
	legacy := sleepers(t, p, 1, true, 0)
	if n := ringbuf.WakeCountForTest(p); n != 0 {
		t.Fatalf("with a legacy sleeper the producer would wake %d, want 0 (all)", n)
	}
	publish(t, p, 1)
	collect(t, out, 4)
	collect(t, legacy, 1)
}

// An observer that does not pass wakes on (it has no waiter bit, so the
// producer cannot see it sleep) also makes the producer wake all.
func TestLegacyObserverMakesTheProducerWakeAll(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 8})
	out := sleepers(t, p, 2, false, 0)
	if n := ringbuf.WakeCountForTest(p); n != 1 {
		t.Fatalf("want 1, got %d", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o, err := ringbuf.Attach(ctx, ringbuf.NoChainForTest(ringbuf.Options{SocketPath: p.Path(), Role: ringbuf.RoleObserver}))
	if err != nil {
		t.Fatal(err)
	}
	if n := ringbuf.WakeCountForTest(p); n != 0 {
		t.Fatalf("with a legacy observer: want 0 (all), got %d", n)
	}
	o.Close()
	deadline := time.Now().Add(10 * time.Second)
	for ringbuf.WakeCountForTest(p) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the observer's departure never restored the single wake")
		}
		time.Sleep(time.Millisecond)
	}
	publish(t, p, 1)
	collect(t, out, 2)
}

// Two goroutines of one Reader share its waiter bit: the one woken passes
// the wake to the other.
func TestChainedWakeReachesGoroutinesOfOneReader(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 8})
	r := attach(t, p, ringbuf.LongSleepForTest(ringbuf.Options{Consumer: "two", Spin: time.Nanosecond}))
	ctx := testCtx(t)
	out := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := r.Wait(ctx, 0)
			out <- err
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for ringbuf.SleepersForTest(r) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the two Waits never went to sleep")
		}
		time.Sleep(200 * time.Microsecond)
	}
	if n := ringbuf.WakeCountForTest(p); n != 1 {
		t.Fatalf("want 1, got %d", n)
	}
	publish(t, p, 1)
	collect(t, out, 2)
}
