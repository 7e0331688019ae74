package ringbuf_test

// Closing: attaches and calls racing Producer.Close and Reader.Close, and
// what every call returns after them.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/framering/framering/loss"
	"github.com/framering/framering/ringbuf"
)

// An Attach that races with Producer.Close must fail as "no producer"
// (ErrClosed or ErrProducerGone), which a re-attaching consumer waits out,
// never as a refusal or a corrupt handshake, which ends it.
func TestAttachDuringCloseFailsAsAbsent(t *testing.T) {
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

// Two Close calls at once (a signal handler and a deferred Close, say):
// run with -race.
func TestConcurrentClose(t *testing.T) {
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
func TestSnapshotDuringClose(t *testing.T) {
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

// Reader.Close racing with Next, Wait, Peek, Borrow and Release on other
// goroutines, some of which keep a lease across the Close: no call faults,
// every call after Close fails with ErrClosed (or returns a frame it had
// already found), leases taken before Close stay readable and releasable,
// and the mappings go away (Published reads 0) once the last is released.
// The fd leak check of TestMain covers the teardown.
func TestReaderCloseRacingCalls(t *testing.T) {
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
		// Then stop the others (the releaser too: a lease it takes from
		// kept is released, and shows nothing): the leases still kept
		// show their frames after Close.
		cancel()
		wg.Wait()
		for _, l := range kept {
			if b := l.Bytes(); len(b) == 0 || b[0] != byte(l.Meta().Seq) {
				t.Fatalf("kept lease of %d shows %v after Close", l.Meta().Seq, b[:min(len(b), 1)])
			}
		}
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

// Producer accessors after Close must not touch the unmapped segments.
// (Without SetPanicOnFault the fault kills the process.)
func TestProducerAccessorsAfterClose(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 2})
	publish(t, p, 1)
	p.Close()
	for name, fn := range map[string]func(){
		"Published":   func() { p.Published() },
		"Snapshot":    func() { p.Snapshot() },
		"RecordDrops": func() { p.RecordDrops(loss.SourceError, 1) },
	} {
		err := func() (err error) {
			old := debug.SetPanicOnFault(true)
			defer debug.SetPanicOnFault(old)
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("%v", r)
				}
			}()
			fn()
			return nil
		}()
		if err != nil {
			t.Errorf("Producer.%s after Close: %v", name, err)
		}
	}
}
