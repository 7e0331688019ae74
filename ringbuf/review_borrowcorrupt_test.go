package ringbuf_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/framering/framering/ringbuf"
)

// Several goroutines of one Reader borrow the newest frame while the
// producer cycles two slots. The ring is healthy, so the only acceptable
// failures are ErrOverwritten/ErrNotPublished/ErrTooManyLeases; ErrCorrupt
// would be a false alarm about the producer.
func TestReviewConcurrentBorrowNoFalseCorrupt(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 2})
	r := attach(t, p, ringbuf.Options{Consumer: "c"})
	var corrupt, ok atomic.Int64
	var first atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				seq := r.Published()
				l, err := r.Borrow(seq)
				switch {
				case err == nil:
					ok.Add(1)
					l.Release()
				case errors.Is(err, ringbuf.ErrCorrupt):
					corrupt.Add(1)
					first.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		s, err := p.Acquire()
		if err != nil {
			continue
		}
		p.Publish(s, ringbuf.Meta{Length: 64})
	}
	close(stop)
	wg.Wait()
	t.Logf("%d leases, %d ErrCorrupt", ok.Load(), corrupt.Load())
	if corrupt.Load() != 0 {
		t.Fatalf("%d spurious ErrCorrupt from a healthy ring, e.g. %v", corrupt.Load(), first.Load())
	}
}
