package shm

import "unsafe"

// hasPrefetchW: whether PREFETCHW (0F 0D /1) may be used, by the rule
// Linux uses for the 3dnowprefetch flag (arch/x86/kernel/cpu/amd.c), so
// that PrefetchWrite agrees with /proc/cpuinfo.
var hasPrefetchW = func() bool {
	_, vb, vc, vd := cpuid(0, 0)
	if maxExt, _, _, _ := cpuid(0x80000000, 0); maxExt < 0x80000001 {
		return false
	}
	_, _, c, d := cpuid(0x80000001, 0)
	return prefetchWFrom(vb == 0x68747541 && vd == 0x69746e65 && vc == 0x444d4163, c, d)
}()

// prefetchWFrom applies the rule to CPUID.80000001H's ECX and EDX: the
// PRFCHW bit (ECX bit 8); or, on AMD, long mode (EDX bit 29) or 3DNow!
// (EDX bit 31), both of which imply PREFETCHW there even where a
// hypervisor masks the PRFCHW bit (Linux then still reports 3dnowprefetch).
func prefetchWFrom(amd bool, ecx, edx uint32) bool {
	return ecx&(1<<8) != 0 || amd && edx&(1<<29|1<<31) != 0
}

//go:noescape
func prefetch(p unsafe.Pointer)

//go:noescape
func prefetchw(p unsafe.Pointer)

func cpuid(leaf, sub uint32) (a, b, c, d uint32)
