package ringbuf_test

import (
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/framering/framering/ringbuf"
)

const reviewFrameLen = 4096

func reviewFill(b []byte, seq uint64) {
	binary.LittleEndian.PutUint64(b, seq)
	for i := 8; i < reviewFrameLen; i++ {
		b[i] = byte(seq) ^ byte(i)
	}
}

// reviewCheck reports whether b is the whole pattern of seq.
func reviewCheck(b []byte, seq uint64) bool {
	if len(b) != reviewFrameLen || binary.LittleEndian.Uint64(b) != seq {
		return false
	}
	for i := 8; i < reviewFrameLen; i++ {
		if b[i] != byte(seq)^byte(i) {
			return false
		}
	}
	return true
}

// The DECIDING window under fire: several consumers keep borrowing and
// releasing the *oldest* published frame, the very one Acquire is about to
// reuse (so holds land between its first holder check and its second, and
// it restores generations), while peekers read the same frames. Every
// accepted peek and every lease must show exactly its own frame, and a
// lease's bytes must not change while it is held.
func TestReviewRestorePathStress(t *testing.T) {
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
				ok := reviewCheck(l.Bytes(), seq)
				for i := 0; i < 10; i++ {
					ok = ok && binary.LittleEndian.Uint64(l.Bytes()) == seq
				}
				ok = ok && reviewCheck(l.Bytes(), seq)
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
				if m.Seq != seq || !reviewCheck(buf[:m.Length], seq) {
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
		reviewFill(s.Bytes(), p.Published()+1)
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
