package clock_test

import (
	"testing"

	"github.com/framering/framering/clock"
	"golang.org/x/sys/unix"
)

// Nanos is CLOCK_MONOTONIC: it lies between two clock_gettime readings
// taken around it.
func TestNanosIsClockMonotonic(t *testing.T) {
	for range 100 {
		var a, b unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &a); err != nil {
			t.Fatal(err)
		}
		n := clock.Nanos()
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &b); err != nil {
			t.Fatal(err)
		}
		if n < a.Nano() || n > b.Nano() {
			t.Fatalf("Nanos %d not within CLOCK_MONOTONIC [%d, %d]", n, a.Nano(), b.Nano())
		}
	}
}

func TestNanosAllocatesNothing(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = clock.Nanos() }); n != 0 {
		t.Fatalf("Nanos allocates %v times", n)
	}
}
