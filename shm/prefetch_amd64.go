package shm

import "unsafe"

// hasPrefetchW: CPUID.80000001H:ECX.PRFCHW[bit 8].
var hasPrefetchW = func() bool {
	if maxExt, _, _, _ := cpuid(0x80000000, 0); maxExt < 0x80000001 {
		return false
	}
	_, _, c, _ := cpuid(0x80000001, 0)
	return c&(1<<8) != 0
}()

//go:noescape
func prefetch(p unsafe.Pointer)

//go:noescape
func prefetchw(p unsafe.Pointer)

func cpuid(leaf, sub uint32) (a, b, c, d uint32)
