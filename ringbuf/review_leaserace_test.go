package ringbuf_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/framering/framering/ringbuf"
)

// A copy of a Lease used on one goroutine while another releases it and
// borrows again (reusing the lease record): Meta and Bytes of the stale
// copy must be the original frame's or zero/nil, never another lease's.
// Run with -race as well: the record is read without synchronisation.
func TestReviewStaleLeaseCopyNeverShowsAnotherLease(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 4})
	r := attach(t, p, ringbuf.Options{Consumer: "c", MaxLeases: 1})
	publish(t, p, 1)
	publish(t, p, 2)
	l1, err := r.Borrow(1)
	if err != nil {
		t.Fatal(err)
	}
	var stale atomic.Pointer[ringbuf.Lease]
	stale.Store(&l1)
	var wrong atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			l := *stale.Load()
			if m := l.Meta(); m.Seq != 0 && m.Seq != 1 {
				wrong.Add(1)
			}
		}
	}()
	for i := 0; i < 200000; i++ {
		l := *stale.Load()
		l.Release()
		l2, err := r.Borrow(2) // reuses the only lease record
		if err != nil {
			t.Fatal(err)
		}
		l2.Release()
		l1, err := r.Borrow(1)
		if err != nil {
			t.Fatal(err)
		}
		stale.Store(&l1)
	}
	close(stop)
	wg.Wait()
	(*stale.Load()).Release()
	if wrong.Load() > 0 {
		t.Fatalf("a released lease's Meta returned another lease's frame %d times", wrong.Load())
	}
}
