package ringbuf_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/framering/framering/ringbuf"
)

// Reader.Close racing with Next, Wait, Peek, Borrow and Release on other
// goroutines, some of which keep a lease across the Close: no call faults,
// every call after Close fails with ErrClosed (or returns a frame it had
// already found), leases taken before Close stay readable and releasable,
// and the mappings go away (Published reads 0) once the last is released.
// The fd leak check of TestMain covers the teardown.
func TestReviewReaderCloseRacingCalls(t *testing.T) {
	for trial := 0; trial < 30; trial++ {
		p := newRing(t, ringbuf.Config{Slots: 8})
		r := attach(t, p, ringbuf.Options{Consumer: "c", Spin: time.Microsecond, MaxLeases: 64})
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var mu sync.Mutex
		var kept []ringbuf.Lease
		check := func(err error) {
			if err != nil && !errors.Is(err, ringbuf.ErrClosed) && !errors.Is(err, ringbuf.ErrOverwritten) &&
				!errors.Is(err, ringbuf.ErrNotPublished) && !errors.Is(err, ringbuf.ErrTooManyLeases) && !errors.Is(err, ringbuf.ErrTooManyHeld) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("unexpected error: %v", err)
			}
		}
		wg.Add(1)
		go func() { // the one Next goroutine
			defer wg.Done()
			for i := 0; ; i++ {
				l, err := r.Next(ctx)
				if err != nil {
					check(err)
					return
				}
				if l.Bytes()[0] != byte(l.Meta().Seq) {
					t.Errorf("lease of %d shows %d", l.Meta().Seq, l.Bytes()[0])
				}
				if i%3 == 0 {
					mu.Lock()
					kept = append(kept, l)
					mu.Unlock()
				} else {
					l.Release()
				}
			}
		}()
		// Borrowers, peekers and waiters.
		for g := 0; g < 2; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					seq := r.Published()
					if l, err := r.Borrow(seq); err == nil {
						if l.Bytes()[0] != byte(seq) {
							t.Errorf("lease of %d shows %d", seq, l.Bytes()[0])
						}
						l.Release()
					} else {
						check(err)
					}
					check(r.Peek(seq, func(f ringbuf.Frame) { _ = f.Data[0] }))
					wctx, wcancel := context.WithTimeout(ctx, time.Millisecond)
					_, err := r.Wait(wctx, seq)
					wcancel()
					if errors.Is(err, ringbuf.ErrClosed) {
						return
					}
					check(err)
				}
			}()
		}
		// A releaser: leases are released while Close runs.
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				mu.Lock()
				if len(kept) > 4 {
					l := kept[0]
					kept = kept[1:]
					mu.Unlock()
					if err := l.Release(); err != nil {
						t.Errorf("release: %v", err)
					}
					continue
				}
				mu.Unlock()
				time.Sleep(10 * time.Microsecond)
			}
		}()
		for i := 1; i <= 200+trial*10; i++ {
			s, err := p.Acquire()
			if err != nil {
				continue
			}
			b := s.Bytes()[:64]
			for j := range b {
				b[j] = byte(p.Published() + 1)
			}
			p.Publish(s, ringbuf.Meta{Length: 64})
		}
		r.Close()
		mu.Lock()
		snapshot := append([]ringbuf.Lease(nil), kept...)
		mu.Unlock()
		for _, l := range snapshot {
			if l.Bytes()[0] != byte(l.Meta().Seq) {
				t.Fatalf("kept lease of %d shows %d after Close", l.Meta().Seq, l.Bytes()[0])
			}
		}
		cancel()
		wg.Wait()
		if _, err := r.Borrow(1); !errors.Is(err, ringbuf.ErrClosed) {
			t.Fatalf("borrow after close: %v", err)
		}
		for _, l := range kept {
			if err := l.Release(); err != nil {
				t.Fatalf("release after close: %v", err)
			}
			if l.Valid() || l.Bytes() != nil || l.Release() == nil {
				t.Fatal("lease usable after release")
			}
		}
		if r.Published() != 0 {
			t.Fatal("mappings still in use after Close and the last release")
		}
		p.Close()
	}
}
