package ringbuf_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/framering/framering/ringbuf"
)

// An Attach whose context ends while the segments are being mapped either
// fails, or returns a Reader that works: it must not return a Reader whose
// connection carries a deadline in the past (which its connection watcher
// takes for the producer's departure).
func TestReviewAttachContextEndingDuringMapping(t *testing.T) {
	// A large data segment, prefaulted by the reader: mapping it takes a
	// while, which is the window in question.
	p := newRing(t, ringbuf.Config{Slots: 16, SlotSize: 4 << 20})
	publish(t, p, 1)
	var full time.Duration
	for i := 0; i < 2; i++ { // the second attach finds the pages allocated
		start := time.Now()
		r0 := attach(t, p, ringbuf.Options{Role: ringbuf.RoleObserver, Prefault: true})
		full = time.Since(start)
		r0.Close()
	}
	bad, ok := 0, 0
	for i := 0; i < 40; i++ {
		d := full * time.Duration(i%20) / 16
		ctx, cancel := context.WithTimeout(context.Background(), d)
		r, err := ringbuf.Attach(ctx, ringbuf.Options{SocketPath: p.Path(), Role: ringbuf.RoleObserver, Prefault: true})
		cancel()
		if err != nil {
			continue
		}
		ok++
		wctx, wcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, werr := r.Wait(wctx, 1)
		wcancel()
		if errors.Is(werr, ringbuf.ErrProducerGone) {
			bad++
		}
		r.Close()
	}
	t.Logf("full attach %v; %d attaches succeeded, %d of them saw the (live) producer gone", full, ok, bad)
	if bad > 0 {
		t.Fatalf("%d Readers returned by a successful Attach report ErrProducerGone while the producer is alive", bad)
	}
}
