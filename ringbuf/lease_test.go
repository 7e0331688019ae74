package ringbuf_test

// Leases: concurrent borrows never report corruption falsely, a stale copy
// of a released lease never shows another lease, the DECIDING/restore
// path under stress.

import (
	"encoding/binary"
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
func TestConcurrentBorrowNoFalseCorrupt(t *testing.T) {
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

// A copy of a Lease used on one goroutine while another releases it and
// borrows again (reusing the lease record): Meta and Bytes of the stale
// copy must be the original frame's or zero/nil, never another lease's.
// Run with -race as well: the record is read without synchronisation.
func TestStaleLeaseCopyNeverShowsAnotherLease(t *testing.T) {
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

const reviewFrameLen = 4096

// The DECIDING window under fire: several consumers keep borrowing and
// releasing the *oldest* published frame, the very one Acquire is about to
// reuse (so holds land between its first holder check and its second, and
// it restores generations), while peekers read the same frames. Every
// accepted peek and every lease must show exactly its own frame, and a
// lease's bytes must not change while it is held.
func TestRestorePathStress(t *testing.T) {
	p := newRing(t, ringbuf.Config{Slots: 3, SlotSize: reviewFrameLen})
	var readers []*ringbuf.Reader
	for i := 0; i < 3; i++ {
		readers = append(readers, attach(t, p, ringbuf.Options{Consumer: "holder"}))
	}
	obs := attach(t, p, ringbuf.Options{Role: ringbuf.RoleObserver})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var leases, peeks, bad atomic.Int64
	oldest := func(r *ringbuf.Reader) uint64 {
		pub := r.Published()
		if pub < 3 {
			return pub
		}
		return pub - 2
	}
	for _, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				seq := oldest(r)
				l, err := r.Borrow(seq)
				if err != nil {
					if !errors.Is(err, ringbuf.ErrOverwritten) && !errors.Is(err, ringbuf.ErrNotPublished) {
						t.Errorf("borrow %d: %v", seq, err)
						return
					}
					continue
				}
				ok := ringbuf.PatternIntactForTest(l.Bytes(), seq, reviewFrameLen)
				for i := 0; i < 10; i++ {
					ok = ok && binary.LittleEndian.Uint64(l.Bytes()) == seq
				}
				ok = ok && ringbuf.PatternIntactForTest(l.Bytes(), seq, reviewFrameLen)
				if !ok {
					bad.Add(1)
				}
				leases.Add(1)
				l.Release()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, reviewFrameLen)
		for {
			select {
			case <-stop:
				return
			default:
			}
			seq := oldest(obs)
			var m ringbuf.Meta
			if err := obs.Peek(seq, func(f ringbuf.Frame) { m = f.Meta; copy(buf, f.Data) }); err == nil {
				peeks.Add(1)
				if m.Seq != seq || !ringbuf.PatternIntactForTest(buf[:m.Length], seq, reviewFrameLen) {
					bad.Add(1)
				}
			}
		}
	}()
	deadline := time.Now().Add(time.Second)
	published, dropped := 0, 0
	for time.Now().Before(deadline) {
		s, err := p.Acquire()
		if err != nil {
			dropped++
			continue
		}
		ringbuf.FillPatternForTest(s.Bytes()[:reviewFrameLen], p.Published()+1)
		if _, err := p.Publish(s, ringbuf.Meta{Length: reviewFrameLen}); err != nil {
			t.Fatal(err)
		}
		published++
	}
	close(stop)
	wg.Wait()
	t.Logf("published %d (dropped %d), %d leases and %d peeks of the oldest frame verified", published, dropped, leases.Load(), peeks.Load())
	if bad.Load() != 0 {
		t.Fatalf("%d leases or peeks showed bytes of another frame", bad.Load())
	}
}
