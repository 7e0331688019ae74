package ringbuf_test

// Blame and eviction: a caught-up lossless consumer is never blamed for
// others' holds, nor when every slot is lent to the source.

import (
	"errors"
	"testing"
	"time"

	"github.com/framering/framering/ringbuf"
)

// A lossless consumer that has read every frame (lag 0) must not be
// evicted when Acquire fails because another (lossy) consumer holds every
// published slot: it is not what keeps the producer without a slot.
func TestCaughtUpLosslessNotBlamedForOthersHolds(t *testing.T) {
	// The lossy consumer may hold both slots (quota 2), and is not evicted
	// for it within the test (an hour): the question is whom the producer
	// blames, not what it does about it.
	p := newRing(t, ringbuf.Config{Slots: 2, HoldQuota: 2, EvictAfter: time.Hour})
	ll := attach(t, p, ringbuf.Options{Consumer: "ll", Mode: ringbuf.Lossless})
	ly := attach(t, p, ringbuf.Options{Consumer: "ly", Mode: ringbuf.Lossy})
	ctx := testCtx(t)
	publish(t, p, 1)
	publish(t, p, 2)
	for want := uint64(1); want <= 2; want++ {
		l, err := ll.Next(ctx)
		if err != nil || l.Meta().Seq != want {
			t.Fatal(want, err)
		}
		l.Release()
	}
	// The lossy consumer holds both frames.
	a, err := ly.Borrow(1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ly.Borrow(2)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) {
		if _, err := p.Acquire(); !errors.Is(err, ringbuf.ErrNoFreeSlot) {
			t.Fatalf("acquire with every slot held: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	if e, ok := p.Blamed(); !ok || e != ly.Info().Entry {
		t.Errorf("blamed entry %d (%v), want the lossy holder's %d", e, ok, ly.Info().Entry)
	}
	snap := p.Snapshot()
	for _, c := range snap.Consumers {
		if c.Name == "ll" {
			t.Logf("lossless consumer: lag %d, blocked_drops %d, state %s", c.Lag, c.BlockDrops, c.State)
			if c.State != "active" || c.BlockDrops != 0 {
				t.Errorf("caught-up lossless consumer was blamed (blocked_drops %d) and is %s; evictions %d",
					c.BlockDrops, c.State, snap.Evictions)
			}
		}
	}
	a.Release()
	b.Release()
}

// The same with every slot lent to the producer itself (a grabber queue as
// deep as the ring): nothing is published, so no consumer can be the cause.
func TestLosslessNotBlamedWhenAllSlotsLent(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 2, EvictAfter: 20 * time.Millisecond})
	attach(t, p, ringbuf.Options{Consumer: "ll", Mode: ringbuf.Lossless})
	s1, _ := p.Acquire()
	s2, _ := p.Acquire()
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) {
		if _, err := p.Acquire(); !errors.Is(err, ringbuf.ErrNoFreeSlot) {
			t.Fatalf("acquire with every slot lent: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	snap := p.Snapshot()
	if snap.Evictions != 0 || snap.Consumers[0].State != "active" {
		t.Errorf("lossless consumer evicted although nothing was published: %+v", snap.Consumers[0])
	}
	p.Abort(s1)
	p.Abort(s2)
}
