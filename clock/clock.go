// Package clock is framering's one monotonic clock: CLOCK_MONOTONIC in
// nanoseconds, the clock every timestamp in a ring is in (capture times,
// the producer's heartbeat, consumer latencies), in Go and in the C SDK.
//
// time.Now carries a monotonic reading but does not expose it as a
// CLOCK_MONOTONIC value that another process can compare, so every layer
// (shm, native, ringbuf, the commands) reads this package instead of
// keeping its own. It is the one package outside shm/ and native/ that the
// hazard rule (internal/archcheck) allows unsafe, by name: it needs it only
// for the go:linkname below.
package clock

import (
	_ "unsafe" // for go:linkname
)

// runtime.nanotime is CLOCK_MONOTONIC through the vDSO on Linux, the same
// clock clock_gettime(CLOCK_MONOTONIC) reads, without a system call or an
// allocation.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// Nanos returns CLOCK_MONOTONIC in nanoseconds. Values taken by different
// processes of one host are comparable; they mean nothing across hosts or
// reboots.
func Nanos() int64 { return nanotime() }
