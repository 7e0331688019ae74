package shm

import (
	_ "unsafe" // for go:linkname
)

//go:linkname nanotime runtime.nanotime
func nanotime() int64

// MonotonicNanos returns CLOCK_MONOTONIC in nanoseconds, the clock frame
// grabbers stamp captures with, through the vDSO and without allocating.
// Values from different processes on one host are comparable.
func MonotonicNanos() int64 { return nanotime() }
