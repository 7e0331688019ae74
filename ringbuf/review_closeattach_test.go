package ringbuf_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/framering/framering/ringbuf"
)

// Producer.Close racing with attaches: every consumer that attached must be
// disconnected by Close, and Close must return even though the consumers
// keep their Readers open (they only close them after Close returned).
func TestReviewCloseRacingAttachDoesNotHang(t *testing.T) {
	trials := 200
	if os.Getenv("FRAMERING_SOAK") != "" {
		trials = 5000
	}
	for trial := 0; trial < trials; trial++ {
		p, err := ringbuf.Create(ringbuf.Config{SocketPath: fmt.Sprintf("%s/rv-close-%d.sock", os.Getenv("FRAMERING_RUNTIME_DIR"), trial), SlotSize: 4096, Slots: 2})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var readers []*ringbuf.Reader
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					role := ringbuf.RoleConsumer
					if g%2 == 1 {
						role = ringbuf.RoleObserver
					}
					r, err := ringbuf.Attach(context.Background(), ringbuf.Options{SocketPath: p.Path(), Role: role})
					if err != nil {
						return
					}
					mu.Lock()
					readers = append(readers, r)
					mu.Unlock()
				}
			}(g)
		}
		time.Sleep(time.Duration(trial%7) * 100 * time.Microsecond)
		done := make(chan struct{})
		go func() { p.Close(); close(done) }()
		hung := false
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			hung = true
		}
		close(stop)
		// Readers are closed only now: if Close waits for one of them, it hangs above.
		mu.Lock()
		n := len(readers)
		for _, r := range readers {
			r.Close()
		}
		mu.Unlock()
		wg.Wait()
		mu.Lock()
		for _, r := range readers[n:] {
			r.Close()
		}
		mu.Unlock()
		<-done
		if hung {
			t.Fatalf("trial %d: Producer.Close hung until an attached consumer closed its Reader (%d readers)", trial, n)
		}
	}
}
