package ringbuf

// Memory ordering on the mapping (the Dekker pairs under -race) and the
// 2^48 sequence limit.

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
)

// Store buffering on two words of a ring's control segment, in the
// pattern of Acquire (store, then load the other word) on both sides:
// sequential consistency forbids both loads seeing 0. Go's atomics give
// that on ordinary memory; under -race, for memory outside the Go heap (our
// mmap'd segments), the race runtime's Store is not fenced and both loads
// can see 0 — so the Dekker handshakes of the ring (Acquire vs Borrow,
// Publish vs Wait) do not hold in race builds. An RMW (Swap) instead of
// Store restores the order: the ring uses Swap for its Dekker stores, and
// this test asserts that Swap side (the plain-Store count is only logged:
// it is the race runtime's behaviour, not ours, and 0 in normal builds).
func TestStoreLoadOrderOnMapping(t *testing.T) {
	p := internalRing(t, Config{Slots: 2})
	x, y := p.ctl.hold(0), p.ctl.hold(1)
	for _, swap := range []bool{false, true} {
		n := int64(300000)
		if testing.Short() {
			n = 30000
		}
		var start, done atomic.Int64
		var r2 uint64
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for i := int64(1); i <= n; i++ {
				for start.Load() != i {
				}
				if swap {
					y.Swap(1)
				} else {
					y.Store(1)
				}
				r2 = x.Load()
				done.Store(i)
			}
		}()
		bad := 0
		for i := int64(1); i <= n; i++ {
			x.Store(0)
			y.Store(0)
			start.Store(i)
			if swap {
				x.Swap(1)
			} else {
				x.Store(1)
			}
			r1 := y.Load()
			for done.Load() != i {
			}
			if r1 == 0 && r2 == 0 {
				bad++
			}
		}
		x.Store(0)
		y.Store(0)
		t.Logf("swap=%v: %d of %d rounds saw both loads 0", swap, bad, n)
		if bad > 0 && swap {
			t.Errorf("store->load reordered on the mapping with Swap: %d times", bad)
		}
	}
}

// The last sequence numbers an index entry can carry are published and
// delivered in order; the next Publish is refused and leaves the slot lent
// (Abort returns it); readers asking past the end get ErrNotPublished.
func TestSequenceLimit(t *testing.T) {
	p := internalRing(t, Config{Slots: 3})
	// Jump the acquisition state to the end of the sequence space before
	// anyone attaches, as if 2^48-3 frames had been published.
	p.next = maxSeq - 1
	p.data.published().Store(maxSeq - 2)
	r := internalAttach(t, p, Options{Consumer: "c", Mode: Lossless})
	for want := uint64(maxSeq - 1); want <= maxSeq; want++ {
		s, err := p.Acquire()
		if err != nil {
			t.Fatal(err)
		}
		if seq, err := p.Publish(s, Meta{Length: 8, FrameID: want}); err != nil || seq != want {
			t.Fatalf("publish %d: %d %v", want, seq, err)
		}
	}
	s, err := p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(s, Meta{Length: 8}); !errors.Is(err, ErrClosed) {
		t.Fatalf("publish past 2^48-1: %v", err)
	}
	if err := p.Abort(s); err != nil {
		t.Fatalf("abort after the refused publish: %v", err)
	}
	ctx := context.Background()
	for want := uint64(maxSeq - 1); want <= maxSeq; want++ {
		l, err := r.Next(ctx)
		if err != nil || l.Meta().Seq != want || l.Meta().FrameID != want {
			t.Fatalf("next: %+v %v, want %d", l.Meta(), err, want)
		}
		l.Release()
	}
	for _, seq := range []uint64{maxSeq + 1, 1 << 48, ^uint64(0)} {
		if _, err := r.Borrow(seq); !errors.Is(err, ErrNotPublished) {
			t.Fatalf("borrow %d: %v", seq, err)
		}
	}
	// An index entry of another sequence number that aliases maxSeq's slot
	// bits is not taken for it.
	if _, err := r.Borrow(maxSeq - 1 - uint64(p.geo.indexCount)); !errors.Is(err, ErrOverwritten) {
		t.Fatalf("borrow of an aliased, older sequence number: %v", err)
	}
}
