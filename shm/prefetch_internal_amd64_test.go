package shm

import "testing"

// PREFETCHW where Linux reports 3dnowprefetch: the CPUID bit, or on AMD
// long mode or 3DNow!, which the kernel takes to imply it (so on an AMD
// guest whose hypervisor masks the bit, /proc/cpuinfo still says
// 3dnowprefetch, and TestPrefetchWriteMatchesCPU holds there too).
func TestPrefetchWFrom(t *testing.T) {
	const prfchw, lm, now3d = 1 << 8, 1 << 29, 1 << 31
	for _, c := range []struct {
		amd      bool
		ecx, edx uint32
		want     bool
	}{
		{false, prfchw, lm, true},
		{false, 0, lm | now3d, false},
		{true, prfchw, 0, true},
		{true, 0, lm, true},
		{true, 0, now3d, true},
		{true, 0, 0, false},
	} {
		if got := prefetchWFrom(c.amd, c.ecx, c.edx); got != c.want {
			t.Errorf("amd %v ecx %#x edx %#x: %v, want %v", c.amd, c.ecx, c.edx, got, c.want)
		}
	}
}
