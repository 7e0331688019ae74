package ringbuf_test

import (
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/framering/framering/ringbuf"
)

// Two Close calls at once (a signal handler and a deferred Close, say):
// run with -race.
func TestReviewConcurrentClose(t *testing.T) {
	for i := 0; i < 20; i++ {
		p := newRing(t, ringbuf.Config{Slots: 64})
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := 0; g < 2; g++ {
			wg.Add(1)
			go func() { defer wg.Done(); <-start; p.Close() }()
		}
		close(start)
		wg.Wait()
		p.Snapshot()
	}
}

// Snapshot and Published on a statistics goroutine while the owner calls
// Close: they must never touch the segments after Close unmapped them.
func TestReviewSnapshotDuringClose(t *testing.T) {
	var faults atomic.Int64
	var first atomic.Value
	for i := 0; i < 300; i++ {
		p := newRing(t, ringbuf.Config{Slots: 4096})
		start := make(chan struct{})
		var wg sync.WaitGroup
		for g := 0; g < 2; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				old := debug.SetPanicOnFault(true)
				defer debug.SetPanicOnFault(old)
				defer func() {
					if r := recover(); r != nil {
						faults.Add(1)
						first.CompareAndSwap(nil, fmt.Sprint(r))
					}
				}()
				<-start
				for j := 0; j < 50; j++ {
					p.Snapshot()
					p.Published()
				}
			}()
		}
		close(start)
		p.Close()
		wg.Wait()
	}
	if faults.Load() > 0 {
		t.Fatalf("%d faults reading a ring concurrently with its Close: %v", faults.Load(), first.Load())
	}
}
