package shm_test

import (
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/framering/framering/shm"
)

// Prefetch hints change no value and never fault, on writable and
// read-only views alike.
func TestPrefetchChangesNothing(t *testing.T) {
	s := newSeg(t, 4096)
	rw := mapSeg(t, s, true)
	ro := mapSeg(t, s, false)
	words, err := rw.Uint64s(0, 512)
	if err != nil {
		t.Fatal(err)
	}
	for i := range words {
		words[i].Store(uint64(i) * 0x9e3779b97f4a7c15)
	}
	view, err := ro.ReadUint64sAt(0, 512)
	if err != nil {
		t.Fatal(err)
	}
	for i := range words {
		shm.PrefetchWrite(&words[i])
		view.Prefetch(uint64(i))
	}
	for i := range words {
		if got, want := view.Load(uint64(i)), uint64(i)*0x9e3779b97f4a7c15; got != want {
			t.Fatalf("word %d: %#x after prefetching, want %#x", i, got, want)
		}
	}
}

// PrefetchWrite uses PREFETCHW exactly where the CPU says it has it (the
// kernel names the CPUID bit 3dnowprefetch): a CPU without it would run
// the instruction as a no-op at best.
func TestPrefetchWriteMatchesCPU(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		if !shm.HasPrefetchWForTest {
			t.Fatal("arm64 has PRFM PSTL1KEEP in its base instruction set")
		}
		return
	}
	info, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Fatal(err)
	}
	var flags []string
	for line := range strings.Lines(string(info)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "flags" {
			flags = strings.Fields(v)
			break
		}
	}
	if len(flags) == 0 {
		t.Fatal("no flags line in /proc/cpuinfo")
	}
	want := false
	for _, f := range flags {
		want = want || f == "3dnowprefetch"
	}
	if shm.HasPrefetchWForTest != want {
		t.Fatalf("hasPrefetchW %v, /proc/cpuinfo's 3dnowprefetch %v", shm.HasPrefetchWForTest, want)
	}
}
