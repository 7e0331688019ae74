package shm

import (
	"sync/atomic"
	"unsafe"
)

// Prefetch hints. A consumer taking a frame follows a chain of dependent
// loads through lines the producer has just written (index entry, then the
// slot's descriptor, then its hold word), and each miss waits for the
// previous one. When the caller can guess the slot, these hints start the
// misses together instead. A hint never faults, changes no value, orders
// nothing (it is not a load: no atomic's ordering argument may rest on
// one), and the CPU may drop it.

// Prefetch asks this CPU to bring the cache line holding word i into its
// cache for reading (bounds-checked).
func (w ReadUint64s) Prefetch(i uint64) { prefetch(unsafe.Pointer(&w.s[i])) }

// PrefetchWrite asks this CPU to take the cache line holding w for writing
// (exclusively), so that a later store or read-modify-write does not wait
// for another core to give the line up. Where the CPU has no such hint, it
// prefetches for reading.
func PrefetchWrite(w *atomic.Uint64) {
	if hasPrefetchW {
		prefetchw(unsafe.Pointer(w))
		return
	}
	prefetch(unsafe.Pointer(w))
}
