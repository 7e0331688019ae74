package ringbuf

import (
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
func TestReviewStoreLoadOrderOnMapping(t *testing.T) {
	p := reviewRing(t, Config{Slots: 2})
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
