package ringbuf_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/framering/framering/ringbuf"
)

// An Attach that races with Producer.Close must fail as "no producer"
// (ErrClosed or ErrProducerGone), which a re-attaching consumer waits out,
// never as a refusal or a corrupt handshake, which ends it.
func TestReviewAttachDuringCloseFailsAsAbsent(t *testing.T) {
	other := map[string]int{}
	var mu sync.Mutex
	// CPU hogs: the handler goroutines get descheduled at arbitrary points,
	// as on a loaded host.
	hogStop := make(chan struct{})
	defer close(hogStop)
	for i := 0; i < 4; i++ {
		go func() {
			for {
				select {
				case <-hogStop:
					return
				default:
				}
				for j := 0; j < 1000; j++ {
				}
			}
		}()
	}
	trials := 150
	if os.Getenv("FRAMERING_SOAK") != "" {
		trials = 2000
	}
	for trial := 0; trial < trials; trial++ {
		p, err := ringbuf.Create(ringbuf.Config{SocketPath: fmt.Sprintf("%s/rv-ce-%d.sock", os.Getenv("FRAMERING_RUNTIME_DIR"), trial), SlotSize: 4096, Slots: 2})
		if err != nil {
			t.Fatal(err)
		}
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
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					r, err := ringbuf.Attach(ctx, ringbuf.Options{SocketPath: p.Path()})
					cancel()
					if err == nil {
						r.Close()
						continue
					}
					// Closing (the welcome says so), gone (the connection
					// ended in the handshake) or, once the socket is
					// removed, no such ring.
					if !errors.Is(err, ringbuf.ErrClosed) && !errors.Is(err, ringbuf.ErrProducerGone) && !errors.Is(err, ringbuf.ErrNoSuchRing) {
						mu.Lock()
						other[err.Error()]++
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(time.Duration(trial%5) * 200 * time.Microsecond)
		p.Close()
		time.Sleep(time.Millisecond)
		close(stop)
		wg.Wait()
	}
	for e, n := range other {
		t.Errorf("%d attaches during Close failed with %q", n, e)
	}
}
