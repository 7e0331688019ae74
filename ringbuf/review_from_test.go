package ringbuf_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/framering/framering/loss"

	"github.com/framering/framering/ringbuf"
)

// A lossless consumer attaching with From = 1 to a ring that has published
// many frames (the consumers package does this on every re-attach) should
// start at the oldest frame the ring still has. It must not pin the ring
// (dropping every new frame) while it walks, one by one, through sequence
// numbers that are long gone, nor be evicted for it.
func TestReviewFromOneOnALongRunningRing(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 8, EvictAfter: 300 * time.Millisecond})
	const before = 2_000_000
	for i := 0; i < before; i++ {
		s, err := p.Acquire()
		if err != nil {
			t.Fatal(err)
		}
		p.Publish(s, ringbuf.Meta{Length: 8})
	}
	r := attach(t, p, ringbuf.Options{Consumer: "ll", Mode: ringbuf.Lossless, From: 1})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	drops := 0
	wg.Add(1)
	go func() { // the producer keeps producing, one frame per 100µs
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Microsecond):
			}
			s, err := p.Acquire()
			if err != nil {
				p.RecordDrops(loss.Blocked, 1)
				drops++
				continue
			}
			p.Publish(s, ringbuf.Meta{Length: 8})
		}
	}()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := r.Next(ctx)
	took := time.Since(start)
	close(stop)
	wg.Wait()
	var seq uint64
	if err == nil {
		seq = l.Meta().Seq
		l.Release()
	}
	st := r.Stats()
	t.Logf("first frame after %v: seq %d, err %v; missed %d; producer dropped %d frames meanwhile", took, seq, err, st.Missed, drops)
	if err != nil || seq+uint64(p.Slots()) <= before || st.Missed != 0 {
		t.Fatalf("From=1 on a ring at %d: first frame %d (%v), %d sequence numbers walked as missed, %d frames dropped meanwhile",
			before, seq, err, st.Missed, drops)
	}
}
