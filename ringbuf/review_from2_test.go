package ringbuf_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/framering/framering/loss"

	"github.com/framering/framering/ringbuf"
)

// From = 1 while every slot is lent out (a zero-copy producer whose grabber
// queue is as deep as the ring, between two frames): the ring holds no
// published frame to start from, so the consumer must start with the next
// one, not walk from 1 through two million lost sequence numbers while it
// pins the ring.
func TestReviewFromOneWhileEverySlotIsLent(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 2, EvictAfter: 300 * time.Millisecond})
	const before = 2_000_000
	for i := 0; i < before; i++ {
		s, err := p.Acquire()
		if err != nil {
			t.Fatal(err)
		}
		p.Publish(s, ringbuf.Meta{Length: 8})
	}
	a, err := p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	r := attach(t, p, ringbuf.Options{Consumer: "ll", Mode: ringbuf.Lossless, From: 1})
	p.Publish(a, ringbuf.Meta{Length: 8})
	p.Publish(b, ringbuf.Meta{Length: 8})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	drops := 0
	wg.Add(1)
	go func() {
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
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
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
	t.Logf("first frame after %v: seq %d, err %v; missed %d; %d frames dropped meanwhile", took, seq, err, st.Missed, drops)
	if err != nil || seq <= before || st.Missed != 0 {
		t.Fatalf("From=1 with every slot lent: first frame %d (%v) after walking %d lost sequence numbers; %d frames dropped meanwhile",
			seq, err, st.Missed, drops)
	}
}
